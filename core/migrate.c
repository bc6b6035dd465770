/* The migrations runner: lists schemas/sql/NNN_name.sql, and applies the ones that
 * maintq.schema_migrations lacks, one transaction per file. The bookkeeping table is
 * created inside the first file's transaction, so a database whose first migration fails
 * is left exactly as it was, not with an empty maintq schema. Files are sent whole through
 * the simple query protocol (several statements in one PQexec), so they must not hold
 * their own BEGIN/COMMIT or statements that refuse a transaction (CREATE INDEX
 * CONCURRENTLY). */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "parse.h"

/* "maintq" 0x00 0x01 as a big-endian bigint: one key for every maintq migrate. */
#define MIGRATE_ADVISORY_KEY "7881696745995960321"
/* How long a migrate waits for another one to finish. */
#define MIGRATE_WAIT_TIMEOUT "60s"

static const char bootstrap_sql[] = "CREATE SCHEMA IF NOT EXISTS maintq;"
                                    "CREATE TABLE IF NOT EXISTS maintq.schema_migrations ("
                                    " version integer PRIMARY KEY,"
                                    " name text NOT NULL,"
                                    " applied_at timestamptz NOT NULL DEFAULT now())";

/* Splits "NNN_name.sql" into its version. Returns 1 for a migration name, 0 for a file to
 * ignore (not *.sql, hidden), -EINVAL for a .sql file named wrongly. */
static int parse_name(const char *name, int *ret_version)
{
    size_t len = strlen(name), digits = strspn(name, "0123456789");
    char num[16];
    int64_t v;

    if (name[0] == '.' || len < 4 || strcmp(name + len - 4, ".sql") != 0)
        return 0;
    if (digits == 0 || digits >= sizeof(num) || name[digits] != '_' || digits + 1 == len - 4)
        return -EINVAL;
    for (size_t i = digits + 1; i < len - 4; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", name[i]))
            return -EINVAL;
    memcpy(num, name, digits);
    num[digits] = '\0';
    if (parse_int64(num, 1, INT32_MAX, &v) < 0)
        return -EINVAL;
    *ret_version = (int)v;
    return 1;
}

static int cmp_version(const void *a, const void *b)
{
    const struct migrate_file *x = a, *y = b;

    return (x->version > y->version) - (x->version < y->version);
}

int migrate_scan(const char *dir, struct migrate_file **ret_files, size_t *ret_n, struct errbuf *eb)
{
    struct migrate_file *files = NULL; /* owned until handed to *ret_files */
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d;
    int r;

    d = opendir(dir);
    if (!d) {
        r = -errno;
        errbuf_set(eb, "%s: %s", dir, strerror(errno));
        return r;
    }
    while ((de = readdir(d))) {
        int version;

        r = parse_name(de->d_name, &version);
        if (r == 0)
            continue;
        if (r < 0) {
            errbuf_set(eb, "%s: a migration is named NNN_name.sql (digits, _, letters)",
                       de->d_name);
            goto fail;
        }
        if (strlen(de->d_name) >= MIGRATE_NAME_MAX) {
            r = -EINVAL;
            errbuf_set(eb, "%.60s...: name longer than %d bytes", de->d_name, MIGRATE_NAME_MAX - 1);
            goto fail;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct migrate_file *nf = realloc(files, ncap * sizeof(*nf));

            if (!nf) {
                r = -ENOMEM;
                errbuf_set(eb, "out of memory");
                goto fail;
            }
            files = nf;
            cap = ncap;
        }
        files[n].version = version;
        snprintf(files[n].name, sizeof(files[n].name), "%s", de->d_name);
        n++;
    }
    closedir(d);
    d = NULL;
    if (n > 0)
        qsort(files, n, sizeof(*files), cmp_version);
    for (size_t i = 1; i < n; i++) {
        if (files[i].version == files[i - 1].version) {
            r = -EINVAL;
            errbuf_set(eb, "%s and %s: two migrations with version %d", files[i - 1].name,
                       files[i].name, files[i].version);
            goto fail;
        }
    }
    *ret_files = files;
    *ret_n = n;
    return 0;
fail:
    if (d)
        closedir(d);
    free(files);
    return r;
}

/* Reads dir/name whole, NUL-terminated. Caller frees *ret_text with free(). */
static int read_file(const char *dir, const char *name, char **ret_text, struct errbuf *eb)
{
    char path[4096];
    char *text = NULL; /* owned until handed to *ret_text */
    struct stat st;
    size_t got = 0;
    int fd = -1, r;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        r = -errno;
        errbuf_set(eb, "%s: %s", name, strerror(errno));
        goto fail;
    }
    if (st.st_size > MIGRATE_FILE_MAX) {
        r = -E2BIG;
        errbuf_set(eb, "%s: larger than %d bytes", name, MIGRATE_FILE_MAX);
        goto fail;
    }
    text = malloc((size_t)st.st_size + 1);
    if (!text) {
        r = -ENOMEM;
        errbuf_set(eb, "out of memory");
        goto fail;
    }
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, text + got, (size_t)st.st_size - got);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = -errno;
            errbuf_set(eb, "%s: %s", name, strerror(errno));
            goto fail;
        }
        if (k == 0)
            break; /* shrank while reading: use what is there */
        got += (size_t)k;
    }
    text[got] = '\0';
    if (strlen(text) != got) {
        /* PQexec would silently stop at the NUL and apply half the file. */
        r = -EINVAL;
        errbuf_set(eb, "%s: contains a NUL byte", name);
        goto fail;
    }
    close(fd);
    *ret_text = text;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    free(text);
    return r;
}

