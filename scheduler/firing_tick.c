/* The life of one tick. A due tick becomes a struct tick_op, a small state machine that
 * lives until its last reply: the maintenance window check, then for forbid/replace a look at
 * the previous job's row in Postgres, then the fire script (which dedupes the tick, enqueues
 * the job and raises the last fire atomically) or, when the tick is not to run, the skip
 * script (which only raises the last fire); the outcome goes to the fire log once Redis has
 * answered. An op holds the schedule's name, not a pointer, because a reload may replace the
 * set while it waits, and nothing is sent without the lease: a deposed leader's late op is
 * the new leader's tick. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "fire_log.h"
#include "firing_int.h"
#include "leader.h"
#include "log.h"
#include "rq_scripts.h"
#include "sched_fire.h"
#include "store.h"

/* How long a replace's cancel request waits for the old job to look at it. */
#define CANCEL_TTL_MS (24LL * 3600 * 1000)

enum op_stage { OP_CHECKING, OP_FIRING, OP_SKIPPING };

struct tick_op {
    struct tick_op *prev, *next;
    struct firing *f; /* borrowed: the owner of the list */
    char *name;       /* owned */
    int64_t tick_us;
    int64_t not_after_us;
    bool catchup; /* from a misfire plan rather than the timer */
    enum op_stage stage;
    char job_id[UUID_STR_LEN];
    const char *skip_outcome; /* for OP_SKIPPING: recorded once Redis has it */
    char reason[200];
};

/* A new op for tick_us of the schedule called name, linked into f's list; NULL (logged)
 * when out of memory. */
static struct tick_op *op_new(struct firing *f, const char *name, int64_t tick_us)
{
    struct tick_op *op = calloc(1, sizeof(*op));

    if (op)
        op->name = strdup(name);
    if (!op || !op->name) {
        free(op);
        log_error("schedule %s: out of memory at a tick", name);
        return NULL;
    }
    op->f = f;
    op->tick_us = tick_us;
    op->next = f->ops;
    if (f->ops)
        f->ops->prev = op;
    f->ops = op;
    return op;
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

void firing_ticks_free(struct firing *f)
{
    while (f->ops)
        op_free(f->ops);
}

/* ---- the fire script ---------------------------------------------------------------- */

static void on_script(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct tick_op *op = data;
    struct firing *f = op->f;
    struct sstate *st = firing_find_state(f, op->name, strlen(op->name));
    char when[CLOCK_RFC3339_MAX];

    clock_format_rfc3339(op->tick_us, when);
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
        firing_record(f, st, op->name, op->tick_us, op->skip_outcome, op->reason, NULL);
        goto out;
    }
    switch (reply->integer) {
    case SCHED_FIRE_FIRED:
    case SCHED_FIRE_DUPLICATE:
        if (reply->integer == SCHED_FIRE_FIRED) {
            log_debug("schedule %s: fired tick %s as job %s%s", op->name, when, op->job_id,
                      op->catchup ? " (catch-up)" : "");
            firing_record(f, st, op->name, op->tick_us, "fired",
                          op->catchup ? "misfire catch-up" : NULL, op->job_id);
        } else {
            log_debug("schedule %s: tick %s was already fired", op->name, when);
        }
        /* Either way this tick's job is the one the concurrency policies ask about. */
        if (st && (st->fired_tick_us == FIRING_NO_TIME || st->fired_tick_us < op->tick_us)) {
            st->fired_tick_us = op->tick_us;
            memcpy(st->fired_job, op->job_id, UUID_STR_LEN);
        }
        break;
    case SCHED_FIRE_PAUSED:
        firing_record(f, st, op->name, op->tick_us, "skipped", "paused", NULL);
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
    struct resp_cmd a = {0};

    op->stage = OP_SKIPPING;
    op->skip_outcome = outcome;
    if (!leader_is_leader(f->cfg.leader)) {
        op_free(op);
        return;
    }
    if (sched_skip_args(&a, f->cfg.prefix, op->name, op->tick_us) < 0 ||
        redis_conn_script_send(f->cfg.rc, &f->fire, on_script, op, SCHED_FIRE_NUMKEYS, &a) < 0) {
        log_error("schedule %s: cannot send a skip record", op->name);
        op_free(op);
    }
    resp_cmd_release(&a);
}

static void op_fire(struct tick_op *op)
{
    struct firing *f = op->f;
    struct sstate *st = firing_find_state(f, op->name, strlen(op->name));
    struct resp_cmd a = {0};
    struct errbuf eb = {{0}};
    int64_t delay_ms = 0;
    int r;

    op->stage = OP_FIRING;
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
        r = redis_conn_script_send(f->cfg.rc, &f->fire, on_script, op, SCHED_FIRE_NUMKEYS, &a);
    resp_cmd_release(&a);
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

    clock_format_rfc3339(op->tick_us, when);
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
    struct sstate *st = firing_find_state(op->f, op->name, strlen(op->name));
    bool finished = false;
    char when[CLOCK_RFC3339_MAX];

    if (!st) {
        op_free(op);
        return;
    }
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* Postgres cannot say: fire (see the forbid note in firing_tick_start). */
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
            clock_format_rfc3339(st->fired_tick_us, when);
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

void firing_tick_start(struct firing *f, struct sstate *st, int64_t tick_us, bool catchup)
{
    struct tick_op *op = op_new(f, st->s->name, tick_us);
    const char *values[1];
    int r;

    if (!op)
        return;
    op->catchup = catchup;
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
    if (st->s->concurrency == SCHEDULE_CONCURRENCY_ALLOW || st->fired_tick_us == FIRING_NO_TIME ||
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

void firing_tick_missed(struct firing *f, const struct sstate *st, int64_t tick_us,
                        const char *reason)
{
    struct tick_op *op = op_new(f, st->s->name, tick_us);

    if (!op)
        return;
    snprintf(op->reason, sizeof(op->reason), "%s", reason);
    op_skip(op, "missed");
}
