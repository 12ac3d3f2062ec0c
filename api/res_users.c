/* res_users.c - /api/v1/users (admins) and /users/{id}/password (admins, or a user for
 * themselves, with the current password); /api/v1/audit search. */
#include "resources.h"

#include "db.h"
#include "log.h"
#include "password.h"
#include "throttle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *user_json(sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	json_t *j = NULL;

	if (sqlite3_prepare_v2(db, "SELECT id, username, role, disabled, created_at FROM users WHERE id = ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		j = json_pack("{s:I, s:s, s:s, s:b, s:I}", "id", (json_int_t)sqlite3_column_int64(st, 0), "username",
			      sqlite3_column_text(st, 1), "role", sqlite3_column_text(st, 2), "disabled",
			      sqlite3_column_int(st, 3), "created_at", (json_int_t)sqlite3_column_int64(st, 4));
	sqlite3_finalize(st);
	return j;
}

static int admins_left_without(sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int n = 0;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?1", -1,
			       &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	return n;
}

static int exec_bound(sqlite3 *db, const char *sql, const char *a, const char *b, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return SQLITE_ERROR;
	if (a)
		sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
	if (b)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc;
}

static int create(struct req *r, sqlite3 *db)
{
	static const struct jfield f[] = {{"username", J_STR, 1, 1, 64},
					  {"role", J_STR, 1, 5, 6},
					  {"password", J_STR, 1, PASSWORD_MIN_LEN, PASSWORD_MAX_LEN}};
	char err[256], hash[PASSWORD_HASH_MAX], oid[24];
	const char *name, *role;
	json_t *after;
	int64_t id;
	int rc;

	if (req_parse_json(r) < 0)
		return MHD_YES;
	if (json_check(r->body, f, 3, 0, err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	name = json_string_value(json_object_get(r->body, "username"));
	role = json_string_value(json_object_get(r->body, "role"));
	if (strcmp(role, "admin") != 0 && strcmp(role, "viewer") != 0)
		return reply_error(r, 400, "bad_request", "'role' must be admin or viewer");
	if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-") != strlen(name))
		return reply_error(r, 400, "bad_request", "'username' may use A-Z a-z 0-9 . _ @ -");
	if (auth_password_work_begin(r) < 0)
		return MHD_YES;
	rc = password_hash(json_string_value(json_object_get(r->body, "password")), hash);
	auth_password_work_end();
	if (rc < 0)
		return reply_error(r, 500, "internal", "cannot hash the password");
	rc = exec_bound(db, "INSERT INTO users (username, password_hash, role) VALUES (?1, ?2, 'viewer')", name, hash,
			0);
	explicit_bzero(hash, sizeof(hash));
	if (rc != SQLITE_DONE) {
		if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE)
			return reply_error(r, 409, "conflict", "user '%s' exists", name);
		return reply_error(r, 400, "bad_request", "invalid user: %s", sqlite3_errmsg(db));
	}
	id = sqlite3_last_insert_rowid(db);
	exec_bound(db, "UPDATE users SET role = ?1 WHERE id = ?3", role, NULL, id);
	after = user_json(db, id);
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, "user.create", "user", oid, NULL, after, "ok");
	api_notify(r, TOPIC_USERS);
	return reply_json(r, 201, after);
}

