/* `maintq status ID`: where one job is now. A job with a final row in Postgres (ok,
 * warning, critical, skipped, missed_window) is shown from there and exits with its
 * monitoring code. Otherwise the job is looked for in Redis: an entry of a queue stream
 * (queued, or running when the consumer group holds it pending), a member of the delayed
 * set (delayed, or retrying when its previous attempt failed), an entry of the dead
 * letter. A job recorded as dead is looked for in Redis too, because `dlq retry` may have
 * queued it again.
 *
 * Redis has no index by job id: finding one means reading whole streams (XRANGE in chunks
 * of 1000, matching the descriptor's "id") and the delayed set (ZSCAN MATCH). Streams hold
 * only waiting and pending entries (acked ones are deleted), so this is a few round trips
 * on a healthy queue and a few seconds on a backlog of millions: fine for a command a
 * person runs, never for a hot path. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cli_conn.h"
#include "clock.h"
#include "job_view.h"
#include "parse.h"
#include "queue_read.h"
#include "rq.h"

static const char usage[] =
    "usage: maintq status ID [options]\n"
    "\n"
    "Shows where job ID is: queued in QUEUE (position ~N), running on CONSUMER since T,\n"
    "delayed until T, retrying (the failed attempt's error and the next attempt's time),\n"
    "dead (in the dead letter), or its final result from PostgreSQL.\n"
    "\n"
    "exit status: the result's monitoring code when the job has finished (0 ok,\n"
    "1 warning, 2 critical, 3 anything else, dead included); 0 while it is queued,\n"
    "running or delayed; 3 for an unknown id or a connection error; 2 for bad usage.\n"
    "\n"
    "  --json               print one JSON object; its \"status\" is the final status\n"
    "                       or queued, running, delayed, retrying, dead\n"
    "  --redis-url URL      default $MAINTQ_REDIS_URL\n"
    "  --database-url URL   default $MAINTQ_DATABASE_URL\n"
    "  --prefix P           Redis key prefix (default {maintq})\n";

/* The latest recorded attempt, for deciding what to show. */
struct latest_run {
    int found;
    int64_t attempt;
    char status[32];
    char *error; /* owned, "" when none */
};

/* A job found in a queue stream. */
struct stream_hit {
    const char *id;             /* borrowed: the job id looked for */
    const char *last_delivered; /* borrowed: the group's last delivered id, NULL = none */
    int64_t ahead;              /* undelivered entries before the hit */
    int found;
    char entry_id[64];
    int64_t attempt, max_attempts;
    char *note; /* owned, NULL when the entry has none */
};

/* A job found in the dead letter. */
struct dead_hit {
    const char *id; /* borrowed */
    int found;
    char entry_id[64];
    char queue[256];
    int64_t attempts, at_ms;
    char *error; /* owned */
};

static int retry_follows(const char *status)
{
    return strcmp(status, "failed") == 0 || strcmp(status, "timeout") == 0 ||
           strcmp(status, "cancelled") == 0;
}

