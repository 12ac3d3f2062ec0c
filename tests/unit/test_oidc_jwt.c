/* OpenID Connect ID tokens (api/oidc_jwt.c): real keys made here with OpenSSL, real tokens signed
 * with libjwt; what a provider signs properly is taken, and each forgery or mistake the issue names
 * is refused with its own reason: another key, alg none, HS256 keyed with the public key, another
 * audience or issuer, expired, issued in the future, another login's nonce, an unknown key id. */
#include "testlib.h"

#include "../b64url.h"

#include "../../api/oidc_jwt.h"

#include <jansson.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

static char *bn_b64url(const BIGNUM *bn)
{
	unsigned char buf[1024];
	int n = BN_bn2bin(bn, buf);
	return b64url(buf, (size_t)n);
}

static char *pem_of(EVP_PKEY *k, int private)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *d, *out;
	long n;

	assert_int_equal(
	    private ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_PUBKEY(b, k), 1);
	n = BIO_get_mem_data(b, &d);
	out = strndup(d, (size_t)n);
	BIO_free(b);
	return out;
}

/* The JWK (public) of an RSA or P-256 key. */
static json_t *jwk_of(EVP_PKEY *k, const char *kid)
{
	if (EVP_PKEY_is_a(k, "RSA")) {
		BIGNUM *n = NULL, *e = NULL;
		json_t *j;
		char *ns, *es;
		assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n), 1);
		assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e), 1);
		ns = bn_b64url(n), es = bn_b64url(e);
		j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "kty", "RSA", "kid", kid, "use", "sig", "alg", "RS256", "n",
			      ns, "e", es);
		free(ns), free(es);
		BN_free(n), BN_free(e);
		return j;
	} else {
		unsigned char pt[65];
		size_t len = 0;
		char *xs, *ys;
		json_t *j;
		assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &len), 1);
		assert_int_equal(len, 65);
		xs = b64url(pt + 1, 32), ys = b64url(pt + 33, 32);
		j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "kty", "EC", "kid", kid, "crv", "P-256", "alg", "ES256", "x",
			      xs, "y", ys);
		free(xs), free(ys);
		return j;
	}
}

static EVP_PKEY *rsa1, *rsa_other, *ec1;
static struct oidc_keys keys;
static const char *ISS = "http://10.9.0.1:9090", *CLIENT = "pgw";

/* A token: header alg and kid, signed with key (PEM text, private or, for the confusion, public). */
static char *sign(jwt_alg_t alg, const char *key, const char *kid, json_t *claims)
{
	jwt_t *j = NULL;
	char *grants = json_dumps(claims, JSON_COMPACT), *tok;

	assert_int_equal(jwt_new(&j), 0);
	assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)key, (int)strlen(key)), 0);
	if (kid)
		assert_int_equal(jwt_add_header(j, "kid", kid), 0);
	assert_int_equal(jwt_add_grants_json(j, grants), 0);
	tok = jwt_encode_str(j);
	assert_non_null(tok);
	jwt_free(j);
	free(grants);
	json_decref(claims);
	return tok;
}

static json_t *claims(long long now)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:[s]}", "iss", ISS, "sub", "alice", "aud", CLIENT, "exp",
			 (json_int_t)(now + 300), "iat", (json_int_t)now, "nonce", "n-123", "groups", "pgw-admins");
}

static int verify(const char *tok, long long now, char *err, size_t errlen)
{
	struct oidc_expect x = {.issuer = ISS, .client_id = CLIENT, .nonce = "n-123", .now = now, .skew = 60};
	json_t *c = NULL;
	int rc = oidc_verify_id_token(tok, &keys, &x, &c, err, errlen);

	if (rc == 0) {
		assert_string_equal(json_string_value(json_object_get(c, "sub")), "alice");
		json_decref(c);
	} else {
		assert_null(c);
		assert_true(err[0]);
		assert_null(strstr(err, tok)); /* never the token itself */
	}
	return rc;
}

