/* The job run state machine (see runner.h). Callbacks named on_<event> record what
 * happened and call drive(); drive() is the only place that moves a run between states. */
#include "runner.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "descriptor.h"
#include "descriptor_sig.h"
#include "log.h"
#include "inflight.h"
#include "job_run.h"
#include "result_sink.h"
#include "rq_scripts.h"
#include "store.h"

#define LOCK_TTL_MS 30000
#define LOCK_RENEW_MS 10000
#define LOCK_WAIT_MS 1000

static const char *const run_state_names[] = {
    [RUN_NEW] = "new",
    [RUN_CHECKING] = "checking",
    [RUN_LOCKING] = "locking",
    [RUN_RUNNING] = "running",
    [RUN_RECORDING] = "recording",
    [RUN_FINISHING] = "finishing",
    [RUN_DONE] = "done",
};

static void drive(struct job_run *run);

struct job_run *runner_next(const struct job_run *run)
{
    return run->next;
}

bool runner_is_running(const struct job_run *run)
{
    return run->state == RUN_RUNNING && run->exec_active;
}

static void release_slot(struct job_run *run)
{
    if (run->occupies_slot) {
        run->occupies_slot = false;
        run->child->occupied--;
    }
}

void job_run_free(struct job_run *run)
{
    struct child *c = run->child;

    if (run->exec_active && run->type->cancel)
        run->type->cancel(&run->exec);
    release_slot(run);
    if (run->in_sink)
        c->unwritten--;
    if (run->prev)
        run->prev->next = run->next;
    else
        c->runs = run->next;
    if (run->next)
        run->next->prev = run->prev;
    if (run->timeout_assigned)
        event_del(&run->timeout_timer);
    if (run->lock) {
        event_del(&run->lock->timer);
        free(run->lock);
    }
    descriptor_free(run->d);
    json_decref(run->result);
    free(run->error);
    free(run->body);
    free(run->dead_reason);
    free(run);
}

