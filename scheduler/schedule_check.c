/* Schedule documents into `struct schedule`s: checks one parsed schedule object completely —
 * name, known fields, cron, zone, durations, misfire and concurrency words, the maintenance
 * window, and the job template through the descriptor module and the job type's own params
 * check — so a bad file is refused before anything fires, with one line naming the file, the
 * schedule and the field. It also keeps the document's canonical text (sorted keys,
 * compact), which the daemon mirrors into maintq.schedules without reading the file again.
 * Reading files and building sets is schedule.c's and schedule_file.c's work. */
#include "schedule_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "descriptor.h"
#include "job.h"
#include "parse.h"

#define SCHEDULE_NAME_MAX 64
/* Durations (deadline, jitter, window length) beyond a year are mistakes, not intentions. */
#define SCHEDULE_DURATION_MAX_US (366LL * 86400 * USEC_PER_SEC)

static const char *const schedule_keys[] = {
    "name",        "cron",   "zone",   "job",    "misfire",     "starting_deadline",
    "concurrency", "jitter", "paused", "window", "description", NULL,
};
static const char *const window_keys[] = {"cron", "duration", "zone", NULL};
/* Fields of a descriptor that the scheduler fills for each tick. */
static const char *const template_forbidden[] = {
    "id", "created_at", "schedule", "scheduled_for", "not_after", "sig", "submitted_by", NULL,
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

struct schedule *schedule_free(struct schedule *s)
{
    if (!s)
        return NULL;
    free(s->name);
    free(s->cron_text);
    cron_free(s->cron);
    free(s->job_json);
    window_free(s->window);
    free(s->definition);
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
int schedule_from_json(struct load_ctx *cx, json_t *obj, struct schedule **ret)
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
    s->definition = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s->name || !s->cron_text || !s->definition) {
        r = -ENOMEM;
        goto fail;
    }
    *ret = s;
    return 0;
fail:
    schedule_free(s);
    return r;
}
