/* `maintq workers`: the consumers of every queue stream as Redis sees them. Per queue:
 * the stream's length (waiting + pending, acked entries are deleted), the consumer group's
 * pending count and lag (entries not yet delivered), and per consumer (host:pid) its
 * pending entries and idle time; then the delayed set's size and the dead letter's length.
 * A consumer stays listed after its process exits: its idle time tells an operator that
 * it is gone, and its pending entries are reclaimed by the live workers. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cli_conn.h"
#include "clock.h"
#include "queue_read.h"
#include "rq.h"

static const char usage[] =
    "usage: maintq workers [--json]\n"
    "\n"
    "Per queue: stream length, pending entries (delivered, not yet acknowledged), lag\n"
    "(not yet delivered), and each consumer's pending entries and idle time; then the\n"
    "delayed set's size (retries and delayed submits) and the dead letter's length.\n"
    "\n"
    "  --json               one JSON object: {\"queues\": [{\"queue\", \"length\", \"pending\",\n"
    "                       \"lag\", \"last_delivered_id\", \"consumers\": [{\"name\",\n"
    "                       \"pending\", \"idle_ms\"}]}], \"delayed\", \"dead\"}\n"
    "  --redis-url URL      default $MAINTQ_REDIS_URL\n"
    "  --prefix P           Redis key prefix (default {maintq})\n";

static void format_idle(int64_t ms, char *buf, size_t size)
{
    if (ms < 0)
        snprintf(buf, size, "-");
    else if (ms < 10000)
        snprintf(buf, size, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600 * 1000)
        snprintf(buf, size, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
    else if (ms < 86400 * 1000)
        snprintf(buf, size, "%lldh%02lldm", (long long)(ms / 3600000),
                 (long long)(ms / 60000 % 60));
    else
        snprintf(buf, size, "%lldd%02lldh", (long long)(ms / 86400000),
                 (long long)(ms / 3600000 % 24));
}

static int64_t integer_reply(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_INTEGER ? (int64_t)r->integer : 0;
}

/* Reads one queue into a new JSON object (*ret, new reference). */
static int read_queue(redisContext *ctx, const char *key, const char *queue, json_t **ret)
{
    redisReply *len = NULL, *groups = NULL, *cons = NULL;
    const redisReply *g = NULL;
    json_t *o = NULL, *list;
    int r = -EIO;

    len = redisCommand(ctx, "XLEN %s", key);
    if (qr_check("workers", ctx, len, REDIS_REPLY_INTEGER, "XLEN") < 0)
        goto out;
    groups = redisCommand(ctx, "XINFO GROUPS %s", key);
    if (qr_check("workers", ctx, groups, REDIS_REPLY_ARRAY, "XINFO GROUPS") < 0)
        goto out;
    for (size_t i = 0; i < groups->elements; i++) {
        const char *name = qr_field_str(groups->element[i], "name");

        if (name && strcmp(name, RQ_GROUP) == 0)
            g = groups->element[i];
    }
    o = json_pack("{s:s,s:I,s:I,s:[]}", "queue", queue, "length", (json_int_t)len->integer,
                  "pending", (json_int_t)qr_field_int(g, "pending", 0), "consumers");
    if (!o) {
        r = -ENOMEM;
        goto out;
    }
    if (!g) {
        /* No worker ever read this queue: everything in it is waiting. */
        json_object_set_new(o, "lag", json_integer((json_int_t)len->integer));
        json_object_set_new(o, "last_delivered_id", json_null());
        *ret = o;
        o = NULL;
        r = 0;
        goto out;
    }
    /* Redis answers lag nil when it cannot tell (entries deleted in the undelivered
     * range); JSON null then, "?" in the table. */
    {
        const redisReply *lag = qr_field(g, "lag");

        json_object_set_new(o, "lag",
                            lag && lag->type == REDIS_REPLY_INTEGER
                                ? json_integer((json_int_t)lag->integer)
                                : json_null());
        json_object_set_new(o, "last_delivered_id",
                            qr_field_str(g, "last-delivered-id")
                                ? json_string(qr_field_str(g, "last-delivered-id"))
                                : json_null());
    }
    cons = redisCommand(ctx, "XINFO CONSUMERS %s %s", key, RQ_GROUP);
    if (qr_check("workers", ctx, cons, REDIS_REPLY_ARRAY, "XINFO CONSUMERS") < 0)
        goto out;
    list = json_object_get(o, "consumers");
    for (size_t i = 0; i < cons->elements; i++) {
        const char *name = qr_field_str(cons->element[i], "name");

        if (!name)
            continue;
        json_array_append_new(
            list, json_pack("{s:s,s:I,s:I}", "name", name, "pending",
                            (json_int_t)qr_field_int(cons->element[i], "pending", 0), "idle_ms",
                            (json_int_t)qr_field_int(cons->element[i], "idle", -1)));
    }
    *ret = o;
    o = NULL;
    r = 0;
out:
    json_decref(o);
    freeReplyObject(cons);
    freeReplyObject(groups);
    freeReplyObject(len);
    return r;
}

static const char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

