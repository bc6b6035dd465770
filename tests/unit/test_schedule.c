/* Proves the schedule module: valid schedule files load with their values and defaults,
 * every invalid fixture is refused with the one-line message of its .err sidecar (file,
 * schedule, field), ops/schedules loads cleanly and only runs allowlisted programs, the
 * seeds' calendars fire when the seeds say, the seeds' three maintenance windows contain
 * exactly the instants worked out by hand (Africa/Johannesburg is UTC+2 all year), each
 * misfire policy with and without a starting deadline plans what it says, and job ids of
 * ticks are deterministic, valid UUIDv7 and equal to an independent computation, and each
 * schedule keeps its document's canonical text (what maintq.schedules records). */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "descriptor.h"
#include "schedule.h"

static int64_t T(const char *rfc3339)
{
    int64_t us = 0;

    if (clock_parse_rfc3339(rfc3339, &us) < 0)
        fail_msg("bad time in test: %s", rfc3339);
    return us;
}

static const char *root(void)
{
    const char *r = getenv("MAINTQ_SOURCE_ROOT");

    if (!r)
        fail_msg("MAINTQ_SOURCE_ROOT is not set (run through meson test)");
    return r;
}

static struct schedule_set *load_one(const char *rel, struct errbuf *eb, int *ret_r)
{
    char path[1024];
    const char *paths[1] = {path};
    struct schedule_set *set = NULL;

    snprintf(path, sizeof(path), "%s/%s", root(), rel);
    *ret_r = schedule_set_load_files(paths, 1, &set, eb);
    return set;
}

static struct schedule_set *load_ok(const char *rel)
{
    struct errbuf eb = {""};
    int r;
    struct schedule_set *set = load_one(rel, &eb, &r);

    if (r < 0)
        fail_msg("%s: rejected: %s", rel, eb.msg);
    return set;
}

static struct schedule_set *load_ops(void)
{
    char dir[1024];
    struct errbuf eb = {""};
    struct schedule_set *set = NULL;

    snprintf(dir, sizeof(dir), "%s/ops/schedules", root());
    if (schedule_set_load_dir(dir, &set, &eb) < 0)
        fail_msg("ops/schedules rejected: %s", eb.msg);
    return set;
}

static const struct schedule *find(const struct schedule_set *set, const char *name)
{
    const struct schedule *s = schedule_set_find(set, name);

    if (!s)
        fail_msg("no schedule \"%s\"", name);
    return s;
}

/* The job template of s, parsed (the set keeps it as text); caller json_decref()s. */
static json_t *job_of(const struct schedule *s)
{
    json_t *job = json_loads(s->job_json, 0, NULL);

    if (!job)
        fail_msg("%s: template is not JSON: %s", s->name, s->job_json);
    return job;
}

static void assert_next(const struct schedule *s, const char *after, const char *want)
{
    char buf[CLOCK_RFC3339_MAX];
    int64_t next = 0;

    assert_int_equal(cron_next(s->cron, s->zone, T(after), &next), 0);
    if (strcmp(clock_format_rfc3339(next, buf), want) != 0)
        fail_msg("%s: next after %s is %s, want %s", s->name, after, buf, want);
}

/* --- loading ------------------------------------------------------------------------- */

static void test_minimal_schedule_gets_the_documented_defaults(void **state)
{
    struct schedule_set *set = load_ok("tests/fixtures/schedules/valid/minimal.json");
    const struct schedule *s;

    assert_int_equal(set->n, 1);
    s = set->items[0];
    assert_string_equal(s->name, "minimal");
    assert_string_equal(s->cron_text, "0 2 * * *");
    assert_string_equal(s->zone_name, "UTC");
    assert_true(tz_is_fixed(s->zone));
    assert_non_null(strstr(s->file, "tests/fixtures/schedules/valid/minimal.json"));
    assert_int_equal(s->misfire, SCHEDULE_MISFIRE_RUN_ONCE);
    assert_int_equal(s->concurrency, SCHEDULE_CONCURRENCY_ALLOW);
    assert_int_equal(s->starting_deadline_us, 0);
    assert_int_equal(s->jitter_us, 0);
    assert_false(s->paused);
    assert_null(s->window);
    json_t *job = job_of(s);
    assert_string_equal(json_string_value(json_object_get(job, "type")), "noop");
    json_decref(job);
    schedule_set_free(set);
}

