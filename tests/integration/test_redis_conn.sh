#!/usr/bin/env bash
# Proves core/redis.c against a private Redis: commands queued before the connection is
# ready run after AUTH+SELECT; a wrong password is a clear error; a silent server hits the
# connect timeout; a killed connection and a Redis restart (ops/stack redis-stop/redis-start)
# fail the pending commands with NULL and the connection comes back by itself; EVALSHA falls
# back to EVAL; freeing from inside callbacks calls nothing afterwards.
# The checks themselves are the cmocka program tests/unit/test_redis_conn.c (each of its tests
# prints what it checked); this script gives it a private stack and counts it as one check,
# which fails when any cmocka test failed or was skipped (here every server is available).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

itest_stack_up --no-migrate

run_all_tests_unskipped() {
    local log=$ITEST_TMP/test_redis_conn.log status=0

    "$MAINTQ_BUILD_ROOT/tests/test_redis_conn" >"$log" 2>&1 || status=$?
    sed 's/^/# /' "$log"
    ((status == 0)) && ! grep -q SKIPPED "$log"
}

check "test_redis_conn: every cmocka test passes against the real server" run_all_tests_unskipped
itest_done
