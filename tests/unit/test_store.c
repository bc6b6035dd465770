/* Proves core/store.c against a real PostgreSQL (MAINTQ_DATABASE_URL; every test is skipped
 * when it is unset): statements queued before the connection exists run in order with
 * their parameters and each callback sees its own answer; a server error is a result and
 * does not disturb the next statement; a wrong password and a refused port are clear
 * connect errors with the password redacted; NOTIFY reaches a listening store; a stopped
 * and restarted PostgreSQL (MAINTQ_STACK = ops/stack, else skipped) fails the running and
 * queued statements with NULL, reconnects by itself, runs statements again and still
 * delivers NOTIFY (LISTEN re-issued); freeing from a callback calls nothing afterwards.
 * store_copy: a COPY of several MB (far more than the socket buffers hold, so it goes out
 * over many write-ready events) stores every row with its escapes, and a statement after
 * it in the same string sees the rows and gives the answer; a refused COPY (a duplicate
 * key in the first line of MBs of data) delivers 23505, the statement after it in the
 * same string does not run, and the next statement works; a COPY that the server is still
 * reading when PostgreSQL stops delivers NULL and nothing of it is stored.
 * Run by tests/integration/test_store.sh, which starts a private stack. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "store.h"

static struct event_base *base;
static const char *dburl;

struct seen {
    int connected;
    int disconnected;
    int connect_failed;
    int notifies;
    char channel[64];
    char payload[128];
    char reason[768];
};

static void on_connected(struct store *s, void *data)
{
    ((struct seen *)data)->connected++;
}

static void on_disconnected(struct store *s, const char *reason, void *data)
{
    struct seen *e = data;

    e->disconnected++;
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

static void on_connect_failed(struct store *s, const char *reason, void *data)
{
    struct seen *e = data;

    e->connect_failed++;
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

static void on_notify(struct store *s, const char *channel, const char *payload, void *data)
{
    struct seen *e = data;

    e->notifies++;
    snprintf(e->channel, sizeof(e->channel), "%s", channel);
    snprintf(e->payload, sizeof(e->payload), "%s", payload);
}

static const struct store_events events = {
    .connected = on_connected,
    .disconnected = on_disconnected,
    .connect_failed = on_connect_failed,
    .notify = on_notify,
};

struct result {
    int calls;
    int order; /* value of `sequence` when the callback ran */
    bool null_result;
    ExecStatusType status;
    char sqlstate[6];
    char value[128];
    int ntuples;
};

static int sequence;

