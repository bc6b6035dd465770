/* Missed ticks: the ones no scheduler fired on time, which go through the schedule's
 * misfire plan (schedule_misfire_plan: skip, run_once or run_all within the starting
 * deadline) instead of all firing at once. Three gaps lead here, and all take the same path,
 * plan_missed():
 *  - a leader change: the fire script raises <prefix>:sched:last to every tick it handles
 *    (fired, paused, skipped) and <prefix>:sched:fired to every tick it fires. On election
 *    both hashes are read; ticks in (last, now] are planned (the fired dedupe key makes a
 *    tick that the old leader did fire a no-op), and the job id of the last fired tick is
 *    what forbid/replace ask about;
 *  - a lapse of the lease on the leader's own clock that ends in a successful renewal
 *    (leader.h, reconfirmed): ticks it saw due meanwhile were dropped for want of the lease,
 *    and nobody else fired them; the same election catch-up runs again;
 *  - a late wake-up of the leader itself: the process was suspended (SIGSTOP, a paused VM)
 *    or the wall clock jumped forward, so the timer finds ticks due longer ago than the
 *    grace (firing_config.late_grace_us). Ticks within the grace are ordinary timer delay
 *    and fire as usual (firing.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "firing_int.h"
#include "leader.h"
#include "log.h"
#include "parse.h"
#include "rq.h"

struct plan_ctx {
    struct firing *f;
    struct sstate *st;
    int64_t latest_us;
    bool latest_fired;
};

static void on_plan_tick(const struct schedule *s, int64_t tick_us, bool fire,
                         const char *reason, void *data)
{
    struct plan_ctx *pc = data;

    if (tick_us >= pc->latest_us) {
        pc->latest_us = tick_us;
        pc->latest_fired = fire;
    }
    if (fire)
        firing_tick_start(pc->f, pc->st, tick_us, true);
    else
        firing_record(pc->f, pc->st, s->name, tick_us, "missed",
                      reason ? reason : "misfire policy", NULL);
}

/* Puts the ticks of st in (last_us, now_us] through its misfire plan and moves st to its
 * next fire after now_us. Returns whether the plan had any tick. */
static bool plan_missed(struct firing *f, struct sstate *st, int64_t last_us, int64_t now_us)
{
    struct plan_ctx pc = {.f = f, .st = st, .latest_us = FIRING_NO_TIME};

    /* the next fire must be set first: records carry it */
    firing_requeue(f, st, now_us);
    if (schedule_misfire_plan(st->s, last_us, now_us, FIRING_MISFIRE_MAX_TICKS, on_plan_tick,
                              &pc) < 0)
        log_error("schedule %s: misfire plan failed", st->s->name);
    /* Ticks only recorded as missed must not be planned again next election. */
    if (pc.latest_us != FIRING_NO_TIME && !pc.latest_fired)
        firing_tick_missed(f, st, pc.latest_us, "misfire policy");
    return pc.latest_us != FIRING_NO_TIME;
}

/* ---- a late wake-up ------------------------------------------------------------------ */

void firing_catch_up_late(struct firing *f, struct sstate *st, int64_t first_tick_us,
                          int64_t now_us)
{
    char when[CLOCK_RFC3339_MAX];

    if (!leader_is_leader(f->cfg.leader)) {
        /* A suspension can outlast the lease: these ticks are then the next leader's, or
         * ours again once the lease is renewed (elected or reconfirmed), planned from
         * sched:last either way. Recording them here could shadow that plan's record,
         * since the fire log keeps a tick's first row. */
        firing_requeue(f, st, now_us);
        return;
    }
    log_warn("schedule %s: tick %s is %" PRId64 " ms late (process suspended or clock "
             "jumped): its misfire policy decides",
             st->s->name, clock_format_rfc3339(first_tick_us, when),
             (now_us - first_tick_us) / 1000);
    /* Ticks are whole milliseconds, so first_tick_us - 1 is after the previous tick and the
     * plan starts at this one. */
    plan_missed(f, st, first_tick_us - 1, now_us);
}

/* ---- election ------------------------------------------------------------------------ */

/* Applies every schedule's misfire policy from where the last leader got to, then starts
 * the timer. */
static void catch_up(struct firing *f)
{
    int64_t now = clock_now_us();
    size_t planned = 0;

    for (size_t i = 0; i < f->n; i++) {
        struct sstate *st = &f->states[i];
        int64_t last = st->handover_last_us;

        if (last != FIRING_NO_TIME && last < now)
            planned += plan_missed(f, st, last, now);
        else
            firing_requeue(f, st, last != FIRING_NO_TIME && last > now ? last : now);
    }
    f->active = true;
    log_info("leader: %zu schedules armed, %zu caught up after a gap", f->n, planned);
    firing_arm(f);
}

/* Field i of an HGETALL reply of the sched:last or sched:fired hash (schedule name -> tick in
 * milliseconds): the schedule's state, with the tick in *ret_tick_us, or NULL when the field
 * is not a loaded schedule with a valid tick. */
static struct sstate *hash_entry(struct firing *f, const redisReply *reply, size_t i,
                                 int64_t *ret_tick_us)
{
    const redisReply *k = reply->element[i], *v = reply->element[i + 1];
    struct sstate *st;
    int64_t ms;

    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
        return NULL;
    st = firing_find_state(f, k->str, k->len);
    if (!st || parse_int64(v->str, 0, INT64_MAX / 1000, &ms) < 0)
        return NULL;
    *ret_tick_us = ms * 1000;
    return st;
}

static void on_last_hash(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct firing *f = data;

    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return; /* deposed meanwhile, or an error: the next election tries again */
    for (size_t i = 0; i < f->n; i++)
        f->states[i].handover_last_us = FIRING_NO_TIME;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        int64_t tick_us;
        struct sstate *st = hash_entry(f, reply, i, &tick_us);

        if (st)
            st->handover_last_us = tick_us;
    }
}

static void on_fired_hash(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct firing *f = data;

    if (!reply || reply->type != REDIS_REPLY_ARRAY || !leader_is_leader(f->cfg.leader) ||
        f->active)
        return;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        int64_t tick_us;
        struct sstate *st = hash_entry(f, reply, i, &tick_us);

        if (!st)
            continue;
        if (st->fired_tick_us == FIRING_NO_TIME || st->fired_tick_us < tick_us) {
            if (schedule_job_id(st->s->name, tick_us, st->fired_job) == 0)
                st->fired_tick_us = tick_us;
        }
        /* A leader that died between a fire and its Postgres record lost that record;
         * its last fired tick is the only one that can be in that state, and the insert
         * is a no-op when the row exists. */
        if (st->fired_tick_us == tick_us)
            firing_record(f, st, st->s->name, st->fired_tick_us, "fired", NULL, st->fired_job);
    }
    catch_up(f);
}

void firing_elected(struct firing *f)
{
    char last[RQ_KEY_MAX], fired[RQ_KEY_MAX];

    f->active = false;
    if (rq_key(last, sizeof(last), f->cfg.prefix, "sched:last", NULL) < 0 ||
        rq_key(fired, sizeof(fired), f->cfg.prefix, "sched:fired", NULL) < 0)
        return;
    /* Two commands in order on one connection: the second's reply finds the first's
     * result in the states. A NULL reply means Redis broke, and then the lease is gone. */
    if (redis_conn_command(f->cfg.rc, on_last_hash, f, "HGETALL %s", last) < 0 ||
        redis_conn_command(f->cfg.rc, on_fired_hash, f, "HGETALL %s", fired) < 0)
        log_error("leader: cannot read the last fires; waiting for the next election");
}
