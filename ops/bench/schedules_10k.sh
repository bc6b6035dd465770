#!/usr/bin/env bash
# ops/bench/schedules_10k.sh: the scheduler with 10,000 schedules loaded (issue 4).
#
# Generates COUNT schedules in one file in a temporary folder (the worst case for memory:
# one document of COUNT definitions): noop jobs, six cron forms (plain, seconds field, L,
# nW, n#k, nL) spread over hours and minutes, cycling through six zones (three with DST),
# all in the month six months from now so that none fires during the measurement. On a
# private stack the scheduler loads them, takes the lease and writes every definition to
# maintq.schedules; once all COUNT rows are there it reports
#   - the CPU time the load took (utime + stime of the process until then),
#   - its peak RSS (VmHWM) and resident set (VmRSS) after the load,
#   - the CPU time it uses over IDLE seconds between fires (/proc/PID/stat before and after;
#     the clock tick is 10 ms), and its VmRSS after them.
# Prints Markdown table rows for the README's performance table.
#
# usage: ops/bench/schedules_10k.sh [COUNT (default 10000)] [IDLE-SECONDS (default 60)]
source "$(dirname "$0")/sched_bench_lib.sh"
count=${1:-10000}
idle=${2:-60}
[[ $count =~ ^[1-9][0-9]{0,5}$ && $idle =~ ^[1-9][0-9]{0,4}$ ]] || {
    echo "usage: ops/bench/schedules_10k.sh [COUNT 1-999999] [IDLE-SECONDS 1-99999]" >&2
    exit 2
}

bench_stack_up
mkdir -p "$bench_tmp/schedules"
# Month six months ahead (1-12): no fire can fall in the next few weeks.
month=$(( ($(date -u +%-m) + 5) % 12 + 1 ))
awk -v n="$count" -v mon="$month" 'BEGIN {
    split("UTC America/New_York Europe/London Australia/Lord_Howe Asia/Tokyo Africa/Johannesburg", z, " ")
    split("skip run_once run_all", mf, " ")
    printf "{\"schedules\": [\n"
    for (i = 0; i < n; i++) {
        m = i % 60; h = int(i / 60) % 24; d = i % 28 + 1; k = i % 6
        if (k == 0) cron = sprintf("%d %d %d %d *", m, h, d, mon)
        else if (k == 1) cron = sprintf("%d %d %d %d %d ?", i % 60, m, h, d, mon)
        else if (k == 2) cron = sprintf("%d %d L %d ?", m, h, mon)
        else if (k == 3) cron = sprintf("%d %d %dW %d ?", m, h, d, mon)
        else if (k == 4) cron = sprintf("%d %d ? %d %d#%d", m, h, mon, i % 7, i % 4 + 1)
        else cron = sprintf("%d %d ? %d %dL", m, h, mon, i % 7)
        printf "%s  {\"name\": \"bench-%05d\", \"cron\": \"%s\", \"zone\": \"%s\", \"misfire\": \"%s\",\n", \
            i ? ",\n" : "", i, cron, z[i % 6 + 1], mf[i % 3 + 1]
        printf "   \"description\": \"benchmark schedule %d\",\n", i
        printf "   \"job\": {\"type\": \"noop\", \"queue\": \"bench\", \"timeout_s\": 60}}"
    }
    printf "\n]}\n"
}' >"$bench_tmp/schedules/bench.json"

t0=$(now_us)
start_scheduler "$bench_tmp/schedules"
loaded() { [[ $(sql "SELECT count(*) FROM maintq.schedules") == "$count" ]]; }
wait_until 300 loaded || { echo "the $count definitions did not reach maintq.schedules" >&2; exit 1; }
t1=$(now_us)
hz=$(getconf CLK_TCK)
load_ticks=$(cpu_ticks "$sched_pid")
hwm=$(proc_status_kib "$sched_pid" VmHWM)
rss=$(proc_status_kib "$sched_pid" VmRSS)

c0=$(cpu_ticks "$sched_pid")
sleep "$idle" # the measurement window itself, not a wait for readiness
c1=$(cpu_ticks "$sched_pid")
rss_idle=$(proc_status_kib "$sched_pid" VmRSS)
kill -0 "$sched_pid" || { echo "the scheduler died" >&2; exit 1; }
fired=$(rcli XLEN '{maintq}:q:bench')
[[ $fired == 0 ]] || echo "warning: $fired schedules fired during the measurement" >&2

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo "| schedules | load: wall / CPU (s) | peak RSS VmHWM (MiB) | VmRSS after load / after idle (MiB) | CPU over ${idle} s idle (ms) |"
echo "|---|---|---|---|---|"
printf '| %d (one file) | %s / %s | %s | %s / %s | %d (%s%% of a core) |\n' "$count" \
    "$(awk -v u=$((t1 - t0)) 'BEGIN { printf "%.1f", u / 1e6 }')" \
    "$(awk -v t="$load_ticks" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')" \
    "$(mib "$hwm")" "$(mib "$rss")" "$(mib "$rss_idle")" \
    $(((c1 - c0) * 1000 / hz)) \
    "$(awk -v t=$((c1 - c0)) -v hz="$hz" -v s="$idle" 'BEGIN { printf "%.3f", 100 * t / hz / s }')"
