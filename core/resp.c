/* RESP command encoding (see resp.h). Arguments are appended as "$<len>\r\n<bytes>\r\n"
 * behind a fixed headroom; encoding writes "*<count>\r\n" and any leading arguments right
 * in front of them, so nothing is copied twice. */
#include "resp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DIGITS_MAX 20 /* of a size_t or the magnitude of an int64_t */

/* Writes the decimal digits of v at p; returns how many. */
static size_t put_uint(char *p, uint64_t v)
{
    char tmp[DIGITS_MAX];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* Writes c, the digits of v and "\r\n" at p; returns how many bytes. */
static size_t put_header(char *p, char c, uint64_t v)
{
    size_t n = 1 + put_uint(p + 1, v);

    p[0] = c;
    p[n] = '\r';
    p[n + 1] = '\n';
    return n + 2;
}

/* Room for more bytes of arguments, the headroom kept in front of the first. */
static int reserve(struct resp_cmd *c, size_t more)
{
    if (c->b.len == 0 && strbuf_reserve(&c->b, RESP_HEADROOM) == 0)
        c->b.len = RESP_HEADROOM;
    return strbuf_reserve(&c->b, more);
}

void resp_cmd_add(struct resp_cmd *c, const void *s, size_t len)
{
    /* "$", digits, "\r\n", the bytes, "\r\n" */
    if (reserve(c, len + DIGITS_MAX + 5) < 0)
        return;
    c->b.len += put_header(c->b.buf + c->b.len, '$', len);
    if (len)
        memcpy(c->b.buf + c->b.len, s, len);
    c->b.len += len;
    c->b.buf[c->b.len++] = '\r';
    c->b.buf[c->b.len++] = '\n';
    c->argc++;
}

void resp_cmd_add_str(struct resp_cmd *c, const char *s)
{
    resp_cmd_add(c, s, strlen(s));
}

void resp_cmd_add_int(struct resp_cmd *c, int64_t v)
{
    char buf[DIGITS_MAX + 1];
    size_t n = 0;

    if (v < 0)
        buf[n++] = '-';
    n += put_uint(buf + n, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    resp_cmd_add(c, buf, n);
}

int resp_cmd_encode(struct resp_cmd *c, int nlead, const char *const *lead, const char **ret,
                    size_t *ret_len)
{
    char head[RESP_HEADROOM];
    size_t n, lens[8];

    if (c->b.err)
        return c->b.err;
    if (nlead < 0 || nlead > 8)
        return -E2BIG;
    if (c->argc + nlead < 1)
        return -EINVAL;
    if (reserve(c, 0) < 0) /* an empty command still needs its headroom */
        return c->b.err;
    /* Measure first: each lead takes "$", its length's digits, "\r\n", itself, "\r\n". */
    n = put_header(head, '*', (uint64_t)c->argc + (uint64_t)nlead);
    for (int i = 0; i < nlead; i++) {
        char digits[DIGITS_MAX];

        lens[i] = strlen(lead[i]);
        if (lens[i] > RESP_HEADROOM)
            return -E2BIG;
        n += 5 + put_uint(digits, lens[i]) + lens[i];
        if (n > RESP_HEADROOM)
            return -E2BIG;
    }
    n = put_header(head, '*', (uint64_t)c->argc + (uint64_t)nlead);
    for (int i = 0; i < nlead; i++) {
        n += put_header(head + n, '$', lens[i]);
        memcpy(head + n, lead[i], lens[i]);
        n += lens[i];
        head[n++] = '\r';
        head[n++] = '\n';
    }
    memcpy(c->b.buf + RESP_HEADROOM - n, head, n);
    *ret = c->b.buf + RESP_HEADROOM - n;
    *ret_len = c->b.len - (RESP_HEADROOM - n);
    return 0;
}

void resp_cmd_release(struct resp_cmd *c)
{
    strbuf_release(&c->b);
    c->argc = 0;
}
