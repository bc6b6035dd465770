/* HMAC-SHA256 signatures over a descriptor's canonical form (the exact rule is in
 * descriptor_sig.h), and the keyring a verifier holds while keys rotate. Keys are wiped
 * when the keyring is freed; signatures are compared in constant time. */
#include "descriptor_sig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MAC_LEN 32
#define HEX_LEN (2 * MAC_LEN)
#define SIG_PREFIX "v1:"

struct keyring_entry {
    char key_id[DESCRIPTOR_KEY_ID_MAX + 1];
    uint8_t *key; /* owned, wiped on free */
    size_t keylen;
};

struct descriptor_keyring {
    struct keyring_entry *keys; /* owned array of n */
    size_t n;
};

static bool key_id_ok(const char *s, size_t len)
{
    if (len < 1 || len > DESCRIPTOR_KEY_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

int descriptor_sig_split(const char *sig, const char **ret_key_id, size_t *ret_key_id_len)
{
    const char *id, *colon;

    if (strncmp(sig, SIG_PREFIX, strlen(SIG_PREFIX)) != 0)
        return -EINVAL;
    id = sig + strlen(SIG_PREFIX);
    colon = strchr(id, ':');
    if (!colon || !key_id_ok(id, (size_t)(colon - id)))
        return -EINVAL;
    const char *hex = colon + 1;
    for (size_t i = 0; i < HEX_LEN; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return -EINVAL; /* also stops at an early NUL */
    if (hex[HEX_LEN] != '\0')
        return -EINVAL;
    if (ret_key_id)
        *ret_key_id = id;
    if (ret_key_id_len)
        *ret_key_id_len = (size_t)(colon - id);
    return 0;
}

struct descriptor_keyring *descriptor_keyring_new(void)
{
    return calloc(1, sizeof(struct descriptor_keyring));
}

int descriptor_keyring_add(struct descriptor_keyring *kr, const char *key_id, const uint8_t *key,
                           size_t keylen)
{
    struct keyring_entry *keys;
    size_t idlen = strlen(key_id);

    if (!key_id_ok(key_id, idlen) || keylen < DESCRIPTOR_KEY_MIN)
        return -EINVAL;
    for (size_t i = 0; i < kr->n; i++)
        if (strcmp(kr->keys[i].key_id, key_id) == 0)
            return -EEXIST;
    keys = realloc(kr->keys, (kr->n + 1) * sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    kr->keys = keys;
    struct keyring_entry *e = &keys[kr->n];
    e->key = malloc(keylen);
    if (!e->key)
        return -ENOMEM;
    memcpy(e->key, key, keylen);
    e->keylen = keylen;
    memcpy(e->key_id, key_id, idlen + 1);
    kr->n++;
    return 0;
}

struct descriptor_keyring *descriptor_keyring_free(struct descriptor_keyring *kr)
{
    if (!kr)
        return NULL;
    for (size_t i = 0; i < kr->n; i++) {
        OPENSSL_cleanse(kr->keys[i].key, kr->keys[i].keylen);
        free(kr->keys[i].key);
    }
    free(kr->keys);
    free(kr);
    return NULL;
}

/* Writes the 64 lower-case hex digits and a NUL of HMAC-SHA256(key, canonical form). */
static int mac_hex(const struct descriptor *d, const uint8_t *key, size_t keylen,
                   char hex[HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char *text;
    size_t len;
    int r = descriptor_to_json(d, false, &text, &len);

    if (r < 0)
        return r;
    if (keylen > INT32_MAX ||
        !HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)text, len, mac, &maclen) ||
        maclen != MAC_LEN) {
        free(text);
        return -ENOMEM; /* HMAC fails only when OpenSSL cannot allocate */
    }
    free(text);
    for (size_t i = 0; i < MAC_LEN; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 0xf];
    }
    hex[HEX_LEN] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

int descriptor_sign(struct descriptor *d, const char *key_id, const uint8_t *key, size_t keylen)
{
    char hex[HEX_LEN + 1];
    size_t idlen = strlen(key_id);
    int r;

    /* Signing an incomplete descriptor would let anyone fill in the id or time later. */
    if (!d->id[0] || d->created_at_us == DESCRIPTOR_TIME_UNSET || !d->submitted_by)
        return -EINVAL;
    if (!key_id_ok(key_id, idlen) || keylen < DESCRIPTOR_KEY_MIN)
        return -EINVAL;
    r = mac_hex(d, key, keylen, hex);
    if (r < 0)
        return r;
    size_t size = strlen(SIG_PREFIX) + idlen + 1 + HEX_LEN + 1;
    char *sig = malloc(size);
    if (!sig)
        return -ENOMEM;
    snprintf(sig, size, SIG_PREFIX "%s:%s", key_id, hex);
    free(d->sig);
    d->sig = sig;
    return 0;
}

int descriptor_verify(const struct descriptor *d, const struct descriptor_keyring *kr,
                      struct errbuf *eb)
{
    const struct keyring_entry *e = NULL;
    char hex[HEX_LEN + 1];
    const char *id;
    size_t idlen;
    int r;

    if (!d->sig) {
        errbuf_set(eb, "sig: missing");
        return -ENOMSG;
    }
    if (descriptor_sig_split(d->sig, &id, &idlen) < 0) {
        errbuf_set(eb, "sig: malformed, expected \"v1:<key id>:<64 lower-case hex digits>\"");
        return -EINVAL;
    }
    for (size_t i = 0; kr && i < kr->n; i++) {
        if (strlen(kr->keys[i].key_id) == idlen && memcmp(kr->keys[i].key_id, id, idlen) == 0) {
            e = &kr->keys[i];
            break;
        }
    }
    if (!e) {
        errbuf_set(eb, "sig: unknown key id \"%.*s\"", (int)idlen, id);
        return -ENOKEY;
    }
    r = mac_hex(d, e->key, e->keylen, hex);
    if (r < 0)
        return r;
    if (CRYPTO_memcmp(hex, id + idlen + 1, HEX_LEN) != 0) {
        errbuf_set(eb, "sig: signature mismatch");
        return -EBADMSG;
    }
    return 0;
}