static void set_error(struct job_run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(struct job_run *run, const char *fmt, ...)
{
    va_list ap;
    char buf[1024];

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    free(run->error);
    run->error = strdup(buf);
}

/* A full-jitter exponential backoff: uniform in [0, min(max, base * 2^(attempt-1))]. */
static int64_t backoff_ms(const struct descriptor *d, int64_t attempt)
{
    int64_t cap = d->backoff_base_s * 1000;
    uint32_t r;

    for (int64_t i = 1; i < attempt && cap < d->backoff_max_s * 1000; i++)
        cap *= 2;
    if (cap > d->backoff_max_s * 1000)
        cap = d->backoff_max_s * 1000;
    if (cap <= 0)
        return 0;
    r = arc4random();
    return (int64_t)((uint64_t)r % (uint64_t)(cap + 1));
}

static int set_delayed_body(struct job_run *run, int64_t attempt)
{
    free(run->body);
    run->body = rq_delayed_member(run->stream->queue, attempt, run->max_attempts, run->raw,
                                  run->raw_len, &run->body_len);
    return run->body ? 0 : -ENOMEM;
}

static int set_dead_body(struct job_run *run, const char *reason)
{
    free(run->body);
    free(run->dead_reason);
    run->body = malloc(run->raw_len + 1);
    run->dead_reason = strdup(reason);
    if (!run->body || !run->dead_reason)
        return -ENOMEM;
    memcpy(run->body, run->raw ? run->raw : "", run->raw_len);
    run->body[run->raw_len] = '\0';
    run->body_len = run->raw_len;
    run->action = FINISH_DEAD;
    return 0;
}

/* Decides what happens to the entry after the attempt ended with run->status. */
static void decide(struct job_run *run)
{
    enum job_status st = run->status;

    run->action = FINISH_ACK;
    if (!job_status_is_retryable(st) || run->replaced)
        return;
    if (st == JOB_STATUS_CANCELLED && run->shutdown_cancel) {
        /* A deploy is no fault of the job: it is retried whatever its attempt count, so
         * the entry's budget grows by the attempt the shutdown took. */
        run->action = FINISH_RETRY;
        run->delay_ms = 0;
        if (run->max_attempts < run->attempt + 1)
            run->max_attempts = run->attempt + 1;
        if (set_delayed_body(run, run->attempt + 1) < 0)
            run->action = FINISH_ACK;
        return;
    }
    if (run->attempt < run->max_attempts) {
        run->action = FINISH_RETRY;
        run->delay_ms = backoff_ms(run->d, run->attempt);
        if (set_delayed_body(run, run->attempt + 1) < 0)
            run->action = FINISH_ACK;
        return;
    }
    {
        char reason[1200];

        snprintf(reason, sizeof(reason), "%s after %" PRId64 " attempts: %s",
                 job_status_name(st), run->attempt, run->error ? run->error : "");
        run->status = JOB_STATUS_DEAD;
        set_error(run, "%s", reason);
        set_dead_body(run, reason);
    }
}

/* The attempt's row; its strings and JSON stay the run's (the sink copies what it keeps). */
static void fill_row(const struct job_run *run, struct result_row *row)
{
    const struct descriptor *d = run->d;

    *row = (struct result_row){
        .job_id = d->id,
        .type = d->type,
        .queue = d->queue,
        .status = job_status_name(run->status),
        .worker = run->child->consumer,
        .schedule = d->schedule,
        .error = run->error,
        .attempt = run->attempt,
        .has_scheduled_for = d->scheduled_for_us != DESCRIPTOR_TIME_UNSET,
        .scheduled_for_us = d->scheduled_for_us,
        .started_us = run->started_us,
        .finished_us = run->finished_us,
        .lock_fence = run->lock_fence,
        .params = d->params,
        .result = run->result,
    };
}

static void on_row_committed(void *data)
{
    struct job_run *run = data;

    run->in_sink = false;
    run->child->unwritten--;
    run->state = RUN_FINISHING;
    drive(run);
}

/* The attempt is over (or never started): record it, or go straight to finishing. */
static void conclude(struct job_run *run)
{
    struct child *c = run->child;
    bool freed_slot = run->occupies_slot;

    release_slot(run);
    if (run->lock)
        event_del(&run->lock->timer);
    if (run->timeout_assigned)
        event_del(&run->timeout_timer);
    if (run->finished_us == 0)
        run->finished_us = clock_now_us();
    if (run->started_us == 0)
        run->started_us = run->finished_us;
    if (run->has_row) {
        struct result_row row;

        fill_row(run, &row);
        run->in_sink = true;
        c->unwritten++;
        run->state = RUN_RECORDING;
        if (result_sink_add(c->sink, &row, on_row_committed, run) < 0) {
            log_error("job %s: out of memory queueing its row; entry left pending",
                      run->d->id);
            job_run_free(run);
            return;
        }
    } else {
        run->state = RUN_FINISHING;
        drive(run);
    }
    /* A slot came free: read the next entry now rather than after the row commits. */
    if (freed_slot)
        child_kick(c);
}

/* A verdict reached before any handler ran (bad entry, missed window, too many tries). */
static void conclude_early(struct job_run *run, enum job_status st, const char *error)
{
    run->status = st;
    if (error)
        set_error(run, "%s", error);
    run->has_row = run->d != NULL;
    if (st == JOB_STATUS_DEAD) {
        if (set_dead_body(run, error ? error : "dead") < 0)
            run->action = FINISH_ACK;
    } else {
        run->action = FINISH_ACK;
    }
    conclude(run);
}

static void on_exec_done(struct job_exec *x, enum job_status status, json_t *result,
                         const char *error)
{
    struct job_run *run = x->runner_data;

    run->exec_active = false;
    run->finished_us = clock_now_us();
    run->status = status;
    json_decref(run->result);
    run->result = result;
    free(run->error);
    run->error = error ? strdup(error) : NULL;
    decide(run);
    conclude(run);
}

void job_run_cancel(struct job_run *run, enum job_status st, const char *why, bool replaced)
{
    if (!run->exec_active)
        return;
    run->replaced = replaced;
    run->exec_active = false;
    if (run->type->cancel)
        run->type->cancel(&run->exec);
    run->finished_us = clock_now_us();
    run->status = st;
    json_decref(run->result);
    run->result = NULL;
    set_error(run, "%s", why);
    decide(run);
    conclude(run);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct job_run *run = arg;
    char why[64];

    snprintf(why, sizeof(why), "timed out after %" PRId64 "s", run->d->timeout_s);
    job_run_cancel(run, JOB_STATUS_TIMEOUT, why, false);
}

void runner_cancel_for_shutdown(struct job_run *run)
{
    if (run->state != RUN_RUNNING || !run->exec_active)
        return;
    run->shutdown_cancel = true;
    job_run_cancel(run, JOB_STATUS_CANCELLED, "cancelled: worker shutting down", false);
}

static void start_handler(struct job_run *run)
{
    struct child *c = run->child;
    struct errbuf eb = {{0}};
    struct timeval tv = {(time_t)run->d->timeout_s, 0};
    int r;

    run->state = RUN_RUNNING;
    run->has_row = true;
    run->exec.base = c->base;
    run->exec.children = c->children;
    run->exec.params = run->d->params;
    run->exec.env = &c->env;
    run->exec.job_id = run->d->id;
    run->exec.attempt = (int)run->attempt;
    run->exec.timeout_us = run->d->timeout_s * USEC_PER_SEC;
    run->exec.on_done = on_exec_done;
    run->exec.runner_data = run;
    run->started_us = clock_now_us();
    evtimer_assign(&run->timeout_timer, c->base, on_timeout, run);
    run->timeout_assigned = true;
    evtimer_add(&run->timeout_timer, &tv);
    run->exec_active = true;
    r = run->type->start(&run->exec, &eb);
    if (r < 0 && run->exec_active) {
        run->exec_active = false;
        run->finished_us = clock_now_us();
        run->status = JOB_STATUS_FAILED;
        set_error(run, "%s", eb.msg[0] ? eb.msg : strerror(-r));
        decide(run);
        conclude(run);
    }
}

/* --- locks ------------------------------------------------------------------------ */

static void send_lock_acquire(struct job_run *run);

static void on_lock_timer(evutil_socket_t fd, short what, void *arg)
{
    struct job_run *run = arg;
    struct child *c = run->child;
    struct timeval tv = {LOCK_RENEW_MS / 1000, 0};
    char ttl[16];
    const char *argv[3] = {run->lock->key, run->lock->token, ttl};
    size_t lens[3];

    if (run->state == RUN_LOCKING) {
        send_lock_acquire(run);
        return;
    }
    if (run->state != RUN_RUNNING)
        return;
    snprintf(ttl, sizeof(ttl), "%d", LOCK_TTL_MS);
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    /* Fire and forget: the run may end before the reply, so it passes no pointer. A lock
     * lost anyway (Redis restarted without persistence) shows as a fence gap. */
    redis_conn_script(c->rcmd, &c->s_lock_renew, NULL, NULL, 1, 3, argv, lens);
    evtimer_add(&run->lock->timer, &tv);
}

static void on_lock_acquired(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct job_run *run = data;
    struct timeval retry = {0, REDIS_RETRY_MS * 1000};

    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        /* Redis unreachable or confused: keep the slot and try again shortly. */
        evtimer_add(&run->lock->timer, &retry);
        return;
    }
    if (reply->integer > 0) {
        struct timeval tv = {LOCK_RENEW_MS / 1000, 0};

        run->lock_fence = reply->integer;
        evtimer_add(&run->lock->timer, &tv);
        start_handler(run);
        return;
    }
    /* Busy: wait in the delayed set without using an attempt, unless the window closed. */
    if (run->d->not_after_us != DESCRIPTOR_TIME_UNSET && clock_now_us() > run->d->not_after_us) {
        conclude_early(run, JOB_STATUS_MISSED_WINDOW, "lock stayed busy until not_after passed");
        return;
    }
    run->action = FINISH_DELAY;
    run->delay_ms = LOCK_WAIT_MS;
    if (set_delayed_body(run, run->attempt) < 0) {
        evtimer_add(&run->lock->timer, &retry);
        return;
    }
    run->has_row = false;
    conclude(run);
}

