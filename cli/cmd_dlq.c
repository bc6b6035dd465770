/* `maintq dlq list|show|retry|purge`: the dead letter stream ({maintq}:dead), where jobs
 * end after their last attempt and where the worker puts entries it cannot run. Each dead
 * entry holds queue, d (descriptor, or the raw text when it was not one), n (attempts),
 * m (max attempts), error and at (ms). retry moves an entry back onto its queue as attempt
 * 1 through the rq_lua_dlq_retry script (atomic: the entry is either requeued and removed,
 * or left alone); purge deletes entries, or the whole stream with --all. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cli_conn.h"
#include "clock.h"
#include "parse.h"
#include "queue_read.h"
#include "resp.h"
#include "rq.h"
#include "rq_scripts.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 10000
#define ERROR_WIDTH 60

static const char usage[] =
    "usage: maintq dlq list [--limit N] [--json]\n"
    "       maintq dlq show ENTRY_ID [--json]\n"
    "       maintq dlq retry ENTRY_ID... | --all\n"
    "       maintq dlq purge ENTRY_ID... | --all\n"
    "\n"
    "The dead letter: jobs that used up their attempts and entries that were not valid\n"
    "jobs. ENTRY_ID is the dead letter's own id (1700000000000-0), shown by list.\n"
    "\n"
    "  list     newest first: entry, time, queue, type, job id, attempts, error\n"
    "           (--limit N: default 50, at most 10000; --json: one object per line)\n"
    "  show     one entry in full, the descriptor pretty-printed (--json: one object)\n"
    "  retry    put entries back on their queue as attempt 1; prints the new queue entry\n"
    "           ids; --all retries every entry present when it starts\n"
    "  purge    delete entries; --all deletes the whole dead letter (no question asked)\n"
    "\n"
    "  --redis-url URL      default $MAINTQ_REDIS_URL\n"
    "  --prefix P           Redis key prefix (default {maintq})\n";

struct dlq_opts {
    const char *redis_url, *prefix;
    int json, all;
    int64_t limit;
    char key[RQ_KEY_MAX]; /* the dead letter stream */
};

/* A dead entry's fields, borrowed from the reply. */
struct dead_entry {
    const char *id, *queue, *error;
    const redisReply *d;
    int64_t attempts, max_attempts, at_ms;
};

static int dead_entry_from_reply(const redisReply *e, struct dead_entry *ret)
{
    struct dead_entry de = {0};

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return -EBADMSG;
    de.id = e->element[0]->str;
    de.queue = qr_field_str(e->element[1], "queue");
    de.error = qr_field_str(e->element[1], "error");
    de.d = qr_field(e->element[1], "d");
    if (de.d && de.d->type != REDIS_REPLY_STRING)
        de.d = NULL;
    de.attempts = qr_field_int(e->element[1], "n", 0);
    de.max_attempts = qr_field_int(e->element[1], "m", 0);
    de.at_ms = qr_field_int(e->element[1], "at", 0);
    *ret = de;
    return 0;
}

/* The descriptor as JSON (new reference) when it parses as an object, else NULL. */
static json_t *descriptor_json(const struct dead_entry *de)
{
    json_t *d = de->d ? json_loadb(de->d->str, de->d->len, 0, NULL) : NULL;

    if (d && !json_is_object(d))
        d = (json_decref(d), NULL);
    return d;
}

/* The entry as a JSON object (new reference); full adds the descriptor itself. */
static json_t *dead_entry_json(const struct dead_entry *de, int full)
{
    json_t *d = descriptor_json(de);
    char when[CLOCK_RFC3339_MAX];
    json_t *o;

    qr_format_ms(de->at_ms, when);
    o = json_pack("{s:s,s:s,s:I,s:s?,s:O?,s:O?,s:I,s:I,s:s?}", "entry_id", de->id, "at", when,
                  "at_ms", (json_int_t)de->at_ms, "queue", de->queue, "type",
                  json_object_get(d, "type"), "job_id", json_object_get(d, "id"), "attempts",
                  (json_int_t)de->attempts, "max_attempts", (json_int_t)de->max_attempts, "error",
                  de->error);
    if (o && full) {
        if (d)
            json_object_set(o, "descriptor", d);
        else
            json_object_set_new(o, "descriptor_text",
                                de->d ? json_stringn(de->d->str, de->d->len) : json_null());
    }
    json_decref(d);
    return o;
}

static int print_json_line(json_t *o)
{
    int r = o ? json_dumpf(o, stdout, JSON_COMPACT) : -1;

    putchar('\n');
    json_decref(o);
    return r < 0 ? -ENOMEM : 0;
}

