#!/usr/bin/env bash
# ops/bench/fire_precision.sh: how close to its second the scheduler enqueues a tick (issue 4).
#
# On a private stack, one maintq-scheduler runs one `* * * * * *` schedule. Once it holds the
# lease, the first tick is left out (it may come from the election path rather than the
# timer) and the next TICKS entries of the stream are measured: precision = the time Redis
# added the entry (the millisecond part of the stream entry id, Redis's own clock) minus the
# tick's scheduled second (the millisecond part of the job id, which the scheduler derives
# from the fire time). That span holds the timer's wake-up, building and signing nothing but
# the descriptor, and the fire script's round trip. Prints p50 / p99 / max (and min, which
# would be negative if a tick were ever enqueued early) as a Markdown table row.
#
# usage: ops/bench/fire_precision.sh [TICKS (default 120)]
source "$(dirname "$0")/sched_bench_lib.sh"
ticks=${1:-120}
[[ $ticks =~ ^[1-9][0-9]{0,4}$ ]] || { echo "usage: ops/bench/fire_precision.sh [TICKS]" >&2; exit 2; }

bench_stack_up
mkdir -p "$bench_tmp/schedules"
cat >"$bench_tmp/schedules/precision.json" <<'JSON'
{"name": "precision-every-second", "cron": "* * * * * *", "misfire": "skip",
 "job": {"type": "noop", "queue": "precision", "timeout_s": 10}}
JSON
start_scheduler "$bench_tmp/schedules"
enough() { (($(rcli XLEN '{maintq}:q:precision') >= ticks + 1)); }
poll_interval=2 wait_until $((ticks + 30)) enough || { echo "fewer than $((ticks + 1)) ticks arrived" >&2; exit 1; }
{ kill -TERM "$sched_pid" && wait "$sched_pid"; } 2>/dev/null || true
sched_pid=

# XRANGE prints each entry as its id, then field/value lines; the descriptor follows "d".
rcli XRANGE '{maintq}:q:precision' - + COUNT $((ticks + 1)) | awk '
    /^[0-9]+-[0-9]+$/ { split($0, id, "-"); entry_ms = id[1]; next }
    prev == "d" {
        # (mawk has no {n} repetition: the UUID'"'"'s first 13 characters, spelled out)
        if (match($0, /"id":"[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]/)) {
            hex = substr($0, RSTART + 6, 8) substr($0, RSTART + 15, 4)
            print entry_ms, hex
        }
    }
    { prev = $0 }' | tail -n "$ticks" >"$bench_tmp/pairs"
[[ $(wc -l <"$bench_tmp/pairs") == "$ticks" ]] || { echo "could not read $ticks entries" >&2; exit 1; }
while read -r entry_ms hex; do
    echo $((entry_ms - 16#$hex))
done <"$bench_tmp/pairs" | sort -n >"$bench_tmp/lat"

# Nearest-rank percentiles over the sorted list.
rank() { sed -n "$(((${1} * ticks + 99) / 100))p" "$bench_tmp/lat"; }
if [[ -n ${BENCH_VERBOSE:-} ]]; then
    echo "lateness (ms): count" >&2
    uniq -c "$bench_tmp/lat" | awk '{ print $2 ": " $1 }' >&2
fi
echo "| measure | ticks | p50 (ms) | p99 (ms) | max (ms) | min (ms) |"
echo "|---|---|---|---|---|---|"
echo "| fire precision, \`* * * * * *\`: stream entry time - scheduled second | $ticks | $(rank 50) | $(rank 99) | $(tail -1 "$bench_tmp/lat") | $(head -1 "$bench_tmp/lat") |"
