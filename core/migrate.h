/* SQL migrations: the files schemas/sql/NNN_name.sql, applied in version order, each in
 * its own transaction and recorded in maintq.schema_migrations, so applying twice is a
 * no-op and a failing file leaves the database as it was. A session advisory lock
 * serialises concurrent runs (two `maintq migrate` at once: the second waits, then finds
 * nothing to do). Never prints: errors come back in a struct errbuf. */
#pragma once

#include <stddef.h>

#include <libpq-fe.h>

struct errbuf;

#define MIGRATE_NAME_MAX 128
/* Largest migration file read, in bytes. */
#define MIGRATE_FILE_MAX (4 * 1024 * 1024)
/* How long a statement of a migration may wait for a table lock before the file fails
 * (a migration must not queue behind a long query while blocking everyone behind it). */
#define MIGRATE_LOCK_TIMEOUT "10s"

struct migrate_file {
    int version;                 /* the NNN prefix, >= 1 */
    char name[MIGRATE_NAME_MAX]; /* file name without folder, e.g. "001_init.sql" */
};

/* Lists the migrations in dir: every "*.sql" whose name is digits, "_", a name, ".sql";
 * other files are ignored, so a README may sit beside them. Sorted by version. Returns 0
 * with *ret_files (caller frees with free(); NULL when there is none) and *ret_n, or
 * -ENOENT/-EACCES/-ENOTDIR (dir unreadable), -EINVAL (a .sql file without a version
 * prefix, a name too long, or two files with one version: eb names them), -ENOMEM. */
int migrate_scan(const char *dir, struct migrate_file **ret_files, size_t *ret_n,
                 struct errbuf *eb);

/* Applies, in order, every migration of dir that schema_migrations does not list.
 * on_applied (may be NULL) runs after each file committed; name is borrowed for the call.
 * conn is borrowed, connected, and not inside a transaction. Returns 0 with *ret_version
 * (the highest version now applied, 0 for none) and *ret_applied (files applied by this
 * call), or a negative errno with eb holding one line: migrate_scan's errors, -EIO for a
 * file the server rejected ("002_add.sql: syntax error at or near \"TABLE\" (line 3)") or
 * a broken connection, -E2BIG for a file over MIGRATE_FILE_MAX. A failed file is rolled
 * back and the files after it are not tried; the ones before it stay applied. */
int migrate_apply(PGconn *conn, const char *dir,
                  void (*on_applied)(const char *name, int version, void *userdata), void *userdata,
                  int *ret_version, int *ret_applied, struct errbuf *eb);
