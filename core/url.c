/* Redis URL parsing and password-redacting display forms for Redis URLs and libpq
 * connection strings. The parser is strict (every part checked, errors name the part) but
 * forgiving about one common mistake: a password containing an unencoded '@' or '/' still
 * parses, because the user information ends at the last '@'. No error message ever quotes
 * the password, nor the user part when it might be a password written without its colon. */
#include "url.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "errbuf.h"
#include "maintq_config.h"
#include "parse.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes n bytes of s into out (NUL-terminated). -EINVAL for a malformed escape or an
 * encoded NUL, -E2BIG when the result does not fit in outsize. */
static int pct_decode(const char *s, size_t n, char *out, size_t outsize)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        char c = s[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= n)
                return -EINVAL;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= outsize)
            return -E2BIG;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int decode_part(const char *what, const char *s, size_t n, char *out, size_t outsize,
                       struct errbuf *eb)
{
    int r = pct_decode(s, n, out, outsize);

    if (r == -EINVAL)
        errbuf_set(eb, "redis url: bad percent-encoding in %s", what);
    else if (r == -E2BIG)
        errbuf_set(eb, "redis url: %s is longer than %zu bytes", what, outsize - 1);
    return r < 0 ? -EINVAL : 0;
}

/* Parses a port or db number given as n bytes of s. */
static int parse_number(const char *what, const char *s, size_t n, int64_t min, int64_t max,
                        int *ret, struct errbuf *eb)
{
    char buf[32];
    int64_t v;
    int r;

    if (n == 0) {
        errbuf_set(eb, "redis url: empty %s", what);
        return -EINVAL;
    }
    if (n >= sizeof(buf)) {
        errbuf_set(eb, "redis url: %s \"%.20s...\" is not a number %lld-%lld", what, s,
                   (long long)min, (long long)max);
        return -EINVAL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    r = parse_int64(buf, min, max, &v);
    if (r == -ERANGE) {
        errbuf_set(eb, "redis url: %s \"%s\" is out of range %lld-%lld", what, buf, (long long)min,
                   (long long)max);
        return -EINVAL;
    }
    if (r < 0 || buf[0] == '+' || buf[0] == '-') {
        errbuf_set(eb, "redis url: %s \"%s\" is not a number %lld-%lld", what, buf, (long long)min,
                   (long long)max);
        return -EINVAL;
    }
    *ret = (int)v;
    return 0;
}

static bool host_char_ok(char c, bool ipv6)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    if (c == '.' || c == '-')
        return true;
    if (ipv6 && (c == ':' || c == '%'))
        return true;
    return !ipv6 && c == '_';
}

static int parse_host(const char *s, size_t n, bool ipv6, struct redis_url *u, struct errbuf *eb)
{
    size_t i;

    if (n == 0) {
        errbuf_set(eb, "redis url: missing host");
        return -EINVAL;
    }
    if (n >= sizeof(u->host)) {
        errbuf_set(eb, "redis url: host is longer than %zu bytes", sizeof(u->host) - 1);
        return -EINVAL;
    }
    for (i = 0; i < n; i++) {
        if (!host_char_ok(s[i], ipv6)) {
            errbuf_set(eb, "redis url: host \"%.*s\" contains an invalid character", (int)n, s);
            return -EINVAL;
        }
    }
    memcpy(u->host, s, n);
    u->host[n] = '\0';
    return 0;
}

