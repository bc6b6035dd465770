/* Proves the job descriptor contract (core/descriptor.h, core/descriptor_sig.h): defaults,
 * every field accepted and rejected with a one-line message naming it, the size, depth and
 * string limits, a serialise/parse round trip that is byte-stable, signatures that survive
 * the round trip, detect tampering and rotate keys, a signature computed independently
 * (Python's json + hmac) from the documented canonical rule, and that every fixture in
 * tests/fixtures/descriptors/valid is accepted and every one in invalid/ rejected with the
 * message in its .err file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "descriptor.h"
#include "descriptor_fixtures.h"
#include "descriptor_sig.h"

static const uint8_t key1[] = "0123456789abcdef0123456789abcdef";
static const uint8_t key2[] = "fedcba9876543210fedcba9876543210";
#define KEYLEN 32

/* The golden descriptor: its canonical form and signature were computed by Python's
 * json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) and hmac. */
static const char complete_text[] =
    "{\"id\": \"01953b2e-8f3a-7c41-9d2e-5b7a1c3f0e42\", \"type\": \"http_check\", \"queue\": "
    "\"ops\","
    " \"params\": {\"url\": \"https://example.org/health\", \"expect_status\": 200,"
    " \"note\": \"d\\u00e9ploy\\/\xe2\x9c\x93\"}, \"timeout_s\": 30, \"max_attempts\": 5,"
    " \"backoff\": {\"max_s\": 120, \"base_s\": 2}, \"lock\": \"site:example.org\","
    " \"unique_key\": \"health:example.org\", \"unique_for_s\": 3600,"
    " \"schedule\": \"nightly-health\", \"scheduled_for\": \"2026-03-08T03:00:00+02:00\","
    " \"not_after\": \"2026-03-08T05:00:00Z\", \"created_at\": \"2026-03-08T01:00:00.000123Z\","
    " \"submitted_by\": \"scheduler\"}";
static const char complete_canonical[] =
    "{\"backoff\":{\"base_s\":2,\"max_s\":120},\"created_at\":\"2026-03-08T01:00:00.000123Z\","
    "\"id\":\"01953b2e-8f3a-7c41-9d2e-5b7a1c3f0e42\",\"lock\":\"site:example.org\","
    "\"max_attempts\":5,\"not_after\":\"2026-03-08T05:00:00.000000Z\","
    "\"params\":{\"expect_status\":200,\"note\":\"d\xc3\xa9ploy/\xe2\x9c\x93\","
    "\"url\":\"https://example.org/health\"},\"queue\":\"ops\",\"schedule\":\"nightly-health\","
    "\"scheduled_for\":\"2026-03-08T01:00:00.000000Z\",\"submitted_by\":\"scheduler\","
    "\"timeout_s\":30,\"type\":\"http_check\",\"unique_for_s\":3600,"
    "\"unique_key\":\"health:example.org\"}";
static const char complete_sig[] =
    "v1:k1:b42739e2d6641cba97750820deeb3f204f5367d82cc2dd8c29c03bd823f795f7";

static struct descriptor *parse_ok(const char *text, unsigned flags)
{
    struct errbuf eb = {""};
    struct descriptor *d = NULL;
    int r = descriptor_parse(text, strlen(text), flags, &d, &eb);

    if (r < 0)
        fail_msg("rejected (%d: %s): %.200s", r, eb.msg, text);
    return d;
}

static void parse_err(const char *text, int want_rc, const char *want_msg)
{
    struct errbuf eb = {""};
    struct descriptor *d = (struct descriptor *)&eb; /* must stay untouched */
    int r = descriptor_parse(text, strlen(text), 0, &d, &eb);

    if (r != want_rc || strcmp(eb.msg, want_msg) != 0)
        fail_msg("%.200s: got %d \"%s\", want %d \"%s\"", text, r, eb.msg, want_rc, want_msg);
    assert_ptr_equal(d, &eb);
}

