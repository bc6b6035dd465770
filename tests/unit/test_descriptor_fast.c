/* Proves that the descriptor's fast paths change nothing a user or a signature can see:
 * - the direct writer (core/descriptor_write.c) gives byte for byte what the old jansson
 *   object + json_dumps(JSON_SORT_KEYS) gave (tests/unit/descriptor_ref.c), on every
 *   fixture and on generated descriptors with escapes, control characters, UTF-8, invalid
 *   UTF-8, long strings, extreme numbers, every optional field set or not, signed or not;
 * - the field order is strcmp order, which is what JSON_SORT_KEYS sorts by;
 * - the size bound lets nothing through that serialises past DESCRIPTOR_MAX_BYTES, checked
 *   at the exact boundary, with raw control characters that print six times their size;
 * - the fast reader (core/descriptor_scan.c) takes the canonical text of every fixture, in
 *   any key order and spacing, and gives what the full reader gives; it declines every odd
 *   form it does not handle, which then gets the full reader's message; and on thousands of
 *   mutated texts, whenever it accepts, the full reader accepts the same descriptor. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "descriptor.h"
#include "descriptor_fixtures.h"
#include "descriptor_int.h"
#include "descriptor_ref.h"
#include "descriptor_sig.h"

static const uint8_t key[] = "0123456789abcdef0123456789abcdef";

static const char canonical_noop[] =
    "{\"backoff\":{\"base_s\":1,\"max_s\":300},\"created_at\":\"2026-11-22T13:28:01.123456Z\","
    "\"id\":\"019aab3c-5d2e-7f10-8a4b-1c2d3e4f5a6b\",\"max_attempts\":3,\"params\":{},"
    "\"queue\":\"default\",\"submitted_by\":\"root@host\",\"timeout_s\":300,\"type\":\"noop\"}";

/* Fails unless the writer and the reference agree: both fail, or both give the same text. */
static void assert_same_as_reference(const struct descriptor *d, const char *what)
{
    for (int with_sig = 0; with_sig <= 1; with_sig++) {
        char *got = NULL, *want = NULL;
        size_t got_len = 0, want_len = 0;
        int r1 = descriptor_serialise(d, with_sig, &got, &got_len);
        int r2 = descriptor_ref_serialise(d, with_sig, &want, &want_len);

        if (r1 != r2)
            fail_msg("%s: writer returned %d, reference %d", what, r1, r2);
        if (r1 == 0 && (got_len != want_len || memcmp(got, want, got_len) != 0))
            fail_msg("%s: writer and reference differ\n got %.300s\nwant %.300s", what, got, want);
        if (r1 == 0)
            assert_int_equal(strlen(got), got_len);
        free(got);
        free(want);
    }
}

/* Also after completing and signing d, as a submitter does. */
static void assert_same_completed(struct descriptor *d, const char *what)
{
    assert_same_as_reference(d, what);
    if (descriptor_fill_defaults(d, "tester") == 0 && descriptor_sign(d, "k1", key, 32) == 0)
        assert_same_as_reference(d, what);
}

static struct descriptor *full_parse(const char *text, size_t len, unsigned flags)
{
    struct errbuf eb = {""};
    struct descriptor *d = NULL;

    if (descriptor_parse_full(text, len, flags, &d, &eb) < 0)
        fail_msg("full reader rejected (%s): %.300s", eb.msg, text);
    return d;
}

static char *serialise(const struct descriptor *d)
{
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(descriptor_serialise(d, true, &text, &len), 0);
    return text;
}

/* Whenever the fast reader accepts text, the full one accepts it too and both descriptors
 * serialise the same; whatever happens, descriptor_parse() answers as the full reader
 * does. Returns whether the fast reader accepted. */
static bool assert_readers_agree(const char *text, size_t len)
{
    bool fast_took = false;

    for (unsigned flags = 0; flags <= DESCRIPTOR_REQUIRE_COMPLETE; flags++) {
        struct descriptor *fast = NULL, *full = NULL, *d = NULL;
        struct errbuf eb_full = {""}, eb = {""};
        int rf = descriptor_parse_fast(text, len, flags, &fast);
        int rl = descriptor_parse_full(text, len, flags, &full, &eb_full);
        int rp = descriptor_parse(text, len, flags, &d, &eb);

        if (rf != 0 && rf != -EAGAIN)
            fail_msg("fast reader returned %d: %.300s", rf, text);
        if (rf == 0 && rl != 0)
            fail_msg("fast reader accepted what the full one rejects (%s): %.300s", eb_full.msg,
                     text);
        if (rp != rl || (rl < 0 && strcmp(eb.msg, eb_full.msg) != 0))
            fail_msg("descriptor_parse gave %d \"%s\", full reader %d \"%s\": %.300s", rp, eb.msg,
                     rl, eb_full.msg, text);
        if (rf == 0) {
            char *a = serialise(fast), *b = serialise(full);
            if (strcmp(a, b) != 0)
                fail_msg("readers differ on %.300s\nfast %s\nfull %s", text, a, b);
            free(a);
            free(b);
            fast_took = true;
        }
        descriptor_free(fast);
        descriptor_free(full);
        descriptor_free(d);
    }
    return fast_took;
}

