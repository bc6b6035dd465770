#!/usr/bin/env bash
# Proves graceful shutdown: SIGTERM with jobs in flight lets them finish within --grace,
# records and acknowledges them, and the master exits 0. With a grace shorter than the
# jobs, they are cancelled, recorded as cancelled and retried (not lost) by the next worker.
# A second SIGTERM makes the worker exit at once, leaving entries pending for reclaim.
# Ctrl-C in a terminal (SIGINT to the worker's whole process group; likewise `timeout` or
# `kill -- -PGID`) is still one stop signal: the children hear it only from the master.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
itest_stack_up

# pending_at_least N: waits until N entries have been delivered and not yet acknowledged.
pending_at_least() {
    wait_until 10 bash -c "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XPENDING '{maintq}:q:default' workers | head -1) -ge $1 ]]"
}

# stop_worker SIGNAL TARGET: sends SIGNAL to TARGET (a pid, or -PGID for a whole process
# group) and sets rc to the master's exit status.
stop_worker() {
    kill "-$1" -- "$2"
    set +e
    wait "$WORKER_PID"
    rc=$?
    set -e
}

start_worker --procs 2 --concurrency 8 --grace 10s
for i in $(seq 1 8); do echo '{"type":"sleep","params":{"seconds":1}}'; done >"$ITEST_TMP/short"
"$MAINTQ" submit --batch "$ITEST_TMP/short" >/dev/null
pending_at_least 8
stop_worker TERM "$WORKER_PID"
check "the master exits 0 after draining" equals "$rc" 0
check "the in-flight jobs finished and were recorded ok" equals "$(rows "status = 'ok'")" 8
check "nothing is left pending" equals "$(itest_redis XPENDING '{maintq}:q:default' workers | head -1)" 0

# setsid makes the master lead a process group of its own, as a shell's job would.
WORKER_LOG=$ITEST_TMP/worker-group.log
setsid "$MAINTQ_WORKER" --procs 2 --concurrency 8 --grace 10s >"$WORKER_LOG" 2>&1 &
WORKER_PID=$!
itest_on_exit "kill -9 -- -$WORKER_PID; pkill -9 -P $WORKER_PID"
wait_until 20 bash -c "[[ \$(grep -c 'connected to postgres' '$WORKER_LOG') -ge 2 ]]"
"$MAINTQ" submit --batch "$ITEST_TMP/short" >/dev/null
pending_at_least 8
stop_worker INT "-$WORKER_PID"
check "SIGINT to the whole group: the master exits 0 after draining" equals "$rc" 0
check "the group's in-flight jobs finished and were recorded ok" equals "$(rows "status = 'ok'")" 16
check "no child took the signal twice" fails grep -q "second stop signal" "$WORKER_LOG"

start_worker --procs 1 --concurrency 8 --grace 1s
for i in $(seq 1 4); do echo '{"type":"sleep","params":{"seconds":30},"max_attempts":1}'; done >"$ITEST_TMP/long"
"$MAINTQ" submit --batch "$ITEST_TMP/long" >"$ITEST_TMP/long.ids"
pending_at_least 4
stop_worker TERM "$WORKER_PID"
check "with a short grace the master still exits 0" equals "$rc" 0
check "the long jobs were recorded as cancelled" equals "$(rows "status = 'cancelled' AND error LIKE 'cancelled: worker shutting down%'")" 4
check "and put back for a retry even with max_attempts=1" bash -c \
    "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' ZCARD '{maintq}:delayed') == 4 ]]"

start_worker --procs 1 --concurrency 8 --grace 30s
check "the next worker picks the cancelled jobs up again" wait_until 15 bash -c \
    "[[ \$(redis-cli --no-auth-warning -u '$MAINTQ_REDIS_URL' XPENDING '{maintq}:q:default' workers | head -1) == 4 ]]"
kill -TERM "$WORKER_PID"
sleep 0.5
stop_worker TERM "$WORKER_PID"
check "a second SIGTERM exits at once with a non-zero status" bash -c "[[ $rc -ne 0 ]]"
check "the entries of the killed run stay pending for reclaim" equals \
    "$(itest_redis XPENDING '{maintq}:q:default' workers | head -1)" 4

((itest_failures == 0)) || show_worker_logs
itest_done
