/* The forwarder's control requests (fwdctl.h): what parses, the defaults, and a clear error for
 * anything else. */
#include "testlib.h"

#include "fwdctl.h"

#include <string.h>

static int parse(const char *s, struct fwdctl_req *r, char *err)
{
	return fwdctl_parse(s, strlen(s), r, err, 256);
}

static void test_conns(void **state)
{
	struct fwdctl_req r;
	char err[256], ip[NET_IP_STR_MAX];

	(void)state;
	assert_int_equal(parse("conns\n", &r, err), 0);
	assert_int_equal(r.op, FWDCTL_CONNS);
	assert_int_equal(r.org, -1); /* every organisation */
	assert_int_equal(r.limit, FWDCTL_PAGE_DEFAULT);
	assert_int_equal(r.has_client, 0);
	assert_int_equal(r.cursor, 0);
	assert_int_equal(parse("conns org=2 client=FD00:2:0::10 proxy=7 limit=1000 cursor=42 id=9\r\n", &r, err), 0);
	assert_int_equal(r.org, 2);
	assert_int_equal(r.has_client, 1);
	net_ip_str(&r.client, ip);
	assert_string_equal(ip, "fd00:2::10");
	assert_int_equal(r.proxy, 7);
	assert_int_equal(r.limit, 1000);
	assert_int_equal(r.cursor, 42);
	assert_int_equal(r.id, 9);
	assert_int_equal(parse("conns org=-1", &r, err), 0); /* no newline: fine */
	assert_int_equal(r.org, -1);
}

static void test_close(void **state)
{
	struct fwdctl_req r;
	char err[256];

	(void)state;
	assert_int_equal(parse("close id=5 org=3\n", &r, err), 0);
	assert_int_equal(r.op, FWDCTL_CLOSE);
	assert_int_equal(r.id, 5);
	assert_int_equal(r.org, 3);
	assert_int_equal(parse("close client=192.168.2.10\n", &r, err), 0);
	assert_int_equal(r.has_client, 1);
	assert_int_equal(parse("close\n", &r, err), -1); /* never "close everything" */
	assert_non_null(strstr(err, "id=ID or client=IP"));
	assert_int_equal(parse("close id=5 client=192.168.2.10\n", &r, err), -1);
	assert_int_equal(parse("close client=192.168.2.10 proxy=1\n", &r, err), -1);
	assert_int_equal(parse("close id=0\n", &r, err), -1);
	assert_int_equal(parse("close client=192.168.2.10 limit=5\n", &r, err), -1); /* a page is for conns */
}

static void test_stats(void **state)
{
	struct fwdctl_req r;
	char err[256];

	(void)state;
	assert_int_equal(parse("stats\n", &r, err), 0);
	assert_int_equal(r.op, FWDCTL_STATS);
	assert_int_equal(r.for_usage, 0);
	assert_int_equal(parse("stats for=usage\n", &r, err), 0);
	assert_int_equal(r.op, FWDCTL_STATS);
	assert_int_equal(r.for_usage, 1);
	assert_int_equal(parse("ping\n", &r, err), 0);
	assert_int_equal(r.op, FWDCTL_PING);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "\n",
	    "stats x=1\n", /* stats takes only for=usage */
	    "stats for=usage for=usage\n",
	    "stats for=metrics\n",
	    "stats for\n",
	    "ping x\n", /* ping takes nothing */
	    "ping for=usage\n",
	    "PING\n",
	    "conns limit=0\n",
	    "conns limit=1001\n",
	    "conns limit=5 limit=6\n",
	    "conns client=laptop\n",
	    "conns client=192.168.2.10 client=192.168.2.11\n",
	    "conns proxy=0\n",
	    "conns proxy=-1\n",
	    "conns org=0\n",
	    "conns org=-2\n",
	    "conns cursor=x\n",
	    "conns cursor=18446744073709551616\n",
	    "conns foo=1\n",
	    "conns org\n",
	    "CONNS\n",
	};
	struct fwdctl_req r;
	char err[256], big[FWDCTL_LINE_MAX + 8];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(parse(bad[i], &r, err), -1);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(fwdctl_parse("conns\0 id=1\n", 12, &r, err, sizeof(err)), -1); /* a NUL inside */
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "conns ", 6);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(parse(big, &r, err), -1);
	assert_non_null(strstr(err, "longer"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_conns),
	    cmocka_unit_test(test_close),
	    cmocka_unit_test(test_stats),
	    cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
