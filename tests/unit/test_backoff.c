/* Proves the reconnect backoff: each delay lies in [d/2, d] for d = min * 2^n capped at
 * max, jitter actually varies, and a reset starts again from min. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

static void test_delays_double_within_equal_jitter_bounds(void **state)
{
    struct backoff b;
    int64_t d = 100;

    backoff_init(&b, 100, 5000, 42);
    for (int n = 0; n < 12; n++) {
        int64_t got = backoff_next_ms(&b);

        assert_in_range(got, d / 2, d);
        d = d * 2 > 5000 ? 5000 : d * 2;
    }
}

static void test_jitter_spreads_clients(void **state)
{
    int64_t first[16];
    int distinct = 0;

    for (int i = 0; i < 16; i++) {
        struct backoff b;

        backoff_init(&b, 1000, 1000, (uint64_t)i * 7919);
        first[i] = backoff_next_ms(&b);
    }
    for (int i = 0; i < 16; i++) {
        int seen = 0;

        for (int j = 0; j < i; j++)
            seen |= first[j] == first[i];
        distinct += !seen;
    }
    assert_true(distinct >= 8);
}

static void test_reset_starts_from_min(void **state)
{
    struct backoff b;

    backoff_init(&b, 100, 5000, 1);
    for (int i = 0; i < 10; i++)
        backoff_next_ms(&b);
    backoff_reset(&b);
    assert_in_range(backoff_next_ms(&b), 50, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delays_double_within_equal_jitter_bounds),
        cmocka_unit_test(test_jitter_spreads_clients),
        cmocka_unit_test(test_reset_starts_from_min),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
