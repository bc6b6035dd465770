/* Asynchronous Redis connection with handshake, command queue and reconnect (see redis.h).
 *
 * One state machine per connection: WAITING (no socket; the retry timer is armed) ->
 * CONNECTING (hiredis connecting, the attempt timer armed: hiredis 0.14 has no async
 * connect timeout) -> HANDSHAKE (AUTH, SELECT and a PING in flight, caller commands held
 * in `queued`) -> READY (caller commands go straight to hiredis and are tracked in
 * `inflight`). Any failure goes back to WAITING through rc_lost(), which fails what is
 * queued and arms the retry timer with backoff. DYING is the short moment inside hiredis's
 * own teardown, when it hands NULL replies to in-flight commands before its disconnect
 * callback: commands sent then are queued for the next connection.
 *
 * Freeing is the delicate part: hiredis invokes every pending callback (with NULL) while
 * it frees a context, and defers the free when called from inside one of its callbacks.
 * So the hiredis context's `data` is cleared and in-flight commands are "orphaned"
 * (cmd->rc = NULL) before redisAsyncFree(); our trampolines then only release memory. A
 * caller that frees the connection from inside one of our callbacks leaves `depth` > 0,
 * and the outermost callback frame releases the struct itself. */
#include "redis.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>
#include <openssl/evp.h>

#include "backoff.h"
#include "clock.h"
#include "errbuf.h"
#include "resp.h"
#include "strbuf.h"
#include "url.h"

enum rc_state {
    RC_WAITING,
    RC_CONNECTING,
    RC_HANDSHAKE,
    RC_READY,
    RC_DYING,
};

struct redis_cmd {
    struct redis_conn *rc; /* borrowed; NULL once orphaned by redis_conn_free() */
    redis_reply_fn *cb;
    void *data; /* borrowed, the caller's */
    char *buf;  /* owned: the formatted command while queued, freed once sent (a script
                 * call keeps its EVALSHA form until the reply, see script_text) */
    size_t len;
    const char *script_text; /* borrowed constant: set while a NOSCRIPT reply would resend
                              * this EVALSHA as EVAL */
    size_t script_args_at;   /* offset in buf of what follows the SHA1 (numkeys on) */
    struct redis_cmd *prev, *next;
};

struct cmd_list {
    struct redis_cmd *head, *tail;
};

struct redis_conn {
    struct event_base *base; /* borrowed */
    struct redis_url url;
    struct redis_conn_events ev;
    void *ev_data; /* borrowed */
    char display[REDIS_URL_DISPLAY_MAX];
    char last_error[512];

    enum rc_state state;
    redisAsyncContext *ac;   /* owned by hiredis once connected; NULL while WAITING */
    const char *hs_steps[3]; /* handshake steps sent ("auth failed", ...), in order */
    int hs_count;            /* steps sent */
    int hs_done;             /* steps answered */
    bool was_ready;          /* this connection reached READY (decides which event fires) */
    struct backoff backoff;  /* reconnect delays */

    struct event *retry_ev;   /* owned: starts the next attempt */
    struct event *timeout_ev; /* owned: ends an attempt that takes too long */

    struct cmd_list queued;   /* not sent yet, FIFO */
    struct cmd_list inflight; /* sent, reply pending (owned by hiredis's callback list) */

    int depth;    /* nesting of our callbacks currently running */
    bool closing; /* redis_conn_free() was called */
};

