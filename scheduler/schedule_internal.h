/* What the files behind schedule.h share with one another and with nobody else: the load
 * context that error messages are built from, the document check (schedule_check.c), the
 * text walk (schedule_file.c), and the overflow-safe bisection helpers of the window and
 * misfire computations. Include schedule.h, not this, from outside the schedule files. */
#pragma once

#include <stdint.h>

#include "schedule.h"

/* Where a definition is being read, for error messages. */
struct load_ctx {
    struct schedule_set *set; /* borrowed: the set being built (owns the zones) */
    const char *file;         /* borrowed */
    const char *name;         /* borrowed, NULL until the name has been read */
    size_t index;             /* 1-based position in the file, used while name is NULL */
    struct errbuf *eb;        /* borrowed, may be NULL */
};

/* Checks one schedule document (borrowed) completely; *ret is caller-freed with
 * schedule_free(). Zones are looked up in, or added to, cx->set's zone table. cx->name is set
 * once the name is known. Returns 0, -EINVAL (cx->eb names file, schedule and field) or
 * -ENOMEM. */
int schedule_from_json(struct load_ctx *cx, json_t *obj, struct schedule **ret);
/* Accepts NULL and half-built schedules; returns NULL. */
struct schedule *schedule_free(struct schedule *s);

/* Calls cb per schedule document of text, as schedule_file_foreach does for a file; origin
 * names the text in errors (a file path). */
int schedule_text_foreach(const char *origin, const char *text, size_t len,
                          int (*cb)(json_t *doc, size_t index, void *data), void *data,
                          struct errbuf *eb);

/* Bisection helpers on lo <= hi, computed in unsigned arithmetic so that spans wider than
 * INT64_MAX (from a very old instant) do not overflow. */
static inline uint64_t schedule_span(int64_t lo, int64_t hi)
{
    return (uint64_t)hi - (uint64_t)lo;
}

static inline int64_t schedule_mid_point(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(schedule_span(lo, hi) / 2);
}
