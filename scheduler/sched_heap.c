/* The intrusive binary min-heap of sched_heap.h: the usual array layout (children of i at
 * 2i+1 and 2i+2), each move writing the item's new position back into it. */
#include "sched_heap.h"

#include <errno.h>
#include <stdlib.h>

static void place(struct sched_heap *h, size_t i, struct sched_heap_item *it)
{
    h->v[i] = it;
    it->pos = i;
}

static void sift_up(struct sched_heap *h, size_t i)
{
    struct sched_heap_item *it = h->v[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (h->v[parent]->key <= it->key)
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, it);
}

static void sift_down(struct sched_heap *h, size_t i)
{
    struct sched_heap_item *it = h->v[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->key < h->v[c]->key)
            c++;
        if (it->key <= h->v[c]->key)
            break;
        place(h, i, h->v[c]);
        i = c;
    }
    place(h, i, it);
}

int sched_heap_push(struct sched_heap *h, struct sched_heap_item *item)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct sched_heap_item **v = realloc(h->v, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    place(h, h->n++, item);
    sift_up(h, item->pos);
    return 0;
}

struct sched_heap_item *sched_heap_top(const struct sched_heap *h)
{
    return h->n ? h->v[0] : NULL;
}

void sched_heap_remove(struct sched_heap *h, struct sched_heap_item *item)
{
    size_t i = item->pos;
    struct sched_heap_item *last;

    item->pos = SCHED_HEAP_NONE;
    last = h->v[--h->n];
    if (i == h->n)
        return;
    place(h, i, last);
    sift_down(h, i);
    sift_up(h, last->pos);
}

void sched_heap_release(struct sched_heap *h)
{
    for (size_t i = 0; i < h->n; i++)
        h->v[i]->pos = SCHED_HEAP_NONE;
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
