/* The PostgreSQL connection of the daemons: non-blocking libpq driven by a libevent
 * event_base. Statements are queued and run one at a time in order; each one's callback
 * runs only after the server answered it (or after the connection broke, with a NULL
 * result, so the caller keeps its data and retries). The connection comes back by itself
 * with exponential backoff and jitter, re-issuing every LISTEN; NOTIFY messages go to a
 * callback. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

struct event_base;
struct store;

/* Default time allowed for one connection attempt (TCP, TLS, authentication). */
#define STORE_CONNECT_TIMEOUT_MS 10000
/* Reconnect backoff: attempt n waits a random time in [d/2, d], d = min(max, min * 2^n). */
#define STORE_BACKOFF_MIN_MS 100
#define STORE_BACKOFF_MAX_MS 5000

/* A statement's outcome. res is borrowed (cleared when the callback returns):
 * - PGRES_COMMAND_OK / PGRES_TUPLES_OK: it ran (committed, unless inside a transaction
 *   block the caller opened);
 * - PGRES_FATAL_ERROR: the server rejected it (PQresultErrorField for the SQLSTATE): retrying
 *   the same statement will fail again;
 * - NULL: no answer: the connection broke or could not be made; the statement may or may
 *   not have run (make writes idempotent, e.g. INSERT ... ON CONFLICT DO NOTHING, and retry).
 * The callback may queue statements and may call store_free(). */
typedef void store_result_fn(struct store *s, const PGresult *res, void *data);

/* Connection events; every member may be NULL. reason is one line naming the server with
 * its password redacted ("postgres host=127.0.0.1 port=5432 password=***: connection to
 * server ... failed: Connection refused"), borrowed for the call. Callbacks may call
 * store_free(). */
struct store_events {
    /* Connected; LISTENs are re-issued ahead of any queued statement. */
    void (*connected)(struct store *s, void *data);
    /* A ready connection broke; the running and queued statements are failed (NULL). */
    void (*disconnected)(struct store *s, const char *reason, void *data);
    /* An attempt failed before the connection was ready; queued statements are failed. */
    void (*connect_failed)(struct store *s, const char *reason, void *data);
    /* A NOTIFY on a channel passed to store_listen(); both strings borrowed. */
    void (*notify)(struct store *s, const char *channel, const char *payload, void *data);
    /* Per attempt; 0 means STORE_CONNECT_TIMEOUT_MS. */
    int connect_timeout_ms;
};

/* Creates the connection and schedules its first attempt on base (no callback runs inside
 * this call). conninfo (keyword=value or postgresql:// URI) and ev are copied; ev_data is
 * borrowed. Returns 0, -EINVAL (conninfo libpq cannot parse) or -ENOMEM. *ret is
 * caller-freed with store_free(). */
int store_new(struct event_base *base, const char *conninfo, const struct store_events *ev,
              void *ev_data, struct store **ret);

/* Closes the connection and drops every queued statement WITHOUT calling its callback; no
 * callback runs after it returns. Safe in any state, from any of its callbacks, and with
 * NULL. Returns NULL. */
struct store *store_free(struct store *s);

/* Queues one statement (one SQL command, $1..$n placeholders) with nparams text
 * parameters (NULL entries are SQL NULL). sql and values are copied. cb may be NULL.
 * Returns 0, -EINVAL (nparams < 0, or > 0 with values NULL), -ENOMEM, -ESHUTDOWN (called
 * during store_free). */
int store_query(struct store *s, const char *sql, int nparams, const char *const *values,
                store_result_fn *cb, void *data);

/* Queues one COPY ... FROM STDIN statement (sql, e.g. "COPY maintq.job_runs (job_id, ...)
 * FROM STDIN") with its data: len bytes in the format the statement names (text format:
 * one line per row, fields separated by tabs). sql and data are copied. When its turn
 * comes the data is sent without blocking the loop, however big, and cb gets the final
 * answer as for store_query: PGRES_COMMAND_OK (committed; PQcmdTuples says how many rows),
 * PGRES_FATAL_ERROR (the server refused the data, nothing stored), or NULL (the connection
 * broke; the copy may or may not have committed).
 * sql goes as a simple query without parameters, so it may go on after the COPY with more
 * statements separated by ';' ("COPY ... FROM STDIN; SELECT pg_notify(...)"): they all run
 * in one implicit transaction, the later ones only when the COPY succeeded, and cb gets
 * the last statement's answer, or the first error. A statement that is not a COPY runs as
 * usual and the data is ignored; COPY TO STDOUT, here or through store_query, drops the
 * connection (its statement gets NULL). Returns 0, -EINVAL (sql NULL, or data NULL with
 * len > 0), -ENOMEM, -ESHUTDOWN (called during store_free). */
int store_copy(struct store *s, const char *sql, const char *data, size_t len, store_result_fn *cb,
               void *cbdata);

/* Listens on channel now (if connected) and after every reconnect; notifications arrive
 * at ev->notify. Listening twice on one channel is a no-op. Returns 0, -EINVAL (empty or
 * longer than 63 bytes), -ENOMEM or -ESHUTDOWN. */
int store_listen(struct store *s, const char *channel);

/* True between the "connected" and the next "disconnected" event. */
bool store_ready(const struct store *s);

/* The last connection failure as one line, "" if none. Borrowed until the next failure. */
const char *store_last_error(const struct store *s);

/* The conninfo with its password redacted, for log lines. */
const char *store_display(const struct store *s);
