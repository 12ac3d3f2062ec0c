/* test_table.c - the forwarder's mapping table from the DB: who is active, where each client
 * goes, credentials, unknown clients, and the configured endpoint that revalidation compares. */
#include "testlib.h"

#include "../../forwarder/table.h"

static const struct fwd_entry *get(const struct fwd_table *t, const char *ip)
{
	struct net_ip a;

	assert_int_equal(net_ip_parse(ip, &a), 0);
	return table_lookup(t, &a);
}

static void test_load(void **state)
{
	char *dir = tl_tmpdir(), err[256];
	sqlite3 *db = tl_db(dir, "t.db");
	struct fwd_table *t = NULL;
	const struct fwd_entry *e;

	(void)state;
	assert_int_equal(
	    tl_exec(
		db,
		"INSERT INTO proxies (id, name, type, host, port, username, password) VALUES "
		"(1, 'a', 'socks5', '198.51.100.10', 1080, 'u', 'p'), (2, 'b', 'http', '2001:db8::12', 8888, '', ''),"
		"(3, 'down', 'socks5', '198.51.100.13', 1080, '', ''), (4, 'stale', 'socks5', '198.51.100.14', 1080, "
		"'', '');"
		"UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 60, pipelining = 1 WHERE proxy_id "
		"IN (1, 2);"
		"UPDATE proxy_health SET status = 'down' WHERE proxy_id = 3;"
		"UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() - 1 WHERE proxy_id = 4;"
		"INSERT INTO mappings (client_ip, proxy_id, enabled) VALUES ('192.168.2.10', 1, 1), ('fd00:2::10', 2, "
		"1),"
		"('192.168.2.11', 3, 1), ('192.168.2.12', 1, 0), ('192.168.2.13', 4, 1)"),
	    SQLITE_OK);
	assert_int_equal(table_load(db, &t, err, sizeof(err)), 0);
	assert_int_equal(table_size(t), 5);
	e = get(t, "192.168.2.10");
	assert_non_null(e);
	assert_int_equal(e->state, FWD_ACTIVE);
	assert_int_equal(e->type, UPSTREAM_SOCKS5);
	assert_string_equal(e->user, "u");
	assert_string_equal(e->pass, "p");
	assert_int_equal(e->pipeline, 1);
	assert_int_equal(e->proxy.ss_family, AF_INET);
	e = get(t, "fd00:2::10");
	assert_non_null(e);
	assert_int_equal(e->type, UPSTREAM_HTTP);
	assert_int_equal(e->pipeline, 0); /* pipelining is a SOCKS5 matter */
	assert_int_equal(e->proxy.ss_family, AF_INET6);
	assert_int_equal(get(t, "192.168.2.11")->state, FWD_BLOCKED); /* proxy down */
	assert_int_equal(get(t, "192.168.2.12")->state, FWD_BLOCKED); /* mapping disabled */
	assert_int_equal(get(t, "192.168.2.13")->state, FWD_BLOCKED); /* health stale: unknown */
	assert_null(get(t, "192.168.2.99"));			      /* unknown: fail closed */
	table_free(t);
	db_close(db);
	tl_rmdir(dir);
}

/* The endpoint revalidation compares is what the admin set: a change of port moves it, a
 * reload of the same row does not. */
static void test_endpoint(void **state)
{
	char *dir = tl_tmpdir(), err[256];
	sqlite3 *db = tl_db(dir, "t.db");
	struct fwd_table *t1 = NULL, *t2 = NULL, *t3 = NULL;

	(void)state;
	assert_int_equal(
	    tl_exec(db,
		    "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'a', 'socks5', '198.51.100.10', 1080);"
		    "INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1)"),
	    SQLITE_OK);
	assert_int_equal(table_load(db, &t1, err, sizeof(err)), 0);
	assert_int_equal(table_load(db, &t2, err, sizeof(err)), 0);
	assert_int_equal(tl_exec(db, "UPDATE proxies SET port = 1081"), SQLITE_OK);
	assert_int_equal(table_load(db, &t3, err, sizeof(err)), 0);
	assert_true(get(t1, "192.168.2.10")->endpoint == get(t2, "192.168.2.10")->endpoint);
	assert_true(get(t1, "192.168.2.10")->endpoint != get(t3, "192.168.2.10")->endpoint);
	table_free(t1);
	table_free(t2);
	table_free(t3);
	db_close(db);
	tl_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load),
	    cmocka_unit_test(test_endpoint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
