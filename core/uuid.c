/* UUIDv7 generation, validation and time extraction. The generator keeps the last id's
 * millisecond and random bits per process so that ids made in the same millisecond still
 * sort in creation order (RFC 9562 "monotonic random"); see uuid.h for the exact rule. */
#include "uuid.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define RAND_LO_BITS 62
#define RAND_LO_MASK ((UINT64_C(1) << RAND_LO_BITS) - 1)
#define RAND_HI_MASK UINT64_C(0xfff)
#define TIME_MAX_MS ((UINT64_C(1) << 48) - 1)

/* The generator state: the last id's millisecond and its 74 random bits as 12 + 62. */
static struct {
    pthread_mutex_t lock;
    bool drawn;  /* rand_* were drawn in this process (cleared in a forked child) */
    bool forked; /* this process is a fork of one that had drawn */
    uint64_t ms;
    uint64_t rand_hi;
    uint64_t rand_lo;
} gen = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t fork_hooks_once = PTHREAD_ONCE_INIT;

/* Fork handlers instead of comparing getpid() on every id: glibc does not cache the pid,
 * so that was a system call per id, a tenth of a batch submit's time. The lock is held
 * across fork() so a child never inherits it locked by another thread. */
static void before_fork(void)
{
    pthread_mutex_lock(&gen.lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&gen.lock);
}

static void after_fork_child(void)
{
    gen.forked = gen.drawn || gen.forked; /* a grandchild of a drawing process too */
    gen.drawn = false;
    pthread_mutex_unlock(&gen.lock);
}

static void install_fork_hooks(void)
{
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

static int fill_random(void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int draw_random(uint64_t *ret_hi, uint64_t *ret_lo)
{
    uint64_t r[2];
    int e = fill_random(r, sizeof(r));

    if (e < 0)
        return e;
    *ret_hi = r[0] & RAND_HI_MASK;
    /* The top random bit starts at zero, leaving at least 2^61 increments before the
     * low part carries into the high part: a carry never happens in practice. */
    *ret_lo = r[1] & (RAND_LO_MASK >> 1);
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec < 0)
        return 0;
    return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) & TIME_MAX_MS;
}

/* Advances the state to the next id. Called with gen.lock held. */
static int advance(void)
{
    uint64_t ms = now_ms();

    if (gen.drawn && ms <= gen.ms) {
        /* Same millisecond, or the clock stepped back: count up from the last id. */
        gen.rand_lo = (gen.rand_lo + 1) & RAND_LO_MASK;
        if (gen.rand_lo == 0) {
            gen.rand_hi = (gen.rand_hi + 1) & RAND_HI_MASK;
            if (gen.rand_hi == 0)
                gen.ms++; /* all 74 bits used up: borrow the next millisecond */
        }
        return 0;
    }
    int e = draw_random(&gen.rand_hi, &gen.rand_lo);
    if (e < 0)
        return e;
    /* A forked child keeps its parent's ms so its own ids still never go backwards. */
    if (!gen.forked || ms > gen.ms)
        gen.ms = ms;
    gen.drawn = true;
    gen.forked = false;
    return 0;
}

static void format(uint8_t b[16], char out[UUID_STR_LEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0xf];
    }
    out[o] = '\0';
}

int uuid7_new(char out[UUID_STR_LEN])
{
    uint8_t b[16];
    int e;

    pthread_once(&fork_hooks_once, install_fork_hooks);
    pthread_mutex_lock(&gen.lock);
    e = advance();
    if (e < 0) {
        pthread_mutex_unlock(&gen.lock);
        return e;
    }
    uint64_t ms = gen.ms, hi = gen.rand_hi, lo = gen.rand_lo;
    pthread_mutex_unlock(&gen.lock);

    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (hi >> 8));
    b[7] = (uint8_t)hi;
    b[8] = (uint8_t)(0x80 | (lo >> 56));
    for (int i = 9; i < 16; i++)
        b[i] = (uint8_t)(lo >> (8 * (15 - i)));
    format(b, out);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool uuid7_is_valid(const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (hexval(s[i]) < 0) {
            return false; /* also stops at a NUL before the 36th character */
        }
    }
    return s[36] == '\0' && s[14] == '7' && strchr("89ab", s[19]) != NULL && s[19] != '\0';
}

int uuid7_time_ms(const char *s, int64_t *ret_ms)
{
    uint64_t ms = 0;

    if (!uuid7_is_valid(s))
        return -EINVAL;
    for (size_t i = 0; i < 13; i++) {
        if (i == 8)
            continue;
        ms = ms << 4 | (uint64_t)hexval(s[i]);
    }
    *ret_ms = (int64_t)ms;
    return 0;
}
