/* What every job type shares: the status names stored in maintq.job_runs.status, which
 * statuses the runner retries, the one way a handler reports completion, and the params
 * shape check that makes a misspelt key an error instead of a silently ignored option. */
#include "job.h"

#include <errno.h>
#include <string.h>

static const char *const status_names[_JOB_STATUS_MAX] = {
    [JOB_STATUS_OK] = "ok",
    [JOB_STATUS_WARNING] = "warning",
    [JOB_STATUS_CRITICAL] = "critical",
    [JOB_STATUS_FAILED] = "failed",
    [JOB_STATUS_TIMEOUT] = "timeout",
    [JOB_STATUS_CANCELLED] = "cancelled",
    [JOB_STATUS_DEAD] = "dead",
    [JOB_STATUS_SKIPPED] = "skipped",
    [JOB_STATUS_MISSED_WINDOW] = "missed_window",
};

const char *job_status_name(enum job_status s)
{
    if ((unsigned)s >= _JOB_STATUS_MAX)
        return NULL;
    return status_names[s];
}

int job_status_parse(const char *name, enum job_status *ret)
{
    if (!name)
        return -EINVAL;
    for (unsigned i = 0; i < _JOB_STATUS_MAX; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *ret = (enum job_status)i;
            return 0;
        }
    }
    return -EINVAL;
}

int job_status_is_retryable(enum job_status s)
{
    return s == JOB_STATUS_FAILED || s == JOB_STATUS_TIMEOUT || s == JOB_STATUS_CANCELLED;
}

void job_exec_done(struct job_exec *x, enum job_status status, json_t *result, const char *error)
{
    x->on_done(x, status, result, error);
}

int job_params_check_object(const json_t *params, const char *const *known, struct errbuf *eb)
{
    const char *key;
    json_t *value;

    if (!params)
        return 0;
    if (!json_is_object(params)) {
        errbuf_set(eb, "params: expected object");
        return -EINVAL;
    }
    /* json_object_foreach wants a non-const object; it only reads. */
    json_object_foreach((json_t *)(uintptr_t)params, key, value) {
        int found = 0;

        for (size_t i = 0; known && known[i]; i++) {
            if (strcmp(key, known[i]) == 0) {
                found = 1;
                break;
            }
        }
        if (!found) {
            errbuf_set(eb, "params.%s: unknown field", key);
            return -EINVAL;
        }
    }
    return 0;
}
