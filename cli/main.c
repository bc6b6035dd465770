/* maintq: the command line entry point. Finds the subcommand in one static table and
 * hands it argv; answers --help and --version; rejects unknown commands with exit 2. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "maintq_config.h"

extern const struct cli_command cli_cmd_cron;
extern const struct cli_command cli_cmd_submit;
extern const struct cli_command cli_cmd_status;
extern const struct cli_command cli_cmd_results;
extern const struct cli_command cli_cmd_dlq;
extern const struct cli_command cli_cmd_workers;
extern const struct cli_command cli_cmd_migrate;
extern const struct cli_command cli_cmd_schedules;

static const struct cli_command *const commands[] = {
    &cli_cmd_submit,
    &cli_cmd_status,
    &cli_cmd_results,
    &cli_cmd_dlq,
    &cli_cmd_workers,
    &cli_cmd_schedules,
    &cli_cmd_cron,
    &cli_cmd_migrate,
    NULL,
};

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "maintq %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

int cli_print_usage(const struct cli_command *cmd)
{
    printf("%s", cmd->usage);
    return CLI_EXIT_OK;
}

static void print_help(FILE *f)
{
    fprintf(f, "usage: maintq COMMAND [ARGS...]\n\n"
               "Runs and queries maintenance jobs: Redis Streams queue, PostgreSQL results.\n\n"
               "commands:\n");
    for (size_t i = 0; commands[i]; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\nconnections: MAINTQ_REDIS_URL (redis://[user:password@]host:port/db or\n"
               "unix:///path/redis.sock), MAINTQ_DATABASE_URL (any libpq conninfo or URI).\n"
               "`maintq COMMAND --help` describes one command.\n");
}

int main(int argc, char **argv)
{
    const char *name;

    if (argc < 2) {
        print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("maintq %s\n", MAINTQ_VERSION);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; commands[i]; i++) {
        if (strcmp(commands[i]->name, name) != 0)
            continue;
        if (cli_wants_help(argc - 1, argv + 1))
            return cli_print_usage(commands[i]);
        optind = 0; /* glibc: full reinitialisation of getopt for the subcommand */
        return commands[i]->run(argc - 1, argv + 1);
    }
    if (name[0] == '-')
        fprintf(stderr, "maintq: unknown option '%s' (see maintq --help)\n", name);
    else
        fprintf(stderr, "maintq: unknown command '%s' (see maintq --help)\n", name);
    return CLI_EXIT_USAGE;
}
