/* The HA pair's snapshot (api/hasnap.c): a backup made from the master's tables ends up with the
 * same configuration whatever changed in between — swaps of unique values, a reordered failover
 * list, an id handed out again — keeps what is its own (proxy health, quota flags, the node's
 * settings), never hands out an id the master used, and changes nothing when it refuses. */
#include "testlib.h"

#include "../../api/hasnap.h"

#include <jansson.h>

/* The synced configuration as text, to compare a master and a backup. */
static char *config_text(sqlite3 *db)
{
	return tl_str(
	    db,
	    "SELECT (SELECT json_group_array(json_array(id, name)) FROM (SELECT * FROM orgs ORDER BY id)) || "
	    "(SELECT json_group_array(json_array(id, username, password_hash, role, token_gen)) FROM (SELECT * FROM "
	    "users ORDER BY id)) || (SELECT json_group_array(json_array(id, name, host, port, org_id)) FROM "
	    "(SELECT * FROM proxies ORDER BY id)) || (SELECT json_group_array(json_array(id, client_ip, proxy_id, "
	    "label, on_down)) FROM (SELECT * FROM mappings ORDER BY id)) || (SELECT "
	    "json_group_array(json_array(mapping_id, pos, proxy_id)) FROM (SELECT * FROM mapping_failover ORDER BY "
	    "mapping_id, pos)) || (SELECT json_group_array(json_array(key, value)) FROM (SELECT * FROM settings "
	    "WHERE key NOT IN ('lan_iface', 'wan_iface') ORDER BY key))");
}

/* Build the master's snapshot and apply it to the backup: the rc of the apply. */
static int sync_once(sqlite3 *master, sqlite3 *backup, char *err, size_t errlen)
{
	json_t *snap = hasnap_build(master, 1);
	int rc;

	assert_non_null(snap);
	rc = hasnap_apply(backup, snap, err, errlen);
	json_decref(snap);
	return rc;
}

/* The first column of sql's first row is want. */
static void assert_sql(sqlite3 *db, const char *sql, const char *want)
{
	char *got = tl_str(db, sql);
	assert_string_equal(got, want);
	free(got);
}

static void assert_same(sqlite3 *a, sqlite3 *b)
{
	char *x = config_text(a), *y = config_text(b);
	assert_string_equal(x, y);
	free(x);
	free(y);
}

/* A name the old placeholder used ('~ha~' || id) is an ordinary name: a proxy and a webhook so
 * named by an organisation's admin once made every later sync of the other row fail. */
static void test_a_name_like_the_placeholder(void **state)
{
	char *dir = tl_tmpdir(), err[400];
	sqlite3 *m = tl_db(dir, "m.db"), *b = tl_db(dir, "b.db");

	(void)state;
	assert_int_equal(
	    tl_exec(
		m,
		"INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'p', 'socks5', '198.51.100.10', "
		"1080), (2, '~ha~1', 'socks5', '198.51.100.11', 1080);"
		"INSERT INTO webhooks (id, name, url, events) VALUES (1, 'w', 'http://198.51.100.20/a', 'proxy.down'), "
		"(2, '~ha~1', 'http://198.51.100.20/b', 'proxy.down')"),
	    SQLITE_OK);
	assert_int_equal(sync_once(m, b, err, sizeof(err)), 0);
	assert_int_equal(tl_exec(m, "UPDATE proxies SET host = '198.51.100.12' WHERE id = 1;"
				    "UPDATE webhooks SET url = 'http://198.51.100.20/c' WHERE id = 1"),
			 SQLITE_OK);
	assert_int_equal(sync_once(m, b, err, sizeof(err)), 0);
	assert_same(m, b);
	assert_sql(b, "SELECT group_concat(name || ' ' || url, ', ') FROM (SELECT * FROM webhooks ORDER BY id)",
		   "w http://198.51.100.20/c, ~ha~1 http://198.51.100.20/b");
	sqlite3_close(m);
	sqlite3_close(b);
	tl_rmdir(dir);
}

