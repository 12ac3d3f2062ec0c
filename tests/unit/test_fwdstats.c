/* test_fwdstats.c - a client's quota as the forwarder's workers take it for reads: a read under
 * way on one worker never makes the client look used up to another, and what it did not read
 * goes back. */
#include "testlib.h"

#include "../../forwarder/stats.h"

#include <limits.h>

static void setup(struct fwd_stats *s, struct client_stat **cs, long long limit)
{
	struct net_ip ip;

	assert_int_equal(stats_init(s), 0);
	assert_int_equal(net_ip_parse("192.168.2.10", &ip), 0);
	stats_quota_set(s, &ip, limit, 0, 0, 0);
	assert_int_equal(stats_client_open(s, &ip, 1, 0, 0, 1000, cs), 0);
	assert_non_null(*cs);
}

static void test_reads_under_way(void **state)
{
	struct fwd_stats s = {0};
	struct client_stat *cs, *other;
	struct net_ip ip;
	size_t h1, h2;

	(void)state;
	setup(&s, &cs, 1000);
	/* worker 1 takes most of it for a read, worker 2 the rest: neither sees the client used up */
	assert_int_equal(stats_quota_take(cs, 600, &h1), 600);
	assert_int_equal(h1, 600);
	assert_int_equal(stats_quota_left(cs), 1000);
	assert_int_equal(stats_quota_take(cs, 600, &h2), 400); /* no byte twice: only what is left */
	assert_int_equal(h2, 400);
	assert_int_equal(stats_quota_left(cs), 1000);
	/* a new connection of the client is not refused for a read under way */
	assert_int_equal(net_ip_parse("192.168.2.10", &ip), 0);
	assert_int_equal(stats_client_open(&s, &ip, 1, 0, 0, 1000, &other), 0);
	assert_ptr_equal(other, cs);
	/* worker 1 read nothing (EAGAIN), worker 2 read 300 of its 400 */
	stats_quota_done(cs, h1, 600);
	assert_int_equal(stats_quota_left(cs), 1000); /* worker 2 still holds its 400 */
	stats_quota_done(cs, h2, 100);
	assert_int_equal(stats_quota_left(cs), 700);
	/* used up: a read gets nothing, holds nothing, and new connections are refused */
	assert_int_equal(stats_quota_take(cs, 700, &h1), 700);
	stats_quota_done(cs, h1, 0);
	assert_int_equal(stats_quota_left(cs), 0);
	assert_int_equal(stats_quota_take(cs, 100, &h2), 0);
	assert_int_equal(h2, 0);
	assert_int_equal(stats_client_open(&s, &ip, 1, 0, 0, 1000, &other), CLOSE_QUOTA);
	assert_null(other);
	/* bytes read but never delivered come back */
	stats_quota_give(cs, 50);
	assert_int_equal(stats_quota_left(cs), 50);
	stats_fini(&s);
}

static void test_reload_during_a_read(void **state)
{
	struct fwd_stats s = {0};
	struct client_stat *cs;
	struct net_ip ip;
	size_t h;

	(void)state;
	setup(&s, &cs, 1000);
	assert_int_equal(net_ip_parse("192.168.2.10", &ip), 0);
	assert_int_equal(stats_quota_take(cs, 400, &h), 400);
	/* a reload sets the quota again while the read is under way: what it holds is not counted twice */
	stats_quota_set(&s, &ip, 1000, 0, 0, 0);
	assert_int_equal(stats_quota_left(cs), 1000);
	stats_quota_done(cs, h, 400); /* it read nothing */
	assert_int_equal(stats_quota_left(cs), 1000);
	/* the quota taken off: a read takes what it wants and holds nothing */
	stats_quota_set(&s, &ip, 0, 0, 0, 0);
	assert_int_equal(stats_quota_take(cs, 5000, &h), 5000);
	assert_int_equal(h, 0);
	stats_quota_done(cs, h, 5000);
	assert_true(stats_quota_left(cs) == LLONG_MAX);
	stats_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_under_way),
	    cmocka_unit_test(test_reload_during_a_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
