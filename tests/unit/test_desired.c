/* test_desired.c - what the agent reads from the DB: rule parameters from the settings (bad
 * ones refuse the whole load), client sets from mapping_state, interfaces that do not exist. */
#include "testlib.h"

#include "../../agent/desired.h"

static struct pgw_config cfg(void)
{
	struct pgw_config c;

	memset(&c, 0, sizeof(c));
	snprintf(c.lan_iface, sizeof(c.lan_iface), "lo");
	snprintf(c.wan_iface, sizeof(c.wan_iface), "nowan0");
	snprintf(c.lan_cidr, sizeof(c.lan_cidr), "192.168.2.0/24");
	snprintf(c.service_user, sizeof(c.service_user), "root");
	c.forwarder_port = 12345;
	c.tproxy_port = 12346;
	c.api_port = 8080;
	return c;
}

static void test_load(void **state)
{
	char *dir = tl_tmpdir(), err[512];
	sqlite3 *db = tl_db(dir, "d.db");
	struct pgw_config c = cfg();
	struct desired d;
	char ip[NET_IP_STR_MAX];

	(void)state;
	assert_int_equal(
	    tl_exec(db,
		    "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'a', 'socks5', '198.51.100.10', 1080),"
		    "(2, 'b', 'socks5', 'proxy.example', 1080);"
		    "UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 60 WHERE proxy_id = 1;"
		    "INSERT INTO mappings (client_ip, proxy_id, enabled) VALUES ('192.168.2.11', 1, 1), "
		    "('192.168.2.10', 1, 1),"
		    "('fd00:2::10', 1, 1), ('192.168.2.12', 2, 1), ('192.168.2.13', 1, 0);"
		    "INSERT INTO settings (key, value) VALUES ('block_action', 'drop'), ('strict_output', 'true'),"
		    "('forwarder_mode', 'tproxy')"),
	    SQLITE_OK);
	assert_int_equal(desired_load(db, &c, &d, err, sizeof(err)), 0);
	assert_int_equal(d.active.n, 3);
	net_ip_str(&d.active.addr[0], ip); /* sorted */
	assert_string_equal(ip, "192.168.2.10");
	assert_int_equal(d.blocked.n, 2);
	assert_int_equal(d.rules.block_drop, 1);
	assert_int_equal(d.rules.tproxy, 1);
	assert_int_equal(d.rules.strict_output, 1);
	assert_int_equal(d.rules.strict_uid, 0);
	assert_int_equal(d.proxies.n, 1); /* a proxy given by name cannot be in the strict set */
	assert_string_equal(d.rules.lan_iface, "lo");
	assert_int_equal(d.rules.lan_missing, 0);
	assert_int_equal(d.rules.wan_missing, 1); /* no such interface: the rules limit more */
	assert_int_equal(d.rules.lan_addr, 0xc0a80200u);
	assert_int_equal(d.rules.lan_mask, 0xffffff00u);
	assert_int_equal(d.rules.udp, 1); /* udp_relay's default */
	assert_int_equal(d.udp.n, 0);	  /* no proxy known to carry UDP */
	desired_free(&d);
	/* UDP: only active clients of a SOCKS5 proxy that carries it; none with udp_relay off */
	assert_int_equal(tl_exec(db, "UPDATE proxy_health SET udp = 'yes' WHERE proxy_id IN (1, 2)"), SQLITE_OK);
	assert_int_equal(desired_load(db, &c, &d, err, sizeof(err)), 0);
	assert_int_equal(d.udp.n, 3); /* .10, .11, fd00:2::10; not .12 (proxy down), not .13 (disabled) */
	{
		static const char *const want[] = {"192.168.2.10", "192.168.2.11", "fd00:2::10"}; /* sorted */
		for (int i = 0; i < 3; i++) {
			net_ip_str(&d.udp.addr[i], ip);
			assert_string_equal(ip, want[i]);
		}
	}
	desired_free(&d);
	assert_int_equal(tl_exec(db, "UPDATE proxies SET type = 'http' WHERE id = 1"), SQLITE_OK);
	assert_int_equal(desired_load(db, &c, &d, err, sizeof(err)), 0);
	assert_int_equal(d.udp.n, 0);	 /* HTTP CONNECT carries no UDP, whatever the column says */
	assert_int_equal(d.active.n, 0); /* a changed proxy is unknown until probed again (0031) */
	desired_free(&d);
	assert_int_equal(tl_exec(db, "UPDATE proxies SET type = 'socks5' WHERE id = 1;"
				     "UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 60 "
				     "WHERE proxy_id = 1;" /* (as pgw-healthd's probe of it) */
				     "INSERT INTO settings (key, value) VALUES ('udp_relay', 'false')"),
			 SQLITE_OK);
	assert_int_equal(desired_load(db, &c, &d, err, sizeof(err)), 0);
	assert_int_equal(d.rules.udp, 0);
	assert_int_equal(d.udp.n, 0);
	assert_int_equal(d.active.n, 3);
	desired_free(&d);
	/* a bad value in the DB refuses the load (the agent keeps what it has and says why) */
	assert_int_equal(tl_exec(db, "INSERT INTO settings (key, value) VALUES ('lan_iface', 'a b')"), SQLITE_OK);
	assert_int_equal(desired_load(db, &c, &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "lan_iface"));
	db_close(db);
	tl_rmdir(dir);
}