static void test_every_field_is_read(void **state)
{
    struct schedule_set *set = load_ok("tests/fixtures/schedules/valid/full.json");
    const struct schedule *s = find(set, "nightly-health");
    int64_t end = 0;

    assert_string_equal(s->zone_name, "Africa/Johannesburg");
    assert_int_equal(s->misfire, SCHEDULE_MISFIRE_RUN_ALL);
    assert_int_equal(s->concurrency, SCHEDULE_CONCURRENCY_FORBID);
    assert_int_equal(s->starting_deadline_us, 3600 * USEC_PER_SEC);
    assert_int_equal(s->jitter_us, 30 * USEC_PER_SEC);
    assert_true(s->paused);
    assert_non_null(s->window);
    assert_int_equal(s->window->duration_us, 4 * 3600 * USEC_PER_SEC);
    assert_string_equal(tz_name(s->window->zone), "Europe/London");
    json_t *job = job_of(s);
    assert_string_equal(json_string_value(json_object_get(job, "lock")), "health");
    assert_int_equal(json_integer_value(json_object_get(job, "unique_for_s")), 3600);
    json_decref(job);
    /* 02:00 SAST is midnight UTC. */
    assert_next(s, "2026-03-03T12:00:00Z", "2026-03-04T00:00:00Z");
    /* The window is in London time: first Saturday of August 2026 is Aug 1, 01:00 BST =
     * 00:00Z, so it runs to 04:00Z. */
    assert_int_equal(schedule_window_at(s, T("2026-08-01T03:59:59Z"), &end), 1);
    assert_int_equal(end, T("2026-08-01T04:00:00Z"));
    schedule_set_free(set);
}

static void test_list_file_integer_seconds_and_window_zone_default(void **state)
{
    struct schedule_set *set = load_ok("tests/fixtures/schedules/valid/list.json");
    const struct schedule *a = find(set, "every-second"), *b = find(set, "retry.demo_2");

    assert_int_equal(set->n, 2);
    assert_int_equal(a->misfire, SCHEDULE_MISFIRE_SKIP);
    assert_int_equal(a->concurrency, SCHEDULE_CONCURRENCY_REPLACE);
    assert_int_equal(a->starting_deadline_us, 90 * USEC_PER_SEC);
    assert_next(a, "2026-03-03T12:00:00.5Z", "2026-03-03T12:00:01Z");
    assert_string_equal(b->zone_name, "America/New_York");
    assert_int_equal(b->window->duration_us, 8 * 3600 * USEC_PER_SEC);
    /* The window's zone defaults to the schedule's. */
    assert_string_equal(tz_name(b->window->zone), "America/New_York");
    assert_null(schedule_set_find(set, "minimal"));
    schedule_set_free(set);
}

static void test_empty_list_is_an_empty_set(void **state)
{
    struct schedule_set *set = load_ok("tests/fixtures/schedules/valid/empty_list.json");

    assert_int_equal(set->n, 0);
    assert_null(schedule_set_find(set, "x"));
    schedule_set_free(set);
}

static void test_dir_loads_json_files_in_name_order(void **state)
{
    char dir[1024];
    struct errbuf eb = {""};
    struct schedule_set *set = NULL;

    snprintf(dir, sizeof(dir), "%s/tests/fixtures/schedules/valid", root());
    if (schedule_set_load_dir(dir, &set, &eb) < 0)
        fail_msg("rejected: %s", eb.msg);
    /* empty_list.json, full.json, list.json, minimal.json */
    assert_int_equal(set->n, 4);
    assert_string_equal(set->items[0]->name, "nightly-health");
    assert_string_equal(set->items[1]->name, "every-second");
    assert_string_equal(set->items[2]->name, "retry.demo_2");
    assert_string_equal(set->items[3]->name, "minimal");
    schedule_set_free(set);
}

static void test_invalid_fixtures_are_refused_with_their_message(void **state)
{
    char dir[1024], rel[1200], path[1300];
    struct dirent *e;
    size_t count = 0;
    DIR *dh;

    snprintf(dir, sizeof(dir), "%s/tests/fixtures/schedules/invalid", root());
    dh = opendir(dir);
    assert_non_null(dh);
    while ((e = readdir(dh))) {
        size_t nl = strlen(e->d_name);
        struct errbuf eb = {""};
        char want[256] = "";
        FILE *f;
        int r;

        if (nl < 6 || strcmp(e->d_name + nl - 5, ".json") != 0)
            continue;
        snprintf(rel, sizeof(rel), "tests/fixtures/schedules/invalid/%s", e->d_name);
        snprintf(path, sizeof(path), "%s/%.*s.err", dir, (int)(nl - 5), e->d_name);
        f = fopen(path, "r");
        if (!f)
            fail_msg("%s: no .err sidecar", e->d_name);
        if (!fgets(want, sizeof(want), f))
            fail_msg("%s: empty .err sidecar", e->d_name);
        fclose(f);
        want[strcspn(want, "\n")] = '\0';

        struct schedule_set *set = load_one(rel, &eb, &r);
        if (r >= 0)
            fail_msg("%s: accepted, want \"%s\"", e->d_name, want);
        assert_null(set);
        assert_int_equal(r, -EINVAL);
        if (!strstr(eb.msg, want))
            fail_msg("%s: got \"%s\", want \"%s\"", e->d_name, eb.msg, want);
        /* Every message starts with the file and is one line. */
        snprintf(path, sizeof(path), "%s/%s: ", root(), rel);
        if (strncmp(eb.msg, path, strlen(path)) != 0)
            fail_msg("%s: message does not start with the file: \"%s\"", e->d_name, eb.msg);
        assert_null(strchr(eb.msg, '\n'));
        count++;
    }
    closedir(dh);
    print_message("%zu invalid schedule files refused with their message\n", count);
    assert_true(count >= 40);
}

