/* Proves the exec job type against real processes on a real loop: output is captured
 * (stdout and stderr together, only the last 64 KiB, as valid UTF-8), exit codes and
 * signals map to statuses, a run ends only when the process exited and its output is
 * drained, the child's environment is only what params give (the worker's secrets stay
 * home), paths that are relative or not allowlisted are refused naming the field, and
 * cancel kills the whole process group (escalating to SIGKILL when SIGTERM is ignored)
 * and leaves no zombie. The product runs no shell; these tests allowlist /bin/sh to script
 * the children. */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "job_harness.h"

static const char *const allow[] = {"/bin/sh", "/usr/bin/env", "/usr/bin/seq", "/nonexistent/prog",
                                    NULL};

/* Runs `/bin/sh -c script` to completion; returns the harness (caller frees). */
static struct harness *run_sh(const char *script, const char *extra_params)
{
    struct harness *h = harness_new(allow);
    json_t *p = json_pack("{s:[s,s,s]}", "argv", "/bin/sh", "-c", script);
    char *text;

    assert_non_null(p);
    if (extra_params) {
        json_t *extra = json_loads(extra_params, 0, NULL);

        assert_non_null(extra);
        assert_int_equal(json_object_update(p, extra), 0);
        json_decref(extra);
    }
    text = json_dumps(p, 0);
    json_decref(p);
    assert_non_null(text);
    if (harness_start(h, &job_type_exec, text) != 0)
        fail_msg("start failed: %s", h->eb.msg);
    free(text);
    harness_wait_done(h, 20 * USEC_PER_SEC);
    assert_null(h->x.state);
    return h;
}

static void test_output_of_stdout_and_stderr_is_captured(void **state)
{
    struct harness *h = run_sh("echo hello; echo oops >&2; read x; echo \"stdin rc=$?\"", NULL);

    assert_int_equal(h->status, JOB_STATUS_OK);
    assert_string_equal(h->error, "");
    /* stdin is /dev/null: read sees end of file at once. */
    assert_string_equal(harness_result_str(h, "output_tail"), "hello\noops\nstdin rc=1\n");
    assert_true(json_is_false(json_object_get(h->result, "output_truncated")));
    assert_int_equal(json_integer_value(json_object_get(h->result, "exit_code")), 0);
    assert_true(json_is_null(json_object_get(h->result, "signal")));
    assert_true(json_is_integer(json_object_get(h->result, "duration_ms")));
    harness_free(h);
}

static void test_exited_child_is_reaped(void **state)
{
    struct harness *h = run_sh("echo $$", NULL);
    pid_t pid = (pid_t)strtol(harness_result_str(h, "output_tail"), NULL, 10);

    assert_true(pid > 0);
    /* Reaped, not a zombie: the pid no longer exists and is not our child. */
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    assert_int_equal(child_watch_count(h->cw), 0);
    harness_free(h);
}

static void expect_status(const char *script, const char *extra, enum job_status want,
                          const char *want_error)
{
    struct harness *h = run_sh(script, extra);

    if (h->status != want)
        fail_msg("%s: got %s, want %s", script, job_status_name(h->status), job_status_name(want));
    assert_string_equal(h->error, want_error);
    harness_free(h);
}

static void test_exit_codes_map_to_monitoring_statuses(void **state)
{
    expect_status("exit 0", NULL, JOB_STATUS_OK, "");
    expect_status("exit 1", NULL, JOB_STATUS_WARNING, "");
    expect_status("exit 2", NULL, JOB_STATUS_CRITICAL, "");
    expect_status("exit 3", NULL, JOB_STATUS_FAILED, "exit code 3");
    expect_status("exit 255", NULL, JOB_STATUS_FAILED, "exit code 255");
}

static void test_exit_code_lists_override_the_defaults(void **state)
{
    expect_status("exit 3", "{\"ok_exit_codes\": [0, 3]}", JOB_STATUS_OK, "");
    /* 1 moved to ok: the default warning list yields to the explicit one. */
    expect_status("exit 1", "{\"ok_exit_codes\": [0, 1]}", JOB_STATUS_OK, "");
    expect_status("exit 0", "{\"ok_exit_codes\": [7]}", JOB_STATUS_FAILED, "exit code 0");
    expect_status("exit 9", "{\"critical_exit_codes\": [9]}", JOB_STATUS_CRITICAL, "");
}

