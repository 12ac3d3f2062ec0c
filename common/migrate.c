/* migrate.c - see migrate.h. */
#include "migrate.h"

#include "db.h"

#include <errno.h>
#include <stdio.h>

int migrate_latest(const struct migration *list, size_t n)
{
	return n ? list[n - 1].version : 0;
}

int migrate_run(sqlite3 *db, const struct migration *list, size_t n, int target, int *from, int *to, char *err,
		size_t errlen)
{
	int latest = migrate_latest(list, n), cur;
	char *msg = NULL, sql[64];

	if (target < 0)
		target = latest;
	if (db_user_version(db, &cur) < 0) {
		snprintf(err, errlen, "cannot read schema version: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	*from = *to = cur;
	if (cur > latest) {
		snprintf(
		    err, errlen,
		    "database schema version %d is newer than this pgw knows (%d); upgrade pgw or restore a backup",
		    cur, latest);
		return -EPROTO;
	}
	for (size_t i = 0; i < n; i++) {
		const struct migration *m = &list[i];

		if (m->version <= cur || m->version > target)
			continue;
		if (db_begin(db) < 0) {
			snprintf(err, errlen, "migration %04d_%s: cannot begin: %s", m->version, m->name,
				 sqlite3_errmsg(db));
			return -EIO;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", m->version);
		if (sqlite3_exec(db, m->sql, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errlen, "migration %04d_%s failed: %s", m->version, m->name,
				 msg ? msg : sqlite3_errmsg(db));
			sqlite3_free(msg);
			db_rollback(db);
			return -EIO;
		}
		if (db_commit(db) < 0) {
			snprintf(err, errlen, "migration %04d_%s: commit failed: %s", m->version, m->name,
				 sqlite3_errmsg(db));
			db_rollback(db);
			return -EIO;
		}
		cur = m->version;
		*to = cur;
	}
	return 0;
}

int migrate_check_schema(sqlite3 *db, char *err, size_t errlen)
{
	int have = 0, known = migrate_latest(migrations_builtin, migrations_builtin_count);

	if (db_user_version(db, &have) < 0) {
		snprintf(err, errlen, "PGW_DB: cannot read schema version: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	if (have > known) {
		snprintf(err, errlen,
			 "PGW_DB: database schema version %d is newer than this pgw knows (%d); upgrade pgw or restore "
			 "a backup",
			 have, known);
		return -EPROTO;
	}
	if (have < known) {
		snprintf(err, errlen, "PGW_DB: database schema version %d is older than %d; run 'pgwctl migrate'", have,
			 known);
		return -EPROTO;
	}
	return 0;
}