static void test_names_are_unique_across_files(void **state)
{
    char a[1024], b[] = "/tmp/maintq-test-schedule-XXXXXX";
    const char *paths[2] = {a, b};
    const char doc[] = "{\"name\": \"nightly-health\", \"cron\": \"@daily\", "
                       "\"job\": {\"type\": \"noop\"}}\n";
    struct errbuf eb = {""};
    struct schedule_set *set = NULL;
    char want[1200];
    int fd = mkstemp(b);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, doc, sizeof(doc) - 1), (ssize_t)(sizeof(doc) - 1));
    close(fd);
    snprintf(a, sizeof(a), "%s/tests/fixtures/schedules/valid/full.json", root());
    assert_int_equal(schedule_set_load_files(paths, 2, &set, &eb), -EINVAL);
    unlink(b);
    assert_null(set);
    /* The later definition is the one reported, pointing at the earlier. */
    snprintf(want, sizeof(want), "%s: schedule \"nightly-health\": name: already defined in %s", b,
             a);
    assert_string_equal(eb.msg, want);
}

static void test_missing_file_and_dir_are_named(void **state)
{
    const char *paths[1] = {"/nonexistent/maintq/schedules.json"};
    struct errbuf eb = {""};
    struct schedule_set *set = NULL;

    assert_int_equal(schedule_set_load_files(paths, 1, &set, &eb), -ENOENT);
    assert_string_equal(eb.msg, "/nonexistent/maintq/schedules.json: No such file or directory");
    assert_int_equal(schedule_set_load_dir("/nonexistent/maintq", &set, &eb), -ENOENT);
    assert_string_equal(eb.msg, "/nonexistent/maintq: No such file or directory");
    assert_null(set);
}

/* --- ops/schedules: the examples ops/run loads ---------------------------------------- */

static int allowed(const char *prog)
{
    char path[1024], line[512];
    int found = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/ops/worker.conf", root());
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        char *v = line + strspn(line, " \t");
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(v, "exec_allow", 10) != 0)
            continue;
        v = strchr(v, '=');
        if (v && strcmp(v + 1 + strspn(v + 1, " \t"), prog) == 0)
            found = 1;
    }
    fclose(f);
    return found;
}

static void test_ops_schedules_load_and_run_only_allowlisted_programs(void **state)
{
    struct schedule_set *set = load_ops();
    size_t execs = 0;

    assert_true(set->n >= 12);
    for (size_t i = 0; i < set->n; i++) {
        const struct schedule *s = set->items[i];
        json_t *job = job_of(s);
        const char *argv0 = json_string_value(
            json_array_get(json_object_get(json_object_get(job, "params"), "argv"), 0));
        char prog[256];
        int64_t end;

        /* The program's path outlives the parsed template, which is released here. */
        snprintf(prog, sizeof(prog), "%s", argv0 ? argv0 : "");
        json_decref(job);

        /* A definition with a window must fire inside it, or it would only ever miss. */
        if (s->window) {
            int64_t t = T("2026-01-01T00:00:00Z");
            for (int k = 0; k < 20; k++) {
                assert_int_equal(cron_next(s->cron, s->zone, t, &t), 0);
                if (schedule_window_at(s, t, &end) != 1)
                    fail_msg("%s fires outside its window", s->name);
            }
        }
        if (!prog[0])
            continue;
        execs++;
        if (!allowed(prog))
            fail_msg("%s runs %s, which ops/worker.conf does not allow", s->name, prog);
        if (access(prog, X_OK) != 0)
            fail_msg("%s runs %s, which is not an executable here", s->name, prog);
    }
    print_message("%zu schedules in ops/schedules, %zu run programs, all allowlisted\n", set->n,
                  execs);
    assert_true(execs >= 10);
    schedule_set_free(set);
}

/* The seeds' crontab: daily 02:00, weekly Sunday 03:00, monthly 1st 04:00, quarterly 1st
 * 05:00; the team's local time is SAST (UTC+2). 2026-03-03 is a Tuesday. */
static void test_seed_calendars_fire_when_the_seeds_say(void **state)
{
    struct schedule_set *set = load_ops();

    assert_next(find(set, "daily-disk-usage"), "2026-03-03T12:00:00Z", "2026-03-04T00:00:00Z");
    assert_next(find(set, "daily-memory-usage"), "2026-03-04T00:00:00Z", "2026-03-05T00:00:00Z");
    assert_next(find(set, "weekly-pending-updates"), "2026-03-03T12:00:00Z",
                "2026-03-08T01:00:00Z");
    assert_next(find(set, "weekly-mount-report"), "2026-03-08T01:00:00Z", "2026-03-15T01:00:00Z");
    assert_next(find(set, "monthly-block-devices"), "2026-03-03T12:00:00Z", "2026-04-01T02:00:00Z");
    assert_next(find(set, "monthly-tmp-size"), "2026-12-15T00:00:00Z", "2027-01-01T02:00:00Z");
    assert_next(find(set, "quarterly-os-release"), "2026-03-03T12:00:00Z", "2026-04-01T03:00:00Z");
    assert_next(find(set, "quarterly-kernel-version"), "2026-04-01T03:00:00Z",
                "2026-07-01T03:00:00Z");
    assert_next(find(set, "demo-heartbeat"), "2026-03-03T12:00:30Z", "2026-03-03T12:01:00Z");
    schedule_set_free(set);
}

