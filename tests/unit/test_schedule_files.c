/* Proves how schedule files are read (schedule_file_foreach, and through it
 * schedule_set_load_files): a {"schedules": [...]} file is walked one document at a time —
 * the live jansson memory while walking 2,000 schedules stays a small fraction of what parsing
 * the whole file takes — and hands out the same documents in the same order as the
 * whole-document parse; every other form (a single object, an escaped "schedules" key, odd
 * whitespace, an empty list) yields the documents it holds; every malformed file keeps the
 * message of the whole-document path (trailing comma, a key before or after the list,
 * garbage after the document, a duplicate key, a list that is not an array), and a syntax
 * error late in a file is reported rather than a bad schedule before it, without the
 * callback having seen any document; a callback's error stops the walk and is returned. */
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

#include <jansson.h>

#include "schedule.h"

static char dir[] = "/tmp/maintq-test-schedule-files.XXXXXX";
static char path[sizeof(dir) + 32];

static void write_file(const char *text)
{
    FILE *f = fopen(path, "we");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* ---- a counting allocator for jansson: live and peak bytes -------------------------- */

static size_t live_bytes, peak_bytes;

/* Each block carries its size in a header aligned for any type. */
#define HDR 16

static void *count_malloc(size_t n)
{
    unsigned char *p = malloc(n + HDR);

    if (!p)
        return NULL;
    memcpy(p, &n, sizeof(n));
    live_bytes += n;
    if (live_bytes > peak_bytes)
        peak_bytes = live_bytes;
    return p + HDR;
}

static void count_free(void *q)
{
    unsigned char *p = q;
    size_t n;

    if (!p)
        return;
    p -= HDR;
    memcpy(&n, p, sizeof(n));
    live_bytes -= n;
    free(p);
}

/* ---- callbacks ------------------------------------------------------------------------ */

struct names {
    char list[16384]; /* the names seen, space separated ("-" for a document without one) */
    size_t calls;
    size_t fail_at; /* return -E2BIG at this call (0: never) */
};

static int collect(json_t *doc, size_t index, void *data)
{
    struct names *n = data;
    const char *name = json_string_value(json_object_get(doc, "name"));
    size_t len = strlen(n->list);

    n->calls++;
    assert_int_equal(index, n->calls);
    snprintf(n->list + len, sizeof(n->list) - len, "%s%s", len ? " " : "", name ? name : "-");
    return n->calls == n->fail_at ? -E2BIG : 0;
}

static int walk(const char *text, struct names *n, struct errbuf *eb)
{
    write_file(text);
    memset(n, 0, sizeof(*n));
    return schedule_file_foreach(path, collect, n, eb);
}

static void assert_names(const char *text, const char *want)
{
    struct errbuf eb = {""};
    struct names n;

    if (walk(text, &n, &eb) != 0)
        fail_msg("refused (%s): %s", eb.msg, text);
    if (strcmp(n.list, want) != 0)
        fail_msg("documents \"%s\", want \"%s\", from: %s", n.list, want, text);
}

static void assert_refused(const char *text, const char *msg_part)
{
    struct errbuf eb = {""};
    struct names n;

    assert_int_equal(walk(text, &n, &eb), -EINVAL);
    if (!strstr(eb.msg, msg_part))
        fail_msg("message \"%s\" lacks \"%s\", for: %s", eb.msg, msg_part, text);
    if (n.calls != 0)
        fail_msg("the callback saw %zu documents of a malformed file: %s", n.calls, text);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_a_list_is_walked_one_document_at_a_time(void **state)
{
    enum { N = 2000 };
    size_t cap = N * 200 + 64, len = 0, whole_peak, walk_peak;
    char *text = malloc(cap);
    struct errbuf eb = {""};
    struct names n = {.fail_at = 0};
    json_t *root;

    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "{\"schedules\": [\n");
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "%s  {\"name\": \"s%04d\", \"cron\": \"0 3 * * *\", "
                                "\"job\": {\"type\": \"noop\", \"queue\": \"q%d\"}}",
                                i ? ",\n" : "", i, i);
    snprintf(text + len, cap - len, "\n]}\n");
    write_file(text);
    free(text);

    json_set_alloc_funcs(count_malloc, count_free);
    live_bytes = peak_bytes = 0;
    root = json_load_file(path, 0, NULL);
    assert_non_null(root);
    whole_peak = peak_bytes;
    json_decref(root);
    assert_int_equal(live_bytes, 0);

    peak_bytes = 0;
    assert_int_equal(schedule_file_foreach(path, collect, &n, &eb), 0);
    walk_peak = peak_bytes;
    json_set_alloc_funcs(malloc, free);
    assert_int_equal(live_bytes, 0);
    assert_int_equal(n.calls, N);
    assert_non_null(strstr(n.list, "s0000 s0001 s0002"));
    assert_non_null(strstr(n.list, "s1998 s1999"));
    print_message("jansson peak: %zu bytes parsing the whole file, %zu walking it\n", whole_peak,
                  walk_peak);
    /* One document is a few hundred bytes of nodes; the whole file, 2,000 times that. */
    assert_true(walk_peak * 50 < whole_peak);
}

