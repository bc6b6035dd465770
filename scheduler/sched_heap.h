/* A binary min-heap of schedules by next fire time, so the daemon finds the earliest fire
 * among 10,000 schedules in O(1) and re-queues one in O(log n). Items are embedded in the
 * caller's structs (intrusive: no allocation per item) and know their own position, so an
 * item can be removed or re-keyed in place. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SCHED_HEAP_NONE ((size_t)-1)

struct sched_heap_item {
    int64_t key; /* next fire, microseconds */
    size_t pos;  /* index in the heap, SCHED_HEAP_NONE when not in it */
};

struct sched_heap {
    struct sched_heap_item **v; /* owned array of borrowed items */
    size_t n, cap;
};

/* Adds item (borrowed; must stay valid while in the heap). Returns 0 or -ENOMEM. */
int sched_heap_push(struct sched_heap *h, struct sched_heap_item *item);
/* The item with the smallest key, or NULL when empty. */
struct sched_heap_item *sched_heap_top(const struct sched_heap *h);
/* Removes item (which must be in h). */
void sched_heap_remove(struct sched_heap *h, struct sched_heap_item *item);
/* Empties the heap (items are left with pos NONE) and frees its array. */
void sched_heap_release(struct sched_heap *h);