static char *to_json(const struct descriptor *d, bool with_sig)
{
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(descriptor_to_json(d, with_sig, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    return text;
}

static void test_absent_fields_get_defaults(void **state)
{
    struct descriptor *d = parse_ok("{\"type\":\"noop\"}", 0);

    assert_string_equal(d->id, "");
    assert_string_equal(d->type, "noop");
    assert_string_equal(d->queue, "default");
    assert_true(json_is_object(d->params) && json_object_size(d->params) == 0);
    assert_int_equal(d->timeout_s, 300);
    assert_int_equal(d->max_attempts, 3);
    assert_int_equal(d->backoff_base_s, 1);
    assert_int_equal(d->backoff_max_s, 300);
    assert_null(d->lock);
    assert_null(d->unique_key);
    assert_int_equal(d->unique_for_s, 0);
    assert_null(d->schedule);
    assert_true(d->scheduled_for_us == DESCRIPTOR_TIME_UNSET);
    assert_true(d->not_after_us == DESCRIPTOR_TIME_UNSET);
    assert_true(d->created_at_us == DESCRIPTOR_TIME_UNSET);
    assert_null(d->submitted_by);
    assert_null(d->sig);
    char *text = to_json(d, true);
    assert_string_equal(text, "{\"backoff\":{\"base_s\":1,\"max_s\":300},\"max_attempts\":3,"
                              "\"params\":{},\"queue\":\"default\",\"timeout_s\":300,"
                              "\"type\":\"noop\"}");
    free(text);
    descriptor_free(d);
}

static void test_every_field_is_read(void **state)
{
    struct descriptor *d = parse_ok(complete_text, DESCRIPTOR_REQUIRE_COMPLETE);
    int64_t t;

    assert_string_equal(d->id, "01953b2e-8f3a-7c41-9d2e-5b7a1c3f0e42");
    assert_string_equal(d->type, "http_check");
    assert_string_equal(d->queue, "ops");
    assert_int_equal(json_integer_value(json_object_get(d->params, "expect_status")), 200);
    assert_int_equal(d->timeout_s, 30);
    assert_int_equal(d->max_attempts, 5);
    assert_int_equal(d->backoff_base_s, 2);
    assert_int_equal(d->backoff_max_s, 120);
    assert_string_equal(d->lock, "site:example.org");
    assert_string_equal(d->unique_key, "health:example.org");
    assert_int_equal(d->unique_for_s, 3600);
    assert_string_equal(d->schedule, "nightly-health");
    assert_int_equal(clock_parse_rfc3339("2026-03-08T01:00:00Z", &t), 0);
    assert_true(d->scheduled_for_us == t); /* the +02:00 offset was applied */
    assert_true(d->created_at_us == t + 123);
    assert_true(d->not_after_us == t + 4 * 3600 * USEC_PER_SEC);
    assert_string_equal(d->submitted_by, "scheduler");
    descriptor_free(d);
}

static void test_worker_needs_id_and_created_at(void **state)
{
    static const char id[] = "\"id\":\"01953b2e-8f3a-7c41-9d2e-5b7a1c3f0e42\"";
    static const char at[] = "\"created_at\":\"2026-03-08T01:00:00Z\"";
    char text[256];
    struct errbuf eb = {""};
    struct descriptor *d = NULL;

    snprintf(text, sizeof(text), "{\"type\":\"noop\",%s}", at);
    assert_int_equal(descriptor_parse(text, strlen(text), DESCRIPTOR_REQUIRE_COMPLETE, &d, &eb),
                     -EINVAL);
    assert_string_equal(eb.msg, "id: required");
    snprintf(text, sizeof(text), "{\"type\":\"noop\",%s}", id);
    assert_int_equal(descriptor_parse(text, strlen(text), DESCRIPTOR_REQUIRE_COMPLETE, &d, &eb),
                     -EINVAL);
    assert_string_equal(eb.msg, "created_at: required");
    assert_null(d);
    /* both present: accepted, and an absent submitted_by reads as "unknown" */
    snprintf(text, sizeof(text), "{\"type\":\"noop\",%s,%s}", id, at);
    d = parse_ok(text, DESCRIPTOR_REQUIRE_COMPLETE);
    assert_string_equal(d->submitted_by, "unknown");
    descriptor_free(d);
}

static void test_fill_defaults_sets_only_absent_fields(void **state)
{
    struct descriptor *d = parse_ok("{\"type\":\"noop\"}", 0);
    int64_t before = clock_now_us();

    assert_int_equal(descriptor_fill_defaults(d, "alice"), 0);
    assert_true(uuid7_is_valid(d->id));
    assert_true(d->created_at_us >= before && d->created_at_us <= clock_now_us());
    assert_string_equal(d->submitted_by, "alice");
    descriptor_free(d);

    d = parse_ok("{\"type\":\"noop\",\"id\":\"01953b2e-8f3a-7c41-9d2e-5b7a1c3f0e42\","
                 "\"created_at\":\"2026-03-08T01:00:00Z\",\"submitted_by\":\"bob\"}",
                 0);
    int64_t at = d->created_at_us;
    assert_int_equal(descriptor_fill_defaults(d, "alice"), 0);
    assert_string_equal(d->id, "01953b2e-8f3a-7c41-9d2e-5b7a1c3f0e42");
    assert_true(d->created_at_us == at);
    assert_string_equal(d->submitted_by, "bob");
    descriptor_free(d);

    d = parse_ok("{\"type\":\"noop\"}", 0);
    assert_int_equal(descriptor_fill_defaults(d, NULL), 0);
    assert_string_equal(d->submitted_by, "unknown");
    descriptor_free(d);

    d = parse_ok("{\"type\":\"noop\"}", 0);
    assert_int_equal(descriptor_fill_defaults(d, ""), -EINVAL);
    descriptor_free(d);
}

static void test_each_field_error_names_the_field(void **state)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"{\"queue\":\"q\"}", "type: required"},
        {"{\"type\":true}", "type: expected string"},
        {"{\"type\":\"no-op\"}", "type: expected 1-64 characters of a-z 0-9 _"},
        {"{\"type\":\"noop\",\"queue\":\"\"}",
         "queue: expected 1-64 characters of A-Z a-z 0-9 _ . -"},
        {"{\"type\":\"noop\",\"queue\":7}", "queue: expected string"},
        {"{\"type\":\"noop\",\"params\":\"x\"}", "params: expected object"},
        {"{\"type\":\"noop\",\"timeout_s\":\"30\"}", "timeout_s: expected integer"},
        {"{\"type\":\"noop\",\"timeout_s\":1.5}", "timeout_s: expected integer"},
        {"{\"type\":\"noop\",\"timeout_s\":0}", "timeout_s: 0 is out of range 1-86400"},
        {"{\"type\":\"noop\",\"timeout_s\":-5}", "timeout_s: -5 is out of range 1-86400"},
        {"{\"type\":\"noop\",\"max_attempts\":101}", "max_attempts: 101 is out of range 1-100"},
        {"{\"type\":\"noop\",\"max_attempts\":null}", "max_attempts: expected integer"},
        {"{\"type\":\"noop\",\"backoff\":[]}", "backoff: expected object"},
        {"{\"type\":\"noop\",\"backoff\":{\"base_s\":90000}}",
         "backoff.base_s: 90000 is out of range 0-86400"},
        {"{\"type\":\"noop\",\"backoff\":{\"max_s\":true}}", "backoff.max_s: expected integer"},
        {"{\"type\":\"noop\",\"backoff\":{\"base_s\":1,\"factor\":2}}",
         "backoff.factor: unknown field"},
        {"{\"type\":\"noop\",\"backoff\":{\"base_s\":60,\"max_s\":30}}",
         "backoff: base_s 60 exceeds max_s 30"},
        {"{\"type\":\"noop\",\"lock\":\"\"}", "lock: expected 1-200 bytes, got 0"},
        {"{\"type\":\"noop\",\"unique_key\":\"k\"}", "unique_for_s: required with unique_key"},
        {"{\"type\":\"noop\",\"unique_for_s\":5}", "unique_key: required with unique_for_s"},
        {"{\"type\":\"noop\",\"unique_key\":\"k\",\"unique_for_s\":2678401}",
         "unique_for_s: 2678401 is out of range 1-2678400"},
        {"{\"type\":\"noop\",\"schedule\":\"s\"}", "scheduled_for: required with schedule"},
        {"{\"type\":\"noop\",\"scheduled_for\":\"2026-03-08T01:00:00Z\"}",
         "schedule: required with scheduled_for"},
        {"{\"type\":\"noop\",\"not_after\":\"2026-03-08\"}", "not_after: expected rfc 3339 time"},
        {"{\"type\":\"noop\",\"created_at\":\"10000-01-01T00:00:00Z\"}",
         "created_at: expected rfc 3339 time"},
        {"{\"type\":\"noop\",\"created_at\":\"0001-01-01T00:00:00Z\"}",
         "created_at: outside 1970-01-01 to 9999-12-31"},
        {"{\"type\":\"noop\",\"id\":\"01953B2E-8F3A-7C41-9D2E-5B7A1C3F0E42\"}",
         "id: expected a lower-case uuidv7"},
        {"{\"type\":\"noop\",\"submitted_by\":[]}", "submitted_by: expected string"},
        {"{\"type\":\"noop\",\"sig\":\"v1:k1:00\"}",
         "sig: expected \"v1:<key id>:<64 lower-case hex digits>\""},
        {"{\"type\":\"noop\",\"foo\":1}", "foo: unknown field"},
        {"{\"type\":\"noop\",\"a\\nb\\u007f\":1}", "a?b?: unknown field"}, /* one line */
        {"[]", "descriptor: expected object"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        parse_err(cases[i].text, -EINVAL, cases[i].msg);
}

static void test_json_syntax_errors_are_one_line(void **state)
{
    static const char *const texts[] = {
        "{\"type\":\"noop\",\"type\":\"x\"}",
        "{\"type\":\"a\\u0000b\"}",
        "{\"type\":\"x\n\"}",
        "{\"type\":\"noop\"",
        "",
        "{\"type\":\"noop\"} {}",
        "{\"type\":\"\xff\"}",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct errbuf eb = {""};
        struct descriptor *d = NULL;

        assert_int_equal(descriptor_parse(texts[i], strlen(texts[i]), 0, &d, &eb), -EINVAL);
        assert_non_null(strstr(eb.msg, "descriptor: invalid json at line 1"));
        for (const char *p = eb.msg; *p; p++)
            assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
    }
}

/* A valid descriptor padded with trailing spaces to exactly len bytes. */
static char *padded(size_t len)
{
    static const char base[] = "{\"type\":\"noop\"}";
    char *s = malloc(len + 1);

    assert_non_null(s);
    memcpy(s, base, strlen(base));
    memset(s + strlen(base), ' ', len - strlen(base));
    s[len] = '\0';
    return s;
}

static void test_size_limit_is_65536_bytes(void **state)
{
    char *s = padded(DESCRIPTOR_MAX_BYTES);
    descriptor_free(parse_ok(s, 0));
    free(s);
    s = padded(70000);
    parse_err(s, -E2BIG, "descriptor: 70000 bytes exceeds 65536");
    free(s);
}

static void test_serialised_form_is_limited_too(void **state)
{
    /* 0.1 prints back as 0.10000000000000001: 60,000 bytes in, ~300,000 out */
    size_t n = 15000, len = 0;
    char *s = malloc(n * 4 + 64);

    assert_non_null(s);
    len += (size_t)snprintf(s, 64, "{\"type\":\"noop\",\"params\":{\"r\":[");
    for (size_t i = 0; i < n; i++) {
        memcpy(s + len, i ? ",0.1" : "0.1", i ? 4 : 3);
        len += i ? 4 : 3;
    }
    memcpy(s + len, "]}}", 4);
    struct errbuf eb = {""};
    struct descriptor *d = NULL;
    assert_int_equal(descriptor_parse(s, strlen(s), 0, &d, &eb), -E2BIG);
    assert_non_null(strstr(eb.msg, "descriptor: serialised form of"));
    free(s);
}

/* {"type":"noop","params": + depth-2 nested arrays + } : depth counts the top object. */
static char *nested(int depth)
{
    size_t n = (size_t)depth - 2;
    char *s = malloc(2 * n + 64);
    size_t len;

    assert_non_null(s);
    len = (size_t)snprintf(s, 64, "{\"type\":\"noop\",\"params\":{\"a\":");
    memset(s + len, '[', n);
    len += n;
    memset(s + len, ']', n);
    len += n;
    memcpy(s + len, "}}", 3);
    return s;
}

static void test_depth_limit_is_16(void **state)
{
    char *s = nested(16);
    descriptor_free(parse_ok(s, 0));
    free(s);

    s = nested(17);
    struct errbuf eb = {""};
    struct descriptor *d = NULL;
    assert_int_equal(descriptor_parse(s, strlen(s), 0, &d, &eb), -EINVAL);
    assert_non_null(strstr(eb.msg, "nesting depth exceeds 16"));
    assert_int_equal(strncmp(eb.msg, "params.a[0]", 11), 0);
    free(s);

    s = nested(5000); /* beyond jansson's own parser limit */
    assert_int_equal(descriptor_parse(s, strlen(s), 0, &d, &eb), -EINVAL);
    free(s);
}

static void test_string_limit_is_4096_bytes_for_values_and_keys(void **state)
{
    char *s = malloc(5000), *big = malloc(4098);

    assert_non_null(s);
    assert_non_null(big);
    memset(big, 'x', 4097);
    big[4097] = '\0';
    snprintf(s, 5000, "{\"type\":\"noop\",\"params\":{\"k\":\"%.4096s\"}}", big);
    descriptor_free(parse_ok(s, 0));
    snprintf(s, 5000, "{\"type\":\"noop\",\"params\":{\"k\":[\"%s\"]}}", big);
    parse_err(s, -EINVAL, "params.k[0]: string of 4097 bytes exceeds 4096");
    snprintf(s, 5000, "{\"type\":\"noop\",\"params\":{\"%s\":1}}", big);
    parse_err(s, -EINVAL, "params: key of 4097 bytes exceeds 4096");
    snprintf(s, 5000, "{\"type\":\"noop\",\"%s\":1}", big);
    parse_err(s, -EINVAL, "descriptor: key of 4097 bytes exceeds 4096");
    free(big);
    free(s);
}

static void test_from_json_checks_and_copies(void **state)
{
    struct errbuf eb = {""};
    struct descriptor *d = NULL;
    json_t *obj = json_pack("{s:s, s:{s:i}}", "type", "noop", "params", "n", 1);

    assert_non_null(obj);
    assert_int_equal(descriptor_from_json(obj, 0, &d, &eb), 0);
    /* the descriptor's params is a copy: changing the caller's tree does not reach it */
    json_object_set_new(json_object_get(obj, "params"), "n", json_integer(2));
    assert_int_equal(json_integer_value(json_object_get(d->params, "n")), 1);
    descriptor_free(d);
    d = NULL;

    /* strings with a NUL can be built in memory though JSON text cannot carry them */
    json_object_set_new(json_object_get(obj, "params"), "s", json_stringn("a\0b", 3));
    assert_int_equal(descriptor_from_json(obj, 0, &d, &eb), -EINVAL);
    assert_string_equal(eb.msg, "params.s: string contains a nul byte");
    assert_null(d);
    json_decref(obj);

    obj = json_array();
    assert_int_equal(descriptor_from_json(obj, 0, &d, &eb), -EINVAL);
    assert_string_equal(eb.msg, "descriptor: expected object");
    json_decref(obj);
}

static void test_round_trip_is_canonical_and_stable(void **state)
{
    struct descriptor *d = parse_ok(complete_text, 0);
    char *once = to_json(d, true);

    assert_string_equal(once, complete_canonical);
    struct descriptor *d2 = parse_ok(once, DESCRIPTOR_REQUIRE_COMPLETE);
    char *twice = to_json(d2, true);
    assert_string_equal(once, twice);
    free(once);
    free(twice);
    descriptor_free(d);
    descriptor_free(d2);
}

static void test_signature_matches_independent_computation(void **state)
{
    struct descriptor *d = parse_ok(complete_text, DESCRIPTOR_REQUIRE_COMPLETE);
    struct descriptor_keyring *kr = descriptor_keyring_new();
    struct errbuf eb = {""};

    assert_int_equal(descriptor_sign(d, "k1", key1, KEYLEN), 0);
    assert_string_equal(d->sig, complete_sig);
    assert_int_equal(descriptor_keyring_add(kr, "k1", key1, KEYLEN), 0);
    assert_int_equal(descriptor_verify(d, kr, &eb), 0);
    descriptor_keyring_free(kr);
    descriptor_free(d);
}

/* Parses text signed with k1, changes want to repl, re-parses and verifies. */
static int verify_edited(const char *signed_text, const char *want, const char *repl,
                         struct errbuf *eb)
{
    char buf[2048];
    const char *at = strstr(signed_text, want);
    struct descriptor_keyring *kr = descriptor_keyring_new();
    struct descriptor *d = NULL;

    assert_non_null(at);
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - signed_text), signed_text, repl,
             at + strlen(want));
    assert_int_equal(descriptor_keyring_add(kr, "k1", key1, KEYLEN), 0);
    d = parse_ok(buf, DESCRIPTOR_REQUIRE_COMPLETE);
    int r = descriptor_verify(d, kr, eb);
    descriptor_free(d);
    descriptor_keyring_free(kr);
    return r;
}

