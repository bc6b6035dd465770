/* A worker child's loop: connections, the reader that keeps the concurrency slots full,
 * and the periodic duties every child shares (promote due delayed entries, reclaim the
 * entries of dead consumers, heartbeat its own entries), plus SIGTERM draining and SIGHUP
 * reloading. The per-job work is in runner.c, the result writes in result_sink.c. */
#include "child.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "child_watch.h"
#include "inflight.h"
#include "clock.h"
#include "log.h"
#include "result_sink.h"
#include "resp.h"
#include "rq_scripts.h"
#include "runner.h"
#include "store.h"
#include "url.h"

#define READ_BLOCK_MS 2000
#define READ_RETRY_MS 250
#define PROMOTE_MAX_WAIT_MS 1000
#define PROMOTE_BATCH 1000

static void schedule_read(struct child *c, int delay_ms);

static void add_ms(struct event *ev, int64_t ms)
{
    struct timeval tv = clock_timeval_from_ms(ms);

    evtimer_add(ev, &tv);
}

/* --- reading ------------------------------------------------------------------------ */

static struct child_stream *find_stream(struct child *c, const char *key)
{
    for (int i = 0; i < c->nstreams; i++)
        if (strcmp(c->streams[i].key, key) == 0)
            return &c->streams[i];
    return NULL;
}

static void create_groups(struct child *c)
{
    for (int i = 0; i < c->nstreams; i++)
        redis_conn_command(c->rcmd, NULL, NULL, "XGROUP CREATE %s %s 0 MKSTREAM",
                           c->streams[i].key, RQ_GROUP);
}

static void on_read(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct child *c = data;

    c->reading = false;
    if (!reply) {
        schedule_read(c, READ_RETRY_MS);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strncmp(reply->str, "NOGROUP", 7) == 0) {
            create_groups(c);
        } else {
            log_error("XREADGROUP failed: %s", reply->str);
        }
        schedule_read(c, READ_RETRY_MS);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        c->dispatching = true;
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *sr = reply->element[i];
            struct child_stream *s;

            if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2 ||
                sr->element[0]->type != REDIS_REPLY_STRING)
                continue;
            s = find_stream(c, sr->element[0]->str);
            if (!s || sr->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            for (size_t j = 0; j < sr->element[1]->elements; j++) {
                struct rq_entry e;

                if (rq_entry_from_reply(sr->element[1]->element[j], &e) < 0) {
                    log_error("%s: unreadable stream entry skipped (left pending)", s->key);
                    continue;
                }
                if (runner_start(c, s, &e) < 0)
                    log_error("%s: out of memory starting entry %s (left pending)", s->key,
                              e.id);
            }
        }
        c->dispatching = false;
    }
    child_kick(c);
}

static void read_more(struct child *c)
{
    struct resp_cmd a = {0};
    int free_slots = c->cfg->concurrency - c->occupied;

    if (c->reading || c->draining || free_slots <= 0 || c->unwritten >= c->cfg->max_unwritten)
        return;
    resp_cmd_add_str(&a, "XREADGROUP");
    resp_cmd_add_str(&a, "GROUP");
    resp_cmd_add_str(&a, RQ_GROUP);
    resp_cmd_add_str(&a, c->consumer);
    resp_cmd_add_str(&a, "COUNT");
    resp_cmd_add_int(&a, free_slots);
    resp_cmd_add_str(&a, "BLOCK");
    resp_cmd_add_int(&a, READ_BLOCK_MS);
    resp_cmd_add_str(&a, "STREAMS");
    for (int i = 0; i < c->nstreams; i++)
        resp_cmd_add_str(&a, c->streams[i].key);
    for (int i = 0; i < c->nstreams; i++)
        resp_cmd_add_str(&a, ">");
    if (redis_conn_send(c->rread, on_read, c, &a) == 0)
        c->reading = true;
    else
        schedule_read(c, READ_RETRY_MS);
    resp_cmd_release(&a);
}

static void on_read_timer(evutil_socket_t fd, short what, void *arg)
{
    read_more(arg);
}

static void schedule_read(struct child *c, int delay_ms)
{
    add_ms(c->read_timer, delay_ms);
}

