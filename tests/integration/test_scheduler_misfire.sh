#!/usr/bin/env bash
# Proves the misfire policies after downtime: three `*/2 * * * * *` schedules (skip,
# run_once, run_all) fire, the scheduler stops for ~10 s and starts again. The issue's
# scenario is a 5-minute stop; every-2-seconds ticks and a 10-second stop exercise the same
# code (the plan only counts ticks) and keep the suite short. After the restart:
#  - skip records every missed tick as `missed` and fires none of them;
#  - run_once fires exactly the latest missed tick, the older ones are `missed`;
#  - run_all fires every missed tick, none is `missed`, and the stream holds every tick of
#    the whole run once.
# It also proves the tick dedupe of the fire script: before the restart run_all's last
# handled tick is moved 4 s back, so two ticks that already fired run through the script a
# second time; they must not appear twice in the stream.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sched_lib.sh"
itest_stack_up

policy_schedules "$ITEST_TMP/schedules" mf "*/2 * * * * *" 1m

start_scheduler "$ITEST_TMP/schedules" --lease-ttl 3s
S1=$SCHED_PID
for policy in skip run_once run_all; do
    check "mf-$policy fires before the stop" wait_until 15 \
        bash -c "[[ \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c \"SELECT count(*) FROM maintq.schedule_fires WHERE schedule = 'mf-$policy' AND outcome = 'fired'\") -ge 2 ]]"
done
check "the scheduler stops on SIGTERM (exit 0)" stop_scheduler "$S1"
stop_us=$(itest_now_us)

last_all=$(itest_redis HGET '{maintq}:sched:last' mf-run_all)
fired_before_all=$(scheduled_for mf-run_all | wc -l)
itest_redis HSET '{maintq}:sched:last' mf-run_all $((last_all - 4000)) >/dev/null

sleep_until "$stop_us" 10
start_scheduler "$ITEST_TMP/schedules" --lease-ttl 3s
S2=$SCHED_PID
check "the restarted scheduler leads and catches up" wait_until 10 grep -q "schedules armed" "$SCHED_LOG"
restart_us=$(itest_now_us)
# one live tick after the catch-up for each, so the next checks see the whole picture
for policy in skip run_once run_all; do
    wait_until 10 bash -c "[[ \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c \"SELECT count(*) FROM maintq.schedule_fires WHERE schedule = 'mf-$policy' AND outcome = 'fired' AND reason IS NULL AND fire_at > to_timestamp($restart_us / 1e6)\") -ge 1 ]]" || true
done
check "the scheduler stops on SIGTERM again" stop_scheduler "$S2"

catchup="AND reason = 'misfire catch-up'"
check "skip: the missed ticks (about 5) are recorded as missed" test "$(fires mf-skip missed)" -ge 4
check "skip: no missed tick fired" equals "$(fires mf-skip fired "$catchup")" 0
check "run_once: exactly one missed tick fired" equals "$(fires mf-run_once fired "$catchup")" 1
check "run_once: the older missed ticks are recorded as missed" test "$(fires mf-run_once missed)" -ge 3
check "run_once: the one it fired is the latest missed tick" equals "$(itest_psql "
    SELECT (SELECT fire_at FROM maintq.schedule_fires WHERE schedule = 'mf-run_once' $catchup)
         > (SELECT max(fire_at) FROM maintq.schedule_fires WHERE schedule = 'mf-run_once' AND outcome = 'missed')")" t
check "run_all: every missed tick fired (about 5)" test "$(fires mf-run_all fired "$catchup")" -ge 4
check "run_all: nothing recorded as missed" equals "$(fires mf-run_all missed)" 0

scheduled_for mf-run_all | sort >"$ITEST_TMP/all"
n=$(wc -l <"$ITEST_TMP/all")
span=$(($(date -d "$(tail -1 "$ITEST_TMP/all")" +%s) - $(date -d "$(head -1 "$ITEST_TMP/all")" +%s)))
echo "# run_all: $n entries ($fired_before_all before the stop), span ${span}s"
check "dedupe: the fire script answered 'already fired' for the replayed ticks" \
    test "$(grep -c "schedule mf-run_all: tick .* was already fired" "$SCHED_LOG")" -ge 2
check "dedupe: ticks run through the fire script twice are in the stream once" \
    equals "$(uniq -d "$ITEST_TMP/all" | wc -l)" 0
check "run_all: the stream holds every 2-second tick of the run, none missing" \
    equals "$n" "$((span / 2 + 1))"
check "run_all: entries and fired rows agree" equals "$(fires mf-run_all fired)" "$n"
check "skip: the stream has no entry for the downtime" equals \
    "$(scheduled_for mf-skip | wc -l)" "$(fires mf-skip fired)"
((itest_failures == 0)) || show_scheduler_logs
itest_done
