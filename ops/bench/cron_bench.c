/* cron_bench: how many next-fire computations (cron_next) one core does per second, for a mix
 * of expressions — plain, steps, lists, the L / W / # day forms, a seconds field — each in
 * UTC and in three DST zones (America/New_York, Europe/London, Australia/Lord_Howe, whose
 * shift is 30 minutes). Each call starts from a different instant spread over four years, as
 * the daemon does after every fire, so DST transitions, month ends and leap days all come
 * round; calls are not chained, because a chain of a yearly expression would run off the
 * end of time. CPU time of this thread is measured (not wall time), so another process on
 * the machine slows the result only through shared caches. Prints one Markdown table row
 * per expression with its rate in each zone, then the whole mix.
 *
 * usage: cron_bench [CALLS-PER-CELL (default 200000)]
 * Under `valgrind --tool=callgrind` give a small count (e.g. 2000): instructions per call
 * are then total Ir / (cells * count), independent of the machine's load. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "clock.h"
#include "cron.h"
#include "errbuf.h"
#include "parse.h"
#include "tz.h"

#define DEFAULT_CALLS 200000
/* 2026-01-01T00:00:00Z: the spread of start instants begins here. */
#define BASE_S INT64_C(1767225600)
#define SPREAD_S (4 * INT64_C(365) * 86400 + 86400)

static const char *const exprs[] = {
    "30 2 * * *",           /* plain: 02:30, in New York's spring-forward gap */
    "*/5 * * * *",          /* step */
    "0 9-17/2 * * 1-5",     /* range with step, weekdays */
    "0 0,6,12,18 1,15 * *", /* lists */
    "0 3 L * ?",            /* last day of the month */
    "0 4 15W * ?",          /* nearest weekday to the 15th */
    "0 1 ? * 6#1",          /* first Saturday */
    "0 2 ? * 5L",           /* last Friday */
    "*/10 * * * * *",       /* seconds field, every 10 s */
    "15 30 1 * * *",        /* seconds field, daily at 01:30:15 (Lord Howe's overlap) */
    "0 0 29 2 *",           /* leap day only */
};
static const char *const zones[] = {"UTC", "America/New_York", "Europe/London",
                                    "Australia/Lord_Howe"};
#define N_EXPRS (sizeof(exprs) / sizeof(exprs[0]))
#define N_ZONES (sizeof(zones) / sizeof(zones[0]))

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Runs calls cron_next calls from spread-out instants; returns the CPU nanoseconds spent,
 * or -1 if any call fails (no expression above may lack a fire time). *sink keeps the
 * results live so the compiler cannot drop the calls. */
static int64_t run_cell(const struct cron *c, const struct tz *zone, int64_t calls, int64_t *sink)
{
    /* About 5.6 days and some seconds: consecutive starts land far apart and at varied times
     * of day, and the sequence repeats only after 328,725 starts (spread / gcd(stride,
     * spread)), more than the default count. */
    const int64_t stride_s = 7919 * 61 + 13;
    int64_t off = 0, t0 = thread_cpu_ns();

    for (int64_t i = 0; i < calls; i++) {
        int64_t next;

        off = (off + stride_s) % SPREAD_S;
        if (cron_next(c, zone, (BASE_S + off) * USEC_PER_SEC + 250000, &next) < 0)
            return -1;
        *sink ^= next;
    }
    return thread_cpu_ns() - t0;
}

int main(int argc, char **argv)
{
    struct tz *tzs[N_ZONES] = {NULL};
    struct errbuf eb = {{0}};
    int64_t calls = DEFAULT_CALLS, sink = 0, total_ns = 0, total_calls = 0;
    int64_t zone_ns[N_ZONES] = {0};
    int status = 1;

    if (argc > 2 || (argc == 2 && parse_int64(argv[1], 1, INT64_C(100000000), &calls) < 0)) {
        fprintf(stderr, "usage: cron_bench [CALLS-PER-CELL 1-100000000]\n");
        return 2;
    }
    for (size_t z = 0; z < N_ZONES; z++)
        if (tz_load(zones[z], &tzs[z], &eb) < 0) {
            fprintf(stderr, "cron_bench: zone %s: %s\n", zones[z], eb.msg);
            goto out;
        }

    printf("| expression | UTC | America/New_York | Europe/London | Australia/Lord_Howe |\n");
    printf("|---|---|---|---|---|\n");
    for (size_t e = 0; e < N_EXPRS; e++) {
        struct cron *c = NULL;

        if (cron_parse(exprs[e], &c, &eb) < 0) {
            fprintf(stderr, "cron_bench: %s: %s\n", exprs[e], eb.msg);
            goto out;
        }
        printf("| `%s` |", exprs[e]);
        for (size_t z = 0; z < N_ZONES; z++) {
            int64_t ns = run_cell(c, tzs[z], calls, &sink);

            if (ns < 0) {
                fprintf(stderr, "cron_bench: %s in %s: cron_next failed\n", exprs[e], zones[z]);
                cron_free(c);
                goto out;
            }
            zone_ns[z] += ns;
            total_ns += ns;
            total_calls += calls;
            printf(" %.2f M/s |", (double)calls * 1e3 / (double)(ns ? ns : 1));
        }
        printf("\n");
        cron_free(c);
    }
    printf("| **mix of all the above** |");
    for (size_t z = 0; z < N_ZONES; z++)
        printf(" **%.2f M/s** |",
               (double)calls * N_EXPRS * 1e3 / (double)(zone_ns[z] ? zone_ns[z] : 1));
    printf("\n| **whole mix, all zones** (%lld calls, %.2f s CPU) | **%.2f M/s** | | | |\n",
           (long long)total_calls, (double)total_ns / 1e9,
           (double)total_calls * 1e3 / (double)(total_ns ? total_ns : 1));
    /* Printing the sink to stderr keeps it observable without cluttering the table. */
    fprintf(stderr, "(checksum %llx)\n", (unsigned long long)sink);
    status = 0;
out:
    for (size_t z = 0; z < N_ZONES; z++)
        tz_free(tzs[z]);
    return status;
}
