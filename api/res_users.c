/* res_users.c - /api/v1/users (superadmins): users, their memberships ('orgs': a role per
 * organisation) and whether they are superadmins; /users/{id}/password (superadmins, or a
 * user for themselves, with the current password). */
#include "resources.h"

#include "db.h"
#include "log.h"
#include "password.h"
#include "settings.h"
#include "throttle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *user_json(sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	json_t *j = NULL, *orgs;

	if (sqlite3_prepare_v2(
		db,
		"SELECT id, username, role, superadmin, disabled, created_at, sso_issuer, sso_subject FROM users "
		"WHERE id = ?1",
		-1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		j = json_pack("{s:I, s:s, s:s, s:b, s:b, s:I, s:[]}", "id", (json_int_t)sqlite3_column_int64(st, 0),
			      "username", sqlite3_column_text(st, 1), "role", sqlite3_column_text(st, 2), "superadmin",
			      sqlite3_column_int(st, 3), "disabled", sqlite3_column_int(st, 4), "created_at",
			      (json_int_t)sqlite3_column_int64(st, 5), "orgs");
	if (j) /* made by a sign-in through the OpenID provider: which one, and who there */
		json_object_set_new(j, "sso",
				    sqlite3_column_type(st, 6) == SQLITE_NULL
					? json_null()
					: json_pack("{s:s, s:s}", "issuer", sqlite3_column_text(st, 6), "subject",
						    sqlite3_column_text(st, 7)));
	sqlite3_finalize(st);
	if (!j)
		return NULL;
	orgs = json_object_get(j, "orgs");
	if (sqlite3_prepare_v2(
		db,
		"SELECT o.id, o.name, uo.role FROM main.user_orgs uo JOIN main.orgs o ON o.id = uo.org_id "
		"WHERE uo.user_id = ?1 ORDER BY o.id",
		-1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(
			    orgs, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)sqlite3_column_int64(st, 0), "name",
					    sqlite3_column_text(st, 1), "role", sqlite3_column_text(st, 2)));
	}
	sqlite3_finalize(st);
	return j;
}

