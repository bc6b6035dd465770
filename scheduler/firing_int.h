/* What the three files of the firing loop share, and nothing outside them includes:
 * firing.c holds the schedule table, the timer and loading; firing_tick.c the life of one
 * tick (window, concurrency policy, fire script, records); firing_catchup.c the ticks that
 * were missed, by a leader change or by a late wake-up, which go through the misfire plan.
 * The structs live here because all three read a schedule's state; each file changes only
 * the fields its comment names. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "firing.h"
#include "redis.h"
#include "sched_heap.h"
#include "uuid.h"

/* "No such time": a schedule without a next fire, or no fire known. */
#define FIRING_NO_TIME INT64_MIN

struct event;
struct tick_op;

struct sstate {
    struct sched_heap_item hi;  /* key = next fire; pos NONE when it has none (firing.c) */
    const struct schedule *s;   /* borrowed from firing.set */
    int64_t fired_tick_us;      /* the last tick fired (FIRING_NO_TIME: none known) */
    char fired_job[UUID_STR_LEN];
    int64_t handover_last_us;   /* scratch during election: sched:last, FIRING_NO_TIME if absent */
};

struct firing {
    struct firing_config cfg;
    struct schedule_set *set; /* owned */
    struct sstate *states;    /* owned, n of them, sorted by schedule name */
    size_t n;
    struct sched_heap heap;
    struct event *timer; /* owned */
    bool active;         /* elected and caught up: the timer runs */
    struct tick_op *ops; /* in flight, owned (firing_tick.c) */
    struct redis_script fire;
};

/* ---- firing.c ---- */

/* The state of the schedule whose name is the first len bytes of name, or NULL. */
struct sstate *firing_find_state(struct firing *f, const char *name, size_t len);
/* Writes a handled tick to the fire log; st (NULL when the schedule is gone) gives the next
 * fire. Strings are borrowed for the call. */
void firing_record(struct firing *f, const struct sstate *st, const char *name, int64_t tick_us,
                   const char *outcome, const char *reason, const char *job_id);
/* Moves st to its next fire after after_us (or out of the heap when it has none). */
void firing_requeue(struct firing *f, struct sstate *st, int64_t after_us);
/* Sets the timer to the earliest next fire, or stops it when inactive or nothing is due. */
void firing_arm(struct firing *f);

/* ---- firing_tick.c ---- */

/* Starts handling tick tick_us of st: window check, concurrency policy, fire script, record.
 * catchup marks a tick a misfire plan chose to run (its fired record says so). Errors are
 * logged and drop the tick. */
void firing_tick_start(struct firing *f, struct sstate *st, int64_t tick_us, bool catchup);
/* Raises the schedule's last fire in Redis to tick_us without a job (so no later leader
 * plans it again), then records the tick as missed with reason (copied). */
void firing_tick_missed(struct firing *f, const struct sstate *st, int64_t tick_us,
                        const char *reason);
/* Drops every tick in flight (their replies, if any come, must not reach them: free the
 * Redis and Postgres connections first). */
void firing_ticks_free(struct firing *f);

/* ---- firing_catchup.c ---- */

/* The tick at the top of the heap, first_tick_us of st, is due and more than the grace
 * late at now_us: the process was suspended or the clock jumped. Every due tick of st goes
 * through its misfire plan, and st moves to its next fire after now_us. */
void firing_catch_up_late(struct firing *f, struct sstate *st, int64_t first_tick_us,
                          int64_t now_us);
