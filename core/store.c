/* Non-blocking libpq connection on libevent (see store.h).
 *
 * States: WAITING (no connection; the retry timer is armed) -> CONNECTING (PQconnectPoll
 * driven by socket events, whose descriptor may change between polls, under an attempt
 * timer: libpq's connect_timeout only applies to its blocking calls) -> READY (idle, or
 * one statement `current` sent and its results being read). Any failure goes through
 * st_lost(), which closes the connection, fails `current` and every queued statement
 * with a NULL result, and arms the retry timer with backoff.
 *
 * A COPY FROM STDIN (store_copy) is one statement too: it is sent with PQsendQuery; when
 * the server answers CopyInResponse the data goes out in chunks of COPY_CHUNK bytes, the
 * next chunk only once libpq's output buffer is flushed (so libpq never holds more than a
 * chunk, and a slow socket parks us on the write event rather than blocking), then
 * PQputCopyEnd, and the final result reaches the callback like any other answer (the
 * last one, when statements follow the COPY in the same string).
 *
 * Why one statement at a time rather than pipeline mode: every statement then stands
 * alone (in a pipeline, an error aborts everything up to the next sync, and a break loses
 * all of them in ways the caller must untangle), a callback always sees the server's final
 * answer for exactly its statement, and the worker already amortises round trips by
 * writing results as multi-row INSERTs; one loopback round trip per batch is not the
 * bottleneck.
 *
 * Every libevent callback holds the struct (depth) for its whole run, so a caller freeing
 * the store from one of our callbacks only sets `closing`; code after any callback checks
 * that flag, and the outermost frame releases the memory. */
#include "store.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "backoff.h"
#include "clock.h"
#include "url.h"

#define STORE_DISPLAY_MAX 512
#define CHANNEL_MAX 63
/* Bytes handed to PQputCopyData at a time: big enough that the per-message overhead is
 * nothing, small enough that libpq's output buffer stays small. */
#define COPY_CHUNK (64 * 1024)

enum st_state {
    ST_WAITING,
    ST_CONNECTING,
    ST_READY,
};

/* Where a store_copy statement is; a store_query statement stays COPY_NONE. */
enum copy_phase {
    COPY_NONE,
    COPY_WAITING, /* COPY sent, CopyInResponse not yet read */
    COPY_SENDING, /* pushing data, then the end of it */
    COPY_ENDED,   /* all sent: reading the final result */
};

struct stmt {
    char *sql; /* owned */
    int nparams;
    char **values; /* owned, each entry owned or NULL (SQL NULL) */
    enum copy_phase copy;
    char *copy_data; /* owned; NULL for store_query statements */
    size_t copy_len, copy_off;
    store_result_fn *cb;
    void *data; /* borrowed, the caller's */
    struct stmt *next;
};

struct channel {
    char name[CHANNEL_MAX + 1];
    struct channel *next;
};

struct store {
    struct event_base *base; /* borrowed */
    char *conninfo;          /* owned */
    char display[STORE_DISPLAY_MAX];
    struct store_events ev;
    void *ev_data; /* borrowed */
    char last_error[768];

    enum st_state state;
    PGconn *conn;     /* owned; NULL while WAITING */
    bool was_ready;   /* this connection reached READY */
    struct backoff backoff;  /* reconnect delays */

    struct event *sock_ev; /* owned: read (persistent when READY) or write while connecting */
    evutil_socket_t sock_fd;
    short sock_what;
    struct event *write_ev;   /* owned: output still to flush */
    struct event *retry_ev;   /* owned */
    struct event *timeout_ev; /* owned */

    struct stmt *current;     /* owned: sent, answer pending */
    PGresult *result;         /* owned: the current statement's latest result */
    struct stmt *head, *tail; /* owned: queued */
    struct channel *channels; /* owned */

    int depth;
    bool closing;
};

static void stmt_free(struct stmt *st)
{
    int i;

    if (!st)
        return;
    free(st->sql);
    for (i = 0; st->values && i < st->nparams; i++)
        free(st->values[i]);
    free(st->values);
    free(st->copy_data);
    free(st);
}

/* A LISTEN statement for channel, its name quoted as an identifier. */
static struct stmt *stmt_new_listen(const char *channel)
{
    struct stmt *st = calloc(1, sizeof(*st));
    size_t i, o = 8;

