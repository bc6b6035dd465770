/* Builds rq_lua_fire's KEYS and ARGV for a scheduler tick (see sched_fire.h). The queue and
 * the attempt budget of the stream entry come from the descriptor as parsed, so they always
 * match what the worker will read from it. */
#include "sched_fire.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descriptor.h"
#include "resp.h"
#include "rq_scripts.h"

/* Adds the script's six KEYS. Returns 0, -ENAMETOOLONG, or a->b.err. */
static int add_keys(struct resp_cmd *a, const char *prefix, const char *name, int64_t fire_ms,
                    const char *queue)
{
    static const struct {
        const char *what;
        bool named; /* followed by a name: the tick's, or the queue */
    } keys[] = {
        {"fired", true},   {"sched:last", false}, {"sched:paused", false},
        {"q", true},       {"delayed", false},    {"sched:fired", false},
    };
    char key[RQ_KEY_MAX], tick[RQ_KEY_MAX];
    int n = snprintf(tick, sizeof(tick), "%s:%lld", name, (long long)fire_ms);

    if (n < 0 || (size_t)n >= sizeof(tick))
        return -ENAMETOOLONG;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *which = !keys[i].named ? NULL : i == 0 ? tick : queue;

        if (rq_key(key, sizeof(key), prefix, keys[i].what, which) < 0)
            return -ENAMETOOLONG;
        resp_cmd_add_str(a, key);
    }
    return a->b.err;
}

int sched_fire_args(struct resp_cmd *a, const char *prefix, const struct schedule *s,
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
    r = add_keys(a, prefix, s->name, fire_ms, d->queue);
    if (r < 0)
        goto fail;
    resp_cmd_add_str(a, s->name);
    resp_cmd_add_int(a, fire_ms);
    resp_cmd_add_str(a, "fire");
    resp_cmd_add_str(a, !(flags & SCHED_FIRE_CHECK_PAUSED) ? "" : s->paused ? "1" : "0");
    resp_cmd_add_str(a, d->id);
    resp_cmd_add_str(a, text);
    resp_cmd_add_int(a, d->max_attempts);
    resp_cmd_add_str(a, d->queue);
    resp_cmd_add_int(a, delay_ms);
    resp_cmd_add_int(a, SCHED_FIRE_DEDUPE_MS);
    resp_cmd_add_str(a, (flags & SCHED_FIRE_RECORD_LAST) ? "1" : "0");
    r = a->b.err;
    if (r < 0)
        goto fail;
    memcpy(ret_job_id, d->id, UUID_STR_LEN);
    r = 0;
fail:
    descriptor_free(d);
    free(text);
    return r;
}

int sched_skip_args(struct resp_cmd *a, const char *prefix, const char *name, int64_t tick_us)
{
    int64_t fire_ms = tick_us / 1000;
    int r;

    /* The stream key is not touched by a skip; any queue name keeps KEYS well formed. */
    r = add_keys(a, prefix, name, fire_ms, "default");
    if (r < 0)
        return r;
    resp_cmd_add_str(a, name);
    resp_cmd_add_int(a, fire_ms);
    resp_cmd_add_str(a, "skip");
    /* paused default, job id, descriptor, max, queue, delay, ttl: unused; record last. */
    for (int i = 0; i < 8; i++)
        resp_cmd_add_str(a, i == 7 ? "1" : "");
    return a->b.err;
}
