/* testlib.h - helpers shared by the cmocka unit tests: temp dirs, a migrated DB, an env map. */
#ifndef PGW_TESTLIB_H
#define PGW_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include "db.h"
#include "migrate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh directory under TMPDIR; removed by tl_rmdir. */
static inline char *tl_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p = malloc(256);

	snprintf(p, 256, "%s/pgwtest.XXXXXX", base && *base ? base : "/tmp");
	assert_non_null(mkdtemp(p));
	return p;
}

static inline void tl_rmdir(char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

/* Open dir/name (created) and migrate it to the latest schema. */
static inline sqlite3 *tl_db(const char *dir, const char *name)
{
	char path[400], err[512];
	sqlite3 *db = NULL;
	int from, to;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(db_open(path, DB_CREATE, &db, err, sizeof(err)), 0);
	assert_int_equal(
	    migrate_run(db, migrations_builtin, migrations_builtin_count, -1, &from, &to, err, sizeof(err)), 0);
	return db;
}

/* Run SQL, return the sqlite result code (SQLITE_OK or the error). */
static inline int tl_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* The first column of the first row, an integer (-1 for no row). A text there fails the test:
 * SQLite would read "2,3" as 2 and "abc" as 0, and a check could pass on anything (tl_str). */
static inline long long tl_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW) {
		assert_true(sqlite3_column_type(st, 0) == SQLITE_INTEGER || sqlite3_column_type(st, 0) == SQLITE_NULL);
		v = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return v;
}

/* The first column of the first row as a string (malloc'd; "" for none or NULL): the caller's. */
static inline char *tl_str(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	char *v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	v = strdup(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)
		       ? (const char *)sqlite3_column_text(st, 0)
		       : "");
	sqlite3_finalize(st);
	return v;
}

/* The main database's bytes (sqlite3_serialize: malloc'd, free with sqlite3_free), *n their
 * size: two images are the same when nothing in the database changed, whatever the table. */
static inline unsigned char *tl_image(sqlite3 *db, sqlite3_int64 *n)
{
	unsigned char *p = sqlite3_serialize(db, "main", n, 0);

	assert_non_null(p);
	return p;
}

/* db's image is still (was, n) (then freed). */
static inline void tl_image_unchanged(sqlite3 *db, unsigned char *was, sqlite3_int64 n)
{
	sqlite3_int64 m;
	unsigned char *now = tl_image(db, &m);

	assert_int_equal(m, n);
	assert_memory_equal(now, was, (size_t)n);
	sqlite3_free(now);
	sqlite3_free(was);
}

/* A tiny environment for config_load: NAME=VALUE strings, NULL-terminated. */
static inline const char *tl_env_get(const char *name, void *ctx)
{
	const char **kv = ctx;
	size_t len = strlen(name);

	for (; kv && *kv; kv++)
		if (strncmp(*kv, name, len) == 0 && (*kv)[len] == '=')
			return *kv + len + 1;
	return NULL;
}

#endif
