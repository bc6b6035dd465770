/* Proves the civil-date arithmetic and RFC 3339 text that every timestamp in maintq
 * passes through: epoch, leap days, years past 2038, offsets and fractions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"

static void parse_ok(const char *s, const char *want_utc)
{
    char buf[CLOCK_RFC3339_MAX];
    int64_t us = 0;

    assert_int_equal(clock_parse_rfc3339(s, &us), 0);
    assert_string_equal(clock_format_rfc3339(us, buf), want_utc);
}

static void test_epoch_formats_as_1970(void **state)
{
    char buf[CLOCK_RFC3339_MAX];

    assert_string_equal(clock_format_rfc3339(0, buf), "1970-01-01T00:00:00Z");
    assert_string_equal(clock_format_rfc3339_us(1, buf), "1970-01-01T00:00:00.000001Z");
    assert_string_equal(clock_format_rfc3339(-1, buf), "1969-12-31T23:59:59Z");
}

static void test_offsets_convert_to_utc(void **state)
{
    parse_ok("2026-03-08T02:30:00-05:00", "2026-03-08T07:30:00Z");
    parse_ok("2026-03-08T09:30:00+02:00", "2026-03-08T07:30:00Z");
    parse_ok("2026-03-08t07:30:00z", "2026-03-08T07:30:00Z");
    parse_ok("2026-03-08 07:30:00.999999Z", "2026-03-08T07:30:00Z");
}

static void test_leap_day_and_2038(void **state)
{
    parse_ok("2024-02-29T12:00:00Z", "2024-02-29T12:00:00Z");
    parse_ok("2038-01-19T03:14:08Z", "2038-01-19T03:14:08Z");
    parse_ok("2100-02-28T23:59:59+00:00", "2100-02-28T23:59:59Z");
    assert_int_equal(clock_days_from_civil(2000, 3, 1), 11017);
}

static void test_fraction_keeps_microseconds(void **state)
{
    int64_t us;

    assert_int_equal(clock_parse_rfc3339("1970-01-01T00:00:01.5Z", &us), 0);
    assert_int_equal(us, 1500000);
    assert_int_equal(clock_parse_rfc3339("1970-01-01T00:00:00.1234567Z", &us), 0);
    assert_int_equal(us, 123456);
}

static void test_malformed_times_are_rejected(void **state)
{
    static const char *const bad[] = {
        "", "2026-03-08", "2026-03-08T07:30:00", "2026-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-03-08T24:00:00Z",
        "2026-03-08T07:30:00+5:00", "2026-03-08T07:30:00Zjunk", "2026-03-08T07:30:00.Z",
        "26-03-08T07:30:00Z",
    };
    int64_t us = 42;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(clock_parse_rfc3339(bad[i], &us), -EINVAL);
        assert_int_equal(us, 42);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epoch_formats_as_1970),
        cmocka_unit_test(test_offsets_convert_to_utc),
        cmocka_unit_test(test_leap_day_and_2038),
        cmocka_unit_test(test_fraction_keeps_microseconds),
        cmocka_unit_test(test_malformed_times_are_rejected),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
