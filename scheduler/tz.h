/* IANA time zones read from the system's tz database (TZif version 2+ files with their
 * POSIX TZ footer, so years past 2038 work), without the C library's TZ state: a loaded
 * zone is immutable and may be shared between threads. All instants are in seconds or
 * microseconds since the Unix epoch (UTC); "local" seconds are the wall-clock reading
 * counted as if it were UTC (local = utc + offset). */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct errbuf;
struct tz;

/* The folder zone names are looked up in. */
#define TZ_DIR "/usr/share/zoneinfo"

/* A span of UTC seconds [start, end) with one UTC offset. start/end are clamped to
 * +-TZ_FOREVER when the span is open. */
#define TZ_FOREVER ((int64_t)1 << 45) /* ~1.1 million years: beyond any int64 us */
struct tz_period {
    int64_t start;
    int64_t end;
    int32_t offset; /* seconds east of UTC */
};

/* How a local wall time maps to UTC. */
struct tz_local {
    int count;       /* 0: inside a gap, 1: unique, 2: occurs twice (overlap) */
    int64_t utc[2];  /* the occurrences in UTC seconds, earliest first (count of them) */
    int64_t gap_end; /* count == 0: the first UTC second after the gap */
};

/* Loads zone `name` (e.g. "Europe/London"); "UTC" and "Etc/UTC" need no file. The name
 * must be a plain IANA name: non-empty, relative, no "." or ".." component, only
 * [A-Za-z0-9._+-] and '/'. Returns 0, -EINVAL (bad name or corrupt file, eb says which),
 * -ENOENT (no such zone) or -ENOMEM. *ret_tz (caller frees with tz_free()) is written only
 * on success. */
int tz_load(const char *name, struct tz **ret_tz, struct errbuf *eb);

/* Same from the bytes of a TZif file already in memory (used by tests and fuzzing). */
int tz_load_tzif(const char *name, const unsigned char *data, size_t size, struct tz **ret_tz,
                 struct errbuf *eb);

/* Accepts NULL; returns NULL. */
struct tz *tz_free(struct tz *tz);

/* The name given to tz_load (borrowed, lives as long as tz). NULL tz is "UTC". */
const char *tz_name(const struct tz *tz);

/* True when the zone has one offset for all time (no transitions, no DST rule), like UTC:
 * callers may then skip the DST logic. NULL tz is UTC. */
int tz_is_fixed(const struct tz *tz);

/* The offset in seconds east of UTC in effect at utc_us. NULL tz is UTC. */
int32_t tz_offset_at(const struct tz *tz, int64_t utc_us);

/* The period of constant offset that holds UTC second utc_s. NULL tz is UTC. */
void tz_period_at(const struct tz *tz, int64_t utc_s, struct tz_period *ret);

/* Maps a local wall time (seconds, see above) to UTC: unique, in a gap or in an overlap. */
void tz_local_to_utc(const struct tz *tz, int64_t local_s, struct tz_local *ret);
