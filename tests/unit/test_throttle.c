/* test_throttle.c - login throttling: free failures, then a doubling wait per key; keys apart;
 * a success forgets; IPv6 sources by /64; a flood of keys stays bounded. */
#include "testlib.h"

#include "../../api/throttle.h"

static void test_backoff_and_reset(void **state)
{
	(void)state;
	for (int i = 0; i < THROTTLE_USER_FAILS; i++) {
		assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S), 0);
		throttle_fail("u:alice@10.0.0.1");
	}
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S),
			 1); /* the first wait: 1 s */
	throttle_fail("u:alice@10.0.0.1");
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S),
			 2); /* then 2 s */
	throttle_fail("u:alice@10.0.0.1");
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S), 4);
	for (int i = 0; i < 20; i++)
		throttle_fail("u:alice@10.0.0.1");
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S),
			 THROTTLE_MAX_WAIT_S); /* capped */
	/* the same user from elsewhere is not locked out by what happened at 10.0.0.1 */
	assert_int_equal(throttle_check("u:alice@10.0.0.2", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S), 0);
	throttle_reset("u:alice@10.0.0.1"); /* a good login */
	assert_int_equal(throttle_check("u:alice@10.0.0.1", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S), 0);
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
	assert_true(throttle_check("u:mallory@10.9.9.9", THROTTLE_USER_FAILS, 1, THROTTLE_MAX_WAIT_S) > 0);
	throttle_remember("k:mallory@10.9.9.9");
	for (int i = 0; i < 100000; i++) { /* a flood of keys, one failure each: far more than the slots */
		snprintf(key, sizeof(key), "a:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		throttle_fail(key);
	}
	/* what holds someone back outlived the flood, and so did a remembered source */
	/* (a wait of 300 s after the first failure past the free ones: the flood takes a moment) */
	assert_true(throttle_check("u:mallory@10.9.9.9", THROTTLE_USER_FAILS - 1, THROTTLE_MAX_WAIT_S,
				   THROTTLE_MAX_WAIT_S) > 0);
	assert_true(throttle_known("k:mallory@10.9.9.9"));
	/* the newest of the flood is counted (its slot one of the oldest of its worth); its first of
	 * one failure was reused (a:10.0.0.0-9 are the ten above, with two), the ten with two not */
	assert_true(throttle_check(key, 0, THROTTLE_MAX_WAIT_S, THROTTLE_MAX_WAIT_S) > 0);
	assert_int_equal(throttle_check("a:10.0.0.10", 0, THROTTLE_MAX_WAIT_S, THROTTLE_MAX_WAIT_S), 0);
	assert_true(throttle_check("a:10.0.0.9", 1, THROTTLE_MAX_WAIT_S, THROTTLE_MAX_WAIT_S) > 0);
	assert_int_equal(throttle_check("a:never-seen", 1, 1, THROTTLE_MAX_WAIT_S), 0);
}

/* A capped key waits at most its own cap; a remembered key is known (and a failure key is not). */
static void test_cap_and_known(void **state)
{
	(void)state;
	for (int i = 0; i < THROTTLE_ANY_FAILS + 30; i++)
		throttle_fail("g:carol");
	assert_int_equal(
	    throttle_check("g:carol", THROTTLE_ANY_FAILS, THROTTLE_ANY_FIRST_WAIT_S, THROTTLE_ANY_MAX_WAIT_S),
	    THROTTLE_ANY_MAX_WAIT_S);
	throttle_forgive("g:carol"); /* one good login elsewhere: still held */
	assert_true(throttle_check("g:carol", THROTTLE_ANY_FAILS, THROTTLE_ANY_FIRST_WAIT_S, THROTTLE_ANY_MAX_WAIT_S) >
		    0);
	assert_false(throttle_known("k:carol@10.0.0.7"));
	throttle_remember("k:carol@10.0.0.7");
	assert_true(throttle_known("k:carol@10.0.0.7"));
	assert_false(throttle_known("k:carol@10.0.0.8"));
	assert_false(throttle_known("g:carol")); /* a failure count is not a remembered source */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff_and_reset),
	    cmocka_unit_test(test_sources),
	    cmocka_unit_test(test_many_keys),
	    cmocka_unit_test(test_cap_and_known),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
