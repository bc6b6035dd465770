/* `maintq cron next EXPR [--tz ZONE] [--from RFC3339] [--count N]`: prints the next fire
 * times of a cron expression, one RFC 3339 UTC line each, so anyone can check what a
 * schedule will do without a server. Operators and reviewers script against this output:
 * keep it stable. All times are computed before anything is printed, so an error leaves
 * stdout empty. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cli.h"
#include "cron.h"
#include "errbuf.h"
#include "parse.h"
#include "tz.h"

#define COUNT_DEFAULT 1
#define COUNT_MAX 10000

static int cron_next_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tz", required_argument, NULL, 'z'},
        {"from", required_argument, NULL, 'f'},
        {"count", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    struct errbuf eb = {{0}};
    struct cron *c = NULL;  /* freed here with cron_free() */
    struct tz *zone = NULL; /* freed here with tz_free() */
    int64_t *times = NULL;  /* freed here */
    const char *zone_name = "UTC", *expr;
    int64_t from = clock_now_us(), count = COUNT_DEFAULT, at;
    int opt, ret = CLI_EXIT_USAGE, r;

    opterr = 0; /* our own one-line errors instead of getopt's */
    /* GNU getopt permutes, so the flags may come before or after the expression. */
    while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (opt) {
        case 'z':
            zone_name = optarg;
            break;
        case 'f':
            if (clock_parse_rfc3339(optarg, &from) < 0) {
                cli_error("cron",
                          "--from: \"%.64s\" is not an RFC 3339 time "
                          "(e.g. 2026-03-08T02:30:00Z)",
                          optarg);
                goto out;
            }
            break;
        case 'n':
            if (parse_int64(optarg, 1, COUNT_MAX, &count) < 0) {
                cli_error("cron", "--count: \"%.32s\" is not a number in 1-%d", optarg, COUNT_MAX);
                goto out;
            }
            break;
        case ':':
            cli_error("cron", "%s: missing value", argv[optind - 1]);
            goto out;
        default:
            cli_error("cron", "unknown option \"%.32s\" (see maintq cron --help)",
                      argv[optind - 1]);
            goto out;
        }
    }
    if (optind >= argc) {
        cli_error("cron", "next: missing EXPR (see maintq cron --help)");
        goto out;
    }
    expr = argv[optind++];
    if (optind < argc) {
        cli_error("cron", "unexpected argument \"%.64s\" (quote the expression)", argv[optind]);
        goto out;
    }
    if (cron_parse(expr, &c, &eb) < 0) {
        cli_error("cron", "%s", eb.msg[0] ? eb.msg : "out of memory");
        goto out;
    }
    r = tz_load(zone_name, &zone, &eb);
    if (r < 0) {
        cli_error("cron", "--tz: %s", eb.msg[0] ? eb.msg : strerror(-r));
        goto out;
    }
    times = calloc((size_t)count, sizeof(*times));
    if (!times) {
        cli_error("cron", "out of memory");
        ret = CLI_EXIT_UNKNOWN;
        goto out;
    }
    at = from;
    for (int64_t i = 0; i < count; i++) {
        r = cron_next(c, zone, at, &times[i]);
        if (r < 0) {
            if (i == 0) {
                cli_error("cron", "expression: \"%.64s\" never fires (searched %d years)", expr,
                          CRON_HORIZON_YEARS);
                goto out;
            }
            count = i; /* fewer fire times than asked exist: print those */
            break;
        }
        at = times[i];
    }
    for (int64_t i = 0; i < count; i++) {
        char buf[CLOCK_RFC3339_MAX];

        printf("%s\n", clock_format_rfc3339(times[i], buf));
    }
    ret = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_UNKNOWN;
out:
    free(times);
    tz_free(zone);
    cron_free(c);
    return ret;
}

static int cron_run(int argc, char **argv)
{
    if (argc < 2) {
        cli_error("cron", "missing subcommand (see maintq cron --help)");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "next") == 0)
        return cron_next_run(argc - 1, argv + 1);
    cli_error("cron", "unknown subcommand \"%.32s\" (see maintq cron --help)", argv[1]);
    return CLI_EXIT_USAGE;
}

const struct cli_command cli_cmd_cron = {
    .name = "cron",
    .summary = "show the next fire times of a cron expression",
    .usage = "usage: maintq cron next EXPR [--tz ZONE] [--from RFC3339] [--count N]\n"
             "\n"
             "Prints the next N fire times (default 1, at most 10000) strictly after --from\n"
             "(default now), one per line, in RFC 3339 UTC with whole seconds.\n"
             "\n"
             "  EXPR          5 fields (minute hour day-of-month month day-of-week) or 6 with\n"
             "                seconds first; lists, ranges, steps, JAN-DEC, SUN-SAT, ?, L,\n"
             "                L-n, nW, LW, weekday nL and n#k, @yearly @annually @monthly\n"
             "                @weekly @daily @midnight @hourly; quote it\n"
             "  --tz ZONE     IANA time zone the expression is read in (default UTC)\n"
             "  --from TIME   start, e.g. 2026-03-08T02:30:00Z or 2026-03-08T02:30:00-05:00\n"
             "  --count N     how many fire times to print\n"
             "\n"
             "DST: an hour field of * or a step follows the real clock (wall times in a gap\n"
             "are skipped, repeated wall times fire twice); any other hour field fires a\n"
             "skipped wall time once at the end of the gap and a repeated one once, the first\n"
             "time. Invalid input: one line on stderr, exit 2.\n",
    .run = cron_run,
};
