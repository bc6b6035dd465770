/* The worker master: forks --procs children, restarts a crashed child with backoff,
 * forwards SIGHUP, drains on SIGTERM and kills at once on a second SIGTERM/SIGINT. */
#pragma once

#include "worker_config.h"

/* Runs until the pool has drained. cfg: borrowed. child_main runs in each forked child
 * and returns its exit status. Returns the master's exit status. */
int supervisor_run(struct worker_config *cfg, int (*child_main)(struct worker_config *cfg, int slot));