static void test_death_by_signal_is_failed_with_the_signal(void **state)
{
    struct harness *h = run_sh("kill -9 $$", NULL);

    assert_int_equal(h->status, JOB_STATUS_FAILED);
    assert_string_equal(h->error, "killed by signal 9");
    assert_true(json_is_null(json_object_get(h->result, "exit_code")));
    assert_int_equal(json_integer_value(json_object_get(h->result, "signal")), 9);
    harness_free(h);
}

static void test_output_tail_keeps_the_last_64_kib(void **state)
{
    struct harness *h = harness_new(allow);
    char *want = malloc(300000);
    size_t len = 0;
    const char *tail;

    assert_non_null(want);
    /* seq 1 40000 prints 228,894 bytes; build the same text here. */
    for (int i = 1; i <= 40000; i++)
        len += (size_t)snprintf(want + len, 300000 - len, "%d\n", i);
    assert_true(len > 200 * 1024);
    assert_int_equal(
        harness_start(h, &job_type_exec, "{\"argv\": [\"/usr/bin/seq\", \"1\", \"40000\"]}"), 0);
    harness_wait_done(h, 20 * USEC_PER_SEC);
    assert_int_equal(h->status, JOB_STATUS_OK);
    tail = harness_result_str(h, "output_tail");
    assert_int_equal(strlen(tail), 64 * 1024);
    assert_memory_equal(tail, want + len - 64 * 1024, 64 * 1024);
    assert_true(json_is_true(json_object_get(h->result, "output_truncated")));
    free(want);
    harness_free(h);
}

static void test_invalid_utf8_output_is_replaced(void **state)
{
    /* 0xFF is never valid; "\342\202" is a truncated 3-byte sequence (one U+FFFD). */
    struct harness *h = run_sh("printf '\\377ok\\303\\251\\342\\202'", NULL);

    assert_string_equal(harness_result_str(h, "output_tail"), "\xEF\xBF\xBDok\xC3\xA9\xEF\xBF\xBD");
    harness_free(h);
}

static void test_run_ends_only_when_the_output_is_drained(void **state)
{
    /* The shell exits at once; a background child keeps the pipe open a little longer. */
    struct harness *h = run_sh("(sleep 0.3; echo late) & echo early", NULL);

    assert_int_equal(h->status, JOB_STATUS_OK);
    assert_string_equal(harness_result_str(h, "output_tail"), "early\nlate\n");
    harness_free(h);
}

static void test_environment_is_only_what_params_give(void **state)
{
    struct harness *h = harness_new(allow);

    assert_int_equal(setenv("MAINTQ_TEST_SECRET", "hunter2", 1), 0);
    assert_int_equal(harness_start(h, &job_type_exec,
                                   "{\"argv\": [\"/usr/bin/env\"], \"env\": {\"FOO\": \"bar\"}}"),
                     0);
    harness_wait_done(h, 20 * USEC_PER_SEC);
    assert_int_equal(h->status, JOB_STATUS_OK);
    assert_string_equal(harness_result_str(h, "output_tail"),
                        "FOO=bar\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\n");
    unsetenv("MAINTQ_TEST_SECRET");
    harness_free(h);
}

static void test_cwd_is_applied(void **state)
{
    struct harness *h = run_sh("pwd", "{\"cwd\": \"/\"}");

    assert_string_equal(harness_result_str(h, "output_tail"), "/\n");
    harness_free(h);
}

static void check_rejects(const char *json_text, const char *want)
{
    json_t *p = json_loads(json_text, JSON_ALLOW_NUL, NULL);
    struct errbuf eb = {{0}};

    assert_non_null(p);
    if (job_type_exec.check(p, &eb) >= 0)
        fail_msg("accepted %s", json_text);
    assert_string_equal(eb.msg, want);
    json_decref(p);
}

