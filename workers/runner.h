/* One attempt of one job inside a worker child, from the stream entry to the XACK:
 *
 *   NEW -> LOCKING -> RUNNING -> RECORDING -> FINISHING -> DONE
 *
 * NEW validates the entry (bad descriptors go straight to FINISHING as a dead letter);
 * LOCKING takes the job's lock (a busy lock sends the entry back to the delayed set
 * without counting an attempt); RUNNING runs the handler under the job's timeout;
 * RECORDING waits for the row to commit in Postgres; FINISHING waits for the Redis
 * script that acknowledges the entry and, per outcome, schedules the retry or writes the
 * dead letter and releases the lock. Nothing is acknowledged before its row is committed. */
#pragma once

#include <stdbool.h>

#include "child.h"
#include "rq.h"

/* Starts a run for a freshly read entry of stream s (borrowed). Returns 0 or -ENOMEM (the
 * entry then stays pending and is reclaimed later). */
int runner_start(struct child *c, struct child_stream *s, const struct rq_entry *e);

/* Cancels a running handler because the worker is shutting down: the attempt is recorded
 * as cancelled and retried. No-op for runs past RUNNING. */
void runner_cancel_for_shutdown(struct job_run *run);

struct job_run *runner_next(const struct job_run *run);
bool runner_is_running(const struct job_run *run);
