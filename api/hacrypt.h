/* hacrypt.h - the HA pair's cryptography (ha.c): both keys HMAC-SHA256 of the shared secret over
 * a label; a request's MAC over t, nonce, origin and generation; the answer sealed with
 * AES-256-GCM under the request's nonce as additional data. Pure: fuzz_hacrypt. */
#ifndef API_HACRYPT_H
#define API_HACRYPT_H

#include <stddef.h>

#define IV_LEN	12
#define TAG_LEN 16

/* n bytes as 2n lowercase hex digits and a NUL. */
void ha_hex(const unsigned char *b, size_t n, char *out);
/* A request's MAC under the pair's secret, as 64 hex digits. */
void ha_request_mac(const char *secret, size_t secret_len, const char *t, const char *nonce, const char *origin,
		    long long gen, char out[65]);
/* AES-256-GCM: *out = iv || ciphertext || tag (malloc'd). 0 or -1. */
int ha_seal(const char *secret, size_t secret_len, const char *aad, const char *pt, size_t len, unsigned char **out,
	    size_t *outlen);
/* The plaintext of a sealed answer (malloc'd, NUL-terminated), or NULL when it does not
 * authenticate under the secret and aad. */
char *ha_unseal(const char *secret, size_t secret_len, const char *aad, const unsigned char *in, size_t len);
/* X-Pgw-Ha: "t=UNIX,n=32HEX,m=64HEX" and nothing after: 0 with its parts (t at most 18 digits),
 * or -1. */
int ha_header_parse(const char *h, char t[24], char nonce[33], char mac[65], long long *ts);

#endif
