/* Differential libFuzzer target for the descriptor's fast paths. For any input:
 * - whenever the fast reader (descriptor_parse_fast) accepts it, the full jansson reader
 *   accepts it too and both descriptors serialise to the same bytes, and
 *   descriptor_parse() always answers exactly as the full reader (code and message);
 * - whenever the full reader accepts it, the direct writer gives the same bytes as the old
 *   jansson serialiser (tests/unit/descriptor_ref.c), as read and once completed and signed;
 * - the input's bytes (up to a NUL) as lock and submitted_by of a fixed descriptor give the
 *   same bytes, or the same failure, from the writer and the reference.
 * Anything else aborts, which libFuzzer reports as a finding. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descriptor.h"
#include "descriptor_int.h"
#include "descriptor_ref.h"
#include "descriptor_sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[] = "fuzz-key-0123456789abcdef";

static void check(int ok, const char *what, const char *detail)
{
    if (!ok) {
        fprintf(stderr, "fuzz_descriptor_fastpath: %s: %s\n", what, detail ? detail : "");
        abort();
    }
}

/* The writer and the reference agree on d: both fail, or both give the same text. */
static void same_as_reference(const struct descriptor *d)
{
    for (int with_sig = 0; with_sig <= 1; with_sig++) {
        char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        int ra = descriptor_serialise(d, with_sig, &a, &alen);
        int rb = descriptor_ref_serialise(d, with_sig, &b, &blen);

        check(ra == rb, "writer and reference disagree on failing", b ? b : a);
        check(ra < 0 || (alen == blen && memcmp(a, b, alen) == 0), "writer differs from reference",
              b);
        free(a);
        free(b);
    }
}

static char *text_of(const struct descriptor *d)
{
    char *text = NULL;
    size_t len = 0;

    check(descriptor_serialise(d, true, &text, &len) == 0, "accepted but not serialisable", NULL);
    return text;
}

static void readers(const char *text, size_t size, unsigned flags)
{
    struct descriptor *fast = NULL, *full = NULL, *d = NULL;
    struct errbuf eb_full = {""}, eb = {""};
    int rf = descriptor_parse_fast(text, size, flags, &fast);
    int rl = descriptor_parse_full(text, size, flags, &full, &eb_full);
    int rp = descriptor_parse(text, size, flags, &d, &eb);

    check(rf == 0 || rf == -EAGAIN, "fast reader returned an error code", NULL);
    check(rf < 0 || rl == 0, "fast reader accepted what the full one rejects", eb_full.msg);
    check(rp == rl && (rl == 0 || strcmp(eb.msg, eb_full.msg) == 0),
          "descriptor_parse differs from the full reader", eb.msg);
    if (rf == 0) {
        char *a = text_of(fast), *b = text_of(full);
        check(strcmp(a, b) == 0, "readers give different descriptors", b);
        free(a);
        free(b);
    }
    if (rl == 0) {
        same_as_reference(full);
        if (descriptor_fill_defaults(full, "fuzz") == 0 &&
            descriptor_sign(full, "fuzz", key, sizeof(key) - 1) == 0)
            same_as_reference(full);
    }
    descriptor_free(fast);
    descriptor_free(full);
    descriptor_free(d);
}

/* The input as free text in a descriptor's strings. */
static void strings(const uint8_t *data, size_t size)
{
    struct descriptor *d = NULL;
    struct errbuf eb = {""};
    char *s = malloc(size + 1);

    check(s != NULL, "out of memory", NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    check(descriptor_parse("{\"type\":\"noop\",\"params\":{\"a\":[1,2.5]}}", 38, 0, &d, &eb) == 0,
          "fixed descriptor rejected", eb.msg);
    d->lock = s;
    d->submitted_by = strdup(s);
    same_as_reference(d);
    descriptor_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    readers((const char *)data, size, 0);
    readers((const char *)data, size, DESCRIPTOR_REQUIRE_COMPLETE);
    strings(data, size);
    return 0;
}
