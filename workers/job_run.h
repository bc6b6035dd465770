/* The state of one job run, shared by runner.c (the per-attempt state machine) and
 * inflight.c (the Redis bookkeeping of entries in flight: finish batches, heartbeats, cancel
 * keys). Internal to workers/. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
/* struct event itself, to embed a run's timers (event_assign) instead of allocating them.
 * libevent warns this ties the build to its struct layout: we build against the headers of
 * the libevent we link (Debian's libevent-dev), so the two always match. */
#include <event2/event_struct.h>
#include <jansson.h>

#include "child.h"
#include "descriptor.h"
#include "job.h"
#include "rq.h"

/* How long a run waits before sending again a Redis command that got no answer. */
#define REDIS_RETRY_MS 500

enum run_state {
    RUN_NEW,
    RUN_CHECKING, /* a scheduled tick: has this job id already finished? */
    RUN_LOCKING,
    RUN_RUNNING,
    RUN_RECORDING,
    RUN_FINISHING,
    RUN_DONE,
};

/* What the finish script does with the entry. */
enum finish_action {
    FINISH_ACK,
    FINISH_RETRY, /* next attempt via the delayed set */
    FINISH_DELAY, /* same attempt via the delayed set (lock busy) */
    FINISH_DEAD,
};

/* The lock of a run whose descriptor names one: kept apart, as its keys are most of a run's
 * size and most jobs have no lock (a worker may hold thousands of runs awaiting Postgres). */
struct run_lock {
    struct event timer; /* renewal, or retry of a failed acquire */
    char key[RQ_KEY_MAX];
    char fence_key[RQ_KEY_MAX];
    char token[160];
};

struct job_run {
    struct child *child;          /* borrowed */
    struct job_run *prev, *next;  /* in child->runs */
    struct job_run *finish_next;  /* in child->finish queue */
    enum run_state state;
    bool occupies_slot;
    bool in_sink;

    struct child_stream *stream;  /* borrowed */
    char entry_id[48];
    char *raw;                    /* in text: the descriptor as read (NULL if none) */
    size_t raw_len;
    char *note;                   /* in text: the entry's r field (NULL if none) */
    int64_t attempt;
    int64_t max_attempts;
    struct descriptor *d;         /* owned, NULL when the entry did not parse */
    const struct job_type *type;  /* borrowed from the registry */

    struct job_exec exec;
    bool exec_active;             /* start() succeeded and neither done nor cancel yet */
    struct event timeout_timer;   /* assigned when the handler starts */
    bool timeout_assigned;
    struct run_lock *lock;        /* owned; NULL unless the descriptor names a lock */
    int64_t lock_fence;           /* 0 when no lock is held */
    bool shutdown_cancel;
    bool replaced;                /* cancelled through its cancel key: not retried */

    int64_t started_us, finished_us;
    enum job_status status;
    json_t *result;               /* owned */
    char *error;                  /* owned */
    bool has_row;                 /* an attempt row goes to Postgres */

    enum finish_action action;
    char *body;                   /* owned: delayed member or dead-letter descriptor */
    size_t body_len;
    int64_t delay_ms;
    char *dead_reason;            /* owned: error text of the dead letter */

    /* raw and note, NUL-terminated, in the run's own allocation: one malloc per entry
     * fewer on a path taken tens of thousands of times a second. */
    char text[];
};

/* Frees the run and everything it owns, whatever its state (cancels a running handler). */
void job_run_free(struct job_run *run);

/* Stops a running handler and records the attempt with status st and error why; replaced
 * runs (their cancel key was set) are not retried. */
void job_run_cancel(struct job_run *run, enum job_status st, const char *why, bool replaced);
