/* libFuzzer: DNS queries from LAN clients and answers from upstream resolvers are untrusted
 * network input. Each input is tried as a query (and its error reply), and as an answer to a
 * fixed query (walked, aged, truncated), with the invariants the resolver relies on. */
#include "dns.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t m[DNS_MSG_MAX], out[DNS_MSG_MAX];
	struct dns_query q, fixed;
	struct dns_answer a;
	char s[4 * DNS_NAME_MAX + 8];
	size_t n;
	int r, e;

	if (size > DNS_MSG_MAX)
		return 0;
	r = dns_parse_query(data, size, &q);
	assert(r == 0 || r == -EBADMSG || r == -EOPNOTSUPP || r == -EPROTO);
	if (r == 0) {
		assert(q.question_end <= size && q.qname_len <= DNS_NAME_MAX);
		assert(q.udp_size >= DNS_UDP_MIN && q.udp_size <= DNS_UDP_MAX);
		dns_name_str(q.qname, q.qname_len, s, sizeof(s));
		assert(strlen(s) < sizeof(s));
	}
	e = dns_build_error(&q, data, size, DNS_RCODE_FORMERR, out, sizeof(out));
	assert(e >= 12 && (size_t)e <= (q.question_end > 12 ? q.question_end : 12) && q.question_end <= size);

	/* as an answer to "www.example.org A" with the same bytes in its question */
	assert(dns_build_query(1, "www.example.org", 1, out, sizeof(out)) > 0);
	assert(dns_parse_query(out, (size_t)dns_build_query(1, "www.example.org", 1, out, sizeof(out)), &fixed) == 0);
	memcpy(m, data, size);
	r = dns_parse_answer(m, size, &fixed, &a);
	assert(r == 0 || r == -EBADMSG);
	(void)dns_age(m, size, 17);
	n = dns_truncate(m, size, 512);
	assert(n <= size && (size <= 512 ? n == size : n <= 512));
	return 0;
}