static int patch(struct req *r, sqlite3 *db, int64_t id)
{
	static const struct jfield f[] = {{"role", J_STR, 0, 5, 6}, {"disabled", J_BOOL, 0, 0, 1}};
	json_t *before = user_json(db, id), *after, *v;
	char err[256], oid[24];
	const char *role;
	sqlite3_stmt *st = NULL;
	int demote, disable, rc = SQLITE_ERROR;

	if (req_parse_json(r) < 0) { /* the request's own faults first, as everywhere */
		json_decref(before);
		return MHD_YES;
	}
	if (!before)
		return reply_error(r, 404, "not_found", "no user %lld", (long long)id);
	if (json_check(r->body, f, 2, 1, err, sizeof(err)) < 0) {
		json_decref(before);
		return reply_error(r, 400, "bad_request", "%s", err);
	}
	role = (v = json_object_get(r->body, "role")) ? json_string_value(v) : NULL;
	if (role && strcmp(role, "admin") != 0 && strcmp(role, "viewer") != 0) {
		json_decref(before);
		return reply_error(r, 400, "bad_request", "'role' must be admin or viewer");
	}
	demote = role && strcmp(role, "viewer") == 0;
	disable = json_is_true(json_object_get(r->body, "disabled"));
	/* the last-admin check and the change in one write transaction: two admins demoting each
	 * other at once cannot both pass it */
	if (db_begin(db) < 0) {
		json_decref(before);
		return reply_error(r, 503, "unavailable", "the database is busy; try again");
	}
	if ((demote || disable) && strcmp(json_string_value(json_object_get(before, "role")), "admin") == 0 &&
	    admins_left_without(db, id) == 0) {
		db_rollback(db);
		json_decref(before);
		return reply_error(r, 409, "conflict", "this is the last enabled admin");
	}
	/* disabling ends its sessions: its tokens stay dead when it is enabled again */
	if (sqlite3_prepare_v2(db,
			       "UPDATE users SET role = coalesce(?1, role), disabled = coalesce(?2, disabled), "
			       "token_gen = token_gen + ?3, updated_at = unixepoch() WHERE id = ?4",
			       -1, &st, NULL) == SQLITE_OK) {
		if (role)
			sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
		if ((v = json_object_get(r->body, "disabled")))
			sqlite3_bind_int(st, 2, json_is_true(v));
		sqlite3_bind_int(st, 3, disable);
		sqlite3_bind_int64(st, 4, id);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || db_commit(db) < 0) {
		rc = reply_db_error(r, db);
		db_rollback(db);
		json_decref(before);
		return rc;
	}
	after = user_json(db, id);
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, "user.update", "user", oid, before, after, "ok");
	json_decref(before);
	api_notify(r, TOPIC_USERS);
	return reply_json(r, 200, after);
}

static int del(struct req *r, sqlite3 *db, int64_t id)
{
	json_t *before = user_json(db, id);
	char oid[24];

	if (!before)
		return reply_error(r, 404, "not_found", "no user %lld", (long long)id);
	if (db_begin(db) < 0) {
		json_decref(before);
		return reply_error(r, 503, "unavailable", "the database is busy; try again");
	}
	if (strcmp(json_string_value(json_object_get(before, "role")), "admin") == 0 &&
	    admins_left_without(db, id) == 0) {
		db_rollback(db);
		json_decref(before);
		return reply_error(r, 409, "conflict", "this is the last enabled admin");
	}
	if (exec_bound(db, "DELETE FROM users WHERE id = ?3", NULL, NULL, id) != SQLITE_DONE || db_commit(db) < 0) {
		int rc = reply_db_error(r, db);
		db_rollback(db);
		json_decref(before);
		return rc;
	}
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, "user.delete", "user", oid, before, NULL, "ok");
	json_decref(before);
	api_notify(r, TOPIC_USERS);
	return reply_empty(r, 204);
}