/* --- windows ------------------------------------------------------------------------- */

static void window_case(const struct schedule *s, const char *t, int want_in, const char *want_end)
{
    char buf[CLOCK_RFC3339_MAX];
    int64_t end = 12345;
    int r = schedule_window_at(s, T(t), &end);

    if (r != want_in)
        fail_msg("%s at %s: got %d, want %d", s->name, t, r, want_in);
    if (want_in && strcmp(clock_format_rfc3339(end, buf), want_end) != 0)
        fail_msg("%s at %s: window ends %s, want %s", s->name, t, buf, want_end);
    if (!want_in)
        assert_int_equal(end, 12345); /* untouched when outside */
}

/* Weekly Tuesday 02:00-04:00 SAST = 00:00Z-02:00Z Tuesday; 2026-03-03 is a Tuesday. */
static void test_weekly_tuesday_window(void **state)
{
    struct schedule_set *set = load_ops();
    const struct schedule *s = find(set, "weekly-window-flush");

    window_case(s, "2026-03-03T00:00:00Z", 1, "2026-03-03T02:00:00Z");
    window_case(s, "2026-03-03T01:59:59Z", 1, "2026-03-03T02:00:00Z");
    window_case(s, "2026-03-03T01:59:59.999999Z", 1, "2026-03-03T02:00:00Z");
    window_case(s, "2026-03-03T02:00:00Z", 0, NULL);
    window_case(s, "2026-03-02T23:59:59Z", 0, NULL);
    window_case(s, "2026-03-04T00:30:00Z", 0, NULL); /* Wednesday 02:30 SAST */
    window_case(s, "2026-03-10T01:00:00Z", 1, "2026-03-10T02:00:00Z");
    schedule_set_free(set);
}

/* Monthly first Saturday 01:00-05:00 SAST = Friday 23:00Z to Saturday 03:00Z. December 2026
 * starts on a Tuesday, so the first Saturday is the 5th; August 2026 starts on a Saturday,
 * so its window opens on July 31 in UTC. */
static void test_monthly_first_saturday_window(void **state)
{
    struct schedule_set *set = load_ops();
    const struct schedule *s = find(set, "monthly-window-disk-check");

    window_case(s, "2026-12-04T23:00:00Z", 1, "2026-12-05T03:00:00Z");
    window_case(s, "2026-12-05T02:59:59Z", 1, "2026-12-05T03:00:00Z");
    window_case(s, "2026-12-05T03:00:00Z", 0, NULL);
    window_case(s, "2026-12-04T22:59:59Z", 0, NULL);
    window_case(s, "2026-12-12T00:00:00Z", 0, NULL); /* second Saturday */
    window_case(s, "2026-07-31T23:30:00Z", 1, "2026-08-01T03:00:00Z");
    window_case(s, "2026-08-08T00:00:00Z", 0, NULL);
    /* Its job ticks every 30 minutes inside: the last one, 04:30 SAST, still fits. */
    assert_next(s, "2026-12-05T02:00:00Z", "2026-12-05T02:30:00Z");
    assert_next(s, "2026-12-05T02:30:00Z", "2027-01-01T23:00:00Z");
    schedule_set_free(set);
}

/* Quarterly third Saturday 00:00-06:00 SAST = Friday 22:00Z to Saturday 04:00Z, in January,
 * April, July, October. April 2026 starts on a Wednesday (third Saturday the 18th), October
 * 2026 on a Thursday (the 17th); May is not a quarter month. */
static void test_quarterly_third_saturday_window(void **state)
{
    struct schedule_set *set = load_ops();
    const struct schedule *s = find(set, "quarterly-window-flush");

    window_case(s, "2026-04-17T22:00:00Z", 1, "2026-04-18T04:00:00Z");
    window_case(s, "2026-04-18T03:59:59Z", 1, "2026-04-18T04:00:00Z");
    window_case(s, "2026-04-18T04:00:00Z", 0, NULL);
    window_case(s, "2026-04-17T21:59:59Z", 0, NULL);
    window_case(s, "2026-04-04T00:00:00Z", 0, NULL); /* first Saturday */
    window_case(s, "2026-05-16T00:00:00Z", 0, NULL); /* third Saturday of May */
    window_case(s, "2026-10-17T01:00:00Z", 1, "2026-10-17T04:00:00Z");
    assert_next(s, "2026-04-18T00:00:00Z", "2026-07-17T22:00:00Z");
    schedule_set_free(set);
}

