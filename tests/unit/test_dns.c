/* DNS messages: queries parsed (and refused when malformed), answers walked for their rcode and
 * TTL, truncation for UDP, TTL ageing for cached answers, error replies echoing the question. */
#include "testlib.h"

#include "dns.h"

/* www.example.org A, id 0x1234, RD, with an EDNS0 OPT of 4096 (DO set) */
static const uint8_t q_edns[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,	 0,   0,   0, 0,    1,	 3,   'W', 'w',
				 'w',  7,    'e',  'x',	 'a', 'm', 'p',	 'l', 'e', 3, 'o',  'r', 'g', 0,   0,
				 1,    0,    1,	   0,	 0,   41,  0x10, 0,   0,   0, 0x80, 0,	 0,   0};

static void test_query(void **state)
{
	struct dns_query q;
	uint8_t m[64];
	char s[1024];

	(void)state;
	assert_int_equal(dns_parse_query(q_edns, sizeof(q_edns), &q), 0);
	assert_int_equal(q.id, 0x1234);
	assert_int_equal(q.qtype, 1);
	assert_int_equal(q.qclass, 1);
	assert_int_equal(q.qname_len, 17);
	assert_memory_equal(q.qname, "\3www\7example\3org", 17); /* lower-cased */
	assert_true(q.edns);
	assert_true(q.do_bit);
	assert_int_equal(q.udp_size, DNS_UDP_MAX); /* 4096 offered, 1232 used */
	assert_int_equal(q.question_end, 33);
	dns_name_str(q.qname, q.qname_len, s, sizeof(s));
	assert_string_equal(s, "www.example.org.");

	/* without EDNS0: 512 */
	memcpy(m, q_edns, 33);
	m[11] = 0;
	assert_int_equal(dns_parse_query(m, 33, &q), 0);
	assert_false(q.edns);
	assert_int_equal(q.udp_size, DNS_UDP_MIN);

	/* malformed: short, trailing bytes, two questions, a pointer, a label past the end */
	assert_int_equal(dns_parse_query(q_edns, 5, &q), -EBADMSG);
	assert_int_equal(q.id, 0x1234);
	assert_int_equal(dns_parse_query(m, 34, &q), -EBADMSG);
	m[5] = 2;
	assert_int_equal(dns_parse_query(m, 33, &q), -EBADMSG);
	m[5] = 1;
	m[12] = 0xC0;
	assert_int_equal(dns_parse_query(m, 33, &q), -EBADMSG);
	m[12] = 60;
	assert_int_equal(dns_parse_query(m, 33, &q), -EBADMSG);
	m[12] = 3;
	/* a response is not a query; another opcode is NOTIMP */
	m[2] = 0x81;
	assert_int_equal(dns_parse_query(m, 33, &q), -EPROTO);
	m[2] = 0x11;
	assert_int_equal(dns_parse_query(m, 33, &q), -EOPNOTSUPP);

	/* EDNS options: a cookie, a TCP keepalive and padding leave the answer the same for everyone;
	 * a Client Subnet option (after padding) does not, nor a device or policy id a resolver may
	 * answer for (any other code), nor options that do not parse (passed on as sent: whatever
	 * the resolver reads, not cached) */
	static const uint8_t cookie[] = {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8},
			     keepalive[] = {0, 11, 0, 2, 0, 100, 0, 12, 0, 2, 0, 0},
			     ecs[] = {0, 12, 0, 2, 0, 0, 0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100},
			     device[] = {0xfd, 0xe9, 0, 4, 1, 2, 3, 4}, /* 65001 (local use) */
	    cut[] = {0, 10, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8};
	const uint8_t *opts[] = {cookie, keepalive, ecs, device, cut};
	const size_t lens[] = {sizeof(cookie), sizeof(keepalive), sizeof(ecs), sizeof(device), sizeof(cut)};
	for (int i = 0; i < 5; i++) {
		uint8_t w[80];
		memcpy(w, q_edns, sizeof(q_edns));
		w[sizeof(q_edns) - 2] = 0, w[sizeof(q_edns) - 1] = (uint8_t)lens[i]; /* RDLEN */
		memcpy(w + sizeof(q_edns), opts[i], lens[i]);
		assert_int_equal(dns_parse_query(w, sizeof(q_edns) + lens[i], &q), 0);
		assert_true(q.edns);
		assert_int_equal(q.uncached, i > 1);
	}
	assert_int_equal(dns_parse_query(q_edns, sizeof(q_edns), &q), 0);
	assert_false(q.uncached); /* no options */
}

