/* `maintq results`: recorded attempts from maintq.job_runs, newest first, filtered by
 * type, queue, schedule, status and age. One row per attempt, so a retried job shows each
 * try. The WHERE clause is built from $n placeholders only: user text never becomes SQL.
 * Table output is for people (errors cut to one short line); --json prints JSON lines
 * (one object per attempt, newline-terminated) because scripts can stream and grep them
 * and an empty answer is simply no output. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_conn.h"
#include "clock.h"
#include "parse.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 10000
#define ERROR_WIDTH 60 /* bytes of the error shown in the table */

static const char usage[] =
    "usage: maintq results [options]\n"
    "\n"
    "Lists recorded attempts, newest first: finish time, job id, type, queue, status,\n"
    "attempt, duration in ms and error (shortened in the table).\n"
    "\n"
    "  --type T             only jobs of type T\n"
    "  --queue Q            only jobs of queue Q\n"
    "  --schedule S         only jobs fired by schedule S\n"
    "  --status S           only attempts that ended with S: ok warning critical failed\n"
    "                       timeout cancelled dead skipped missed_window\n"
    "  --since WHEN         finished since a duration ago (30m, 24h, 7d) or an RFC 3339\n"
    "                       time (default 24h)\n"
    "  --limit N            at most N rows (default 50, at most 10000)\n"
    "  --json               JSON lines: one object per attempt with every column\n"
    "                       (job_id, attempt, type, queue, schedule, scheduled_for, status,\n"
    "                       started_at, finished_at, duration_ms, worker, error, result,\n"
    "                       lock_fence); nothing at all when no attempt matches\n"
    "  --database-url URL   default $MAINTQ_DATABASE_URL\n";

static const char *const statuses[] = {
    "ok",        "warning", "critical", "failed",        "timeout",
    "cancelled", "dead",    "skipped",  "missed_window", NULL,
};

/* Filter columns, in the order their placeholders are numbered after $1 (since). */
enum { F_TYPE, F_QUEUE, F_SCHEDULE, F_STATUS, F_COUNT };
static const char *const filter_cols[F_COUNT] = {"type", "queue", "schedule", "status"};

static int valid_status(const char *s)
{
    for (size_t i = 0; statuses[i]; i++)
        if (strcmp(statuses[i], s) == 0)
            return 1;
    return 0;
}

/* Writes at most width bytes of the error's first line into buf, cut on a UTF-8 character
 * boundary, with "..." when something was left out. */
static void short_error(const char *err, char *buf, size_t size)
{
    size_t len = strcspn(err, "\r\n"), keep = len;

    if (keep > ERROR_WIDTH) {
        keep = ERROR_WIDTH - 3;
        while (keep > 0 && ((unsigned char)err[keep] & 0xC0) == 0x80)
            keep--;
    }
    snprintf(buf, size, "%.*s%s", (int)keep, err, keep < len ? "..." : "");
}

static int column_width(PGresult *res, int col, int min)
{
    int w = min;

    for (int i = 0; i < PQntuples(res); i++) {
        int l = PQgetlength(res, i, col);

        if (l > w)
            w = l;
    }
    return w;
}