static int load_latest(PGconn *conn, const char *id, struct latest_run *ret)
{
    static const char sql[] = "SELECT attempt, status, coalesce(error, '')"
                              " FROM maintq.job_runs WHERE job_id = $1::uuid"
                              " ORDER BY attempt DESC LIMIT 1";
    const char *params[1] = {id};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    struct latest_run l = {0};

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorMessage(res);

        cli_error("status", "postgres: %.*s", (int)strcspn(msg, "\n"), msg);
        PQclear(res);
        return -EIO;
    }
    if (PQntuples(res) == 1) {
        l.found = 1;
        parse_int64(PQgetvalue(res, 0, 0), 0, INT32_MAX, &l.attempt);
        snprintf(l.status, sizeof(l.status), "%s", PQgetvalue(res, 0, 1));
        l.error = strdup(PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    if (l.found && !l.error)
        return -ENOMEM;
    *ret = l;
    return 0;
}

static int on_stream_entry(const redisReply *e, void *data)
{
    struct stream_hit *h = data;
    struct rq_entry en;

    if (rq_entry_from_reply(e, &en) < 0)
        return 0;
    if (!qr_descriptor_has_id(en.descriptor, en.descriptor_len, h->id)) {
        if (!h->last_delivered || qr_stream_id_cmp(en.id, h->last_delivered) > 0)
            h->ahead++;
        return 0;
    }
    h->found = 1;
    snprintf(h->entry_id, sizeof(h->entry_id), "%s", en.id);
    h->attempt = en.attempt;
    h->max_attempts = en.max_attempts;
    if (en.note && !(h->note = strdup(en.note)))
        return -ENOMEM;
    return 1;
}

static int on_dead_entry(const redisReply *e, void *data)
{
    struct dead_hit *h = data;
    const redisReply *d;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    d = qr_field(e->element[1], "d");
    if (!d || d->type != REDIS_REPLY_STRING || !qr_descriptor_has_id(d->str, d->len, h->id))
        return 0;
    h->found = 1;
    snprintf(h->entry_id, sizeof(h->entry_id), "%s", e->element[0]->str);
    snprintf(h->queue, sizeof(h->queue), "%s",
             qr_field_str(e->element[1], "queue") ? qr_field_str(e->element[1], "queue") : "");
    h->attempts = qr_field_int(e->element[1], "n", 0);
    h->at_ms = qr_field_int(e->element[1], "at", 0);
    h->error =
        strdup(qr_field_str(e->element[1], "error") ? qr_field_str(e->element[1], "error") : "");
    return h->error ? 1 : -ENOMEM;
}

/* The group's last delivered id, copied into buf; buf[0] = 0 when there is no group. */
static int last_delivered(redisContext *ctx, const char *key, char *buf, size_t size)
{
    redisReply *rep = redisCommand(ctx, "XINFO GROUPS %s", key);
    int r = 0;

    buf[0] = '\0';
    if (qr_check("status", ctx, rep, REDIS_REPLY_ARRAY, "XINFO GROUPS") < 0) {
        r = -EIO;
    } else {
        for (size_t i = 0; i < rep->elements; i++) {
            const char *name = qr_field_str(rep->element[i], "name");
            const char *last = qr_field_str(rep->element[i], "last-delivered-id");

            if (name && last && strcmp(name, RQ_GROUP) == 0)
                snprintf(buf, size, "%s", last);
        }
    }
    freeReplyObject(rep);
    return r;
}

/* Prints the job when it is in a queue stream. Returns 1 when found, 0 if not, <0. */
static int find_in_streams(redisContext *ctx, const char *prefix, const char *id, int json)
{
    struct qr_names queues = {0};
    struct stream_hit h = {.id = id};
    char last[64], when[CLOCK_RFC3339_MAX];
    const char *key = NULL;
    size_t plen = strlen(prefix) + 3; /* "<prefix>:q:" */
    int r;

    r = qr_list_queues(ctx, "status", prefix, &queues);
    if (r < 0)
        return r;
    for (size_t i = 0; i < queues.n && !h.found; i++) {
        r = last_delivered(ctx, queues.v[i], last, sizeof(last));
        if (r < 0)
            goto out;
        h.last_delivered = last[0] ? last : NULL;
        h.ahead = 0;
        r = qr_stream_walk(ctx, "status", queues.v[i], "+", on_stream_entry, &h);
        if (r < 0)
            goto out;
        if (h.found)
            key = queues.v[i];
    }
    r = 0;
    if (!h.found)
        goto out;
    {
        const char *queue = key + plen;
        redisReply *p =
            redisCommand(ctx, "XPENDING %s %s %s %s 1", key, RQ_GROUP, h.entry_id, h.entry_id);
        int64_t now_ms;
        json_t *o = NULL;

        /* No group yet (no worker ever read this queue) is an error reply: queued. */
        if (p && p->type == REDIS_REPLY_ARRAY && p->elements == 1 &&
            p->element[0]->type == REDIS_REPLY_ARRAY && p->element[0]->elements >= 3 &&
            p->element[0]->element[1]->type == REDIS_REPLY_STRING &&
            p->element[0]->element[2]->type == REDIS_REPLY_INTEGER) {
            const char *consumer = p->element[0]->element[1]->str;
            int64_t idle = (int64_t)p->element[0]->element[2]->integer;

            r = qr_server_time_ms(ctx, "status", &now_ms);
            if (r < 0) {
                freeReplyObject(p);
                goto out;
            }
            qr_format_ms(now_ms - idle, when);
            if (json)
                o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "job_id", id, "status", "running",
                              "queue", queue, "consumer", consumer, "since", when, "attempt",
                              (json_int_t)h.attempt, "max_attempts", (json_int_t)h.max_attempts);
            else
                printf("%s: running on %s since %s (queue %s, attempt %lld of %lld)\n", id,
                       consumer, when, queue, (long long)h.attempt, (long long)h.max_attempts);
        } else if (!p) {
            r = qr_check("status", ctx, p, -1, "XPENDING");
            goto out;
        } else {
            if (json)
                o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I}", "job_id", id, "status", "queued",
                              "queue", queue, "position", (json_int_t)(h.ahead + 1), "attempt",
                              (json_int_t)h.attempt, "max_attempts", (json_int_t)h.max_attempts);
            else
                printf("%s: queued in %s (position ~%lld, attempt %lld of %lld)\n", id, queue,
                       (long long)(h.ahead + 1), (long long)h.attempt, (long long)h.max_attempts);
        }
        freeReplyObject(p);
        if (json) {
            if (!o) {
                r = -ENOMEM;
                goto out;
            }
            json_object_set_new(o, "entry_id", json_string(h.entry_id));
            if (h.note)
                json_object_set_new(o, "note", json_string(h.note));
            json_dumpf(o, stdout, JSON_COMPACT);
            putchar('\n');
            json_decref(o);
        } else if (h.note) {
            printf("  note: %s\n", h.note);
        }
        r = 1;
    }
