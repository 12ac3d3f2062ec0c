/* Schema migrations and the DB layer: from empty, from every earlier version, idempotence,
 * newer/older/corrupt databases refused with a clear message, failed migrations rolled back,
 * and constraints that keep invalid rows out. */
#include "testlib.h"

#include <fcntl.h>

static const struct migration *M = migrations_builtin;
#define NM migrations_builtin_count

/* The schema as text: every object's SQL, sorted, so two DBs can be compared. */
static char *schema_of(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 1 << 16, len = 0;
	char *s = calloc(1, cap);

	assert_int_equal(
	    sqlite3_prepare_v2(db,
			       "SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master "
			       "ORDER BY type, name",
			       -1, &st, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *row = (const char *)sqlite3_column_text(st, 0);
		size_t rl = strlen(row);
		assert_true(len + rl + 2 < cap);
		memcpy(s + len, row, rl);
		len += rl;
		s[len++] = '\n';
	}
	sqlite3_finalize(st);
	return s;
}

static sqlite3 *open_at(const char *dir, const char *name)
{
	char path[400], err[512];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(db_open(path, DB_CREATE, &db, err, sizeof(err)), 0);
	return db;
}

static void test_from_empty(void **state)
{
	char *dir = tl_tmpdir(), err[512];
	sqlite3 *db = open_at(dir, "a.db");
	int from = -1, to = -1, v;

	(void)state;
	assert_true(NM >= 2);
	assert_int_equal(migrate_run(db, M, NM, -1, &from, &to, err, sizeof(err)), 0);
	assert_int_equal(from, 0);
	assert_int_equal(to, migrate_latest(M, NM));
	assert_int_equal(db_user_version(db, &v), 0);
	assert_int_equal(v, to);
	const char *tables[] = {"users", "proxies", "mappings", "settings", "audit", "proxy_health", "health_history"};
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char q[128];
		snprintf(q, sizeof(q), "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='%s'",
			 tables[i]);
		if (tl_int(db, q) != 1)
			fail_msg("table %s missing", tables[i]);
	}
	assert_int_equal(migrate_check_schema(db, err, sizeof(err)), 0);
	db_close(db);
	tl_rmdir(dir);
}

static void test_twice_is_noop(void **state)
{
	char *dir = tl_tmpdir(), err[512];
	sqlite3 *db = open_at(dir, "a.db");
	int from, to;
	char *s1, *s2;

	(void)state;
	assert_int_equal(migrate_run(db, M, NM, -1, &from, &to, err, sizeof(err)), 0);
	s1 = schema_of(db);
	assert_int_equal(migrate_run(db, M, NM, -1, &from, &to, err, sizeof(err)), 0);
	assert_int_equal(from, to);
	s2 = schema_of(db);
	assert_string_equal(s1, s2);
	free(s1);
	free(s2);
	db_close(db);
	tl_rmdir(dir);
}

/* For every earlier version k: a DB at k with data in it upgrades to exactly the schema of a
 * fresh DB, and keeps its rows. */
static void test_from_every_earlier_version(void **state)
{
	char *dir = tl_tmpdir(), err[512], name[32];
	sqlite3 *fresh = open_at(dir, "fresh.db");
	int from, to;
	char *want;

	(void)state;
	assert_int_equal(migrate_run(fresh, M, NM, -1, &from, &to, err, sizeof(err)), 0);
	want = schema_of(fresh);
	for (size_t k = 0; k + 1 < NM; k++) {
		sqlite3 *db;
		char *got;

		snprintf(name, sizeof(name), "v%d.db", M[k].version);
		db = open_at(dir, name);
		assert_int_equal(migrate_run(db, M, NM, M[k].version, &from, &to, err, sizeof(err)), 0);
		assert_int_equal(to, M[k].version);
		/* rows valid at every version since 0001 */
		assert_int_equal(
		    tl_exec(
			db,
			"INSERT INTO proxies (name, type, host, port) VALUES ('p1', 'socks5', '198.51.100.10', 1080);"
			"INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1)"),
		    SQLITE_OK);
		assert_int_equal(migrate_check_schema(db, err, sizeof(err)), -EPROTO);
		assert_non_null(strstr(err, "run 'pgwctl migrate'"));
		assert_int_equal(migrate_run(db, M, NM, -1, &from, &to, err, sizeof(err)), 0);
		assert_int_equal(from, M[k].version);
		assert_int_equal(to, migrate_latest(M, NM));
		got = schema_of(db);
		assert_string_equal(got, want);
		assert_int_equal(tl_int(db, "SELECT count(*) FROM mappings WHERE client_ip = '192.168.2.10'"), 1);
		/* the health row of a proxy that existed before 0002 was created by the upgrade */
		assert_int_equal(
		    tl_int(db, "SELECT count(*) FROM proxy_health WHERE proxy_id = 1 AND status = 'unknown'"), 1);
		free(got);
		db_close(db);
	}
	free(want);
	db_close(fresh);
	tl_rmdir(dir);
}

static void test_newer_db_refused(void **state)
{
	char *dir = tl_tmpdir(), err[512], q[64];
	sqlite3 *db = tl_db(dir, "a.db");
	int from, to, v;

	(void)state;
	snprintf(q, sizeof(q), "PRAGMA user_version = %d", migrate_latest(M, NM) + 1);
	assert_int_equal(tl_exec(db, q), SQLITE_OK);
	assert_int_equal(migrate_run(db, M, NM, -1, &from, &to, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "newer than this pgw knows"));
	assert_int_equal(migrate_check_schema(db, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "PGW_DB: database schema version"));
	assert_non_null(strstr(err, "newer"));
	assert_int_equal(db_user_version(db, &v), 0);
	assert_int_equal(v, migrate_latest(M, NM) + 1); /* untouched */
	db_close(db);
	tl_rmdir(dir);
}

