/* hasnap.c - see hasnap.h.
 *
 * Applying a snapshot is a row difference, not a replacement, so what hangs off unchanged rows
 * on this node (proxy health, usage) stays. Each table has its key (the columns that name a
 * row; a failover list's whole row, since its entries are replaced, never updated) and, where
 * it has one, the UNIQUE column other than the key with a placeholder that no real row can hold:
 * before rows are updated, the ones that change move their unique value to its placeholder, so
 * a swap (two proxies trading names, two mappings trading addresses) or a chain of renames
 * applies in any order. Order: rows the master no longer has are deleted, children first; then
 * the master's rows are updated or inserted, parents first; foreign keys are checked at the
 * commit. */
#include "hasnap.h"

#include "db.h"
#include "hastate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS_MAX 3

static const struct sync_table {
	const char *name, *key[KEYS_MAX];
	const char *unique;	 /* a UNIQUE column besides the key, or NULL */
	const char *placeholder; /* SQL: a value for it no real row holds (CHECKs pass) */
	const char *seq;	 /* an AUTOINCREMENT table: its sqlite_sequence is carried */
} tables[] = {
    /* a name starting with a control character: the API refuses one (J_NAME), so no real row
     * holds it (an organisation's admin could name a proxy '~ha~N', and every sync failed) */
    {"orgs", {"id"}, "name", "char(1) || 'ha' || id", "orgs"},
    {"users", {"id"}, "username", "'~ha~' || id", "users"},
    {"user_orgs", {"user_id", "org_id"}, NULL, NULL, NULL},
    {"api_keys", {"id"}, NULL, NULL, "api_keys"},
    {"org_networks", {"cidr"}, NULL, NULL, NULL},
    {"org_settings", {"org_id", "key"}, NULL, NULL, NULL},
    {"settings", {"key"}, NULL, NULL, NULL},
    {"proxies", {"id"}, "name", "char(1) || 'ha' || id", NULL},
    /* a non-canonical IPv6 text: the API stores only canonical ones */
    {"mappings", {"id"}, "client_ip", "printf('0:0:0:0:0:0:%x:%x', id >> 16, id & 65535)", NULL},
    {"mapping_failover", {"mapping_id", "pos", "proxy_id"}, NULL, NULL, NULL},
    {"webhooks", {"id"}, "name", "char(1) || 'ha' || id", "webhooks"},
};
#define N_TABLES (sizeof(tables) / sizeof(tables[0]))
/* settings that name this node's own interfaces and files: never synced */
#define LOCAL_SETTINGS HA_LOCAL_SETTINGS_SQL
/* columns of synced tables that each node keeps for itself (pgw-api sets them from its own counters) */
static const char *const local_columns[][2] = {{"mappings", "quota_exceeded"}};
/* a proxy whose row changed in these is probed afresh here before its clients pass */
static const char *const proxy_endpoint[] = {"created_at", "org_id",   "type",	   "host",
					     "port",	   "username", "password", "expected_exit"};

static int nkeys(const struct sync_table *t)
{
	int n = 0;
	while (n < KEYS_MAX && t->key[n])
		n++;
	return n;
}

static int local_column(const char *table, const char *col)
{
	for (size_t i = 0; i < sizeof(local_columns) / sizeof(local_columns[0]); i++)
		if (strcmp(local_columns[i][0], table) == 0 && strcmp(local_columns[i][1], col) == 0)
			return 1;
	return 0;
}

static int run(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : -1;
}

static json_t *column_json(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(st, i));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(st, i));
	case SQLITE_TEXT:
		return json_stringn((const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
	case SQLITE_NULL:
		return json_null();
	default:
		return NULL; /* no synced column holds a blob */
	}
}