static int setup(void **state)
{
	json_t *jwks;
	char err[200], *text;

	(void)state;
	rsa1 = EVP_RSA_gen(2048);
	rsa_other = EVP_RSA_gen(2048);
	ec1 = EVP_EC_gen("P-256");
	assert_non_null(rsa1), assert_non_null(rsa_other), assert_non_null(ec1);
	jwks = json_pack("{s:[o,o,{s:s,s:s,s:s,s:s}]}", "keys", jwk_of(rsa1, "r1"), jwk_of(ec1, "e1"), "kty", "oct",
			 "kid", "h1", "k", "c2VjcmV0", "use", "sig");
	text = json_dumps(jwks, 0);
	assert_int_equal(oidc_jwks_parse(text, strlen(text), &keys, err, sizeof(err)), 0);
	assert_int_equal(keys.n, 2); /* the symmetric key is no provider's signing key for us */
	free(text);
	json_decref(jwks);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	oidc_keys_free(&keys);
	EVP_PKEY_free(rsa1), EVP_PKEY_free(rsa_other), EVP_PKEY_free(ec1);
	return 0;
}

static void test_good_tokens_pass(void **state)
{
	long long now = 1800000000;
	char err[200] = "", *rs = pem_of(rsa1, 1), *es = pem_of(ec1, 1), *t;

	(void)state;
	t = sign(JWT_ALG_RS256, rs, "r1", claims(now));
	assert_int_equal(verify(t, now, err, sizeof(err)), 0);
	free(t);
	t = sign(JWT_ALG_ES256, es, "e1", claims(now));
	assert_int_equal(verify(t, now, err, sizeof(err)), 0);
	free(t);
	/* within the skew: expired 30 s ago, issued 30 s ahead */
	t = sign(JWT_ALG_RS256, rs, "r1", claims(now - 330));
	assert_int_equal(verify(t, now, err, sizeof(err)), 0);
	free(t);
	t = sign(JWT_ALG_RS256, rs, "r1", claims(now + 30));
	assert_int_equal(verify(t, now, err, sizeof(err)), 0);
	free(t);
	/* aud as an array holding us, with azp naming us */
	{
		json_t *c = claims(now);
		json_object_set_new(c, "aud", json_pack("[s,s]", CLIENT, "other"));
		json_object_set_new(c, "azp", json_string(CLIENT));
		t = sign(JWT_ALG_RS256, rs, "r1", c);
		assert_int_equal(verify(t, now, err, sizeof(err)), 0);
		free(t);
	}
	free(rs), free(es);
}

static void expect_refused(const char *tok, long long now, int want, const char *why)
{
	char err[200] = "";
	assert_int_equal(verify(tok, now, err, sizeof(err)), want);
	if (!strstr(err, why))
		fail_msg("refused for '%s', expected '%s'", err, why);
}

