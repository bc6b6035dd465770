/* The arguments of one scheduler tick for the rq_lua_fire script (core/rq_scripts.h),
 * shared by maintq-scheduler and `maintq schedules run-now` so that both enqueue a tick the
 * same way: the job id derived from the schedule and the tick, the descriptor built from
 * the schedule's template, the tick deduped in Redis. Nothing here talks to Redis. */
#pragma once

#include <stdint.h>

#include "resp.h"
#include "rq.h"
#include "schedule.h"

/* KEYS count of rq_lua_fire. */
#define SCHED_FIRE_NUMKEYS 6
/* How long a tick's dedupe key lives: longer than any handover or misfire catch-up. */
#define SCHED_FIRE_DEDUPE_MS (7LL * 24 * 3600 * 1000)

/* rq_lua_fire's answers. */
enum sched_fire_result {
    SCHED_FIRE_DUPLICATE = 0,
    SCHED_FIRE_FIRED = 1,
    SCHED_FIRE_PAUSED = 2,
    SCHED_FIRE_SKIP_RECORDED = 3,
};

enum sched_fire_flags {
    SCHED_FIRE_CHECK_PAUSED = 1 << 0, /* honour the paused hash and the file's paused */
    SCHED_FIRE_RECORD_LAST = 1 << 1,  /* raise the schedule's last fire to this tick */
};

/* Adds to a (empty on entry; the caller releases it with resp_cmd_release(), also on
 * failure) the KEYS and ARGV of a "fire" call for tick tick_us (whole milliseconds) of s. not_after_us
 * is the window end or INT64_MAX; delay_ms the jitter chosen for this tick (0 = none).
 * Writes the job id to ret_job_id. Returns 0, -EINVAL (the descriptor does not build: eb
 * says why), -ENAMETOOLONG or -ENOMEM. */
int sched_fire_args(struct resp_cmd *a, const char *prefix, const struct schedule *s,
                    int64_t tick_us, int64_t not_after_us, int64_t now_us, int64_t delay_ms,
                    unsigned flags, char ret_job_id[UUID_STR_LEN], struct errbuf *eb);

/* Adds to a the KEYS and ARGV of a "skip" call: raises the schedule's last fire to tick_us without a job.
 * Returns 0, -ENAMETOOLONG or -ENOMEM. */
int sched_skip_args(struct resp_cmd *a, const char *prefix, const char *name, int64_t tick_us);
