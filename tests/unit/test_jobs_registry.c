/* Proves the job type table is complete and consistent: every type has a unique name, a
 * start and a params check, a JSON Schema of its params in schemas/jobs/<name>.schema.json
 * (found through MAINTQ_SOURCE_ROOT), and refuses params that are not an object; lookups
 * by name work; and the status names are exactly the ones stored in job_runs.status. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "job.h"

static void test_every_type_has_name_start_and_check(void **state)
{
    const struct job_type *const *all = job_types_all();
    size_t n = 0;

    for (size_t i = 0; all[i]; i++, n++) {
        assert_non_null(all[i]->name);
        assert_true(all[i]->name[0] != '\0');
        assert_non_null(all[i]->start);
        assert_non_null(all[i]->check);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(all[i]->name, all[j]->name);
    }
    assert_true(n >= 4);
}

static void test_every_type_has_a_params_schema_file(void **state)
{
    const struct job_type *const *all = job_types_all();
    const char *root = getenv("MAINTQ_SOURCE_ROOT");

    if (!root)
        fail_msg("MAINTQ_SOURCE_ROOT is not set (run through meson test)");
    for (size_t i = 0; all[i]; i++) {
        char path[PATH_MAX];
        json_error_t jerr;
        json_t *schema;

        snprintf(path, sizeof(path), "%s/schemas/jobs/%s.schema.json", root, all[i]->name);
        schema = json_load_file(path, 0, &jerr);
        if (!schema)
            fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
        /* A params schema describes an object and says which keys it allows. */
        assert_string_equal(json_string_value(json_object_get(schema, "type")), "object");
        assert_true(json_is_false(json_object_get(schema, "additionalProperties")));
        json_decref(schema);
    }
}

static void test_every_type_rejects_params_that_are_not_an_object(void **state)
{
    static const char *const not_objects[] = {"[]", "\"x\"", "1", "null", "true", "[{}]"};
    const struct job_type *const *all = job_types_all();

    for (size_t i = 0; all[i]; i++) {
        for (size_t k = 0; k < sizeof(not_objects) / sizeof(not_objects[0]); k++) {
            json_t *p = json_loads(not_objects[k], JSON_DECODE_ANY, NULL);
            struct errbuf eb = {{0}};

            assert_non_null(p);
            if (all[i]->check(p, &eb) != -EINVAL)
                fail_msg("%s accepted params %s", all[i]->name, not_objects[k]);
            assert_string_equal(eb.msg, "params: expected object");
            json_decref(p);
        }
    }
}

static void test_find_returns_the_registered_type_or_null(void **state)
{
    assert_ptr_equal(job_type_find("noop"), &job_type_noop);
    assert_ptr_equal(job_type_find("sleep"), &job_type_sleep);
    assert_ptr_equal(job_type_find("fail"), &job_type_fail);
    assert_ptr_equal(job_type_find("exec"), &job_type_exec);
    assert_null(job_type_find("Noop"));
    assert_null(job_type_find("no"));
    assert_null(job_type_find(""));
    assert_null(job_type_find(NULL));
}

static void test_status_names_round_trip_and_unknown_is_rejected(void **state)
{
    static const char *const want[] = {"ok",     "warning", "critical",
                                       "failed", "timeout", "cancelled",
                                       "dead",   "skipped", "missed_window"};
    enum job_status s;

    assert_int_equal(sizeof(want) / sizeof(want[0]), _JOB_STATUS_MAX);
    for (int i = 0; i < _JOB_STATUS_MAX; i++) {
        assert_string_equal(job_status_name((enum job_status)i), want[i]);
        assert_int_equal(job_status_parse(want[i], &s), 0);
        assert_int_equal(s, i);
    }
    s = JOB_STATUS_DEAD;
    assert_int_equal(job_status_parse("OK", &s), -EINVAL);
    assert_int_equal(job_status_parse("", &s), -EINVAL);
    assert_int_equal(job_status_parse(NULL, &s), -EINVAL);
    assert_int_equal(s, JOB_STATUS_DEAD); /* untouched on failure */
    assert_null(job_status_name(_JOB_STATUS_MAX));
}

static void test_only_failures_of_the_attempt_are_retryable(void **state)
{
    assert_false(job_status_is_retryable(JOB_STATUS_OK));
    assert_false(job_status_is_retryable(JOB_STATUS_WARNING));
    assert_false(job_status_is_retryable(JOB_STATUS_CRITICAL));
    assert_true(job_status_is_retryable(JOB_STATUS_FAILED));
    assert_true(job_status_is_retryable(JOB_STATUS_TIMEOUT));
    assert_true(job_status_is_retryable(JOB_STATUS_CANCELLED));
    assert_false(job_status_is_retryable(JOB_STATUS_DEAD));
    assert_false(job_status_is_retryable(JOB_STATUS_SKIPPED));
    assert_false(job_status_is_retryable(JOB_STATUS_MISSED_WINDOW));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_has_name_start_and_check),
        cmocka_unit_test(test_every_type_has_a_params_schema_file),
        cmocka_unit_test(test_every_type_rejects_params_that_are_not_an_object),
        cmocka_unit_test(test_find_returns_the_registered_type_or_null),
        cmocka_unit_test(test_status_names_round_trip_and_unknown_is_rejected),
        cmocka_unit_test(test_only_failures_of_the_attempt_are_retryable),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
