/* oidc_jwt.c - see oidc_jwt.h. */
#include "oidc_jwt.h"

#include <errno.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX (64 * 1024)

/* base64url (no padding) into a malloc'd buffer; NULL when it is not base64url. */
static unsigned char *b64url_decode(const char *in, size_t len, size_t *outlen)
{
	size_t padded = (len + 3) / 4 * 4;
	char *t;
	unsigned char *out;
	int n;

	if (len == 0 || len > TOKEN_MAX || len % 4 == 1 ||
	    strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") < len)
		return NULL;
	if (!(t = malloc(padded + 1)) || !(out = malloc(padded / 4 * 3 + 1))) {
		free(t);
		return NULL;
	}
	for (size_t i = 0; i < padded; i++)
		t[i] = i >= len ? '=' : in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	t[padded] = '\0';
	n = EVP_DecodeBlock(out, (const unsigned char *)t, (int)padded);
	free(t);
	if (n < 0) {
		free(out);
		return NULL;
	}
	*outlen = (size_t)n - (padded - len); /* EVP_DecodeBlock counts the padding's zero bytes */
	out[*outlen] = '\0';
	return out;
}

static BIGNUM *b64url_bn(const json_t *v)
{
	size_t n = 0;
	unsigned char *b;
	BIGNUM *bn;

	if (!json_is_string(v) || !(b = b64url_decode(json_string_value(v), json_string_length(v), &n)))
		return NULL;
	bn = BN_bin2bn(b, (int)n, NULL);
	free(b);
	return bn;
}

/* A JWK's public key as PEM, and its algorithm; NULL when it is not a usable signing key. */
static char *jwk_pem(const json_t *jwk, int *alg, char *err, size_t errlen)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty")),
		   *use = json_string_value(json_object_get(jwk, "use")),
		   *a = json_string_value(json_object_get(jwk, "alg"));
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *n = NULL, *e = NULL;
	BIO *bio = NULL;
	char *pem = NULL, *data;
	unsigned char pt[65]; /* the EC point: OSSL_PARAM_BLD keeps a pointer to it until _to_param */
	long len;

	if (!bld || !kty || (use && strcmp(use, "sig") != 0))
		goto out;
	if (strcmp(kty, "RSA") == 0 && (!a || strcmp(a, "RS256") == 0)) {
		if (!(n = b64url_bn(json_object_get(jwk, "n"))) || !(e = b64url_bn(json_object_get(jwk, "e"))) ||
		    BN_num_bits(n) < 2048 || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
		    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL))) {
			snprintf(err, errlen, "an RSA key without a usable n and e (2048 bits at least)");
			goto out;
		}
		*alg = JWT_ALG_RS256;
	} else if (strcmp(kty, "EC") == 0 && (!a || strcmp(a, "ES256") == 0)) {
		const char *crv = json_string_value(json_object_get(jwk, "crv"));
		unsigned char *x = NULL, *y = NULL;
		size_t xl = 0, yl = 0;
		int ok;

		if (!crv || strcmp(crv, "P-256") != 0)
			goto out;
		x = json_is_string(json_object_get(jwk, "x"))
			? b64url_decode(json_string_value(json_object_get(jwk, "x")),
					json_string_length(json_object_get(jwk, "x")), &xl)
			: NULL;
		y = json_is_string(json_object_get(jwk, "y"))
			? b64url_decode(json_string_value(json_object_get(jwk, "y")),
					json_string_length(json_object_get(jwk, "y")), &yl)
			: NULL;
		ok = x && y && xl == 32 && yl == 32;
		if (ok) {
			pt[0] = 0x04;
			memcpy(pt + 1, x, 32);
			memcpy(pt + 33, y, 32);
		}
		free(x);
		free(y);
		if (!ok || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) ||
		    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL))) {
			snprintf(err, errlen, "an EC key without a usable P-256 point");
			goto out;
		}
		*alg = JWT_ALG_ES256;
	} else {
		goto out; /* another kind of key: not for us */
	}
	if (!(params = OSSL_PARAM_BLD_to_param(bld)) || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0 || !(bio = BIO_new(BIO_s_mem())) ||
	    PEM_write_bio_PUBKEY(bio, pk) != 1 || (len = BIO_get_mem_data(bio, &data)) <= 0) {
		snprintf(err, errlen, "a key OpenSSL does not take");
		goto out;
	}
	pem = strndup(data, (size_t)len);
out:
	BIO_free(bio);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return pem;
}

