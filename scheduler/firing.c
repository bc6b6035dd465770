/* The firing loop (see firing.h). Each schedule has a struct sstate in an array sorted by
 * name, with its heap item keyed by the next fire. A due tick becomes a struct tick_op, a
 * small state machine that lives until its last reply: window check, then (forbid/replace)
 * a look at the previous job's row in Postgres, then the fire script. An op holds the
 * schedule's name, not a pointer, because a reload may replace the set while it waits.
 *
 * Where a new leader starts: the fire script raises <prefix>:sched:last to every tick it
 * handles (fired, paused, skipped) and <prefix>:sched:fired to every tick it fires. On
 * election both hashes are read; ticks in (last, now] go through the schedule's misfire plan
 * (the fired dedupe key makes a tick that the old leader did fire a no-op), and the job id of
 * the last fired tick is what forbid/replace ask about. */
#include "firing.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "cron.h"
#include "fire_log.h"
#include "leader.h"
#include "log.h"
#include "parse.h"
#include "redis.h"
#include "rq_scripts.h"
#include "sched_doc.h"
#include "sched_fire.h"
#include "sched_heap.h"
#include "store.h"

#define NO_TIME INT64_MIN
#define CANCEL_TTL_MS (24LL * 3600 * 1000)

struct sstate {
    struct sched_heap_item hi;  /* key = next fire; pos NONE when it has none */
    const struct schedule *s;   /* borrowed from firing.set */
    int64_t fired_tick_us;      /* the last tick fired (NO_TIME: none known) */
    char fired_job[UUID_STR_LEN];
    int64_t handover_last_us;   /* scratch during election: sched:last, NO_TIME if absent */
};

enum op_stage { OP_CHECKING, OP_FIRING, OP_SKIPPING };

struct tick_op {
    struct tick_op *prev, *next;
    struct firing *f;
    char *name;   /* owned */
    int64_t tick_us;
    int64_t not_after_us;
    bool catchup; /* from a misfire plan rather than the timer */
    enum op_stage stage;
    char job_id[UUID_STR_LEN];
    const char *skip_outcome; /* for OP_SKIPPING: recorded once Redis has it */
    char reason[200];
};

struct firing {
    struct firing_config cfg;
    struct schedule_set *set; /* owned */
    struct sstate *states;    /* owned, n of them, sorted by schedule name */
    size_t n;
    struct sched_heap heap;
    struct event *timer; /* owned */
    bool active;         /* elected and caught up: the timer runs */
    struct tick_op *ops; /* in flight, owned */
    struct redis_script fire;
};

static int cmp_state(const void *a, const void *b)
{
    return strcmp(((const struct sstate *)a)->s->name, ((const struct sstate *)b)->s->name);
}

static struct sstate *find_state(struct firing *f, const char *name, size_t len)
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

static void op_free(struct tick_op *op)
{
    struct firing *f = op->f;

    if (op->prev)
        op->prev->next = op->next;
    else
        f->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    free(op->name);
    free(op);
}

static int64_t next_of(const struct sstate *st)
{
    return st->hi.pos == SCHED_HEAP_NONE ? NO_TIME : st->hi.key;
}

static void record(struct firing *f, const struct sstate *st, const char *name, int64_t tick_us,
                   const char *outcome, const char *reason, const char *job_id)
{
    if (fire_log_tick(f->cfg.log, name, tick_us, outcome, reason, job_id,
                      st ? next_of(st) : NO_TIME) < 0)
        log_error("schedule %s: out of memory recording a tick", name);
}

static void tick_text(int64_t us, char buf[CLOCK_RFC3339_MAX])
{
    clock_format_rfc3339(us, buf);
}

/* ---- the fire script ---------------------------------------------------------------- */

