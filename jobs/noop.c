/* `noop`: does nothing and succeeds at once. It measures the pipeline itself (submit,
 * consume, record, ack) in tests and benchmarks, so it must cost nothing. */
#include "job.h"

#include <errno.h>

static int noop_check(const json_t *params, struct errbuf *eb)
{
    return job_params_check_object(params, NULL, eb);
}

static int noop_start(struct job_exec *x, struct errbuf *eb)
{
    json_t *result = json_object(); /* new: handed to job_exec_done */

    if (!result) {
        errbuf_set(eb, "out of memory");
        return -ENOMEM;
    }
    /* The contract allows completing inside start(): nothing to wait for. */
    job_exec_done(x, JOB_STATUS_OK, result, NULL);
    return 0;
}

const struct job_type job_type_noop = {
    .name = "noop",
    .check = noop_check,
    .start = noop_start,
    .cancel = NULL,
};
