/* Log lines: one line per event, valid JSON with escaping, ids, levels, errno text. */
#include "testlib.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>

static char out[8192];

static const char *capture_start(int fds[2])
{
	assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
	log_set_fd(fds[1]);
	return NULL;
}

static const char *capture_end(int fds[2])
{
	ssize_t n = read(fds[0], out, sizeof(out) - 1);

	log_set_fd(2);
	close(fds[0]);
	close(fds[1]);
	out[n > 0 ? n : 0] = '\0';
	return out;
}

static void test_json_line(void **state)
{
	int fds[2];
	const char *s;

	(void)state;
	log_init("pgw-test", LOG_FMT_JSON, LOG_LVL_INFO);
	capture_start(fds);
	log_info_id("req-42", "user \"%s\" said\nhello\t%d", "bob", 7);
	s = capture_end(fds);
	assert_non_null(strstr(s, "{\"ts\":\""));
	assert_non_null(strstr(s, "\"level\":\"info\",\"daemon\":\"pgw-test\",\"id\":\"req-42\""));
	assert_non_null(strstr(s, "\"msg\":\"user \\\"bob\\\" said\\nhello\\t7\"}\n"));
	/* exactly one line */
	assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1);
}

static void test_text_line_and_levels(void **state)
{
	int fds[2];
	const char *s;

	(void)state;
	log_init("pgw-test", LOG_FMT_TEXT, LOG_LVL_INFO);
	capture_start(fds);
	log_debug("hidden at info level");
	log_info_id("c7", "visible");
	s = capture_end(fds);
	assert_null(strstr(s, "hidden"));
	assert_non_null(strstr(s, " pgw-test info [c7]: visible\n"));
}

/* Text format: a newline someone put in a user name cannot forge a second log line. */
static void test_text_line_cannot_be_forged(void **state)
{
	int fds[2];
	const char *s;

	(void)state;
	log_init("pgw-test", LOG_FMT_TEXT, LOG_LVL_INFO);
	capture_start(fds);
	log_info("login failed for '%s'", "eve\n2026-01-01T00:00:00.000Z pgw-api info: login ok for 'admin'\r");
	s = capture_end(fds);
	assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1); /* one line */
	assert_non_null(strstr(s, "'eve\\x0a2026-01-01T00:00:00.000Z pgw-api info: login ok for 'admin'\\x0d'"));
}

static void test_warn_adds_errno_text(void **state)
{
	int fds[2];
	const char *s;

	(void)state;
	log_init("pgw-test", LOG_FMT_TEXT, LOG_LVL_INFO);
	capture_start(fds);
	errno = ECONNREFUSED;
	log_warn("connect to %s", "198.51.100.10:1080");
	s = capture_end(fds);
	assert_non_null(strstr(s, "warn: connect to 198.51.100.10:1080: Connection refused\n"));
}

static void test_json_escape_control_and_truncation(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(log_json_escape(buf, sizeof(buf), "a\x01z"), 8);
	assert_string_equal(buf, "a\\u0001z");
	/* truncates at an escape boundary, always NUL-terminated */
	log_json_escape(buf, sizeof(buf), "\"\"\"\"\"\"\"\"\"\"");
	assert_int_equal(strlen(buf), 14);
	assert_string_equal(buf, "\\\"\\\"\\\"\\\"\\\"\\\"\\\"");
}

static void test_parse_names(void **state)
{
	enum log_level l;
	enum log_format f;

	(void)state;
	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(l, LOG_LVL_WARN);
	assert_int_equal(log_level_parse("WARN", &l), -EINVAL);
	assert_int_equal(log_format_parse("json", &f), 0);
	assert_int_equal(f, LOG_FMT_JSON);
	assert_int_equal(log_format_parse("yaml", &f), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_line),
	    cmocka_unit_test(test_text_line_and_levels),
	    cmocka_unit_test(test_text_line_cannot_be_forged),
	    cmocka_unit_test(test_warn_adds_errno_text),
	    cmocka_unit_test(test_json_escape_control_and_truncation),
	    cmocka_unit_test(test_parse_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