static void cmd_list_append(struct cmd_list *l, struct redis_cmd *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void cmd_list_remove(struct cmd_list *l, struct redis_cmd *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

static void cmd_free(struct redis_cmd *c)
{
    if (!c)
        return;
    free(c->buf);
    free(c);
}

static void cmd_list_free(struct cmd_list *l)
{
    while (l->head) {
        struct redis_cmd *c = l->head;

        cmd_list_remove(l, c);
        cmd_free(c);
    }
}

/* Bracket every call into caller code. rc_leave() returns true when the caller freed the
 * connection meanwhile: the calling frame must then return without touching rc. */
static void rc_enter(struct redis_conn *rc)
{
    rc->depth++;
}

static bool rc_leave(struct redis_conn *rc)
{
    rc->depth--;
    if (!rc->closing)
        return false;
    if (rc->depth == 0)
        free(rc);
    return true;
}

void redis_error_text(char *buf, size_t size, const char *msg)
{
    const char *tail;
    size_t len;

    if (!msg || !*msg)
        msg = "unknown error";
    len = strlen(msg);
    /* An error raised inside a script ends in " script: <sha1>, on @user_script:<line>." */
    tail = strstr(msg, " script: ");
    if (tail)
        len = (size_t)(tail - msg);
    snprintf(buf, size, "%.*s", (int)len, msg);
    if (isupper((unsigned char)buf[0]) && buf[1] && !isupper((unsigned char)buf[1]))
        buf[0] = (char)tolower((unsigned char)buf[0]);
    len = strlen(buf);
    while (len > 0 && (buf[len - 1] == '.' || buf[len - 1] == ' '))
        buf[--len] = '\0';
}

/* Formats "redis <display>: [<what>: ]<msg>", msg as redis_error_text() words it. */
static void set_reason(char *buf, size_t size, const char *display, const char *what,
                       const char *msg)
{
    int off = snprintf(buf, size, "redis %s: %s%s", display, what ? what : "", what ? ": " : "");

    if (off < 0 || (size_t)off >= size)
        return;
    redis_error_text(buf + off, size - (size_t)off, msg);
}

static void on_cmd_reply(redisAsyncContext *ac, void *r, void *privdata);
static void rc_lost(struct redis_conn *rc, const char *reason);

/* Hands a command to hiredis; on refusal (context going away) it stays queued. */
static void rc_send(struct redis_conn *rc, struct redis_cmd *c)
{
    if (rc->state != RC_READY ||
        redisAsyncFormattedCommand(rc->ac, on_cmd_reply, c, c->buf, c->len) != REDIS_OK) {
        cmd_list_append(&rc->queued, c);
        return;
    }
    /* hiredis copied the bytes into its output buffer. */
    if (!c->script_text) {
        free(c->buf);
        c->buf = NULL;
    }
    cmd_list_append(&rc->inflight, c);
}

static void rc_flush(struct redis_conn *rc)
{
    struct cmd_list q = rc->queued;

    rc->queued.head = rc->queued.tail = NULL;
    while (q.head) {
        struct redis_cmd *c = q.head;

        cmd_list_remove(&q, c);
        rc_send(rc, c);
    }
}

/* The script cache was empty (a restart or failover): sends c's EVALSHA again as EVAL,
 * which also caches the script. Only once per call: c->script_text is cleared. The array
 * header's count stays right, as EVAL and the script text take the places of EVALSHA and
 * the SHA1: so the new command is that header, those two bulk strings, then the rest of
 * the original from script_args_at on. */
static int resend_as_eval(redisAsyncContext *ac, struct redis_cmd *c)
{
    const char *nl = memchr(c->buf, '\n', c->len);
    size_t text_len = strlen(c->script_text);
    struct strbuf b = {0};
    int r;

    strbuf_add(&b, c->buf, (size_t)(nl - c->buf) + 1);
    strbuf_add_lit(&b, "$4\r\nEVAL\r\n$");
    strbuf_add_int(&b, (int64_t)text_len);
    strbuf_add_lit(&b, "\r\n");
    strbuf_add(&b, c->script_text, text_len);
    strbuf_add_lit(&b, "\r\n");
    strbuf_add(&b, c->buf + c->script_args_at, c->len - c->script_args_at);
    r = b.err;
    if (r == 0 && redisAsyncFormattedCommand(ac, on_cmd_reply, c, b.buf, b.len) != REDIS_OK)
        r = -EIO;
    strbuf_release(&b);
    if (r == 0) {
        free(c->buf);
        c->buf = NULL;
        c->script_text = NULL;
    }
    return r;
}

static void on_cmd_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_cmd *c = privdata;
    struct redis_conn *rc = c->rc;
    redisReply *reply = r;

    if (!rc) { /* orphaned by redis_conn_free() */
        cmd_free(c);
        return;
    }
    cmd_list_remove(&rc->inflight, c);
    if (!reply && rc->state == RC_READY)
        rc->state = RC_DYING; /* hiredis is tearing the context down */
    if (reply && c->script_text && reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0 && rc->state == RC_READY &&
        resend_as_eval(ac, c) == 0) {
        cmd_list_append(&rc->inflight, c);
        return;
    }
    rc_enter(rc);
    if (c->cb)
        c->cb(rc, reply, c->data);
    cmd_free(c);
    rc_leave(rc);
}

/* Drops the hiredis context ourselves (attempt timeout, handshake refused). */
static void rc_drop(struct redis_conn *rc, const char *reason)
{
    redisAsyncContext *ac = rc->ac;

    rc->state = RC_DYING;
    rc->ac = NULL;
    if (ac) {
        ac->data = NULL; /* our connect/disconnect/handshake callbacks ignore it now */
        redisAsyncFree(ac);
    }
    rc_lost(rc, reason);
}

static void on_handshake_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_conn *rc = privdata;
    redisReply *reply = r;
    char reason[sizeof(rc->last_error)];

    if (ac->data != rc || !reply)
        return; /* dropped, freed, or dying: the disconnect path reports it */
    if (reply->type == REDIS_REPLY_ERROR) {
        /* Replies arrive in the order the steps were sent. */
        set_reason(reason, sizeof(reason), rc->display, rc->hs_steps[rc->hs_done], reply->str);
        rc_drop(rc, reason);
        return;
    }
    if (++rc->hs_done < rc->hs_count)
        return;
    event_del(rc->timeout_ev);
    rc->state = RC_READY;
    rc->was_ready = true;
    backoff_reset(&rc->backoff);
    rc->last_error[0] = '\0';
    rc_flush(rc);
    if (rc->ev.connected) {
        rc_enter(rc);
        rc->ev.connected(rc, rc->ev_data);
        rc_leave(rc);
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)(uintptr_t)cac; /* hiredis API quirk */
    struct redis_conn *rc = ac->data;
    char reason[sizeof(rc->last_error)];
    char db[16];

    if (!rc)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback returns. */
        rc->ac = NULL;
        ac->data = NULL;
        set_reason(reason, sizeof(reason), rc->display, NULL, ac->errstr);
        rc_lost(rc, reason);
        return;
    }
    /* AUTH, SELECT and a PING, pipelined; READY on the last reply. The PING also means
     * READY is always reached inside a reply callback, where hiredis tolerates a free. */
    rc->state = RC_HANDSHAKE;
    rc->hs_count = rc->hs_done = 0;
    if (rc->url.password[0]) {
        if (rc->url.user[0])
            redisAsyncCommand(ac, on_handshake_reply, rc, "AUTH %s %s", rc->url.user,
                              rc->url.password);
        else
            redisAsyncCommand(ac, on_handshake_reply, rc, "AUTH %s", rc->url.password);
        rc->hs_steps[rc->hs_count++] = "auth failed";
    }
    if (rc->url.db) {
        snprintf(db, sizeof(db), "%d", rc->url.db);
        redisAsyncCommand(ac, on_handshake_reply, rc, "SELECT %s", db);
        rc->hs_steps[rc->hs_count++] = "select failed";
    }
    /* A failed command here times out the attempt (the timer is still armed). */
    redisAsyncCommand(ac, on_handshake_reply, rc, "PING");
    rc->hs_steps[rc->hs_count++] = "ping failed";
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    struct redis_conn *rc = cac->data;
    char reason[sizeof(rc->last_error)];

    if (!rc)
        return;
    rc->ac = NULL;
    set_reason(reason, sizeof(reason), rc->display, NULL,
               status == REDIS_OK ? "connection closed" : cac->errstr);
    rc_lost(rc, reason);
}

