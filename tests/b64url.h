/* b64url.h - base64url without padding (RFC 7515 2), for tests and harnesses that make JWTs:
 * OpenSSL encodes, this only swaps the alphabet. The result is malloc'd. */
#ifndef PGW_TESTS_B64URL_H
#define PGW_TESTS_B64URL_H

#include <openssl/evp.h>
#include <stdlib.h>

static inline char *b64url(const unsigned char *in, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	int n;

	if (!out)
		abort();
	n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	for (int i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	return out;
}

#endif