/* Enabled superadmins other than id. */
static int superadmins_left_without(sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int n = 0;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM users WHERE superadmin = 1 AND disabled = 0 AND id != ?1", -1,
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

static int role_valid(const char *role)
{
	return role && (strcmp(role, "admin") == 0 || strcmp(role, "viewer") == 0);
}

/* Memberships a body asks for, checked (every organisation exists, none twice), as a JSON
 * list of {id, role}; or NULL with the reason in err. */
static json_t *memberships(sqlite3 *db, json_t *orgs, char *err, size_t errlen)
{
	json_t *out = json_array(), *m;
	size_t i;

	json_array_foreach(orgs, i, m)
	{
		json_t *id = json_object_get(m, "id");
		const char *role = json_string_value(json_object_get(m, "role"));
		size_t k;
		json_t *o;

		if (!json_is_object(m) || json_object_size(m) != 2 || !json_is_integer(id) || !role_valid(role)) {
			snprintf(err, errlen, "'orgs'[%zu] must be {\"id\": an organisation, \"role\": admin|viewer}",
				 i);
			goto bad;
		}
		if (!auth_org_exists(db, json_integer_value(id))) {
			snprintf(err, errlen, "'orgs'[%zu]: no organisation %lld", i,
				 (long long)json_integer_value(id));
			goto bad;
		}
		json_array_foreach(out, k,
				   o) if (json_integer_value(json_object_get(o, "id")) == json_integer_value(id))
		{
			snprintf(err, errlen, "'orgs'[%zu]: organisation %lld is listed twice", i,
				 (long long)json_integer_value(id));
			goto bad;
		}
		json_array_append_new(out, json_pack("{s:O, s:s}", "id", id, "role", role));
	}
	return out;
bad:
	json_decref(out);
	return NULL;
}

/* The organisation a bare 'role' is about: the request's, or the only one. 0 when it cannot be
 * told (several organisations and no X-Pgw-Org). */
static int64_t role_org(struct req *r, sqlite3 *db)
{
	if (r->org > 0)
		return r->org;
	return auth_single_org(db);
}

int users_write_memberships(sqlite3 *db, int64_t id, json_t *list, int replace)
{
	sqlite3_stmt *st = NULL;
	size_t i;
	json_t *m;
	int rc = SQLITE_DONE;

	if (replace && exec_bound(db, "DELETE FROM main.user_orgs WHERE user_id = ?3", NULL, NULL, id) != SQLITE_DONE)
		return -1;
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO main.user_orgs (user_id, org_id, role) VALUES (?1, ?2, ?3) "
			       "ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	json_array_foreach(list, i, m)
	{
		if (rc != SQLITE_DONE)
			break;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, json_integer_value(json_object_get(m, "id")));
		sqlite3_bind_text(st, 3, json_string_value(json_object_get(m, "role")), -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	return exec_bound(db,
			  "UPDATE users SET role = CASE WHEN superadmin = 1 OR EXISTS (SELECT 1 FROM main.user_orgs "
			  "WHERE user_id = users.id AND role = 'admin') THEN 'admin' ELSE 'viewer' END WHERE id = ?3",
			  NULL, NULL, id) == SQLITE_DONE
		   ? 0
		   : -1;
}

/* 'orgs' of a body, or the one membership a bare 'role' means. NULL with a reply sent. */
static json_t *wanted_memberships(struct req *r, sqlite3 *db, const char *role)
{
	json_t *orgs = json_object_get(r->body, "orgs");
	char err[256];
	int64_t org;

	if (orgs && role) { /* one would be dropped: a superadmin made of a "viewer", say */
		reply_error(r, 400, "bad_request",
			    "give either 'role' (a role in one organisation) or 'orgs' (a role in each), not both");
		return NULL;
	}
	if (orgs) {
		json_t *list = memberships(db, orgs, err, sizeof(err));
		if (!list)
			reply_error(r, 400, "bad_request", "%s", err);
		return list;
	}
	if (!(org = role_org(r, db))) {
		reply_error(r, 400, "org_required",
			    "a role is per organisation: choose one with X-Pgw-Org, or give 'orgs'");
		return NULL;
	}
	return json_pack("[{s:I, s:s}]", "id", (json_int_t)org, "role", role);
}

static int create(struct req *r, sqlite3 *db)
{
	static const struct jfield f[] = {{"username", J_STR, 1, 1, 64},
					  {"role", J_STR, 0, 5, 6},
					  {"password", J_STR, 1, PASSWORD_MIN_LEN, PASSWORD_MAX_LEN},
					  {"superadmin", J_BOOL, 0, 0, 1},
					  {"orgs", J_ARRAY, 0, 0, 256}};
	char err[256], hash[PASSWORD_HASH_MAX], oid[24];
	const char *name, *role;
	json_t *after, *list, *v;
	int64_t id;
	int rc, super;

	if (req_parse_json(r) < 0)
		return MHD_YES;
	if (json_check(r->body, f, 5, 0, err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	name = json_string_value(json_object_get(r->body, "username"));
	role = json_string_value(json_object_get(r->body, "role"));
	if ((role || !json_object_get(r->body, "orgs")) && !role_valid(role))
		return reply_error(r, 400, "bad_request", "'role' must be admin or viewer");
	if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-") != strlen(name))
		return reply_error(r, 400, "bad_request", "'username' may use A-Z a-z 0-9 . _ @ -");
	if (!(list = wanted_memberships(r, db, role)))
		return MHD_YES;
	/* while the gateway has one organisation an admin is a superadmin, as before organisations */
	super = (v = json_object_get(r->body, "superadmin")) ? json_is_true(v) : auth_default_superadmin(db, role);
	if (auth_password_work_begin(r, r->user.name) < 0) {
		json_decref(list);
		return MHD_YES;
	}
	rc = password_hash(json_string_value(json_object_get(r->body, "password")), hash);
	auth_password_work_end(r->user.name);
	if (rc < 0) {
		json_decref(list);
		return reply_error(r, 500, "internal", "cannot hash the password");
	}
	if (db_begin(db) < 0) {
		explicit_bzero(hash, sizeof(hash));
		json_decref(list);
		return reply_error(r, 503, "unavailable", "the database is busy; try again");
	}
	rc = exec_bound(
	    db,
	    super ? "INSERT INTO users (username, password_hash, role, superadmin) VALUES (?1, ?2, 'admin', 1)"
		  : "INSERT INTO users (username, password_hash, role) VALUES (?1, ?2, 'viewer')",
	    name, hash, 0);
	explicit_bzero(hash, sizeof(hash));
	if (rc != SQLITE_DONE) {
		int unique = sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE;
		rc = unique ? reply_error(r, 409, "conflict", "user '%s' exists", name)
			    : reply_error(r, 400, "bad_request", "invalid user: %s", sqlite3_errmsg(db));
		db_rollback(db);
		json_decref(list);
		return rc;
	}
	id = sqlite3_last_insert_rowid(db);
	if (users_write_memberships(db, id, list, 1) < 0 || db_commit(db) < 0) {
		rc = reply_db_error(r, db);
		db_rollback(db);
		json_decref(list);
		return rc;
	}
	json_decref(list);
	after = user_json(db, id);
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, "user.create", "user", oid, NULL, after, "ok");
	api_notify(r, TOPIC_USERS);
	return reply_json(r, 201, after);
}

static int patch(struct req *r, sqlite3 *db, int64_t id)
{
	static const struct jfield f[] = {{"role", J_STR, 0, 5, 6},
					  {"disabled", J_BOOL, 0, 0, 1},
					  {"superadmin", J_BOOL, 0, 0, 1},
					  {"orgs", J_ARRAY, 0, 0, 256}};
	json_t *before = user_json(db, id), *after, *v, *list = NULL;
	char err[256], oid[24];
	const char *role;
	sqlite3_stmt *st = NULL;
	int super = -1, disable, was_super, rc = SQLITE_ERROR;

	if (req_parse_json(r) < 0) { /* the request's own faults first, as everywhere */
		json_decref(before);
		return MHD_YES;
	}
	if (!before)
		return reply_error(r, 404, "not_found", "no user %lld", (long long)id);
	if (json_check(r->body, f, 4, 1, err, sizeof(err)) < 0) {
		json_decref(before);
		return reply_error(r, 400, "bad_request", "%s", err);
	}
	role = (v = json_object_get(r->body, "role")) ? json_string_value(v) : NULL;
	if (role && !role_valid(role)) {
		json_decref(before);
		return reply_error(r, 400, "bad_request", "'role' must be admin or viewer");
	}
	if ((role || json_object_get(r->body, "orgs")) && !(list = wanted_memberships(r, db, role))) {
		json_decref(before);
		return MHD_YES;
	}
	if (!list)
		list = json_array(); /* no membership changes; the summary role is still refreshed */
	if ((v = json_object_get(r->body, "superadmin")))
		super = json_is_true(v);
	else if (role && !json_object_get(r->body, "orgs") && auth_single_org(db))
		super = auth_default_superadmin(db, role); /* one organisation: an admin is a superadmin */
	disable = json_is_true(json_object_get(r->body, "disabled"));
	was_super = json_is_true(json_object_get(before, "superadmin"));
	/* the last-superadmin check and the change in one write transaction: two superadmins
	 * demoting each other at once cannot both pass it */
	if (db_begin(db) < 0) {
		json_decref(before);
		json_decref(list);
		return reply_error(r, 503, "unavailable", "the database is busy; try again");
	}
	if ((super == 0 || disable) && was_super && superadmins_left_without(db, id) == 0) {
		db_rollback(db);
		json_decref(before);
		json_decref(list);
		return reply_error(r, 409, "conflict", "this is the last enabled superadmin");
	}
	if ((super == 0 || disable) && settings_breakglass_user(db, id)) {
		db_rollback(db);
		json_decref(before);
		json_decref(list);
		return reply_error(r, 409, "conflict",
				   "this is the break-glass user (oidc_breakglass_user, local_login breakglass): name "
				   "another first, or set local_login to on");
	}
	/* disabling ends its sessions: its tokens stay dead when it is enabled again */
	if (sqlite3_prepare_v2(db,
			       "UPDATE users SET superadmin = coalesce(?1, superadmin), disabled = coalesce(?2, "
			       "disabled), token_gen = token_gen + ?3, updated_at = unixepoch() WHERE id = ?4",
			       -1, &st, NULL) == SQLITE_OK) {
		if (super >= 0)
			sqlite3_bind_int(st, 1, super);
		if ((v = json_object_get(r->body, "disabled")))
			sqlite3_bind_int(st, 2, json_is_true(v));
		sqlite3_bind_int(st, 3, disable);
		sqlite3_bind_int64(st, 4, id);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || users_write_memberships(db, id, list, json_object_get(r->body, "orgs") != NULL) < 0 ||
	    db_commit(db) < 0) {
		rc = reply_db_error(r, db);
		db_rollback(db);
		json_decref(before);
		json_decref(list);
		return rc;
	}
	json_decref(list);
	if (!(after = user_json(db, id))) { /* deleted meanwhile: no user, no row changed */
		json_decref(before);
		return reply_error(r, 404, "not_found", "no user %lld", (long long)id);
	}
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
	if (json_is_true(json_object_get(before, "superadmin")) && superadmins_left_without(db, id) == 0) {
		db_rollback(db);
		json_decref(before);
		return reply_error(r, 409, "conflict", "this is the last enabled superadmin");
	}
	if (settings_breakglass_user(db, id)) {
		db_rollback(db);
		json_decref(before);
		return reply_error(r, 409, "conflict",
				   "this is the break-glass user (oidc_breakglass_user, local_login breakglass): name "
				   "another first, or set local_login to on");
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
	if (!json_is_null(json_object_get(u, "sso"))) {
		json_decref(u);
		return reply_error(r, 400, "bad_request",
				   "user %lld signs in through the OpenID provider and has no password here",
				   (long long)id);
	}
	json_decref(u);
	if (json_check(r->body, f, 2, 0, err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	if (self) { /* admins too: a stolen session must not be enough to take the account */
		sqlite3_stmt *st = NULL;
		const char *cur = json_string_value(json_object_get(r->body, "current_password"));
		char key[40];
		struct throttle_rule rule = THROTTLE_RULE(key, THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S);
		unsigned wait;
		int ok = 0;

		/* guesses through a session are throttled like logins (per user, from anywhere) */
		snprintf(key, sizeof(key), "p:%lld", (long long)id);
		if ((wait = cur ? throttle_attempt(&rule, 1) /* counted before the work, if it may be made */
				: throttle_check(key, THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S))) {
			return reply_retry_after(r, 429, wait, "too_many_requests",
						 "too many wrong current passwords; try again in %u s", wait);
		}
		if (cur && sqlite3_prepare_v2(db, "SELECT password_hash FROM users WHERE id = ?1", -1, &st, NULL) ==
			       SQLITE_OK) {
			sqlite3_bind_int64(st, 1, id);
			if (sqlite3_step(st) == SQLITE_ROW) {
				if (auth_password_work_begin(r, r->user.name) < 0) {
					sqlite3_finalize(st);
					throttle_undo(&rule, 1); /* a 503: no attempt made */
					return MHD_YES;
				}
				ok = password_verify((const char *)sqlite3_column_text(st, 0), cur) == 0;
				auth_password_work_end(r->user.name);
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
	if (auth_password_work_begin(r, r->user.name) < 0)
		return MHD_YES;
	if (password_hash(json_string_value(json_object_get(r->body, "password")), hash) < 0) {
		auth_password_work_end(r->user.name);
		return reply_error(r, 500, "internal", "cannot hash the password");
	}
	auth_password_work_end(r->user.name);
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
	 * organisation install) manage them and their memberships */
	if (strcmp(r->user.role, "admin") != 0 || !r->user.superadmin)
		return reply_error(r, 403, "forbidden", "only superadmins manage users");
	if (!(db = api_db(r->api)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	return crud_route(r, db, &users, seg, nseg);
}