void child_kick(struct child *c)
{
    if (c->dispatching)
        return; /* on_read kicks once it has started every entry it got */
    if (c->draining) {
        if (!c->runs) {
            log_info("drained: every job finished, recorded and acknowledged");
            event_base_loopexit(c->base, NULL);
        }
        return;
    }
    read_more(c);
}

/* --- periodic duties ------------------------------------------------------------------ */

static void on_promoted(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct child *c = data;
    int64_t wait = PROMOTE_MAX_WAIT_MS;

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3) {
        int64_t moved = reply->element[0]->integer;
        int64_t next_due = reply->element[1]->integer, now = reply->element[2]->integer;

        if (moved >= PROMOTE_BATCH)
            wait = 0;
        else if (next_due >= 0 && next_due - now < wait)
            wait = next_due > now ? next_due - now : 0;
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        log_error("promote script failed: %s", reply->str);
    }
    add_ms(c->promote_timer, wait);
}

static void on_promote_timer(evutil_socket_t fd, short what, void *arg)
{
    struct child *c = arg;
    char limit[16];
    const char *argv[4] = {c->delayed_key, c->dead_key, c->cfg->prefix, limit};
    size_t lens[4];

    snprintf(limit, sizeof(limit), "%d", PROMOTE_BATCH);
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(argv[i]);
    if (redis_conn_script(c->rcmd, &c->s_promote, on_promoted, c, 2, 4, argv, lens) < 0)
        add_ms(c->promote_timer, PROMOTE_MAX_WAIT_MS);
}

static void on_reclaimed(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct child_stream *s = data;

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(s->reclaim_cursor, sizeof(s->reclaim_cursor), "%s", reply->element[0]->str);
        if (reply->element[1]->integer > 0)
            log_warn("%s: reclaimed %lld entries of lost workers as their next attempt", s->key,
                     (long long)reply->element[1]->integer);
    } else if (reply && reply->type == REDIS_REPLY_ERROR &&
               strncmp(reply->str, "NOGROUP", 7) != 0) {
        log_error("%s: reclaim failed: %s", s->key, reply->str);
    }
}

static int64_t reclaim_interval_ms(const struct child *c)
{
    int64_t ms = c->cfg->reclaim_after_us / 1000 / 3;

    return ms < 1000 ? 1000 : ms > 30000 ? 30000 : ms;
}

static void on_reclaim_timer(evutil_socket_t fd, short what, void *arg)
{
    struct child *c = arg;
    char idle[24];

    snprintf(idle, sizeof(idle), "%" PRId64, c->cfg->reclaim_after_us / 1000);
    for (int i = 0; i < c->nstreams; i++) {
        struct child_stream *s = &c->streams[i];
        const char *argv[6] = {s->key, RQ_GROUP, c->consumer, idle, "100", s->reclaim_cursor};
        size_t lens[6];

        for (int j = 0; j < 6; j++)
            lens[j] = strlen(argv[j]);
        redis_conn_script(c->rcmd, &c->s_reclaim, on_reclaimed, s, 1, 6, argv, lens);
    }
    add_ms(c->reclaim_timer, reclaim_interval_ms(c));
}

static void on_heartbeat_timer(evutil_socket_t fd, short what, void *arg)
{
    struct child *c = arg;
    int64_t ms = c->cfg->reclaim_after_us / 1000 / 4;

    /* Every second at most: the same pass looks for cancel keys of running jobs. */
    inflight_heartbeat(c);
    add_ms(c->heartbeat_timer, ms < 250 ? 250 : ms > 1000 ? 1000 : ms);
}

static void on_finish_timer(evutil_socket_t fd, short what, void *arg)
{
    inflight_flush_finishes(arg);
}

/* --- signals -------------------------------------------------------------------------- */

static void on_drain_timer(evutil_socket_t fd, short what, void *arg)
{
    struct child *c = arg;
    int n = 0;

    c->drain_cancelled = true;
    for (struct job_run *run = c->runs, *next; run; run = next) {
        next = runner_next(run);
        if (runner_is_running(run)) {
            runner_cancel_for_shutdown(run);
            n++;
        }
    }
    if (n)
        log_warn("grace period over: cancelled %d running jobs (recorded, retried later)", n);
    child_kick(c);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct child *c = arg;

    if (c->draining) {
        log_warn("second stop signal: exiting now; unfinished entries stay pending");
        _exit(1);
    }
    c->draining = true;
    log_info("stop signal: reading no more; in-flight jobs have %" PRId64 " ms",
             c->cfg->grace_us / 1000);
    add_ms(c->drain_timer, c->cfg->grace_us / 1000);
    child_kick(c);
}