static void make_window(struct schedule *s, struct schedule_window *w, const char *cron,
                        int64_t duration_us)
{
    struct errbuf eb = {""};

    memset(s, 0, sizeof(*s));
    memset(w, 0, sizeof(*w));
    s->name = (char *)"test-window";
    if (cron_parse(cron, &w->cron, &eb) < 0)
        fail_msg("%s: %s", cron, eb.msg);
    w->duration_us = duration_us;
    s->window = w;
}

/* A dense window cron (every second) with a long window, and windows days long: the latest
 * opening at or before t decides, and the search stays exact to the second. */
static void test_dense_and_long_windows(void **state)
{
    struct schedule s;
    struct schedule_window w;

    make_window(&s, &w, "* * * * * *", 3600 * USEC_PER_SEC);
    window_case(&s, "2026-03-03T12:00:00.25Z", 1, "2026-03-03T13:00:00Z");
    window_case(&s, "2026-03-03T12:00:07Z", 1, "2026-03-03T13:00:07Z");
    cron_free(w.cron);

    make_window(&s, &w, "0 0 1 * *", 10 * 86400 * USEC_PER_SEC);
    window_case(&s, "2026-03-01T00:00:00Z", 1, "2026-03-11T00:00:00Z");
    window_case(&s, "2026-03-05T12:00:00Z", 1, "2026-03-11T00:00:00Z");
    window_case(&s, "2026-03-10T23:59:59Z", 1, "2026-03-11T00:00:00Z");
    window_case(&s, "2026-03-11T00:00:00Z", 0, NULL);
    window_case(&s, "2026-02-28T23:59:59Z", 0, NULL);
    cron_free(w.cron);

    /* Overlapping windows (every 10 minutes, an hour long): the newest opening decides. */
    make_window(&s, &w, "0 */10 * * * *", 3600 * USEC_PER_SEC);
    window_case(&s, "2026-03-03T12:15:00Z", 1, "2026-03-03T13:10:00Z");
    cron_free(w.cron);

    /* No window at all: always inside, never ending. */
    memset(&s, 0, sizeof(s));
    int64_t end = 0;
    assert_int_equal(schedule_window_at(&s, T("2026-03-03T12:00:00Z"), &end), 1);
    assert_int_equal(end, INT64_MAX);
}

/* --- misfire plans ------------------------------------------------------------------- */

struct plan {
    size_t n;
    int64_t tick[256];
    bool fire[256];
    char reason[256][200];
};

static void on_tick(const struct schedule *s, int64_t tick_us, bool fire, const char *reason,
                    void *data)
{
    struct plan *p = data;

    assert_true(p->n < 256);
    if (p->n > 0)
        assert_true(tick_us > p->tick[p->n - 1]); /* time order */
    assert_true(fire == (reason == NULL));
    p->tick[p->n] = tick_us;
    p->fire[p->n] = fire;
    snprintf(p->reason[p->n], sizeof(p->reason[0]), "%s", reason ? reason : "");
    p->n++;
}

static struct plan *plan_of(struct schedule *s, enum schedule_misfire m, int64_t deadline_us,
                            const char *last, const char *now, size_t max_ticks)
{
    static struct plan p;

    memset(&p, 0, sizeof(p));
    s->misfire = m;
    s->starting_deadline_us = deadline_us;
    assert_int_equal(
        schedule_misfire_plan(s, last ? T(last) : INT64_MIN, T(now), max_ticks, on_tick, &p), 0);
    return &p;
}

/* Expects one character per tick: F fire, S skip, O superseded (run_once), D deadline. */
static void expect_plan(const struct plan *p, const char *first_tick, int64_t step_us,
                        const char *want)
{
    size_t n = strlen(want);

    if (p->n != n)
        fail_msg("plan has %zu ticks, want %zu (%s)", p->n, n, want);
    for (size_t i = 0; i < n; i++) {
        const char *r = p->reason[i];
        char got = p->fire[i]                                                               ? 'F'
                   : strcmp(r, "missed while no scheduler fired it (misfire skip)") == 0 ? 'S'
                   : strcmp(r, "superseded by a later tick (misfire run_once)") == 0        ? 'O'
                   : strcmp(r, "older than the starting deadline") == 0                     ? 'D'
                                                                                            : '?';
        if (got != want[i])
            fail_msg("tick %zu: got %c (%s), want %c", i, got, r, want[i]);
        assert_int_equal(p->tick[i], T(first_tick) + (int64_t)i * step_us);
    }
}

static struct schedule *every_minute(void)
{
    static struct schedule s;
    struct errbuf eb = {""};

    memset(&s, 0, sizeof(s));
    s.name = (char *)"every-minute";
    assert_int_equal(cron_parse("* * * * *", &s.cron, &eb), 0);
    return &s;
}

