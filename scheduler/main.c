/* maintq-scheduler: loads the schedules of a folder, competes for the leader lease in
 * Redis, and while it holds the lease fires each schedule's ticks through the fire script
 * (firing.c), recording every tick in Postgres (fire_log.c). One libevent loop holds
 * everything: the Redis and Postgres connections, the lease timer, the firing timer, the
 * signals (SIGHUP reloads, SIGTERM/SIGINT release the lease and exit 0) and an inotify watch
 * on the schedules folder (a change reloads, after a short quiet period so that an editor's
 * write-rename-delete sequence causes one reload). A reload that fails keeps the old set. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "errbuf.h"
#include "fire_log.h"
#include "firing.h"
#include "leader.h"
#include "log.h"
#include "parse.h"
#include "redis.h"
#include "rq.h"
#include "schedule.h"
#include "store.h"
#include "url.h"

#define RELOAD_QUIET_MS 200
#define STOP_GRACE_MS 2000

static const char usage[] =
    "usage: maintq-scheduler --schedules DIR [options]\n"
    "  --schedules DIR        folder of *.json schedule files (reloaded on change/SIGHUP)\n"
    "  --redis-url URL        Redis (default $MAINTQ_REDIS_URL)\n"
    "  --database-url URL     PostgreSQL conninfo or URI (default $MAINTQ_DATABASE_URL)\n"
    "  --prefix P             Redis key prefix (default {maintq})\n"
    "  --lease-ttl DURATION   leader lease time to live (default 10s, at least 300ms)\n"
    "  --misfire-grace DURATION\n"
    "                         a tick due longer ago than this (process suspended, clock\n"
    "                         jumped) follows its misfire policy (default 5s, at least\n"
    "                         100ms)\n"
    "  --log-level L          debug, info, warn, error (default info)\n"
    "  --log-json             log one JSON object per line\n";

struct opts {
    const char *dir, *redis_url, *database_url, *prefix;
    int64_t lease_ttl_us;
    int64_t late_grace_us;
    enum log_level level;
    bool json;
};

struct daemon {
    struct opts o;
    struct event_base *base;
    struct redis_conn *rc;
    struct store *db;
    struct fire_log *log;
    struct leader *leader;
    struct firing *firing;
    struct event *sig_term, *sig_int, *sig_hup, *reload_timer, *inotify_ev, *stop_timer;
    int inotify_fd;
    bool stopping;
};

/* Returns 0, 1 (--help printed) or -EINVAL with eb set. */
static int parse_args(int argc, char **argv, struct opts *o, struct errbuf *eb)
{
    static const struct option opts[] = {
        {"schedules", required_argument, NULL, 's'},
        {"redis-url", required_argument, NULL, 'r'},
        {"database-url", required_argument, NULL, 'd'},
        {"prefix", required_argument, NULL, 'P'},
        {"lease-ttl", required_argument, NULL, 't'},
        {"misfire-grace", required_argument, NULL, 'g'},
        {"log-level", required_argument, NULL, 'l'},
        {"log-json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    *o = (struct opts){.prefix = RQ_DEFAULT_PREFIX, .lease_ttl_us = 10 * USEC_PER_SEC,
                       .late_grace_us = FIRING_LATE_GRACE_DEFAULT_US, .level = LOG_LEVEL_INFO};
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            o->dir = optarg;
            break;
        case 'r':
            o->redis_url = optarg;
            break;
        case 'd':
            o->database_url = optarg;
            break;
        case 'P':
            o->prefix = optarg;
            break;
        case 't':
            if (parse_duration_us(optarg, &o->lease_ttl_us) < 0 ||
                o->lease_ttl_us < 300000) {
                errbuf_set(eb, "--lease-ttl: expected a duration of at least 300ms");
                return -EINVAL;
            }
            break;
        case 'g':
            /* Every timer wakes some microseconds after its tick: below a tenth of a second
             * a skip schedule would skip ticks for ordinary timer delay. */
            if (parse_duration_us(optarg, &o->late_grace_us) < 0 || o->late_grace_us < 100000) {
                errbuf_set(eb, "--misfire-grace: expected a duration of at least 100ms");
                return -EINVAL;
            }
            break;
        case 'l':
            if (log_level_parse(optarg, &o->level) < 0) {
                errbuf_set(eb, "--log-level: expected debug, info, warn or error");
                return -EINVAL;
            }
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        case ':':
            errbuf_set(eb, "%s: missing value", argv[optind - 1]);
            return -EINVAL;
        default:
            errbuf_set(eb, "unknown option '%s' (see --help)", argv[optind - 1]);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        errbuf_set(eb, "unexpected argument '%s'", argv[optind]);
        return -EINVAL;
    }
    if (!o->dir) {
        errbuf_set(eb, "--schedules: required");
        return -EINVAL;
    }
    if (!o->redis_url)
        o->redis_url = getenv("MAINTQ_REDIS_URL");
    if (!o->database_url)
        o->database_url = getenv("MAINTQ_DATABASE_URL");
    if (!o->redis_url || !*o->redis_url) {
        errbuf_set(eb, "no Redis: give --redis-url or set MAINTQ_REDIS_URL");
        return -EINVAL;
    }
    if (!o->database_url || !*o->database_url) {
        errbuf_set(eb, "no PostgreSQL: give --database-url or set MAINTQ_DATABASE_URL");
        return -EINVAL;
    }
    return 0;
}

