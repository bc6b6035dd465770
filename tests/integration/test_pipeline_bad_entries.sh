#!/usr/bin/env bash
# Proves that stream entries which are not valid descriptors never crash a worker: each
# goes to the dead letter with a reason naming the problem and is acknowledged, and the
# worker goes on running good jobs. Covers a missing descriptor field, bad JSON, a missing
# field, an unknown type, bad params, an oversized descriptor, and (with signatures
# required) an unsigned and a tampered descriptor.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
itest_stack_up

q='{maintq}:q:default'
now=$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)
desc() { echo "{\"id\":\"01a20000-0000-7000-8000-00000000000$1\",\"type\":\"$2\",\"created_at\":\"$now\"${3:-}}"; }
big=$(head -c 70000 /dev/zero | tr '\0' a)
dead_has() {
    local all
    all=$(itest_redis XRANGE '{maintq}:dead' - +)
    grep -qF -- "$1" <<<"$all"
}

start_worker --procs 1
worker_pid=$WORKER_PID
itest_redis XADD "$q" '*' n 1 m 3 >/dev/null
itest_redis XADD "$q" '*' d 'not json' n 1 m 3 >/dev/null
itest_redis XADD "$q" '*' d '{"type":"noop"}' n 1 m 3 >/dev/null
itest_redis XADD "$q" '*' d "$(desc 2 nope)" n 1 m 3 >/dev/null
itest_redis XADD "$q" '*' d "$(desc 3 sleep ',"params":{"seconds":"x"}')" n 1 m 3 >/dev/null
itest_redis XADD "$q" '*' d "$(desc 4 noop ",\"params\":{\"x\":\"$big\"}")" n 1 m 3 >/dev/null

check "all six bad entries reach the dead letter" wait_until 20 bash -c \
    "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XLEN '{maintq}:dead') == 6 ]]"
check "no descriptor field: reason says so" dead_has "entry has no descriptor (field d)"
check "bad JSON: reason says so" dead_has "invalid descriptor: "
check "missing id: reason names the field" dead_has "id: required"
check "unknown type: reason names it" dead_has 'type: unknown job type "nope"'
check "bad params: reason names the param" dead_has "params.seconds"
check "oversized descriptor: reason gives the limit" dead_has "65536"
check "an unknown-type job with an id gets a dead row" wait_until 10 rows_equal 1 \
    "job_id = '01a20000-0000-7000-8000-000000000002' AND status = 'dead'"
check "no bad entry is left waiting or pending" wait_until 10 bash -c \
    "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XLEN '$q') == 0 && \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XPENDING '$q' workers | head -1) == 0 ]]"
check "the worker is still the same master with its first child" bash -c \
    "kill -0 $worker_pid && [[ \$(grep -c 'started as pid' '$WORKER_LOG') == 1 ]]"
after=$("$MAINTQ" submit noop)
check "the worker still runs good jobs afterwards" wait_until 20 rows_equal 1 "job_id = '$after' AND status = 'ok'"
kill -TERM "$worker_pid"
wait_until 20 bash -c "! kill -0 $worker_pid"

# Signatures required: an unsigned descriptor and a tampered signed one are rejected.
export MAINTQ_SIGNING_KEYS=k1:0123456789abcdef0123
start_worker --procs 1 --require-signatures
signed=$(MAINTQ_SIGNING_KEY=k1:0123456789abcdef0123 "$MAINTQ" submit sleep seconds=0)
check "a signed job runs while signatures are required" wait_until 20 rows_equal 1 \
    "job_id = '$signed' AND status = 'ok'"
MAINTQ_SIGNING_KEY=k1:0123456789abcdef0123 "$MAINTQ" submit sleep seconds=0 --delay 1h >/dev/null
tampered=$(itest_redis ZRANGE '{maintq}:delayed' 0 0 | tail -n +4 | sed 's/"seconds":0/"seconds":1/')
itest_redis XADD "$q" '*' d "$tampered" n 1 m 3 >/dev/null
itest_redis XADD "$q" '*' d "$(desc 5 noop)" n 1 m 3 >/dev/null
check "a tampered descriptor is dead-lettered as a signature mismatch" wait_until 20 dead_has "sig: signature mismatch"
check "an unsigned descriptor is dead-lettered as missing its sig" wait_until 20 dead_has "sig: missing"
check "no row is written for descriptors that failed authentication" equals \
    "$(rows "job_id = '01a20000-0000-7000-8000-000000000005'")" 0

((itest_failures == 0)) || { show_worker_logs; itest_redis XRANGE '{maintq}:dead' - + | sed 's/^/#   /'; }
itest_done
