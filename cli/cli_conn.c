/* Blocking Redis and PostgreSQL connections for the maintq command line. */
#include "cli_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "errbuf.h"
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
                             int argc, const char **argv, const size_t *argvlen)
{
    const char **av = calloc((size_t)argc + 3, sizeof(*av));
    size_t *lens = calloc((size_t)argc + 3, sizeof(*lens));
    char nk[16];
    redisReply *reply = NULL;

    if (!av || !lens)
        goto out;
    snprintf(nk, sizeof(nk), "%d", numkeys);
    av[0] = "EVALSHA";
    av[1] = s->sha1;
    av[2] = nk;
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(av[i]);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        lens[i + 3] = argvlen[i];
    }
    reply = redisCommandArgv(ctx, argc + 3, av, lens);
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(reply);
        av[0] = "EVAL";
        av[1] = s->text;
        lens[0] = 4;
        lens[1] = strlen(s->text);
        reply = redisCommandArgv(ctx, argc + 3, av, lens);
    }
out:
    free(av);
    free(lens);
    return reply;
}
