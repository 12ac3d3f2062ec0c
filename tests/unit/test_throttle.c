/* test_throttle.c - login throttling by key: the limit, the wait, reset, keys apart. */
#include "testlib.h"

#include "../../api/throttle.h"

static void test_limit_and_reset(void **state)
{
	unsigned wait;

	(void)state;
	for (int i = 0; i < THROTTLE_USER_FAILS; i++) {
		assert_int_equal(throttle_check("u:alice", THROTTLE_USER_FAILS), 0);
		throttle_fail("u:alice");
	}
	wait = throttle_check("u:alice", THROTTLE_USER_FAILS);
	assert_true(wait > THROTTLE_WINDOW_S - 5 &&
		    wait <= THROTTLE_WINDOW_S);				   /* Retry-After: the rest of the window */
	assert_int_equal(throttle_check("u:bob", THROTTLE_USER_FAILS), 0); /* keys apart */
	assert_int_equal(throttle_check("a:192.168.2.10", THROTTLE_ADDR_FAILS), 0);
	throttle_reset("u:alice"); /* a good login */
	assert_int_equal(throttle_check("u:alice", THROTTLE_USER_FAILS), 0);
}

/* Many keys: the table stays bounded and a key over the limit is not forgotten by a few others. */
static void test_many_keys(void **state)
{
	char key[32];

	(void)state;
	for (int i = 0; i < THROTTLE_USER_FAILS; i++)
		throttle_fail("u:mallory");
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "a:10.0.0.%d", i);
		throttle_fail(key);
	}
	assert_true(throttle_check("u:mallory", THROTTLE_USER_FAILS) > 0);
	for (int i = 0; i < 100000; i++) { /* a flood of keys never grows memory or crashes */
		snprintf(key, sizeof(key), "a:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		throttle_fail(key);
	}
	assert_int_equal(throttle_check("a:never-seen", 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_limit_and_reset),
	    cmocka_unit_test(test_many_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
