/* Connection settings as people write them: Redis URLs (redis://, unix://) parsed into a
 * struct redis_url, and display forms of Redis URLs and libpq connection strings with every
 * password replaced by "***", so that logs and error messages never carry a secret. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct errbuf;

#define REDIS_URL_DEFAULT_PORT 6379

/* Sizes include the terminating NUL. */
#define REDIS_URL_HOST_MAX 256
#define REDIS_URL_PATH_MAX 108 /* sizeof(sockaddr_un.sun_path) */
#define REDIS_URL_USER_MAX 128
#define REDIS_URL_PASSWORD_MAX 256
/* Enough for redis_url_format() of any struct redis_url. */
#define REDIS_URL_DISPLAY_MAX 512

/* A parsed Redis address. Plain data: copy it freely, nothing to free. */
struct redis_url {
    bool unix_socket;                      /* true: path is set; false: host and port are set */
    bool tls;                              /* rediss:// (only when MAINTQ_HAVE_REDIS_TLS) */
    char host[REDIS_URL_HOST_MAX];         /* TCP host without IPv6 brackets */
    int port;                              /* 1-65535, REDIS_URL_DEFAULT_PORT when not given */
    char path[REDIS_URL_PATH_MAX];         /* unix socket path */
    int db;                                /* SELECTed after connecting, 0 by default */
    char user[REDIS_URL_USER_MAX];         /* ACL user, "" = none (AUTH password only) */
    char password[REDIS_URL_PASSWORD_MAX]; /* "" = no AUTH */
};

/* Parses
 *   redis://[[user]:password@]host[:port][/db]      (host may be [IPv6])
 *   rediss://...                                    (TLS, needs hiredis >= 1.0)
 *   unix://[[user]:password@]/path/to/redis.sock[?db=N&user=U&password=P]
 *   redis+unix://... (same as unix://)
 * User, password and path are percent-decoded. On failure returns -EINVAL (or -ENOTSUP
 * for rediss:// in a build without Redis TLS) with a one-line message in eb naming the part
 * that is wrong ("redis url: port \"99999\" is out of range 1-65535"); messages never
 * contain the password. *ret is written only on success. */
int redis_url_parse(const char *s, struct redis_url *ret, struct errbuf *eb);

/* Writes a display form with the password replaced: "redis://:***@127.0.0.1:6379/0",
 * "redis://alice:***@[::1]:6380/2", "unix:///run/redis.sock?db=0". buf should hold
 * REDIS_URL_DISPLAY_MAX bytes; the text is truncated to fit otherwise. Returns buf. */
char *redis_url_format(const struct redis_url *u, char *buf, size_t size);

/* Writes a display form of a libpq connection string (keyword=value form or a
 * postgresql:// URI) in keyword=value form, with every secret option (password,
 * sslpassword: those libpq marks as such) shown as ***. Returns 0, or -EINVAL when libpq
 * cannot parse it (buf then holds "(invalid connection string)": libpq's own message may
 * quote parts of the input, so it is not used), or -ENOMEM. Text is truncated to size. */
int pg_conninfo_redact(const char *conninfo, char *buf, size_t size);
