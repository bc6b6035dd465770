/* Proves Redis URL parsing (TCP, IPv6, unix sockets, defaults, percent-decoding, every
 * malformed part rejected with a message naming it) and that the display forms of Redis
 * URLs and libpq connection strings never contain the password, not even in errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "errbuf.h"
#include "maintq_config.h"
#include "url.h"

static struct redis_url parse_ok(const char *s)
{
    struct redis_url u;
    struct errbuf eb = {{0}};

    if (redis_url_parse(s, &u, &eb) != 0)
        fail_msg("%s: %s", s, eb.msg);
    return u;
}

/* Parses s, expects failure and that the message contains want and never "s3cret". */
static void parse_bad(const char *s, const char *want)
{
    struct redis_url u;
    struct errbuf eb = {{0}};

    u.port = -42;
    assert_true(redis_url_parse(s, &u, &eb) < 0);
    assert_int_equal(u.port, -42);
    if (!strstr(eb.msg, want))
        fail_msg("%s: message \"%s\" lacks \"%s\"", s, eb.msg, want);
    assert_null(strstr(eb.msg, "s3cret"));
    assert_true(strncmp(eb.msg, "redis url: ", 11) == 0);
}

static void test_tcp_defaults(void **state)
{
    struct redis_url u = parse_ok("redis://127.0.0.1");

    assert_false(u.unix_socket);
    assert_false(u.tls);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "");

    u = parse_ok("redis://cache.example.com:6380/");
    assert_string_equal(u.host, "cache.example.com");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 0);
}

static void test_tcp_with_password_user_and_db(void **state)
{
    struct redis_url u = parse_ok("redis://:s3cret@localhost:6390/3");

    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "s3cret");

    u = parse_ok("redis://alice:s3cret@10.0.0.5/15");
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "s3cret");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 15);
}

static void test_percent_decoding_and_unencoded_at(void **state)
{
    struct redis_url u = parse_ok("redis://us%40er:p%3Ass%2Fw%25rd@h:1/0");

    assert_string_equal(u.user, "us@er");
    assert_string_equal(u.password, "p:ss/w%rd");

    /* A password with a raw '@' and '/' still parses: user information ends at the last '@'. */
    u = parse_ok("redis://:a@b/c@127.0.0.1:7000/2");
    assert_string_equal(u.password, "a@b/c");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 2);
}

static void test_ipv6_in_brackets(void **state)
{
    struct redis_url u = parse_ok("redis://[::1]:6380/1");

    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 1);

    u = parse_ok("redis://:pw@[2001:db8::7]");
    assert_string_equal(u.host, "2001:db8::7");
    assert_int_equal(u.port, 6379);
}

static void test_unix_sockets(void **state)
{
    struct redis_url u = parse_ok("unix:///run/redis/redis.sock");

    assert_true(u.unix_socket);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_int_equal(u.db, 0);

    u = parse_ok("unix:///tmp/r%20x.sock?db=4&password=s3%26cret@x&user=bob");
    assert_string_equal(u.path, "/tmp/r x.sock");
    assert_int_equal(u.db, 4);
    assert_string_equal(u.password, "s3&cret@x");
    assert_string_equal(u.user, "bob");

    u = parse_ok("redis+unix://:pw@/var/run/r.sock?db=2");
    assert_true(u.unix_socket);
    assert_string_equal(u.path, "/var/run/r.sock");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.db, 2);
}

static void test_bad_port_and_db_name_the_part(void **state)
{
    parse_bad("redis://h:99999", "port \"99999\" is out of range 1-65535");
    parse_bad("redis://h:0", "port \"0\" is out of range 1-65535");
    parse_bad("redis://h:abc/0", "port \"abc\" is not a number");
    parse_bad("redis://h:+80", "port \"+80\" is not a number");
    parse_bad("redis://h:", "empty port");
    parse_bad("redis://h:6379/x", "db \"x\" is not a number");
    parse_bad("redis://h:6379/-1", "db \"-1\" is out of range 0-2147483647");
    parse_bad("redis://h:6379/0/1", "db \"0/1\" is not a number");
    parse_bad("redis://h/99999999999", "db \"99999999999\" is out of range");
    parse_bad("unix:///r.sock?db=zz", "db \"zz\" is not a number");
}

static void test_bad_hosts_schemes_and_queries(void **state)
{
    parse_bad("", "empty");
    parse_bad("redis://", "missing host");
    parse_bad("redis://:s3cret@", "missing host");
    parse_bad("redis://:6379", "missing host");
    parse_bad("redis://[::1", "missing ']'");
    parse_bad("redis://[::1]x", "after IPv6 address");
    parse_bad("redis://ho st", "host \"ho st\" contains an invalid character");
    parse_bad("http://h", "unsupported scheme \"http\"");
    parse_bad("127.0.0.1:6379", "must start with redis://");
    parse_bad("redis://h/0?db=1", "only supported in unix://");
    parse_bad("unix://relative.sock", "must be absolute");
    parse_bad("unix:///r.sock?colour=blue", "unknown parameter \"colour\"");
    parse_bad("unix:///r.sock?db", "parameter \"db\" has no value");
}