/* ---- events -------------------------------------------------------------------------- */

static void on_redis_up(struct redis_conn *rc, void *data)
{
    struct daemon *d = data;

    log_info("connected to %s", redis_conn_display(rc));
    leader_kick(d->leader);
}

static void on_redis_down(struct redis_conn *rc, const char *reason, void *data)
{
    struct daemon *d = data;

    log_warn("%s", reason);
    leader_redis_down(d->leader, reason);
}

static void on_store_up(struct store *s, void *data)
{
    struct daemon *d = data;

    log_info("connected to postgres %s (%zu records to write)", store_display(s),
             fire_log_pending(d->log));
    fire_log_flush(d->log);
}

static void on_store_down(struct store *s, const char *reason, void *data)
{
    log_warn("%s; schedule records wait in memory", reason);
}

static void on_elected(struct leader *l, void *data)
{
    struct daemon *d = data;

    log_info("leader: lease acquired (%s)", leader_token(l));
    firing_elected(d->firing);
    /* Loads made while standing by left removed_at alone: the new leader's set decides. */
    if (fire_log_mark_removed(d->log) < 0)
        log_error("leader: out of memory marking removed schedules");
}

/* The lease lapsed on our clock (the process was stopped or stalled) and was then renewed
 * with no election: ticks the firing loop saw due meanwhile were dropped for want of the
 * lease, and no other scheduler fired them, so the election catch-up runs again from the
 * last fires recorded in Redis (the fire script's tick dedupe keeps any tick single). A
 * reload in that while was a standby's: the removal marks are brought up to date too. */
static void on_reconfirmed(struct leader *l, void *data)
{
    struct daemon *d = data;

    log_warn("leader: lease renewed after it had lapsed (process stalled?): catching up");
    firing_elected(d->firing);
    if (fire_log_mark_removed(d->log) < 0)
        log_error("leader: out of memory marking removed schedules");
}

/* Installs set in the firing loop (takes ownership) and mirrors it into maintq.schedules in
 * one statement, which also marks removed schedules when this scheduler is the leader.
 * Returns 0 or -ENOMEM (the old set stays). */