static void on_script(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct tick_op *op = data;
    struct firing *f = op->f;
    struct sstate *st = find_state(f, op->name, strlen(op->name));
    char when[CLOCK_RFC3339_MAX];

    tick_text(op->tick_us, when);
    if (!reply) {
        /* Redis broke: the lease is gone too; the next leader's misfire plan covers this
         * tick, and the dedupe key keeps it single if it did run. */
        log_warn("schedule %s: tick %s got no answer from redis", op->name, when);
        goto out;
    }
    if (reply->type != REDIS_REPLY_INTEGER) {
        log_error("schedule %s: tick %s: fire script failed: %s", op->name, when,
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        goto out;
    }
    if (op->stage == OP_SKIPPING) {
        record(f, st, op->name, op->tick_us, op->skip_outcome, op->reason, NULL);
        goto out;
    }
    switch (reply->integer) {
    case SCHED_FIRE_FIRED:
    case SCHED_FIRE_DUPLICATE:
        if (reply->integer == SCHED_FIRE_FIRED) {
            log_debug("schedule %s: fired tick %s as job %s%s", op->name, when, op->job_id,
                      op->catchup ? " (catch-up)" : "");
            record(f, st, op->name, op->tick_us, "fired",
                   op->catchup ? "misfire catch-up" : NULL, op->job_id);
        } else {
            log_debug("schedule %s: tick %s was already fired", op->name, when);
        }
        /* Either way this tick's job is the one the concurrency policies ask about. */
        if (st && (st->fired_tick_us == NO_TIME || st->fired_tick_us < op->tick_us)) {
            st->fired_tick_us = op->tick_us;
            memcpy(st->fired_job, op->job_id, UUID_STR_LEN);
        }
        break;
    case SCHED_FIRE_PAUSED:
        record(f, st, op->name, op->tick_us, "skipped", "paused", NULL);
        break;
    default:
        log_error("schedule %s: fire script answered %lld", op->name,
                  (long long)reply->integer);
        break;
    }
out:
    op_free(op);
}

static void op_skip(struct tick_op *op, const char *outcome)
{
    struct firing *f = op->f;
    struct rq_args a = {0};

    op->stage = OP_SKIPPING;
    op->skip_outcome = outcome;
    if (!leader_is_leader(f->cfg.leader)) {
        op_free(op);
        return;
    }
    if (sched_skip_args(&a, f->cfg.prefix, op->name, op->tick_us) < 0 ||
        redis_conn_script(f->cfg.rc, &f->fire, on_script, op, SCHED_FIRE_NUMKEYS, a.argc,
                          a.cargv, a.argvlen) < 0) {
        log_error("schedule %s: cannot send a skip record", op->name);
        op_free(op);
    }
    rq_args_release(&a);
}

static void op_fire(struct tick_op *op)
{
    struct firing *f = op->f;
    struct sstate *st = find_state(f, op->name, strlen(op->name));
    struct rq_args a = {0};
    struct errbuf eb = {{0}};
    int64_t delay_ms = 0;
    int r;

    op->stage = OP_FIRING;
    /* No fire without the lease: a deposed leader's late op is the new leader's tick. */
    if (!st || !leader_is_leader(f->cfg.leader)) {
        op_free(op);
        return;
    }
    if (st->s->jitter_us > 0)
        delay_ms = (int64_t)arc4random_uniform((uint32_t)(st->s->jitter_us / 1000 + 1));
    r = sched_fire_args(&a, f->cfg.prefix, st->s, op->tick_us, op->not_after_us,
                        clock_now_us(), delay_ms,
                        SCHED_FIRE_CHECK_PAUSED | SCHED_FIRE_RECORD_LAST, op->job_id, &eb);
    if (r == 0)
        r = redis_conn_script(f->cfg.rc, &f->fire, on_script, op, SCHED_FIRE_NUMKEYS, a.argc,
                              a.cargv, a.argvlen);
    rq_args_release(&a);
    if (r < 0) {
        log_error("schedule %s: cannot fire: %s", op->name, eb.msg[0] ? eb.msg : strerror(-r));
        op_free(op);
    }
}

/* ---- concurrency: the previous job ---------------------------------------------------- */

static void cancel_previous(struct tick_op *op, const struct sstate *st)
{
    struct firing *f = op->f;
    char key[RQ_KEY_MAX], when[CLOCK_RFC3339_MAX], why[96];

    tick_text(op->tick_us, when);
    snprintf(why, sizeof(why), "replaced by tick %s", when);
    if (rq_key(key, sizeof(key), f->cfg.prefix, "cancel", st->fired_job) < 0 ||
        redis_conn_command(f->cfg.rc, NULL, NULL, "SET %s %s PX %lld", key, why,
                           (long long)CANCEL_TTL_MS) < 0) {
        log_error("schedule %s: cannot ask job %s to stop", op->name, st->fired_job);
        return;
    }
    fire_log_replaced(f->cfg.log, op->name, st->fired_tick_us, why);
    log_info("schedule %s: job %s replaced by tick %s", op->name, st->fired_job, when);
}

static void on_previous(struct store *db, const PGresult *res, void *data)
{
    struct tick_op *op = data;
    struct sstate *st = find_state(op->f, op->name, strlen(op->name));
    bool finished = false;
    char when[CLOCK_RFC3339_MAX];

    if (!st) {
        op_free(op);
        return;
    }
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* Postgres cannot say: fire (see the forbid note in op_start). */
        log_warn("schedule %s: cannot read the previous job's state (%s): firing anyway",
                 op->name, res ? PQresultErrorMessage(res) : "postgres unreachable");
        finished = true;
    } else if (PQntuples(res) == 1) {
        const char *status = PQgetvalue(res, 0, 0);

        /* failed, timeout and cancelled rows are followed by a retry: not over yet. */
        finished = strcmp(status, "failed") != 0 && strcmp(status, "timeout") != 0 &&
                   strcmp(status, "cancelled") != 0;
    }
    if (!finished) {
        if (st->s->concurrency == SCHEDULE_CONCURRENCY_FORBID) {
            tick_text(st->fired_tick_us, when);
            snprintf(op->reason, sizeof(op->reason),
                     "concurrency forbid: job %s of tick %s has not finished", st->fired_job,
                     when);
            log_info("schedule %s: %s", op->name, op->reason);
            op_skip(op, "skipped");
            return;
        }
        cancel_previous(op, st);
    }
    op_fire(op);
}

