/* res_proxies_csv.c - GET /api/v1/proxies/export (CSV, never a password) and POST
 * /api/v1/proxies/import: CSV (columns name, type, host, port, username, password,
 * expected_exit) or a list of proxy URIs (socks5://user:pass@host:port#name,
 * http://host:port), one per line. All or nothing: every line is checked first and errors come
 * back per line; then one transaction upserts by name in the request's organisation. A password
 * left empty keeps the stored one while the proxy stays where it is (credentials never follow
 * it to a new endpoint). ?dry_run=true checks and counts only. */
#include "resources.h"

#include "csv.h"
#include "db.h"
#include "parse.h"
#include "proxybody.h"
#include "proxyuri.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_MAX 10000 /* lines */

int res_proxies_export(struct req *r, sqlite3 *db)
{
	return reply_csv_export(r, db, "name,type,host,port,username,expected_exit",
				"SELECT name, type, host, port, username, expected_exit FROM proxies ORDER BY id",
				"pgw-proxies.csv", NULL);
}

/* One URI line as a proxy body (proxy_uri_parse()). NULL with the reason in err. */
static json_t *uri_body(const char *line, char *err, size_t errlen)
{
	struct proxy_uri u;
	json_t *b;

	if (proxy_uri_parse(line, &u, err, errlen) < 0) /* (it wipes u when it fails) */
		return NULL;
	b = json_pack("{s:s, s:s, s:s, s:I}", "name", u.name, "type", u.type, "host", u.host, "port",
		      (json_int_t)u.port);
	if (b && u.has_user && json_object_set_new(b, "username", json_string(u.user)) < 0)
		json_decref(b), b = NULL;
	if (b && u.has_pass && json_object_set_new(b, "password", json_string(u.pass)) < 0)
		json_decref(b), b = NULL;
	explicit_bzero(&u, sizeof(u));
	if (!b) /* jansson takes only UTF-8 */
		snprintf(err, errlen, "not UTF-8 text");
	return b;
}

/* Compared with the stored proxy of this name: 0 unchanged, 1 create, 2 update. What the file
 * leaves out (username, password, expected_exit) is kept, so it changes nothing. */
/* 0 unchanged, 1 new, 2 updated. A dry run (blind_pw) never compares a password: it would tell
 * whether a guess is the stored one, with nothing written and nothing audited (found by a review:
 * passwords are write-only); such a line counts as updated. */
static int compare(sqlite3 *db, json_t *b, int blind_pw)
{
	sqlite3_stmt *st = NULL;
	json_t *pw = json_object_get(b, "password"), *user = json_object_get(b, "username"),
	       *exit = json_object_get(b, "expected_exit");
	int c = 1;

	if (sqlite3_prepare_v2(db,
			       "SELECT type = ?2 AND host = ?3 AND port = ?4 AND (?5 IS NULL OR username = ?5) AND "
			       "(?6 IS NULL OR expected_exit = ?6) AND (?7 IS NULL OR password = ?7) FROM proxies "
			       "WHERE name = ?1",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, json_string_value(json_object_get(b, "name")), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, json_string_value(json_object_get(b, "type")), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, json_string_value(json_object_get(b, "host")), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, json_integer_value(json_object_get(b, "port")));
		if (user)
			sqlite3_bind_text(st, 5, json_string_value(user), -1, SQLITE_STATIC);
		if (exit)
			sqlite3_bind_text(st, 6, json_string_value(exit), -1, SQLITE_STATIC);
		if (pw)
			sqlite3_bind_text(st, 7, json_string_value(pw), -1, SQLITE_STATIC);
		c = sqlite3_step(st) == SQLITE_ROW ? (sqlite3_column_int(st, 0) && !(pw && blind_pw) ? 0 : 2) : 1;
	}
	sqlite3_finalize(st);
	return c;
}

