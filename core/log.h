/* Logging for the daemons and the command line (never called from core/ or jobs/ code
 * paths that return errors: they return, the caller logs once). One line per event on
 * stderr: human by default ("2026-03-08T07:00:00.123456Z info worker[123]: msg"), or one
 * JSON object per line with log_init(..., json = 1). */
#pragma once

#include <stdbool.h>

enum log_level {
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVEL_ERROR,
};

/* ident is borrowed and must outlive logging (a string literal). */
void log_init(const char *ident, enum log_level level, bool json);
/* Parses "debug", "info", "warn" or "error". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *ret);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
