/* res_csv.c - GET /api/v1/mappings/export and POST /api/v1/mappings/import (CSV).
 * Columns: client_ip, proxy (the proxy's name), enabled (true/false, default true), label.
 * Import is all-or-nothing: every line is checked first and errors come back per line; the
 * proxies of enabled rows pass the health gate; then one transaction upserts by client_ip. */
#include "resources.h"

#include "csv.h"
#include "db.h"
#include "gate.h"
#include "mapping_rules.h"
#include "net.h"
#include "parse.h"
#include "settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { COL_IP, COL_PROXY, COL_ENABLED, COL_LABEL, NCOLS };
static const char *const col_names[NCOLS] = {"client_ip", "proxy", "enabled", "label"};

int reply_csv_export(struct req *r, sqlite3 *db, const char *header, const char *sql, const char *filename,
		     void (*row)(FILE *f, sqlite3_stmt *st))
{
	sqlite3_stmt *st = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ret;

	if (!f)
		return reply_error(r, 500, "internal", "out of memory");
	fprintf(f, "%s\r\n", header);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (row) {
				row(f, st);
			} else {
				for (int c = 0; c < sqlite3_column_count(st); c++) {
					if (c)
						fputc(',', f);
					csv_write_field(f, (const char *)sqlite3_column_text(st, c));
				}
			}
			fputs("\r\n", f);
		}
	}
	sqlite3_finalize(st);
	fclose(f);
	ret = reply_csv_download(r, buf, len, filename);
	free(buf);
	return ret;
}

int reply_csv_download(struct req *r, const char *csv, size_t len, const char *filename)
{
	char disp[128];
	int ret;

	snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", filename);
	r->extra_header[0] = "Content-Disposition";
	r->extra_header[1] = disp;
	ret = reply_text(r, 200, "text/csv; charset=utf-8", csv, len);
	r->extra_header[0] = r->extra_header[1] = NULL;
	return ret;
}

static void mapping_row(FILE *f, sqlite3_stmt *st)
{
	csv_write_field(f, (const char *)sqlite3_column_text(st, 0));
	fputc(',', f);
	csv_write_field(f, (const char *)sqlite3_column_text(st, 1));
	fputs(sqlite3_column_int(st, 2) ? ",true," : ",false,", f);
	csv_write_field(f, (const char *)sqlite3_column_text(st, 3));
}

int res_mappings_export(struct req *r, sqlite3 *db)
{
	return reply_csv_export(
	    r, db, "client_ip,proxy,enabled,label",
	    "SELECT m.client_ip, p.name, m.enabled, m.label FROM mappings m JOIN proxies p ON p.id = "
	    "m.proxy_id ORDER BY m.id",
	    "pgw-mappings.csv", mapping_row);
}

struct line {
	int line;
	char ip[NET_IP_STR_MAX]; /* canonical */
	int64_t proxy_id;
	int enabled;
	const char *label;
	int change; /* 0 unchanged, 1 create, 2 update */
	int gate;   /* its proxy must pass the health gate first */
};