    if (!st)
        return NULL;
    st->sql = malloc(2 * strlen(channel) + 10);
    if (!st->sql) {
        free(st);
        return NULL;
    }
    memcpy(st->sql, "LISTEN \"", 8);
    for (i = 0; channel[i]; i++) {
        if (channel[i] == '"')
            st->sql[o++] = '"';
        st->sql[o++] = channel[i];
    }
    memcpy(st->sql + o, "\"", 2);
    return st;
}

static void stmt_list_free(struct stmt *st)
{
    while (st) {
        struct stmt *next = st->next;

        stmt_free(st);
        st = next;
    }
}

static void st_enter(struct store *s)
{
    s->depth++;
}

/* Returns true when the store was freed meanwhile (the frame must not touch it again). */
static bool st_leave(struct store *s)
{
    s->depth--;
    if (!s->closing)
        return false;
    if (s->depth == 0)
        free(s);
    return true;
}

/* "postgres <display>: <first line of msg>" */
static void set_reason(struct store *s, const char *msg)
{
    size_t n = strcspn(msg && *msg ? msg : "unknown error", "\n");

    snprintf(s->last_error, sizeof(s->last_error), "postgres %s: %.*s", s->display, (int)n,
             msg && *msg ? msg : "unknown error");
}

static void st_unwatch(struct store *s)
{
    if (s->sock_ev)
        event_free(s->sock_ev);
    if (s->write_ev)
        event_free(s->write_ev);
    s->sock_ev = s->write_ev = NULL;
}