json_t *hasnap_build(sqlite3 *db, int with_tables)
{
	json_t *snap = NULL, *tabs = json_object(), *seqs = json_object();
	struct ha_state s;
	int schema = 0, ok = 1;

	if (!tabs || !seqs || db_exec(db, "BEGIN") < 0) {
		json_decref(tabs);
		json_decref(seqs);
		return NULL;
	}
	if (ha_state_read(db, &s) < 0 || db_user_version(db, &schema) < 0)
		ok = 0;
	for (size_t t = 0; ok && with_tables && t < N_TABLES; t++) {
		/* built to its length: a fixed buffer once truncated it when LOCAL_SETTINGS grew */
		char *sql =
		    sqlite3_mprintf("SELECT * FROM main.%s%s", tables[t].name,
				    strcmp(tables[t].name, "settings") == 0 ? " WHERE key NOT IN " LOCAL_SETTINGS : "");
		sqlite3_stmt *st;
		json_t *cols = json_array(), *rows = json_array();
		int rc, n;

		if (!sql || run(db, sql, &st) < 0) {
			sqlite3_free(sql);
			json_decref(cols);
			json_decref(rows);
			ok = 0;
			break;
		}
		sqlite3_free(sql);
		n = sqlite3_column_count(st);
		for (int i = 0; i < n; i++)
			if (!local_column(tables[t].name, sqlite3_column_name(st, i)))
				json_array_append_new(cols, json_string(sqlite3_column_name(st, i)));
		while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			json_t *row = json_array(), *v;
			for (int i = 0; ok && i < n; i++)
				if (!local_column(tables[t].name, sqlite3_column_name(st, i)) &&
				    (!(v = column_json(st, i)) || json_array_append_new(row, v) < 0))
					ok = 0;
			json_array_append_new(rows, row);
		}
		if (ok && rc != SQLITE_DONE)
			ok = 0;
		sqlite3_finalize(st);
		json_object_set_new(tabs, tables[t].name, json_pack("{s:o,s:o}", "columns", cols, "rows", rows));
		if (tables[t].seq) /* ids an AUTOINCREMENT table handed out: never handed out again */
			json_object_set_new(seqs, tables[t].seq, json_integer(0));
	}
	if (ok && with_tables) {
		sqlite3_stmt *st;
		if (run(db, "SELECT name, seq FROM sqlite_sequence", &st) == 0) {
			while (sqlite3_step(st) == SQLITE_ROW)
				if (json_object_get(seqs, (const char *)sqlite3_column_text(st, 0)))
					json_object_set_new(seqs, (const char *)sqlite3_column_text(st, 0),
							    json_integer(sqlite3_column_int64(st, 1)));
			sqlite3_finalize(st);
		}
	}
	db_exec(db, "COMMIT");
	if (ok)
		snap = json_pack("{s:s,s:I,s:i}", "origin", s.origin, "generation", (json_int_t)s.generation, "schema",
				 schema);
	if (snap && with_tables) {
		json_object_set(snap, "tables", tabs);
		json_object_set(snap, "sequences", seqs);
	}
	json_decref(tabs);
	json_decref(seqs);
	return snap;
}

static int ident_ok(const char *s)
{
	return *s && strlen(s) < 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s);
}

