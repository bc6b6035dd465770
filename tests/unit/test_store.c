/* Proves core/store.c against a real PostgreSQL (MAINTQ_DATABASE_URL; every test is skipped
 * when it is unset): statements queued before the connection exists run in order with
 * their parameters and each callback sees its own answer; a server error is a result and
 * does not disturb the next statement; a wrong password and a refused port are clear
 * connect errors with the password redacted; NOTIFY reaches a listening store; a stopped
 * and restarted PostgreSQL (MAINTQ_STACK = ops/stack, else skipped) fails the running and
 * queued statements with NULL, reconnects by itself, runs statements again and still
 * delivers NOTIFY (LISTEN re-issued); freeing from a callback calls nothing afterwards.
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
        cmocka_unit_test(test_restart_fails_statements_and_reconnects),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
