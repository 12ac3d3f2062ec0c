/* pgw-api - the REST API (docs/API_SPEC.yaml) and the web dashboard's files, on libmicrohttpd
 * with its own thread pool. Every response carries X-Request-Id; every request is logged once
 * with it. State changes are written to the DB, audited, then announced on the notify path. */
#include "daemon.h"
#include "events.h"
#include "feed.h"
#include "ha.h"
#include "oidc.h"
#include "http.h"
#include "log.h"
#include "random.h"
#include "resources.h"
#include "webhooks.h"
#include "password.h"
#include "settings.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define FEED_FORWARDER_MS 2000

static void request_id(char *out, size_t cap)
{
	static _Atomic unsigned long counter;
	static unsigned prefix;

	if (!prefix && random_bytes(&prefix, sizeof(prefix)) < 0)
		prefix = (unsigned)getpid();
	snprintf(out, cap, "%06x-%lu", prefix & 0xffffff, ++counter);
}

static const char *mime(const char *path)
{
	const char *dot = strrchr(path, '.');
	static const char *const map[][2] = {{".html", "text/html; charset=utf-8"},
					     {".js", "text/javascript"},
					     {".css", "text/css"},
					     {".svg", "image/svg+xml"},
					     {".png", "image/png"},
					     {".json", "application/json"},
					     {".ico", "image/x-icon"}};

	for (size_t i = 0; dot && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(dot, map[i][0]) == 0)
			return map[i][1];
	return "application/octet-stream";
}

/* GET of a file under PGW_WEB_DIR ("/" is index.html); no "..", no hidden files. */
static int static_file(struct req *r)
{
	char path[4400];
	struct MHD_Response *resp;
	struct stat sb;
	int fd;

	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	if (paths_web_file(r->api->cfg->web_dir, r->url, path, sizeof(path)) < 0)
		return reply_error(r, 404, "not_found", "no such file");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		if (fd >= 0)
			close(fd);
		return reply_error(r, 404, "not_found", "no such file");
	}
	resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
	if (!resp) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", mime(path));
	MHD_add_response_header(resp, "X-Request-Id", r->id);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
	r->status = 200;
	{
		int ret = MHD_queue_response(r->conn, 200, resp);
		MHD_destroy_response(resp);
		return ret;
	}
}

struct sse {
	struct events_cursor cur;
	int started;
	const struct api *api;
	int64_t uid, gen, key_id; /* whose stream: it ends when that session (or API key) does, */
	int64_t org;		  /* or the user leaves the organisation it watches */
	long exp;		  /* ... or its token expires */
};

static void sse_free(void *cls)
{
	struct sse *s = cls;

	events_cursor_free(&s->cur);
	free(s);
}

