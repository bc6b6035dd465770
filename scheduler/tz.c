/* A small reader for the system tz database: it loads one TZif (version 2 or later) file,
 * keeps its 64-bit transition table and parses the POSIX TZ string in the footer, which
 * decides every offset after the last transition (Debian's files stop at 2037; slim files
 * stop much earlier). Lookups are a binary search plus, past the table, the footer rule
 * evaluated for the year in question, so nothing depends on the C library's global TZ
 * state (setenv("TZ") + localtime is neither thread-safe nor fast). */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "errbuf.h"

#define TZ_NAME_MAX 255
#define TZ_FILE_MAX (1 << 20)

/* One "date/time" of a POSIX TZ rule: Jn, n or Mm.w.d, plus the local time of day. */
struct tz_rule {
    char kind; /* 'J' (1..365, no Feb 29), 'N' (0..365), 'M' (month.week.weekday) */
    int n, m, w, d;
    int32_t time; /* seconds after local midnight, may be negative or past 24h */
};

struct tz {
    char *name;
    size_t count;       /* transitions */
    int64_t *times;     /* UTC seconds, ascending */
    int32_t *offs;      /* offset in effect from times[i] on */
    int32_t off_before; /* before the first transition: time type 0 */
    bool has_footer;
    bool footer_dst; /* the footer has a DST rule (else a fixed offset) */
    int32_t std_off, dst_off;
    struct tz_rule start, end; /* std->dst and dst->std */
};

static int64_t clamp(int64_t v)
{
    return v < -TZ_FOREVER ? -TZ_FOREVER : v > TZ_FOREVER ? TZ_FOREVER : v;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int weekday_of_days(int64_t days) /* 0 = Sunday; 1970-01-01 was a Thursday */
{
    int64_t w = (days + 4) % 7;

    return (int)(w < 0 ? w + 7 : w);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* ---- POSIX TZ string (the footer) ---- */

static int parse_name(const char **p)
{
    const char *s = *p;

    if (*s == '<') {
        s++;
        while (*s && *s != '>') {
            if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                  (*s >= '0' && *s <= '9') || *s == '+' || *s == '-'))
                return -EINVAL;
            s++;
        }
        if (*s != '>' || s - *p < 4)
            return -EINVAL;
        *p = s + 1;
        return 0;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    if (s - *p < 3)
        return -EINVAL;
    *p = s;
    return 0;
}

static int parse_num(const char **p, int max, int *ret)
{
    int v = 0, n = 0;

    while (**p >= '0' && **p <= '9' && n < 4) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || v > max)
        return -EINVAL;
    *ret = v;
    return 0;
}

/* [+-]hh[:mm[:ss]] -> seconds; max_h is 24 for offsets and 167 for rule times. */
static int parse_hms(const char **p, int max_h, int32_t *ret)
{
    int sign = 1, h, m = 0, s = 0;

    if (**p == '+' || **p == '-') {
        sign = **p == '-' ? -1 : 1;
        (*p)++;
    }
    if (parse_num(p, max_h, &h) < 0)
        return -EINVAL;
    if (**p == ':') {
        (*p)++;
        if (parse_num(p, 59, &m) < 0)
            return -EINVAL;
        if (**p == ':') {
            (*p)++;
            if (parse_num(p, 59, &s) < 0)
                return -EINVAL;
        }
    }
    *ret = sign * (h * 3600 + m * 60 + s);
    return 0;
}

static int parse_rule(const char **p, struct tz_rule *r)
{
    r->time = 7200; /* POSIX default: 02:00 */
    if (**p == 'J') {
        (*p)++;
        r->kind = 'J';
        if (parse_num(p, 365, &r->n) < 0 || r->n < 1)
            return -EINVAL;
    } else if (**p == 'M') {
        (*p)++;
        r->kind = 'M';
        if (parse_num(p, 12, &r->m) < 0 || r->m < 1 || *(*p)++ != '.' ||
            parse_num(p, 5, &r->w) < 0 || r->w < 1 || *(*p)++ != '.' || parse_num(p, 6, &r->d) < 0)
            return -EINVAL;
    } else {
        r->kind = 'N';
        if (parse_num(p, 365, &r->n) < 0)
            return -EINVAL;
    }
    if (**p == '/') {
        (*p)++;
        if (parse_hms(p, 167, &r->time) < 0)
            return -EINVAL;
    }
    return 0;
}

