#!/usr/bin/env bash
# Proves `maintq migrate` against a real PostgreSQL: it creates the schema of DESIGN.md,
# a second run changes nothing, schema_migrations holds one row per file, a broken
# migration fails naming the file and leaves the database as it was (even the statements
# of that file that had succeeded), two migrates at once apply a file once, and against a
# stopped server it fails within 10 s with exit code 3 and no password in what it prints.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

itest_stack_up --no-migrate
sql_dir=$ITEST_ROOT/schemas/sql
nfiles=$(find "$sql_dir" -maxdepth 1 -name '[0-9]*_*.sql' | wc -l)

out=$ITEST_TMP/out
"$MAINTQ" migrate >"$out" 2>&1 || true
check "the first run applies 001_init.sql" grep -qx 'applied 001_init.sql' "$out"
check "the first run applies 002_schedules_removed_at.sql after it" \
    test "$(grep '^applied ' "$out" | head -n 2 | tr '\n' ' ')" = \
    "applied 001_init.sql applied 002_schedules_removed_at.sql "
check "schedules has the removed_at column of 002" test "$(itest_psql "SELECT count(*)
    FROM information_schema.columns WHERE table_schema = 'maintq' AND table_name = 'schedules'
    AND column_name = 'removed_at'")" = 1
check "the tables and the jobs view exist in schema maintq" \
    test "$(itest_psql "SELECT count(*) FROM (VALUES ('maintq.job_runs'), ('maintq.jobs'),
        ('maintq.schedules'), ('maintq.schedule_fires')) t(n) WHERE to_regclass(n) IS NOT NULL")" = 4
check "job_runs refuses a second row for one job attempt" fails itest_psql "
    INSERT INTO maintq.job_runs (job_id, attempt, type, status, finished_at)
    VALUES ('0190a1b2-0000-7000-8000-0000000000aa', 1, 'noop', 'ok', now()),
           ('0190a1b2-0000-7000-8000-0000000000aa', 1, 'noop', 'ok', now())"
check "job_runs refuses an unknown status" fails itest_psql "
    INSERT INTO maintq.job_runs (job_id, attempt, type, status, finished_at)
    VALUES ('0190a1b2-0000-7000-8000-0000000000ab', 1, 'noop', 'fine', now())"
check "jobs shows the latest attempt of a job" test "$(itest_psql "
    INSERT INTO maintq.job_runs (job_id, attempt, type, status, finished_at)
    VALUES ('0190a1b2-0000-7000-8000-0000000000ac', 2, 'noop', 'ok', now()),
           ('0190a1b2-0000-7000-8000-0000000000ac', 1, 'noop', 'failed', now());
    SELECT attempt || ' ' || status FROM maintq.jobs
     WHERE job_id = '0190a1b2-0000-7000-8000-0000000000ac'")" = "2 ok"

"$MAINTQ" migrate >"$out" 2>&1 || true
latest=$(find "$sql_dir" -maxdepth 1 -name '[0-9]*_*.sql' -printf '%f\n' | sort | tail -n 1)
latest=$((10#${latest%%_*}))
check "a second run says nothing changed (schema at version $latest, the newest file)" \
    grep -qx "nothing to migrate (schema at version $latest)" "$out"
check "schema_migrations holds one row per migration file ($nfiles)" \
    test "$(itest_psql 'SELECT count(*) FROM maintq.schema_migrations')" = "$nfiles"

# A copy of the migrations plus a file whose first statement works and second fails.
bad_dir=$ITEST_TMP/sql-bad
mkdir "$bad_dir"
cp "$sql_dir"/*.sql "$bad_dir"/
printf 'CREATE TABLE maintq.half_done (a int);\nCREATE TABLE maintq.broken (\n  b int NOT_A_TYPE\n);\n' \
    >"$bad_dir/900_broken.sql"
rc=0
"$MAINTQ" migrate --dir "$bad_dir" >"$out" 2>&1 || rc=$?
check "a broken migration exits 3" test "$rc" = 3
check "the error names the file and the line" grep -q '900_broken.sql: .*(line 3)' "$out"
check "the broken file's successful statement was rolled back" \
    test -z "$(itest_psql "SELECT to_regclass('maintq.half_done')")"
check "schema_migrations does not list the broken file" \
    test "$(itest_psql 'SELECT count(*) FROM maintq.schema_migrations WHERE version = 900')" = 0

# Two migrates at once: without the advisory lock both would run the slow file and the
# second would fail on the existing table (or on schema_migrations' primary key).
slow_dir=$ITEST_TMP/sql-slow
mkdir "$slow_dir"
cp "$sql_dir"/*.sql "$slow_dir"/
printf 'SELECT pg_sleep(1);\nCREATE TABLE maintq.slow_t (a int);\n' >"$slow_dir/901_slow.sql"
"$MAINTQ" migrate --dir "$slow_dir" >"$ITEST_TMP/m1" 2>&1 &
p1=$!
"$MAINTQ" migrate --dir "$slow_dir" >"$ITEST_TMP/m2" 2>&1 &
p2=$!
rc1=0 rc2=0
wait "$p1" || rc1=$?
wait "$p2" || rc2=$?
check "two concurrent migrates both succeed" test "$rc1:$rc2" = "0:0"
check "and exactly one of them applied the file" \
    test "$(cat "$ITEST_TMP/m1" "$ITEST_TMP/m2" | grep -c '^applied 901_slow.sql$')" = 1

# A stopped server: refused connections must fail fast, name the server, hide the password.
"$MAINTQ_STACK" pg-stop
pass=${MAINTQ_DATABASE_URL#postgresql://maintq:}
pass=${pass%%@*}
port=${MAINTQ_DATABASE_URL##*:}
port=${port%%/*}
rc=0
t0=$(itest_now_us)
"$MAINTQ" migrate >"$out" 2>&1 || rc=$?
t1=$(itest_now_us)
check "against a stopped server it exits 3" test "$rc" = 3
check "within 10 seconds" test $((t1 - t0)) -lt 10000000
check "the message is one line naming the server" \
    bash -c '[[ $(wc -l <"$1") == 1 ]] && grep -q "127.0.0.1" "$1" && grep -q "$2" "$1"' _ "$out" "$port"
check "the message does not contain the password" fails grep -qF "$pass" "$out"
"$MAINTQ_STACK" pg-start >/dev/null 2>&1
check "after a restart, the server answers and the schema is intact" \
    wait_until 10 itest_psql 'SELECT 1 FROM maintq.schema_migrations WHERE version = 1'

itest_done
