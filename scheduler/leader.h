/* The scheduler's leader lease in Redis: `SET <prefix>:leader <token> NX PX ttl`, renewed
 * every ttl/3 with a compare-and-pexpire script, released with compare-and-delete. Only the
 * holder fires. A holder steps down AT ONCE when Redis goes away, a renewal is refused or a
 * renewal goes unanswered for ttl/3, and it also measures the lease from the moment each
 * renewal was SENT, so it stops before the key could have expired on the server and a
 * standby taken over. A standby tries to acquire every ttl/3. A holder whose lease lapsed
 * on its own clock without a failed renewal (the process was stopped or stalled) keeps
 * renewing, and says so when a renewal succeeds: for that while it did not fire either. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct redis_conn;
struct leader;

struct leader_events {
    void (*elected)(struct leader *l, void *data);
    /* The lease, which this process had to count as lapsed (leader_is_leader() was false
     * for a while: the process was stopped or its loop stalled past 0.9 ttl since the last
     * renewal sent), was renewed after all without another scheduler taking it. Nothing
     * fired in that while, here or elsewhere: ticks this process saw due then were dropped
     * and are owed. Optional. */
    void (*reconfirmed)(struct leader *l, void *data);
    /* reason: one line, borrowed for the call. */
    void (*deposed)(struct leader *l, const char *reason, void *data);
};

/* rc is borrowed and must outlive l (free l after rc, so no reply reaches a freed l —
 * redis_conn_free drops pending callbacks). key is copied; ev copied; data borrowed.
 * ttl_us >= 300 ms. Starts trying at once and every ttl/3. Returns 0, -EINVAL, -ENOMEM or
 * an error from uuid7_new. *ret is caller-freed with leader_free(). */
int leader_new(struct event_base *base, struct redis_conn *rc, const char *key, int64_t ttl_us,
               const struct leader_events *ev, void *data, struct leader **ret);

/* Accepts NULL; returns NULL. Does not release the lease (see leader_release). */
struct leader *leader_free(struct leader *l);

/* True while this process holds the lease and the lease, counted from the last renewal
 * sent, has more than ttl/10 left. */
bool leader_is_leader(const struct leader *l);

/* Redis broke: steps down now (deposed runs if it was the leader). */
void leader_redis_down(struct leader *l, const char *reason);

/* Tries to acquire now (e.g. right after Redis connects) unless a try is in flight. */
void leader_kick(struct leader *l);

/* Stops renewing and trying; if leader, deletes the key if it still holds our token, then
 * calls done (also at once when there is nothing to release, and with ok = false when Redis
 * did not answer). No deposed event follows. */
void leader_release(struct leader *l, void (*done)(bool ok, void *data), void *data);

/* The token (for log lines): "<host>:<pid>:<uuid>". Borrowed. */
const char *leader_token(const struct leader *l);
