/* libFuzzer target for the descriptor parser. Any input must either be rejected with a
 * one-line printable message, or be accepted and then: serialise, re-parse to the same
 * bytes, and (once completed and signed) verify after its own round trip. Anything else
 * aborts, which libFuzzer reports as a finding. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descriptor.h"
#include "descriptor_sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[] = "fuzz-key-0123456789abcdef";

static void check(int ok, const char *what, const char *detail)
{
    if (!ok) {
        fprintf(stderr, "fuzz_descriptor: %s: %s\n", what, detail ? detail : "");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct descriptor *d = NULL, *d2 = NULL, *d3 = NULL;
    struct descriptor_keyring *kr = NULL;
    struct errbuf eb = {""};
    char *once = NULL, *twice = NULL, *signed_text = NULL;
    size_t len = 0;

    if (descriptor_parse((const char *)data, size, 0, &d, &eb) < 0) {
        check(eb.msg[0] != '\0', "rejected without a message", NULL);
        for (const char *p = eb.msg; *p; p++)
            check((unsigned char)*p >= 0x20, "message is not one printable line", eb.msg);
        return 0;
    }
    check(descriptor_to_json(d, true, &once, &len) == 0, "accepted but not serialisable", NULL);
    check(descriptor_parse(once, len, 0, &d2, &eb) == 0, "serialised form rejected", eb.msg);
    check(descriptor_to_json(d2, true, &twice, NULL) == 0, "re-parse not serialisable", once);
    check(strcmp(once, twice) == 0, "round trip changed the text", once);

    check(descriptor_fill_defaults(d2, "fuzz") == 0, "fill defaults failed", once);
    if (descriptor_sign(d2, "fuzz", key, sizeof(key) - 1) == 0) {
        kr = descriptor_keyring_new();
        check(kr && descriptor_keyring_add(kr, "fuzz", key, sizeof(key) - 1) == 0, "keyring", NULL);
        check(descriptor_to_json(d2, true, &signed_text, &len) == 0, "signed not serialisable",
              once);
        check(descriptor_parse(signed_text, len, DESCRIPTOR_REQUIRE_COMPLETE, &d3, &eb) == 0,
              "signed form rejected", eb.msg);
        check(descriptor_verify(d3, kr, &eb) == 0, "signature did not survive", eb.msg);
    } else {
        /* only a completed descriptor whose text would outgrow the limit can fail here */
        char *t = NULL;
        check(descriptor_to_json(d2, false, &t, NULL) == -E2BIG, "sign failed", once);
    }

    free(once);
    free(twice);
    free(signed_text);
    descriptor_keyring_free(kr);
    descriptor_free(d);
    descriptor_free(d2);
    descriptor_free(d3);
    return 0;
}
