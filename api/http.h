/* http.h - request context, JSON bodies and validation, error replies, routing for pgw-api. */
#ifndef API_HTTP_H
#define API_HTTP_H

#include "config.h"
#include "paths.h"

#include <jansson.h>
#include <microhttpd.h>
#include <sqlite3.h>
#include <stdint.h>

#define API_PER_ADDRESS_MAX 128		/* connections at once from one address, and from one IPv6 /64 */
#define API_HEAD_MAX	    (32 * 1024) /* request line and headers; more: libmicrohttpd's own 431 */
#define API_CONNECTIONS_MAX 1000
#define API_BODY_MAX	    (1024 * 1024)
#define API_LOGIN_BODY_MAX  4096 /* a username and a password: anyone may send one */

struct api_user {
	int64_t id;
	int64_t gen;	/* the session generation the token was issued under (users.token_gen) */
	int64_t key_id; /* signed in with an API key (then id is 0) */
	long exp;	/* when the token expires (unix time; 0 for an API key, which checks its own) */
	char name[264]; /* a user name, or "key:" and a key's name (64 characters, up to 256 bytes) */
	char role[8];	/* the role in the request's organisation */
	int superadmin; /* manages organisations and the gateway's global settings */
	int sso;	/* made by a login through the OpenID provider (users.sso_issuer) */
	char csrf[65];
	int via_cookie;
};

struct api {
	const struct pgw_config *cfg;
	struct MHD_Daemon *mhd;
};

/* The browsers reach pgw-api over HTTPS: its own TLS, or a reverse proxy's (PGW_TLS_OFFLOAD). */
static inline int api_https(const struct api *api)
{
	return api->cfg->tls_cert[0] || api->cfg->tls_offload;
}

struct req {
	struct api *api;
	struct MHD_Connection *conn;
	const char *method, *url;
	char id[24];
	char addr[64];
	char *raw;
	size_t raw_len, raw_cap;
	int too_large;
	json_t *body;
	struct api_user user;
	int authed;
	int64_t org;	   /* the organisation it acts in (auth_require): > 0, API_ORG_ALL, or 0 before */
	int gateway_wide;  /* about the user or the gateway, not an organisation (logout, /me, /events, /users,
			      /orgs): a user of several organisations needs no X-Pgw-Org there */
	int64_t audit_org; /* the organisation its audit rows belong to when not the one it acts in */
	int answered;	   /* a reply was queued before the body was read (401): the body is dropped */
	int status;	   /* what was sent, for the access log */
	uint64_t t0;
	const char *extra_header[6]; /* up to three extra headers (name, value, name, value, ...) */
};

/* The calling thread's own DB connection (opened on first use). Its reads of proxies, mappings,
 * their health, audit and api_keys are scoped to the organisation api_scope() set (TEMP views
 * over the main tables, docs/design/TENANTS.md): another organisation's rows do not exist for
 * it, and with no organisation set nothing does. Writes name main.X and use ORG_SCOPED /
 * ORG_OWNER. */
sqlite3 *api_db(const struct api *a);
#define API_ORG_ALL (-1) /* a superadmin without X-Pgw-Org, the metrics token: every organisation */
/* The organisation the calling thread's requests now act in: > 0 one, API_ORG_ALL, 0 none. */
void api_scope(int64_t org);
/* SQL: "the row is the request's organisation's" (on a table with org_id), and the organisation
 * a new row belongs to (the request's; organisation 1 for API_ORG_ALL). */
#define ORG_SCOPED "(pgw_org() = -1 OR org_id = pgw_org())"
#define ORG_OWNER  "coalesce(nullif(pgw_org(), -1), 1)"

int reply_json(struct req *r, unsigned status, json_t *j); /* steals j */
int reply_error(struct req *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An error reply with extra members in "error" (e.g. the health check of a 422); steals extra. */
int reply_error_with(struct req *r, unsigned status, const char *code, json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A 429 or 503 error telling the client when to try again (Retry-After: wait_s, at least 1). */
int reply_retry_after(struct req *r, unsigned status, unsigned wait_s, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int reply_empty(struct req *r, unsigned status);
int reply_text(struct req *r, unsigned status, const char *content_type, const char *text, size_t len);

/* Body validation: the body must be a JSON object with only these fields, each of its type and
 * within its bounds; required ones present unless partial. 0, or -EINVAL with err filled. */
/* J_NAME: a J_STR without control characters (C0, DEL): an object's name (shown, logged, and
 * stepped aside by the HA sync under a placeholder starting with one, api/hasnap.c) */
enum jtype { J_STR, J_INT, J_BOOL, J_ARRAY, J_NAME };
struct jfield {
	const char *name;
	enum jtype type;
	int required;
	long long min, max; /* J_INT: value range; J_STR, J_NAME: length range; J_ARRAY: item count */
};
int json_check(const json_t *body, const struct jfield *fields, size_t n, int partial, char *err, size_t errlen);
/* Parse r->raw into r->body; replies 400/415 itself and returns -1 when it is not usable. */
int req_parse_json(struct req *r);

/* Tell the other daemons (best effort) and record in the audit log. */
void api_notify(struct req *r, unsigned topics);
void api_audit(struct req *r, const char *action, const char *object_type, const char *object_id, json_t *before,
	       json_t *after, const char *result);

/* An answer libcurl reads into memory (CURLOPT_WRITEFUNCTION api_buf_collect, CURLOPT_WRITEDATA
 * the buffer): NUL-terminated, at most max bytes (more ends the transfer with an error). */
struct api_buf {
	char *p;
	size_t n, max;
};
size_t api_buf_collect(char *data, size_t size, size_t nmemb, void *arg);

#endif
