/* Pre-fork supervision for maintq-worker. The master holds no Redis or Postgres
 * connection: it only forks, watches and signals. Each slot keeps its restart count so a
 * child that keeps crashing is restarted with growing delays (100 ms doubling to 10 s),
 * reset once a child has stayed up for 30 s. */
#include "supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"

struct slot {
    pid_t pid;
    int failures;
    int64_t started_mono_us;
    struct event *restart_timer;
    struct supervisor *sup;
    int index;
};

struct supervisor {
    struct event_base *base;
    struct worker_config *cfg; /* borrowed */
    int (*child_main)(struct worker_config *cfg, int slot);
    struct slot *slots;
    int nslots;
    int draining;   /* SIGTERM seen: no restarts, exit when all children are gone */
    int exit_status;
    struct event *sigev[4];
};

static const int supervised_signals[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT};

/* Releases the master's loop state. In a freshly forked child, after event_reinit(), this
 * drops the master's events without touching the master's epoll set. */
static void supervisor_release(struct supervisor *sup)
{
    for (size_t i = 0; i < 4; i++)
        if (sup->sigev[i])
            event_free(sup->sigev[i]);
    for (int i = 0; sup->slots && i < sup->nslots; i++)
        if (sup->slots[i].restart_timer)
            event_free(sup->slots[i].restart_timer);
    if (sup->base)
        event_base_free(sup->base);
}

static void spawn(struct slot *s);

static int live_children(const struct supervisor *sup)
{
    int n = 0;

    for (int i = 0; i < sup->nslots; i++)
        n += sup->slots[i].pid > 0;
    return n;
}

static void signal_children(struct supervisor *sup, int sig)
{
    for (int i = 0; i < sup->nslots; i++)
        if (sup->slots[i].pid > 0)
            kill(sup->slots[i].pid, sig);
}

static void on_restart_timer(evutil_socket_t fd, short what, void *arg)
{
    struct slot *s = arg;

    if (!s->sup->draining)
        spawn(s);
}

static void spawn(struct slot *s)
{
    struct supervisor *sup = s->sup;
    pid_t pid = fork();

    if (pid < 0) {
        struct timeval tv = {1, 0};

        log_error("fork of worker %d failed: %s; retrying in 1s", s->index, strerror(errno));
        evtimer_add(s->restart_timer, &tv);
        return;
    }
    if (pid == 0) {
        int status;

        /* The child must not outlive a master that was SIGKILLed. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        /* Stop signals reach a child only through the master. In the master's process
         * group, a Ctrl-C or `kill -TERM -<group>` would reach it directly as well, and
         * the master's forwarded SIGTERM would then count as a second signal: exit at
         * once instead of draining. (Under systemd, use KillMode=mixed for the same.) */
        setpgid(0, 0);
        if (getppid() == 1)
            _exit(1);
        event_reinit(sup->base);
        supervisor_release(sup);
        for (size_t i = 0; i < 4; i++)
            signal(supervised_signals[i], SIG_DFL);
        status = sup->child_main(sup->cfg, s->index);
        _exit(status);
    }
    s->pid = pid;
    s->started_mono_us = clock_mono_us();
    log_info("worker %d started as pid %d", s->index, (int)pid);
}

static void on_child_exit(struct supervisor *sup, pid_t pid, int status)
{
    for (int i = 0; i < sup->nslots; i++) {
        struct slot *s = &sup->slots[i];
        int64_t delay_ms;
        struct timeval tv;

        if (s->pid != pid)
            continue;
        s->pid = 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && sup->draining) {
            log_info("worker %d (pid %d) drained and exited", i, (int)pid);
            return;
        }
        if (WIFSIGNALED(status))
            log_warn("worker %d (pid %d) killed by signal %d", i, (int)pid, WTERMSIG(status));
        else
            log_warn("worker %d (pid %d) exited with status %d", i, (int)pid,
                     WEXITSTATUS(status));
        if (sup->draining)
            return;
        if (clock_mono_us() - s->started_mono_us > 30 * USEC_PER_SEC)
            s->failures = 0;
        delay_ms = 100LL << (s->failures < 7 ? s->failures : 7);
        if (delay_ms > 10000)
            delay_ms = 10000;
        s->failures++;
        tv.tv_sec = delay_ms / 1000;
        tv.tv_usec = (delay_ms % 1000) * 1000;
        log_info("restarting worker %d in %lld ms", i, (long long)delay_ms);
        evtimer_add(s->restart_timer, &tv);
        return;
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct supervisor *sup = arg;

    switch (sig) {
    case SIGCHLD: {
        pid_t pid;
        int status;

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            on_child_exit(sup, pid, status);
        break;
    }
    case SIGHUP:
        log_info("SIGHUP: asking workers to reload their configuration");
        signal_children(sup, SIGHUP);
        break;
    case SIGTERM:
    case SIGINT:
        if (sup->draining) {
            log_warn("second stop signal: killing workers now (their entries stay pending)");
            signal_children(sup, SIGKILL);
            sup->exit_status = 1;
            event_base_loopexit(sup->base, NULL);
            return;
        }
        log_info("stop signal: draining %d workers", live_children(sup));
        sup->draining = 1;
        signal_children(sup, SIGTERM);
        break;
    default:
        break;
    }
    if (sup->draining && live_children(sup) == 0)
        event_base_loopexit(sup->base, NULL);
}

int supervisor_run(struct worker_config *cfg, int (*child_main)(struct worker_config *cfg, int slot))
{
    struct supervisor sup = {.cfg = cfg, .child_main = child_main, .nslots = cfg->procs};
    int r = 1;

    sup.base = event_base_new();
    sup.slots = calloc((size_t)sup.nslots, sizeof(*sup.slots));
    if (!sup.base || !sup.slots)
        goto out;
    for (size_t i = 0; i < 4; i++) {
        sup.sigev[i] = evsignal_new(sup.base, supervised_signals[i], on_signal, &sup);
        if (!sup.sigev[i] || evsignal_add(sup.sigev[i], NULL) < 0)
            goto out;
    }
    for (int i = 0; i < sup.nslots; i++) {
        sup.slots[i].sup = &sup;
        sup.slots[i].index = i;
        sup.slots[i].restart_timer = evtimer_new(sup.base, on_restart_timer, &sup.slots[i]);
        if (!sup.slots[i].restart_timer)
            goto out;
    }
    for (int i = 0; i < sup.nslots; i++)
        spawn(&sup.slots[i]);
    event_base_dispatch(sup.base);
    r = sup.exit_status;
    log_info("master exiting with status %d", r);
out:
    supervisor_release(&sup);
    free(sup.slots);
    return r;
}