static void test_bad_params_are_refused_naming_the_field(void **state)
{
    const char *abs_msg = "params.argv[0]: expected absolute path without . or .. components";

    check_rejects("{}", "params.argv: required");
    check_rejects("{\"argv\": []}", "params.argv: expected non-empty array of strings");
    check_rejects("{\"argv\": \"/bin/sh\"}", "params.argv: expected non-empty array of strings");
    check_rejects("{\"argv\": [\"sh\"]}", abs_msg);
    check_rejects("{\"argv\": [\"bin/sh\"]}", abs_msg);
    check_rejects("{\"argv\": [\"/usr/../bin/sh\"]}", abs_msg);
    check_rejects("{\"argv\": [\"/bin/./sh\"]}", abs_msg);
    check_rejects("{\"argv\": [\"/bin/..\"]}", abs_msg);
    check_rejects("{\"argv\": [\"/bin/sh\", 5]}",
                  "params.argv[1]: expected string without NUL bytes");
    check_rejects("{\"argv\": [\"/bin/sh\\u0000x\"]}",
                  "params.argv[0]: expected string without NUL bytes");
    check_rejects("{\"argv\": [\"/bin/sh\"], \"env\": {\"A=B\": \"c\"}}",
                  "params.env: name \"A=B\" is empty or contains '='");
    check_rejects("{\"argv\": [\"/bin/sh\"], \"env\": {\"A\": 1}}",
                  "params.env.A: expected string without NUL bytes");
    check_rejects("{\"argv\": [\"/bin/sh\"], \"cwd\": \"tmp\"}",
                  "params.cwd: expected absolute path");
    check_rejects("{\"argv\": [\"/bin/sh\"], \"ok_exit_codes\": [256]}",
                  "params.ok_exit_codes[0]: exit codes are 0 to 255");
    check_rejects("{\"argv\": [\"/bin/sh\"], \"ok_exit_codes\": [0], \"warning_exit_codes\": [0]}",
                  "params.warning_exit_codes[0]: 0 is already in ok_exit_codes");
    check_rejects("{\"argv\": [\"/bin/sh\"], \"shell\": true}", "params.shell: unknown field");
}

static void test_start_refuses_programs_outside_the_allowlist(void **state)
{
    struct harness *h = harness_new(allow);

    /* check() cannot know the worker's allowlist; start() enforces it, byte for byte. */
    assert_int_equal(harness_start(h, &job_type_exec, "{\"argv\": [\"/bin/true\"]}"), -EPERM);
    assert_string_equal(h->eb.msg,
                        "params.argv[0]: \"/bin/true\" is not in the worker's exec allowlist");
    assert_int_equal(harness_start(h, &job_type_exec, "{\"argv\": [\"/bin//sh\"]}"), -EPERM);
    assert_int_equal(harness_start(h, &job_type_exec, "{\"argv\": [\"bin/sh\"]}"), -EINVAL);
    assert_string_equal(h->eb.msg,
                        "params.argv[0]: expected absolute path without . or .. components");
    assert_true(harness_start(h, &job_type_exec, "{\"argv\": [\"/nonexistent/prog\"]}") < 0);
    assert_string_equal(h->eb.msg, "params.argv[0]: cannot run \"/nonexistent/prog\": No such "
                                   "file or directory");
    assert_true(harness_start(h, &job_type_exec,
                              "{\"argv\": [\"/bin/sh\"], \"cwd\": \"/nonexistent/dir\"}") < 0);
    assert_string_equal(h->eb.msg, "params.cwd: \"/nonexistent/dir\": No such file or directory");
    assert_int_equal(h->done_calls, 0);
    assert_null(h->x.state);
    assert_int_equal(child_watch_count(h->cw), 0);
    harness_free(h);
}

/* Cancel tests: the script writes "leader grandchild" pids to a file once both run. */
struct group {
    char dir[64];
    char file[96];
    pid_t leader, grandchild;
    int grandchild_status;
};

static int pids_written(struct harness *h, void *arg)
{
    struct group *g = arg;
    FILE *f = fopen(g->file, "r");
    long a = 0, b = 0;
    int n;

    if (!f)
        return 0;
    n = fscanf(f, "%ld %ld", &a, &b);
    fclose(f);
    g->leader = (pid_t)a;
    g->grandchild = (pid_t)b;
    return n == 2;
}

/* Set in grandchild_status when the grandchild is gone but was reaped by its shell. */
#define REAPED_BY_ITS_SHELL (-2)

/* The test process is a subreaper, so the orphaned grandchild becomes our child: reaping
 * it ourselves proves it died, and how. The watcher must not have reaped it (it reaps only
 * the pids it was given). One race is legitimate: the group's SIGTERM reaches the sleep and
 * its shell together, and when the sleep dies first, the shell (blocked in `wait`) may reap
 * it before its own pending SIGTERM ends it; the grandchild is then gone without ever being
 * ours. */
