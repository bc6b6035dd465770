/* The definition of a loaded schedule as its document said it, for the `definition` column
 * of maintq.schedules (and from there `maintq schedules show` and `run-now`, which load it
 * back as a schedule file). The loader keeps each document's canonical text in struct
 * schedule (schedule_check.c), so nothing here reads a file: the cache argument remains only
 * so that callers written for the earlier file-reading version keep compiling, and holds
 * nothing. */
#pragma once

#include "schedule.h"

struct sched_doc_cache {
    int unused; /* nothing is cached any more; C has no empty structs */
};

/* The compact JSON text (sorted keys) of s's document, caller frees with free(); NULL on
 * ENOMEM. cache: ignored (see above). */
char *sched_doc_json(const struct schedule *s, struct sched_doc_cache *cache);
void sched_doc_cache_release(struct sched_doc_cache *cache);
