/* test_table.c - the forwarder's mapping table from the DB: who is active, where each client
 * goes, credentials, unknown clients, the configured endpoint that revalidation compares, and
 * every client blocked when the mappings cannot be read. */
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
	assert_int_equal(table_load(db, NULL, &t, err, sizeof(err)), 0);
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
	assert_int_equal(get(t, "192.168.2.10")->unread, 0);
	/* mappings unreadable too long (forwarder/main.c block_all): every entry blocked, as unread,
	 * the two active ones counted; what each is (its organisation, proxy) stays */
	assert_int_equal(table_block_all(t), 2);
	assert_int_equal(table_size(t), 5);
	for (size_t i = 0; i < 5; i++) {
		static const char *const ips[] = {"192.168.2.10", "fd00:2::10", "192.168.2.11", "192.168.2.12",
						  "192.168.2.13"};
		e = get(t, ips[i]);
		assert_non_null(e);
		assert_int_equal(e->state, FWD_BLOCKED);
		assert_int_equal(e->unread, 1);
	}
	assert_int_equal(get(t, "192.168.2.10")->proxy_id, 1);
	assert_int_equal(get(t, "192.168.2.10")->org_id, 1);
	assert_false(table_same_path(get(t, "192.168.2.10"), get(t, "192.168.2.10"))); /* what is open is cut */
	assert_int_equal(table_block_all(t), 0);
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
	assert_int_equal(table_load(db, NULL, &t1, err, sizeof(err)), 0);
	assert_int_equal(table_load(db, NULL, &t2, err, sizeof(err)), 0);
	assert_int_equal(tl_exec(db, "UPDATE proxies SET port = 1081"), SQLITE_OK);
	assert_int_equal(table_load(db, NULL, &t3, err, sizeof(err)), 0);
	assert_true(get(t1, "192.168.2.10")->endpoint == get(t2, "192.168.2.10")->endpoint);
	assert_true(get(t1, "192.168.2.10")->endpoint != get(t3, "192.168.2.10")->endpoint);
	table_free(t1);
	table_free(t2);
	table_free(t3);
	db_close(db);
	tl_rmdir(dir);
}

/* A proxy where none may be (loopback, the LAN, the gateway's own address) blocks its clients
 * unless proxy_allow_local (refuse NULL); an ordinary private address is fine. */