static void test_field_order_is_strcmp_order(void **state)
{
    for (int i = 1; i < N_FIELDS; i++)
        assert_true(strcmp(descriptor_field_names[i - 1], descriptor_field_names[i]) < 0);
    for (int i = 0; i < N_FIELDS; i++) {
        const char *name = descriptor_field_names[i];
        assert_int_equal(descriptor_field_find(name, strlen(name)), i);
        assert_int_equal(descriptor_field_find(name, strlen(name) - 1), -1); /* a prefix */
    }
    assert_int_equal(descriptor_field_find("types", 5), -1);
    assert_int_equal(descriptor_field_find("", 0), -1);
    assert_int_equal(descriptor_field_find("id\0x", 4), -1);
}

static void writer_on_fixture(const char *path, const char *name, const char *text, size_t len)
{
    struct descriptor *d = full_parse(text, len, 0);

    assert_same_completed(d, name);
    descriptor_free(d);
}

static void test_writer_equals_reference_on_fixtures(void **state)
{
    size_t n = fixture_each("valid", writer_on_fixture);
    print_message("%zu valid fixtures serialised identically, as read and once signed\n", n);
    assert_true(n >= 12);
}

/* A deterministic generator, so a failure repeats. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A string of len bytes drawn from pieces that exercise the escaper: every control
 * character, the two escaped printables, '/', 0x7f, UTF-8 of 2, 3 and 4 bytes, and
 * (when invalid is true) bytes that are not UTF-8. Caller frees with free(). */
static char *odd_string(size_t len, bool invalid)
{
    static const char *const pieces[] = {"\"",
                                         "\\",
                                         "/",
                                         "\x7f",
                                         "\b",
                                         "\f",
                                         "\n",
                                         "\r",
                                         "\t",
                                         "\x01",
                                         "\x1f",
                                         "a",
                                         "Z",
                                         " ",
                                         "\xc3\xa9",
                                         "\xe2\x9c\x93",
                                         "\xf0\x9f\x98\x80",
                                         "\xef\xbf\xbf",
                                         "\xf4\x8f\xbf\xbf"};
    static const char *const bad[] = {"\x80",     "\xc0\xaf", "\xed\xa0\x80", "\xf5\x80\x80\x80",
                                      "\xe2\x9c", "\xff"};
    char *s = malloc(len + 8);
    size_t n = 0;

    assert_non_null(s);
    while (n < len) {
        const char *p = invalid && rng() % 16 == 0
                            ? bad[rng() % (sizeof(bad) / sizeof(bad[0]))]
                            : pieces[rng() % (sizeof(pieces) / sizeof(pieces[0]))];
        if (n + strlen(p) > len)
            p = "x";
        memcpy(s + n, p, strlen(p));
        n += strlen(p);
    }
    s[n] = '\0';
    return s;
}