static int install(struct daemon *d, struct schedule_set *set)
{
    size_t n = set->n;
    bool leader = leader_is_leader(d->leader);
    int r;

    fire_log_load_begin(d->log);
    r = firing_load(d->firing, set); /* calls fire_log_definition once per schedule */
    if (r < 0) {
        fire_log_load_cancel(d->log);
        return r;
    }
    if (fire_log_load_end(d->log, leader, n) < 0)
        log_error("out of memory recording the schedule definitions in postgres");
    return 0;
}

static void on_deposed(struct leader *l, const char *reason, void *data)
{
    struct daemon *d = data;

    log_warn("leader: stopped firing: %s", reason);
    firing_deposed(d->firing);
}

static void reload(struct daemon *d, const char *why)
{
    struct schedule_set *set = NULL;
    struct errbuf eb = {{0}};
    size_t before = firing_count(d->firing);

    if (schedule_set_load_dir(d->o.dir, &set, &eb) < 0) {
        log_error("reload (%s) failed, keeping the %zu loaded schedules: %s", why, before,
                  eb.msg[0] ? eb.msg : "out of memory");
        return;
    }
    if (install(d, set) < 0) {
        log_error("reload (%s) failed, keeping the %zu loaded schedules: out of memory", why,
                  before);
        return;
    }
    log_info("reloaded %zu schedules (%s)", firing_count(d->firing), why);
}

static void on_reload_timer(evutil_socket_t fd, short what, void *arg)
{
    reload(arg, "schedules folder changed");
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct timeval tv = {0, RELOAD_QUIET_MS * 1000};
    bool changed = false;
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *e = (const struct inotify_event *)(void *)p;
            size_t len = e->len ? strlen(e->name) : 0;

            /* Only *.json files count; editors' swap and backup files do not. */
            if (len > 5 && strcmp(e->name + len - 5, ".json") == 0)
                changed = true;
            if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF))
                log_warn("the schedules folder %s went away; keeping the loaded schedules",
                         d->o.dir);
            p += sizeof(*e) + e->len;
        }
    }
    if (changed)
        evtimer_add(d->reload_timer, &tv); /* restarts the quiet period */
}

static void on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;

    log_warn("stop: lease release unanswered; exiting (it expires by itself)");
    event_base_loopexit(d->base, NULL);
}

