# tests/integration/worker_lib.sh: starting and stopping maintq-worker in integration
# tests (source after lib.sh). The worker's log goes to $ITEST_TMP/worker-N.log and is
# shown when the test fails; every worker is killed when the test exits.

itest_worker_n=0

# start_worker [args...]: starts a worker master in the background; sets WORKER_PID and
# WORKER_LOG. Waits until every child has connected to Redis and Postgres.
start_worker() {
    itest_worker_n=$((itest_worker_n + 1))
    WORKER_LOG=$ITEST_TMP/worker-$itest_worker_n.log
    "$MAINTQ_WORKER" "$@" >"$WORKER_LOG" 2>&1 &
    WORKER_PID=$!
    itest_on_exit "kill -9 -- $WORKER_PID; pkill -9 -P $WORKER_PID"
    if ! wait_until 20 grep -q "connected to postgres" "$WORKER_LOG"; then
        echo "not ok - the worker starts and connects"
        sed 's/^/#   /' "$WORKER_LOG"
        exit 1
    fi
}

# show_worker_logs: prints every worker log as comments (for a failing test).
show_worker_logs() {
    local f
    for f in "$ITEST_TMP"/worker-*.log; do
        [[ -f $f ]] || continue
        echo "# --- $f"
        tail -n 40 "$f" | sed 's/^/#   /'
    done
}

# The child pids of worker master $1.
worker_children() { pgrep -P "$1" || true; }

# rows WHERE-CLAUSE: number of job_runs rows matching.
rows() { itest_psql "SELECT count(*) FROM maintq.job_runs WHERE $1"; }

# rows_equal N WHERE-CLAUSE: succeeds when exactly N rows match (for wait_until/check).
rows_equal() { [[ $(rows "$2") == "$1" ]]; }

# stream_len QUEUE
stream_len() { itest_redis XLEN "{maintq}:q:$1"; }

# dead_len
dead_len() { itest_redis XLEN "{maintq}:dead"; }