static int group_gone(struct harness *h, void *arg)
{
    struct group *g = arg;

    if (g->grandchild_status == -1) {
        int st;
        pid_t r = waitpid(g->grandchild, &st, WNOHANG);

        if (r == g->grandchild)
            g->grandchild_status = st;
        else if (r < 0 && errno == ECHILD && kill(g->grandchild, 0) < 0 && errno == ESRCH)
            g->grandchild_status = REAPED_BY_ITS_SHELL;
        else
            return 0;
    }
    return kill(g->leader, 0) < 0 && errno == ESRCH;
}

static int watcher_empty(struct harness *h, void *arg)
{
    return child_watch_count(h->cw) == 0;
}

static void run_cancel(const char *trap, int want_signal, int64_t min_us)
{
    struct harness *h = harness_new(allow);
    struct group g = {.grandchild_status = -1};
    char script[512];
    char *params; /* caller frees with free() */
    json_t *p;
    int64_t t0;

    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    snprintf(g.dir, sizeof(g.dir), "/tmp/maintq-exec-XXXXXX");
    assert_non_null(mkdtemp(g.dir));
    snprintf(g.file, sizeof(g.file), "%s/pids", g.dir);
    snprintf(script, sizeof(script), "%s sleep 100 & echo \"$$ $!\" > %s.tmp && mv %s.tmp %s; wait",
             trap, g.file, g.file, g.file);
    p = json_pack("{s:[s,s,s]}", "argv", "/bin/sh", "-c", script);
    params = json_dumps(p, 0);
    json_decref(p);
    assert_non_null(params);
    assert_int_equal(harness_start(h, &job_type_exec, params), 0);
    free(params);
    assert_true(harness_run_until(h, pids_written, &g, 20 * USEC_PER_SEC));
    assert_int_equal(kill(g.grandchild, 0), 0);

    t0 = clock_mono_us();
    job_type_exec.cancel(&h->x);
    assert_null(h->x.state);
    if (!harness_run_until(h, group_gone, &g, 20 * USEC_PER_SEC))
        fail_msg("process group still alive after cancel (grandchild %d, leader %d)",
                 (int)g.grandchild, (int)g.leader);
    assert_true(clock_mono_us() - t0 >= min_us);
    if (g.grandchild_status != REAPED_BY_ITS_SHELL) {
        assert_true(WIFSIGNALED(g.grandchild_status));
        assert_int_equal(WTERMSIG(g.grandchild_status), want_signal);
    }
    assert_int_equal(kill(g.grandchild, 0), -1);
    /* The leader was reaped by the watcher: no zombie, and nothing left to do. */
    assert_int_equal(waitpid(g.leader, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    assert_true(harness_run_until(h, watcher_empty, NULL, 10 * USEC_PER_SEC));
    assert_int_equal(h->done_calls, 0);

    unlink(g.file);
    rmdir(g.dir);
    harness_free(h);
}

static void test_cancel_kills_the_whole_process_group(void **state)
{
    run_cancel("", SIGTERM, 0);
}

static void test_cancel_escalates_to_sigkill_when_sigterm_is_ignored(void **state)
{
    /* An ignored SIGTERM is inherited by the background sleep too. */
    run_cancel("trap '' TERM;", SIGKILL, 1900000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_of_stdout_and_stderr_is_captured),
        cmocka_unit_test(test_exited_child_is_reaped),
        cmocka_unit_test(test_exit_codes_map_to_monitoring_statuses),
        cmocka_unit_test(test_exit_code_lists_override_the_defaults),
        cmocka_unit_test(test_death_by_signal_is_failed_with_the_signal),
        cmocka_unit_test(test_output_tail_keeps_the_last_64_kib),
        cmocka_unit_test(test_invalid_utf8_output_is_replaced),
        cmocka_unit_test(test_run_ends_only_when_the_output_is_drained),
        cmocka_unit_test(test_environment_is_only_what_params_give),
        cmocka_unit_test(test_cwd_is_applied),
        cmocka_unit_test(test_bad_params_are_refused_naming_the_field),
        cmocka_unit_test(test_start_refuses_programs_outside_the_allowlist),
        cmocka_unit_test(test_cancel_kills_the_whole_process_group),
        cmocka_unit_test(test_cancel_escalates_to_sigkill_when_sigterm_is_ignored),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