static void test_converges_through_swaps_reorders_and_reused_ids(void **state)
{
	char *dir = tl_tmpdir(), err[400];
	sqlite3 *m = tl_db(dir, "m.db"), *b = tl_db(dir, "b.db");

	(void)state;
	assert_int_equal(tl_exec(b, "INSERT OR REPLACE INTO settings (key, value) VALUES ('lan_iface', 'lanB')"),
			 SQLITE_OK);
	assert_int_equal(
	    tl_exec(
		m, "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'a', 'socks5', '198.51.100.10', 1080), "
		   "(2, 'b', 'socks5', '198.51.100.11', 1080), (3, 'c', 'http', '198.51.100.12', 8888);"
		   "INSERT INTO mappings (id, client_ip, proxy_id, on_down) VALUES (1, '192.168.2.10', 1, 'failover'), "
		   "(2, '192.168.2.11', 2, 'block'), (3, '192.168.2.12', 2, 'block');"
		   "INSERT INTO mapping_failover VALUES (1, 1, 2), (1, 2, 3);"
		   "INSERT INTO users (username, password_hash, role) VALUES ('admin', '$argon2id$x', 'admin');"
		   "INSERT OR REPLACE INTO settings (key, value) VALUES ('health_interval', '7');"),
	    SQLITE_OK);
	assert_int_equal(sync_once(m, b, err, sizeof(err)), 0);
	assert_same(m, b);
	assert_sql(b, "SELECT value FROM settings WHERE key = 'lan_iface'", "lanB");
	/* the backup's own state: proxy 1 up there, client 2 over its quota there */
	assert_int_equal(tl_exec(b, "UPDATE proxy_health SET status = 'up' WHERE proxy_id IN (1, 2, 3);"
				    "UPDATE mappings SET quota_exceeded = 1 WHERE id = 2"),
			 SQLITE_OK);
	/* ... and its own usage history and quota counts, per address */
	assert_int_equal(tl_exec(b,
				 "INSERT INTO client_usage (client_ip, step, t, bytes_up) VALUES ('192.168.2.10', "
				 "60, 60, 1), ('192.168.2.11', 60, 60, 2), ('192.168.2.12', 60, 60, 3);"
				 "INSERT INTO client_quota (client_ip, period_start, used) VALUES ('192.168.2.10', 1, "
				 "4), ('192.168.2.12', 1, 5)"),
			 SQLITE_OK);

	/* the master: proxies a and b trade names, the two clients trade addresses, the failover
	 * list turns round, proxy 3 is deleted and id 3 handed out again for another endpoint, a
	 * user comes and goes (its id must never come back) */
	assert_int_equal(
	    tl_exec(m, "UPDATE proxies SET name = 'tmp' WHERE id = 1; UPDATE proxies SET name = 'a' WHERE id = 2;"
		       "UPDATE proxies SET name = 'b' WHERE id = 1;"
		       "UPDATE mappings SET client_ip = '192.168.2.99' WHERE id = 1;"
		       "UPDATE mappings SET client_ip = '192.168.2.10' WHERE id = 2;"
		       "UPDATE mappings SET client_ip = '192.168.2.11' WHERE id = 1;"
		       "UPDATE mappings SET label = 'tv' WHERE id = 3;"
		       "DELETE FROM mapping_failover WHERE mapping_id = 1;"
		       "DELETE FROM proxies WHERE id = 3;"
		       "INSERT INTO proxies (id, name, type, host, port, created_at) VALUES (3, 'c2', 'socks5', "
		       "'198.51.100.13', 1080, unixepoch() + 5);"
		       "INSERT INTO mapping_failover VALUES (1, 1, 3), (1, 2, 2);"
		       "INSERT INTO users (username, password_hash, role) VALUES ('temp', '$argon2id$y', 'viewer');"
		       "DELETE FROM users WHERE username = 'temp'"),
	    SQLITE_OK);
	assert_int_equal(sync_once(m, b, err, sizeof(err)), 0);
	assert_same(m, b);
	assert_sql(b,
		   "SELECT group_concat(status, ',') FROM (SELECT status FROM proxy_health ORDER BY "
		   "proxy_id)",
		   "up,up,unknown"); /* proxy 3 is another endpoint now: probed afresh here */
	assert_int_equal(tl_int(b, "SELECT quota_exceeded FROM mappings WHERE id = 2"), 1); /* its own */
	/* the clients that moved left their history and quota count behind, as on the master; the
	 * one only edited (its address stepped aside and back here) kept them */
	assert_sql(b, "SELECT group_concat(client_ip) FROM client_usage", "192.168.2.12");
	assert_sql(b, "SELECT group_concat(client_ip || '=' || used) FROM client_quota", "192.168.2.12=5");
	assert_int_equal(tl_int(b, "SELECT seq FROM sqlite_sequence WHERE name = 'users'"), 2);
	assert_int_equal(tl_exec(b, "INSERT INTO users (username, password_hash, role) VALUES ('n', '$argon2id$z', "
				    "'viewer')"),
			 SQLITE_OK);
	assert_int_equal(tl_int(b, "SELECT max(id) FROM users"), 3);
	assert_int_equal(tl_exec(b, "DELETE FROM users WHERE username = 'n'"), SQLITE_OK);
	/* the same again: nothing to do, nothing that fails */
	assert_int_equal(sync_once(m, b, err, sizeof(err)), 0);
	assert_same(m, b);

	/* a promotion between the pull and the apply wins: nothing is applied */
	{
		char *before = config_text(b);
		assert_int_equal(tl_exec(m, "UPDATE proxies SET name = 'z' WHERE id = 3"), SQLITE_OK);
		assert_int_equal(tl_exec(b, "UPDATE ha_state SET role = 'master'"), SQLITE_OK);
		assert_int_equal(sync_once(m, b, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "became master"));
		{
			char *after = config_text(b);
			assert_string_equal(after, before);
			free(after);
		}
		free(before);
	}
	sqlite3_close(m);
	sqlite3_close(b);
	tl_rmdir(dir);
}