static void test_corrupt_file_refused(void **state)
{
	char *dir = tl_tmpdir(), path[400], err[512];
	sqlite3 *db = NULL;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/garbage.db", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	for (int i = 0; i < 64; i++)
		assert_int_equal(write(fd, "this is not an sqlite database at all!!!", 40), 40);
	close(fd);
	assert_int_equal(db_open(path, DB_CREATE, &db, err, sizeof(err)), -EINVAL);
	assert_null(db);
	assert_non_null(strstr(err, "is not a pgw database or is corrupt"));
	/* and a missing file without DB_CREATE says how to create it */
	snprintf(path, sizeof(path), "%s/missing.db", dir);
	assert_int_equal(db_open(path, 0, &db, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "pgwctl migrate"));
	tl_rmdir(dir);
}

/* A migration that fails half-way leaves nothing behind: not its tables, not its version. */
static void test_failed_migration_rolls_back(void **state)
{
	struct migration *list = calloc(NM + 1, sizeof(*list)); /* every built-in one, plus the broken one */
	char *dir = tl_tmpdir(), err[512];
	sqlite3 *db = open_at(dir, "a.db");
	int from, to, v;
	char *before;

	(void)state;
	assert_non_null(list);
	memcpy(list, M, NM * sizeof(*M));
	list[NM] = (struct migration){migrate_latest(M, NM) + 1, "broken",
				      "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);"};
	assert_int_equal(migrate_run(db, M, NM, -1, &from, &to, err, sizeof(err)), 0);
	before = schema_of(db);
	assert_int_equal(migrate_run(db, list, NM + 1, -1, &from, &to, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "_broken failed: no such table: no_such_table"));
	assert_int_equal(db_user_version(db, &v), 0);
	assert_int_equal(v, migrate_latest(M, NM));
	assert_int_equal(tl_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'"), 0);
	{
		char *after = schema_of(db);
		assert_string_equal(before, after);
		free(after);
	}
	free(before);
	free(list);
	db_close(db);
	tl_rmdir(dir);
}

static void test_pragmas(void **state)
{
	char *dir = tl_tmpdir();
	sqlite3 *db = tl_db(dir, "a.db");
	sqlite3_stmt *st = NULL;

	(void)state;
	assert_int_equal(tl_int(db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	db_close(db);
	tl_rmdir(dir);
}

/* The schema itself refuses rows the application must never see. */
static void test_constraints(void **state)
{
	char *dir = tl_tmpdir();
	sqlite3 *db = tl_db(dir, "a.db");
	static const char *const bad[] = {
	    "INSERT INTO proxies (name, type, host, port) VALUES ('x', 'ftp', 'h', 1)",
	    "INSERT INTO proxies (name, type, host, port) VALUES ('x', 'socks5', 'h', 0)",
	    "INSERT INTO proxies (name, type, host, port) VALUES ('x', 'socks5', 'h', 65536)",
	    "INSERT INTO proxies (name, type, host, port) VALUES ('', 'socks5', 'h', 1)",
	    "INSERT INTO proxies (name, type, host, port) VALUES ('p1', 'http', 'dup-name', 3128)",
	    "INSERT INTO proxies (name, type, host, port, enabled) VALUES ('x', 'socks5', 'h', 1, 2)",
	    "INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.50', 999)",
	    "INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1)",
	    "INSERT INTO mappings (client_ip, proxy_id) VALUES ('not-an-ip', 1)",
	    "INSERT INTO mappings (client_ip, proxy_id) VALUES ('FD00:2::10', 1)", /* not the canonical form */
	    "INSERT INTO mappings (client_ip, proxy_id) VALUES ('fd00:2::10%eth0', 1)",
	    "INSERT INTO mappings (client_ip, proxy_id) VALUES ('fd00:2::10', 1)", /* twice (below) */
	    "INSERT INTO users (username, password_hash, role) VALUES ('eve', '$argon2id$v=19$x', 'root')",
	    "INSERT INTO users (username, password_hash, role) VALUES ('eve', 'plaintext', 'admin')",
	    "INSERT INTO users (username, password_hash, role) VALUES ('e v e', '$argon2id$v=19$x', 'admin')",
	    "INSERT INTO audit (action, after_json) VALUES ('x', '{not json')",
	    "INSERT INTO proxy_health (proxy_id, status) VALUES (1, 'sideways')",
	    "DELETE FROM proxies WHERE id = 1", /* still mapped: RESTRICT */
	};

	(void)state;
	assert_int_equal(
	    tl_exec(db, "INSERT INTO proxies (name, type, host, port) VALUES ('p1', 'socks5', '198.51.100.10', 1080);"
			"INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1);"
			"INSERT INTO mappings (client_ip, proxy_id) VALUES ('fd00:2::10', 1)"), /* 0007 */
	    SQLITE_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = tl_exec(db, bad[i]);
		if (rc == SQLITE_OK)
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(rc & 0xff, SQLITE_CONSTRAINT);
	}
	/* a proxy's health row is created with it and deleted with it */
	assert_int_equal(tl_int(db, "SELECT count(*) FROM proxy_health"), 1);
	assert_int_equal(tl_exec(db, "DELETE FROM mappings; DELETE FROM proxies WHERE id = 1"), SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM proxy_health"), 0);
	db_close(db);
	tl_rmdir(dir);
}

/* data_version (the polling fallback's signal) moves when another connection commits. */
static void test_data_version_sees_other_writers(void **state)
{
	char *dir = tl_tmpdir();
	sqlite3 *a = tl_db(dir, "a.db"), *b = open_at(dir, "a.db");
	int64_t v0, v1, v2;

	(void)state;
	assert_int_equal(db_data_version(a, &v0), 0);
	assert_int_equal(tl_exec(a, "INSERT INTO settings (key, value) VALUES ('k1', 'v')"), SQLITE_OK);
	assert_int_equal(db_data_version(a, &v1), 0);
	assert_true(v1 == v0); /* own commits do not count */
	assert_int_equal(tl_exec(b, "INSERT INTO settings (key, value) VALUES ('k2', 'v')"), SQLITE_OK);
	assert_int_equal(db_data_version(a, &v2), 0);
	assert_true(v2 != v1);
	db_close(b);
	db_close(a);
	tl_rmdir(dir);
}

static void test_transactions(void **state)
{
	char *dir = tl_tmpdir();
	sqlite3 *db = tl_db(dir, "a.db");

	(void)state;
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(tl_exec(db, "INSERT INTO settings (key, value) VALUES ('k', 'v')"), SQLITE_OK);
	db_rollback(db);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM settings WHERE key = 'k'"), 0);
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(tl_exec(db, "INSERT INTO settings (key, value) VALUES ('k', 'v')"), SQLITE_OK);
	assert_int_equal(db_commit(db), 0);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM settings WHERE key = 'k'"), 1);
	db_close(db);
	tl_rmdir(dir);
}

/* A read transaction: one snapshot until its end, whatever another connection commits meanwhile;
 * a DB that cannot be read fails at its begin, with SQLite's message, and leaves nothing open. */
static void test_read_transaction(void **state)
{
	char *dir = tl_tmpdir(), err[200], path[400];
	sqlite3 *a = tl_db(dir, "a.db"), *b = open_at(dir, "a.db");

	(void)state;
	snprintf(path, sizeof(path), "%s/j.db", dir);
	assert_int_equal(db_read_begin(a, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_get_autocommit(a), 0);
	assert_int_equal(tl_exec(b, "INSERT INTO settings (key, value) VALUES ('k', 'v')"), SQLITE_OK);
	assert_int_equal(tl_int(a, "SELECT count(*) FROM settings WHERE key = 'k'"), 0); /* its snapshot */
	db_read_end(a);
	assert_int_equal(sqlite3_get_autocommit(a), 1);
	assert_int_equal(tl_int(a, "SELECT count(*) FROM settings WHERE key = 'k'"), 1);
	assert_int_equal(db_begin(a), 0); /* a transaction of the caller's: neither joined nor ended */
	assert_int_equal(db_read_begin(a, err, sizeof(err)), -EIO);
	assert_int_equal(sqlite3_get_autocommit(a), 0);
	db_rollback(a);

	db_close(b);
	db_close(a);

	/* a rollback-journal file another connection holds exclusively (WAL never keeps readers out):
	 * a's begin fails after its busy wait */
	assert_int_equal(sqlite3_open(path, &a), SQLITE_OK);
	assert_int_equal(sqlite3_open(path, &b), SQLITE_OK);
	assert_int_equal(tl_exec(b, "CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)"), SQLITE_OK);
	sqlite3_busy_timeout(a, 20);
	err[0] = 0;
	assert_int_equal(db_read_begin(a, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "locked"));
	assert_int_equal(sqlite3_get_autocommit(a), 1); /* nothing left open */
	sqlite3_close(b);				/* (its transaction rolled back) */
	assert_int_equal(db_read_begin(a, err, sizeof(err)), 0);
	assert_int_equal(tl_int(a, "SELECT count(*) FROM t"), 0);
	db_read_end(a);
	assert_int_equal(sqlite3_get_autocommit(a), 1);
	sqlite3_close(a);
	tl_rmdir(dir);
}

/* change_seq: triggers count what matters to enforcement, and only that. */
static void test_change_seq_triggers(void **state)
{
	char *dir = tl_tmpdir();
	sqlite3 *db = tl_db(dir, "a.db");
	const char *seq = "SELECT group_concat(seq, ',') FROM (SELECT seq FROM change_seq ORDER BY topic)";
	sqlite3_stmt *st = NULL;
	char before[64], after[64];

	(void)state;
	assert_int_equal(tl_exec(db, "INSERT INTO proxies (name, type, host, port) VALUES ('p', 'socks5', 'h', 1);"
				     "INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1);"
				     "INSERT INTO settings (key, value) VALUES ('k', 'v')"),
			 SQLITE_OK);
	/* topics in order: health, mappings, proxies, settings */
	assert_int_equal(sqlite3_prepare_v2(db, seq, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(before, sizeof(before), "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert_string_equal(before, "0,1,1,1");
	/* a probe result that keeps the status: nothing to reload */
	assert_int_equal(
	    tl_exec(db, "UPDATE proxy_health SET latency_ms = 7, exit_ip = '198.51.100.10', checked_at = 1"),
	    SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'health'"), 0);
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET status = 'up'"), SQLITE_OK);
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET status = 'up', latency_ms = 9"), SQLITE_OK);
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET status = 'down'"), SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'health'"), 2);
	/* the forwarder acts on pipelining (0006): a change of it is a health change too */
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET pipelining = 1"), SQLITE_OK);
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET pipelining = 1, latency_ms = 3"), SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'health'"), 3);
	assert_int_not_equal(tl_exec(db, "UPDATE proxy_health SET pipelining = 2"), SQLITE_OK);
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET pipelining = 0"), SQLITE_OK);
	assert_int_equal(tl_exec(db, "UPDATE mappings SET enabled = 0; DELETE FROM mappings"), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, seq, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(after, sizeof(after), "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert_string_equal(after, "4,3,1,1");
	db_close(db);
	tl_rmdir(dir);
}

/* users (0009): ids are never reused, and every user starts at session generation 0. */
static void test_user_ids_not_reused(void **state)
{
	char *dir = tl_tmpdir();
	sqlite3 *db = tl_db(dir, "a.db");

	(void)state;
	assert_int_equal(
	    tl_exec(db, "INSERT INTO users (username, password_hash, role) VALUES ('a', '$argon2id$x', 'viewer');"
			"DELETE FROM users WHERE username = 'a';"
			"INSERT INTO users (username, password_hash, role) VALUES ('b', '$argon2id$x', 'admin')"),
	    SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT id FROM users WHERE username = 'b'"), 2);
	assert_int_equal(tl_int(db, "SELECT token_gen FROM users WHERE username = 'b'"), 0);
	assert_int_not_equal(tl_exec(db, "UPDATE users SET token_gen = -1"), SQLITE_OK);
	db_close(db);
	tl_rmdir(dir);
}

/* The one text value a query returns, into buf. */
static void text_of(sqlite3 *db, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

/* 0014: a populated install becomes organisation 1 with every object, network and user in it;
 * enforcement reads the same; the schema refuses crossing organisations. */
static void test_orgs_upgrade(void **state)
{
	char *dir = tl_tmpdir(), err[512];
	sqlite3 *db = open_at(dir, "o.db");
	int from, to;
	const char *active_sql = "SELECT group_concat(client_ip || '=' || active, ',') FROM (SELECT * FROM "
				 "mapping_state ORDER BY client_ip)";
	char before[256], after[256];

	(void)state;
	assert_int_equal(migrate_run(db, M, NM, 13, &from, &to, err, sizeof(err)), 0);
	assert_int_equal(
	    tl_exec(
		db,
		"INSERT INTO settings (key, value) VALUES ('lan_cidr', '10.9.0.0/16');"
		"INSERT INTO users (username, password_hash, role) VALUES ('ann', '$argon2id$x', 'admin'), "
		"('bob', '$argon2id$x', 'viewer');"
		"INSERT INTO proxies (name, type, host, port) VALUES ('a', 'socks5', 'h', 1), ('b', 'http', 'h', 2);"
		"UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 60, udp = 'yes' WHERE proxy_id = 1;"
		"INSERT INTO health_history (proxy_id, checked_at, status) VALUES (1, 1, 'up'), (2, 1, 'down');"
		"INSERT INTO mappings (client_ip, proxy_id) VALUES ('10.9.0.1', 1), ('10.9.0.2', 2), ('fd00::1', 1);"
		"INSERT INTO api_keys (name, role, secret_hash) VALUES ('k', 'viewer', "
		"'0000000000000000000000000000000000000000000000000000000000000000');"
		"INSERT INTO audit (action, object_type) VALUES ('proxy.create', 'proxy'), ('auth.login', '')"),
	    SQLITE_OK);
	text_of(db, active_sql, before, sizeof(before));
	assert_string_equal(before, "10.9.0.1=1,10.9.0.2=0,fd00::1=1");
	assert_int_equal(migrate_run(db, M, NM, 14, &from, &to, err, sizeof(err)), 0);
	assert_int_equal(to, 14);
	/* the same clients active: the agent and the forwarder see no change */
	text_of(db, active_sql, after, sizeof(after));
	assert_string_equal(after, before);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM mapping_state WHERE org_id = 1"), 3);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM health_history"), 2);
	assert_int_equal(tl_int(db, "SELECT udp = 'yes' FROM proxy_health WHERE proxy_id = 1"), 1);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM org_networks WHERE org_id = 1 AND cidr = '10.9.0.0/16'"), 1);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM user_orgs WHERE org_id = 1"), 2);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM user_orgs WHERE org_id = 1 AND role = 'admin'"), 1);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM users WHERE superadmin = 1 AND username = 'ann'"), 1);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM users WHERE superadmin = 0 AND username = 'bob'"), 1);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM user_orgs WHERE org_id = 1 AND role = 'viewer'"), 1);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM api_keys WHERE org_id = 1"), 1);
	/* until the API manages memberships, a new user is a member of organisation 1 with their role */
	assert_int_equal(tl_exec(db, "INSERT INTO users (username, password_hash, role) VALUES ('cy', '$argon2id$x', "
				     "'viewer'); UPDATE users SET role = 'admin' WHERE username = 'cy'"),
			 SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM user_orgs o JOIN users u ON u.id = o.user_id WHERE "
				    "u.username = 'cy' AND o.org_id = 1 AND o.role = 'admin' AND u.superadmin = 1"),
			 1);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM audit WHERE org_id = 1"), 1); /* the proxy row */
	/* triggers came back: a new proxy gets its health row, changes are counted */
	{
		long long seq = tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'mappings'");
		assert_int_equal(
		    tl_exec(db, "INSERT INTO orgs (name) VALUES ('two');"
				"INSERT INTO proxies (org_id, name, type, host, port) VALUES (2, 'a', 'socks5', "
				"'h', 3)"),
		    SQLITE_OK); /* the same name in another organisation */
		assert_int_equal(tl_int(db, "SELECT count(*) FROM proxy_health WHERE proxy_id = 3"), 1);
		assert_int_equal(
		    tl_exec(db, "INSERT INTO mappings (org_id, client_ip, proxy_id) VALUES (2, '10.8.0.1', 3)"),
		    SQLITE_OK);
		assert_int_equal(tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'mappings'"), seq + 1);
	}
	/* no crossing: a mapping of organisation 2 to organisation 1's proxy, a name twice in one
	 * organisation, an object moved to another organisation */
	assert_int_not_equal(
	    tl_exec(db, "INSERT INTO mappings (org_id, client_ip, proxy_id) VALUES (2, '10.8.0.2', 1)"), SQLITE_OK);
	assert_int_not_equal(tl_exec(db, "INSERT INTO proxies (org_id, name, type, host, port) VALUES (1, 'a', 'http', "
					 "'h', 4)"),
			     SQLITE_OK);
	assert_int_not_equal(tl_exec(db, "UPDATE proxies SET org_id = 2 WHERE id = 2"), SQLITE_OK);
	assert_int_not_equal(tl_exec(db, "UPDATE mappings SET org_id = 2 WHERE client_ip = '10.9.0.2'"), SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	/* a proxy's health goes with it */
	assert_int_equal(tl_exec(db, "DELETE FROM mappings WHERE proxy_id = 2; DELETE FROM proxies WHERE id = 2"),
			 SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM proxy_health WHERE proxy_id = 2"), 0);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM health_history WHERE proxy_id = 2"), 0);
	db_close(db);
	tl_rmdir(dir);
}

/* 0015: memberships are no longer derived from users.role; a single organisation keeps mapping
 * IPv6 clients ('::/0'), a gateway that already has several gets no such network. */
static void test_org_members_upgrade(void **state)
{
	char *dir = tl_tmpdir(), err[512];
	int from, to;

	(void)state;
	for (int orgs = 1; orgs <= 2; orgs++) {
		char name[16];
		sqlite3 *db;

		snprintf(name, sizeof(name), "m%d.db", orgs);
		db = open_at(dir, name);
		assert_int_equal(migrate_run(db, M, NM, 14, &from, &to, err, sizeof(err)), 0);
		if (orgs == 2)
			assert_int_equal(tl_exec(db, "INSERT INTO orgs (name) VALUES ('two')"), SQLITE_OK);
		assert_int_equal(migrate_run(db, M, NM, 15, &from, &to, err, sizeof(err)), 0);
		assert_int_equal(to, 15);
		assert_int_equal(tl_int(db, "SELECT count(*) FROM org_networks WHERE org_id = 1 AND cidr = '::/0'"),
				 orgs == 1);
		assert_int_equal(tl_exec(db, "INSERT INTO users (username, password_hash, role) VALUES ('cy', "
					     "'$argon2id$x', 'admin')"),
				 SQLITE_OK);
		assert_int_equal(tl_int(db, "SELECT count(*) FROM user_orgs"), 0);
		assert_int_equal(tl_int(db, "SELECT superadmin FROM users WHERE username = 'cy'"), 0);
		/* 0016: an organisation's own settings; a change moves the proxies counter (pgw-healthd
		 * reloads its proxies; the gateway's settings did not change) */
		assert_int_equal(migrate_run(db, M, NM, 16, &from, &to, err, sizeof(err)), 0);
		{
			long long seq = tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'proxies'");
			assert_int_equal(tl_exec(db, "INSERT INTO org_settings (org_id, key, value) VALUES (1, "
						     "'health_url', 'http://h/ip')"),
					 SQLITE_OK);
			assert_int_equal(tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'proxies'"), seq + 1);
			assert_int_not_equal(
			    tl_exec(db, "INSERT INTO org_settings (org_id, key, value) VALUES (1, 'lan_iface', 'x')"),
			    SQLITE_OK); /* not an organisation's */
			assert_int_equal(tl_exec(db, "DELETE FROM orgs WHERE id = 2"), SQLITE_OK);
			assert_int_equal(tl_int(db, "SELECT count(*) FROM org_settings"), 1);
		}
		db_close(db);
	}
	tl_rmdir(dir);
}

/* mapping_state: the one definition of an active client. */
static void test_mapping_state_view(void **state)
{
	char *dir = tl_tmpdir();
	sqlite3 *db = tl_db(dir, "a.db");

	(void)state;
	assert_int_equal(
	    tl_exec(db,
		    "INSERT INTO proxies (name, type, host, port) VALUES ('up', 'socks5', 'h', 1), "
		    "('down', 'socks5', 'h', 2), ('unknown', 'socks5', 'h', 3), ('off', 'socks5', 'h', 4);"
		    "UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 60 WHERE proxy_id IN (1, 4);"
		    "UPDATE proxy_health SET status = 'down' WHERE proxy_id = 2;"
		    "UPDATE proxies SET enabled = 0 WHERE id = 4;"
		    "INSERT INTO mappings (client_ip, proxy_id, enabled) VALUES ('192.168.2.1', 1, 1), "
		    "('192.168.2.2', 1, 0), ('192.168.2.3', 2, 1), ('192.168.2.4', 3, 1), ('192.168.2.5', 4, 1)"),
	    SQLITE_OK);
	/* only an enabled mapping to an enabled proxy that is up; unknown counts as down */
	{
		char *active =
		    tl_str(db, "SELECT group_concat(active, '') FROM (SELECT active FROM mapping_state ORDER "
			       "BY client_ip)");
		assert_string_equal(active, "10000");
		free(active);
	}
	/* a result past its fresh_until (a stopped or wedged healthd) counts as unknown: blocked */
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET fresh_until = unixepoch() - 1 WHERE proxy_id = 1"),
			 SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT sum(active) FROM mapping_state"), 0);
	assert_int_equal(tl_int(db, "SELECT stale FROM health_state WHERE proxy_id = 1"), 1);
	assert_int_equal(tl_int(db, "SELECT effective_status = 'unknown' FROM health_state WHERE proxy_id = 1"), 1);
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET fresh_until = NULL WHERE proxy_id = 1"), SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT sum(active) FROM mapping_state"), 0);
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET fresh_until = unixepoch() + 5 WHERE proxy_id = 1"),
			 SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT sum(active) FROM mapping_state"), 1);
	assert_int_equal(tl_int(db, "SELECT stale FROM health_state WHERE proxy_id = 1"), 0);
	/* a result "from the future" (the clock was set back) is not trusted either */
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET checked_at = unixepoch() + 3600 WHERE proxy_id = 1"),
			 SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT sum(active) FROM mapping_state"), 0);
	assert_int_equal(tl_int(db, "SELECT stale FROM health_state WHERE proxy_id = 1"), 1);
	db_close(db);
	tl_rmdir(dir);
}