/* host[:port][/db] of a redis:// URL. */
static int parse_tcp(const char *s, struct redis_url *u, struct errbuf *eb)
{
    const char *p, *host, *end;
    size_t hostlen;
    bool ipv6 = false;
    int r;

    if (strpbrk(s, "?#")) {
        errbuf_set(eb, "redis url: query parameters are only supported in unix:// urls");
        return -EINVAL;
    }
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (!end) {
            errbuf_set(eb, "redis url: missing ']' after IPv6 address");
            return -EINVAL;
        }
        host = s + 1;
        hostlen = (size_t)(end - host);
        p = end + 1;
        ipv6 = true;
        if (*p && *p != ':' && *p != '/') {
            errbuf_set(eb, "redis url: unexpected \"%s\" after IPv6 address", p);
            return -EINVAL;
        }
    } else {
        host = s;
        hostlen = strcspn(s, ":/");
        p = s + hostlen;
    }
    r = parse_host(host, hostlen, ipv6, u, eb);
    if (r < 0)
        return r;
    if (*p == ':') {
        size_t n = strcspn(p + 1, "/");

        r = parse_number("port", p + 1, n, 1, 65535, &u->port, eb);
        if (r < 0)
            return r;
        p += 1 + n;
    }
    if (*p == '/' && p[1] != '\0')
        return parse_number("db", p + 1, strlen(p + 1), 0, INT_MAX, &u->db, eb);
    return 0;
}

/* /path[?db=N&user=U&password=P] of a unix:// URL. */
static int parse_unix(const char *s, struct redis_url *u, struct errbuf *eb)
{
    const char *q = strchr(s, '?');
    size_t pathlen = q ? (size_t)(q - s) : strlen(s);
    int r;

    if (s[0] != '/' || pathlen < 2) {
        errbuf_set(eb, "redis url: unix socket path must be absolute "
                       "(unix:///path/to/redis.sock)");
        return -EINVAL;
    }
    r = decode_part("socket path", s, pathlen, u->path, sizeof(u->path), eb);
    if (r < 0)
        return r;
    u->unix_socket = true;
    u->port = 0;
    while (q && *q) {
        const char *kv = q + 1, *eq, *amp = strchr(kv, '&');
        size_t n = amp ? (size_t)(amp - kv) : strlen(kv);
        size_t klen;

        q = amp;
        if (n == 0)
            continue;
        eq = memchr(kv, '=', n);
        klen = eq ? (size_t)(eq - kv) : n;
        if (!eq) {
            errbuf_set(eb, "redis url: parameter \"%.*s\" has no value", (int)klen, kv);
            return -EINVAL;
        }
        if (klen == 2 && memcmp(kv, "db", 2) == 0)
            r = parse_number("db", eq + 1, n - klen - 1, 0, INT_MAX, &u->db, eb);
        else if (klen == 4 && memcmp(kv, "user", 4) == 0)
            r = decode_part("user", eq + 1, n - klen - 1, u->user, sizeof(u->user), eb);
        else if (klen == 8 && memcmp(kv, "password", 8) == 0)
            r = decode_part("password", eq + 1, n - klen - 1, u->password, sizeof(u->password), eb);
        else {
            errbuf_set(eb,
                       "redis url: unknown parameter \"%.*s\" (expected db, user or "
                       "password)",
                       (int)(klen > 40 ? 40 : klen), kv);
            r = -EINVAL;
        }
        if (r < 0)
            return r;
    }
    return 0;
}

static const char *skip_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);

    return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

