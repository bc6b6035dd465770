# tests/integration/lib.sh: the harness every integration test sources. It gives the test a
# temporary folder, a private Redis + PostgreSQL (ops/stack with MAINTQ_STACK_DIR inside
# that folder, so tests never share state), and removes both on exit, whatever happened.
# A test states what it proves with `check "what it proves" cmd...`, which prints
# "ok - ..." or "not ok - ..." (with the command's output on failure), waits for conditions
# with `wait_until SECONDS cmd...` (polling, never a fixed sleep), and ends with
# `itest_done`, which exits non-zero when any check failed.
#
# Variables for the test: MAINTQ, MAINTQ_SCHEDULER, MAINTQ_WORKER (the binaries of the
# build under test), ITEST_TMP (scratch folder), ITEST_ROOT (source tree), MAINTQ_STACK
# (the ops/stack script, for redis-stop, pg-start and friends) and, after itest_stack_up,
# MAINTQ_REDIS_URL and MAINTQ_DATABASE_URL.
set -euo pipefail

ITEST_ROOT=${MAINTQ_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
: "${MAINTQ_BUILD_ROOT:?run integration tests through meson test (MAINTQ_BUILD_ROOT unset)}"
MAINTQ=$MAINTQ_BUILD_ROOT/cli/maintq
MAINTQ_SCHEDULER=$MAINTQ_BUILD_ROOT/scheduler/maintq-scheduler
MAINTQ_WORKER=$MAINTQ_BUILD_ROOT/workers/maintq-worker
MAINTQ_STACK=$ITEST_ROOT/ops/stack
export MAINTQ_STACK

ITEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/maintq-itest.XXXXXX")
# mktemp makes the folder 0700: under root, the stack's PostgreSQL user must be able to
# pass through it to reach its own 0700 cluster folder inside.
chmod 711 "$ITEST_TMP"
itest_checks=0
itest_failures=0
itest_stack_started=0
itest_cleanups=()

# Runs "$@" when the test exits (in reverse order of registration), e.g. to stop a daemon.
itest_on_exit() { itest_cleanups+=("$*"); }

itest_teardown() {
    local i
    set +e
    for ((i = ${#itest_cleanups[@]} - 1; i >= 0; i--)); do
        eval "${itest_cleanups[i]}" >/dev/null 2>&1
    done
    if ((itest_stack_started)); then
        "$MAINTQ_STACK" destroy >/dev/null 2>&1
    fi
    rm -rf "$ITEST_TMP"
}
trap itest_teardown EXIT
trap 'exit 130' INT TERM

# Starts the test's private stack and exports its URLs; then applies the migrations,
# unless called with --no-migrate.
itest_stack_up() {
    export MAINTQ_STACK_DIR=$ITEST_TMP/stack
    itest_stack_started=1
    if ! "$MAINTQ_STACK" up >"$ITEST_TMP/stack-up.log" 2>&1; then
        sed 's/^/# /' "$ITEST_TMP/stack-up.log"
        echo "not ok - the private stack starts"
        exit 1
    fi
    eval "$("$MAINTQ_STACK" env)"
    export MAINTQ_REDIS_URL MAINTQ_DATABASE_URL
    if [[ ${1:-} != --no-migrate ]]; then
        if ! "$MAINTQ" migrate >"$ITEST_TMP/migrate.log" 2>&1; then
            sed 's/^/# /' "$ITEST_TMP/migrate.log"
            echo "not ok - maintq migrate prepares the database"
            exit 1
        fi
    fi
}

# check "what it proves" cmd...: runs cmd; its output is shown only when it fails.
check() {
    local what=$1 out=$ITEST_TMP/check.out
    shift
    itest_checks=$((itest_checks + 1))
    if "$@" >"$out" 2>&1; then
        echo "ok - $what"
    else
        echo "not ok - $what"
        sed 's/^/#   /' "$out"
        itest_failures=$((itest_failures + 1))
    fi
}

# equals A B: for check; says what it got when A is not B.
equals() {
    if [[ $1 == "$2" ]]; then return 0; fi
    echo "expected '$2', got '$1'"
    return 1
}

# fails cmd...: succeeds when cmd fails (for check "... is refused" fails cmd ...).
fails() { ! "$@"; }

# wait_until SECONDS cmd...: polls cmd every 50 ms until it succeeds (returns 0) or
# SECONDS pass (returns 1).
wait_until() {
    local limit_us=$(($1 * 1000000)) start now
    shift
    start=${EPOCHREALTIME/./}
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        now=${EPOCHREALTIME/./}
        ((now - start < limit_us)) || return 1
        sleep 0.05
    done
}

# Microseconds on the wall clock, for timing a command.
itest_now_us() { echo "${EPOCHREALTIME/./}"; }

# SQL against the test's database: unaligned, tuples only, stops at the first error.
itest_psql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$MAINTQ_DATABASE_URL" -c "$1"; }

# redis-cli against the test's Redis.
itest_redis() { redis-cli --no-auth-warning -u "$MAINTQ_REDIS_URL" "$@"; }

itest_done() {
    # A sanitizer report in any daemon's log is a failure even when the test's checks
    # passed: a worker child that aborted is restarted and the jobs may still finish.
    local reports
    reports=$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$ITEST_TMP"/*.log 2>/dev/null || true)
    itest_checks=$((itest_checks + 1))
    if [[ -n $reports ]]; then
        echo "not ok - no sanitizer report in the daemons' logs"
        grep -h -A12 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' $reports | sed 's/^/#   /' | head -60
        itest_failures=$((itest_failures + 1))
    else
        echo "ok - no sanitizer report in the daemons' logs"
    fi
    echo "# $itest_checks checks, $itest_failures failed"
    if ((itest_failures > 0 || itest_checks == 0)); then
        exit 1
    fi
    exit 0
}
