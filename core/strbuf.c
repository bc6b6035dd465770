/* The slow half of struct strbuf (see strbuf.h): growing, detaching and releasing. The
 * appends themselves are inline in the header. */
#include "strbuf.h"

#include <errno.h>
#include <stdlib.h>

#define STRBUF_FIRST_CAP 512

int strbuf_grow(struct strbuf *b, size_t more)
{
    size_t cap = b->cap ? b->cap : STRBUF_FIRST_CAP;
    char *buf;

    if (b->err)
        return b->err;
    if (more >= SIZE_MAX / 2 - b->len)
        return b->err = -ENOMEM;
    while (cap - b->len <= more)
        cap *= 2;
    if (cap == b->cap)
        return 0;
    buf = realloc(b->buf, cap);
    if (!buf)
        return b->err = -ENOMEM;
    b->buf = buf;
    b->cap = cap;
    return 0;
}

int strbuf_fail(struct strbuf *b, int r)
{
    if (r < 0 && !b->err)
        b->err = r;
    return b->err;
}

char *strbuf_detach(struct strbuf *b, size_t *ret_len)
{
    char *text;

    if (strbuf_reserve(b, 0) < 0) {
        strbuf_release(b);
        return NULL;
    }
    b->buf[b->len] = '\0';
    text = b->buf;
    if (ret_len)
        *ret_len = b->len;
    *b = (struct strbuf){0};
    return text;
}

void strbuf_release(struct strbuf *b)
{
    free(b->buf);
    *b = (struct strbuf){0};
}
