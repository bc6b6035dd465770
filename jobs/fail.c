/* `fail`: fails on purpose `times` times (default 1), then succeeds. A handler keeps no
 * memory between attempts, so it compares the runner's attempt number with `times`: the
 * retry, backoff and dead-letter paths get a job whose outcome is known in advance. */
#include "job.h"

#include <errno.h>
#include <stdio.h>

#define FAIL_MAX_TIMES 1000000

static const char *const fail_keys[] = {"times", NULL};

static int fail_parse(const json_t *params, json_int_t *ret_times, struct errbuf *eb)
{
    const json_t *v;
    json_int_t n;
    int r;

    r = job_params_check_object(params, fail_keys, eb);
    if (r < 0)
        return r;
    v = params ? json_object_get(params, "times") : NULL;
    if (!v) {
        *ret_times = 1;
        return 0;
    }
    if (!json_is_integer(v)) {
        errbuf_set(eb, "params.times: expected integer");
        return -EINVAL;
    }
    n = json_integer_value(v);
    if (n < 0 || n > FAIL_MAX_TIMES) {
        errbuf_set(eb, "params.times: must be between 0 and %d", FAIL_MAX_TIMES);
        return -ERANGE;
    }
    *ret_times = n;
    return 0;
}

static int fail_check(const json_t *params, struct errbuf *eb)
{
    json_int_t n;

    return fail_parse(params, &n, eb);
}

static int fail_start(struct job_exec *x, struct errbuf *eb)
{
    char msg[128];
    json_int_t times;
    json_t *result; /* new: handed to job_exec_done */
    int r;

    r = fail_parse(x->params, &times, eb);
    if (r < 0)
        return r;
    result = json_pack("{s:i,s:I}", "attempt", x->attempt, "planned_failures", times);
    if (!result) {
        errbuf_set(eb, "out of memory");
        return -ENOMEM;
    }
    if (x->attempt <= times) {
        snprintf(msg, sizeof(msg), "failing on purpose (attempt %d of %lld planned failures)",
                 x->attempt, (long long)times);
        job_exec_done(x, JOB_STATUS_FAILED, result, msg);
    } else {
        job_exec_done(x, JOB_STATUS_OK, result, NULL);
    }
    return 0;
}

const struct job_type job_type_fail = {
    .name = "fail",
    .check = fail_check,
    .start = fail_start,
    .cancel = NULL,
};