static void test_signature_survives_round_trip_and_detects_tampering(void **state)
{
    struct descriptor *d = parse_ok("{\"type\":\"noop\",\"params\":{\"url\":\"https://a/\"}}", 0);
    struct errbuf eb = {""};

    assert_int_equal(descriptor_fill_defaults(d, "cli"), 0);
    assert_int_equal(descriptor_sign(d, "k1", key1, KEYLEN), 0);
    char *text = to_json(d, true);

    /* untouched, and also with whitespace and key order changed: still valid */
    assert_int_equal(verify_edited(text, "{\"backoff\"", "{ \"backoff\"", &eb), 0);
    assert_int_equal(verify_edited(text, "\"params\":{\"url\":\"https://a/\"}",
                                   "\"params\" : { \"url\" : \"https:\\/\\/a\\/\" }", &eb),
                     0);
    /* one byte of params changed */
    assert_int_equal(verify_edited(text, "https://a/", "https://b/", &eb), -EBADMSG);
    assert_string_equal(eb.msg, "sig: signature mismatch");
    /* a defaulted field left out is not a change (the default is signed) ... */
    assert_int_equal(verify_edited(text, "\"timeout_s\":300,", "", &eb), 0);
    /* ... but any other value is */
    assert_int_equal(verify_edited(text, "\"timeout_s\":300", "\"timeout_s\":301", &eb), -EBADMSG);
    assert_int_equal(
        verify_edited(text, "\"type\":\"noop\"", "\"type\":\"noop\",\"lock\":\"x\"", &eb),
        -EBADMSG);
    /* the signature itself altered */
    const char *hex = strstr(text, "\"sig\":\"v1:k1:") + strlen("\"sig\":\"v1:k1:");
    char orig[3] = {hex[0], hex[1], 0}, flip[3] = {hex[0] == 'a' ? 'b' : 'a', hex[1], 0};
    char want[80];
    snprintf(want, sizeof(want), "v1:k1:%s", orig);
    char repl[80];
    snprintf(repl, sizeof(repl), "v1:k1:%s", flip);
    assert_int_equal(verify_edited(text, want, repl, &eb), -EBADMSG);
    free(text);
    descriptor_free(d);
}

