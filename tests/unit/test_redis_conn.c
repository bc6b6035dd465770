/* Proves core/redis.c against a real Redis (MAINTQ_REDIS_URL; every test is skipped when it
 * is unset): binary-safe commands sent before the connection is ready run after AUTH and
 * SELECT; a wrong password is a clear connect error that never shows the password; a
 * server that accepts but never answers is cut off by the connect timeout; a killed
 * client connection and a Redis restart (MAINTQ_STACK = ops/stack, else skipped) fail the
 * pending commands with NULL and the connection comes back by itself; scripts fall back
 * from EVALSHA to EVAL; freeing from inside a callback calls nothing afterwards. Run by
 * tests/integration/test_redis_conn.sh, which starts a private stack. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "errbuf.h"
#include "redis.h"
#include "resp.h"
#include "url.h"

static struct event_base *base;
static struct redis_url url;

struct events_seen {
    int connected;
    int disconnected;
    int connect_failed;
    char reason[512];
};

static void on_connected(struct redis_conn *rc, void *data)
{
    struct events_seen *e = data;

    e->connected++;
}

static void on_disconnected(struct redis_conn *rc, const char *reason, void *data)
{
    struct events_seen *e = data;

    e->disconnected++;
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

static void on_connect_failed(struct redis_conn *rc, const char *reason, void *data)
{
    struct events_seen *e = data;

    e->connect_failed++;
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

static const struct redis_conn_events events = {
    .connected = on_connected,
    .disconnected = on_disconnected,
    .connect_failed = on_connect_failed,
};

/* What one command's callback saw. */
struct result {
    int calls;
    bool null_reply;
    int type;
    long long integer;
    char str[256];
    size_t len;
    size_t elements;
};