static void test_error_reply(void **state)
{
	struct dns_query q;
	uint8_t out[512];
	int n;

	(void)state;
	assert_int_equal(dns_parse_query(q_edns, sizeof(q_edns), &q), 0);
	n = dns_build_error(&q, q_edns, sizeof(q_edns), DNS_RCODE_REFUSED, out, sizeof(out));
	assert_int_equal(n, 44);
	assert_memory_equal(out, "\x12\x34\x81\x85\0\1\0\0\0\0\0\1", 12);  /* QR RD RA, REFUSED, question, OPT */
	assert_memory_equal(out + 12, q_edns + 12, 21);			   /* the client's own case kept */
	assert_memory_equal(out + 33, "\0\0\x29\x04\xd0\0\0\0\0\0\0", 11); /* OPT: 1232, no options */
	/* malformed: the header alone, FORMERR */
	assert_int_equal(dns_parse_query(q_edns, 20, &q), -EBADMSG);
	n = dns_build_error(&q, q_edns, 20, DNS_RCODE_FORMERR, out, sizeof(out));
	assert_int_equal(n, 12);
	assert_memory_equal(out, "\x12\x34\x81\x81\0\0\0\0\0\0\0\0", 12);
	assert_int_equal(dns_build_error(&q, q_edns, 20, 1, out, 4), -ENOSPC);
	/* ... and goes out over UDP as it is: not truncated (no TC flag, which would send the client to TCP) */
	assert_int_equal(dns_truncate(out, 12, q.udp_size, q.edns), 12);
	assert_int_equal(out[2] & 0x02, 0);
}

/* The longest name (255 bytes in wire form) with an OPT record: its error reply fits DNS_ERROR_MAX */
static void test_error_reply_longest(void **state)
{
	uint8_t m[DNS_HEADER + DNS_NAME_MAX + 4 + 11], out[DNS_ERROR_MAX];
	struct dns_query q;
	size_t off = DNS_HEADER;

	(void)state;
	memset(m, 0, sizeof(m));
	memcpy(m, "\xab\xcd\x01\x00\0\1\0\0\0\0\0\1", DNS_HEADER);
	for (int l = 0; l < 4; l++) { /* 63 + 63 + 63 + 61, and their lengths: 254 bytes, then the root */
		int len = l < 3 ? 63 : 61;
		m[off++] = (uint8_t)len;
		memset(m + off, 'a', (size_t)len);
		off += (size_t)len;
	}
	m[off++] = 0;
	assert_int_equal(off - DNS_HEADER, DNS_NAME_MAX);
	memcpy(m + off, "\0\1\0\1", 4); /* A, IN */
	off += 4;
	memcpy(m + off, "\0\0\x29\x10\0\0\0\0\0\0\0", 11); /* OPT: 4096 */
	off += 11;
	assert_int_equal(dns_parse_query(m, off, &q), 0);
	assert_int_equal(q.edns, 1);
	assert_int_equal(dns_build_error(&q, m, off, DNS_RCODE_SERVFAIL, out, sizeof(out)), (int)sizeof(out));
}

/* An answer to q_edns: two A records (TTL 300 and 60, the second name compressed) */
static size_t answer(uint8_t *m, uint16_t rcode, int with_soa)
{
	static const uint8_t a[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1,
				    0xc0, 12, 0, 1, 0, 1, 0, 0, 0,    60,   0, 4, 192, 0, 2, 2};
	/* example.org SOA: TTL 3600, MINIMUM 900 */
	static const uint8_t soa[] = {0xc0, 16, 0, 6, 0, 1, 0, 0, 0x0e, 0x10, 0, 24, 0xc0, 16, 0xc0, 16, 0, 0,
				      1,    0,	0, 0, 1, 0, 0, 0, 1,	0,    0, 0,  1,	   0,  0,    0,	 3, 0x84};
	size_t n = 33;

	memcpy(m, q_edns, 33);
	m[2] = 0x81;
	m[3] = (uint8_t)(0x80 | rcode);
	m[11] = 0;
	if (rcode == 0 && !with_soa) {
		m[7] = 2;
		memcpy(m + n, a, sizeof(a));
		n += sizeof(a);
	} else {
		m[7] = 0;
		if (with_soa) {
			m[9] = 1;
			memcpy(m + n, soa, sizeof(soa));
			n += sizeof(soa);
		}
	}
	return n;
}

