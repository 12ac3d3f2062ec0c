/* auth.h - login, JWT (HS256) issue and verify, the session cookie with its CSRF token, roles. */
#ifndef API_AUTH_H
#define API_AUTH_H

#include "http.h"

#define AUTH_TTL_S	   3600
#define AUTH_COOKIE	   "pgw_session"
#define AUTH_PASSWORD_WORK 2 /* Argon2id hashes or verifies at once (64 MiB each) */

/* Authenticate r from its Bearer token or cookie (and CSRF for state changes by cookie).
 * 0 when r->user is set; otherwise the reply (401/403) has been queued and it returns -1. */
int auth_require(struct req *r, int write);
/* For a change made with the session cookie: the X-CSRF-Token must match (403 otherwise). */
int auth_csrf(struct req *r);
int auth_login(struct req *r);
/* Around every Argon2id hash or verify: -1 (and 503 with Retry-After sent) when
 * AUTH_PASSWORD_WORK are already running, or for an untrusted one (NULL: a login from a source
 * the user has not signed in from) when all but one are, or for a trusted one (the user name:
 * a login from a source she signed in from, or someone signed in) while one of that user's runs:
 * a flood of guesses from everywhere, or one account's own logins, never take the last one from
 * another user at her own source. Else 0, and auth_password_work_end(same trusted) after. */
int auth_password_work_begin(struct req *r, const char *trusted);
void auth_password_work_end(const char *trusted);
/* End every session of a user (logout, password change or reset, disabling): bump
 * users.token_gen, which every token carries. 0 or -EIO. */
int auth_end_sessions(sqlite3 *db, int64_t user_id);
/* 1 while tokens of generation gen of this user are valid (an open event stream asks). */
int auth_session_alive(sqlite3 *db, int64_t user_id, int64_t gen);
/* 1 while the user may still watch org: a superadmin for every organisation (API_ORG_ALL), a
 * member or a superadmin for one, anyone for none (0). */
int auth_org_alive(sqlite3 *db, int64_t user_id, int64_t org);
/* user_id belongs to organisation org (as one of its admins when admin_only). */
int auth_member(sqlite3 *db, int64_t user_id, int64_t org, int admin_only);
/* Organisation id exists. */
int auth_org_exists(sqlite3 *db, int64_t id);
/* The gateway's only organisation, or 0 when it has several. */
int64_t auth_single_org(sqlite3 *db);
/* Made or changed without a word on it, a user (or key) of this role is a superadmin: an admin
 * while the gateway has one organisation, as before organisations. */
int auth_default_superadmin(sqlite3 *db, const char *role);
int auth_logout(struct req *r);
/* Sign user_id in after a login through the provider: the session cookie, clear_cookie (the
 * login's state cookie) and a 303 to location. 0, or -1 (nothing sent) when the user is gone or
 * disabled or no token can be made. */
int auth_sso_session(struct req *r, int64_t user_id, const char *clear_cookie, const char *location);
int auth_me(struct req *r);

#endif
