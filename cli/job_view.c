/* Reading and printing a job's latest attempt from maintq.job_runs. */
#include "job_view.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char latest_sql[] =
    "SELECT job_id, attempt, type, queue, status, coalesce(error, ''),"
    " coalesce(result::text, 'null'), coalesce(worker, ''),"
    " to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    " to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    " coalesce(schedule, ''),"
    " jsonb_build_object('job_id', job_id, 'attempt', attempt, 'type', type, 'queue', queue,"
    "  'schedule', schedule, 'status', status, 'error', error, 'result', result,"
    "  'worker', worker, 'started_at', started_at, 'finished_at', finished_at,"
    "  'lock_fence', lock_fence)::text"
    " FROM maintq.job_runs WHERE job_id = $1::uuid ORDER BY attempt DESC LIMIT 1";

int job_view_exit_code(const char *status)
{
    if (strcmp(status, "ok") == 0)
        return CLI_EXIT_OK;
    if (strcmp(status, "warning") == 0)
        return CLI_EXIT_WARNING;
    if (strcmp(status, "critical") == 0)
        return CLI_EXIT_CRITICAL;
    return CLI_EXIT_UNKNOWN;
}

static int is_retry_pending(const char *status)
{
    return strcmp(status, "failed") == 0 || strcmp(status, "timeout") == 0 ||
           strcmp(status, "cancelled") == 0;
}

int job_view_print_latest(PGconn *conn, const char *cmd, const char *id, bool json, bool quiet,
                          char *ret_status, size_t status_size)
{
    const char *params[1] = {id};
    PGresult *res = PQexecParams(conn, latest_sql, 1, NULL, params, NULL, NULL, 0);
    const char *status;
    int r;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorMessage(res);

        cli_error(cmd, "postgres: %.*s", (int)strcspn(msg, "\n"), msg);
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    status = PQgetvalue(res, 0, 4);
    snprintf(ret_status, status_size, "%s", status);
    r = is_retry_pending(status) ? 0 : 1;
    if (quiet && r == 0) {
        PQclear(res);
        return 0;
    }
    if (json) {
        printf("%s\n", PQgetvalue(res, 0, 11));
    } else {
        printf("job       %s\n", PQgetvalue(res, 0, 0));
        printf("type      %s (queue %s)\n", PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
        if (*PQgetvalue(res, 0, 10))
            printf("schedule  %s\n", PQgetvalue(res, 0, 10));
        printf("status    %s%s\n", status, r ? "" : " (a retry follows)");
        printf("attempt   %s\n", PQgetvalue(res, 0, 1));
        printf("worker    %s\n", PQgetvalue(res, 0, 7));
        printf("started   %s\n", PQgetvalue(res, 0, 8));
        printf("finished  %s\n", PQgetvalue(res, 0, 9));
        if (*PQgetvalue(res, 0, 5))
            printf("error     %s\n", PQgetvalue(res, 0, 5));
        printf("result    %s\n", PQgetvalue(res, 0, 6));
    }
    PQclear(res);
    return r;
}