static void test_key_rotation_and_verify_errors(void **state)
{
    struct descriptor_keyring *both = descriptor_keyring_new(),
                              *new_only = descriptor_keyring_new();
    struct descriptor *d = parse_ok(complete_text, DESCRIPTOR_REQUIRE_COMPLETE);
    struct errbuf eb = {""};

    assert_int_equal(descriptor_keyring_add(both, "k1", key1, KEYLEN), 0);
    assert_int_equal(descriptor_keyring_add(both, "k2", key2, KEYLEN), 0);
    assert_int_equal(descriptor_keyring_add(both, "k2", key1, KEYLEN), -EEXIST);
    assert_int_equal(descriptor_keyring_add(both, "k:3", key1, KEYLEN), -EINVAL);
    assert_int_equal(descriptor_keyring_add(both, "k3", key1, DESCRIPTOR_KEY_MIN - 1), -EINVAL);
    assert_int_equal(descriptor_keyring_add(new_only, "k2", key2, KEYLEN), 0);

    assert_int_equal(descriptor_verify(d, both, &eb), -ENOMSG);
    assert_string_equal(eb.msg, "sig: missing");

    /* during a rotation both keys verify; afterwards the old one is unknown */
    assert_int_equal(descriptor_sign(d, "k1", key1, KEYLEN), 0);
    assert_int_equal(descriptor_verify(d, both, &eb), 0);
    assert_int_equal(descriptor_verify(d, new_only, &eb), -ENOKEY);
    assert_string_equal(eb.msg, "sig: unknown key id \"k1\"");
    assert_int_equal(descriptor_sign(d, "k2", key2, KEYLEN), 0);
    assert_int_equal(descriptor_verify(d, both, &eb), 0);
    assert_int_equal(descriptor_verify(d, new_only, &eb), 0);

    /* the right key id with the wrong key */
    assert_int_equal(descriptor_sign(d, "k2", key1, KEYLEN), 0);
    assert_int_equal(descriptor_verify(d, new_only, &eb), -EBADMSG);
    assert_string_equal(eb.msg, "sig: signature mismatch");

    free(d->sig);
    d->sig = strdup("v2:k2:00");
    assert_int_equal(descriptor_verify(d, both, &eb), -EINVAL);
    assert_non_null(strstr(eb.msg, "sig: malformed"));

    assert_int_equal(descriptor_sign(d, "bad id", key1, KEYLEN), -EINVAL);
    assert_int_equal(descriptor_sign(d, "k1", key1, 8), -EINVAL);
    descriptor_free(d);

    d = parse_ok("{\"type\":\"noop\"}", 0); /* no id or created_at yet */
    assert_int_equal(descriptor_sign(d, "k1", key1, KEYLEN), -EINVAL);
    assert_null(d->sig);
    descriptor_free(d);
    descriptor_keyring_free(both);
    descriptor_keyring_free(new_only);
}