/* Line of the 1-based character position pos in text (PostgreSQL counts characters, and
 * the text is UTF-8, so continuation bytes do not count). */
static long line_of(const char *text, long pos)
{
    long line = 1, chars = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p & 0xC0) == 0x80)
            continue;
        if (++chars >= pos)
            break;
        if (*p == '\n')
            line++;
    }
    return line;
}

/* Fills eb with "what: message" from a failed result, or from the connection when there
 * is no result (a broken connection). text, when given, is the statement that failed:
 * the error's position becomes a line number in it. */
static void set_pg_error(struct errbuf *eb, const char *what, PGconn *conn, const PGresult *res,
                         const char *text)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
    int64_t p;

    if (!msg) {
        msg = PQerrorMessage(conn);
        if (!msg || !*msg)
            msg = "no answer from the server";
    }
    if (text && pos && parse_int64(pos, 1, INT64_MAX, &p) == 0)
        errbuf_set(eb, "%s: %.*s (line %ld)", what, (int)strcspn(msg, "\n"), msg,
                   line_of(text, (long)p));
    else
        errbuf_set(eb, "%s: %.*s", what, (int)strcspn(msg, "\n"), msg);
}

/* Runs sql (no parameters); 0 or -EIO with eb set. */
static int exec_sql(PGconn *conn, const char *sql, const char *what, const char *text,
                    struct errbuf *eb)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int r = 0;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        set_pg_error(eb, what, conn, res, text);
        r = -EIO;
    }
    PQclear(res);
    return r;
}

/* Versions listed in schema_migrations, ascending; none when the table does not exist
 * yet. Caller frees *ret_versions with free(). */
static int applied_versions(PGconn *conn, int **ret_versions, size_t *ret_n, struct errbuf *eb)
{
    PGresult *res;
    int *v = NULL;
    int n, r = 0;

    res = PQexec(conn, "SELECT to_regclass('maintq.schema_migrations') IS NOT NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        set_pg_error(eb, "schema_migrations", conn, res, NULL);
        PQclear(res);
        return -EIO;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        PQclear(res);
        *ret_versions = NULL;
        *ret_n = 0;
        return 0;
    }
    PQclear(res);
    res = PQexec(conn, "SELECT version FROM maintq.schema_migrations ORDER BY version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        set_pg_error(eb, "schema_migrations", conn, res, NULL);
        r = -EIO;
        goto out;
    }
    n = PQntuples(res);
    v = calloc((size_t)n + 1, sizeof(*v));
    if (!v) {
        errbuf_set(eb, "out of memory");
        r = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        int64_t x;

        if (parse_int64(PQgetvalue(res, i, 0), INT32_MIN, INT32_MAX, &x) < 0) {
            errbuf_set(eb, "schema_migrations: unexpected version \"%.20s\"",
                       PQgetvalue(res, i, 0));
            r = -EIO;
            goto out;
        }
        v[i] = (int)x;
    }
    *ret_versions = v;
    *ret_n = (size_t)n;
    v = NULL;
out:
    free(v);
    PQclear(res);
    return r;
}

