/* pgwctl.h - the admin CLI: one subcommand per file (cmd_*.c), shared context here. */
#ifndef PGWCTL_H
#define PGWCTL_H

#include "config.h"

#include <sqlite3.h>

struct ctl {
	struct pgw_config cfg;
	const char *db_path; /* --db or PGW_DB */
	sqlite3 *db;
};

/* Exit codes: 0 done, 1 failed, 2 usage. */
enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

/* Open the DB and require it to be at the schema this build knows. */
int ctl_open(struct ctl *c);
/* Tell the running daemons that rows of these topics changed (best effort). */
void ctl_notify(struct ctl *c, unsigned topics);
/* Read one line (a password) from stdin into buf, newline stripped. 0 or -EINVAL. */
int ctl_read_secret_line(char *buf, size_t size);
/* On an HA backup the configuration follows the master's (a change here is undone at the next
 * sync): 0 when this node may change it (no pair, the master, or a node that has never been
 * told its role nor synced: a new pair's first node), -1 having said so. */
int ctl_ha_writable(struct ctl *c);
int ctl_audit(struct ctl *c, const char *action, const char *object_type, const char *object_id,
	      const char *after_json);

int cmd_migrate(struct ctl *c, int argc, char **argv);
int cmd_user(struct ctl *c, int argc, char **argv);
int cmd_settings(struct ctl *c, int argc, char **argv);
int cmd_backup(struct ctl *c, int argc, char **argv);
int cmd_restore(struct ctl *c, int argc, char **argv);
int cmd_status(struct ctl *c, int argc, char **argv);
int cmd_stats(struct ctl *c, int argc, char **argv);
int cmd_notify(struct ctl *c, int argc, char **argv);
int cmd_check(struct ctl *c, int argc, char **argv);
int cmd_ha(struct ctl *c, int argc, char **argv);

#endif