/* Down from just after 00:00 to 00:05:30: the ticks 00:01 .. 00:05 were missed. */
static void test_misfire_policies_without_deadline(void **state)
{
    struct schedule *s = every_minute();
    const char *last = "2026-03-01T00:00:00Z", *now = "2026-03-01T00:05:30Z";
    const char *first = "2026-03-01T00:01:00Z";
    int64_t min = 60 * USEC_PER_SEC;

    expect_plan(plan_of(s, SCHEDULE_MISFIRE_SKIP, 0, last, now, 100), first, min, "SSSSS");
    expect_plan(plan_of(s, SCHEDULE_MISFIRE_RUN_ONCE, 0, last, now, 100), first, min, "OOOOF");
    expect_plan(plan_of(s, SCHEDULE_MISFIRE_RUN_ALL, 0, last, now, 100), first, min, "FFFFF");
    /* A tick at exactly now belongs to the plan; the last fire itself does not. */
    expect_plan(plan_of(s, SCHEDULE_MISFIRE_RUN_ALL, 0, last, "2026-03-01T00:05:00Z", 100), first,
                min, "FFFFF");
    expect_plan(plan_of(s, SCHEDULE_MISFIRE_RUN_ALL, 0, last, "2026-03-01T00:00:59Z", 100), first,
                min, "");
    cron_free(s->cron);
}

/* Deadline 150 s at 00:05:30: ticks before 00:03:00 are too old whatever the policy; 00:03
 * itself is exactly at the deadline and still runs. */
static void test_misfire_policies_with_deadline(void **state)
{
    struct schedule *s = every_minute();
    const char *last = "2026-03-01T00:00:00Z", *now = "2026-03-01T00:05:30Z";
    const char *first = "2026-03-01T00:01:00Z";
    int64_t min = 60 * USEC_PER_SEC, dl = 150 * USEC_PER_SEC;

    expect_plan(plan_of(s, SCHEDULE_MISFIRE_SKIP, dl, last, now, 100), first, min, "DDSSS");
    expect_plan(plan_of(s, SCHEDULE_MISFIRE_RUN_ONCE, dl, last, now, 100), first, min, "DDOOF");
    expect_plan(plan_of(s, SCHEDULE_MISFIRE_RUN_ALL, dl, last, now, 100), first, min, "DDFFF");
    /* A 10 s deadline: even the newest tick (00:05:00) is too old, so run_once runs none. */
    expect_plan(plan_of(s, SCHEDULE_MISFIRE_RUN_ONCE, 10 * USEC_PER_SEC, last, now, 100), first,
                min, "DDDDD");
    cron_free(s->cron);
}

static void test_never_fired_misses_nothing(void **state)
{
    struct schedule *s = every_minute();

    expect_plan(plan_of(s, SCHEDULE_MISFIRE_RUN_ALL, 0, NULL, "2026-03-01T00:05:30Z", 100),
                "2026-03-01T00:00:00Z", 0, "");
    /* A last fire in the future (clock went back) plans nothing either. */
    expect_plan(plan_of(s, SCHEDULE_MISFIRE_RUN_ALL, 0, "2026-03-01T01:00:00Z",
                        "2026-03-01T00:05:30Z", 100),
                "2026-03-01T00:00:00Z", 0, "");
    assert_int_equal(schedule_misfire_plan(s, 0, 1, 0, on_tick, NULL), -EINVAL);
    cron_free(s->cron);
}

/* Five missed ticks and a bound of three: the two oldest are reported once, at the oldest,
 * with their count; the three newest follow the policy. */
static void test_misfire_bound_reports_older_ticks_once(void **state)
{
    struct schedule *s = every_minute();
    struct plan *p =
        plan_of(s, SCHEDULE_MISFIRE_RUN_ALL, 0, "2026-03-01T00:00:00Z", "2026-03-01T00:05:30Z", 3);

    assert_int_equal(p->n, 4);
    assert_false(p->fire[0]);
    assert_int_equal(p->tick[0], T("2026-03-01T00:01:00Z"));
    assert_non_null(strstr(p->reason[0], "2 ticks from this one to 2026-03-01T00:02:00Z missed"));
    assert_non_null(strstr(p->reason[0], "newest 3 ticks"));
    for (size_t i = 1; i < 4; i++) {
        assert_true(p->fire[i]);
        assert_int_equal(p->tick[i], T("2026-03-01T00:02:00Z") + (int64_t)i * 60 * USEC_PER_SEC);
    }
    cron_free(s->cron);
}

/* A per-second schedule down for 30 days (2.6 million ticks) with a bound of 100: the plan
 * is still quick, exact about the newest 100, and caps the count of the rest. */
