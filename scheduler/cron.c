/* Cron expressions: a parser into bitmasks and a next-fire search that skips by field.
 * The search runs on "local seconds" (the wall clock read as if it were UTC): a wrong
 * month jumps to the first day of the next allowed month, the days of a month are one
 * 31-bit mask built in a few operations (L, L-n, nW, LW, nL and n#k resolved for that
 * month), and the time of day comes from the second/minute/hour masks with ctz. The
 * result is then mapped to UTC with the zone's periods of constant offset, following the
 * DST rules in cron.h. This file never prints: errors go to the caller's errbuf. */
#include "cron.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "errbuf.h"
#include "parse.h"
#include "tz.h"

#define EXPR_MAX 1024

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_COUNT };

static const struct field_info {
    const char *name;
    int min, max;
} fields[F_COUNT] = {
    {"second", 0, 59},       {"minute", 0, 59}, {"hour", 0, 23},
    {"day-of-month", 1, 31}, {"month", 1, 12},  {"day-of-week", 0, 7},
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct cron {
    uint64_t sec;          /* bit s */
    uint64_t min;          /* bit m */
    uint32_t hour;         /* bit h */
    uint32_t dom;          /* bit d-1: plain days of the month */
    uint32_t dom_last_rev; /* "L-n" as bit 30-n, so ">> (31 - days)" gives day bits */
    uint32_t dow_days[7];  /* plain weekdays as day bits of a month starting on weekday i */
    uint16_t mon;          /* bit m-1 */
    uint8_t dow;           /* bit w, 0 = Sunday */
    uint8_t dow_last;      /* "wL": bit w */
    uint8_t dow_nth[7];    /* "w#k": dow_nth[w] bit k-1 */
    uint8_t dom_nearest;   /* "nW": n, or 0 */
    bool dom_lw;           /* "LW" */
    bool dom_any, dow_any; /* the field is exactly "*" or "?" */
    bool dow_special;      /* some nL or n#k */
    bool real_clock;       /* hour field "*" or one step: follows the real clock */
};

/* ---- parsing ---- */

static bool has_char(const char *s, size_t n, char ch)
{
    return memchr(s, ch, n) != NULL;
}

static bool token_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* A number or (month, day-of-week) a name. dow_end: "SUN" closing a range means 7. */
static int parse_value(int f, const char *s, size_t n, bool dow_end, int *ret, struct errbuf *eb)
{
    const struct field_info *fi = &fields[f];
    char buf[16];
    int64_t v;
    size_t i;

    if (n > 0 && s[0] >= '0' && s[0] <= '9') {
        for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == n && n < sizeof(buf)) {
            memcpy(buf, s, n);
            buf[n] = '\0';
            if (parse_int64(buf, fi->min, fi->max, &v) == 0) {
                *ret = (int)v;
                return 0;
            }
            errbuf_set(eb, "%s: %s is out of range %d-%d", fi->name, buf, fi->min, fi->max);
            return -EINVAL;
        }
        if (i == n) {
            errbuf_set(eb, "%s: %.*s... is out of range %d-%d", fi->name, 12, s, fi->min, fi->max);
            return -EINVAL;
        }
    }
    if (f == F_MON)
        for (i = 0; i < 12; i++)
            if (token_is(s, n, month_names[i])) {
                *ret = (int)i + 1;
                return 0;
            }
    if (f == F_DOW)
        for (i = 0; i < 7; i++)
            if (token_is(s, n, day_names[i])) {
                *ret = i == 0 && dow_end ? 7 : (int)i;
                return 0;
            }
    if (n == 0)
        errbuf_set(eb, "%s: missing number", fi->name);
    else if (f == F_MON || f == F_DOW)
        errbuf_set(eb, "%s: \"%.*s\" is not a number or %s name", fi->name, (int)(n > 32 ? 32 : n),
                   s, f == F_MON ? "month" : "weekday");
    else
        errbuf_set(eb, "%s: \"%.*s\" is not a number", fi->name, (int)(n > 32 ? 32 : n), s);
    return -EINVAL;
}

