/* The firing loop of maintq-scheduler: one libevent timer set to the earliest next fire of
 * all loaded schedules (a min-heap), and at each tick the checks (maintenance window,
 * concurrency policy, paused) and the rq_lua_fire script that dedupes the tick, enqueues the
 * job and records the last fire atomically in Redis. It only fires while the leader lease is
 * held: when elected it reads where the previous leader got to and applies each schedule's
 * misfire policy to the ticks in between; when deposed it stops at once. A tick the timer
 * finds due longer ago than the grace (the process was suspended, or the clock jumped) goes
 * through the same misfire plan rather than firing late. Every tick's outcome goes to the
 * fire log (Postgres), which never holds firing up. */
#pragma once

#include "schedule.h"

struct event_base;
struct fire_log;
struct firing;
struct leader;
struct redis_conn;
struct store;

/* Misfire plans look at no more than this many missed ticks per schedule. */
#define FIRING_MISFIRE_MAX_TICKS 10000
/* A tick fired at most this late is on time; a later one is a misfire. Generous beside timer
 * delay (milliseconds) so that a loop busy for a moment (a reload of many schedules under
 * load) does not turn run_once ticks into missed ones. */
#define FIRING_LATE_GRACE_DEFAULT_US (5LL * 1000 * 1000)

struct firing_config {
    const char *prefix;     /* borrowed: Redis key prefix */
    struct redis_conn *rc;  /* borrowed */
    struct store *db;       /* borrowed: asked about the previous job (forbid, replace) */
    struct fire_log *log;   /* borrowed */
    struct leader *leader;  /* borrowed: asked before every fire */
    int64_t late_grace_us;  /* a due tick later than this goes through the misfire plan */
};

/* Everything in cfg must outlive f; free f after the Redis and Postgres connections (their
 * freeing drops callbacks that point into f). Returns 0 or -ENOMEM. */
int firing_new(struct event_base *base, const struct firing_config *cfg, struct firing **ret);
struct firing *firing_free(struct firing *f);

/* Installs a schedule set (takes ownership, also on failure). On a reload, a schedule whose
 * cron and zone are unchanged keeps its pending next fire, so no tick is lost or doubled;
 * a new or changed one starts from now. Writes every definition to the fire log. Returns 0
 * or -ENOMEM (the old set stays). */
int firing_load(struct firing *f, struct schedule_set *set);

/* The lease was won, or renewed after it had lapsed on this process's clock (ticks seen due
 * meanwhile were dropped): read the last fires, apply misfire policies, start the timer. */
void firing_elected(struct firing *f);
/* The lease was lost: stop the timer now (ticks in flight are dropped before their fire). */
void firing_deposed(struct firing *f);

/* Schedules loaded. */
size_t firing_count(const struct firing *f);
