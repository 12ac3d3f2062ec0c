/* libFuzzer: what an OpenID provider (or someone pretending to be one) sends: a discovery document,
 * a JWKS document and an ID token (api/oidc_jwt.c). The input is "JSON\0TOKEN", the JSON read as
 * both documents: a discovery document is taken only for the configured issuer with endpoints
 * that are https or on loopback and have no fragment. Nothing may crash the parser, and no
 * token the fuzzer makes may pass against keys whose private halves it never had (an RSA and a
 * P-256 key made here at start): the signature check cannot be talked round (alg none, HS256
 * keyed with the public key, a kid or alg of its choosing). */
#include "../../api/oidc_jwt.h"
#include "../b64url.h"

#include <assert.h>
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct oidc_keys keys;

static void init(void)
{
	EVP_PKEY *r = EVP_RSA_gen(2048), *e = EVP_EC_gen("P-256");
	BIGNUM *n = NULL, *x = NULL;
	unsigned char buf[512], pt[65];
	size_t len = 0;
	char doc[4096], err[200], *ns, *es, *xs, *ys;
	int bl;

	assert(r && e && EVP_PKEY_get_bn_param(r, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
	       EVP_PKEY_get_bn_param(r, OSSL_PKEY_PARAM_RSA_E, &x) == 1 &&
	       EVP_PKEY_get_octet_string_param(e, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &len) == 1 && len == 65);
	bl = BN_bn2bin(n, buf);
	ns = b64url(buf, (size_t)bl);
	bl = BN_bn2bin(x, buf);
	es = b64url(buf, (size_t)bl);
	xs = b64url(pt + 1, 32);
	ys = b64url(pt + 33, 32);
	snprintf(doc, sizeof(doc),
		 "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"n\":\"%s\",\"e\":\"%s\"},{\"kty\":\"EC\",\"kid\":\"e1\","
		 "\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
		 ns, es, xs, ys);
	assert(oidc_jwks_parse(doc, strlen(doc), &keys, err, sizeof(err)) == 0 && keys.n == 2);
	free(ns), free(es), free(xs), free(ys);
	BN_free(n), BN_free(x);
	EVP_PKEY_free(r), EVP_PKEY_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *sep = memchr(data, 0, size);
	size_t jl = sep ? (size_t)(sep - (const char *)data) : size;
	struct oidc_keys k;
	struct oidc_expect x = {.issuer = "http://op", .client_id = "pgw", .nonce = "n", .now = 1800000000, .skew = 60};
	char err[200], *tok;
	json_t *claims = NULL;
	int rc;

	if (!keys.n)
		init();
	if (oidc_jwks_parse((const char *)data, jl, &k, err, sizeof(err)) == 0)
		for (size_t i = 0; i < k.n; i++)
			assert(k.k[i].pem && strstr(k.k[i].pem, "BEGIN PUBLIC KEY"));
	else
		assert(err[0]);
	oidc_keys_free(&k);
	{ /* the same bytes as a discovery document, read as pgw-api reads the provider's answer */
		json_t *doc = json_loadb((const char *)data, jl, JSON_REJECT_DUPLICATES, NULL);
		struct oidc_provider p;
		const char *url[4];

		if (json_is_object(doc)) {
			err[0] = '\0';
			if (oidc_discovery_read(doc, "http://op", &p, err, sizeof(err)) == 0) {
				assert(strcmp(p.issuer, "http://op") == 0 && p.auth[0] && p.token[0] && p.jwks[0]);
				url[0] = p.auth, url[1] = p.token, url[2] = p.jwks, url[3] = p.end;
				for (int i = 0; i < 4; i++) {
					char base[OIDC_URL_MAX];
					if (!url[i][0])
						continue;
					assert(!strchr(url[i], '#'));
					snprintf(base, sizeof(base), "%.*s", (int)strcspn(url[i], "?"), url[i]);
					assert(settings_url_ok(base, 0));
				}
			} else {
				assert(err[0] && !p.auth[0] && !p.issuer[0]);
			}
		}
		json_decref(doc);
	}
	tok = strndup(sep ? sep + 1 : "", sep ? size - jl - 1 : 0);
	rc = oidc_verify_id_token(tok, &keys, &x, &claims, err, sizeof(err));
	assert(rc == -EINVAL || rc == -ENOKEY); /* no forgery passes */
	assert(!claims && err[0]);
	free(tok);
	return 0;
}