static int parse_footer(struct tz *tz, const char *s)
{
    int32_t off;

    if (parse_name(&s) < 0 || parse_hms(&s, 24, &off) < 0)
        return -EINVAL;
    tz->std_off = -off; /* POSIX counts west of Greenwich as positive */
    tz->has_footer = true;
    if (*s == '\0')
        return 0;
    if (parse_name(&s) < 0)
        return -EINVAL;
    tz->dst_off = tz->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (parse_hms(&s, 24, &off) < 0)
            return -EINVAL;
        tz->dst_off = -off;
    }
    /* A DST name without rules is implementation-defined in POSIX; TZif files always
     * carry the rules, so anything else is treated as corrupt. */
    if (*s++ != ',' || parse_rule(&s, &tz->start) < 0 || *s++ != ',' ||
        parse_rule(&s, &tz->end) < 0 || *s != '\0')
        return -EINVAL;
    tz->footer_dst = true;
    return 0;
}

/* The UTC second at which rule r happens in year y, given the offset in effect before. */
static int64_t rule_utc(const struct tz_rule *r, int64_t y, int32_t off_before)
{
    int64_t days = clock_days_from_civil(y, 1, 1);

    if (r->kind == 'J')
        days += r->n - 1 + (is_leap(y) && r->n >= 60);
    else if (r->kind == 'N')
        days += r->n;
    else {
        int64_t first = clock_days_from_civil(y, (unsigned)r->m, 1);
        int d = 1 + (r->d - weekday_of_days(first) + 7) % 7 + 7 * (r->w - 1);

        while (d > month_days(y, r->m))
            d -= 7;
        days = first + d - 1;
    }
    return days * 86400 + r->time - off_before;
}

static void footer_period(const struct tz *tz, int64_t u, struct tz_period *ret)
{
    struct {
        int64_t at;
        int32_t off;
    } ev[6], tmp;
    int64_t y;
    unsigned mo, d;
    int n = 0, last = -1;

    if (!tz->footer_dst) {
        *ret = (struct tz_period){-TZ_FOREVER, TZ_FOREVER, tz->std_off};
        return;
    }
    clock_civil_from_days(floor_div(u, 86400), &y, &mo, &d);
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        ev[n].at = rule_utc(&tz->start, yy, tz->std_off);
        ev[n++].off = tz->dst_off;
        ev[n].at = rule_utc(&tz->end, yy, tz->dst_off);
        ev[n++].off = tz->std_off;
    }
    /* Stable insertion sort: southern zones end DST before they start it in a year. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && ev[j - 1].at > ev[j].at; j--) {
            tmp = ev[j];
            ev[j] = ev[j - 1];
            ev[j - 1] = tmp;
        }
    for (int i = 0; i < n; i++)
        if (ev[i].at <= u)
            last = i;
    if (last < 0) {
        *ret = (struct tz_period){-TZ_FOREVER, ev[0].at,
                                  ev[0].off == tz->dst_off ? tz->std_off : tz->dst_off};
        return;
    }
    ret->start = ev[last].at;
    ret->offset = ev[last].off;
    ret->end = TZ_FOREVER;
    for (int i = last + 1; i < n; i++)
        if (ev[i].at > u) {
            ret->end = ev[i].at;
            break;
        }
}

void tz_period_at(const struct tz *tz, int64_t utc_s, struct tz_period *ret)
{
    size_t lo = 0, hi;
    int64_t u = clamp(utc_s);

    if (!tz || (tz->count == 0 && !tz->has_footer)) {
        *ret = (struct tz_period){-TZ_FOREVER, TZ_FOREVER, tz ? tz->off_before : 0};
        return;
    }
    hi = tz->count;
    while (lo < hi) { /* lo = number of transitions <= u */
        size_t mid = lo + (hi - lo) / 2;

        if (tz->times[mid] <= u)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (tz->count > 0 && lo == 0) {
        *ret = (struct tz_period){-TZ_FOREVER, tz->times[0], tz->off_before};
        return;
    }
    if (lo < tz->count) {
        *ret = (struct tz_period){tz->times[lo - 1], tz->times[lo], tz->offs[lo - 1]};
        return;
    }
    if (!tz->has_footer) {
        *ret = (struct tz_period){tz->times[lo - 1], TZ_FOREVER, tz->offs[lo - 1]};
        return;
    }
    footer_period(tz, u, ret);
    if (tz->count > 0 && ret->start < tz->times[tz->count - 1])
        ret->start = tz->times[tz->count - 1];
}