static void on_released(bool ok, void *data)
{
    struct daemon *d = data;

    log_info("stop: %s; exiting", ok ? "lease released" : "no lease to release");
    event_base_loopexit(d->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    struct timeval tv = {STOP_GRACE_MS / 1000, (STOP_GRACE_MS % 1000) * 1000};

    if (sig == SIGHUP) {
        reload(d, "SIGHUP");
        return;
    }
    if (d->stopping)
        return;
    d->stopping = true;
    log_info("stop signal: stopping");
    firing_deposed(d->firing);
    evtimer_add(d->stop_timer, &tv);
    leader_release(d->leader, on_released, d);
}

/* ---- main ---------------------------------------------------------------------------- */

static int daemon_start(struct daemon *d, struct schedule_set *set)
{
    struct redis_url url;
    struct errbuf eb = {{0}};
    struct redis_conn_events rev = {.connected = on_redis_up, .disconnected = on_redis_down,
                                    .connect_failed = on_redis_down};
    struct store_events sev = {.connected = on_store_up, .disconnected = on_store_down,
                               .connect_failed = on_store_down};
    struct leader_events lev = {
        .elected = on_elected, .reconfirmed = on_reconfirmed, .deposed = on_deposed};
    char key[RQ_KEY_MAX];
    struct firing_config fc;
    struct event_config *cfg;
    int r;

    if ((r = redis_url_parse(d->o.redis_url, &url, &eb)) < 0) {
        log_error("%s", eb.msg);
        schedule_set_free(set);
        return r;
    }
    /* A precise timer (timerfd) fires on the millisecond rather than up to one late. */
    cfg = event_config_new();
    if (cfg) {
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
        d->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    if (!d->base) {
        schedule_set_free(set);
        return -ENOMEM;
    }
    if ((r = redis_conn_new(d->base, &url, &rev, d, &d->rc)) < 0 ||
        (r = store_new(d->base, d->o.database_url, &sev, d, &d->db)) < 0 ||
        (r = fire_log_new(d->db, &d->log)) < 0 ||
        (r = rq_key(key, sizeof(key), d->o.prefix, "leader", NULL)) < 0 ||
        (r = leader_new(d->base, d->rc, key, d->o.lease_ttl_us, &lev, d, &d->leader)) < 0) {
        log_error("cannot start: %s", strerror(-r));
        schedule_set_free(set);
        return r;
    }
    fc = (struct firing_config){.prefix = d->o.prefix, .rc = d->rc, .db = d->db,
                                .log = d->log, .leader = d->leader,
                                .late_grace_us = d->o.late_grace_us};
    if ((r = firing_new(d->base, &fc, &d->firing)) < 0 || (r = install(d, set)) < 0) {
        if (!d->firing)
            schedule_set_free(set);
        log_error("cannot start: %s", strerror(-r));
        return r;
    }
    d->sig_term = evsignal_new(d->base, SIGTERM, on_signal, d);
    d->sig_int = evsignal_new(d->base, SIGINT, on_signal, d);
    d->sig_hup = evsignal_new(d->base, SIGHUP, on_signal, d);
    d->reload_timer = evtimer_new(d->base, on_reload_timer, d);
    d->stop_timer = evtimer_new(d->base, on_stop_timer, d);
    if (!d->sig_term || !d->sig_int || !d->sig_hup || !d->reload_timer || !d->stop_timer)
        return -ENOMEM;
    evsignal_add(d->sig_term, NULL);
    evsignal_add(d->sig_int, NULL);
    evsignal_add(d->sig_hup, NULL);
    d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->inotify_fd < 0 ||
        inotify_add_watch(d->inotify_fd, d->o.dir,
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                              IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
        log_warn("cannot watch %s (%s): reload with SIGHUP", d->o.dir, strerror(errno));
    } else {
        d->inotify_ev = event_new(d->base, d->inotify_fd, EV_READ | EV_PERSIST, on_inotify, d);
        if (!d->inotify_ev)
            return -ENOMEM;
        event_add(d->inotify_ev, NULL);
    }
    return 0;
}

static void daemon_release(struct daemon *d)
{
    /* Connections first: their freeing drops callbacks that point into the others. */
    redis_conn_free(d->rc);
    store_free(d->db);
    firing_free(d->firing);
    leader_free(d->leader);
    fire_log_free(d->log);
    struct event *evs[] = {d->sig_term,   d->sig_int,    d->sig_hup,
                           d->reload_timer, d->inotify_ev, d->stop_timer};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
    if (d->inotify_fd >= 0)
        close(d->inotify_fd);
    if (d->base)
        event_base_free(d->base);
}

int main(int argc, char **argv)
{
    struct daemon d = {.inotify_fd = -1};
    struct schedule_set *set = NULL;
    struct errbuf eb = {{0}};
    int r;

    r = parse_args(argc, argv, &d.o, &eb);
    if (r == 1)
        return 0;
    if (r < 0) {
        fprintf(stderr, "maintq-scheduler: %s\n", eb.msg);
        return 2;
    }
    log_init("maintq-scheduler", d.o.level, d.o.json);
    if (schedule_set_load_dir(d.o.dir, &set, &eb) < 0) {
        log_error("%s", eb.msg[0] ? eb.msg : "out of memory loading schedules");
        return 2;
    }
    log_info("loaded %zu schedules from %s; lease ttl %lld ms", set->n, d.o.dir,
             (long long)(d.o.lease_ttl_us / 1000));
    r = daemon_start(&d, set);
    if (r == 0)
        r = event_base_dispatch(d.base) < 0 ? -EIO : 0;
    daemon_release(&d);
    return r < 0 ? 1 : 0;
}
