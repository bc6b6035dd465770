/* Builds rq_lua_fire's KEYS and ARGV for a scheduler tick (see sched_fire.h). The queue and
 * the attempt budget of the stream entry come from the descriptor as parsed, so they always
 * match what the worker will read from it. */
#include "sched_fire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descriptor.h"
#include "rq_scripts.h"

static int push_keys(struct rq_args *a, const char *prefix, const char *name, int64_t fire_ms,
                     const char *queue)
{
    char key[RQ_KEY_MAX], what[RQ_KEY_MAX];
    int n = snprintf(what, sizeof(what), "%s:%lld", name, (long long)fire_ms);
    int r;

    if (n < 0 || (size_t)n >= sizeof(what))
        return -ENAMETOOLONG;
    if ((r = rq_key(key, sizeof(key), prefix, "fired", what)) < 0 ||
        (r = rq_args_push_str(a, key)) < 0)
        return r;
    if ((r = rq_key(key, sizeof(key), prefix, "sched:last", NULL)) < 0 ||
        (r = rq_args_push_str(a, key)) < 0)
        return r;
    if ((r = rq_key(key, sizeof(key), prefix, "sched:paused", NULL)) < 0 ||
        (r = rq_args_push_str(a, key)) < 0)
        return r;
    if ((r = rq_key(key, sizeof(key), prefix, "q", queue)) < 0 ||
        (r = rq_args_push_str(a, key)) < 0)
        return r;
    if ((r = rq_key(key, sizeof(key), prefix, "delayed", NULL)) < 0 ||
        (r = rq_args_push_str(a, key)) < 0)
        return r;
    if ((r = rq_key(key, sizeof(key), prefix, "sched:fired", NULL)) < 0 ||
        (r = rq_args_push_str(a, key)) < 0)
        return r;
    return 0;
}

int sched_fire_args(struct rq_args *a, const char *prefix, const struct schedule *s,
                    int64_t tick_us, int64_t not_after_us, int64_t now_us, int64_t delay_ms,
                    unsigned flags, char ret_job_id[UUID_STR_LEN], struct errbuf *eb)
{
    char *text = NULL;
    struct descriptor *d = NULL;
    int64_t fire_ms = tick_us / 1000;
    int r;

    r = schedule_build_descriptor(s, tick_us, not_after_us, now_us, &text, eb);
    if (r < 0)
        goto fail;
    r = descriptor_parse(text, strlen(text), DESCRIPTOR_REQUIRE_COMPLETE, &d, eb);
    if (r < 0)
        goto fail;
    if ((r = push_keys(a, prefix, s->name, fire_ms, d->queue)) < 0 ||
        (r = rq_args_push_str(a, s->name)) < 0 || (r = rq_args_push_int(a, fire_ms)) < 0 ||
        (r = rq_args_push_str(a, "fire")) < 0 ||
        (r = rq_args_push_str(a, !(flags & SCHED_FIRE_CHECK_PAUSED) ? ""
                                 : s->paused                        ? "1"
                                                                    : "0")) < 0 ||
        (r = rq_args_push_str(a, d->id)) < 0 || (r = rq_args_push_str(a, text)) < 0 ||
        (r = rq_args_push_int(a, d->max_attempts)) < 0 ||
        (r = rq_args_push_str(a, d->queue)) < 0 || (r = rq_args_push_int(a, delay_ms)) < 0 ||
        (r = rq_args_push_int(a, SCHED_FIRE_DEDUPE_MS)) < 0 ||
        (r = rq_args_push_str(a, (flags & SCHED_FIRE_RECORD_LAST) ? "1" : "0")) < 0)
        goto fail;
    memcpy(ret_job_id, d->id, UUID_STR_LEN);
    r = 0;
fail:
    descriptor_free(d);
    free(text);
    return r;
}

int sched_skip_args(struct rq_args *a, const char *prefix, const char *name, int64_t tick_us)
{
    int64_t fire_ms = tick_us / 1000;
    int r;

    /* The stream key is not touched by a skip; any queue name keeps KEYS well formed. */
    if ((r = push_keys(a, prefix, name, fire_ms, "default")) < 0 ||
        (r = rq_args_push_str(a, name)) < 0 || (r = rq_args_push_int(a, fire_ms)) < 0 ||
        (r = rq_args_push_str(a, "skip")) < 0)
        return r;
    /* paused default, job id, descriptor, max, queue, delay, ttl: unused; record last. */
    for (int i = 0; i < 8; i++)
        if ((r = rq_args_push_str(a, i == 7 ? "1" : "")) < 0)
            return r;
    return 0;
}
