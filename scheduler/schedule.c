/* Schedule definitions: reads the JSON schedule files (one schedule object or
 * {"schedules": [...]}) into checked `struct schedule`s, and makes the decisions the daemon
 * needs without any I/O of its own — whether a tick lies in a maintenance window and when
 * that window ends, what to do with the ticks missed during downtime, the deterministic job
 * id of a tick, and the descriptor text of the job it enqueues. Every definition is checked
 * completely at load time (cron, zone, durations, the job template through the descriptor
 * module and the job type's own params check), so a bad file is refused before anything
 * fires, with one line naming the file, the schedule and the field. */
#include "schedule.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "clock.h"
#include "descriptor.h"
#include "job.h"
#include "parse.h"

#define SCHEDULE_NAME_MAX 64
/* Durations (deadline, jitter, window length) beyond a year are mistakes, not intentions. */
#define SCHEDULE_DURATION_MAX_US (366LL * 86400 * USEC_PER_SEC)
#define SCHEDULE_FILE_MAX_BYTES (16 * 1024 * 1024)
/* How many ticks beyond the misfire bound are counted one by one for the summary line; past
 * it the reason says "more than". Keeps a years-long outage of a per-second schedule from
 * stalling the daemon's start. */
#define SCHEDULE_MISFIRE_COUNT_MAX 1000000

static const char *const schedule_keys[] = {
    "name",        "cron",   "zone",   "job",    "misfire",     "starting_deadline",
    "concurrency", "jitter", "paused", "window", "description", NULL,
};
static const char *const window_keys[] = {"cron", "duration", "zone", NULL};
/* Fields of a descriptor that the scheduler fills for each tick. */
static const char *const template_forbidden[] = {
    "id", "created_at", "schedule", "scheduled_for", "not_after", "sig", "submitted_by", NULL,
};

/* Where a definition is being read, for error messages. */
struct load_ctx {
    struct schedule_set *set; /* borrowed: the set being built (owns the zones) */
    const char *file;         /* borrowed */
    const char *name;         /* borrowed, NULL until the name has been read */
    size_t index;             /* 1-based position in the file, used while name is NULL */
    struct errbuf *eb;        /* borrowed, may be NULL */
};

/* Writes `FILE: schedule "NAME": FIELD: reason` (or `schedule #N` before the name is known)
 * and returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int
field_error(const struct load_ctx *cx, const char *field, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (cx->name)
        errbuf_set(cx->eb, "%s: schedule \"%s\": %s: %s", cx->file, cx->name, field, what);
    else
        errbuf_set(cx->eb, "%s: schedule #%zu: %s: %s", cx->file, cx->index, field, what);
    return -EINVAL;
}

/* Same for a message from another module that already starts with its own field path
 * ("timeout_s: expected integer"): joined as "job.timeout_s: ...". */
static int nested_error(const struct load_ctx *cx, const char *prefix, const char *msg)
{
    if (cx->name)
        errbuf_set(cx->eb, "%s: schedule \"%s\": %s.%s", cx->file, cx->name, prefix, msg);
    else
        errbuf_set(cx->eb, "%s: schedule #%zu: %s.%s", cx->file, cx->index, prefix, msg);
    return -EINVAL;
}

static bool key_known(const char *key, const char *const *known)
{
    for (size_t i = 0; known[i]; i++)
        if (strcmp(key, known[i]) == 0)
            return true;
    return false;
}

static bool name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > SCHEDULE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static struct schedule_window *window_free(struct schedule_window *w)
{
    if (!w)
        return NULL;
    cron_free(w->cron);
    free(w);
    return NULL;
}

static struct schedule *schedule_free(struct schedule *s)
{
    if (!s)
        return NULL;
    free(s->name);
    free(s->cron_text);
    cron_free(s->cron);
    free(s->job_json);
    window_free(s->window);
    free(s);
    return NULL;
}

/* A duration: a string for parse_duration_us ("30s", "1h") or whole seconds as an integer.
 * Returns 0, -EINVAL (wrong type or text) or -ERANGE (negative or beyond a year). */
static int duration_from_json(const json_t *v, int64_t *ret_us)
{
    int64_t us;

    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0 || n > SCHEDULE_DURATION_MAX_US / USEC_PER_SEC)
            return -ERANGE;
        us = (int64_t)n * USEC_PER_SEC;
    } else if (json_is_string(v)) {
        int r = parse_duration_us(json_string_value(v), &us);
        if (r < 0)
            return r;
    } else {
        return -EINVAL;
    }
    if (us > SCHEDULE_DURATION_MAX_US)
        return -ERANGE;
    *ret_us = us;
    return 0;
}

