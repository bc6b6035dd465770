/* Redis connections for the daemons and the command line. struct redis_conn is an
 * asynchronous hiredis connection on a libevent event_base that authenticates and selects
 * its db before any caller command runs, queues caller commands until then, fails every
 * pending command (NULL reply) when the connection breaks and reconnects by itself with
 * exponential backoff and jitter. struct redis_script runs a Lua script by its SHA1 and
 * falls back to EVAL when the server does not have it cached. redis_connect_sync() is the
 * blocking connection for the command line. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct errbuf;
struct event_base;
struct redisContext;
struct redisReply;
struct redis_url;
struct resp_cmd;
struct redis_conn;

/* Default connect timeout (TCP connect + AUTH + SELECT + PING) of an attempt. */
#define REDIS_CONN_CONNECT_TIMEOUT_MS 5000
/* Reconnect backoff: attempt n waits a random time in [d/2, d], d = min(max, min * 2^n). */
#define REDIS_CONN_BACKOFF_MIN_MS 100
#define REDIS_CONN_BACKOFF_MAX_MS 5000

/* A command's reply. reply is borrowed (freed by hiredis when the callback returns); it
 * is NULL when the command did not get an answer: the connection broke or could not be
 * made, so the command may or may not have run. Error replies (-ERR ...) arrive as a reply
 * of type REDIS_REPLY_ERROR. The callback may issue new commands and may call
 * redis_conn_free(). */
typedef void redis_reply_fn(struct redis_conn *rc, struct redisReply *reply, void *data);

/* Connection state transitions; every member may be NULL. reason is one line naming the
 * server in redacted form ("redis redis://:***@127.0.0.1:6379/0: connection refused"),
 * borrowed for the call. Callbacks may call redis_conn_free(). */
struct redis_conn_events {
    /* Connected, authenticated, db selected: commands now go straight to the server. */
    void (*connected)(struct redis_conn *rc, void *data);
    /* A ready connection broke; in-flight and queued commands have been (or are being)
     * failed with a NULL reply, and a reconnect is scheduled. */
    void (*disconnected)(struct redis_conn *rc, const char *reason, void *data);
    /* An attempt failed before the connection became ready (refused, timed out, AUTH or
     * SELECT rejected); queued commands are failed, the next attempt is scheduled. */
    void (*connect_failed)(struct redis_conn *rc, const char *reason, void *data);
    /* Per attempt; 0 means REDIS_CONN_CONNECT_TIMEOUT_MS. */
    int connect_timeout_ms;
};

/* Creates the connection and schedules its first attempt on base (nothing happens until
 * the loop runs, so no callback runs inside this call). url and ev are copied; ev_data is
 * borrowed and passed to the event callbacks. Returns 0, -ENOTSUP (a rediss:// URL: TLS
 * connections are not implemented yet) or -ENOMEM. *ret is caller-freed with redis_conn_free(). */
int redis_conn_new(struct event_base *base, const struct redis_url *url,
                   const struct redis_conn_events *ev, void *ev_data, struct redis_conn **ret);

/* Cancels everything: pending commands are dropped WITHOUT calling their callbacks, timers
 * stop, the socket closes. No callback of this connection runs after it returns. Safe in
 * any state, from inside any of its callbacks, and with NULL. Returns NULL. */
struct redis_conn *redis_conn_free(struct redis_conn *rc);

/* Sends a command in hiredis's format: %s for a C string, %b for (pointer, size_t
 * length), %d/%lld etc. for numbers; each space-separated word is one argument. While the
 * connection is not ready the command waits in a queue and is sent once it is; if that
 * attempt fails, cb gets NULL. cb may be NULL (reply ignored). Returns 0, -EINVAL (a
 * malformed format), -ENOMEM or -ESHUTDOWN (called during redis_conn_free). */
int redis_conn_command(struct redis_conn *rc, redis_reply_fn *cb, void *data, const char *fmt, ...);

/* True between the "connected" and the next "disconnected" event. */
bool redis_conn_ready(const struct redis_conn *rc);

/* The last connection failure as one line, "" if none yet. Borrowed until the next
 * failure or redis_conn_free(). */
const char *redis_conn_last_error(const struct redis_conn *rc);

/* The server in redacted form ("redis://:***@127.0.0.1:6379/0"), for log lines. */
const char *redis_conn_display(const struct redis_conn *rc);

/* Sends a command built with resp.h, binary-safe (its bytes are copied; cmd stays the
 * caller's, to reuse or release). Otherwise like redis_conn_command(); -EINVAL for an
 * empty command, cmd->b.err when building it failed. */
int redis_conn_send(struct redis_conn *rc, redis_reply_fn *cb, void *data, struct resp_cmd *cmd);

/* A Lua script, identified on the server by its SHA1. Plain data, nothing to free. */
struct redis_script {
    const char *text; /* borrowed: the Lua source, must outlive the script (a constant) */
    char sha1[41];    /* lowercase hex SHA1 of text */
};

/* Fills s for text (which it borrows). Returns 0 or -EIO when OpenSSL fails. */
int redis_script_init(struct redis_script *s, const char *text);

/* Runs the script with argv[0..numkeys) as KEYS and the rest as ARGV (argvlen[i] bytes
 * each, or strlen when argvlen is NULL; argc may be 0): EVALSHA first, and on a NOSCRIPT
 * error (script cache empty after a restart or failover) the same call as EVAL, which
 * also caches it. The EVAL goes behind commands sent after the EVALSHA, so callers must
 * not rely on a script running before their later commands. Otherwise like
 * redis_conn_send(). Returns 0, -EINVAL (numkeys outside 0..argc), -ENOMEM or -ESHUTDOWN. */
int redis_conn_script(struct redis_conn *rc, const struct redis_script *s, redis_reply_fn *cb,
                      void *data, int numkeys, int argc, const char **argv, const size_t *argvlen);

/* The same with the script's keys and arguments built with resp.h: the first numkeys
 * arguments of args are KEYS. args stays the caller's. */
int redis_conn_script_send(struct redis_conn *rc, const struct redis_script *s,
                           redis_reply_fn *cb, void *data, int numkeys, struct resp_cmd *args);

/* Words a Redis or hiredis error message (msg, borrowed; NULL or "" reads "unknown error")
 * for a one-line error into buf: a script error's "script: <sha1>, on @user_script:<n>"
 * tail cut, a capitalised first word ("Connection refused") lowered, error codes
 * ("WRONGTYPE") kept, no final period. */
void redis_error_text(char *buf, size_t size, const char *msg);

/* Blocking connection for the command line: connects within timeout_ms (which also
 * becomes the timeout of each later command), then AUTH and SELECT. On failure returns
 * -ENOTCONN (cannot connect), -EACCES (AUTH rejected), -EIO (SELECT rejected or the
 * server broke off), -ENOTSUP (rediss://) or -ENOMEM with one line in eb naming the redacted
 * server, e.g. "redis redis://:***@127.0.0.1:6379/0: auth failed: WRONGPASS invalid
 * username-password pair or user is disabled". *ret is caller-freed with redisFree(). */
int redis_connect_sync(const struct redis_url *url, int timeout_ms, struct redisContext **ret,
                       struct errbuf *eb);