/* ---- a tick -------------------------------------------------------------------------- */

static void op_start(struct firing *f, struct sstate *st, int64_t tick_us, bool catchup)
{
    struct tick_op *op = calloc(1, sizeof(*op));
    const char *values[1];
    int r;

    if (op)
        op->name = strdup(st->s->name);
    if (!op || !op->name) {
        free(op);
        log_error("schedule %s: out of memory at a tick", st->s->name);
        return;
    }
    op->f = f;
    op->tick_us = tick_us;
    op->catchup = catchup;
    op->next = f->ops;
    if (f->ops)
        f->ops->prev = op;
    f->ops = op;

    r = schedule_window_at(st->s, tick_us, &op->not_after_us);
    if (r == 0) {
        snprintf(op->reason, sizeof(op->reason), "outside the maintenance window");
        log_info("schedule %s: tick outside its maintenance window", op->name);
        op_skip(op, "missed_window");
        return;
    }
    if (r < 0) {
        log_error("schedule %s: window check failed: %s", op->name, strerror(-r));
        op_free(op);
        return;
    }
    if (st->s->concurrency == SCHEDULE_CONCURRENCY_ALLOW || st->fired_tick_us == NO_TIME ||
        st->fired_tick_us >= tick_us) {
        op_fire(op);
        return;
    }
    /* forbid/replace: has the previous tick's job written a final row? When Postgres is
     * not connected this does not wait for it: firing needs only Redis, and a missed
     * maintenance run is judged worse than an overlapping one (forbid then behaves as
     * allow until Postgres is back; the job's own lock, if it has one, still holds). */
    if (!store_ready(f->cfg.db)) {
        on_previous(f->cfg.db, NULL, op);
        return;
    }
    op->stage = OP_CHECKING;
    values[0] = st->fired_job;
    if (store_query(f->cfg.db, "SELECT status FROM maintq.jobs WHERE job_id = $1::uuid", 1,
                    values, on_previous, op) < 0)
        on_previous(f->cfg.db, NULL, op);
}

/* ---- the timer ----------------------------------------------------------------------- */

static void arm(struct firing *f)
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

/* Moves st to its next fire after after_us (or out of the heap when it has none). */
static void requeue(struct firing *f, struct sstate *st, int64_t after_us)
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

static void run_due(struct firing *f)
{
    int64_t now = clock_now_us();
    struct sched_heap_item *top;

    while (f->active && (top = sched_heap_top(&f->heap)) && top->key <= now) {
        struct sstate *st = (struct sstate *)top;
        int64_t tick = top->key;

        requeue(f, st, tick);
        op_start(f, st, tick, false);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct firing *f = arg;

    run_due(f);
    arm(f);
}

/* ---- election ------------------------------------------------------------------------ */

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
        op_start(pc->f, pc->st, tick_us, true);
    else
        record(pc->f, pc->st, s->name, tick_us, "missed", reason ? reason : "misfire policy",
               NULL);
}

/* Applies every schedule's misfire policy from where the last leader got to, then starts
 * the timer. */
static void catch_up(struct firing *f)
{
    int64_t now = clock_now_us();
    size_t planned = 0;

    for (size_t i = 0; i < f->n; i++) {
        struct sstate *st = &f->states[i];
        int64_t last = st->handover_last_us;

        if (last != NO_TIME && last < now) {
            struct plan_ctx pc = {.f = f, .st = st, .latest_us = NO_TIME};

            /* the next fire must be set first: records carry it */
            requeue(f, st, now);
            if (schedule_misfire_plan(st->s, last, now, FIRING_MISFIRE_MAX_TICKS, on_plan_tick,
                                      &pc) < 0)
                log_error("schedule %s: misfire plan failed", st->s->name);
            /* Ticks only recorded as missed must not be planned again next election. */
            if (pc.latest_us != NO_TIME && !pc.latest_fired) {
                struct tick_op *op = calloc(1, sizeof(*op));

                if (op && (op->name = strdup(st->s->name))) {
                    op->f = f;
                    op->tick_us = pc.latest_us;
                    op->next = f->ops;
                    if (f->ops)
                        f->ops->prev = op;
                    f->ops = op;
                    snprintf(op->reason, sizeof(op->reason), "misfire policy");
                    op_skip(op, "missed");
                } else {
                    free(op);
                }
            }
            planned += pc.latest_us != NO_TIME;
        } else {
            requeue(f, st, last != NO_TIME && last > now ? last : now);
        }
    }
    f->active = true;
    log_info("leader: %zu schedules armed, %zu caught up after a gap", f->n, planned);
    arm(f);
}

