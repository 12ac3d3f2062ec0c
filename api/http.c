/* http.c - see http.h. */
#include "http.h"

#include "audit.h"
#include "db.h"
#include "log.h"
#include "notify.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Each connection thread has its own DB connection and notify socket, closed when the thread
 * ends (pthread key destructors): connection threads come and go. */
struct tls {
	sqlite3 *db;
	struct notify *nt;
	int64_t org; /* api_scope() */
	int scoped;  /* the TEMP views exist on db */
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p)
{
	struct tls *t = p;

	db_close(t->db);
	notify_close(t->nt);
	free(t);
}

static void tls_make_key(void)
{
	pthread_key_create(&tls_key, tls_free);
}

static struct tls *tls_get(void)
{
	struct tls *t;

	pthread_once(&tls_once, tls_make_key);
	t = pthread_getspecific(tls_key);
	if (!t && (t = calloc(1, sizeof(*t))))
		pthread_setspecific(tls_key, t);
	return t;
}

void api_scope(int64_t org)
{
	struct tls *t = tls_get();

	if (t)
		t->org = org;
}

/* pgw_org(): the organisation of the thread's current request, NULL when none */
static void sql_pgw_org(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct tls *t = sqlite3_user_data(ctx);

	(void)argc, (void)argv;
	if (t->org)
		sqlite3_result_int64(ctx, t->org);
	else
		sqlite3_result_null(ctx);
}

/* The TEMP views that scope this connection's reads (TEMP objects shadow main ones of the same
 * name); the main schema's own views (health_state, mapping_state) keep reading main tables. */
static const char scope_sql[] =
    "CREATE TEMP VIEW proxies AS SELECT * FROM main.proxies WHERE " ORG_SCOPED ";"
    "CREATE TEMP VIEW mappings AS SELECT * FROM main.mappings WHERE " ORG_SCOPED ";"
    "CREATE TEMP VIEW mapping_state AS SELECT * FROM main.mapping_state WHERE " ORG_SCOPED ";"
    "CREATE TEMP VIEW proxy_health AS SELECT h.* FROM main.proxy_health h WHERE pgw_org() = -1 OR "
    "h.proxy_id IN (SELECT id FROM main.proxies WHERE org_id = pgw_org());"
    "CREATE TEMP VIEW health_history AS SELECT h.* FROM main.health_history h WHERE pgw_org() = -1 OR "
    "h.proxy_id IN (SELECT id FROM main.proxies WHERE org_id = pgw_org());"
    "CREATE TEMP VIEW health_state AS SELECT h.* FROM main.health_state h WHERE pgw_org() = -1 OR "
    "h.proxy_id IN (SELECT id FROM main.proxies WHERE org_id = pgw_org());"
    "CREATE TEMP VIEW audit AS SELECT * FROM main.audit WHERE " ORG_SCOPED ";"
    "CREATE TEMP VIEW api_keys AS SELECT * FROM main.api_keys WHERE " ORG_SCOPED ";"
    "CREATE TEMP VIEW webhooks AS SELECT * FROM main.webhooks WHERE " ORG_SCOPED ";";

sqlite3 *api_db(const struct api *a)
{
	struct tls *t = tls_get();
	char err[512];

	if (!t)
		return NULL;
	if (!t->db && db_open(a->cfg->db_path, 0, &t->db, err, sizeof(err)) < 0) {
		log_error("%s", err);
		t->db = NULL;
	}
	if (t->db && !t->scoped) {
		if (sqlite3_create_function(t->db, "pgw_org", 0, SQLITE_UTF8 | SQLITE_INNOCUOUS, t, sql_pgw_org, NULL,
					    NULL) != SQLITE_OK ||
		    sqlite3_exec(t->db, scope_sql, NULL, NULL, NULL) != SQLITE_OK) {
			log_error("db: cannot scope the connection to organisations: %s", sqlite3_errmsg(t->db));
			db_close(t->db); /* fail closed: no connection rather than an unscoped one */
			t->db = NULL;
			return NULL;
		}
		t->scoped = 1;
	}
	return t->db;
}

