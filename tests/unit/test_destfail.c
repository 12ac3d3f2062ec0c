/* test_destfail.c - a proxy is reported only when destinations fail across the board. */
#include "testlib.h"

#include "../../forwarder/destfail.h"

static void test_spread(void **state)
{
	struct destfail d;

	(void)state;
	assert_int_equal(destfail_init(&d), 0);
	/* one destination failing again and again: never the proxy's failure */
	for (int i = 0; i < 50; i++)
		assert_int_equal(destfail_failed(&d, 7, 1001, 1000 + (uint64_t)i), 0);
	/* a second and a third destination within the window: reported once, then counted anew */
	assert_int_equal(destfail_failed(&d, 7, 1002, 2000), 0);
	assert_int_equal(destfail_failed(&d, 7, 1003, 3000), 1);
	assert_int_equal(destfail_failed(&d, 7, 1001, 3001), 0);
	assert_int_equal(destfail_failed(&d, 7, 1002, 3002), 0);
	assert_int_equal(destfail_failed(&d, 7, 1003, 3003), 1);
	/* an answered connection in between: the failures before it are forgotten */
	assert_int_equal(destfail_failed(&d, 7, 1001, 4000), 0);
	assert_int_equal(destfail_failed(&d, 7, 1002, 4001), 0);
	destfail_ok(&d, 7);
	assert_int_equal(destfail_failed(&d, 7, 1003, 4002), 0);
	/* failures older than the window do not count */
	assert_int_equal(destfail_failed(&d, 7, 1004, 4002 + DESTFAIL_WINDOW_MS), 0);
	assert_int_equal(destfail_failed(&d, 7, 1005, 4003 + DESTFAIL_WINDOW_MS), 0);
	assert_int_equal(destfail_failed(&d, 7, 1006, 4004 + DESTFAIL_WINDOW_MS), 1);
	destfail_fini(&d);
}

static void test_proxies_apart(void **state)
{
	struct destfail d;

	(void)state;
	assert_int_equal(destfail_init(&d), 0);
	/* two proxies' failures never add up, also when they share a slot (7 and 7 + SLOTS) */
	assert_int_equal(destfail_failed(&d, 7, 1, 10), 0);
	assert_int_equal(destfail_failed(&d, 8, 2, 11), 0);
	assert_int_equal(destfail_failed(&d, 7 + DESTFAIL_SLOTS, 3, 12), 0);
	assert_int_equal(destfail_failed(&d, 7, 4, 13), 0);
	assert_int_equal(destfail_failed(&d, 7, 5, 14), 0);
	assert_int_equal(destfail_failed(&d, 7, 6, 15), 1);
	destfail_ok(&d, 8 + DESTFAIL_SLOTS); /* another proxy's success in proxy 8's slot: 8's stay */
	assert_int_equal(destfail_failed(&d, 8, 3, 16), 0);
	assert_int_equal(destfail_failed(&d, 8, 4, 17), 1);
	destfail_fini(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spread),
	    cmocka_unit_test(test_proxies_apart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