/* A plain number in [min, max] that is part of item (L-n, nW, n#k), for the message. */
static int parse_part(int f, const char *item, size_t item_n, const char *s, size_t n, int min,
                      int max, int *ret, struct errbuf *eb)
{
    int in = (int)(item_n > 32 ? 32 : item_n);
    char buf[16];
    int64_t v;

    if (n == 0 || n >= sizeof(buf) || strspn(s, "0123456789") < n) {
        errbuf_set(eb, "%s: \"%.*s\" is not valid", fields[f].name, in, item);
        return -EINVAL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (parse_int64(buf, min, max, &v) < 0) {
        errbuf_set(eb, "%s: %s in \"%.*s\" is out of range %d-%d", fields[f].name, buf, in, item,
                   min, max);
        return -EINVAL;
    }
    *ret = (int)v;
    return 0;
}

static void set_bits(struct cron *c, int f, int lo, int hi, int step)
{
    for (int v = lo; v <= hi; v += step) {
        switch (f) {
        case F_SEC:
            c->sec |= 1ULL << v;
            break;
        case F_MIN:
            c->min |= 1ULL << v;
            break;
        case F_HOUR:
            c->hour |= 1U << v;
            break;
        case F_DOM:
            c->dom |= 1U << (v - 1);
            break;
        case F_MON:
            c->mon = (uint16_t)(c->mon | 1U << (v - 1));
            break;
        default:
            c->dow = (uint8_t)(c->dow | 1U << (v % 7));
            break;
        }
    }
}

/* Day-of-month items that are not numbers: L, L-n (listable), nW and LW (alone). */
static int parse_dom_special(struct cron *c, const char *s, size_t n, bool alone, bool *ret_done,
                             struct errbuf *eb)
{
    int v;

    *ret_done = false;
    if (token_is(s, n, "L")) {
        c->dom_last_rev |= 1U << 30;
    } else if (n > 2 && (s[0] == 'L' || s[0] == 'l') && s[1] == '-') {
        if (parse_part(F_DOM, s, n, s + 2, n - 2, 0, 30, &v, eb) < 0)
            return -EINVAL;
        c->dom_last_rev |= 1U << (30 - v);
    } else if (n >= 2 && (s[n - 1] == 'W' || s[n - 1] == 'w')) {
        if (!alone) {
            errbuf_set(eb, "day-of-month: \"%.*s\" must stand alone", (int)(n > 32 ? 32 : n), s);
            return -EINVAL;
        }
        if (token_is(s, n, "LW")) {
            c->dom_lw = true;
        } else {
            if (parse_part(F_DOM, s, n, s, n - 1, 1, 31, &v, eb) < 0)
                return -EINVAL;
            c->dom_nearest = (uint8_t)v;
        }
    } else {
        return 0;
    }
    *ret_done = true;
    return 0;
}

/* Day-of-week items nL and n#k. */
static int parse_dow_special(struct cron *c, const char *s, size_t n, bool *ret_done,
                             struct errbuf *eb)
{
    const char *hash = memchr(s, '#', n);
    int w, k;

    *ret_done = false;
    if (hash) {
        if (parse_value(F_DOW, s, (size_t)(hash - s), false, &w, eb) < 0 ||
            parse_part(F_DOW, s, n, hash + 1, n - (size_t)(hash - s) - 1, 1, 5, &k, eb) < 0)
            return -EINVAL;
        c->dow_nth[w % 7] = (uint8_t)(c->dow_nth[w % 7] | 1U << (k - 1));
    } else if (n >= 1 && (s[n - 1] == 'L' || s[n - 1] == 'l')) {
        if (n == 1) {
            errbuf_set(eb, "day-of-week: \"L\" needs a weekday before it (e.g. 5L)");
            return -EINVAL;
        }
        if (parse_value(F_DOW, s, n - 1, false, &w, eb) < 0)
            return -EINVAL;
        c->dow_last = (uint8_t)(c->dow_last | 1U << (w % 7));
    } else {
        return 0;
    }
    c->dow_special = true;
    *ret_done = true;
    return 0;
}

static int parse_item(struct cron *c, int f, const char *s, size_t n, bool alone, struct errbuf *eb)
{
    const struct field_info *fi = &fields[f];
    const char *slash = memchr(s, '/', n), *dash;
    size_t bn = slash ? (size_t)(slash - s) : n; /* the part before the step */
    int lo, hi, step = 1, top = f == F_DOW ? 6 : fi->max;
    bool done;

    if (n == 0) {
        errbuf_set(eb, "%s: empty list item", fi->name);
        return -EINVAL;
    }
    if (has_char(s, n, '?')) {
        errbuf_set(eb, "%s: '?' is only allowed as the whole day-of-month or day-of-week field",
                   fi->name);
        return -EINVAL;
    }
    if (f == F_DOW && bn > 0 && (has_char(s, n, '#') || s[bn - 1] == 'L' || s[bn - 1] == 'l') &&
        (slash || has_char(s, n, '-'))) {
        errbuf_set(eb, "day-of-week: \"%.*s\": nL and n#k take no range or step",
                   (int)(n > 32 ? 32 : n), s);
        return -EINVAL;
    }
    if (f == F_DOM && slash &&
        (has_char(s, bn, 'L') || has_char(s, bn, 'l') || has_char(s, bn, 'W') ||
         has_char(s, bn, 'w'))) {
        errbuf_set(eb, "day-of-month: \"%.*s\": L, L-n, nW and LW take no step",
                   (int)(n > 32 ? 32 : n), s);
        return -EINVAL;
    }
    if (f == F_DOM && !slash) {
        if (parse_dom_special(c, s, n, alone, &done, eb) < 0)
            return -EINVAL;
        if (done)
            return 0;
    }
    if (f == F_DOW && !slash) {
        if (parse_dow_special(c, s, n, &done, eb) < 0)
            return -EINVAL;
        if (done)
            return 0;
    }
    if (slash) {
        char buf[16];
        int64_t v;
        size_t sn = n - bn - 1;
        int span = top - fi->min + 1;

        if (sn == 0 || sn >= sizeof(buf) || strspn(slash + 1, "0123456789") < sn) {
            errbuf_set(eb, "%s: step \"%.*s\" is not a number", fi->name, (int)(sn > 32 ? 32 : sn),
                       slash + 1);
            return -EINVAL;
        }
        memcpy(buf, slash + 1, sn);
        buf[sn] = '\0';
        if (parse_int64(buf, 1, span, &v) < 0) {
            errbuf_set(eb, "%s: step %s is out of range 1-%d", fi->name, buf, span);
            return -EINVAL;
        }
        step = (int)v;
    }
    if (bn == 1 && s[0] == '*') {
        set_bits(c, f, fi->min, top, step);
        return 0;
    }
    dash = memchr(s, '-', bn);
    if (!dash) {
        if (parse_value(f, s, bn, false, &lo, eb) < 0)
            return -EINVAL;
        /* "a/n" runs from a to the field's end. */
        set_bits(c, f, lo, slash ? (lo > top ? lo : top) : lo, step);
        return 0;
    }
    if (parse_value(f, s, (size_t)(dash - s), false, &lo, eb) < 0 ||
        parse_value(f, dash + 1, bn - (size_t)(dash - s) - 1, true, &hi, eb) < 0)
        return -EINVAL;
    if (lo > hi) {
        errbuf_set(eb, "%s: range %.*s is reversed", fi->name, (int)(bn > 32 ? 32 : bn), s);
        return -EINVAL;
    }
    set_bits(c, f, lo, hi, step);
    return 0;
}

static int parse_field(struct cron *c, int f, const char *s, size_t n, struct errbuf *eb)
{
    bool alone = !has_char(s, n, ',');
    size_t i = 0;

    if (n == 1 && s[0] == '?' && (f == F_DOM || f == F_DOW)) {
        set_bits(c, f, fields[f].min, f == F_DOW ? 6 : fields[f].max, 1);
        c->dom_any |= f == F_DOM;
        c->dow_any |= f == F_DOW;
        return 0;
    }
    if (n == 1 && s[0] == '*') {
        c->dom_any |= f == F_DOM;
        c->dow_any |= f == F_DOW;
    }
    if (f == F_HOUR)
        c->real_clock = (n == 1 && s[0] == '*') || (alone && has_char(s, n, '/'));
    while (i <= n) {
        size_t j = i;

        while (j < n && s[j] != ',')
            j++;
        if (parse_item(c, f, s + i, j - i, alone, eb) < 0)
            return -EINVAL;
        i = j + 1;
    }
    return 0;
}

static void finish(struct cron *c)
{
    for (int wd1 = 0; wd1 < 7; wd1++)
        for (int d = 1; d <= 31; d++)
            if (c->dow & (1U << ((wd1 + d - 1) % 7)))
                c->dow_days[wd1] |= 1U << (d - 1);
}

static const struct {
    const char *name, *expansion;
} macros[] = {
    {"@yearly", "0 0 0 1 1 *"}, {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
    {"@weekly", "0 0 0 * * 0"}, {"@daily", "0 0 0 * * *"},    {"@midnight", "0 0 0 * * *"},
    {"@hourly", "0 0 * * * *"},
};

int cron_parse(const char *expr, struct cron **ret, struct errbuf *eb)
{
    const char *start[F_COUNT + 1], *p;
    size_t len[F_COUNT + 1], n = 0, total;
    struct cron *c;
    int r = -EINVAL, first;

    if (!expr) {
        errbuf_set(eb, "expression: empty");
        return -EINVAL;
    }
    while (*expr == ' ' || *expr == '\t')
        expr++;
    total = strlen(expr);
    while (total > 0 && (expr[total - 1] == ' ' || expr[total - 1] == '\t'))
        total--;
    if (total == 0) {
        errbuf_set(eb, "expression: empty");
        return -EINVAL;
    }
    if (total > EXPR_MAX) {
        errbuf_set(eb, "expression: longer than %d characters", EXPR_MAX);
        return -EINVAL;
    }
    if (expr[0] == '@') {
        for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
            if (token_is(expr, total, macros[i].name))
                return cron_parse(macros[i].expansion, ret, eb);
        errbuf_set(eb, "expression: unknown macro \"%.*s\"", (int)(total > 32 ? 32 : total), expr);
        return -EINVAL;
    }
    for (p = expr; p < expr + total;) {
        const char *q = p;

        while (q < expr + total && *q != ' ' && *q != '\t')
            q++;
        if (n < F_COUNT + 1) {
            start[n] = p;
            len[n] = (size_t)(q - p);
        }
        n++;
        while (q < expr + total && (*q == ' ' || *q == '\t'))
            q++;
        p = q;
    }
    if (n != 5 && n != 6) {
        errbuf_set(eb, "expression: expected 5 or 6 fields, got %zu", n);
        return -EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    first = n == 6 ? F_SEC : F_MIN;
    if (n == 5)
        c->sec = 1; /* second 0 */
    for (int f = first; f < F_COUNT; f++)
        if (parse_field(c, f, start[f - first], len[f - first], eb) < 0)
            goto fail;
    finish(c);
    *ret = c;
    return 0;
fail:
    cron_free(c);
    return r;
}

struct cron *cron_free(struct cron *c)
{
    free(c);
    return NULL;
}

int cron_follows_real_clock(const struct cron *c)
{
    return c->real_clock;
}

/* ---- next fire time ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int next_bit(uint64_t mask, int from)
{
    if (from >= 64)
        return -1;
    mask >>= from;
    return mask ? from + __builtin_ctzll(mask) : -1;
}

static int month_days(int64_t y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dim[m - 1];
}

static int weekday_of_days(int64_t days) /* 0 = Sunday; 1970-01-01 was a Thursday */
{
    int64_t w = (days + 4) % 7;

    return (int)(w < 0 ? w + 7 : w);
}

/* The days (bit d-1) of a month with ndays days whose 1st is weekday wd1 that match. */
static uint32_t day_mask(const struct cron *c, int ndays, int wd1)
{
    uint32_t full = (1U << ndays) - 1, domm = 0, dowm = 0;

    if (c->dom_any && c->dow_any)
        return full;
    if (!c->dom_any) {
        domm = c->dom | c->dom_last_rev >> (31 - ndays);
        if (c->dom_nearest && c->dom_nearest <= ndays) {
            int d = c->dom_nearest, wd = (wd1 + d - 1) % 7;

            if (wd == 6) /* Saturday: Friday before, or Monday the 3rd for the 1st */
                d = d == 1 ? 3 : d - 1;
            else if (wd == 0) /* Sunday: Monday after, or Friday for the last day */
                d = d == ndays ? d - 2 : d + 1;
            domm |= 1U << (d - 1);
        }
        if (c->dom_lw) {
            int d = ndays, wd = (wd1 + d - 1) % 7;

            d -= wd == 6 ? 1 : wd == 0 ? 2 : 0;
            domm |= 1U << (d - 1);
        }
        domm &= full;
    }
    if (!c->dow_any) {
        dowm = c->dow_days[wd1];
        if (c->dow_special) {
            int wdl = (wd1 + ndays - 1) % 7;

            for (int w = 0; w < 7; w++) {
                if (c->dow_last & (1U << w))
                    dowm |= 1U << (ndays - 1 - (wdl - w + 7) % 7);
                for (int k = 1; k <= 5; k++) {
                    int d = 1 + (w - wd1 + 7) % 7 + 7 * (k - 1);

                    if ((c->dow_nth[w] & (1U << (k - 1))) && d <= ndays)
                        dowm |= 1U << (d - 1);
                }
            }
        }
        dowm &= full;
    }
    if (c->dom_any)
        return dowm;
    if (c->dow_any)
        return domm;
    return domm | dowm;
}

/* The first second of the day >= h:m:s that matches, or -1. */
static int next_time(const struct cron *c, int h, int m, int s)
{
    for (;;) {
        int nh = next_bit(c->hour, h), nm, ns;

        if (nh < 0)
            return -1;
        if (nh != h) {
            h = nh;
            m = 0;
            s = 0;
        }
        nm = next_bit(c->min, m);
        if (nm < 0) {
            h++;
            m = 0;
            s = 0;
            continue;
        }
        if (nm != m) {
            m = nm;
            s = 0;
        }
        ns = next_bit(c->sec, s);
        if (ns < 0) {
            m++;
            s = 0;
            continue;
        }
        return h * 3600 + m * 60 + ns;
    }
}

/* The first local second >= l that matches, searching CRON_HORIZON_YEARS ahead. */
static int next_local(const struct cron *c, int64_t l, int64_t *ret)
{
    int64_t days = floor_div(l, 86400), y, limit;
    int sod = (int)(l - days * 86400), m, d, h = sod / 3600, mi = sod / 60 % 60, s = sod % 60;
    unsigned um, ud;

    clock_civil_from_days(days, &y, &um, &ud);
    m = (int)um;
    d = (int)ud;
    limit = y + CRON_HORIZON_YEARS;
    for (;;) {
        int64_t first;
        uint32_t mask;
        int ndays, t;

        if (!(c->mon & (1U << (m - 1)))) {
            int nm = next_bit(c->mon, m); /* bit m is month m+1 */

            if (nm < 0) {
                y++;
                nm = next_bit(c->mon, 0);
            }
            m = nm + 1;
            d = 1;
            h = mi = s = 0;
        }
        if (y > limit)
            return -ENOENT;
        ndays = month_days(y, m);
        first = clock_days_from_civil(y, (unsigned)m, 1);
        mask = d <= ndays ? day_mask(c, ndays, weekday_of_days(first)) >> (d - 1) << (d - 1) : 0;
        if (mask) {
            int nd = __builtin_ctz(mask) + 1;

            if (nd != d) {
                d = nd;
                h = mi = s = 0;
            }
            t = next_time(c, h, mi, s);
            if (t >= 0) {
                *ret = (first + d - 1) * 86400 + t;
                return 0;
            }
            if (d < ndays) {
                d++;
                h = mi = s = 0;
                continue;
            }
        }
        if (++m > 12) {
            m = 1;
            y++;
        }
        d = 1;
        h = mi = s = 0;
    }
}

/* Real clock: every UTC second whose wall time matches, walking periods of one offset. */
static int next_real_clock(const struct cron *c, const struct tz *zone, int64_t t, int64_t *ret)
{
    struct tz_period p;
    int64_t from = t, l;
    int r;

    tz_period_at(zone, t, &p);
    for (;;) {
        r = next_local(c, from + p.offset, &l);
        if (r < 0)
            return r;
        if (l < p.end + p.offset) {
            *ret = l - p.offset;
            return 0;
        }
        if (p.end >= TZ_FOREVER || p.end - t > (int64_t)CRON_HORIZON_YEARS * 366 * 86400)
            return -ENOENT;
        from = p.end;
        tz_period_at(zone, p.end, &p);
    }
}

/* Fixed hours: skipped wall times fire at the end of the gap, repeated ones only at their
 * first occurrence. Mapping wall time to UTC that way never goes backwards, so the answer
 * is the first matching wall time that maps to >= t. */
static int next_fixed_hours(const struct cron *c, const struct tz *zone, int64_t t, int64_t *ret)
{
    struct tz_period p, prev;
    struct tz_local map;
    int64_t lstart, l, u;
    int r;

    tz_period_at(zone, t, &p);
    lstart = t + p.offset;
    if (p.start > -TZ_FOREVER && t - p.start < 86400) {
        tz_period_at(zone, p.start - 1, &prev);
        /* t at the end of a gap: the skipped wall times map to t itself. */
        if (prev.offset < p.offset && t == p.start)
            lstart = p.start + prev.offset;
        /* t in the second pass of an overlap: those wall times already fired. */
        else if (prev.offset > p.offset && t < p.start + (prev.offset - p.offset))
            lstart = p.start + prev.offset;
    }
    for (int guard = 0; guard < 8; guard++) {
        r = next_local(c, lstart, &l);
        if (r < 0)
            return r;
        tz_local_to_utc(zone, l, &map);
        u = map.count == 0 ? map.gap_end : map.utc[0];
        if (u >= t) {
            *ret = u;
            return 0;
        }
        lstart = l + 1; /* only reachable for zones with odd, stacked transitions */
    }
    return -ENOENT;
}

int cron_next(const struct cron *c, const struct tz *zone, int64_t after_us, int64_t *ret_us)
{
    int64_t t = floor_div(after_us, USEC_PER_SEC) + 1, u;
    int r;

    if (tz_is_fixed(zone)) {
        int32_t off = tz_offset_at(zone, 0);

        r = next_local(c, t + off, &u);
        if (r == 0)
            u -= off;
    } else if (c->real_clock) {
        r = next_real_clock(c, zone, t, &u);
    } else {
        r = next_fixed_hours(c, zone, t, &u);
    }
    if (r < 0)
        return r;
    if (u > INT64_MAX / USEC_PER_SEC)
        return -ENOENT;
    *ret_us = u * USEC_PER_SEC;
    return 0;
}
