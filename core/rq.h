/* The Redis queue's names and encodings (DESIGN.md "Redis layout"), shared by the worker,
 * the scheduler and the command line: key names under a configurable prefix, stream entries
 * as read back, and the delayed-member encoding (the scripts' arguments are built with
 * resp.h). Nothing here talks to Redis. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define RQ_DEFAULT_PREFIX "{maintq}"
#define RQ_GROUP "workers"
#define RQ_KEY_MAX 512

/* Writes "<prefix>:<what>" (e.g. "{maintq}:q:default"). Returns 0, or -ENAMETOOLONG. */
int rq_key(char *buf, size_t size, const char *prefix, const char *what, const char *name);

/* A stream entry of a queue as XREADGROUP returns it. Strings borrow from the reply. */
struct rq_entry {
    const char *id;          /* "1700000000000-0" */
    const char *descriptor;  /* field d; NULL when missing */
    size_t descriptor_len;
    int64_t attempt;         /* field n; 0 when missing or malformed */
    int64_t max_attempts;    /* field m; 0 when missing or malformed */
    const char *note;        /* field r; NULL when absent */
};

/* Reads one entry element ([id, [field, value, ...]]) of an XREADGROUP/XRANGE reply.
 * Returns 0, or -EBADMSG when the element is not an entry (a deleted entry's fields are a
 * nil reply: returns 0 with descriptor NULL). */
int rq_entry_from_reply(const redisReply *e, struct rq_entry *ret);

/* Builds the delayed-set member "queue\nattempt\nmax\ndescriptor". Caller frees with free(). */
char *rq_delayed_member(const char *queue, int64_t attempt, int64_t max_attempts,
                        const char *descriptor, size_t descriptor_len, size_t *ret_len);
