/* Wall and monotonic clocks, civil-date arithmetic and RFC 3339 text, without the C
 * library's time-zone state (so it is thread-safe and works past 2038). */
#include "clock.h"

#include <errno.h>
#include <string.h>
#include <time.h>

struct timeval clock_timeval_from_ms(int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

    return tv;
}

int64_t clock_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

int64_t clock_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* Howard Hinnant's days_from_civil / civil_from_days algorithms (public domain math). */
int64_t clock_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void clock_civil_from_days(int64_t days, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d)
{
    int64_t z = days + 719468, era, y;
    unsigned doe, yoe, doy, mp, d, m;

    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = (int64_t)yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    *ret_y = y + (m <= 2);
    *ret_m = m;
    *ret_d = d;
}

static void split(int64_t us, int64_t *days, int64_t *sod, int64_t *frac)
{
    int64_t secs = us / USEC_PER_SEC;

    *frac = us % USEC_PER_SEC;
    if (*frac < 0) {
        *frac += USEC_PER_SEC;
        secs--;
    }
    *days = secs / 86400;
    *sod = secs % 86400;
    if (*sod < 0) {
        *sod += 86400;
        (*days)--;
    }
}

/* Writes v (0 <= v < 10^n) as exactly n digits at p; returns the end. */
static char *put_digits(char *p, int64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

/* Formatted by hand, not with snprintf: result rows carry three timestamps each, and the
 * printf machinery was a visible share of a worker's CPU per job. */
static char *format(int64_t us, char *buf, int with_frac)
{
    int64_t days, sod, frac, y;
    unsigned m, d;
    char *p = buf;
    int width = 4, n = 0;

    split(us, &days, &sod, &frac);
    clock_civil_from_days(days, &y, &m, &d);
    /* As "%04lld" wrote it: at least four characters, a minus sign counting as one. */
    if (y < 0) {
        *p++ = '-';
        y = -y;
        width = 3;
    }
    for (int64_t t = y; t > 0; t /= 10)
        n++;
    p = put_digits(p, y, n > width ? n : width);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, sod / 3600, 2);
    *p++ = ':';
    p = put_digits(p, sod / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, sod % 60, 2);
    if (with_frac) {
        *p++ = '.';
        p = put_digits(p, frac, 6);
    }
    *p++ = 'Z';
    *p = '\0';
    return buf;
}

char *clock_format_rfc3339(int64_t us, char *buf)
{
    return format(us, buf, 0);
}

char *clock_format_rfc3339_us(int64_t us, char *buf)
{
    return format(us, buf, 1);
}

/* Reads exactly n digits at *p into *ret and advances. */
static int digits(const char **p, int n, int *ret)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];

        if (c < '0' || c > '9')
            return -EINVAL;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *ret = v;
    return 0;
}

static int expect(const char **p, char c)
{
    if (**p != c)
        return -EINVAL;
    (*p)++;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dim[m - 1];
}

int clock_parse_rfc3339(const char *s, int64_t *ret_us)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    int64_t frac = 0, us;

    if (!s)
        return -EINVAL;
    if (digits(&p, 4, &y) < 0 || expect(&p, '-') < 0 || digits(&p, 2, &mo) < 0 ||
        expect(&p, '-') < 0 || digits(&p, 2, &d) < 0)
        return -EINVAL;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -EINVAL;
    p++;
    if (digits(&p, 2, &h) < 0 || expect(&p, ':') < 0 || digits(&p, 2, &mi) < 0 ||
        expect(&p, ':') < 0 || digits(&p, 2, &sec) < 0)
        return -EINVAL;
    if (*p == '.') {
        int n = 0;

        p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        while (*p >= '0' && *p <= '9') {
            if (n < 6) {
                frac = frac * 10 + (*p - '0');
                n++;
            }
            p++;
        }
        for (; n < 6; n++)
            frac *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
        if (digits(&p, 2, &oh) < 0 || expect(&p, ':') < 0 || digits(&p, 2, &om) < 0)
            return -EINVAL;
        if (oh > 23 || om > 59)
            return -EINVAL;
    } else {
        return -EINVAL;
    }
    if (*p != '\0')
        return -EINVAL;
    /* Leap second 60 is accepted as the following second, as RFC 3339 allows it. */
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    us = (clock_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
          sign * (oh * 3600 + om * 60)) *
             USEC_PER_SEC +
         frac;
    *ret_us = us;
    return 0;
}
