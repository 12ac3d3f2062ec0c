/* token.h - what a caller presents to pgw-api: the session token (a JWT, HS256 under the API's
 * secret) and an API key ("pgwk_<id>_<64 hex>"). Pure: no DB, no request; fuzzed (fuzz_auth). */
#ifndef API_TOKEN_H
#define API_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define APIKEY_PREFIX	  "pgwk_"
#define APIKEY_SECRET_LEN 64 /* lowercase hex of 32 random bytes */

struct session_claims {
	int64_t sub;   /* the user's id (> 0) */
	int64_t gen;   /* the session generation it was issued under; -1 for a token without one */
	long exp;      /* unix time it expires */
	char csrf[65]; /* the CSRF secret: 64 lowercase hex */
};

/* A session token for user sub (malloc'd), or NULL. */
char *token_session_issue(const unsigned char *secret, size_t secret_len, int64_t sub, int64_t gen, const char *csrf,
			  long iat, long exp);
/* 0 and *out when tok is a session token signed with secret (HS256, its signature the one a
 * 32-byte MAC encodes to) that has not expired at now and names a user and a CSRF secret in
 * the form token_session_issue writes; -1 otherwise (out zeroed). */
int token_session_verify(const char *tok, const unsigned char *secret, size_t secret_len, time_t now,
			 struct session_claims *out);
/* An API key's parts: 1 with *id (> 0, written without sign, spaces or leading zeros) and *secret
 * (APIKEY_SECRET_LEN lowercase hex, pointing into tok); 0 for "pgwk_" and anything else after it;
 * -1 when tok is not an API key at all (no prefix). */
int token_apikey_split(const char *tok, int64_t *id, const char **secret);

#endif
