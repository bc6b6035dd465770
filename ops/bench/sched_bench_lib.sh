# ops/bench/sched_bench_lib.sh: what the scheduler benchmarks share (source it): a private
# stack in a temporary folder with the migrations applied, the scheduler started on a
# folder of schedules and waited for (lease acquired), polling with deadlines, and cleanup
# on exit. The stack is not .bench/stack, so it never collides with ops/bench/throughput.sh;
# the benchmarks still refuse to run while that one does, because both would measure each
# other on a small machine.
set -euo pipefail
bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$bench_root"
build=${MAINTQ_BUILD_DIR:-build}
maintq=$build/cli/maintq
scheduler=$build/scheduler/maintq-scheduler
[[ -x $maintq && -x $scheduler ]] || {
    echo "build first: meson setup $build && ninja -C $build (or set MAINTQ_BUILD_DIR)" >&2
    exit 2
}
if pgrep -f 'ops/bench/throughput\.sh' >/dev/null; then
    echo "ops/bench/throughput.sh is running: run this benchmark after it" >&2
    exit 2
fi

bench_tmp=$(mktemp -d "${TMPDIR:-/tmp}/maintq-bench.XXXXXX")
# mktemp makes the folder 0700; under root the stack's PostgreSQL user must pass through it.
chmod 711 "$bench_tmp"
sched_pid=
bench_cleanup() {
    # (|| true: wait returns the killed process's 137, which must not end this function
    # under set -e before the stack is stopped)
    [[ -z $sched_pid ]] || { kill -9 "$sched_pid" && wait "$sched_pid"; } 2>/dev/null || true
    MAINTQ_STACK_DIR=$bench_tmp/stack ops/stack destroy >/dev/null 2>&1 || true
    rm -rf "$bench_tmp"
}
trap bench_cleanup EXIT

bench_stack_up() {
    export MAINTQ_STACK_DIR=$bench_tmp/stack
    ops/stack up >"$bench_tmp/stack.log" 2>&1 || { cat "$bench_tmp/stack.log" >&2; exit 1; }
    eval "$(ops/stack env)"
    "$maintq" migrate >/dev/null
}

now_us() { echo "${EPOCHREALTIME/./}"; }
sql() { psql -X -q -A -t -d "$MAINTQ_DATABASE_URL" -c "$1"; }
rcli() { redis-cli --no-auth-warning -u "$MAINTQ_REDIS_URL" "$@"; }

# wait_until SECONDS COMMAND...: polls COMMAND every $poll_interval seconds (default 0.05)
# until it succeeds; fails after SECONDS. Measurements poll slowly: each poll starts a client
# process, which on a small machine competes with the daemon being measured.
wait_until() {
    local deadline=$(($(now_us) + $1 * 1000000))
    shift
    until "$@" >/dev/null 2>&1; do
        (($(now_us) < deadline)) || return 1
        sleep "${poll_interval:-0.05}"
    done
}

# start_scheduler DIR [args...]: starts maintq-scheduler on DIR (log in $bench_tmp) and waits
# until it holds the lease; sets sched_pid.
start_scheduler() {
    local dir=$1
    shift
    "$scheduler" --schedules "$dir" --log-level info "$@" >"$bench_tmp/scheduler.log" 2>&1 &
    sched_pid=$!
    if ! wait_until 120 grep -q "lease acquired" "$bench_tmp/scheduler.log"; then
        echo "the scheduler did not take the lease:" >&2
        tail -n 20 "$bench_tmp/scheduler.log" >&2
        exit 1
    fi
}

# proc_status_kib PID FIELD: a VmHWM/VmRSS-style line of /proc/PID/status, in KiB.
proc_status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# cpu_ticks PID: utime + stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat,
# counted after the command name, which may hold spaces).
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}
