/* Strict number and duration parsing: the whole string must be the number, no garbage,
 * no silent overflow. Use these instead of atoi/strtol at every input edge. */
#pragma once

#include <stdint.h>

/* Parses a base-10 integer in [min, max]. Returns 0, -EINVAL (not a number, empty,
 * trailing garbage) or -ERANGE (outside [min, max]). *ret is written only on success. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);

/* Parses a duration: an integer followed by one unit of ms, s, m, h, d (e.g. "30s",
 * "1500ms", "2h"); a bare integer is seconds. Result in microseconds, >= 0.
 * Returns 0, -EINVAL or -ERANGE. */
int parse_duration_us(const char *s, int64_t *ret_us);