static int stream_alive(const struct sse *s)
{
	sqlite3 *db = api_db(s->api);

	if (s->exp && (long)time(NULL) >= s->exp)
		return 0;
	return db && (s->key_id ? apikey_alive(db, s->key_id)
				: auth_session_alive(db, s->uid, s->gen) && auth_org_alive(db, s->uid, s->org));
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = cls;
	ssize_t n;

	(void)pos;
	if (!s->started) { /* reconnect hint for EventSource, and a first line so proxies flush */
		s->started = 1;
		return snprintf(buf, max, "retry: 2000\n: connected, last id %llu\n\n",
				(unsigned long long)s->cur.last);
	}
	/* before every delivery, heartbeats too: logged out, password changed, disabled or deleted
	 * ends the stream (an event may wait until the next heartbeat, never past it) */
	if (!stream_alive(s))
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = events_read(&s->cur, buf, max, EVENTS_HEARTBEAT_MS);
	if (n > 0 && !stream_alive(s))
		return MHD_CONTENT_READER_END_OF_STREAM; /* it ended while we waited: deliver nothing */
	return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

/* GET /api/v1/events: Server-Sent Events; Last-Event-ID resumes where the client left. */
static int sse(struct req *r)
{
	const char *lei = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
	struct MHD_Response *resp;
	struct sse *s;
	int ret;

	if (auth_require(r, 0) < 0)
		return MHD_YES;
	if (strcmp(r->method, "GET") != 0)
		return reply_error(r, 405, "method_not_allowed", "use GET");
	if (!(s = calloc(1, sizeof(*s))))
		return MHD_NO;
	s->api = r->api;
	s->uid = r->user.id;
	s->gen = r->user.gen;
	s->key_id = r->user.key_id;
	s->exp = r->user.exp;
	s->org = s->cur.org = r->org; /* API_ORG_ALL is EVENTS_ALL_ORGS */
	s->cur.last = events_last_id();
	if (lei && *lei) {
		int64_t id = strcmp(lei, "0") == 0 ? 0 : path_id(lei);
		if (id >= 0 && (uint64_t)id <= s->cur.last)
			s->cur.last = (uint64_t)id;
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, s, sse_free);
	if (!resp) {
		sse_free(s);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	MHD_add_response_header(resp, "X-Request-Id", r->id);
	r->status = 200;
	ret = MHD_queue_response(r->conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* The most a request's body may hold: a login's is small, since anyone may send one. */
static int body_max(const struct req *r)
{
	return strcmp(r->url, "/api/v1/auth/login") == 0 ? API_LOGIN_BODY_MAX : API_BODY_MAX;
}

static int route(struct req *r)
{
	char buf[512];
	const char *seg[PATHS_SEGS];
	int n;

	if (r->too_large)
		return reply_error(r, 413, "payload_too_large", "the body is larger than %d bytes", body_max(r));
	if (strcmp(r->url, "/healthz") == 0)
		return res_healthz(r);
	if (strcmp(r->url, "/metrics") == 0)
		return res_metrics(r);
	if (strncmp(r->url, "/api/v1/", 8) != 0)
		return static_file(r);
	if (ha_refuse_write(r)) /* an HA backup's configuration follows the master's */
		return MHD_YES;
	if ((n = paths_api_segments(r->url, buf, sizeof(buf), seg)) < 0)
		return reply_error(r, 404, "not_found", "no such resource");
	if (strcmp(seg[0], "auth") == 0) { /* single sign-on, and how one may sign in */
		int ret;
		if (oidc_route(r, seg + 1, n - 1, &ret))
			return ret;
	}
	if (strcmp(seg[0], "auth") == 0 && n == 2 && (strcmp(seg[1], "login") == 0 || strcmp(seg[1], "logout") == 0)) {
		if (strcmp(r->method, "POST") != 0)
			return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
		if (strcmp(seg[1], "login") == 0)
			return auth_login(r);
		if (strcmp(seg[1], "logout") == 0)
			return auth_require(r, 0) < 0 || auth_csrf(r) < 0 ? MHD_YES : auth_logout(r);
	}
	if (strcmp(seg[0], "events") == 0 && n == 1)
		return sse(r);
	if (strcmp(seg[0], "me") == 0 && n == 1)
		return auth_require(r, 0) < 0 ? MHD_YES : auth_me(r);
	if (strcmp(seg[0], "proxies") == 0)
		return res_proxies(r, seg + 1, n - 1);
	if (strcmp(seg[0], "mappings") == 0)
		return res_mappings(r, seg + 1, n - 1);
	if (strcmp(seg[0], "health") == 0)
		return res_health(r, seg + 1, n - 1);
	if (strcmp(seg[0], "clients") == 0)
		return res_clients(r, seg + 1, n - 1);
	if (strcmp(seg[0], "devices") == 0)
		return res_devices(r, seg + 1, n - 1);
	if (strcmp(seg[0], "connections") == 0)
		return res_connections(r, seg + 1, n - 1);
	if (strcmp(seg[0], "webhooks") == 0)
		return res_webhooks(r, seg + 1, n - 1);
	if (strcmp(seg[0], "config") == 0)
		return res_config(r, seg + 1, n - 1);
	if (strcmp(seg[0], "status") == 0)
		return res_status(r, seg + 1, n - 1);
	if (strcmp(seg[0], "users") == 0)
		return res_users(r, seg + 1, n - 1);
	if (strcmp(seg[0], "audit") == 0)
		return res_audit(r, seg + 1, n - 1);
	if (strcmp(seg[0], "api-keys") == 0)
		return res_apikeys(r, seg + 1, n - 1);
	if (strcmp(seg[0], "orgs") == 0)
		return res_orgs(r, seg + 1, n - 1);
	if (strcmp(seg[0], "ha") == 0)
		return res_ha(r, seg + 1, n - 1);
	return reply_error(r, 404, "not_found", "no such resource");
}

/* Connections at once per IPv6 /64: one host holds a whole /64, so the per-address limit alone
 * would let it open API_PER_ADDRESS_MAX from each of its addresses. Counted when a connection
 * starts and ends (notify_connection), checked in accept_policy (both on the accepting thread
 * for a start; an end comes from the connection's thread: hence the lock). */
static pthread_mutex_t net64_lock = PTHREAD_MUTEX_INITIALIZER;
static struct net64 {
	uint8_t p[8];
	unsigned n;
} net64[API_CONNECTIONS_MAX];
static size_t n_net64;

/* The /64 of a client with an IPv6 address of its own (not loopback, not IPv4-mapped). */
static int client_net64(const struct sockaddr *sa, uint8_t p[8])
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	if (!sa || sa->sa_family != AF_INET6 || IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) ||
	    IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
		return -1;
	memcpy(p, s6->sin6_addr.s6_addr, 8);
	return 0;
}

/* Under net64_lock: the entry of p, or NULL. */
static struct net64 *net64_find(const uint8_t p[8])
{
	for (size_t i = 0; i < n_net64; i++)
		if (memcmp(net64[i].p, p, 8) == 0)
			return &net64[i];
	return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct net64 *e;
	uint8_t p[8];

	(void)cls;
	(void)socket_ctx;
	if (!ci || client_net64(ci->client_addr, p) < 0)
		return;
	pthread_mutex_lock(&net64_lock);
	e = net64_find(p);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		if (!e && n_net64 < API_CONNECTIONS_MAX) {
			e = &net64[n_net64++];
			memcpy(e->p, p, 8);
			e->n = 0;
		}
		if (e)
			e->n++;
	} else if (e && --e->n == 0) {
		*e = net64[--n_net64];
	}
	pthread_mutex_unlock(&net64_lock);
}

/* Who may connect at all (setting api_allow; empty: the LAN network); loopback always may. The
 * kernel refuses the rest on the LAN side too (the agent's lan_in chain). */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len)
{
	const struct api *api = cls;
	struct sockaddr_storage ss;
	struct net_prefix allow[SETTINGS_PREFIXES_MAX];
	char v[SETTINGS_VALUE_MAX], s[NET_IP_STR_MAX];
	struct net_ip ip;
	sqlite3 *db;
	const char *why = "not in api_allow";
	uint8_t p[8];
	int n = 0, r;

	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, addr, len < sizeof(ss) ? len : sizeof(ss));
	if (net_ip_from_sa(&ss, &ip) < 0)
		return MHD_NO;
	if ((net_ip_is4(&ip) && ip.a[12] == 127) || memcmp(ip.a, in6addr_loopback.s6_addr, 16) == 0)
		return MHD_YES;
	if (api->cfg->ha_peer[0]) { /* the HA peer's sync, whatever api_allow says (it authenticates) */
		struct net_ip peer;
		if (net_ip_parse(api->cfg->ha_peer, &peer) == 0 && memcmp(&peer, &ip, sizeof(ip)) == 0)
			return MHD_YES;
	}
	if (!(db = api_db(api)))
		return MHD_NO; /* cannot tell: refuse */
	/* Fail closed: a DB that cannot answer, or an allowlist that does not parse (a row written
	 * by hand), refuses everyone but loopback rather than widening to the LAN network. */
	r = settings_get(db, "api_allow", v, sizeof(v));
	if (r == -ENOENT)
		v[0] = 0;
	else if (r < 0 || (n = net_prefix_list_parse(v, allow, SETTINGS_PREFIXES_MAX)) < 0)
		goto unreadable;
	if (!v[0]) {
		r = settings_get(db, "lan_cidr", v, sizeof(v));
		if (r == -EIO)
			goto unreadable;
		if (r < 0) /* not set: the configured default */
			settings_str(db, api->cfg, "lan_cidr", v, sizeof(v));
		n = net_prefix_parse(v, &allow[0]) == 0 ? 1 : 0;
	}
	for (int i = 0; i < n; i++)
		if (net_prefix_contains(&allow[i], &ip))
			goto allowed;
	goto refuse;
allowed:
	if (client_net64(addr, p) == 0) {
		struct net64 *e;
		unsigned busy;

		pthread_mutex_lock(&net64_lock);
		busy = (e = net64_find(p)) ? e->n : 0;
		pthread_mutex_unlock(&net64_lock);
		if (busy >= API_PER_ADDRESS_MAX) {
			why = "too many connections open from its /64";
			goto refuse;
		}
	}
	return MHD_YES;
unreadable:
	why = "api_allow unreadable or invalid";
refuse:
	net_ip_str(&ip, s);
	log_info("connection from %s refused: %s", s, why);
	return MHD_NO;
}

