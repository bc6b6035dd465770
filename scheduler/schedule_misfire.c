/* Misfire plans: after downtime, which of a schedule's ticks since its last fire run and
 * which are recorded as missed (with the reason), per its misfire policy (skip, run_once,
 * run_all) and starting deadline, bounded so that a years-long outage of a per-second
 * schedule cannot stall the daemon. Pure computation over cron fires, no I/O. */
#include "schedule_internal.h"

#include <errno.h>
#include <stdio.h>

#include "clock.h"

/* How many ticks beyond the misfire bound are counted one by one for the summary line; past
 * it the reason says "more than". Keeps a years-long outage of a per-second schedule from
 * stalling the daemon's start. */
#define SCHEDULE_MISFIRE_COUNT_MAX 1000000

/* Counts the ticks of s in (after, until], stopping at limit + 1. */
static int count_ticks(const struct schedule *s, int64_t after, int64_t until, size_t limit,
                       size_t *ret)
{
    size_t n = 0;
    int64_t t = after;

    while (n <= limit) {
        int r = cron_next(s->cron, s->zone, t, &t);
        if (r == -ENOENT || (r == 0 && t > until))
            break;
        if (r < 0)
            return r;
        n++;
    }
    *ret = n;
    return 0;
}

static const char reason_skip[] = "missed while no scheduler fired it (misfire skip)";
static const char reason_superseded[] = "superseded by a later tick (misfire run_once)";
static const char reason_deadline[] = "older than the starting deadline";

int schedule_misfire_plan(const struct schedule *s, int64_t last_fire_us, int64_t now_us,
                          size_t max_ticks,
                          void (*cb)(const struct schedule *s, int64_t tick_us, bool fire,
                                     const char *reason, void *data),
                          void *data)
{
    int64_t start = last_fire_us, t, next, oldest_ok;
    size_t n;
    int r;

    if (max_ticks == 0)
        return -EINVAL;
    /* Never fired: the schedule is new, there is nothing it could have missed. */
    if (last_fire_us == INT64_MIN || now_us <= last_fire_us)
        return 0;
    r = count_ticks(s, last_fire_us, now_us, max_ticks, &n);
    if (r < 0)
        return r;
    if (n > max_ticks) {
        /* Find the point start with exactly max_ticks ticks in (start, now]: the smallest x
         * with count(x, now] <= max_ticks (each probe counts at most max_ticks + 1). */
        int64_t lo = last_fire_us, hi = now_us, first;
        char reason[256], until[CLOCK_RFC3339_MAX];
        size_t older;

        while (schedule_span(lo, hi) > 1) {
            int64_t mid = schedule_mid_point(lo, hi);
            r = count_ticks(s, mid, now_us, max_ticks, &n);
            if (r < 0)
                return r;
            if (n > max_ticks)
                lo = mid;
            else
                hi = mid;
        }
        start = hi;
        /* The older ticks, (last_fire, start], are reported once, at the oldest. */
        r = cron_next(s->cron, s->zone, last_fire_us, &first);
        if (r < 0)
            return r;
        r = count_ticks(s, last_fire_us, start, SCHEDULE_MISFIRE_COUNT_MAX, &older);
        if (r < 0)
            return r;
        snprintf(reason, sizeof(reason),
                 "%s%zu ticks from this one to %s missed: beyond the newest %zu ticks the "
                 "misfire policy considers",
                 older > SCHEDULE_MISFIRE_COUNT_MAX ? "more than " : "",
                 older > SCHEDULE_MISFIRE_COUNT_MAX ? (size_t)SCHEDULE_MISFIRE_COUNT_MAX : older,
                 clock_format_rfc3339(start, until), max_ticks);
        cb(s, first, false, reason, data);
    }

    oldest_ok = s->starting_deadline_us > 0 && now_us > INT64_MIN + s->starting_deadline_us
                    ? now_us - s->starting_deadline_us
                    : INT64_MIN;
    r = cron_next(s->cron, s->zone, start, &t);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    while (t <= now_us) {
        r = cron_next(s->cron, s->zone, t, &next);
        if (r == -ENOENT)
            next = INT64_MAX;
        else if (r < 0)
            return r;
        if (t < oldest_ok)
            cb(s, t, false, reason_deadline, data);
        else if (s->misfire == SCHEDULE_MISFIRE_SKIP)
            cb(s, t, false, reason_skip, data);
        else if (s->misfire == SCHEDULE_MISFIRE_RUN_ONCE && next <= now_us)
            cb(s, t, false, reason_superseded, data);
        else
            cb(s, t, true, NULL, data);
        t = next;
    }
    return 0;
}