static void send_lock_acquire(struct job_run *run)
{
    struct child *c = run->child;
    char ttl[16];
    const char *argv[4] = {run->lock->key, run->lock->fence_key, run->lock->token, ttl};
    size_t lens[4];

    snprintf(ttl, sizeof(ttl), "%d", LOCK_TTL_MS);
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(argv[i]);
    if (redis_conn_script(c->rcmd, &c->s_lock_acquire, on_lock_acquired, run, 2, 4, argv,
                          lens) < 0) {
        struct timeval retry = {0, REDIS_RETRY_MS * 1000};

        evtimer_add(&run->lock->timer, &retry);
    }
}

static void start_locking(struct job_run *run)
{
    struct child *c = run->child;
    struct run_lock *l;

    run->state = RUN_LOCKING;
    l = run->lock = calloc(1, sizeof(*run->lock));
    if (!l) {
        conclude_early(run, JOB_STATUS_FAILED, "out of memory");
        return;
    }
    evtimer_assign(&l->timer, c->base, on_lock_timer, run);
    if (rq_key(l->key, sizeof(l->key), c->cfg->prefix, "lock", run->d->lock) < 0 ||
        snprintf(l->fence_key, sizeof(l->fence_key), "%s:fence", l->key) >=
            (int)sizeof(l->fence_key)) {
        conclude_early(run, JOB_STATUS_DEAD, "lock: key too long");
        return;
    }
    snprintf(l->token, sizeof(l->token), "%s:%s:%" PRId64, c->consumer, run->d->id,
             run->attempt);
    send_lock_acquire(run);
}

