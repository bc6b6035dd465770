# tests/integration/sched_lib.sh: starting maintq-scheduler in integration tests (source
# after lib.sh). Each scheduler logs to $ITEST_TMP/scheduler-N.log (shown by
# show_scheduler_logs); every one is killed when the test exits.

itest_sched_n=0

# start_scheduler DIR [args...]: starts a scheduler on schedule folder DIR in the
# background; sets SCHED_PID and SCHED_LOG. Waits until it has connected to Redis.
start_scheduler() {
    local dir=$1
    shift
    itest_sched_n=$((itest_sched_n + 1))
    SCHED_LOG=$ITEST_TMP/scheduler-$itest_sched_n.log
    "$MAINTQ_SCHEDULER" --schedules "$dir" --log-level debug "$@" >"$SCHED_LOG" 2>&1 &
    SCHED_PID=$!
    itest_on_exit "kill -9 $SCHED_PID"
    if ! wait_until 20 grep -q "connected to redis" "$SCHED_LOG"; then
        echo "not ok - the scheduler starts and connects"
        sed 's/^/#   /' "$SCHED_LOG"
        exit 1
    fi
}

# stop_scheduler PID: SIGTERM and wait for it to exit; returns its exit status.
stop_scheduler() {
    kill -TERM "$1"
    wait "$1"
}

show_scheduler_logs() {
    local f
    for f in "$ITEST_TMP"/scheduler-*.log; do
        [[ -f $f ]] || continue
        echo "# --- $f"
        tail -n 30 "$f" | sed 's/^/#   /'
    done
}

# policy_schedules DIR PREFIX CRON DEADLINE: writes three schedules into DIR, one per
# misfire policy, named (and queued as) PREFIX-skip, PREFIX-run_once and PREFIX-run_all: a
# noop job on CRON with starting_deadline DEADLINE.
policy_schedules() {
    local policy
    mkdir -p "$1"
    for policy in skip run_once run_all; do
        cat >"$1/$policy.json" <<JSON
{"name": "$2-$policy", "cron": "$3", "misfire": "$policy",
 "starting_deadline": "$4", "job": {"type": "noop", "queue": "$2-$policy", "timeout_s": 10}}
JSON
    done
}

# scheduled_for QUEUE: the scheduled_for of every entry of the queue's stream, one a line.
scheduled_for() {
    itest_redis XRANGE "{maintq}:q:$1" - + | grep -o '"scheduled_for":"[^"]*"' | cut -d'"' -f4
}

# fires SCHEDULE OUTCOME [EXTRA-SQL]: rows of schedule_fires.
fires() {
    itest_psql "SELECT count(*) FROM maintq.schedule_fires WHERE schedule = '$1' AND outcome = '$2' ${3:-}"
}

# fired_since SCHEDULE START_US: fired rows of ticks after START_US.
fired_since() {
    fires "$1" fired "AND fire_at > to_timestamp($2 / 1e6)"
}

# at_least N cmd...: cmd's output is a number >= N.
at_least() {
    local n=$1 got
    shift
    got=$("$@")
    ((got >= n)) || { echo "expected at least $n, got $got"; return 1; }
}

# in_gap FROM_US TO_US: the SQL condition "tick in [FROM, TO]".
in_gap() {
    echo "AND fire_at >= to_timestamp($1 / 1e6) AND fire_at <= to_timestamp($2 / 1e6)"
}

# check_streams_match_fires PREFIX: for each of policy_schedules' three schedules, checks
# that no tick is in its stream twice and that the stream holds as many entries as the
# schedule has fired rows. Leaves each stream's sorted scheduled_for in $ITEST_TMP/<policy>.
check_streams_match_fires() {
    local policy
    for policy in skip run_once run_all; do
        scheduled_for "$1-$policy" | sort >"$ITEST_TMP/$policy"
        check "dedupe: no $1-$policy tick is in the stream twice" \
            equals "$(uniq -d "$ITEST_TMP/$policy" | wc -l)" 0
        check "$1-$policy: stream entries and fired rows agree" \
            equals "$(wc -l <"$ITEST_TMP/$policy")" "$(fires "$1-$policy" fired)"
    done
}

# sleep_until START_US SECONDS: sleeps until SECONDS after START_US (a scenario's timeline,
# not a wait for readiness).
sleep_until() {
    local left_us=$(($1 + $2 * 1000000 - ${EPOCHREALTIME/./}))
    ((left_us > 0)) || return 0
    sleep "$((left_us / 1000000)).$(printf '%06d' $((left_us % 1000000)))"
}