static void rc_start_attempt(struct redis_conn *rc)
{
    char reason[sizeof(rc->last_error)];
    redisAsyncContext *ac;
    struct timeval tv;

    ac = rc->url.unix_socket ? redisAsyncConnectUnix(rc->url.path)
                             : redisAsyncConnect(rc->url.host, rc->url.port);
    if (!ac) {
        set_reason(reason, sizeof(reason), rc->display, NULL, "out of memory");
        rc_lost(rc, reason);
        return;
    }
    if (ac->err) {
        set_reason(reason, sizeof(reason), rc->display, NULL, ac->errstr);
        redisAsyncFree(ac);
        rc_lost(rc, reason);
        return;
    }
    ac->data = rc;
    redisLibeventAttach(ac, rc->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    rc->ac = ac;
    rc->state = RC_CONNECTING;
    rc->was_ready = false;
    tv = clock_timeval_from_ms(rc->ev.connect_timeout_ms);
    event_add(rc->timeout_ev, &tv);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    rc_start_attempt(arg);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct redis_conn *rc = arg;
    char msg[64], reason[sizeof(rc->last_error)];

    snprintf(msg, sizeof(msg), "no ready connection within %d ms", rc->ev.connect_timeout_ms);
    set_reason(reason, sizeof(reason), rc->display, NULL, msg);
    rc_drop(rc, reason);
}

/* The connection (or the attempt) is gone: report it, fail what waited for it, and arm
 * the retry timer. */
static void rc_lost(struct redis_conn *rc, const char *reason)
{
    struct cmd_list q = rc->queued;
    bool was_ready = rc->was_ready;
    int64_t d;
    struct timeval tv;

    event_del(rc->timeout_ev);
    rc->state = RC_WAITING;
    rc->was_ready = false;
    snprintf(rc->last_error, sizeof(rc->last_error), "%s", reason);
    d = backoff_next_ms(&rc->backoff);
    tv = clock_timeval_from_ms(d);
    event_add(rc->retry_ev, &tv);

    /* Commands that waited for this attempt fail. After a ready connection the queue only
     * holds commands issued while hiredis was tearing it down (from the NULL-reply
     * callbacks): they belong to the next attempt. So do commands queued from the
     * callbacks below. */
    if (was_ready)
        q.head = q.tail = NULL;
    else
        rc->queued.head = rc->queued.tail = NULL;
    rc_enter(rc);
    if (was_ready && rc->ev.disconnected)
        rc->ev.disconnected(rc, rc->last_error, rc->ev_data);
    else if (!was_ready && rc->ev.connect_failed)
        rc->ev.connect_failed(rc, rc->last_error, rc->ev_data);
    while (q.head && !rc->closing) {
        struct redis_cmd *c = q.head;

        cmd_list_remove(&q, c);
        if (c->cb)
            c->cb(rc, NULL, c->data);
        cmd_free(c);
    }
    cmd_list_free(&q);
    rc_leave(rc);
}

int redis_conn_new(struct event_base *base, const struct redis_url *url,
                   const struct redis_conn_events *ev, void *ev_data, struct redis_conn **ret)
{
    struct redis_conn *rc;
    struct timeval now = {0, 0};
    struct timespec ts;
    int r;

    /* rediss:// only parses in builds with hiredis >= 1.0, and even there the hiredis_ssl
     * setup is not written yet: refuse rather than talk plain text to a TLS port. */
    if (url->tls)
        return -ENOTSUP;
    rc = calloc(1, sizeof(*rc));
    if (!rc)
        return -ENOMEM;
    rc->base = base;
    rc->url = *url;
    if (ev)
        rc->ev = *ev;
    if (rc->ev.connect_timeout_ms <= 0)
        rc->ev.connect_timeout_ms = REDIS_CONN_CONNECT_TIMEOUT_MS;
    rc->ev_data = ev_data;
    redis_url_format(url, rc->display, sizeof(rc->display));
    clock_gettime(CLOCK_MONOTONIC, &ts);
    backoff_init(&rc->backoff, REDIS_CONN_BACKOFF_MIN_MS, REDIS_CONN_BACKOFF_MAX_MS,
                 (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)rc);
    rc->retry_ev = evtimer_new(base, on_retry, rc);
    rc->timeout_ev = evtimer_new(base, on_timeout, rc);
    if (!rc->retry_ev || !rc->timeout_ev) {
        r = -ENOMEM;
        goto fail;
    }
    /* The first attempt runs from the loop, so no callback fires inside this call. */
    if (event_add(rc->retry_ev, &now) < 0) {
        r = -ENOMEM;
        goto fail;
    }
    *ret = rc;
    return 0;
fail:
    redis_conn_free(rc);
    return r;
}

struct redis_conn *redis_conn_free(struct redis_conn *rc)
{
    struct redis_cmd *c;
    redisAsyncContext *ac;

    if (!rc || rc->closing)
        return NULL;
    rc->closing = true;
    if (rc->retry_ev)
        event_free(rc->retry_ev);
    if (rc->timeout_ev)
        event_free(rc->timeout_ev);
    rc->retry_ev = rc->timeout_ev = NULL;
    /* hiredis owns the in-flight commands' callback slots and will call them (now, or
     * after the callback it is running) with NULL: make those calls release memory only. */
    for (c = rc->inflight.head; c; c = c->next)
        c->rc = NULL;
    rc->inflight.head = rc->inflight.tail = NULL;
    ac = rc->ac;
    rc->ac = NULL;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    cmd_list_free(&rc->queued);
    if (rc->depth == 0)
        free(rc);
    return NULL;
}

/* Takes ownership of buf. script_text and script_args_at as in struct redis_cmd. */
static int rc_submit(struct redis_conn *rc, redis_reply_fn *cb, void *data, char *buf,
                     size_t len, const char *script_text, size_t script_args_at)
{
    struct redis_cmd *c = calloc(1, sizeof(*c));

    if (!c) {
        free(buf);
        return -ENOMEM;
    }
    c->rc = rc;
    c->cb = cb;
    c->data = data;
    c->buf = buf;
    c->len = len;
    c->script_text = script_text;
    c->script_args_at = script_args_at;
    rc_send(rc, c);
    return 0;
}

/* Copies the encoded command (lead... then cmd's arguments) into a buffer of its own. */
static int submit_encoded(struct redis_conn *rc, redis_reply_fn *cb, void *data,
                          struct resp_cmd *cmd, int nlead, const char *const *lead,
                          const char *script_text)
{
    const char *bytes;
    size_t len, args_at = 0;
    char *copy;
    int r;

    if (rc->closing)
        return -ESHUTDOWN;
    r = resp_cmd_encode(cmd, nlead, lead, &bytes, &len);
    if (r < 0)
        return r;
    copy = malloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, bytes, len);
    if (script_text) {
        /* What follows EVALSHA and the SHA1, numkeys on: "*<n>\r\n", then 13 bytes
         * "$7\r\nEVALSHA\r\n" and 47 bytes "$40\r\n<sha1>\r\n". */
        args_at = (size_t)((const char *)memchr(copy, '\n', len) - copy) + 1 + 13 + 47;
    }
    return rc_submit(rc, cb, data, copy, len, script_text, args_at);
}

