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
#include "strbuf.h"

/* The flags the canonical form was defined with; params is dumped with them. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17) | JSON_ENCODE_ANY)

/* A literal: ",\"key\":" and the like. */
#define PUT_LIT(o, lit) strbuf_add_lit(o, lit)

/* As jansson's dump: '"' and '\' and the control characters below 0x20 escaped (\b \f \n
 * \r \t by name, the others as \u00XX with upper-case hex), everything else -- '/', 0x7f,
 * all of UTF-8 -- as it is. Invalid UTF-8 fails, as json_string() refused it. */
static int put_string(struct strbuf *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(s);

    /* No byte grows past the six of \u00XX. */
    if (len > (SIZE_MAX - 2) / 6)
        return strbuf_fail(o, -ENOMEM);
    if (strbuf_reserve(o, 2 + 6 * len) < 0)
        return -ENOMEM;
    char *w = o->buf + o->len;
    *w++ = '"';
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t n = descriptor_utf8_len(s + i, len - i);
            if (!n)
                return strbuf_fail(o, -ENOMEM);
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

static int put_time(struct strbuf *o, int64_t us)
{
    char buf[CLOCK_RFC3339_MAX];

    return put_string(o, clock_format_rfc3339_us(us, buf));
}

static int on_dump(const char *buffer, size_t size, void *data)
{
    return strbuf_add(data, buffer, size) < 0 ? -1 : 0;
}

static int put_params(struct strbuf *o, const json_t *params)
{
    /* The common empty object without jansson's set-up (a loop-check table, two mallocs). */
    if (json_is_object(params) && json_object_size(params) == 0)
        return PUT_LIT(o, "{}");
    return json_dump_callback(params, on_dump, o, DUMP_FLAGS) < 0 ? strbuf_fail(o, -ENOMEM) : 0;
}

/* A member after the first: the literal ",\"key\":" then the value. Results are not
 * looked at: a failure stays in the buffer's err and the detach at the end reports it. */
#define MEMBER(o, key, put_value)                                                                  \
    do {                                                                                           \
        PUT_LIT(o, ",\"" key "\":");                                                               \
        (void)(put_value);                                                                         \
    } while (0)
#define PUT_INT(o, key, v) MEMBER(o, key, strbuf_add_int(o, v))
#define PUT_STRING(o, key, s) MEMBER(o, key, put_string(o, s))
#define PUT_TIME(o, key, us) MEMBER(o, key, put_time(o, us))

int descriptor_serialise(const struct descriptor *d, bool with_sig, char **ret_text,
                         size_t *ret_len)
{
    struct strbuf o = {0};
    char *text;

    if (!d->type || !d->queue)
        return -ENOMEM; /* as json_string(NULL) failed before */
    /* In the order of enum field_id; backoff is always written, so every later key is
     * preceded by a comma. A failure stays in o.err and makes the later puts no-ops. */
    PUT_LIT(&o, "{\"backoff\":{\"base_s\":");
    strbuf_add_int(&o, d->backoff_base_s);
    PUT_INT(&o, "max_s", d->backoff_max_s);
    PUT_LIT(&o, "}");
    if (d->created_at_us != DESCRIPTOR_TIME_UNSET)
        PUT_TIME(&o, "created_at", d->created_at_us);
    if (d->id[0])
        PUT_STRING(&o, "id", d->id);
    if (d->lock)
        PUT_STRING(&o, "lock", d->lock);
    PUT_INT(&o, "max_attempts", d->max_attempts);
    if (d->not_after_us != DESCRIPTOR_TIME_UNSET)
        PUT_TIME(&o, "not_after", d->not_after_us);
    MEMBER(&o, "params", put_params(&o, d->params));
    PUT_STRING(&o, "queue", d->queue);
    if (d->schedule) {
        PUT_STRING(&o, "schedule", d->schedule);
        PUT_TIME(&o, "scheduled_for", d->scheduled_for_us);
    }
    if (with_sig && d->sig)
        PUT_STRING(&o, "sig", d->sig);
    if (d->submitted_by)
        PUT_STRING(&o, "submitted_by", d->submitted_by);
    PUT_INT(&o, "timeout_s", d->timeout_s);
    PUT_STRING(&o, "type", d->type);
    if (d->unique_key) {
        PUT_INT(&o, "unique_for_s", d->unique_for_s);
        PUT_STRING(&o, "unique_key", d->unique_key);
    }
    PUT_LIT(&o, "}");
    text = strbuf_detach(&o, ret_len);
    if (!text)
        return -ENOMEM;
    *ret_text = text;
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
