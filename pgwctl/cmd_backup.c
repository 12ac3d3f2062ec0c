/* pgwctl backup - SQLite online backup, so daemons keep running meanwhile. */
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
	umask(077); /* the copy holds password hashes and proxy credentials: nobody else reads it, ever */
	if (db_open(tmp, DB_CREATE, &out, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgwctl: backup: %s\n", err);
		goto out;
	}
	/* A backup file stands alone: no WAL beside it. */
	if (db_exec(out, "PRAGMA journal_mode=DELETE") < 0 || db_copy(out, c->db) < 0) {
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