static void test_forgeries_and_mistakes_are_refused(void **state)
{
	long long now = 1800000000;
	char *rs = pem_of(rsa1, 1), *other = pem_of(rsa_other, 1), *pub = pem_of(rsa1, 0), *t;
	json_t *c;

	(void)state;
	t = sign(JWT_ALG_RS256, other, "r1", claims(now)); /* another key, our key's id */
	expect_refused(t, now, -EINVAL, "signature does not verify");
	free(t);
	t = sign(JWT_ALG_HS256, pub, "r1", claims(now)); /* HMAC keyed with our public key: libjwt alone takes it */
	expect_refused(t, now, -EINVAL, "only RS256 and ES256");
	free(t);
	{ /* alg none: header and claims, no signature */
		char *h = b64url((const unsigned char *)"{\"alg\":\"none\",\"kid\":\"r1\"}", 25), *p, *tok;
		json_t *cj = claims(now);
		char *cl = json_dumps(cj, JSON_COMPACT);
		p = b64url((unsigned char *)cl, strlen(cl));
		tok = malloc(strlen(h) + strlen(p) + 3);
		sprintf(tok, "%s.%s.", h, p);
		expect_refused(tok, now, -EINVAL, "only RS256 and ES256");
		free(h), free(p), free(cl), free(tok);
		json_decref(cj);
	}
	t = sign(JWT_ALG_RS256, rs, "r9", claims(now)); /* a key id the JWKS lacks: fetch again */
	expect_refused(t, now, -ENOKEY, "does not have");
	free(t);
	t = sign(JWT_ALG_RS256, rs, "r1", claims(now - 400)); /* expired beyond the skew */
	expect_refused(t, now, -EINVAL, "expired");
	free(t);
	t = sign(JWT_ALG_RS256, rs, "r1", claims(now + 400)); /* issued in the future */
	expect_refused(t, now, -EINVAL, "future");
	free(t);
	c = claims(now);
	json_object_set_new(c, "aud", json_string("another-client"));
	t = sign(JWT_ALG_RS256, rs, "r1", c);
	expect_refused(t, now, -EINVAL, "another client");
	free(t);
	c = claims(now);
	json_object_set_new(c, "aud", json_pack("[s,s]", CLIENT, "other")); /* several, no azp */
	t = sign(JWT_ALG_RS256, rs, "r1", c);
	expect_refused(t, now, -EINVAL, "another client");
	free(t);
	c = claims(now);
	json_object_set_new(c, "iss", json_string("http://evil.example"));
	t = sign(JWT_ALG_RS256, rs, "r1", c);
	expect_refused(t, now, -EINVAL, "another issuer");
	free(t);
	c = claims(now);
	json_object_set_new(c, "nonce", json_string("n-old")); /* a replayed login's */
	t = sign(JWT_ALG_RS256, rs, "r1", c);
	expect_refused(t, now, -EINVAL, "nonce");
	free(t);
	c = claims(now);
	json_object_del(c, "nonce");
	t = sign(JWT_ALG_RS256, rs, "r1", c);
	expect_refused(t, now, -EINVAL, "nonce");
	free(t);
	c = claims(now);
	json_object_set_new(c, "nbf", json_integer(now + 400)); /* not valid yet */
	t = sign(JWT_ALG_RS256, rs, "r1", c);
	expect_refused(t, now, -EINVAL, "not valid yet");
	free(t);
	c = claims(now);
	json_object_set_new(c, "exp", json_integer(-9223372036854775807LL)); /* no overflow past the skew */
	t = sign(JWT_ALG_RS256, rs, "r1", c);
	expect_refused(t, now, -EINVAL, "expired");
	free(t);
	c = claims(now);
	json_object_set_new(c, "iat", json_integer(9223372036854775807LL));
	t = sign(JWT_ALG_RS256, rs, "r1", c);
	expect_refused(t, now, -EINVAL, "future");
	free(t);
	{ /* a critical header extension: refused, whatever it says */
		jwt_t *j = NULL;
		json_t *cl = claims(now);
		char *g = json_dumps(cl, JSON_COMPACT);
		assert_int_equal(jwt_new(&j), 0);
		assert_int_equal(jwt_set_alg(j, JWT_ALG_RS256, (const unsigned char *)rs, (int)strlen(rs)), 0);
		assert_int_equal(jwt_add_header(j, "kid", "r1"), 0);
		assert_int_equal(jwt_add_headers_json(j, "{\"crit\":[\"exp\"]}"), 0);
		assert_int_equal(jwt_add_grants_json(j, g), 0);
		t = jwt_encode_str(j);
		jwt_free(j);
		free(g);
		json_decref(cl);
		expect_refused(t, now, -EINVAL, "critical");
		free(t);
	}
	expect_refused("not.a-token.x", now, -EINVAL, "header");
	expect_refused("abc", now, -EINVAL, "three parts");
	free(rs), free(other), free(pub);
}

