#!/usr/bin/env bash
# Proves what happens to the maintq.schedules row of a schedule that leaves the schedule
# files: a row no loaded file defines is marked removed once the scheduler leads (the load at
# start-up comes before the lease); after a file is deleted and the leader reloads (SIGHUP),
# its schedules' rows are marked removed (removed_at set), `schedules list` hides them,
# `list --all` shows them with the time, `show` says so, run-now refuses them, and their fires
# in schedule_fires stay; a standby whose folder lacks the file changes no mark; when the
# file comes back and the leader reloads, the mark is cleared and list shows them again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sched_lib.sh"

d=$ITEST_TMP/schedules
mkdir -p "$d"
cat >"$d/keep.json" <<'JSON'
{"name": "sr-keep", "cron": "0 0 1 1 *", "job": {"type": "noop", "queue": "sr-keep"}}
JSON
cat >"$ITEST_TMP/gone.json" <<'JSON'
{"schedules": [
 {"name": "sr-gone", "cron": "* * * * * *", "job": {"type": "noop", "queue": "sr-gone"}},
 {"name": "sr-gone-2", "cron": "0 0 1 1 *", "job": {"type": "noop", "queue": "sr-gone"}}
]}
JSON
cp "$ITEST_TMP/gone.json" "$d/gone.json"

itest_stack_up
# A row left by an earlier deployment, defined by no file any more.
itest_psql "INSERT INTO maintq.schedules (name, cron, definition)
            VALUES ('sr-stale', '0 0 1 1 *', '{\"name\": \"sr-stale\"}')"

removed_at() { itest_psql "SELECT coalesce(removed_at::text, 'null') FROM maintq.schedules WHERE name = '$1'"; }
is_removed() { [[ $(removed_at "$1") != null ]]; }
is_defined() { [[ $(removed_at "$1") == null ]]; }
both_removed() { is_removed sr-gone && is_removed sr-gone-2; }
both_defined() { is_defined sr-gone && is_defined sr-gone-2; }
listed() { "$MAINTQ" schedules list "$@" | awk 'NR > 1 {print $1}' | tr '\n' ' '; }

start_scheduler "$d" --lease-ttl 2s
check "the scheduler leads" wait_until 10 grep -q "lease acquired" "$SCHED_LOG"
check "a row that no file defines is marked removed once the scheduler leads" \
    wait_until 10 is_removed sr-stale
check "the loaded schedules are not marked" bash -c \
    "[[ \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c \"SELECT count(*) FROM maintq.schedules
       WHERE name IN ('sr-keep', 'sr-gone', 'sr-gone-2') AND removed_at IS NULL\") == 3 ]]"
check "sr-gone fires" wait_until 10 bash -c \
    "(( \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c \"SELECT count(*) FROM maintq.schedule_fires WHERE schedule = 'sr-gone'\") >= 2 ))"
check "schedules list shows the defined schedules only" equals "$(listed)" "sr-gone sr-gone-2 sr-keep "

rm "$d/gone.json"
kill -HUP "$SCHED_PID"
check "after the file is deleted and the leader reloads, its schedules are marked removed" \
    wait_until 10 both_removed
check "the kept schedule is not marked" is_defined sr-keep
fires_then=$(itest_psql "SELECT count(*) FROM maintq.schedule_fires WHERE schedule = 'sr-gone'")
check "the removed schedule's fires stay in schedule_fires" test "$fires_then" -ge 2
check "schedules list hides removed schedules" equals "$(listed)" "sr-keep "
check "schedules list --all shows them, with the time they were removed" bash -c \
    "'$MAINTQ' schedules list --all | grep -E '^sr-gone ' | grep -qE ' [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\$'"
check "schedules list --all names every row" equals "$(listed --all)" "sr-gone sr-gone-2 sr-keep sr-stale "
check "schedules list --all --json carries removed_at" equals \
    "$("$MAINTQ" schedules list --all --json | grep -c '"removed_at":null')" 1
check "schedules show of a removed schedule says so" bash -c \
    "'$MAINTQ' schedules show sr-gone | grep -q '^removed: .*no longer in the schedule files'"
check "run-now of a removed schedule is refused" fails "$MAINTQ" schedules run-now sr-gone-2
check "and recorded no fire" equals \
    "$(itest_psql "SELECT count(*) FROM maintq.schedule_fires WHERE schedule = 'sr-gone-2'")" 0

# A standby with an older folder (here: with a changed sr-keep and without gone.json, but
# with gone.json's schedules restored below) records its definitions but no removal.
sd=$ITEST_TMP/standby
mkdir -p "$sd"
cat >"$sd/keep.json" <<'JSON'
{"name": "sr-keep", "cron": "0 0 1 1 *", "description": "from the standby",
 "job": {"type": "noop", "queue": "sr-keep"}}
JSON
cp "$ITEST_TMP/gone.json" "$sd/gone.json"
leader_pid=$SCHED_PID
start_scheduler "$sd" --lease-ttl 2s
check "a standby's load records its definitions" wait_until 10 bash -c \
    "[[ \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c \"SELECT definition->>'description' FROM maintq.schedules WHERE name = 'sr-keep'\") == 'from the standby' ]]"
check "but does not unmark what the leader marked removed" is_removed sr-gone
check "the standby does not lead" fails grep -q "lease acquired" "$SCHED_LOG"
check "the standby stops on SIGTERM" stop_scheduler "$SCHED_PID"

cp "$ITEST_TMP/gone.json" "$d/gone.json"
kill -HUP "$leader_pid"
check "when the file comes back and the leader reloads, the mark is cleared" \
    wait_until 10 both_defined
check "schedules list shows them again" equals "$(listed)" "sr-gone sr-gone-2 sr-keep "
check "the fires recorded before the removal are still there" test \
    "$(itest_psql "SELECT count(*) FROM maintq.schedule_fires WHERE schedule = 'sr-gone'")" -ge "$fires_then"
check "sr-stale stays removed" is_removed sr-stale
check "the scheduler stops on SIGTERM (exit 0)" stop_scheduler "$leader_pid"
((itest_failures == 0)) || show_scheduler_logs
itest_done