static void test_answer(void **state)
{
	struct dns_query q;
	struct dns_answer a;
	uint8_t m[512];
	size_t n;

	(void)state;
	assert_int_equal(dns_parse_query(q_edns, sizeof(q_edns), &q), 0);
	n = answer(m, 0, 0);
	assert_int_equal(dns_parse_answer(m, n, &q, &a), 0);
	assert_int_equal(a.rcode, 0);
	assert_int_equal(a.ancount, 2);
	assert_int_equal(a.ttl, 60); /* the least */
	/* aged by 100 s: 200 and 0 */
	assert_int_equal(dns_age(m, n, 100), 0);
	assert_memory_equal(m + 33 + 6, "\0\0\0\xc8", 4);
	assert_memory_equal(m + 33 + 16 + 6, "\0\0\0\0", 4);
	/* NXDOMAIN with a SOA: min(3600, 900) */
	n = answer(m, 3, 1);
	assert_int_equal(dns_parse_answer(m, n, &q, &a), 0);
	assert_int_equal(a.rcode, 3);
	assert_int_equal(a.ttl, 900);
	/* NXDOMAIN without a SOA, SERVFAIL: not cached */
	n = answer(m, 3, 0);
	assert_int_equal(dns_parse_answer(m, n, &q, &a), 0);
	assert_int_equal(a.ttl, 0);
	n = answer(m, 2, 0);
	assert_int_equal(dns_parse_answer(m, n, &q, &a), 0);
	assert_int_equal(a.ttl, 0);
	/* another question, a record past the end, not a response */
	n = answer(m, 0, 0);
	m[30] = 28; /* the question's type (bytes 29-30, after the 17-byte name at 12): AAAA */
	assert_int_equal(dns_parse_answer(m, n, &q, &a), -EBADMSG);
	m[30] = 1;
	m[32] = 3; /* its class (bytes 31-32): CH */
	assert_int_equal(dns_parse_answer(m, n, &q, &a), -EBADMSG);
	m[32] = 1;
	assert_int_equal(dns_parse_answer(m, n, &q, &a), 0); /* (as it was: each change alone refused) */
	assert_int_equal(dns_parse_answer(m, n - 1, &q, &a), -EBADMSG);
	m[2] = 0x01;
	assert_int_equal(dns_parse_answer(m, n, &q, &a), -EBADMSG);
}

static void test_truncate(void **state)
{
	struct dns_query q;
	uint8_t m[512];
	size_t n;

	(void)state;
	assert_int_equal(dns_parse_query(q_edns, sizeof(q_edns), &q), 0);
	n = answer(m, 0, 0);
	assert_int_equal(dns_truncate(m, n, 512, 0), n); /* fits: unchanged */
	assert_int_equal(dns_truncate(m, n, 40, 0), 33); /* header and question, TC, no records */
	assert_true(m[2] & 0x02);
	assert_memory_equal(m + 4, "\0\1\0\0\0\0\0\0", 8);
	n = answer(m, 0, 0);
	assert_int_equal(dns_truncate(m, n, 60, 1), 44); /* an EDNS0 client: an OPT too */
	assert_memory_equal(m + 4, "\0\1\0\0\0\0\0\1", 8);
	assert_int_equal(m[35], 41);
	n = answer(m, 0, 0);
	assert_int_equal(dns_truncate(m, n, 20, 1), 12); /* not even the question */
}

