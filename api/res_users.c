/* res_users.c - /api/v1/users (admins) and /users/{id}/password (admins, or a user for
 * themselves, with the current password); /api/v1/audit search. */
#include "resources.h"

#include "password.h"

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
	static const struct jfield f[] = { { "username", J_STR, 1, 1, 64 }, { "role", J_STR, 1, 5, 6 },
					   { "password", J_STR, 1, PASSWORD_MIN_LEN, PASSWORD_MAX_LEN } };
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
	if (password_hash(json_string_value(json_object_get(r->body, "password")), hash) < 0)
		return reply_error(r, 500, "internal", "cannot hash the password");
	rc = exec_bound(db, "INSERT INTO users (username, password_hash, role) VALUES (?1, ?2, 'viewer')", name, hash, 0);
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
	static const struct jfield f[] = { { "role", J_STR, 0, 5, 6 }, { "disabled", J_BOOL, 0, 0, 1 } };
	json_t *before = user_json(db, id), *after, *v;
	char err[256], oid[24];
	const char *role;
	int demote, disable;

	if (!before)
		return reply_error(r, 404, "not_found", "no user %lld", (long long)id);
	if (req_parse_json(r) < 0) {
		json_decref(before);
		return MHD_YES;
	}
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
	if ((demote || disable) && strcmp(json_string_value(json_object_get(before, "role")), "admin") == 0 &&
	    admins_left_without(db, id) == 0) {
		json_decref(before);
		return reply_error(r, 409, "conflict", "this is the last enabled admin");
	}
	if (role)
		exec_bound(db, "UPDATE users SET role = ?1, updated_at = unixepoch() WHERE id = ?3", role, NULL, id);
	if ((v = json_object_get(r->body, "disabled")))
		exec_bound(db, json_is_true(v) ? "UPDATE users SET disabled = 1, updated_at = unixepoch() WHERE id = ?3"
					       : "UPDATE users SET disabled = 0, updated_at = unixepoch() WHERE id = ?3",
			   NULL, NULL, id);
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
	if (strcmp(json_string_value(json_object_get(before, "role")), "admin") == 0 && admins_left_without(db, id) == 0) {
		json_decref(before);
		return reply_error(r, 409, "conflict", "this is the last enabled admin");
	}
	exec_bound(db, "DELETE FROM users WHERE id = ?3", NULL, NULL, id);
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, "user.delete", "user", oid, before, NULL, "ok");
	json_decref(before);
	api_notify(r, TOPIC_USERS);
	return reply_empty(r, 204);
}

