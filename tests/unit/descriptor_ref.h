/* Test-only: the descriptor serialiser as it was before descriptor_write.c, building a
 * jansson object and dumping it with JSON_SORT_KEYS. The unit tests and the differential
 * fuzz target compare the fast serialiser with it, byte for byte. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "descriptor.h"

/* As descriptor_serialise(): the compact, sorted text whatever its size. *ret_text is
 * NUL-terminated, caller frees with free(). Returns 0 or -ENOMEM (also for what jansson
 * refuses: a string that is not UTF-8, a NULL type or queue). */
int descriptor_ref_serialise(const struct descriptor *d, bool with_sig, char **ret_text,
                             size_t *ret_len);