/* The request announces a body (Content-Length above 0, or chunked). */
static int has_body(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);

	return (cl && strcmp(cl, "0") != 0) || te;
}

/* Endpoints about the signed-in user, or the gateway's users, organisations and settings,
 * rather than one organisation's objects. */
static int gateway_wide(const char *url)
{
	static const char *const exact[] = {"/api/v1/auth/logout", "/api/v1/me", "/api/v1/events"};
	static const char *const trees[] = {"/api/v1/users", "/api/v1/orgs", "/api/v1/config"};

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcmp(url, exact[i]) == 0)
			return 1;
	for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
		size_t n = strlen(trees[i]);
		if (strncmp(url, trees[i], n) == 0 && (url[n] == '\0' || url[n] == '/'))
			return 1;
	}
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct api *api = cls;
	struct req *r = *con_cls;

	(void)version;
	/* no organisation until auth_require decides one for this request: a thread serves many
	 * connections, and a handler runs to its end within one call */
	api_scope(0);
	if (!r) { /* first call: headers only */
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->api = api;
		r->conn = conn;
		r->method = method;
		r->url = url;
		r->t0 = ev_now_ms();
		request_id(r->id, sizeof(r->id));
		r->gateway_wide = gateway_wide(url);
		if (ci && ci->client_addr) {
			const struct sockaddr *sa = ci->client_addr;
			if (sa->sa_family == AF_INET)
				inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->addr,
					  sizeof(r->addr));
			else if (sa->sa_family == AF_INET6)
				inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->addr,
					  sizeof(r->addr));
		}
		*con_cls = r;
		/* a body is read only for someone signed in (or logging in), and only where one is
		 * taken: nobody else makes pgw-api hold up to API_BODY_MAX for them */
		if (!has_body(conn))
			return MHD_YES;
		if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
			reply_error(r, 400, "bad_request", "a %s takes no body", method);
			r->answered = 1;
		} else if (strncmp(url, "/api/v1/", 8) != 0) { /* the dashboard's files and /metrics */
			reply_error(r, 405, "method_not_allowed", "%s is not allowed here", method);
			r->answered = 1;
		} else if (strcmp(url, "/api/v1/auth/login") != 0 && auth_require(r, 0) < 0) {
			r->answered = 1;
		}
		return MHD_YES;
	}
	if (r->answered) { /* refused before its body: drop it unread */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) { /* body, in pieces */
		if (!r->too_large) {
			/* a body may hold a password: no copy of it is left in freed memory (so no realloc) */
			if (r->raw_len + *upload_data_size > (size_t)body_max(r)) {
				r->too_large = 1;
				if (r->raw)
					explicit_bzero(r->raw, r->raw_len);
				free(r->raw);
				r->raw = NULL;
				r->raw_len = r->raw_cap = 0;
			} else {
				if (r->raw_len + *upload_data_size + 1 >
				    r->raw_cap) { /* doubling: linear in the body */
					size_t cap = r->raw_cap ? r->raw_cap : 4096;
					char *p;
					while (cap < r->raw_len + *upload_data_size + 1)
						cap *= 2;
					if (!(p = secret_grow(r->raw, r->raw_len, cap)))
						return MHD_NO;
					r->raw = p;
					r->raw_cap = cap;
				}
				memcpy(r->raw + r->raw_len, upload_data, *upload_data_size);
				r->raw_len += *upload_data_size;
				r->raw[r->raw_len] = '\0';
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return route(r) == MHD_NO ? MHD_NO : MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls, (void)conn, (void)toe;
	if (!r)
		return;
	log_info_id(r->id, "%s %s %d %llums user=%s addr=%s", r->method, r->url, r->status,
		    (unsigned long long)(ev_now_ms() - r->t0), r->user.name[0] ? r->user.name : "-", r->addr);
	json_decref(r->body);
	if (r->raw)
		explicit_bzero(r->raw, r->raw_len); /* may hold a password */
	free(r->raw);
	explicit_bzero(&r->user, sizeof(r->user));
	free(r);
	*con_cls = NULL;
}

static void on_change(struct daemon *d, const struct notify_msg *msg, const char *from)
{
	(void)from;
	if (msg && msg->type != NOTIFY_CHANGED)
		return;
	feed_update(d->priv, msg ? msg->topics : FEED_POLL);
}

static void on_feed_tick(struct evloop *ev, void *arg)
{
	(void)ev;
	feed_update(arg, TOPIC_FORWARDER);
}

static const struct daemon_info info = {
    .name = "pgw-api",
    .sock_name = "api",
    .summary = "REST API (docs/API_SPEC.yaml), live events and the web dashboard.",
    .on_change = on_change,
    .validate = config_require_api,
};

/* A whole PEM file into memory (NUL-terminated), or NULL. */
static char *read_pem(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *in = fopen(path, "re"), *out;
	char chunk[4096];
	size_t n;

	if (!in)
		return NULL;
	out = open_memstream(&buf, &len);
	while (out && (n = fread(chunk, 1, sizeof(chunk), in)) > 0 && len < 1024 * 1024)
		fwrite(chunk, 1, n, out);
	if (out)
		fclose(out);
	fclose(in);
	explicit_bzero(chunk, sizeof(chunk));
	return buf;
}

static struct MHD_Daemon *start_http(struct api *api, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	/* a thread per connection: an SSE subscriber waits for events without holding up others */
	unsigned flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *mhd;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, api->cfg->api_host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(api->cfg->api_port);
	} else if (inet_pton(AF_INET6, api->cfg->api_host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(api->cfg->api_port);
		flags |= MHD_USE_IPv6;
	} else {
		snprintf(err, errlen, "PGW_API_LISTEN: '%s' is not an IP address", api->cfg->api_host);
		return NULL;
	}
	if (api->cfg->tls_cert[0]) { /* HTTPS (GnuTLS inside libmicrohttpd) */
		char *cert = read_pem(api->cfg->tls_cert), *key = read_pem(api->cfg->tls_key);
		if (!cert || !key) {
			snprintf(err, errlen, "%s: cannot read '%.300s'", cert ? "PGW_TLS_KEY" : "PGW_TLS_CERT",
				 cert ? api->cfg->tls_key : api->cfg->tls_cert);
			free(cert);
			free(key);
			return NULL;
		}
		mhd = MHD_start_daemon(
		    flags | MHD_USE_TLS, api->cfg->api_port, accept_policy, api, on_request, api, MHD_OPTION_SOCK_ADDR,
		    &ss, MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned)30, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_HEAD_MAX, MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned)API_CONNECTIONS_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)API_PER_ADDRESS_MAX,
		    MHD_OPTION_NOTIFY_COMPLETED, on_completed, api, MHD_OPTION_NOTIFY_CONNECTION, on_connection, api,
		    MHD_OPTION_END);
		explicit_bzero(key, strlen(key));
		free(cert);
		free(key);
		if (!mhd)
			snprintf(err, errlen,
				 "PGW_TLS_CERT/PGW_TLS_KEY: cannot serve HTTPS on %s:%u (a matching PEM "
				 "certificate and key?)",
				 api->cfg->api_host, api->cfg->api_port);
		return mhd;
	}
	if (strcmp(api->cfg->api_host, "127.0.0.1") != 0 && strcmp(api->cfg->api_host, "::1") != 0 &&
	    strcmp(api->cfg->api_host, "localhost") != 0) {
		if (api->cfg->tls_offload) /* (an HA pair's proxy in front reaches it on the LAN) */
			log_warnx("serving plain HTTP on %s behind a TLS proxy (PGW_TLS_OFFLOAD): passwords and "
				  "session tokens cross the hop from that proxy to here readable; keep it on this "
				  "host or a trusted link",
				  api->cfg->api_host);
		else
			log_warnx("serving plain HTTP on %s: passwords and session tokens cross the network "
				  "readable; set PGW_TLS_CERT and PGW_TLS_KEY (or listen on 127.0.0.1 behind a TLS "
				  "proxy, with PGW_TLS_OFFLOAD=true)",
				  api->cfg->api_host);
	}
	mhd = MHD_start_daemon(flags, api->cfg->api_port, accept_policy, api, on_request, api, MHD_OPTION_SOCK_ADDR,
			       &ss, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
			       (size_t)API_HEAD_MAX, MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_CONNECTIONS_MAX,
			       MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)API_PER_ADDRESS_MAX,
			       MHD_OPTION_NOTIFY_COMPLETED, on_completed, api, MHD_OPTION_NOTIFY_CONNECTION,
			       on_connection, api, MHD_OPTION_END);
	if (!mhd)
		snprintf(err, errlen, "PGW_API_LISTEN: cannot listen on %s:%u: %s", api->cfg->api_host,
			 api->cfg->api_port, strerror(errno));
	return mhd;
}

