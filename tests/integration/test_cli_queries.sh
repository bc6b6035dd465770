#!/usr/bin/env bash
# Proves the query commands of maintq against a private Redis and PostgreSQL, with rows and
# dead letters made by a real maintq-worker from jobs submitted with maintq submit:
# `status` finds a job queued (with its position), delayed, running on a consumer,
# retrying after a failed attempt, dead in the dead letter, finished (exit code of its
# result), or unknown (exit 3); `results` filters by type, queue, status, since and limit,
# newest first, as a table and as JSON lines; `dlq list/show/retry/purge` (one entry, and
# --all) act on the dead letter and retry puts a job back on its queue; `workers` reports
# stream lengths, pending, lag, consumers, the delayed set and the dead letter; bad flags
# and arguments exit 2 with one line.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v jq >/dev/null || {
    echo "not ok - jq is installed (apt-get install jq)"
    exit 1
}

itest_stack_up

qout=$ITEST_TMP/query.out  # not "out": lib.sh check() has a local of that name

# expect CODE PATTERN cmd...: cmd exits with CODE and its output (stdout and stderr)
# matches the extended regular expression PATTERN ("" = any output).
expect() {
    local code=$1 pattern=$2 rc=0
    shift 2
    "$@" >"$qout" 2>&1 || rc=$?
    cat "$qout"
    if [[ $rc != "$code" ]]; then
        echo "# exit code $rc, expected $code"
        return 1
    fi
    [[ -z $pattern ]] || grep -qE -- "$pattern" "$qout"
}

# json FILTER cmd...: cmd exits 0 and jq FILTER, applied to the array of every JSON value
# cmd printed (one object, or JSON lines), is true.
json() {
    local filter=$1
    shift
    "$@" >"$qout" || return 1
    cat "$qout"
    jq -e -s "$filter" "$qout" >/dev/null
}

# one_line cmd...: cmd exits 2 and prints exactly one line, on stderr, and nothing on stdout.
one_line_usage_error() {
    local rc=0
    "$@" >"$qout.stdout" 2>"$qout" || rc=$?
    cat "$qout.stdout" "$qout"
    [[ $rc == 2 && ! -s $qout.stdout && $(wc -l <"$qout") == 1 ]]
}

submit() { "$MAINTQ" submit "$@"; }

worker_pid=
start_worker() {
    "$MAINTQ_WORKER" --procs 1 --queues default,other >>"$ITEST_TMP/worker.log" 2>&1 &
    worker_pid=$!
}
stop_worker() {
    kill -TERM "$worker_pid"
    wait "$worker_pid" || true
    worker_pid=
}
# shellcheck disable=SC2016 # expanded at exit, when the worker may still run
itest_on_exit '[[ -n $worker_pid ]] && kill -KILL $worker_pid'

# --- bad usage --------------------------------------------------------------------------
for args in "status --bogus" "status" "status not-a-uuid" "results --limit 0" \
    "results --limit 10001" "results --since yesterday" "results --limit" "results extra" \
    "dlq" "dlq frob" "dlq list --frob" "dlq show" "dlq retry" "dlq retry 1-0 --all" \
    "dlq purge not-an-id" "workers --x"; do
    # shellcheck disable=SC2086 # the words are the arguments
    check "maintq $args: exit 2 with one line" one_line_usage_error "$MAINTQ" $args
done
check "a bad --status names the allowed statuses" \
    expect 2 'ok, warning, critical, failed, timeout, cancelled, dead, skipped, missed_window' \
    "$MAINTQ" results --status fine
for c in status results dlq workers; do
    check "maintq $c --help prints its usage and exits 0" \
        expect 0 "^usage: maintq $c" "$MAINTQ" "$c" --help
done

# --- before any worker: unknown, queued, delayed ----------------------------------------
check "an unknown job id exits 3 saying so" \
    expect 3 'unknown job id' "$MAINTQ" status 01a20000-0000-7000-8000-000000000001
q1=$(submit noop)
q2=$(submit noop)
q3=$(submit noop --queue other)
d1=$(submit noop --delay 1h)
check "the first waiting job is queued at position ~1" \
    expect 0 "queued in default \(position ~1," "$MAINTQ" status "$q1"
check "the second waiting job is queued at position ~2" \
    expect 0 "queued in default \(position ~2," "$MAINTQ" status "$q2"
check "a job of another queue is found in that queue" \
    expect 0 "queued in other \(position ~1," "$MAINTQ" status "$q3"
check "status --json of a queued job is one object with status queued" \
    json 'length == 1 and .[0].status == "queued" and .[0].queue == "default" and .[0].position == 2' \
    "$MAINTQ" status --json "$q2"
check "an upper-case id finds the same job" \
    expect 0 "queued in default" "$MAINTQ" status "${q1^^}"
