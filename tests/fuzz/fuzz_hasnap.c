/* libFuzzer: the HA master's configuration snapshot, as the backup applies it (api/hasnap.c).
 * It arrives authenticated, but a bug or another version on the master must still not crash the
 * backup or leave it half-changed: whatever hasnap_apply refuses changes nothing (a digest of
 * every synced table and ha_state is the same before and after), whatever it takes leaves
 * exactly the snapshot's version recorded. One in-memory DB, migrated once, carries over. */
#include "../../api/hasnap.h"
#include "db.h"
#include "migrate.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sqlite3 *db;

static char *digest(void)
{
	static const char *const sql =
	    "SELECT (SELECT json_group_array(json_array(id, name)) FROM orgs) || (SELECT "
	    "json_group_array(json_array(id, "
	    "username, role, password_hash)) FROM users) || (SELECT json_group_array(json_array(id, name, host, port)) "
	    "FROM "
	    "proxies) || (SELECT json_group_array(json_array(id, client_ip, proxy_id, enabled)) FROM mappings) || "
	    "(SELECT "
	    "json_group_array(json_array(key, value)) FROM settings) || (SELECT "
	    "json_group_array(json_array(mapping_id, pos, "
	    "proxy_id)) FROM mapping_failover) || (SELECT count(*) FROM api_keys) || (SELECT count(*) FROM webhooks) "
	    "|| "
	    "(SELECT count(*) FROM org_networks) || (SELECT json_group_array(json_array(user_id, org_id, role)) FROM "
	    "user_orgs) || (SELECT json_group_array(json_array(org_id, key, value)) FROM org_settings) || (SELECT "
	    "json_group_array(json_array(name, seq)) FROM sqlite_sequence) || (SELECT json_array(origin, generation) "
	    "FROM "
	    "ha_state)";
	sqlite3_stmt *st;
	char *out = NULL;

	assert(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert(out);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[400], *before, *after;
	json_t *snap;
	int from, to;

	if (!db) {
		assert(db_open(":memory:", DB_CREATE, &db, err, sizeof(err)) == 0);
		assert(migrate_run(db, migrations_builtin, migrations_builtin_count, -1, &from, &to, err,
				   sizeof(err)) == 0);
	}
	if (!(snap = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL)))
		return 0;
	before = digest();
	if (hasnap_apply(db, snap, err, sizeof(err)) < 0) {
		assert(err[0]);
		after = digest();
		assert(strcmp(before, after) == 0); /* refused: nothing changed */
	} else {
		sqlite3_stmt *st;
		assert(sqlite3_prepare_v2(db, "SELECT origin, generation FROM ha_state", -1, &st, NULL) == SQLITE_OK);
		assert(sqlite3_step(st) == SQLITE_ROW);
		assert(strcmp((const char *)sqlite3_column_text(st, 0),
			      json_string_value(json_object_get(snap, "origin"))) == 0);
		assert(sqlite3_column_int64(st, 1) == json_integer_value(json_object_get(snap, "generation")));
		sqlite3_finalize(st);
		after = NULL;
	}
	free(before);
	free(after);
	json_decref(snap);
	return 0;
}
