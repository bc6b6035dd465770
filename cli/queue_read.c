/* Blocking reads of the Redis queue shared by the query commands (see queue_read.h). */
#include "queue_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "clock.h"
#include "parse.h"
#include "rq.h"

void qr_names_release(struct qr_names *names)
{
    for (size_t i = 0; i < names->n; i++)
        free(names->v[i]);
    free(names->v);
    names->v = NULL;
    names->n = 0;
}

int qr_check(const char *cmd, const redisContext *ctx, const redisReply *r, int type,
             const char *what)
{
    if (!r) {
        cli_error(cmd, "redis: %s: %s", what, ctx->errstr[0] ? ctx->errstr : "no reply");
        return -EIO;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cli_error(cmd, "redis: %s: %s", what, r->str);
        return -EIO;
    }
    if (type >= 0 && r->type != type) {
        cli_error(cmd, "redis: %s: unexpected reply type %d", what, r->type);
        return -EIO;
    }
    return 0;
}

static int names_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* SCAN MATCH is a glob: the prefix is taken literally by escaping glob characters. */
static int glob_escape(const char *s, char *buf, size_t size)
{
    size_t n = 0;

    for (; *s; s++) {
        if (strchr("*?[]\\", *s)) {
            if (n + 1 >= size)
                return -ENAMETOOLONG;
            buf[n++] = '\\';
        }
        if (n + 1 >= size)
            return -ENAMETOOLONG;
        buf[n++] = *s;
    }
    buf[n] = '\0';
    return 0;
}

int qr_list_queues(redisContext *ctx, const char *cmd, const char *prefix, struct qr_names *ret)
{
    struct qr_names names = {0};
    char esc[RQ_KEY_MAX], pattern[RQ_KEY_MAX + 8];
    char cursor[32] = "0";
    size_t cap = 0;
    int r = 0;

    if (glob_escape(prefix, esc, sizeof(esc)) < 0) {
        cli_error(cmd, "--prefix: too long");
        return -ENAMETOOLONG;
    }
    snprintf(pattern, sizeof(pattern), "%s:q:*", esc);
    do {
        redisReply *rep =
            redisCommand(ctx, "SCAN %s MATCH %s COUNT 1000 TYPE stream", cursor, pattern);
        const redisReply *keys;

        if (qr_check(cmd, ctx, rep, REDIS_REPLY_ARRAY, "SCAN") < 0 || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            if (rep && rep->type == REDIS_REPLY_ARRAY)
                cli_error(cmd, "redis: SCAN: malformed reply");
            freeReplyObject(rep);
            r = -EIO;
            goto fail;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        keys = rep->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            if (keys->element[i]->type != REDIS_REPLY_STRING)
                continue;
            if (names.n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                char **nv = realloc(names.v, ncap * sizeof(*nv));

                if (!nv) {
                    r = -ENOMEM;
                    break;
                }
                names.v = nv;
                cap = ncap;
            }
            names.v[names.n] = strdup(keys->element[i]->str);
            if (!names.v[names.n]) {
                r = -ENOMEM;
                break;
            }
            names.n++;
        }
        freeReplyObject(rep);
        if (r < 0) {
            cli_error(cmd, "out of memory");
            goto fail;
        }
    } while (strcmp(cursor, "0") != 0);
    if (names.n > 1)
        qsort(names.v, names.n, sizeof(*names.v), names_cmp);
    *ret = names;
    return 0;
fail:
    qr_names_release(&names);
    return r;
}

const redisReply *qr_field(const redisReply *flat, const char *name)
{
    size_t len = strlen(name);

    if (!flat || flat->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < flat->elements; i += 2) {
        const redisReply *k = flat->element[i];

        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) && k->len == len &&
            memcmp(k->str, name, len) == 0)
            return flat->element[i + 1];
    }
    return NULL;
}

const char *qr_field_str(const redisReply *flat, const char *name)
{
    const redisReply *v = qr_field(flat, name);

    return v && v->type == REDIS_REPLY_STRING ? v->str : NULL;
}

int64_t qr_field_int(const redisReply *flat, const char *name, int64_t def)
{
    const redisReply *v = qr_field(flat, name);
    int64_t n;

    if (!v)
        return def;
    if (v->type == REDIS_REPLY_INTEGER)
        return (int64_t)v->integer;
    if (v->type == REDIS_REPLY_STRING && parse_int64(v->str, INT64_MIN, INT64_MAX, &n) == 0)
        return n;
    return def;
}

