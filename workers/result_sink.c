/* Batched result rows into maintq.job_runs (see result_sink.h). A batch goes out as one
 * COPY FROM STDIN in text format, so a batch of 1,000 rows is one round trip and one
 * commit, and the server takes it through its multi-insert path (several times cheaper
 * per row than an INSERT ... SELECT over json_populate_recordset, which was the ceiling of
 * the whole pipeline). COPY has no ON CONFLICT, so it is optimistic: when it fails with
 * unique_violation (an attempt redelivered after its row was written, e.g. a worker that
 * died between commit and XACK), the same batch is written again with the idempotent
 * INSERT ... ON CONFLICT (job_id, attempt) DO NOTHING, which also stays the form for
 * single rows. The COPY carries its NOTIFY as a second statement in the same query
 * string: a simple query runs all its statements in one implicit transaction, so the
 * notification goes out exactly when the rows commit, as with the INSERT, and costs
 * neither a second round trip nor a second transaction. A batch the server rejects
 * otherwise (a row it cannot store, such as a result with a \u0000 that jsonb refuses) is
 * split into single rows; a single row that is still refused has its params and result
 * replaced by a note of the error, so the attempt is recorded and its entry can be
 * acknowledged. */
#include "result_sink.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "store.h"

#define SINK_BACKOFF_MIN_MS 100
#define SINK_BACKOFF_MAX_MS 5000
/* A COPY batch stops growing past this many bytes of data (big results, such as exec's
 * output tails): the store holds a copy of it until the answer, and the child's memory
 * should not scale with RESULT_SINK_BATCH_MAX times the largest result. */
#define SINK_COPY_BYTES_MAX (1024 * 1024)

static const char insert_sql[] =
    "WITH ins AS ("
    " INSERT INTO maintq.job_runs (job_id, attempt, type, queue, schedule, scheduled_for,"
    "  status, started_at, finished_at, worker, params, result, error, lock_fence)"
    " SELECT job_id, attempt, type, queue, schedule, scheduled_for, status, started_at,"
    "  finished_at, worker, params, result, error, lock_fence"
    " FROM json_populate_recordset(NULL::maintq.job_runs, $1::json)"
    " ON CONFLICT (job_id, attempt) DO NOTHING RETURNING 1)"
    " SELECT count(*), pg_notify('maintq_results', '') FROM ins";

/* Answers PGRES_TUPLES_OK (the SELECT's) when the rows committed; when the COPY fails the
 * SELECT does not run and its error is the answer. */
static const char copy_sql[] =
    "COPY maintq.job_runs (job_id, attempt, type, queue, schedule, scheduled_for, status,"
    " started_at, finished_at, worker, params, result, error, lock_fence) FROM STDIN;"
    " SELECT pg_notify('maintq_results', '')";

/* copy_sql's columns in order. A jsonb column takes the value's JSON text whatever its
 * type; another takes a string's characters, or the JSON text of a number or boolean
 * (what json_populate_recordset did). A missing key or a JSON null is SQL NULL. */
static const struct {
    const char *name;
    bool jsonb;
} copy_columns[] = {
    {"job_id", false},      {"attempt", false},       {"type", false},   {"queue", false},
    {"schedule", false},    {"scheduled_for", false}, {"status", false}, {"started_at", false},
    {"finished_at", false}, {"worker", false},        {"params", true},  {"result", true},
    {"error", false},       {"lock_fence", false},
};

/* How the in-flight batch was sent. */
enum sink_form {
    FORM_COPY,
    FORM_INSERT,
};

/* A growing byte buffer for the COPY data, kept between batches. */
struct textbuf {
    char *data; /* owned */
    size_t len, cap;
};

struct sink_row {
    json_t *row; /* owned */
    void (*committed)(void *data);
    void *data;
    bool sanitized; /* params/result already replaced after a rejection */
    struct sink_row *next;
};

struct result_sink {
    struct event_base *base; /* borrowed */
    struct store *db;        /* borrowed */
    struct sink_row *head, **tail;
    struct sink_row *inflight; /* the batch the server is answering */
    size_t queued, ninflight;
    int singles;             /* rows still to send one by one after a rejected batch */
    bool insert_next;        /* the COPY of the head rows met an existing row */
    enum sink_form form;     /* of the in-flight batch */
    struct textbuf copy;     /* owned */
    int64_t backoff_ms;
    bool failing;            /* logged the current outage already */
    struct event *flush_ev;  /* owned: end of the current loop pass, or the retry delay */
    uint64_t batches, rows;  /* committed, for the exit log line */
    int64_t sent_mono_us, busy_us; /* time statements spent waiting for their answer */
};

static void flush(struct result_sink *s);

