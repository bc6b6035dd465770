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
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "store.h"
#include "strbuf.h"

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

/* How the in-flight batch was sent. */
enum sink_form {
    FORM_COPY,
    FORM_INSERT,
};

/* A queued row and, after it in the same allocation, the text of its strings. */
struct sink_row {
    struct result_row row; /* strings point into text; params/result are owned references */
    void (*committed)(void *data);
    void *data;
    bool sanitized; /* params/result already replaced after a rejection */
    struct sink_row *next;
    char text[];
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
    struct strbuf copy;      /* owned: the COPY data, kept between batches */
    int64_t backoff_ms;
    bool failing;            /* logged the current outage already */
    struct event *flush_ev;  /* owned: end of the current loop pass, or the retry delay */
    uint64_t batches, rows;  /* committed, for the exit log line */
    int64_t sent_mono_us, busy_us; /* time statements spent waiting for their answer */
};

static void flush(struct result_sink *s);

static void free_row(struct sink_row *r)
{
    json_decref(r->row.params);
    json_decref(r->row.result);
    free(r);
}

/* Appends p escaped for a COPY text field: backslash, tab, newline and carriage return are
 * the characters that would otherwise end or change the field. */
static int tb_put_escaped(struct strbuf *b, const char *p, size_t n)
{
    char *o;
    size_t i;

    if (n > SIZE_MAX / 2)
        return strbuf_fail(b, -ENOMEM);
    if (strbuf_reserve(b, 2 * n) < 0)
        return -ENOMEM;
    o = b->buf + b->len;
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
    b->len = (size_t)(o - b->buf);
    return 0;
}

static int tb_put_json(const char *p, size_t n, void *data)
{
    return tb_put_escaped(data, p, n) < 0 ? -1 : 0;
}

/* A text column: up to the NUL, as PostgreSQL text cannot hold one; NULL is SQL NULL. */
static int tb_put_text(struct strbuf *b, const char *str)
{
    return str ? tb_put_escaped(b, str, strlen(str)) : strbuf_add(b, "\\N", 2);
}

static int tb_put_time(struct strbuf *b, int64_t us)
{
    char buf[CLOCK_RFC3339_MAX];

    clock_format_rfc3339_us(us, buf);
    return strbuf_add(b, buf, strlen(buf));
}

/* A jsonb column takes the value's JSON text, which json_dump_callback writes with control
 * characters escaped; the callback escapes it once more for COPY. */
static int tb_put_jsonb(struct strbuf *b, const json_t *v)
{
    if (!v || json_is_null(v))
        return strbuf_add(b, "\\N", 2);
    return json_dump_callback(v, tb_put_json, b, JSON_COMPACT | JSON_ENCODE_ANY) < 0 ? -ENOMEM
                                                                                     : 0;
}

/* Appends one row as a line of COPY text, in copy_sql's column order. */
static int put_copy_row(struct strbuf *b, const struct result_row *row)
{
    int r = 0;

    r |= tb_put_text(b, row->job_id);
    r |= strbuf_add(b, "\t", 1);
    r |= strbuf_add_int(b, row->attempt);
    r |= strbuf_add(b, "\t", 1);
    r |= tb_put_text(b, row->type);
    r |= strbuf_add(b, "\t", 1);
    r |= tb_put_text(b, row->queue);
    r |= strbuf_add(b, "\t", 1);
    r |= tb_put_text(b, row->schedule);
    r |= strbuf_add(b, "\t", 1);
    r |= row->has_scheduled_for ? tb_put_time(b, row->scheduled_for_us) : strbuf_add(b, "\\N", 2);
    r |= strbuf_add(b, "\t", 1);
    r |= tb_put_text(b, row->status);
    r |= strbuf_add(b, "\t", 1);
    r |= tb_put_time(b, row->started_us);
    r |= strbuf_add(b, "\t", 1);
    r |= tb_put_time(b, row->finished_us);
    r |= strbuf_add(b, "\t", 1);
    r |= tb_put_text(b, row->worker);
    r |= strbuf_add(b, "\t", 1);
    r |= tb_put_jsonb(b, row->params);
    r |= strbuf_add(b, "\t", 1);
    r |= tb_put_jsonb(b, row->result);
    r |= strbuf_add(b, "\t", 1);
    r |= tb_put_text(b, row->error);
    r |= strbuf_add(b, "\t", 1);
    r |= row->lock_fence ? strbuf_add_int(b, row->lock_fence) : strbuf_add(b, "\\N", 2);
    r |= strbuf_add(b, "\n", 1);
    return r ? -ENOMEM : 0;
}

