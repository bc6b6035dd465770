#!/usr/bin/env bash
# Proves per-job timeouts and configuration reload: a job that outlives its timeout is
# cancelled and recorded as timeout, retried, and dead after its last attempt; SIGHUP makes
# the workers re-read their config file (a newly allowlisted program then runs), and a
# broken config file on SIGHUP is refused while the running configuration stays in force.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
itest_stack_up

printf 'exec_allow = /bin/true\n' >"$ITEST_TMP/worker.conf"
start_worker --procs 2 --config "$ITEST_TMP/worker.conf"

id=$("$MAINTQ" submit sleep seconds=30 --timeout 1s --attempts 2)
check "a job running past its timeout is recorded as timeout, then dead" wait_until 20 rows_equal 2 "job_id = '$id'"
check "attempt 1 timed out and attempt 2 is dead with the reason" equals \
    "$(itest_psql "SELECT string_agg(attempt || ':' || status || ':' || error, ',' ORDER BY attempt) FROM maintq.job_runs WHERE job_id = '$id'")" \
    "1:timeout:timed out after 1s,2:dead:timeout after 2 attempts: timed out after 1s"
check "a timed-out attempt took about its timeout, not the job's 30 s" bash -c "[[ \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c \"SELECT max(duration_ms) FROM maintq.job_runs WHERE job_id = '$id'\") -lt 5000 ]]"

before=$("$MAINTQ" submit exec 'argv=["/bin/echo","hello"]' --attempts 1)
check "a program missing from the allowlist is refused" wait_until 20 rows_equal 1 \
    "job_id = '$before' AND status = 'dead' AND error LIKE '%not in the worker''s exec allowlist%'"

printf 'exec_allow = /bin/true\nexec_allow = /bin/echo\n' >"$ITEST_TMP/worker.conf"
kill -HUP "$WORKER_PID"
check "SIGHUP makes both children reload their configuration" wait_until 10 bash -c \
    "[[ \$(grep -c 'configuration reloaded' '$WORKER_LOG') == 2 ]]"
after=$("$MAINTQ" submit exec 'argv=["/bin/echo","hello"]' --attempts 1)
check "after the reload the newly allowlisted program runs" wait_until 20 rows_equal 1 \
    "job_id = '$after' AND status = 'ok' AND result->>'output_tail' = E'hello\\n'"

printf 'exec_allow = relative/path\n' >"$ITEST_TMP/worker.conf"
kill -HUP "$WORKER_PID"
check "a broken config on SIGHUP is refused with the reason" wait_until 10 bash -c \
    "[[ \$(grep -c 'reload failed, keeping the running configuration: config .* line 1: exec_allow' '$WORKER_LOG') == 2 ]]"
again=$("$MAINTQ" submit exec 'argv=["/bin/echo","hello"]' --attempts 1)
check "the running configuration stays in force" wait_until 20 rows_equal 1 "job_id = '$again' AND status = 'ok'"
check "the worker master is still running" kill -0 "$WORKER_PID"

printf 'exec_allow = /bin/true\nexec_allow = /bin/echo\n' >"$ITEST_TMP/worker.conf"
for i in $(seq 1 20); do
    kill -HUP "$WORKER_PID"
    wait_until 10 bash -c "[[ \$(grep -c 'configuration reloaded' '$WORKER_LOG') -ge $((2 + 2 * i)) ]]"
done
check "twenty reloads in a row are all taken" bash -c "[[ \$(grep -c 'configuration reloaded' '$WORKER_LOG') == 42 ]]"
last=$("$MAINTQ" submit exec 'argv=["/bin/echo","hello"]' --attempts 1)
check "jobs still run after many reloads" wait_until 20 rows_equal 1 "job_id = '$last' AND status = 'ok'"

((itest_failures == 0)) || show_worker_logs
itest_done
