/* random.c - see random.h. */
#include "random.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t got = getrandom(p, len, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got == 0)
				errno = EIO;
			explicit_bzero(buf, (size_t)(p - (unsigned char *)buf));
			return -1;
		}
		p += got;
		len -= (size_t)got;
	}
	return 0;
}

int random_hex(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[64];
	char *start = out;

	while (n) {
		size_t k = n < sizeof(b) ? n : sizeof(b);
		if (random_bytes(b, k) < 0) { /* nothing of it stays: not the first chunks either */
			int e = errno;
			explicit_bzero(b, sizeof(b));
			explicit_bzero(start, (size_t)(out - start));
			*start = 0;
			errno = e;
			return -1;
		}
		for (size_t i = 0; i < k; i++) {
			*out++ = hex[b[i] >> 4];
			*out++ = hex[b[i] & 15];
		}
		n -= k;
	}
	explicit_bzero(b, sizeof(b));
	*out = 0;
	return 0;
}
