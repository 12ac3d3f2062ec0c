/* oidc_jwt.h - OpenID Connect ID tokens (issue 23): a provider's JWKS made into public keys, and
 * an ID token verified against them and the claims the relying party expects (OpenID Connect
 * Core 3.1.3.7). No hand-written crypto: OpenSSL 3 builds the keys, libjwt checks signatures.
 *
 * libjwt 1.x takes the algorithm from the token's own header and will verify an HS256 token
 * whose HMAC key is the PEM text of an RSA or EC public key (algorithm confusion). So the header
 * is read first, its algorithm must be RS256 or ES256 and the very algorithm of the key its kid
 * names, and after libjwt's check the algorithm it used must still be that one. */
#ifndef API_OIDC_JWT_H
#define API_OIDC_JWT_H

#include "settings.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define OIDC_KEYS_MAX 16
#define OIDC_URL_MAX  1024

/* What a provider's discovery document says (OpenID Connect Discovery 1.0 section 3). */
struct oidc_provider {
	char issuer[SETTINGS_VALUE_MAX];
	char auth[OIDC_URL_MAX], token[OIDC_URL_MAX], jwks[OIDC_URL_MAX], end[OIDC_URL_MAX];
	int iss_param; /* authorization_response_iss_parameter_supported (RFC 9207): its answers carry iss */
};

/* Read a discovery document (a JSON object) for the configured issuer: its issuer exactly that
 * one (4.3), the authorization, token and JWKS endpoints https or on loopback, without a
 * fragment (a query allowed: some providers have one); end_session_endpoint the same, left out
 * when missing or unusable. 0 and *p, or -1 with the reason in err. fuzz_oidc. */
int oidc_discovery_read(json_t *doc, const char *issuer, struct oidc_provider *p, char *err, size_t errlen);
/* Whether url may be asked for a provider: shorter than OIDC_URL_MAX, https or on loopback (the
 * part before any query), no fragment. The rule of the endpoints above and of every call. */
int oidc_url_ok(const char *url);

struct oidc_key {
	char kid[128]; /* "" when the JWK has none */
	int alg;       /* jwt_alg_t: JWT_ALG_RS256 or JWT_ALG_ES256 */
	char *pem;     /* SubjectPublicKeyInfo PEM */
};

struct oidc_keys {
	size_t n;
	struct oidc_key k[OIDC_KEYS_MAX];
};

/* The signing keys of a JWKS document ({"keys": [...]}): RSA (RS256) and EC P-256 (ES256) with
 * use "sig" or none; others (encryption keys, other curves) are skipped. 0 with at least one
 * key, or -1 with the reason in err. oidc_keys_free() either way. */
int oidc_jwks_parse(const char *json, size_t len, struct oidc_keys *out, char *err, size_t errlen);
void oidc_keys_free(struct oidc_keys *keys);

struct oidc_expect {
	const char *issuer;    /* iss, exactly */
	const char *client_id; /* in aud (and azp when aud names several) */
	const char *nonce;     /* the nonce sent with this login */
	int64_t now;	       /* unix time */
	int skew;	       /* seconds of clock difference allowed on exp and iat */
};

/* Verify token. 0 with *claims (the payload, the caller's to free); -ENOKEY when its kid names
 * no key (the provider may have rotated: fetch the JWKS again, once); -EINVAL otherwise, with
 * the reason in err (never the token itself). */
int oidc_verify_id_token(const char *token, const struct oidc_keys *keys, const struct oidc_expect *x, json_t **claims,
			 char *err, size_t errlen);

#endif
