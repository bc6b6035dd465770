/* maintq-worker's configuration: flags, MAINTQ_* environment, and an optional file of
 * `key = value` lines (exec_allow, signing_keys, require_signatures, concurrency, grace,
 * reclaim_after, queues). The file is what SIGHUP reloads; flags given on the command line
 * win over it. Every bad value is one error naming the flag or the file and line. */
#include "worker_config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parse.h"
#include "rq.h"

static const char usage[] =
    "usage: maintq-worker [options]\n"
    "  --redis-url URL        Redis (default $MAINTQ_REDIS_URL)\n"
    "  --database-url URL     PostgreSQL conninfo or URI (default $MAINTQ_DATABASE_URL)\n"
    "  --queues A,B           queues to read (default: default)\n"
    "  --procs N              worker processes (default: number of cores)\n"
    "  --concurrency N        jobs in flight per process (default 64)\n"
    "  --grace DURATION       on SIGTERM, time jobs get to finish (default 30s)\n"
    "  --reclaim-after DUR    take entries of a consumer silent this long (default 60s)\n"
    "  --max-unwritten N      results awaiting Postgres before reading stops (default 2048)\n"
    "  --exec-allow PATH      absolute path the exec job may run (repeatable)\n"
    "  --require-signatures   reject descriptors without a valid sig\n"
    "  --config FILE          key = value settings, reloaded on SIGHUP\n"
    "  --prefix P             Redis key prefix (default {maintq})\n"
    "  --log-level L          debug, info, warn, error (default info)\n"
    "  --log-json             log one JSON object per line\n";

static char **strv_free(char **v)
{
    if (v)
        for (size_t i = 0; v[i]; i++)
            free(v[i]);
    free(v);
    return NULL;
}

static char **strv_dup(char *const *v)
{
    size_t n = 0;
    char **out;

    while (v && v[n])
        n++;
    out = calloc(n + 1, sizeof(*out));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (!out[i])
            return strv_free(out);
    }
    return out;
}

static int strv_append(char ***v, const char *s)
{
    size_t n = 0;
    char **nv, *copy;

    while (*v && (*v)[n])
        n++;
    copy = strdup(s);
    if (!copy)
        return -ENOMEM;
    nv = realloc(*v, (n + 2) * sizeof(*nv));
    if (!nv) {
        free(copy);
        return -ENOMEM;
    }
    nv[n] = copy;
    nv[n + 1] = NULL;
    *v = nv;
    return 0;
}

