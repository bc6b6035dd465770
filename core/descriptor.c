/* Job descriptor parsing, validation, defaults and serialisation. Validation runs in a
 * fixed order (size, syntax, shape limits over the whole tree, unknown fields, then each
 * field) so one bad descriptor always gives the same one-line message, which a worker
 * records in the dead letter. Parsing is on the worker's hot path: params is kept by
 * reference from the parsed tree and only the short top-level strings are copied. */
#include "descriptor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "descriptor_sig.h"

#define MAX_TIMEOUT_S 86400
#define MAX_ATTEMPTS 100
#define MAX_BACKOFF_S 86400
#define MAX_UNIQUE_FOR_S (31 * 86400)
#define MAX_KEY_STRING 200                          /* lock, unique_key, submitted_by */
#define MAX_NAME 64                                 /* type, queue, schedule */
#define MAX_TIME_US (253402300800LL * USEC_PER_SEC) /* 10000-01-01T00:00:00Z */
/* Serialising may grow a text (reals print with 17 digits, defaults are written out) but
 * by well under 8 times, so shorter inputs skip the check of the serialised size. */
#define SERIALISED_CHECK_ABOVE (DESCRIPTOR_MAX_BYTES / 8)

static const char *const known_fields[] = {
    "id",        "type",       "queue",        "params",       "timeout_s", "max_attempts",
    "backoff",   "lock",       "unique_key",   "unique_for_s", "schedule",  "scheduled_for",
    "not_after", "created_at", "submitted_by", "sig",
};

/* ---- shape limits over the whole tree ---- */

/* Where the walk is: the key (or, when key is NULL, the array index) of the node at each
 * depth. The path text is built only for an error message, not for every node. */
struct walk {
    const char *key[DESCRIPTOR_MAX_DEPTH + 2];
    size_t index[DESCRIPTOR_MAX_DEPTH + 2];
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
        return 0;
    }
    case JSON_OBJECT:
    case JSON_ARRAY:
        break;
    default:
        return 0;
    }
    if (depth > DESCRIPTOR_MAX_DEPTH) {
        errbuf_set(eb, "%s: nesting depth exceeds %d", walk_path(w, depth, path, sizeof(path)),
                   DESCRIPTOR_MAX_DEPTH);
        return -EINVAL;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            w->key[depth + 1] = NULL;
            w->index[depth + 1] = i;
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
        int r = check_tree(child, depth + 1, w, eb);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ---- field readers: each leaves *ret alone when the field is absent ---- */

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

/* *ret (borrowed from obj) is NULL when absent. */
static int get_string(json_t *obj, const char *key, const char **ret, size_t *ret_len,
                      struct errbuf *eb)
{
    json_t *v = json_object_get(obj, key);

    *ret = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v)) {
        errbuf_set(eb, "%s: expected string", key);
        return -EINVAL;
    }
    *ret = json_string_value(v);
    *ret_len = json_string_length(v);
    return 0;
}

static int get_name(json_t *obj, const char *key, bool wide, char **ret, struct errbuf *eb)
{
    const char *s;
    size_t len = 0;
    int r = get_string(obj, key, &s, &len, eb);

    if (r < 0 || !s)
        return r;
    if (!name_ok(s, len, wide)) {
        errbuf_set(eb, "%s: expected 1-%d characters of %s", key, MAX_NAME,
                   wide ? "A-Z a-z 0-9 _ . -" : "a-z 0-9 _");
        return -EINVAL;
    }
    *ret = strndup(s, len);
    return *ret ? 0 : -ENOMEM;
}

static int get_text(json_t *obj, const char *key, size_t max, char **ret, struct errbuf *eb)
{
    const char *s;
    size_t len = 0;
    int r = get_string(obj, key, &s, &len, eb);

    if (r < 0 || !s)
        return r;
    if (len < 1 || len > max) {
        errbuf_set(eb, "%s: expected 1-%zu bytes, got %zu", key, max, len);
        return -EINVAL;
    }
    *ret = strndup(s, len);
    return *ret ? 0 : -ENOMEM;
}

/* path names the field in messages (e.g. "backoff.base_s"). */
static int get_int(json_t *obj, const char *key, const char *path, int64_t min, int64_t max,
                   int64_t *ret, struct errbuf *eb)
{
    json_t *v = json_object_get(obj, key);

    if (!v)
        return 0;
    if (!json_is_integer(v)) {
        errbuf_set(eb, "%s: expected integer", path);
        return -EINVAL;
    }
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) {
        errbuf_set(eb, "%s: %" JSON_INTEGER_FORMAT " is out of range %" PRId64 "-%" PRId64, path, n,
                   min, max);
        return -EINVAL;
    }
    *ret = (int64_t)n;
    return 0;
}