static int run_results(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},
        {"queue", required_argument, NULL, 'q'},
        {"schedule", required_argument, NULL, 'S'},
        {"status", required_argument, NULL, 's'},
        {"since", required_argument, NULL, 'i'},
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"database-url", required_argument, NULL, 'd'},
        {0},
    };
    const char *filters[F_COUNT] = {0};
    const char *params[F_COUNT + 2];
    const char *db_url = NULL, *since_arg = "24h";
    char sql[2048], since[CLOCK_RFC3339_MAX], limit_text[32];
    int64_t limit = LIMIT_DEFAULT, since_us, dur;
    PGconn *conn = NULL;  /* freed here with PQfinish() */
    PGresult *res = NULL; /* freed here with PQclear() */
    size_t len;
    int opt, json = 0, np, rc = CLI_EXIT_UNKNOWN;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (opt) {
        case 't':
            filters[F_TYPE] = optarg;
            break;
        case 'q':
            filters[F_QUEUE] = optarg;
            break;
        case 'S':
            filters[F_SCHEDULE] = optarg;
            break;
        case 's':
            if (!valid_status(optarg)) {
                cli_error("results",
                          "--status: \"%.32s\" is not one of ok, warning, critical, "
                          "failed, timeout, cancelled, dead, skipped, missed_window",
                          optarg);
                return CLI_EXIT_USAGE;
            }
            filters[F_STATUS] = optarg;
            break;
        case 'i':
            since_arg = optarg;
            break;
        case 'n':
            if (parse_int64(optarg, 1, LIMIT_MAX, &limit) < 0) {
                cli_error("results", "--limit: \"%.32s\" is not a number in 1-%d", optarg,
                          LIMIT_MAX);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'j':
            json = 1;
            break;
        case 'd':
            db_url = optarg;
            break;
        case ':':
            cli_error("results", "%s: missing value", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        default:
            cli_error("results", "unknown option '%s' (see maintq results --help)",
                      argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("results", "unexpected argument '%.64s' (see maintq results --help)",
                  argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (parse_duration_us(since_arg, &dur) == 0) {
        since_us = clock_now_us() - dur;
    } else if (clock_parse_rfc3339(since_arg, &since_us) < 0) {
        cli_error("results",
                  "--since: \"%.64s\" is neither a duration (24h, 7d) nor an "
                  "RFC 3339 time",
                  since_arg);
        return CLI_EXIT_USAGE;
    }
    clock_format_rfc3339_us(since_us, since);
    snprintf(limit_text, sizeof(limit_text), "%lld", (long long)limit);

    /* $1 since, then one placeholder per filter given, then the limit. */
    params[0] = since;
    np = 1;
    len = (size_t)snprintf(
        sql, sizeof(sql),
        "SELECT to_char(finished_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), job_id, type, queue,"
        " status, attempt,"
        " coalesce((extract(epoch FROM finished_at - started_at) * 1000)::bigint::text, ''),"
        " coalesce(error, ''),"
        " json_build_object('job_id', job_id, 'attempt', attempt, 'type', type,"
        "  'queue', queue, 'schedule', schedule, 'scheduled_for', scheduled_for,"
        "  'status', status, 'started_at', started_at, 'finished_at', finished_at,"
        "  'duration_ms', (extract(epoch FROM finished_at - started_at) * 1000)::bigint,"
        "  'worker', worker, 'error', error, 'result', result, 'lock_fence', lock_fence)::text"
        " FROM maintq.job_runs WHERE finished_at >= $1::timestamptz");
    for (int f = 0; f < F_COUNT; f++) {
        if (!filters[f])
            continue;
        params[np++] = filters[f];
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND %s = $%d", filter_cols[f], np);
    }
    params[np++] = limit_text;
    snprintf(sql + len, sizeof(sql) - len,
             " ORDER BY finished_at DESC, job_id DESC, attempt DESC LIMIT $%d::int", np);

    if (cli_pg_open("results", db_url, &conn) < 0)
        goto out;
    /* Timestamps in the JSON and the table are UTC whatever the server's TimeZone. */
    PQclear(PQexec(conn, "SET TIME ZONE 'UTC'"));
    res = PQexecParams(conn, sql, np, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorMessage(res);

        cli_error("results", "postgres: %.*s", (int)strcspn(msg, "\n"), msg);
        goto out;
    }
    if (json) {
        for (int i = 0; i < PQntuples(res); i++)
            printf("%s\n", PQgetvalue(res, i, 8));
    } else if (PQntuples(res) == 0) {
        printf("no attempts finished since %s match\n", since);
    } else {
        int wt = column_width(res, 2, 4), wq = column_width(res, 3, 5);
        int ws = column_width(res, 4, 6);

        printf("%-20s  %-36s  %-*s  %-*s  %-*s  %7s  %8s  %s\n", "FINISHED", "JOB", wt, "TYPE", wq,
               "QUEUE", ws, "STATUS", "ATTEMPT", "MS", "ERROR");
        for (int i = 0; i < PQntuples(res); i++) {
            char err[ERROR_WIDTH + 8];

            short_error(PQgetvalue(res, i, 7), err, sizeof(err));
            printf("%-20s  %-36s  %-*s  %-*s  %-*s  %7s  %8s  %s\n", PQgetvalue(res, i, 0),
                   PQgetvalue(res, i, 1), wt, PQgetvalue(res, i, 2), wq, PQgetvalue(res, i, 3), ws,
                   PQgetvalue(res, i, 4), PQgetvalue(res, i, 5), PQgetvalue(res, i, 6), err);
        }
    }
    rc = CLI_EXIT_OK;
out:
    PQclear(res);
    PQfinish(conn);
    return rc;
}

const struct cli_command cli_cmd_results = {
    .name = "results",
    .summary = "recorded attempts, newest first, filtered by type, queue, status, age",
    .usage = usage,
    .run = run_results,
};