static void test_writer_equals_reference_on_odd_strings(void **state)
{
    static const int64_t ints[] = {0,   1,     -1,        9,         10,         99,
                                   100, 86400, INT64_MAX, INT64_MIN, -1000000007};
    static const int64_t times[] = {
        0, 1, 999999, 1767225600123456, 253402300799999999, DESCRIPTOR_TIME_UNSET};
    size_t cases = 0;

    for (unsigned mask = 0; mask < 256; mask++) {
        for (int round = 0; round < 8; round++) {
            struct descriptor *d = NULL;
            struct errbuf eb = {""};
            char what[64];
            bool invalid = round == 7;
            size_t len = round == 6 ? 4096 : (size_t)(rng() % 40);

            assert_int_equal(descriptor_parse("{\"type\":\"noop\"}", 15, 0, &d, &eb), 0);
            snprintf(what, sizeof(what), "generated mask %u round %d", mask, round);
            if (mask & 1)
                d->lock = odd_string(len, invalid);
            if (mask & 2) {
                d->unique_key = odd_string(len, invalid);
                d->unique_for_s = ints[rng() % 11];
            }
            if (mask & 4) {
                d->schedule = odd_string(1 + len % 64, invalid);
                d->scheduled_for_us = times[rng() % 5];
            }
            if (mask & 8)
                d->not_after_us = times[rng() % 6];
            if (mask & 16)
                d->created_at_us = times[rng() % 6];
            if (mask & 32)
                d->submitted_by = odd_string(len, invalid);
            if (mask & 64)
                d->sig = odd_string(len, invalid);
            if (mask & 128) {
                free(d->queue);
                d->queue = odd_string(len, invalid);
                snprintf(d->id, sizeof(d->id), "%s", "01953b2e-8f3a-7c41-9d2e-5b7a1c3f0e42");
            }
            d->timeout_s = ints[rng() % 11];
            d->max_attempts = ints[rng() % 11];
            d->backoff_base_s = ints[rng() % 11];
            d->backoff_max_s = ints[rng() % 11];
            char *s = odd_string(len, invalid);
            json_object_set_new(d->params, s, json_stringn(s, strlen(s)));
            json_object_set_new(d->params, "r", json_real(0.1 * (double)(rng() % 1000)));
            json_object_set_new(d->params, "n",
                                json_pack("[i,b,n,{s:f}]", (int)rng(), 1, "e", 1e-9));
            free(s);
            assert_same_as_reference(d, what);
            descriptor_free(d);
            cases++;
        }
    }
    print_message("%zu generated descriptors serialised identically\n", cases);
}

static void test_writer_fails_where_jansson_failed(void **state)
{
    struct descriptor *d = NULL;
    struct errbuf eb = {""};
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(descriptor_parse("{\"type\":\"noop\"}", 15, 0, &d, &eb), 0);
    d->submitted_by = strdup("bad \xff byte");
    assert_int_equal(descriptor_serialise(d, true, &text, &len), -ENOMEM);
    assert_int_equal(descriptor_ref_serialise(d, true, &text, &len), -ENOMEM);
    free(d->submitted_by);
    d->submitted_by = NULL;
    json_decref(d->params);
    d->params = NULL;
    assert_int_equal(descriptor_serialise(d, true, &text, &len), -ENOMEM);
    assert_int_equal(descriptor_ref_serialise(d, true, &text, &len), -ENOMEM);
    d->params = json_array(); /* not an object: both dump it as it is */
    assert_same_as_reference(d, "array params");
    descriptor_free(d);
}

/* {"type":"noop","params":{"s":[n strings of len bytes of byte c]}} built in memory. */
static json_t *tree_of(size_t n, size_t len, char c)
{
    json_t *arr = json_array();
    char *s = malloc(len);

    assert_non_null(s);
    memset(s, c, len);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_stringn(s, len));
    free(s);
    return json_pack("{s:s, s:{s:o}}", "type", "noop", "params", "s", arr);
}

/* The serialised length of obj's descriptor, or -1 when from_json rejects it. */
static long from_json_len(json_t *obj, struct errbuf *eb)
{
    struct descriptor *d = NULL;
    char *text = NULL;
    size_t len = 0;

    if (descriptor_from_json(obj, 0, &d, eb) < 0)
        return -1;
    assert_int_equal(descriptor_serialise(d, true, &text, &len), 0);
    free(text);
    descriptor_free(d);
    return (long)len;
}

static void test_size_bound_holds_at_the_limit(void **state)
{
    struct errbuf eb = {""};
    /* raw control characters print six times their size: 3 strings of 4000 are ~72 KB */
    json_t *obj = tree_of(3, 4000, '\x01');
    assert_int_equal(from_json_len(obj, &eb), -1);
    assert_non_null(strstr(eb.msg, "descriptor: serialised form of 72"));
    json_decref(obj);

    /* Find strings of 'a' whose descriptor serialises to exactly the limit: accepted; one
     * byte more: rejected with the measured size. The framing is what {"type":"noop"}
     * with an empty string array adds. */
    obj = tree_of(16, 0, 'a');
    long frame = from_json_len(obj, &eb);
    json_decref(obj);
    assert_true(frame > 0);
    size_t total = DESCRIPTOR_MAX_BYTES - (size_t)frame, each = total / 16;
    json_t *arr = json_array();
    for (size_t i = 0; i < 16; i++) {
        size_t n = each + (i < total % 16);
        char *s = malloc(n + 1);
        memset(s, 'a', n);
        s[n] = '\0';
        json_array_append_new(arr, json_string(s));
        free(s);
    }
    obj = json_pack("{s:s, s:{s:o}}", "type", "noop", "params", "s", arr);
    assert_int_equal(from_json_len(obj, &eb), DESCRIPTOR_MAX_BYTES);
    json_array_append_new(arr, json_string("")); /* adds ",\"\"": 3 bytes */
    assert_int_equal(from_json_len(obj, &eb), -1);
    assert_string_equal(eb.msg, "descriptor: serialised form of 65539 bytes exceeds 65536");
    json_decref(obj);
}