/* PUT /users/{id}/password: admins for anyone; a user for themselves with current_password. */
static int set_password(struct req *r, sqlite3 *db, int64_t id)
{
	static const struct jfield f[] = { { "password", J_STR, 1, PASSWORD_MIN_LEN, PASSWORD_MAX_LEN },
					   { "current_password", J_STR, 0, 0, PASSWORD_MAX_LEN } };
	char err[256], hash[PASSWORD_HASH_MAX], oid[24];
	int self = id == r->user.id, admin = strcmp(r->user.role, "admin") == 0;
	json_t *u;

	if (!self && !admin)
		return reply_error(r, 403, "forbidden", "only admins change other users' passwords");
	if (!(u = user_json(db, id)))
		return reply_error(r, 404, "not_found", "no user %lld", (long long)id);
	json_decref(u);
	if (req_parse_json(r) < 0)
		return MHD_YES;
	if (json_check(r->body, f, 2, 0, err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	if (self && !admin) {
		sqlite3_stmt *st = NULL;
		const char *cur = json_string_value(json_object_get(r->body, "current_password"));
		int ok = 0;

		if (cur && sqlite3_prepare_v2(db, "SELECT password_hash FROM users WHERE id = ?1", -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, id);
			if (sqlite3_step(st) == SQLITE_ROW)
				ok = password_verify((const char *)sqlite3_column_text(st, 0), cur) == 0;
		}
		sqlite3_finalize(st);
		if (!ok)
			return reply_error(r, 403, "forbidden", "'current_password' is missing or wrong");
	}
	if (password_hash(json_string_value(json_object_get(r->body, "password")), hash) < 0)
		return reply_error(r, 500, "internal", "cannot hash the password");
	exec_bound(db, "UPDATE users SET password_hash = ?1, updated_at = unixepoch() WHERE id = ?3", hash, NULL, id);
	explicit_bzero(hash, sizeof(hash));
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, "user.password", "user", oid, NULL, NULL, "ok");
	return reply_empty(r, 204);
}

static int save(struct req *r, sqlite3 *db, int64_t id, int partial)
{
	(void)partial; /* users change by PATCH only (role, disabled); passwords have their own path */
	return id < 0 ? create(r, db) : patch(r, db, id);
}

static const struct crud users = { .noun = "user", .ids_sql = "SELECT id FROM users ORDER BY id", .get = user_json,
				    .save = save, .del = del }; /* no PUT */

int res_users(struct req *r, const char *const *seg, int nseg)
{
	int get = strcmp(r->method, "GET") == 0;
	sqlite3 *db;
	int64_t id;

	if (nseg == 2 && strcmp(seg[1], "password") == 0 && strcmp(r->method, "PUT") == 0) {
		if (auth_require(r, 0) < 0 || auth_csrf(r) < 0) /* not only admins: checked inside */
			return MHD_YES;
		if ((id = path_id(seg[0])) < 0)
			return reply_error(r, 404, "not_found", "no such user");
		return (db = api_db(r->api)) ? set_password(r, db, id) : reply_error(r, 503, "unavailable", "database unavailable");
	}
	if (auth_require(r, !get) < 0)
		return MHD_YES;
	if (strcmp(r->user.role, "admin") != 0)
		return reply_error(r, 403, "forbidden", "only admins manage users");
	if (!(db = api_db(r->api)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	return crud_route(r, db, &users, seg, nseg);
}

/* GET /audit?q=&user=&action=&from=&to=&limit=&cursor= : newest first; cursor = the last id seen. */
int res_audit(struct req *r, const char *const *seg, int nseg)
{
	const char *q = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "q");
	const char *user = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "user");
	const char *action = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "action");
	const char *a_from = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "from");
	const char *a_to = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "to");
	const char *a_limit = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
	const char *a_cursor = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "cursor");
	int64_t from = 0, to = 0, limit = 100, cursor = 0;
	sqlite3_stmt *st = NULL;
	json_t *items;
	sqlite3 *db;
	char like[300];

	(void)seg;
	if (nseg != 0)
		return reply_error(r, 404, "not_found", "no such resource");
	if (!(db = read_only_start(r, "only admins read the audit log")))
		return MHD_YES;
	if ((a_from && (from = path_id(a_from)) < 0) || (a_to && (to = path_id(a_to)) < 0) ||
	    (a_cursor && (cursor = path_id(a_cursor)) < 0) || (a_limit && ((limit = path_id(a_limit)) < 1 || limit > 1000)))
		return reply_error(r, 400, "bad_request", "from, to and cursor are positive integers; limit is 1 to 1000");
	if ((q && strlen(q) > 200) || (user && strlen(user) > 64) || (action && strlen(action) > 64))
		return reply_error(r, 400, "bad_request", "search terms are too long");
	if (sqlite3_prepare_v2(db,
			       "SELECT id, ts, username, remote_addr, action, object_type, object_id, before_json, after_json, "
			       "request_id, result FROM audit WHERE (?1 IS NULL OR username = ?1) AND (?2 IS NULL OR action = ?2) "
			       "AND (?3 = 0 OR ts >= ?3) AND (?4 = 0 OR ts <= ?4) AND (?5 = 0 OR id < ?5) AND (?6 IS NULL OR "
			       "(username || ' ' || action || ' ' || object_type || ' ' || object_id || ' ' || "
			       "coalesce(before_json, '') || ' ' || coalesce(after_json, '')) LIKE ?6 ESCAPE '\\') "
			       "ORDER BY id DESC LIMIT ?7", -1, &st, NULL) != SQLITE_OK)
		return reply_db_error(r, db);
	if (user)
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	if (action)
		sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, from);
	sqlite3_bind_int64(st, 4, to);
	sqlite3_bind_int64(st, 5, cursor);
	if (q) { /* a substring search: % and _ in the term are literal */
		size_t n = 0;
		like[n++] = '%';
		for (const char *p = q; *p && n + 3 < sizeof(like); p++) {
			if (*p == '%' || *p == '_' || *p == '\\')
				like[n++] = '\\';
			like[n++] = *p;
		}
		like[n++] = '%';
		like[n] = '\0';
		sqlite3_bind_text(st, 6, like, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(st, 7, limit);
	items = json_array();
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *b = sqlite3_column_type(st, 7) == SQLITE_NULL ? json_null()
								    : json_loads((const char *)sqlite3_column_text(st, 7), 0, NULL);
		json_t *a = sqlite3_column_type(st, 8) == SQLITE_NULL ? json_null()
								    : json_loads((const char *)sqlite3_column_text(st, 8), 0, NULL);
		json_array_append_new(items,
				      json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "id",
						(json_int_t)sqlite3_column_int64(st, 0), "ts", (json_int_t)sqlite3_column_int64(st, 1),
						"user", sqlite3_column_text(st, 2), "remote_addr", sqlite3_column_text(st, 3),
						"action", sqlite3_column_text(st, 4), "object_type", sqlite3_column_text(st, 5),
						"object_id", sqlite3_column_text(st, 6), "before", b ? b : json_null(), "after",
						a ? a : json_null(), "request_id", sqlite3_column_text(st, 9), "result",
						sqlite3_column_text(st, 10)));
	}
	sqlite3_finalize(st);
	{
		size_t n = json_array_size(items);
		json_t *next = (int64_t)n == limit ? json_object_get(json_array_get(items, n - 1), "id") : NULL;
		return reply_json(r, 200, json_pack("{s:I, s:o, s:O?}", "total", (json_int_t)n, "items", items,
						    "next_cursor", next));
	}
}
