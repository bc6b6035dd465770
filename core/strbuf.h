/* An append-only growing byte buffer, for text built piece by piece: canonical descriptors,
 * COPY data, JSON batches, Redis commands (struct resp_cmd builds on it). The fast part (a
 * bounds check and a memcpy) is inline, so a hot writer pays no call per append; only
 * growing calls out. The first failure (out of memory) is kept in err and later appends do
 * nothing, so a writer can add a whole record and check once. There is always room for a
 * terminating NUL after the data, which strbuf_detach writes. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Zero-initialise (struct strbuf b = {0}), append, then detach or release. */
struct strbuf {
    char *buf;  /* owned; NULL until the first append that needed room */
    size_t len; /* bytes of data */
    size_t cap; /* bytes allocated: always more than len once buf is set */
    int err;    /* 0, or -ENOMEM from the first append that failed */
};

/* The room strbuf_reserve() could not find: grows the buffer to hold more further bytes and
 * a NUL (doubling from 512 bytes). Returns 0 or -ENOMEM, which is kept in b->err. Call
 * strbuf_reserve() instead. */
int strbuf_grow(struct strbuf *b, size_t more);

/* Makes room for more bytes after the data, plus a NUL: a writer may then write up to
 * more bytes at b->buf + b->len and add what it wrote to b->len. Returns 0 or b->err. */
static inline int strbuf_reserve(struct strbuf *b, size_t more)
{
    if (b->err)
        return b->err;
    if (b->cap - b->len > more)
        return 0;
    return strbuf_grow(b, more);
}

/* Appends n bytes of p. Returns 0 or b->err. */
static inline int strbuf_add(struct strbuf *b, const void *p, size_t n)
{
    int r = strbuf_reserve(b, n);

    if (r < 0)
        return r;
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 0;
}

/* Appends a string literal (its length is known at compile time). */
#define strbuf_add_lit(b, lit) strbuf_add(b, "" lit, sizeof(lit) - 1)

static inline int strbuf_add_str(struct strbuf *b, const char *s)
{
    return strbuf_add(b, s, strlen(s));
}

/* Appends v in decimal. */
static inline int strbuf_add_int(struct strbuf *b, int64_t v)
{
    char tmp[24], *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return strbuf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* Records a failure of the writer's own (r < 0) in b->err unless one is there already, so
 * that the buffer's one check covers it too. Returns b->err. */
int strbuf_fail(struct strbuf *b, int r);

/* Forgets the data and any error, keeping the memory for the next use. */
static inline void strbuf_reset(struct strbuf *b)
{
    b->len = 0;
    b->err = 0;
}

/* The data, NUL-terminated, handed to the caller (caller frees with free()), its length in
 * *ret_len when ret_len is not NULL; b is left empty and reusable. NULL when an append had
 * failed (b is then released) or memory runs out. */
char *strbuf_detach(struct strbuf *b, size_t *ret_len);

/* Frees the buffer and leaves an empty one. */
void strbuf_release(struct strbuf *b);
