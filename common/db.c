/* db.c - see db.h. */
#include "db.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int r = -EIO;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		r = 0;
	}
out:
	sqlite3_finalize(st);
	return r;
}

int db_open(const char *path, int flags, sqlite3 **out, char *err, size_t errlen)
{
	int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW;
	sqlite3 *db = NULL;
	int64_t v;
	int rc;

	*out = NULL;
	if (flags & DB_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &db, oflags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "PGW_DB: cannot open '%s': %s%s", path,
			 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
			 (flags & DB_CREATE) ? "" : " (run 'pgwctl migrate' to create it)");
		sqlite3_close(db);
		return -ENOENT;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
	/* The first read of the file: a non-SQLite or damaged header fails here. */
	if (pragma_int(db, "PRAGMA user_version", &v) < 0) {
		snprintf(err, errlen, "PGW_DB: '%s' is not a pgw database or is corrupt: %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return -EINVAL;
	}
	if (db_exec(db, "PRAGMA journal_mode=WAL") < 0 || db_exec(db, "PRAGMA foreign_keys=ON") < 0 ||
	    db_exec(db, "PRAGMA synchronous=NORMAL") < 0) {
		snprintf(err, errlen, "PGW_DB: cannot configure '%s': %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return -EIO;
	}
	*out = db;
	return 0;
}

void db_close(sqlite3 *db)
{
	if (db)
		sqlite3_close_v2(db);
}

void db_brief_wait(sqlite3 *db, int brief)
{
	sqlite3_busy_timeout(db, brief ? DB_BRIEF_WAIT_MS : DB_BUSY_TIMEOUT_MS);
}

int db_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("db: %s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int db_begin(sqlite3 *db)
{
	return db_exec(db, "BEGIN IMMEDIATE");
}
int db_commit(sqlite3 *db)
{
	return db_exec(db, "COMMIT");
}

void db_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int db_read_begin(sqlite3 *db, char *err, size_t errlen)
{
	if (!sqlite3_get_autocommit(db)) { /* the caller's own: neither joined nor ended here */
		snprintf(err, errlen, "a transaction is open already");
		return -EIO;
	}
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		db_rollback(db);
		return -EIO;
	}
	return 0;
}

void db_read_end(sqlite3 *db)
{
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		db_rollback(db);
}

int db_user_version(sqlite3 *db, int *out)
{
	int64_t v = 0;
	int r = pragma_int(db, "PRAGMA user_version", &v);

	if (r == 0)
		*out = (int)v;
	return r;
}

long long db_query_int(sqlite3 *db, const char *sql, long long def)
{
	int64_t v;

	return pragma_int(db, sql, &v) == 0 ? (long long)v : def;
}

long long db_query_int1(sqlite3 *db, const char *sql, int64_t arg, long long def)
{
	sqlite3_stmt *st = NULL;
	long long v = def;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, arg);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
			v = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return v;
}

long long db_query_text_int(sqlite3 *db, const char *sql, const char *arg, long long def)
{
	sqlite3_stmt *st = NULL;
	long long v = def;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
			v = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return v;
}

int db_data_version(sqlite3 *db, int64_t *out)
{
	return pragma_int(db, "PRAGMA data_version", out);
}

/* Copy all of src's main database into dst's in one step. */
int db_copy(sqlite3 *dst, sqlite3 *src)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	int rc;

	if (!b)
		return -EIO;
	rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	return rc == SQLITE_DONE ? 0 : -EIO;
}