int hasnap_check(const json_t *snap, int schema, char *err, size_t errlen)
{
	const json_t *tabs, *seqs, *o = json_object_get(snap, "origin"), *g = json_object_get(snap, "generation"),
				   *sc = json_object_get(snap, "schema");

	if (!json_is_object(snap) || !json_is_string(o) || json_string_length(o) < 1 || json_string_length(o) > 16 ||
	    strspn(json_string_value(o), "0123456789abcdef") != json_string_length(o) || !json_is_integer(g) ||
	    json_integer_value(g) < 0 || !json_is_integer(sc)) {
		snprintf(err, errlen, "the master's answer is not a configuration (origin, generation, schema)");
		return -1;
	}
	if (json_integer_value(sc) != schema) {
		snprintf(err, errlen,
			 "the master's database is at schema %lld, this node's at %d: run the same pgw version on both",
			 (long long)json_integer_value(sc), schema);
		return -1;
	}
	if (!(tabs = json_object_get(snap, "tables")))
		return 0;
	seqs = json_object_get(snap, "sequences");
	if (!json_is_object(tabs) || json_object_size(tabs) != N_TABLES || !json_is_object(seqs)) {
		snprintf(err, errlen, "the master's answer does not hold the %zu synced tables and their sequences",
			 N_TABLES);
		return -1;
	}
	for (size_t t = 0; t < N_TABLES; t++) {
		const json_t *tab = json_object_get(tabs, tables[t].name), *cols = json_object_get(tab, "columns"),
			     *rows = json_object_get(tab, "rows"), *row, *v, *c, *sq;
		size_t i, j, nc, found = 0;
		int keycol = -1;

		if (tables[t].seq &&
		    (!json_is_integer(sq = json_object_get(seqs, tables[t].seq)) || json_integer_value(sq) < 0)) {
			snprintf(err, errlen, "table %s: no sequence", tables[t].name);
			return -1;
		}
		if (!json_is_array(cols) || !json_is_array(rows) || !(nc = json_array_size(cols)) || nc > 64) {
			snprintf(err, errlen, "table %s: no columns and rows", tables[t].name);
			return -1;
		}
		json_array_foreach(cols, i, c)
		{
			if (!json_is_string(c) || !ident_ok(json_string_value(c)) ||
			    local_column(tables[t].name, json_string_value(c))) {
				snprintf(err, errlen, "table %s: a column name that is not one it syncs",
					 tables[t].name);
				return -1;
			}
			for (j = 0; j < KEYS_MAX && tables[t].key[j]; j++)
				found += strcmp(json_string_value(c), tables[t].key[j]) == 0;
			if (strcmp(json_string_value(c), "key") == 0)
				keycol = (int)i;
		}
		if (found != (size_t)nkeys(&tables[t])) {
			snprintf(err, errlen, "table %s: its key columns are missing", tables[t].name);
			return -1;
		}
		json_array_foreach(rows, i, row)
		{
			if (!json_is_array(row) || json_array_size(row) != nc) {
				snprintf(err, errlen, "table %s: row %zu has not %zu values", tables[t].name, i, nc);
				return -1;
			}
			json_array_foreach(row, j, v) if (!json_is_integer(v) && !json_is_string(v) &&
							  !json_is_null(v) && !json_is_real(v))
			{
				snprintf(err, errlen, "table %s: row %zu holds a value of no column type",
					 tables[t].name, i);
				return -1;
			}
			if (strcmp(tables[t].name, "settings") == 0 && keycol >= 0) {
				const json_t *k = json_array_get(row, (size_t)keycol);
				if (json_is_string(k) && ha_setting_is_local(json_string_value(k))) {
					snprintf(err, errlen, "table settings: %s is each node's own",
						 json_string_value(k));
					return -1;
				}
			}
		}
	}
	return 0;
}

