/* res_audit.c - /api/v1/audit: search the audit log (admins). */
#include "resources.h"

#include "log.h"
#include "settings.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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
	char like[2 * 200 + 3]; /* '%', the term (200 bytes at most) each byte perhaps escaped, '%' */

	(void)seg;
	if (nseg != 0)
		return reply_error(r, 404, "not_found", "no such resource");
	if (!(db = read_only_start(r, "only admins read the audit log")))
		return MHD_YES;
	if ((a_from && (from = path_id(a_from)) < 0) || (a_to && (to = path_id(a_to)) < 0) ||
	    (a_cursor && (cursor = path_id(a_cursor)) < 0) ||
	    (a_limit && ((limit = path_id(a_limit)) < 1 || limit > 1000)))
		return reply_error(r, 400, "bad_request",
				   "from, to and cursor are positive integers; limit is 1 to 1000");
	if ((q && strlen(q) > 200) || (user && strlen(user) > 64) || (action && strlen(action) > 64))
		return reply_error(r, 400, "bad_request", "search terms are too long");
	if (sqlite3_prepare_v2(
		db,
		"SELECT id, ts, username, remote_addr, action, object_type, object_id, before_json, after_json, "
		"request_id, result FROM audit WHERE (?1 IS NULL OR username = ?1) AND (?2 IS NULL OR action = ?2) "
		"AND (?3 = 0 OR ts >= ?3) AND (?4 = 0 OR ts <= ?4) AND (?5 = 0 OR id < ?5) AND (?6 IS NULL OR "
		"(username || ' ' || action || ' ' || object_type || ' ' || object_id || ' ' || "
		"coalesce(before_json, '') || ' ' || coalesce(after_json, '')) LIKE ?6 ESCAPE '\\') "
		"ORDER BY id DESC LIMIT ?7",
		-1, &st, NULL) != SQLITE_OK)
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
		json_t *b = sqlite3_column_type(st, 7) == SQLITE_NULL
				? json_null()
				: json_loads((const char *)sqlite3_column_text(st, 7), 0, NULL);
		json_t *a = sqlite3_column_type(st, 8) == SQLITE_NULL
				? json_null()
				: json_loads((const char *)sqlite3_column_text(st, 8), 0, NULL);
		json_array_append_new(
		    items,
		    json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "id",
			      (json_int_t)sqlite3_column_int64(st, 0), "ts", (json_int_t)sqlite3_column_int64(st, 1),
			      "user", sqlite3_column_text(st, 2), "remote_addr", sqlite3_column_text(st, 3), "action",
			      sqlite3_column_text(st, 4), "object_type", sqlite3_column_text(st, 5), "object_id",
			      sqlite3_column_text(st, 6), "before", b ? b : json_null(), "after", a ? a : json_null(),
			      "request_id", sqlite3_column_text(st, 9), "result", sqlite3_column_text(st, 10)));
	}
	sqlite3_finalize(st);
	{
		size_t n = json_array_size(items);
		json_t *next = (int64_t)n == limit ? json_object_get(json_array_get(items, n - 1), "id") : NULL;
		return reply_json(
		    r, 200, json_pack("{s:I, s:o, s:O?}", "total", (json_int_t)n, "items", items, "next_cursor", next));
	}
}