/* A setting that does not read (here its query cannot be made: the column renamed; on a box, a
 * corrupt page, out of memory) while the table itself reads: no decision, rather than its
 * default (strict_output off, udp_relay on, the environment's interfaces) applied as one */
static void test_setting_unread(void **state)
{
	char *dir = tl_tmpdir(), err[512];
	sqlite3 *db = tl_db(dir, "d.db");
	struct pgw_config c = cfg();
	struct desired d;

	(void)state;
	assert_int_equal(tl_exec(db, "INSERT OR REPLACE INTO settings (key, value) VALUES ('strict_output', 'true')"),
			 SQLITE_OK);
	assert_int_equal(desired_load(db, &c, &d, err, sizeof(err)), 0);
	assert_int_equal(d.rules.strict_output, 1);
	desired_free(&d);
	assert_int_equal(tl_exec(db, "ALTER TABLE settings RENAME COLUMN value TO v"), SQLITE_OK);
	err[0] = '\0';
	assert_int_equal(desired_load(db, &c, &d, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "could not be read"));
	assert_int_equal(tl_exec(db, "ALTER TABLE settings RENAME COLUMN v TO value"), SQLITE_OK);
	assert_int_equal(desired_load(db, &c, &d, err, sizeof(err)), 0); /* and reads again */
	assert_int_equal(d.rules.strict_output, 1);
	desired_free(&d);
	db_close(db);
	tl_rmdir(dir);
}

/* No decision readable: the rules from the configuration alone, the DB not read (a bad lan_cidr
 * in it would refuse them), and nobody in any set */
static void test_none(void **state)
{
	char *dir = tl_tmpdir(), err[512];
	sqlite3 *db = tl_db(dir, "d.db");
	struct pgw_config c = cfg();
	struct desired d;

	(void)state;
	assert_int_equal(tl_exec(db,
				 "INSERT OR REPLACE INTO settings (key, value) VALUES ('lan_cidr', '192.168.2.0/33'),"
				 "('block_action', 'drop')"),
			 SQLITE_OK);
	assert_int_equal(desired_load(db, &c, &d, err, sizeof(err)), -EINVAL); /* what cannot be decided */
	assert_int_equal(desired_none(&c, &d, err, sizeof(err)), 0);
	assert_string_equal(d.rules.lan_iface, "lo");
	assert_int_equal(d.rules.lan_addr, 0xc0a80200u); /* the configuration's, not the DB's */
	assert_int_equal(d.rules.lan_mask, 0xffffff00u);
	assert_int_equal(d.rules.block_drop, 0); /* the default, the DB's not read */
	assert_int_equal(d.rules.forwarder_port, 12345);
	assert_int_equal(d.active.n + d.blocked.n + d.udp.n + d.bound.n + d.limits.n + d.proxies.n, 0);
	desired_free(&d);
	db_close(db);
	tl_rmdir(dir);
}

static void test_minus(void **state)
{
	struct addrset a = {0}, b = {0}, out;
	struct net_ip x[3];

	(void)state;
	net_ip_parse("192.168.2.1", &x[0]);
	net_ip_parse("192.168.2.2", &x[1]);
	net_ip_parse("192.168.2.3", &x[2]);
	a.addr = x;
	a.n = 3;
	b.addr = x + 1;
	b.n = 1;
	assert_int_equal(addrset_minus(&a, &b, &out), 0);
	assert_int_equal(out.n, 2);
	assert_memory_equal(&out.addr[0], &x[0], sizeof(x[0]));
	assert_memory_equal(&out.addr[1], &x[2], sizeof(x[2]));
	free(out.addr);
}