int32_t tz_offset_at(const struct tz *tz, int64_t utc_us)
{
    struct tz_period p;

    tz_period_at(tz, floor_div(utc_us, USEC_PER_SEC), &p);
    return p.offset;
}

int tz_is_fixed(const struct tz *tz)
{
    return !tz || (tz->count == 0 && (!tz->has_footer || !tz->footer_dst));
}

const char *tz_name(const struct tz *tz)
{
    return tz ? tz->name : "UTC";
}

static bool local_in(const struct tz_period *p, int64_t l)
{
    return l >= p->start + p->offset && l < p->end + p->offset;
}

void tz_local_to_utc(const struct tz *tz, int64_t local_s, struct tz_local *ret)
{
    struct tz_period around[3];
    int64_t l = clamp(local_s);
    int n = 0;

    ret->count = 0;
    ret->gap_end = 0;
    tz_period_at(tz, l, &around[1]);
    tz_period_at(tz, l - around[1].offset, &around[1]);
    tz_period_at(tz, around[1].start - 1, &around[0]);
    tz_period_at(tz, around[1].end, &around[2]);
    for (int i = 0; i < 3; i++) {
        int64_t u = l - around[i].offset;

        if ((i == 0 && around[1].start <= -TZ_FOREVER) || (i == 2 && around[1].end >= TZ_FOREVER))
            continue; /* an open period has no neighbour on that side */
        if (!local_in(&around[i], l) || (n > 0 && ret->utc[n - 1] == u))
            continue;
        if (n < 2)
            ret->utc[n++] = u;
    }
    ret->count = n;
    if (n == 2 && ret->utc[0] > ret->utc[1]) {
        int64_t t = ret->utc[0];

        ret->utc[0] = ret->utc[1];
        ret->utc[1] = t;
    }
    if (n == 0)
        ret->gap_end = l < around[1].start + around[1].offset ? around[1].start : around[1].end;
}

/* ---- TZif ---- */

static int valid_name(const char *name)
{
    size_t len = strlen(name), comp = 0;

    if (len == 0 || len > TZ_NAME_MAX || name[0] == '/')
        return 0;
    for (size_t i = 0; i <= len; i++) {
        char c = name[i];

        if (c == '/' || c == '\0') {
            /* Empty, "." and ".." components, and hidden names, are not zone names. */
            if (comp == 0 || name[i - comp] == '.')
                return 0;
            comp = 0;
            continue;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '+' || c == '.'))
            return 0;
        if (comp == 0 && c == '-')
            return 0;
        comp++;
    }
    return 1;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static int read_header(const unsigned char *p, size_t size, struct tzif_counts *c)
{
    if (size < 44 || memcmp(p, "TZif", 4) != 0)
        return -EINVAL;
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    /* Bounds that no real zone comes near keep the size arithmetic below from overflowing. */
    if (c->time > 100000 || c->type == 0 || c->type > 256 || c->chars > 100000 ||
        c->leap > 100000 || (c->isut && c->isut != c->type) || (c->isstd && c->isstd != c->type))
        return -EINVAL;
    return 0;
}

static size_t block_size(const struct tzif_counts *c, size_t tsize)
{
    return c->time * tsize + c->time + c->type * 6 + c->chars + c->leap * (tsize + 4) + c->isstd +
           c->isut;
}