static void bind_json(sqlite3_stmt *st, int i, const json_t *v)
{
	if (json_is_integer(v))
		sqlite3_bind_int64(st, i, json_integer_value(v));
	else if (json_is_real(v))
		sqlite3_bind_double(st, i, json_real_value(v));
	else if (json_is_string(v))
		sqlite3_bind_text(st, i, json_string_value(v), (int)json_string_length(v), SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* A row's key as a string: the same for a JSON row and a DB row with the same key values. */
static void key_json(const json_t *row, const int *kcol, int nk, char *out, size_t size)
{
	size_t o = 0;
	out[0] = '\0';
	for (int k = 0; k < nk && o < size; k++) {
		const json_t *v = json_array_get(row, (size_t)kcol[k]);
		if (json_is_integer(v))
			o += (size_t)snprintf(out + o, size - o, "i%lld|", (long long)json_integer_value(v));
		else if (json_is_string(v))
			o += (size_t)snprintf(out + o, size - o, "s%zu:%s|", json_string_length(v),
					      json_string_value(v));
		else
			o += (size_t)snprintf(out + o, size - o, "n|");
	}
}

static void key_db(sqlite3_stmt *st, int nk, char *out, size_t size)
{
	size_t o = 0;
	out[0] = '\0';
	for (int k = 0; k < nk && o < size; k++) {
		if (sqlite3_column_type(st, k) == SQLITE_INTEGER)
			o += (size_t)snprintf(out + o, size - o, "i%lld|", (long long)sqlite3_column_int64(st, k));
		else if (sqlite3_column_type(st, k) == SQLITE_TEXT)
			o += (size_t)snprintf(out + o, size - o, "s%d:%s|", sqlite3_column_bytes(st, k),
					      (const char *)sqlite3_column_text(st, k));
		else
			o += (size_t)snprintf(out + o, size - o, "n|");
	}
}

/* The snapshot's column index of each key column of t into kcol. */
static void key_columns(const struct sync_table *t, const json_t *cols, int kcol[KEYS_MAX])
{
	const json_t *c;
	size_t i;

	for (int k = 0; k < KEYS_MAX; k++) {
		kcol[k] = -1;
		json_array_foreach(cols, i, c) if (t->key[k] && strcmp(json_string_value(c), t->key[k]) == 0) kcol[k] =
		    (int)i;
	}
}

/* "k1 IS ?a AND k2 IS ?b ...", each key bound at its snapshot column's position + 1 */
static void key_where(FILE *f, const struct sync_table *t, const int kcol[KEYS_MAX])
{
	for (int k = 0; k < nkeys(t); k++)
		fprintf(f, "%s%s IS ?%d", k ? " AND " : "", t->key[k], kcol[k] + 1);
}

static void bind_row(sqlite3_stmt *st, const json_t *row)
{
	const json_t *v;
	size_t i;

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	json_array_foreach(row, i, v) if ((int)i < sqlite3_bind_parameter_count(st)) bind_json(st, (int)i + 1, v);
}

/* Rows of table t that the master no longer has: deleted. */
static int apply_deletes(sqlite3 *db, const struct sync_table *t, const json_t *tab, char *err, size_t errlen)
{
	const json_t *cols = json_object_get(tab, "columns"), *rows = json_object_get(tab, "rows"), *row;
	json_t *keep = json_object(), *gone = json_array();
	int kcol[KEYS_MAX], nk = nkeys(t), rc = 0;
	char key[1400], *sel_sql = NULL, *del_sql = NULL;
	size_t i, n1 = 0, n2 = 0;
	FILE *fs = open_memstream(&sel_sql, &n1), *fd = open_memstream(&del_sql, &n2);
	sqlite3_stmt *sel = NULL, *del = NULL;

	key_columns(t, cols, kcol);
	json_array_foreach(rows, i, row)
	{
		key_json(row, kcol, nk, key, sizeof(key));
		json_object_set_new(keep, key, json_true());
	}
	if (fs && fd) {
		fprintf(fs, "SELECT ");
		for (int k = 0; k < nk; k++)
			fprintf(fs, "%s%s", k ? ", " : "", t->key[k]);
		fprintf(fs, " FROM main.%s%s", t->name,
			strcmp(t->name, "settings") == 0 ? " WHERE key NOT IN " LOCAL_SETTINGS : "");
		fprintf(fd, "DELETE FROM main.%s WHERE ", t->name);
		for (int k = 0; k < nk; k++)
			fprintf(fd, "%s%s IS ?%d", k ? " AND " : "", t->key[k], k + 1);
	}
	if (fs)
		fclose(fs);
	if (fd)
		fclose(fd);
	if (!fs || !fd || run(db, sel_sql, &sel) < 0 || run(db, del_sql, &del) < 0)
		rc = -1;
	/* collect first: no deletes while the SELECT walks the table */
	while (!rc && sqlite3_step(sel) == SQLITE_ROW) {
		key_db(sel, nk, key, sizeof(key));
		if (!json_object_get(keep, key)) {
			json_t *k = json_array();
			for (int j = 0; j < nk; j++)
				json_array_append_new(k, sqlite3_column_type(sel, j) == SQLITE_INTEGER
							     ? json_integer(sqlite3_column_int64(sel, j))
							     : json_string((const char *)sqlite3_column_text(sel, j)));
			json_array_append_new(gone, k);
		}
	}
	json_array_foreach(gone, i, row)
	{
		if (rc)
			break;
		bind_row(del, row);
		if (sqlite3_step(del) != SQLITE_DONE)
			rc = -1;
	}
	if (rc)
		snprintf(err, errlen, "table %s: cannot remove what the master no longer has: %s", t->name,
			 sqlite3_errmsg(db));
	json_decref(gone);
	json_decref(keep);
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	free(sel_sql);
	free(del_sql);
	return rc;
}

/* The per-node state of a proxy whose endpoint (or identity: an id handed out again) changed
 * starts over: probed afresh through this node's WAN before its clients pass. */
static int proxy_reprobe(sqlite3 *db, const json_t *cols, const json_t *row, int idcol)
{
	char *sql = NULL;
	size_t n = 0, i;
	const json_t *c;
	FILE *f = open_memstream(&sql, &n);
	sqlite3_stmt *st = NULL;
	int changed = 0, rc = 0;

	if (!f)
		return -1;
	fprintf(f, "SELECT 1 FROM main.proxies WHERE id IS ?%d AND (0", idcol + 1);
	json_array_foreach(cols, i, c) for (size_t k = 0; k < sizeof(proxy_endpoint) / sizeof(proxy_endpoint[0]);
					    k++) if (strcmp(json_string_value(c), proxy_endpoint[k]) == 0)
	    fprintf(f, " OR %s IS NOT ?%zu", proxy_endpoint[k], i + 1);
	fprintf(f, ")");
	fclose(f);
	if (run(db, sql, &st) < 0)
		rc = -1;
	else {
		bind_row(st, row);
		changed = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	free(sql);
	if (!rc && changed) {
		rc = run(db,
			 "UPDATE main.proxy_health SET status = 'unknown', fresh_until = NULL, checked_at = NULL, "
			 "up_probes = 0, consecutive_successes = 0, exit_ip = '', pipelining = 0, early_data = 0, "
			 "dns_status = 'unknown', "
			 "udp = 'unknown' WHERE proxy_id = ?1",
			 &st);
		if (!rc) {
			bind_json(st, 1, json_array_get(row, (size_t)idcol));
			rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
			sqlite3_finalize(st);
		}
	}
	return rc;
}

/* The master's rows of table t: inserted, or updated where they differ (their unique column
 * first moved out of the way, so values may trade places). */
static int apply_rows(sqlite3 *db, const struct sync_table *t, const json_t *tab, char *err, size_t errlen)
{
	const json_t *cols = json_object_get(tab, "columns"), *rows = json_object_get(tab, "rows"), *row, *c;
	size_t nc = json_array_size(cols), i;
	int kcol[KEYS_MAX], rc = 0, proxies = strcmp(t->name, "proxies") == 0;
	char *where = NULL, *ins = NULL, *upd = NULL, *dif = NULL, *mov = NULL;
	size_t wl = 0, il = 0, ul = 0, dl = 0;
	FILE *w = open_memstream(&where, &wl), *fi = open_memstream(&ins, &il), *fu = open_memstream(&upd, &ul),
	     *fd = open_memstream(&dif, &dl);
	sqlite3_stmt *sx = NULL, *si = NULL, *su = NULL, *sd = NULL, *sm = NULL;
	json_t *changed = json_array();

	key_columns(t, cols, kcol);
	if (!w || !fi || !fu || !fd) {
		rc = -1;
		goto out;
	}
	key_where(w, t, kcol);
	fclose(w);
	w = NULL;
	/* values are bound by position: ?1..?nc are the row's columns in the snapshot's order */
	fprintf(fi, "INSERT INTO main.%s (", t->name);
	json_array_foreach(cols, i, c) fprintf(fi, "%s%s", i ? ", " : "", json_string_value(c));
	fprintf(fi, ") VALUES (");
	for (i = 0; i < nc; i++)
		fprintf(fi, "%s?%zu", i ? ", " : "", i + 1);
	fprintf(fi, ")");
	fclose(fi);
	fi = NULL;
	fprintf(fu, "UPDATE main.%s SET ", t->name);
	json_array_foreach(cols, i, c) fprintf(fu, "%s%s = ?%zu", i ? ", " : "", json_string_value(c), i + 1);
	fprintf(fu, " WHERE %s", where);
	fclose(fu);
	fu = NULL;
	fprintf(fd, "SELECT 1 FROM main.%s WHERE %s AND (0", t->name, where);
	json_array_foreach(cols, i, c) fprintf(fd, " OR %s IS NOT ?%zu", json_string_value(c), i + 1);
	fprintf(fd, ")");
	fclose(fd);
	fd = NULL;
	{
		char *sql = sqlite3_mprintf("SELECT 1 FROM main.%s WHERE %s", t->name, where);
		if (!sql || run(db, sql, &sx) < 0 || run(db, ins, &si) < 0 || run(db, upd, &su) < 0 ||
		    run(db, dif, &sd) < 0)
			rc = -1;
		if (!rc && t->unique) {
			mov = sqlite3_mprintf("UPDATE main.%s SET %s = %s WHERE %s", t->name, t->unique, t->placeholder,
					      where);
			if (!mov || run(db, mov, &sm) < 0)
				rc = -1;
		}
		sqlite3_free(sql);
	}
	/* pass 1: which rows exist and differ; their unique values step aside */
	json_array_foreach(rows, i, row)
	{
		if (rc)
			break;
		bind_row(sd, row);
		if (sqlite3_step(sd) != SQLITE_ROW)
			continue;
		json_array_append(changed, (json_t *)row);
		if (sm) {
			bind_row(sm, row);
			if (sqlite3_step(sm) != SQLITE_DONE)
				rc = -1;
		}
	}
	/* pass 2: the changed rows take the master's values; new rows come in */
	json_array_foreach(changed, i, row)
	{
		if (rc)
			break;
		if (proxies && proxy_reprobe(db, cols, row, kcol[0]) < 0)
			rc = -1;
		bind_row(su, row);
		if (!rc && sqlite3_step(su) != SQLITE_DONE)
			rc = -1;
	}
	json_array_foreach(rows, i, row)
	{
		if (rc)
			break;
		bind_row(sx, row);
		if (sqlite3_step(sx) == SQLITE_ROW)
			continue;
		bind_row(si, row);
		if (sqlite3_step(si) != SQLITE_DONE)
			rc = -1;
	}
out:
	if (rc)
		snprintf(err, errlen, "table %s: %s", t->name, sqlite3_errmsg(db));
	if (w)
		fclose(w);
	if (fi)
		fclose(fi);
	if (fu)
		fclose(fu);
	if (fd)
		fclose(fd);
	sqlite3_finalize(sx);
	sqlite3_finalize(si);
	sqlite3_finalize(su);
	sqlite3_finalize(sd);
	sqlite3_finalize(sm);
	sqlite3_free(mov);
	free(where), free(ins), free(upd), free(dif);
	json_decref(changed);
	return rc;
}

/* sqlite_sequence never goes back: an id the master handed out (and maybe deleted) is never
 * handed out here again (a deleted user's token must not become the next user's). */
static int apply_sequences(sqlite3 *db, const json_t *seqs)
{
	sqlite3_stmt *up = NULL, *in = NULL;
	const char *name;
	json_t *v;
	int rc = 0;

	if (run(db, "UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1", &up) < 0 ||
	    run(db,
		"INSERT INTO sqlite_sequence (name, seq) SELECT ?1, ?2 WHERE NOT EXISTS (SELECT 1 FROM "
		"sqlite_sequence WHERE name = ?1)",
		&in) < 0)
		rc = -1;
	json_object_foreach((json_t *)seqs, name, v)
	{
		int known = 0;
		for (size_t t = 0; t < N_TABLES; t++)
			known |= tables[t].seq && strcmp(tables[t].seq, name) == 0;
		if (rc || !known)
			continue;
		for (int k = 0; k < 2 && !rc; k++) {
			sqlite3_stmt *st = k ? in : up;
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, json_integer_value(v));
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = -1;
		}
	}
	sqlite3_finalize(up);
	sqlite3_finalize(in);
	return rc;
}

int hasnap_apply(sqlite3 *db, const json_t *snap, char *err, size_t errlen)
{
	const json_t *tabs = json_object_get(snap, "tables");
	sqlite3_stmt *st;
	int rc = 0, schema = 0;

	err[0] = '\0';
	if (db_user_version(db, &schema) < 0) {
		snprintf(err, errlen, "the database is unreadable");
		return -1;
	}
	if (hasnap_check(snap, schema, err, errlen) < 0)
		return -1;
	if (!tabs) {
		snprintf(err, errlen, "the snapshot holds no tables");
		return -1;
	}
	if (db_begin(db) < 0) {
		snprintf(err, errlen, "the database is busy: %s", sqlite3_errmsg(db));
		return -1;
	}
	db_exec(db, "PRAGMA defer_foreign_keys = ON");
	/* the mappings' addresses before: one that moved leaves its usage history and quota count
	 * behind, as on the master (0029's triggers leave the placeholder step aside alone) */
	if (db_exec(db, "CREATE TEMP TABLE IF NOT EXISTS ha_was (id INTEGER PRIMARY KEY, client_ip TEXT NOT NULL);"
			"DELETE FROM temp.ha_was; INSERT INTO temp.ha_was SELECT id, client_ip FROM main.mappings") < 0)
		rc = -1, snprintf(err, errlen, "mappings: %s", sqlite3_errmsg(db));
	for (size_t t = N_TABLES; !rc && t-- > 0;)
		rc = apply_deletes(db, &tables[t], json_object_get(tabs, tables[t].name), err, errlen);
	for (size_t t = 0; !rc && t < N_TABLES; t++)
		rc = apply_rows(db, &tables[t], json_object_get(tabs, tables[t].name), err, errlen);
	if (!rc &&
	    db_exec(db, "DELETE FROM main.client_usage WHERE client_ip IN (SELECT w.client_ip FROM temp.ha_was w "
			"JOIN main.mappings m ON m.id = w.id WHERE m.client_ip IS NOT w.client_ip);"
			"DELETE FROM main.client_quota WHERE client_ip IN (SELECT w.client_ip FROM temp.ha_was w "
			"JOIN main.mappings m ON m.id = w.id WHERE m.client_ip IS NOT w.client_ip);"
			"DROP TABLE temp.ha_was") < 0) {
		snprintf(err, errlen, "mappings moved: %s", sqlite3_errmsg(db));
		rc = -1;
	}
	if (!rc && apply_sequences(db, json_object_get(snap, "sequences")) < 0) {
		snprintf(err, errlen, "sqlite_sequence: %s", sqlite3_errmsg(db));
		rc = -1;
	}
	/* only while this node is not master: a promotion that came in meanwhile wins (its new
	 * origin must not be overwritten by the old master's) */
	if (!rc &&
	    run(db,
		"UPDATE main.ha_state SET origin = ?1, generation = ?2, master_generation = ?2, synced_at_ms = ?3, "
		"in_sync_at_ms = ?3, sync_error = '' WHERE id = 1 AND role IS NOT 'master'",
		&st) == 0) {
		sqlite3_bind_text(st, 1, json_string_value(json_object_get(snap, "origin")), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, json_integer_value(json_object_get(snap, "generation")));
		sqlite3_bind_int64(st, 3, ha_now_ms());
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = -1;
		else if (sqlite3_changes(db) != 1) {
			snprintf(err, errlen, "this node became master meanwhile: not applied");
			rc = -1;
		}
		sqlite3_finalize(st);
	}
	if (!rc && db_commit(db) < 0) {
		snprintf(err, errlen, "cannot commit: %s", sqlite3_errmsg(db));
		rc = -1;
	}
	if (rc) {
		if (!err[0])
			snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		db_rollback(db);
	}
	return rc;
}
