/* Test-only: the descriptor fixtures under tests/fixtures/descriptors/<kind>/ (kind
 * "valid" or "invalid"), found through $MAINTQ_SOURCE_ROOT, for the descriptor tests. */
#pragma once

#include <stddef.h>

/* The whole file at path, NUL-terminated (at most twice DESCRIPTOR_MAX_BYTES are read);
 * *ret_len is its length. Fails the running cmocka test when it cannot be read. Caller
 * frees with free(). */
char *fixture_read(const char *path, size_t *ret_len);

/* Calls fn for every NAME.json in the kind's folder with its path, file name and text
 * (borrowed for the call); returns how many. Fails the running test on a missing folder. */
size_t fixture_each(const char *kind,
                    void (*fn)(const char *path, const char *name, const char *text, size_t len));