static int tb_reserve(struct textbuf *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 4096;
    char *p;

    if (more <= b->cap - b->len)
        return 0;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int tb_put(struct textbuf *b, const char *p, size_t n)
{
    if (tb_reserve(b, n) < 0)
        return -ENOMEM;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Appends p escaped for a COPY text field: backslash, tab, newline and carriage return are
 * the characters that would otherwise end or change the field. */
static int tb_put_escaped(struct textbuf *b, const char *p, size_t n)
{
    char *o;
    size_t i;

    if (n > SIZE_MAX / 2 || tb_reserve(b, 2 * n) < 0)
        return -ENOMEM;
    o = b->data + b->len;
    for (i = 0; i < n; i++) {
        char c = p[i];

        switch (c) {
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            break;
        default:
            *o++ = c;
        }
    }
    b->len = (size_t)(o - b->data);
    return 0;
}

static int tb_put_json(const char *p, size_t n, void *data)
{
    return tb_put_escaped(data, p, n) < 0 ? -1 : 0;
}

/* Appends one row as a line of COPY text. */
static int put_copy_row(struct textbuf *b, const json_t *row)
{
    char num[32];
    size_t i;
    int r = 0;

    for (i = 0; i < sizeof(copy_columns) / sizeof(copy_columns[0]) && r == 0; i++) {
        const json_t *v = json_object_get(row, copy_columns[i].name);

        if (i > 0)
            r = tb_put(b, "\t", 1);
        if (r < 0)
            break;
        if (!v || json_is_null(v)) {
            r = tb_put(b, "\\N", 2);
        } else if (copy_columns[i].jsonb || !(json_is_string(v) || json_is_integer(v))) {
            /* jsonb text is what json_dumps writes (control characters escaped); the
             * callback escapes it once more for COPY. */
            r = json_dump_callback(v, tb_put_json, b, JSON_COMPACT | JSON_ENCODE_ANY) < 0 ? -ENOMEM
                                                                                          : 0;
        } else if (json_is_string(v)) {
            /* Up to a NUL, as every C string the row was built from: PostgreSQL text
             * cannot hold one. */
            const char *str = json_string_value(v);

            r = tb_put_escaped(b, str, strlen(str));
        } else {
            int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));

            r = tb_put(b, num, (size_t)n);
        }
    }
    return r < 0 ? r : tb_put(b, "\n", 1);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    flush(arg);
}

static void schedule_flush(struct result_sink *s, int64_t delay_ms)
{
    struct timeval tv = clock_timeval_from_ms(delay_ms);

    if (delay_ms == 0 && !evtimer_pending(s->flush_ev, NULL))
        event_active(s->flush_ev, EV_TIMEOUT, 1);
    else if (delay_ms > 0)
        evtimer_add(s->flush_ev, &tv);
}

/* Puts the in-flight batch back at the front of the queue, in order. */
static void requeue_inflight(struct result_sink *s)
{
    struct sink_row *last = s->inflight;

    if (!last)
        return;
    while (last->next)
        last = last->next;
    last->next = s->head;
    if (!s->head)
        s->tail = &last->next;
    s->head = s->inflight;
    s->queued += s->ninflight;
    s->inflight = NULL;
    s->ninflight = 0;
}

static void sanitize(struct sink_row *r, const char *why)
{
    json_t *note = json_pack("{s:s}", "unstorable", why);

    json_object_set_new(r->row, "params", json_object());
    if (note)
        json_object_set_new(r->row, "result", note);
    r->sanitized = true;
}

static void on_result(struct store *db, const PGresult *res, void *data)
{
    struct result_sink *s = data;
    struct sink_row *batch = s->inflight, *r, *next;

    if (!res) {
        if (!s->failing)
            log_warn("postgres unreachable: %zu results held, retrying (%s)",
                     s->ninflight + s->queued, store_last_error(db));
        s->failing = true;
        requeue_inflight(s);
        s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : SINK_BACKOFF_MIN_MS;
        if (s->backoff_ms > SINK_BACKOFF_MAX_MS)
            s->backoff_ms = SINK_BACKOFF_MAX_MS;
        schedule_flush(s, s->backoff_ms);
        return;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorMessage(res);
        const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        if (s->form == FORM_COPY && code && strcmp(code, "23505") == 0) {
            /* A row of this attempt exists already (a redelivered entry): COPY stored
             * nothing; the idempotent INSERT writes the others and skips that one. */
            log_debug("results: a batch of %zu met an existing row; writing it with ON "
                      "CONFLICT",
                      s->ninflight);
            s->insert_next = true;
            requeue_inflight(s);
            schedule_flush(s, 0);
            return;
        }

        log_error("postgres rejected a batch of %zu results: %.*s", s->ninflight,
                  (int)strcspn(msg, "\n"), msg);
        if (s->ninflight == 1 && !batch->sanitized) {
            sanitize(batch, msg);
        } else if (s->ninflight > 1) {
            s->singles = (int)s->ninflight;
        } else {
            /* Even the sanitized row is refused: a schema problem, not data. Keep it and
             * keep trying; the operator sees this line repeat. */
            requeue_inflight(s);
            schedule_flush(s, SINK_BACKOFF_MAX_MS);
            return;
        }
        requeue_inflight(s);
        schedule_flush(s, 0);
        return;
    }
    if (s->failing)
        log_info("postgres is back: writing held results");
    s->failing = false;
    s->backoff_ms = 0;
    s->batches++;
    s->rows += s->ninflight;
    s->busy_us += clock_mono_us() - s->sent_mono_us;
    s->inflight = NULL;
    s->ninflight = 0;
    for (r = batch; r; r = next) {
        next = r->next;
        json_decref(r->row);
        r->committed(r->data);
        free(r);
    }
    flush(s);
}