static int load_keyring(struct child *c, const struct worker_config *cfg);

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct child *c = arg;
    struct worker_config *nc;
    struct errbuf eb = {{0}};

    if (worker_config_reload(c->cfg, &nc, &eb) < 0) {
        log_error("reload failed, keeping the running configuration: %s", eb.msg);
        return;
    }
    if (load_keyring(c, nc) < 0) {
        log_error("reload failed: bad signing_keys; keeping the running configuration");
        worker_config_free(nc);
        return;
    }
    worker_config_free(c->cfg);
    c->cfg = nc;
    c->env.exec_allow = (const char *const *)nc->exec_allow;
    log_info("configuration reloaded");
}

/* --- setup ---------------------------------------------------------------------------- */

/* Parses "kid:secret,kid2:secret2" into the child's keyring (replacing it). */
static int load_keyring(struct child *c, const struct worker_config *cfg)
{
    struct descriptor_keyring *kr;
    char *copy, *item;

    if (!cfg->signing_keys) {
        c->keyring = descriptor_keyring_free(c->keyring);
        return 0;
    }
    kr = descriptor_keyring_new();
    copy = strdup(cfg->signing_keys);
    if (!kr || !copy)
        goto fail;
    for (item = copy; item; ) {
        char *comma = strchr(item, ',');
        char *colon;

        if (comma)
            *comma = '\0';
        colon = strchr(item, ':');
        if (!colon)
            goto fail;
        *colon = '\0';
        if (descriptor_keyring_add(kr, item, (const uint8_t *)colon + 1, strlen(colon + 1)) < 0)
            goto fail;
        item = comma ? comma + 1 : NULL;
    }
    free(copy);
    descriptor_keyring_free(c->keyring);
    c->keyring = kr;
    return 0;
fail:
    free(copy);
    descriptor_keyring_free(kr);
    return -EINVAL;
}

static void on_redis_down(struct redis_conn *rc, const char *reason, void *data)
{
    log_warn("%s", reason);
}

static void on_redis_up(struct redis_conn *rc, void *data)
{
    struct child *c = data;

    log_info("connected to %s", redis_conn_display(rc));
    if (rc == c->rcmd)
        create_groups(c);
}

static void on_store_down(struct store *s, const char *reason, void *data)
{
    log_warn("%s", reason);
}

static void on_store_up(struct store *s, void *data)
{
    log_info("connected to postgres %s", store_display(s));
}

static void child_free(struct child *c)
{
    struct event **evs[] = {&c->read_timer,   &c->promote_timer, &c->reclaim_timer,
                            &c->heartbeat_timer, &c->finish_timer, &c->drain_timer,
                            &c->sig_term,     &c->sig_int,       &c->sig_hup};

    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (*evs[i])
            event_free(*evs[i]);
    c->sink = result_sink_free(c->sink);
    c->rread = redis_conn_free(c->rread);
    c->rcmd = redis_conn_free(c->rcmd);
    c->db = store_free(c->db);
    c->keyring = descriptor_keyring_free(c->keyring);
    c->children = child_watch_free(c->children);
    free(c->streams);
    if (c->base)
        event_base_free(c->base);
}

