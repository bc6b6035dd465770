/* Proves the TZif reader: offsets on both sides of real transitions (New York, London, the
 * 30-minute Lord Howe shift, Johannesburg without DST), offsets decided by the POSIX footer
 * rule past the file's last transition (2040, 2100), local-to-UTC mapping of gaps and
 * overlaps, rejection of names that are not plain IANA names, and that corrupt files are
 * refused rather than misread. Expected instants come from the rules, worked by hand:
 * US DST starts the 2nd Sunday of March 02:00 local and ends the 1st Sunday of November
 * (2026-03-08, 2026-11-01; 2040-03-11; 2100-03-14 and 2100-11-07, since 2100-03-01 and
 * 2100-11-01 are Mondays); EU at 01:00Z on the last Sundays of March and October
 * (2026-03-29, 2026-10-25); Lord Howe at 02:00 local on the 1st Sundays of October and April
 * (2026-10-04 = 15:30Z the day before, 2026-04-05 = 15:00Z the day before). */
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
#include "errbuf.h"
#include "tz.h"

static struct tz *load(const char *name)
{
    struct errbuf eb = {{0}};
    struct tz *tz = NULL;

    if (tz_load(name, &tz, &eb) < 0)
        fail_msg("%s: %s", name, eb.msg);
    return tz;
}

static int64_t at(const char *rfc3339)
{
    int64_t us;

    assert_int_equal(clock_parse_rfc3339(rfc3339, &us), 0);
    return us;
}

static void offset_is(const struct tz *tz, const char *when, int32_t want)
{
    int32_t got = tz_offset_at(tz, at(when));

    if (got != want)
        fail_msg("%s at %s: offset %d, want %d", tz_name(tz), when, got, want);
}

static void test_offsets_switch_at_2026_transitions(void **state)
{
    struct tz *ny = load("America/New_York"), *lon = load("Europe/London");
    struct tz *lh = load("Australia/Lord_Howe"), *jnb = load("Africa/Johannesburg");

    offset_is(ny, "2026-03-08T06:59:59Z", -5 * 3600);
    offset_is(ny, "2026-03-08T07:00:00Z", -4 * 3600);
    offset_is(ny, "2026-11-01T05:59:59Z", -4 * 3600);
    offset_is(ny, "2026-11-01T06:00:00Z", -5 * 3600);
    offset_is(lon, "2026-03-29T00:59:59Z", 0);
    offset_is(lon, "2026-03-29T01:00:00Z", 3600);
    offset_is(lon, "2026-10-25T00:59:59Z", 3600);
    offset_is(lon, "2026-10-25T01:00:00Z", 0);
    offset_is(lh, "2026-10-03T15:29:59Z", 37800);
    offset_is(lh, "2026-10-03T15:30:00Z", 39600);
    offset_is(lh, "2026-04-04T14:59:59Z", 39600);
    offset_is(lh, "2026-04-04T15:00:00Z", 37800);
    offset_is(jnb, "2026-01-01T00:00:00Z", 7200);
    offset_is(jnb, "2026-07-01T00:00:00Z", 7200);
    /* Before the first transition: local mean time, -4:56:02 for New York. */
    offset_is(ny, "1800-01-01T00:00:00Z", -17762);
    tz_free(ny);
    tz_free(lon);
    tz_free(lh);
    tz_free(jnb);
}

static void test_footer_rule_decides_past_2038(void **state)
{
    struct tz *ny = load("America/New_York"), *lon = load("Europe/London");
    struct tz *lh = load("Australia/Lord_Howe"), *jnb = load("Africa/Johannesburg");

    offset_is(ny, "2040-03-11T06:59:59Z", -5 * 3600);
    offset_is(ny, "2040-03-11T07:00:00Z", -4 * 3600);
    offset_is(ny, "2100-03-14T06:59:59Z", -5 * 3600);
    offset_is(ny, "2100-03-14T07:00:00Z", -4 * 3600);
    offset_is(ny, "2100-11-07T05:59:59Z", -4 * 3600);
    offset_is(ny, "2100-11-07T06:00:00Z", -5 * 3600);
    offset_is(lon, "2040-03-25T01:00:00Z", 3600);
    offset_is(lon, "2040-10-28T01:00:00Z", 0);
    offset_is(lh, "2040-10-06T15:29:59Z", 37800);
    offset_is(lh, "2040-10-06T15:30:00Z", 39600);
    /* Southern summer spans the new year: still +11 on 2041-01-01. */
    offset_is(lh, "2041-01-01T00:00:00Z", 39600);
    offset_is(jnb, "2200-06-01T00:00:00Z", 7200);
    tz_free(ny);
    tz_free(lon);
    tz_free(lh);
    tz_free(jnb);
}

static void test_period_spans_one_offset(void **state)
{
    struct tz *ny = load("America/New_York");
    struct tz_period p;

    tz_period_at(ny, at("2026-07-01T00:00:00Z") / USEC_PER_SEC, &p);
    assert_int_equal(p.start, at("2026-03-08T07:00:00Z") / USEC_PER_SEC);
    assert_int_equal(p.end, at("2026-11-01T06:00:00Z") / USEC_PER_SEC);
    assert_int_equal(p.offset, -4 * 3600);
    tz_period_at(ny, at("2041-01-01T00:00:00Z") / USEC_PER_SEC, &p);
    assert_int_equal(p.start, at("2040-11-04T06:00:00Z") / USEC_PER_SEC);
    assert_int_equal(p.end, at("2041-03-10T07:00:00Z") / USEC_PER_SEC);
    assert_int_equal(p.offset, -5 * 3600);
    tz_free(ny);
}