/* Splits "a,b,c" into a fresh vector; empty items are an error. */
static int strv_split(const char *s, char ***ret)
{
    char **v = calloc(1, sizeof(*v));
    const char *p = s;

    if (!v)
        return -ENOMEM;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[256];

        if (len == 0 || len >= sizeof(item)) {
            strv_free(v);
            return -EINVAL;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (strv_append(&v, item) < 0) {
            strv_free(v);
            return -ENOMEM;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    *ret = v;
    return 0;
}

static int set_str(char **dst, const char *s)
{
    char *copy = strdup(s);

    if (!copy)
        return -ENOMEM;
    free(*dst);
    *dst = copy;
    return 0;
}

static int valid_queue_name(const char *q)
{
    size_t n = strlen(q);

    if (n == 0 || n > 64)
        return 0;
    return strspn(q, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* Applies one setting by name (shared by flags and the file). */
static int apply(struct worker_config *c, const char *key, const char *val, struct errbuf *eb)
{
    const char *range = "";
    int64_t v;

    if (strcmp(key, "queues") == 0) {
        char **q;

        if (strv_split(val, &q) < 0)
            goto bad;
        for (size_t i = 0; q[i]; i++)
            if (!valid_queue_name(q[i])) {
                errbuf_set(eb, "queues: \"%s\" is not a queue name ([A-Za-z0-9_.-]{1,64})",
                           q[i]);
                strv_free(q);
                return -EINVAL;
            }
        strv_free(c->queues);
        c->queues = q;
    } else if (strcmp(key, "procs") == 0) {
        range = "1-256";
        if (parse_int64(val, 1, 256, &v) < 0)
            goto range;
        c->procs = (int)v;
    } else if (strcmp(key, "concurrency") == 0) {
        range = "1-10000";
        if (parse_int64(val, 1, 10000, &v) < 0)
            goto range;
        c->concurrency = (int)v;
    } else if (strcmp(key, "max_unwritten") == 0) {
        range = "1-1000000";
        if (parse_int64(val, 1, 1000000, &v) < 0)
            goto range;
        c->max_unwritten = (int)v;
    } else if (strcmp(key, "grace") == 0) {
        if (parse_duration_us(val, &c->grace_us) < 0)
            goto bad;
    } else if (strcmp(key, "reclaim_after") == 0) {
        if (parse_duration_us(val, &v) < 0 || v < 1000000)
            goto bad;
        c->reclaim_after_us = v;
    } else if (strcmp(key, "exec_allow") == 0) {
        if (val[0] != '/' || strstr(val, "/../") || strstr(val, "/./")) {
            errbuf_set(eb, "exec_allow: \"%s\" is not a plain absolute path", val);
            return -EINVAL;
        }
        if (strv_append(&c->exec_allow, val) < 0)
            return -ENOMEM;
    } else if (strcmp(key, "signing_keys") == 0) {
        return set_str(&c->signing_keys, val);
    } else if (strcmp(key, "require_signatures") == 0) {
        if (strcmp(val, "true") == 0 || strcmp(val, "yes") == 0 || strcmp(val, "1") == 0)
            c->require_signatures = true;
        else if (strcmp(val, "false") == 0 || strcmp(val, "no") == 0 || strcmp(val, "0") == 0)
            c->require_signatures = false;
        else
            goto bad;
    } else if (strcmp(key, "log_level") == 0) {
        if (log_level_parse(val, &c->log_level) < 0)
            goto bad;
    } else {
        errbuf_set(eb, "%s: unknown setting", key);
        return -EINVAL;
    }
    return 0;
range:
    errbuf_set(eb, "%s: \"%s\" is not a number in %s", key, val, range);
    return -EINVAL;
bad:
    errbuf_set(eb, "%s: \"%s\" is not a valid value", key, val);
    return -EINVAL;
}

static char *trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

static int load_file(struct worker_config *c, const char *path, struct errbuf *eb)
{
    FILE *f = fopen(path, "re");
    char line[1024];
    int lineno = 0, r = 0;

    if (!f) {
        errbuf_set(eb, "config \"%s\": %s", path, strerror(errno));
        return -errno;
    }
    /* exec_allow accumulates: the file's list replaces what an earlier load gave. */
    c->exec_allow = strv_free(c->exec_allow);
    while (fgets(line, sizeof(line), f)) {
        char *s = trim(line), *eq;

        lineno++;
        if (*s == '\0' || *s == '#')
            continue;
        eq = strchr(s, '=');
        if (!eq) {
            errbuf_set(eb, "config \"%s\" line %d: expected key = value", path, lineno);
            r = -EINVAL;
            break;
        }
        *eq = '\0';
        r = apply(c, trim(s), trim(eq + 1), eb);
        if (r < 0) {
            errbuf_prefix(eb, "config \"%s\" line %d", path, lineno);
            break;
        }
    }
    fclose(f);
    return r;
}

static struct worker_config *config_defaults(void)
{
    struct worker_config *c = calloc(1, sizeof(*c));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    if (!c)
        return NULL;
    c->procs = cores > 0 ? (int)cores : 1;
    c->concurrency = 64;
    c->grace_us = 30 * 1000000LL;
    c->reclaim_after_us = 60 * 1000000LL;
    /* Results waiting for Postgres cost about 1.6 KB each: 2048 keeps a child near 12 MB
     * and still lets batches grow large enough to amortise commits (ops/bench). */
    c->max_unwritten = 2048;
    c->log_level = LOG_LEVEL_INFO;
    if (set_str(&c->prefix, RQ_DEFAULT_PREFIX) < 0 || strv_split("default", &c->queues) < 0)
        return worker_config_free(c);
    c->exec_allow = calloc(1, sizeof(char *));
    if (!c->exec_allow)
        return worker_config_free(c);
    return c;
}

int worker_config_from_args(int argc, char **argv, struct worker_config **ret, struct errbuf *eb)
{
    static const struct option opts[] = {
        {"redis-url", required_argument, NULL, 'r'},
        {"database-url", required_argument, NULL, 'd'},
        {"queues", required_argument, NULL, 'q'},
        {"procs", required_argument, NULL, 'p'},
        {"concurrency", required_argument, NULL, 'c'},
        {"grace", required_argument, NULL, 'g'},
        {"reclaim-after", required_argument, NULL, 'R'},
        {"max-unwritten", required_argument, NULL, 'M'},
        {"exec-allow", required_argument, NULL, 'x'},
        {"require-signatures", no_argument, NULL, 'S'},
        {"config", required_argument, NULL, 'f'},
        {"prefix", required_argument, NULL, 'P'},
        {"log-level", required_argument, NULL, 'l'},
        {"log-json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    static const char *const names[128] = {
        ['q'] = "queues",         ['p'] = "procs",       ['c'] = "concurrency",
        ['g'] = "grace",          ['R'] = "reclaim_after", ['M'] = "max_unwritten",
        ['x'] = "exec_allow",     ['l'] = "log_level",
    };
    struct worker_config *c = config_defaults();
    const char *env;
    int opt, r;

    if (!c)
        return -ENOMEM;
    opterr = 0;
    /* The config file is read first so that flags win over it. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            if (set_str(&c->config_file, argv[i + 1]) < 0) {
                r = -ENOMEM;
                goto fail;
            }
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            if (set_str(&c->config_file, argv[i] + 9) < 0) {
                r = -ENOMEM;
                goto fail;
            }
        }
    if (c->config_file) {
        r = load_file(c, c->config_file, eb);
        if (r < 0)
            goto fail;
    }
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            r = set_str(&c->redis_url, optarg);
            break;
        case 'd':
            r = set_str(&c->database_url, optarg);
            break;
        case 'P':
            r = set_str(&c->prefix, optarg);
            break;
        case 'S':
            c->require_signatures = true;
            r = 0;
            break;
        case 'j':
            c->log_json = true;
            r = 0;
            break;
        case 'f':
            r = 0;
            break;
        case 'h':
            fputs(usage, stdout);
            worker_config_free(c);
            return 1;
        case '?':
            if (optopt)
                errbuf_set(eb, "option '-%c' is unknown or needs a value", optopt);
            else
                errbuf_set(eb, "option '%s' is unknown or needs a value", argv[optind - 1]);
            r = -EINVAL;
            break;
        default:
            r = apply(c, names[opt], optarg, eb);
            break;
        }
        if (r < 0)
            goto fail;
    }
    if (optind < argc) {
        errbuf_set(eb, "unexpected argument '%s'", argv[optind]);
        r = -EINVAL;
        goto fail;
    }
    if (!c->redis_url && (env = getenv("MAINTQ_REDIS_URL")) && set_str(&c->redis_url, env) < 0)
        goto nomem;
    if (!c->database_url && (env = getenv("MAINTQ_DATABASE_URL")) &&
        set_str(&c->database_url, env) < 0)
        goto nomem;
    if (!c->signing_keys && (env = getenv("MAINTQ_SIGNING_KEYS")) &&
        set_str(&c->signing_keys, env) < 0)
        goto nomem;
    if (!c->redis_url) {
        errbuf_set(eb, "no Redis: give --redis-url or set MAINTQ_REDIS_URL");
        r = -EINVAL;
        goto fail;
    }
    if (!c->database_url) {
        errbuf_set(eb, "no PostgreSQL: give --database-url or set MAINTQ_DATABASE_URL");
        r = -EINVAL;
        goto fail;
    }
    *ret = c;
    return 0;
nomem:
    r = -ENOMEM;
fail:
    worker_config_free(c);
    return r;
}

int worker_config_reload(const struct worker_config *old, struct worker_config **ret,
                         struct errbuf *eb)
{
    struct worker_config *c = calloc(1, sizeof(*c));
    int r = -ENOMEM;

    if (!c)
        return -ENOMEM;
    *c = *old;
    c->redis_url = c->database_url = c->prefix = c->config_file = c->signing_keys = NULL;
    c->queues = c->exec_allow = NULL;
    if (set_str(&c->redis_url, old->redis_url) < 0 ||
        set_str(&c->database_url, old->database_url) < 0 ||
        set_str(&c->prefix, old->prefix) < 0 || !(c->queues = strv_dup(old->queues)) ||
        !(c->exec_allow = strv_dup(old->exec_allow)))
        goto fail;
    if (old->signing_keys && set_str(&c->signing_keys, old->signing_keys) < 0)
        goto fail;
    if (old->config_file) {
        if (set_str(&c->config_file, old->config_file) < 0)
            goto fail;
        r = load_file(c, c->config_file, eb);
        if (r < 0)
            goto fail;
    }
    *ret = c;
    return 0;
fail:
    worker_config_free(c);
    return r;
}

struct worker_config *worker_config_free(struct worker_config *c)
{
    if (!c)
        return NULL;
    free(c->redis_url);
    free(c->database_url);
    free(c->prefix);
    free(c->config_file);
    free(c->signing_keys);
    strv_free(c->queues);
    strv_free(c->exec_allow);
    free(c);
    return NULL;
}