/* --- scheduled ticks ---------------------------------------------------------------- */

static void start_work(struct job_run *run)
{
    if (run->d->lock)
        start_locking(run);
    else
        start_handler(run);
}

/* A scheduled tick's job id is derived from the schedule and the tick, so a tick enqueued
 * twice (Redis lost its last writes and the scheduler fired again, or a run-now raced a
 * fire) carries the same id: if that id already has a final row, the job has run. */
static const char finished_sql[] =
    "SELECT 1 FROM maintq.job_runs WHERE job_id = $1::uuid"
    " AND status NOT IN ('failed', 'timeout', 'cancelled') LIMIT 1";

static void on_checked(struct store *db, const PGresult *res, void *data)
{
    struct job_run *run = data;

    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
        log_info("job %s (schedule %s) already finished: not running it again", run->d->id,
                 run->d->schedule);
        run->action = FINISH_ACK;
        run->has_row = false;
        conclude(run);
        return;
    }
    /* No final row, or Postgres cannot say: run it (its row write is idempotent). */
    start_work(run);
}

static void start_checking(struct job_run *run)
{
    const char *params[1] = {run->d->id};

    run->state = RUN_CHECKING;
    if (store_query(run->child->db, finished_sql, 1, params, on_checked, run) < 0)
        start_work(run);
}

/* --- the state machine -------------------------------------------------------------- */

