/* The firing loop (see firing.h): the table of schedule states, the timer and loading.
 * Each schedule has a struct sstate in an array sorted by name (found by binary search, as
 * replies and reloads know schedules by name), with its heap item keyed by the next fire;
 * one libevent timer is set to the top of the heap. When it goes off, every due tick is
 * handed to firing_tick.c, unless it is due longer ago than the grace: then the process
 * was suspended or the clock jumped, and firing_catchup.c puts that schedule's due ticks
 * through its misfire plan, the same one a new leader applies to the ticks it missed. A
 * reload swaps the table and keeps each unchanged schedule's pending tick. */
#include "firing.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "cron.h"
#include "fire_log.h"
#include "firing_int.h"
#include "log.h"
#include "rq_scripts.h"

static int cmp_state(const void *a, const void *b)
{
    return strcmp(((const struct sstate *)a)->s->name, ((const struct sstate *)b)->s->name);
}

struct sstate *firing_find_state(struct firing *f, const char *name, size_t len)
{
    size_t lo = 0, hi = f->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *m = f->states[mid].s->name;
        int c = strncmp(name, m, len);

        if (c == 0 && m[len] != '\0')
            c = -1;
        if (c == 0)
            return &f->states[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int64_t next_of(const struct sstate *st)
{
    return st->hi.pos == SCHED_HEAP_NONE ? FIRING_NO_TIME : st->hi.key;
}

void firing_record(struct firing *f, const struct sstate *st, const char *name, int64_t tick_us,
                   const char *outcome, const char *reason, const char *job_id)
{
    if (fire_log_tick(f->cfg.log, name, tick_us, outcome, reason, job_id,
                      st ? next_of(st) : FIRING_NO_TIME) < 0)
        log_error("schedule %s: out of memory recording a tick", name);
}

/* ---- the timer ----------------------------------------------------------------------- */

void firing_arm(struct firing *f)
{
    struct sched_heap_item *top = sched_heap_top(&f->heap);
    int64_t delay;
    struct timeval tv;

    if (!f->active || !top) {
        evtimer_del(f->timer);
        return;
    }
    delay = top->key - clock_now_us();
    if (delay < 0)
        delay = 0;
    tv.tv_sec = (time_t)(delay / USEC_PER_SEC);
    tv.tv_usec = (suseconds_t)(delay % USEC_PER_SEC);
    evtimer_add(f->timer, &tv);
}

void firing_requeue(struct firing *f, struct sstate *st, int64_t after_us)
{
    int64_t next;

    if (st->hi.pos != SCHED_HEAP_NONE)
        sched_heap_remove(&f->heap, &st->hi);
    if (cron_next(st->s->cron, st->s->zone, after_us, &next) < 0)
        return;
    st->hi.key = next;
    if (sched_heap_push(&f->heap, &st->hi) < 0)
        log_error("schedule %s: out of memory: no further fires", st->s->name);
}

/* Hands every tick due by now to firing_tick.c, or a schedule whose due tick is later than
 * the grace to its misfire plan. Lateness is measured against one reading of the clock, so
 * the time spent on a burst of due ticks does not make the last of them late. */
static void run_due(struct firing *f)
{
    int64_t now = clock_now_us();
    struct sched_heap_item *top;

    while (f->active && (top = sched_heap_top(&f->heap)) && top->key <= now) {
        struct sstate *st = (struct sstate *)top;
        int64_t tick = top->key;

        if (now - tick > f->cfg.late_grace_us) {
            firing_catch_up_late(f, st, tick, now);
            continue;
        }
        firing_requeue(f, st, tick);
        firing_tick_start(f, st, tick, false);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct firing *f = arg;

    run_due(f);
    firing_arm(f);
}

void firing_deposed(struct firing *f)
{
    f->active = false;
    evtimer_del(f->timer);
}

/* ---- loading ------------------------------------------------------------------------- */

/* Adds every schedule's row to the fire log: its definition is the text the loader kept
 * (struct schedule.definition), so nothing is read from the files again. */
static void write_definitions(struct firing *f)
{
    for (size_t i = 0; i < f->set->n; i++) {
        const struct schedule *s = f->set->items[i];
        const struct sstate *st = firing_find_state(f, s->name, strlen(s->name));
        int64_t next = st ? next_of(st) : FIRING_NO_TIME;

        if (next == FIRING_NO_TIME && cron_next(s->cron, s->zone, clock_now_us(), &next) < 0)
            next = FIRING_NO_TIME;
        if (fire_log_definition(f->cfg.log, s->name, s->cron_text, s->zone_name, s->definition,
                                s->paused, next) < 0)
            log_error("schedule %s: out of memory writing its definition", s->name);
    }
}

int firing_load(struct firing *f, struct schedule_set *set)
{
    struct sstate *states = calloc(set->n ? set->n : 1, sizeof(*states));
    int64_t now = clock_now_us();

    if (!states) {
        schedule_set_free(set);
        return -ENOMEM;
    }
    /* Ticks already due belong to the old set: fire them before it goes. */
    run_due(f);
    for (size_t i = 0; i < set->n; i++) {
        states[i].s = set->items[i];
        states[i].hi.pos = SCHED_HEAP_NONE;
        states[i].fired_tick_us = FIRING_NO_TIME;
        states[i].handover_last_us = FIRING_NO_TIME;
    }
    qsort(states, set->n, sizeof(*states), cmp_state);
    for (size_t i = 0; i < set->n; i++) {
        struct sstate *st = &states[i];
        struct sstate *old = firing_find_state(f, st->s->name, strlen(st->s->name));

        if (!old)
            continue;
        st->fired_tick_us = old->fired_tick_us;
        memcpy(st->fired_job, old->fired_job, UUID_STR_LEN);
        st->handover_last_us = old->handover_last_us;
        if (old->hi.pos != SCHED_HEAP_NONE && strcmp(old->s->cron_text, st->s->cron_text) == 0 &&
            strcmp(old->s->zone_name, st->s->zone_name) == 0)
            st->hi.key = old->hi.key; /* unchanged timing: keep the pending tick */
        else
            st->hi.key = FIRING_NO_TIME;
    }
    sched_heap_release(&f->heap);
    free(f->states);
    schedule_set_free(f->set);
    f->set = set;
    f->states = states;
    f->n = set->n;
    if (f->active) {
        for (size_t i = 0; i < f->n; i++) {
            struct sstate *st = &f->states[i];

            if (st->hi.key != FIRING_NO_TIME) {
                if (sched_heap_push(&f->heap, &st->hi) < 0)
                    log_error("schedule %s: out of memory: no further fires", st->s->name);
            } else {
                firing_requeue(f, st, now);
            }
        }
    }
    write_definitions(f);
    firing_arm(f);
    return 0;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

int firing_new(struct event_base *base, const struct firing_config *cfg, struct firing **ret)
{
    struct firing *f = calloc(1, sizeof(*f));
    int r = -ENOMEM;

    if (!f)
        return -ENOMEM;
    f->cfg = *cfg;
    f->timer = evtimer_new(base, on_timer, f);
    if (!f->timer)
        goto fail;
    r = redis_script_init(&f->fire, rq_lua_fire);
    if (r < 0)
        goto fail;
    *ret = f;
    return 0;
fail:
    firing_free(f);
    return r;
}

struct firing *firing_free(struct firing *f)
{
    if (!f)
        return NULL;
    firing_ticks_free(f);
    if (f->timer)
        event_free(f->timer);
    sched_heap_release(&f->heap);
    free(f->states);
    schedule_set_free(f->set);
    free(f);
    return NULL;
}

size_t firing_count(const struct firing *f)
{
    return f->n;
}
