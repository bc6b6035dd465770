/* Job descriptor parsing, validation and defaults. Validation runs in a fixed order (size,
 * syntax, shape limits over the whole tree, unknown fields, then each field) so one bad
 * descriptor always gives the same one-line message, which a worker records in the dead
 * letter. Parsing is on the worker's hot path: descriptor_parse() first tries the scanner
 * of descriptor_scan.c, which reads the usual canonical text without building a tree for
 * it, and falls back to jansson for anything else; both readers hand the top-level fields
 * to the one validation here (read_fields()). params is kept by reference from the parsed
 * tree and only the short top-level strings are copied. Serialising is descriptor_write.c. */
#include "descriptor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "descriptor_int.h"
#include "descriptor_sig.h"

#define MAX_TIMEOUT_S 86400
#define MAX_ATTEMPTS 100
#define MAX_BACKOFF_S 86400
#define MAX_UNIQUE_FOR_S (31 * 86400)
#define MAX_KEY_STRING 200                          /* lock, unique_key, submitted_by */
#define MAX_NAME 64                                 /* type, queue, schedule */
#define MAX_TIME_US (253402300800LL * USEC_PER_SEC) /* 10000-01-01T00:00:00Z */
#define FAST_STRINGS 2048 /* room for the fast reader's top-level strings; more: full path */

/* ---- the serialised size, bounded without serialising ----
 *
 * The size limit holds for what a descriptor will be written as, which may be longer than
 * what was read (reals print with 17 digits, defaults are written out, a tree built in
 * memory may hold raw control characters that are written as \u00XX). Serialising to
 * measure cost as much as the rest of a submit, so the length is bounded from above
 * instead, and the text is serialised to measure it only when the bound exceeds
 * DESCRIPTOR_MAX_BYTES. The bound holds because descriptor_serialise() writes two parts:
 *
 * (a) params, dumped by jansson. check_tree() adds up, over every node of the tree it
 *     walks, at least what jansson's compact dump writes for that node alone:
 *     - a string or object key of n bytes: 2 quotes and at most 6 bytes per byte, since the
 *       longest escape (\u00XX) stands for one byte, '"' '\' \b \f \n \r \t take 2,
 *       and every other byte (each byte of a UTF-8 sequence too) is written as it is;
 *     - an integer at most 20 characters (INT64_MIN); a real, printed "%.17g", at most 24
 *       (sign, 17 digits, point, "e-308"; ".0" is appended only to at most 18 characters),
 *       counted as 32; true, false, null at most 5;
 *     - an array: 2 brackets and a comma per element (one fewer is written);
 *     - an object: 2 braces and per member its key (above), a colon and a comma.
 *     By induction, a node's dump is at most its subtree's sum. The walked tree is the whole
 *     descriptor (full path) or params itself (fast path), a deep copy dumps the same, and
 *     no term is negative, so params' dump is at most the sum.
 * (b) everything else: SERIALISED_FIXED_MAX is the braces plus every other member at its
 *     largest once validated -- quotes, key, colon, comma and the value: integers 20,
 *     strings 2 + 6 bytes per byte of their longest accepted length, times at most
 *     CLOCK_RFC3339_MAX - 1 characters, sig "v1:" key id ":" 64 hex digits -- plus "{}"
 *     for an absent params. It also covers what descriptor_fill_defaults() adds. */
