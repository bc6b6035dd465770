/* UUIDv7 (RFC 9562): time-ordered ids for jobs. The text form is the lower-case canonical
 * 8-4-4-4-12; sorting ids as strings sorts them by creation time. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define UUID_STR_LEN 37 /* 36 characters and the NUL */

/* Writes a new UUIDv7 into out: 48-bit Unix time in milliseconds, version 7, variant 10,
 * 74 random bits from getrandom(). Ids from one process are strictly increasing: when the
 * clock has not moved past the last id's millisecond (same millisecond, or the clock went
 * back), the previous id's 74 random bits are incremented by one instead of drawn afresh
 * (RFC 9562 section 6.2, method 2), and if they run out the millisecond is advanced. A
 * forked child (told by a pthread_atfork handler) draws fresh bits, so parent and children never
 * repeat each other's sequence. Thread-safe. Returns 0 or a negative errno from
 * getrandom(); out is written only on success. */
int uuid7_new(char out[UUID_STR_LEN]);

/* True when s is exactly a lower-case canonical UUID with version 7 and variant 10. */
bool uuid7_is_valid(const char *s);

/* The Unix time in milliseconds held in a UUIDv7's first 48 bits. Returns 0 or -EINVAL
 * when s is not uuid7_is_valid(); *ret_ms is written only on success. */
int uuid7_time_ms(const char *s, int64_t *ret_ms);
