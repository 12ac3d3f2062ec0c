/* test_throttle.c - login throttling: free failures, then a doubling wait per key; keys apart;
 * a success forgets; IPv6 sources by /64; a flood of keys stays bounded. */
#include "testlib.h"

#include "../../api/throttle.h"

static void test_backoff_and_reset(void **state)
{
	(void)state;
	for (int i = 0; i < THROTTLE_USER_FAILS; i++) {
		assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS), 0);
		throttle_fail("u:alice@10.0.0.1");
	}
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS), 1); /* the first wait: 1 s */
	throttle_fail("u:alice@10.0.0.1");
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS), 2); /* then 2 s */
	throttle_fail("u:alice@10.0.0.1");
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS), 4);
	for (int i = 0; i < 20; i++)
		throttle_fail("u:alice@10.0.0.1");
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS), THROTTLE_MAX_WAIT_S); /* capped */
	/* the same user from elsewhere is not locked out by what happened at 10.0.0.1 */
	assert_int_equal(throttle_check("u:alice@10.0.0.2", THROTTLE_USER_FAILS), 0);
	throttle_reset("u:alice@10.0.0.1"); /* a good login */
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS), 0);
}

static void test_sources(void **state)
{
	char s[80];

	(void)state;
	throttle_source("192.168.2.10", s, sizeof(s));
	assert_string_equal(s, "192.168.2.10");
	throttle_source("2001:db8:1:2:aaaa:bbbb:cccc:dddd", s, sizeof(s));
	assert_string_equal(s, "2001:db8:1:2::/64"); /* one host may use its whole /64 */
	throttle_source("2001:db8:1:2::1", s, sizeof(s));
	assert_string_equal(s, "2001:db8:1:2::/64");
}

static void test_many_keys(void **state)
{
	char key[40];

	(void)state;
	for (int i = 0; i < THROTTLE_USER_FAILS; i++)
		throttle_fail("u:mallory@10.9.9.9");
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "a:10.0.0.%d", i);
		throttle_fail(key);
	}
	assert_true(throttle_check("u:mallory@10.9.9.9", THROTTLE_USER_FAILS) > 0);
	for (int i = 0; i < 100000; i++) { /* a flood of keys: bounded memory, no crash */
		snprintf(key, sizeof(key), "a:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		throttle_fail(key);
	}
	assert_int_equal(throttle_check("a:never-seen", 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff_and_reset),
	    cmocka_unit_test(test_sources),
	    cmocka_unit_test(test_many_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
