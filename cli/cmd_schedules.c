/* `maintq schedules list|show|pause|resume|run-now|check`: the schedules as the scheduler
 * loaded them (maintq.schedules, written by maintq-scheduler) with their state in Redis
 * (paused overrides, last handled tick). pause/resume set the override in
 * <prefix>:sched:paused, which the fire script reads at every tick, so they act on the very
 * next tick without a reload. run-now enqueues one job at once through the same fire script
 * as a tick (tick = now, to the millisecond), ignoring paused and the window: the operator
 * asked for it. Its definition comes from the database, so it runs what the scheduler runs,
 * not whatever files happen to be on this host. check validates files with no server. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "cli_conn.h"
#include "clock.h"
#include "cron.h"
#include "errbuf.h"
#include "parse.h"
#include "rq.h"
#include "rq_scripts.h"
#include "sched_fire.h"
#include "schedule.h"
#include "tz.h"

static const char usage[] =
    "usage: maintq schedules [list] [--all] [--json]\n"
    "       maintq schedules show NAME [--json]\n"
    "       maintq schedules pause NAME | resume NAME\n"
    "       maintq schedules run-now NAME\n"
    "       maintq schedules check FILE...\n"
    "\n"
    "  list     every schedule the scheduler loaded: cron, zone, next fire in the\n"
    "           schedule's zone and in UTC, last tick and what became of it, paused;\n"
    "           with --all also those removed from the schedule files since\n"
    "  show     one schedule: the same, its definition and its last 20 ticks\n"
    "  pause    stop firing NAME from its next tick (ticks are recorded as skipped)\n"
    "  resume   fire NAME again (overrides \"paused\": true in its file as well)\n"
    "  run-now  enqueue one job of NAME now, whether paused or outside its window;\n"
    "           prints the job id\n"
    "  check    validate schedule files without any server: prints `ok: N schedules`,\n"
    "           or the error naming file, schedule and field (exit 2)\n"
    "\n"
    "  --all                list: include removed schedules (a REMOVED column)\n"
    "  --json               one JSON object per schedule (list, show)\n"
    "  --redis-url URL      default $MAINTQ_REDIS_URL\n"
    "  --database-url URL   default $MAINTQ_DATABASE_URL\n"
    "  --prefix P           Redis key prefix (default {maintq})\n";

static const char cmd[] = "schedules";

struct sopts {
    const char *redis_url, *database_url, *prefix;
    int json;
    int all; /* list: include the schedules removed from the files */
};

/* ---- formatting ---------------------------------------------------------------------- */

/* RFC 3339 in the zone's local time with its offset: "2026-03-08T03:00:00-04:00". */
static char *format_local(int64_t us, const struct tz *zone, char buf[CLOCK_RFC3339_MAX])
{
    int32_t off = tz_offset_at(zone, us);
    int32_t a = off < 0 ? -off : off;
    size_t n;

    clock_format_rfc3339(us + (int64_t)off * USEC_PER_SEC, buf);
    n = strlen(buf);
    if (n > 0 && buf[n - 1] == 'Z')
        snprintf(buf + n - 1, CLOCK_RFC3339_MAX - (n - 1), "%c%02d:%02d", off < 0 ? '-' : '+',
                 a / 3600, a / 60 % 60);
    return buf;
}

/* The next fire after now of cron text in zone name; 0 or -1 when it cannot be computed. */
static int next_fire(const char *cron_text, const char *zone_name, int64_t *ret_us,
                     struct tz **ret_zone)
{
    struct cron *c = NULL;
    struct tz *z = NULL;
    int r = -1;

    if (tz_load(zone_name, &z, NULL) < 0 || cron_parse(cron_text, &c, NULL) < 0 ||
        cron_next(c, z, clock_now_us(), ret_us) < 0)
        goto out;
    *ret_zone = z;
    z = NULL;
    r = 0;
out:
    cron_free(c);
    tz_free(z);
    return r;
}

static const char *hget(redisContext *ctx, const char *prefix, const char *what,
                        const char *name, char *buf, size_t size)
{
    char key[RQ_KEY_MAX];
    redisReply *rep;
    const char *out = NULL;

    if (rq_key(key, sizeof(key), prefix, what, NULL) < 0)
        return NULL;
    rep = redisCommand(ctx, "HGET %s %s", key, name);
    if (rep && rep->type == REDIS_REPLY_STRING) {
        snprintf(buf, size, "%s", rep->str);
        out = buf;
    }
    if (rep)
        freeReplyObject(rep);
    return out;
}