static int64_t proxy_by_name(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st = NULL;
	int64_t id = -1;

	if (sqlite3_prepare_v2(db, "SELECT id FROM proxies WHERE name = ?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			id = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return id;
}

/* Compared with the stored mapping of this client: 0 unchanged, 1 create, 2 update. */
static int compare(sqlite3 *db, const struct line *l)
{
	sqlite3_stmt *st = NULL;
	int c = 1;

	if (sqlite3_prepare_v2(
		db, "SELECT proxy_id = ?2 AND enabled = ?3 AND label = ?4 FROM mappings WHERE client_ip = ?1", -1, &st,
		NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, l->ip, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, l->proxy_id);
		sqlite3_bind_int(st, 3, l->enabled);
		sqlite3_bind_text(st, 4, l->label, -1, SQLITE_STATIC);
		c = sqlite3_step(st) == SQLITE_ROW ? (sqlite3_column_int(st, 0) ? 0 : 2) : 1;
	}
	sqlite3_finalize(st);
	return c;
}

/* Does this line, applied to the mapping of its client as stored now, need the health gate? */
static int gate_needed(sqlite3 *db, const struct line *l)
{
	sqlite3_stmt *st = NULL;
	int exists = 0, old_enabled = 0;
	int64_t old_proxy = 0;

	if (sqlite3_prepare_v2(db, "SELECT proxy_id, enabled FROM mappings WHERE client_ip = ?1", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_text(st, 1, l->ip, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			exists = 1;
			old_proxy = sqlite3_column_int64(st, 0);
			old_enabled = sqlite3_column_int(st, 1);
		}
	}
	sqlite3_finalize(st);
	return mapping_gate_needed(exists, old_proxy, old_enabled, l->proxy_id, l->enabled);
}

/* The health gate, by the same rule as the mapping handlers (mapping_gate_needed), once per
 * proxy, side by side: a file naming many proxies, some of them black holes, is not held for one
 * full wait each. Once one is down or not answered, none more is asked after twice one wait (the
 * answer is a refusal anyway: as a failover mapping's gate); until then every one is, so a large
 * file of proxies that are up passes. 0 when every one passed, else the reply sent (rc): 422
 * with the checks that failed (error.checks), the ids not asked (error.unchecked) and not
 * answered (error.unanswered); 503 when none failed but some were not answered (both lists). */
static int gate_lines(struct req *r, sqlite3 *db, struct line *lines, size_t n, int *rc)
{
	int64_t *ids = malloc(n * sizeof(*ids));
	json_t **res = malloc(n * sizeof(*res)), *checks = json_array(), *unchecked = json_array(),
	       *unanswered = json_array();
	int *st = malloc(n * sizeof(*st)), g;
	unsigned wait = gate_wait_ms(db, r->api->cfg);
	size_t k = 0;

	for (size_t i = 1; i < n; i++)
		lines[i].gate = gate_needed(db, &lines[i]);
	for (size_t i = 1; ids && i < n; i++) {
		int seen = 0;
		for (size_t j = 0; j < k; j++)
			seen |= ids[j] == lines[i].proxy_id;
		if (lines[i].gate && !seen)
			ids[k++] = lines[i].proxy_id;
	}
	if (!ids || !res || !st || !checks || !unchecked || !unanswered)
		g = -ENOMEM;
	else
		g = k ? gate_check_many(r->api->cfg, ids, k, wait, 2 * wait, res, st) : 0;
	for (size_t i = 0; g == 0 && i < k; i++) {
		if (st[i] == 0)
			json_array_append(checks, res[i]);
		else if (st[i] == -ECANCELED)
			json_array_append_new(unchecked, json_integer(ids[i]));
		else if (st[i] == -ETIMEDOUT)
			json_array_append_new(unanswered, json_integer(ids[i]));
		json_decref(res[i]);
	}
	if (g == -ENOMEM)
		*rc = reply_error(r, 500, "internal", "out of memory");
	else if (g < 0)
		*rc = reply_gate_unavailable(r, g);
	else if (json_array_size(checks)) {
		char more[80] = "";
		if (json_array_size(unchecked) + json_array_size(unanswered))
			snprintf(more, sizeof(more), " (%zu more not checked, %zu not answered)",
				 json_array_size(unchecked), json_array_size(unanswered));
		*rc = reply_error_with(
		    r, 422, "proxy_down",
		    json_pack("{s:O, s:O, s:O}", "checks", checks, "unchecked", unchecked, "unanswered", unanswered),
		    "%zu proxy(ies) failed their health check%s; nothing was imported", json_array_size(checks), more);
	} else if (json_array_size(unanswered))
		*rc = reply_error_with(r, 503, "unavailable",
				       json_pack("{s:O, s:O}", "unchecked", unchecked, "unanswered", unanswered),
				       "pgw-healthd did not answer in time for %zu proxy(ies) (%zu more not checked); "
				       "nothing was imported",
				       json_array_size(unanswered), json_array_size(unchecked));
	else
		g = 1;
	free(ids);
	free(res);
	free(st);
	json_decref(checks);
	json_decref(unchecked);
	json_decref(unanswered);
	return g == 1 ? 0 : -1;
}

int res_mappings_import(struct req *r, sqlite3 *db)
{
	const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *dry = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "dry_run");
	int dry_run = 0, col[NCOLS], counts[3] = {0}, rc = MHD_YES;
	char err[256];
	struct csv_row *rows = NULL;
	struct line *lines = NULL;
	json_t *errors = json_array();
	size_t n = 0;

	if (!paths_media_type(ct, "text/csv")) {
		rc = reply_error(r, 415, "unsupported_media_type", "send the file as Content-Type: text/csv");
		goto out;
	}
	if (dry && parse_bool(dry, &dry_run) < 0) {
		rc = reply_error(r, 400, "bad_request", "'dry_run' must be true or false");
		goto out;
	}
	if (csv_parse(r->raw ? r->raw : "", r->raw_len, &rows, &n, err, sizeof(err)) < 0) {
		rc = reply_error(r, 400, "bad_request", "not valid CSV: %s; nothing was imported", err);
		goto out;
	}
	if (n == 0) {
		rc = reply_error(r, 400, "bad_request",
				 "the file is empty; the first line names the columns: "
				 "client_ip,proxy,enabled,label");
		goto out;
	}
	if (csv_columns(&rows[0], col_names, NCOLS, col, err, sizeof(err)) < 0) {
		rc = reply_error(r, 400, "bad_request", "%s", err);
		goto out;
	}
	if (col[COL_IP] < 0 || col[COL_PROXY] < 0) {
		rc = reply_error(r, 400, "bad_request",
				 "line 1 must name the columns client_ip and proxy (enabled, label optional)");
		goto out;
	}
	lines = calloc(n, sizeof(*lines));
	for (size_t i = 1; lines && i < n; i++) {
		struct csv_row *row = &rows[i];
		struct line *l = &lines[i];
		const char *why = NULL, *ipwhy = NULL;
		char whybuf[160];

		l->line = row->line;
		if (row->n != rows[0].n)
			why = "wrong number of fields";
		else if (client_ip_check(db, r->api->cfg, row->field[col[COL_IP]], l->ip, &ipwhy) < 0) {
			snprintf(whybuf, sizeof(whybuf), "client_ip %s", ipwhy);
			why = whybuf;
		} else if ((l->proxy_id = proxy_by_name(db, csv_unformula(row->field[col[COL_PROXY]]))) < 0)
			why = "no proxy with this name";
		else if (col[COL_ENABLED] >= 0 && row->field[col[COL_ENABLED]][0] &&
			 parse_bool(row->field[col[COL_ENABLED]], &l->enabled) < 0)
			why = "enabled must be true or false";
		else if (col[COL_LABEL] >= 0 && utf8_chars(csv_unformula(row->field[col[COL_LABEL]])) > 128)
			why = "label is longer than 128 characters";
		if (!why) {
			if (col[COL_ENABLED] < 0 || !row->field[col[COL_ENABLED]][0])
				l->enabled = 1;
			l->label = col[COL_LABEL] >= 0 ? csv_unformula(row->field[col[COL_LABEL]]) : "";
			for (size_t k = 1; k < i; k++)
				if (lines[k].ip[0] && strcmp(lines[k].ip, l->ip) == 0)
					why = "client_ip appears twice in the file";
		}
		if (why) {
			json_array_append_new(errors, json_pack("{s:i, s:s}", "line", row->line, "error", why));
			l->ip[0] = '\0';
		}
	}
	if (!lines) {
		rc = reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	if (json_array_size(errors)) {
		rc = reply_error_with(r, 400, "bad_request", json_pack("{s:O}", "lines", errors),
				      "%zu line(s) have errors; nothing was imported", json_array_size(errors));
		goto out;
	}
	if (gate_lines(r, db, lines, n, &rc) < 0)
		goto out;
	for (size_t i = 1; i < n; i++)
		counts[lines[i].change = compare(db, &lines[i])]++;
	if (!dry_run) {
		sqlite3_stmt *st = NULL;
		int ok =
		    db_begin(db) == 0 &&
		    sqlite3_prepare_v2(
			db,
			"INSERT INTO main.mappings (client_ip, proxy_id, enabled, label, org_id) VALUES (?1, ?2, ?3, "
			"?4, " ORG_OWNER ") ON CONFLICT(client_ip) DO UPDATE SET proxy_id = excluded.proxy_id, "
			"enabled = excluded.enabled, label = excluded.label, updated_at = unixepoch() "
			"WHERE main.mappings.org_id = excluded.org_id",
			-1, &st, NULL) == SQLITE_OK;
		for (size_t i = 1; ok && i < n; i++) {
			char canon[NET_IP_STR_MAX];
			const char *why = NULL;
			if (lines[i].change == 0)
				continue;
			/* still the organisation's, now that the write lock is held (its networks may have
			 * changed during the health gate's wait) */
			if (client_ip_check(db, r->api->cfg, lines[i].ip, canon, &why) < 0) {
				sqlite3_finalize(st);
				db_rollback(db);
				rc = reply_error(r, 409, "conflict",
						 "line %zu: client_ip %s; nothing was imported (the organisation's "
						 "networks changed: try again)",
						 i + 1, why);
				goto out;
			}
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, lines[i].ip, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, lines[i].proxy_id);
			sqlite3_bind_int(st, 3, lines[i].enabled);
			sqlite3_bind_text(st, 4, lines[i].label, -1, SQLITE_STATIC);
			ok = sqlite3_step(st) == SQLITE_DONE;
		}
		sqlite3_finalize(st);
		if (!ok || db_commit(db) < 0) {
			rc = reply_db_error(r, db);
			db_rollback(db);
			goto out;
		}
		{
			json_t *after = json_pack("{s:i, s:i, s:i}", "created", counts[1], "updated", counts[2],
						  "unchanged", counts[0]);
			api_audit(r, "mapping.import", "mapping", "csv", NULL, after, "ok");
			json_decref(after);
		}
		if (counts[1] + counts[2])
			api_notify(r, TOPIC_MAPPINGS);
	}
	rc = reply_json(r, 200,
			json_pack("{s:b, s:i, s:i, s:i, s:i}", "dry_run", dry_run, "rows", (int)(n - 1), "created",
				  counts[1], "updated", counts[2], "unchanged", counts[0]));
out:
	free(rows);
	free(lines);
	json_decref(errors);
	return rc;
}
