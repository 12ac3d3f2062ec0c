/* Quota periods: midnight, Monday, the 1st, in the time zone the setting names (DST included). */
#include "testlib.h"

#include "quota.h"

#include <stdlib.h>

static void test_utc(void **state)
{
	(void)state;
	/* 2026-12-03 15:04:05 UTC, a Thursday */
	assert_int_equal(quota_period_start(1796310245, "day", "UTC"), 1796256000);   /* 2026-12-03 00:00 */
	assert_int_equal(quota_period_start(1796310245, "week", "UTC"), 1795996800);  /* Monday 2026-11-30 */
	assert_int_equal(quota_period_start(1796310245, "month", "UTC"), 1796083200); /* 2026-12-01 */
	assert_int_equal(quota_period_start(1796310245, "month", ""), 1796083200);
	assert_int_equal(quota_period_start(1796310245, "bogus", "UTC"), 1796083200);		     /* month */
	assert_int_equal(quota_period_start(1795996800 - 1, "week", "UTC"), 1795996800 - 7 * 86400); /* Sunday */
	/* midnight itself starts the day */
	assert_int_equal(quota_period_start(1796256000, "day", "UTC"), 1796256000);
}

static void test_zones(void **state)
{
	(void)state;
	unsetenv("TZ"); /* whatever the caller's environment said */
	if (!quota_tz_valid("Asia/Tokyo") || !quota_tz_valid("Europe/Berlin"))
		skip(); /* no tzdata on this machine */
	/* 2026-12-03 15:04:05 UTC is 2026-12-04 00:04:05 in Tokyo (UTC+9): that day began 4 min ago */
	assert_int_equal(quota_period_start(1796310245, "day", "Asia/Tokyo"), 1796310245 - 245);
	/* Berlin in winter is UTC+1: 2026-12-03 00:00 there is 2026-12-02 23:00 UTC */
	assert_int_equal(quota_period_start(1796310245, "day", "Europe/Berlin"), 1796256000 - 3600);
	/* a day in summer (2026-07-15 12:00 UTC): UTC+2 */
	assert_int_equal(quota_period_start(1784116800, "day", "Europe/Berlin"), 1784073600 - 7200);
	/* the month that holds the switch to winter time (2026-10-25): began at UTC+2 */
	assert_int_equal(quota_period_start(1793188800, "month", "Europe/Berlin"), 1790812800 - 7200);
	/* TZ is put back as it was */
	assert_null(getenv("TZ"));
}

static void test_tz_valid(void **state)
{
	(void)state;
	assert_true(quota_tz_valid("UTC"));
	assert_true(quota_tz_valid(""));
	assert_false(quota_tz_valid("../../etc/passwd"));
	assert_false(quota_tz_valid("/etc/localtime"));
	assert_false(quota_tz_valid("Mars/Olympus_Mons"));
	assert_false(quota_tz_valid("Europe/Berlin; rm"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_utc),
	    cmocka_unit_test(test_zones),
	    cmocka_unit_test(test_tz_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