# delayed_about_an_hour ID: status says "delayed until T" with T within a minute of now+1h.
delayed_about_an_hour() {
    local t
    expect 0 'delayed until ' "$MAINTQ" status "$1" || return 1
    t=$(grep -oE 'delayed until [0-9T:-]+Z' "$qout" | cut -d' ' -f3)
    t=$(date -u -d "$t" +%s) || return 1
    (( t - $(date +%s) > 3540 && t - $(date +%s) <= 3600 ))
}
check "a delayed submit is delayed until an hour from now" delayed_about_an_hour "$d1"
# shellcheck disable=SC2016 # $w is jq's
check "workers --json: lengths of both queues, lag without a consumer group, delayed, dead" \
    json '.[0] as $w | ($w.queues | map({(.queue): [.length, .pending, .lag]}) | add) ==
            {"default": [2, 0, 2], "other": [1, 0, 1]} and $w.delayed == 1 and $w.dead == 0' \
    "$MAINTQ" workers --json
check "workers prints a table of queues, the delayed set and the dead letter" \
    expect 0 'dead letter +0' "$MAINTQ" workers

# --- a worker runs noop, fail and sleep jobs --------------------------------------------
# Deadlines below are generous (retries wait out a backoff of up to a few seconds, and the
# sanitized daemons on a loaded machine start slowly); wait_until returns at once when met.
printf '%s\n' '{"type":"fail","params":{"times":9},"max_attempts":3,"backoff":{"base_s":3600,"max_s":3600}}' \
    >"$ITEST_TMP/retrying.json"
start_worker
f1=$(submit fail times=9 --attempts 2)
r1=$(submit --file "$ITEST_TMP/retrying.json")
s1=$(submit sleep seconds=4)
check "a sleep job shows as running on the worker's consumer (host:pid)" \
    wait_until 30 expect 0 "running on [^ ]+:[0-9]+ since [0-9T:-]+Z" "$MAINTQ" status "$s1"
check "workers shows the running job pending on one consumer" \
    wait_until 5 json '.[0].queues[] | select(.queue == "default") | .pending == 1 and
            (.consumers | map(select(.pending == 1)) | length == 1)' "$MAINTQ" workers --json
check "a queued job finishes ok and status exits 0 with its result" \
    wait_until 30 expect 0 'status +ok' "$MAINTQ" status "$q1"
check "status --json of a finished job carries its final status" \
    json '.[0].status == "ok" and .[0].job_id == "'"$q1"'"' "$MAINTQ" status --json "$q1"
check "a job whose first attempt failed is retrying, with the error and the next time" \
    wait_until 30 expect 0 'retrying: attempt 1 failed: .*planned failures.*, next attempt delayed until' \
    "$MAINTQ" status "$r1"
check "a job that used its attempts is dead, status exits 3 naming the dead letter entry" \
    wait_until 45 expect 3 "dead: .*after 2 attempts" "$MAINTQ" status "$f1"
check "status of a dead job names its dead letter entry" \
    expect 3 "dead letter entry [0-9]+-[0-9]+" "$MAINTQ" status "$f1"
check "the sleep job finishes ok" wait_until 30 expect 0 'status +ok' "$MAINTQ" status "$s1"

# --- results ------------------------------------------------------------------------------
check "all seven attempts are recorded" \
    wait_until 30 json 'length == 7' "$MAINTQ" results --json
check "results --type noop lists the three noop runs (no delayed one)" \
    json 'length == 3 and all(.type == "noop" and .status == "ok")' \
    "$MAINTQ" results --type noop --json
check "results --status dead gives the dead attempt only" \
    json 'length == 1 and .[0].job_id == "'"$f1"'" and .[0].attempt == 2' \
    "$MAINTQ" results --status dead --json
check "results --queue other gives the other queue's job only" \
    json 'length == 1 and .[0].job_id == "'"$q3"'"' "$MAINTQ" results --queue other --json
check "results --type fail --status failed gives the two first attempts" \
    json 'length == 2 and all(.attempt == 1 and .status == "failed")' \
    "$MAINTQ" results --type fail --status failed --json
check "results --json is newest first, with duration, worker and error" \
    json 'length == 7 and ([.[].finished_at] == ([.[].finished_at] | sort | reverse)) and
            all(has("duration_ms") and has("worker") and has("error") and has("result"))' \
    "$MAINTQ" results --json
check "results --limit 2 gives two rows" json 'length == 2' "$MAINTQ" results --limit 2 --json
check "results --since an RFC 3339 time in the past gives every row" \
    json 'length == 7' "$MAINTQ" results --since 2000-01-01T00:00:00Z --json
check "results --since a time in the future gives nothing" \
    json 'length == 0' "$MAINTQ" results --since "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)" --json
