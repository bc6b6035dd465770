/* Exponential backoff with equal jitter for reconnects (see backoff.h). */
#include "backoff.h"

void backoff_init(struct backoff *b, int64_t min_ms, int64_t max_ms, uint64_t seed)
{
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->attempt = 0;
    b->rng = seed;
}

/* splitmix64: jitter only spreads reconnects; it need not be unpredictable. */
static uint64_t next_random(struct backoff *b)
{
    uint64_t z = (b->rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t backoff_next_ms(struct backoff *b)
{
    int64_t d = b->min_ms;

    for (unsigned i = 0; i < b->attempt && d < b->max_ms; i++)
        d *= 2;
    if (d > b->max_ms)
        d = b->max_ms;
    b->attempt++;
    return d / 2 + (int64_t)(next_random(b) % (uint64_t)(d / 2 + 1));
}

void backoff_reset(struct backoff *b)
{
    b->attempt = 0;
}
