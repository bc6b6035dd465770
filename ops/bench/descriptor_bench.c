/* descriptor_bench: how many job descriptors one core handles per second on each side of the
 * queue. "parse" is the worker's step: descriptor_parse() of the canonical text a submitter
 * wrote (the ~250-byte noop descriptor of issue 3, and an http_check with a few params).
 * "prepare" is the submitter's step: descriptor_from_json() of a parsed submission,
 * descriptor_fill_defaults() and descriptor_to_json(). CPU time of this thread is measured,
 * not wall time. Prints one Markdown table row per step and descriptor.
 *
 * usage: descriptor_bench [parse|prepare|all] [CALLS (default 100000)] [noop|http_check]
 * Under `valgrind --tool=callgrind` the inclusive cost of bench_parse_one() and
 * bench_prepare_one() divided by CALLS (callgrind_annotate --inclusive=yes) is the
 * instruction count per descriptor, independent of the machine's load. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "descriptor.h"
#include "parse.h"

#define DEFAULT_CALLS 100000

static const char *const texts[] = {
    "{\"backoff\":{\"base_s\":1,\"max_s\":300},\"created_at\":\"2026-11-22T13:28:01.123456Z\","
    "\"id\":\"019aab3c-5d2e-7f10-8a4b-1c2d3e4f5a6b\",\"max_attempts\":3,\"params\":{},"
    "\"queue\":\"default\",\"submitted_by\":\"root@host\",\"timeout_s\":300,\"type\":\"noop\"}",
    "{\"backoff\":{\"base_s\":2,\"max_s\":120},\"created_at\":\"2026-11-22T13:28:01.123456Z\","
    "\"id\":\"019aab3c-5d2e-7f10-8a4b-1c2d3e4f5a6c\",\"max_attempts\":5,"
    "\"params\":{\"expect_status\":200,\"timeout_ms\":2000,\"url\":\"https://example.org/health\"},"
    "\"queue\":\"checks\",\"submitted_by\":\"scheduler\",\"timeout_s\":30,\"type\":\"http_check\"}",
};
static const char *const names[] = {"noop", "http_check"};
#define N_TEXTS (sizeof(texts) / sizeof(texts[0]))

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Not inlined, so that callgrind attributes one call's whole cost to it. */
__attribute__((noinline)) static int bench_parse_one(const char *text, size_t len, size_t *sink)
{
    struct descriptor *d = NULL;
    struct errbuf eb = {{0}};
    int r = descriptor_parse(text, len, DESCRIPTOR_REQUIRE_COMPLETE, &d, &eb);

    if (r < 0) {
        fprintf(stderr, "descriptor_bench: parse: %s\n", eb.msg);
        return r;
    }
    *sink += strlen(d->type);
    descriptor_free(d);
    return 0;
}

/* What `maintq submit` does per job once its JSON is read: obj is borrowed. */
__attribute__((noinline)) static int bench_prepare_one(json_t *obj, size_t *sink)
{
    struct descriptor *d = NULL;
    struct errbuf eb = {{0}};
    char *text = NULL;
    size_t len = 0;
    int r = descriptor_from_json(obj, 0, &d, &eb);

    if (r < 0) {
        fprintf(stderr, "descriptor_bench: from_json: %s\n", eb.msg);
        return r;
    }
    r = descriptor_fill_defaults(d, "root@host");
    if (r >= 0)
        r = descriptor_to_json(d, true, &text, &len);
    descriptor_free(d);
    if (r < 0) {
        fprintf(stderr, "descriptor_bench: prepare: %s\n", strerror(-r));
        return r;
    }
    *sink += len;
    free(text);
    return 0;
}

/* A submission as the command line builds it: the canonical text without the fields the
 * submitter fills (id, created_at, submitted_by). Caller frees with json_decref(). */
static json_t *submission(const char *text)
{
    json_t *obj = json_loads(text, 0, NULL);

    if (!obj)
        return NULL;
    json_object_del(obj, "id");
    json_object_del(obj, "created_at");
    json_object_del(obj, "submitted_by");
    return obj;
}

/* only: one descriptor's name, or NULL for all of them. */
static int run(const char *step, int64_t calls, const char *only)
{
    size_t sink = 0;

    for (size_t i = 0; i < N_TEXTS; i++) {
        if (only && strcmp(only, names[i]) != 0)
            continue;
        size_t len = strlen(texts[i]);
        json_t *obj = submission(texts[i]);
        int64_t t0 = thread_cpu_ns();
        int r = 0;

        if (!obj)
            return -ENOMEM;
        for (int64_t n = 0; n < calls && r >= 0; n++)
            r = strcmp(step, "parse") == 0 ? bench_parse_one(texts[i], len, &sink)
                                           : bench_prepare_one(obj, &sink);
        int64_t ns = thread_cpu_ns() - t0;
        json_decref(obj);
        if (r < 0)
            return r;
        printf("| %s | %s | %.0f k/s | %.0f ns |\n", step, names[i],
               (double)calls * 1e6 / (double)(ns ? ns : 1), (double)ns / (double)calls);
    }
    fprintf(stderr, "(checksum %zu)\n", sink);
    return 0;
}

int main(int argc, char **argv)
{
    const char *step = argc > 1 ? argv[1] : "all", *only = argc > 3 ? argv[3] : NULL;
    int64_t calls = DEFAULT_CALLS;

    if (argc > 4 || (argc >= 3 && parse_int64(argv[2], 1, INT64_C(100000000), &calls) < 0) ||
        (strcmp(step, "parse") != 0 && strcmp(step, "prepare") != 0 && strcmp(step, "all") != 0)) {
        fprintf(stderr, "usage: descriptor_bench [parse|prepare|all] [CALLS 1-100000000] "
                        "[noop|http_check]\n");
        return 2;
    }
    printf("| step | descriptor | rate (one core) | per call |\n|---|---|---|---|\n");
    if ((strcmp(step, "prepare") != 0 && run("parse", calls, only) < 0) ||
        (strcmp(step, "parse") != 0 && run("prepare", calls, only) < 0))
        return 1;
    return 0;
}
