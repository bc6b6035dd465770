/* The leader lease state machine (see leader.h). Two states, FOLLOWER and LEADER, and at
 * most one Redis command in flight; a timer every ttl/3 drives both: a follower tries to
 * acquire (first the renew script, in case the key still holds our own token from before a
 * hiccup, then SET NX PX), a leader renews, and a renewal still unanswered when the timer
 * comes round again counts as failed. */
#include "leader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "redis.h"
#include "rq_scripts.h"
#include "uuid.h"

enum leader_state { LEADER_FOLLOWER, LEADER_LEADER, LEADER_RELEASED };

struct leader {
    struct redis_conn *rc; /* borrowed */
    struct event *timer;   /* owned, persistent, every ttl/3 */
    char *key;             /* owned */
    char token[320];
    int64_t ttl_us;
    enum leader_state state;
    bool inflight;             /* a command of ours awaits its reply */
    int64_t inflight_sent_mono; /* when it was sent */
    int64_t valid_until_mono;   /* lease end as we must assume it: last success's send + ttl */
    struct redis_script renew, release;
    struct leader_events ev;
    void *data; /* borrowed */
    void (*release_done)(bool ok, void *data);
    void *release_data;
};

static void step_down(struct leader *l, const char *reason)
{
    if (l->state != LEADER_LEADER)
        return;
    l->state = LEADER_FOLLOWER;
    l->valid_until_mono = 0;
    if (l->ev.deposed)
        l->ev.deposed(l, reason, l->data);
}

/* Whether leader_is_leader() holds at mono time now_mono for the lease as last renewed. */
static bool lease_counts(const struct leader *l, int64_t now_mono)
{
    return l->state == LEADER_LEADER && now_mono < l->valid_until_mono - l->ttl_us / 10;
}

/* A renewal or acquisition sent at sent_mono succeeded. When already leader but the lease
 * as last renewed no longer counts (it lapsed on our clock before this answer came), the
 * lease is ours again without an election: the renew script only extends a key that still
 * holds our token, so no other scheduler held the lease meanwhile, and whatever this
 * process left undone while it did not count is still owed (reconfirmed). */
static void become_leader(struct leader *l, int64_t sent_mono)
{
    bool lapsed = l->state == LEADER_LEADER && !lease_counts(l, clock_mono_us());

    l->valid_until_mono = sent_mono + l->ttl_us;
    if (l->state == LEADER_LEADER) {
        if (lapsed && l->ev.reconfirmed)
            l->ev.reconfirmed(l, l->data);
        return;
    }
    l->state = LEADER_LEADER;
    if (l->ev.elected)
        l->ev.elected(l, l->data);
}

static void on_set(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct leader *l = data;

    l->inflight = false;
    if (l->state == LEADER_RELEASED)
        return;
    if (reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "OK") == 0)
        become_leader(l, l->inflight_sent_mono);
}

static int send_set(struct leader *l)
{
    char ttl[24];

    snprintf(ttl, sizeof(ttl), "%lld", (long long)(l->ttl_us / 1000));
    return redis_conn_command(l->rc, on_set, l, "SET %s %s NX PX %s", l->key, l->token, ttl);
}

static void on_renew(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct leader *l = data;

    l->inflight = false;
    if (l->state == LEADER_RELEASED)
        return;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        become_leader(l, l->inflight_sent_mono);
        return;
    }
    if (l->state == LEADER_LEADER) {
        step_down(l, !reply ? "lease renewal got no answer"
                     : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                          : "lease taken by another scheduler");
        return;
    }
    /* A follower: the key is not ours; try to take it if it is free. */
    if (reply && reply->type == REDIS_REPLY_INTEGER && send_set(l) == 0) {
        l->inflight = true;
        l->inflight_sent_mono = clock_mono_us();
    }
}

static void send_renew(struct leader *l)
{
    char ttl[24];
    const char *argv[3] = {l->key, l->token, ttl};
    size_t lens[3];

    snprintf(ttl, sizeof(ttl), "%lld", (long long)(l->ttl_us / 1000));
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    l->inflight_sent_mono = clock_mono_us();
    if (redis_conn_script(l->rc, &l->renew, on_renew, l, 1, 3, argv, lens) == 0)
        l->inflight = true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct leader *l = arg;

    if (l->state == LEADER_RELEASED)
        return;
    if (l->inflight) {
        /* A renewal unanswered for ttl/3 is a failed one: step down now; the reply, if it
         * ever comes, may re-elect us. */
        if (l->state == LEADER_LEADER)
            step_down(l, "lease renewal unanswered");
        return;
    }
    if (!redis_conn_ready(l->rc))
        return;
    send_renew(l);
}

int leader_new(struct event_base *base, struct redis_conn *rc, const char *key, int64_t ttl_us,
               const struct leader_events *ev, void *data, struct leader **ret)
{
    struct leader *l;
    char id[UUID_STR_LEN], host[256] = "";
    int64_t period_us = ttl_us / 3;
    struct timeval tv = {(time_t)(period_us / USEC_PER_SEC),
                         (suseconds_t)(period_us % USEC_PER_SEC)};
    int r;

    if (ttl_us < 300000)
        return -EINVAL;
    l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->rc = rc;
    l->ttl_us = ttl_us;
    l->ev = *ev;
    l->data = data;
    r = uuid7_new(id);
    if (r < 0)
        goto fail;
    gethostname(host, sizeof(host) - 1);
    snprintf(l->token, sizeof(l->token), "%s:%d:%s", host, (int)getpid(), id);
    r = -ENOMEM;
    l->key = strdup(key);
    l->timer = event_new(base, -1, EV_PERSIST, on_timer, l);
    if (!l->key || !l->timer)
        goto fail;
    if ((r = redis_script_init(&l->renew, rq_lua_lock_renew)) < 0 ||
        (r = redis_script_init(&l->release, rq_lua_lock_release)) < 0)
        goto fail;
    event_add(l->timer, &tv);
    *ret = l;
    return 0;
fail:
    leader_free(l);
    return r;
}

struct leader *leader_free(struct leader *l)
{
    if (!l)
        return NULL;
    if (l->timer)
        event_free(l->timer);
    free(l->key);
    free(l);
    return NULL;
}

bool leader_is_leader(const struct leader *l)
{
    return lease_counts(l, clock_mono_us());
}

void leader_redis_down(struct leader *l, const char *reason)
{
    l->inflight = false; /* its reply arrives as NULL, if at all */
    step_down(l, reason);
}

void leader_kick(struct leader *l)
{
    if (l->state == LEADER_RELEASED || l->inflight || !redis_conn_ready(l->rc))
        return;
    send_renew(l);
}

static void on_release(struct redis_conn *rc, struct redisReply *reply, void *data)
{
    struct leader *l = data;

    l->release_done(reply && reply->type == REDIS_REPLY_INTEGER, l->release_data);
}

void leader_release(struct leader *l, void (*done)(bool ok, void *data), void *data)
{
    bool was_leader = l->state == LEADER_LEADER;
    const char *argv[2] = {l->key, l->token};
    size_t lens[2] = {strlen(l->key), strlen(l->token)};

    l->state = LEADER_RELEASED;
    event_del(l->timer);
    l->release_done = done;
    l->release_data = data;
    if (!was_leader || !redis_conn_ready(l->rc) ||
        redis_conn_script(l->rc, &l->release, on_release, l, 1, 2, argv, lens) < 0)
        done(false, data);
}

const char *leader_token(const struct leader *l)
{
    return l->token;
}