static void test_strip_opt(void **state)
{
	/* an answer with an A record and an OPT carrying an 8-byte cookie option */
	static const uint8_t opt[] = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
	struct dns_query q;
	struct dns_answer a;
	uint8_t m[512];
	size_t n;

	(void)state;
	assert_int_equal(dns_parse_query(q_edns, sizeof(q_edns), &q), 0);
	n = answer(m, 0, 0);
	m[11] = 1;
	memcpy(m + n, opt, sizeof(opt));
	n += sizeof(opt);
	assert_int_equal(dns_parse_answer(m, n, &q, &a), 0);
	n = dns_strip_opt(m, n);
	assert_int_equal(n, 33 + 32 + 11); /* the options gone, the record kept */
	assert_memory_equal(m + n - 2, "\0\0", 2);
	assert_int_equal(dns_parse_answer(m, n, &q, &a), 0);
	assert_int_equal(dns_strip_opt(m, n), n); /* nothing more to strip */
	/* a second OPT (whose options the strip would leave), or one among the answers: refused */
	memcpy(m + n, opt, sizeof(opt));
	m[11] = 2;
	assert_int_equal(dns_parse_answer(m, n + sizeof(opt), &q, &a), -EBADMSG);
	n = answer(m, 0, 0);
	memcpy(m + n, opt, sizeof(opt));
	m[7] = 3; /* the two A records and the OPT as answers */
	assert_int_equal(dns_parse_answer(m, n + sizeof(opt), &q, &a), -EBADMSG);
	m[7] = 2, m[9] = 1; /* ... or in the authority section */
	assert_int_equal(dns_parse_answer(m, n + sizeof(opt), &q, &a), -EBADMSG);
	m[9] = 0, m[11] = 1; /* (the same bytes, the OPT an additional record: fine) */
	assert_int_equal(dns_parse_answer(m, n + sizeof(opt), &q, &a), 0);
}

/* DNS over TCP framing: whole, cut short, the largest, an empty message */
static void test_tcp_next(void **state)
{
	static uint8_t big[2 + 65535];
	const uint8_t two[] = {0, 3, 'a', 'b', 'c', 0, 1, 'x'};
	size_t m = 7;

	(void)state;
	assert_int_equal(dns_tcp_next(two, 0, &m), 0);
	assert_int_equal(dns_tcp_next(two, 1, &m), 0);
	assert_int_equal(dns_tcp_next(two, 4, &m), 0);
	assert_int_equal(m, 3);
	assert_int_equal(dns_tcp_next(two, 5, &m), 1);
	assert_int_equal(m, 3);
	assert_int_equal(dns_tcp_next(two + 5, 3, &m), 1);
	assert_int_equal(m, 1);
	big[0] = big[1] = 0xff;
	assert_int_equal(dns_tcp_next(big, sizeof(big) - 1, &m), 0);
	assert_int_equal(dns_tcp_next(big, sizeof(big), &m), 1);
	assert_int_equal(m, 65535);
	big[0] = big[1] = 0;
	assert_int_equal(dns_tcp_next(big, 2, &m), 1);
	assert_int_equal(m, 0);
}

static void test_build_query(void **state)
{
	struct dns_query q;
	uint8_t m[512];
	int n;

	(void)state;
	n = dns_build_query(7, "check.pgw.lab.", 1, m, sizeof(m));
	assert_true(n > 0);
	assert_int_equal(dns_parse_query(m, (size_t)n, &q), 0);
	assert_int_equal(q.id, 7);
	assert_memory_equal(q.qname, "\5check\3pgw\3lab", 15);
	assert_true(q.edns);
	assert_int_equal(dns_build_query(7, "a..b", 1, m, sizeof(m)), -EINVAL);
	assert_int_equal(dns_build_query(7, "", 1, m, sizeof(m)), -EINVAL);
	assert_int_equal(dns_build_query(7, "x.org", 1, m, 20), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_query),
	    cmocka_unit_test(test_error_reply),
	    cmocka_unit_test(test_error_reply_longest),
	    cmocka_unit_test(test_answer),
	    cmocka_unit_test(test_truncate),
	    cmocka_unit_test(test_build_query),
	    cmocka_unit_test(test_tcp_next),
	    cmocka_unit_test(test_strip_opt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
