/* maintq-worker's settings: command-line flags, environment and an optional config file
 * (`key = value` lines), validated as a whole so a bad reload changes nothing. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "errbuf.h"
#include "log.h"

struct worker_config {
    char *redis_url;        /* owned */
    char *database_url;     /* owned */
    char *prefix;           /* owned; key prefix, default "{maintq}" */
    char **queues;          /* owned, NULL-terminated */
    char **exec_allow;      /* owned, NULL-terminated absolute paths */
    char *config_file;      /* owned, may be NULL */
    char *signing_keys;     /* owned, "kid:secret,kid2:secret2" or NULL */
    bool require_signatures;
    int procs;
    int concurrency;        /* jobs in flight per child */
    int64_t grace_us;       /* SIGTERM: time in-flight jobs get before they are cancelled */
    int64_t reclaim_after_us; /* idle time after which a dead consumer's entries are taken */
    int max_unwritten;      /* results awaiting Postgres before the child stops reading */
    enum log_level log_level;
    bool log_json;
};

/* Parses argv (and MAINTQ_* environment, then --config FILE). On a usage error returns
 * -EINVAL with eb naming the flag; returns 1 when --help was printed. */
int worker_config_from_args(int argc, char **argv, struct worker_config **ret, struct errbuf *eb);
/* Re-reads the config file (SIGHUP) into a copy of old; old is untouched on error. */
int worker_config_reload(const struct worker_config *old, struct worker_config **ret,
                         struct errbuf *eb);
struct worker_config *worker_config_free(struct worker_config *c);
