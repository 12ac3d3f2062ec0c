/* libFuzzer: DNS queries from LAN clients and answers from upstream resolvers are untrusted
 * network input. Each input is tried as a query (and its error reply). Then its first byte
 * splits it: the part after it is a query; if that parses, the rest, with the query's question
 * written over its own, is walked as the answer to it (so the record walk is reached), aged,
 * stripped of OPT options and truncated, with the invariants the resolver relies on; a good
 * answer goes through the DNS cache (kept, then served to the query: its id, within bounds). */
#include "../../forwarder/dnscache.h"
#include "dns.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t m[DNS_MSG_MAX + 512], out[DNS_MSG_MAX];
	struct dns_query q, aq;
	struct dns_answer a;
	char s[4 * DNS_NAME_MAX + 8];
	size_t n, qlen, alen;
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
	assert(e >= 12 && (size_t)e <= (q.question_end > 12 ? q.question_end : 12) + 11 && q.question_end <= size);
	assert(e <= DNS_ERROR_MAX && q.udp_size >= DNS_UDP_MIN); /* fits the resolver's buffer, and a UDP reply */

	if (size < 1)
		return 0;
	qlen = data[0] < size - 1 ? data[0] : size - 1;
	if (dns_parse_query(data + 1, qlen, &aq) != 0)
		return 0;
	/* answer = the rest's header, the query's question, the rest after its own header */
	alen = size - 1 - qlen;
	if (alen < DNS_HEADER)
		return 0;
	memcpy(m, data + 1 + qlen, DNS_HEADER);
	memcpy(m + DNS_HEADER, data + 1 + DNS_HEADER, aq.question_end - DNS_HEADER);
	memcpy(m + aq.question_end, data + 1 + qlen + DNS_HEADER, alen - DNS_HEADER);
	n = aq.question_end + alen - DNS_HEADER;
	r = dns_parse_answer(m, n, &aq, &a);
	assert(r == 0 || r == -EBADMSG);
	if (r == 0)
		assert(a.ttl <= 0x7fffffffu);
	if (r == 0) {
		static struct dns_cache *cache;
		static uint8_t got[DNS_MSG_MAX];
		size_t g;

		if (!cache)
			cache = dns_cache_new(64, 1 << 20);
		assert(cache);
		dns_cache_put(cache, 7, &aq, m, n, a.ttl, 1000);
		g = dns_cache_get(cache, 7, &aq, data + 1, 1500, got, sizeof(got));
		assert(g <= sizeof(got));
		if (g) /* the query's id, its question as asked */
			assert(g >= aq.question_end && memcmp(got, data + 1, 2) == 0 &&
			       memcmp(got + DNS_HEADER, data + 1 + DNS_HEADER, aq.question_end - DNS_HEADER) == 0);
		assert(dns_cache_get(cache, 8, &aq, data + 1, 1500, got, sizeof(got)) == 0); /* another path */
		if (dns_cache_entries(cache) > 32)
			dns_cache_clear(cache);
	}
	(void)dns_age(m, n, 17);
	alen = dns_strip_opt(m, n);
	assert(alen <= n);
	if (r == 0) /* stripping keeps a good answer good */
		assert(dns_parse_answer(m, alen, &aq, &a) == 0);
	n = dns_truncate(m, alen, 512, aq.edns);
	assert(n <= alen && (alen <= 512 ? n == alen : n <= 512));
	return 0;
}