int oidc_jwks_parse(const char *json, size_t len, struct oidc_keys *out, char *err, size_t errlen)
{
	json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL), *keys = json_object_get(doc, "keys"), *k;
	char why[160] = "";
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!json_is_array(keys)) {
		json_decref(doc);
		snprintf(err, errlen, "the provider's JWKS is not a JSON object with \"keys\"");
		return -1;
	}
	json_array_foreach(keys, i, k)
	{
		const char *kid = json_string_value(json_object_get(k, "kid"));
		int alg = 0;
		char *pem;

		if (out->n == OIDC_KEYS_MAX)
			break;
		if (kid && strlen(kid) >= sizeof(out->k[0].kid))
			continue;
		if (!(pem = jwk_pem(k, &alg, why, sizeof(why))))
			continue;
		snprintf(out->k[out->n].kid, sizeof(out->k[0].kid), "%s", kid ? kid : "");
		out->k[out->n].alg = alg;
		out->k[out->n].pem = pem;
		out->n++;
	}
	json_decref(doc);
	if (!out->n) {
		snprintf(err, errlen, "the provider's JWKS has no RS256 or ES256 signing key%s%s", why[0] ? ": " : "",
			 why);
		return -1;
	}
	return 0;
}

void oidc_keys_free(struct oidc_keys *keys)
{
	for (size_t i = 0; i < keys->n; i++)
		free(keys->k[i].pem);
	memset(keys, 0, sizeof(*keys));
}

/* aud is client_id, or an array holding it (then azp, when there are several, is client_id). */
static int audience_ok(const json_t *c, const char *client_id)
{
	const json_t *aud = json_object_get(c, "aud"), *v, *azp = json_object_get(c, "azp");
	size_t i;
	int found = 0;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), client_id) == 0 &&
		       (!azp || (json_is_string(azp) && strcmp(json_string_value(azp), client_id) == 0));
	if (!json_is_array(aud) || !json_array_size(aud))
		return 0;
	json_array_foreach(aud, i, v) found |= json_is_string(v) && strcmp(json_string_value(v), client_id) == 0;
	if (!found)
		return 0;
	if (json_array_size(aud) > 1 || azp)
		return json_is_string(azp) && strcmp(json_string_value(azp), client_id) == 0;
	return 1;
}

int oidc_verify_id_token(const char *token, const struct oidc_keys *keys, const struct oidc_expect *x, json_t **claims,
			 char *err, size_t errlen)
{
	const char *dot = token ? strchr(token, '.') : NULL, *alg_s, *kid;
	const struct oidc_key *key = NULL;
	unsigned char *hb = NULL;
	size_t hl = 0, tl = token ? strlen(token) : 0;
	json_t *hdr = NULL, *c = NULL;
	jwt_t *jwt = NULL;
	char *grants = NULL;
	int alg, rc = -EINVAL, candidates = 0;

	*claims = NULL;
	if (!dot || tl > TOKEN_MAX || !strchr(dot + 1, '.') || strchr(strchr(dot + 1, '.') + 1, '.')) {
		snprintf(err, errlen, "the ID token is not a signed JWT (three parts)");
		return -EINVAL;
	}
	/* the header, unverified: which algorithm and which key it claims */
	if (!(hb = b64url_decode(token, (size_t)(dot - token), &hl)) || !(hdr = json_loadb((char *)hb, hl, 0, NULL)) ||
	    !json_is_object(hdr)) {
		snprintf(err, errlen, "the ID token's header is not base64url JSON");
		goto out;
	}
	alg_s = json_string_value(json_object_get(hdr, "alg"));
	kid = json_string_value(json_object_get(hdr, "kid"));
	alg = alg_s && strcmp(alg_s, "RS256") == 0   ? JWT_ALG_RS256
	      : alg_s && strcmp(alg_s, "ES256") == 0 ? JWT_ALG_ES256
						     : 0;
	if (!alg) {
		snprintf(err, errlen, "the ID token is signed with %.20s: only RS256 and ES256 are accepted",
			 alg_s ? alg_s : "no algorithm");
		goto out;
	}
	if (json_object_get(hdr, "crit")) { /* RFC 7515 4.1.11: extensions we would have to understand */
		snprintf(err, errlen,
			 "the ID token's header has critical extensions (crit) this gateway does not know");
		goto out;
	}
	for (size_t i = 0; i < keys->n; i++) {
		if (keys->k[i].alg != alg)
			continue;
		if (kid ? strcmp(keys->k[i].kid, kid) == 0 : ++candidates == 1)
			key = &keys->k[i];
	}
	if (!kid && candidates > 1)
		key = NULL; /* no kid and several keys of its algorithm: which one is not ours to guess */
	if (!key) {
		snprintf(err, errlen, "the ID token names a key the provider's JWKS does not have (%s %.60s)", alg_s,
			 kid ? kid : "(no kid)");
		rc = -ENOKEY;
		goto out;
	}
	/* the signature, with the key's own algorithm pinned before and after */
	if (jwt_decode(&jwt, token, (const unsigned char *)key->pem, (int)strlen(key->pem)) != 0 || !jwt ||
	    (int)jwt_get_alg(jwt) != key->alg) {
		snprintf(err, errlen, "the ID token's signature does not verify");
		goto out;
	}
	if (!(grants = jwt_get_grants_json(jwt, NULL)) || !(c = json_loads(grants, 0, NULL)) || !json_is_object(c)) {
		snprintf(err, errlen, "the ID token's claims are not a JSON object");
		goto out;
	}
	if (!json_is_string(json_object_get(c, "iss")) ||
	    strcmp(json_string_value(json_object_get(c, "iss")), x->issuer)) {
		snprintf(err, errlen, "the ID token is from another issuer");
		goto out;
	}
	if (!audience_ok(c, x->client_id)) {
		snprintf(err, errlen, "the ID token is for another client (aud)");
		goto out;
	}
	/* now +- skew, never the token's numbers +- skew: a token cannot overflow the sums */
	if (!json_is_integer(json_object_get(c, "exp")) ||
	    json_integer_value(json_object_get(c, "exp")) < x->now - x->skew) {
		snprintf(err, errlen, "the ID token has expired");
		goto out;
	}
	if (!json_is_integer(json_object_get(c, "iat")) ||
	    json_integer_value(json_object_get(c, "iat")) > x->now + x->skew) {
		snprintf(err, errlen, "the ID token is issued in the future (iat): check the clocks");
		goto out;
	}
	if (json_object_get(c, "nbf") && (!json_is_integer(json_object_get(c, "nbf")) ||
					  json_integer_value(json_object_get(c, "nbf")) > x->now + x->skew)) {
		snprintf(err, errlen, "the ID token is not valid yet (nbf): check the clocks");
		goto out;
	}
	if (!x->nonce || !json_is_string(json_object_get(c, "nonce")) ||
	    strcmp(json_string_value(json_object_get(c, "nonce")), x->nonce) != 0) {
		snprintf(err, errlen, "the ID token's nonce is not this login's (a replay?)");
		goto out;
	}
	if (!json_is_string(json_object_get(c, "sub")) || !json_string_length(json_object_get(c, "sub")) ||
	    json_string_length(json_object_get(c, "sub")) > 255) {
		snprintf(err, errlen, "the ID token has no subject (sub)");
		goto out;
	}
	*claims = c;
	c = NULL;
	rc = 0;
out:
	json_decref(c);
	json_decref(hdr);
	free(hb);
	free(grants);
	jwt_free(jwt);
	return rc;
}

