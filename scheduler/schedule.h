/* Schedule definitions (the *.json files of ops/schedules, described by
 * schemas/schedule.schema.json): loading and validating them, and the pure decisions the
 * scheduler daemon makes with them — maintenance windows, misfire plans after downtime, and
 * the deterministic job id of a tick. Nothing here talks to Redis or Postgres or logs.
 * Implemented by schedule.c (sets), schedule_file.c (reading files), schedule_check.c
 * (checking documents), schedule_window.c, schedule_misfire.c and schedule_tick.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cron.h"
#include "errbuf.h"
#include "tz.h"
#include "uuid.h"

enum schedule_misfire {
    SCHEDULE_MISFIRE_SKIP,     /* ticks missed during downtime are recorded, not run */
    SCHEDULE_MISFIRE_RUN_ONCE, /* the latest missed tick runs, older ones are recorded */
    SCHEDULE_MISFIRE_RUN_ALL,  /* every missed tick within the starting deadline runs */
};

enum schedule_concurrency {
    SCHEDULE_CONCURRENCY_ALLOW,
    SCHEDULE_CONCURRENCY_FORBID,  /* skip a tick while the previous job has not finished */
    SCHEDULE_CONCURRENCY_REPLACE, /* cancel the previous job, then fire */
};

struct schedule_window {
    struct cron *cron;   /* owned: when windows open */
    struct tz *zone;     /* borrowed from the set's zone table */
    int64_t duration_us; /* how long each stays open */
};

struct schedule {
    char *name;                /* owned, [A-Za-z0-9_.-]{1,64} */
    const char *file;          /* borrowed from the set's file table: where it came from */
    char *cron_text;           /* owned: as written */
    struct cron *cron;         /* owned */
    const char *zone_name;     /* borrowed: tz_name(zone), default "UTC" */
    struct tz *zone;           /* borrowed from the set's zone table */
    /* owned: the job template (a descriptor without id/times) as compact JSON text, parsed
     * again for each tick: as a jansson tree it cost ~450 bytes a schedule, a third of a
     * loaded schedule, against ~60 as text and microseconds per fire to parse. */
    char *job_json;
    enum schedule_misfire misfire;
    int64_t starting_deadline_us; /* 0 = no deadline */
    enum schedule_concurrency concurrency;
    int64_t jitter_us;         /* 0 = none */
    bool paused;
    struct schedule_window *window; /* owned, NULL when the schedule has none */
    /* owned: the whole document as compact JSON with sorted keys, kept from the load for the
     * `definition` column of maintq.schedules (and from there `schedules show` and
     * `run-now`), so that mirroring a set never reads its files again. */
    char *definition;
};

struct schedule_set {
    struct schedule **items; /* owned */
    size_t n;
    /* owned: each distinct zone once. Zones are immutable and a few kilobytes each, so the
     * schedules (which live and die with the set) share them. */
    struct tz **zones;
    size_t n_zones;
    /* owned: each file's path once, which its schedules point to (with 10,000 schedules a
     * copy each would be half a megabyte). */
    char **files;
    size_t n_files;
};

/* Loads every *.json file of dir (sorted by name) into a new set. A file holds one schedule
 * object or {"schedules": [...]}. Errors name the file, the schedule and the field:
 * `ops/schedules/db.json: schedule "vacuum": window.duration: expected a duration`.
 * Names must be unique across the set. */
int schedule_set_load_dir(const char *dir, struct schedule_set **ret, struct errbuf *eb);
/* Loads the given files (for `maintq schedules check FILE...`). */
int schedule_set_load_files(const char *const *paths, size_t n, struct schedule_set **ret,
                            struct errbuf *eb);
/* The same for text already in memory (a definition recorded in Postgres); origin stands
 * for the file name in error messages. */
int schedule_set_load_text(const char *origin, const char *text, size_t len,
                           struct schedule_set **ret, struct errbuf *eb);
/* Calls cb once per schedule document of the file at path, in file order, with the document
 * (borrowed for the call: valid only until cb returns) and its 1-based position; stops at
 * the first negative return of cb and returns it. A file of the usual form
 * {"schedules": [...]} is read one document at a time (the daemon's memory then does not grow
 * with the file's parsed tree); any other form is parsed whole. Other returns: 0, -EINVAL
 * (not JSON, or neither a schedule object nor {"schedules": [...]}; eb names the file and
 * what is wrong), -ENOENT and other errnos of reading the file, -EFBIG, -ENOMEM. A document
 * that is not an object is passed to cb as it is. */
int schedule_file_foreach(const char *path, int (*cb)(json_t *doc, size_t index, void *data),
                          void *data, struct errbuf *eb);
const struct schedule *schedule_set_find(const struct schedule_set *set, const char *name);
struct schedule_set *schedule_set_free(struct schedule_set *set);

/* Is tick t_us inside one of the schedule's windows? Returns 1 with *ret_end_us = that
 * window's end, 0 when outside, or 1 with end = INT64_MAX when the schedule has no window
 * (a negative errno only if cron_next fails otherwise than with -ENOENT). A window opens at
 * each fire of its cron and holds [open, open + duration); the newest opening decides. */
int schedule_window_at(const struct schedule *s, int64_t t_us, int64_t *ret_end_us);

/* What to do with the ticks of s in (last_fire_us, now_us] after downtime, per its misfire
 * policy and starting deadline: calls cb once per tick in time order with fire = true (run
 * it, reason NULL) or false (record it as missed, with reason; borrowed for the call). At
 * most max_ticks ticks are considered (the oldest beyond that are reported once, at the
 * oldest, with a count in the reason). last_fire_us == INT64_MIN means the schedule never
 * fired: nothing is missed. A tick older than now_us - starting deadline is missed whatever
 * the policy. Returns 0, -EINVAL (max_ticks 0) or an error of cron_next. */
int schedule_misfire_plan(const struct schedule *s, int64_t last_fire_us, int64_t now_us,
                          size_t max_ticks,
                          void (*cb)(const struct schedule *s, int64_t tick_us, bool fire,
                                     const char *reason, void *data),
                          void *data);

/* The job id of the tick of schedule name at fire_us: a valid UUIDv7 whose time is the
 * fire time and whose other bits come from SHA-256(name, fire time), so the same tick
 * always gets the same id. */
int schedule_job_id(const char *name, int64_t fire_us, char out[UUID_STR_LEN]);

/* Builds the descriptor JSON text for a tick: the template plus id, schedule,
 * scheduled_for, created_at (now_us), submitted_by "scheduler", and not_after when
 * not_after_us != INT64_MAX. Caller frees *ret_text with free(). Validated with
 * descriptor_parse before it is returned. */
int schedule_build_descriptor(const struct schedule *s, int64_t tick_us, int64_t not_after_us,
                              int64_t now_us, char **ret_text, struct errbuf *eb);
