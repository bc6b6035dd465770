/* Proves the scheduler's min-heap: 10,000 schedules with random next fires come out in
 * time order, an item removed from the middle never comes out, an item re-keyed (removed
 * and pushed with its next fire) lands in its new place, and every item always knows its
 * position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "sched_heap.h"

#define N 10000

static void check_positions(const struct sched_heap *h)
{
    for (size_t i = 0; i < h->n; i++) {
        assert_int_equal(h->v[i]->pos, i);
        if (i > 0)
            assert_true(h->v[(i - 1) / 2]->key <= h->v[i]->key);
    }
}

static void test_10000_items_come_out_in_time_order(void **state)
{
    struct sched_heap h = {0};
    struct sched_heap_item *items = calloc(N, sizeof(*items));
    int64_t prev = INT64_MIN;

    srand(42);
    for (size_t i = 0; i < N; i++) {
        items[i].key = (int64_t)rand() * 1000;
        assert_int_equal(sched_heap_push(&h, &items[i]), 0);
    }
    check_positions(&h);
    for (size_t i = 0; i < N; i++) {
        struct sched_heap_item *top = sched_heap_top(&h);

        assert_non_null(top);
        assert_true(top->key >= prev);
        prev = top->key;
        sched_heap_remove(&h, top);
        assert_int_equal(top->pos, SCHED_HEAP_NONE);
    }
    assert_null(sched_heap_top(&h));
    sched_heap_release(&h);
    free(items);
}

static void test_removed_items_never_come_out(void **state)
{
    struct sched_heap h = {0};
    struct sched_heap_item items[100];

    for (int i = 0; i < 100; i++) {
        items[i].key = (i * 37) % 100;
        assert_int_equal(sched_heap_push(&h, &items[i]), 0);
    }
    for (int i = 0; i < 100; i += 3)
        sched_heap_remove(&h, &items[i]);
    check_positions(&h);
    while (sched_heap_top(&h)) {
        struct sched_heap_item *top = sched_heap_top(&h);

        assert_true((top - items) % 3 != 0);
        sched_heap_remove(&h, top);
    }
    sched_heap_release(&h);
}

static void test_rekeyed_item_moves_to_its_new_place(void **state)
{
    struct sched_heap h = {0};
    struct sched_heap_item a = {.key = 10}, b = {.key = 20}, c = {.key = 30};

    assert_int_equal(sched_heap_push(&h, &a), 0);
    assert_int_equal(sched_heap_push(&h, &b), 0);
    assert_int_equal(sched_heap_push(&h, &c), 0);
    assert_ptr_equal(sched_heap_top(&h), &a);
    /* a fires; its next fire is after c's */
    sched_heap_remove(&h, &a);
    a.key = 40;
    assert_int_equal(sched_heap_push(&h, &a), 0);
    assert_ptr_equal(sched_heap_top(&h), &b);
    check_positions(&h);
    sched_heap_release(&h);
    assert_int_equal(a.pos, SCHED_HEAP_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_10000_items_come_out_in_time_order),
        cmocka_unit_test(test_removed_items_never_come_out),
        cmocka_unit_test(test_rekeyed_item_moves_to_its_new_place),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
