/* test_hysteresis.c - healthd's status from probe results (a pure function). */
#include "testlib.h"

#include "../../healthd/hysteresis.h"

/* Feed a string of results ('+' ok, '-' failed); return the statuses after each, one letter
 * each: '?' unknown, 'U' up, 'd' down (not the names' first letters: "up" and "unknown" share one) */
static void run(const char *results, unsigned fail_th, unsigned succ_th, char *out)
{
	struct hysteresis h = {HEALTH_UNKNOWN, 0, 0, 0};
	size_t i;

	for (i = 0; results[i]; i++) {
		hysteresis_step(&h, results[i] == '+', fail_th, succ_th);
		out[i] = h.status == HEALTH_UP	      ? 'U'
			 : h.status == HEALTH_DOWN    ? 'd'
			 : h.status == HEALTH_UNKNOWN ? '?'
						      : '!';
	}
	out[i] = 0;
}

static void test_steps(void **state)
{
	char out[32];

	(void)state;
	run("+", 1, 2, out); /* unknown decides at once */
	assert_string_equal(out, "U");
	run("-", 3, 2, out); /* ... a failure needs the threshold, even from unknown */
	assert_string_equal(out, "?");
	run("---", 3, 2, out);
	assert_string_equal(out, "??d");
	run("+-+--+++", 1, 2, out); /* defaults: fail fast, come back after two */
	assert_string_equal(out, "UdddddUU");
	run("+-+-", 2, 1, out); /* a single failure never takes an up proxy down with threshold 2 */
	assert_string_equal(out, "UUUU");
	run("--++", 2, 3, out); /* down after two failures; three good results are not yet there */
	assert_string_equal(out, "?ddd");
}

static void test_changes_and_counts(void **state)
{
	struct hysteresis h = {HEALTH_UP, 0, 0, 0};

	(void)state;
	assert_int_equal(hysteresis_step(&h, 1, 1, 2), 0);
	assert_int_equal(h.succs, 1);
	assert_int_equal(hysteresis_step(&h, 0, 1, 2), 1); /* up -> down */
	assert_int_equal(h.fails, 1);
	assert_int_equal(h.succs, 0);
	assert_int_equal(hysteresis_step(&h, 1, 1, 2), 0);
	assert_int_equal(hysteresis_step(&h, 1, 1, 2), 1); /* down -> up after two */
}

/* ups: good results in a row with the proxy up (failover's hysteresis): any failure starts it
 * over, one under the fail threshold too, so a flapping proxy never settles */
static void test_ups(void **state)
{
	struct hysteresis h = {HEALTH_UNKNOWN, 0, 0, 0};
	const char *seq = "++-+++-++";
	const unsigned want[] = {1, 2, 0, 0, 1, 2, 0, 0, 1}; /* fail 1, succ 2: down at once, up after two */

	(void)state;
	for (int i = 0; seq[i]; i++) {
		hysteresis_step(&h, seq[i] == '+', 1, 2);
		assert_int_equal(h.ups, want[i]);
	}
	h = (struct hysteresis){HEALTH_UP, 0, 0, 7};
	hysteresis_step(&h, 0, 2, 2); /* one failure under the threshold: still up, not settled */
	assert_int_equal(h.status, HEALTH_UP);
	assert_int_equal(h.ups, 0);
	for (int i = 0; i < 6; i++) { /* failing every other probe: never two good ones in a row */
		hysteresis_step(&h, (i + 1) % 2, 2, 2);
		assert_int_equal(h.status, HEALTH_UP);
		assert_true(h.ups <= 1);
	}
}

static void test_names(void **state)
{
	(void)state;
	for (int s = HEALTH_UNKNOWN; s <= HEALTH_DOWN; s++)
		assert_int_equal(health_status_parse(health_status_str(s)), s);
	assert_int_equal(health_status_parse("sideways"), HEALTH_UNKNOWN);
	assert_int_equal(health_status_parse(NULL), HEALTH_UNKNOWN);
	assert_string_equal(health_status_str((enum health_status)7), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_steps),
	    cmocka_unit_test(test_changes_and_counts),
	    cmocka_unit_test(test_ups),
	    cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