static void test_every_form_yields_its_documents(void **state)
{
    assert_names("{\"schedules\":[{\"name\":\"a\"},{\"name\":\"b\"}]}", "a b");
    assert_names("\r\n\t{ \"schedules\" :\r\n [ {\"name\":\"a\"} ,\n\t{\"name\":\"b\"}\n ] }\n\n",
                 "a b");
    /* Only the plain key is walked; an escaped one goes through the whole parse. */
    assert_names("{\"schedul\\u0065s\": [{\"name\": \"a\"}, {\"name\": \"b\"}]}", "a b");
    assert_names("{\"name\": \"single\", \"cron\": \"0 3 * * *\"}", "single");
    assert_names("{\"schedules\": []}", "");
    assert_names("{ \"schedules\" : [ ] }", "");
    /* A document that is not an object is handed over as it is (the loader refuses it). */
    assert_names("{\"schedules\": [{\"name\": \"a\"}, 5, {\"name\": \"c\"}]}", "a - c");
}

static void test_malformed_files_keep_their_messages(void **state)
{
    assert_refused("{\"schedules\": [{\"name\": \"a\"},]}", "invalid json at line 1");
    assert_refused("{\"schedules\": [{\"name\": \"a\"}], \"x\": 1}",
                   "a file with \"schedules\" may hold nothing else");
    assert_refused("{\"x\": 1, \"schedules\": [{\"name\": \"a\"}]}",
                   "a file with \"schedules\" may hold nothing else");
    assert_refused("{\"schedules\": [{\"name\": \"a\"}]} x", "invalid json");
    assert_refused("{\"schedules\": [{\"name\": \"a\"}, {\"name\": \"b\", \"name\": \"c\"}]}",
                   "duplicate object key");
    assert_refused("{\"schedules\": {\"name\": \"a\"}}", "schedules: expected an array");
    assert_refused("{\"schedules\": [{\"name\": \"a\"}", "invalid json");
    assert_refused("[{\"name\": \"a\"}]", "expected a schedule object or {\"schedules\": [...]}");
}

static void test_a_late_syntax_error_wins_over_an_earlier_bad_schedule(void **state)
{
    const char *paths[1] = {path};
    struct schedule_set *set = NULL;
    struct errbuf eb = {""};

    /* Schedule #1 lacks its cron, and line 3 is broken: the file is not JSON, which is what
     * the whole-document parse has always said first. */
    write_file("{\"schedules\": [\n"
               "  {\"name\": \"no-cron\", \"job\": {\"type\": \"noop\"}},\n"
               "  {\"name\": \"broken\", \"cron\": }\n"
               "]}\n");
    assert_int_equal(schedule_set_load_files(paths, 1, &set, &eb), -EINVAL);
    assert_null(set);
    assert_non_null(strstr(eb.msg, "invalid json at line 3"));

    /* Without the broken line the bad schedule is named. */
    write_file("{\"schedules\": [\n"
               "  {\"name\": \"no-cron\", \"job\": {\"type\": \"noop\"}}\n"
               "]}\n");
    assert_int_equal(schedule_set_load_files(paths, 1, &set, &eb), -EINVAL);
    assert_non_null(strstr(eb.msg, "schedule \"no-cron\": cron: required"));
}

