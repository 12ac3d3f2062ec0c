/* test_probe.c - the health probe's pure response parsing: framing (Content-Length, chunked,
 * bodiless statuses) decides when a response is whole, so a server that keeps the connection
 * open after answering is not waited for; a chunked body is read without its framing. */
#include "testlib.h"

#include "../../healthd/probe.h"

#include <string.h>

static int whole(const char *s)
{
	return probe_response_complete(s, strlen(s));
}

static enum probe_error parse(const char *s, char ip[PROBE_IP_MAX], int *status)
{
	return probe_parse_response(s, strlen(s), status, ip);
}

static void test_complete(void **state)
{
	(void)state;
	assert_int_equal(whole("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n"), 0);		   /* head not done */
	assert_int_equal(whole("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n198.51"), 0);	   /* body short */
	assert_int_equal(whole("HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n198.51.100.9\n"), 1); /* any case */
	assert_int_equal(whole("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n198.51.100.9\n"), 0);	   /* until EOF */
	assert_int_equal(whole("HTTP/1.1 204 No Content\r\n\r\n"), 1);
	assert_int_equal(whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n198.51.100.9\n\r\n"), 0);
	assert_int_equal(whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n198.51.100.9\n\r\n0\r\n\r\n"),
			 1);
	assert_int_equal(whole("garbage\r\n\r\n"), 1); /* malformed: parsing says why, not a timeout */
	/* a size line that is not hex, an empty Content-Length: whole (malformed), never read past */
	assert_int_equal(whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n"), 1);
	assert_int_equal(whole("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n198.51.100.9"), 1);
}

static void test_parse(void **state)
{
	char ip[PROBE_IP_MAX];
	int status;

	(void)state;
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n198.51.100.9\n", ip, &status), PROBE_OK);
	assert_string_equal(ip, "198.51.100.9");
	/* a body cut short by the proxy: no answer, though its start is an address */
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n203.0.113.4", ip, &status),
			 PROBE_BAD_HTTP);
	/* what follows the body is not read as part of it */
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n203.0.113.45", ip, &status), PROBE_OK);
	assert_string_equal(ip, "203.0.113.4");
	assert_int_equal(
	    parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n198.51.\r\n6\r\n100.9\n\r\n0\r\n\r\n", ip,
		  &status),
	    PROBE_OK);
	assert_string_equal(ip, "198.51.100.9"); /* reassembled across chunks */
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: "
			       "chunked\r\n\r\n5\r\n{\"ip\"\r\nf\r\n:\"2001:db8::1\"}\r\n0\r\n\r\n",
			       ip, &status),
			 PROBE_OK);
	assert_string_equal(ip, "2001:db8::1");
	/* a chunk that says 16 bytes where 15 come: broken framing, not an answer */
	assert_int_equal(
	    parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n:\"2001:db8::1\"}\r\n0\r\n\r\n", ip,
		  &status),
	    PROBE_BAD_HTTP);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n1\r\n", ip, &status),
			 PROBE_BAD_HTTP);
	assert_int_equal(parse("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", ip, &status),
			 PROBE_HTTP_STATUS);
	assert_int_equal(status, 502);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_complete),
	    cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
