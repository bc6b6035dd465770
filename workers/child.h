/* One worker process (a child of the master): one libevent loop, a blocking-read Redis
 * connection for XREADGROUP, a command Redis connection, an asynchronous Postgres
 * connection, and up to --concurrency job runs in flight. Internal to workers/. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "descriptor_sig.h"
#include "job.h"
#include "redis.h"
#include "rq.h"
#include "worker_config.h"

struct job_run;
struct result_sink;
struct store;

struct child_stream {
    char key[RQ_KEY_MAX]; /* "{maintq}:q:<queue>" */
    char queue[65];       /* the queue's name ([A-Za-z0-9_.-]{1,64}) */
    char reclaim_cursor[48];
};

struct child {
    struct event_base *base;
    /* owned: the child's copy, replaced on SIGHUP. Nothing keeps pointers into it across
     * loop passes (handlers read the exec allowlist in start() only). */
    struct worker_config *cfg;
    struct redis_conn *rread;       /* owned: XREADGROUP BLOCK only */
    struct redis_conn *rcmd;        /* owned: everything else */
    struct store *db;               /* owned */
    struct result_sink *sink;       /* owned */
    struct child_watch *children;   /* owned: the SIGCHLD watcher handlers share */
    struct descriptor_keyring *keyring; /* owned, NULL when no signing keys */
    struct job_env env;
    char consumer[128];             /* "host:pid" */
    char delayed_key[RQ_KEY_MAX];
    char dead_key[RQ_KEY_MAX];
    struct child_stream *streams;   /* owned, one per queue */
    int nstreams;

    struct redis_script s_promote, s_finish, s_reclaim, s_lock_acquire, s_lock_renew;

    struct job_run *runs;           /* every run not yet done (doubly linked) */
    int occupied;                   /* runs holding a concurrency slot (locking or running) */
    int unwritten;                  /* runs whose row is not yet committed */
    bool reading;                   /* an XREADGROUP is outstanding */
    bool dispatching;               /* starting the entries of a read: no reads meanwhile */
    bool draining;                  /* SIGTERM seen: read nothing more */
    bool drain_cancelled;           /* grace is over: in-flight jobs were cancelled */

    /* Runs whose rows are committed and whose Redis finish (ack, retry, dead letter) is
     * due; sent as one script call, one call at a time. */
    struct job_run *finish_head, **finish_tail;
    bool finish_inflight;

    struct event *read_timer, *promote_timer, *reclaim_timer, *heartbeat_timer;
    struct event *finish_timer, *drain_timer;
    struct event *sig_term, *sig_int, *sig_hup;
};

/* The process entry the supervisor calls in each forked child. */
int child_main(struct worker_config *cfg, int slot);

/* Called by the runner whenever a slot frees or a run finishes: reads more work when
 * there is room, and ends the loop when draining is complete. */
void child_kick(struct child *c);