static void test_refused(void **state)
{
	char *dir = tl_tmpdir(), err[256];
	sqlite3 *db = tl_db(dir, "t.db");
	struct fwd_table *t = NULL;
	struct net_lan lan;

	(void)state;
	memset(&lan, 0, sizeof(lan));
	assert_int_equal(net_cidr4_parse("192.168.2.0/24", &lan.v4), 0);
	assert_int_equal(net_prefix_parse("fd00:2::/64", &lan.v6[0]), 0);
	lan.n6 = 1;
	assert_int_equal(
	    tl_exec(db,
		    "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'lo', 'socks5', '127.0.0.1', 1080), "
		    "(2, 'lan', 'socks5', '192.168.2.50', 1080), (3, 'lan6', 'http', 'fd00:2::50', 3128), "
		    "(4, 'nat64', 'socks5', '64:ff9b::7f00:1', 1080), (5, 'dc', 'socks5', '10.9.8.7', 1080), "
		    "(6, 'lo6', 'socks5', '::1', 1080), (7, 'named', 'socks5', 'proxy.pgw.invalid', 1080);"
		    "UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 60;"
		    "INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.11', 1), ('192.168.2.12', 2), "
		    "('192.168.2.13', 3), ('192.168.2.14', 4), ('192.168.2.15', 5), ('192.168.2.16', 6), "
		    "('192.168.2.17', 7)"),
	    SQLITE_OK);
	assert_int_equal(table_load(db, &lan, &t, err, sizeof(err)), 0);
	for (int i = 11; i <= 16; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "192.168.2.%d", i);
		assert_int_equal(get(t, ip)->state, i == 15 ? FWD_ACTIVE : FWD_BLOCKED);
	}
	/* a name no probe reached yet blocks its clients meanwhile (the forwarder resolves nothing) */
	assert_int_equal(get(t, "192.168.2.17")->state, FWD_BLOCKED);
	table_free(t);
	assert_int_equal(table_load(db, NULL, &t, err, sizeof(err)), 0); /* proxy_allow_local */
	for (int i = 11; i <= 16; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "192.168.2.%d", i);
		assert_int_equal(get(t, ip)->state, FWD_ACTIVE);
	}
	table_free(t);

	/* the name goes where pgw-healthd's probe went, and only while the row names what it probed */
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET probed_host = 'proxy.pgw.invalid', probed_port = 1080, "
				     "probed_addr = '198.51.100.77' WHERE proxy_id = 7"),
			 SQLITE_OK);
	assert_int_equal(table_load(db, &lan, &t, err, sizeof(err)), 0);
	{
		const struct fwd_entry *e = get(t, "192.168.2.17");
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&e->proxy;
		assert_int_equal(e->state, FWD_ACTIVE);
		assert_int_equal(sin->sin_family, AF_INET);
		assert_int_equal(ntohl(sin->sin_addr.s_addr), 0xc633644d);
		assert_int_equal(ntohs(sin->sin_port), 1080);
	}
	table_free(t);
	assert_int_equal(tl_exec(db, "UPDATE proxies SET port = 1081 WHERE id = 7"), SQLITE_OK); /* not probed there */
	assert_int_equal(table_load(db, &lan, &t, err, sizeof(err)), 0);
	assert_int_equal(get(t, "192.168.2.17")->state, FWD_BLOCKED);
	table_free(t);
	assert_int_equal(tl_exec(db, "UPDATE proxies SET port = 1080, host = 'other.pgw.invalid' WHERE id = 7"),
			 SQLITE_OK);
	assert_int_equal(table_load(db, &lan, &t, err, sizeof(err)), 0);
	assert_int_equal(get(t, "192.168.2.17")->state, FWD_BLOCKED);
	table_free(t);
	/* a probed address the guard refuses is refused as any other */
	assert_int_equal(tl_exec(db, "UPDATE proxies SET host = 'proxy.pgw.invalid' WHERE id = 7;"
				     "UPDATE proxy_health SET probed_addr = '127.0.0.1' WHERE proxy_id = 7"),
			 SQLITE_OK);
	assert_int_equal(table_load(db, &lan, &t, err, sizeof(err)), 0);
	assert_int_equal(get(t, "192.168.2.17")->state, FWD_BLOCKED);
	table_free(t);
	db_close(db);
	tl_rmdir(dir);
}

/* Rows added between the table's count and its load (a CSV import committing just then) are
 * all in the table: it grows (they were left out, and their clients' connections cut as if
 * unmapped). The other connection inserts when the load's statement starts, before it reads. */
struct meanwhile {
	sqlite3 *other;
	int done;
};

static int insert_meanwhile(unsigned type, void *arg, void *p, void *x)
{
	struct meanwhile *m = arg;
	const char *sql = sqlite3_sql(p);

	(void)type, (void)x;
	if (!m->done && sql && strstr(sql, "FROM mapping_state")) {
		m->done = 1;
		assert_int_equal(tl_exec(m->other, "WITH RECURSIVE n(i) AS (SELECT 20 UNION ALL SELECT i + 1 FROM n "
						   "WHERE i < 59) INSERT INTO mappings (client_ip, proxy_id, enabled) "
						   "SELECT '192.168.2.' || i, 1, 1 FROM n"),
				 SQLITE_OK);
	}
	return 0;
}

static void test_rows_added_meanwhile(void **state)
{
	char *dir = tl_tmpdir(), err[256];
	sqlite3 *db = tl_db(dir, "t.db");
	struct meanwhile m = {tl_db(dir, "t.db"), 0};
	struct fwd_table *t = NULL;

	(void)state;
	assert_int_equal(tl_exec(db,
				 "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'a', 'socks5', "
				 "'198.51.100.10', 1080);"
				 "INSERT INTO mappings (client_ip, proxy_id, enabled) VALUES ('192.168.2.10', 1, 1)"),
			 SQLITE_OK);
	sqlite3_trace_v2(db, SQLITE_TRACE_STMT, insert_meanwhile, &m);
	assert_int_equal(table_load(db, NULL, &t, err, sizeof(err)), 0);
	assert_int_equal(m.done, 1);
	assert_int_equal(table_size(t), 41); /* 1 counted, 40 added meanwhile */
	assert_non_null(get(t, "192.168.2.10"));
	assert_non_null(get(t, "192.168.2.20"));
	assert_non_null(get(t, "192.168.2.59"));
	table_free(t);
	db_close(m.other);
	db_close(db);
	tl_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load),
	    cmocka_unit_test(test_rows_added_meanwhile),
	    cmocka_unit_test(test_endpoint),
	    cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
