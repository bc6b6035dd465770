#!/usr/bin/env bash
# Proves that a scheduled tick enqueued twice runs once: the scheduler derives a tick's
# job id from the schedule and the tick, so when the same tick reaches the queue again
# (Redis lost its last writes and the tick was fired again), the worker sees the id already
# has a final row and acknowledges the entry without running the job or writing a row.
# A failed attempt is not final: the retry of a scheduled job still runs.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
itest_stack_up
start_worker --procs 2 --exec-allow /bin/sh

marks=$ITEST_TMP/marks
tick() { # tick ID COMMAND: a scheduled descriptor as the scheduler writes it
    echo "{\"id\":\"$1\",\"type\":\"exec\",\"params\":{\"argv\":[\"/bin/sh\",\"-c\",\"$2\"]},\"schedule\":\"nightly\",\"scheduled_for\":\"2026-11-22T00:00:00.000000Z\",\"created_at\":\"2026-11-22T00:00:00.000000Z\",\"submitted_by\":\"scheduler\",\"max_attempts\":3,\"backoff\":{\"base_s\":0,\"max_s\":0}}"
}
id=01a20000-0000-7000-8000-0000000000a1
itest_redis XADD '{maintq}:q:default' '*' d "$(tick $id "echo ran >> $marks")" n 1 m 3 >/dev/null
check "the tick runs and is recorded" wait_until 20 rows_equal 1 "job_id = '$id' AND status = 'ok'"
itest_redis XADD '{maintq}:q:default' '*' d "$(tick $id "echo ran >> $marks")" n 1 m 3 >/dev/null
check "the same tick enqueued again is acknowledged" wait_until 20 bash -c \
    "grep -q 'already finished: not running it again' $ITEST_TMP/worker-1.log && [[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XLEN '{maintq}:q:default') == 0 ]]"
check "but the job ran only once" equals "$(wc -l <"$marks")" 1
check "and has only one row" equals "$(rows "job_id = '$id'")" 1

id2=01a20000-0000-7000-8000-0000000000a2
itest_redis XADD '{maintq}:q:default' '*' d "$(tick $id2 "echo try >> $marks.2; [ \$(wc -l < $marks.2) -ge 2 ] || exit 3")" n 1 m 3 >/dev/null
check "a scheduled job that failed is still retried, and succeeds on attempt 2" wait_until 20 \
    rows_equal 1 "job_id = '$id2' AND attempt = 2 AND status = 'ok'"

((itest_failures == 0)) || show_worker_logs
itest_done