static void fast_on_fixture(const char *path, const char *name, const char *text, size_t len)
{
    struct descriptor *d = full_parse(text, len, 0), *fast = NULL;
    char *canon = NULL;
    size_t clen = 0;

    /* the fixture itself, whatever its form */
    assert_readers_agree(text, len);
    /* its canonical text, as a worker receives it, must take the fast path */
    assert_int_equal(descriptor_fill_defaults(d, "tester"), 0);
    assert_int_equal(descriptor_sign(d, "k1", key, 32), 0);
    assert_int_equal(descriptor_to_json(d, true, &canon, &clen), 0);
    if (!assert_readers_agree(canon, clen))
        fail_msg("%s: canonical text declined by the fast reader: %s", name, canon);
    assert_int_equal(descriptor_parse_fast(canon, clen, DESCRIPTOR_REQUIRE_COMPLETE, &fast), 0);
    descriptor_free(fast);
    free(canon);
    descriptor_free(d);
}

static void test_fast_reader_takes_canonical_fixtures(void **state)
{
    size_t n = fixture_each("valid", fast_on_fixture);
    print_message("%zu canonical fixtures read by the fast reader as by the full one\n", n);
}

static void test_fast_reader_takes_any_order_and_spacing(void **state)
{
    static const char *const texts[] = {
        canonical_noop,
        " \t\r\n{ \"type\" : \"noop\" , \"params\" : { } ,\n\"id\":\"019aab3c-5d2e-7f10-8a4b-"
        "1c2d3e4f5a6b\", \"created_at\" :\"2026-11-22T13:28:01Z\",\"backoff\":{ \"max_s\" : 9 ,"
        "\"base_s\":0 }} \n",
        "{\"type\":\"http_check\",\"params\":{\"url\":\"https:\\/\\/a\\/\",\"n\":[1,2.5,{\"x\":"
        "null}],\"s\":\"}{][\\\"\"},\"lock\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\",\"unique_key\":\"k"
        "\",\"unique_for_s\":60,\"schedule\":\"nightly\",\"scheduled_for\":\"2026-03-08T03:00:00"
        "+02:00\",\"not_after\":\"2026-03-08T05:00:00Z\",\"submitted_by\":\"x\",\"timeout_s\":"
        "45,\"max_attempts\":100,\"queue\":\"Q.1-_\",\"backoff\":{\"base_s\":-0,\"max_s\":5}}",
        "{\"backoff\":{},\"type\":\"noop\",\"created_at\":\"2026-11-22T13:28:01.1Z\",\"id\":\""
        "019aab3c-5d2e-7f10-8a4b-1c2d3e4f5a6b\"}",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct descriptor *d = NULL;
        /* (-0 is the integer 0 to jansson, and so to the scanner) */
        if (!assert_readers_agree(texts[i], strlen(texts[i])))
            fail_msg("fast reader declined: %s", texts[i]);
        assert_int_equal(descriptor_parse_fast(texts[i], strlen(texts[i]), 0, &d), 0);
        descriptor_free(d);
    }
}