int redis_conn_send(struct redis_conn *rc, redis_reply_fn *cb, void *data, struct resp_cmd *cmd)
{
    return submit_encoded(rc, cb, data, cmd, 0, NULL, NULL);
}

int redis_conn_script_send(struct redis_conn *rc, const struct redis_script *s,
                           redis_reply_fn *cb, void *data, int numkeys, struct resp_cmd *args)
{
    char nk[16];
    const char *lead[] = {"EVALSHA", s->sha1, nk};

    if (numkeys < 0 || numkeys > args->argc)
        return -EINVAL;
    snprintf(nk, sizeof(nk), "%d", numkeys);
    return submit_encoded(rc, cb, data, args, 3, lead, s->text);
}

int redis_conn_command(struct redis_conn *rc, redis_reply_fn *cb, void *data, const char *fmt, ...)
{
    char *buf = NULL;
    va_list ap;
    int len;

    if (rc->closing)
        return -ESHUTDOWN;
    va_start(ap, fmt);
    len = redisvFormatCommand(&buf, fmt, ap);
    va_end(ap);
    if (len == -2)
        return -ENOMEM;
    if (len < 0)
        return -EINVAL;
    return rc_submit(rc, cb, data, buf, (size_t)len, NULL, 0);
}

bool redis_conn_ready(const struct redis_conn *rc)
{
    return rc->state == RC_READY;
}