static void valid_fixture(const char *path, const char *name, const char *text, size_t len)
{
    struct errbuf eb = {""};
    struct descriptor *d = NULL;

    if (descriptor_parse(text, len, 0, &d, &eb) < 0)
        fail_msg("%s: rejected: %s", name, eb.msg);
    char *once = to_json(d, true);
    struct descriptor *d2 = parse_ok(once, 0);
    char *twice = to_json(d2, true);
    if (strcmp(once, twice) != 0)
        fail_msg("%s: round trip changed\n%s\n%s", name, once, twice);
    free(once);
    free(twice);
    descriptor_free(d2);
    descriptor_free(d);
}

static void invalid_fixture(const char *path, const char *name, const char *text, size_t len)
{
    struct errbuf eb = {""};
    struct descriptor *d = NULL;
    char err_path[1400];
    size_t elen = 0;
    int r = descriptor_parse(text, len, 0, &d, &eb);

    snprintf(err_path, sizeof(err_path), "%.*s.err", (int)(strlen(path) - 5), path);
    char *want = fixture_read(err_path, &elen);
    want[strcspn(want, "\n")] = '\0';
    if (r >= 0)
        fail_msg("%s: accepted, want \"%s\"", name, want);
    if (!strstr(eb.msg, want))
        fail_msg("%s: got \"%s\", want \"%s\"", name, eb.msg, want);
    free(want);
}

