/* The queue of scheduler records bound for Postgres (see fire_log.h). A record is one
 * statement with its text parameters; it stays in a doubly linked FIFO until the server
 * has answered it. Records are sent as soon as they are queued when the store is ready;
 * a NULL result (the connection broke) puts the record back to unsent, and the next
 * "connected" event sends every unsent record again. */
#include "fire_log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "store.h"

#define REC_MAX_PARAMS 7

struct rec {
    struct rec *prev, *next;
    struct fire_log *fl; /* borrowed back pointer */
    const char *sql;     /* static text */
    int nparams;
    char *values[REC_MAX_PARAMS]; /* owned; NULL = SQL NULL */
    bool sent;
};

struct fire_log {
    struct store *db; /* borrowed */
    struct rec *head, *tail;
    size_t n;
    size_t dropped;
};

static const char sql_tick[] =
    "WITH f AS (INSERT INTO maintq.schedule_fires (schedule, fire_at, outcome, reason, job_id)"
    " VALUES ($1, $2::timestamptz, $3, $4, $5::uuid)"
    " ON CONFLICT (schedule, fire_at) DO NOTHING)"
    " UPDATE maintq.schedules SET last_fire_at = $2::timestamptz, last_status = $3,"
    " next_fire_at = COALESCE($6::timestamptz, next_fire_at), updated_at = now()"
    " WHERE name = $1 AND (last_fire_at IS NULL OR last_fire_at <= $2::timestamptz)";

static const char sql_replaced[] =
    "UPDATE maintq.schedule_fires SET outcome = 'replaced', reason = $3"
    " WHERE schedule = $1 AND fire_at = $2::timestamptz AND outcome = 'fired'";

static const char sql_definition[] =
    "INSERT INTO maintq.schedules (name, cron, zone, definition, paused, next_fire_at)"
    " VALUES ($1, $2, $3, $4::jsonb, $5::boolean, $6::timestamptz)"
    " ON CONFLICT (name) DO UPDATE SET cron = EXCLUDED.cron, zone = EXCLUDED.zone,"
    " definition = EXCLUDED.definition, paused = EXCLUDED.paused,"
    " next_fire_at = EXCLUDED.next_fire_at, updated_at = now()";

static void rec_unlink(struct fire_log *fl, struct rec *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        fl->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        fl->tail = r->prev;
    fl->n--;
}

static void rec_free(struct rec *r)
{
    for (int i = 0; i < r->nparams; i++)
        free(r->values[i]);
    free(r);
}

static void on_done(struct store *s, const PGresult *res, void *data)
{
    struct rec *r = data;
    struct fire_log *fl = r->fl;

    if (!res) {
        r->sent = false; /* resent when the store connects again */
        return;
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warn("postgres refused a schedule record (dropped): %s",
                 PQresultErrorMessage(res));
    rec_unlink(fl, r);
    rec_free(r);
}

static void rec_send(struct fire_log *fl, struct rec *r)
{
    if (r->sent || !store_ready(fl->db))
        return;
    if (store_query(fl->db, r->sql, r->nparams, (const char *const *)r->values, on_done, r) == 0)
        r->sent = true;
}

/* Takes ownership of values[0..n) (NULL allowed) whatever happens. */
static int rec_queue(struct fire_log *fl, const char *sql, int n, char **values, bool ok)
{
    struct rec *r = ok ? calloc(1, sizeof(*r)) : NULL;

    if (!r) {
        for (int i = 0; i < n; i++)
            free(values[i]);
        return -ENOMEM;
    }
    r->fl = fl;
    r->sql = sql;
    r->nparams = n;
    memcpy(r->values, values, (size_t)n * sizeof(*values));
    if (fl->n >= FIRE_LOG_MAX_PENDING) {
        /* Postgres has been away a long time: keep the newest records. */
        struct rec *old = fl->head;

        while (old && old->sent)
            old = old->next;
        if (old) {
            rec_unlink(fl, old);
            rec_free(old);
            if (fl->dropped++ % 1000 == 0)
                log_warn("postgres unreachable: %zu schedule records dropped so far",
                         fl->dropped);
        }
    }
    r->prev = fl->tail;
    if (fl->tail)
        fl->tail->next = r;
    else
        fl->head = r;
    fl->tail = r;
    fl->n++;
    rec_send(fl, r);
    return 0;
}

/* strdup that keeps NULL, recording a failure in *ok. */
static char *dup_or_null(const char *s, bool *ok)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

static char *time_or_null(int64_t us, bool *ok)
{
    char buf[CLOCK_RFC3339_MAX];

    if (us == INT64_MIN || us == INT64_MAX)
        return NULL;
    return dup_or_null(clock_format_rfc3339_us(us, buf), ok);
}

int fire_log_new(struct store *db, struct fire_log **ret)
{
    struct fire_log *fl = calloc(1, sizeof(*fl));

    if (!fl)
        return -ENOMEM;
    fl->db = db;
    *ret = fl;
    return 0;
}

struct fire_log *fire_log_free(struct fire_log *fl)
{
    if (!fl)
        return NULL;
    while (fl->head) {
        struct rec *r = fl->head;

        fl->head = r->next;
        rec_free(r);
    }
    free(fl);
    return NULL;
}

int fire_log_tick(struct fire_log *fl, const char *name, int64_t tick_us, const char *outcome,
                  const char *reason, const char *job_id, int64_t next_us)
{
    bool ok = true;
    char *v[6];

    v[0] = dup_or_null(name, &ok);
    v[1] = time_or_null(tick_us, &ok);
    v[2] = dup_or_null(outcome, &ok);
    v[3] = dup_or_null(reason, &ok);
    v[4] = dup_or_null(job_id, &ok);
    v[5] = time_or_null(next_us, &ok);
    return rec_queue(fl, sql_tick, 6, v, ok);
}

int fire_log_replaced(struct fire_log *fl, const char *name, int64_t old_tick_us,
                      const char *reason)
{
    bool ok = true;
    char *v[3];

    v[0] = dup_or_null(name, &ok);
    v[1] = time_or_null(old_tick_us, &ok);
    v[2] = dup_or_null(reason, &ok);
    return rec_queue(fl, sql_replaced, 3, v, ok);
}

int fire_log_definition(struct fire_log *fl, const char *name, const char *cron,
                        const char *zone, const char *definition, int paused, int64_t next_us)
{
    bool ok = true;
    char *v[6];

    v[0] = dup_or_null(name, &ok);
    v[1] = dup_or_null(cron, &ok);
    v[2] = dup_or_null(zone, &ok);
    v[3] = dup_or_null(definition, &ok);
    v[4] = dup_or_null(paused ? "true" : "false", &ok);
    v[5] = time_or_null(next_us, &ok);
    return rec_queue(fl, sql_definition, 6, v, ok);
}

void fire_log_flush(struct fire_log *fl)
{
    for (struct rec *r = fl->head; r; r = r->next)
        rec_send(fl, r);
}

size_t fire_log_pending(const struct fire_log *fl)
{
    return fl->n;
}