static int duration_field(const struct load_ctx *cx, const json_t *v, const char *field,
                          int64_t *ret_us)
{
    int r = duration_from_json(v, ret_us);

    if (r == -ERANGE)
        return field_error(cx, field, "out of range 0s-366d");
    if (r < 0)
        return field_error(cx, field,
                           "expected a duration such as \"30s\", \"4h\" or whole seconds");
    return 0;
}

/* Parses a cron expression field and checks that it fires at all (e.g. not "0 0 30 2 *"). */
static int cron_field(const struct load_ctx *cx, const json_t *v, const char *field,
                      const struct tz *zone, struct cron **ret)
{
    struct errbuf e = {""};
    struct cron *c = NULL;
    int64_t first;
    int r;

    if (!json_is_string(v))
        return field_error(cx, field, "expected a string");
    r = cron_parse(json_string_value(v), &c, &e);
    if (r == -ENOMEM)
        return r;
    if (r < 0)
        return field_error(cx, field, "%s", e.msg);
    r = cron_next(c, zone, 0, &first);
    if (r < 0) {
        cron_free(c);
        return field_error(cx, field, "\"%s\" never fires", json_string_value(v));
    }
    *ret = c;
    return 0;
}

/* Finds zone name in the set's zone table, loading it on first use. *ret is borrowed. */
static int zone_field(const struct load_ctx *cx, const char *name, const char *field,
                      struct tz **ret)
{
    struct schedule_set *set = cx->set;
    struct errbuf e = {""};
    struct tz *tz = NULL, **zones;
    int r;

    for (size_t i = 0; i < set->n_zones; i++)
        if (strcmp(tz_name(set->zones[i]), name) == 0) {
            *ret = set->zones[i];
            return 0;
        }
    r = tz_load(name, &tz, &e);
    if (r == -ENOMEM)
        return r;
    if (r < 0)
        return field_error(cx, field, "%s", e.msg);
    zones = realloc(set->zones, (set->n_zones + 1) * sizeof(*zones));
    if (!zones) {
        tz_free(tz);
        return -ENOMEM;
    }
    set->zones = zones;
    set->zones[set->n_zones++] = tz;
    *ret = tz;
    return 0;
}

static int window_from_json(const struct load_ctx *cx, json_t *v, const char *sched_zone,
                            struct schedule_window **ret)
{
    struct schedule_window *w = NULL;
    const char *key, *zone_name = sched_zone;
    json_t *val;
    int r;

    if (!json_is_object(v))
        return field_error(cx, "window", "expected an object with cron, duration and zone");
    json_object_foreach(v, key, val)
    {
        char field[80];

        if (key_known(key, window_keys))
            continue;
        snprintf(field, sizeof(field), "window.%.64s", key);
        return field_error(cx, field, "unknown field");
    }
    if (!json_object_get(v, "cron"))
        return field_error(cx, "window.cron", "required");
    if (!json_object_get(v, "duration"))
        return field_error(cx, "window.duration", "required");
    val = json_object_get(v, "zone");
    if (val) {
        if (!json_is_string(val))
            return field_error(cx, "window.zone", "expected a string");
        zone_name = json_string_value(val);
    }

    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    r = zone_field(cx, zone_name, "window.zone", &w->zone);
    if (r < 0)
        goto fail;
    r = cron_field(cx, json_object_get(v, "cron"), "window.cron", w->zone, &w->cron);
    if (r < 0)
        goto fail;
    r = duration_field(cx, json_object_get(v, "duration"), "window.duration", &w->duration_us);
    if (r < 0)
        goto fail;
    /* Fire times are whole seconds, so a window shorter than one second could hold none. */
    if (w->duration_us < USEC_PER_SEC) {
        r = field_error(cx, "window.duration", "must be at least 1s");
        goto fail;
    }
    *ret = w;
    return 0;
fail:
    window_free(w);
    return r;
}

/* Checks the job template: only descriptor fields the schedule may set, every one valid,
 * a known job type whose params pass its check. *ret is its compact text (free()). */