/* The rows as proxy bodies, checked: bodies[1..n-1] (index 0 unused), or a reply sent. */
static int parse_rows(struct req *r, sqlite3 *db, int csv, json_t **bodies_out, size_t *n_out)
{
	json_t *bodies = json_array(), *errors = json_array(), *b;
	struct csv_row *rows = NULL;
	char err[256] = "not valid";
	size_t n = 0;
	int col[PROXY_NCOLS], rc = -1;
	struct net_lan lan;
	const struct net_lan *refuse = proxy_refuse(db, r->api->cfg, &lan);

	json_array_append_new(bodies, json_null()); /* lines count from 1: the header, or nothing */
	if (csv) {
		if (csv_parse(r->raw ? r->raw : "", r->raw_len, &rows, &n, err, sizeof(err)) < 0) {
			reply_error(r, 400, "bad_request", "not valid CSV: %s; nothing was imported", err);
			goto out;
		}
		if (n && csv_columns(&rows[0], proxy_col_names, PROXY_NCOLS, col, err, sizeof(err)) < 0) {
			reply_error(r, 400, "bad_request", "%s", err);
			goto out;
		}
		if (!n || col[PROXY_COL_NAME] < 0 || col[PROXY_COL_TYPE] < 0 || col[PROXY_COL_HOST] < 0 ||
		    col[PROXY_COL_PORT] < 0) {
			reply_error(r, 400, "bad_request",
				    "line 1 must name the columns name, type, host and port (username, password, "
				    "expected_exit optional)");
			goto out;
		}
		for (size_t i = 1; i < n; i++) {
			b = rows[i].n != rows[0].n ? NULL : proxy_csv_body(&rows[i], col, err, sizeof(err));
			if (rows[i].n != rows[0].n)
				snprintf(err, sizeof(err), "wrong number of fields");
			if (b && proxy_body_check(b, 0, refuse, err, sizeof(err)) < 0) {
				json_decref(b);
				b = NULL;
			}
			if (b)
				json_object_set_new(b, "_line", json_integer(rows[i].line));
			else
				json_array_append_new(errors,
						      json_pack("{s:i, s:s}", "line", rows[i].line, "error", err));
			json_array_append_new(bodies, b ? b : json_null());
		}
	} else { /* a URI per line; empty lines and # comments skipped */
		size_t tlen = r->raw_len;
		char *text = malloc(tlen + 1), *pos, *ln;
		int line = 0;
		if (!text) {
			reply_error(r, 500, "internal", "out of memory");
			goto out;
		}
		memcpy(text, r->raw ? r->raw : "", tlen);
		text[tlen] = 0;
		if (memchr(text, 0, tlen)) {
			explicit_bzero(text, tlen);
			free(text);
			reply_error(r, 400, "bad_request", "a NUL byte in the list; nothing was imported");
			goto out;
		}
		for (pos = text; proxy_uri_next_line(&pos, &ln, &line);) {
			if (json_array_size(bodies) > IMPORT_MAX) {
				explicit_bzero(text, tlen);
				free(text);
				reply_error(r, 400, "bad_request", "more than %d proxies; nothing was imported",
					    IMPORT_MAX);
				goto out;
			}
			b = uri_body(ln, err, sizeof(err));
			if (b && proxy_body_check(b, 0, refuse, err, sizeof(err)) < 0) {
				json_decref(b);
				b = NULL;
			}
			if (b)
				json_object_set_new(b, "_line", json_integer(line));
			else
				json_array_append_new(errors, json_pack("{s:i, s:s}", "line", line, "error", err));
			json_array_append_new(bodies, b ? b : json_null());
		}
		explicit_bzero(text, tlen);
		free(text);
	}
	if (json_array_size(bodies) < 2 && !json_array_size(errors)) {
		reply_error(r, 400, "bad_request", "no proxies in it; nothing was imported");
		goto out;
	}
	for (size_t i = 1; i < json_array_size(bodies); i++) { /* one name once */
		const char *ni = json_string_value(json_object_get(json_array_get(bodies, i), "name"));
		for (size_t k = 1; ni && k < i; k++) {
			const char *nk = json_string_value(json_object_get(json_array_get(bodies, k), "name"));
			if (nk && strcmp(ni, nk) == 0) {
				json_array_append_new(errors,
						      json_pack("{s:O, s:s}", "line",
								json_object_get(json_array_get(bodies, i), "_line"),
								"error", "the name appears twice in the file"));
				break;
			}
		}
	}
	if (json_array_size(errors)) {
		reply_error_with(r, 400, "bad_request", json_pack("{s:O}", "lines", errors),
				 "%zu line(s) have errors; nothing was imported", json_array_size(errors));
		goto out;
	}
	*bodies_out = json_incref(bodies);
	*n_out = json_array_size(bodies);
	rc = 0;
out:
	if (rows)
		explicit_bzero(rows, n * sizeof(*rows)); /* passwords */
	free(rows);
	json_decref(bodies);
	json_decref(errors);
	return rc;
}

