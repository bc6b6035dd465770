/* The worker's fast reader of a descriptor's top-level object. Nearly every descriptor a
 * worker takes is the canonical text a submitter or the scheduler wrote: a flat object of
 * short plain strings and small integers, and params. Parsing all of it with jansson cost
 * most of a job's instructions; this scanner reads the flat part by hand and gives only
 * params' span of the text to jansson. It handles a strict subset of JSON (see
 * descriptor_scan() in descriptor_int.h) and declines everything else with -EAGAIN --
 * escapes, unknown or repeated keys, reals, anything unusual -- so that the full parser,
 * the only one that words errors, decides; the fields it reads go through the same
 * validation as the full parser's. What it accepts, jansson reads the same way: the
 * differential fuzz target fuzz_descriptor_fastpath checks that. */
#include <errno.h>
#include <string.h>

#include "descriptor_int.h"

#define MAX_DIGITS 18 /* any 18-digit integer fits an int64_t; longer ones are declined */

struct scan {
    const char *p, *end; /* borrowed: the text still to read */
    char *strings;       /* borrowed: where string values are copied, NUL-terminated */
    size_t used, size;
};

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && is_ws(*s->p))
        s->p++;
}

/* Skips optional whitespace, then c. */
static int expect(struct scan *s, char c)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != c)
        return -EAGAIN;
    s->p++;
    skip_ws(s);
    return 0;
}

/* A string without escapes or control characters, of valid UTF-8; *ret points into the
 * text (borrowed), unterminated. */
static int scan_raw_string(struct scan *s, const char **ret, size_t *ret_len)
{
    if (s->p >= s->end || *s->p != '"')
        return -EAGAIN;
    const char *start = ++s->p;
    while (s->p < s->end && *s->p != '"') {
        unsigned char c = (unsigned char)*s->p;
        if (c == '\\' || c < 0x20)
            return -EAGAIN;
        size_t n = c < 0x80 ? 1 : descriptor_utf8_len(s->p, (size_t)(s->end - s->p));
        if (!n)
            return -EAGAIN;
        s->p += n;
    }
    if (s->p >= s->end)
        return -EAGAIN;
    *ret = start;
    *ret_len = (size_t)(s->p - start);
    s->p++;
    return 0;
}

/* A string value, copied NUL-terminated into s->strings. */
static int scan_string(struct scan *s, struct field *f)
{
    const char *raw;
    size_t len;

    if (scan_raw_string(s, &raw, &len) < 0 || len > DESCRIPTOR_MAX_STRING ||
        s->size - s->used <= len)
        return -EAGAIN;
    char *copy = s->strings + s->used;
    memcpy(copy, raw, len);
    copy[len] = '\0';
    s->used += len + 1;
    f->kind = KIND_STRING;
    f->s = copy;
    f->len = len;
    return 0;
}

/* -?(0|[1-9][0-9]*) of at most MAX_DIGITS digits, not followed by a fraction or exponent
 * (jansson reads those as reals). */
static int scan_integer(struct scan *s, struct field *f)
{
    const char *p = s->p, *digits;
    bool neg = p < s->end && *p == '-';
    int64_t v = 0;

    if (neg)
        p++;
    digits = p;
    while (p < s->end && *p >= '0' && *p <= '9')
        p++;
    if (p == digits || p - digits > MAX_DIGITS || (*digits == '0' && p - digits > 1) ||
        p >= s->end || *p == '.' || *p == 'e' || *p == 'E')
        return -EAGAIN;
    for (const char *q = digits; q < p; q++)
        v = v * 10 + (*q - '0');
    s->p = p;
    f->kind = KIND_INTEGER;
    f->n = neg ? -v : v;
    return 0;
}

/* Reads an object: for each member, its key (borrowed, unterminated) is handed to member(),
 * which reads the value. */
static int scan_members(struct scan *s,
                        int (*member)(struct scan *s, const char *key, size_t len, void *ctx),
                        void *ctx)
{
    if (expect(s, '{') < 0)
        return -EAGAIN;
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        const char *key;
        size_t len;

        if (scan_raw_string(s, &key, &len) < 0 || expect(s, ':') < 0 ||
            member(s, key, len, ctx) < 0)
            return -EAGAIN;
        skip_ws(s);
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return 0;
        }
        if (expect(s, ',') < 0)
            return -EAGAIN;
    }
}

/* A member of backoff: distinct base_s and max_s integers. */
static int backoff_member(struct scan *s, const char *key, size_t len, void *ctx)
{
    struct fields *fl = ctx;
    struct field *f;

    if (len == 6 && memcmp(key, "base_s", 6) == 0)
        f = &fl->base_s;
    else if (len == 5 && memcmp(key, "max_s", 5) == 0)
        f = &fl->max_s;
    else
        return -EAGAIN;
    if (f->kind != KIND_ABSENT)
        return -EAGAIN;
    return scan_integer(s, f);
}

/* The end of the object or array starting at p (just past its closing bracket), or NULL
 * when the text ends first. Brackets are only counted, not matched: jansson then checks
 * the span, and a span it accepts is exactly the value the full parser would read. */
static const char *skip_nested(const char *p, const char *end)
{
    size_t depth = 0;

    for (; p < end; p++) {
        switch (*p) {
        case '"':
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\')
                    p++;
            if (p >= end)
                return NULL;
            break;
        case '{':
        case '[':
            depth++;
            break;
        case '}':
        case ']':
            if (--depth == 0)
                return p + 1;
            break;
        default:
            break;
        }
    }
    return NULL;
}

static int scan_params(struct scan *s, struct field *f)
{
    const char *start = s->p, *end;
    json_t *params;

    if (s->p >= s->end || *s->p != '{')
        return -EAGAIN;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0; /* "{}": left absent, the default is the same empty object */
    }
    end = skip_nested(start, s->end);
    if (!end)
        return -EAGAIN;
    /* As the full parser reads it: duplicate keys and NUL bytes rejected. */
    params = json_loadb(start, (size_t)(end - start), JSON_REJECT_DUPLICATES, NULL);
    if (!params)
        return -EAGAIN;
    f->kind = KIND_OBJECT;
    f->obj = params;
    s->p = end;
    return 0;
}

struct top {
    struct fields *fl;
    bool seen[N_FIELDS];
};

/* A member of the descriptor: a known key, once. */
static int top_member(struct scan *s, const char *key, size_t len, void *ctx)
{
    struct top *t = ctx;
    int id = descriptor_field_find(key, len);

    if (id < 0 || t->seen[id])
        return -EAGAIN;
    t->seen[id] = true;
    if (id == FIELD_BACKOFF) {
        t->fl->f[id].kind = KIND_OBJECT;
        return scan_members(s, backoff_member, t->fl);
    }
    if (id == FIELD_PARAMS)
        return scan_params(s, &t->fl->f[id]);
    if (s->p < s->end && *s->p == '"')
        return scan_string(s, &t->fl->f[id]);
    return scan_integer(s, &t->fl->f[id]);
}

int descriptor_scan(const char *text, size_t len, char *strings, size_t size, struct fields *ret)
{
    struct scan s = {text, text + len, strings, 0, size};
    struct fields fl;
    struct top t = {&fl, {false}};

    memset(&fl, 0, sizeof(fl));
    if (scan_members(&s, top_member, &t) < 0)
        goto fail;
    skip_ws(&s);
    if (s.p != s.end)
        goto fail;
    *ret = fl;
    return 0;
fail:
    json_decref(fl.f[FIELD_PARAMS].obj);
    return -EAGAIN;
}