out:
    free(h.note);
    qr_names_release(&queues);
    return r;
}

/* Prints the job when it is in the delayed set. Returns 1 when found, 0 if not, <0. */
static int find_delayed(redisContext *ctx, const char *prefix, const char *id,
                        const struct latest_run *latest, int json)
{
    char key[RQ_KEY_MAX], pattern[96], cursor[32] = "0";
    int r = 0;

    if (rq_key(key, sizeof(key), prefix, "delayed", NULL) < 0)
        return -ENAMETOOLONG;
    /* id is a checked UUID: no glob characters to escape. */
    snprintf(pattern, sizeof(pattern), "*\"id\":\"%s\"*", id);
    do {
        redisReply *rep =
            redisCommand(ctx, "ZSCAN %s %s MATCH %s COUNT 1000", key, cursor, pattern);
        const redisReply *items;

        if (qr_check("status", ctx, rep, REDIS_REPLY_ARRAY, "ZSCAN") < 0 || rep->elements != 2 ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            return -EIO;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        items = rep->element[1];
        for (size_t i = 0; i + 1 < items->elements && r == 0; i += 2) {
            const redisReply *m = items->element[i], *score = items->element[i + 1];
            char queue[256], when[CLOCK_RFC3339_MAX];
            const char *nl1, *nl2, *nl3;
            int64_t attempt = 0, max = 0, due_ms = 0;

            if (m->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING)
                continue;
            /* member: queue \n attempt \n max \n descriptor */
            nl1 = memchr(m->str, '\n', m->len);
            nl2 = nl1 ? memchr(nl1 + 1, '\n', m->len - (size_t)(nl1 + 1 - m->str)) : NULL;
            nl3 = nl2 ? memchr(nl2 + 1, '\n', m->len - (size_t)(nl2 + 1 - m->str)) : NULL;
            if (!nl3 || !qr_descriptor_has_id(nl3 + 1, m->len - (size_t)(nl3 + 1 - m->str), id))
                continue;
            snprintf(queue, sizeof(queue), "%.*s", (int)(nl1 - m->str), m->str);
            {
                char num[32];

                snprintf(num, sizeof(num), "%.*s", (int)(nl2 - nl1 - 1), nl1 + 1);
                parse_int64(num, 0, INT32_MAX, &attempt);
                snprintf(num, sizeof(num), "%.*s", (int)(nl3 - nl2 - 1), nl2 + 1);
                parse_int64(num, 0, INT32_MAX, &max);
            }
            /* Scores are ms; ZSCAN returns them as text, possibly "1.7e+12" style. */
            due_ms = (int64_t)strtod(score->str, NULL);
            qr_format_ms(due_ms, when);
            if (latest->found && latest->attempt == attempt - 1 && retry_follows(latest->status)) {
                if (json) {
                    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:I}", "job_id", id,
                                          "status", "retrying", "queue", queue, "failed_attempt",
                                          (json_int_t)latest->attempt, "error", latest->error,
                                          "next_attempt_at", when, "attempt", (json_int_t)attempt,
                                          "max_attempts", (json_int_t)max);

                    json_dumpf(o, stdout, JSON_COMPACT);
                    putchar('\n');
                    json_decref(o);
                } else {
                    printf("%s: retrying: attempt %lld %s: %s, next attempt delayed until %s "
                           "(attempt %lld of %lld, queue %s)\n",
                           id, (long long)latest->attempt,
                           strcmp(latest->status, "failed") == 0    ? "failed"
                           : strcmp(latest->status, "timeout") == 0 ? "timed out"
                                                                    : "was cancelled",
                           latest->error[0] ? latest->error : "(no error text)", when,
                           (long long)attempt, (long long)max, queue);
                }
            } else if (json) {
                json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "job_id", id, "status",
                                      "delayed", "queue", queue, "until", when, "attempt",
                                      (json_int_t)attempt, "max_attempts", (json_int_t)max);

                json_dumpf(o, stdout, JSON_COMPACT);
                putchar('\n');
                json_decref(o);
            } else {
                printf("%s: delayed until %s (attempt %lld of %lld, queue %s)\n", id, when,
                       (long long)attempt, (long long)max, queue);
            }
            r = 1;
        }
        freeReplyObject(rep);
    } while (r == 0 && strcmp(cursor, "0") != 0);
    return r;
}

