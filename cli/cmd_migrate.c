/* `maintq migrate`: applies the SQL migrations (schemas/sql/NNN_name.sql) that the
 * database lacks, through core/migrate.c, and says what it did: one "applied NAME" line per
 * file, or "nothing to migrate". Errors are runtime failures, not check results, so they
 * exit 3 (unknown/error in the monitoring convention of DESIGN.md); bad usage exits 2. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "cli_conn.h"
#include "errbuf.h"
#include "maintq_config.h"
#include "migrate.h"

static const char usage[] =
    "usage: maintq migrate [--database-url URL] [--dir DIR]\n"
    "\n"
    "Applies, in order, the migrations NNN_name.sql of DIR that the database has not\n"
    "applied yet, each in its own transaction, recorded in maintq.schema_migrations.\n"
    "Running it again does nothing. A failing file is rolled back and named; the files\n"
    "before it stay applied, the ones after it are not tried.\n"
    "\n"
    "  --database-url URL   libpq conninfo or URI (default $MAINTQ_DATABASE_URL)\n"
    "  --dir DIR            migrations folder (default $MAINTQ_SQL_DIR, else\n"
    "                       schemas/sql of the source tree this maintq was built from)\n"
    "\n"
    "exit status: 0 done or nothing to do, 2 bad usage, 3 cannot connect or a migration\n"
    "failed.\n";

static void print_applied(const char *name, int version, void *userdata)
{
    printf("applied %s\n", name);
    fflush(stdout); /* a long migration after it: show progress now */
}

static int migrate_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"database-url", required_argument, NULL, 'd'},
        {"dir", required_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *dir = NULL; /* borrowed from argv or the environment */
    char default_dir[4096];
    struct errbuf eb = {{0}};
    PGconn *conn = NULL;
    int c, r, version = 0, applied = 0;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            url = optarg;
            break;
        case 'D':
            dir = optarg;
            break;
        default:
            cli_error("migrate", "unknown or incomplete option '%s' (see maintq migrate --help)",
                      argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("migrate", "unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (!dir)
        dir = getenv("MAINTQ_SQL_DIR");
    if (!dir || !*dir) {
        snprintf(default_dir, sizeof(default_dir), "%s/schemas/sql", MAINTQ_SOURCE_ROOT);
        dir = default_dir;
    }
    if (cli_pg_open("migrate", url, &conn) < 0)
        return CLI_EXIT_UNKNOWN;
    r = migrate_apply(conn, dir, print_applied, NULL, &version, &applied, &eb);
    PQfinish(conn);
    if (r < 0) {
        cli_error("migrate", "%s", eb.msg);
        return CLI_EXIT_UNKNOWN;
    }
    if (applied == 0)
        printf("nothing to migrate (schema at version %d)\n", version);
    else
        printf("schema at version %d\n", version);
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_migrate = {
    .name = "migrate",
    .summary = "apply the SQL migrations the database lacks",
    .usage = usage,
    .run = migrate_run,
};