static int send_response(struct req *r, unsigned status, struct MHD_Response *resp)
{
	int ret;

	MHD_add_response_header(resp, "X-Request-Id", r->id);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	for (int i = 0; i < 6 && r->extra_header[i]; i += 2)
		MHD_add_response_header(resp, r->extra_header[i], r->extra_header[i + 1]);
	r->status = (int)status;
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int reply_text(struct req *r, unsigned status, const char *content_type, const char *text, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", content_type);
	return send_response(r, status, resp);
}

int reply_json(struct req *r, unsigned status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	int ret;

	json_decref(j);
	if (!s)
		return MHD_NO;
	ret = reply_text(r, status, "application/json", s, strlen(s));
	free(s);
	return ret;
}

static int verror(struct req *r, unsigned status, const char *code, json_t *extra, const char *fmt, va_list ap)
{
	char msg[512];
	json_t *e;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	e = json_pack("{s:s, s:s, s:s}", "code", code, "message", msg, "request_id", r->id);
	if (extra) {
		json_object_update(e, extra);
		json_decref(extra);
	}
	return reply_json(r, status, json_pack("{s:o}", "error", e));
}

int reply_error(struct req *r, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = verror(r, status, code, NULL, fmt, ap);
	va_end(ap);
	return ret;
}

int reply_error_with(struct req *r, unsigned status, const char *code, json_t *extra, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = verror(r, status, code, extra, fmt, ap);
	va_end(ap);
	return ret;
}

int reply_retry_after(struct req *r, unsigned status, unsigned wait_s, const char *code, const char *fmt, ...)
{
	char retry[16];
	va_list ap;
	int ret;

	snprintf(retry, sizeof(retry), "%u", wait_s ? wait_s : 1);
	r->extra_header[0] = "Retry-After";
	r->extra_header[1] = retry;
	va_start(ap, fmt);
	ret = verror(r, status, code, NULL, fmt, ap);
	va_end(ap);
	r->extra_header[0] = r->extra_header[1] = NULL;
	return ret;
}

int reply_empty(struct req *r, unsigned status)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);

	return resp ? send_response(r, status, resp) : MHD_NO;
}

int req_parse_json(struct req *r)
{
	const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	json_error_t je;

	if (r->body) /* parsed already (a handler that checks the body before the object) */
		return 0;
	if (!paths_media_type(ct, "application/json")) {
		reply_error(r, 415, "unsupported_media_type", "send the body as Content-Type: application/json");
		return -1;
	}
	r->body = json_loadb(r->raw ? r->raw : "", r->raw_len, JSON_REJECT_DUPLICATES, &je);
	if (!r->body) {
		reply_error(r, 400, "bad_request", "malformed JSON: %s (at byte %d)", je.text, je.position);
		return -1;
	}
	return 0;
}

void api_notify(struct req *r, unsigned topics)
{
	struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = topics};
	struct tls *t = tls_get();
	char err[256];

	if (t && !t->nt)
		t->nt = notify_open(r->api->cfg->run_dir, NULL, err, sizeof(err));
	if (t && t->nt)
		notify_broadcast(t->nt, &m);
}

/* The organisation an audit row belongs to: the one an organisation's change was made in
 * (organisation 1 for a superadmin's when there is only that one), the one named by
 * r->audit_org, none (gateway-wide: users, organisations, settings, logins) otherwise, whatever
 * X-Pgw-Org the request carried: an organisation's admins search its rows. */
static int64_t audit_org(const struct req *r)
{
	if (r->audit_org)
		return r->audit_org;
	if (r->gateway_wide)
		return 0;
	return r->org > 0 ? r->org : r->org == API_ORG_ALL ? 1 : 0;
}

void api_audit(struct req *r, const char *action, const char *object_type, const char *object_id, json_t *before,
	       json_t *after, const char *result)
{
	char *b = before ? json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char *a = after ? json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	struct audit_entry e = {.username = r->user.name[0] ? r->user.name : "",
				.remote_addr = r->addr,
				.action = action,
				.object_type = object_type,
				.object_id = object_id,
				.before_json = b,
				.after_json = a,
				.request_id = r->id,
				.result = result,
				.org_id = audit_org(r)};
	sqlite3 *db = api_db(r->api);

	if (db)
		audit_record(db, &e);
	free(b);
	free(a);
}

size_t api_buf_collect(char *data, size_t size, size_t nmemb, void *arg)
{
	struct api_buf *b = arg;
	size_t n = size * nmemb;
	char *p;

	if (b->n + n > b->max || !(p = realloc(b->p, b->n + n + 1)))
		return 0;
	memcpy(p + b->n, data, n);
	b->p = p;
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}