int res_proxies_import(struct req *r, sqlite3 *db)
{
	const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *dry = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "dry_run");
	int dry_run = 0, counts[3] = {0}, csv, ok;
	json_t *bodies = NULL, *after;
	sqlite3_stmt *st = NULL;
	size_t n = 0;

	if (!paths_media_type(ct, "text/csv") && !paths_media_type(ct, "text/plain"))
		return reply_error(r, 415, "unsupported_media_type",
				   "send a CSV file (Content-Type: text/csv) or proxy URIs, one per line (text/plain)");
	if (dry && parse_bool(dry, &dry_run) < 0)
		return reply_error(r, 400, "bad_request", "'dry_run' must be true or false");
	csv = paths_media_type(ct, "text/csv");
	if (parse_rows(r, db, csv, &bodies, &n) < 0)
		return MHD_YES;
	int *change = calloc(n, sizeof(int));
	if (!change) {
		json_decref(bodies);
		return reply_error(r, 500, "internal", "out of memory");
	}
	for (size_t i = 1; i < n; i++)
		counts[change[i] = compare(db, json_array_get(bodies, i), dry_run)]++;
	if (!dry_run) {
		ok =
		    db_begin(db) == 0 &&
		    sqlite3_prepare_v2(
			db,
			"INSERT INTO main.proxies (name, type, host, port, username, password, expected_exit, org_id) "
			"VALUES (?1, ?2, ?3, ?4, coalesce(?5, ''), coalesce(?6, ''), coalesce(?7, ''), " ORG_OWNER ") "
			"ON CONFLICT (org_id, name) DO UPDATE SET type = excluded.type, host = excluded.host, "
			"port = excluded.port, "
			/* what the file does not give is kept, but credentials never follow a new endpoint */
			"username = CASE WHEN ?5 IS NOT NULL THEN excluded.username WHEN main.proxies.type = "
			"excluded.type AND main.proxies.host = excluded.host AND main.proxies.port = excluded.port "
			"THEN "
			"main.proxies.username ELSE '' END, password = CASE WHEN ?6 IS NOT NULL THEN excluded.password "
			"WHEN main.proxies.type = excluded.type AND main.proxies.host = excluded.host AND "
			"main.proxies.port = excluded.port THEN main.proxies.password ELSE '' END, expected_exit = "
			"coalesce(?7, main.proxies.expected_exit), updated_at = unixepoch()",
			-1, &st, NULL) == SQLITE_OK;
		for (size_t i = 1; ok && i < n; i++) {
			json_t *b = json_array_get(bodies, i), *pw = json_object_get(b, "password");
			if (!change[i])
				continue;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			sqlite3_bind_text(st, 1, json_string_value(json_object_get(b, "name")), -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, json_string_value(json_object_get(b, "type")), -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, json_string_value(json_object_get(b, "host")), -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 4, json_integer_value(json_object_get(b, "port")));
			if (json_object_get(b, "username"))
				sqlite3_bind_text(st, 5, json_string_value(json_object_get(b, "username")), -1,
						  SQLITE_STATIC);
			if (pw)
				sqlite3_bind_text(st, 6, json_string_value(pw), -1, SQLITE_STATIC);
			if (json_object_get(b, "expected_exit"))
				sqlite3_bind_text(st, 7, json_string_value(json_object_get(b, "expected_exit")), -1,
						  SQLITE_STATIC);
			ok = sqlite3_step(st) == SQLITE_DONE;
		}
		sqlite3_finalize(st);
		if (!ok || db_commit(db) < 0) {
			int rc = reply_db_error(r, db);
			db_rollback(db);
			free(change);
			json_decref(bodies);
			return rc;
		}
		after =
		    json_pack("{s:i, s:i, s:i}", "created", counts[1], "updated", counts[2], "unchanged", counts[0]);
		api_audit(r, "proxy.import", "proxy", csv ? "csv" : "uris", NULL, after, "ok");
		json_decref(after);
		if (counts[1] + counts[2])
			api_notify(r, TOPIC_PROXIES);
	}
	free(change);
	json_decref(bodies);
	return reply_json(r, 200,
			  json_pack("{s:b, s:I, s:i, s:i, s:i}", "dry_run", dry_run, "rows", (json_int_t)(n - 1),
				    "created", counts[1], "updated", counts[2], "unchanged", counts[0]));
}