static void on_sock(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

/* Waits for what (EV_READ or EV_WRITE, maybe with EV_PERSIST) on the connection's current
 * socket, re-creating the event when the descriptor or the flags changed. */
static int st_watch(struct store *s, short what)
{
    evutil_socket_t fd = PQsocket(s->conn);

    if (fd < 0)
        return -EBADF;
    if (!s->sock_ev || s->sock_fd != fd || s->sock_what != what) {
        st_unwatch(s);
        s->sock_ev = event_new(s->base, fd, what, on_sock, s);
        s->write_ev = event_new(s->base, fd, EV_WRITE, on_write, s);
        if (!s->sock_ev || !s->write_ev)
            return -ENOMEM;
        s->sock_fd = fd;
        s->sock_what = what;
    }
    return event_add(s->sock_ev, NULL) < 0 ? -ENOMEM : 0;
}

/* The connection or the attempt is gone: close it, report, fail what waited, re-arm. */
static void st_lost(struct store *s, const char *msg)
{
    struct stmt *failed = s->head, *cur = s->current;
    bool was_ready = s->was_ready;
    int64_t d;
    struct timeval tv;

    set_reason(s, msg);
    st_unwatch(s);
    event_del(s->timeout_ev);
    PQclear(s->result);
    s->result = NULL;
    PQfinish(s->conn);
    s->conn = NULL;
    s->state = ST_WAITING;
    s->was_ready = false;
    s->current = NULL;
    s->head = s->tail = NULL;
    d = backoff_next_ms(&s->backoff);
    tv = clock_timeval_from_ms(d);
    event_add(s->retry_ev, &tv);

    /* Statements queued from the callbacks below wait for the next attempt. */
    if (cur) {
        cur->next = failed;
        failed = cur;
    }
    st_enter(s);
    if (was_ready && s->ev.disconnected)
        s->ev.disconnected(s, s->last_error, s->ev_data);
    else if (!was_ready && s->ev.connect_failed)
        s->ev.connect_failed(s, s->last_error, s->ev_data);
    while (failed && !s->closing) {
        struct stmt *st = failed;

        failed = st->next;
        if (st->cb)
            st->cb(s, NULL, st->data);
        stmt_free(st);
    }
    stmt_list_free(failed);
    st_leave(s);
}

/* Flushes libpq's output; arms the write event while some is left. */
static int st_flush(struct store *s)
{
    int r = PQflush(s->conn);

    if (r < 0)
        return -EIO;
    if (r > 0 && event_add(s->write_ev, NULL) < 0)
        return -ENOMEM;
    return 0;
}

/* Sends the next queued statement when none is running. */
static void st_next(struct store *s)
{
    struct stmt *st = s->head;

    if (s->state != ST_READY || s->current || !st)
        return;
    s->head = st->next;
    if (!s->head)
        s->tail = NULL;
    st->next = NULL;
    s->current = st;
    if (st->copy == COPY_WAITING) {
        /* The simple protocol: COPY FROM STDIN takes no parameters anyway. */
        if (!PQsendQuery(s->conn, st->sql) || st_flush(s) < 0)
            st_lost(s, PQerrorMessage(s->conn));
        return;
    }
    if (!PQsendQueryParams(s->conn, st->sql, st->nparams, NULL, (const char *const *)st->values,
                           NULL, NULL, 0) ||
        st_flush(s) < 0)
        st_lost(s, PQerrorMessage(s->conn));
}

/* Pushes the current COPY's data without blocking: the next chunk goes to libpq only once
 * its output is flushed; when the socket is full, the write event resumes here. Returns
 * 0 (all sent, or waiting for the socket) or -EIO (the connection broke). */
static int st_copy_push(struct store *s)
{
    struct stmt *st = s->current;

    while (st->copy == COPY_SENDING) {
        int r = PQflush(s->conn);

        if (r < 0)
            return -EIO;
        if (r > 0)
            return event_add(s->write_ev, NULL) < 0 ? -ENOMEM : 0;
        if (st->copy_off < st->copy_len) {
            size_t n = st->copy_len - st->copy_off;

            if (n > COPY_CHUNK)
                n = COPY_CHUNK;
            r = PQputCopyData(s->conn, st->copy_data + st->copy_off, (int)n);
            if (r > 0)
                st->copy_off += n;
        } else {
            r = PQputCopyEnd(s->conn, NULL);
            if (r > 0)
                st->copy = COPY_ENDED;
        }
        if (r < 0)
            return -EIO;
        if (r == 0) /* libpq's buffer is full (non-blocking mode): wait for the socket */
            return event_add(s->write_ev, NULL) < 0 ? -ENOMEM : 0;
    }
    return st_flush(s);
}

static void st_deliver_notifies(struct store *s)
{
    PGnotify *n;

    while (!s->closing && s->conn && (n = PQnotifies(s->conn))) {
        if (s->ev.notify)
            s->ev.notify(s, n->relname, n->extra ? n->extra : "", s->ev_data);
        PQfreemem(n);
    }
}

/* An error whose SQLSTATE says the session itself ended (class 08 connection exception,
 * class 57 operator intervention such as a server shutdown) is a lost connection, not an
 * answer to the statement. */
static bool result_is_disconnect(const PGresult *res)
{
    const char *code;

    if (PQresultStatus(res) != PGRES_FATAL_ERROR)
        return false;
    code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return !code || strncmp(code, "08", 2) == 0 || strncmp(code, "57", 2) == 0;
}

/* Reads every complete result; a statement's callback runs after its last one. */
static void st_read_results(struct store *s)
{
    while (!s->closing && s->state == ST_READY && s->current && s->current->copy != COPY_SENDING &&
           !PQisBusy(s->conn)) {
        PGresult *res = PQgetResult(s->conn);
        struct stmt *st;

        if (res && PQresultStatus(res) == PGRES_COPY_IN && s->current->copy == COPY_WAITING) {
            /* The server waits for our data. PQgetResult would return COPY_IN again until
             * the copy ends, so reading pauses while it is sent. */
            PQclear(res);
            s->current->copy = COPY_SENDING;
            if (st_copy_push(s) < 0) {
                st_lost(s, PQerrorMessage(s->conn));
                return;
            }
            continue;
        }
        if (res && (PQresultStatus(res) == PGRES_COPY_IN || PQresultStatus(res) == PGRES_COPY_OUT ||
                    PQresultStatus(res) == PGRES_COPY_BOTH)) {
            /* A COPY through store_query, a second COPY in a store_copy string, or a COPY
             * TO STDOUT: there is no data to send or place to put it, and dropping the
             * connection is the one way out of copy mode that needs neither. */
            PQclear(res);
            st_lost(s, "a COPY statement needs store_copy (FROM STDIN only)");
            return;
        }
        if (res) {
            PQclear(s->result);
            s->result = res;
            continue;
        }
        if (!s->result || PQstatus(s->conn) == CONNECTION_BAD || result_is_disconnect(s->result)) {
            st_lost(s, s->result ? PQresultErrorMessage(s->result) : PQerrorMessage(s->conn));
            return;
        }
        st = s->current;
        res = s->result;
        s->current = NULL;
        s->result = NULL;
        if (st->cb)
            st->cb(s, res, st->data);
        PQclear(res);
        stmt_free(st);
        if (s->closing)
            return;
        st_next(s);
    }
}

static void st_connected(struct store *s)
{
    struct stmt *listens = NULL, *last = NULL;
    struct channel *ch;

    event_del(s->timeout_ev);
    if (PQsetnonblocking(s->conn, 1) != 0 || st_watch(s, EV_READ | EV_PERSIST) < 0) {
        st_lost(s, PQerrorMessage(s->conn));
        return;
    }
    /* LISTEN for every channel, ahead of whatever the caller queued. Without memory a
     * channel is skipped; it is retried at the next reconnect. */
    for (ch = s->channels; ch; ch = ch->next) {
        struct stmt *st = stmt_new_listen(ch->name);

        if (!st)
            continue;
        if (last)
            last->next = st;
        else
            listens = st;
        last = st;
    }
    if (listens) {
        last->next = s->head;
        if (!s->head)
            s->tail = last;
        s->head = listens;
    }
    s->state = ST_READY;
    s->was_ready = true;
    backoff_reset(&s->backoff);
    s->last_error[0] = '\0';
    if (s->ev.connected)
        s->ev.connected(s, s->ev_data);
    if (!s->closing)
        st_next(s);
}

static void st_poll_connect(struct store *s)
{
    switch (PQconnectPoll(s->conn)) {
    case PGRES_POLLING_READING:
        if (st_watch(s, EV_READ) < 0)
            st_lost(s, "cannot watch the connection socket");
        return;
    case PGRES_POLLING_WRITING:
        if (st_watch(s, EV_WRITE) < 0)
            st_lost(s, "cannot watch the connection socket");
        return;
    case PGRES_POLLING_OK:
        st_connected(s);
        return;
    default:
        st_lost(s, PQerrorMessage(s->conn));
        return;
    }
}

static void on_sock(evutil_socket_t fd, short what, void *arg)
{
    struct store *s = arg;

    st_enter(s);
    if (s->state == ST_CONNECTING) {
        st_poll_connect(s);
    } else if (s->state == ST_READY) {
        if (!PQconsumeInput(s->conn) || PQstatus(s->conn) == CONNECTION_BAD) {
            st_lost(s, PQerrorMessage(s->conn));
        } else {
            st_deliver_notifies(s);
            st_read_results(s);
            st_deliver_notifies(s);
        }
    }
    st_leave(s);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct store *s = arg;

    st_enter(s);
    if (s->state == ST_READY && s->current && s->current->copy == COPY_SENDING) {
        if (st_copy_push(s) < 0)
            st_lost(s, PQerrorMessage(s->conn));
        else if (s->current->copy == COPY_ENDED)
            /* The answer may already sit in libpq's input buffer (an error the server sent
             * while we were still sending): no read event would announce it. */
            st_read_results(s);
    } else if (s->state == ST_READY && st_flush(s) < 0) {
        st_lost(s, PQerrorMessage(s->conn));
    }
    st_leave(s);
}

static void ignore_notice(void *arg, const char *message)
{
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct store *s = arg;
    struct timeval tv;

    st_enter(s);
    s->conn = PQconnectStart(s->conninfo);
    if (!s->conn) {
        st_lost(s, "out of memory");
    } else if (PQstatus(s->conn) == CONNECTION_BAD) {
        st_lost(s, PQerrorMessage(s->conn));
    } else {
        /* Server notices (and the FATAL a shutting-down server sends to an idle session)
         * would go to stderr by default; the library never prints. */
        PQsetNoticeProcessor(s->conn, ignore_notice, NULL);
        s->state = ST_CONNECTING;
        s->was_ready = false;
        tv = clock_timeval_from_ms(s->ev.connect_timeout_ms);
        event_add(s->timeout_ev, &tv);
        /* libpq: after PQconnectStart, behave as if polling had asked for writing. */
        if (st_watch(s, EV_WRITE) < 0)
            st_lost(s, "cannot watch the connection socket");
    }
    st_leave(s);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct store *s = arg;
    char msg[64];

    st_enter(s);
    snprintf(msg, sizeof(msg), "no connection within %d ms", s->ev.connect_timeout_ms);
    st_lost(s, msg);
    st_leave(s);
}

int store_new(struct event_base *base, const char *conninfo, const struct store_events *ev,
              void *ev_data, struct store **ret)
{
    struct timeval now = {0, 0};
    struct timespec ts;
    struct store *s;
    int r;

    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->base = base;
    s->sock_fd = -1;
    r = pg_conninfo_redact(conninfo, s->display, sizeof(s->display));
    if (r < 0)
        goto fail;
    s->conninfo = strdup(conninfo);
    if (ev)
        s->ev = *ev;
    if (s->ev.connect_timeout_ms <= 0)
        s->ev.connect_timeout_ms = STORE_CONNECT_TIMEOUT_MS;
    s->ev_data = ev_data;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    backoff_init(&s->backoff, STORE_BACKOFF_MIN_MS, STORE_BACKOFF_MAX_MS,
                 (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)s);
    s->retry_ev = evtimer_new(base, on_retry, s);
    s->timeout_ev = evtimer_new(base, on_timeout, s);
    if (!s->conninfo || !s->retry_ev || !s->timeout_ev || event_add(s->retry_ev, &now) < 0) {
        r = -ENOMEM;
        goto fail;
    }
    *ret = s;
    return 0;
fail:
    store_free(s);
    return r;
}

struct store *store_free(struct store *s)
{
    if (!s || s->closing)
        return NULL;
    s->closing = true;
    st_unwatch(s);
    if (s->retry_ev)
        event_free(s->retry_ev);
    if (s->timeout_ev)
        event_free(s->timeout_ev);
    s->retry_ev = s->timeout_ev = NULL;
    PQclear(s->result);
    s->result = NULL;
    if (s->conn)
        PQfinish(s->conn);
    s->conn = NULL;
    stmt_free(s->current);
    s->current = NULL;
    stmt_list_free(s->head);
    s->head = s->tail = NULL;
    while (s->channels) {
        struct channel *next = s->channels->next;

        free(s->channels);
        s->channels = next;
    }
    free(s->conninfo);
    s->conninfo = NULL;
    if (s->depth == 0)
        free(s);
    return NULL;
}

static int st_append(struct store *s, struct stmt *st)
{
    if (s->tail)
        s->tail->next = st;
    else
        s->head = st;
    s->tail = st;
    if (s->state == ST_READY && !s->current) {
        st_enter(s);
        st_next(s);
        st_leave(s);
    }
    return 0;
}

int store_query(struct store *s, const char *sql, int nparams, const char *const *values,
                store_result_fn *cb, void *data)
{
    struct stmt *st;
    int i;

    if (s->closing)
        return -ESHUTDOWN;
    if (nparams < 0 || (nparams > 0 && !values))
        return -EINVAL;
    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->cb = cb;
    st->data = data;
    st->nparams = nparams;
    st->sql = strdup(sql);
    if (nparams > 0)
        st->values = calloc((size_t)nparams, sizeof(*st->values));
    if (!st->sql || (nparams > 0 && !st->values))
        goto fail;
    for (i = 0; i < nparams; i++) {
        if (values[i] && !(st->values[i] = strdup(values[i])))
            goto fail;
    }
    return st_append(s, st);
fail:
    stmt_free(st);
    return -ENOMEM;
}

int store_copy(struct store *s, const char *sql, const char *data, size_t len, store_result_fn *cb,
               void *cbdata)
{
    struct stmt *st;

    if (s->closing)
        return -ESHUTDOWN;
    if (!sql || (len > 0 && !data))
        return -EINVAL;
    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->cb = cb;
    st->data = cbdata;
    st->copy = COPY_WAITING;
    st->sql = strdup(sql);
    st->copy_data = malloc(len > 0 ? len : 1);
    if (!st->sql || !st->copy_data) {
        stmt_free(st);
        return -ENOMEM;
    }
    if (len > 0)
        memcpy(st->copy_data, data, len);
    st->copy_len = len;
    return st_append(s, st);
}

int store_listen(struct store *s, const char *channel)
{
    size_t n = channel ? strlen(channel) : 0;
    struct channel *ch;
    struct stmt *st;

    if (s->closing)
        return -ESHUTDOWN;
    if (n == 0 || n > CHANNEL_MAX)
        return -EINVAL;
    for (ch = s->channels; ch; ch = ch->next)
        if (strcmp(ch->name, channel) == 0)
            return 0;
    ch = calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    memcpy(ch->name, channel, n + 1);
    ch->next = s->channels;
    s->channels = ch;
    if (s->state != ST_READY)
        return 0; /* issued when the connection is (re)established */
    st = stmt_new_listen(channel);
    if (!st)
        return -ENOMEM;
    return st_append(s, st);
}

bool store_ready(const struct store *s)
{
    return s->state == ST_READY;
}

const char *store_last_error(const struct store *s)
{
    return s->last_error;
}

const char *store_display(const struct store *s)
{
    return s->display;
}