static void validate(struct job_run *run)
{
    struct child *c = run->child;
    struct errbuf eb = {{0}};
    char reason[512];
    int r;

    if (!run->raw) {
        conclude_early(run, JOB_STATUS_DEAD, "entry has no descriptor (field d)");
        return;
    }
    r = descriptor_parse(run->raw, run->raw_len, DESCRIPTOR_REQUIRE_COMPLETE, &run->d, &eb);
    if (r < 0) {
        snprintf(reason, sizeof(reason), "invalid descriptor: %s", eb.msg);
        conclude_early(run, JOB_STATUS_DEAD, reason);
        return;
    }
    if (c->cfg->require_signatures || run->d->sig) {
        if (!c->keyring && run->d->sig && !c->cfg->require_signatures) {
            /* Signed, but this worker holds no keys and does not require signatures. */
        } else if (!c->keyring || descriptor_verify(run->d, c->keyring, &eb) < 0) {
            snprintf(reason, sizeof(reason), "rejected descriptor: %s",
                     c->keyring ? eb.msg : "sig: this worker has no signing keys");
            /* An unauthenticated descriptor gets no row: its content is not trusted. */
            run->d = descriptor_free(run->d);
            conclude_early(run, JOB_STATUS_DEAD, reason);
            return;
        }
    }
    /* The entry's m wins when present: a dead-letter retry extends the budget. */
    if (run->max_attempts < run->d->max_attempts)
        run->max_attempts = run->d->max_attempts;
    if (run->attempt < 1)
        run->attempt = 1;
    if (run->attempt > run->max_attempts) {
        snprintf(reason, sizeof(reason), "attempt %" PRId64 " exceeds max_attempts %" PRId64 "%s%s",
                 run->attempt, run->max_attempts, run->note ? ": " : "",
                 run->note ? run->note : "");
        conclude_early(run, JOB_STATUS_DEAD, reason);
        return;
    }
    run->type = job_type_find(run->d->type);
    if (!run->type) {
        snprintf(reason, sizeof(reason), "type: unknown job type \"%s\"", run->d->type);
        conclude_early(run, JOB_STATUS_DEAD, reason);
        return;
    }
    if (run->type->check && run->type->check(run->d->params, &eb) < 0) {
        snprintf(reason, sizeof(reason), "%s", eb.msg);
        conclude_early(run, JOB_STATUS_DEAD, reason);
        return;
    }
    if (run->d->not_after_us != DESCRIPTOR_TIME_UNSET && clock_now_us() > run->d->not_after_us) {
        conclude_early(run, JOB_STATUS_MISSED_WINDOW, "not started before not_after");
        return;
    }
    if (run->d->schedule)
        start_checking(run);
    else
        start_work(run);
}

static void drive(struct job_run *run)
{
    struct child *c = run->child;

    log_debug("job %s attempt %" PRId64 ": %s", run->d ? run->d->id : run->entry_id,
              run->attempt, run_state_names[run->state]);
    switch (run->state) {
    case RUN_NEW:
        validate(run);
        break;
    case RUN_FINISHING:
        run->finish_next = NULL;
        *c->finish_tail = run;
        c->finish_tail = &run->finish_next;
        /* Sent at the end of this loop pass, so entries that finish together are
         * acknowledged by one script call. */
        inflight_schedule_finish(c);
        break;
    case RUN_CHECKING:
    case RUN_LOCKING:
    case RUN_RUNNING:
    case RUN_RECORDING:
    case RUN_DONE:
        break;
    }
}

int runner_start(struct child *c, struct child_stream *s, const struct rq_entry *e)
{
    size_t raw_size = e->descriptor ? e->descriptor_len + 1 : 0;
    size_t note_size = e->note ? strlen(e->note) + 1 : 0;
    size_t id_len = strlen(e->id);
    struct job_run *run;

    if (raw_size > SIZE_MAX - sizeof(*run) - note_size)
        return -ENOMEM;
    run = calloc(1, sizeof(*run) + raw_size + note_size);
    if (!run)
        return -ENOMEM;
    run->child = c;
    run->stream = s;
    run->state = RUN_NEW;
    /* Truncated as snprintf would, without its cost: stream ids fit with room to spare. */
    if (id_len >= sizeof(run->entry_id))
        id_len = sizeof(run->entry_id) - 1;
    memcpy(run->entry_id, e->id, id_len);
    run->attempt = e->attempt;
    run->max_attempts = e->max_attempts > 0 ? e->max_attempts : 0;
    if (e->descriptor) {
        run->raw = run->text;
        memcpy(run->raw, e->descriptor, e->descriptor_len);
        run->raw[e->descriptor_len] = '\0';
        run->raw_len = e->descriptor_len;
    }
    if (e->note) {
        run->note = run->text + raw_size;
        memcpy(run->note, e->note, note_size);
    }
    run->next = c->runs;
    if (c->runs)
        c->runs->prev = run;
    c->runs = run;
    run->occupies_slot = true;
    c->occupied++;
    drive(run);
    return 0;
}
