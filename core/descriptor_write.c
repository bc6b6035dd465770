/* Writing a descriptor's canonical text (the rule is in descriptor_sig.h): straight into a
 * growing buffer in the fixed order of its keys, which is what jansson's json_dumps with
 * JSON_COMPACT | JSON_SORT_KEYS wrote when this built a jansson object first -- byte for
 * byte, a unit test and a fuzz target compare the two -- at a fraction of the cost (no
 * object, no sort, no printf). Strings are escaped as jansson escapes them; params, an
 * arbitrary object, is still dumped by jansson itself with the same flags. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "descriptor_int.h"

/* The flags the canonical form was defined with; params is dumped with them. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17) | JSON_ENCODE_ANY)

struct out {
    char *buf; /* owned */
    size_t len, cap;
};

/* Makes room for n more bytes and a NUL. */
static int reserve(struct out *o, size_t n)
{
    if (o->cap - o->len > n)
        return 0;
    size_t cap = o->cap ? o->cap : 512;
    while (cap - o->len <= n)
        cap *= 2;
    char *buf = realloc(o->buf, cap);
    if (!buf)
        return -ENOMEM;
    o->buf = buf;
    o->cap = cap;
    return 0;
}

static int put(struct out *o, const char *s, size_t n)
{
    if (reserve(o, n) < 0)
        return -ENOMEM;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

/* A literal: ",\"key\":" and the like. */
#define PUT_LIT(o, lit) put(o, lit, sizeof(lit) - 1)

static int put_int(struct out *o, int64_t v)
{
    char tmp[24], *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return put(o, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* As jansson's dump: '"' and '\' and the control characters below 0x20 escaped (\b \f \n
 * \r \t by name, the others as \u00XX with upper-case hex), everything else -- '/', 0x7f,
 * all of UTF-8 -- as it is. Invalid UTF-8 fails, as json_string() refused it. */
static int put_string(struct out *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(s);

    /* No byte grows past the six of \u00XX. */
    if (len > (SIZE_MAX - 2) / 6 || reserve(o, 2 + 6 * len) < 0)
        return -ENOMEM;
    char *w = o->buf + o->len;
    *w++ = '"';
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t n = descriptor_utf8_len(s + i, len - i);
            if (!n)
                return -ENOMEM;
            memcpy(w, s + i, n);
            w += n;
            i += n;
            continue;
        }
        i++;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *w++ = (char)c;
            continue;
        }
        *w++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *w++ = (char)c;
            break;
        case '\b':
            *w++ = 'b';
            break;
        case '\f':
            *w++ = 'f';
            break;
        case '\n':
            *w++ = 'n';
            break;
        case '\r':
            *w++ = 'r';
            break;
        case '\t':
            *w++ = 't';
            break;
        default:
            memcpy(w, "u00", 3);
            w[3] = hex[c >> 4];
            w[4] = hex[c & 0xf];
            w += 5;
            break;
        }
    }
    *w++ = '"';
    o->len = (size_t)(w - o->buf);
    return 0;
}

static int put_time(struct out *o, int64_t us)
{
    char buf[CLOCK_RFC3339_MAX];

    return put_string(o, clock_format_rfc3339_us(us, buf));
}

static int on_dump(const char *buffer, size_t size, void *data)
{
    return put(data, buffer, size) < 0 ? -1 : 0;
}

static int put_params(struct out *o, const json_t *params)
{
    /* The common empty object without jansson's set-up (a loop-check table, two mallocs). */
    if (json_is_object(params) && json_object_size(params) == 0)
        return PUT_LIT(o, "{}");
    return json_dump_callback(params, on_dump, o, DUMP_FLAGS) < 0 ? -ENOMEM : 0;
}

/* A member after the first: the literal ",\"key\":" then the value (|| orders the two). */
#define MEMBER(o, key, put_value) (PUT_LIT(o, ",\"" key "\":") < 0 || (put_value) < 0 ? -ENOMEM : 0)
#define PUT_INT(o, key, v) MEMBER(o, key, put_int(o, v))
#define PUT_STRING(o, key, s) MEMBER(o, key, put_string(o, s))
#define PUT_TIME(o, key, us) MEMBER(o, key, put_time(o, us))

int descriptor_serialise(const struct descriptor *d, bool with_sig, char **ret_text,
                         size_t *ret_len)
{
    struct out o = {NULL, 0, 0};
    int r = 0;

    if (!d->type || !d->queue)
        return -ENOMEM; /* as json_string(NULL) failed before */
    /* In the order of enum field_id; backoff is always written, so every later key is
     * preceded by a comma. (r collects failures: -ENOMEM | anything is negative.) */
    r |= PUT_LIT(&o, "{\"backoff\":{\"base_s\":");
    r |= put_int(&o, d->backoff_base_s);
    r |= PUT_INT(&o, "max_s", d->backoff_max_s);
    r |= PUT_LIT(&o, "}");
    if (d->created_at_us != DESCRIPTOR_TIME_UNSET)
        r |= PUT_TIME(&o, "created_at", d->created_at_us);
    if (d->id[0])
        r |= PUT_STRING(&o, "id", d->id);
    if (d->lock)
        r |= PUT_STRING(&o, "lock", d->lock);
    r |= PUT_INT(&o, "max_attempts", d->max_attempts);
    if (d->not_after_us != DESCRIPTOR_TIME_UNSET)
        r |= PUT_TIME(&o, "not_after", d->not_after_us);
    r |= MEMBER(&o, "params", put_params(&o, d->params));
    r |= PUT_STRING(&o, "queue", d->queue);
    if (d->schedule) {
        r |= PUT_STRING(&o, "schedule", d->schedule);
        r |= PUT_TIME(&o, "scheduled_for", d->scheduled_for_us);
    }
    if (with_sig && d->sig)
        r |= PUT_STRING(&o, "sig", d->sig);
    if (d->submitted_by)
        r |= PUT_STRING(&o, "submitted_by", d->submitted_by);
    r |= PUT_INT(&o, "timeout_s", d->timeout_s);
    r |= PUT_STRING(&o, "type", d->type);
    if (d->unique_key) {
        r |= PUT_INT(&o, "unique_for_s", d->unique_for_s);
        r |= PUT_STRING(&o, "unique_key", d->unique_key);
    }
    r |= PUT_LIT(&o, "}");
    if (r < 0) {
        free(o.buf);
        return -ENOMEM;
    }
    o.buf[o.len] = '\0';
    *ret_text = o.buf;
    *ret_len = o.len;
    return 0;
}

int descriptor_to_json(const struct descriptor *d, bool with_sig, char **ret_text, size_t *ret_len)
{
    char *text;
    size_t len;
    int r = descriptor_serialise(d, with_sig, &text, &len);

    if (r < 0)
        return r;
    if (len > DESCRIPTOR_MAX_BYTES) {
        free(text);
        return -E2BIG;
    }
    *ret_text = text;
    if (ret_len)
        *ret_len = len;
    return 0;
}
