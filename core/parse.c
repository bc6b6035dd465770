/* Strict integer and duration parsers shared by the CLI, config and descriptors. */
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
    char *end;
    long long v;

    if (!s || !*s || isspace((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *ret = (int64_t)v;
    return 0;
}

int parse_duration_us(const char *s, int64_t *ret_us)
{
    static const struct {
        const char *suffix;
        int64_t us;
    } units[] = {
        {"ms", 1000LL}, {"s", 1000000LL}, {"m", 60000000LL}, {"h", 3600000000LL},
        {"d", 86400000000LL},
    };
    char digits[32];
    size_t n = 0;
    int64_t v, mult = 1000000LL;
    int r;

    if (!s)
        return -EINVAL;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    if (n == 0 || n >= sizeof(digits))
        return n == 0 ? -EINVAL : -ERANGE;
    memcpy(digits, s, n);
    digits[n] = '\0';
    if (s[n] != '\0') {
        size_t i;

        mult = 0;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strcmp(s + n, units[i].suffix) == 0)
                mult = units[i].us;
        if (mult == 0)
            return -EINVAL;
    }
    r = parse_int64(digits, 0, INT64_MAX, &v);
    if (r < 0)
        return r;
    if (v > INT64_MAX / mult)
        return -ERANGE;
    *ret_us = v * mult;
    return 0;
}