/* ---- list / show --------------------------------------------------------------------- */

static const char sql_list[] =
    "SELECT s.name, s.cron, s.zone, s.paused,"
    " (extract(epoch FROM s.last_fire_at) * 1000000)::bigint, s.last_status, lf.job_id,"
    " j.status, s.definition,"
    " to_char(s.removed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    " FROM maintq.schedules s"
    " LEFT JOIN LATERAL (SELECT f.job_id FROM maintq.schedule_fires f WHERE f.schedule = s.name"
    "   AND f.job_id IS NOT NULL ORDER BY f.fire_at DESC LIMIT 1) lf ON true"
    " LEFT JOIN LATERAL (SELECT status FROM maintq.jobs WHERE job_id = lf.job_id) j ON true"
    " WHERE s.name = $1 OR ($1::text IS NULL AND ($2::boolean OR s.removed_at IS NULL))"
    " ORDER BY s.name";

/* Prints one row of sql_list; returns 0 or -1 (bad data). */
static int print_row(const struct sopts *o, redisContext *rc, PGresult *res, int i, bool full)
{
    const char *name = PQgetvalue(res, i, 0), *cron_text = PQgetvalue(res, i, 1);
    const char *zone_name = PQgetvalue(res, i, 2);
    bool paused = strcmp(PQgetvalue(res, i, 3), "t") == 0;
    char pbuf[8], nl[CLOCK_RFC3339_MAX] = "-", nu[CLOCK_RFC3339_MAX] = "-",
                  last[CLOCK_RFC3339_MAX] = "-", status[64] = "-";
    const char *removed = PQgetisnull(res, i, 9) ? NULL : PQgetvalue(res, i, 9);
    const char *ov = hget(rc, o->prefix, "sched:paused", name, pbuf, sizeof(pbuf));
    struct tz *zone = NULL;
    int64_t next_us, last_us;

    if (ov)
        paused = strcmp(ov, "1") == 0;
    if (next_fire(cron_text, zone_name, &next_us, &zone) == 0) {
        format_local(next_us, zone, nl);
        clock_format_rfc3339(next_us, nu);
    }
    if (!PQgetisnull(res, i, 4) && parse_int64(PQgetvalue(res, i, 4), INT64_MIN, INT64_MAX,
                                               &last_us) == 0)
        clock_format_rfc3339(last_us, last);
    if (!PQgetisnull(res, i, 5))
        snprintf(status, sizeof(status), "%s", PQgetvalue(res, i, 5));
    if (o->json) {
        char *text;
        json_t *obj = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:b}",
                                "name", name, "cron", cron_text, "zone", zone_name,
                                "next_fire_local", zone ? nl : NULL, "next_fire", zone ? nu : NULL,
                                "last_tick", strcmp(last, "-") ? last : NULL, "last_outcome",
                                PQgetisnull(res, i, 5) ? NULL : status, "last_job_id",
                                PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6),
                                "last_job_status",
                                PQgetisnull(res, i, 7) ? NULL : PQgetvalue(res, i, 7), "paused",
                                paused);

        if (obj && (full || o->all) &&
            json_object_set_new(obj, "removed_at", removed ? json_string(removed) : json_null()) <
                0) {
            json_decref(obj);
            obj = NULL;
        }
        if (obj && full) {
            json_t *def = json_loads(PQgetvalue(res, i, 8), 0, NULL);

            if (def)
                json_object_set_new(obj, "definition", def);
        }
        text = obj ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        if (text)
            puts(text);
        free(text);
        json_decref(obj);
    } else if (full) {
        json_t *def = json_loads(PQgetvalue(res, i, 8), 0, NULL);
        char *pretty = def ? json_dumps(def, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

        printf("name:        %s\ncron:        %s\nzone:        %s\n", name, cron_text, zone_name);
        printf("next fire:   %s (%s)\n", nl, nu);
        printf("last tick:   %s %s", last, status);
        if (!PQgetisnull(res, i, 6))
            printf(" (job %s: %s)", PQgetvalue(res, i, 6),
                   PQgetisnull(res, i, 7) ? "no result yet" : PQgetvalue(res, i, 7));
        printf("\npaused:      %s%s\n", paused ? "yes" : "no", ov ? " (set by maintq schedules)" : "");
        if (removed)
            printf("removed:     %s (no longer in the schedule files)\n", removed);
        printf("definition:\n%s\n", pretty ? pretty : PQgetvalue(res, i, 8));
        free(pretty);
        json_decref(def);
    } else {
        char st[96];

        if (!PQgetisnull(res, i, 7))
            snprintf(st, sizeof(st), "%s/%s", status, PQgetvalue(res, i, 7));
        else
            snprintf(st, sizeof(st), "%s", status);
        printf("%-24s %-18s %-20s %-25s %-20s %-20s %-18s ", name, cron_text, zone_name, nl, nu,
               last, st);
        if (o->all)
            printf("%-6s %s\n", paused ? "yes" : "no", removed ? removed : "-");
        else
            printf("%s\n", paused ? "yes" : "no");
    }
    tz_free(zone);
    return 0;
}