static int template_from_json(const struct load_ctx *cx, json_t *v, char **ret)
{
    struct errbuf e = {""};
    struct descriptor *d = NULL;
    const struct job_type *type;
    char *copy;
    int r;

    if (!json_is_object(v))
        return field_error(cx, "job", "expected an object (a job descriptor template)");
    for (size_t i = 0; template_forbidden[i]; i++)
        if (json_object_get(v, template_forbidden[i])) {
            char field[32];
            snprintf(field, sizeof(field), "job.%s", template_forbidden[i]);
            return field_error(cx, field,
                               "filled by the scheduler for each tick, not allowed "
                               "in a template");
        }
    r = descriptor_from_json(v, 0, &d, &e);
    if (r == -ENOMEM)
        return r;
    if (r < 0)
        return nested_error(cx, "job", e.msg);
    type = job_type_find(d->type);
    if (!type) {
        r = field_error(cx, "job.type", "unknown job type \"%s\"", d->type);
        goto out;
    }
    r = type->check ? type->check(d->params, &e) : job_params_check_object(d->params, NULL, &e);
    if (r == -ENOMEM)
        goto out;
    if (r < 0) {
        r = nested_error(cx, "job", e.msg);
        goto out;
    }
    copy = json_dumps(v, JSON_COMPACT);
    if (!copy) {
        r = -ENOMEM;
        goto out;
    }
    *ret = copy;
    r = 0;
out:
    descriptor_free(d);
    return r;
}

static int enum_field(const struct load_ctx *cx, const json_t *v, const char *field,
                      const char *const *names, int *ret)
{
    const char *s = json_string_value(v);

    for (int i = 0; s && names[i]; i++)
        if (strcmp(s, names[i]) == 0) {
            *ret = i;
            return 0;
        }
    return field_error(cx, field, "expected %s, %s or %s", names[0], names[1], names[2]);
}

static const char *const misfire_names[] = {"skip", "run_once", "run_all", NULL};
static const char *const concurrency_names[] = {"allow", "forbid", "replace", NULL};

/* One schedule object. cx->name is set once the name is known. */
static int schedule_from_json(struct load_ctx *cx, json_t *obj, struct schedule **ret)
{
    struct schedule *s = NULL;
    const char *key, *zone = "UTC";
    json_t *v;
    int r, e;

    if (!json_is_object(obj)) {
        errbuf_set(cx->eb, "%s: schedule #%zu: expected an object", cx->file, cx->index);
        return -EINVAL;
    }
    v = json_object_get(obj, "name");
    if (!v)
        return field_error(cx, "name", "required");
    if (!json_is_string(v) || !name_valid(json_string_value(v)))
        return field_error(cx, "name", "expected 1-%d characters of A-Z a-z 0-9 _ . -",
                           SCHEDULE_NAME_MAX);
    cx->name = json_string_value(v);
    json_object_foreach(obj, key, v)
    {
        if (!key_known(key, schedule_keys))
            return field_error(cx, key, "unknown field");
    }
    if (!json_object_get(obj, "cron"))
        return field_error(cx, "cron", "required");
    if (!json_object_get(obj, "job"))
        return field_error(cx, "job", "required");

    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->misfire = SCHEDULE_MISFIRE_RUN_ONCE;
    s->concurrency = SCHEDULE_CONCURRENCY_ALLOW;

    v = json_object_get(obj, "zone");
    if (v) {
        if (!json_is_string(v)) {
            r = field_error(cx, "zone", "expected a string");
            goto fail;
        }
        zone = json_string_value(v);
    }
    r = zone_field(cx, zone, "zone", &s->zone);
    if (r < 0)
        goto fail;
    r = cron_field(cx, json_object_get(obj, "cron"), "cron", s->zone, &s->cron);
    if (r < 0)
        goto fail;
    r = template_from_json(cx, json_object_get(obj, "job"), &s->job_json);
    if (r < 0)
        goto fail;
    v = json_object_get(obj, "misfire");
    if (v) {
        r = enum_field(cx, v, "misfire", misfire_names, &e);
        if (r < 0)
            goto fail;
        s->misfire = (enum schedule_misfire)e;
    }
    v = json_object_get(obj, "concurrency");
    if (v) {
        r = enum_field(cx, v, "concurrency", concurrency_names, &e);
        if (r < 0)
            goto fail;
        s->concurrency = (enum schedule_concurrency)e;
    }
    v = json_object_get(obj, "starting_deadline");
    if (v && (r = duration_field(cx, v, "starting_deadline", &s->starting_deadline_us)) < 0)
        goto fail;
    v = json_object_get(obj, "jitter");
    if (v && (r = duration_field(cx, v, "jitter", &s->jitter_us)) < 0)
        goto fail;
    v = json_object_get(obj, "paused");
    if (v) {
        if (!json_is_boolean(v)) {
            r = field_error(cx, "paused", "expected true or false");
            goto fail;
        }
        s->paused = json_is_true(v);
    }
    v = json_object_get(obj, "description");
    if (v && !json_is_string(v)) {
        r = field_error(cx, "description", "expected a string");
        goto fail;
    }
    v = json_object_get(obj, "window");
    if (v && (r = window_from_json(cx, v, zone, &s->window)) < 0)
        goto fail;

    s->name = strdup(cx->name);
    s->file = cx->file;
    s->cron_text = strdup(json_string_value(json_object_get(obj, "cron")));
    s->zone_name = tz_name(s->zone);
    if (!s->name || !s->cron_text) {
        r = -ENOMEM;
        goto fail;
    }
    *ret = s;
    return 0;
fail:
    schedule_free(s);
    return r;
}

