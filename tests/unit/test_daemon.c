/* test_daemon.c - what every daemon shares: the systemd watchdog's period. */
#include "testlib.h"

#include "daemon.h"

static void test_watchdog_period(void **state)
{
	(void)state;
	assert_int_equal(daemon_watchdog_ms(NULL, NULL, 42), 0); /* not under a watchdog */
	assert_int_equal(daemon_watchdog_ms("", NULL, 42), 0);
	assert_int_equal(daemon_watchdog_ms("30000000", NULL, 42), 15000); /* half of WatchdogSec=30s */
	assert_int_equal(daemon_watchdog_ms("30000000", "42", 42), 15000); /* meant for us */
	assert_int_equal(daemon_watchdog_ms("30000000", "43", 42), 0);	   /* meant for another process */
	assert_int_equal(daemon_watchdog_ms("30000000", "4x", 42), 0);
	assert_int_equal(daemon_watchdog_ms("abc", NULL, 42), 0);
	assert_int_equal(daemon_watchdog_ms("-5000000", NULL, 42), 0);
	assert_int_equal(daemon_watchdog_ms("1000", NULL, 42), 0); /* below 1 ms: nonsense */
	assert_int_equal(daemon_watchdog_ms("99999999999999999999999", NULL, 42), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_watchdog_period),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
