/* Batched result rows into maintq.job_runs (see result_sink.h). One statement carries the
 * whole batch as a JSON array expanded by json_populate_recordset, so a batch of 1,000
 * rows is one round trip and one commit. A batch the server rejects (a row it cannot
 * store, such as a result with a \u0000 that jsonb refuses) is split into single rows; a
 * single row that is still refused has its params and result replaced by a note of the
 * error, so the attempt is recorded and its entry can be acknowledged. */
#include "result_sink.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "store.h"

#define SINK_BACKOFF_MIN_MS 100
#define SINK_BACKOFF_MAX_MS 5000

static const char insert_sql[] =
    "WITH ins AS ("
    " INSERT INTO maintq.job_runs (job_id, attempt, type, queue, schedule, scheduled_for,"
    "  status, started_at, finished_at, worker, params, result, error, lock_fence)"
    " SELECT job_id, attempt, type, queue, schedule, scheduled_for, status, started_at,"
    "  finished_at, worker, params, result, error, lock_fence"
    " FROM json_populate_recordset(NULL::maintq.job_runs, $1::json)"
    " ON CONFLICT (job_id, attempt) DO NOTHING RETURNING 1)"
    " SELECT count(*), pg_notify('maintq_results', '') FROM ins";

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
    int64_t backoff_ms;
    bool failing;            /* logged the current outage already */
    struct event *flush_ev;  /* owned: end of the current loop pass, or the retry delay */
};

static void flush(struct result_sink *s);

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

static void flush(struct result_sink *s)
{
    size_t max = s->singles > 0 ? 1 : RESULT_SINK_BATCH_MAX;
    json_t *arr;
    char *text;
    struct sink_row **link = &s->head;
    size_t n = 0;
    const char *params[1];

    if (s->inflight || !s->head || evtimer_pending(s->flush_ev, NULL))
        return;
    arr = json_array();
    if (!arr)
        goto retry;
    while (*link && n < max) {
        json_array_append(arr, (*link)->row);
        link = &(*link)->next;
        n++;
    }
    text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!text)
        goto retry;
    params[0] = text;
    if (store_query(s->db, insert_sql, 1, params, on_result, s) < 0) {
        free(text);
        goto retry;
    }
    free(text);
    if (s->singles > 0)
        s->singles--;
    s->inflight = s->head;
    s->ninflight = n;
    s->head = *link;
    *link = NULL;
    if (!s->head)
        s->tail = &s->head;
    s->queued -= n;
    return;
retry:
    log_error("out of memory building a result batch; retrying");
    schedule_flush(s, SINK_BACKOFF_MIN_MS);
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
    free_rows(s->head);
    free_rows(s->inflight);
    if (s->flush_ev)
        event_free(s->flush_ev);
    free(s);
    return NULL;
}