#define INT_MAX_CHARS 20
#define REAL_MAX_CHARS 32
#define LITERAL_MAX_CHARS 5
#define STR_MAX(n) (2 + 6 * (uint64_t)(n))
#define MEMBER_MAX(key, value) (sizeof(key) - 1 + 4 + (value))
#define SIG_MAX_LEN (3 + DESCRIPTOR_KEY_ID_MAX + 1 + 64)
#define TIME_MAX_LEN (CLOCK_RFC3339_MAX - 1)
#define SERIALISED_FIXED_MAX                                                                       \
    (2 +                                                                                           \
     MEMBER_MAX("backoff",                                                                         \
                2 + MEMBER_MAX("base_s", INT_MAX_CHARS) + MEMBER_MAX("max_s", INT_MAX_CHARS)) +    \
     MEMBER_MAX("created_at", STR_MAX(TIME_MAX_LEN)) + MEMBER_MAX("id", STR_MAX(UUID_STR_LEN)) +   \
     MEMBER_MAX("lock", STR_MAX(MAX_KEY_STRING)) + MEMBER_MAX("max_attempts", INT_MAX_CHARS) +     \
     MEMBER_MAX("not_after", STR_MAX(TIME_MAX_LEN)) + MEMBER_MAX("params", 2) +                    \
     MEMBER_MAX("queue", STR_MAX(MAX_NAME)) + MEMBER_MAX("schedule", STR_MAX(MAX_NAME)) +          \
     MEMBER_MAX("scheduled_for", STR_MAX(TIME_MAX_LEN)) +                                          \
     MEMBER_MAX("sig", STR_MAX(SIG_MAX_LEN)) +                                                     \
     MEMBER_MAX("submitted_by", STR_MAX(MAX_KEY_STRING)) +                                         \
     MEMBER_MAX("timeout_s", INT_MAX_CHARS) + MEMBER_MAX("type", STR_MAX(MAX_NAME)) +              \
     MEMBER_MAX("unique_for_s", INT_MAX_CHARS) +                                                   \
     MEMBER_MAX("unique_key", STR_MAX(MAX_KEY_STRING)))

const char *const descriptor_field_names[N_FIELDS] = {
    [FIELD_BACKOFF] = "backoff",
    [FIELD_CREATED_AT] = "created_at",
    [FIELD_ID] = "id",
    [FIELD_LOCK] = "lock",
    [FIELD_MAX_ATTEMPTS] = "max_attempts",
    [FIELD_NOT_AFTER] = "not_after",
    [FIELD_PARAMS] = "params",
    [FIELD_QUEUE] = "queue",
    [FIELD_SCHEDULE] = "schedule",
    [FIELD_SCHEDULED_FOR] = "scheduled_for",
    [FIELD_SIG] = "sig",
    [FIELD_SUBMITTED_BY] = "submitted_by",
    [FIELD_TIMEOUT_S] = "timeout_s",
    [FIELD_TYPE] = "type",
    [FIELD_UNIQUE_FOR_S] = "unique_for_s",
    [FIELD_UNIQUE_KEY] = "unique_key",
};

int descriptor_field_find(const char *key, size_t len)
{
    for (int i = 0; i < N_FIELDS; i++) {
        const char *name = descriptor_field_names[i];
        if (len > 0 && name[0] == key[0] && strlen(name) == len && memcmp(name, key, len) == 0)
            return i;
    }
    return -1;
}

/* ---- shape limits over the whole tree ---- */

/* Where the walk is: the key (or, when key is NULL, the array index) of the node at each
 * depth. The path text is built only for an error message, not for every node. */
struct walk {
    const char *key[DESCRIPTOR_MAX_DEPTH + 2];
    size_t index[DESCRIPTOR_MAX_DEPTH + 2];
    uint64_t bound; /* the sum of (a) above, over the nodes walked so far */
};

/* Writes the dotted path of the node at depth ("params.a[0]"; "descriptor" for the root). */
static const char *walk_path(const struct walk *w, int depth, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (int i = 2; i <= depth && len < size; i++) {
        int n = w->key[i] ? snprintf(buf + len, size - len, "%s%s", i > 2 ? "." : "", w->key[i])
                          : snprintf(buf + len, size - len, "[%zu]", w->index[i]);
        if (n < 0)
            break;
        len += (size_t)n;
    }
    return buf[0] ? buf : "descriptor";
}

