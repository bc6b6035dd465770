#!/usr/bin/env bash
# ops/bench/throughput.sh: the job pipeline's throughput benchmark (issue 3).
#
# On a private stack (ops/stack under .bench/stack), for --procs 1 and --procs 2:
#   1. submit rate: N noop jobs with `maintq submit --batch`, no worker running;
#   2. end-to-end: start the worker and time until all N rows are committed in Postgres
#      and every entry is acknowledged (stream empty, nothing pending);
#   3. latency, submit to result: each row's commit time (job_runs.created_at, the
#      transaction's start) minus its submit time (the UUIDv7 id's millisecond), over a
#      paced run of M jobs submitted in batches of 500 while the worker runs;
#   4. peak RSS (VmHWM) of each worker child after the run.
# Prints one Markdown table row per --procs value, for the README's performance table.
#
# usage: ops/bench/throughput.sh [N (default 100000)] [M (default 20000)]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
n=${1:-100000}
m=${2:-20000}
build=${MAINTQ_BUILD_DIR:-build}
maintq=$build/cli/maintq
worker=$build/workers/maintq-worker
[[ -x $maintq && -x $worker ]] || { echo "build first: meson setup $build && ninja -C $build" >&2; exit 2; }

export MAINTQ_STACK_DIR=$root/.bench/stack
ops/stack up >/dev/null
eval "$(ops/stack env)"
"$maintq" migrate >/dev/null
tmp=$(mktemp -d)
worker_pid=
cleanup() {
    [[ -n $worker_pid ]] && kill -9 "$worker_pid" $(pgrep -P "$worker_pid") 2>/dev/null
    rm -rf "$tmp"
    ops/stack down >/dev/null 2>&1 || true
}
trap cleanup EXIT

now_us() { echo "${EPOCHREALTIME/./}"; }
sql() { psql -X -q -A -t -d "$MAINTQ_DATABASE_URL" -c "$1"; }
rcli() { redis-cli --no-auth-warning -u "$MAINTQ_REDIS_URL" "$@"; }
# The queue stream is empty here (every run ends with it drained) and is kept: deleting it
# would delete the consumer group too, and a running worker would spend its NOGROUP
# retries recreating it, which would show up as latency.
reset() {
    sql "TRUNCATE maintq.job_runs" >/dev/null
    rcli DEL '{maintq}:delayed' '{maintq}:dead' >/dev/null
}
# Waits until every entry is acknowledged (acks follow commits, so then every row is in),
# polling Redis: a count(*) on the growing table every few ms would itself load Postgres.
wait_rows() {
    while [[ $(rcli XLEN '{maintq}:q:default') != 0 ]]; do sleep 0.01; done
    local got
    got=$(sql "SELECT count(*) FROM maintq.job_runs")
    [[ $got == "$1" ]] || { echo "expected $1 rows, found $got" >&2; exit 1; }
}
for ((i = 0; i < n; i++)); do echo '{"type":"noop"}'; done >"$tmp/jobs"
head -n 500 "$tmp/jobs" >"$tmp/chunk"

echo "| worker processes | submits/s | end-to-end jobs/s | latency p50 / p99 (ms) | peak RSS per child (MiB) |"
echo "|---|---|---|---|---|"
for procs in 1 2; do
    reset
    t0=$(now_us)
    "$maintq" submit --batch "$tmp/jobs" >/dev/null
    t1=$(now_us)
    submit_rate=$((n * 1000000 / (t1 - t0)))

    "$worker" --procs "$procs" --concurrency 64 --log-level warn >"$tmp/worker.log" 2>&1 &
    worker_pid=$!
    t2=$(now_us)
    wait_rows "$n"
    t3=$(now_us)
    e2e_rate=$((n * 1000000 / (t3 - t2)))

    # Paced latency run: batches of 500 every 50 ms (about 10,000 jobs/s offered).
    reset
    for ((i = 0; i < m / 500; i++)); do
        "$maintq" submit --batch "$tmp/chunk" >/dev/null
        sleep 0.05
    done
    wait_rows "$m"
    lat=$(sql "WITH l AS (SELECT extract(epoch FROM created_at) * 1000
                 - ('x' || substr(replace(job_id::text, '-', ''), 1, 12))::bit(48)::bigint AS ms
               FROM maintq.job_runs)
               SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' / ' ||
                      round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM l")
    rss=""
    for c in $(pgrep -P "$worker_pid"); do
        kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$c/status")
        rss+="$(awk -v k="$kb" 'BEGIN {printf "%.1f", k / 1024}') "
    done
    kill -TERM "$worker_pid"
    wait "$worker_pid" || true
    worker_pid=
    echo "| $procs | $submit_rate | $e2e_rate | $lat | ${rss% } |"
done