const char *redis_conn_last_error(const struct redis_conn *rc)
{
    return rc->last_error;
}

const char *redis_conn_display(const struct redis_conn *rc)
{
    return rc->display;
}

int redis_script_init(struct redis_script *s, const char *text)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;

    if (!EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return -EIO;
    for (i = 0; i < mdlen; i++) {
        s->sha1[2 * i] = hex[md[i] >> 4];
        s->sha1[2 * i + 1] = hex[md[i] & 15];
    }
    s->sha1[40] = '\0';
    s->text = text;
    return 0;
}

int redis_conn_script(struct redis_conn *rc, const struct redis_script *s, redis_reply_fn *cb,
                      void *data, int numkeys, int argc, const char **argv, const size_t *argvlen)
{
    struct resp_cmd args = {0};
    int r;

    if (argc < 0)
        return -EINVAL;
    for (int i = 0; i < argc; i++)
        resp_cmd_add(&args, argv[i], argvlen ? argvlen[i] : strlen(argv[i]));
    r = redis_conn_script_send(rc, s, cb, data, numkeys, &args);
    resp_cmd_release(&args);
    return r;
}

int redis_connect_sync(const struct redis_url *url, int timeout_ms, struct redisContext **ret,
                       struct errbuf *eb)
{
    char display[REDIS_URL_DISPLAY_MAX], reason[512];
    redisContext *c;
    redisReply *reply = NULL;
    struct timeval tv;
    int r;