int redis_url_parse(const char *s, struct redis_url *ret, struct errbuf *eb)
{
    struct redis_url u;
    const char *rest, *at;
    bool is_unix = false;
    int r;

    memset(&u, 0, sizeof(u));
    u.port = REDIS_URL_DEFAULT_PORT;
    if (!s || !*s) {
        errbuf_set(eb, "redis url: empty");
        return -EINVAL;
    }
    if ((rest = skip_prefix(s, "redis://"))) {
    } else if ((rest = skip_prefix(s, "rediss://"))) {
#if MAINTQ_HAVE_REDIS_TLS
        u.tls = true;
#else
        errbuf_set(eb, "redis url: TLS to Redis needs hiredis >= 1.0 (this build has %d.%d)",
                   HIREDIS_MAJOR, HIREDIS_MINOR);
        return -ENOTSUP;
#endif
    } else if ((rest = skip_prefix(s, "unix://")) || (rest = skip_prefix(s, "redis+unix://"))) {
        is_unix = true;
    } else {
        const char *sep = strstr(s, "://");

        if (sep && sep - s < 20 && !memchr(s, '@', (size_t)(sep - s)))
            errbuf_set(eb,
                       "redis url: unsupported scheme \"%.*s\" (expected redis://, "
                       "rediss:// or unix://)",
                       (int)(sep - s), s);
        else
            errbuf_set(eb, "redis url: must start with redis://, rediss:// or unix://");
        return -EINVAL;
    }

    /* The user information ends at the last '@', so unencoded '@' and '/' in a password
     * survive (an '@' is never valid in a host or a db number). unix:///path has no user
     * information, and its query may hold a password with an '@'. */
    at = rest[0] == '/' ? NULL : strrchr(rest, '@');
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));

        if (!colon) {
            errbuf_set(eb, "redis url: user given without a password (write "
                           "user:password@ or :password@)");
            return -EINVAL;
        }
        r = decode_part("user", rest, (size_t)(colon - rest), u.user, sizeof(u.user), eb);
        if (r < 0)
            return r;
        r = decode_part("password", colon + 1, (size_t)(at - colon - 1), u.password,
                        sizeof(u.password), eb);
        if (r < 0)
            return r;
        rest = at + 1;
    }
    r = is_unix ? parse_unix(rest, &u, eb) : parse_tcp(rest, &u, eb);
    if (r < 0)
        return r;
    if (u.user[0] && !u.password[0]) {
        errbuf_set(eb, "redis url: user \"%s\" given without a password", u.user);
        return -EINVAL;
    }
    *ret = u;
    return 0;
}

char *redis_url_format(const struct redis_url *u, char *buf, size_t size)
{
    bool bracket;

    if (size == 0)
        return buf;
    if (u->unix_socket) {
        snprintf(buf, size, "unix://%s?db=%d%s%s%s", u->path, u->db, u->user[0] ? "&user=" : "",
                 u->user, u->password[0] ? "&password=***" : "");
        return buf;
    }
    bracket = strchr(u->host, ':') != NULL; /* IPv6 */
    snprintf(buf, size, "%s://%s%s%s%s%s:%d/%d", u->tls ? "rediss" : "redis",
             u->password[0] ? u->user : "", u->password[0] ? ":***@" : "", bracket ? "[" : "",
             u->host, bracket ? "]" : "", u->port, u->db);
    return buf;
}

/* Appends to a bounded buffer; *len counts what would have been written. */
static void append(char *buf, size_t size, size_t *len, const char *s, size_t n)
{
    if (*len < size) {
        size_t room = size - *len - 1;

        memcpy(buf + *len, s, n < room ? n : room);
        buf[*len + (n < room ? n : room)] = '\0';
    }
    *len += n;
}

static void append_value(char *buf, size_t size, size_t *len, const char *v)
{
    bool quote = !*v || strpbrk(v, " \t\n\r\f\v'\\") != NULL;

    if (!quote) {
        append(buf, size, len, v, strlen(v));
        return;
    }
    append(buf, size, len, "'", 1);
    for (; *v; v++) {
        if (*v == '\'' || *v == '\\')
            append(buf, size, len, "\\", 1);
        append(buf, size, len, v, 1);
    }
    append(buf, size, len, "'", 1);
}

int pg_conninfo_redact(const char *conninfo, char *buf, size_t size)
{
    PQconninfoOption *opts, *o;
    char *errmsg = NULL;
    size_t len = 0;

    if (size == 0)
        return -EINVAL;
    buf[0] = '\0';
    opts = PQconninfoParse(conninfo ? conninfo : "", &errmsg);
    if (!opts) {
        /* errmsg NULL with a NULL result means out of memory. */
        int r = errmsg ? -EINVAL : -ENOMEM;

        PQfreemem(errmsg);
        snprintf(buf, size, "(invalid connection string)");
        return r;
    }
    for (o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (len > 0)
            append(buf, size, &len, " ", 1);
        append(buf, size, &len, o->keyword, strlen(o->keyword));
        append(buf, size, &len, "=", 1);
        /* libpq marks secret options with dispchar "*" (password, sslpassword, ...). */
        if (o->dispchar && strchr(o->dispchar, '*'))
            append(buf, size, &len, "***", 3);
        else
            append_value(buf, size, &len, o->val);
    }
    PQconninfoFree(opts);
    return 0;
}
