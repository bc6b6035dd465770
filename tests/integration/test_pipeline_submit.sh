#!/usr/bin/env bash
# Proves the submit command's contract: unique jobs return the first job's id inside the
# window, --delay holds a job back, --wait returns the result with the monitoring exit code
# (0 ok, 1 warning, 3 failed/dead), a cancel key stops a running job without a retry, and
# every bad input is one line on stderr with exit 2 and nothing submitted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
itest_stack_up
start_worker --procs 1 --exec-allow /bin/sh

first=$("$MAINTQ" submit noop --unique-for 1h)
second=$("$MAINTQ" submit noop --unique-for 1h)
check "a second unique submit inside the window returns the first id" equals "${second%% *}" "$first"
check "and says it was deduplicated" grep -q "already submitted" <<<"$second"
other=$("$MAINTQ" submit sleep seconds=0 --unique-for 1h)
check "a different job is not deduplicated" bash -c "[[ '$other' != '$first' ]]"

t0=$(itest_now_us)
set +e
"$MAINTQ" submit noop --delay 2s --wait >"$ITEST_TMP/delayed.out"
rc=$?
set -e
t1=$(itest_now_us)
check "--delay 2s holds the job back about two seconds" bash -c "(( $t1 - $t0 >= 1900000 ))"
check "--wait prints the result and exits 0 for ok" bash -c "[[ $rc == 0 ]] && grep -q 'status    ok' '$ITEST_TMP/delayed.out'"
set +e
"$MAINTQ" submit exec 'argv=["/bin/sh","-c","echo degraded; exit 1"]' --wait --json >"$ITEST_TMP/warn.out"
rc=$?
set -e
check "--wait exits 1 for a warning and prints JSON" bash -c "[[ $rc == 1 ]] && grep -q '\"status\" *: *\"warning\"' '$ITEST_TMP/warn.out'"
set +e
"$MAINTQ" submit fail times=5 --attempts 1 --wait >/dev/null
rc=$?
set -e
check "--wait exits 3 for a dead job" equals "$rc" 3

id=$("$MAINTQ" submit sleep seconds=30 --attempts 3)
wait_until 10 bash -c "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XPENDING '{maintq}:q:default' workers | head -1) == 1 ]]"
itest_redis SET "{maintq}:cancel:$id" "replaced by a newer run" >/dev/null
check "a cancel key stops the running job" wait_until 10 rows_equal 1 "job_id = '$id' AND status = 'cancelled' AND error = 'cancelled: replaced by a newer run'"
check "a cancelled-by-key job is not retried" bash -c "sleep 2; [[ \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c \"SELECT count(*) FROM maintq.job_runs WHERE job_id = '$id'\") == 1 ]]"

before=$(stream_len default)
bad() {
    local want=$1
    shift
    set +e
    "$MAINTQ" submit "$@" >"$ITEST_TMP/bad.out" 2>"$ITEST_TMP/bad.err"
    local rc=$?
    set -e
    [[ $rc == 2 ]] || { echo "exit $rc"; return 1; }
    [[ $(wc -l <"$ITEST_TMP/bad.err") == 1 ]] || { cat "$ITEST_TMP/bad.err"; return 1; }
    grep -qF -- "$want" "$ITEST_TMP/bad.err" || { cat "$ITEST_TMP/bad.err"; return 1; }
    [[ ! -s $ITEST_TMP/bad.out ]]
}
check "unknown type" bad 'type: unknown job type "nope"' nope
check "bad param value" bad "params.seconds" sleep seconds='"x"'
check "unknown param" bad "params.bogus: unknown field" noop bogus=1
check "argument without =" bad 'expected key=value' noop bogus
check "bad duration" bad '--delay: "soon" is not a duration' noop --delay soon
check "attempts out of range" bad '--attempts: "0" is not a number in 1-100' noop --attempts 0
check "unknown flag" bad "unknown option '--frobnicate'" noop --frobnicate
check "bad queue name" bad "queue" noop --queue 'no spaces'
check "file that does not exist" bad "nofile.json" --file "$ITEST_TMP/nofile.json"
check "nothing was submitted by the bad commands" equals "$(stream_len default)" "$before"

((itest_failures == 0)) || show_worker_logs
itest_done
