/* pgwctl user - add a user, change a password, list users. */
#include "pgwctl.h"

#include "notify.h"
#include "password.h"

#include <stdio.h>
#include <string.h>

static int read_new_password(char *pw, size_t size, char hash[PASSWORD_HASH_MAX])
{
	const char *why;

	if (ctl_read_secret_line(pw, size) < 0) {
		fprintf(stderr, "pgwctl: no password on standard input (or longer than %d characters)\n",
			PASSWORD_MAX_LEN);
		return -1;
	}
	why = password_policy_error(pw);
	if (why) {
		fprintf(stderr, "pgwctl: %s\n", why);
		return -1;
	}
	if (password_hash(pw, hash) < 0) {
		fprintf(stderr, "pgwctl: cannot hash the password\n");
		return -1;
	}
	return 0;
}

static int user_add(struct ctl *c, int argc, char **argv)
{
	const char *name = NULL, *role = NULL;
	char pw[PASSWORD_MAX_BYTES + 2], hash[PASSWORD_HASH_MAX], after[160];
	sqlite3_stmt *st = NULL;
	int stdin_pw = 0, r = CTL_FAIL;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
			role = argv[++i];
		else if (strcmp(argv[i], "--password-stdin") == 0)
			stdin_pw = 1;
		else if (!name && argv[i][0] != '-')
			name = argv[i];
		else
			goto usage;
	}
	if (!name || !role || !stdin_pw)
		goto usage;
	if (strcmp(role, "admin") != 0 && strcmp(role, "viewer") != 0) {
		fprintf(stderr, "pgwctl: --role must be admin or viewer, not '%s'\n", role);
		return CTL_USAGE;
	}
	if (strlen(name) > 64 ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-") != strlen(name)) {
		fprintf(stderr, "pgwctl: user name must be 1-64 characters of A-Z a-z 0-9 . _ @ -\n");
		return CTL_FAIL;
	}
	if (ctl_open(c) < 0 || ctl_ha_writable(c) < 0 || read_new_password(pw, sizeof(pw), hash) < 0)
		goto out;
	/* a member of organisation 1 with that role; an admin made on the box is a superadmin
	 * (it manages organisations and the gateway's settings) */
	if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	if (sqlite3_prepare_v2(c->db,
			       "INSERT INTO users (username, password_hash, role, superadmin) VALUES (?1, ?2, ?3, ?3 = "
			       "'admin')",
			       -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, role, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		if (sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_UNIQUE) {
			fprintf(stderr, "pgwctl: user '%s' already exists\n", name);
			goto out;
		}
		goto dberr;
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(c->db,
			       "INSERT INTO user_orgs (user_id, org_id, role) VALUES (last_insert_rowid(), 1, ?1)", -1,
			       &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	snprintf(after, sizeof(after), "{\"username\":\"%s\",\"role\":\"%s\"}", name, role);
	ctl_audit(c, "user.create", "user", name, after);
	ctl_notify(c, TOPIC_USERS);
	printf("user '%s' added with role %s\n", name, role);
	r = CTL_OK;
	goto out;
dberr:
	fprintf(stderr, "pgwctl: cannot add user: %s\n", sqlite3_errmsg(c->db));
out:
	explicit_bzero(pw, sizeof(pw));
	sqlite3_finalize(st);
	if (c->db && !sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
usage:
	fprintf(stderr, "usage: pgwctl user add NAME --role admin|viewer --password-stdin\n");
	return CTL_USAGE;
}

static int user_passwd(struct ctl *c, int argc, char **argv)
{
	char pw[PASSWORD_MAX_BYTES + 2], hash[PASSWORD_HASH_MAX];
	sqlite3_stmt *st = NULL;
	int r = CTL_FAIL;

	if (argc != 4 || strcmp(argv[3], "--password-stdin") != 0) {
		fprintf(stderr, "usage: pgwctl user passwd NAME --password-stdin\n");
		return CTL_USAGE;
	}
	if (ctl_open(c) < 0 || ctl_ha_writable(c) < 0 || read_new_password(pw, sizeof(pw), hash) < 0)
		goto out;
	if (sqlite3_prepare_v2(c->db,
			       "UPDATE users SET password_hash = ?1, token_gen = token_gen + 1, updated_at = "
			       "unixepoch() WHERE username = ?2",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, argv[2], -1, SQLITE_STATIC) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
		fprintf(stderr, "pgwctl: cannot change the password: %s\n", sqlite3_errmsg(c->db));
		goto out;
	}
	if (sqlite3_changes(c->db) == 0) {
		fprintf(stderr, "pgwctl: no user '%s'\n", argv[2]);
		goto out;
	}
	ctl_audit(c, "user.password", "user", argv[2], NULL);
	printf("password of '%s' changed\n", argv[2]);
	r = CTL_OK;
out:
	explicit_bzero(pw, sizeof(pw));
	sqlite3_finalize(st);
	if (c->db && !sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static int user_list(struct ctl *c)
{
	sqlite3_stmt *st = NULL;

	if (ctl_open(c) < 0)
		return CTL_FAIL;
	if (sqlite3_prepare_v2(
		c->db, "SELECT id, username, role, disabled, datetime(created_at, 'unixepoch') FROM users ORDER BY id",
		-1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "pgwctl: %s\n", sqlite3_errmsg(c->db));
		return CTL_FAIL;
	}
	printf("%-4s %-24s %-7s %-8s %s\n", "ID", "USERNAME", "ROLE", "DISABLED", "CREATED (UTC)");
	while (sqlite3_step(st) == SQLITE_ROW)
		printf("%-4lld %-24s %-7s %-8s %s\n", (long long)sqlite3_column_int64(st, 0),
		       (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2),
		       sqlite3_column_int(st, 3) ? "yes" : "no", (const char *)sqlite3_column_text(st, 4));
	sqlite3_finalize(st);
	return CTL_OK;
}

int cmd_user(struct ctl *c, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "add") == 0)
		return user_add(c, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "passwd") == 0)
		return user_passwd(c, argc, argv);
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return user_list(c);
	fprintf(stderr, "usage: pgwctl user add|passwd|list ...\n");
	return CTL_USAGE;
}