static void test_a_walked_list_loads_like_before(void **state)
{
    const char *paths[1] = {path};
    struct schedule_set *set = NULL;
    struct errbuf eb = {""};
    char *text = NULL;

    write_file("{\"schedules\": [\n"
               "  {\"name\": \"a\", \"cron\": \"0 3 * * *\", \"zone\": \"Europe/London\",\n"
               "   \"job\": {\"type\": \"noop\", \"queue\": \"maint\", \"timeout_s\": 30}},\n"
               "  {\"name\": \"b\", \"cron\": \"*/5 * * * *\", \"job\": {\"type\": \"noop\"}},\n"
               "  {\"name\": \"c\", \"cron\": \"0 4 * * *\", \"zone\": \"Europe/London\",\n"
               "   \"job\": {\"type\": \"noop\"}}\n"
               "]}\n");
    if (schedule_set_load_files(paths, 1, &set, &eb) < 0)
        fail_msg("refused: %s", eb.msg);
    assert_int_equal(set->n, 3);
    assert_string_equal(set->items[0]->name, "a");
    assert_string_equal(set->items[2]->name, "c");
    /* One copy of the file's path and one zone for the schedules that share them. */
    assert_ptr_equal(set->items[0]->file, set->items[2]->file);
    assert_string_equal(set->items[0]->file, path);
    assert_int_equal(set->n_zones, 2);
    assert_string_equal(set->items[1]->zone_name, "UTC");
    assert_string_equal(set->items[2]->zone_name, "Europe/London");
    /* The template is kept as text and still becomes the tick's descriptor. */
    assert_non_null(strstr(set->items[0]->job_json, "\"queue\":\"maint\""));
    assert_int_equal(schedule_build_descriptor(set->items[0], INT64_C(1767236400000000), INT64_MAX,
                                               INT64_C(1767236400001000), &text, &eb),
                     0);
    assert_non_null(strstr(text, "\"queue\":\"maint\""));
    assert_non_null(strstr(text, "\"timeout_s\":30"));
    assert_non_null(strstr(text, "\"schedule\":\"a\""));
    free(text);
    schedule_set_free(set);
}

static void test_a_callback_error_stops_the_walk(void **state)
{
    struct errbuf eb = {""};
    struct names n = {.fail_at = 2};

    write_file("{\"schedules\": [{\"name\": \"a\"}, {\"name\": \"b\"}, {\"name\": \"c\"}]}");
    assert_int_equal(schedule_file_foreach(path, collect, &n, &eb), -E2BIG);
    assert_int_equal(n.calls, 2);
    assert_string_equal(n.list, "a b");

    /* Same through the whole-document path (a single object). */
    memset(&n, 0, sizeof(n));
    n.fail_at = 1;
    write_file("{\"name\": \"single\"}");
    assert_int_equal(schedule_file_foreach(path, collect, &n, &eb), -E2BIG);
    assert_int_equal(n.calls, 1);
}

static int setup(void **state)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/s.json", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_list_is_walked_one_document_at_a_time),
        cmocka_unit_test(test_every_form_yields_its_documents),
        cmocka_unit_test(test_malformed_files_keep_their_messages),
        cmocka_unit_test(test_a_late_syntax_error_wins_over_an_earlier_bad_schedule),
        cmocka_unit_test(test_a_walked_list_loads_like_before),
        cmocka_unit_test(test_a_callback_error_stops_the_walk),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