static void test_misfire_bound_on_a_long_outage(void **state)
{
    struct schedule s;
    struct errbuf eb = {""};
    struct plan *p;

    memset(&s, 0, sizeof(s));
    s.name = (char *)"every-second";
    assert_int_equal(cron_parse("* * * * * *", &s.cron, &eb), 0);
    p = plan_of(&s, SCHEDULE_MISFIRE_RUN_ONCE, 0, "2026-03-01T00:00:00Z", "2026-03-31T00:00:00Z",
                100);
    assert_int_equal(p->n, 101);
    assert_int_equal(p->tick[0], T("2026-03-01T00:00:01Z"));
    assert_non_null(strstr(p->reason[0], "more than 1000000 ticks from this one to "
                                         "2026-03-30T23:58:20Z missed"));
    assert_int_equal(p->tick[1], T("2026-03-30T23:58:21Z"));
    assert_int_equal(p->tick[100], T("2026-03-31T00:00:00Z"));
    assert_true(p->fire[100]);
    for (size_t i = 1; i < 100; i++)
        assert_false(p->fire[i]);
    cron_free(s.cron);
}

/* --- job ids and descriptors --------------------------------------------------------- */

static void test_job_ids_are_deterministic_v7_and_match_an_independent_computation(void **state)
{
    int64_t t = T("2026-12-05T00:00:00Z");
    char a[UUID_STR_LEN], b[UUID_STR_LEN], c[UUID_STR_LEN], d[UUID_STR_LEN];
    int64_t ms = 0;

    assert_int_equal(schedule_job_id("nightly-health", t, a), 0);
    assert_int_equal(schedule_job_id("nightly-health", t, b), 0);
    assert_string_equal(a, b);
    assert_true(uuid7_is_valid(a));
    assert_int_equal(uuid7_time_ms(a, &ms), 0);
    assert_int_equal(ms, t / 1000);
    /* Python: sha256(b"maintq-tick\0nightly-health\0" + b"1796428800000000"), bits laid out
     * as version 7 / variant 10 around the millisecond time. */
    assert_string_equal(a, "01a24380-2000-776e-9cad-75ede7367ebd");
    assert_int_equal(schedule_job_id("nightly-health", t + USEC_PER_SEC, c), 0);
    assert_string_equal(c, "01a24380-23e8-7499-a9ce-36dc148d329e");
    assert_int_equal(schedule_job_id("nightly-health2", t, d), 0);
    assert_string_not_equal(a, d);
    assert_true(uuid7_is_valid(d));
    /* Ticks later in time sort later as text. */
    assert_true(strcmp(a, c) < 0);
    assert_int_equal(schedule_job_id("x", -1, d), -EINVAL);
}

static void test_descriptor_of_a_tick_is_complete_and_valid(void **state)
{
    struct schedule_set *set = load_ok("tests/fixtures/schedules/valid/full.json");
    const struct schedule *s = find(set, "nightly-health");
    int64_t tick = T("2026-12-05T00:00:00Z"), now = T("2026-12-05T00:00:00.002Z");
    char id[UUID_STR_LEN], *text = NULL;
    struct descriptor *d = NULL;
    struct errbuf eb = {""};

    if (schedule_build_descriptor(s, tick, T("2026-12-05T03:00:00Z"), now, &text, &eb) < 0)
        fail_msg("build: %s", eb.msg);
    if (descriptor_parse(text, strlen(text), DESCRIPTOR_REQUIRE_COMPLETE, &d, &eb) < 0)
        fail_msg("parse: %s: %s", eb.msg, text);
    assert_int_equal(schedule_job_id("nightly-health", tick, id), 0);
    assert_string_equal(d->id, id);
    assert_string_equal(d->type, "exec");
    assert_string_equal(d->queue, "checks");
    assert_string_equal(d->schedule, "nightly-health");
    assert_string_equal(d->submitted_by, "scheduler");
    assert_string_equal(d->lock, "health");
    assert_int_equal(d->scheduled_for_us, tick);
    assert_int_equal(d->created_at_us, now);
    assert_int_equal(d->not_after_us, T("2026-12-05T03:00:00Z"));
    assert_int_equal(d->timeout_s, 60);
    assert_int_equal(d->backoff_base_s, 5);
    assert_string_equal(json_string_value(json_array_get(json_object_get(d->params, "argv"), 0)),
                        "/usr/bin/df");
    descriptor_free(d);
    free(text);

    /* Without a window end there is no not_after; the template is not changed. */
    assert_int_equal(schedule_build_descriptor(s, tick, INT64_MAX, now, &text, &eb), 0);
    assert_null(strstr(text, "not_after"));
    assert_null(strstr(s->job_json, "\"id\""));
    free(text);
    text = NULL;
    /* A tick before 1970 has no job id. */
    assert_int_equal(schedule_build_descriptor(s, -USEC_PER_SEC, INT64_MAX, now, &text, &eb),
                     -EINVAL);
    assert_null(text);
    schedule_set_free(set);
}

