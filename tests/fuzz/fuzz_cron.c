/* libFuzzer target for the cron parser and next-fire search: any input either fails to
 * parse with a message, or parses into an expression whose next 20 fire times strictly
 * increase and are whole seconds, in UTC and in two zones with DST (one with a 30-minute
 * shift), starting from a point chosen by the input. Crashes, sanitizer reports and the
 * abort() below are the findings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "errbuf.h"
#include "tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tz *zones[3]; /* loaded once, kept for the process: NULL is UTC */

static void check(const struct cron *c, const struct tz *zone, int64_t from)
{
    int64_t at = from, next;

    for (int i = 0; i < 20; i++) {
        if (cron_next(c, zone, at, &next) < 0)
            return; /* no more fire times within the horizon */
        if (next <= at || next % 1000000 != 0)
            abort();
        at = next;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int loaded;
    struct errbuf eb = {{0}};
    struct cron *c = NULL;
    char expr[256];
    int64_t from = 1767225600LL * 1000000; /* 2026-01-01T00:00:00Z */

    if (!loaded) {
        tz_load("America/New_York", &zones[1], NULL);
        tz_load("Australia/Lord_Howe", &zones[2], NULL);
        loaded = 1;
    }
    if (size >= sizeof(expr))
        return 0;
    memcpy(expr, data, size);
    expr[size] = '\0';
    if (cron_parse(expr, &c, &eb) < 0) {
        if (eb.msg[0] == '\0')
            abort(); /* every rejection must say why */
        return 0;
    }
    /* The input's bytes pick a start up to a few thousand years on, DST days included. */
    for (size_t i = 0; i < size; i++)
        from += (int64_t)data[i] * 3600 * 1000000 * (int64_t)(i % 7 + 1) * 37;
    for (int z = 0; z < 3; z++)
        check(c, zones[z], from);
    cron_free(c);
    return 0;
}