static int check_tree(json_t *v, int depth, struct walk *w, struct errbuf *eb)
{
    char path[200];

    switch (json_typeof(v)) {
    case JSON_STRING: {
        size_t n = json_string_length(v);
        if (n > DESCRIPTOR_MAX_STRING) {
            errbuf_set(eb, "%s: string of %zu bytes exceeds %d",
                       walk_path(w, depth, path, sizeof(path)), n, DESCRIPTOR_MAX_STRING);
            return -EINVAL;
        }
        /* JSON text cannot carry a NUL here (JSON_ALLOW_NUL is off), a built tree can. */
        if (memchr(json_string_value(v), '\0', n)) {
            errbuf_set(eb, "%s: string contains a nul byte",
                       walk_path(w, depth, path, sizeof(path)));
            return -EINVAL;
        }
        w->bound += STR_MAX(n);
        return 0;
    }
    case JSON_OBJECT:
    case JSON_ARRAY:
        break;
    case JSON_INTEGER:
        w->bound += INT_MAX_CHARS;
        return 0;
    case JSON_REAL:
        w->bound += REAL_MAX_CHARS;
        return 0;
    default:
        w->bound += LITERAL_MAX_CHARS;
        return 0;
    }
    if (depth > DESCRIPTOR_MAX_DEPTH) {
        errbuf_set(eb, "%s: nesting depth exceeds %d", walk_path(w, depth, path, sizeof(path)),
                   DESCRIPTOR_MAX_DEPTH);
        return -EINVAL;
    }
    w->bound += 2;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            w->key[depth + 1] = NULL;
            w->index[depth + 1] = i;
            w->bound += 1;
            int r = check_tree(json_array_get(v, i), depth + 1, w, eb);
            if (r < 0)
                return r;
        }
        return 0;
    }
    const char *key;
    size_t key_len;
    json_t *child;
    json_object_keylen_foreach(v, key, key_len, child)
    {
        if (key_len > DESCRIPTOR_MAX_STRING) {
            errbuf_set(eb, "%s: key of %zu bytes exceeds %d",
                       walk_path(w, depth, path, sizeof(path)), key_len, DESCRIPTOR_MAX_STRING);
            return -EINVAL;
        }
        if (strlen(key) != key_len) {
            errbuf_set(eb, "%s: key contains a nul byte", walk_path(w, depth, path, sizeof(path)));
            return -EINVAL;
        }
        w->key[depth + 1] = key;
        w->bound += STR_MAX(key_len) + 2;
        int r = check_tree(child, depth + 1, w, eb);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ---- the full reader: the top-level fields of a checked tree ---- */

static void set_field(struct field *f, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        f->kind = KIND_STRING;
        f->s = json_string_value(v);
        f->len = json_string_length(v);
        break;
    case JSON_INTEGER:
        f->kind = KIND_INTEGER;
        f->n = (int64_t)json_integer_value(v);
        break;
    case JSON_OBJECT:
        f->kind = KIND_OBJECT;
        f->obj = v;
        break;
    default:
        f->kind = KIND_OTHER;
        break;
    }
}

/* Fills *fl from root (borrowed, must have passed check_tree(), so no key holds a NUL). */
static void collect_fields(json_t *root, struct fields *fl)
{
    const char *key;
    size_t key_len;
    json_t *v;

    memset(fl, 0, sizeof(*fl));
    json_object_keylen_foreach(root, key, key_len, v)
    {
        int id = descriptor_field_find(key, key_len);
        if (id >= 0)
            set_field(&fl->f[id], v);
        else if (!fl->unknown)
            fl->unknown = key;
    }
    json_t *b = fl->f[FIELD_BACKOFF].obj;
    if (!b)
        return;
    json_object_keylen_foreach(b, key, key_len, v)
    {
        if (key_len == 6 && memcmp(key, "base_s", 6) == 0)
            set_field(&fl->base_s, v);
        else if (key_len == 5 && memcmp(key, "max_s", 5) == 0)
            set_field(&fl->max_s, v);
        else if (!fl->backoff_unknown)
            fl->backoff_unknown = key;
    }
}

/* ---- field checks, whichever reader found the fields: each leaves *ret alone when the
 * field is absent ---- */

