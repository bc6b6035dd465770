#!/usr/bin/env bash
# Proves at-least-once delivery with exactly one final result: a worker child SIGKILLed
# while running sleep jobs loses nothing. The master restarts the child; the killed
# attempts' entries are reclaimed (after --reclaim-after, 3 s here) as their next attempt;
# every job ends with exactly one ok row and the reclaimed ones say so.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
itest_stack_up

start_worker --procs 2 --concurrency 8 --reclaim-after 3s
master=$WORKER_PID
for i in $(seq 1 20); do echo '{"type":"sleep","params":{"seconds":1.5},"max_attempts":3}'; done >"$ITEST_TMP/jobs"
"$MAINTQ" submit --batch "$ITEST_TMP/jobs" >"$ITEST_TMP/ids"
check "jobs are running on both children" wait_until 10 bash -c \
    "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XPENDING '{maintq}:q:default' workers | head -1) -ge 8 ]]"
# The victim is a child that holds pending entries: XPENDING's summary lists consumers
# ("host:pid") with their counts.
victim=$(itest_redis XPENDING '{maintq}:q:default' workers | sed -n '4~2p' | head -1 | sed 's/.*://')
check "a consumer with entries in flight is one of the children" bash -c "pgrep -P $master | grep -qx '$victim'"
kill -KILL "$victim"
check "the master restarts the killed child" wait_until 10 grep -q "killed by signal 9" "$WORKER_LOG"
check "all 20 jobs end with an ok row" wait_until 60 rows_equal 20 "status = 'ok'"
check "no job has more than one ok row" equals "$(itest_psql "SELECT count(DISTINCT job_id) FROM maintq.job_runs WHERE status = 'ok'")" 20
check "the killed attempts were retried as attempt 2 after reclaim" bash -c \
    "[[ \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c \"SELECT count(*) FROM maintq.job_runs WHERE attempt = 2 AND status = 'ok'\") -ge 1 ]]"
check "the worker logged the reclaim" grep -q "reclaimed .* entries of lost workers" "$WORKER_LOG"
check "every entry is acknowledged in the end" wait_until 10 bash -c \
    "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XLEN '{maintq}:q:default') == 0 ]]"

((itest_failures == 0)) || show_worker_logs
itest_done