/* Two sorted sets into one, sorted, each element once (the agent's "every client blocked": the
 * active and the blocked, which never share one, and a set with itself); an empty side. */
static void test_union(void **state)
{
	struct net_ip x[4];
	struct addrset a = {x, 2}, b = {x + 2, 2}, none = {NULL, 0}, out = {0};

	(void)state;
	net_ip_parse("192.168.2.1", &x[0]);
	net_ip_parse("192.168.2.3", &x[1]);
	net_ip_parse("192.168.2.2", &x[2]);
	net_ip_parse("fd00:2::10", &x[3]);
	assert_int_equal(addrset_union(&a, &b, &out), 0);
	assert_int_equal(out.n, 4);
	assert_memory_equal(&out.addr[0], &x[0], sizeof(x[0]));
	assert_memory_equal(&out.addr[1], &x[2], sizeof(x[0])); /* .2 between .1 and .3 */
	assert_memory_equal(&out.addr[2], &x[1], sizeof(x[0]));
	assert_memory_equal(&out.addr[3], &x[3], sizeof(x[0]));
	free(out.addr);
	assert_int_equal(addrset_union(&b, &a, &out), 0); /* the same, whichever comes first */
	assert_int_equal(out.n, 4);
	assert_memory_equal(&out.addr[1], &x[2], sizeof(x[0]));
	free(out.addr);
	assert_int_equal(addrset_union(&a, &a, &out), 0);
	assert_int_equal(out.n, 2);
	free(out.addr);
	assert_int_equal(addrset_union(&none, &b, &out), 0);
	assert_int_equal(out.n, 2);
	assert_memory_equal(&out.addr[0], &x[2], sizeof(x[0]));
	free(out.addr);
	assert_int_equal(addrset_union(&none, &none, &out), 0);
	assert_int_equal(out.n, 0);
	free(out.addr);
}

/* Each client waits its own 300 ms after it went (one that goes 10 ms before another's turn is
 * not taken with it); one active again when due keeps its conntrack state; a decision that takes
 * nobody away changes nothing. */
static void test_forget_queue(void **state)
{
	struct net_ip x[3];
	struct addrset a12 = {x, 1}, a14 = {x + 2, 1}, none = {NULL, 0}, out = {0};
	struct forget_queue q = {0};

	(void)state;
	net_ip_parse("192.168.2.12", &x[0]);
	net_ip_parse("192.168.2.13", &x[1]);
	net_ip_parse("192.168.2.14", &x[2]);
	assert_int_equal(forget_add(&q, &a14, 1000), 0);
	assert_int_equal(forget_add(&q, &none, 1100), 0); /* nobody went */
	assert_int_equal(forget_add(&q, &a12, 1290), 0);
	assert_int_equal(q.n, 2);
	assert_memory_equal(&q.e[0].addr, &x[0], sizeof(x[0]));	       /* sorted */
	assert_int_equal(forget_take(&q, &none, 1250, 300, &out), 50); /* none due yet: .14 in 50 ms */
	assert_int_equal(out.n, 0);
	free(out.addr);
	assert_int_equal(forget_take(&q, &none, 1300, 300, &out), 290); /* .14 due, .12 not: in 290 ms */
	assert_int_equal(out.n, 1);
	assert_memory_equal(&out.addr[0], &x[2], sizeof(x[2]));
	free(out.addr);
	assert_int_equal(q.n, 1);
	assert_int_equal(forget_add(&q, &a12, 1400), 0); /* went again: its delay starts over */
	assert_int_equal(forget_take(&q, &none, 1600, 300, &out), 100);
	assert_int_equal(out.n, 0);
	free(out.addr);
	assert_int_equal(forget_take(&q, &a12, 1700, 300, &out),
			 0); /* active again when due: kept, and gone from the queue */
	assert_int_equal(out.n, 0);
	assert_int_equal(q.n, 0);
	free(out.addr);
	assert_int_equal(forget_add(&q, &a14, 2000), 0);
	assert_int_equal(forget_take(&q, &none, 2000, 0, &out), 0); /* no delay (the agent stopping): all */
	assert_int_equal(out.n, 1);
	free(out.addr);
	forget_free(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load),  cmocka_unit_test(test_none),	       cmocka_unit_test(test_minus),
	    cmocka_unit_test(test_union), cmocka_unit_test(test_forget_queue), cmocka_unit_test(test_setting_unread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
