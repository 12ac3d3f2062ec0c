/* libFuzzer: DNS over TCP as the forwarder's resolver reads it (forwarder/dnsclient.c tc_process,
 * dnsupstream.c uc_io): a client's queries and a resolver's answers arrive as a byte stream, cut
 * anywhere. The first input byte says how the rest is cut into reads (1-256 bytes each); the
 * rest goes through the same buffer (buf_reserve, buf_consume, with the buffer limits and first
 * sizes each side uses) and framing (dns_tcp_next), as a client's stream and as a resolver's. No
 * message may be read past what arrived, the buffer never grows past its limit, and it never
 * fills without holding a whole message (no connection can stall); each message framed on the
 * client's side goes through dns_parse_query, and on the resolver's through dns_parse_answer
 * against the last query the client's side took from the same input. (The per-wake-up and
 * in-flight limits of the loops are not modelled.) */
#include "../../forwarder/resolver_int.h"
#include "dns.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One side: returns the bytes framed into whole messages; *dead when a client's message is too
 * short to be DNS (the client side ends the connection there). */
static size_t side(const uint8_t *s, size_t n, size_t chunk, size_t first, size_t room, size_t max, int client,
		   int *dead, struct dns_query *q, int *have_q)
{
	uint8_t *in = NULL;
	size_t len = 0, cap = 0, fed = 0, framed = 0;

	*dead = 0;
	while (fed < n && !*dead) {
		size_t k, off = 0, mlen;

		assert(buf_reserve(&in, len, &cap, room, first, max) == 0);
		assert(cap <= max && len <= cap);
		if (cap == len) /* full: it must hold a whole message, or the connection stalls */
			assert(dns_tcp_next(in, len, &mlen) == 1);
		k = cap - len < chunk ? cap - len : chunk;
		if (k > n - fed)
			k = n - fed;
		memcpy(in + len, s + fed, k);
		len += k;
		fed += k;
		while (len - off >= 2) {
			if (!dns_tcp_next(in + off, len - off, &mlen)) {
				assert(2 + mlen > len - off);
				break;
			}
			assert(off + 2 + mlen <= len);
			if (client && mlen < DNS_HEADER) {
				*dead = 1;
				break;
			}
			if (client) {
				struct dns_query t;
				if (dns_parse_query(in + off + 2, mlen, &t) == 0)
					*q = t, *have_q = 1;
			} else if (*have_q) {
				struct dns_answer a;
				if (dns_parse_answer(in + off + 2, mlen, q, &a) == 0)
					assert(a.id == (uint16_t)(in[off + 2] << 8 | in[off + 3]));
			}
			off += 2 + mlen;
			framed += 2 + mlen;
		}
		if (off)
			buf_consume(in, &len, off);
	}
	assert(framed + len == fed && fed <= n);
	free(in);
	return framed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk;
	int dead, have_q = 0;
	struct dns_query q; /* the client side's last query: what the resolver side answers */

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	memset(&q, 0, sizeof(q));
	(void)side(data + 1, size - 1, chunk, 512, 512, TC_IN_MAX, 1, &dead, &q, &have_q);
	(void)side(data + 1, size - 1, chunk, 4096, 2048, 2 + DNS_MSG_MAX, 0, &dead, &q, &have_q);
	return 0;
}
