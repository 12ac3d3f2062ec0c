/* res_proxies.c - /api/v1/proxies: CRUD (the password is write-only) and on-demand checks. */
#include "resources.h"

#include "db.h"
#include "gate.h"
#include "net.h"
#include "settings.h"
#include "upstream.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* "a,b" as ["a", "b"] ("" as []). */
static json_t *split_list(const char *s)
{
	json_t *a = json_array();

	while (s && *s) {
		const char *c = strchr(s, ',');
		size_t n = c ? (size_t)(c - s) : strlen(s);
		json_array_append_new(a, json_stringn(s, n));
		s = c ? c + 1 : NULL;
	}
	return a;
}

/* The proxy as the API shows it (never the password), or NULL if there is none. */
json_t *proxy_json(sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	json_t *j = NULL;

	if (sqlite3_prepare_v2(db,
			       "SELECT id, name, type, host, port, username, enabled, password != '', expected_exit, "
			       "preconnect FROM proxies WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		j = json_pack("{s:I, s:s, s:s, s:s, s:i, s:s, s:b, s:b}", "id", (json_int_t)sqlite3_column_int64(st, 0),
			      "name", sqlite3_column_text(st, 1), "type", sqlite3_column_text(st, 2), "host",
			      sqlite3_column_text(st, 3), "port", sqlite3_column_int(st, 4), "username",
			      sqlite3_column_text(st, 5), "enabled", sqlite3_column_int(st, 6), "has_password",
			      sqlite3_column_int(st, 7));
	if (j) {
		json_object_set_new(j, "expected_exit", split_list((const char *)sqlite3_column_text(st, 8)));
		json_object_set_new(j, "preconnect", json_boolean(sqlite3_column_int(st, 9)));
	}
	sqlite3_finalize(st);
	return j;
}

const struct net_lan *proxy_refuse(sqlite3 *db, const struct pgw_config *cfg, struct net_lan *lan)
{
	if (settings_bool(db, cfg, "proxy_allow_local"))
		return NULL;
	settings_lan(db, cfg, lan);
	return lan;
}

static json_t *redacted(json_t *j)
{
	if (j && json_object_get(j, "password"))
		json_object_set_new(j, "password", json_string("***"));
	return j;
}

/* An update that sends the proxy somewhere else (host, port or type): the stored credentials
 * were given for the old endpoint and must not be sent to the new one unless given again. */
static int endpoint_moves(json_t *before, json_t *body)
{
	static const char *const keys[] = {"host", "port", "type"};

	if (!before)
		return 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(body, keys[i]);
		if (v && !json_equal(v, json_object_get(before, keys[i])))
			return 1;
	}
	return 0;
}

