#!/usr/bin/env bash
# Proves the command line's contract without servers: `maintq --help` and every command's
# --help exist and exit 0; an unknown command or flag, and a bad cron expression or zone,
# exit 2 with exactly one line on stderr and nothing on stdout; `maintq cron next` prints
# the exact RFC 3339 UTC instants (a DST gap in New York, a leap day, a 6-field expression).
source "$(dirname "$0")/lib.sh"

check "maintq --help lists the commands and exits 0" bash -c "'$MAINTQ' --help | grep -q '^  submit '"
for cmd in submit status results dlq workers schedules cron migrate; do
    check "maintq $cmd --help prints its usage and exits 0" bash -c "'$MAINTQ' $cmd --help | grep -q '^usage: maintq $cmd'"
done

# usage_error WANT ARGS...: exit 2, one stderr line containing WANT, empty stdout.
usage_error() {
    local want=$1
    shift
    set +e
    "$MAINTQ" "$@" >"$ITEST_TMP/out" 2>"$ITEST_TMP/err"
    local rc=$?
    set -e
    [[ $rc == 2 ]] || { echo "exit $rc"; cat "$ITEST_TMP/err"; return 1; }
    [[ $(wc -l <"$ITEST_TMP/err") == 1 ]] || { cat "$ITEST_TMP/err"; return 1; }
    grep -qF -- "$want" "$ITEST_TMP/err" || { cat "$ITEST_TMP/err"; return 1; }
    [[ ! -s $ITEST_TMP/out ]] || { echo "stdout:"; cat "$ITEST_TMP/out"; return 1; }
}
check "an unknown command exits 2 naming it" usage_error "unknown command 'frobnicate'" frobnicate
check "an unknown global flag exits 2 naming it" usage_error "unknown option '--frob'" --frob
for cmd in submit status results 'dlq list' workers 'schedules list' cron migrate; do
    check "maintq $cmd with an unknown flag exits 2" usage_error "--no-such-flag" $cmd --no-such-flag
done
check "cron next names the field of a bad expression" usage_error "day-of-week: 8 is out of range 0-7" cron next '0 0 * * 8'
check "cron next rejects a field count other than 5 or 6" usage_error "" cron next '* * *'
check "cron next rejects an unknown zone" usage_error "Mars/Olympus" cron next '0 2 * * *' --tz Mars/Olympus
check "cron next rejects a path as a zone" usage_error "" cron next '0 2 * * *' --tz ../../etc/passwd
check "cron next rejects a bad --from" usage_error "--from" cron next '0 2 * * *' --from yesterday

check "02:30 in New York across the spring-forward gap fires at 03:00 EDT" equals \
    "$("$MAINTQ" cron next '30 2 * * *' --tz America/New_York --from 2026-03-07T00:00:00Z --count 3 | tr '\n' ' ')" \
    "2026-03-07T07:30:00Z 2026-03-08T07:00:00Z 2026-03-09T06:30:00Z "
check "the last day of February in a leap year" equals \
    "$("$MAINTQ" cron next '0 0 L 2 *' --from 2027-06-01T00:00:00Z --count 2 | tr '\n' ' ')" \
    "2028-02-29T00:00:00Z 2029-02-28T00:00:00Z "
check "six fields: seconds first, fractional --from with an offset" equals \
    "$("$MAINTQ" cron next '*/20 * * * * *' --from 2026-01-01T01:00:00.5+01:00 --count 3 | tr '\n' ' ')" \
    "2026-01-01T00:00:20Z 2026-01-01T00:00:40Z 2026-01-01T00:01:00Z "
check "the first Saturday 01:00 SAST is 23:00Z the day before" equals \
    "$("$MAINTQ" cron next '0 1 * * 6#1' --tz Africa/Johannesburg --from 2026-11-22T00:00:00Z)" \
    "2026-12-04T23:00:00Z"
check "schedules check accepts the example schedules" bash -c "'$MAINTQ' schedules check '$ITEST_ROOT'/ops/schedules/*.json | grep -q '^ok: '"

itest_done
