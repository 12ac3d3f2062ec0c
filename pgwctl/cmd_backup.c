/* pgwctl backup / restore - SQLite online backup, so daemons keep running meanwhile. */
#include "pgwctl.h"

#include "db.h"
#include "migrate.h"
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copy all of src's main database into dst's in one step. */
static int copy_db(sqlite3 *dst, sqlite3 *src)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	int rc;

	if (!b)
		return -EIO;
	rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int cmd_backup(struct ctl *c, int argc, char **argv)
{
	char tmp[4200], err[512];
	sqlite3 *out = NULL;
	int r = CTL_FAIL;

	if (argc != 2) {
		fprintf(stderr, "usage: pgwctl backup FILE\n");
		return CTL_USAGE;
	}
	if (access(argv[1], F_OK) == 0) {
		fprintf(stderr, "pgwctl: '%s' exists; choose a new file name\n", argv[1]);
		return CTL_FAIL;
	}
	if (ctl_open(c) < 0)
		return CTL_FAIL;
	snprintf(tmp, sizeof(tmp), "%s.tmp-%d", argv[1], (int)getpid());
	if (db_open(tmp, DB_CREATE, &out, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: backup: %s\n", err);
		goto out;
	}
	/* A backup file stands alone: no WAL beside it. */
	if (db_exec(out, "PRAGMA journal_mode=DELETE") < 0 || copy_db(out, c->db) < 0) {
		fprintf(stderr, "pgwctl: backup failed: %s\n", sqlite3_errmsg(out));
		goto out;
	}
	db_close(out);
	out = NULL;
	chmod(tmp, 0600);
	if (rename(tmp, argv[1]) < 0) {
		fprintf(stderr, "pgwctl: cannot write '%s': %s\n", argv[1], strerror(errno));
		goto out;
	}
	printf("backup written to %s\n", argv[1]);
	r = CTL_OK;
out:
	db_close(out);
	unlink(tmp);
	return r;
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
		fprintf(stderr, "pgwctl: '%s' is not a pgw backup: %s\n", argv[1], in ? sqlite3_errmsg(in) : "cannot open");
		goto out;
	}
	if (ver < 1 || ver > migrate_latest(migrations_builtin, migrations_builtin_count)) {
		fprintf(stderr, "pgwctl: '%s' has schema version %d; this pgw restores versions 1 to %d\n", argv[1], ver,
			migrate_latest(migrations_builtin, migrations_builtin_count));
		goto out;
	}
	if (db_open(c->db_path, DB_CREATE, &c->db, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: %s\n", err);
		goto out;
	}
	if (copy_db(c->db, in) < 0) {
		fprintf(stderr, "pgwctl: restore failed, database unchanged: %s\n", sqlite3_errmsg(c->db));
		goto out;
	}
	if (db_exec(c->db, "PRAGMA journal_mode=WAL") < 0 ||
	    migrate_run(c->db, migrations_builtin, migrations_builtin_count, -1, &from, &to, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: restored, but the upgrade failed: %s\n", err);
		goto out;
	}
	ctl_audit(c, "database.restore", "database", argv[1], NULL);
	ctl_notify(c, ~0u);
	printf("restored %s (schema version %d%s)\n", argv[1], to, from != to ? ", upgraded" : "");
	r = CTL_OK;
out:
	if (in)
		sqlite3_close(in);
	return r;
}