static int set_append(struct schedule_set *set, struct schedule *s)
{
    /* The capacity is implied by n: 8, then doubled each time n reaches a power of two. */
    if (set->n == 0 || (set->n >= 8 && (set->n & (set->n - 1)) == 0)) {
        size_t want = set->n == 0 ? 8 : set->n * 2;
        struct schedule **items = realloc(set->items, want * sizeof(*items));
        if (!items)
            return -ENOMEM;
        set->items = items;
    }
    set->items[set->n++] = s;
    return 0;
}

static int read_whole_file(const char *path, char **ret_text, size_t *ret_len, struct errbuf *eb)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int r;

    if (!f) {
        r = -errno;
        errbuf_set(eb, "%s: %s", path, strerror(errno));
        return r;
    }
    for (;;) {
        if (len == cap) {
            char *nb;
            cap = cap ? cap * 2 : 16384;
            if (cap > SCHEDULE_FILE_MAX_BYTES + 1)
                cap = SCHEDULE_FILE_MAX_BYTES + 1;
            if (len == cap) {
                errbuf_set(eb, "%s: larger than %d bytes", path, SCHEDULE_FILE_MAX_BYTES);
                r = -EFBIG;
                goto fail;
            }
            nb = realloc(buf, cap);
            if (!nb) {
                r = -ENOMEM;
                goto fail;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                errbuf_set(eb, "%s: read error", path);
                r = -EIO;
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    *ret_text = buf;
    *ret_len = len;
    return 0;
fail:
    fclose(f);
    free(buf);
    return r;
}

/* JSON's insignificant whitespace (RFC 8259). */
static size_t skip_ws(const char *t, size_t len, size_t i)
{
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i;
}

/* Walks text of the form {"schedules": [{...}, ...]} one element at a time, so that only
 * one schedule's tree exists at once: jansson builds about 1.5 KB of nodes per schedule,
 * which for a file of 10,000 was most of the daemon's memory. Returns 1 when the whole text
 * has exactly that form, every element being an object that parses (cb, when not NULL, was
 * called for each, in order), 0 when it does not (the caller parses the whole document
 * instead, which decides every error message; cb may have been called for some elements),
 * or cb's negative result. Anything unusual — another key, an escaped key, a scalar element,
 * a syntax error — is a 0 rather than an error of its own, so that error messages and their
 * order stay those of the whole-document path. */
static int stream_docs(const char *text, size_t len,
                       int (*cb)(json_t *doc, size_t index, void *data), void *data)
{
    static const char key[] = "\"schedules\"";
    size_t i = skip_ws(text, len, 0), index = 0;

    if (i >= len || text[i] != '{')
        return 0;
    i = skip_ws(text, len, i + 1);
    if (len - i < sizeof(key) - 1 || memcmp(text + i, key, sizeof(key) - 1) != 0)
        return 0;
    i = skip_ws(text, len, i + sizeof(key) - 1);
    if (i >= len || text[i] != ':')
        return 0;
    i = skip_ws(text, len, i + 1);
    if (i >= len || text[i] != '[')
        return 0;
    i = skip_ws(text, len, i + 1);
    while (i >= len || text[i] != ']') {
        json_error_t jerr;
        json_t *doc;
        int r;

        if (i >= len || text[i] != '{')
            return 0;
        /* Without the EOF check the decoder stops right after the object's closing brace
         * and reports in position how many bytes it read. */
        doc = json_loadb(text + i, len - i, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &jerr);
        if (!doc || jerr.position <= 0 || (size_t)jerr.position > len - i) {
            json_decref(doc);
            return 0;
        }
        i += (size_t)jerr.position;
        index++;
        r = cb ? cb(doc, index, data) : 0;
        json_decref(doc);
        if (r < 0)
            return r;
        i = skip_ws(text, len, i);
        if (i < len && text[i] == ',') {
            i = skip_ws(text, len, i + 1);
            if (i < len && text[i] == ']')
                return 0; /* a trailing comma: the whole-document parse names it */
        } else if (i >= len || text[i] != ']') {
            return 0;
        }
    }
    i = skip_ws(text, len, i + 1);
    if (i >= len || text[i] != '}')
        return 0;
    return skip_ws(text, len, i + 1) == len;
}

/* The whole-document path: any form, every error message. */
static int whole_docs(const char *path, const char *text, size_t len,
                      int (*cb)(json_t *doc, size_t index, void *data), void *data,
                      struct errbuf *eb)
{
    json_error_t jerr;
    json_t *root, *list;
    int r = 0;

    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        errbuf_set(eb, "%s: invalid json at line %d column %d: %s", path, jerr.line, jerr.column,
                   jerr.text);
        return -EINVAL;
    }
    list = json_object_get(root, "schedules");
    if (list) {
        if (json_object_size(root) != 1) {
            errbuf_set(eb, "%s: a file with \"schedules\" may hold nothing else", path);
            r = -EINVAL;
            goto out;
        }
        if (!json_is_array(list)) {
            errbuf_set(eb, "%s: schedules: expected an array", path);
            r = -EINVAL;
            goto out;
        }
    } else if (!json_is_object(root)) {
        errbuf_set(eb, "%s: expected a schedule object or {\"schedules\": [...]}", path);
        r = -EINVAL;
        goto out;
    }
    for (size_t i = 0; i < (list ? json_array_size(list) : 1) && r >= 0; i++)
        r = cb(list ? json_array_get(list, i) : root, i + 1, data);
out:
    json_decref(root);
    return r;
}

/* Calls cb per schedule document of text; origin names it in errors (a file path). */
static int text_foreach(const char *origin, const char *text, size_t len,
                        int (*cb)(json_t *doc, size_t index, void *data), void *data,
                        struct errbuf *eb)
{
    int r;

    /* A first streaming pass only checks the form and the syntax, calling nothing; the second
     * calls cb. Parsing twice costs a few milliseconds per megabyte; in exchange, a file that
     * is not of the usual form or is broken anywhere is handled by the whole-document path
     * alone, before cb has seen any of it, so both paths report the same errors in the same
     * order. */
    if (stream_docs(text, len, NULL, NULL) == 1) {
        r = stream_docs(text, len, cb, data);
        if (r == 0)
            r = -ENOMEM; /* the same text parsed a moment ago: only memory can fail */
        else if (r == 1)
            r = 0;
    } else {
        r = whole_docs(origin, text, len, cb, data, eb);
    }
    return r;
}

int schedule_file_foreach(const char *path, int (*cb)(json_t *doc, size_t index, void *data),
                          void *data, struct errbuf *eb)
{
    char *text = NULL;
    size_t len = 0;
    int r;

    r = read_whole_file(path, &text, &len, eb);
    if (r < 0)
        return r;
    r = text_foreach(path, text, len, cb, data, eb);
    free(text);
    return r;
}

static int load_doc(json_t *doc, size_t index, void *data)
{
    struct load_ctx *cx = data;
    struct schedule *s = NULL;
    int r;

    cx->index = index;
    cx->name = NULL;
    r = schedule_from_json(cx, doc, &s);
    if (r < 0)
        return r;
    r = set_append(cx->set, s);
    if (r < 0)
        schedule_free(s);
    return r;
}

static int check_unique_names(const struct schedule_set *set, struct errbuf *eb);

/* Records origin (a file path) in the set, which schedules borrow it from. */
static int add_origin(struct schedule_set *set, const char *origin, const char **ret)
{
    char **files = realloc(set->files, (set->n_files + 1) * sizeof(*files));

    if (!files)
        return -ENOMEM;
    set->files = files;
    if (!(set->files[set->n_files] = strdup(origin)))
        return -ENOMEM;
    *ret = set->files[set->n_files++];
    return 0;
}

/* Loads one file's schedules and appends them to set. */
static int load_file(struct schedule_set *set, const char *path, struct errbuf *eb)
{
    struct load_ctx cx = {.set = set, .eb = eb};
    int r = add_origin(set, path, &cx.file);

    return r < 0 ? r : schedule_file_foreach(path, load_doc, &cx, eb);
}

int schedule_set_load_text(const char *origin, const char *text, size_t len,
                           struct schedule_set **ret, struct errbuf *eb)
{
    struct schedule_set *set = calloc(1, sizeof(*set));
    struct load_ctx cx = {.set = set, .eb = eb};
    int r;

    if (!set)
        return -ENOMEM;
    r = add_origin(set, origin, &cx.file);
    if (r >= 0)
        r = text_foreach(origin, text, len, load_doc, &cx, eb);
    if (r >= 0)
        r = check_unique_names(set, eb);
    if (r < 0) {
        schedule_set_free(set);
        return r;
    }
    *ret = set;
    return 0;
}

struct name_pos {
    const struct schedule *s;
    size_t pos;
};

static int name_pos_cmp(const void *a, const void *b)
{
    const struct name_pos *x = a, *y = b;
    int c = strcmp(x->s->name, y->s->name);

    if (c)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Names must be unique in a set: they key the Redis dedupe, the job ids and the Postgres
 * rows. Sorting keeps this O(n log n) for sets of thousands; the later definition is the
 * one reported. */
static int check_unique_names(const struct schedule_set *set, struct errbuf *eb)
{
    struct name_pos *v;
    int r = 0;

    if (set->n < 2)
        return 0;
    v = calloc(set->n, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < set->n; i++)
        v[i] = (struct name_pos){set->items[i], i};
    qsort(v, set->n, sizeof(*v), name_pos_cmp);
    for (size_t i = 1; i < set->n; i++)
        if (strcmp(v[i - 1].s->name, v[i].s->name) == 0) {
            errbuf_set(eb, "%s: schedule \"%s\": name: already defined in %s", v[i].s->file,
                       v[i].s->name, v[i - 1].s->file);
            r = -EINVAL;
            break;
        }
    free(v);
    return r;
}

int schedule_set_load_files(const char *const *paths, size_t n, struct schedule_set **ret,
                            struct errbuf *eb)
{
    struct schedule_set *set = calloc(1, sizeof(*set));
    int r;

    if (!set)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        r = load_file(set, paths[i], eb);
        if (r < 0)
            goto fail;
    }
    r = check_unique_names(set, eb);
    if (r < 0)
        goto fail;
    *ret = set;
    return 0;
fail:
    schedule_set_free(set);
    return r;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void strv_release(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int schedule_set_load_dir(const char *dir, struct schedule_set **ret, struct errbuf *eb)
{
    DIR *dh = opendir(dir);
    char **paths = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int r;

    if (!dh) {
        r = -errno;
        errbuf_set(eb, "%s: %s", dir, strerror(errno));
        return r;
    }
    while ((de = readdir(dh))) {
        size_t nl = strlen(de->d_name);
        struct stat st;
        char *p;

        /* Hidden files are editor droppings (.x.json.swp, .#x.json), not schedules. */
        if (de->d_name[0] == '.' || nl < 6 || strcmp(de->d_name + nl - 5, ".json") != 0)
            continue;
        if (asprintf(&p, "%s/%s", dir, de->d_name) < 0) {
            r = -ENOMEM;
            goto fail;
        }
        if (stat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
            free(p);
            continue;
        }
        if (n == cap) {
            char **np;
            cap = cap ? cap * 2 : 16;
            np = realloc(paths, cap * sizeof(*np));
            if (!np) {
                free(p);
                r = -ENOMEM;
                goto fail;
            }
            paths = np;
        }
        paths[n++] = p;
    }
    closedir(dh);
    dh = NULL;
    if (n > 1)
        qsort(paths, n, sizeof(*paths), str_cmp);
    r = schedule_set_load_files((const char *const *)paths, n, ret, eb);
fail:
    if (dh)
        closedir(dh);
    strv_release(paths, n);
    return r;
}

const struct schedule *schedule_set_find(const struct schedule_set *set, const char *name)
{
    for (size_t i = 0; set && i < set->n; i++)
        if (strcmp(set->items[i]->name, name) == 0)
            return set->items[i];
    return NULL;
}

struct schedule_set *schedule_set_free(struct schedule_set *set)
{
    if (!set)
        return NULL;
    for (size_t i = 0; i < set->n; i++)
        schedule_free(set->items[i]);
    free(set->items);
    for (size_t i = 0; i < set->n_zones; i++)
        tz_free(set->zones[i]);
    free(set->zones);
    for (size_t i = 0; i < set->n_files; i++)
        free(set->files[i]);
    free(set->files);
    free(set);
    return NULL;
}

/* Bisection helpers on lo <= hi, computed in unsigned arithmetic so that spans wider than
 * INT64_MAX (from a very old instant) do not overflow. */
static uint64_t span(int64_t lo, int64_t hi)
{
    return (uint64_t)hi - (uint64_t)lo;
}

static int64_t mid_point(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(span(lo, hi) / 2);
}

/* The window containing t is the one opened by the latest window-cron fire <= t (all
 * windows of a schedule have the same length, so an earlier one ends earlier), and t is
 * inside iff that fire is after t - duration. Rather than stepping cron_next forward from
 * t - duration (one call per fire: a per-second window cron with a day-long duration would
 * cost 86400 calls), this bisects on "the first fire after x is <= t", which is true for
 * x below the latest fire and false from it on: about log2(duration / 1 s) calls. */
int schedule_window_at(const struct schedule *s, int64_t t_us, int64_t *ret_end_us)
{
    const struct schedule_window *w = s->window;
    int64_t lo, hi, open, f;
    int r;

    if (!w) {
        *ret_end_us = INT64_MAX;
        return 1;
    }
    lo = t_us < INT64_MIN + w->duration_us ? INT64_MIN : t_us - w->duration_us;
    r = cron_next(w->cron, w->zone, lo, &f);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    if (f > t_us)
        return 0;
    /* Invariant: cron_next(lo) <= t < cron_next(hi). Once hi - lo <= 1 s the interval
     * (lo, hi] holds exactly one whole second, so the fires in (lo, t] are one: the latest. */
    hi = t_us;
    while (span(lo, hi) > (uint64_t)USEC_PER_SEC) {
        int64_t mid = mid_point(lo, hi);

        r = cron_next(w->cron, w->zone, mid, &f);
        if (r < 0 && r != -ENOENT)
            return r;
        if (r == 0 && f <= t_us)
            lo = mid;
        else
            hi = mid;
    }
    r = cron_next(w->cron, w->zone, lo, &open);
    if (r < 0)
        return r;
    f = open > INT64_MAX - w->duration_us ? INT64_MAX : open + w->duration_us;
    if (t_us >= f)
        return 0;
    *ret_end_us = f;
    return 1;
}

/* Counts the ticks of s in (after, until], stopping at limit + 1. */
static int count_ticks(const struct schedule *s, int64_t after, int64_t until, size_t limit,
                       size_t *ret)
{
    size_t n = 0;
    int64_t t = after;

    while (n <= limit) {
        int r = cron_next(s->cron, s->zone, t, &t);
        if (r == -ENOENT || (r == 0 && t > until))
            break;
        if (r < 0)
            return r;
        n++;
    }
    *ret = n;
    return 0;
}

static const char reason_skip[] = "missed while no scheduler was running (misfire skip)";
static const char reason_superseded[] = "superseded by a later tick (misfire run_once)";
static const char reason_deadline[] = "older than the starting deadline";

int schedule_misfire_plan(const struct schedule *s, int64_t last_fire_us, int64_t now_us,
                          size_t max_ticks,
                          void (*cb)(const struct schedule *s, int64_t tick_us, bool fire,
                                     const char *reason, void *data),
                          void *data)
{
    int64_t start = last_fire_us, t, next, oldest_ok;
    size_t n;
    int r;

    if (max_ticks == 0)
        return -EINVAL;
    /* Never fired: the schedule is new, there is nothing it could have missed. */
    if (last_fire_us == INT64_MIN || now_us <= last_fire_us)
        return 0;
    r = count_ticks(s, last_fire_us, now_us, max_ticks, &n);
    if (r < 0)
        return r;
    if (n > max_ticks) {
        /* Find the point start with exactly max_ticks ticks in (start, now]: the smallest x
         * with count(x, now] <= max_ticks (each probe counts at most max_ticks + 1). */
        int64_t lo = last_fire_us, hi = now_us, first;
        char reason[256], until[CLOCK_RFC3339_MAX];
        size_t older;

        while (span(lo, hi) > 1) {
            int64_t mid = mid_point(lo, hi);
            r = count_ticks(s, mid, now_us, max_ticks, &n);
            if (r < 0)
                return r;
            if (n > max_ticks)
                lo = mid;
            else
                hi = mid;
        }
        start = hi;
        /* The older ticks, (last_fire, start], are reported once, at the oldest. */
        r = cron_next(s->cron, s->zone, last_fire_us, &first);
        if (r < 0)
            return r;
        r = count_ticks(s, last_fire_us, start, SCHEDULE_MISFIRE_COUNT_MAX, &older);
        if (r < 0)
            return r;
        snprintf(reason, sizeof(reason),
                 "%s%zu ticks from this one to %s missed: beyond the newest %zu ticks the "
                 "misfire policy considers",
                 older > SCHEDULE_MISFIRE_COUNT_MAX ? "more than " : "",
                 older > SCHEDULE_MISFIRE_COUNT_MAX ? (size_t)SCHEDULE_MISFIRE_COUNT_MAX : older,
                 clock_format_rfc3339(start, until), max_ticks);
        cb(s, first, false, reason, data);
    }

    oldest_ok = s->starting_deadline_us > 0 && now_us > INT64_MIN + s->starting_deadline_us
                    ? now_us - s->starting_deadline_us
                    : INT64_MIN;
    r = cron_next(s->cron, s->zone, start, &t);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    while (t <= now_us) {
        r = cron_next(s->cron, s->zone, t, &next);
        if (r == -ENOENT)
            next = INT64_MAX;
        else if (r < 0)
            return r;
        if (t < oldest_ok)
            cb(s, t, false, reason_deadline, data);
        else if (s->misfire == SCHEDULE_MISFIRE_SKIP)
            cb(s, t, false, reason_skip, data);
        else if (s->misfire == SCHEDULE_MISFIRE_RUN_ONCE && next <= now_us)
            cb(s, t, false, reason_superseded, data);
        else
            cb(s, t, true, NULL, data);
        t = next;
    }
    return 0;
}

int schedule_job_id(const char *name, int64_t fire_us, char out[UUID_STR_LEN])
{
    static const char tag[] = "maintq-tick"; /* hashed with its NUL */
    unsigned char b[16], h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    char num[24];
    EVP_MD_CTX *ctx;
    uint64_t ms;
    int nl, ok;

    /* The 48-bit millisecond field holds times up to the year 10889; before 1970 none. */
    if (fire_us < 0 || (uint64_t)(fire_us / 1000) >= (UINT64_C(1) << 48))
        return -EINVAL;
    ms = (uint64_t)(fire_us / 1000);
    nl = snprintf(num, sizeof(num), "%" PRId64, fire_us);
    ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -ENOMEM;
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, tag, sizeof(tag)) == 1 &&
         EVP_DigestUpdate(ctx, name, strlen(name) + 1) == 1 &&
         EVP_DigestUpdate(ctx, num, (size_t)nl) == 1 && EVP_DigestFinal_ex(ctx, h, &hl) == 1 &&
         hl == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -EIO;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    /* Version 7 in the high nibble of byte 6, variant 10 in the top bits of byte 8; the 74
     * bits between and after come from the hash. */
    b[6] = (unsigned char)(0x70 | (h[0] & 0x0f));
    b[7] = h[1];
    b[8] = (unsigned char)(0x80 | (h[2] & 0x3f));
    memcpy(b + 9, h + 3, 7);
    snprintf(out, UUID_STR_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return 0;
}

static int set_time(json_t *obj, const char *key, int64_t us)
{
    char buf[CLOCK_RFC3339_MAX];

    return json_object_set_new(obj, key, json_string(clock_format_rfc3339_us(us, buf))) < 0
               ? -ENOMEM
               : 0;
}

int schedule_build_descriptor(const struct schedule *s, int64_t tick_us, int64_t not_after_us,
                              int64_t now_us, char **ret_text, struct errbuf *eb)
{
    struct descriptor *d = NULL;
    char id[UUID_STR_LEN];
    json_t *obj;
    char *text = NULL;
    int r;

    r = schedule_job_id(s->name, tick_us, id);
    if (r < 0) {
        errbuf_set(eb, "schedule \"%s\": tick %" PRId64 " is outside the time a job id can hold",
                   s->name, tick_us);
        return r;
    }
    obj = json_loads(s->job_json, 0, NULL);
    if (!obj)
        return -ENOMEM; /* the text was written by json_dumps: only memory can fail */
    r = -ENOMEM;
    if (json_object_set_new(obj, "id", json_string(id)) < 0 ||
        json_object_set_new(obj, "schedule", json_string(s->name)) < 0 ||
        json_object_set_new(obj, "submitted_by", json_string("scheduler")) < 0 ||
        set_time(obj, "scheduled_for", tick_us) < 0 || set_time(obj, "created_at", now_us) < 0 ||
        (not_after_us != INT64_MAX && set_time(obj, "not_after", not_after_us) < 0))
        goto out;
    r = descriptor_from_json(obj, DESCRIPTOR_REQUIRE_COMPLETE, &d, eb);
    if (r < 0) {
        errbuf_prefix(eb, "schedule \"%s\"", s->name);
        goto out;
    }
    r = descriptor_to_json(d, false, &text, NULL);
    if (r < 0) {
        errbuf_set(eb, "schedule \"%s\": descriptor too large", s->name);
        goto out;
    }
    *ret_text = text;
out:
    descriptor_free(d);
    json_decref(obj);
    return r;
}
