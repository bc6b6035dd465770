/* submit --wait: block until the job's final row is committed, without polling hard. */
#include "cli_wait.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_conn.h"
#include "clock.h"
#include "job_view.h"

int cli_wait_for_job(const char *cmd, const char *db_url, const char *id, int64_t timeout_us,
                     bool json)
{
    PGconn *conn;
    PGresult *res;
    int64_t deadline = timeout_us > 0 ? clock_mono_us() + timeout_us : 0;
    char status[32] = "";
    int rc = CLI_EXIT_UNKNOWN;

    if (cli_pg_open(cmd, db_url, &conn) < 0)
        return CLI_EXIT_UNKNOWN;
    res = PQexec(conn, "LISTEN maintq_results");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        cli_error(cmd, "postgres: LISTEN failed: %s", PQresultErrorMessage(res));
        PQclear(res);
        goto out;
    }
    PQclear(res);
    for (;;) {
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        int r = job_view_print_latest(conn, cmd, id, json, true, status, sizeof(status));
        PGnotify *n;

        if (r < 0)
            goto out;
        if (r == 1) {
            rc = job_view_exit_code(status);
            goto out;
        }
        if (deadline && clock_mono_us() > deadline) {
            cli_error(cmd, "job %s: no final result within the wait timeout", id);
            goto out;
        }
        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
            goto out;
        if (!PQconsumeInput(conn)) {
            cli_error(cmd, "postgres: %s", PQerrorMessage(conn));
            goto out;
        }
        while ((n = PQnotifies(conn)))
            PQfreemem(n);
    }
out:
    PQfinish(conn);
    return rc;
}
