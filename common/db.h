/* db.h - the shared SQLite state DB: WAL, busy timeout, foreign keys, schema version checks. */
#ifndef PGW_DB_H
#define PGW_DB_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define DB_BUSY_TIMEOUT_MS 5000
#define DB_BRIEF_WAIT_MS   50 /* a loop that must not stall behind another process's write lock */

enum db_open_flags { DB_CREATE = 1 };

/* Open path, set WAL, busy timeout and foreign keys, and make sure it is a readable SQLite
 * file. On error returns -errno-like code with a message in err. */
int db_open(const char *path, int flags, sqlite3 **out, char *err, size_t errlen);
void db_close(sqlite3 *db);
/* brief 1: another process's lock is waited for DB_BRIEF_WAIT_MS only (writes then fail with
 * SQLITE_BUSY, to be tried again later); brief 0: DB_BUSY_TIMEOUT_MS again. */
void db_brief_wait(sqlite3 *db, int brief);

/* Static SQL only (no user values): 0 or -EIO with the error logged. */
int db_exec(sqlite3 *db, const char *sql);
int db_begin(sqlite3 *db); /* BEGIN IMMEDIATE: takes the write lock now */
int db_commit(sqlite3 *db);
void db_rollback(sqlite3 *db);
/* A read transaction: every read until db_read_end comes from one snapshot. Its first read is
 * made here, so a DB that cannot be read (locked past the busy wait, unreadable) fails now, once,
 * not at each later read: -EIO with SQLite's message in err, and no transaction left open (one
 * the caller had open already: -EIO, and that one left alone). */
int db_read_begin(sqlite3 *db, char *err, size_t errlen);
void db_read_end(sqlite3 *db); /* COMMIT, else ROLLBACK: never left open (read only: nothing lost) */

int db_user_version(sqlite3 *db, int *out);
/* The first column of the first row of a static query (no user values), or def. */
long long db_query_int(sqlite3 *db, const char *sql, long long def);
/* The same with one integer bound to ?1 (an id), or def. */
long long db_query_int1(sqlite3 *db, const char *sql, int64_t arg, long long def);
/* The same with one text bound to ?1 (a name), or def. */
long long db_query_text_int(sqlite3 *db, const char *sql, const char *arg, long long def);
/* Changes whenever another connection commits (the polling fallback's signal). */
int db_data_version(sqlite3 *db, int64_t *out);

/* Copy all of src's main database into dst's in one step (SQLite online backup). */
int db_copy(sqlite3 *dst, sqlite3 *src);

#endif
