#!/usr/bin/env bash
# Proves that restarting Redis (AOF on) in the middle of a run loses no job: the workers
# reconnect by themselves, unacknowledged entries survive in the AOF and are finished, and
# each of the 3,000 jobs ends with exactly one row.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
itest_stack_up

for i in $(seq 1 3000); do echo '{"type":"sleep","params":{"seconds":0.02}}'; done >"$ITEST_TMP/jobs"
start_worker --procs 2 --concurrency 16
"$MAINTQ" submit --batch "$ITEST_TMP/jobs" >/dev/null
wait_until 60 bash -c "[[ \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c 'SELECT count(*) FROM maintq.job_runs') -ge 500 ]]"
"$MAINTQ_STACK" redis-stop >/dev/null
"$MAINTQ_STACK" redis-start >/dev/null
check "the workers reconnect to Redis" wait_until 30 bash -c "[[ \$(grep -c 'connected to redis' '$WORKER_LOG') -ge 8 ]]"
check "all 3,000 jobs are recorded" wait_until 120 rows_equal 3000 "status = 'ok'"
check "each job exactly once" equals "$(itest_psql "SELECT count(*) FROM maintq.job_runs")" 3000
check "every entry is acknowledged" wait_until 30 bash -c \
    "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XLEN '{maintq}:q:default') == 0 ]]"

((itest_failures == 0)) || show_worker_logs
itest_done
