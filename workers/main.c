/* maintq-worker: parses its configuration, then hands over to the supervisor, which forks
 * the worker children (child.c). */
#include <stdio.h>

#include "child.h"
#include "errbuf.h"
#include "log.h"
#include "supervisor.h"
#include "worker_config.h"

int main(int argc, char **argv)
{
    struct worker_config *cfg = NULL;
    struct errbuf eb = {{0}};
    int r;

    r = worker_config_from_args(argc, argv, &cfg, &eb);
    if (r == 1)
        return 0;
    if (r < 0) {
        fprintf(stderr, "maintq-worker: %s\n", eb.msg[0] ? eb.msg : "out of memory");
        return 2;
    }
    log_init("maintq-worker", cfg->log_level, cfg->log_json);
    log_info("starting %d worker processes", cfg->procs);
    r = supervisor_run(cfg, child_main);
    worker_config_free(cfg);
    return r;
}
