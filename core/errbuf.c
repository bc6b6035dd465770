/* One-line user-facing errors: formatting, truncation and prefixing. */
#include "errbuf.h"

#include <stdio.h>
#include <string.h>

void errbuf_vset(struct errbuf *eb, const char *fmt, va_list ap)
{
    if (!eb)
        return;
    vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
}

void errbuf_set(struct errbuf *eb, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    errbuf_vset(eb, fmt, ap);
    va_end(ap);
}

void errbuf_prefix(struct errbuf *eb, const char *fmt, ...)
{
    char prefix[128];
    char old[sizeof(eb->msg)];
    va_list ap;

    if (!eb)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, eb->msg, sizeof(old));
    snprintf(eb->msg, sizeof(eb->msg), "%s: %s", prefix, old);
}
