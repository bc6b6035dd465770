/* Maintenance windows: whether a tick lies inside one of a schedule's windows (each opens at
 * a fire of the window's cron and stays open for its duration) and when that window ends,
 * which becomes the job's not_after. Pure computation over cron fires, no I/O. */
#include "schedule_internal.h"

#include <errno.h>

#include "clock.h"

/* The window containing t is the one opened by the latest window-cron fire <= t (all
 * windows of a schedule have the same length, so an earlier one ends earlier), and t is
 * inside iff that fire is after t - duration. Rather than stepping cron_next forward from
 * t - duration (one call per fire: a per-second window cron with a day-long duration would
 * cost 86400 calls), this bisects on "the first fire after x is <= t", which is true for
 * x below the latest fire and false from it on: about log2(duration / 1 s) calls. */
int schedule_window_at(const struct schedule *s, int64_t t_us, int64_t *ret_end_us)
{
    const struct schedule_window *w = s->window;
    int64_t lo, hi, open, f;
    int r;

    if (!w) {
        *ret_end_us = INT64_MAX;
        return 1;
    }
    lo = t_us < INT64_MIN + w->duration_us ? INT64_MIN : t_us - w->duration_us;
    r = cron_next(w->cron, w->zone, lo, &f);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    if (f > t_us)
        return 0;
    /* Invariant: cron_next(lo) <= t < cron_next(hi). Once hi - lo <= 1 s the interval
     * (lo, hi] holds exactly one whole second, so the fires in (lo, t] are one: the latest. */
    hi = t_us;
    while (schedule_span(lo, hi) > (uint64_t)USEC_PER_SEC) {
        int64_t mid = schedule_mid_point(lo, hi);

        r = cron_next(w->cron, w->zone, mid, &f);
        if (r < 0 && r != -ENOENT)
            return r;
        if (r == 0 && f <= t_us)
            lo = mid;
        else
            hi = mid;
    }
    r = cron_next(w->cron, w->zone, lo, &open);
    if (r < 0)
        return r;
    f = open > INT64_MAX - w->duration_us ? INT64_MAX : open + w->duration_us;
    if (t_us >= f)
        return 0;
    *ret_end_us = f;
    return 1;
}