static void test_fast_reader_declines_what_it_does_not_handle(void **state)
{
    static const char *const texts[] = {
        "{\"type\":\"no\\u006fp\"}",                             /* escape in a value */
        "{\"typ\\u0065\":\"noop\"}",                             /* escape in a key */
        "{\"type\":\"noop\",\"type\":\"noop\"}",                 /* repeated key */
        "{\"type\":\"noop\",\"extra\":1}",                       /* unknown key */
        "{\"type\":\"noop\",}",                                  /* trailing comma */
        "{\"type\":\"noop\"",                                    /* unterminated */
        "{\"type\":\"noop\"} x",                                 /* trailing text */
        "\xef\xbb\xbf{\"type\":\"noop\"}",                       /* byte order mark */
        "{\"type\":\"noop\",\"timeout_s\":30.0}",                /* a real */
        "{\"type\":\"noop\",\"timeout_s\":3e1}",                 /* an exponent */
        "{\"type\":\"noop\",\"timeout_s\":030}",                 /* a leading zero */
        "{\"type\":\"noop\",\"timeout_s\":1000000000000000000}", /* 19 digits */
        "{\"type\":\"noop\",\"timeout_s\":+30}",
        "{\"type\":\"noop\",\"params\":null}",
        "{\"type\":\"noop\",\"params\":[]}",
        "{\"type\":\"noop\",\"params\":{\"a\":1,\"a\":2}}", /* repeated key inside params */
        "{\"type\":\"noop\",\"params\":{\"a\":1}",          /* params never closed */
        "{\"type\":\"noop\",\"params\":{\"a\":\"\\u0000\"}}",
        "{\"type\":\"noop\",\"backoff\":{\"base_s\":1,\"base_s\":1}}",
        "{\"type\":\"noop\",\"backoff\":{\"factor\":2}}",
        "{\"type\":\"noop\",\"backoff\":[]}",
        "{\"type\":\"noop\",\"lock\":\"a\x01b\"}",       /* raw control character */
        "{\"type\":\"noop\",\"lock\":\"\xc0\xaf\"}",     /* overlong UTF-8 */
        "{\"type\":\"noop\",\"lock\":\"\xed\xa0\x80\"}", /* a surrogate */
        "{\"type\":\"noop\",\"lock\":\"\xe2\x9c\"}",     /* truncated UTF-8 */
        "{\"type\":\"noop\",\"lock\":true}",
        "{\"type\":\"noop\",\"timeout_s\":0}", /* valid syntax, invalid field */
        "{\"type\":\"noop\",\"created_at\":\"2026-03-08T01:00:00.0000000000Z\",\"id\":1}",
        "{\"type\":\"noop\"}\0",
        "[]",
        "",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct descriptor *d = NULL;
        size_t len = strlen(texts[i]) + (i == sizeof(texts) / sizeof(texts[0]) - 3);
        assert_int_equal(descriptor_parse_fast(texts[i], len, 0, &d), -EAGAIN);
        assert_null(d);
        assert_readers_agree(texts[i], len);
    }
}

/* Every single-byte deletion, and replacement by a byte of a set chosen to break JSON in
 * every way, of some canonical and near-canonical texts. */
static void test_readers_agree_on_mutations(void **state)
{
    static const char *const seeds[] = {
        canonical_noop,
        "{\"backoff\":{\"base_s\":2,\"max_s\":120},\"lock\":\"a b\",\"params\":{\"u\":[1,\"x\"]},"
        "\"schedule\":\"s\",\"scheduled_for\":\"2026-03-08T01:00:00Z\",\"sig\":\"v1:k:"
        "0000000000000000000000000000000000000000000000000000000000000000\",\"type\":\"t\","
        "\"unique_for_s\":5,\"unique_key\":\"k\"}",
    };
    static const char repl[] = " \t\n\"\\{}[],:0159-.eE\x01\x7f\x80\xc3\xff"
                               "az";
    size_t fast = 0, total = 0;
    char buf[1024];

    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        size_t len = strlen(seeds[s]);
        for (size_t i = 0; i < len; i++) {
            memcpy(buf, seeds[s], i);
            memcpy(buf + i, seeds[s] + i + 1, len - i - 1);
            fast += assert_readers_agree(buf, len - 1);
            total++;
            for (size_t k = 0; k < sizeof(repl) - 1; k++) {
                memcpy(buf, seeds[s], len);
                buf[i] = repl[k];
                fast += assert_readers_agree(buf, len);
                total++;
            }
        }
    }
    print_message("%zu mutated texts: the fast reader took %zu, the readers agreed on all\n", total,
                  fast);
    assert_true(fast > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_order_is_strcmp_order),
        cmocka_unit_test(test_writer_equals_reference_on_fixtures),
        cmocka_unit_test(test_writer_equals_reference_on_odd_strings),
        cmocka_unit_test(test_writer_fails_where_jansson_failed),
        cmocka_unit_test(test_size_bound_holds_at_the_limit),
        cmocka_unit_test(test_fast_reader_takes_canonical_fixtures),
        cmocka_unit_test(test_fast_reader_takes_any_order_and_spacing),
        cmocka_unit_test(test_fast_reader_declines_what_it_does_not_handle),
        cmocka_unit_test(test_readers_agree_on_mutations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