static bool contains(const int *v, size_t n, int x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

/* Applies one file in its own transaction; on failure rolls back and returns -EIO. */
static int apply_one(PGconn *conn, const struct migrate_file *f, const char *text,
                     struct errbuf *eb)
{
    char version[16];
    const char *params[2] = {version, f->name};
    PGresult *res;
    int r;

    r = exec_sql(conn, "BEGIN", f->name, NULL, eb);
    if (r < 0)
        return r;
    /* client_min_messages: libpq would print the NOTICEs ("schema \"maintq\" already
     * exists, skipping") on the caller's stderr. */
    r = exec_sql(conn,
                 "SET LOCAL lock_timeout = '" MIGRATE_LOCK_TIMEOUT "';"
                 "SET LOCAL client_min_messages = warning",
                 f->name, NULL, eb);
    if (r < 0)
        goto fail;
    r = exec_sql(conn, bootstrap_sql, "schema_migrations", NULL, eb);
    if (r < 0)
        goto fail;
    r = exec_sql(conn, text, f->name, text, eb);
    if (r < 0)
        goto fail;
    snprintf(version, sizeof(version), "%d", f->version);
    res = PQexecParams(conn, "INSERT INTO maintq.schema_migrations (version, name) VALUES ($1, $2)",
                       2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_pg_error(eb, f->name, conn, res, NULL);
        PQclear(res);
        r = -EIO;
        goto fail;
    }
    PQclear(res);
    /* COMMIT can still fail (deferred constraints, a broken connection). */
    return exec_sql(conn, "COMMIT", f->name, NULL, eb);
fail:
    PQclear(PQexec(conn, "ROLLBACK"));
    return r;
}

int migrate_apply(PGconn *conn, const char *dir,
                  void (*on_applied)(const char *name, int version, void *userdata), void *userdata,
                  int *ret_version, int *ret_applied, struct errbuf *eb)
{
    struct migrate_file *files = NULL; /* owned */
    int *done = NULL;                  /* owned: versions already applied */
    size_t nfiles = 0, ndone = 0;
    char *text = NULL; /* owned: the current file */
    bool locked = false;
    int top = 0, applied = 0, r;

    r = migrate_scan(dir, &files, &nfiles, eb);
    if (r < 0)
        goto out;
    /* Session-level lock, held across the per-file transactions; a second migrate waits
     * for it, bounded so that a stuck one does not hang the other forever. */
    r = exec_sql(conn,
                 "SET lock_timeout = '" MIGRATE_WAIT_TIMEOUT "';"
                 "SELECT pg_advisory_lock(" MIGRATE_ADVISORY_KEY ");"
                 "RESET lock_timeout",
                 "waiting for another migrate", NULL, eb);
    if (r < 0)
        goto out;
    locked = true;
    r = applied_versions(conn, &done, &ndone, eb);
    if (r < 0)
        goto out;
    if (ndone > 0)
        top = done[ndone - 1];
    for (size_t i = 0; i < nfiles; i++) {
        if (contains(done, ndone, files[i].version))
            continue;
        r = read_file(dir, files[i].name, &text, eb);
        if (r < 0)
            goto out;
        r = apply_one(conn, &files[i], text, eb);
        free(text);
        text = NULL;
        if (r < 0)
            goto out;
        applied++;
        if (files[i].version > top)
            top = files[i].version;
        if (on_applied)
            on_applied(files[i].name, files[i].version, userdata);
    }
    *ret_version = top;
    *ret_applied = applied;
    r = 0;
out:
    if (locked)
        PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATE_ADVISORY_KEY ")"));
    free(text);
    free(done);
    free(files);
    return r;
}