int qr_stream_walk(redisContext *ctx, const char *cmd, const char *key, const char *end,
                   qr_entry_fn *fn, void *data)
{
    /* "(" makes the start exclusive (Redis >= 6.2): the next chunk begins after the last
     * entry seen, even when fn deleted it meanwhile. */
    char start[64] = "-";

    for (;;) {
        redisReply *rep = redisCommand(ctx, "XRANGE %s %s %s COUNT %d", key, start, end, QR_CHUNK);
        size_t n;
        int r = 0;

        if (qr_check(cmd, ctx, rep, REDIS_REPLY_ARRAY, "XRANGE") < 0) {
            freeReplyObject(rep);
            return -EIO;
        }
        n = rep->elements;
        for (size_t i = 0; i < n && r == 0; i++)
            r = fn(rep->element[i], data);
        if (r == 0 && n > 0) {
            const redisReply *last = rep->element[n - 1];

            if (last->type != REDIS_REPLY_ARRAY || last->elements < 1 ||
                last->element[0]->type != REDIS_REPLY_STRING) {
                cli_error(cmd, "redis: XRANGE: malformed entry");
                r = -EIO;
            } else {
                snprintf(start, sizeof(start), "(%s", last->element[0]->str);
            }
        }
        freeReplyObject(rep);
        if (r != 0)
            return r;
        if (n < QR_CHUNK)
            return 0;
    }
}

/* "MS-SEQ", both parts decimal. Ids beyond INT64_MAX ms are not ids Redis makes. */
static int parse_id(const char *s, int64_t *ms, int64_t *seq)
{
    const char *dash = strchr(s, '-');
    char part[24];

    if (!dash || dash == s || (size_t)(dash - s) >= sizeof(part))
        return -EINVAL;
    snprintf(part, sizeof(part), "%.*s", (int)(dash - s), s);
    if (strspn(part, "0123456789") != strlen(part) || strspn(dash + 1, "0123456789") == 0)
        return -EINVAL;
    if (parse_int64(part, 0, INT64_MAX, ms) < 0 || parse_int64(dash + 1, 0, INT64_MAX, seq) < 0)
        return -EINVAL;
    return 0;
}

bool qr_stream_id_valid(const char *s)
{
    int64_t ms, seq;

    return parse_id(s, &ms, &seq) == 0;
}

int qr_stream_id_cmp(const char *a, const char *b)
{
    int64_t ams = 0, aseq = 0, bms = 0, bseq = 0;

    parse_id(a, &ams, &aseq);
    parse_id(b, &bms, &bseq);
    if (ams != bms)
        return ams < bms ? -1 : 1;
    if (aseq != bseq)
        return aseq < bseq ? -1 : 1;
    return 0;
}

bool qr_uuid_valid(const char *id)
{
    size_t i;

    for (i = 0; id[i]; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (id[i] != '-')
                return false;
        } else if (!strchr("0123456789abcdefABCDEF", id[i])) {
            return false;
        }
    }
    return i == 36;
}

bool qr_descriptor_has_id(const char *descriptor, size_t len, const char *id)
{
    char needle[64];
    json_t *root;
    const char *got;
    bool same;

    snprintf(needle, sizeof(needle), "\"id\":\"%s\"", id);
    if (!descriptor || !memmem(descriptor, len, needle, strlen(needle)))
        return false;
    /* The bytes may sit inside params; only the top-level id counts. */
    root = json_loadb(descriptor, len, 0, NULL);
    got = json_string_value(json_object_get(root, "id"));
    same = got && strcmp(got, id) == 0;
    json_decref(root);
    return same;
}

int qr_server_time_ms(redisContext *ctx, const char *cmd, int64_t *ret_ms)
{
    redisReply *rep = redisCommand(ctx, "TIME");
    int64_t s, us;

    if (qr_check(cmd, ctx, rep, REDIS_REPLY_ARRAY, "TIME") < 0 || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_STRING ||
        parse_int64(rep->element[0]->str, 0, INT64_MAX / 1000000, &s) < 0 ||
        parse_int64(rep->element[1]->str, 0, 999999, &us) < 0) {
        if (rep && rep->type == REDIS_REPLY_ARRAY)
            cli_error(cmd, "redis: TIME: malformed reply");
        freeReplyObject(rep);
        return -EIO;
    }
    freeReplyObject(rep);
    *ret_ms = s * 1000 + us / 1000;
    return 0;
}

char *qr_format_ms(int64_t ms, char *buf)
{
    return clock_format_rfc3339(ms * 1000, buf);
}