/* A definition recorded in Postgres loads from text, with its origin named in errors. */
static void test_definition_text_loads_and_errors_name_its_origin(void **state)
{
    static const char good[] =
        "{\"name\":\"from-db\",\"cron\":\"0 2 * * *\",\"job\":{\"type\":\"noop\"}}";
    static const char bad[] =
        "{\"name\":\"from-db\",\"cron\":\"0 25 * * *\",\"job\":{\"type\":\"noop\"}}";
    struct schedule_set *set = NULL;
    struct errbuf eb = {{0}};

    assert_int_equal(schedule_set_load_text("maintq.schedules", good, sizeof(good) - 1, &set, &eb),
                     0);
    assert_int_equal(set->n, 1);
    assert_non_null(schedule_set_find(set, "from-db"));
    set = schedule_set_free(set);
    assert_true(schedule_set_load_text("maintq.schedules", bad, sizeof(bad) - 1, &set, &eb) < 0);
    assert_null(set);
    assert_non_null(strstr(eb.msg, "maintq.schedules: schedule \"from-db\": cron: hour"));
    printf("checked: %s\n", eb.msg);
}

/* Each schedule keeps its document's canonical text from the load (compact, sorted keys:
 * what maintq.schedules.definition records), in both file forms, and that text loads back
 * to the same text. The expected texts are written out by hand. */
static void test_definition_is_kept_as_canonical_text(void **state)
{
    static const char list[] =
        "{ \"schedules\": [\n"
        "  {\"name\": \"b-two\", \"job\": {\"type\": \"noop\", \"queue\": \"q\"},\n"
        "   \"cron\": \"0 3 * * 0\", \"zone\": \"Europe/London\"},\n"
        "  {\"zone\": \"UTC\", \"paused\": true, \"name\": \"a-one\",\n"
        "   \"description\": \"caf\\u00e9 \\\"x\\\"\", \"cron\": \"@daily\",\n"
        "   \"job\": {\"type\": \"noop\"}}\n"
        "] }\n";
    static const char one[] = "{\"name\":\"solo\", \"cron\":\"* * * * *\",\n"
                              " \"job\":{\"timeout_s\":5,\"type\":\"noop\"}}";
    static const char *const want[] = {
        "{\"cron\":\"0 3 * * 0\",\"job\":{\"queue\":\"q\",\"type\":\"noop\"},"
        "\"name\":\"b-two\",\"zone\":\"Europe/London\"}",
        "{\"cron\":\"@daily\",\"description\":\"caf\xc3\xa9 \\\"x\\\"\",\"job\":{\"type\":"
        "\"noop\"},\"name\":\"a-one\",\"paused\":true,\"zone\":\"UTC\"}",
    };
    struct schedule_set *set = NULL, *again = NULL;
    struct errbuf eb = {{0}};

    assert_int_equal(schedule_set_load_text("list.json", list, sizeof(list) - 1, &set, &eb), 0);
    assert_int_equal(set->n, 2);
    for (size_t i = 0; i < 2; i++) {
        const char *def = set->items[i]->definition;

        assert_string_equal(def, want[i]);
        assert_int_equal(schedule_set_load_text("db", def, strlen(def), &again, &eb), 0);
        assert_string_equal(again->items[0]->definition, def);
        again = schedule_set_free(again);
    }
    set = schedule_set_free(set);
    assert_int_equal(schedule_set_load_text("one.json", one, sizeof(one) - 1, &set, &eb), 0);
    assert_string_equal(set->items[0]->definition,
                        "{\"cron\":\"* * * * *\",\"job\":{\"timeout_s\":5,\"type\":\"noop\"},"
                        "\"name\":\"solo\"}");
    printf("checked: %s\n", set->items[0]->definition);
    schedule_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_schedule_gets_the_documented_defaults),
        cmocka_unit_test(test_every_field_is_read),
        cmocka_unit_test(test_list_file_integer_seconds_and_window_zone_default),
        cmocka_unit_test(test_empty_list_is_an_empty_set),
        cmocka_unit_test(test_dir_loads_json_files_in_name_order),
        cmocka_unit_test(test_invalid_fixtures_are_refused_with_their_message),
        cmocka_unit_test(test_names_are_unique_across_files),
        cmocka_unit_test(test_missing_file_and_dir_are_named),
        cmocka_unit_test(test_ops_schedules_load_and_run_only_allowlisted_programs),
        cmocka_unit_test(test_seed_calendars_fire_when_the_seeds_say),
        cmocka_unit_test(test_weekly_tuesday_window),
        cmocka_unit_test(test_monthly_first_saturday_window),
        cmocka_unit_test(test_quarterly_third_saturday_window),
        cmocka_unit_test(test_dense_and_long_windows),
        cmocka_unit_test(test_misfire_policies_without_deadline),
        cmocka_unit_test(test_misfire_policies_with_deadline),
        cmocka_unit_test(test_never_fired_misses_nothing),
        cmocka_unit_test(test_misfire_bound_reports_older_ticks_once),
        cmocka_unit_test(test_misfire_bound_on_a_long_outage),
        cmocka_unit_test(test_job_ids_are_deterministic_v7_and_match_an_independent_computation),
        cmocka_unit_test(test_descriptor_of_a_tick_is_complete_and_valid),
        cmocka_unit_test(test_definition_text_loads_and_errors_name_its_origin),
        cmocka_unit_test(test_definition_is_kept_as_canonical_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
