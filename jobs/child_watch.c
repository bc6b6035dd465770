/* SIGCHLD handling for one worker loop: a list of watched pids, reaped one by one with
 * waitpid(pid, WNOHANG) when the signal event fires, and a kill path (SIGTERM, then
 * SIGKILL after a grace) that outlives the handler which started the child.
 *
 * Signals coalesce, so every SIGCHLD rechecks every unreaped pid; the list is short (at
 * most the loop's jobs in flight). A callback may add or remove entries, so after each
 * callback the scan starts again from the head. */
#include "child_watch.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "clock.h"

struct child {
    struct child *next;
    struct child_watch *cw; /* borrowed: the list this entry is on */
    pid_t pid;
    int reaped;  /* waitpid() returned it: the pid is gone, its group may not be */
    int killing; /* handed over by child_watch_kill() */
    int killed;  /* the grace ran out and SIGKILL was sent */
    void (*on_exit)(pid_t pid, int wstatus, void *userdata);
    void *userdata;      /* borrowed */
    struct event *timer; /* owned: the SIGKILL deadline while killing */
};

struct child_watch {
    struct event_base *base; /* borrowed */
    struct event *sigchld;   /* owned */
    struct event *poll;      /* owned: re-checks the children every second while any exist */
    struct child *children;  /* owned list */
};

/* A SIGCHLD that never reaches this loop (another event_base of the process took signal
 * delivery, or the handler was replaced) would leave a dead child unreaped for good: its
 * job never finishes and a zombie stays. While children are watched, the same check runs
 * every second as well, so a missed signal costs at most that second. */
#define CHILD_WATCH_POLL_MS 1000

static void child_unlink_free(struct child *c)
{
    for (struct child **p = &c->cw->children; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    if (c->timer)
        event_free(c->timer);
    free(c);
}

static struct child *child_find(struct child_watch *cw, pid_t pid)
{
    for (struct child *c = cw->children; c; c = c->next)
        if (c->pid == pid && !c->reaped)
            return c;
    return NULL;
}

/* Sends sig to the group led by c->pid, and to the pid itself while it is unreaped: a
 * leader that called setsid() has left the group but is still ours to stop. */
static void child_signal(const struct child *c, int sig)
{
    kill(-c->pid, sig);
    if (!c->reaped)
        kill(c->pid, sig);
}

/* Tries to reap c. Returns 1 when it is gone (status in *wstatus, -1 if lost), else 0. */
static int child_try_reap(struct child *c, int options, int *wstatus)
{
    pid_t r;

    do
        r = waitpid(c->pid, wstatus, options);
    while (r < 0 && errno == EINTR);
    if (r == c->pid)
        return 1;
    if (r < 0) {
        /* ECHILD: not ours any more; nothing left to wait for. */
        *wstatus = -1;
        return 1;
    }
    return 0;
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    struct child_watch *cw = arg;
    struct child *c;

again:
    for (c = cw->children; c; c = c->next) {
        void (*on_exit)(pid_t, int, void *);
        void *userdata;
        pid_t pid;
        int wstatus;

        if (c->reaped || !child_try_reap(c, WNOHANG, &wstatus))
            continue;
        c->reaped = 1;
        if (c->killing) {
            /* Keep the entry until the SIGKILL deadline: members of the group may have
             * ignored SIGTERM. Once SIGKILL went out, nothing is left to do. */
            if (c->killed) {
                child_unlink_free(c);
                goto again;
            }
            continue;
        }
        on_exit = c->on_exit;
        userdata = c->userdata;
        pid = c->pid;
        child_unlink_free(c);
        if (on_exit)
            on_exit(pid, wstatus, userdata);
        goto again;
    }
}

static void on_kill_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct child *c = arg;

    /* A group id cannot be reused while the group has members, so signalling it after the
     * leader was reaped reaches only our stragglers (or nobody: ESRCH). */
    child_signal(c, SIGKILL);
    c->killed = 1;
    if (c->reaped)
        child_unlink_free(c);
    /* else the SIGCHLD that follows the SIGKILL reaps the leader and frees the entry. */
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct child_watch *cw = arg;

    on_sigchld(SIGCHLD, EV_SIGNAL, cw);
    if (!cw->children)
        event_del(cw->poll);
}

int child_watch_new(struct event_base *base, struct child_watch **ret_cw)
{
    struct child_watch *cw = calloc(1, sizeof(*cw));
    int r;

    if (!cw)
        return -ENOMEM;
    cw->base = base;
    cw->sigchld = evsignal_new(base, SIGCHLD, on_sigchld, cw);
    cw->poll = event_new(base, -1, EV_PERSIST, on_poll, cw);
    if (!cw->sigchld || !cw->poll || evsignal_add(cw->sigchld, NULL) < 0) {
        r = -ENOMEM;
        goto fail;
    }
    *ret_cw = cw;
    return 0;
fail:
    child_watch_free(cw);
    return r;
}

struct child_watch *child_watch_free(struct child_watch *cw)
{
    if (!cw)
        return NULL;
    while (cw->children) {
        struct child *c = cw->children;
        int wstatus;

        /* Shutting the loop down: nobody is left to wait for a grace period. */
        child_signal(c, SIGKILL);
        if (!c->reaped)
            child_try_reap(c, 0, &wstatus);
        child_unlink_free(c);
    }
    if (cw->sigchld)
        event_free(cw->sigchld);
    if (cw->poll)
        event_free(cw->poll);
    free(cw);
    return NULL;
}

int child_watch_add(struct child_watch *cw, pid_t pid,
                    void (*on_exit)(pid_t pid, int wstatus, void *userdata), void *userdata)
{
    struct child *c;

    if (child_find(cw, pid))
        return -EEXIST;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->cw = cw;
    c->pid = pid;
    c->on_exit = on_exit;
    c->userdata = userdata;
    c->next = cw->children;
    cw->children = c;
    if (!event_pending(cw->poll, EV_TIMEOUT, NULL)) {
        struct timeval tv = clock_timeval_from_ms(CHILD_WATCH_POLL_MS);

        event_add(cw->poll, &tv);
    }
    return 0;
}

int child_watch_kill(struct child_watch *cw, pid_t pid, int64_t grace_us)
{
    struct child *c = child_find(cw, pid);
    struct timeval tv;
    int r;

    if (!c) {
        /* The leader is already reaped; its group may still hold members. */
        r = child_watch_add(cw, pid, NULL, NULL);
        if (r < 0) {
            kill(-pid, SIGKILL);
            return r;
        }
        c = cw->children;
        c->reaped = 1;
    }
    c->on_exit = NULL;
    c->userdata = NULL;
    if (c->killing)
        return 0;
    c->killing = 1;
    c->timer = evtimer_new(cw->base, on_kill_deadline, c);
    if (grace_us < 0)
        grace_us = 0;
    tv.tv_sec = (time_t)(grace_us / 1000000);
    tv.tv_usec = (suseconds_t)(grace_us % 1000000);
    if (!c->timer || evtimer_add(c->timer, &tv) < 0) {
        /* No deadline possible: skip the grace. The SIGCHLD reaps and frees the entry. */
        c->killed = 1;
        child_signal(c, SIGKILL);
        if (c->reaped)
            child_unlink_free(c);
        return -ENOMEM;
    }
    child_signal(c, SIGTERM);
    return 0;
}

size_t child_watch_count(const struct child_watch *cw)
{
    size_t n = 0;

    for (const struct child *c = cw->children; c; c = c->next)
        n++;
    return n;
}
