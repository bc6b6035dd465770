/* Waiting for a job's final result: LISTEN maintq_results, re-check on every notification
 * (and every second, in case a notification was missed while connecting). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Prints the final result and returns its monitoring exit code; 3 on timeout or error.
 * timeout_us 0 waits forever. */
int cli_wait_for_job(const char *cmd, const char *db_url, const char *id, int64_t timeout_us,
                     bool json);
