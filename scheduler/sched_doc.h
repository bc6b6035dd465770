/* The definition of a loaded schedule as its file wrote it, for the `definition` column of
 * maintq.schedules (and from there `maintq schedules show` and `run-now`, which load it back
 * as a schedule file). struct schedule keeps the parsed form only, so the document is read
 * again from the schedule's file; a cache keeps one file's documents, indexed by name, so a
 * file of 10,000 schedules is read once per load, not once per schedule. */
#pragma once

#include <jansson.h>

#include "schedule.h"

struct sched_doc_cache {
    char *path;     /* owned: the file indexed */
    json_t *byname; /* owned: name -> the document's compact text (a json string) */
};

/* The compact JSON text (sorted keys) of s's document in its file, caller frees with
 * free(); NULL when the file no longer holds it (changed since it was loaded) or on ENOMEM.
 * cache: zero-initialised before the first call, released after the last. */
char *sched_doc_json(const struct schedule *s, struct sched_doc_cache *cache);
void sched_doc_cache_release(struct sched_doc_cache *cache);