static json_t *json_time(int64_t us)
{
    char buf[CLOCK_RFC3339_MAX];

    return json_string(clock_format_rfc3339_us(us, buf));
}

static json_t *json_text(const char *str)
{
    return str ? json_string(str) : json_null();
}

/* The row as a JSON object whose keys are job_runs columns, for json_populate_recordset. */
static json_t *row_json(const struct result_row *row)
{
    json_t *o = json_object();
    int r = 0;

    if (!o)
        return NULL;
    r |= json_object_set_new(o, "job_id", json_text(row->job_id));
    r |= json_object_set_new(o, "attempt", json_integer(row->attempt));
    r |= json_object_set_new(o, "type", json_text(row->type));
    r |= json_object_set_new(o, "queue", json_text(row->queue));
    r |= json_object_set_new(o, "schedule", json_text(row->schedule));
    r |= json_object_set_new(o, "scheduled_for", row->has_scheduled_for
                                                     ? json_time(row->scheduled_for_us)
                                                     : json_null());
    r |= json_object_set_new(o, "status", json_text(row->status));
    r |= json_object_set_new(o, "started_at", json_time(row->started_us));
    r |= json_object_set_new(o, "finished_at", json_time(row->finished_us));
    r |= json_object_set_new(o, "worker", json_text(row->worker));
    r |= json_object_set_new(o, "params", row->params ? json_incref(row->params) : json_null());
    r |= json_object_set_new(o, "result", row->result ? json_incref(row->result) : json_null());
    r |= json_object_set_new(o, "error", json_text(row->error));
    r |= json_object_set_new(o, "lock_fence",
                             row->lock_fence ? json_integer(row->lock_fence) : json_null());
    if (r) {
        json_decref(o);
        return NULL;
    }
    return o;
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
    json_t *empty = json_object();

    if (empty) {
        json_decref(r->row.params);
        r->row.params = empty;
    }
    if (note) {
        json_decref(r->row.result);
        r->row.result = note;
    }
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
        r->committed(r->data);
        free_row(r);
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
    for (; n > 0; first = first->next, n--) {
        if (json_array_append_new(arr, row_json(&first->row)) < 0) {
            json_decref(arr);
            return -ENOMEM;
        }
    }
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

    strbuf_reset(&s->copy);
    for (; first && n < max && s->copy.len < SINK_COPY_BYTES_MAX && r == 0; first = first->next) {
        r = put_copy_row(&s->copy, &first->row);
        n++;
    }
    if (r == 0)
        r = store_copy(s->db, copy_sql, s->copy.buf, s->copy.len, on_result, s);
    if (r == 0)
        *ret_n = n;
    /* One huge batch (big results) should not pin its buffer for the process's life. */
    if (s->copy.cap > 4 * 1024 * 1024)
        strbuf_release(&s->copy);
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

/* Copies str into the row's text at *pos; NULL stays NULL. */
static const char *copy_text(struct sink_row *r, size_t *pos, const char *str)
{
    char *p;
    size_t n;

    if (!str)
        return NULL;
    p = r->text + *pos;
    n = strlen(str) + 1;
    memcpy(p, str, n);
    *pos += n;
    return p;
}

static size_t text_size(const char *str)
{
    return str ? strlen(str) + 1 : 0;
}

int result_sink_add(struct result_sink *s, const struct result_row *row,
                    void (*committed)(void *data), void *data)
{
    /* One allocation for the row and its strings: the sink's cost per job is mostly here. */
    size_t size = text_size(row->job_id) + text_size(row->type) + text_size(row->queue) +
                  text_size(row->status) + text_size(row->worker) + text_size(row->schedule) +
                  text_size(row->error);
    struct sink_row *r = malloc(sizeof(*r) + size);
    size_t pos = 0;

    if (!r)
        return -ENOMEM;
    r->row = *row;
    r->row.job_id = copy_text(r, &pos, row->job_id);
    r->row.type = copy_text(r, &pos, row->type);
    r->row.queue = copy_text(r, &pos, row->queue);
    r->row.status = copy_text(r, &pos, row->status);
    r->row.worker = copy_text(r, &pos, row->worker);
    r->row.schedule = copy_text(r, &pos, row->schedule);
    r->row.error = copy_text(r, &pos, row->error);
    r->row.params = row->params ? json_incref(row->params) : NULL;
    r->row.result = row->result ? json_incref(row->result) : NULL;
    r->committed = committed;
    r->data = data;
    r->sanitized = false;
    r->next = NULL;
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

        free_row(r);
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
    strbuf_release(&s->copy);
    if (s->flush_ev)
        event_free(s->flush_ev);
    free(s);
    return NULL;
}
