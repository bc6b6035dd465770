/* A job's latest recorded attempt as `maintq status` and `submit --wait` show it. */
#pragma once

#include <stdbool.h>

#include <libpq-fe.h>

/* Prints the latest attempt of job id from maintq.job_runs, as text or one JSON object.
 * Returns 1 when a row was printed and is final (no retry follows), 0 when the job has
 * no row or its latest attempt will be retried (nothing printed when quiet), -1 on a
 * query error (printed as "maintq CMD: ..."). *ret_status gets the status text. */
int job_view_print_latest(PGconn *conn, const char *cmd, const char *id, bool json, bool quiet,
                          char *ret_status, size_t status_size);

/* Monitoring exit code of a final status: ok 0, warning 1, critical 2, anything else 3. */
int job_view_exit_code(const char *status);