static int64_t local(const char *wall) /* a wall time written as if it were UTC */
{
    return at(wall) / USEC_PER_SEC;
}

static void test_local_times_in_gaps_and_overlaps(void **state)
{
    struct tz *ny = load("America/New_York"), *lh = load("Australia/Lord_Howe");
    struct tz_local m;

    tz_local_to_utc(ny, local("2026-03-08T02:30:00Z"), &m);
    assert_int_equal(m.count, 0);
    assert_int_equal(m.gap_end, local("2026-03-08T07:00:00Z"));
    tz_local_to_utc(ny, local("2026-11-01T01:30:00Z"), &m);
    assert_int_equal(m.count, 2);
    assert_int_equal(m.utc[0], local("2026-11-01T05:30:00Z"));
    assert_int_equal(m.utc[1], local("2026-11-01T06:30:00Z"));
    tz_local_to_utc(ny, local("2026-07-04T12:00:00Z"), &m);
    assert_int_equal(m.count, 1);
    assert_int_equal(m.utc[0], local("2026-07-04T16:00:00Z"));
    tz_local_to_utc(lh, local("2026-10-04T02:15:00Z"), &m);
    assert_int_equal(m.count, 0);
    assert_int_equal(m.gap_end, local("2026-10-03T15:30:00Z"));
    tz_local_to_utc(lh, local("2026-04-05T01:45:00Z"), &m);
    assert_int_equal(m.count, 2);
    assert_int_equal(m.utc[0], local("2026-04-04T14:45:00Z"));
    assert_int_equal(m.utc[1], local("2026-04-04T15:15:00Z"));
    tz_local_to_utc(lh, local("2040-10-07T02:00:00Z"), &m);
    assert_int_equal(m.count, 0);
    assert_int_equal(m.gap_end, local("2040-10-06T15:30:00Z"));
    tz_free(ny);
    tz_free(lh);
}

static void test_utc_needs_no_file_and_null_is_utc(void **state)
{
    struct tz *utc = load("UTC");

    assert_string_equal(tz_name(utc), "UTC");
    assert_true(tz_is_fixed(utc));
    assert_true(tz_is_fixed(NULL));
    assert_string_equal(tz_name(NULL), "UTC");
    offset_is(utc, "2040-03-11T07:00:00Z", 0);
    assert_int_equal(tz_offset_at(NULL, 0), 0);
    assert_null(tz_free(utc));
    assert_null(tz_free(NULL));
}

static void test_names_that_are_not_plain_iana_names_fail(void **state)
{
    static const char *const bad[] = {
        "",
        "/etc/passwd",
        "../etc/passwd",
        "Europe/../UTC",
        "Europe/ London",
        "Europe//London",
        ".hidden",
        "Europe/London/",
        "Europe\\London",
        "-x",
        "Europe/Lon don",
        "Europe/./London",
        "Europe/London\n",
        "..",
        "Europe/.London",
    };
    char longname[300];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct errbuf eb = {{0}};
        struct tz *tz = (struct tz *)&eb;

        if (tz_load(bad[i], &tz, &eb) != -EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_ptr_equal(tz, (struct tz *)&eb);
        assert_non_null(strstr(eb.msg, "is not a time zone name"));
    }
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(tz_load(longname, &(struct tz *){NULL}, NULL), -EINVAL);
}

static void test_unknown_zones_are_enoent(void **state)
{
    struct errbuf eb = {{0}};
    struct tz *tz = NULL;

    assert_int_equal(tz_load("Mars/Olympus_Mons", &tz, &eb), -ENOENT);
    assert_string_equal(eb.msg, "unknown time zone \"Mars/Olympus_Mons\"");
    assert_int_equal(tz_load("America", &tz, &eb), -ENOENT); /* a folder */
    assert_null(tz);
}

static void test_corrupt_files_are_refused(void **state)
{
    FILE *f = fopen(TZ_DIR "/America/New_York", "rb");
    unsigned char buf[8192];
    size_t n;
    struct tz *tz = NULL;

    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(n > 1000);
    assert_int_equal(tz_load_tzif("x", buf, n, &tz, NULL), 0);
    tz = tz_free(tz);
    /* Every truncation inside the header or data is refused, never misread. */
    for (size_t cut = 0; cut < n - 30; cut += 7)
        if (tz_load_tzif("x", buf, cut, &tz, NULL) != -EINVAL)
            fail_msg("truncated at %zu accepted", cut);
    buf[4] = '\0'; /* version 1: only 32-bit times */
    assert_int_equal(tz_load_tzif("x", buf, n, &tz, NULL), -EINVAL);
    buf[4] = '2';
    memcpy(buf, "TZjf", 4);
    assert_int_equal(tz_load_tzif("x", buf, n, &tz, NULL), -EINVAL);
    assert_null(tz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets_switch_at_2026_transitions),
        cmocka_unit_test(test_footer_rule_decides_past_2038),
        cmocka_unit_test(test_period_spans_one_offset),
        cmocka_unit_test(test_local_times_in_gaps_and_overlaps),
        cmocka_unit_test(test_utc_needs_no_file_and_null_is_utc),
        cmocka_unit_test(test_names_that_are_not_plain_iana_names_fail),
        cmocka_unit_test(test_unknown_zones_are_enoent),
        cmocka_unit_test(test_corrupt_files_are_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