static void test_password_errors_never_echo_it(void **state)
{
    parse_bad("redis://s3cret@h", "user given without a password");
    parse_bad("redis://alice:@h", "user \"alice\" given without a password");
    parse_bad("redis://:s3cret%zz@h", "bad percent-encoding in password");
    parse_bad("redis://:s3cret%0@h", "bad percent-encoding in password");
    parse_bad("redis://:s3cret%00@h", "bad percent-encoding in password");
    parse_bad("unix:///r.sock?password=s3cret%", "bad percent-encoding in password");

    char longpw[600] = "redis://:s3cret";
    memset(longpw + strlen(longpw), 'x', 300);
    memcpy(longpw + strlen(longpw), "@h", 3);
    parse_bad(longpw, "password is longer than 255 bytes");
}

static void test_rediss_depends_on_build(void **state)
{
    struct redis_url u;
    struct errbuf eb = {{0}};
    int r = redis_url_parse("rediss://:s3cret@h:6380/0", &u, &eb);

#if MAINTQ_HAVE_REDIS_TLS
    assert_int_equal(r, 0);
    assert_true(u.tls);
#else
    assert_int_equal(r, -ENOTSUP);
    assert_string_equal(eb.msg, "redis url: TLS to Redis needs hiredis >= 1.0 "
                                "(this build has 0.14)");
#endif
}

static void test_format_redacts_password(void **state)
{
    char buf[REDIS_URL_DISPLAY_MAX];
    struct redis_url u;

    u = parse_ok("redis://:s3cret@127.0.0.1:6379/0");
    assert_string_equal(redis_url_format(&u, buf, sizeof(buf)), "redis://:***@127.0.0.1:6379/0");
    u = parse_ok("redis://alice:s3cret@[::1]:6380/2");
    assert_string_equal(redis_url_format(&u, buf, sizeof(buf)), "redis://alice:***@[::1]:6380/2");
    u = parse_ok("redis://h");
    assert_string_equal(redis_url_format(&u, buf, sizeof(buf)), "redis://h:6379/0");
    u = parse_ok("unix:///run/r.sock?db=3&password=s3cret");
    assert_string_equal(redis_url_format(&u, buf, sizeof(buf)),
                        "unix:///run/r.sock?db=3&password=***");
    u = parse_ok("unix:///run/r.sock");
    assert_string_equal(redis_url_format(&u, buf, sizeof(buf)), "unix:///run/r.sock?db=0");

    /* The display form parses back to the same address. */
    u = parse_ok("redis://alice:s3cret@[::1]:6380/2");
    redis_url_format(&u, buf, sizeof(buf));
    struct redis_url back = parse_ok(buf);
    assert_string_equal(back.host, "::1");
    assert_int_equal(back.port, 6380);
    assert_int_equal(back.db, 2);

    /* Truncation keeps the string terminated. */
    assert_string_equal(redis_url_format(&u, buf, 9), "redis://");
}

static void redact_ok(const char *conninfo, const char *want)
{
    char buf[512];

    assert_int_equal(pg_conninfo_redact(conninfo, buf, sizeof(buf)), 0);
    assert_string_equal(buf, want);
    assert_null(strstr(buf, "s3cret"));
}

static void test_pg_conninfo_redaction(void **state)
{
    char buf[512];

    redact_ok("host=/tmp port=5433 dbname=maintq user=maintq password=s3cret",
              "user=maintq password=*** dbname=maintq host=/tmp port=5433");
    redact_ok("postgresql://bob:s3cret@db.example.com:5432/results?sslmode=require",
              "user=bob password=*** dbname=results host=db.example.com port=5432 "
              "sslmode=require");
    redact_ok("postgresql://bob:s3cret%40x@[::1]/app", "user=bob password=*** dbname=app host=::1");
    redact_ok("host='my host' dbname='it\\'s' password='s3cret with space'",
              "password=*** dbname='it\\'s' host='my host'");
    redact_ok("sslpassword=s3cret host=h", "host=h sslpassword=***");
    redact_ok("", "");

    /* Unparseable input is never echoed. */
    assert_int_equal(pg_conninfo_redact("host=h password='s3cret", buf, sizeof(buf)), -EINVAL);
    assert_string_equal(buf, "(invalid connection string)");
    assert_int_equal(pg_conninfo_redact("postgresql://u:s3cret%zz@h/db", buf, sizeof(buf)),
                     -EINVAL);
    assert_null(strstr(buf, "s3cret"));

    /* Truncated output is terminated and still redacted. */
    assert_int_equal(pg_conninfo_redact("password=s3cret host=h", buf, 12), 0);
    assert_int_equal(strlen(buf), 11);
    assert_null(strstr(buf, "s3c"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_defaults),
        cmocka_unit_test(test_tcp_with_password_user_and_db),
        cmocka_unit_test(test_percent_decoding_and_unencoded_at),
        cmocka_unit_test(test_ipv6_in_brackets),
        cmocka_unit_test(test_unix_sockets),
        cmocka_unit_test(test_bad_port_and_db_name_the_part),
        cmocka_unit_test(test_bad_hosts_schemes_and_queries),
        cmocka_unit_test(test_password_errors_never_echo_it),
        cmocka_unit_test(test_rediss_depends_on_build),
        cmocka_unit_test(test_format_redacts_password),
        cmocka_unit_test(test_pg_conninfo_redaction),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