static void on_fired_hash(struct redis_conn *rc, struct redisReply *reply, void *data);

static void on_last_hash(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct firing *f = data;

    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return; /* deposed meanwhile, or an error: the next election tries again */
    for (size_t i = 0; i < f->n; i++)
        f->states[i].handover_last_us = NO_TIME;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *k = reply->element[i], *v = reply->element[i + 1];
        struct sstate *st;
        int64_t ms;

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        st = find_state(f, k->str, k->len);
        if (st && parse_int64(v->str, 0, INT64_MAX / 1000, &ms) == 0)
            st->handover_last_us = ms * 1000;
    }
}

static void on_fired_hash(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct firing *f = data;

    if (!reply || reply->type != REDIS_REPLY_ARRAY || !leader_is_leader(f->cfg.leader) ||
        f->active)
        return;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *k = reply->element[i], *v = reply->element[i + 1];
        struct sstate *st;
        int64_t ms;

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        st = find_state(f, k->str, k->len);
        if (!st || parse_int64(v->str, 0, INT64_MAX / 1000, &ms) < 0)
            continue;
        if (st->fired_tick_us == NO_TIME || st->fired_tick_us < ms * 1000) {
            if (schedule_job_id(st->s->name, ms * 1000, st->fired_job) == 0)
                st->fired_tick_us = ms * 1000;
        }
        /* A leader that died between a fire and its Postgres record lost that record;
         * its last fired tick is the only one that can be in that state, and the insert
         * is a no-op when the row exists. */
        if (st->fired_tick_us == ms * 1000)
            record(f, st, st->s->name, st->fired_tick_us, "fired", NULL, st->fired_job);
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

void firing_deposed(struct firing *f)
{
    f->active = false;
    evtimer_del(f->timer);
}

/* ---- loading ------------------------------------------------------------------------- */

static void write_definitions(struct firing *f)
{
    struct sched_doc_cache cache = {0};

    /* In the set's order (file by file), so the document cache reads each file once. */
    for (size_t i = 0; i < f->set->n; i++) {
        const struct schedule *s = f->set->items[i];
        const struct sstate *st = find_state(f, s->name, strlen(s->name));
        int64_t next = st ? next_of(st) : NO_TIME;
        char *doc = sched_doc_json(s, &cache);

        if (!doc) {
            log_warn("schedule %s: its file no longer holds it; definition not recorded",
                     s->name);
            continue;
        }
        if (next == NO_TIME && cron_next(s->cron, s->zone, clock_now_us(), &next) < 0)
            next = NO_TIME;
        if (fire_log_definition(f->cfg.log, s->name, s->cron_text, s->zone_name, doc,
                                s->paused, next) < 0)
            log_error("schedule %s: out of memory writing its definition", s->name);
        free(doc);
    }
    sched_doc_cache_release(&cache);
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
        states[i].fired_tick_us = NO_TIME;
        states[i].handover_last_us = NO_TIME;
    }
    qsort(states, set->n, sizeof(*states), cmp_state);
    for (size_t i = 0; i < set->n; i++) {
        struct sstate *st = &states[i], *old = find_state(f, st->s->name, strlen(st->s->name));

        if (!old)
            continue;
        st->fired_tick_us = old->fired_tick_us;
        memcpy(st->fired_job, old->fired_job, UUID_STR_LEN);
        st->handover_last_us = old->handover_last_us;
        if (old->hi.pos != SCHED_HEAP_NONE && strcmp(old->s->cron_text, st->s->cron_text) == 0 &&
            strcmp(old->s->zone_name, st->s->zone_name) == 0)
            st->hi.key = old->hi.key; /* unchanged timing: keep the pending tick */
        else
            st->hi.key = NO_TIME;
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

            if (st->hi.key != NO_TIME) {
                if (sched_heap_push(&f->heap, &st->hi) < 0)
                    log_error("schedule %s: out of memory: no further fires", st->s->name);
            } else {
                requeue(f, st, now);
            }
        }
    }
    write_definitions(f);
    arm(f);
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
    while (f->ops)
        op_free(f->ops);
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
