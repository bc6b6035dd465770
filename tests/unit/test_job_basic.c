/* Proves the three test job types behave as the pipeline tests rely on: noop succeeds at
 * once with {}, sleep waits on a real timer and can be cancelled without a callback or a
 * leak, fail fails exactly `times` attempts (by the runner's attempt number) and then
 * succeeds, and each refuses malformed params naming the field. */
#include "job_harness.h"

static const char *const no_allow[] = {NULL};

static void check_rejects(const struct job_type *t, const char *json_text, const char *want)
{
    json_t *p = json_loads(json_text, 0, NULL);
    struct errbuf eb = {{0}};

    assert_non_null(p);
    assert_true(t->check(p, &eb) < 0);
    assert_string_equal(eb.msg, want);
    json_decref(p);
}

static void check_accepts(const struct job_type *t, const char *json_text)
{
    json_t *p = json_loads(json_text, 0, NULL);
    struct errbuf eb = {{0}};

    assert_non_null(p);
    if (t->check(p, &eb) < 0)
        fail_msg("%s rejected %s: %s", t->name, json_text, eb.msg);
    json_decref(p);
}

static void test_noop_completes_inside_start_with_empty_result(void **state)
{
    struct harness *h = harness_new(no_allow);

    assert_int_equal(harness_start(h, &job_type_noop, "{}"), 0);
    assert_int_equal(h->done_calls, 1);
    assert_int_equal(h->status, JOB_STATUS_OK);
    assert_true(json_is_object(h->result));
    assert_int_equal(json_object_size(h->result), 0);
    assert_string_equal(h->error, "");
    harness_free(h);
}

static void test_noop_refuses_any_param(void **state)
{
    struct errbuf eb = {{0}};

    check_accepts(&job_type_noop, "{}");
    assert_int_equal(job_type_noop.check(NULL, &eb), 0); /* absent params = {} */
    check_rejects(&job_type_noop, "{\"seconds\": 1}", "params.seconds: unknown field");
}

static void test_sleep_waits_its_time_then_reports_ok(void **state)
{
    struct harness *h = harness_new(no_allow);
    int64_t t0 = clock_mono_us();

    assert_int_equal(harness_start(h, &job_type_sleep, "{\"seconds\": 0.15}"), 0);
    assert_int_equal(h->done_calls, 0);
    harness_wait_done(h, 5 * USEC_PER_SEC);
    /* libevent reads a coarse monotonic clock (one kernel tick, up to 10 ms), so the timer
     * may fire that much before CLOCK_MONOTONIC says 150 ms passed. */
    assert_true(clock_mono_us() - t0 >= 150000 - 10000);
    assert_int_equal(h->status, JOB_STATUS_OK);
    assert_true(json_number_value(json_object_get(h->result, "slept_s")) == 0.15);
    assert_null(h->x.state);
    harness_free(h);
}

static void test_sleep_zero_completes_on_next_loop_turn(void **state)
{
    struct harness *h = harness_new(no_allow);

    assert_int_equal(harness_start(h, &job_type_sleep, "{\"seconds\": 0}"), 0);
    harness_wait_done(h, 5 * USEC_PER_SEC);
    assert_int_equal(h->status, JOB_STATUS_OK);
    harness_free(h);
}

static int loop_has_no_events(struct harness *h, void *arg)
{
    /* The child watcher's SIGCHLD event is the only one that may remain. */
    return event_base_get_num_events(h->base, EVENT_BASE_COUNT_ADDED) <= 1;
}

static void test_sleep_cancel_frees_timer_and_never_reports(void **state)
{
    struct harness *h = harness_new(no_allow);
    int64_t t0 = clock_mono_us();

    assert_int_equal(harness_start(h, &job_type_sleep, "{\"seconds\": 3600}"), 0);
    assert_non_null(h->x.state);
    assert_int_equal(event_base_get_num_events(h->base, EVENT_BASE_COUNT_ADDED), 2);
    job_type_sleep.cancel(&h->x);
    assert_null(h->x.state);
    assert_true(loop_has_no_events(h, NULL));
    /* Nothing is left to fire: a loop turn returns at once and nothing reports. */
    assert_int_equal(event_base_loop(h->base, EVLOOP_NONBLOCK), 0);
    assert_int_equal(h->done_calls, 0);
    assert_true(clock_mono_us() - t0 < 5 * USEC_PER_SEC);
    harness_free(h);
}

static void test_sleep_params_are_checked_by_field(void **state)
{
    check_accepts(&job_type_sleep, "{\"seconds\": 86400}");
    check_accepts(&job_type_sleep, "{\"seconds\": 1}");
    check_rejects(&job_type_sleep, "{}", "params.seconds: required");
    check_rejects(&job_type_sleep, "{\"seconds\": \"5\"}", "params.seconds: expected number");
    check_rejects(&job_type_sleep, "{\"seconds\": -0.5}",
                  "params.seconds: must be between 0 and 86400");
    check_rejects(&job_type_sleep, "{\"seconds\": 86400.5}",
                  "params.seconds: must be between 0 and 86400");
    check_rejects(&job_type_sleep, "{\"seconds\": 1, \"extra\": 2}", "params.extra: unknown field");
}

static void run_fail(int attempt, const char *params, enum job_status want, const char *want_error)
{
    struct harness *h = harness_new(no_allow);

    h->x.attempt = attempt;
    assert_int_equal(harness_start(h, &job_type_fail, params), 0);
    assert_int_equal(h->done_calls, 1);
    assert_int_equal(h->status, want);
    assert_string_equal(h->error, want_error);
    assert_int_equal(json_integer_value(json_object_get(h->result, "attempt")), attempt);
    harness_free(h);
}

static void test_fail_fails_planned_attempts_then_succeeds(void **state)
{
    run_fail(1, "{\"times\": 2}", JOB_STATUS_FAILED,
             "failing on purpose (attempt 1 of 2 planned failures)");
    run_fail(2, "{\"times\": 2}", JOB_STATUS_FAILED,
             "failing on purpose (attempt 2 of 2 planned failures)");
    run_fail(3, "{\"times\": 2}", JOB_STATUS_OK, "");
    run_fail(1, "{\"times\": 0}", JOB_STATUS_OK, "");
    /* Without times: one planned failure. */
    run_fail(1, "{}", JOB_STATUS_FAILED, "failing on purpose (attempt 1 of 1 planned failures)");
    run_fail(2, "{}", JOB_STATUS_OK, "");
}

static void test_fail_params_are_checked_by_field(void **state)
{
    check_rejects(&job_type_fail, "{\"times\": 1.5}", "params.times: expected integer");
    check_rejects(&job_type_fail, "{\"times\": -1}", "params.times: must be between 0 and 1000000");
    check_rejects(&job_type_fail, "{\"tims\": 1}", "params.tims: unknown field");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noop_completes_inside_start_with_empty_result),
        cmocka_unit_test(test_noop_refuses_any_param),
        cmocka_unit_test(test_sleep_waits_its_time_then_reports_ok),
        cmocka_unit_test(test_sleep_zero_completes_on_next_loop_turn),
        cmocka_unit_test(test_sleep_cancel_frees_timer_and_never_reports),
        cmocka_unit_test(test_sleep_params_are_checked_by_field),
        cmocka_unit_test(test_fail_fails_planned_attempts_then_succeeds),
        cmocka_unit_test(test_fail_params_are_checked_by_field),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
