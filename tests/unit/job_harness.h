/* A stand-in for the worker's runner, shared by the job handler tests: one real event
 * loop with its child watcher, one struct job_exec, and an on_done that records what the
 * handler reported. run_until() drives the loop until a condition holds or a deadline
 * passes, waking every 10 ms so conditions outside the loop (a file appears, a process
 * dies) are seen without fixed sleeps. */
#pragma once

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "child_watch.h"
#include "clock.h"
#include "job.h"

struct harness {
    struct event_base *base; /* owned */
    struct child_watch *cw;  /* owned */
    struct job_env env;
    struct job_exec x;
    json_t *params; /* owned */
    int done_calls;
    enum job_status status;
    json_t *result; /* owned: what the handler handed over */
    char error[256];
    struct errbuf eb;
};

static inline void harness_on_done(struct job_exec *x, enum job_status status, json_t *result,
                                   const char *error)
{
    struct harness *h = x->runner_data;

    h->done_calls++;
    h->status = status;
    json_decref(h->result);
    h->result = result;
    snprintf(h->error, sizeof(h->error), "%s", error ? error : "");
}

/* allow: NULL-terminated exec allowlist, borrowed (static in the tests). */
static inline struct harness *harness_new(const char *const *allow)
{
    struct harness *h = calloc(1, sizeof(*h));

    assert_non_null(h);
    h->base = event_base_new();
    assert_non_null(h->base);
    assert_int_equal(child_watch_new(h->base, &h->cw), 0);
    h->env.exec_allow = allow;
    h->x.base = h->base;
    h->x.children = h->cw;
    h->x.env = &h->env;
    h->x.job_id = "test-job";
    h->x.attempt = 1;
    h->x.timeout_us = 60 * USEC_PER_SEC;
    h->x.on_done = harness_on_done;
    h->x.runner_data = h;
    return h;
}

static inline void harness_free(struct harness *h)
{
    if (!h)
        return;
    h->cw = child_watch_free(h->cw);
    if (h->base)
        event_base_free(h->base);
    json_decref(h->params);
    json_decref(h->result);
    free(h);
}

/* Parses params (JSON text) into h->params, failing the test on bad JSON. */
static inline void harness_params(struct harness *h, const char *json_text)
{
    json_error_t jerr;

    json_decref(h->params);
    h->params = json_loads(json_text, 0, &jerr);
    if (!h->params)
        fail_msg("bad test JSON %s: %s", json_text, jerr.text);
    h->x.params = h->params;
}

/* Starts type with params; returns start()'s result, the error text in h->eb. */
static inline int harness_start(struct harness *h, const struct job_type *type,
                                const char *json_text)
{
    harness_params(h, json_text);
    h->eb.msg[0] = '\0';
    return type->start(&h->x, &h->eb);
}

static inline void harness_on_tick(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until cond(arg) is true or timeout_us passed. Returns cond's last value. */
static inline int harness_run_until(struct harness *h, int (*cond)(struct harness *h, void *arg),
                                    void *arg, int64_t timeout_us)
{
    struct event *tick = event_new(h->base, -1, EV_PERSIST, harness_on_tick, NULL);
    struct timeval tv = {0, 10000};
    int64_t deadline = clock_mono_us() + timeout_us;
    int ok;

    assert_non_null(tick);
    assert_int_equal(event_add(tick, &tv), 0);
    while (!(ok = cond(h, arg)) && clock_mono_us() < deadline)
        event_base_loop(h->base, EVLOOP_ONCE);
    event_free(tick);
    return ok;
}

static inline int harness_is_done(struct harness *h, void *arg)
{
    return h->done_calls > 0;
}

/* Runs until the handler reported, failing the test after timeout_us. */
static inline void harness_wait_done(struct harness *h, int64_t timeout_us)
{
    if (!harness_run_until(h, harness_is_done, NULL, timeout_us))
        fail_msg("the handler did not report within %lld ms", (long long)(timeout_us / 1000));
    assert_int_equal(h->done_calls, 1);
}

/* The result's string member key, or fails the test. */
static inline const char *harness_result_str(struct harness *h, const char *key)
{
    const char *s = json_string_value(json_object_get(h->result, key));

    if (!s)
        fail_msg("result has no string %s", key);
    return s;
}