/* PUT /users/{id}/password: admins for anyone; a user for themselves with current_password. */
static int set_password(struct req *r, sqlite3 *db, int64_t id)
{
	static const struct jfield f[] = {{"password", J_STR, 1, PASSWORD_MIN_LEN, PASSWORD_MAX_LEN},
					  {"current_password", J_STR, 0, 0, PASSWORD_MAX_LEN}};
	char err[256], hash[PASSWORD_HASH_MAX], oid[24];
	int self = id == r->user.id, admin = strcmp(r->user.role, "admin") == 0 && r->user.superadmin;
	json_t *u;

	if (!self && !admin)
		return reply_error(r, 403, "forbidden", "only superadmins change other users' passwords");
	if (req_parse_json(r) < 0)
		return MHD_YES;
	if (!(u = user_json(db, id)))
		return reply_error(r, 404, "not_found", "no user %lld", (long long)id);
	json_decref(u);
	if (json_check(r->body, f, 2, 0, err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	if (self) { /* admins too: a stolen session must not be enough to take the account */
		sqlite3_stmt *st = NULL;
		const char *cur = json_string_value(json_object_get(r->body, "current_password"));
		char key[40];
		unsigned wait;
		int ok = 0;

		/* guesses through a session are throttled like logins (per user, from anywhere) */
		snprintf(key, sizeof(key), "p:%lld", (long long)id);
		if ((wait = throttle_check(key, THROTTLE_USER_FAILS))) {
			return reply_retry_after(r, 429, wait, "too_many_requests",
						 "too many wrong current passwords; try again in %u s", wait);
		}
		if (cur)
			throttle_fail(key);
		if (cur && sqlite3_prepare_v2(db, "SELECT password_hash FROM users WHERE id = ?1", -1, &st, NULL) ==
			       SQLITE_OK) {
			sqlite3_bind_int64(st, 1, id);
			if (sqlite3_step(st) == SQLITE_ROW) {
				if (auth_password_work_begin(r) < 0) {
					sqlite3_finalize(st);
					return MHD_YES;
				}
				ok = password_verify((const char *)sqlite3_column_text(st, 0), cur) == 0;
				auth_password_work_end();
			}
		}
		sqlite3_finalize(st);
		if (!ok) {
			snprintf(oid, sizeof(oid), "%lld", (long long)id);
			api_audit(r, "user.password", "user", oid, NULL, NULL, "denied");
			return reply_error(r, 403, "forbidden", "'current_password' is missing or wrong");
		}
		throttle_reset(key);
	}
	if (auth_password_work_begin(r) < 0)
		return MHD_YES;
	if (password_hash(json_string_value(json_object_get(r->body, "password")), hash) < 0) {
		auth_password_work_end();
		return reply_error(r, 500, "internal", "cannot hash the password");
	}
	auth_password_work_end();
	/* the new password and the end of every session under the old one: one statement */
	if (exec_bound(db,
		       "UPDATE users SET password_hash = ?1, token_gen = token_gen + 1, updated_at = unixepoch() "
		       "WHERE id = ?3",
		       hash, NULL, id) != SQLITE_DONE) {
		explicit_bzero(hash, sizeof(hash));
		return reply_db_error(r, db);
	}
	explicit_bzero(hash, sizeof(hash));
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, "sessions.revoked", "user", oid, NULL, NULL, "ok");
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, "user.password", "user", oid, NULL, NULL, "ok");
	return reply_empty(r, 204);
}

static int save(struct req *r, sqlite3 *db, int64_t id, int partial)
{
	(void)partial; /* users change by PATCH only (role, disabled); passwords have their own path */
	return id < 0 ? create(r, db) : patch(r, db, id);
}

static const struct crud users = {.noun = "user",
				  .ids_sql = "SELECT id FROM users ORDER BY id",
				  .get = user_json,
				  .save = save,
				  .del = del}; /* no PUT */

int res_users(struct req *r, const char *const *seg, int nseg)
{
	int get = strcmp(r->method, "GET") == 0;
	sqlite3 *db;
	int64_t id;

	if (nseg == 2 && strcmp(seg[1], "password") == 0 && strcmp(r->method, "PUT") != 0) {
		if (auth_require(r, 0) < 0)
			return MHD_YES;
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here (use PUT)", r->method);
	}
	if (nseg == 2 && strcmp(seg[1], "password") == 0) {
		if (auth_require(r, 0) < 0 || auth_csrf(r) < 0) /* not only admins: checked inside */
			return MHD_YES;
		if ((id = path_id(seg[0])) < 0)
			return reply_error(r, 404, "not_found", "no such user");
		return (db = api_db(r->api)) ? set_password(r, db, id)
					     : reply_error(r, 503, "unavailable", "database unavailable");
	}
	if (auth_require(r, !get) < 0)
		return MHD_YES;
	/* users are the gateway's, not an organisation's: superadmins (every admin of a single
	 * organisation install) manage them, until memberships are managed per organisation */
	if (strcmp(r->user.role, "admin") != 0 || !r->user.superadmin)
		return reply_error(r, 403, "forbidden", "only superadmins manage users");
	if (!(db = api_db(r->api)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	return crud_route(r, db, &users, seg, nseg);
}
