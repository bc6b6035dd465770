/* The job descriptor: the JSON object that travels from `maintq submit` and the scheduler
 * through the Redis streams to a worker (schemas/job.schema.json is the same contract for
 * people and other languages). This module parses and validates it, fills its defaults
 * and serialises it; descriptor_sig.h signs and verifies it. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"
#include "uuid.h"

#define DESCRIPTOR_MAX_BYTES 65536 /* the whole JSON text */
#define DESCRIPTOR_MAX_DEPTH 16    /* the descriptor object itself is depth 1 */
#define DESCRIPTOR_MAX_STRING 4096 /* bytes of every string and object key */
#define DESCRIPTOR_TIME_UNSET INT64_MIN

/* Defaults filled by parsing when the field is absent. */
#define DESCRIPTOR_DEFAULT_QUEUE "default"
#define DESCRIPTOR_DEFAULT_TIMEOUT_S 300
#define DESCRIPTOR_DEFAULT_MAX_ATTEMPTS 3
#define DESCRIPTOR_DEFAULT_BACKOFF_BASE_S 1
#define DESCRIPTOR_DEFAULT_BACKOFF_MAX_S 300
#define DESCRIPTOR_DEFAULT_SUBMITTED_BY "unknown"

struct descriptor {
    char id[UUID_STR_LEN];    /* "" when absent (allowed without DESCRIPTOR_REQUIRE_COMPLETE) */
    char *type;               /* owned; never NULL after parsing */
    char *queue;              /* owned; never NULL after parsing */
    json_t *params;           /* one owned reference to an object; never NULL after parsing */
    int64_t timeout_s;        /* 1..86400 */
    int64_t max_attempts;     /* 1..100 */
    int64_t backoff_base_s;   /* 0..86400, <= backoff_max_s */
    int64_t backoff_max_s;    /* 0..86400 */
    char *lock;               /* owned, NULL when absent */
    char *unique_key;         /* owned, NULL when absent; set exactly when unique_for_s > 0 */
    int64_t unique_for_s;     /* 0 when absent, else 1..31*86400 */
    char *schedule;           /* owned, NULL when absent; set exactly when scheduled_for is */
    int64_t scheduled_for_us; /* DESCRIPTOR_TIME_UNSET when absent */
    int64_t not_after_us;     /* DESCRIPTOR_TIME_UNSET when absent */
    int64_t created_at_us;    /* DESCRIPTOR_TIME_UNSET when absent (see the flag below) */
    char *submitted_by;       /* owned, NULL when absent (see the flag below) */
    char *sig;                /* owned, NULL when unsigned; "v1:<key id>:<64 hex>" */
};

enum descriptor_flags {
    /* The worker's view: id and created_at must be present, and an absent submitted_by
     * reads as "unknown". Without it (a submit), they may be absent and are left unset
     * for descriptor_fill_defaults(). */
    DESCRIPTOR_REQUIRE_COMPLETE = 1 << 0,
};

/* Parses and validates JSON text (need not be NUL-terminated). Checks, in order: size
 * (DESCRIPTOR_MAX_BYTES), JSON syntax (duplicate keys and NUL bytes rejected), a top-level
 * object, nesting depth and string lengths everywhere, unknown fields, then every field;
 * fills the static defaults of absent fields. params is taken from the parsed tree without
 * copying. On failure returns -EINVAL (or -E2BIG for size, -ENOMEM) with a one-line message
 * in eb naming the field, e.g. "timeout_s: expected integer".
 * *ret_d is written only on success; caller frees with descriptor_free(). */
int descriptor_parse(const char *text, size_t len, unsigned flags, struct descriptor **ret_d,
                     struct errbuf *eb);

/* The same checks on an already parsed object (borrowed, not modified; params is copied,
 * so the caller may change obj afterwards). The size limit applies to its compact form. */
int descriptor_from_json(json_t *obj, unsigned flags, struct descriptor **ret_d, struct errbuf *eb);

/* Fills what a submitter supplies when absent: a new UUIDv7 id, created_at = now, and
 * submitted_by = the given name (borrowed; NULL means "unknown"). Returns 0, -EINVAL (a
 * name not 1-200 bytes), -ENOMEM or an error from uuid7_new(). */
int descriptor_fill_defaults(struct descriptor *d, const char *submitted_by);

/* Serialises d as compact JSON with sorted keys: every field with a default written out,
 * optional fields only when set, times as RFC 3339 UTC with microseconds. Includes sig
 * when with_sig is true (the signing canonical form is with_sig false). *ret_text is
 * NUL-terminated, caller frees with free(); *ret_len (may be NULL) is its strlen.
 * Returns 0, -ENOMEM, or -E2BIG when the text would exceed DESCRIPTOR_MAX_BYTES. */
int descriptor_to_json(const struct descriptor *d, bool with_sig, char **ret_text, size_t *ret_len);

/* Accepts NULL and half-built descriptors; returns NULL. */
struct descriptor *descriptor_free(struct descriptor *d);
