/* res_health.c - /api/v1/health and /health/{id}/history, and the one health row that GET,
 * the live events (feed.c) and the dashboard share. */
#include "resources.h"

#include <string.h>

json_t *health_row(sqlite3_stmt *st)
{
	return json_pack(
	    "{s:I, s:s, s:o, s:s, s:o, s:s, s:o, s:o, s:o, s:b, s:b, s:o, s:s, s:s, s:o, s:s, s:s, s:b, s:s}",
	    "proxy_id", (json_int_t)sqlite3_column_int64(st, 0), "status", sqlite3_column_text(st, 1), "latency_ms",
	    json_nullable_int(st, 2), "exit_ip", sqlite3_column_text(st, 3), "checked_at", json_nullable_int(st, 4),
	    "last_error", sqlite3_column_text(st, 5), "connect_ms", json_nullable_int(st, 6), "handshake_ms",
	    json_nullable_int(st, 7), "first_byte_ms", json_nullable_int(st, 8), "pipelining",
	    sqlite3_column_int(st, 9), "stale", sqlite3_column_int(st, 10), "fresh_until", json_nullable_int(st, 11),
	    "dns", sqlite3_column_text(st, 12), "dns_error", sqlite3_column_text(st, 13), "dns_latency_ms",
	    json_nullable_int(st, 14), "udp", sqlite3_column_text(st, 15), "udp_error", sqlite3_column_text(st, 16),
	    "early_data", sqlite3_column_int(st, 17), "address", sqlite3_column_text(st, 18));
}

int res_health(struct req *r, const char *const *seg, int nseg)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	json_t *items = json_array();
	int64_t id = 0;
	long limit = 100;

	if (nseg != 0 && (nseg != 2 || strcmp(seg[1], "history") != 0 || (id = path_id(seg[0])) < 0)) {
		reply_error(r, 404, "not_found", "no such resource"); /* the path first, whatever the method */
		goto done;
	}
	if (!(db = read_only_start(r, NULL)))
		goto done;
	if (nseg == 0) {
		if (sqlite3_prepare_v2(db, HEALTH_ROW_SQL " ORDER BY proxy_id", -1, &st, NULL) != SQLITE_OK) {
			reply_db_error(r, db);
			goto done;
		}
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(items, health_row(st));
		sqlite3_finalize(st);
		reply_json(r, 200,
			   json_pack("{s:I, s:O}", "total", (json_int_t)json_array_size(items), "items", items));
		goto done;
	}
	{
		const char *l = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
		if (l && ((limit = path_id(l)) < 1 || limit > 1000)) {
			reply_error(r, 400, "bad_request", "'limit' must be from 1 to 1000");
			goto done;
		}
	}
	{
		json_t *p = proxy_json(db, id);
		if (!p) {
			reply_error(r, 404, "not_found", "no proxy %lld", (long long)id);
			goto done;
		}
		json_decref(p);
	}
	if (sqlite3_prepare_v2(db,
			       "SELECT checked_at, status, latency_ms, exit_ip, error FROM health_history "
			       "WHERE proxy_id = ?1 ORDER BY id DESC LIMIT ?2",
			       -1, &st, NULL) != SQLITE_OK) {
		reply_db_error(r, db);
		goto done;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, limit);
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(
		    items, json_pack("{s:I, s:s, s:o, s:s, s:s}", "checked_at", (json_int_t)sqlite3_column_int64(st, 0),
				     "status", sqlite3_column_text(st, 1), "latency_ms", json_nullable_int(st, 2),
				     "exit_ip", sqlite3_column_text(st, 3), "error", sqlite3_column_text(st, 4)));
	sqlite3_finalize(st);
	reply_json(r, 200, json_pack("{s:I, s:O}", "total", (json_int_t)json_array_size(items), "items", items));
done:
	json_decref(items);
	return MHD_YES;
}
