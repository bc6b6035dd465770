/* The maintq command line: one struct cli_command per subcommand (cli/cmd_<name>.c),
 * registered in the static table in cli/main.c. */
#pragma once

/* Exit codes: check results follow the monitoring convention; usage errors are 2. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_WARNING = 1,
    CLI_EXIT_CRITICAL = 2,
    CLI_EXIT_UNKNOWN = 3,
    CLI_EXIT_USAGE = 2,
};

struct cli_command {
    const char *name;
    const char *summary;  /* one line for `maintq --help` */
    const char *usage;    /* full text for `maintq NAME --help` */
    /* argv[0] is the command name; getopt_long is reset before the call. Returns the exit
     * code. Prints its own errors as one line "maintq NAME: ...". */
    int (*run)(int argc, char **argv);
};

/* Prints "maintq NAME: message" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when argv holds -h or --help (before any "--"); the caller prints usage, exits 0. */
int cli_wants_help(int argc, char **argv);
/* Prints the command's usage to stdout and returns 0. */
int cli_print_usage(const struct cli_command *cmd);