/* mapping_state.carrying_proxy_id (0018): block keeps to its primary; failover takes the first
 * usable proxy of primary-then-list, those up for failover_hysteresis probes first. */
static void test_failover_carrier(void **state)
{
	char *dir = tl_tmpdir();
	sqlite3 *db = tl_db(dir, "a.db");
	const char *carriers =
	    "SELECT group_concat(coalesce(carrying_proxy_id, 0), ',') FROM (SELECT carrying_proxy_id "
	    "FROM mapping_state ORDER BY id)";
	char *s;

	(void)state;
	assert_int_equal(
	    tl_exec(
		db,
		"INSERT INTO proxies (name, type, host, port) VALUES ('a', 'socks5', 'h', 1), ('b', 'socks5', 'h', 2), "
		"('c', 'socks5', 'h', 3);"
		"UPDATE proxy_health SET status = 'up', up_probes = 5, checked_at = unixepoch(), fresh_until = "
		"unixepoch() + 60;"
		"INSERT INTO mappings (client_ip, proxy_id, on_down) VALUES ('192.168.2.1', 1, 'failover'), "
		"('192.168.2.2', 1, 'block');"
		"INSERT INTO mapping_failover (mapping_id, pos, proxy_id) VALUES (1, 1, 2), (1, 2, 3), (2, 1, 2)"),
	    SQLITE_OK);
	s = tl_str(db, carriers);
	assert_string_equal(s, "1,1"); /* everyone up: the primary */
	free(s);
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET status = 'down', up_probes = 0 WHERE proxy_id = 1"),
			 SQLITE_OK);
	s = tl_str(db, carriers);
	assert_string_equal(s, "2,0"); /* failover moves, block blocks (its list is not used) */
	free(s);
	assert_int_equal(tl_int(db, "SELECT active FROM mapping_state WHERE id = 2"), 0);
	/* what pgw-healthd remembers (mapping_carrier) keeps a client where it is: a proxy further
	 * down the list that has been up longer does not take it */
	assert_int_equal(tl_exec(db, "INSERT INTO mapping_carrier VALUES (1, 2);"
				     "UPDATE proxy_health SET up_probes = 1 WHERE proxy_id = 2;"
				     "UPDATE proxy_health SET up_probes = 100 WHERE proxy_id = 3"),
			 SQLITE_OK);
	s = tl_str(db, carriers);
	assert_string_equal(s, "2,0");
	free(s);
	assert_int_equal(tl_exec(db, "UPDATE proxies SET enabled = 0 WHERE id = 2"), SQLITE_OK);
	s = tl_str(db, carriers);
	assert_string_equal(s, "3,0"); /* a disabled proxy carries nobody: the next one */
	free(s);
	assert_int_equal(tl_exec(db, "UPDATE mapping_carrier SET proxy_id = 3;"
				     "UPDATE proxies SET enabled = 1 WHERE id = 2;"
				     "UPDATE proxy_health SET up_probes = 5 WHERE proxy_id = 2;"
				     "UPDATE proxy_health SET status = 'up', up_probes = 1 WHERE proxy_id = 1"),
			 SQLITE_OK);
	s = tl_str(db, carriers);
	/* a settled proxy ahead of the carrier takes it; the primary, back but not settled (default
	 * 3 probes), does not; the block mapping has its primary again */
	assert_string_equal(s, "2,1");
	free(s);
	assert_int_equal(tl_exec(db, "UPDATE mapping_carrier SET proxy_id = 2;"
				     "UPDATE proxy_health SET up_probes = 3 WHERE proxy_id = 1"),
			 SQLITE_OK);
	s = tl_str(db, carriers);
	assert_string_equal(s, "1,1"); /* settled: back to the primary */
	free(s);
	assert_int_equal(tl_exec(db, "INSERT INTO settings (key, value) VALUES ('failover_hysteresis', '10');"
				     "UPDATE proxy_health SET up_probes = 12 WHERE proxy_id = 2"),
			 SQLITE_OK);
	s = tl_str(db, carriers);
	assert_string_equal(s, "2,1"); /* the setting decides: 3 probes are not 10, 12 are */
	free(s);
	assert_int_equal(tl_exec(db, "UPDATE mapping_carrier SET proxy_id = 1"), SQLITE_OK);
	s = tl_str(db, carriers);
	assert_string_equal(s, "1,1"); /* but a client on its primary stays there */
	free(s);
	/* nobody settled and nothing remembered (healthd just started): order alone */
	assert_int_equal(tl_exec(db, "DELETE FROM mapping_carrier; UPDATE proxy_health SET up_probes = 1"), SQLITE_OK);
	s = tl_str(db, carriers);
	assert_string_equal(s, "1,1");
	free(s);
	/* a remembered carrier that left the list is forgotten */
	assert_int_equal(tl_exec(db, "INSERT INTO mapping_carrier VALUES (1, 3); DELETE FROM mapping_failover WHERE "
				     "mapping_id = 1 AND proxy_id = 3"),
			 SQLITE_OK);
	s = tl_str(db, carriers);
	assert_string_equal(s, "1,1");
	free(s);
	/* stale results carry nobody; a disabled mapping is carried by none */
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET fresh_until = unixepoch() - 1"), SQLITE_OK);
	s = tl_str(db, carriers);
	assert_string_equal(s, "0,0");
	free(s);
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET fresh_until = unixepoch() + 60;"
				     "UPDATE mappings SET enabled = 0 WHERE id = 1"),
			 SQLITE_OK);
	s = tl_str(db, carriers);
	assert_string_equal(s, "0,1");
	free(s);
	/* crossing the hysteresis moves the health counter (the agent and forwarder reload) */
	{
		int before = tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'health'");
		assert_int_equal(tl_exec(db, "UPDATE proxy_health SET up_probes = 2 WHERE proxy_id = 1"), SQLITE_OK);
		assert_int_equal(tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'health'"), before);
		assert_int_equal(tl_exec(db, "UPDATE proxy_health SET up_probes = 10 WHERE proxy_id = 1"), SQLITE_OK);
		assert_int_equal(tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'health'"), before + 1);
		assert_int_equal(tl_exec(db, "UPDATE proxy_health SET up_probes = 11 WHERE proxy_id = 1"), SQLITE_OK);
		assert_int_equal(tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'health'"), before + 1);
	}
	/* the list: the mapping's organisation only, 8 at most, replaced not updated, gone with it */
	assert_int_equal(
	    tl_exec(db, "INSERT INTO orgs (id, name) VALUES (2, 'acme');"
			"INSERT INTO proxies (org_id, name, type, host, port) VALUES (2, 'x', 'socks5', 'h', 9)"),
	    SQLITE_OK);
	assert_int_not_equal(tl_exec(db, "INSERT INTO mapping_failover VALUES (1, 3, 4)"), SQLITE_OK);
	assert_int_equal(tl_exec(db, "INSERT INTO mapping_failover VALUES (1, 2, 3)"), SQLITE_OK);
	assert_int_not_equal(tl_exec(db, "INSERT INTO mapping_failover VALUES (1, 9, 1)"), SQLITE_OK);
	assert_int_not_equal(tl_exec(db, "UPDATE mapping_failover SET proxy_id = 1 WHERE mapping_id = 1"), SQLITE_OK);
	assert_int_not_equal(tl_exec(db, "DELETE FROM proxies WHERE id = 3"), SQLITE_OK);
	assert_int_not_equal(tl_exec(db, "UPDATE mappings SET on_down = 'retry'"), SQLITE_OK);
	/* moved onto a proxy of its own list: that one leaves the list */
	assert_int_equal(tl_exec(db, "UPDATE mappings SET proxy_id = 3 WHERE id = 1"), SQLITE_OK);
	{
		char *list = tl_str(db, "SELECT group_concat(proxy_id) FROM mapping_failover WHERE mapping_id = 1");
		assert_string_equal(list, "2");
		free(list);
	}
	assert_int_equal(tl_exec(db, "DELETE FROM mappings WHERE id = 1"), SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM mapping_failover WHERE mapping_id = 1"), 0);
	db_close(db);
	tl_rmdir(dir);
}

/* 0029: a mapping moved to another address leaves its usage history behind; an install with a
 * proxy on its own loopback keeps it allowed (proxy_allow_local starts true), another does not. */
static void test_guards(void **state)
{
	char *dir = tl_tmpdir(), err[512];
	sqlite3 *db = open_at(dir, "g.db"), *db2 = open_at(dir, "h.db");
	int from, to;

	(void)state;
	assert_int_equal(migrate_run(db, M, NM, 28, &from, &to, err, sizeof(err)), 0);
	assert_int_equal(migrate_run(db2, M, NM, 28, &from, &to, err, sizeof(err)), 0);
	assert_int_equal(tl_exec(db,
				 "INSERT INTO proxies (name, type, host, port) VALUES ('ss', 'socks5', '127.0.0.1', "
				 "1080), ('b', 'http', '198.51.100.1', 2);"
				 "INSERT INTO mappings (client_ip, proxy_id) VALUES ('10.9.0.1', 1), ('10.9.0.2', 2);"
				 "INSERT INTO client_usage (client_ip, step, t, bytes_up) VALUES ('10.9.0.1', 60, 60, "
				 "5), ('10.9.0.2', 60, 60, 7);"
				 "INSERT INTO client_quota (client_ip, period_start, used) VALUES ('10.9.0.2', 1, 9)"),
			 SQLITE_OK);
	assert_int_equal(tl_exec(db2, "INSERT INTO proxies (name, type, host, port) VALUES ('b', 'http', "
				      "'198.51.100.1', 2), ('c', 'socks5', 'proxy.example', 1080)"),
			 SQLITE_OK);
	assert_int_equal(migrate_run(db, M, NM, NM, &from, &to, err, sizeof(err)), 0);
	assert_int_equal(migrate_run(db2, M, NM, NM, &from, &to, err, sizeof(err)), 0);
	assert_int_equal(tl_int(db, "SELECT value = 'true' FROM settings WHERE key = 'proxy_allow_local'"), 1);
	assert_int_equal(tl_int(db2, "SELECT count(*) FROM settings WHERE key = 'proxy_allow_local'"), 0);
	assert_int_equal(tl_exec(db, "UPDATE mappings SET client_ip = '10.9.0.3' WHERE client_ip = '10.9.0.1';"
				     "UPDATE mappings SET enabled = 0 WHERE client_ip = '10.9.0.2'"),
			 SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM client_usage WHERE client_ip = '10.9.0.1'"), 0);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM client_usage WHERE client_ip = '10.9.0.2'"), 1);
	/* an HA backup's step aside to a placeholder and back (api/hasnap.c) is no move */
	assert_int_equal(tl_exec(db, "UPDATE mappings SET client_ip = '0:0:0:0:0:0:0:2' WHERE client_ip = '10.9.0.2';"
				     "UPDATE mappings SET client_ip = '10.9.0.2' WHERE client_ip = '0:0:0:0:0:0:0:2'"),
			 SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT count(*) FROM client_usage WHERE client_ip = '10.9.0.2'"), 1);
	assert_int_equal(tl_int(db, "SELECT used FROM client_quota WHERE client_ip = '10.9.0.2'"), 9);
	db_close(db);
	db_close(db2);
	tl_rmdir(dir);
}

/* 0030: where a good probe went; rewriting the same counts as no change (no reload at every
 * probe), a new address does; a proxy moved (host or port) forgets it, an edit undone too. */
static void test_probed_address(void **state)
{
	char *dir = tl_tmpdir(), err[512];
	sqlite3 *db = open_at(dir, "p.db");
	int from, to, seq;

	(void)state;
	assert_int_equal(migrate_run(db, M, NM, NM, &from, &to, err, sizeof(err)), 0);
	assert_int_equal(tl_exec(db, "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'rr', 'socks5', "
				     "'proxy.example', 1080);"
				     "UPDATE proxy_health SET probed_host = 'proxy.example', probed_port = 1080, "
				     "probed_addr = '198.51.100.7' WHERE proxy_id = 1"),
			 SQLITE_OK);
	seq = tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'health'");
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET probed_host = 'proxy.example', probed_port = 1080, "
				     "probed_addr = '198.51.100.7' WHERE proxy_id = 1"),
			 SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'health'"), seq);
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET probed_addr = '198.51.100.8' WHERE proxy_id = 1"),
			 SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT seq FROM change_seq WHERE topic = 'health'"), seq + 1);
	assert_int_equal(tl_exec(db, "UPDATE proxies SET name = 'renamed' WHERE id = 1"), SQLITE_OK); /* not moved */
	assert_int_equal(tl_int(db, "SELECT probed_addr = '198.51.100.8' FROM proxy_health WHERE proxy_id = 1"), 1);
	assert_int_equal(tl_exec(db, "UPDATE proxies SET host = 'other.example' WHERE id = 1;"
				     "UPDATE proxies SET host = 'proxy.example' WHERE id = 1"),
			 SQLITE_OK);
	assert_int_equal(tl_int(db,
				"SELECT probed_host = '' AND probed_port = 0 AND probed_addr = '' FROM proxy_health "
				"WHERE proxy_id = 1"),
			 1); /* forgotten */
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET probed_host = 'proxy.example', probed_port = 1080, "
				     "probed_addr = '198.51.100.7' WHERE proxy_id = 1;"
				     "UPDATE proxies SET port = 1081 WHERE id = 1"),
			 SQLITE_OK);
	assert_int_equal(tl_int(db, "SELECT length(probed_addr) FROM proxy_health WHERE proxy_id = 1"), 0);
	db_close(db);
	tl_rmdir(dir);
}

