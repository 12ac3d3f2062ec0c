/* libFuzzer: the HA master's configuration snapshot, as the backup applies it (api/hasnap.c).
 * It arrives authenticated, but a bug or another version on the master must still not crash the
 * backup or leave it half-changed: whatever hasnap_apply refuses changes nothing (the database's
 * every byte, sqlite3_serialize, the same before and after), whatever it takes leaves
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

/* Every byte of the main database (sqlite3_serialize): the same before and after whenever nothing
 * in it changed, whatever the table or column. sqlite3_free. */
static unsigned char *image(sqlite3_int64 *n)
{
	unsigned char *p = sqlite3_serialize(db, "main", n, 0);

	assert(p);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[400];
	unsigned char *before;
	sqlite3_int64 n;
	json_t *snap;
	int from, to;

	if (!db) {
		assert(db_open(":memory:", DB_CREATE, &db, err, sizeof(err)) == 0);
		assert(migrate_run(db, migrations_builtin, migrations_builtin_count, -1, &from, &to, err,
				   sizeof(err)) == 0);
	}
	if (!(snap = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL)))
		return 0;
	before = image(&n);
	if (hasnap_apply(db, snap, err, sizeof(err)) < 0) {
		sqlite3_int64 m;
		unsigned char *after = image(&m);
		assert(err[0]);
		assert(m == n && memcmp(before, after, (size_t)n) == 0); /* refused: nothing changed */
		sqlite3_free(after);
	} else {
		sqlite3_stmt *st;
		assert(sqlite3_prepare_v2(db, "SELECT origin, generation FROM ha_state", -1, &st, NULL) == SQLITE_OK);
		assert(sqlite3_step(st) == SQLITE_ROW);
		assert(strcmp((const char *)sqlite3_column_text(st, 0),
			      json_string_value(json_object_get(snap, "origin"))) == 0);
		assert(sqlite3_column_int64(st, 1) == json_integer_value(json_object_get(snap, "generation")));
		sqlite3_finalize(st);
	}
	sqlite3_free(before);
	json_decref(snap);
	return 0;
}
