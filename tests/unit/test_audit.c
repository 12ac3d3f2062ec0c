/* test_audit.c - the audit log's retention: rows older than audit_retention_days go, newer ones
 * stay, 0 keeps every row, and a long backlog goes in bounded parts (each call says whether it
 * stopped with rows left). */
#include "testlib.h"

#include "audit.h"
#include "settings.h"

/* n rows of action `what`, days old. */
static void add_rows(sqlite3 *db, int n, int days, const char *what)
{
	char sql[300];

	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < %d) "
		 "INSERT INTO audit (ts, username, action, object_type) SELECT unixepoch() - %d * 86400, 'admin', "
		 "'%s', 'proxy' FROM k",
		 n, days, what);
	assert_int_equal(tl_exec(db, sql), SQLITE_OK);
}

static int count(sqlite3 *db, const char *what)
{
	char sql[120];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit WHERE action = '%s'", what);
	return tl_int(db, sql);
}

static void test_retention_in_parts(void **state)
{
	char *dir = tl_tmpdir(), err[600];
	sqlite3 *db = tl_db(dir, "a.db");
	int more = -1;

	(void)state;
	add_rows(db, 25, 400, "old");	/* past the default 365 days */
	add_rows(db, 3, 300, "recent"); /* within them */
	add_rows(db, 2, 364, "edge");	/* a day inside */
	/* 10 a batch, 2 batches a call: 20 go, the call says more may be left */
	assert_int_equal(audit_prune(db, 10, 2, &more), 20);
	assert_int_equal(more, 1);
	assert_int_equal(count(db, "old"), 5);
	/* the rest, and the call says it is done (a batch that was not full) */
	assert_int_equal(audit_prune(db, 10, 2, &more), 5);
	assert_int_equal(more, 0);
	assert_int_equal(count(db, "old"), 0);
	assert_int_equal(count(db, "recent"), 3);
	assert_int_equal(count(db, "edge"), 2);
	/* nothing left to do: 0, and not more */
	assert_int_equal(audit_prune(db, 10, 2, &more), 0);
	assert_int_equal(more, 0);
	/* exactly a full batch left: one more call finds nothing, and says so */
	add_rows(db, 10, 400, "old");
	assert_int_equal(audit_prune(db, 10, 1, &more), 10);
	assert_int_equal(more, 1);
	assert_int_equal(audit_prune(db, 10, 1, &more), 0);
	assert_int_equal(more, 0);
	/* a shorter retention takes the recent ones too; 0 keeps everything */
	add_rows(db, 4, 400, "old");
	assert_int_equal(settings_set(db, "audit_retention_days", "0", err, sizeof(err)), 0);
	assert_int_equal(audit_prune(db, 10, 2, &more), 0);
	assert_int_equal(more, 0);
	assert_int_equal(count(db, "old"), 4);
	assert_int_equal(settings_set(db, "audit_retention_days", "200", err, sizeof(err)), 0);
	assert_int_equal(audit_prune(db, 10, 2, &more), 9);
	assert_int_equal(count(db, "old") + count(db, "recent") + count(db, "edge"), 0);
	db_close(db);
	tl_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retention_in_parts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
