/* Signing job descriptors: HMAC-SHA256 over the canonical form with a key id, so workers
 * can require that a job came from a holder of the key and keys can rotate.
 *
 * Canonical form (the exact bytes that are signed, reproducible in any language): the
 * descriptor as descriptor_to_json(d, false, ...) writes it, i.e.
 *   - the object without "sig"; every field with a default written out (queue, params,
 *     timeout_s, max_attempts, backoff with both base_s and max_s, submitted_by); optional
 *     fields only when set; id, created_at and submitted_by must be present to sign;
 *   - created_at, scheduled_for and not_after as UTC "YYYY-MM-DDTHH:MM:SS.ffffffZ"
 *     (exactly six fraction digits);
 *   - keys sorted by their UTF-8 bytes at every level, no whitespace at all;
 *   - strings as UTF-8, escaping only '"' and '\' (as \" and \\) and control characters
 *     below 0x20 (\b \f \n \r \t, the others as \u00XX with upper-case hex); '/' and
 *     everything from 0x7f up are written as they are;
 *   - integers in plain decimal; reals as C printf("%.17g") with ".0" appended when the
 *     result has neither '.' nor 'e', and the exponent written without '+' or leading
 *     zeros (0.1 -> 0.10000000000000001, 1e5 -> 100000.0, 1e-9 -> 1.0000000000000001e-9).
 *     Prefer integers in params of signed jobs.
 * sig = "v1:" key_id ":" 64 lower-case hex digits of HMAC-SHA256(key, canonical form). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "descriptor.h"
#include "errbuf.h"

#define DESCRIPTOR_KEY_ID_MAX 64 /* key ids: 1..64 of [A-Za-z0-9_.-] */
#define DESCRIPTOR_KEY_MIN 16    /* bytes of key material, at least */

/* A set of (key id, key) pairs a verifier accepts; several during a rotation. */
struct descriptor_keyring;

/* Caller frees with descriptor_keyring_free(). NULL when out of memory. */
struct descriptor_keyring *descriptor_keyring_new(void);

/* Adds a key (key_id and key are copied). Returns 0, -EINVAL (bad key id, key shorter
 * than DESCRIPTOR_KEY_MIN), -EEXIST (key id already present) or -ENOMEM. */
int descriptor_keyring_add(struct descriptor_keyring *kr, const char *key_id, const uint8_t *key,
                           size_t keylen);

/* Wipes the key material. Accepts NULL; returns NULL. */
struct descriptor_keyring *descriptor_keyring_free(struct descriptor_keyring *kr);

/* Sets d->sig (replacing any previous one) over d's canonical form. d must be complete
 * (id, created_at, submitted_by set; see descriptor_fill_defaults()). Returns 0, -EINVAL
 * (incomplete descriptor, bad key id, short key), -E2BIG or -ENOMEM. */
int descriptor_sign(struct descriptor *d, const char *key_id, const uint8_t *key, size_t keylen);

/* Checks d->sig against the keyring, comparing in constant time. Returns 0 when valid,
 * else with a message in eb: -ENOMSG "sig: missing", -EINVAL "sig: malformed ...",
 * -ENOKEY `sig: unknown key id "k9"`, -EBADMSG "sig: signature mismatch"; or -ENOMEM. */
int descriptor_verify(const struct descriptor *d, const struct descriptor_keyring *kr,
                      struct errbuf *eb);

/* Checks the form "v1:<key id>:<64 lower-case hex>". Returns 0 or -EINVAL; on success
 * *ret_key_id (may be NULL) points into sig (borrowed) and *ret_key_id_len is its length. */
int descriptor_sig_split(const char *sig, const char **ret_key_id, size_t *ret_key_id_len);