static long long int_of(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static void print_table(json_t *all)
{
    json_t *queues = json_object_get(all, "queues");
    int wq = 5, wc = 8;

    for (size_t i = 0; i < json_array_size(queues); i++) {
        json_t *q = json_array_get(queues, i), *cons = json_object_get(q, "consumers");
        int l = (int)strlen(str_of(q, "queue"));

        if (l > wq)
            wq = l;
        for (size_t j = 0; j < json_array_size(cons); j++) {
            l = (int)strlen(str_of(json_array_get(cons, j), "name"));
            if (l > wc)
                wc = l;
        }
    }
    if (json_array_size(queues) == 0)
        printf("no queue streams\n");
    else
        printf("%-*s  %8s  %8s  %8s  %9s\n", wq, "QUEUE", "LENGTH", "PENDING", "LAG", "CONSUMERS");
    for (size_t i = 0; i < json_array_size(queues); i++) {
        json_t *q = json_array_get(queues, i), *cons = json_object_get(q, "consumers");
        json_t *lag = json_object_get(q, "lag");
        char lagbuf[32];

        if (json_is_integer(lag))
            snprintf(lagbuf, sizeof(lagbuf), "%lld", (long long)json_integer_value(lag));
        else
            snprintf(lagbuf, sizeof(lagbuf), "?");
        printf("%-*s  %8lld  %8lld  %8s  %9zu\n", wq, str_of(q, "queue"), int_of(q, "length"),
               int_of(q, "pending"), lagbuf, json_array_size(cons));
        for (size_t j = 0; j < json_array_size(cons); j++) {
            json_t *c = json_array_get(cons, j);
            char idle[32];

            format_idle(int_of(c, "idle_ms"), idle, sizeof(idle));
            printf("  consumer %-*s  pending %6lld  idle %s\n", wc, str_of(c, "name"),
                   int_of(c, "pending"), idle);
        }
    }
    printf("delayed      %lld\n", int_of(all, "delayed"));
    printf("dead letter  %lld\n", int_of(all, "dead"));
}

static int run_workers(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"redis-url", required_argument, NULL, 'r'},
        {"prefix", required_argument, NULL, 'P'},
        {0},
    };
    const char *redis_url = NULL, *prefix = RQ_DEFAULT_PREFIX;
    struct qr_names queues = {0};
    redisContext *ctx = NULL; /* freed here with redisFree() */
    redisReply *delayed = NULL, *dead = NULL;
    json_t *all = NULL, *list; /* all: owned */
    char key[RQ_KEY_MAX];
    size_t plen = strlen(prefix) + 3;
    int opt, json = 0, rc = CLI_EXIT_UNKNOWN;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'r':
            redis_url = optarg;
            break;
        case 'P':
            prefix = optarg;
            plen = strlen(prefix) + 3;
            break;
        case ':':
            cli_error("workers", "%s: missing value", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        default:
            cli_error("workers", "unknown option '%s' (see maintq workers --help)",
                      argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("workers", "unexpected argument '%.64s' (see maintq workers --help)",
                  argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (rq_key(key, sizeof(key), prefix, "delayed", NULL) < 0) {
        cli_error("workers", "--prefix: too long");
        return CLI_EXIT_USAGE;
    }
    if (cli_redis_open("workers", redis_url, &ctx) < 0)
        return CLI_EXIT_UNKNOWN;
    if (qr_list_queues(ctx, "workers", prefix, &queues) < 0)
        goto out;
    all = json_pack("{s:[]}", "queues");
    if (!all)
        goto oom;
    list = json_object_get(all, "queues");
    for (size_t i = 0; i < queues.n; i++) {
        json_t *q;

        if (read_queue(ctx, queues.v[i], queues.v[i] + plen, &q) < 0)
            goto out;
        json_array_append_new(list, q);
    }
    delayed = redisCommand(ctx, "ZCARD %s", key);
    if (qr_check("workers", ctx, delayed, REDIS_REPLY_INTEGER, "ZCARD") < 0)
        goto out;
    rq_key(key, sizeof(key), prefix, "dead", NULL);
    dead = redisCommand(ctx, "XLEN %s", key);
    if (qr_check("workers", ctx, dead, REDIS_REPLY_INTEGER, "XLEN") < 0)
        goto out;
    json_object_set_new(all, "delayed", json_integer((json_int_t)integer_reply(delayed)));
    json_object_set_new(all, "dead", json_integer((json_int_t)integer_reply(dead)));
    if (json) {
        json_dumpf(all, stdout, JSON_COMPACT);
        putchar('\n');
    } else {
        print_table(all);
    }
    rc = CLI_EXIT_OK;
    goto out;
oom:
    cli_error("workers", "out of memory");
out:
    json_decref(all);
    freeReplyObject(dead);
    freeReplyObject(delayed);
    qr_names_release(&queues);
    redisFree(ctx);
    return rc;
}

const struct cli_command cli_cmd_workers = {
    .name = "workers",
    .summary = "queues and their consumers: length, pending, lag, idle time",
    .usage = usage,
    .run = run_workers,
};
