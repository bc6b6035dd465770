/* What a tick enqueues: the deterministic job id of a schedule's tick (a UUIDv7 whose random
 * bits come from a hash of the name and the fire time, so a tick enqueued twice is one job)
 * and the descriptor text built from the schedule's job template for that tick. */
#include "schedule_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "clock.h"
#include "descriptor.h"

int schedule_job_id(const char *name, int64_t fire_us, char out[UUID_STR_LEN])
{
    static const char tag[] = "maintq-tick"; /* hashed with its NUL */
    unsigned char b[16], h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    char num[24];
    EVP_MD_CTX *ctx;
    uint64_t ms;
    int nl, ok;

    /* The 48-bit millisecond field holds times up to the year 10889; before 1970 none. */
    if (fire_us < 0 || (uint64_t)(fire_us / 1000) >= (UINT64_C(1) << 48))
        return -EINVAL;
    ms = (uint64_t)(fire_us / 1000);
    nl = snprintf(num, sizeof(num), "%" PRId64, fire_us);
    ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -ENOMEM;
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, tag, sizeof(tag)) == 1 &&
         EVP_DigestUpdate(ctx, name, strlen(name) + 1) == 1 &&
         EVP_DigestUpdate(ctx, num, (size_t)nl) == 1 && EVP_DigestFinal_ex(ctx, h, &hl) == 1 &&
         hl == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -EIO;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    /* Version 7 in the high nibble of byte 6, variant 10 in the top bits of byte 8; the 74
     * bits between and after come from the hash. */
    b[6] = (unsigned char)(0x70 | (h[0] & 0x0f));
    b[7] = h[1];
    b[8] = (unsigned char)(0x80 | (h[2] & 0x3f));
    memcpy(b + 9, h + 3, 7);
    snprintf(out, UUID_STR_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return 0;
}

static int set_time(json_t *obj, const char *key, int64_t us)
{
    char buf[CLOCK_RFC3339_MAX];

    return json_object_set_new(obj, key, json_string(clock_format_rfc3339_us(us, buf))) < 0
               ? -ENOMEM
               : 0;
}

int schedule_build_descriptor(const struct schedule *s, int64_t tick_us, int64_t not_after_us,
                              int64_t now_us, char **ret_text, struct errbuf *eb)
{
    struct descriptor *d = NULL;
    char id[UUID_STR_LEN];
    json_t *obj;
    char *text = NULL;
    int r;

    r = schedule_job_id(s->name, tick_us, id);
    if (r < 0) {
        errbuf_set(eb, "schedule \"%s\": tick %" PRId64 " is outside the time a job id can hold",
                   s->name, tick_us);
        return r;
    }
    obj = json_loads(s->job_json, 0, NULL);
    if (!obj)
        return -ENOMEM; /* the text was written by json_dumps: only memory can fail */
    r = -ENOMEM;
    if (json_object_set_new(obj, "id", json_string(id)) < 0 ||
        json_object_set_new(obj, "schedule", json_string(s->name)) < 0 ||
        json_object_set_new(obj, "submitted_by", json_string("scheduler")) < 0 ||
        set_time(obj, "scheduled_for", tick_us) < 0 || set_time(obj, "created_at", now_us) < 0 ||
        (not_after_us != INT64_MAX && set_time(obj, "not_after", not_after_us) < 0))
        goto out;
    r = descriptor_from_json(obj, DESCRIPTOR_REQUIRE_COMPLETE, &d, eb);
    if (r < 0) {
        errbuf_prefix(eb, "schedule \"%s\"", s->name);
        goto out;
    }
    r = descriptor_to_json(d, false, &text, NULL);
    if (r < 0) {
        errbuf_set(eb, "schedule \"%s\": descriptor too large", s->name);
        goto out;
    }
    *ret_text = text;
out:
    descriptor_free(d);
    json_decref(obj);
    return r;
}
