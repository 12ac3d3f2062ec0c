/* pgwctl restore - replace the database with a backup (upgraded if older), then tell the
 * daemons to reload everything. */
#include "pgwctl.h"

#include "db.h"
#include "migrate.h"
#include "notify.h"

#include <stdio.h>
#include <string.h>

/* SQLite's own check of every page and index of the backup: 0 when it is whole, else 1 with its
 * first finding in err (a damaged file would otherwise replace a good database). */
static int damaged(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int bad = 1;

	snprintf(err, errlen, "%s", "cannot be checked");
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check(1)", -1, &st, NULL) == SQLITE_OK) {
		int rc = sqlite3_step(st);
		const char *v = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : sqlite3_errmsg(db);
		bad = rc != SQLITE_ROW || !v || strcmp(v, "ok") != 0;
		snprintf(err, errlen, "%.200s", v ? v : "cannot be checked");
		for (char *p = err; (p = strchr(p, '\n'));)
			*p = ' '; /* its finding on one line */
	}
	sqlite3_finalize(st);
	return bad;
}

int cmd_restore(struct ctl *c, int argc, char **argv)
{
	char err[512];
	sqlite3 *in = NULL;
	int from, to, ver, r = CTL_FAIL;

	if (argc != 2) {
		fprintf(stderr, "usage: pgwctl restore FILE\n");
		return CTL_USAGE;
	}
	if (sqlite3_open_v2(argv[1], &in, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK || db_user_version(in, &ver) < 0) {
		fprintf(stderr, "pgwctl: '%s' is not a pgw backup: %s\n", argv[1],
			in ? sqlite3_errmsg(in) : "cannot open");
		goto out;
	}
	if (damaged(in, err, sizeof(err))) {
		fprintf(stderr, "pgwctl: '%s' is damaged (%s); nothing was restored\n", argv[1], err);
		goto out;
	}
	if (ver < 1 || ver > migrate_latest(migrations_builtin, migrations_builtin_count)) {
		fprintf(stderr, "pgwctl: '%s' has schema version %d; this pgw restores versions 1 to %d\n", argv[1],
			ver, migrate_latest(migrations_builtin, migrations_builtin_count));
		goto out;
	}
	if (db_open(c->db_path, DB_CREATE, &c->db, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: %s\n", err);
		goto out;
	}
	if (db_copy(c->db, in) < 0) {
		fprintf(stderr, "pgwctl: restore failed, database unchanged: %s\n", sqlite3_errmsg(c->db));
		goto out;
	}
	if (db_exec(c->db, "PRAGMA journal_mode=WAL") < 0 ||
	    migrate_run(c->db, migrations_builtin, migrations_builtin_count, -1, &from, &to, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: restored, but the upgrade failed: %s\n", err);
		goto out;
	}
	/* the HA role and configuration version are this node's, not the backup's: a master's dump
	 * restored on its peer must not make two masters of one origin */
	db_exec(c->db, "UPDATE main.ha_state SET role = '', origin = lower(hex(randomblob(8))), synced_at_ms = 0, "
		       "in_sync_at_ms = 0, sync_error = ''");
	ctl_audit(c, "database.restore", "database", argv[1], NULL);
	ctl_notify(c, ~0u);
	printf("restored %s (schema version %d%s)\n", argv[1], to, from != to ? ", upgraded" : "");
	r = CTL_OK;
out:
	if (in)
		sqlite3_close(in);
	return r;
}
