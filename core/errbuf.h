/* A user-facing error: one line that names what is wrong, e.g.
 * "params.url: expected string". Library code fills it and returns a negative errno;
 * the daemon or the command line decides how to show it. */
#pragma once

#include <stdarg.h>

struct errbuf {
    char msg[256];
};

/* Formats into eb->msg (truncating). eb may be NULL, then nothing happens. */
void errbuf_set(struct errbuf *eb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void errbuf_vset(struct errbuf *eb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Prefixes the current message with "prefix: " (e.g. a file name or line number). */
void errbuf_prefix(struct errbuf *eb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