static void test_refuses_what_is_not_a_configuration(void **state)
{
	char *dir = tl_tmpdir(), err[400], *before;
	sqlite3 *m = tl_db(dir, "m.db"), *b = tl_db(dir, "b.db");
	json_t *snap, *tab;
	unsigned char *image;
	sqlite3_int64 image_n;

	(void)state;
	assert_int_equal(tl_exec(m, "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'a', 'socks5', "
				    "'198.51.100.10', 1080); INSERT INTO mappings (client_ip, proxy_id) VALUES "
				    "('192.168.2.10', 1)"),
			 SQLITE_OK);
	before = config_text(b);
	image = tl_image(b, &image_n); /* every byte of it: not only what config_text reads */
	/* a mapping to a proxy that does not exist: the foreign key fails at the commit */
	snap = hasnap_build(m, 1);
	tab = json_object_get(json_object_get(snap, "tables"), "proxies");
	json_array_clear(json_object_get(tab, "rows"));
	assert_int_equal(hasnap_apply(b, snap, err, sizeof(err)), -1);
	assert_true(err[0]);
	{
		char *after = config_text(b);
		assert_string_equal(after, before);
		free(after);
	}
	json_decref(snap);
	/* another schema version */
	snap = hasnap_build(m, 1);
	json_object_set_new(snap, "schema", json_integer(1));
	assert_int_equal(hasnap_apply(b, snap, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "schema"));
	json_decref(snap);
	/* a node-local setting, and a node-local column */
	snap = hasnap_build(m, 1);
	tab = json_object_get(json_object_get(snap, "tables"), "settings");
	json_array_append_new(json_object_get(tab, "rows"), json_pack("[s,s,i]", "lan_iface", "evil0", 0));
	assert_int_equal(hasnap_apply(b, snap, err, sizeof(err)), -1);
	json_decref(snap);
	snap = hasnap_build(m, 1);
	tab = json_object_get(json_object_get(snap, "tables"), "mappings");
	json_array_append_new(json_object_get(tab, "columns"), json_string("quota_exceeded"));
	assert_int_equal(hasnap_apply(b, snap, err, sizeof(err)), -1);
	json_decref(snap);
	{
		char *after = config_text(b);
		assert_string_equal(after, before);
		free(after);
	}
	tl_image_unchanged(b, image, image_n); /* lan_iface and quota_exceeded too: nothing changed */
	free(before);
	sqlite3_close(m);
	sqlite3_close(b);
	tl_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_name_like_the_placeholder),
	    cmocka_unit_test(test_converges_through_swaps_reorders_and_reused_ids),
	    cmocka_unit_test(test_refuses_what_is_not_a_configuration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