/* POST (id < 0), PUT or PATCH (partial). */
static int save(struct req *r, sqlite3 *db, int64_t id, int partial)
{
	static const char *const cols[] = {"name",     "type",	  "host",	   "port",	"username",
					   "password", "enabled", "expected_exit", "preconnect"};
	char err[256];
	struct net_lan lan;
	json_t *before = NULL, *after;
	sqlite3_stmt *st = NULL;
	int rc;

	if (req_parse_json(r) < 0)
		return MHD_YES;
	if (proxy_body_check(r->body, partial, proxy_refuse(db, r->api->cfg, &lan), err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	if (id > 0 && !(before = proxy_json(db, id)))
		return reply_error(r, 404, "not_found", "no proxy %lld", (long long)id);
	if (partial && before && (json_object_get(r->body, "type") || json_object_get(r->body, "username"))) {
		/* a PATCH of either (a whole body was checked above): the login and the type the proxy
		 * would have together; a PATCH of neither, disabling it say, is not held up by a login
		 * stored before this rule */
		const char *t = json_string_value(json_object_get(r->body, "type")),
			   *u = json_string_value(json_object_get(r->body, "username"));
		if (!t)
			t = json_string_value(json_object_get(before, "type"));
		if (!u && !endpoint_moves(before, r->body)) /* kept */
			u = json_string_value(json_object_get(before, "username"));
		if (t && u && strcmp(t, "http") == 0 && strchr(u, ':')) {
			json_decref(before);
			return reply_error(r, 400, "bad_request", "'username' cannot contain ':' for an HTTP proxy");
		}
	}
	/* under the write lock, the proxy as read: whether its endpoint moves (its credentials never
	 * follow) was judged on it, and another request's change is not undone */
	if (id > 0) {
		json_t *now;

		if (db_begin(db) < 0) {
			json_decref(before);
			return reply_error(r, 503, "unavailable", "the database is busy; try again");
		}
		now = proxy_json(db, id);
		rc = !now ? 404 : json_equal(now, before) ? 0 : 409;
		json_decref(now);
		if (rc) {
			db_rollback(db);
			json_decref(before);
			return rc == 404
				   ? reply_error(r, 404, "not_found", "no proxy %lld", (long long)id)
				   : reply_error(r, 409, "conflict",
						 "proxy %lld was changed by another request meanwhile; nothing was "
						 "stored: read it again and retry",
						 (long long)id);
		}
	}
	if (id < 0) {
		rc = sqlite3_prepare_v2(
		    db,
		    "INSERT INTO main.proxies (name, type, host, port, username, password, enabled, expected_exit, "
		    "preconnect, org_id) VALUES (?1, ?2, ?3, ?4, coalesce(?5, ''), coalesce(?6, ''), coalesce(?7, 1), "
		    "coalesce(?8, ''), coalesce(?9, 1), " ORG_OWNER ")",
		    -1, &st, NULL);
	} else {
		/* PUT replaces (username, enabled back to defaults when absent); a missing password is kept */
		rc = sqlite3_prepare_v2(
		    db,
		    partial
			? "UPDATE main.proxies SET name = coalesce(?1, name), type = coalesce(?2, type), "
			  "host = coalesce(?3, host), port = coalesce(?4, port), username = coalesce(?5, username), "
			  "password = coalesce(?6, password), enabled = coalesce(?7, enabled), "
			  "expected_exit = coalesce(?8, expected_exit), preconnect = coalesce(?9, preconnect), "
			  "updated_at = unixepoch() WHERE id = ?10 AND " ORG_SCOPED
			: "UPDATE main.proxies SET name = ?1, type = ?2, host = ?3, port = ?4, username = coalesce(?5, "
			  "''), "
			  "password = coalesce(?6, password), enabled = coalesce(?7, 1), expected_exit = coalesce(?8, "
			  "''), preconnect = coalesce(?9, 1), updated_at = unixepoch() WHERE id = ?10 AND " ORG_SCOPED,
		    -1, &st, NULL);
	}
	if (rc != SQLITE_OK) {
		reply_db_error(r, db);
		if (id > 0)
			db_rollback(db);
		json_decref(before);
		return MHD_YES;
	}
	for (int i = 0; i < 9; i++) {
		json_t *v = json_object_get(r->body, cols[i]);
		if (!v && i >= 4 && i <= 5 && endpoint_moves(before, r->body))
			sqlite3_bind_text(st, i + 1, "", -1,
					  SQLITE_STATIC); /* credentials never follow a new endpoint */
		else if (!v)
			sqlite3_bind_null(st, i + 1);
		else if (json_is_string(v))
			sqlite3_bind_text(st, i + 1, json_string_value(v), -1, SQLITE_TRANSIENT);
		else if (json_is_boolean(v))
			sqlite3_bind_int(st, i + 1, json_is_true(v));
		else
			sqlite3_bind_int64(st, i + 1, json_integer_value(v));
	}
	if (id > 0)
		sqlite3_bind_int64(st, 10, id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE)
			reply_error(r, 409, "conflict", "a proxy with this name exists");
		else
			reply_error(r, 400, "bad_request", "invalid proxy: %s", sqlite3_errmsg(db));
		if (id > 0)
			db_rollback(db);
		json_decref(before);
		return MHD_YES;
	}
	if (id > 0 && db_commit(db) < 0) {
		db_rollback(db);
		json_decref(before);
		return reply_error(r, 503, "unavailable", "the database is busy; try again");
	}
	if (id < 0)
		id = sqlite3_last_insert_rowid(db);
	after = proxy_json(db, id);
	{
		char oid[24];
		json_t *shown = redacted(json_deep_copy(after)); /* api_audit() does not take it */
		snprintf(oid, sizeof(oid), "%lld", (long long)id);
		api_audit(r, before ? "proxy.update" : "proxy.create", "proxy", oid, before, shown, "ok");
		json_decref(shown);
	}
	json_decref(before);
	api_notify(r, TOPIC_PROXIES);
	return reply_json(r, before ? 200 : 201, after);
}

static int del(struct req *r, sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	json_t *before = proxy_json(db, id);
	long long used = 0;

	if (!before)
		return reply_error(r, 404, "not_found", "no proxy %lld", (long long)id);
	if (sqlite3_prepare_v2(
		db,
		"SELECT count(*) FROM main.mappings WHERE proxy_id = ?1 OR id IN (SELECT mapping_id FROM "
		"main.mapping_failover WHERE proxy_id = ?1)",
		-1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			used = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (used) {
		json_decref(before);
		return reply_error(
		    r, 409, "conflict",
		    "proxy %lld is used by %lld mapping(s) (as primary or failover); move or delete them first",
		    (long long)id, used);
	}
	return reply_deleted(r, db, "DELETE FROM main.proxies WHERE id = ?1 AND " ORG_SCOPED, id, "proxy.delete",
			     "proxy", before, TOPIC_PROXIES);
}

static int check(struct req *r, sqlite3 *db, int64_t id)
{
	json_t *p = proxy_json(db, id), *res = NULL;
	int g;

	if (!p)
		return reply_error(r, 404, "not_found", "no proxy %lld", (long long)id);
	json_decref(p);
	g = gate_check(r->api->cfg, id, gate_wait_ms(db, r->api->cfg), &res);
	if (g < 0)
		return reply_gate_unavailable(r, g);
	return reply_json(r, 200, res);
}

static const struct crud proxies = {.noun = "proxy",
				    .ids_sql = "SELECT id FROM proxies ORDER BY id",
				    .get = proxy_json,
				    .save = save,
				    .del = del,
				    .put = 1};

int res_proxies(struct req *r, const char *const *seg, int nseg)
{
	int get = strcmp(r->method, "GET") == 0;
	sqlite3 *db;
	int64_t id;

	if (auth_require(r, !get) < 0)
		return MHD_YES;
	if (!(db = api_db(r->api)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	if (nseg == 1 && strcmp(seg[0], "export") == 0)
		return get ? res_proxies_export(r, db) : reply_error(r, 405, "method_not_allowed", "use GET");
	if (nseg == 1 && strcmp(seg[0], "import") == 0)
		return strcmp(r->method, "POST") == 0 ? res_proxies_import(r, db)
						      : reply_error(r, 405, "method_not_allowed", "use POST");
	if (nseg == 2 && strcmp(seg[1], "usage") == 0) { /* the organisation's proxy only: 404 as missing */
		json_t *p;
		if (!get)
			return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
		if ((id = path_id(seg[0])) < 0 || !(p = proxy_json(db, id)))
			return reply_error(r, 404, "not_found", "no such proxy");
		json_decref(p);
		return reply_usage(r, db, NULL, id);
	}
	if (nseg == 2 && strcmp(seg[1], "check") == 0) {
		if ((id = path_id(seg[0])) < 0)
			return reply_error(r, 404, "not_found", "no such proxy");
		return strcmp(r->method, "POST") == 0
			   ? check(r, db, id)
			   : reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	}
	return crud_route(r, db, &proxies, seg, nseg);
}
