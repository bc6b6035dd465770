/* Proves the UUIDv7 generator's contract: canonical lower-case text, version 7 and variant
 * 10 bits, the embedded millisecond equals the wall clock, ids made in a burst (many per
 * millisecond) are strictly increasing and distinct, and the validator rejects near-misses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "uuid.h"

static void test_new_id_is_canonical_v7(void **state)
{
    char id[UUID_STR_LEN];

    assert_int_equal(uuid7_new(id), 0);
    assert_int_equal(strlen(id), 36);
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(id[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", id[i]));
    }
    assert_int_equal(id[14], '7');           /* version nibble */
    assert_non_null(strchr("89ab", id[19])); /* variant bits 10 */
    assert_true(uuid7_is_valid(id));
}

static void test_time_matches_clock(void **state)
{
    char id[UUID_STR_LEN];
    int64_t before = clock_now_us() / 1000, ms = 0;

    assert_int_equal(uuid7_new(id), 0);
    int64_t after = clock_now_us() / 1000;
    assert_int_equal(uuid7_time_ms(id, &ms), 0);
    /* ids made earlier in this process may have borrowed a millisecond ahead */
    assert_true(ms >= before && ms <= after + 1);
}

static void test_known_time_is_extracted(void **state)
{
    int64_t ms = 0;

    /* 0x017f22e279b0 = 1645557742000 ms: the RFC 9562 appendix example */
    assert_int_equal(uuid7_time_ms("017f22e2-79b0-7cc3-98c4-dc0c0c07398f", &ms), 0);
    assert_int_equal(ms, 1645557742000LL);
    ms = 42;
    assert_int_equal(uuid7_time_ms("not-a-uuid", &ms), -EINVAL);
    assert_int_equal(ms, 42);
}

static void test_ten_thousand_ids_strictly_increase(void **state)
{
    enum { N = 10000 };
    char(*ids)[UUID_STR_LEN] = calloc(N, UUID_STR_LEN);

    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        assert_int_equal(uuid7_new(ids[i]), 0);
    for (int i = 1; i < N; i++) {
        if (strcmp(ids[i - 1], ids[i]) >= 0)
            fail_msg("id %d %s is not after %s", i, ids[i], ids[i - 1]);
    }
    free(ids);
}

static void test_forked_child_does_not_repeat_parent(void **state)
{
    int fds[2];
    char parent[UUID_STR_LEN], child[UUID_STR_LEN];
    int status;

    assert_int_equal(uuid7_new(parent), 0);
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[UUID_STR_LEN];
        _exit(uuid7_new(id) == 0 && write(fds[1], id, sizeof(id)) == (ssize_t)sizeof(id) ? 0 : 1);
    }
    assert_int_equal(uuid7_new(parent), 0);
    assert_int_equal(read(fds[0], child, sizeof(child)), (ssize_t)sizeof(child));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(uuid7_is_valid(child));
    /* Same parent state, yet different random bits after the fork. */
    assert_string_not_equal(parent + 14, child + 14);
    close(fds[0]);
    close(fds[1]);
}

static void test_validator_rejects_near_misses(void **state)
{
    static const char *const bad[] = {
        "",
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398",   /* short */
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398f0", /* long */
        "017F22E2-79B0-7CC3-98C4-DC0C0C07398F",  /* upper case */
        "017f22e2-79b0-4cc3-98c4-dc0c0c07398f",  /* version 4 */
        "017f22e2-79b0-7cc3-c8c4-dc0c0c07398f",  /* variant 110 */
        "017f22e2-79b0-7cc3-78c4-dc0c0c07398f",  /* variant 0 */
        "017f22e279b0-7cc3-98c4-dc0c0c07398f0",  /* hyphen misplaced */
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398g",  /* not hex */
    };

    assert_true(uuid7_is_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07398f"));
    assert_false(uuid7_is_valid(NULL));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (uuid7_is_valid(bad[i]))
            fail_msg("accepted %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_id_is_canonical_v7),
        cmocka_unit_test(test_time_matches_clock),
        cmocka_unit_test(test_known_time_is_extracted),
        cmocka_unit_test(test_ten_thousand_ids_strictly_increase),
        cmocka_unit_test(test_forked_child_does_not_repeat_parent),
        cmocka_unit_test(test_validator_rejects_near_misses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
