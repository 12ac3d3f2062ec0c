/* crud.c - see crud.h: the scaffolding every resource handler shares. */
#include "crud.h"

#include "auth.h"

#include <stdio.h>
#include <string.h>

json_t *json_nullable_int(sqlite3_stmt *st, int col)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL ? json_null() : json_integer(sqlite3_column_int64(st, col));
}

int reply_db_error(struct req *r, sqlite3 *db)
{
	return reply_error(r, 500, "internal", "database error: %s", sqlite3_errmsg(db));
}

sqlite3 *read_only_start(struct req *r, const char *admin_only)
{
	sqlite3 *db;

	if (auth_require(r, 0) < 0)
		return NULL;
	if (strcmp(r->method, "GET") != 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method), NULL;
	if (admin_only && strcmp(r->user.role, "admin") != 0)
		return reply_error(r, 403, "forbidden", "%s", admin_only), NULL;
	if (!(db = api_db(r->api)))
		reply_error(r, 503, "unavailable", "database unavailable");
	return db;
}

int reply_deleted(struct req *r, sqlite3 *db, const char *sql, int64_t id, const char *action, const char *kind,
		  json_t *before, unsigned topic)
{
	sqlite3_stmt *st = NULL;
	char oid[24];

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		json_decref(before);
		return reply_db_error(r, db);
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		json_decref(before);
		return reply_db_error(r, db);
	}
	sqlite3_finalize(st);
	if (sqlite3_changes(db) != 1) { /* gone meanwhile (or never this organisation's) */
		json_decref(before);
		return reply_error(r, 404, "not_found", "no %s %lld", kind, (long long)id);
	}
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, action, kind, oid, before, NULL, "ok");
	json_decref(before);
	api_notify(r, topic);
	return reply_empty(r, 204);
}

int crud_route(struct req *r, sqlite3 *db, const struct crud *c, const char *const *seg, int nseg)
{
	int get = strcmp(r->method, "GET") == 0;
	int64_t id;

	if (nseg == 0 && get && c->list)
		return c->list(r, db);
	if (nseg == 0 && get) {
		sqlite3_stmt *st = NULL;
		json_t *items = json_array();

		if (sqlite3_prepare_v2(db, c->ids_sql, -1, &st, NULL) != SQLITE_OK) {
			json_decref(items);
			return reply_db_error(r, db);
		}
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_t *item = c->get(db, sqlite3_column_int64(st, 0));
			if (item)
				json_array_append_new(items, item);
		}
		sqlite3_finalize(st);
		return reply_json(r, 200,
				  json_pack("{s:I, s:o}", "total", (json_int_t)json_array_size(items), "items", items));
	}
	if (nseg == 0 && strcmp(r->method, "POST") == 0)
		return c->save(r, db, -1, 0);
	if (nseg > 1)
		return reply_error(r, 404, "not_found", "no such resource");
	if (nseg == 1) {
		if ((id = path_id(seg[0])) < 0)
			return reply_error(r, 404, "not_found", "no such %s", c->noun);
		if (get) {
			json_t *item = c->get(db, id);
			return item ? reply_json(r, 200, item)
				    : reply_error(r, 404, "not_found", "no %s %lld", c->noun, (long long)id);
		}
		if (c->put && strcmp(r->method, "PUT") == 0)
			return c->save(r, db, id, 0);
		if (strcmp(r->method, "PATCH") == 0)
			return c->save(r, db, id, 1);
		if (strcmp(r->method, "DELETE") == 0)
			return c->del(r, db, id);
	}
	return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
}

json_t *fwdstats_load(const char *run_dir)
{
	char path[256];

	fwdstats_path(run_dir, path, sizeof(path));
	return json_load_file(path, 0, NULL);
}
