/* Time in maintq is one type: int64_t microseconds since the Unix epoch (UTC) for wall
 * time, or microseconds of CLOCK_MONOTONIC for timers. Conversions happen only here. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#define USEC_PER_SEC 1000000LL

/* A libevent/select timeout of ms milliseconds (ms >= 0). */
struct timeval clock_timeval_from_ms(int64_t ms);

int64_t clock_now_us(void);
int64_t clock_mono_us(void);

/* Civil date <-> days since 1970-01-01 (proleptic Gregorian, any year in +-1e6). */
int64_t clock_days_from_civil(int64_t y, unsigned m, unsigned d);
void clock_civil_from_days(int64_t days, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d);

/* Formats as RFC 3339 in UTC with whole seconds: "2026-03-08T07:00:00Z".
 * buf must hold CLOCK_RFC3339_MAX bytes. Returns buf. */
#define CLOCK_RFC3339_MAX 40
char *clock_format_rfc3339(int64_t us, char *buf);

/* Same with microseconds: "2026-03-08T07:00:00.123456Z". */
char *clock_format_rfc3339_us(int64_t us, char *buf);

/* Parses RFC 3339: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)"; 't', 'z' and a space
 * instead of 'T' are accepted. Returns 0 or -EINVAL; *ret_us written on success only. */
int clock_parse_rfc3339(const char *s, int64_t *ret_us);