static void test_jwks_without_usable_keys(void **state)
{
	struct oidc_keys k;
	char err[200];
	const char *bad[] = {"[]",
			     "{\"keys\": 3}",
			     "{\"keys\": []}",
			     "{\"keys\": [{\"kty\": \"RSA\", \"use\": \"enc\", \"n\": \"AQAB\", \"e\": \"AQAB\"}]}",
			     "{\"keys\": [{\"kty\": \"RSA\", \"n\": \"AQAB\", \"e\": \"AQAB\"}]}", /* 17 bits */
			     "{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-384\", \"x\": \"AA\", \"y\": \"AA\"}]}"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(oidc_jwks_parse(bad[i], strlen(bad[i]), &k, err, sizeof(err)), -1);
		assert_true(err[0]);
		oidc_keys_free(&k);
	}
}

/* A discovery document: the configured issuer exactly; endpoints https or on loopback without a
 * fragment; an unusable end_session_endpoint left out, an unusable required one refused. */
static int discovery(const char *json, struct oidc_provider *p, char *err, size_t errlen)
{
	json_t *doc = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
	int rc;

	assert_non_null(doc);
	rc = oidc_discovery_read(doc, "https://op.example", p, err, errlen);
	json_decref(doc);
	return rc;
}

static void test_discovery(void **state)
{
	struct oidc_provider p;
	char err[300];

	(void)state;
#define EP "\"authorization_endpoint\":\"https://op.example/auth\",\"token_endpoint\":\"http://127.0.0.1:9/t?a=1\""
	assert_int_equal(discovery("{\"issuer\":\"https://op.example\"," EP ",\"jwks_uri\":\"https://op.example/k\","
				   "\"end_session_endpoint\":\"https://op.example/end#f\","
				   "\"authorization_response_iss_parameter_supported\":true}",
				   &p, err, sizeof(err)),
			 0);
	assert_string_equal(p.issuer, "https://op.example");
	assert_string_equal(p.token, "http://127.0.0.1:9/t?a=1");
	assert_string_equal(p.jwks, "https://op.example/k");
	assert_string_equal(p.end, ""); /* a fragment: left out */
	assert_int_equal(p.iss_param, 1);
	assert_int_equal(discovery("{\"issuer\":\"https://op.example/\"," EP ",\"jwks_uri\":\"https://op.example/k\"}",
				   &p, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "names issuer 'https://op.example/'"));
	assert_int_equal(p.auth[0], 0);
	assert_int_equal(discovery("{\"issuer\":\"https://op.example\"," EP ",\"jwks_uri\":\"http://op.example/k\"}",
				   &p, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "no usable jwks_uri"));
	assert_int_equal(discovery("{\"issuer\":\"https://op.example\"," EP "}", &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no usable jwks_uri"));
	assert_int_equal(p.token[0], 0);
#undef EP
}

/* The rule of every call to the provider: the endpoint it names, its query included. */
static void test_url_ok(void **state)
{
	char long_url[OIDC_URL_MAX + 8];

	(void)state;
	assert_true(oidc_url_ok("https://login.example/tenant/oauth2/token?p=b2c_1_signin"));
	assert_true(oidc_url_ok("http://127.0.0.1:9090/jwks?tenant=lab&x=1"));
	assert_true(oidc_url_ok("http://localhost/t"));
	assert_false(oidc_url_ok("http://op.example/t?p=1")); /* plain http off loopback */
	assert_false(oidc_url_ok("http://op.example?x=https://op.example/"));
	assert_false(oidc_url_ok("https://op.example/t#frag"));
	assert_false(oidc_url_ok("https://op.example/t?a=1#frag"));
	assert_false(oidc_url_ok("ftp://op.example/t"));
	assert_false(oidc_url_ok(""));
	memset(long_url, 'a', sizeof(long_url) - 1);
	long_url[sizeof(long_url) - 1] = 0;
	memcpy(long_url, "https://op.example/", 19);
	assert_false(oidc_url_ok(long_url)); /* longer than any endpoint held */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_tokens_pass),
	    cmocka_unit_test(test_forgeries_and_mistakes_are_refused),
	    cmocka_unit_test(test_jwks_without_usable_keys),
	    cmocka_unit_test(test_discovery),
	    cmocka_unit_test(test_url_ok),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