static bool name_ok(const char *s, size_t len, bool wide)
{
    if (len < 1 || len > MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  (wide && ((c >= 'A' && c <= 'Z') || c == '.' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

/* 1 when f is a string, 0 when absent. */
static int get_string(const struct field *f, const char *key, struct errbuf *eb)
{
    if (f->kind == KIND_ABSENT)
        return 0;
    if (f->kind != KIND_STRING) {
        errbuf_set(eb, "%s: expected string", key);
        return -EINVAL;
    }
    return 1;
}

static int get_name(const struct field *f, const char *key, bool wide, char **ret,
                    struct errbuf *eb)
{
    int r = get_string(f, key, eb);

    if (r <= 0)
        return r;
    if (!name_ok(f->s, f->len, wide)) {
        errbuf_set(eb, "%s: expected 1-%d characters of %s", key, MAX_NAME,
                   wide ? "A-Z a-z 0-9 _ . -" : "a-z 0-9 _");
        return -EINVAL;
    }
    *ret = strndup(f->s, f->len);
    return *ret ? 0 : -ENOMEM;
}

static int get_text(const struct field *f, const char *key, size_t max, char **ret,
                    struct errbuf *eb)
{
    int r = get_string(f, key, eb);

    if (r <= 0)
        return r;
    if (f->len < 1 || f->len > max) {
        errbuf_set(eb, "%s: expected 1-%zu bytes, got %zu", key, max, f->len);
        return -EINVAL;
    }
    *ret = strndup(f->s, f->len);
    return *ret ? 0 : -ENOMEM;
}

/* path names the field in messages (e.g. "backoff.base_s"). */
static int get_int(const struct field *f, const char *path, int64_t min, int64_t max, int64_t *ret,
                   struct errbuf *eb)
{
    if (f->kind == KIND_ABSENT)
        return 0;
    if (f->kind != KIND_INTEGER) {
        errbuf_set(eb, "%s: expected integer", path);
        return -EINVAL;
    }
    if (f->n < min || f->n > max) {
        errbuf_set(eb, "%s: %" PRId64 " is out of range %" PRId64 "-%" PRId64, path, f->n, min,
                   max);
        return -EINVAL;
    }
    *ret = f->n;
    return 0;
}

static int get_time(const struct field *f, const char *key, int64_t *ret, struct errbuf *eb)
{
    int r = get_string(f, key, eb);

    if (r <= 0)
        return r;
    int64_t us;
    if (clock_parse_rfc3339(f->s, &us) < 0) {
        errbuf_set(eb, "%s: expected rfc 3339 time", key);
        return -EINVAL;
    }
    /* Bounded so that every accepted time prints back as a four-digit year. */
    if (us < 0 || us >= MAX_TIME_US) {
        errbuf_set(eb, "%s: outside 1970-01-01 to 9999-12-31", key);
        return -EINVAL;
    }
    *ret = us;
    return 0;
}

static int get_backoff(const struct fields *fl, struct descriptor *d, struct errbuf *eb)
{
    int r;

    if (fl->f[FIELD_BACKOFF].kind == KIND_ABSENT)
        return 0;
    if (fl->f[FIELD_BACKOFF].kind != KIND_OBJECT) {
        errbuf_set(eb, "backoff: expected object");
        return -EINVAL;
    }
    if (fl->backoff_unknown) {
        errbuf_set(eb, "backoff.%s: unknown field", fl->backoff_unknown);
        return -EINVAL;
    }
    r = get_int(&fl->base_s, "backoff.base_s", 0, MAX_BACKOFF_S, &d->backoff_base_s, eb);
    if (r < 0)
        return r;
    return get_int(&fl->max_s, "backoff.max_s", 0, MAX_BACKOFF_S, &d->backoff_max_s, eb);
}

/* Fills d (fresh, defaults set) from fl, checking each field in a fixed order. */
static int read_fields(const struct fields *fl, unsigned flags, bool copy_params,
                       struct descriptor *d, struct errbuf *eb)
{
    const struct field *f = fl->f;
    int r;

    if (fl->unknown) {
        errbuf_set(eb, "%s: unknown field", fl->unknown);
        return -EINVAL;
    }

    r = get_string(&f[FIELD_ID], "id", eb);
    if (r < 0)
        return r;
    if (r > 0) {
        if (!uuid7_is_valid(f[FIELD_ID].s)) {
            errbuf_set(eb, "id: expected a lower-case uuidv7");
            return -EINVAL;
        }
        memcpy(d->id, f[FIELD_ID].s, UUID_STR_LEN);
    } else if (flags & DESCRIPTOR_REQUIRE_COMPLETE) {
        errbuf_set(eb, "id: required");
        return -EINVAL;
    }

    r = get_name(&f[FIELD_TYPE], "type", false, &d->type, eb);
    if (r < 0)
        return r;
    if (!d->type) {
        errbuf_set(eb, "type: required");
        return -EINVAL;
    }
    char *queue = NULL;
    r = get_name(&f[FIELD_QUEUE], "queue", true, &queue, eb);
    if (r < 0)
        return r;
    if (queue) {
        free(d->queue);
        d->queue = queue;
    }

    if (f[FIELD_PARAMS].kind != KIND_ABSENT) {
        if (f[FIELD_PARAMS].kind != KIND_OBJECT) {
            errbuf_set(eb, "params: expected object");
            return -EINVAL;
        }
        json_t *v = f[FIELD_PARAMS].obj;
        json_t *p = copy_params ? json_deep_copy(v) : json_incref(v);
        if (!p)
            return -ENOMEM;
        json_decref(d->params);
        d->params = p;
    }

    if ((r = get_int(&f[FIELD_TIMEOUT_S], "timeout_s", 1, MAX_TIMEOUT_S, &d->timeout_s, eb)) < 0 ||
        (r = get_int(&f[FIELD_MAX_ATTEMPTS], "max_attempts", 1, MAX_ATTEMPTS, &d->max_attempts,
                     eb)) < 0 ||
        (r = get_backoff(fl, d, eb)) < 0)
        return r;
    if (d->backoff_base_s > d->backoff_max_s) {
        errbuf_set(eb, "backoff: base_s %" PRId64 " exceeds max_s %" PRId64, d->backoff_base_s,
                   d->backoff_max_s);
        return -EINVAL;
    }

    if ((r = get_text(&f[FIELD_LOCK], "lock", MAX_KEY_STRING, &d->lock, eb)) < 0 ||
        (r = get_text(&f[FIELD_UNIQUE_KEY], "unique_key", MAX_KEY_STRING, &d->unique_key, eb)) <
            0 ||
        (r = get_int(&f[FIELD_UNIQUE_FOR_S], "unique_for_s", 1, MAX_UNIQUE_FOR_S, &d->unique_for_s,
                     eb)) < 0)
        return r;
    if (d->unique_key && d->unique_for_s == 0) {
        errbuf_set(eb, "unique_for_s: required with unique_key");
        return -EINVAL;
    }
    if (!d->unique_key && d->unique_for_s != 0) {
        errbuf_set(eb, "unique_key: required with unique_for_s");
        return -EINVAL;
    }

    if ((r = get_name(&f[FIELD_SCHEDULE], "schedule", true, &d->schedule, eb)) < 0 ||
        (r = get_time(&f[FIELD_SCHEDULED_FOR], "scheduled_for", &d->scheduled_for_us, eb)) < 0)
        return r;
    if (d->schedule && d->scheduled_for_us == DESCRIPTOR_TIME_UNSET) {
        errbuf_set(eb, "scheduled_for: required with schedule");
        return -EINVAL;
    }
    if (!d->schedule && d->scheduled_for_us != DESCRIPTOR_TIME_UNSET) {
        errbuf_set(eb, "schedule: required with scheduled_for");
        return -EINVAL;
    }

    if ((r = get_time(&f[FIELD_NOT_AFTER], "not_after", &d->not_after_us, eb)) < 0 ||
        (r = get_time(&f[FIELD_CREATED_AT], "created_at", &d->created_at_us, eb)) < 0)
        return r;
    if (d->created_at_us == DESCRIPTOR_TIME_UNSET && (flags & DESCRIPTOR_REQUIRE_COMPLETE)) {
        errbuf_set(eb, "created_at: required");
        return -EINVAL;
    }

    if ((r = get_text(&f[FIELD_SUBMITTED_BY], "submitted_by", MAX_KEY_STRING, &d->submitted_by,
                      eb)) < 0)
        return r;
    if (!d->submitted_by && (flags & DESCRIPTOR_REQUIRE_COMPLETE)) {
        d->submitted_by = strdup(DESCRIPTOR_DEFAULT_SUBMITTED_BY);
        if (!d->submitted_by)
            return -ENOMEM;
    }

    r = get_string(&f[FIELD_SIG], "sig", eb);
    if (r < 0)
        return r;
    if (r > 0) {
        const char *s = f[FIELD_SIG].s;
        if (strlen(s) != f[FIELD_SIG].len || descriptor_sig_split(s, NULL, NULL) < 0) {
            errbuf_set(eb, "sig: expected \"v1:<key id>:<64 lower-case hex digits>\"");
            return -EINVAL;
        }
        d->sig = strndup(s, f[FIELD_SIG].len);
        if (!d->sig)
            return -ENOMEM;
    }
    return 0;
}

static struct descriptor *descriptor_new_defaults(void)
{
    struct descriptor *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    d->timeout_s = DESCRIPTOR_DEFAULT_TIMEOUT_S;
    d->max_attempts = DESCRIPTOR_DEFAULT_MAX_ATTEMPTS;
    d->backoff_base_s = DESCRIPTOR_DEFAULT_BACKOFF_BASE_S;
    d->backoff_max_s = DESCRIPTOR_DEFAULT_BACKOFF_MAX_S;
    d->scheduled_for_us = DESCRIPTOR_TIME_UNSET;
    d->not_after_us = DESCRIPTOR_TIME_UNSET;
    d->created_at_us = DESCRIPTOR_TIME_UNSET;
    d->queue = strdup(DESCRIPTOR_DEFAULT_QUEUE);
    d->params = json_object();
    if (!d->queue || !d->params)
        return descriptor_free(d);
    return d;
}

/* The limit holds for what this descriptor will be written as, not only what was read;
 * bound is the walk's sum (see the top of this file). */
static int check_serialised_size(const struct descriptor *d, uint64_t bound, struct errbuf *eb)
{
    char *text;
    size_t len;

    if (bound + SERIALISED_FIXED_MAX <= DESCRIPTOR_MAX_BYTES)
        return 0;
    int r = descriptor_serialise(d, true, &text, &len);
    if (r < 0)
        return r;
    free(text);
    if (len > DESCRIPTOR_MAX_BYTES) {
        errbuf_set(eb, "descriptor: serialised form of %zu bytes exceeds %d", len,
                   DESCRIPTOR_MAX_BYTES);
        return -E2BIG;
    }
    return 0;
}

/* Field names in messages come from the input: keep the message one printable line. */
static void one_line(struct errbuf *eb)
{
    if (!eb)
        return;
    for (char *p = eb->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = '?';
}

static int from_tree(json_t *root, unsigned flags, bool copy_params, struct descriptor **ret_d,
                     struct errbuf *eb)
{
    struct descriptor *d = NULL;
    struct fields fl;
    struct walk w;
    int r;

    if (!json_is_object(root)) {
        errbuf_set(eb, "descriptor: expected object");
        return -EINVAL;
    }
    w.bound = 0;
    r = check_tree(root, 1, &w, eb);
    if (r < 0)
        goto fail;
    d = descriptor_new_defaults();
    if (!d)
        return -ENOMEM;
    collect_fields(root, &fl);
    r = read_fields(&fl, flags, copy_params, d, eb);
    if (r < 0)
        goto fail;
    r = check_serialised_size(d, w.bound, eb);
    if (r < 0)
        goto fail;
    *ret_d = d;
    return 0;
fail:
    one_line(eb);
    descriptor_free(d);
    return r;
}

int descriptor_parse_full(const char *text, size_t len, unsigned flags, struct descriptor **ret_d,
                          struct errbuf *eb)
{
    json_error_t jerr;
    json_t *root;
    int r;

    if (len > DESCRIPTOR_MAX_BYTES) {
        errbuf_set(eb, "descriptor: %zu bytes exceeds %d", len, DESCRIPTOR_MAX_BYTES);
        return -E2BIG;
    }
    /* Duplicate keys are rejected (which value would count is ambiguous) and NUL bytes
     * too (JSON_ALLOW_NUL is off). jansson 2.14 has no run-time depth flag; its parser
     * stops at JSON_PARSER_MAX_DEPTH (2048), and check_tree() enforces our 16. */
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        /* jansson quotes input near the error: keep the message on one printable line. */
        for (char *p = jerr.text; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                *p = '?';
        errbuf_set(eb, "descriptor: invalid json at line %d column %d: %s", jerr.line, jerr.column,
                   jerr.text);
        return -EINVAL;
    }
    r = from_tree(root, flags, false, ret_d, eb);
    json_decref(root);
    return r;
}

int descriptor_parse_fast(const char *text, size_t len, unsigned flags, struct descriptor **ret_d)
{
    char strings[FAST_STRINGS];
    struct descriptor *d = NULL;
    struct fields fl;
    struct walk w;

    if (len > DESCRIPTOR_MAX_BYTES || descriptor_scan(text, len, strings, sizeof(strings), &fl) < 0)
        return -EAGAIN;
    /* The checks the full path makes, on the only subtree the scanner did not read itself
     * (its top-level strings are within DESCRIPTOR_MAX_STRING and hold no NUL). */
    json_t *params = fl.f[FIELD_PARAMS].obj;
    w.bound = 0;
    w.key[2] = descriptor_field_names[FIELD_PARAMS];
    if (params && check_tree(params, 2, &w, NULL) < 0)
        goto fail;
    d = descriptor_new_defaults();
    /* A descriptor the fast path might find too long is left to the full path's message. */
    if (!d || read_fields(&fl, flags, false, d, NULL) < 0 ||
        w.bound + SERIALISED_FIXED_MAX > DESCRIPTOR_MAX_BYTES)
        goto fail;
    json_decref(params);
    *ret_d = d;
    return 0;
fail:
    descriptor_free(d);
    json_decref(params);
    return -EAGAIN;
}

int descriptor_parse(const char *text, size_t len, unsigned flags, struct descriptor **ret_d,
                     struct errbuf *eb)
{
    if (descriptor_parse_fast(text, len, flags, ret_d) == 0)
        return 0;
    return descriptor_parse_full(text, len, flags, ret_d, eb);
}

int descriptor_from_json(json_t *obj, unsigned flags, struct descriptor **ret_d, struct errbuf *eb)
{
    return from_tree(obj, flags, true, ret_d, eb);
}

int descriptor_fill_defaults(struct descriptor *d, const char *submitted_by)
{
    int r;

    if (!d->id[0]) {
        r = uuid7_new(d->id);
        if (r < 0)
            return r;
    }
    if (d->created_at_us == DESCRIPTOR_TIME_UNSET)
        d->created_at_us = clock_now_us();
    if (!d->submitted_by) {
        if (submitted_by && (!submitted_by[0] || strlen(submitted_by) > MAX_KEY_STRING))
            return -EINVAL;
        d->submitted_by = strdup(submitted_by ? submitted_by : DESCRIPTOR_DEFAULT_SUBMITTED_BY);
        if (!d->submitted_by)
            return -ENOMEM;
    }
    return 0;
}

struct descriptor *descriptor_free(struct descriptor *d)
{
    if (!d)
        return NULL;
    free(d->type);
    free(d->queue);
    json_decref(d->params);
    free(d->lock);
    free(d->unique_key);
    free(d->schedule);
    free(d->submitted_by);
    free(d->sig);
    free(d);
    return NULL;
}
