/* Connections of the command line: Redis and PostgreSQL from a flag or the MAINTQ_*
 * environment, with one-line errors that name the (password-redacted) server. */
#pragma once

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "redis.h"

struct resp_cmd;

#define CLI_CONNECT_TIMEOUT_MS 5000

/* url: the --redis-url value or NULL for $MAINTQ_REDIS_URL. Prints the error as
 * "maintq CMD: ..." and returns -1, or returns 0 with *ret (free with redisFree()). */
int cli_redis_open(const char *cmd, const char *url, redisContext **ret);

/* conninfo: the --database-url value or NULL for $MAINTQ_DATABASE_URL. A connect timeout
 * of 5 s applies unless the conninfo sets its own. Prints the error and returns -1, or
 * returns 0 with *ret (free with PQfinish()). */
int cli_pg_open(const char *cmd, const char *conninfo, PGconn **ret);

/* Runs a Lua script with args (the first numkeys of them are KEYS; args stays the
 * caller's): EVALSHA, and when the server does not have the script, SCRIPT LOAD and
 * EVALSHA again. Returns the reply (caller frees with freeReplyObject()) or NULL on a
 * connection error (ctx->errstr) or when building the command ran out of memory. */
redisReply *cli_redis_script(redisContext *ctx, const struct redis_script *s, int numkeys,
                             struct resp_cmd *args);
