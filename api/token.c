/* token.c - see token.h. libjwt checks the signature; what the token must then say is checked
 * here, strictly: a token pgw-api did not write is refused whatever libjwt would let through. */
#include "token.h"

#include "parse.h"

#include <errno.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B64URL "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

char *token_session_issue(const unsigned char *secret, size_t secret_len, int64_t sub, int64_t gen, const char *csrf,
			  long iat, long exp)
{
	jwt_t *jwt = NULL;
	char s[24], *tok = NULL;

	snprintf(s, sizeof(s), "%lld", (long long)sub);
	if (jwt_new(&jwt) == 0 && jwt_add_grant(jwt, "sub", s) == 0 && jwt_add_grant(jwt, "csrf", csrf) == 0 &&
	    jwt_add_grant_int(jwt, "gen", (long)gen) == 0 && jwt_add_grant_int(jwt, "iat", iat) == 0 &&
	    jwt_add_grant_int(jwt, "exp", exp) == 0 && jwt_set_alg(jwt, JWT_ALG_HS256, secret, (int)secret_len) == 0)
		tok = jwt_encode_str(jwt);
	jwt_free(jwt);
	return tok;
}

/* s is a decimal integer of at least min as "%lld" writes it (no leading zero): *v. */
static int canonical(const char *s, uint64_t min, int64_t *v)
{
	uint64_t u;

	if ((s[0] == '0' && s[1]) || parse_u64(s, min, INT64_MAX, &u) < 0)
		return 0;
	*v = (int64_t)u;
	return 1;
}

static int lower_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int token_session_verify(const char *tok, const unsigned char *secret, size_t secret_len, time_t now,
			 struct session_claims *out)
{
	const char *dot1 = strchr(tok, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL, *sub, *csrf;
	jwt_t *jwt = NULL;
	int ok = 0;

	memset(out, 0, sizeof(*out));
	/* header.payload.signature in base64url, the signature 32 bytes unpadded: no second form of
	 * one token (libjwt's decoder would take padding and stray characters) */
	if (!dot2 || strspn(tok, B64URL ".") != strlen(tok) || strlen(dot2 + 1) != 43 || strchr(dot2 + 1, '.') ||
	    dot1 == tok || dot2 == dot1 + 1)
		return -1;
	/* the algorithm pinned, and spelt as written: libjwt takes "hS256" for HS256 */
	if (jwt_decode(&jwt, tok, secret, (int)secret_len) == 0 && jwt_get_alg(jwt) == JWT_ALG_HS256 &&
	    jwt_get_header(jwt, "alg") && strcmp(jwt_get_header(jwt, "alg"), "HS256") == 0) {
		errno = 0;
		out->exp = jwt_get_grant_int(jwt, "exp");
		ok = errno == 0 && out->exp > (long)now && (sub = jwt_get_grant(jwt, "sub")) &&
		     canonical(sub, 1, &out->sub) && (csrf = jwt_get_grant(jwt, "csrf")) && lower_hex(csrf, 64);
		if (ok) {
			memcpy(out->csrf, csrf, 65);
			/* as JSON text: libjwt reads a string "1" as the integer 0 */
			char *g = jwt_get_grants_json(jwt, "gen");

			if (!g)
				out->gen = -1;		      /* a token from before session generations: never valid */
			else if (!canonical(g, 0, &out->gen)) /* there, but not a generation */
				ok = 0;
			free(g);
		}
	}
	jwt_free(jwt);
	if (!ok)
		memset(out, 0, sizeof(*out));
	return ok ? 0 : -1;
}

int token_apikey_split(const char *tok, int64_t *id, const char **secret)
{
	const char *p = tok + strlen(APIKEY_PREFIX), *us;
	char num[24];

	if (strncmp(tok, APIKEY_PREFIX, strlen(APIKEY_PREFIX)) != 0)
		return -1;
	if (!(us = strchr(p, '_')) || (size_t)(us - p) >= sizeof(num))
		return 0;
	memcpy(num, p, (size_t)(us - p));
	num[us - p] = '\0';
	if (!canonical(num, 1, id) || !lower_hex(us + 1, APIKEY_SECRET_LEN))
		return 0;
	*secret = us + 1;
	return 1;
}