static int dlq_list(redisContext *ctx, const struct dlq_opts *o)
{
    redisReply *rep = redisCommand(ctx, "XREVRANGE %s + - COUNT %lld", o->key, (long long)o->limit);
    redisReply *len = NULL;
    int r = -EIO;

    if (qr_check("dlq", ctx, rep, REDIS_REPLY_ARRAY, "XREVRANGE") < 0)
        goto out;
    if (!o->json && rep->elements > 0)
        printf("%-17s  %-20s  %-12s  %-14s  %-36s  %8s  %s\n", "ENTRY", "AT", "QUEUE", "TYPE",
               "JOB", "ATTEMPTS", "ERROR");
    for (size_t i = 0; i < rep->elements; i++) {
        struct dead_entry de;
        char when[CLOCK_RFC3339_MAX];
        json_t *d;

        if (dead_entry_from_reply(rep->element[i], &de) < 0)
            continue;
        if (o->json) {
            if (print_json_line(dead_entry_json(&de, 0)) < 0) {
                cli_error("dlq", "out of memory");
                goto out;
            }
            continue;
        }
        d = descriptor_json(&de);
        {
            const char *err = de.error ? de.error : "";
            size_t elen = strcspn(err, "\r\n"), keep = elen;

            if (keep > ERROR_WIDTH) {
                keep = ERROR_WIDTH - 3;
                while (keep > 0 && ((unsigned char)err[keep] & 0xC0) == 0x80)
                    keep--;
            }
            printf("%-17s  %-20s  %-12s  %-14s  %-36s  %8lld  %.*s%s\n", de.id,
                   qr_format_ms(de.at_ms, when), de.queue && *de.queue ? de.queue : "-",
                   json_string_value(json_object_get(d, "type"))
                       ? json_string_value(json_object_get(d, "type"))
                       : "-",
                   json_string_value(json_object_get(d, "id"))
                       ? json_string_value(json_object_get(d, "id"))
                       : "(not a descriptor)",
                   (long long)de.attempts, (int)keep, err, keep < elen ? "..." : "");
        }
        json_decref(d);
    }
    if (!o->json) {
        len = redisCommand(ctx, "XLEN %s", o->key);
        if (qr_check("dlq", ctx, len, REDIS_REPLY_INTEGER, "XLEN") < 0)
            goto out;
        if (len->integer == 0)
            printf("the dead letter is empty\n");
        else if ((long long)len->integer > (long long)rep->elements)
            printf("(%zu newest of %lld; --limit N shows more)\n", rep->elements,
                   (long long)len->integer);
    }
    r = 0;
out:
    freeReplyObject(len);
    freeReplyObject(rep);
    return r;
}

