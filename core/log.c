/* Line-oriented logging to stderr, human or JSON, with a level filter. Each event is
 * written with a single write(2) so lines from forked workers never interleave. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

static const char *const level_names[] = {
    [LOG_LEVEL_DEBUG] = "debug",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_ERROR] = "error",
};

static const char *log_ident = "maintq";
static enum log_level log_min = LOG_LEVEL_INFO;
static bool log_json;

void log_init(const char *ident, enum log_level level, bool json)
{
    log_ident = ident;
    log_min = level;
    log_json = json;
}

int log_level_parse(const char *s, enum log_level *ret)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(s, level_names[i]) == 0) {
            *ret = (enum log_level)i;
            return 0;
        }
    return -EINVAL;
}

bool log_enabled(enum log_level level)
{
    return level >= log_min;
}

/* Appends s to buf as the inside of a JSON string. */
static size_t json_escape(char *buf, size_t len, size_t cap, const char *s)
{
    for (; *s && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
        } else {
            buf[len++] = (char)c;
        }
    }
    return len;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char msg[2048], line[4608], ts[CLOCK_RFC3339_MAX];
    size_t len;
    va_list ap;
    int saved = errno;

    if (level < log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    clock_format_rfc3339_us(clock_now_us(), ts);
    if (log_json) {
        len = (size_t)snprintf(line, sizeof(line),
                               "{\"ts\":\"%s\",\"level\":\"%s\",\"ident\":\"%s\",\"pid\":%d,"
                               "\"msg\":\"",
                               ts, level_names[level], log_ident, (int)getpid());
        len = json_escape(line, len, sizeof(line) - 3, msg);
        line[len++] = '"';
        line[len++] = '}';
    } else {
        len = (size_t)snprintf(line, sizeof(line), "%s %s %s[%d]: %s", ts, level_names[level],
                               log_ident, (int)getpid(), msg);
        if (len > sizeof(line) - 2)
            len = sizeof(line) - 2;
    }
    line[len++] = '\n';
    if (write(STDERR_FILENO, line, len) < 0)
        (void)0; /* nowhere left to report a failed log write */
    errno = saved;
}