int oidc_url_ok(const char *url)
{
	char base[OIDC_URL_MAX];

	if (strlen(url) >= sizeof(base) || strchr(url, '#'))
		return 0;
	snprintf(base, sizeof(base), "%.*s", (int)strcspn(url, "?"), url);
	return settings_url_ok(base, 0);
}

/* An endpoint of the discovery document: oidc_url_ok (a query is allowed, as some providers have
 * one). An optional one that is missing or unusable is left out. */
static int copy_url(json_t *doc, const char *name, char *out, size_t size, int required, char *err, size_t errlen)
{
	const char *v = json_string_value(json_object_get(doc, name));

	out[0] = 0;
	if (v && strlen(v) < size && oidc_url_ok(v)) {
		snprintf(out, size, "%s", v);
		return 0;
	}
	if (!required)
		return 0;
	snprintf(err, errlen, "the discovery document has no usable %s (https, or http on loopback)", name);
	return -1;
}

int oidc_discovery_read(json_t *doc, const char *issuer, struct oidc_provider *p, char *err, size_t errlen)
{
	const char *iss = json_string_value(json_object_get(doc, "issuer"));

	memset(p, 0, sizeof(*p));
	if (!iss || strcmp(iss, issuer) != 0) /* 4.3: exactly the configured one */
		snprintf(err, errlen, "the discovery document names issuer '%.200s', not oidc_issuer '%.200s'",
			 iss ? iss : "", issuer);
	else if (copy_url(doc, "authorization_endpoint", p->auth, sizeof(p->auth), 1, err, errlen) == 0 &&
		 copy_url(doc, "token_endpoint", p->token, sizeof(p->token), 1, err, errlen) == 0 &&
		 copy_url(doc, "jwks_uri", p->jwks, sizeof(p->jwks), 1, err, errlen) == 0 &&
		 copy_url(doc, "end_session_endpoint", p->end, sizeof(p->end), 0, err, errlen) == 0) {
		snprintf(p->issuer, sizeof(p->issuer), "%s", issuer);
		p->iss_param = json_is_true(json_object_get(doc, "authorization_response_iss_parameter_supported"));
		return 0;
	}
	memset(p, 0, sizeof(*p));
	return -1;
}
