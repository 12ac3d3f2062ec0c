/* pgwctl migrate - create the database or bring it to the schema this build knows. */
#include "pgwctl.h"

#include "db.h"
#include "migrate.h"
#include "notify.h"
#include "settings.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int integrity_ok(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ok = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		const char *res = (const char *)sqlite3_column_text(st, 0);
		ok = res && strcmp(res, "ok") == 0;
		if (!ok)
			snprintf(err, errlen, "integrity check failed: %s", res ? res : "?");
	} else {
		snprintf(err, errlen, "integrity check failed: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	return ok;
}

int cmd_migrate(struct ctl *c, int argc, char **argv)
{
	char err[512], dir[4096];
	int from, to;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: pgwctl migrate\n");
		return CTL_USAGE;
	}
	snprintf(dir, sizeof(dir), "%s", c->db_path);
	if (mkdir(dirname(dir), 0750) < 0 && errno != EEXIST) {
		fprintf(stderr, "pgwctl: cannot create the directory of '%s': %s\n", c->db_path, strerror(errno));
		return CTL_FAIL;
	}
	if (db_open(c->db_path, DB_CREATE, &c->db, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: %s\n", err);
		return CTL_FAIL;
	}
	if (!integrity_ok(c->db, err, sizeof(err))) {
		fprintf(stderr, "pgwctl: PGW_DB: '%s' is corrupt: %s; restore a backup\n", c->db_path, err);
		return CTL_FAIL;
	}
	if (migrate_run(c->db, migrations_builtin, migrations_builtin_count, -1, &from, &to, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: %s\n", err);
		return CTL_FAIL;
	}
	if (settings_seed(c->db, &c->cfg) < 0) {
		fprintf(stderr, "pgwctl: cannot seed settings: %s\n", sqlite3_errmsg(c->db));
		return CTL_FAIL;
	}
	chmod(c->db_path, 0640);
	if (from == to) {
		printf("database %s is at schema version %d; nothing to do\n", c->db_path, to);
	} else {
		printf("database %s migrated from schema version %d to %d\n", c->db_path, from, to);
		ctl_notify(c, ~0u);
	}
	return CTL_OK;
}