    redis_url_format(url, display, sizeof(display));
    if (url->tls) {
        errbuf_set(eb, "redis %s: tls is not supported yet", display);
        return -ENOTSUP;
    }
    tv = clock_timeval_from_ms(timeout_ms);
    c = url->unix_socket ? redisConnectUnixWithTimeout(url->path, tv)
                         : redisConnectWithTimeout(url->host, url->port, tv);
    if (!c)
        return -ENOMEM;
    if (c->err) {
        set_reason(reason, sizeof(reason), display, NULL, c->errstr);
        r = -ENOTCONN;
        goto fail_msg;
    }
    redisSetTimeout(c, tv);
    if (url->password[0]) {
        reply = url->user[0] ? redisCommand(c, "AUTH %s %s", url->user, url->password)
                             : redisCommand(c, "AUTH %s", url->password);
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
            set_reason(reason, sizeof(reason), display, reply ? "auth failed" : NULL,
                       reply ? reply->str : c->errstr);
            r = reply ? -EACCES : -EIO;
            goto fail_msg;
        }
        freeReplyObject(reply);
    }
    reply = redisCommand(c, "SELECT %d", url->db);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        set_reason(reason, sizeof(reason), display, reply ? "select failed" : NULL,
                   reply ? reply->str : c->errstr);
        r = -EIO;
        goto fail_msg;
    }
    freeReplyObject(reply);
    *ret = c;
    return 0;
fail_msg:
    errbuf_set(eb, "%s", reason);
    if (reply)
        freeReplyObject(reply);
    redisFree(c);
    return r;
}
