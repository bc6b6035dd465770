/* The Redis side of the entries a worker child holds: finishing them in batches (one
 * script call acknowledges, retries or dead-letters every entry whose row committed),
 * heartbeats that keep live entries from being reclaimed, and the cancel keys that stop a
 * replaced job. */
#include "inflight.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "job_run.h"
#include "log.h"
#include "resp.h"
#include "rq_scripts.h"
#include "runner.h"


static const char *const finish_action_names[] = {
    [FINISH_ACK] = "ack",
    [FINISH_RETRY] = "retry",
    [FINISH_DELAY] = "delay",
    [FINISH_DEAD] = "dead",
};

void inflight_schedule_finish(struct child *c)
{
    /* At the end of this loop pass, so that entries finishing together go in one call. */
    if (!c->finish_inflight && !evtimer_pending(c->finish_timer, NULL))
        event_active(c->finish_timer, EV_TIMEOUT, 1);
}

/* --- finishing ---------------------------------------------------------------------- */

static void on_finish_reply(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct child *c = data;
    struct job_run *batch = c->finish_head;
    struct job_run *run, *next;
    struct job_run **tail = &c->finish_head;
    size_t i = 0;

    (void)tail;
    c->finish_inflight = false;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        /* Not answered: the rows are committed, so retrying the finish is safe (the script
         * acts only on entries still pending for us). Try again shortly. */
        struct timeval tv = {0, REDIS_RETRY_MS * 1000};

        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_error("finish script failed: %s", reply->str);
        evtimer_add(c->finish_timer, &tv);
        return;
    }
    /* The batch was the first reply->elements runs of the queue. */
    for (run = batch; run && i < reply->elements; run = next, i++) {
        next = run->finish_next;
        if (reply->element[i]->type == REDIS_REPLY_INTEGER && reply->element[i]->integer == 0)
            log_info("job %s attempt %" PRId64 ": entry %s was reclaimed by another worker; "
                     "its row is recorded, the retry is theirs",
                     run->d ? run->d->id : "?", run->attempt, run->entry_id);
        c->finish_head = next;
        run->state = RUN_DONE;
        job_run_free(run);
    }
    if (!c->finish_head)
        c->finish_tail = &c->finish_head;
    inflight_flush_finishes(c);
    child_kick(c);
}

void inflight_flush_finishes(struct child *c)
{
    struct resp_cmd a = {0};
    struct job_run *run;
    int n = 0;

    if (c->finish_inflight || !c->finish_head)
        return;
    resp_cmd_add_str(&a, c->delayed_key);
    resp_cmd_add_str(&a, c->dead_key);
    resp_cmd_add_str(&a, RQ_GROUP);
    for (run = c->finish_head; run && n < 1000; run = run->finish_next, n++) {
        resp_cmd_add_str(&a, run->stream->key);
        resp_cmd_add_str(&a, run->entry_id);
        resp_cmd_add_str(&a, finish_action_names[run->action]);
        resp_cmd_add_str(&a, run->lock_fence ? run->lock->key : "");
        resp_cmd_add_str(&a, run->lock_fence ? run->lock->token : "");
        switch (run->action) {
        case FINISH_RETRY:
        case FINISH_DELAY:
            resp_cmd_add_int(&a, run->delay_ms);
            resp_cmd_add(&a, run->body ? run->body : "", run->body ? run->body_len : 0);
            break;
        case FINISH_DEAD:
            resp_cmd_add(&a, run->body ? run->body : "", run->body ? run->body_len : 0);
            resp_cmd_add_int(&a, run->attempt);
            resp_cmd_add_int(&a, run->max_attempts);
            resp_cmd_add_str(&a, run->dead_reason ? run->dead_reason
                                                       : (run->error ? run->error : ""));
            break;
        case FINISH_ACK:
            break;
        }
    }
    if (redis_conn_script_send(c->rcmd, &c->s_finish, on_finish_reply, c, 2, &a) == 0) {
        c->finish_inflight = true;
    } else {
        struct timeval tv = {0, REDIS_RETRY_MS * 1000};

        log_error("cannot send the finish batch (out of memory); retrying");
        evtimer_add(c->finish_timer, &tv);
    }
    resp_cmd_release(&a);
}

/* --- cancel keys ---------------------------------------------------------------------- */

/* The reply to MGET of the cancel keys of the jobs named in ids (owned, freed here). */
struct cancel_check {
    struct child *c;
    char (*ids)[UUID_STR_LEN];
    size_t n;
};

static void on_cancel_keys(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct cancel_check *cc = data;

    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements && i < cc->n;
         i++) {
        char why[600];

        if (reply->element[i]->type != REDIS_REPLY_STRING)
            continue;
        /* The run may have ended since the MGET went out: find it again by id. */
        for (struct job_run *run = cc->c->runs; run; run = run->next) {
            if (!run->d || strcmp(run->d->id, cc->ids[i]) != 0 || !runner_is_running(run))
                continue;
            snprintf(why, sizeof(why), "cancelled: %s", reply->element[i]->str);
            log_info("job %s: %s", run->d->id, why);
            job_run_cancel(run, JOB_STATUS_CANCELLED, why, true);
            break;
        }
    }
    free(cc->ids);
    free(cc);
}

/* Asks Redis whether any running job has been told to stop ({prefix}:cancel:<job id>, set
 * by the scheduler's `replace` policy). */
static void check_cancels(struct child *c)
{
    struct cancel_check *cc;
    struct resp_cmd a = {0};
    size_t n = 0;
    int r = 0;

    for (struct job_run *run = c->runs; run; run = run->next)
        n += runner_is_running(run);
    if (n == 0)
        return;
    cc = calloc(1, sizeof(*cc));
    if (!cc || !(cc->ids = calloc(n, sizeof(*cc->ids)))) {
        free(cc);
        return;
    }
    cc->c = c;
    resp_cmd_add_str(&a, "MGET");
    for (struct job_run *run = c->runs; run; run = run->next) {
        char key[RQ_KEY_MAX];

        if (!runner_is_running(run))
            continue;
        snprintf(cc->ids[cc->n++], UUID_STR_LEN, "%s", run->d->id);
        r |= rq_key(key, sizeof(key), c->cfg->prefix, "cancel", run->d->id);
        resp_cmd_add_str(&a, key);
    }
    if (r != 0 || redis_conn_send(c->rcmd, on_cancel_keys, cc, &a) < 0) {
        free(cc->ids);
        free(cc);
    }
    resp_cmd_release(&a);
}

/* --- heartbeat ---------------------------------------------------------------------- */

void inflight_heartbeat(struct child *c)
{
    check_cancels(c);
    for (int i = 0; i < c->nstreams; i++) {
        struct resp_cmd a = {0};

        resp_cmd_add_str(&a, "XCLAIM");
        resp_cmd_add_str(&a, c->streams[i].key);
        resp_cmd_add_str(&a, RQ_GROUP);
        resp_cmd_add_str(&a, c->consumer);
        resp_cmd_add_str(&a, "0");
        for (struct job_run *run = c->runs; run; run = run->next)
            if (run->stream == &c->streams[i])
                resp_cmd_add_str(&a, run->entry_id);
        resp_cmd_add_str(&a, "JUSTID");
        if (a.argc > 6)
            redis_conn_send(c->rcmd, NULL, NULL, &a);
        resp_cmd_release(&a);
    }
}
