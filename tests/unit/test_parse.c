/* Proves that numbers and durations from users are parsed strictly: garbage, overflow
 * and empty strings are errors, never a silent zero. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parse.h"

static void test_int64_accepts_whole_numbers_in_range(void **state)
{
    int64_t v;

    assert_int_equal(parse_int64("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(parse_int64("-7", -10, 10, &v), 0);
    assert_int_equal(v, -7);
}

static void test_int64_rejects_garbage_and_out_of_range(void **state)
{
    int64_t v = 5;

    assert_int_equal(parse_int64("", 0, 100, &v), -EINVAL);
    assert_int_equal(parse_int64("12abc", 0, 100, &v), -EINVAL);
    assert_int_equal(parse_int64(" 12", 0, 100, &v), -EINVAL);
    assert_int_equal(parse_int64("101", 0, 100, &v), -ERANGE);
    assert_int_equal(parse_int64("99999999999999999999", 0, INT64_MAX, &v), -ERANGE);
    assert_int_equal(v, 5);
}

static void test_duration_units(void **state)
{
    int64_t us;

    assert_int_equal(parse_duration_us("30s", &us), 0);
    assert_int_equal(us, 30000000);
    assert_int_equal(parse_duration_us("1500ms", &us), 0);
    assert_int_equal(us, 1500000);
    assert_int_equal(parse_duration_us("1h", &us), 0);
    assert_int_equal(us, 3600000000LL);
    assert_int_equal(parse_duration_us("2d", &us), 0);
    assert_int_equal(us, 172800000000LL);
    assert_int_equal(parse_duration_us("5", &us), 0);
    assert_int_equal(us, 5000000);
}

static void test_duration_rejects_bad_units(void **state)
{
    int64_t us = 1;

    assert_int_equal(parse_duration_us("", &us), -EINVAL);
    assert_int_equal(parse_duration_us("s", &us), -EINVAL);
    assert_int_equal(parse_duration_us("10x", &us), -EINVAL);
    assert_int_equal(parse_duration_us("-5s", &us), -EINVAL);
    assert_int_equal(parse_duration_us("1.5h", &us), -EINVAL);
    assert_int_equal(parse_duration_us("99999999999999999d", &us), -ERANGE);
    assert_int_equal(us, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int64_accepts_whole_numbers_in_range),
        cmocka_unit_test(test_int64_rejects_garbage_and_out_of_range),
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_rejects_bad_units),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