static int get_time(json_t *obj, const char *key, int64_t *ret, struct errbuf *eb)
{
    const char *s;
    size_t len = 0;
    int r = get_string(obj, key, &s, &len, eb);

    if (r < 0 || !s)
        return r;
    int64_t us;
    if (clock_parse_rfc3339(s, &us) < 0) {
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

static int get_backoff(json_t *obj, struct descriptor *d, struct errbuf *eb)
{
    json_t *b = json_object_get(obj, "backoff");
    const char *key;
    json_t *v;
    int r;

    if (!b)
        return 0;
    if (!json_is_object(b)) {
        errbuf_set(eb, "backoff: expected object");
        return -EINVAL;
    }
    json_object_foreach(b, key, v)
    {
        if (strcmp(key, "base_s") != 0 && strcmp(key, "max_s") != 0) {
            errbuf_set(eb, "backoff.%s: unknown field", key);
            return -EINVAL;
        }
    }
    r = get_int(b, "base_s", "backoff.base_s", 0, MAX_BACKOFF_S, &d->backoff_base_s, eb);
    if (r < 0)
        return r;
    return get_int(b, "max_s", "backoff.max_s", 0, MAX_BACKOFF_S, &d->backoff_max_s, eb);
}

static bool is_known(const char *key)
{
    for (size_t i = 0; i < sizeof(known_fields) / sizeof(known_fields[0]); i++)
        if (strcmp(key, known_fields[i]) == 0)
            return true;
    return false;
}

/* Fills d (fresh, defaults set) from root; root must have passed check_tree(). */
static int read_fields(json_t *root, unsigned flags, bool copy_params, struct descriptor *d,
                       struct errbuf *eb)
{
    const char *key, *s;
    size_t len = 0;
    json_t *v;
    int r;

    json_object_foreach(root, key, v)
    {
        if (!is_known(key)) {
            errbuf_set(eb, "%s: unknown field", key);
            return -EINVAL;
        }
    }

    r = get_string(root, "id", &s, &len, eb);
    if (r < 0)
        return r;
    if (s) {
        if (!uuid7_is_valid(s)) {
            errbuf_set(eb, "id: expected a lower-case uuidv7");
            return -EINVAL;
        }
        memcpy(d->id, s, UUID_STR_LEN);
    } else if (flags & DESCRIPTOR_REQUIRE_COMPLETE) {
        errbuf_set(eb, "id: required");
        return -EINVAL;
    }

    r = get_name(root, "type", false, &d->type, eb);
    if (r < 0)
        return r;
    if (!d->type) {
        errbuf_set(eb, "type: required");
        return -EINVAL;
    }
    char *queue = NULL;
    r = get_name(root, "queue", true, &queue, eb);
    if (r < 0)
        return r;
    if (queue) {
        free(d->queue);
        d->queue = queue;
    }

    v = json_object_get(root, "params");
    if (v) {
        if (!json_is_object(v)) {
            errbuf_set(eb, "params: expected object");
            return -EINVAL;
        }
        json_t *p = copy_params ? json_deep_copy(v) : json_incref(v);
        if (!p)
            return -ENOMEM;
        json_decref(d->params);
        d->params = p;
    }

    if ((r = get_int(root, "timeout_s", "timeout_s", 1, MAX_TIMEOUT_S, &d->timeout_s, eb)) < 0 ||
        (r = get_int(root, "max_attempts", "max_attempts", 1, MAX_ATTEMPTS, &d->max_attempts, eb)) <
            0 ||
        (r = get_backoff(root, d, eb)) < 0)
        return r;
    if (d->backoff_base_s > d->backoff_max_s) {
        errbuf_set(eb, "backoff: base_s %" PRId64 " exceeds max_s %" PRId64, d->backoff_base_s,
                   d->backoff_max_s);
        return -EINVAL;
    }

    if ((r = get_text(root, "lock", MAX_KEY_STRING, &d->lock, eb)) < 0 ||
        (r = get_text(root, "unique_key", MAX_KEY_STRING, &d->unique_key, eb)) < 0 ||
        (r = get_int(root, "unique_for_s", "unique_for_s", 1, MAX_UNIQUE_FOR_S, &d->unique_for_s,
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

    if ((r = get_name(root, "schedule", true, &d->schedule, eb)) < 0 ||
        (r = get_time(root, "scheduled_for", &d->scheduled_for_us, eb)) < 0)
        return r;
    if (d->schedule && d->scheduled_for_us == DESCRIPTOR_TIME_UNSET) {
        errbuf_set(eb, "scheduled_for: required with schedule");
        return -EINVAL;
    }
    if (!d->schedule && d->scheduled_for_us != DESCRIPTOR_TIME_UNSET) {
        errbuf_set(eb, "schedule: required with scheduled_for");
        return -EINVAL;
    }

    if ((r = get_time(root, "not_after", &d->not_after_us, eb)) < 0 ||
        (r = get_time(root, "created_at", &d->created_at_us, eb)) < 0)
        return r;
    if (d->created_at_us == DESCRIPTOR_TIME_UNSET && (flags & DESCRIPTOR_REQUIRE_COMPLETE)) {
        errbuf_set(eb, "created_at: required");
        return -EINVAL;
    }

    if ((r = get_text(root, "submitted_by", MAX_KEY_STRING, &d->submitted_by, eb)) < 0)
        return r;
    if (!d->submitted_by && (flags & DESCRIPTOR_REQUIRE_COMPLETE)) {
        d->submitted_by = strdup(DESCRIPTOR_DEFAULT_SUBMITTED_BY);
        if (!d->submitted_by)
            return -ENOMEM;
    }

    r = get_string(root, "sig", &s, &len, eb);
    if (r < 0)
        return r;
    if (s) {
        if (strlen(s) != len || descriptor_sig_split(s, NULL, NULL) < 0) {
            errbuf_set(eb, "sig: expected \"v1:<key id>:<64 lower-case hex digits>\"");
            return -EINVAL;
        }
        d->sig = strndup(s, len);
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

/* Writes the compact, sorted text whatever its size; caller frees *ret_text with free(). */
static int serialise(const struct descriptor *d, bool with_sig, char **ret_text, size_t *ret_len)
{
    char buf[CLOCK_RFC3339_MAX];
    json_t *o = json_object(), *b = json_object();
    int bad = !o || !b;

    if (!bad) {
        if (d->id[0])
            bad |= json_object_set_new_nocheck(o, "id", json_string(d->id));
        bad |= json_object_set_new_nocheck(o, "type", json_string(d->type));
        bad |= json_object_set_new_nocheck(o, "queue", json_string(d->queue));
        bad |= json_object_set_nocheck(o, "params", d->params);
        bad |= json_object_set_new_nocheck(o, "timeout_s", json_integer(d->timeout_s));
        bad |= json_object_set_new_nocheck(o, "max_attempts", json_integer(d->max_attempts));
        bad |= json_object_set_new_nocheck(b, "base_s", json_integer(d->backoff_base_s));
        bad |= json_object_set_new_nocheck(b, "max_s", json_integer(d->backoff_max_s));
        bad |= json_object_set_nocheck(o, "backoff", b);
        if (d->lock)
            bad |= json_object_set_new_nocheck(o, "lock", json_string(d->lock));
        if (d->unique_key) {
            bad |= json_object_set_new_nocheck(o, "unique_key", json_string(d->unique_key));
            bad |= json_object_set_new_nocheck(o, "unique_for_s", json_integer(d->unique_for_s));
        }
        if (d->schedule) {
            bad |= json_object_set_new_nocheck(o, "schedule", json_string(d->schedule));
            bad |= json_object_set_new_nocheck(
                o, "scheduled_for", json_string(clock_format_rfc3339_us(d->scheduled_for_us, buf)));
        }
        if (d->not_after_us != DESCRIPTOR_TIME_UNSET)
            bad |= json_object_set_new_nocheck(
                o, "not_after", json_string(clock_format_rfc3339_us(d->not_after_us, buf)));
        if (d->created_at_us != DESCRIPTOR_TIME_UNSET)
            bad |= json_object_set_new_nocheck(
                o, "created_at", json_string(clock_format_rfc3339_us(d->created_at_us, buf)));
        if (d->submitted_by)
            bad |= json_object_set_new_nocheck(o, "submitted_by", json_string(d->submitted_by));
        if (with_sig && d->sig)
            bad |= json_object_set_new_nocheck(o, "sig", json_string(d->sig));
    }
    char *text =
        bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(b);
    json_decref(o);
    if (!text)
        return -ENOMEM;
    *ret_text = text;
    *ret_len = strlen(text);
    return 0;
}

int descriptor_to_json(const struct descriptor *d, bool with_sig, char **ret_text, size_t *ret_len)
{
    char *text;
    size_t len;
    int r = serialise(d, with_sig, &text, &len);

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

/* The limit holds for what this descriptor will be written as, not only what was read. */
static int check_serialised_size(const struct descriptor *d, struct errbuf *eb)
{
    char *text;
    size_t len;
    int r = serialise(d, true, &text, &len);

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

static int from_tree(json_t *root, unsigned flags, bool copy_params, bool check_size,
                     struct descriptor **ret_d, struct errbuf *eb)
{
    struct descriptor *d = NULL;
    int r;

    if (!json_is_object(root)) {
        errbuf_set(eb, "descriptor: expected object");
        return -EINVAL;
    }
    struct walk w;
    r = check_tree(root, 1, &w, eb);
    if (r < 0)
        goto fail;
    d = descriptor_new_defaults();
    if (!d)
        return -ENOMEM;
    r = read_fields(root, flags, copy_params, d, eb);
    if (r < 0)
        goto fail;
    if (check_size) {
        r = check_serialised_size(d, eb);
        if (r < 0)
            goto fail;
    }
    *ret_d = d;
    return 0;
fail:
    one_line(eb);
    descriptor_free(d);
    return r;
}

int descriptor_parse(const char *text, size_t len, unsigned flags, struct descriptor **ret_d,
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
    r = from_tree(root, flags, false, len > SERIALISED_CHECK_ABOVE, ret_d, eb);
    json_decref(root);
    return r;
}

int descriptor_from_json(json_t *obj, unsigned flags, struct descriptor **ret_d, struct errbuf *eb)
{
    return from_tree(obj, flags, true, true, ret_d, eb);
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