/* Prints the job when it is in the dead letter. Returns 1 when found, 0 if not, <0. */
static int find_dead(redisContext *ctx, const char *prefix, const char *id, int json)
{
    struct dead_hit h = {.id = id};
    char key[RQ_KEY_MAX], when[CLOCK_RFC3339_MAX];
    int r;

    if (rq_key(key, sizeof(key), prefix, "dead", NULL) < 0)
        return -ENAMETOOLONG;
    r = qr_stream_walk(ctx, "status", key, "+", on_dead_entry, &h);
    if (r < 0 || !h.found)
        goto out;
    qr_format_ms(h.at_ms, when);
    if (json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s}", "job_id", id, "status", "dead",
                              "queue", h.queue, "error", h.error, "attempts",
                              (json_int_t)h.attempts, "dead_at", when, "entry_id", h.entry_id);

        json_dumpf(o, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(o);
    } else {
        char after[64];

        /* The worker's error often says "failed after N attempts" already. */
        snprintf(after, sizeof(after), "after %lld attempt%s", (long long)h.attempts,
                 h.attempts == 1 ? "" : "s");
        printf("%s: dead: %s%s%s (queue %s, since %s)\n", id, h.error,
               strstr(h.error, after) ? "" : " ", strstr(h.error, after) ? "" : after, h.queue,
               when);
        printf("  dead letter entry %s: `maintq dlq retry %s` runs it again\n", h.entry_id,
               h.entry_id);
    }
    r = 1;
out:
    free(h.error);
    return r;
}

static int run_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"redis-url", required_argument, NULL, 'r'},
        {"database-url", required_argument, NULL, 'd'},
        {"prefix", required_argument, NULL, 'P'},
        {0},
    };
    const char *redis_url = NULL, *db_url = NULL, *prefix = RQ_DEFAULT_PREFIX;
    struct latest_run latest = {0};
    redisContext *ctx = NULL; /* freed here with redisFree() */
    PGconn *conn = NULL;      /* freed here with PQfinish() */
    char id[40], status[32];
    int opt, json = 0, rc = CLI_EXIT_UNKNOWN, r;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'r':
            redis_url = optarg;
            break;
        case 'd':
            db_url = optarg;
            break;
        case 'P':
            prefix = optarg;
            break;
        case ':':
            cli_error("status", "%s: missing value", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        default:
            cli_error("status", "unknown option '%s' (see maintq status --help)", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        cli_error("status", "expected one job id (see maintq status --help)");
        return CLI_EXIT_USAGE;
    }
    if (!qr_uuid_valid(argv[optind])) {
        cli_error("status", "\"%.64s\": not a job id (expected a UUID)", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    /* Descriptors carry ids in lower case. */
    for (size_t i = 0; i < sizeof(id) - 1 && argv[optind][i]; i++)
        id[i] = (char)(argv[optind][i] | (argv[optind][i] >= 'A' ? 0x20 : 0));
    id[36] = '\0';

    if (cli_pg_open("status", db_url, &conn) < 0)
        goto out;
    PQclear(PQexec(conn, "SET TIME ZONE 'UTC'"));
    if (load_latest(conn, id, &latest) < 0)
        goto out;
    /* A final result other than dead is the end of the story; no need to read Redis. */
    if (latest.found && !retry_follows(latest.status) && strcmp(latest.status, "dead") != 0) {
        r = job_view_print_latest(conn, "status", id, json, false, status, sizeof(status));
        rc = r < 0 ? CLI_EXIT_UNKNOWN : job_view_exit_code(status);
        goto out;
    }
    if (cli_redis_open("status", redis_url, &ctx) < 0)
        goto out;
    r = find_in_streams(ctx, prefix, id, json);
    if (r == 0)
        r = find_delayed(ctx, prefix, id, &latest, json);
    if (r > 0) {
        rc = CLI_EXIT_OK;
        goto out;
    }
    if (r == 0)
        r = find_dead(ctx, prefix, id, json);
    if (r > 0) {
        rc = job_view_exit_code("dead");
        goto out;
    }
    if (r < 0)
        goto out;
    if (latest.found) {
        /* Recorded, but nowhere in Redis: dead with its dead-letter entry purged, or a
         * retry that Redis lost. The row is all there is to show. */
        r = job_view_print_latest(conn, "status", id, json, false, status, sizeof(status));
        rc = r < 0 ? CLI_EXIT_UNKNOWN : job_view_exit_code(status);
        goto out;
    }
    if (json)
        printf("{\"job_id\":\"%s\",\"status\":\"unknown\"}\n", id);
    else
        printf("%s: unknown job id\n", id);
out:
    free(latest.error);
    if (ctx)
        redisFree(ctx);
    PQfinish(conn);
    return rc;
}

const struct cli_command cli_cmd_status = {
    .name = "status",
    .summary = "where a job is: queued, running, delayed, retrying, dead or its result",
    .usage = usage,
    .run = run_status,
};
