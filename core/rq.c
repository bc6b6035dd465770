/* Key names, argument vectors, stream entries and delayed members of the Redis queue. */
#include "rq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int rq_args_push(struct rq_args *a, const char *s, size_t len)
{
    char *copy;

    if (a->argc == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        char **argv = realloc(a->argv, (size_t)cap * sizeof(*argv));
        size_t *lens;

        if (!argv)
            return -ENOMEM;
        a->argv = argv;
        lens = realloc(a->argvlen, (size_t)cap * sizeof(*lens));
        if (!lens)
            return -ENOMEM;
        a->argvlen = lens;
        a->cap = cap;
    }
    copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    a->argv[a->argc] = copy;
    a->argvlen[a->argc] = len;
    a->argc++;
    return 0;
}

int rq_args_push_str(struct rq_args *a, const char *s)
{
    return rq_args_push(a, s, strlen(s));
}

/* Digits by hand, not snprintf: the finish batch pushes three integers per entry. */
int rq_args_push_int(struct rq_args *a, int64_t v)
{
    char buf[24];
    char *p = buf + sizeof(buf);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return rq_args_push(a, p, (size_t)(buf + sizeof(buf) - p));
}

void rq_args_release(struct rq_args *a)
{
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
    free(a->argv);
    free(a->argvlen);
    a->argc = a->cap = 0;
    a->argv = NULL;
    a->argvlen = NULL;
}

int rq_key(char *buf, size_t size, const char *prefix, const char *what, const char *name)
{
    int n;

    if (name)
        n = snprintf(buf, size, "%s:%s:%s", prefix, what, name);
    else
        n = snprintf(buf, size, "%s:%s", prefix, what);
    if (n < 0 || (size_t)n >= size)
        return -ENAMETOOLONG;
    return 0;
}

static int64_t field_int(const redisReply *v)
{
    int64_t n;

    if (v->type != REDIS_REPLY_STRING || parse_int64(v->str, 0, INT32_MAX, &n) < 0)
        return 0;
    return n;
}

int rq_entry_from_reply(const redisReply *e, struct rq_entry *ret)
{
    struct rq_entry out = {0};
    const redisReply *fields;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return -EBADMSG;
    out.id = e->element[0]->str;
    fields = e->element[1];
    if (fields->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < fields->elements; i += 2) {
            const redisReply *k = fields->element[i], *v = fields->element[i + 1];

            if (k->type != REDIS_REPLY_STRING || k->len != 1)
                continue;
            switch (k->str[0]) {
            case 'd':
                if (v->type == REDIS_REPLY_STRING) {
                    out.descriptor = v->str;
                    out.descriptor_len = v->len;
                }
                break;
            case 'n':
                out.attempt = field_int(v);
                break;
            case 'm':
                out.max_attempts = field_int(v);
                break;
            case 'r':
                if (v->type == REDIS_REPLY_STRING)
                    out.note = v->str;
                break;
            default:
                break;
            }
        }
    } else if (fields->type != REDIS_REPLY_NIL) {
        return -EBADMSG;
    }
    *ret = out;
    return 0;
}

char *rq_delayed_member(const char *queue, int64_t attempt, int64_t max_attempts,
                        const char *descriptor, size_t descriptor_len, size_t *ret_len)
{
    char head[160];
    int n = snprintf(head, sizeof(head), "%s\n%" PRId64 "\n%" PRId64 "\n", queue, attempt,
                     max_attempts);
    char *m;

    if (n < 0 || (size_t)n >= sizeof(head))
        return NULL;
    m = malloc((size_t)n + descriptor_len + 1);
    if (!m)
        return NULL;
    memcpy(m, head, (size_t)n);
    memcpy(m + n, descriptor, descriptor_len);
    m[(size_t)n + descriptor_len] = '\0';
    *ret_len = (size_t)n + descriptor_len;
    return m;
}
