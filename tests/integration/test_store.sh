#!/usr/bin/env bash
# Proves core/store.c against a private PostgreSQL: statements run in order with
# parameters; a server error is a result; a wrong password and a refused port are clear
# errors with the password redacted; NOTIFY reaches a listener; a PostgreSQL restart
# (ops/stack pg-stop/pg-start) fails the running and queued statements with NULL, then the
# connection comes back by itself, runs statements and still gets NOTIFY (LISTEN re-issued).
# The checks themselves are the cmocka program tests/unit/test_store.c (each of its tests
# prints what it checked); this script gives it a private stack and counts it as one check,
# which fails when any cmocka test failed or was skipped (here every server is available).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

itest_stack_up --no-migrate

run_all_tests_unskipped() {
    local log=$ITEST_TMP/test_store.log status=0

    "$MAINTQ_BUILD_ROOT/tests/test_store" >"$log" 2>&1 || status=$?
    sed 's/^/# /' "$log"
    ((status == 0)) && ! grep -q SKIPPED "$log"
}

check "test_store: every cmocka test passes against the real server" run_all_tests_unskipped
itest_done
