#!/usr/bin/env bash
# Proves the pipeline at volume: 10,000 noop jobs submitted with --batch by two worker
# processes end as exactly 10,000 ok rows, one per job, all acknowledged; and that a batch
# with bad lines reports each by line number, still submits the good ones, and exits 2; a
# chunk Redis refuses is named by its lines while the other chunks still go in (exit 3).
# And that a redelivered attempt (the same job id and attempt as two raw stream entries, and
# again after its row is written) still ends as one row with every entry acknowledged: the
# worker writes batches with COPY, which fails on the existing row, and then writes the
# batch again with INSERT ... ON CONFLICT DO NOTHING. And that text COPY escaping keeps a
# job's params, result and error exactly: tab, newline, carriage return, backslash, a
# literal \N and non-ASCII characters survive the round trip, in jsonb and in text columns.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
itest_stack_up

for i in $(seq 1 10000); do echo '{"type":"noop"}'; done >"$ITEST_TMP/jobs.jsonl"
check "submit --batch prints one id per line for 10,000 jobs" \
    bash -c "'$MAINTQ' submit --batch '$ITEST_TMP/jobs.jsonl' >'$ITEST_TMP/ids' && [[ \$(wc -l <'$ITEST_TMP/ids') == 10000 ]]"
check "the 10,000 ids are distinct UUIDv7 strings" \
    bash -c "[[ \$(sort -u '$ITEST_TMP/ids' | grep -cE '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\$') == 10000 ]]"

start_worker --procs 2 --concurrency 64 --exec-allow /usr/bin/printf
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

# A queue key of the wrong type makes the submit script fail on the chunk that names it
# (lines 501-1000 of 1,200), after adding that chunk's jobs before line 700.
itest_redis SET '{maintq}:q:broken' not-a-stream >/dev/null
for i in $(seq 1 1200); do
    if ((i == 700)); then echo '{"type":"noop","queue":"broken"}'; else echo '{"type":"noop","queue":"chunky"}'; fi
done >"$ITEST_TMP/refused.jsonl"
set +e
"$MAINTQ" submit --batch "$ITEST_TMP/refused.jsonl" >"$ITEST_TMP/refused.out" 2>"$ITEST_TMP/refused.err"
rc=$?
set -e
check "a batch with a refused chunk exits 3" equals "$rc" 3
check "the refused chunk is named by its lines, in one line" bash -c "
    grep -q '^maintq submit: lines 501-1000: redis refused them (WRONGTYPE [^()]*); some of these jobs may have been submitted\$' '$ITEST_TMP/refused.err' &&
    grep -q '^maintq submit: 700 submitted, 0 bad line(s) left out, 1 chunk(s) refused by redis\$' '$ITEST_TMP/refused.err' &&
    [[ \$(wc -l <'$ITEST_TMP/refused.err') == 2 ]]"
check "the chunks before and after it are submitted and their ids printed" bash -c "
    [[ \$(wc -l <'$ITEST_TMP/refused.out') == 700 ]] &&
    [[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XLEN '{maintq}:q:chunky') == 899 ]]"
itest_redis DEL '{maintq}:q:broken' '{maintq}:q:chunky' >/dev/null

q='{maintq}:q:default'
now=$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)
dup_id=01a30000-0000-7000-8000-000000000001
dup_desc="{\"id\":\"$dup_id\",\"type\":\"noop\",\"created_at\":\"$now\"}"
itest_redis XADD "$q" '*' d "$dup_desc" n 1 m 3 >/dev/null
itest_redis XADD "$q" '*' d "$dup_desc" n 1 m 3 >/dev/null
check "one attempt delivered twice in a row ends as one row" wait_until 30 rows_equal 1 \
    "job_id = '$dup_id' AND attempt = 1"
itest_redis XADD "$q" '*' d "$dup_desc" n 1 m 3 >/dev/null
old_id=$(head -n 1 "$ITEST_TMP/ids")
itest_redis XADD "$q" '*' d "{\"id\":\"$old_id\",\"type\":\"noop\",\"created_at\":\"$now\"}" \
    n 1 m 3 >/dev/null
check "attempts redelivered after their rows were written are acknowledged" wait_until 30 \
    bash -c "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XLEN '$q') == 0 ]] && [[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XPENDING '$q' workers | head -1) == 0 ]]"
printf '%s\n' '{"type":"exec","params":{"argv":["/usr/bin/printf","%s","a\tb\\c\nd\re \\N é"]}}' \
    '{"type":"exec","max_attempts":1,"params":{"argv":["/usr/bin/printf"],"cwd":"/no\tsuch\\dir\nat\rall"}}' \
    >"$ITEST_TMP/escapes.jsonl"
mapfile -t esc_ids < <("$MAINTQ" submit --batch "$ITEST_TMP/escapes.jsonl")
check "params and result with COPY's special characters are stored exactly" wait_until 30 \
    rows_equal 1 "job_id = '${esc_ids[0]}' AND status = 'ok'
        AND params->'argv'->>2 = E'a\\tb\\\\c\\nd\\re \\\\N \\u00e9'
        AND result->>'output_tail' = params->'argv'->>2"
check "an error text with COPY's special characters is stored exactly" wait_until 30 \
    rows_equal 1 "job_id = '${esc_ids[1]}' AND status = 'dead'
        AND strpos(error, E'params.cwd: \"/no\\tsuch\\\\dir\\nat\\rall\": ') > 0"

# Without the fallback the COPY's unique_violation would count as a refused batch, split
# into single rows (slower) and logged as "postgres rejected a batch"; a badly escaped
# COPY line would be refused the same way (and then stored by the single-row INSERT).
check "no batch was refused on the way (existing rows took the ON CONFLICT path, the escapes went through COPY)" \
    bash -c "! grep -h 'postgres rejected' '$ITEST_TMP'/worker-*.log"

((itest_failures == 0)) || show_worker_logs
itest_done