static int dlq_show(redisContext *ctx, const struct dlq_opts *o, const char *entry_id)
{
    redisReply *rep = redisCommand(ctx, "XRANGE %s %s %s", o->key, entry_id, entry_id);
    struct dead_entry de;
    json_t *d = NULL;
    char when[CLOCK_RFC3339_MAX];
    int r = -EIO;

    if (qr_check("dlq", ctx, rep, REDIS_REPLY_ARRAY, "XRANGE") < 0)
        goto out;
    if (rep->elements == 0 || dead_entry_from_reply(rep->element[0], &de) < 0) {
        cli_error("dlq", "no dead letter entry %s", entry_id);
        r = -ENOENT;
        goto out;
    }
    if (o->json) {
        r = print_json_line(dead_entry_json(&de, 1));
        goto out;
    }
    d = descriptor_json(&de);
    printf("entry     %s\n", de.id);
    printf("at        %s\n", qr_format_ms(de.at_ms, when));
    printf("queue     %s\n", de.queue && *de.queue ? de.queue : "-");
    printf("attempts  %lld of %lld\n", (long long)de.attempts, (long long)de.max_attempts);
    printf("error     %s\n", de.error ? de.error : "");
    if (d) {
        printf("descriptor\n");
        json_dumpf(d, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        printf("descriptor (not a JSON object, as received)\n%.*s\n", de.d ? (int)de.d->len : 0,
               de.d ? de.d->str : "");
    }
    r = 0;
out:
    json_decref(d);
    freeReplyObject(rep);
    return r;
}

/* Retries one entry. Returns 0, -ENOENT (no such entry) or -EIO; errors printed. */
static int retry_one(redisContext *ctx, const struct redis_script *s, const struct dlq_opts *o,
                     const char *entry_id)
{
    struct resp_cmd args = {0};
    redisReply *rep;
    int r = 0;

    resp_cmd_add_str(&args, o->key);
    resp_cmd_add_str(&args, o->prefix);
    resp_cmd_add_str(&args, entry_id);
    rep = cli_redis_script(ctx, s, 1, &args);
    resp_cmd_release(&args);

    if (!rep) {
        cli_error("dlq", "redis: %s", ctx->errstr[0] ? ctx->errstr : "no reply");
        return -EIO;
    }
    if (rep->type == REDIS_REPLY_NIL) {
        cli_error("dlq", "no dead letter entry %s", entry_id);
        r = -ENOENT;
    } else if (rep->type == REDIS_REPLY_ERROR) {
        /* Lua errors arrive as "ERR user_script:...: message"; show the message. */
        const char *msg = strstr(rep->str, "dead entry");

        cli_error("dlq", "retry %s: %s", entry_id, msg ? msg : rep->str);
        r = -EINVAL;
    } else if (rep->type == REDIS_REPLY_STRING) {
        if (o->json)
            printf("{\"entry_id\":\"%s\",\"new_entry_id\":\"%s\"}\n", entry_id, rep->str);
        else
            printf("%s requeued as %s\n", entry_id, rep->str);
    } else {
        cli_error("dlq", "retry %s: unexpected reply type %d", entry_id, rep->type);
        r = -EIO;
    }
    freeReplyObject(rep);
    return r;
}

struct retry_all {
    redisContext *ctx;
    const struct redis_script *s;
    const struct dlq_opts *o;
    int failed, done;
};

static int on_retry_entry(const redisReply *e, void *data)
{
    struct retry_all *ra = data;
    int r;

    if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    r = retry_one(ra->ctx, ra->s, ra->o, e->element[0]->str);
    if (r == -EIO)
        return r; /* the connection is gone: stop */
    if (r < 0)
        ra->failed++;
    else
        ra->done++;
    return 0;
}

/* The id of the newest dead entry into buf ("" when empty). */
static int newest_id(redisContext *ctx, const struct dlq_opts *o, char *buf, size_t size)
{
    redisReply *rep = redisCommand(ctx, "XREVRANGE %s + - COUNT 1", o->key);

    buf[0] = '\0';
    if (qr_check("dlq", ctx, rep, REDIS_REPLY_ARRAY, "XREVRANGE") < 0) {
        freeReplyObject(rep);
        return -EIO;
    }
    if (rep->elements == 1 && rep->element[0]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->elements >= 1 && rep->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(buf, size, "%s", rep->element[0]->element[0]->str);
    freeReplyObject(rep);
    return 0;
}

static int dlq_retry(redisContext *ctx, const struct dlq_opts *o, int n, char **ids)
{
    struct redis_script s;
    int failed = 0;

    if (redis_script_init(&s, rq_lua_dlq_retry) < 0) {
        cli_error("dlq", "cannot hash the retry script");
        return -EIO;
    }
    if (o->all) {
        struct retry_all ra = {.ctx = ctx, .s = &s, .o = o};
        char last[64];
        int r;

        /* Only the entries present now: jobs that die meanwhile are not retried in a loop. */
        if (newest_id(ctx, o, last, sizeof(last)) < 0)
            return -EIO;
        if (!last[0]) {
            if (!o->json)
                printf("the dead letter is empty\n");
            return 0;
        }
        r = qr_stream_walk(ctx, "dlq", o->key, last, on_retry_entry, &ra);
        if (r < 0)
            return r;
        if (!o->json)
            printf("%d requeued, %d failed\n", ra.done, ra.failed);
        return ra.failed ? -EINVAL : 0;
    }
    for (int i = 0; i < n; i++) {
        int r = retry_one(ctx, &s, o, ids[i]);

        if (r == -EIO)
            return r;
        if (r < 0)
            failed++;
    }
    return failed ? -EINVAL : 0;
}

static int dlq_purge(redisContext *ctx, const struct dlq_opts *o, int n, char **ids)
{
    int missing = 0;

    if (o->all) {
        /* XLEN and DEL in one transaction, so the count is what was deleted. */
        redisReply *rep = NULL;
        void *rp = NULL;
        int e = 0;

        e |= redisAppendCommand(ctx, "MULTI");
        e |= redisAppendCommand(ctx, "XLEN %s", o->key);
        e |= redisAppendCommand(ctx, "DEL %s", o->key);
        e |= redisAppendCommand(ctx, "EXEC");
        for (int i = 0; i < 4 && e == REDIS_OK; i++) {
            freeReplyObject(rep);
            rep = NULL;
            e = redisGetReply(ctx, &rp);
            rep = rp;
            if (e == REDIS_OK && rep && rep->type == REDIS_REPLY_ERROR)
                break;
        }
        if (e != REDIS_OK ||
            qr_check("dlq", ctx, rep, REDIS_REPLY_ARRAY, "MULTI XLEN DEL EXEC") < 0 ||
            rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_INTEGER) {
            if (e != REDIS_OK)
                cli_error("dlq", "redis: %s", ctx->errstr[0] ? ctx->errstr : "no reply");
            freeReplyObject(rep);
            return -EIO;
        }
        if (o->json)
            printf("{\"purged\":%lld}\n", (long long)rep->element[0]->integer);
        else
            printf("purged %lld entries\n", (long long)rep->element[0]->integer);
        freeReplyObject(rep);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        redisReply *rep = redisCommand(ctx, "XDEL %s %s", o->key, ids[i]);

        if (qr_check("dlq", ctx, rep, REDIS_REPLY_INTEGER, "XDEL") < 0) {
            freeReplyObject(rep);
            return -EIO;
        }
        if (rep->integer == 0) {
            cli_error("dlq", "no dead letter entry %s", ids[i]);
            missing++;
        } else if (o->json) {
            printf("{\"entry_id\":\"%s\",\"purged\":true}\n", ids[i]);
        } else {
            printf("purged %s\n", ids[i]);
        }
        freeReplyObject(rep);
    }
    return missing ? -ENOENT : 0;
}

static int run_dlq(int argc, char **argv)
{
    /* One option per line, as in the other commands. */
    /* clang-format off */
    static const struct option opts[] = {
        {"limit", required_argument, NULL, 'n'},
        {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"redis-url", required_argument, NULL, 'r'},
        {"prefix", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    /* clang-format on */
    struct dlq_opts o = {.prefix = RQ_DEFAULT_PREFIX, .limit = LIMIT_DEFAULT};
    redisContext *ctx = NULL; /* freed here with redisFree() */
    const char *sub;
    char **ids;
    int opt, nids, r, rc = CLI_EXIT_UNKNOWN, limit_given = 0;

    if (argc < 2 || argv[1][0] == '-') {
        cli_error("dlq", "expected list, show, retry or purge (see maintq dlq --help)");
        return CLI_EXIT_USAGE;
    }
    sub = argv[1];
    if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "retry") != 0 &&
        strcmp(sub, "purge") != 0) {
        cli_error("dlq", "unknown subcommand '%.32s' (expected list, show, retry or purge)", sub);
        return CLI_EXIT_USAGE;
    }
    argc--;
    argv++;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            if (parse_int64(optarg, 1, LIMIT_MAX, &o.limit) < 0) {
                cli_error("dlq", "--limit: \"%.32s\" is not a number in 1-%d", optarg, LIMIT_MAX);
                return CLI_EXIT_USAGE;
            }
            limit_given = 1;
            break;
        case 'a':
            o.all = 1;
            break;
        case 'j':
            o.json = 1;
            break;
        case 'r':
            o.redis_url = optarg;
            break;
        case 'P':
            o.prefix = optarg;
            break;
        case ':':
            cli_error("dlq", "%s: missing value", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        default:
            cli_error("dlq", "unknown option '%s' (see maintq dlq --help)", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    ids = argv + optind;
    nids = argc - optind;
    if (strcmp(sub, "list") == 0) {
        if (nids > 0 || o.all) {
            cli_error("dlq", "list takes no entry ids and no --all");
            return CLI_EXIT_USAGE;
        }
    } else if (limit_given) {
        cli_error("dlq", "--limit goes with list only");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(sub, "show") == 0 && (nids != 1 || o.all)) {
        cli_error("dlq", "show takes one entry id");
        return CLI_EXIT_USAGE;
    }
    if ((strcmp(sub, "retry") == 0 || strcmp(sub, "purge") == 0) && !!nids == o.all) {
        cli_error("dlq", "%s takes entry ids or --all (not both)", sub);
        return CLI_EXIT_USAGE;
    }
    for (int i = 0; i < nids; i++) {
        if (!qr_stream_id_valid(ids[i])) {
            cli_error("dlq", "\"%.64s\": not a dead letter entry id (like 1700000000000-0)",
                      ids[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (rq_key(o.key, sizeof(o.key), o.prefix, "dead", NULL) < 0) {
        cli_error("dlq", "--prefix: too long");
        return CLI_EXIT_USAGE;
    }
    if (cli_redis_open("dlq", o.redis_url, &ctx) < 0)
        return CLI_EXIT_UNKNOWN;
    if (strcmp(sub, "list") == 0)
        r = dlq_list(ctx, &o);
    else if (strcmp(sub, "show") == 0)
        r = dlq_show(ctx, &o, ids[0]);
    else if (strcmp(sub, "retry") == 0)
        r = dlq_retry(ctx, &o, nids, ids);
    else
        r = dlq_purge(ctx, &o, nids, ids);
    rc = r < 0 ? CLI_EXIT_UNKNOWN : CLI_EXIT_OK;
    redisFree(ctx);
    return rc;
}

const struct cli_command cli_cmd_dlq = {
    .name = "dlq",
    .summary = "the dead letter: list, show, retry or purge entries",
    .usage = usage,
    .run = run_dlq,
};
