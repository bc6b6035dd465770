/* Blocking Redis and PostgreSQL connections for the maintq command line. */
#include "cli_conn.h"

#include "resp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "errbuf.h"
#include "resp.h"
#include "url.h"

int cli_redis_open(const char *cmd, const char *url, redisContext **ret)
{
    struct redis_url u;
    struct errbuf eb = {{0}};

    if (!url)
        url = getenv("MAINTQ_REDIS_URL");
    if (!url || !*url) {
        cli_error(cmd, "no Redis: give --redis-url or set MAINTQ_REDIS_URL");
        return -1;
    }
    if (redis_url_parse(url, &u, &eb) < 0 ||
        redis_connect_sync(&u, CLI_CONNECT_TIMEOUT_MS, ret, &eb) < 0) {
        cli_error(cmd, "%s", eb.msg);
        return -1;
    }
    return 0;
}

int cli_pg_open(const char *cmd, const char *conninfo, PGconn **ret)
{
    /* connect_timeout first: a value in the expanded conninfo overrides it. */
    const char *keys[] = {"connect_timeout", "dbname", "application_name", NULL};
    const char *vals[] = {"5", NULL, "maintq", NULL};
    char shown[512];
    PGconn *conn;

    if (!conninfo)
        conninfo = getenv("MAINTQ_DATABASE_URL");
    if (!conninfo || !*conninfo) {
        cli_error(cmd, "no PostgreSQL: give --database-url or set MAINTQ_DATABASE_URL");
        return -1;
    }
    vals[1] = conninfo;
    if (pg_conninfo_redact(conninfo, shown, sizeof(shown)) < 0) {
        cli_error(cmd, "database url: not a libpq connection string or URI");
        return -1;
    }
    conn = PQconnectdbParams(keys, vals, 1);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        const char *msg = conn ? PQerrorMessage(conn) : "out of memory";

        cli_error(cmd, "postgres %s: %.*s", shown, (int)strcspn(msg, "\n"), msg);
        PQfinish(conn);
        return -1;
    }
    *ret = conn;
    return 0;
}

redisReply *cli_redis_script(redisContext *ctx, const struct redis_script *s, int numkeys,
                             struct resp_cmd *args)
{
    char nk[16];
    const char *lead[] = {"EVALSHA", s->sha1, nk};

    snprintf(nk, sizeof(nk), "%d", numkeys);
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *cmd;
        size_t len;
        void *rp = NULL;
        redisReply *reply;

        if (resp_cmd_encode(args, 3, lead, &cmd, &len) < 0 ||
            redisAppendFormattedCommand(ctx, cmd, len) != REDIS_OK ||
            redisGetReply(ctx, &rp) != REDIS_OK)
            return NULL;
        reply = rp;
        if (attempt > 0 || !reply || reply->type != REDIS_REPLY_ERROR ||
            strncmp(reply->str, "NOSCRIPT", 8) != 0)
            return reply;
        /* Not cached (a restart or SCRIPT FLUSH): load it, then the same call again. */
        freeReplyObject(reply);
        reply = redisCommand(ctx, "SCRIPT LOAD %s", s->text);
        if (!reply || reply->type == REDIS_REPLY_ERROR)
            return reply;
        freeReplyObject(reply);
    }
    return NULL;
}
