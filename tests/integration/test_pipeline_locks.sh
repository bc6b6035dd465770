#!/usr/bin/env bash
# Proves mutual exclusion: 12 jobs sharing lock "db-maint" and 6 sharing lock "other",
# spread over two worker processes with room for many jobs each. Jobs of one lock never
# overlap (checked from their recorded start and end times), each holds a distinct fencing
# number, and waiting for a busy lock is not an attempt (max_attempts=1, all ok).
# The two groups are told apart by their params (0.3 s and 0.31 s sleeps): rows do not
# store the lock key.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
itest_stack_up

start_worker --procs 2 --concurrency 16
for i in $(seq 1 12); do echo '{"type":"sleep","params":{"seconds":0.3},"lock":"db-maint","max_attempts":1}'; done >"$ITEST_TMP/jobs"
for i in $(seq 1 6); do echo '{"type":"sleep","params":{"seconds":0.31},"lock":"other","max_attempts":1}'; done >>"$ITEST_TMP/jobs"
"$MAINTQ" submit --batch "$ITEST_TMP/jobs" >/dev/null
check "all 18 locked jobs finish ok on their first attempt" wait_until 90 rows_equal 18 "status = 'ok' AND attempt = 1"
check "jobs of the same lock never overlap in time" equals "$(itest_psql "
    SELECT count(*) FROM maintq.job_runs a JOIN maintq.job_runs b
      ON a.job_id < b.job_id AND a.params = b.params
     WHERE a.started_at < b.finished_at AND b.started_at < a.finished_at")" 0
check "jobs of different locks did run at the same time" bash -c "[[ \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c \"
    SELECT count(*) FROM maintq.job_runs a JOIN maintq.job_runs b
      ON a.params <> b.params
     WHERE a.started_at < b.finished_at AND b.started_at < a.finished_at\") -gt 0 ]]"
check "every run recorded a fencing number, distinct within its lock" equals "$(itest_psql "
    SELECT count(DISTINCT (params::text, lock_fence)) FROM maintq.job_runs WHERE lock_fence IS NOT NULL")" 18
check "fencing numbers grow in start order within a lock" equals "$(itest_psql "
    SELECT count(*) FROM (SELECT lock_fence, lag(lock_fence) OVER (PARTITION BY params ORDER BY started_at) AS prev
                            FROM maintq.job_runs) t WHERE prev IS NOT NULL AND lock_fence <= prev")" 0
check "the locks are released" bash -c "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' EXISTS '{maintq}:lock:db-maint' '{maintq}:lock:other') == 0 ]]"

((itest_failures == 0)) || show_worker_logs
itest_done
