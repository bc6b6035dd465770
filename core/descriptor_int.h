/* What the descriptor files share and nothing else includes (but their tests): the
 * top-level fields as a reader found them, before validation. Two readers fill them -- the
 * full one over a jansson tree (descriptor.c) and the fast scanner over canonical-looking
 * text (descriptor_scan.c) -- and one validation turns them into a struct descriptor, so a
 * field is checked by one piece of code whichever reader saw it. descriptor_write.c
 * serialises. Field ids are in strcmp order of their names: the order of the canonical
 * form. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "descriptor.h"

enum field_id {
    FIELD_BACKOFF,
    FIELD_CREATED_AT,
    FIELD_ID,
    FIELD_LOCK,
    FIELD_MAX_ATTEMPTS,
    FIELD_NOT_AFTER,
    FIELD_PARAMS,
    FIELD_QUEUE,
    FIELD_SCHEDULE,
    FIELD_SCHEDULED_FOR,
    FIELD_SIG,
    FIELD_SUBMITTED_BY,
    FIELD_TIMEOUT_S,
    FIELD_TYPE,
    FIELD_UNIQUE_FOR_S,
    FIELD_UNIQUE_KEY,
    N_FIELDS
};

/* The names, indexed by enum field_id. */
extern const char *const descriptor_field_names[N_FIELDS];

/* The field id of key (len bytes, need not be NUL-terminated), or -1 when unknown. */
int descriptor_field_find(const char *key, size_t len);

enum field_kind { KIND_ABSENT, KIND_STRING, KIND_INTEGER, KIND_OBJECT, KIND_OTHER };

struct field {
    enum field_kind kind;
    const char *s; /* KIND_STRING: borrowed, len bytes followed by a NUL */
    size_t len;
    int64_t n;   /* KIND_INTEGER */
    json_t *obj; /* KIND_OBJECT: borrowed (see descriptor_scan() for params' reference) */
};

struct fields {
    struct field f[N_FIELDS];
    struct field base_s, max_s;  /* backoff's members, when backoff is an object */
    const char *unknown;         /* the first unknown top-level key (borrowed), or NULL */
    const char *backoff_unknown; /* the first unknown key inside backoff (borrowed), or NULL */
};

/* Reads the top-level object of text (len bytes) into *ret (all of it written on success)
 * when the text keeps to the subset the scanner handles: the object, in any key order and
 * with any JSON whitespace, of known, distinct keys without escapes whose values are
 * strings without escapes (at most DESCRIPTOR_MAX_STRING bytes of valid UTF-8), plain
 * integers (at most 18 digits), backoff as an object of distinct base_s and max_s integers,
 * or params as an object (parsed by jansson from its span of the text). strings holds the
 * NUL-terminated copies the string fields point to (size bytes). On success, when
 * ret->f[FIELD_PARAMS].obj is set it is a new reference the caller drops with json_decref();
 * an empty params ("{}") is reported as absent (the default is the same empty object).
 * Returns 0, or -EAGAIN for anything else (the full parser then decides, and words any
 * error); never a message. */
int descriptor_scan(const char *text, size_t len, char *strings, size_t size, struct fields *ret);

/* The two readers of descriptor_parse(), for the differential tests: it tries the fast one
 * and, when that declines, runs the full one. The fast one returns 0 with a descriptor
 * equal to what the full one would give, or -EAGAIN without one (outside what the scanner
 * handles, invalid, or out of memory); it never words an error. The full one is
 * descriptor_parse() as documented in descriptor.h. */
int descriptor_parse_fast(const char *text, size_t len, unsigned flags, struct descriptor **ret_d);
int descriptor_parse_full(const char *text, size_t len, unsigned flags, struct descriptor **ret_d,
                          struct errbuf *eb);

/* The compact, sorted text of d whatever its size (descriptor_to_json() without the size
 * limit). *ret_text is NUL-terminated, caller frees with free(). Returns 0 or -ENOMEM (also
 * when a string is not valid UTF-8 or params cannot be dumped, as jansson failed before). */
int descriptor_serialise(const struct descriptor *d, bool with_sig, char **ret_text,
                         size_t *ret_len);

/* The length (1-4) of the UTF-8 sequence at s (avail > 0 bytes), or 0 when it is not one
 * jansson accepts: no stray continuation bytes, no overlong forms, no surrogates, nothing
 * above U+10FFFF. Reading and writing use this one rule. */
static inline size_t descriptor_utf8_len(const char *s, size_t avail)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n;
    uint32_t cp;

    if (u[0] < 0x80)
        return 1;
    if (u[0] >= 0xc2 && u[0] <= 0xdf) {
        n = 2;
        cp = u[0] & 0x1fu;
    } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        n = 3;
        cp = u[0] & 0x0fu;
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        n = 4;
        cp = u[0] & 0x07u;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (u[i] < 0x80 || u[i] > 0xbf)
            return 0;
        cp = (cp << 6) | (u[i] & 0x3fu);
    }
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (n == 3 && cp < 0x800) ||
        (n == 4 && cp < 0x10000))
        return 0;
    return n;
}
