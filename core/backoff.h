/* Reconnect delays: exponential growth with "equal jitter", so that many clients that lost
 * the same server do not come back in lock step. */
#pragma once

#include <stdint.h>

struct backoff {
    int64_t min_ms;
    int64_t max_ms;
    unsigned attempt; /* failures since the last reset */
    uint64_t rng;     /* splitmix64 state */
};

/* seed: anything that differs between clients (a pointer, the time). */
void backoff_init(struct backoff *b, int64_t min_ms, int64_t max_ms, uint64_t seed);
/* The delay before the next attempt: uniform in [d/2, d] with d = min(max, min * 2^n) after
 * n failures; counts this failure. */
int64_t backoff_next_ms(struct backoff *b);
/* A success: the next failure starts again from min. */
void backoff_reset(struct backoff *b);
