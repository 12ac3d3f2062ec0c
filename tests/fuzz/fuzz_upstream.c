/* libFuzzer: replies from upstream proxies are untrusted network input. The first byte picks
 * the parser; the rest is the reply. */
#include "upstream.h"

#include <assert.h>
#include <errno.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t v;
	int st, r;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		r = socks5_parse_method(data + 1, size - 1, &v);
		break;
	case 1:
		r = socks5_parse_auth(data + 1, size - 1, &v);
		break;
	case 2:
		r = socks5_parse_connect(data + 1, size - 1, &v);
		break;
	default:
		r = http_parse_connect((const char *)data + 1, size - 1, &st);
		if (r > 0)
			assert(st >= 100 && st <= 599);
		break;
	}
	assert(r == -EBADMSG || (r >= 0 && (size_t)r <= size - 1));
	return 0;
}