/* Sends the n rows from first as one INSERT ... ON CONFLICT DO NOTHING. */
static int send_insert(struct result_sink *s, struct sink_row *first, size_t n)
{
    json_t *arr = json_array();
    const char *params[1];
    char *text;
    int r;

    if (!arr)
        return -ENOMEM;
    for (; n > 0; first = first->next, n--)
        json_array_append(arr, first->row);
    text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!text)
        return -ENOMEM;
    params[0] = text;
    r = store_query(s->db, insert_sql, 1, params, on_result, s);
    free(text);
    return r;
}

/* Sends up to max rows from first as one COPY, fewer when SINK_COPY_BYTES_MAX is reached
 * first (never none); *ret_n says how many. */
static int send_copy(struct result_sink *s, struct sink_row *first, size_t max, size_t *ret_n)
{
    size_t n = 0;
    int r = 0;

    s->copy.len = 0;
    for (; first && n < max && s->copy.len < SINK_COPY_BYTES_MAX && r == 0; first = first->next) {
        r = put_copy_row(&s->copy, first->row);
        n++;
    }
    if (r == 0)
        r = store_copy(s->db, copy_sql, s->copy.data, s->copy.len, on_result, s);
    if (r == 0)
        *ret_n = n;
    /* One huge batch (big results) should not pin its buffer for the process's life. */
    if (s->copy.cap > 4 * 1024 * 1024) {
        free(s->copy.data);
        s->copy = (struct textbuf){0};
    }
    return r;
}

static void flush(struct result_sink *s)
{
    size_t max = s->singles > 0 ? 1 : RESULT_SINK_BATCH_MAX;
    enum sink_form form = s->singles > 0 || s->insert_next ? FORM_INSERT : FORM_COPY;
    struct sink_row **link = &s->head;
    size_t n = 0, i;
    int r;

    if (s->inflight || !s->head || evtimer_pending(s->flush_ev, NULL))
        return;
    if (form == FORM_COPY) {
        r = send_copy(s, s->head, max, &n);
    } else {
        for (n = 0; n < max && *link; n++)
            link = &(*link)->next;
        r = send_insert(s, s->head, n);
    }
    if (r < 0) {
        log_error("out of memory building a result batch; retrying");
        schedule_flush(s, SINK_BACKOFF_MIN_MS);
        return;
    }
    for (link = &s->head, i = 0; i < n; i++)
        link = &(*link)->next;
    if (s->singles > 0)
        s->singles--;
    s->insert_next = false;
    s->form = form;
    s->sent_mono_us = clock_mono_us();
    s->inflight = s->head;
    s->ninflight = n;
    s->head = *link;
    *link = NULL;
    if (!s->head)
        s->tail = &s->head;
    s->queued -= n;
}

int result_sink_new(struct event_base *base, struct store *db, struct result_sink **ret)
{
    struct result_sink *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    s->base = base;
    s->db = db;
    s->tail = &s->head;
    s->flush_ev = evtimer_new(base, on_flush, s);
    if (!s->flush_ev) {
        free(s);
        return -ENOMEM;
    }
    *ret = s;
    return 0;
}

int result_sink_add(struct result_sink *s, json_t *row, void (*committed)(void *data),
                    void *data)
{
    struct sink_row *r = calloc(1, sizeof(*r));

    if (!r) {
        json_decref(row);
        return -ENOMEM;
    }
    r->row = row;
    r->committed = committed;
    r->data = data;
    *s->tail = r;
    s->tail = &r->next;
    s->queued++;
    /* Send at the end of this loop pass, so rows finished together travel together. */
    if (!s->inflight)
        schedule_flush(s, 0);
    return 0;
}

size_t result_sink_backlog(const struct result_sink *s)
{
    return s->queued + s->ninflight;
}

static void free_rows(struct sink_row *r)
{
    while (r) {
        struct sink_row *next = r->next;

        json_decref(r->row);
        free(r);
        r = next;
    }
}

struct result_sink *result_sink_free(struct result_sink *s)
{
    if (!s)
        return NULL;
    if (s->batches)
        log_info("results: %llu rows committed in %llu batches (%.1f rows per batch, "
                 "%.1f ms per batch in Postgres)",
                 (unsigned long long)s->rows, (unsigned long long)s->batches,
                 (double)s->rows / (double)s->batches,
                 (double)s->busy_us / 1000.0 / (double)s->batches);
    free_rows(s->head);
    free_rows(s->inflight);
    free(s->copy.data);
    if (s->flush_ev)
        event_free(s->flush_ev);
    free(s);
    return NULL;
}