static int print_fires(PGconn *pg, const char *name)
{
    const char *params[1] = {name};
    PGresult *res = PQexecParams(
        pg,
        "SELECT (extract(epoch FROM fire_at) * 1000000)::bigint, outcome,"
        " coalesce(reason, ''), coalesce(job_id::text, '')"
        " FROM maintq.schedule_fires WHERE schedule = $1 ORDER BY fire_at DESC LIMIT 20",
        1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        cli_error(cmd, "postgres: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    printf("last ticks:\n");
    for (int i = 0; i < PQntuples(res); i++) {
        char when[CLOCK_RFC3339_MAX];
        int64_t us;

        if (parse_int64(PQgetvalue(res, i, 0), INT64_MIN, INT64_MAX, &us) < 0)
            continue;
        printf("  %s  %-13s %-36s %s\n", clock_format_rfc3339(us, when), PQgetvalue(res, i, 1),
               PQgetvalue(res, i, 3), PQgetvalue(res, i, 2));
    }
    PQclear(res);
    return 0;
}

static int do_list(const struct sopts *o, const char *name)
{
    redisContext *rc = NULL;
    PGconn *pg = NULL;
    PGresult *res = NULL;
    const char *params[2] = {name, o->all ? "true" : "false"};
    int status = CLI_EXIT_UNKNOWN;

    if (cli_pg_open(cmd, o->database_url, &pg) < 0 || cli_redis_open(cmd, o->redis_url, &rc) < 0)
        goto out;
    res = PQexecParams(pg, sql_list, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        cli_error(cmd, "postgres: %s", PQresultErrorMessage(res));
        goto out;
    }
    if (name && PQntuples(res) == 0) {
        cli_error(cmd, "no schedule \"%s\" (maintq-scheduler records what it loads)", name);
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (!name && !o->json)
        printf("%-24s %-18s %-20s %-25s %-20s %-20s %-18s %s\n", "NAME", "CRON", "ZONE",
               "NEXT (LOCAL)", "NEXT (UTC)", "LAST TICK", "STATUS",
               o->all ? "PAUSED REMOVED" : "PAUSED");
    for (int i = 0; i < PQntuples(res); i++)
        print_row(o, rc, res, i, name != NULL);
    if (name && !o->json && print_fires(pg, name) < 0)
        goto out;
    status = CLI_EXIT_OK;
out:
    PQclear(res);
    if (pg)
        PQfinish(pg);
    if (rc)
        redisFree(rc);
    return status;
}

/* ---- pause / resume ------------------------------------------------------------------ */

/* Fails (printing why) unless maintq.schedules has name. */
static int schedule_known(PGconn *pg, const char *name)
{
    const char *params[1] = {name};
    PGresult *res = PQexecParams(pg, "SELECT 1 FROM maintq.schedules WHERE name = $1", 1, NULL,
                                 params, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        cli_error(cmd, "postgres: %s", PQresultErrorMessage(res));
    else if (!ok)
        cli_error(cmd, "no schedule \"%s\" (maintq-scheduler records what it loads)", name);
    PQclear(res);
    return ok ? 0 : -1;
}

static int do_pause(const struct sopts *o, const char *name, bool pause)
{
    redisContext *rc = NULL;
    PGconn *pg = NULL;
    redisReply *rep = NULL;
    PGresult *res = NULL;
    char key[RQ_KEY_MAX];
    const char *params[2] = {name, pause ? "true" : "false"};
    int status = CLI_EXIT_UNKNOWN;

    if (cli_pg_open(cmd, o->database_url, &pg) < 0 || cli_redis_open(cmd, o->redis_url, &rc) < 0)
        goto out;
    if (schedule_known(pg, name) < 0) {
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (rq_key(key, sizeof(key), o->prefix, "sched:paused", NULL) < 0) {
        cli_error(cmd, "--prefix: too long");
        goto out;
    }
    rep = redisCommand(rc, "HSET %s %s %s", key, name, pause ? "1" : "0");
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        cli_error(cmd, "redis: %s", rep ? rep->str : rc->errstr);
        goto out;
    }
    /* The table follows for queries; Redis is what the scheduler obeys. */
    res = PQexecParams(pg, "UPDATE maintq.schedules SET paused = $2::boolean, updated_at = now()"
                           " WHERE name = $1",
                       2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        cli_error(cmd, "warning: postgres: %s", PQresultErrorMessage(res));
    printf("%s %s\n", name, pause ? "paused" : "resumed");
    status = CLI_EXIT_OK;
out:
    if (rep)
        freeReplyObject(rep);
    PQclear(res);
    if (pg)
        PQfinish(pg);
    if (rc)
        redisFree(rc);
    return status;
}

/* ---- run-now ------------------------------------------------------------------------- */

/* Loads name's recorded definition (maintq.schedules.definition) as a set of one. */
static int load_definition(PGconn *pg, const char *name, struct schedule_set **ret)
{
    const char *params[1] = {name};
    PGresult *res = PQexecParams(pg,
                                 "SELECT definition::text, to_char(removed_at AT TIME ZONE"
                                 " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                                 " FROM maintq.schedules"
                                 " WHERE name = $1",
                                 1, NULL, params, NULL, NULL, 0);
    struct errbuf eb = {{0}};
    int r = -1;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        cli_error(cmd, "postgres: %s", PQresultErrorMessage(res));
        goto out;
    }
    if (PQntuples(res) != 1) {
        cli_error(cmd, "no schedule \"%s\" (maintq-scheduler records what it loads)", name);
        goto out;
    }
    /* It is history now: the scheduler no longer runs it, so neither does run-now. */
    if (!PQgetisnull(res, 0, 1)) {
        cli_error(cmd, "schedule \"%s\" was removed from the schedule files at %s", name,
                  PQgetvalue(res, 0, 1));
        goto out;
    }
    if (schedule_set_load_text("maintq.schedules", PQgetvalue(res, 0, 0),
                               (size_t)PQgetlength(res, 0, 0), ret, &eb) < 0) {
        cli_error(cmd, "the recorded definition of \"%s\" does not load: %s", name, eb.msg);
        goto out;
    }
    r = 0;
out:
    PQclear(res);
    return r;
}

static int do_run_now(const struct sopts *o, const char *name)
{
    redisContext *rc = NULL;
    PGconn *pg = NULL;
    redisReply *rep = NULL;
    PGresult *res = NULL;
    struct schedule_set *set = NULL;
    struct resp_cmd a = {0};
    struct redis_script fire;
    struct errbuf eb = {{0}};
    char job_id[UUID_STR_LEN], when[CLOCK_RFC3339_MAX];
    int64_t now = clock_now_us(), tick = now / 1000 * 1000;
    int status = CLI_EXIT_UNKNOWN;

    if (cli_pg_open(cmd, o->database_url, &pg) < 0 || cli_redis_open(cmd, o->redis_url, &rc) < 0)
        goto out;
    if (load_definition(pg, name, &set) < 0 || set->n != 1) {
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (redis_script_init(&fire, rq_lua_fire) < 0 ||
        sched_fire_args(&a, o->prefix, set->items[0], tick, INT64_MAX, now, 0, 0, job_id, &eb) <
            0) {
        cli_error(cmd, "%s", eb.msg[0] ? eb.msg : "cannot build the job");
        goto out;
    }
    rep = cli_redis_script(rc, &fire, SCHED_FIRE_NUMKEYS, &a);
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        cli_error(cmd, "redis: %s", !rep ? rc->errstr : rep->type == REDIS_REPLY_ERROR ? rep->str
                                                                            : "unexpected reply");
        goto out;
    }
    if (rep->integer != SCHED_FIRE_FIRED) {
        cli_error(cmd, "tick %s was already fired", clock_format_rfc3339_us(tick, when));
        goto out;
    }
    {
        const char *params[3] = {name, clock_format_rfc3339_us(tick, when), job_id};

        res = PQexecParams(pg,
                           "INSERT INTO maintq.schedule_fires (schedule, fire_at, outcome,"
                           " reason, job_id) VALUES ($1, $2::timestamptz, 'fired',"
                           " 'run-now', $3::uuid) ON CONFLICT (schedule, fire_at) DO NOTHING",
                           3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            cli_error(cmd, "warning: the job is queued but not recorded: %s",
                      PQresultErrorMessage(res));
    }
    printf("%s\n", job_id);
    status = CLI_EXIT_OK;
out:
    resp_cmd_release(&a);
    schedule_set_free(set);
    if (rep)
        freeReplyObject(rep);
    PQclear(res);
    if (pg)
        PQfinish(pg);
    if (rc)
        redisFree(rc);
    return status;
}

/* ---- check --------------------------------------------------------------------------- */

static int do_check(int n, char **files)
{
    struct schedule_set *set = NULL;
    struct errbuf eb = {{0}};

    if (n < 1) {
        cli_error(cmd, "check: give one or more schedule files");
        return CLI_EXIT_USAGE;
    }
    if (schedule_set_load_files((const char *const *)files, (size_t)n, &set, &eb) < 0) {
        fprintf(stderr, "%s\n", eb.msg[0] ? eb.msg : "out of memory");
        return CLI_EXIT_USAGE;
    }
    printf("ok: %zu schedules\n", set->n);
    schedule_set_free(set);
    return CLI_EXIT_OK;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"all", no_argument, NULL, 'a'},
        {"redis-url", required_argument, NULL, 'r'},
        {"database-url", required_argument, NULL, 'd'},
        {"prefix", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    struct sopts o = {.prefix = RQ_DEFAULT_PREFIX};
    const char *verb;
    int opt, nargs;

    opterr = 0;
    /* glibc's getopt moves the verb and names behind the options, wherever they stand. */
    while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            o.json = 1;
            break;
        case 'a':
            o.all = 1;
            break;
        case 'r':
            o.redis_url = optarg;
            break;
        case 'd':
            o.database_url = optarg;
            break;
        case 'P':
            o.prefix = optarg;
            break;
        case ':':
            cli_error(cmd, "%s: missing value", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        default:
            cli_error(cmd, "unknown option '%s' (see maintq schedules --help)", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    verb = optind < argc ? argv[optind++] : "list";
    nargs = argc - optind;
    if (strcmp(verb, "check") == 0)
        return do_check(nargs, argv + optind);
    if (strcmp(verb, "list") == 0) {
        if (nargs != 0) {
            cli_error(cmd, "list: unexpected argument '%s'", argv[optind]);
            return CLI_EXIT_USAGE;
        }
        return do_list(&o, NULL);
    }
    if (strcmp(verb, "show") != 0 && strcmp(verb, "pause") != 0 &&
        strcmp(verb, "resume") != 0 && strcmp(verb, "run-now") != 0) {
        cli_error(cmd, "unknown subcommand '%s' (see maintq schedules --help)", verb);
        return CLI_EXIT_USAGE;
    }
    if (nargs != 1) {
        cli_error(cmd, "%s: expected one schedule name", verb);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(verb, "show") == 0)
        return do_list(&o, argv[optind]);
    if (strcmp(verb, "run-now") == 0)
        return do_run_now(&o, argv[optind]);
    return do_pause(&o, argv[optind], strcmp(verb, "pause") == 0);
}

const struct cli_command cli_cmd_schedules = {
    .name = "schedules",
    .summary = "list, show, pause, resume, run-now and check schedules",
    .usage = usage,
    .run = run,
};
