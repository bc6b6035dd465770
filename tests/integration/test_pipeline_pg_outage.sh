#!/usr/bin/env bash
# Proves that a PostgreSQL outage loses nothing and acknowledges nothing early: with 5,000
# jobs flowing, Postgres is stopped for 20 s. While it is down, no entry is acknowledged
# (the stream keeps every unrecorded entry) and the worker stops reading past its bound;
# once Postgres is back, all 5,000 jobs are recorded exactly once and acknowledged.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
itest_stack_up

# 50 ms each, 32 at a time: the run takes about 8 s, so Postgres stops mid-run however
# fast submitting and recording are.
for i in $(seq 1 5000); do echo '{"type":"sleep","params":{"seconds":0.05}}'; done >"$ITEST_TMP/jobs"
start_worker --procs 2 --concurrency 16 --max-unwritten 200
"$MAINTQ" submit --batch "$ITEST_TMP/jobs" >/dev/null
wait_until 60 bash -c "[[ \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c 'SELECT count(*) FROM maintq.job_runs') -ge 300 ]]"
"$MAINTQ_STACK" pg-stop >/dev/null
stopped_len=$(stream_len default)
sleep 2 # let batches that were committing when Postgres stopped finish acknowledging
len_a=$(stream_len default)
wait_until 18 false || true # the rest of the 20 s outage
len_b=$(stream_len default)
check "while Postgres is down nothing more is acknowledged" equals "$len_b" "$len_a"
check "entries are still waiting when Postgres comes back" bash -c "[[ $len_b -gt 0 ]]"
"$MAINTQ_STACK" pg-start >/dev/null
check "all 5,000 jobs are recorded after the outage" wait_until 120 rows_equal 5000 "true"
check "each job exactly once" equals "$(itest_psql "SELECT count(DISTINCT job_id) FROM maintq.job_runs")" 5000
check "every job is ok" equals "$(rows "status = 'ok'")" 5000
check "every entry is acknowledged" wait_until 20 bash -c \
    "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XLEN '{maintq}:q:default') == 0 ]]"
check "the worker reported the outage and the recovery" bash -c \
    "grep -q 'postgres unreachable' $ITEST_TMP/worker-1.log && grep -q 'postgres is back' $ITEST_TMP/worker-1.log"
echo "# stream length when stopped: $stopped_len, during the outage: $len_a -> $len_b"

((itest_failures == 0)) || show_worker_logs
itest_done
