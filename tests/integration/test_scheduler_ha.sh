#!/usr/bin/env bash
# Proves the scheduler's high availability: two maintq-schedulers run one `* * * * * *`
# schedule (misfire run_all) for about 60 s with a 3 s lease; the leader is SIGKILLed at
# 30 s. The stream then holds exactly one entry per second of the run (no second missing,
# none twice), the standby took over within the lease TTL plus one acquire period, and the
# ticks it came late for were caught up (fired late, recorded as misfire catch-up), each at
# most TTL + TTL/3 + 1 s late.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sched_lib.sh"
itest_stack_up

mkdir -p "$ITEST_TMP/schedules"
cat >"$ITEST_TMP/schedules/ha.json" <<'JSON'
{"name": "ha-every-second", "cron": "* * * * * *", "misfire": "run_all",
 "starting_deadline": "1m", "job": {"type": "noop", "queue": "ha", "timeout_s": 10}}
JSON

start_scheduler "$ITEST_TMP/schedules" --lease-ttl 3s
A_PID=$SCHED_PID A_LOG=$SCHED_LOG
wait_until 10 grep -q "lease acquired" "$A_LOG" || true
start_scheduler "$ITEST_TMP/schedules" --lease-ttl 3s
B_PID=$SCHED_PID B_LOG=$SCHED_LOG
check "the first scheduler holds the lease" grep -q "lease acquired" "$A_LOG"
start_us=$(itest_now_us)

# 30 s in, the leader dies without releasing its lease.
sleep_until "$start_us" 30
check "the standby did not fire while the leader lived" fails grep -q "lease acquired" "$B_LOG"
{ kill -9 "$A_PID" && wait "$A_PID"; } 2>/dev/null || true
kill_us=$(itest_now_us)
check "the standby takes over within TTL + TTL/3 (+1 s)" wait_until 6 grep -q "lease acquired" "$B_LOG"
took_us=$(($(itest_now_us) - kill_us))
echo "# takeover after $((took_us / 1000)) ms"

sleep_until "$start_us" 60
check "the standby stops cleanly on SIGTERM (exit 0)" stop_scheduler "$B_PID"

scheduled_for ha | sort >"$ITEST_TMP/ticks"
n=$(wc -l <"$ITEST_TMP/ticks")
first=$(head -1 "$ITEST_TMP/ticks")
last=$(tail -1 "$ITEST_TMP/ticks")
span=$(($(date -d "$last" +%s) - $(date -d "$first" +%s) + 1))
echo "# $n entries from $first to $last"
check "about 60 seconds of ticks are in the stream" test "$n" -ge 57
check "no second is in the stream twice" equals "$(uniq -d "$ITEST_TMP/ticks" | wc -l)" 0
check "no second is missing: one entry per second from first to last" equals "$n" "$span"
check "every entry was recorded as fired, once" equals "$(fires ha-every-second fired)" "$n"
check "the ticks of the handover gap were caught up" \
    test "$(fires ha-every-second fired "AND reason = 'misfire catch-up'")" -ge 1
check "no catch-up tick was more than TTL + TTL/3 + 1 s late" equals \
    "$(itest_psql "SELECT count(*) FROM maintq.schedule_fires WHERE recorded_at - fire_at > interval '5 seconds'")" 0
check "the lease was released on exit" equals "$(itest_redis EXISTS '{maintq}:leader')" 0
((itest_failures == 0)) || show_scheduler_logs
itest_done
