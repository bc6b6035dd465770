/* Reading the Redis queue for the query commands (status, dlq, workers): the list of queue
 * streams, chunked walks over a stream, fields of flat [key, value, ...] replies (stream
 * entries, XINFO), stream ids, and reply checks that print one line. Blocking hiredis
 * calls: for the command line only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

/* Entries per XRANGE call of a walk: big enough to need few round trips, small enough
 * that one reply stays a few MB at the 64 KiB descriptor limit. */
#define QR_CHUNK 1000

/* Queue stream keys ("{maintq}:q:default"), sorted. Owns the strings; release with
 * qr_names_release(). */
struct qr_names {
    char **v;
    size_t n;
};
void qr_names_release(struct qr_names *names);

/* Checks a reply of ctx to command what: NULL (connection broke), an error reply, or a
 * type other than type (-1: any type but an error) is printed as "maintq CMD: redis: ..."
 * and gives -EIO; otherwise 0. */
int qr_check(const char *cmd, const redisContext *ctx, const redisReply *r, int type,
             const char *what);

/* Lists the stream keys matching "<prefix>:q:*" (SCAN ... TYPE stream). Returns 0 with
 * *ret filled, or -EIO / -ENOMEM with the error printed. */
int qr_list_queues(redisContext *ctx, const char *cmd, const char *prefix, struct qr_names *ret);

/* The value of field name in a flat [k1, v1, k2, v2, ...] array reply (the fields of a
 * stream entry, an XINFO record), or NULL. Borrowed from flat. */
const redisReply *qr_field(const redisReply *flat, const char *name);
/* The field as a string (NULL when missing or not a string). Borrowed. */
const char *qr_field_str(const redisReply *flat, const char *name);
/* The field as an integer (an integer reply or a decimal string), or def. */
int64_t qr_field_int(const redisReply *flat, const char *name, int64_t def);

/* Called per entry element ([id, [field, value, ...]]) of a walk. Returns 0 to go on,
 * 1 to stop the walk, or a negative errno to stop it with that error (already printed). */
typedef int qr_entry_fn(const redisReply *entry, void *data);

/* Walks stream key from the oldest entry to end ("+" or an entry id, inclusive) in chunks
 * of QR_CHUNK. Returns 0 when the walk ended, 1 when fn stopped it, or a negative errno
 * (printed). A missing key is an empty stream. */
int qr_stream_walk(redisContext *ctx, const char *cmd, const char *key, const char *end,
                   qr_entry_fn *fn, void *data);

/* True when s is a complete stream entry id "MS-SEQ". */
bool qr_stream_id_valid(const char *s);
/* Orders two valid stream ids: <0, 0, >0. */
int qr_stream_id_cmp(const char *a, const char *b);

/* True when id is a UUID in canonical 8-4-4-4-12 form (any version, either case). */
bool qr_uuid_valid(const char *id);

/* True when descriptor (len bytes of JSON) is an object whose top-level "id" is id. A
 * byte search for "id":"<id>" rejects most entries before anything is parsed. */
bool qr_descriptor_has_id(const char *descriptor, size_t len, const char *id);

/* The Redis server's clock in ms (TIME): the delayed set and the dead letter are stamped
 * with it, so durations shown next to them use it too. Returns 0 or -EIO (printed). */
int qr_server_time_ms(redisContext *ctx, const char *cmd, int64_t *ret_ms);

/* Formats ms since the epoch as RFC 3339 UTC (whole seconds) into buf, which must hold
 * CLOCK_RFC3339_MAX bytes. Returns buf. */
char *qr_format_ms(int64_t ms, char *buf);
