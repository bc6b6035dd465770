/* Cron expressions: parsed once into bitmasks, then asked for the next fire time in a time
 * zone. Syntax: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds
 * first; lists, ranges, steps, JAN-DEC / SUN-SAT names, `?`, `L`, `L-n`, `nW`, `LW`,
 * weekday `nL` and `n#k`, and the @yearly/@annually/@monthly/@weekly/@daily/@midnight/
 * @hourly macros. When both day fields are restricted a day matches if either does.
 *
 * Daylight saving time is decided by the hour field. An hour field that is `*` or a single
 * step (`*`, `*\/2`, `1/2`, `0-23/2`, `@hourly`) follows the real clock: a wall time inside
 * a spring-forward gap does not fire, a wall time that occurs twice fires twice. Any other
 * hour field fires a wall time the gap skips once, at the first instant after the gap
 * (several skipped times collapse into that instant), and a repeated wall time once, at its
 * first occurrence. */
#pragma once

#include <stdint.h>

struct cron;
struct errbuf;
struct tz;

/* How far cron_next looks before it gives up: the Gregorian calendar repeats every 400
 * years, so an expression with no fire time in that span has none at all. */
#define CRON_HORIZON_YEARS 401

/* Parses expr. Returns 0, -EINVAL (eb says which field and why, e.g.
 * "day-of-week: 8 is out of range 0-7") or -ENOMEM. *ret (caller frees with cron_free())
 * is written only on success. */
int cron_parse(const char *expr, struct cron **ret, struct errbuf *eb);

/* Accepts NULL; returns NULL. */
struct cron *cron_free(struct cron *c);

/* The first fire time strictly after after_us (microseconds since the epoch), in zone
 * (borrowed; NULL is UTC). Fire times are whole seconds. Returns 0, or -ENOENT when no
 * fire time exists within CRON_HORIZON_YEARS (e.g. "0 0 30 2 *") or within the range of
 * int64 microseconds. *ret_us is written only on success. Thread-safe: c and zone are
 * only read. */
int cron_next(const struct cron *c, const struct tz *zone, int64_t after_us, int64_t *ret_us);

/* True when the hour field follows the real clock across DST changes (see above). */
int cron_follows_real_clock(const struct cron *c);
