/* The job handler interface. Each job type is one file in jobs/ exporting one constant
 * `struct job_type`; jobs/registry.c lists them in a static table.
 *
 * The worker's runner owns a `struct job_exec` per attempt. It calls the type's start()
 * on the worker's event loop; the handler starts asynchronous work (timers, curl, libpq,
 * child processes) and later calls job_exec_done() exactly once. The runner may instead
 * call cancel() (timeout, shutdown, replace): the handler then stops its work, releases
 * everything it allocated and never calls job_exec_done() for that run. Handlers never
 * log or print; what they have to say goes into the result or the error text. */
#pragma once

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "errbuf.h"

enum job_status {
    JOB_STATUS_OK,
    JOB_STATUS_WARNING,
    JOB_STATUS_CRITICAL,
    JOB_STATUS_FAILED,
    JOB_STATUS_TIMEOUT,
    JOB_STATUS_CANCELLED,
    JOB_STATUS_DEAD,
    JOB_STATUS_SKIPPED,
    JOB_STATUS_MISSED_WINDOW,
    _JOB_STATUS_MAX,
};

/* "ok", "warning", ... as stored in maintq.job_runs.status. */
const char *job_status_name(enum job_status s);
/* Returns 0 and writes *ret, or -EINVAL for an unknown name. */
int job_status_parse(const char *name, enum job_status *ret);
/* ok/warning/critical are results of a check (not retried); failed/timeout/cancelled
 * are failures of the attempt (retried while attempts remain). */
int job_status_is_retryable(enum job_status s);

struct job_exec;
struct child_watch; /* jobs/child_watch.h */

struct job_type {
    const char *name;
    /* Validates params (borrowed) before a job is accepted; names the field on error:
     * "params.seconds: expected number". NULL means "params must be an empty object". */
    int (*check)(const json_t *params, struct errbuf *eb);
    /* Begins the work. Returns 0 (job_exec_done() will follow, possibly before start()
     * returns) or a negative errno with eb filled (nothing to cancel, no done call). */
    int (*start)(struct job_exec *x, struct errbuf *eb);
    /* Stops the work started by start(); frees x->state. May be NULL when start() always
     * completes synchronously. */
    void (*cancel)(struct job_exec *x);
};

/* Settings the worker gives every handler (from its config; borrowed). They are valid while
 * start() runs: a reload may replace them afterwards, so a handler copies what it keeps. */
struct job_env {
    const char *const *exec_allow; /* NULL-terminated absolute paths `exec` may run */
};

/* One attempt of one job, as a handler sees it. The runner allocates and frees it. */
struct job_exec {
    struct event_base *base; /* borrowed: the worker's loop */
    /* borrowed: the loop's one SIGCHLD watcher; handlers that run child processes register
     * them here and hand them over on cancel (see jobs/child_watch.h). */
    struct child_watch *children;
    const json_t *params;      /* borrowed, valid until done or cancel */
    const struct job_env *env; /* borrowed */
    const char *job_id;        /* borrowed */
    /* 1-based number of this attempt (the descriptor's delivery, not a handler's memory):
     * lets a handler such as `fail` behave differently on a retry. */
    int attempt;
    int64_t timeout_us; /* the runner enforces it; handlers may use it as a hint */
    void *state;        /* owned by the handler between start and done/cancel */

    /* Set by the runner: called by job_exec_done(). */
    void (*on_done)(struct job_exec *x, enum job_status status, json_t *result, const char *error);
    void *runner_data;
};

/* Reports the end of the work. result: takes ownership (may be NULL); error: borrowed
 * (copied by the runner; NULL for ok). The handler must have freed x->state before. */
void job_exec_done(struct job_exec *x, enum job_status status, json_t *result, const char *error);

/* For check(): params (borrowed, may be NULL = absent = {}) must be an object whose keys
 * are all in `known` (NULL-terminated; NULL = no keys allowed). Returns 0 or -EINVAL with
 * "params: expected object" or "params.<key>: unknown field" in eb. */
int job_params_check_object(const json_t *params, const char *const *known, struct errbuf *eb);

/* The registry (jobs/registry.c). Returns the type or NULL when unknown. */
const struct job_type *job_type_find(const char *name);
/* The whole table, NULL-terminated, for `maintq` help and the schema test. */
const struct job_type *const *job_types_all(void);

/* The job types, one file each (jobs/<name>.c), listed in jobs/registry.c. */
extern const struct job_type job_type_noop;
extern const struct job_type job_type_sleep;
extern const struct job_type job_type_fail;
extern const struct job_type job_type_exec;
