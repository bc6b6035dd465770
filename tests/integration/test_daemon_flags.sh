#!/usr/bin/env bash
# Proves that the daemons refuse bad settings before touching any server: each bad flag,
# value or missing connection setting is one line on stderr naming it, and exit 2.
source "$(dirname "$0")/lib.sh"
unset MAINTQ_REDIS_URL MAINTQ_DATABASE_URL

# refused WANT CMD...: exit 2 and exactly one stderr line containing WANT.
refused() {
    local want=$1
    shift
    set +e
    "$@" >"$ITEST_TMP/out" 2>"$ITEST_TMP/err"
    local rc=$?
    set -e
    [[ $rc == 2 ]] || { echo "exit $rc"; cat "$ITEST_TMP/err"; return 1; }
    [[ $(wc -l <"$ITEST_TMP/err") == 1 ]] || { cat "$ITEST_TMP/err"; return 1; }
    grep -qF -- "$want" "$ITEST_TMP/err" || { cat "$ITEST_TMP/err"; return 1; }
}
conn=(--redis-url redis://127.0.0.1:1 --database-url "host=127.0.0.1 port=1")
check "worker: concurrency out of range names the range" refused 'concurrency: "0" is not a number in 1-10000' "$MAINTQ_WORKER" --concurrency 0 "${conn[@]}"
check "worker: procs out of range" refused 'procs: "999" is not a number in 1-256' "$MAINTQ_WORKER" --procs 999 "${conn[@]}"
check "worker: a bad duration" refused 'grace: "soon"' "$MAINTQ_WORKER" --grace soon "${conn[@]}"
check "worker: a relative exec path" refused 'exec_allow: "relative" is not a plain absolute path' "$MAINTQ_WORKER" --exec-allow relative "${conn[@]}"
check "worker: an empty queue name" refused 'queues: "a,,b"' "$MAINTQ_WORKER" --queues a,,b "${conn[@]}"
check "worker: an unknown flag" refused "'--frob'" "$MAINTQ_WORKER" --frob
check "worker: no Redis configured" refused "no Redis: give --redis-url or set MAINTQ_REDIS_URL" "$MAINTQ_WORKER"
printf 'concurrency = 8\nbogus = 1\n' >"$ITEST_TMP/bad.conf"
check "worker: a config file with an unknown setting names file and line" refused \
    "bad.conf\" line 2: bogus: unknown setting" "$MAINTQ_WORKER" --config "$ITEST_TMP/bad.conf" "${conn[@]}"
check "scheduler: an unknown flag" refused "'--frob'" "$MAINTQ_SCHEDULER" --frob
check "scheduler: a bad lease" refused "--lease-ttl" "$MAINTQ_SCHEDULER" --lease-ttl x --schedules "$ITEST_ROOT/ops/schedules"
check "scheduler: a misfire grace that is not a duration" refused \
    "--misfire-grace: expected a duration" "$MAINTQ_SCHEDULER" --misfire-grace soon --schedules "$ITEST_ROOT/ops/schedules"
check "scheduler: a negative misfire grace" refused \
    "--misfire-grace: expected a duration" "$MAINTQ_SCHEDULER" --misfire-grace -1s --schedules "$ITEST_ROOT/ops/schedules"
check "scheduler: a misfire grace below 100ms (ordinary timer delay would be a misfire)" refused \
    "--misfire-grace: expected a duration of at least 100ms" "$MAINTQ_SCHEDULER" --misfire-grace 0 --schedules "$ITEST_ROOT/ops/schedules"
check "scheduler: a misfire grace without its value" refused \
    "--misfire-grace: missing value" "$MAINTQ_SCHEDULER" --schedules "$ITEST_ROOT/ops/schedules" --misfire-grace
itest_done