/* 0031: a change of what a probe proves (type, host, port, login, expected exits) makes the
 * proxy unknown and counts verify_gen; a rename, a toggle or the same values do not. */
static void test_proxy_reverify(void **state)
{
	char *dir = tl_tmpdir(), err[512], *got;
	sqlite3 *db = open_at(dir, "v.db");
	int from, to;
	const char *up = "UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 60, "
			 "consecutive_successes = 2, up_probes = 3 WHERE proxy_id = 1";
	const char *is = "SELECT status || ' ' || (fresh_until IS NULL) || ' ' || consecutive_successes || ' ' || "
			 "up_probes || ' ' || verify_gen FROM proxy_health WHERE proxy_id = 1";
	static const char *const changes[] = {
	    "UPDATE proxies SET type = 'http' WHERE id = 1",
	    "UPDATE proxies SET host = '198.51.100.2' WHERE id = 1",
	    "UPDATE proxies SET port = 1081 WHERE id = 1",
	    "UPDATE proxies SET username = 'u2' WHERE id = 1",
	    "UPDATE proxies SET password = 'p2' WHERE id = 1",
	    "UPDATE proxies SET expected_exit = '203.0.113.9' WHERE id = 1",
	};

	(void)state;
	assert_int_equal(migrate_run(db, M, NM, NM, &from, &to, err, sizeof(err)), 0);
	assert_int_equal(tl_exec(db, "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES "
				     "(1, 'p', 'socks5', '198.51.100.1', 1080, 'u', 'p')"),
			 SQLITE_OK);
	assert_int_equal(tl_exec(db, up), SQLITE_OK);
	assert_int_equal(tl_exec(db,
				 "UPDATE proxies SET name = 'renamed', enabled = 0 WHERE id = 1;"
				 "UPDATE proxies SET enabled = 1, host = '198.51.100.1', password = 'p' WHERE id = 1"),
			 SQLITE_OK);
	got = tl_str(db, is);
	assert_string_equal(got, "up 0 2 3 0"); /* nothing a probe proves changed */
	free(got);
	for (int i = 0; i < (int)(sizeof(changes) / sizeof(changes[0])); i++) {
		char want[32];
		assert_int_equal(tl_exec(db, up), SQLITE_OK);
		assert_int_equal(tl_exec(db, changes[i]), SQLITE_OK);
		snprintf(want, sizeof(want), "unknown 1 0 0 %d", i + 1);
		got = tl_str(db, is);
		assert_string_equal(got, want);
		free(got);
	}
	db_close(db);
	tl_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_from_empty),
	    cmocka_unit_test(test_twice_is_noop),
	    cmocka_unit_test(test_from_every_earlier_version),
	    cmocka_unit_test(test_newer_db_refused),
	    cmocka_unit_test(test_corrupt_file_refused),
	    cmocka_unit_test(test_failed_migration_rolls_back),
	    cmocka_unit_test(test_pragmas),
	    cmocka_unit_test(test_constraints),
	    cmocka_unit_test(test_data_version_sees_other_writers),
	    cmocka_unit_test(test_transactions),
	    cmocka_unit_test(test_read_transaction),
	    cmocka_unit_test(test_change_seq_triggers),
	    cmocka_unit_test(test_mapping_state_view),
	    cmocka_unit_test(test_failover_carrier),
	    cmocka_unit_test(test_guards),
	    cmocka_unit_test(test_probed_address),
	    cmocka_unit_test(test_proxy_reverify),
	    cmocka_unit_test(test_orgs_upgrade),
	    cmocka_unit_test(test_org_members_upgrade),
	    cmocka_unit_test(test_user_ids_not_reused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