static int parse_tzif(struct tz *tz, const unsigned char *data, size_t size)
{
    struct tzif_counts c;
    const unsigned char *p, *idx, *types;
    size_t v1, v2;
    int64_t prev = 0;

    if (read_header(data, size, &c) < 0)
        return -EINVAL;
    if (data[4] < '2') /* version 1 has only 32-bit times: no years past 2038 */
        return -EINVAL;
    v1 = 44 + block_size(&c, 4);
    if (v1 > size || read_header(data + v1, size - v1, &c) < 0)
        return -EINVAL;
    /* Leap-second ("right/") zones count TAI-like seconds; cron times are POSIX times. */
    if (c.leap != 0)
        return -EINVAL;
    v2 = v1 + 44 + block_size(&c, 8);
    if (v2 > size)
        return -EINVAL;
    p = data + v1 + 44;
    idx = p + (size_t)c.time * 8;
    types = idx + c.time;
    tz->count = c.time;
    tz->times = calloc(c.time + 1, sizeof(*tz->times));
    tz->offs = calloc(c.time + 1, sizeof(*tz->offs));
    if (!tz->times || !tz->offs)
        return -ENOMEM;
    for (size_t i = 0; i < c.time; i++) {
        int64_t t = clamp(be64(p + i * 8));

        if (idx[i] >= c.type || (i > 0 && t <= prev))
            return -EINVAL;
        tz->times[i] = prev = t;
        tz->offs[i] = (int32_t)be32(types + idx[i] * 6);
    }
    tz->off_before = (int32_t)be32(types);
    for (size_t i = 0; i < c.type; i++) {
        int32_t o = (int32_t)be32(types + i * 6);

        if (o < -89999 || o > 93599 || types[i * 6 + 4] > 1)
            return -EINVAL;
    }
    /* Footer: "\n" TZ-string "\n" (the string may be empty: no rule after the table). */
    if (v2 < size) {
        char footer[128];
        const unsigned char *nl;
        size_t len;

        if (data[v2] != '\n')
            return -EINVAL;
        nl = memchr(data + v2 + 1, '\n', size - v2 - 1);
        if (!nl)
            return -EINVAL;
        len = (size_t)(nl - (data + v2 + 1));
        if (len >= sizeof(footer) || memchr(data + v2 + 1, '\0', len))
            return -EINVAL;
        memcpy(footer, data + v2 + 1, len);
        footer[len] = '\0';
        if (len > 0 && parse_footer(tz, footer) < 0)
            return -EINVAL;
    }
    return 0;
}

struct tz *tz_free(struct tz *tz)
{
    if (!tz)
        return NULL;
    free(tz->name);
    free(tz->times);
    free(tz->offs);
    free(tz);
    return NULL;
}

static struct tz *tz_alloc(const char *name)
{
    struct tz *tz = calloc(1, sizeof(*tz));

    if (!tz)
        return NULL;
    tz->name = strdup(name);
    if (!tz->name)
        return tz_free(tz);
    return tz;
}

int tz_load_tzif(const char *name, const unsigned char *data, size_t size, struct tz **ret_tz,
                 struct errbuf *eb)
{
    struct tz *tz = tz_alloc(name); /* freed with tz_free() on failure */
    int r;

    if (!tz)
        return -ENOMEM;
    r = parse_tzif(tz, data, size);
    if (r < 0) {
        if (r == -EINVAL)
            errbuf_set(eb, "time zone \"%s\": unreadable or unsupported tz database file", name);
        goto fail;
    }
    *ret_tz = tz;
    return 0;
fail:
    tz_free(tz);
    return r;
}

int tz_load(const char *name, struct tz **ret_tz, struct errbuf *eb)
{
    char path[sizeof(TZ_DIR) + TZ_NAME_MAX + 2];
    unsigned char *data = NULL; /* the file's bytes, freed here */
    struct stat st;
    struct tz *tz;
    size_t got = 0;
    int fd = -1, r;

    if (!name || !valid_name(name)) {
        errbuf_set(eb, "\"%.64s\" is not a time zone name (expected e.g. Europe/London)",
                   name ? name : "");
        return -EINVAL;
    }
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
        tz = tz_alloc(name);
        if (!tz)
            return -ENOMEM;
        *ret_tz = tz;
        return 0;
    }
    snprintf(path, sizeof(path), "%s/%s", TZ_DIR, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        errbuf_set(eb, "unknown time zone \"%s\"", name);
        r = -ENOENT;
        goto fail;
    }
    if (st.st_size < 44 || st.st_size > TZ_FILE_MAX) {
        r = -EINVAL;
        errbuf_set(eb, "time zone \"%s\": unreadable or unsupported tz database file", name);
        goto fail;
    }
    data = malloc((size_t)st.st_size);
    if (!data) {
        r = -ENOMEM;
        goto fail;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            errbuf_set(eb, "time zone \"%s\": cannot read %s", name, path);
            r = n < 0 ? -errno : -EIO;
            goto fail;
        }
        got += (size_t)n;
    }
    r = tz_load_tzif(name, data, got, ret_tz, eb);
fail:
    if (fd >= 0)
        close(fd);
    free(data);
    return r;
}
