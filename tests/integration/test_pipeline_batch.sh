#!/usr/bin/env bash
# Proves the pipeline at volume: 10,000 noop jobs submitted with --batch by two worker
# processes end as exactly 10,000 ok rows, one per job, all acknowledged; and that a batch
# with bad lines reports each by line number, still submits the good ones, and exits 2.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
itest_stack_up

for i in $(seq 1 10000); do echo '{"type":"noop"}'; done >"$ITEST_TMP/jobs.jsonl"
check "submit --batch prints one id per line for 10,000 jobs" \
    bash -c "'$MAINTQ' submit --batch '$ITEST_TMP/jobs.jsonl' >'$ITEST_TMP/ids' && [[ \$(wc -l <'$ITEST_TMP/ids') == 10000 ]]"
check "the 10,000 ids are distinct UUIDv7 strings" \
    bash -c "[[ \$(sort -u '$ITEST_TMP/ids' | grep -cE '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\$') == 10000 ]]"

start_worker --procs 2 --concurrency 64
check "all 10,000 jobs are recorded within 120 s" wait_until 120 rows_equal 10000 "true"
check "every row is ok" equals "$(rows "status = 'ok'")" 10000
check "no job has two rows" equals "$(itest_psql "SELECT count(DISTINCT job_id) FROM maintq.job_runs")" 10000
check "the recorded ids are exactly the submitted ones" bash -c \
    "diff <(sort '$ITEST_TMP/ids') <(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c 'SELECT job_id FROM maintq.job_runs' | sort)"
check "every entry is acknowledged (stream empty, nothing pending)" wait_until 10 \
    bash -c "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XLEN '{maintq}:q:default') == 0 ]] && [[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XPENDING '{maintq}:q:default' workers | head -1) == 0 ]]"

printf '%s\n' '{"type":"noop"}' 'not json' '{"type":"nope"}' '' '{"type":"sleep","params":{"seconds":"x"}}' \
    '{"type":"noop","timeout_s":0}' '{"type":"noop","queue":"default"}' >"$ITEST_TMP/mixed.jsonl"
set +e
"$MAINTQ" submit --batch "$ITEST_TMP/mixed.jsonl" >"$ITEST_TMP/mixed.out" 2>"$ITEST_TMP/mixed.err"
rc=$?
set -e
check "a batch with bad lines exits 2" equals "$rc" 2
check "the good lines of a bad batch are still submitted" equals "$(wc -l <"$ITEST_TMP/mixed.out")" 2
check "each bad line is reported once with its number" bash -c "
    grep -q '^maintq submit: line 2: invalid JSON' '$ITEST_TMP/mixed.err' &&
    grep -q '^maintq submit: line 3: type: unknown job type \"nope\"' '$ITEST_TMP/mixed.err' &&
    grep -q '^maintq submit: line 5: params.seconds' '$ITEST_TMP/mixed.err' &&
    grep -q '^maintq submit: line 6: timeout_s' '$ITEST_TMP/mixed.err' &&
    [[ \$(grep -c ': line ' '$ITEST_TMP/mixed.err') == 4 ]]"
check "the good lines of the bad batch run" wait_until 30 rows_equal 10002 "true"

((itest_failures == 0)) || show_worker_logs
itest_done