int main(int argc, char **argv)
{
	struct feed *feed = NULL;
	struct daemon d;
	struct api api;
	char err[512];
	int r;

	memset(&api, 0, sizeof(api));
	r = daemon_init(&d, &info, argc, argv);
	if (r == DAEMON_CONTINUE) {
		api.cfg = &d.cfg;
		if (orgs_seed(d.db, &d.cfg) < 0) /* mappings stay enforced; new ones wait for networks */
			log_warn("cannot give organisation 1 the LAN network: %s", sqlite3_errmsg(d.db));
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || webhooks_start(&api) < 0)
			log_warnx("webhooks: no deliveries (libcurl could not start)");
		if (ha_start(&api) < 0)
			log_warnx("ha: the configuration sync could not start");
		feed = feed_new(d.db, &d.cfg, d.nt);
		d.priv = feed;
		api.mhd = feed ? start_http(&api, err, sizeof(err)) : NULL;
		if (!api.mhd || !ev_add_timer(d.ev, FEED_FORWARDER_MS, FEED_FORWARDER_MS, on_feed_tick, feed)) {
			log_error("%s", api.mhd ? "timer failed" : err);
			r = DAEMON_EXIT_FAIL;
		} else {
			log_info("listening on %s://%s:%u%s", d.cfg.tls_cert[0] ? "https" : "http", d.cfg.api_host,
				 d.cfg.api_port,
				 !d.cfg.tls_cert[0] && d.cfg.tls_offload
				     ? " (behind a TLS proxy, PGW_TLS_OFFLOAD: cookies Secure, sign-in addresses https)"
				     : "");
			r = daemon_run(&d) < 0 ? DAEMON_EXIT_FAIL : DAEMON_EXIT_OK;
		}
		events_shutdown(); /* SSE subscribers end their streams... */
		ha_stop();	   /* ...and a held HA sync request (this node the master) is answered... */
		if (api.mhd) {
			MHD_quiesce_daemon(api.mhd);
			usleep(300 * 1000); /* ...with their final chunk written before the server stops */
			MHD_stop_daemon(api.mhd);
		}
		webhooks_stop();
		feed_free(feed);
		curl_global_cleanup();
	}
	daemon_fini(&d);
	return r == DAEMON_EXIT_FAIL ? 1 : 0;
}
