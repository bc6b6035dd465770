/* core/strbuf.c: appended pieces come out as one NUL-terminated text of the right length,
 * however many times the buffer had to grow and whatever was written straight into reserved
 * room; integers are written exactly at their extremes; a failure (a reservation too large
 * to make, or one the writer reports) sticks, so later appends change nothing and detaching
 * returns NULL; reset and detach leave a buffer that can be used again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

static void test_pieces_detach_as_one_terminated_text(void **state)
{
    struct strbuf b = {0};
    size_t len = 0;
    char *text;

    (void)state;
    assert_int_equal(strbuf_add_lit(&b, "{\"n\":"), 0);
    assert_int_equal(strbuf_add_int(&b, 42), 0);
    assert_int_equal(strbuf_add_str(&b, ",\"s\":\"x\""), 0);
    assert_int_equal(strbuf_add(&b, "}garbage", 1), 0);
    text = strbuf_detach(&b, &len);
    assert_non_null(text);
    assert_string_equal(text, "{\"n\":42,\"s\":\"x\"}");
    assert_int_equal(len, strlen(text));
    free(text);
    /* detach hands the memory over and leaves an empty, usable buffer */
    assert_null(b.buf);
    assert_int_equal(b.len, 0);
    assert_int_equal(strbuf_add_lit(&b, "again"), 0);
    text = strbuf_detach(&b, NULL);
    assert_string_equal(text, "again");
    free(text);
}

static void test_empty_buffer_detaches_as_empty_string(void **state)
{
    struct strbuf b = {0};
    size_t len = 99;
    char *text = strbuf_detach(&b, &len);

    (void)state;
    assert_non_null(text);
    assert_string_equal(text, "");
    assert_int_equal(len, 0);
    free(text);
    strbuf_release(&b); /* a zeroed buffer releases too */
}

static void test_integers_at_their_extremes(void **state)
{
    static const struct {
        int64_t v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {-1, "-1"},
        {9, "9"},
        {10, "10"},
        {INT64_MAX, "9223372036854775807"},
        {INT64_MIN, "-9223372036854775808"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct strbuf b = {0};
        char *text;

        assert_int_equal(strbuf_add_int(&b, cases[i].v), 0);
        text = strbuf_detach(&b, NULL);
        assert_string_equal(text, cases[i].text);
        free(text);
    }
}

static void test_growth_keeps_every_byte(void **state)
{
    struct strbuf b = {0};
    size_t len;
    char *text;

    (void)state;
    /* 100,000 bytes one or seven at a time: many doublings past the first 512 */
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(strbuf_add_lit(&b, "abcdefg"), 0);
        assert_int_equal(strbuf_add(&b, "hij", (size_t)(i % 3) + 1), 0);
        assert_true(b.cap > b.len); /* room for the NUL, always */
    }
    text = strbuf_detach(&b, &len);
    assert_int_equal(len, 10000 * 7 + 3334 * 1 + 3333 * 2 + 3333 * 3);
    for (size_t i = 0, at = 0; i < 10000; i++) {
        assert_memory_equal(text + at, "abcdefg", 7);
        assert_memory_equal(text + at + 7, "hij", i % 3 + 1);
        at += 7 + i % 3 + 1;
    }
    assert_int_equal(text[len], '\0');
    free(text);
}

static void test_reserved_room_takes_direct_writes(void **state)
{
    struct strbuf b = {0};
    char *text;

    (void)state;
    assert_int_equal(strbuf_add_lit(&b, "<"), 0);
    assert_int_equal(strbuf_reserve(&b, 2000), 0);
    assert_true(b.cap - b.len > 2000);
    memset(b.buf + b.len, 'z', 2000);
    b.len += 2000;
    assert_int_equal(strbuf_add_lit(&b, ">"), 0);
    text = strbuf_detach(&b, NULL);
    assert_int_equal(strlen(text), 2002);
    assert_int_equal(text[0], '<');
    assert_int_equal(text[1000], 'z');
    assert_int_equal(text[2001], '>');
    free(text);
}

static void test_impossible_reservation_fails_and_sticks(void **state)
{
    struct strbuf b = {0};

    (void)state;
    assert_int_equal(strbuf_add_lit(&b, "kept"), 0);
    assert_int_equal(strbuf_reserve(&b, SIZE_MAX - 2), -ENOMEM);
    assert_int_equal(b.err, -ENOMEM);
    /* later appends are refused and change nothing */
    assert_int_equal(strbuf_add_lit(&b, "more"), -ENOMEM);
    assert_int_equal(strbuf_add_int(&b, 7), -ENOMEM);
    assert_int_equal(b.len, 4);
    assert_null(strbuf_detach(&b, NULL));
    assert_null(b.buf); /* detaching a failed buffer releases it */
}

static void test_writer_failure_sticks_until_reset(void **state)
{
    struct strbuf b = {0};
    char *text;

    (void)state;
    assert_int_equal(strbuf_add_lit(&b, "abc"), 0);
    assert_int_equal(strbuf_fail(&b, -EINVAL), -EINVAL);
    assert_int_equal(strbuf_fail(&b, -ENOMEM), -EINVAL); /* the first failure is kept */
    assert_int_equal(strbuf_fail(&b, 0), -EINVAL);
    assert_int_equal(strbuf_add_lit(&b, "x"), -EINVAL);
    /* reset forgets data and error and keeps the memory */
    strbuf_reset(&b);
    assert_int_equal(b.err, 0);
    assert_int_equal(b.len, 0);
    assert_non_null(b.buf);
    assert_int_equal(strbuf_add_lit(&b, "fresh"), 0);
    text = strbuf_detach(&b, NULL);
    assert_string_equal(text, "fresh");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces_detach_as_one_terminated_text),
        cmocka_unit_test(test_empty_buffer_detaches_as_empty_string),
        cmocka_unit_test(test_integers_at_their_extremes),
        cmocka_unit_test(test_growth_keeps_every_byte),
        cmocka_unit_test(test_reserved_room_takes_direct_writes),
        cmocka_unit_test(test_impossible_reservation_fails_and_sticks),
        cmocka_unit_test(test_writer_failure_sticks_until_reset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
