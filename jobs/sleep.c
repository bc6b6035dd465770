/* `sleep`: waits `seconds` (0..86400, fractions allowed) on an event timer, then succeeds
 * with {"slept_s": seconds}. It exists for tests of timeouts, cancellation, locks and
 * shutdown: a job that takes a known time and holds no other resource. */
#include "job.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#define SLEEP_MAX_S 86400.0

static const char *const sleep_keys[] = {"seconds", NULL};

struct sleep_state {
    struct event *timer; /* owned */
    double seconds;
};

static int sleep_parse(const json_t *params, double *ret_seconds, struct errbuf *eb)
{
    const json_t *v;
    double s;
    int r;

    r = job_params_check_object(params, sleep_keys, eb);
    if (r < 0)
        return r;
    v = params ? json_object_get(params, "seconds") : NULL;
    if (!v) {
        errbuf_set(eb, "params.seconds: required");
        return -EINVAL;
    }
    if (!json_is_number(v)) {
        errbuf_set(eb, "params.seconds: expected number");
        return -EINVAL;
    }
    s = json_number_value(v);
    if (!(s >= 0.0 && s <= SLEEP_MAX_S)) {
        errbuf_set(eb, "params.seconds: must be between 0 and 86400");
        return -ERANGE;
    }
    *ret_seconds = s;
    return 0;
}

static int sleep_check(const json_t *params, struct errbuf *eb)
{
    double s;

    return sleep_parse(params, &s, eb);
}

static void sleep_state_free(struct sleep_state *st)
{
    if (!st)
        return;
    if (st->timer)
        event_free(st->timer);
    free(st);
}

static void sleep_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct job_exec *x = arg;
    struct sleep_state *st = x->state;
    json_t *result; /* new: handed to job_exec_done */

    result = json_pack("{s:f}", "slept_s", st->seconds);
    sleep_state_free(st);
    x->state = NULL;
    if (!result) {
        job_exec_done(x, JOB_STATUS_FAILED, NULL, "out of memory");
        return;
    }
    job_exec_done(x, JOB_STATUS_OK, result, NULL);
}

static int sleep_start(struct job_exec *x, struct errbuf *eb)
{
    struct sleep_state *st;
    struct timeval tv;
    double whole, frac;
    int r;

    st = calloc(1, sizeof(*st));
    if (!st) {
        errbuf_set(eb, "out of memory");
        return -ENOMEM;
    }
    r = sleep_parse(x->params, &st->seconds, eb);
    if (r < 0)
        goto fail;
    st->timer = evtimer_new(x->base, sleep_on_timer, x);
    if (!st->timer) {
        errbuf_set(eb, "cannot create timer");
        r = -ENOMEM;
        goto fail;
    }
    frac = modf(st->seconds, &whole);
    tv.tv_sec = (time_t)whole;
    tv.tv_usec = (suseconds_t)(frac * 1e6);
    if (evtimer_add(st->timer, &tv) < 0) {
        errbuf_set(eb, "cannot arm timer");
        r = -EIO;
        goto fail;
    }
    x->state = st;
    return 0;
fail:
    sleep_state_free(st);
    return r;
}

static void sleep_cancel(struct job_exec *x)
{
    sleep_state_free(x->state);
    x->state = NULL;
}

const struct job_type job_type_sleep = {
    .name = "sleep",
    .check = sleep_check,
    .start = sleep_start,
    .cancel = sleep_cancel,
};
