/* Key names, stream entries and delayed members of the Redis queue. */
#include "rq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

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
