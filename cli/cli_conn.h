/* Connections of the command line: Redis and PostgreSQL from a flag or the MAINTQ_*
 * environment, with one-line errors that name the (password-redacted) server. */
#pragma once

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "redis.h"

#define CLI_CONNECT_TIMEOUT_MS 5000

/* url: the --redis-url value or NULL for $MAINTQ_REDIS_URL. Prints the error as
 * "maintq CMD: ..." and returns -1, or returns 0 with *ret (free with redisFree()). */
int cli_redis_open(const char *cmd, const char *url, redisContext **ret);

/* conninfo: the --database-url value or NULL for $MAINTQ_DATABASE_URL. A connect timeout
 * of 5 s applies unless the conninfo sets its own. Prints the error and returns -1, or
 * returns 0 with *ret (free with PQfinish()). */
int cli_pg_open(const char *cmd, const char *conninfo, PGconn **ret);

/* Runs a Lua script: EVALSHA, then EVAL when the server does not know it. Returns the
 * reply (caller frees with freeReplyObject()) or NULL on a connection error. */
redisReply *cli_redis_script(redisContext *ctx, const struct redis_script *s, int numkeys,
                             int argc, const char **argv, const size_t *argvlen);
