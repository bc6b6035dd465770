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

#include <jansson.h>

#include "clock.h"
#include "log.h"
#include "store.h"
#include "strbuf.h"

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
    /* Between fire_log_load_begin and _end: the set's rows and names as JSON arrays being
     * built (without their closing brackets), how many, and whether memory ran out. */
    bool loading, load_failed;
    struct strbuf rows, names;
    size_t load_n;
    /* owned: the names of the last complete load as a JSON array, for the next election;
     * NULL until one completed. */
    char *last_names;
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

/* A whole load in one statement (so one transaction): $1 is a JSON array of the set's rows,
 * upserted together; when $2 (the leader loaded the set) a row that was marked removed and is
 * defined again is unmarked, and the rows of schedules the set lacks are marked removed.
 * Their rows and fires stay. A standby's load leaves removed_at alone: its files may lag. */
static const char sql_load[] =
    "WITH d AS (SELECT * FROM json_to_recordset($1::json) AS x(name text, cron text,"
    " zone text, definition jsonb, paused boolean, next_fire_at timestamptz)),"
    " u AS (INSERT INTO maintq.schedules AS s (name, cron, zone, definition, paused,"
    " next_fire_at) SELECT name, cron, zone, definition, paused, next_fire_at FROM d"
    " ON CONFLICT (name) DO UPDATE SET cron = EXCLUDED.cron, zone = EXCLUDED.zone,"
    " definition = EXCLUDED.definition, paused = EXCLUDED.paused,"
    " next_fire_at = EXCLUDED.next_fire_at,"
    " removed_at = CASE WHEN $2::boolean THEN NULL ELSE s.removed_at END, updated_at = now())"
    " UPDATE maintq.schedules SET removed_at = now(), updated_at = now()"
    " WHERE $2::boolean AND removed_at IS NULL AND name NOT IN (SELECT name FROM d)";

/* A new leader's view of which schedules exist ($1: a JSON array of names): marks removed
 * the rows it lacks and unmarks the ones it has. */
static const char sql_removed[] =
    "UPDATE maintq.schedules"
    " SET removed_at = CASE WHEN removed_at IS NULL THEN now() END, updated_at = now()"
    " WHERE (removed_at IS NULL)"
    " <> (name IN (SELECT json_array_elements_text($1::json)))";

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

/* s as a JSON string (quoted, escaped); NULL as null. */
static int text_add_json_string(struct strbuf *t, const char *s)
{
    json_t *j;
    char *q;
    int r;

    if (!s)
        return strbuf_add_str(t, "null");
    j = json_string(s);
    q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!q)
        return strbuf_fail(t, -ENOMEM); /* or not UTF-8, which the loader ruled out */
    r = strbuf_add_str(t, q);
    free(q);
    return r;
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
    strbuf_release(&fl->rows);
    strbuf_release(&fl->names);
    free(fl->last_names);
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

void fire_log_load_begin(struct fire_log *fl)
{
    strbuf_release(&fl->rows);
    strbuf_release(&fl->names);
    fl->load_n = 0;
    fl->load_failed = strbuf_add_str(&fl->rows, "[") < 0 || strbuf_add_str(&fl->names, "[") < 0;
    fl->loading = true;
}

/* Closes the batch and queues it. names_complete: the batch is a whole set, whose names are
 * the view the next election marks removals by. */
static int load_finish(struct fire_log *fl, bool leader, bool names_complete)
{
    char *v[2];

    fl->loading = false;
    if (fl->load_failed || strbuf_add_lit(&fl->rows, "]") < 0 ||
        strbuf_add_lit(&fl->names, "]") < 0) {
        strbuf_release(&fl->rows);
        strbuf_release(&fl->names);
        return -ENOMEM;
    }
    if (names_complete) {
        char *names = strbuf_detach(&fl->names, NULL);

        if (names) {
            free(fl->last_names);
            fl->last_names = names;
        }
    }
    strbuf_release(&fl->names);
    v[0] = strbuf_detach(&fl->rows, NULL); /* ownership moves to the record */
    v[1] = strdup(leader ? "true" : "false");
    return rec_queue(fl, sql_load, 2, v, v[0] && v[1]);
}

/* Appends one row object to the batch and its name to the names. definition is JSON text
 * already (json_dumps at load): it goes in as it is. */
static int add_row(struct fire_log *fl, const char *name, const char *cron, const char *zone,
                   const char *definition, int paused, int64_t next_us)
{
    struct strbuf *t = &fl->rows;
    char buf[CLOCK_RFC3339_MAX];
    const char *next =
        next_us == INT64_MIN || next_us == INT64_MAX ? NULL : clock_format_rfc3339_us(next_us, buf);

    if (fl->load_n > 0 && (strbuf_add_str(t, ",") < 0 || strbuf_add_str(&fl->names, ",") < 0))
        return -ENOMEM;
    if (strbuf_add_str(t, "{\"name\":") < 0 || text_add_json_string(t, name) < 0 ||
        strbuf_add_str(t, ",\"cron\":") < 0 || text_add_json_string(t, cron) < 0 ||
        strbuf_add_str(t, ",\"zone\":") < 0 || text_add_json_string(t, zone) < 0 ||
        strbuf_add_str(t, paused ? ",\"paused\":true" : ",\"paused\":false") < 0 ||
        strbuf_add_str(t, ",\"next_fire_at\":") < 0 || text_add_json_string(t, next) < 0 ||
        strbuf_add_str(t, ",\"definition\":") < 0 || strbuf_add_str(t, definition) < 0 ||
        strbuf_add_str(t, "}") < 0 || text_add_json_string(&fl->names, name) < 0)
        return -ENOMEM;
    return 0;
}

int fire_log_definition(struct fire_log *fl, const char *name, const char *cron,
                        const char *zone, const char *definition, int paused, int64_t next_us)
{
    bool alone = !fl->loading;
    int r, q;

    if (alone)
        fire_log_load_begin(fl);
    r = fl->load_failed ? -ENOMEM : add_row(fl, name, cron, zone, definition, paused, next_us);
    if (r < 0)
        fl->load_failed = true; /* the text may hold half a row: the batch is dropped */
    else
        fl->load_n++;
    if (!alone)
        return r;
    q = load_finish(fl, false, false);
    return r < 0 ? r : q;
}

int fire_log_load_end(struct fire_log *fl, bool leader, size_t n_defined)
{
    bool complete = fl->load_n == n_defined;

    if (!fl->loading)
        return -EINVAL;
    /* A definition that did not reach the batch must not be taken for a removed schedule. */
    if (!complete)
        log_warn("%zu of %zu schedule definitions recorded; no removals marked", fl->load_n,
                 n_defined);
    return load_finish(fl, leader && complete, complete);
}

void fire_log_load_cancel(struct fire_log *fl)
{
    fl->loading = false;
    strbuf_release(&fl->rows);
    strbuf_release(&fl->names);
}

int fire_log_mark_removed(struct fire_log *fl)
{
    char *v[1];

    if (!fl->last_names)
        return 0;
    v[0] = strdup(fl->last_names);
    return rec_queue(fl, sql_removed, 1, v, v[0] != NULL);
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
