/* libFuzzer: what reaches the HA pair from the network (api/hacrypt.c): the X-Pgw-Ha header a
 * master reads before anything else, and the sealed answer a backup opens (it does not verify
 * the master's TLS certificate, so anyone on the path may answer). A header is taken only in the
 * one form the backup writes; no answer the fuzzer makes opens under a secret it never had; what
 * was sealed opens to itself, under that nonce only, and not once a byte of it changed. */
#include "../../api/hacrypt.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "the pair's secret, which the fuzzer never sees";
#define NONCE "0123456789abcdef0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *h = strndup((const char *)data, size), t[24], nonce[33], mac[65], again[200], *pt;
	unsigned char *sealed = NULL;
	size_t len = 0;
	long long ts;

	if (!h)
		return 0;
	if (ha_header_parse(h, t, nonce, mac, &ts) == 0) {
		snprintf(again, sizeof(again), "t=%s,n=%s,m=%s", t, nonce, mac);
		assert(strcmp(again, h) == 0 && strlen(nonce) == 32 && strlen(mac) == 64 && ts >= 0);
	}
	free(h);
	/* the input as an answer: it never opens */
	pt = ha_unseal(secret, sizeof(secret) - 1, NONCE, data, size);
	assert(!pt);
	/* the input sealed: opens to itself, under its nonce only, not once changed */
	assert(ha_seal(secret, sizeof(secret) - 1, NONCE, (const char *)data, size, &sealed, &len) == 0);
	assert(len == IV_LEN + size + TAG_LEN);
	pt = ha_unseal(secret, sizeof(secret) - 1, NONCE, sealed, len);
	assert(pt && memcmp(pt, data, size) == 0 && pt[size] == '\0');
	free(pt);
	assert(!ha_unseal(secret, sizeof(secret) - 1, "fedcba9876543210fedcba9876543210", sealed, len));
	assert(!ha_unseal("another secret", 14, NONCE, sealed, len));
	sealed[(size ? data[0] * 131u + data[size - 1] : 0) % len] ^= 1; /* IV, ciphertext or tag */
	assert(!ha_unseal(secret, sizeof(secret) - 1, NONCE, sealed, len));
	free(sealed);
	return 0;
}
