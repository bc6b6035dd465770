#!/usr/bin/env bash
# Proves that a leader which wakes up late (SIGSTOP then SIGCONT: the same as a paused VM or
# a clock jump) applies each schedule's misfire policy to the ticks it slept through, as a
# restarted scheduler does, instead of firing all of them at once; and that a short pause
# within the grace changes nothing. Three `* * * * * *` schedules (skip, run_once, run_all
# with a 4 s starting deadline) under one scheduler with --misfire-grace 3s and a lease long
# enough to outlast the pauses (the leader keeps its lease: this is the late-timer path, not
# an election):
#  - a 1 s pause: every tick still fires as usual, none is missed or caught up;
#  - a 9 s pause: skip fires none of the slept-through ticks and records them as missed;
#    run_once fires exactly one of them (the latest) as a catch-up; run_all fires the ones
#    within its starting deadline and records the older ones as missed;
#  - the tick dedupe holds throughout: no tick is in a stream twice, and each stream holds
#    exactly the ticks recorded as fired.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sched_lib.sh"
itest_stack_up

policy_schedules "$ITEST_TMP/schedules" sp "* * * * * *" 4s

start_scheduler "$ITEST_TMP/schedules" --lease-ttl 60s --misfire-grace 3s
S=$SCHED_PID
check "the scheduler leads and arms its schedules" wait_until 10 grep -q "schedules armed" "$SCHED_LOG"
t0=$(itest_now_us)
for policy in skip run_once run_all; do
    check "sp-$policy fires every second" wait_until 10 at_least 2 fired_since "sp-$policy" "$t0"
done

# ---- a pause within the grace --------------------------------------------------------
short_us=$(itest_now_us)
kill -STOP "$S"
sleep 1
kill -CONT "$S"
for policy in skip run_once run_all; do
    check "short pause: sp-$policy fires the ticks after it" \
        wait_until 10 at_least 3 fired_since "sp-$policy" "$((short_us + 1000000))"
done
for policy in skip run_once run_all; do
    check "short pause: sp-$policy missed no tick" equals "$(fires "sp-$policy" missed)" 0
    check "short pause: sp-$policy caught nothing up" \
        equals "$(fires "sp-$policy" fired "AND reason IS NOT NULL")" 0
done
check "short pause: every tick since the start fired, one row a second" equals "$(itest_psql "
    SELECT count(*) = extract(epoch FROM max(fire_at) - min(fire_at)) + 1
    FROM maintq.schedule_fires WHERE schedule = 'sp-skip' AND outcome = 'fired'")" t

# ---- a pause beyond the grace --------------------------------------------------------
stop_us=$(itest_now_us)
kill -STOP "$S"
sleep 9
kill -CONT "$S"
cont_us=$(itest_now_us)
for policy in skip run_once run_all; do
    check "long pause: sp-$policy fires on time again after it" \
        wait_until 10 at_least 2 fired_since "sp-$policy" "$cont_us"
done
check "long pause: the leader kept its lease (no election)" \
    equals "$(grep -c 'schedules armed' "$SCHED_LOG")" 1
check "long pause: the late ticks were noticed" \
    grep -q "sp-skip: tick .* ms late (process suspended or clock jumped)" "$SCHED_LOG"

# Ticks certainly slept through: a second clear of the SIGSTOP and of the SIGCONT.
gap=$(in_gap "$((stop_us + 1000000))" "$((cont_us - 1000000))")
gap_ticks=$(((cont_us - stop_us) / 1000000 - 2))
catchup="AND reason = 'misfire catch-up'"
echo "# paused $(((cont_us - stop_us) / 1000)) ms; $gap_ticks ticks certainly inside"
check "skip: no slept-through tick fired" equals "$(fires sp-skip fired "$gap")" 0
check "skip: every slept-through tick is recorded as missed" \
    test "$(fires sp-skip missed "$gap")" -ge "$gap_ticks"
check "skip: nothing caught up" equals "$(fires sp-skip fired "$catchup")" 0
check "run_once: exactly one catch-up fired" equals "$(fires sp-run_once fired "$catchup")" 1
check "run_once: no slept-through tick fired as a normal tick" \
    equals "$(fires sp-run_once fired "$gap AND reason IS NULL")" 0
check "run_once: the older slept-through ticks are recorded as missed" \
    test "$(fires sp-run_once missed "$gap")" -ge "$((gap_ticks - 1))"
check "run_once: the catch-up is the latest slept-through tick" equals "$(itest_psql "
    SELECT (SELECT fire_at FROM maintq.schedule_fires WHERE schedule = 'sp-run_once' $catchup)
         > (SELECT max(fire_at) FROM maintq.schedule_fires WHERE schedule = 'sp-run_once' AND outcome = 'missed')")" t
n_all=$(fires sp-run_all fired "$catchup")
check "run_all: the ticks within the 4 s deadline fired as catch-ups (got $n_all)" \
    test "$n_all" -ge 3 -a "$n_all" -le 5
check "run_all: the older ones are missed for the deadline" \
    test "$(fires sp-run_all missed "AND reason = 'older than the starting deadline'")" -ge "$((gap_ticks - 5))"
check "run_all: no slept-through tick fired as a normal tick" \
    equals "$(fires sp-run_all fired "$gap AND reason IS NULL")" 0

check "the scheduler stops on SIGTERM (exit 0)" stop_scheduler "$S"
check_streams_match_fires sp
check "skip: the stream has no entry for the slept-through ticks" equals "$(
    while read -r t; do
        us=$(($(date -d "$t" +%s%N) / 1000))
        ((us >= stop_us + 1000000 && us <= cont_us - 1000000)) && echo "$t"
    done <"$ITEST_TMP/skip" | wc -l)" 0
((itest_failures == 0)) || show_scheduler_logs
itest_done
