/* oidc.h - single sign-on with OpenID Connect (issue 23): the Authorization Code flow with PKCE,
 * state and nonce against the provider of the setting oidc_issuer (discovery, JWKS with
 * rotation, the ID token checked by oidc_jwt.c), roles from a claim, users provisioned and
 * refused, the provider's logout, and which password logins local_login still allows.
 *
 *   GET /api/v1/auth/methods         how one may sign in (the login page asks)
 *   GET /api/v1/auth/oidc/login      303 to the provider, with the state cookie
 *   GET /api/v1/auth/oidc/callback   the provider's answer: 303 to / signed in, or to
 *                                    /?sso_error=CODE with the reason in the JSON body and log */
#ifndef API_OIDC_H
#define API_OIDC_H

#include "http.h"

#define OIDC_COOKIE		"pgw_oidc"
#define OIDC_PENDING_MAX	256		 /* logins begun and not yet back from the provider */
#define OIDC_PENDING_PER_SOURCE 16		 /* of them from one address (an IPv6 /64) */
#define OIDC_PENDING_MS		(10 * 60 * 1000) /* how long one may take */
#define OIDC_SKEW_S		60		 /* clock difference allowed on exp and iat */
#define OIDC_CONNECT_MS		3000		 /* every call to the provider: connect within */
#define OIDC_TIMEOUT_MS		5000		 /* and be answered within */
#define OIDC_ANSWER_MAX		(256 * 1024)
#define OIDC_KEYS_MAX_AGE_MS	(60 * 60 * 1000) /* the JWKS is fetched again after an hour */
#define OIDC_KEYS_RETRY_MS	(30 * 1000)	 /* and not asked again within 30 s of a failed fetch */

/* seg/nseg: the path after /api/v1/auth/ ({"methods"}, {"oidc", "login"}, ...). 1 when it was
 * one of these (a reply is queued), 0 when not. */
int oidc_route(struct req *r, const char *const *seg, int nseg, int *ret);
/* 1 when username may sign in with a password (local_login on, or it is the break-glass user);
 * else 0 with a 403 queued. */
int oidc_password_allowed(struct req *r, const char *username);
/* For the logout of an SSO user (r->user): the provider's end-session URL that brings the browser
 * back to the dashboard (malloc'd), or NULL (not an SSO user, or the provider has none). */
char *oidc_end_session_url(struct req *r);

#endif
