/* hasnap.c - see hasnap.h. */
#include "hasnap.h"

#include "db.h"
#include "hastate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The synced tables, parents first (applied in this order, deleted from in the reverse), each
 * with its key. */
static const struct sync_table {
	const char *name, *key[2];
} tables[] = {
    {"orgs", {"id"}},
    {"users", {"id"}},
    {"user_orgs", {"user_id", "org_id"}},
    {"api_keys", {"id"}},
    {"org_networks", {"cidr"}},
    {"org_settings", {"org_id", "key"}},
    {"settings", {"key"}},
    {"proxies", {"id"}},
    {"mappings", {"id"}},
    {"mapping_failover", {"mapping_id", "pos"}},
    {"webhooks", {"id"}},
};
#define N_TABLES (sizeof(tables) / sizeof(tables[0]))
/* settings that name this node's own interfaces and files: never synced */
#define LOCAL_SETTINGS "('lan_iface', 'wan_iface', 'dhcp_leases_file', 'health_ca_file')"
static const char *const local_settings[] = {"lan_iface", "wan_iface", "dhcp_leases_file", "health_ca_file"};

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
	json_t *snap = NULL, *tabs = json_object();
	struct ha_state s;
	int schema = 0, ok = 1;

	if (!tabs || db_exec(db, "BEGIN") < 0) {
		json_decref(tabs);
		return NULL;
	}
	if (ha_state_read(db, &s) < 0 || db_user_version(db, &schema) < 0)
		ok = 0;
	for (size_t t = 0; ok && with_tables && t < N_TABLES; t++) {
		char sql[160];
		sqlite3_stmt *st;
		json_t *cols = json_array(), *rows = json_array();
		int rc;

		snprintf(sql, sizeof(sql), "SELECT * FROM main.%s%s", tables[t].name,
			 strcmp(tables[t].name, "settings") == 0 ? " WHERE key NOT IN " LOCAL_SETTINGS : "");
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
			json_decref(cols);
			json_decref(rows);
			ok = 0;
			break;
		}
		for (int i = 0; i < sqlite3_column_count(st); i++)
			json_array_append_new(cols, json_string(sqlite3_column_name(st, i)));
		while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			json_t *row = json_array(), *v;
			for (int i = 0; ok && i < sqlite3_column_count(st); i++)
				if (!(v = column_json(st, i)) || json_array_append_new(row, v) < 0)
					ok = 0;
			json_array_append_new(rows, row);
		}
		if (ok && rc != SQLITE_DONE)
			ok = 0;
		sqlite3_finalize(st);
		json_object_set_new(tabs, tables[t].name, json_pack("{s:o,s:o}", "columns", cols, "rows", rows));
	}
	db_exec(db, "COMMIT");
	if (ok)
		snap = json_pack("{s:s,s:I,s:i}", "origin", s.origin, "generation", (json_int_t)s.generation, "schema",
				 schema);
	if (snap && with_tables)
		json_object_set(snap, "tables", tabs);
	json_decref(tabs);
	return snap;
}

static int ident_ok(const char *s)
{
	return *s && strlen(s) < 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s);
}