int child_main(struct worker_config *cfg, int slot)
{
    struct child c = {.cfg = cfg, .finish_tail = NULL};
    struct redis_url url;
    struct errbuf eb = {{0}};
    struct redis_conn_events rev = {.connected = on_redis_up,
                                    .disconnected = on_redis_down,
                                    .connect_failed = on_redis_down};
    struct store_events sev = {.connected = on_store_up,
                               .disconnected = on_store_down,
                               .connect_failed = on_store_down};
    char host[64] = "localhost";
    int n = 0, r;

    c.finish_tail = &c.finish_head;
    log_init("maintq-worker", cfg->log_level, cfg->log_json);
    gethostname(host, sizeof(host) - 1);
    snprintf(c.consumer, sizeof(c.consumer), "%s:%d", host, (int)getpid());
    c.base = event_base_new();
    if (!c.base)
        goto fail;
    if (redis_url_parse(cfg->redis_url, &url, &eb) < 0) {
        log_error("%s", eb.msg);
        goto fail;
    }
    if (load_keyring(&c, cfg) < 0) {
        log_error("signing_keys: expected kid:secret[,kid:secret] with secrets of 16+ bytes");
        goto fail;
    }
    while (cfg->queues[n])
        n++;
    c.streams = calloc((size_t)n, sizeof(*c.streams));
    if (!c.streams)
        goto fail;
    c.nstreams = n;
    for (int i = 0; i < n; i++) {
        snprintf(c.streams[i].queue, sizeof(c.streams[i].queue), "%s", cfg->queues[i]);
        snprintf(c.streams[i].reclaim_cursor, sizeof(c.streams[i].reclaim_cursor), "0-0");
        if (rq_key(c.streams[i].key, sizeof(c.streams[i].key), cfg->prefix, "q",
                   cfg->queues[i]) < 0)
            goto fail;
    }
    if (rq_key(c.delayed_key, sizeof(c.delayed_key), cfg->prefix, "delayed", NULL) < 0 ||
        rq_key(c.dead_key, sizeof(c.dead_key), cfg->prefix, "dead", NULL) < 0)
        goto fail;
    if (redis_script_init(&c.s_promote, rq_lua_promote) < 0 ||
        redis_script_init(&c.s_finish, rq_lua_finish) < 0 ||
        redis_script_init(&c.s_reclaim, rq_lua_reclaim) < 0 ||
        redis_script_init(&c.s_lock_acquire, rq_lua_lock_acquire) < 0 ||
        redis_script_init(&c.s_lock_renew, rq_lua_lock_renew) < 0)
        goto fail;
    c.env.exec_allow = (const char *const *)cfg->exec_allow;
    r = redis_conn_new(c.base, &url, &rev, &c, &c.rread);
    if (r >= 0)
        r = redis_conn_new(c.base, &url, &rev, &c, &c.rcmd);
    if (r < 0) {
        log_error("redis: %s", strerror(-r));
        goto fail;
    }
    r = store_new(c.base, cfg->database_url, &sev, &c, &c.db);
    if (r < 0) {
        log_error("database url: %s", r == -EINVAL ? "libpq cannot parse it" : strerror(-r));
        goto fail;
    }
    if (result_sink_new(c.base, c.db, &c.sink) < 0 || child_watch_new(c.base, &c.children) < 0)
        goto fail;
    c.read_timer = evtimer_new(c.base, on_read_timer, &c);
    c.promote_timer = evtimer_new(c.base, on_promote_timer, &c);
    c.reclaim_timer = evtimer_new(c.base, on_reclaim_timer, &c);
    c.heartbeat_timer = evtimer_new(c.base, on_heartbeat_timer, &c);
    c.finish_timer = evtimer_new(c.base, on_finish_timer, &c);
    c.drain_timer = evtimer_new(c.base, on_drain_timer, &c);
    c.sig_term = evsignal_new(c.base, SIGTERM, on_stop_signal, &c);
    c.sig_int = evsignal_new(c.base, SIGINT, on_stop_signal, &c);
    c.sig_hup = evsignal_new(c.base, SIGHUP, on_hup, &c);
    if (!c.read_timer || !c.promote_timer || !c.reclaim_timer || !c.heartbeat_timer ||
        !c.finish_timer || !c.drain_timer || !c.sig_term || !c.sig_int || !c.sig_hup)
        goto fail;
    evsignal_add(c.sig_term, NULL);
    evsignal_add(c.sig_int, NULL);
    evsignal_add(c.sig_hup, NULL);
    signal(SIGPIPE, SIG_IGN);
    create_groups(&c);
    add_ms(c.promote_timer, 0);
    add_ms(c.reclaim_timer, reclaim_interval_ms(&c));
    add_ms(c.heartbeat_timer, 250);
    log_info("worker %d (%s) reading %d queue(s), %d jobs in flight at most", slot, c.consumer,
             c.nstreams, cfg->concurrency);
    read_more(&c);
    event_base_dispatch(c.base);
    child_free(&c);
    return 0;
fail:
    child_free(&c);
    return 1;
}
