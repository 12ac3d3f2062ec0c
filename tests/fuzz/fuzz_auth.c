/* libFuzzer: what anyone may put in an Authorization header or the session cookie (api/token.c):
 * a session token and an API key. Neither may crash the parser.
 * - Any input as a token: none passes unless its signature is the MAC, recomputed here with
 *   OpenSSL under a secret the fuzzer never had, of what precedes it, and its header says HS256.
 * - An input starting with 'S' is a token's header and payload that the harness signs with that
 *   secret, so that the claims are fuzzed too: one passes only when its payload says what the
 *   claims read from it say (sub a string of that canonical id, csrf those 64 hex digits, exp
 *   that integer, after now, gen that integer or none: -1) under an HS256 header.
 * - An API key passes only in the one form pgw-api hands out. */
#include "../../api/token.h"
#include "../b64url.h"

#include <assert.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char secret[] = "fuzz-auth secret the fuzzer never sees in a token";
#define NOW 1800000000

/* The JSON a base64url part encodes (what comes before a NUL in it), or NULL. */
static json_t *part_json(const char *p, size_t n)
{
	char *b64 = malloc(n + 4);
	unsigned char *raw = malloc(n + 4);
	json_t *j = NULL;
	size_t k = n;
	int len;

	if (!b64 || !raw)
		goto out;
	memcpy(b64, p, n);
	for (size_t i = 0; i < n; i++)
		b64[i] = b64[i] == '-' ? '+' : b64[i] == '_' ? '/' : b64[i];
	while (k % 4)
		b64[k++] = '=';
	len = EVP_DecodeBlock(raw, (unsigned char *)b64, (int)k); /* at most 3k/4 <= n + 3 bytes */
	if (len < 0)
		goto out;
	len -= (int)(k - n); /* the padding's zero bytes */
	raw[len > 0 ? len : 0] = '\0';
	j = json_loads((const char *)raw, 0, NULL); /* up to a NUL, as libjwt reads it */
out:
	free(b64);
	free(raw);
	return j;
}

static int hs256_header(const char *tok)
{
	json_t *h = part_json(tok, strcspn(tok, "."));
	int ok = h && json_is_string(json_object_get(h, "alg")) &&
		 strcmp(json_string_value(json_object_get(h, "alg")), "HS256") == 0;
	json_decref(h);
	return ok;
}

/* tok's signature is the MAC of what precedes it under secret */
static int signed_here(const char *tok)
{
	const char *dot2 = strrchr(tok, '.');
	unsigned char mac[32];
	unsigned int ml = 0;
	char *want;
	int same;

	assert(dot2);
	assert(HMAC(EVP_sha256(), secret, sizeof(secret) - 1, (const unsigned char *)tok, (size_t)(dot2 - tok), mac,
		    &ml) &&
	       ml == 32);
	want = b64url(mac, 32);
	same = strcmp(want, dot2 + 1) == 0;
	free(want);
	return same;
}

/* The payload says what the claims read from it say. */
static void claims_match(const char *tok, const struct session_claims *c)
{
	const char *p = strchr(tok, '.') + 1;
	json_t *j = part_json(p, strcspn(p, ".")), *gen;
	char sub[24];

	assert(j);
	snprintf(sub, sizeof(sub), "%lld", (long long)c->sub);
	assert(json_is_string(json_object_get(j, "sub")) &&
	       strcmp(json_string_value(json_object_get(j, "sub")), sub) == 0);
	assert(json_is_string(json_object_get(j, "csrf")) &&
	       strcmp(json_string_value(json_object_get(j, "csrf")), c->csrf) == 0);
	assert(json_is_integer(json_object_get(j, "exp")) && json_integer_value(json_object_get(j, "exp")) == c->exp);
	gen = json_object_get(j, "gen");
	assert(json_is_integer(gen) ? json_integer_value(gen) == c->gen && c->gen >= 0 : c->gen == -1);
	json_decref(j);
}

static void session(const char *tok)
{
	struct session_claims c;

	if (token_session_verify(tok, secret, sizeof(secret) - 1, NOW, &c) == 0) {
		assert(signed_here(tok) && hs256_header(tok));
		assert(c.sub > 0 && c.exp > NOW && c.gen >= -1 && strlen(c.csrf) == 64);
		assert(strspn(c.csrf, "0123456789abcdef") == 64);
		claims_match(tok, &c);
	} else {
		struct session_claims zero;
		memset(&zero, 0, sizeof(zero));
		assert(memcmp(&c, &zero, sizeof(c)) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tok = strndup((const char *)data, size);
	const char *sec = NULL;
	int64_t id = 0;
	int rc;

	if (!tok)
		return 0;
	session(tok);
	if (tok[0] == 'S' && strlen(tok) < 4000) { /* header.payload, signed here */
		char *t = malloc(strlen(tok) + 64);
		unsigned char mac[32];
		unsigned int ml = 0;

		assert(t && HMAC(EVP_sha256(), secret, sizeof(secret) - 1, (const unsigned char *)tok + 1,
				 strlen(tok + 1), mac, &ml));
		char *sig = b64url(mac, 32);
		strcpy(t, tok + 1);
		strcat(t, ".");
		strcat(t, sig);
		free(sig);
		session(t);
		free(t);
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