int hasnap_check(const json_t *snap, int schema, char *err, size_t errlen)
{
	const json_t *tabs, *o = json_object_get(snap, "origin"), *g = json_object_get(snap, "generation"),
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
	if (!json_is_object(tabs) || json_object_size(tabs) != N_TABLES) {
		snprintf(err, errlen, "the master's answer does not hold the %zu synced tables", N_TABLES);
		return -1;
	}
	for (size_t t = 0; t < N_TABLES; t++) {
		const json_t *tab = json_object_get(tabs, tables[t].name), *cols = json_object_get(tab, "columns"),
			     *rows = json_object_get(tab, "rows"), *row, *v, *c;
		size_t i, j, nc, found = 0;

		if (!json_is_array(cols) || !json_is_array(rows) || !(nc = json_array_size(cols)) || nc > 64) {
			snprintf(err, errlen, "table %s: no columns and rows", tables[t].name);
			return -1;
		}
		json_array_foreach(cols, i, c)
		{
			if (!json_is_string(c) || !ident_ok(json_string_value(c))) {
				snprintf(err, errlen, "table %s: a column name that is not one", tables[t].name);
				return -1;
			}
			for (j = 0; j < 2 && tables[t].key[j]; j++)
				found += strcmp(json_string_value(c), tables[t].key[j]) == 0;
		}
		if (found != (tables[t].key[1] ? 2u : 1u)) {
			snprintf(err, errlen, "table %s: its key columns are missing", tables[t].name);
			return -1;
		}
		json_array_foreach(rows, i, row)
		{
			if (!json_is_array(row) || json_array_size(row) != nc) {
				snprintf(err, errlen, "table %s: row %zu has not %zu values", tables[t].name, i, nc);
				return -1;
			}
			if (strcmp(tables[t].name, "settings") == 0) { /* the column "key" is the first found */
				const json_t *k = NULL;
				json_array_foreach(cols, j, c) if (strcmp(json_string_value(c), "key") == 0) k =
				    json_array_get(row, j);
				for (size_t l = 0; l < sizeof(local_settings) / sizeof(local_settings[0]); l++)
					if (json_is_string(k) && strcmp(json_string_value(k), local_settings[l]) == 0) {
						snprintf(err, errlen, "table settings: %s is each node's own",
							 local_settings[l]);
						return -1;
					}
			}
			json_array_foreach(row, j, v) if (!json_is_integer(v) && !json_is_string(v) &&
							  !json_is_null(v) && !json_is_real(v))
			{
				snprintf(err, errlen, "table %s: row %zu holds a value of no column type",
					 tables[t].name, i);
				return -1;
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
static void key_json(const json_t *row, const int kcol[2], char *out, size_t size)
{
	size_t o = 0;
	for (int k = 0; k < 2 && kcol[k] >= 0 && o < size; k++) {
		const json_t *v = json_array_get(row, (size_t)kcol[k]);
		if (json_is_integer(v))
			o += (size_t)snprintf(out + o, size - o, "i%lld|", (long long)json_integer_value(v));
		else if (json_is_string(v))
			o += (size_t)snprintf(out + o, size - o, "s%s|", json_string_value(v));
		else
			o += (size_t)snprintf(out + o, size - o, "n|");
	}
}

static void key_db(sqlite3_stmt *st, int nk, char *out, size_t size)
{
	size_t o = 0;
	for (int k = 0; k < nk && o < size; k++) {
		if (sqlite3_column_type(st, k) == SQLITE_INTEGER)
			o += (size_t)snprintf(out + o, size - o, "i%lld|", (long long)sqlite3_column_int64(st, k));
		else if (sqlite3_column_type(st, k) == SQLITE_TEXT)
			o += (size_t)snprintf(out + o, size - o, "s%s|", (const char *)sqlite3_column_text(st, k));
		else
			o += (size_t)snprintf(out + o, size - o, "n|");
	}
}

static int run(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : -1;
}

/* Rows of table t that the master no longer has: deleted. */
static int apply_deletes(sqlite3 *db, const struct sync_table *t, const json_t *tab, char *err, size_t errlen)
{
	const json_t *cols = json_object_get(tab, "columns"), *rows = json_object_get(tab, "rows"), *row;
	json_t *keep = json_object();
	int kcol[2] = {-1, -1}, nk = t->key[1] ? 2 : 1, rc = 0;
	char sql[400], key[1200];
	sqlite3_stmt *sel = NULL, *del = NULL;
	size_t i;

	for (int k = 0; k < nk; k++)
		json_array_foreach(cols, i, row) if (strcmp(json_string_value(row), t->key[k]) == 0) kcol[k] = (int)i;
	json_array_foreach(rows, i, row)
	{
		key_json(row, kcol, key, sizeof(key));
		json_object_set_new(keep, key, json_true());
	}
	snprintf(sql, sizeof(sql), "SELECT %s%s%s FROM main.%s%s", t->key[0], nk == 2 ? ", " : "",
		 nk == 2 ? t->key[1] : "", t->name,
		 strcmp(t->name, "settings") == 0 ? " WHERE key NOT IN " LOCAL_SETTINGS : "");
	if (run(db, sql, &sel) < 0)
		rc = -1;
	snprintf(sql, sizeof(sql), "DELETE FROM main.%s WHERE %s IS ?1%s%s%s", t->name, t->key[0],
		 nk == 2 ? " AND " : "", nk == 2 ? t->key[1] : "", nk == 2 ? " IS ?2" : "");
	if (!rc && run(db, sql, &del) < 0)
		rc = -1;
	/* collect first: no deletes while the SELECT walks the table */
	json_t *gone = json_array();
	while (!rc && sqlite3_step(sel) == SQLITE_ROW) {
		key_db(sel, nk, key, sizeof(key));
		if (!json_object_get(keep, key)) {
			json_t *k = json_array();
			for (int j = 0; j < nk; j++) {
				sqlite3_value *v = sqlite3_column_value(sel, j);
				json_array_append_new(k, sqlite3_value_type(v) == SQLITE_INTEGER
							     ? json_integer(sqlite3_value_int64(v))
							     : json_string((const char *)sqlite3_value_text(v)));
			}
			json_array_append_new(gone, k);
		}
	}
	json_array_foreach(gone, i, row)
	{
		if (rc)
			break;
		sqlite3_reset(del);
		for (int j = 0; j < nk; j++)
			bind_json(del, j + 1, json_array_get(row, (size_t)j));
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
	return rc;
}

/* The master's rows of table t: inserted, or updated where they differ. */
static int apply_rows(sqlite3 *db, const struct sync_table *t, const json_t *tab, char *err, size_t errlen)
{
	const json_t *cols = json_object_get(tab, "columns"), *rows = json_object_get(tab, "rows"), *row, *c;
	size_t nc = json_array_size(cols), i, j;
	int kcol[2] = {-1, -1}, nk = t->key[1] ? 2 : 1, rc = 0, replace = strcmp(t->name, "mapping_failover") == 0;
	char *where = NULL, *ins = NULL, *upd = NULL, *del = NULL;
	size_t wl = 0, il = 0, ul = 0;
	FILE *w = open_memstream(&where, &wl), *fi = open_memstream(&ins, &il), *fu = open_memstream(&upd, &ul);
	sqlite3_stmt *sx = NULL, *si = NULL, *su = NULL, *sd = NULL;

	if (!w || !fi || !fu) {
		if (w)
			fclose(w);
		if (fi)
			fclose(fi);
		if (fu)
			fclose(fu);
		free(where), free(ins), free(upd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int k = 0; k < nk; k++) {
		json_array_foreach(cols, i, c) if (strcmp(json_string_value(c), t->key[k]) == 0) kcol[k] = (int)i;
		fprintf(w, "%s%s IS ?%d", k ? " AND " : "", t->key[k], kcol[k] + 1);
	}
	fclose(w);
	/* values are bound by position: ?1..?nc are the row's columns in the snapshot's order */
	fprintf(fi, "INSERT INTO main.%s (", t->name);
	json_array_foreach(cols, i, c) fprintf(fi, "%s%s", i ? ", " : "", json_string_value(c));
	fprintf(fi, ") VALUES (");
	for (i = 0; i < nc; i++)
		fprintf(fi, "%s?%zu", i ? ", " : "", i + 1);
	fprintf(fi, ")");
	fclose(fi);
	fprintf(fu, "UPDATE main.%s SET ", t->name);
	json_array_foreach(cols, i, c) fprintf(fu, "%s%s = ?%zu", i ? ", " : "", json_string_value(c), i + 1);
	fprintf(fu, " WHERE %s AND (", where);
	json_array_foreach(cols, i, c) fprintf(fu, "%s%s IS NOT ?%zu", i ? " OR " : "", json_string_value(c), i + 1);
	fprintf(fu, ")");
	fclose(fu);
	{
		char sql[600];
		snprintf(sql, sizeof(sql), "SELECT 1 FROM main.%s WHERE %s", t->name, where);
		if (run(db, sql, &sx) < 0)
			rc = -1;
		if (replace) {
			del = sqlite3_mprintf("DELETE FROM main.%s WHERE %s", t->name, where);
			if (!rc && (!del || run(db, del, &sd) < 0))
				rc = -1;
		}
	}
	if (!rc && (run(db, ins, &si) < 0 || run(db, upd, &su) < 0))
		rc = -1;
	json_array_foreach(rows, i, row)
	{
		int exists;
		if (rc)
			break;
		sqlite3_reset(sx);
		sqlite3_clear_bindings(sx);
		for (j = 0; j < nc; j++)
			if ((int)j == kcol[0] || (int)j == kcol[1])
				bind_json(sx, (int)j + 1, json_array_get(row, j));
		exists = sqlite3_step(sx) == SQLITE_ROW;
		if (exists && replace) { /* failover lists are replaced, never updated (a trigger says so) */
			sqlite3_reset(sd);
			for (j = 0; j < nc; j++)
				if ((int)j == kcol[0] || (int)j == kcol[1])
					bind_json(sd, (int)j + 1, json_array_get(row, j));
			if (sqlite3_step(sd) != SQLITE_DONE)
				rc = -1;
			exists = 0;
		}
		sqlite3_stmt *s = exists ? su : si;
		if (rc)
			break;
		sqlite3_reset(s);
		for (j = 0; j < nc; j++)
			bind_json(s, (int)j + 1, json_array_get(row, j));
		if (sqlite3_step(s) != SQLITE_DONE)
			rc = -1;
	}
	if (rc)
		snprintf(err, errlen, "table %s: %s", t->name, sqlite3_errmsg(db));
	sqlite3_finalize(sx);
	sqlite3_finalize(si);
	sqlite3_finalize(su);
	sqlite3_finalize(sd);
	sqlite3_free(del);
	free(where), free(ins), free(upd);
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
	for (size_t t = N_TABLES; !rc && t-- > 0;)
		rc = apply_deletes(db, &tables[t], json_object_get(tabs, tables[t].name), err, errlen);
	for (size_t t = 0; !rc && t < N_TABLES; t++)
		rc = apply_rows(db, &tables[t], json_object_get(tabs, tables[t].name), err, errlen);
	if (!rc &&
	    run(db,
		"UPDATE main.ha_state SET origin = ?1, generation = ?2, master_generation = ?2, synced_at_ms = ?3, "
		"in_sync_at_ms = ?3, sync_error = '' WHERE id = 1",
		&st) == 0) {
		sqlite3_bind_text(st, 1, json_string_value(json_object_get(snap, "origin")), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, json_integer_value(json_object_get(snap, "generation")));
		sqlite3_bind_int64(st, 3, ha_now_ms());
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = -1;
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
