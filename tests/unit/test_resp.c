/* core/resp.c: our RESP encoder must produce exactly the bytes of hiredis's own
 * redisFormatCommandArgv (the server parses either), for empty, binary and long arguments
 * and for argument counts whose header crosses a digit boundary; a built command with
 * leading arguments (a script call) is the same as formatting them all in order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "resp.h"

static void assert_same_as_hiredis(int argc, const char **argv, const size_t *argvlen)
{
    struct resp_cmd c = {0};
    const char *ours = NULL;
    char *theirs = NULL;
    size_t ours_len = 0;
    int theirs_len;

    for (int i = 0; i < argc; i++)
        resp_cmd_add(&c, argv[i], argvlen ? argvlen[i] : strlen(argv[i]));
    assert_int_equal(resp_cmd_encode(&c, 0, NULL, &ours, &ours_len), 0);
    theirs_len = redisFormatCommandArgv(&theirs, argc, argv, argvlen);
    assert_true(theirs_len > 0);
    assert_int_equal(ours_len, (size_t)theirs_len);
    assert_memory_equal(ours, theirs, ours_len);
    resp_cmd_release(&c);
    redisFreeCommand(theirs);
}

static void test_plain_strings_match_hiredis(void **state)
{
    const char *argv[] = {"SET", "key", "value"};

    (void)state;
    assert_same_as_hiredis(3, argv, NULL);
}

static void test_empty_and_binary_arguments_match_hiredis(void **state)
{
    const char *argv[] = {"XADD", "", "a\0b\r\nc"};
    const size_t lens[] = {4, 0, 6};

    (void)state;
    assert_same_as_hiredis(3, argv, lens);
}

static void test_long_arguments_and_many_of_them_match_hiredis(void **state)
{
    enum { N = 1234 };
    const char **argv = calloc(N, sizeof(*argv));
    size_t *lens = calloc(N, sizeof(*lens));
    char *big = malloc(100001);

    (void)state;
    assert_non_null(argv);
    assert_non_null(lens);
    assert_non_null(big);
    memset(big, 'x', 100000);
    big[100000] = '\0';
    for (int i = 0; i < N; i++) {
        argv[i] = big;
        /* lengths 0, 1, 9, 10, 99, 100, ... cross every header width up to 6 digits */
        lens[i] = (size_t[]){0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 99999,
                             100000}[i % 12];
    }
    for (int argc = 1; argc <= N; argc = argc < 12 ? argc + 1 : argc * 3)
        assert_same_as_hiredis(argc, argv, lens);
    assert_same_as_hiredis(N, argv, lens);
    free(big);
    free(lens);
    free(argv);
}

static void test_no_arguments_is_refused(void **state)
{
    struct resp_cmd c = {0};
    const char *cmd = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(resp_cmd_encode(&c, 0, NULL, &cmd, &len), -EINVAL);
    assert_null(cmd);
    resp_cmd_release(&c);
}

static void test_built_command_with_lead_matches_hiredis(void **state)
{
    struct resp_cmd c = {0};
    const char *lead[] = {"EVALSHA", "0123456789012345678901234567890123456789", "2"};
    const char *all[] = {lead[0], lead[1], lead[2], "k1", "k2", "", "-9223372036854775808",
                         "0", "42", "-7"};
    const char *cmd = NULL;
    size_t len = 0;
    char *theirs = NULL;
    int theirs_len;

    (void)state;
    resp_cmd_add_str(&c, "k1");
    resp_cmd_add(&c, "k2xyz", 2);
    resp_cmd_add(&c, "", 0);
    resp_cmd_add_int(&c, INT64_MIN);
    resp_cmd_add_int(&c, 0);
    resp_cmd_add_int(&c, 42);
    resp_cmd_add_int(&c, -7);
    assert_int_equal(c.b.err, 0);
    assert_int_equal(resp_cmd_encode(&c, 3, lead, &cmd, &len), 0);
    theirs_len = redisFormatCommandArgv(&theirs, 10, all, NULL);
    assert_int_equal(len, (size_t)theirs_len);
    assert_memory_equal(cmd, theirs, len);
    redisFreeCommand(theirs);

    /* Encoding again without the lead gives the plain command. */
    assert_int_equal(resp_cmd_encode(&c, 0, NULL, &cmd, &len), 0);
    theirs_len = redisFormatCommandArgv(&theirs, 7, all + 3, NULL);
    assert_int_equal(len, (size_t)theirs_len);
    assert_memory_equal(cmd, theirs, len);
    redisFreeCommand(theirs);
    resp_cmd_release(&c);
    assert_null(c.b.buf);
    assert_int_equal(c.argc, 0);
}

static void test_lead_longer_than_headroom_is_refused(void **state)
{
    struct resp_cmd c = {0};
    char big[RESP_HEADROOM + 1];
    const char *lead[] = {big};
    const char *cmd = NULL;
    size_t len = 0;

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    resp_cmd_add_str(&c, "arg");
    assert_int_equal(resp_cmd_encode(&c, 1, lead, &cmd, &len), -E2BIG);
    assert_null(cmd);
    resp_cmd_release(&c);
    assert_int_equal(resp_cmd_encode(&c, 0, NULL, &cmd, &len), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_strings_match_hiredis),
        cmocka_unit_test(test_empty_and_binary_arguments_match_hiredis),
        cmocka_unit_test(test_long_arguments_and_many_of_them_match_hiredis),
        cmocka_unit_test(test_no_arguments_is_refused),
        cmocka_unit_test(test_built_command_with_lead_matches_hiredis),
        cmocka_unit_test(test_lead_longer_than_headroom_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
