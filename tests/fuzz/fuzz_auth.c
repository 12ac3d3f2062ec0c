/* libFuzzer: what anyone may put in an Authorization header or the session cookie (api/token.c):
 * a session token and an API key. Neither may crash the parser; no token the fuzzer makes may
 * pass unless it is, character for character, what token_session_issue writes for its claims
 * under a secret the fuzzer never had (its MAC recomputed here with OpenSSL, its header HS256);
 * an API key passes only in the one form pgw-api hands out. */
#include "../../api/token.h"

#include <assert.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char secret[] = "fuzz-auth secret the fuzzer never sees in a token";

static void b64url(const unsigned char *in, size_t len, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	for (int i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
}

/* tok's header says HS256 and its signature is the MAC of what precedes it under secret */
static int signed_here(const char *tok)
{
	const char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
	unsigned char mac[32], hdr[512];
	unsigned int ml = 0;
	char want[64];
	int hl;
	json_t *h;
	int ok;

	assert(dot1 && dot2 && dot1 < dot2);
	assert(HMAC(EVP_sha256(), secret, sizeof(secret) - 1, (const unsigned char *)tok, (size_t)(dot2 - tok), mac,
		    &ml) &&
	       ml == 32);
	b64url(mac, 32, want);
	if (strcmp(want, dot2 + 1) != 0)
		return 0;
	{ /* the header, base64url without padding */
		char b64[700];
		size_t n = (size_t)(dot1 - tok);
		if (n >= sizeof(b64) - 3)
			return 0;
		memcpy(b64, tok, n);
		for (size_t i = 0; i < n; i++)
			b64[i] = b64[i] == '-' ? '+' : b64[i] == '_' ? '/' : b64[i];
		while (n % 4)
			b64[n++] = '=';
		b64[n] = '\0';
		hl = EVP_DecodeBlock(hdr, (unsigned char *)b64, (int)n);
		if (hl < 0)
			return 0;
		while (hl > 0 && hdr[hl - 1] == '\0')
			hl--;
	}
	h = json_loadb((const char *)hdr, (size_t)hl, 0, NULL);
	ok = h && json_is_string(json_object_get(h, "alg")) &&
	     strcmp(json_string_value(json_object_get(h, "alg")), "HS256") == 0;
	json_decref(h);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tok = strndup((const char *)data, size);
	struct session_claims c;
	const char *sec = NULL;
	int64_t id = 0;
	int rc;

	if (!tok)
		return 0;
	if (token_session_verify(tok, secret, sizeof(secret) - 1, 1800000000, &c) == 0) {
		assert(signed_here(tok));
		assert(c.sub > 0 && c.exp > 1800000000 && c.gen >= -1 && strlen(c.csrf) == 64);
		assert(strspn(c.csrf, "0123456789abcdef") == 64);
	} else {
		struct session_claims zero;
		memset(&zero, 0, sizeof(zero));
		assert(memcmp(&c, &zero, sizeof(c)) == 0);
	}
	rc = token_apikey_split(tok, &id, &sec);
	if (rc == 1) {
		char again[200];
		snprintf(again, sizeof(again), APIKEY_PREFIX "%lld_%s", (long long)id, sec);
		assert(id > 0 && strcmp(again, tok) == 0 && strspn(sec, "0123456789abcdef") == APIKEY_SECRET_LEN);
	} else {
		assert(rc == 0 ? strncmp(tok, APIKEY_PREFIX, 5) == 0 : strncmp(tok, APIKEY_PREFIX, 5) != 0);
	}
	free(tok);
	return 0;
}
