/* Address and number parsers: strict, whole-string, range-checked. */
#include "testlib.h"

#include "net.h"
#include "parse.h"

#include <errno.h>

static void test_ipv4(void **state)
{
	uint32_t a;

	(void)state;
	assert_int_equal(net_ipv4_parse("192.168.2.10", &a), 0);
	assert_int_equal(a, 0xc0a8020a);
	assert_int_equal(net_ipv4_parse("0.0.0.0", &a), 0);
	const char *bad[] = { "", "192.168.2", "192.168.2.256", "1.2.3.4.5", " 1.2.3.4", "1.2.3.4 ", "::1", "a.b.c.d", "1..2.3" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(net_ipv4_parse(bad[i], &a), -EINVAL);
}

static void test_cidr(void **state)
{
	struct net_cidr4 c;
	uint32_t a;

	(void)state;
	assert_int_equal(net_cidr4_parse("192.168.2.0/24", &c), 0);
	assert_int_equal(c.prefix, 24);
	net_ipv4_parse("192.168.2.254", &a);
	assert_true(net_cidr4_contains(&c, a));
	net_ipv4_parse("192.168.3.1", &a);
	assert_false(net_cidr4_contains(&c, a));
	assert_int_equal(net_cidr4_parse("0.0.0.0/0", &c), 0);
	assert_true(net_cidr4_contains(&c, a));
	assert_int_equal(net_cidr4_parse("192.168.2.1/24", &c), -EINVAL); /* host bits */
	assert_int_equal(net_cidr4_parse("192.168.2.0", &c), -EINVAL);
	assert_int_equal(net_cidr4_parse("192.168.2.0/", &c), -EINVAL);
	assert_int_equal(net_cidr4_parse("192.168.2.0/-1", &c), -EINVAL);
}

static void test_hostport(void **state)
{
	char host[64];
	uint16_t port;

	(void)state;
	assert_int_equal(net_hostport_parse("0.0.0.0:8080", host, sizeof(host), &port), 0);
	assert_string_equal(host, "0.0.0.0");
	assert_int_equal(port, 8080);
	assert_int_equal(net_hostport_parse("[::1]:443", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 443);
	assert_int_equal(net_hostport_parse("gw.lan:65535", host, sizeof(host), &port), 0);
	const char *bad[] = { "host", "host:", ":80", "host:0", "host:65536", "::1:80", "[::1]80", "h:8a" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(net_hostport_parse(bad[i], host, sizeof(host), &port), -EINVAL);
	assert_int_equal(net_hostport_parse("averylonghostname:1", host, 8, &port), -EINVAL);
}

static void test_numbers_and_bools(void **state)
{
	uint64_t v;
	int b;

	(void)state;
	assert_int_equal(parse_u64("42", 1, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(parse_u64("0", 1, 100, &v), -ERANGE);
	assert_int_equal(parse_u64("101", 1, 100, &v), -ERANGE);
	assert_int_equal(parse_u64("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_u64("-1", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_u64("+1", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_u64("1x", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_u64("", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_bool("On", &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(parse_bool("false", &b), 0);
	assert_int_equal(b, 0);
	assert_int_equal(parse_bool("maybe", &b), -EINVAL);
}

static void test_ifname(void **state)
{
	(void)state;
	assert_true(net_ifname_valid("ens19"));
	assert_true(net_ifname_valid("abcdefghijklmno"));
	assert_false(net_ifname_valid("abcdefghijklmnop"));
	assert_false(net_ifname_valid(""));
	assert_false(net_ifname_valid("a b"));
	assert_false(net_ifname_valid("a/b"));
	assert_false(net_ifname_valid(".."));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4),	 cmocka_unit_test(test_cidr),  cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_numbers_and_bools), cmocka_unit_test(test_ifname),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
