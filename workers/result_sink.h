/* Batched, durable result rows. Rows added while a batch is in flight wait and go out
 * together as the next batch (one COPY of up to RESULT_SINK_BATCH_MAX rows and one NOTIFY
 * maintq_results in one transaction; when the COPY meets a row that exists already, the
 * batch goes again as INSERT ... ON CONFLICT (job_id, attempt) DO NOTHING), so the batch size
 * grows with the load and an idle worker writes a row at once. A row's callback runs only
 * after its batch committed. When Postgres is unreachable the batch is kept and retried
 * with backoff; nothing is dropped. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct store;

#define RESULT_SINK_BATCH_MAX 1000

struct result_sink;

/* db is borrowed and must outlive the sink. Caller frees with result_sink_free(). */
int result_sink_new(struct event_base *base, struct store *db, struct result_sink **ret);

/* One attempt row of maintq.job_runs, as the runner hands it over. A plain struct rather
 * than a JSON object: the sink writes COPY text from it directly, and builds JSON only for
 * the rare INSERT fallback. */
struct result_row {
    const char *job_id, *type, *queue, *status, *worker; /* borrowed, not NULL */
    const char *schedule;                                 /* borrowed, NULL: SQL NULL */
    const char *error;                                    /* borrowed, NULL: SQL NULL */
    int64_t attempt;
    bool has_scheduled_for;
    int64_t scheduled_for_us, started_us, finished_us;   /* wall clock */
    int64_t lock_fence;                                   /* 0: SQL NULL */
    json_t *params, *result; /* borrowed; NULL or a JSON null: SQL NULL */
};

/* Queues a row: the sink copies row's strings and takes its own references on params and
 * result, so row may go when this returns. committed is called once, with data, after the
 * row's batch committed (a row that already existed counts as committed: the insert is
 * idempotent). Returns 0 or -ENOMEM (nothing queued). */
int result_sink_add(struct result_sink *s, const struct result_row *row,
                    void (*committed)(void *data), void *data);

/* Rows added and not yet committed. */
size_t result_sink_backlog(const struct result_sink *s);

/* Drops queued rows without calling their callbacks (the worker is exiting on a second
 * signal: their entries stay pending in Redis and are reclaimed). Returns NULL. */
struct result_sink *result_sink_free(struct result_sink *s);