static void on_result(struct store *s, const PGresult *res, void *data)
{
    struct result *r = data;

    r->calls++;
    r->order = ++sequence;
    r->null_result = res == NULL;
    if (!res)
        return;
    r->status = PQresultStatus(res);
    r->ntuples = PQntuples(res);
    if (PQresultErrorField(res, PG_DIAG_SQLSTATE))
        snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", PQresultErrorField(res, PG_DIAG_SQLSTATE));
    if (r->ntuples > 0 && PQnfields(res) > 0)
        snprintf(r->value, sizeof(r->value), "%s", PQgetvalue(res, 0, 0));
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the loop until cond holds or the deadline passes (polling, never a fixed sleep). */
#define WAIT_UNTIL(cond, ms)                                                                       \
    do {                                                                                           \
        int64_t deadline_ = now_ms() + (ms);                                                       \
        while (!(cond) && now_ms() < deadline_) {                                                  \
            struct timeval tv_ = {0, 20000};                                                       \
            event_base_loopexit(base, &tv_);                                                       \
            event_base_loop(base, EVLOOP_ONCE);                                                    \
        }                                                                                          \
    } while (0)

#define NEED_SERVER()                                                                              \
    do {                                                                                           \
        if (!base) {                                                                               \
            fprintf(stderr, "MAINTQ_DATABASE_URL is not set: skipped\n");                          \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static int setup(void **state)
{
    dburl = getenv("MAINTQ_DATABASE_URL");
    if (!dburl || !*dburl)
        return 0;
    base = event_base_new();
    return base ? 0 : -1;
}

static int teardown(void **state)
{
    if (base)
        event_base_free(base);
    return 0;
}

/* A keyword=value conninfo of the test server with one option replaced. */
static void conninfo_with(char *buf, size_t size, const char *keyword, const char *value)
{
    PQconninfoOption *opts = PQconninfoParse(dburl, NULL), *o;
    size_t len = 0;

    assert_non_null(opts);
    buf[0] = '\0';
    for (o = opts; o->keyword; o++) {
        const char *v = strcmp(o->keyword, keyword) == 0 ? value : o->val;

        if (v)
            len += (size_t)snprintf(buf + len, size - len, "%s='%s' ", o->keyword, v);
        assert_true(len < size);
    }
    PQconninfoFree(opts);
}

/* A blocking connection of our own, to change things behind the store's back. */
static void exec_blocking(const char *sql)
{
    PGconn *c = PQconnectdb(dburl);
    PGresult *r;

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

static void test_statements_run_in_order_with_params(void **state)
{
    struct seen ev = {0};
    struct result create = {0}, insert = {0}, again = {0}, select = {0};
    const char *vals[] = {"1", "one", "2", NULL};
    struct store *s;

    NEED_SERVER();
    assert_int_equal(store_new(base, dburl, &events, &ev, &s), 0);
    assert_false(store_ready(s));
    assert_int_equal(store_query(s, "CREATE TEMP TABLE t (id int PRIMARY KEY, v text)", 0, NULL,
                                 on_result, &create),
                     0);
    assert_int_equal(store_query(s,
                                 "INSERT INTO t VALUES ($1, $2), ($3, $4) "
                                 "ON CONFLICT DO NOTHING",
                                 4, vals, on_result, &insert),
                     0);
    assert_int_equal(store_query(s,
                                 "INSERT INTO t VALUES ($1, $2), ($3, $4) "
                                 "ON CONFLICT DO NOTHING",
                                 4, vals, on_result, &again),
                     0);
    assert_int_equal(store_query(s,
                                 "SELECT string_agg(coalesce(v, 'null'), ',' ORDER BY id) FROM t",
                                 0, NULL, on_result, &select),
                     0);
    assert_int_equal(ev.connected, 0);
    WAIT_UNTIL(select.calls == 1, 10000);
    assert_int_equal(ev.connected, 1);
    assert_int_equal(create.status, PGRES_COMMAND_OK);
    assert_int_equal(insert.status, PGRES_COMMAND_OK);
    assert_int_equal(again.status, PGRES_COMMAND_OK);
    assert_int_equal(select.status, PGRES_TUPLES_OK);
    assert_string_equal(select.value, "one,null");
    assert_true(create.order < insert.order && insert.order < again.order &&
                again.order < select.order);
    assert_non_null(strstr(store_display(s), "password=***"));
    store_free(s);
    printf("checked: 4 queued statements ran in order, params and NULL kept\n");
}

static void test_server_error_is_a_result(void **state)
{
    struct result create = {0}, dup = {0}, next = {0};
    const char *one[] = {"7"};
    struct store *s;

    NEED_SERVER();
    assert_int_equal(store_new(base, dburl, NULL, NULL, &s), 0);
    store_query(s, "CREATE TEMP TABLE u (id int PRIMARY KEY)", 0, NULL, on_result, &create);
    store_query(s, "INSERT INTO u VALUES ($1), ($1)", 1, one, on_result, &dup);
    store_query(s, "SELECT count(*) FROM u", 0, NULL, on_result, &next);
    WAIT_UNTIL(next.calls == 1, 10000);
    assert_false(dup.null_result);
    assert_int_equal(dup.status, PGRES_FATAL_ERROR);
    assert_string_equal(dup.sqlstate, "23505");
    assert_int_equal(next.status, PGRES_TUPLES_OK);
    assert_string_equal(next.value, "0");
    assert_true(store_ready(s));
    store_free(s);
    printf("checked: unique violation delivered as 23505, next statement unaffected\n");
}

static void test_wrong_password_and_refused_port(void **state)
{
    char conninfo[1024];
    struct seen ev = {0};
    struct result r = {0};
    struct store *s;

    NEED_SERVER();
    conninfo_with(conninfo, sizeof(conninfo), "password", "wrong-Pw-123");
    assert_int_equal(store_new(base, conninfo, &events, &ev, &s), 0);
    store_query(s, "SELECT 1", 0, NULL, on_result, &r);
    WAIT_UNTIL(ev.connect_failed >= 1 && r.calls == 1, 10000);
    assert_true(r.null_result);
    assert_int_equal(ev.connected, 0);
    assert_non_null(strstr(ev.reason, "password authentication failed"));
    assert_non_null(strstr(ev.reason, "password=***"));
    assert_null(strstr(ev.reason, "wrong-Pw-123"));
    assert_null(strchr(ev.reason, '\n'));
    printf("checked: %s\n", ev.reason);
    store_free(s);

    memset(&ev, 0, sizeof(ev));
    conninfo_with(conninfo, sizeof(conninfo), "port", "1");
    assert_int_equal(store_new(base, conninfo, &events, &ev, &s), 0);
    WAIT_UNTIL(ev.connect_failed >= 2, 10000);
    assert_true(ev.connect_failed >= 2);
    assert_non_null(strstr(ev.reason, "Connection refused"));
    store_free(s);
    printf("checked: %s\n", ev.reason);

    assert_int_equal(store_new(base, "host='unterminated", NULL, NULL, &s), -EINVAL);
}

static void test_notify_reaches_listener(void **state)
{
    struct seen ev = {0};
    struct result ping = {0};
    struct store *s;

    NEED_SERVER();
    assert_int_equal(store_new(base, dburl, &events, &ev, &s), 0);
    assert_int_equal(store_listen(s, "maintq_test \"quoted\""), 0);
    assert_int_equal(store_listen(s, "maintq_test \"quoted\""), 0);
    assert_int_equal(store_listen(s, ""), -EINVAL);
    /* A statement queued after the LISTEN completes after it: then we are listening. */
    store_query(s, "SELECT 1", 0, NULL, on_result, &ping);
    WAIT_UNTIL(ping.calls == 1, 10000);
    assert_int_equal(ping.status, PGRES_TUPLES_OK);
    exec_blocking("NOTIFY \"maintq_test \"\"quoted\"\"\", 'hello'");
    WAIT_UNTIL(ev.notifies == 1, 10000);
    assert_int_equal(ev.notifies, 1);
    assert_string_equal(ev.channel, "maintq_test \"quoted\"");
    assert_string_equal(ev.payload, "hello");
    store_free(s);
    printf("checked: NOTIFY delivered to the listening store\n");
}

static int stack(const char *what)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), "'%s' %s", getenv("MAINTQ_STACK"), what);
    return system(cmd);
}

static void test_restart_fails_statements_and_reconnects(void **state)
{
    struct seen ev = {0};
    struct result ready = {0}, sleeping = {0}, queued = {0}, during = {0}, after = {0};
    struct store *s;

    NEED_SERVER();
    if (!getenv("MAINTQ_STACK")) {
        fprintf(stderr, "MAINTQ_STACK is not set: restart test skipped\n");
        skip();
    }
    assert_int_equal(store_new(base, dburl, &events, &ev, &s), 0);
    assert_int_equal(store_listen(s, "maintq_restart"), 0);
    store_query(s, "SELECT 1", 0, NULL, on_result, &ready);
    WAIT_UNTIL(ready.calls == 1, 10000);
    assert_int_equal(ready.status, PGRES_TUPLES_OK);

    store_query(s, "SELECT pg_sleep(60)", 0, NULL, on_result, &sleeping);
    store_query(s, "SELECT 2", 0, NULL, on_result, &queued);
    assert_int_equal(stack("pg-stop"), 0);
    WAIT_UNTIL(sleeping.calls == 1 && queued.calls == 1, 15000);
    assert_int_equal(sleeping.calls, 1);
    assert_true(sleeping.null_result);
    assert_true(queued.null_result);
    assert_true(sleeping.order < queued.order);
    assert_int_equal(ev.disconnected, 1);
    assert_false(store_ready(s));
    printf("checked: postgres stopped: %s\n", ev.reason);

    store_query(s, "SELECT 3", 0, NULL, on_result, &during);
    WAIT_UNTIL(during.calls == 1, 15000);
    assert_true(during.null_result);
    assert_true(ev.connect_failed >= 1);

    assert_int_equal(stack("pg-start"), 0);
    WAIT_UNTIL(ev.connected == 2, 20000);
    assert_int_equal(ev.connected, 2);
    store_query(s, "SELECT 4", 0, NULL, on_result, &after);
    WAIT_UNTIL(after.calls == 1, 10000);
    assert_int_equal(after.status, PGRES_TUPLES_OK);
    assert_string_equal(after.value, "4");
    exec_blocking("NOTIFY maintq_restart, 'again'");
    WAIT_UNTIL(ev.notifies == 1, 10000);
    assert_int_equal(ev.notifies, 1);
    assert_string_equal(ev.payload, "again");
    store_free(s);
    printf("checked: postgres restarted: reconnected after %d failed attempts, LISTEN "
           "re-issued\n",
           ev.connect_failed);
}

/* text-format COPY data of n rows "i\tv<i>" (one row carries every escaped character);
 * row first_id repeats as the first line when dup. Caller frees with free(). */
static char *copy_rows(int n, bool dup, size_t *ret_len)
{
    size_t cap = (size_t)n * 64 + 128, len = 0;
    char *buf = malloc(cap);
    int i;

    assert_non_null(buf);
    if (dup)
        len += (size_t)snprintf(buf + len, cap - len, "1\tdup\n");
    for (i = 1; i <= n; i++) {
        if (i == 2)
            len += (size_t)snprintf(buf + len, cap - len, "2\ta\\\\b\\tc\\nd\\re\n");
        else if (i == 3)
            len += (size_t)snprintf(buf + len, cap - len, "3\t\\N\n");
        else
            len += (size_t)snprintf(buf + len, cap - len,
                                    "%d\tpadding to make several megabytes %08d\n", i, i);
        assert_true(len < cap);
    }
    *ret_len = len;
    return buf;
}

static void test_copy_many_rows(void **state)
{
    struct result create = {0}, copy = {0}, check = {0}, escaped = {0};
    struct store *s;
    size_t len;
    char *data = copy_rows(200000, false, &len);
    char tuples[32];

    NEED_SERVER();
    assert_true(len > 8 * 1024 * 1024);
    assert_int_equal(store_new(base, dburl, NULL, NULL, &s), 0);
    store_query(s, "CREATE TEMP TABLE c (id int PRIMARY KEY, v text)", 0, NULL, on_result, &create);
    assert_int_equal(store_copy(s, "COPY c (id, v) FROM STDIN; SELECT count(*) FROM c", data, len,
                                on_result, &copy),
                     0);
    free(data); /* copied by store_copy */
    store_query(s, "SELECT count(*) || ',' || sum(length(v)) || ',' || count(v) FROM c", 0, NULL,
                on_result, &check);
    store_query(s, "SELECT v FROM c WHERE id = 2", 0, NULL, on_result, &escaped);
    WAIT_UNTIL(escaped.calls == 1, 30000);
    assert_int_equal(create.status, PGRES_COMMAND_OK);
    assert_false(copy.null_result);
    assert_int_equal(copy.status, PGRES_TUPLES_OK);
    assert_string_equal(copy.value, "200000");
    assert_int_equal(check.status, PGRES_TUPLES_OK);
    /* 199,998 padded values of 42 bytes, a backslash b tab c newline d return e (9 bytes),
     * one NULL. */
    snprintf(tuples, sizeof(tuples), "200000,%d,199999", 199998 * 42 + 9);
    assert_string_equal(check.value, tuples);
    assert_string_equal(escaped.value, "a\\b\tc\nd\re");
    assert_true(copy.order < check.order);
    store_free(s);
    printf("checked: COPY of %zu bytes stored 200,000 rows with escapes and NULL; the "
           "SELECT after it answered\n",
           len);
}

static void test_copy_error_then_next_statement(void **state)
{
    struct result create = {0}, copy = {0}, next = {0}, small = {0}, count = {0};
    struct store *s;
    size_t len;
    char *data = copy_rows(100000, true, &len);

    NEED_SERVER();
    assert_int_equal(store_new(base, dburl, NULL, NULL, &s), 0);
    store_query(s, "CREATE TEMP TABLE d (id int PRIMARY KEY, v text)", 0, NULL, on_result, &create);
    /* The duplicate is the second line: the server refuses it early and discards the MBs
     * that follow, which must still be sent (or abandoned) without hanging. */
    store_copy(s, "COPY d (id, v) FROM STDIN; INSERT INTO d VALUES (99, 'after')", data, len,
               on_result, &copy);
    free(data);
    store_query(s, "SELECT count(*) FROM d", 0, NULL, on_result, &next);
    store_copy(s, "COPY d (id, v) FROM STDIN", "5\tfive\n6\tsix\n", strlen("5\tfive\n6\tsix\n"),
               on_result, &small);
    store_query(s, "SELECT count(*) FROM d", 0, NULL, on_result, &count);
    WAIT_UNTIL(count.calls == 1, 30000);
    assert_false(copy.null_result);
    assert_int_equal(copy.status, PGRES_FATAL_ERROR);
    assert_string_equal(copy.sqlstate, "23505");
    assert_int_equal(next.status, PGRES_TUPLES_OK);
    assert_string_equal(next.value, "0");
    assert_int_equal(small.status, PGRES_COMMAND_OK);
    assert_string_equal(count.value, "2"); /* 5 and 6: not 99 */
    assert_true(store_ready(s));
    store_free(s);
    printf("checked: refused COPY delivered 23505, the INSERT after it did not run; the next "
           "statement and COPY ran\n");
}

/* pg_stat_progress_copy shows rows of our COPY into copy_slow processed on the server. */
static bool copy_in_progress(void)
{
    PGconn *c = PQconnectdb(dburl);
    PGresult *r;
    bool yes;

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    r = PQexec(c, "SELECT count(*) FROM pg_stat_progress_copy"
                  " WHERE relid = 'copy_slow'::regclass AND tuples_processed > 0");
    yes = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0;
    PQclear(r);
    PQfinish(c);
    return yes;
}

static void test_copy_interrupted_by_stop(void **state)
{
    struct seen ev = {0};
    struct result copy = {0}, after = {0}, count = {0};
    struct store *s;
    size_t len;
    char *data = copy_rows(100000, false, &len);

    NEED_SERVER();
    if (!getenv("MAINTQ_STACK")) {
        fprintf(stderr, "MAINTQ_STACK is not set: interrupted COPY test skipped\n");
        skip();
    }
    /* Every row sleeps 10 ms in a trigger: the server reads the MBs slowly, so the copy is
     * certainly still going (and our socket full) when PostgreSQL stops. */
    exec_blocking("SET client_min_messages = warning; DROP TABLE IF EXISTS copy_slow");
    exec_blocking("CREATE TABLE copy_slow (id int PRIMARY KEY, v text)");
    exec_blocking("CREATE OR REPLACE FUNCTION copy_slow_row() RETURNS trigger LANGUAGE plpgsql"
                  " AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN NEW; END $$");
    exec_blocking("CREATE TRIGGER copy_slow_row BEFORE INSERT ON copy_slow"
                  " FOR EACH ROW EXECUTE FUNCTION copy_slow_row()");
    assert_int_equal(store_new(base, dburl, &events, &ev, &s), 0);
    store_copy(s, "COPY copy_slow (id, v) FROM STDIN", data, len, on_result, &copy);
    free(data);
    WAIT_UNTIL(copy_in_progress(), 10000);
    assert_true(copy_in_progress());
    assert_int_equal(copy.calls, 0);
    assert_int_equal(stack("pg-stop"), 0);
    WAIT_UNTIL(copy.calls == 1, 15000);
    assert_int_equal(copy.calls, 1);
    assert_true(copy.null_result);
    assert_int_equal(ev.disconnected, 1);
    printf("checked: COPY interrupted by a stop delivered NULL: %s\n", ev.reason);

    assert_int_equal(stack("pg-start"), 0);
    WAIT_UNTIL(ev.connected == 2, 20000);
    assert_int_equal(ev.connected, 2);
    store_copy(s, "DROP TRIGGER copy_slow_row ON copy_slow", NULL, 0, on_result, &after);
    store_query(s, "SELECT count(*) FROM copy_slow", 0, NULL, on_result, &count);
    WAIT_UNTIL(count.calls == 1, 10000);
    assert_int_equal(after.status, PGRES_COMMAND_OK); /* not a COPY: runs as usual */
    assert_int_equal(count.status, PGRES_TUPLES_OK);
    assert_string_equal(count.value, "0");
    store_free(s);
    exec_blocking("DROP TABLE copy_slow");
    exec_blocking("DROP FUNCTION copy_slow_row()");
    printf("checked: after the restart nothing of the interrupted COPY is stored\n");
}

struct free_from_callback {
    struct store *s;
    int calls;
};

static void free_in_callback(struct store *s, const PGresult *res, void *data)
{
    struct free_from_callback *f = data;

    f->calls++;
    f->s = store_free(s);
}

static void test_free_never_calls_back(void **state)
{
    struct seen ev = {0};
    struct free_from_callback f = {0};
    struct result later = {0}, early = {0};
    struct store *s;
    int64_t until;

    NEED_SERVER();
    assert_int_equal(store_new(base, dburl, &events, &ev, &s), 0);
    store_query(s, "SELECT 1", 0, NULL, on_result, &early);
    store_free(s);

    assert_int_equal(store_new(base, dburl, &events, &ev, &s), 0);
    f.s = s;
    store_query(s, "SELECT 1", 0, NULL, free_in_callback, &f);
    store_query(s, "SELECT 2", 0, NULL, on_result, &later);
    WAIT_UNTIL(f.calls == 1, 10000);
    assert_null(f.s);
    until = now_ms() + 300;
    WAIT_UNTIL(now_ms() >= until, 1000); /* give stray callbacks a chance to show up */
    assert_int_equal(early.calls, 0);
    assert_int_equal(later.calls, 0);
    assert_int_equal(ev.connected, 1);
    assert_int_equal(ev.disconnected, 0);
    printf("checked: free inside a callback: no callback afterwards\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statements_run_in_order_with_params),
        cmocka_unit_test(test_server_error_is_a_result),
        cmocka_unit_test(test_wrong_password_and_refused_port),
        cmocka_unit_test(test_notify_reaches_listener),
        cmocka_unit_test(test_free_never_calls_back),
        cmocka_unit_test(test_copy_many_rows),
        cmocka_unit_test(test_copy_error_then_next_statement),
        cmocka_unit_test(test_restart_fails_statements_and_reconnects),
        cmocka_unit_test(test_copy_interrupted_by_stop),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