static void test_valid_fixtures_are_accepted_and_round_trip(void **state)
{
    size_t n = fixture_each("valid", valid_fixture);
    print_message("%zu valid fixtures accepted\n", n);
    assert_true(n >= 12);
}

static void test_invalid_fixtures_are_rejected_with_their_message(void **state)
{
    size_t n = fixture_each("invalid", invalid_fixture);
    print_message("%zu invalid fixtures rejected\n", n);
    assert_true(n >= 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent_fields_get_defaults),
        cmocka_unit_test(test_every_field_is_read),
        cmocka_unit_test(test_worker_needs_id_and_created_at),
        cmocka_unit_test(test_fill_defaults_sets_only_absent_fields),
        cmocka_unit_test(test_each_field_error_names_the_field),
        cmocka_unit_test(test_json_syntax_errors_are_one_line),
        cmocka_unit_test(test_size_limit_is_65536_bytes),
        cmocka_unit_test(test_serialised_form_is_limited_too),
        cmocka_unit_test(test_depth_limit_is_16),
        cmocka_unit_test(test_string_limit_is_4096_bytes_for_values_and_keys),
        cmocka_unit_test(test_from_json_checks_and_copies),
        cmocka_unit_test(test_round_trip_is_canonical_and_stable),
        cmocka_unit_test(test_signature_matches_independent_computation),
        cmocka_unit_test(test_signature_survives_round_trip_and_detects_tampering),
        cmocka_unit_test(test_key_rotation_and_verify_errors),
        cmocka_unit_test(test_valid_fixtures_are_accepted_and_round_trip),
        cmocka_unit_test(test_invalid_fixtures_are_rejected_with_their_message),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