check "results --since 1h includes them" json 'length == 7' "$MAINTQ" results --since 1h --json
check "the results table has a header" \
    expect 0 "^FINISHED +JOB +TYPE +QUEUE +STATUS +ATTEMPT +MS +ERROR$" "$MAINTQ" results
check "the results table has the dead attempt with its error, shortened" \
    expect 0 "^[0-9T:-]+Z +$f1 +fail +default +dead +2 +[0-9]+ +failed after 2 attempts.{20,40}\.\.\.$" \
    "$MAINTQ" results

# --- the dead letter --------------------------------------------------------------------
"$MAINTQ" dlq list --json >"$qout" || true
e1=$(jq -r 'select(.job_id == "'"$f1"'") | .entry_id' "$qout")
check "dlq list --json has the dead job with its type, queue and attempts" \
    json 'length == 1 and .[0].job_id == "'"$f1"'" and .[0].type == "fail" and
            .[0].queue == "default" and .[0].attempts == 2 and (.[0].error | test("planned"))' \
    "$MAINTQ" dlq list --json
check "dlq list shows the entry as a table row" \
    expect 0 "^$e1 +[0-9T:-]+Z +default +fail +$f1 +2 " "$MAINTQ" dlq list
check "dlq show pretty-prints the descriptor" \
    expect 0 "^  \"id\": \"$f1\"," "$MAINTQ" dlq show "$e1"
check "dlq show --json has the descriptor as an object" \
    json '.[0].descriptor.params.times == 9 and .[0].entry_id == "'"$e1"'"' \
    "$MAINTQ" dlq show --json "$e1"
check "dlq show of a missing entry exits 3" expect 3 'no dead letter entry' \
    "$MAINTQ" dlq show 1-0

stop_worker
check "dlq retry puts the entry back on its queue and prints the new entry id" \
    expect 0 "^$e1 requeued as [0-9]+-[0-9]+$" "$MAINTQ" dlq retry "$e1"
check "the retried job is queued again, noted as a dlq retry" \
    expect 0 "queued in default .*attempt 3 of 4" "$MAINTQ" status "$f1"
check "the retried job's entry is noted as a dlq retry" \
    expect 0 "note: dlq retry of $e1" "$MAINTQ" status "$f1"
check "a retried entry has left the dead letter" json 'length == 0' "$MAINTQ" dlq list --json
check "retrying the same entry again exits 3" expect 3 "no dead letter entry $e1" \
    "$MAINTQ" dlq retry "$e1"

f2=$(submit fail times=9 --attempts 1)
start_worker
check "the worker runs the retried job into the dead letter again, next to a new dead job" \
    wait_until 45 json 'map(.job_id) | sort == (["'"$f1"'", "'"$f2"'"] | sort)' \
    "$MAINTQ" dlq list --json
stop_worker
check "dlq retry --all requeues every entry" expect 0 '^2 requeued, 0 failed$' \
    "$MAINTQ" dlq retry --all
check "workers counts the two requeued entries as waiting in default" \
    json '.[0].dead == 0 and (.[0].queues[] | select(.queue == "default") | .lag == 2)' \
    "$MAINTQ" workers --json
start_worker
check "both die again" wait_until 45 json 'length == 2' "$MAINTQ" dlq list --json
stop_worker

"$MAINTQ" dlq list --json >"$qout" || true
e2=$(jq -r 'select(.job_id == "'"$f2"'") | .entry_id' "$qout")
check "dlq purge ENTRY deletes that entry" expect 0 "^purged $e2$" "$MAINTQ" dlq purge "$e2"
check "the purged entry is gone, the other stays" \
    json 'length == 1 and .[0].job_id == "'"$f1"'"' "$MAINTQ" dlq list --json
check "purging it again exits 3" expect 3 "no dead letter entry $e2" "$MAINTQ" dlq purge "$e2"
check "dlq purge --all deletes the rest and says how many" \
    expect 0 '^purged 1 entries$' "$MAINTQ" dlq purge --all
check "the dead letter is empty afterwards" expect 0 'the dead letter is empty' \
    "$MAINTQ" dlq list
check "a job purged from the dead letter shows its recorded dead attempt (exit 3)" \
    expect 3 'status +dead' "$MAINTQ" status "$f2"

# --- workers after the runs -----------------------------------------------------------------
check "workers lists each consumer that ran jobs with its pending count and idle time" \
    expect 0 "consumer [^ ]+:[0-9]+ +pending +0 +idle [0-9]" "$MAINTQ" workers
check "workers --json: the delayed set holds the retrying job and the delayed submit" \
    json '.[0].delayed == 2 and .[0].dead == 0' "$MAINTQ" workers --json

itest_done
