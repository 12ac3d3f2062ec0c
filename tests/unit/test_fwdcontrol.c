/* The forwarder's control socket (forwarder/control.c) as pgwctl and pgw-api reach it: a real
 * Unix socket in a temporary run directory, asked through fwdctl_call. "ping" answers whether
 * the forwarder's loops run, without the counters; "stats" answers them. */
#include "testlib.h"

#include "../../forwarder/control.h"
#include "fwdctl.h"

#include <string.h>

static const char *stall; /* what stalled() says: NULL while "every loop runs" */
static int stats_asked;

static const char *stalled(void *arg)
{
	(void)arg;
	return stall;
}

static void stats(void *arg, FILE *out)
{
	(void)arg;
	stats_asked++;
	fputs("{\"closes\":{}}\n", out);
}

/* The answer to line, NUL-terminated (to free). */
static char *ask(const char *run_dir, const char *line)
{
	char err[256], *reply = NULL;
	size_t len = 0;

	assert_int_equal(fwdctl_call(run_dir, line, &reply, &len, 2000, err, sizeof(err)), 0);
	assert_non_null(reply);
	assert_int_equal(strlen(reply), len);
	return reply;
}

static void expect(const char *run_dir, const char *line, const char *answer)
{
	char *got = ask(run_dir, line);

	assert_string_equal(got, answer);
	free(got);
}

static void test_ping(void **state)
{
	char *dir = tl_tmpdir(), err[256];
	struct fwd_shared sh = {.run_dir = dir};
	const struct control_ops ops = {.stats = stats, .stalled = stalled, .arg = NULL};
	struct control *ctl = NULL;

	(void)state;
	stall = NULL;
	stats_asked = 0;
	assert_int_equal(control_start(&sh, NULL, &ops, &ctl, err, sizeof(err)), 0);
	expect(dir, "ping\n", "{\"alive\":true}\n");
	assert_int_equal(stats_asked, 0); /* no counters for a ping */
	stall = "a TCP worker's loop has not run for over 10 s";
	expect(dir, "ping\n", "{\"alive\":false,\"error\":\"a TCP worker's loop has not run for over 10 s\"}\n");
	stall = "a \"quoted\"\tloop"; /* whatever it says stays one JSON string */
	expect(dir, "ping\n", "{\"alive\":false,\"error\":\"a \\\"quoted\\\"\\u0009loop\"}\n");
	expect(dir, "ping now\n", "{\"error\":\"ping takes nothing\"}\n");
	assert_int_equal(stats_asked, 0);
	expect(dir, "stats\n", "{\"closes\":{}}\n");
	assert_int_equal(stats_asked, 1);
	assert_int_equal(control_served(ctl), 0); /* only "stats for=usage" counts */
	expect(dir, "stats for=usage\n", "{\"closes\":{}}\n");
	assert_int_equal(control_served(ctl), 1);
	control_stop(ctl);
	tl_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