static void on_reply(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct result *res = data;

    res->calls++;
    res->null_reply = reply == NULL;
    if (!reply)
        return;
    res->type = reply->type;
    res->integer = reply->integer;
    res->elements = reply->elements;
    if (reply->str) {
        res->len = reply->len < sizeof(res->str) ? reply->len : sizeof(res->str) - 1;
        memcpy(res->str, reply->str, res->len);
        res->str[res->len] = '\0';
    }
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

static int setup(void **state)
{
    const char *s = getenv("MAINTQ_REDIS_URL");
    struct errbuf eb = {{0}};

    if (!s || !*s)
        return 0;
    if (redis_url_parse(s, &url, &eb) < 0) {
        fprintf(stderr, "MAINTQ_REDIS_URL: %s\n", eb.msg);
        return -1;
    }
    base = event_base_new();
    return base ? 0 : -1;
}

static int teardown(void **state)
{
    if (base)
        event_base_free(base);
    return 0;
}

#define NEED_SERVER()                                                                              \
    do {                                                                                           \
        if (!base) {                                                                               \
            fprintf(stderr, "MAINTQ_REDIS_URL is not set: skipped\n");                             \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static redisContext *sync_ctx(int db)
{
    struct redis_url u = url;
    struct errbuf eb = {{0}};
    redisContext *c = NULL;

    u.db = db;
    if (redis_connect_sync(&u, 2000, &c, &eb) < 0)
        fail_msg("%s", eb.msg);
    return c;
}

static void sync_cmd(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, cmd);

    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

static void test_commands_queued_before_ready_run_after_select(void **state)
{
    struct redis_url u = url;
    struct events_seen ev = {0};
    struct result set = {0}, get = {0}, other_db = {0};
    struct redis_conn *rc;
    const char *argv[] = {"SET", "maintq:test:bin", "a\0b\r\nc"};
    const size_t argvlen[] = {3, 15, 7};
    struct resp_cmd cmd = {0};
    redisContext *c;
    redisReply *r;

    NEED_SERVER();
    u.db = 3;
    assert_int_equal(redis_conn_new(base, &u, &events, &ev, &rc), 0);
    assert_false(redis_conn_ready(rc));
    /* Sent before the connection exists: they must wait for AUTH and SELECT 3. */
    for (int i = 0; i < 3; i++)
        resp_cmd_add(&cmd, argv[i], argvlen[i]);
    assert_int_equal(redis_conn_send(rc, on_reply, &set, &cmd), 0);
    resp_cmd_release(&cmd);
    assert_int_equal(redis_conn_command(rc, on_reply, &get, "GET %s", "maintq:test:bin"), 0);
    assert_int_equal(ev.connected, 0); /* nothing runs inside redis_conn_new */
    WAIT_UNTIL(get.calls == 1, 5000);
    assert_int_equal(ev.connected, 1);
    assert_true(redis_conn_ready(rc));
    assert_int_equal(set.type, REDIS_REPLY_STATUS);
    assert_string_equal(set.str, "OK");
    assert_int_equal(get.type, REDIS_REPLY_STRING);
    assert_int_equal(get.len, 7);
    assert_memory_equal(get.str, "a\0b\r\nc", 7);

    /* The value landed in db 3, not db 0. */
    c = sync_ctx(0);
    r = redisCommand(c, "EXISTS maintq:test:bin");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    redisFree(c);
    c = sync_ctx(3);
    r = redisCommand(c, "STRLEN maintq:test:bin");
    assert_int_equal(r->integer, 7);
    freeReplyObject(r);
    sync_cmd(c, "DEL maintq:test:bin");
    redisFree(c);

    assert_int_equal(redis_conn_command(rc, on_reply, &other_db, "INCRBY nope"), 0);
    WAIT_UNTIL(other_db.calls == 1, 5000);
    assert_int_equal(other_db.type, REDIS_REPLY_ERROR); /* an error reply is a reply */
    assert_false(other_db.null_reply);
    assert_null(redis_conn_free(rc));
    assert_int_equal(ev.disconnected, 0);
    printf("checked: queued binary-safe SET/GET ran after AUTH+SELECT 3\n");
}

static void test_wrong_password_is_a_clear_error(void **state)
{
    struct redis_url u = url;
    struct events_seen ev = {0};
    struct result res = {0};
    struct redis_conn *rc;
    redisContext *c = NULL;
    struct errbuf eb = {{0}};

    NEED_SERVER();
    if (!url.password[0])
        skip();
    snprintf(u.password, sizeof(u.password), "wrong-Pw-123");
    assert_int_equal(redis_conn_new(base, &u, &events, &ev, &rc), 0);
    assert_int_equal(redis_conn_command(rc, on_reply, &res, "PING"), 0);
    WAIT_UNTIL(ev.connect_failed >= 1 && res.calls == 1, 5000);
    assert_int_equal(ev.connected, 0);
    assert_int_equal(res.calls, 1);
    assert_true(res.null_reply);
    assert_non_null(strstr(ev.reason, "auth failed"));
    assert_non_null(strstr(ev.reason, ":***@"));
    assert_null(strstr(ev.reason, "wrong-Pw-123"));
    assert_string_equal(redis_conn_last_error(rc), ev.reason);
    assert_false(redis_conn_ready(rc));
    redis_conn_free(rc);
    printf("checked: async AUTH failure: %s\n", ev.reason);

    assert_int_equal(redis_connect_sync(&u, 2000, &c, &eb), -EACCES);
    assert_null(c);
    assert_non_null(strstr(eb.msg, "auth failed"));
    assert_null(strstr(eb.msg, "wrong-Pw-123"));
    printf("checked: sync AUTH failure: %s\n", eb.msg);
}

static void test_refused_and_silent_servers_fail_attempts(void **state)
{
    struct redis_url u = url;
    struct events_seen ev = {0};
    struct redis_conn_events short_timeout = events;
    struct sockaddr_in sin = {0};
    socklen_t sl = sizeof(sin);
    struct redis_conn *rc;
    redisContext *c = NULL;
    struct errbuf eb = {{0}};
    int64_t t0;
    int fd;

    NEED_SERVER();
    /* A listening socket that never accepts: TCP connects, nothing ever answers. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    u.unix_socket = false;
    snprintf(u.host, sizeof(u.host), "127.0.0.1");
    u.port = ntohs(sin.sin_port);

    short_timeout.connect_timeout_ms = 300;
    t0 = now_ms();
    assert_int_equal(redis_conn_new(base, &u, &short_timeout, &ev, &rc), 0);
    WAIT_UNTIL(ev.connect_failed >= 1, 5000);
    assert_int_equal(ev.connect_failed, 1);
    /* libevent's coarse monotonic clock can round a few ms short. */
    assert_true(now_ms() - t0 >= 280);
    assert_non_null(strstr(ev.reason, "no ready connection within 300 ms"));
    printf("checked: silent server: %s\n", ev.reason);
    redis_conn_free(rc);

    /* Nothing listens on the port any more: refused, and attempts keep coming. */
    close(fd);
    memset(&ev, 0, sizeof(ev));
    assert_int_equal(redis_conn_new(base, &u, &events, &ev, &rc), 0);
    WAIT_UNTIL(ev.connect_failed >= 3, 5000);
    assert_true(ev.connect_failed >= 3);
    assert_non_null(strstr(ev.reason, "connection refused"));
    printf("checked: refused: %s (%d attempts)\n", ev.reason, ev.connect_failed);
    redis_conn_free(rc);

    assert_int_equal(redis_connect_sync(&u, 1000, &c, &eb), -ENOTCONN);
    assert_non_null(strstr(eb.msg, "connection refused"));
}

static void test_killed_connection_fails_pending_and_reconnects(void **state)
{
    struct events_seen ev = {0};
    struct result hello = {0}, blocked = {0}, after = {0};
    struct redis_conn *rc;
    redisContext *c;
    char cmd[64];

    NEED_SERVER();
    assert_int_equal(redis_conn_new(base, &url, &events, &ev, &rc), 0);
    assert_int_equal(redis_conn_command(rc, on_reply, &hello, "CLIENT ID"), 0);
    WAIT_UNTIL(hello.calls == 1, 5000);
    assert_int_equal(hello.type, REDIS_REPLY_INTEGER);
    /* A command that stays pending until the connection dies. */
    assert_int_equal(redis_conn_command(rc, on_reply, &blocked, "BLPOP maintq:test:never 0"), 0);
    c = sync_ctx(0);
    snprintf(cmd, sizeof(cmd), "CLIENT KILL ID %lld", hello.integer);
    sync_cmd(c, cmd);
    redisFree(c);
    WAIT_UNTIL(blocked.calls == 1 && ev.disconnected == 1, 5000);
    assert_int_equal(blocked.calls, 1);
    assert_true(blocked.null_reply);
    assert_int_equal(ev.disconnected, 1);
    WAIT_UNTIL(ev.connected == 2, 5000);
    assert_int_equal(ev.connected, 2);
    assert_int_equal(redis_conn_command(rc, on_reply, &after, "PING"), 0);
    WAIT_UNTIL(after.calls == 1, 5000);
    assert_string_equal(after.str, "PONG");
    redis_conn_free(rc);
    printf("checked: killed client: pending BLPOP got NULL, reconnected (%s)\n", ev.reason);
}

static int stack(const char *what)
{
    const char *tool = getenv("MAINTQ_STACK");
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), "'%s' %s", tool, what);
    return system(cmd);
}

static void test_restart_fails_pending_and_reconnects(void **state)
{
    struct events_seen ev = {0};
    struct result first = {0}, blocked = {0}, during = {0}, after = {0};
    struct redis_conn *rc;

    NEED_SERVER();
    if (!getenv("MAINTQ_STACK")) {
        fprintf(stderr, "MAINTQ_STACK is not set: restart test skipped\n");
        skip();
    }
    assert_int_equal(redis_conn_new(base, &url, &events, &ev, &rc), 0);
    assert_int_equal(redis_conn_command(rc, on_reply, &first, "PING"), 0);
    WAIT_UNTIL(first.calls == 1, 5000);
    assert_int_equal(redis_conn_command(rc, on_reply, &blocked, "BLPOP maintq:test:never 0"), 0);
    assert_int_equal(stack("redis-stop"), 0);
    WAIT_UNTIL(blocked.calls == 1 && ev.disconnected == 1, 5000);
    assert_true(blocked.null_reply);
    assert_int_equal(ev.disconnected, 1);
    printf("checked: redis stopped: %s\n", ev.reason);

    /* While Redis is down, attempts fail and a command waits for one, then fails. */
    assert_int_equal(redis_conn_command(rc, on_reply, &during, "PING"), 0);
    WAIT_UNTIL(during.calls == 1, 10000);
    assert_true(during.null_reply);
    assert_true(ev.connect_failed >= 1);

    assert_int_equal(stack("redis-start"), 0);
    WAIT_UNTIL(ev.connected == 2, 15000);
    assert_int_equal(ev.connected, 2);
    assert_int_equal(redis_conn_command(rc, on_reply, &after, "PING"), 0);
    WAIT_UNTIL(after.calls == 1, 5000);
    assert_string_equal(after.str, "PONG");
    redis_conn_free(rc);
    printf("checked: redis restarted: connection came back after %d failed attempts\n",
           ev.connect_failed);
}

static void test_script_falls_back_to_eval(void **state)
{
    static const char lua[] = "return {KEYS[1], ARGV[1], 'maintq-test-script'}";
    struct redis_script script;
    struct result first = {0}, second = {0};
    struct redis_conn *rc;
    const char *argv[] = {"k1", "a1"};
    redisContext *c;
    redisReply *r;

    NEED_SERVER();
    assert_int_equal(redis_script_init(&script, lua), 0);
    assert_int_equal(strlen(script.sha1), 40);
    c = sync_ctx(0);
    sync_cmd(c, "SCRIPT FLUSH");
    assert_int_equal(redis_conn_new(base, &url, NULL, NULL, &rc), 0);
    assert_int_equal(redis_conn_script(rc, &script, on_reply, &first, 1, 2, argv, NULL), 0);
    WAIT_UNTIL(first.calls == 1, 5000);
    assert_int_equal(first.type, REDIS_REPLY_ARRAY);
    assert_int_equal(first.elements, 3);
    /* EVAL cached it under the SHA1 we computed. */
    r = redisCommand(c, "SCRIPT EXISTS %s", script.sha1);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->integer, 1);
    freeReplyObject(r);
    assert_int_equal(redis_conn_script(rc, &script, on_reply, &second, 1, 2, argv, NULL), 0);
    WAIT_UNTIL(second.calls == 1, 5000);
    assert_int_equal(second.type, REDIS_REPLY_ARRAY);
    assert_int_equal(redis_conn_script(rc, &script, NULL, NULL, 3, 2, argv, NULL), -EINVAL);
    redisFree(c);
    redis_conn_free(rc);
    printf("checked: EVALSHA after SCRIPT FLUSH fell back to EVAL (sha1 %s)\n", script.sha1);
}

