#!/usr/bin/env bash
# Proves the per-tick decisions of maintq-scheduler and the `maintq schedules` commands:
# a paused schedule's ticks are recorded `skipped` (paused) and enqueue nothing; ticks
# outside a maintenance window are recorded `missed_window` and enqueue nothing; ticks
# inside one carry not_after; concurrency forbid skips while the previous job has no final
# row; `schedules pause/resume` act on the running scheduler's next ticks; `run-now`
# enqueues one job at once; `schedules check` accepts good files and names the error of a
# bad one (exit 2); list and show report what the scheduler loaded.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sched_lib.sh"

d=$ITEST_TMP/schedules
mkdir -p "$d"
cat >"$d/w.json" <<'JSON'
{"schedules": [
 {"name": "w-paused", "cron": "* * * * * *", "paused": true,
  "job": {"type": "noop", "queue": "w-paused"}},
 {"name": "w-outside", "cron": "* * * * * *",
  "window": {"cron": "0 0 1 1 *", "duration": "1s"},
  "job": {"type": "noop", "queue": "w-outside"}},
 {"name": "w-inside", "cron": "* * * * * *",
  "window": {"cron": "* * * * *", "duration": "2m"},
  "job": {"type": "noop", "queue": "w-inside"}},
 {"name": "w-forbid", "cron": "* * * * * *", "concurrency": "forbid",
  "job": {"type": "noop", "queue": "w-forbid"}},
 {"name": "w-cli", "cron": "* * * * * *", "job": {"type": "noop", "queue": "w-cli"}},
 {"name": "w-rare", "cron": "0 0 1 1 *", "job": {"type": "noop", "queue": "w-rare"}}
]}
JSON
echo '{"name": "bad", "cron": "* * 32 * *", "job": {"type": "noop"}}' >"$ITEST_TMP/bad.json"

# check needs no server: it runs before the stack exists
check "schedules check accepts a good file" equals "$("$MAINTQ" schedules check "$d/w.json")" "ok: 6 schedules"
set +e
"$MAINTQ" schedules check "$d/w.json" "$ITEST_TMP/bad.json" >"$ITEST_TMP/bad.out" 2>"$ITEST_TMP/bad.err"
rc=$?
set -e
check "schedules check of a bad file exits 2" equals "$rc" 2
check "its one-line error names the file, schedule and field" \
    grep -q "bad.json: schedule \"bad\": cron: day-of-month" "$ITEST_TMP/bad.err"
check "a bad check prints nothing on stdout" equals "$(cat "$ITEST_TMP/bad.out")" ""

itest_stack_up
start_scheduler "$d" --lease-ttl 3s
check "the scheduler leads" wait_until 10 grep -q "schedules armed" "$SCHED_LOG"

check "paused ticks are recorded as skipped (paused)" wait_until 10 \
    bash -c "(( \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c \"SELECT count(*) FROM maintq.schedule_fires WHERE schedule = 'w-paused' AND outcome = 'skipped' AND reason = 'paused'\") >= 2 ))"
check "ticks outside the window are recorded as missed_window" \
    test "$(fires w-outside missed_window)" -ge 2
check "ticks inside the window fire" test "$(fires w-inside fired)" -ge 2
check "concurrency forbid: the first tick fired" equals "$(fires w-forbid fired)" 1
check "concurrency forbid: later ticks skipped while that job has no result" \
    test "$(fires w-forbid skipped "AND reason LIKE 'concurrency forbid%'")" -ge 1
check "nothing was enqueued for the paused schedule" equals "$(itest_redis XLEN '{maintq}:q:w-paused')" 0
check "nothing was enqueued outside the window" equals "$(itest_redis XLEN '{maintq}:q:w-outside')" 0
check "a job inside the window carries not_after" bash -c \
    "redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XRANGE '{maintq}:q:w-inside' - + COUNT 1 | grep -q '\"not_after\":\"'"

check "schedules pause answers" "$MAINTQ" schedules pause w-cli
paused_us=$(itest_now_us)
check "a paused schedule's next ticks are skipped" wait_until 5 bash -c \
    "(( \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c \"SELECT count(*) FROM maintq.schedule_fires WHERE schedule = 'w-cli' AND reason = 'paused'\") >= 1 ))"
check "no w-cli job was enqueued for a tick after the pause took effect" equals "$(itest_psql "
    SELECT count(*) FROM maintq.schedule_fires WHERE schedule = 'w-cli' AND outcome = 'fired'
       AND fire_at > (SELECT min(fire_at) FROM maintq.schedule_fires WHERE schedule = 'w-cli' AND reason = 'paused')")" 0
check "schedules list shows w-cli paused" bash -c "'$MAINTQ' schedules list | grep -E '^w-cli ' | grep -qE 'yes\$'"
check "schedules resume answers" "$MAINTQ" schedules resume w-cli
resumed_us=$(itest_now_us)
check "a resumed schedule fires again" wait_until 5 bash -c \
    "(( \$(psql -X -A -t -d '$MAINTQ_DATABASE_URL' -c \"SELECT count(*) FROM maintq.schedule_fires WHERE schedule = 'w-cli' AND outcome = 'fired' AND fire_at > to_timestamp($resumed_us / 1e6)\") >= 1 ))"
check "pausing an unknown schedule is refused" fails "$MAINTQ" schedules pause nope

job=$("$MAINTQ" schedules run-now w-rare)
check "run-now prints a job id" bash -c "[[ '$job' =~ ^[0-9a-f]{8}-[0-9a-f]{4}-7 ]]"
check "run-now enqueued that job" bash -c \
    "redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XRANGE '{maintq}:q:w-rare' - + | grep -q '\"id\":\"$job\"'"
check "run-now is recorded as a fire" equals \
    "$(itest_psql "SELECT outcome || ' ' || reason FROM maintq.schedule_fires WHERE job_id = '$job'")" "fired run-now"
check "run-now of an unknown schedule is refused" fails "$MAINTQ" schedules run-now nope

check "schedules list names every schedule" equals \
    "$("$MAINTQ" schedules list | awk 'NR > 1 {print $1}' | tr '\n' ' ')" "w-cli w-forbid w-inside w-outside w-paused w-rare "
check "schedules show gives the definition and the ticks" bash -c \
    "'$MAINTQ' schedules show w-paused | grep -q '^paused: *yes' && '$MAINTQ' schedules show w-paused | grep -q 'skipped'"
check "schedules list --json is one object per schedule" equals \
    "$("$MAINTQ" schedules list --json | grep -c '^{"cron":')" 6
check "the scheduler stops on SIGTERM (exit 0)" stop_scheduler "$SCHED_PID"
((itest_failures == 0)) || show_scheduler_logs
itest_done