struct free_from_callback {
    struct redis_conn *rc;
    int calls;
};

static void free_in_callback(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct free_from_callback *f = data;

    f->calls++;
    f->rc = redis_conn_free(rc);
}

static void test_free_never_calls_back(void **state)
{
    struct events_seen ev = {0};
    struct free_from_callback f = {0};
    struct result blocked = {0}, queued = {0};
    struct redis_conn *rc;
    int64_t until;

    NEED_SERVER();
    /* Freed before the loop ever ran. */
    assert_int_equal(redis_conn_new(base, &url, &events, &ev, &rc), 0);
    assert_int_equal(redis_conn_command(rc, on_reply, &queued, "PING"), 0);
    redis_conn_free(rc);

    /* Freed from a reply callback while another command is in flight. */
    assert_int_equal(redis_conn_new(base, &url, &events, &ev, &rc), 0);
    f.rc = rc;
    assert_int_equal(redis_conn_command(rc, free_in_callback, &f, "PING"), 0);
    assert_int_equal(redis_conn_command(rc, on_reply, &blocked, "BLPOP maintq:test:never 0"), 0);
    WAIT_UNTIL(f.calls == 1, 5000);
    assert_int_equal(f.calls, 1);
    assert_null(f.rc);
    until = now_ms() + 300;
    WAIT_UNTIL(now_ms() >= until, 1000); /* give stray callbacks a chance to show up */
    assert_int_equal(blocked.calls, 0);
    assert_int_equal(queued.calls, 0);
    assert_int_equal(ev.connected, 1);
    assert_int_equal(ev.disconnected, 0);
    assert_int_equal(ev.connect_failed, 0);
    printf("checked: free inside a callback: no callback afterwards\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_queued_before_ready_run_after_select),
        cmocka_unit_test(test_wrong_password_is_a_clear_error),
        cmocka_unit_test(test_refused_and_silent_servers_fail_attempts),
        cmocka_unit_test(test_killed_connection_fails_pending_and_reconnects),
        cmocka_unit_test(test_script_falls_back_to_eval),
        cmocka_unit_test(test_free_never_calls_back),
        cmocka_unit_test(test_restart_fails_pending_and_reconnects),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
