/* metrics.c - /metrics in the Prometheus text format, from the DB and the forwarder's stats. */
#include "ha.h"
#include "resources.h"

#include "db.h"
#include "password.h"
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prometheus label values: backslash, quote and newline escaped. A name (64 characters of up
 * to 4 bytes, each escaped at most to 2) fits LABEL_MAX; what does not (a long reason) is cut
 * before a whole character, never inside one: invalid UTF-8 would fail the whole scrape. */
#define LABEL_MAX 520
static void label(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s && n + 2 < cap; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			out[n++] = '\\';
			out[n++] = *s == '\n' ? 'n' : *s;
		} else {
			out[n++] = *s;
		}
	}
	if (*s && (*s & 0xc0) == 0x80) { /* cut inside a character: back to its first byte, then before it */
		while (n > 0 && (out[n - 1] & 0xc0) == 0x80)
			n--;
		if (n > 0 && (out[n - 1] & 0xc0) == 0xc0)
			n--;
	}
	out[n] = '\0';
}

static long long jint(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* One counter family from an object of objects: name{label="key"} member, for each key (only
 * those that asked DNS at all when dns_only). */
static void family(FILE *f, const char *name, const char *help, json_t *obj, const char *label, const char *member,
		   int dns_only)
{
	const char *k;
	json_t *v;

	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	json_object_foreach(obj, k, v) if (!dns_only || jint(v, "dns_queries"))
	    fprintf(f, "%s{%s=\"%s\"} %lld\n", name, label, k, jint(v, member));
}

/* name{proxy,id} 1 or 0 for each proxy a check (a proxy_health column: a constant of this file,
 * never input) has judged: 1 when the column says good. */
static void proxy_check_gauge(FILE *f, sqlite3 *db, const char *name, const char *help, const char *column,
			      const char *good)
{
	sqlite3_stmt *st = NULL;
	char sql[200], lbl[LABEL_MAX];

	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
	snprintf(sql, sizeof(sql),
		 "SELECT p.id, p.name, h.%s = ?1 FROM proxies p JOIN proxy_health h ON h.proxy_id = p.id "
		 "WHERE h.%s != 'unknown' ORDER BY p.id",
		 column, column);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, good, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 1));
			fprintf(f, "%s{proxy=\"%s\",id=\"%lld\"} %d\n", name, lbl,
				(long long)sqlite3_column_int64(st, 0), sqlite3_column_int(st, 2));
		}
	}
	sqlite3_finalize(st);
}

/* Why each down proxy is down, with the detail (SOCKS5 reply code, HTTP status, exit seen). */
static void proxy_down_reasons(FILE *f, sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	char lbl[LABEL_MAX], why[300];

	fprintf(f, "# HELP pgw_proxy_down_reason 1 for a down proxy, labelled with its last failed check's reason\n"
		   "# TYPE pgw_proxy_down_reason gauge\n");
	if (sqlite3_prepare_v2(db,
			       "SELECT p.id, p.name, h.last_error FROM proxies p JOIN health_state h ON h.proxy_id = "
			       "p.id WHERE h.effective_status = 'down' ORDER BY p.id",
			       -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 1));
			label(why, sizeof(why), (const char *)sqlite3_column_text(st, 2));
			fprintf(f, "pgw_proxy_down_reason{proxy=\"%s\",id=\"%lld\",reason=\"%s\"} 1\n", lbl,
				(long long)sqlite3_column_int64(st, 0), why);
		}
	}
	sqlite3_finalize(st);
}

/* The resolver's totals: queries, answers, cache and latency of every client. */
static void dns_totals(FILE *f, json_t *d)
{
	static const char *const rcodes[] = {"refused", "servfail", "formerr", "notimp"};
	const char *k;
	json_t *v;

	fprintf(f,
		"# HELP pgw_dns_queries_total client DNS queries, by transport\n# TYPE pgw_dns_queries_total counter\n"
		"pgw_dns_queries_total{transport=\"udp\"} %lld\npgw_dns_queries_total{transport=\"tcp\"} %lld\n",
		jint(d, "udp"), jint(d, "tcp"));
	fprintf(
	    f,
	    "# HELP pgw_dns_cache_hits_total queries answered from the cache\n# TYPE pgw_dns_cache_hits_total counter\n"
	    "pgw_dns_cache_hits_total %lld\n",
	    jint(d, "cache_hits"));
	fprintf(f, "# HELP pgw_dns_errors_total queries answered with an error (pgw's own or a resolver's), by rcode\n"
		   "# TYPE pgw_dns_errors_total counter\n");
	for (size_t i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++)
		fprintf(f, "pgw_dns_errors_total{rcode=\"%s\"} %lld\n", rcodes[i], jint(d, rcodes[i]));
	fprintf(
	    f,
	    "# HELP pgw_dns_upstream_failures_total attempts at a resolver that failed or timed out (then the next)\n"
	    "# TYPE pgw_dns_upstream_failures_total counter\npgw_dns_upstream_failures_total %lld\n",
	    jint(d, "upstream_failures"));
	fprintf(f,
		"# HELP pgw_dns_upstream_connections_total connections opened to resolvers through the proxies\n"
		"# TYPE pgw_dns_upstream_connections_total counter\npgw_dns_upstream_connections_total %lld\n"
		"# HELP pgw_dns_requeued_total queries asked again, no attempt spent: their resolver connection was "
		"ended or reset, or failed while another served\n"
		"# TYPE pgw_dns_requeued_total counter\npgw_dns_requeued_total %lld\n",
		jint(d, "upstream_connections"), jint(d, "requeued"));
	fprintf(f,
		"# HELP pgw_dns_truncated_total UDP answers truncated to the client's size (it retries over TCP)\n"
		"# TYPE pgw_dns_truncated_total counter\npgw_dns_truncated_total %lld\n",
		jint(d, "truncated"));
	fprintf(f, "# HELP pgw_dns_latency_milliseconds time to answer a client's query\n"
		   "# TYPE pgw_dns_latency_milliseconds histogram\n");
	json_object_foreach(json_object_get(d, "latency_ms_buckets"), k, v)
	    fprintf(f, "pgw_dns_latency_milliseconds_bucket{le=\"%s\"} %lld\n", k, (long long)json_integer_value(v));
	fprintf(f, "pgw_dns_latency_milliseconds_sum %lld\npgw_dns_latency_milliseconds_count %lld\n",
		jint(d, "latency_ms_sum"), jint(d, "answered"));
}

/* DNS (dns_mode=proxy): each proxy's DNS check from the DB; queries, answers, cache and latency
 * from the forwarder's resolver, in all, per proxy and per client. */
static void dns_metrics(FILE *f, sqlite3 *db, json_t *fwd)
{
	json_t *d = json_object_get(fwd, "dns");

	proxy_check_gauge(f, db, "pgw_proxy_dns_up", "1 when the proxy's last DNS check passed (dns_mode=proxy)",
			  "dns_status", "up");
	proxy_check_gauge(f, db, "pgw_proxy_udp",
			  "1 when the proxy's last UDP check passed (UDP ASSOCIATE and a datagram back)", "udp", "yes");
	if (!json_is_object(d))
		return;
	if (json_object_get(d, "queries")) /* the gateway's totals: not in one organisation's view */
		dns_totals(f, d);
	family(f, "pgw_proxy_dns_queries_total", "client DNS queries answered for the proxy's clients",
	       json_object_get(d, "proxies"), "id", "queries", 0);
	family(f, "pgw_proxy_dns_cache_hits_total", "of them from the cache", json_object_get(d, "proxies"), "id",
	       "cache_hits", 0);
	family(f, "pgw_proxy_dns_servfail_total", "of them answered SERVFAIL", json_object_get(d, "proxies"), "id",
	       "servfail", 0);
	family(f, "pgw_proxy_dns_latency_milliseconds_sum", "their answer times added up (divide by queries)",
	       json_object_get(d, "proxies"), "id", "latency_ms_sum", 0);
	family(f, "pgw_client_dns_queries_total", "DNS queries per mapped client", json_object_get(fwd, "clients"),
	       "client", "dns_queries", 1);
	family(f, "pgw_client_dns_cache_hits_total", "of them from the cache", json_object_get(fwd, "clients"),
	       "client", "dns_cache_hits", 1);
	family(f, "pgw_client_dns_errors_total", "of them answered SERVFAIL or REFUSED",
	       json_object_get(fwd, "clients"), "client", "dns_errors", 1);
	family(f, "pgw_client_dns_latency_milliseconds_sum", "their answer times added up (divide by queries)",
	       json_object_get(fwd, "clients"), "client", "dns_latency_ms_sum", 1);
}

/* name{label="key",direction="up"|"down"} from members up and down of each object of obj (only
 * objects whose member `only` is non-zero, when given). */
static void family_dir(FILE *f, const char *name, const char *help, json_t *obj, const char *label, const char *up,
		       const char *down, const char *only)
{
	const char *k;
	json_t *v;

	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	json_object_foreach(obj, k, v) if (!only || jint(v, only))
	{
		fprintf(f, "%s{%s=\"%s\",direction=\"up\"} %lld\n", name, label, k, jint(v, up));
		fprintf(f, "%s{%s=\"%s\",direction=\"down\"} %lld\n", name, label, k, jint(v, down));
	}
}

/* The UDP relay's totals: sessions, flows, datagrams, ends and drops by reason. */
static void udp_totals(FILE *f, json_t *u)
{
	const char *k;
	json_t *v;

	fprintf(f,
		"# HELP pgw_udp_relay_listening 1 when pgw-forwarder's UDP relay listens (it needs CAP_NET_ADMIN)\n"
		"# TYPE pgw_udp_relay_listening gauge\npgw_udp_relay_listening %d\n"
		"# HELP pgw_udp_sessions UDP associations open (one per client socket)\n# TYPE pgw_udp_sessions gauge\n"
		"pgw_udp_sessions %lld\n# HELP pgw_udp_flows UDP flows open (client socket and destination)\n"
		"# TYPE pgw_udp_flows gauge\npgw_udp_flows %lld\n"
		"# HELP pgw_udp_sessions_opened_total UDP associations begun\n# TYPE pgw_udp_sessions_opened_total "
		"counter\n"
		"pgw_udp_sessions_opened_total %lld\n",
		json_is_true(json_object_get(u, "listening")), jint(u, "sessions"), jint(u, "flows"),
		jint(u, "sessions_opened"));
	fprintf(f, "# HELP pgw_udp_session_ends_total UDP associations ended, by reason\n"
		   "# TYPE pgw_udp_session_ends_total counter\n");
	json_object_foreach(json_object_get(u, "session_ends"), k, v)
	    fprintf(f, "pgw_udp_session_ends_total{reason=\"%s\"} %lld\n", k, (long long)json_integer_value(v));
	fprintf(f,
		"# HELP pgw_udp_datagrams_total datagrams relayed (up: from clients to their proxies)\n"
		"# TYPE pgw_udp_datagrams_total counter\npgw_udp_datagrams_total{direction=\"up\"} %lld\n"
		"pgw_udp_datagrams_total{direction=\"down\"} %lld\n# HELP pgw_udp_bytes_total payload bytes relayed\n"
		"# TYPE pgw_udp_bytes_total counter\npgw_udp_bytes_total{direction=\"up\"} %lld\n"
		"pgw_udp_bytes_total{direction=\"down\"} %lld\n",
		jint(u, "datagrams_up"), jint(u, "datagrams_down"), jint(u, "bytes_up"), jint(u, "bytes_down"));
	fprintf(f, "# HELP pgw_udp_dropped_total datagrams dropped, by reason\n# TYPE pgw_udp_dropped_total counter\n");
	json_object_foreach(json_object_get(u, "dropped"), k, v)
	    fprintf(f, "pgw_udp_dropped_total{reason=\"%s\"} %lld\n", k, (long long)json_integer_value(v));
}

/* The UDP relay: sessions, datagrams, drops by reason, per proxy and per client. */
static void udp_metrics(FILE *f, json_t *fwd)
{
	json_t *u = json_object_get(fwd, "udp");

	if (!json_is_object(u))
		return;
	if (json_object_get(u, "sessions")) /* the gateway's totals: not in one organisation's view */
		udp_totals(f, u);
	family_dir(f, "pgw_proxy_udp_datagrams_total", "datagrams relayed for the proxy's clients",
		   json_object_get(u, "proxies"), "id", "datagrams_up", "datagrams_down", NULL);
	family_dir(f, "pgw_proxy_udp_bytes_total", "payload bytes relayed for the proxy's clients",
		   json_object_get(u, "proxies"), "id", "bytes_up", "bytes_down", NULL);
	family(f, "pgw_proxy_udp_sessions_total", "UDP associations begun with the proxy",
	       json_object_get(u, "proxies"), "id", "sessions", 0);
	family(f, "pgw_proxy_udp_failures_total", "UDP associations with the proxy that failed",
	       json_object_get(u, "proxies"), "id", "failures", 0);
	family(f, "pgw_proxy_udp_dropped_total", "datagrams of the proxy's clients dropped",
	       json_object_get(u, "proxies"), "id", "dropped", 0);
	family_dir(f, "pgw_client_udp_datagrams_total", "datagrams relayed per client", json_object_get(fwd, "clients"),
		   "client", "udp_datagrams_up", "udp_datagrams_down", "udp_datagrams_up");
	family_dir(f, "pgw_client_udp_bytes_total", "payload bytes relayed per client", json_object_get(fwd, "clients"),
		   "client", "udp_bytes_up", "udp_bytes_down", "udp_datagrams_up");
}

/* Issue 19: each client's rate limits, quota (as pgw-api counted it this period) and the packets
 * its MAC binding refused; the caller's organisation's clients only (the scoped view). */
static void client_limits_metrics(FILE *f, sqlite3 *db)
{
	sqlite3_stmt *st = NULL;

	fprintf(f, "# HELP pgw_client_rate_limit_kbits a client's rate limit (tc), by direction\n"
		   "# TYPE pgw_client_rate_limit_kbits gauge\n");
	if (sqlite3_prepare_v2(
		db,
		"SELECT s.client_ip, m.down_kbit, m.up_kbit FROM mapping_state s JOIN main.mappings m ON "
		"m.id = s.id WHERE m.down_kbit > 0 OR m.up_kbit > 0 ORDER BY s.id",
		-1, &st, NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW)
			for (int d = 0; d < 2; d++)
				if (sqlite3_column_int64(st, 1 + d))
					fprintf(f, "pgw_client_rate_limit_kbits{client=\"%s\",direction=\"%s\"} %lld\n",
						sqlite3_column_text(st, 0), d ? "up" : "down",
						(long long)sqlite3_column_int64(st, 1 + d));
	sqlite3_finalize(st);
	for (int k = 0; k < 2; k++) { /* each family in one group */
		fprintf(
		    f, "%s",
		    k ? "# HELP pgw_client_quota_used_bytes what a client used of its quota this period (both ways, "
			"TCP and UDP)\n# TYPE pgw_client_quota_used_bytes gauge\n"
		      : "# HELP pgw_client_quota_limit_bytes a client's quota this period (quota_bytes + granted)\n"
			"# TYPE pgw_client_quota_limit_bytes gauge\n");
		if (sqlite3_prepare_v2(
			db,
			"SELECT s.client_ip, m.quota_bytes + coalesce(q.granted, 0), coalesce(q.used, 0) FROM "
			"mapping_state s JOIN main.mappings m ON m.id = s.id LEFT JOIN main.client_quota q ON "
			"q.client_ip = s.client_ip WHERE m.quota_bytes > 0 ORDER BY s.id",
			-1, &st, NULL) == SQLITE_OK)
			while (sqlite3_step(st) == SQLITE_ROW)
				fprintf(f, "pgw_client_quota_%s_bytes{client=\"%s\"} %lld\n", k ? "used" : "limit",
					sqlite3_column_text(st, 0), (long long)sqlite3_column_int64(st, 1 + k));
		sqlite3_finalize(st);
	}
	fprintf(f,
		"# HELP pgw_client_mac_refused_packets_total packets from a bound client's address with another MAC, "
		"dropped\n# TYPE pgw_client_mac_refused_packets_total counter\n");
	if (sqlite3_prepare_v2(db,
			       "SELECT s.client_ip, sum(x.packets) FROM mapping_state s JOIN main.mac_spoof x ON "
			       "x.client_ip = s.client_ip GROUP BY s.client_ip ORDER BY s.client_ip",
			       -1, &st, NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW)
			fprintf(f, "pgw_client_mac_refused_packets_total{client=\"%s\"} %lld\n",
				sqlite3_column_text(st, 0), (long long)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
}

/* Which organisation each proxy and client belongs to, as info series to join on (group_left)
 * rather than a label on every series: an install's dashboards and alerts keep their series. */
static void org_metrics(FILE *f, sqlite3 *db, int64_t org)
{
	sqlite3_stmt *st = NULL;
	char lbl[LABEL_MAX];

	fprintf(f, "# HELP pgw_org_info an organisation\n# TYPE pgw_org_info gauge\n");
	if (sqlite3_prepare_v2(db, "SELECT id, name FROM main.orgs WHERE ?1 = -1 OR id = ?1 ORDER BY id", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, org);
		while (sqlite3_step(st) == SQLITE_ROW) {
			label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 1));
			fprintf(f, "pgw_org_info{org=\"%lld\",name=\"%s\"} 1\n", (long long)sqlite3_column_int64(st, 0),
				lbl);
		}
	}
	sqlite3_finalize(st);
	fprintf(f, "# HELP pgw_proxy_org_info the organisation a proxy belongs to\n# TYPE pgw_proxy_org_info gauge\n");
	if (sqlite3_prepare_v2(db, "SELECT id, org_id FROM proxies ORDER BY id", -1, &st, NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW)
			fprintf(f, "pgw_proxy_org_info{id=\"%lld\",org=\"%lld\"} 1\n",
				(long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
	fprintf(f, "# HELP pgw_client_org_info the organisation a mapped client belongs to\n# TYPE pgw_client_org_info "
		   "gauge\n");
	if (sqlite3_prepare_v2(db, "SELECT client_ip, org_id FROM mappings ORDER BY id", -1, &st, NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW)
			fprintf(f, "pgw_client_org_info{client=\"%s\",org=\"%lld\"} 1\n", sqlite3_column_text(st, 0),
				(long long)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
}

int res_metrics(struct req *r)
{
	const struct pgw_config *cfg = r->api->cfg;
	char *buf = NULL, lbl[LABEL_MAX];
	size_t len = 0;
	FILE *f;
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	json_t *fwd;
	const char *k;
	int ret;

	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	if (!(db = api_db(r->api)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	/* client addresses, exit IPs and traffic per client: not for anyone on the LAN. The
	 * metrics token (Prometheus), or a signed-in user, unless metrics_public opens it */
	if (!settings_bool(db, cfg, "metrics_public")) {
		const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
		int token_ok = cfg->metrics_token[0] && h && strncasecmp(h, "Bearer ", 7) == 0 &&
			       password_ct_equal(h + 7, strlen(h + 7), cfg->metrics_token, strlen(cfg->metrics_token));
		if (!token_ok && auth_require(r, 0) < 0)
			return MHD_YES; /* 401 sent: a session or Authorization: Bearer <PGW_METRICS_TOKEN> */
		if (token_ok) {
			r->org = API_ORG_ALL; /* Prometheus: every organisation */
			api_scope(r->org);
		}
	} else {
		r->org = API_ORG_ALL; /* metrics_public: what the operator chose to open */
		api_scope(r->org);
	}
	if (!(f = open_memstream(&buf, &len)))
		return reply_error(r, 503, "unavailable", "out of memory");
	fprintf(f, "# HELP pgw_build_info pgw version\n# TYPE pgw_build_info gauge\npgw_build_info{version=\"%s\"} 1\n",
		PGW_VERSION);
	ha_metrics(r->api, db, f);
	fprintf(f, "# HELP pgw_proxy_up 1 when the proxy passed its last health check and that result is still fresh\n"
		   "# TYPE pgw_proxy_up gauge\n");
	fprintf(f, "# HELP pgw_proxy_latency_seconds last probe latency\n# TYPE pgw_proxy_latency_seconds gauge\n");
	if (sqlite3_prepare_v2(
		db,
		"SELECT p.id, p.name, h.effective_status, h.latency_ms FROM proxies p JOIN health_state h ON "
		"h.proxy_id = p.id ORDER BY p.id",
		-1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 1));
			fprintf(f, "pgw_proxy_up{proxy=\"%s\",id=\"%lld\"} %d\n", lbl,
				(long long)sqlite3_column_int64(st, 0),
				strcmp((const char *)sqlite3_column_text(st, 2), "up") == 0);
			if (sqlite3_column_type(st, 3) != SQLITE_NULL)
				fprintf(f, "pgw_proxy_latency_seconds{proxy=\"%s\",id=\"%lld\"} %.3f\n", lbl,
					(long long)sqlite3_column_int64(st, 0), sqlite3_column_int(st, 3) / 1000.0);
		}
	}
	sqlite3_finalize(st);
	proxy_down_reasons(f, db);
	org_metrics(f, db, r->org);
	/* the exit IP as an info series: a change of exit IP is a new series (alert on changes()) */
	fprintf(
	    f, "# HELP pgw_proxy_exit_ip_info the proxy's current exit address\n# TYPE pgw_proxy_exit_ip_info gauge\n");
	if (sqlite3_prepare_v2(db,
			       "SELECT p.id, p.name, h.exit_ip FROM proxies p JOIN proxy_health h ON h.proxy_id = p.id "
			       "WHERE h.exit_ip != '' ORDER BY p.id",
			       -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 1));
			fprintf(f, "pgw_proxy_exit_ip_info{proxy=\"%s\",id=\"%lld\",exit_ip=\"%s\"} 1\n", lbl,
				(long long)sqlite3_column_int64(st, 0), sqlite3_column_text(st, 2));
		}
	}
	sqlite3_finalize(st);
	fprintf(f, "# HELP pgw_proxy_exit_ip_mismatch 1 when the proxy is down for leaving from an address outside its "
		   "expected_exit (only proxies that name one)\n# TYPE pgw_proxy_exit_ip_mismatch gauge\n");
	if (sqlite3_prepare_v2(
		db,
		"SELECT p.id, p.name, h.last_error LIKE 'exit_ip_mismatch%' FROM proxies p JOIN proxy_health "
		"h ON h.proxy_id = p.id WHERE p.expected_exit != '' ORDER BY p.id",
		-1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 1));
			fprintf(f, "pgw_proxy_exit_ip_mismatch{proxy=\"%s\",id=\"%lld\"} %d\n", lbl,
				(long long)sqlite3_column_int64(st, 0), sqlite3_column_int(st, 2));
		}
	}
	sqlite3_finalize(st);
	fprintf(f, "# HELP pgw_proxy_exit_ip_changes_total exit IP changes seen in the kept health history\n"
		   "# TYPE pgw_proxy_exit_ip_changes_total gauge\n");
	if (sqlite3_prepare_v2(
		db,
		"SELECT p.id, p.name, (SELECT count(*) FROM (SELECT exit_ip, lag(exit_ip) OVER (ORDER BY id) "
		"AS prev FROM health_history WHERE proxy_id = p.id AND status = 'up') WHERE prev IS NOT NULL "
		"AND prev != exit_ip) FROM proxies p ORDER BY p.id",
		-1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 1));
			fprintf(f, "pgw_proxy_exit_ip_changes_total{proxy=\"%s\",id=\"%lld\"} %lld\n", lbl,
				(long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 2));
		}
	}
	sqlite3_finalize(st);
	fprintf(f, "# HELP pgw_client_blocked 1 when a mapped client is blocked\n# TYPE pgw_client_blocked gauge\n");
	if (sqlite3_prepare_v2(db, "SELECT client_ip, NOT active FROM mapping_state ORDER BY id", -1, &st, NULL) ==
	    SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW)
			fprintf(f, "pgw_client_blocked{client=\"%s\"} %d\n", sqlite3_column_text(st, 0),
				sqlite3_column_int(st, 1));
	sqlite3_finalize(st);
	client_limits_metrics(f, db);
	fprintf(f,
		"# HELP pgw_agent_generation rulesets applied\n# TYPE pgw_agent_generation counter\n"
		"pgw_agent_generation %lld\n",
		db_query_int(db, "SELECT generation FROM agent_state", 0));
	fprintf(f,
		"# HELP pgw_agent_reconcile_duration_seconds last apply\n# TYPE pgw_agent_reconcile_duration_seconds "
		"gauge\n"
		"pgw_agent_reconcile_duration_seconds %.6f\n",
		db_query_int(db, "SELECT coalesce(duration_us, 0) FROM agent_state", 0) / 1e6);
	fprintf(f,
		"# HELP pgw_agent_errors_total failed applies\n# TYPE pgw_agent_errors_total counter\n"
		"pgw_agent_errors_total %lld\n",
		db_query_int(db, "SELECT errors_total FROM agent_state", 0));
	fprintf(
	    f,
	    "# HELP pgw_proxy_health_stale 1 when the proxy's last up result is older than it may be (healthd hung): "
	    "its clients are blocked\n# TYPE pgw_proxy_health_stale gauge\n");
	if (sqlite3_prepare_v2(db,
			       "SELECT p.id, p.name, h.stale FROM proxies p JOIN health_state h ON h.proxy_id = p.id "
			       "ORDER BY p.id",
			       -1, &st, NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW) {
			label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 1));
			fprintf(f, "pgw_proxy_health_stale{proxy=\"%s\",id=\"%lld\"} %d\n", lbl,
				(long long)sqlite3_column_int64(st, 0), sqlite3_column_int(st, 2));
		}
	sqlite3_finalize(st);
	fprintf(f, "# HELP pgw_agent_interface_present 1 when the interface the rules name exists (0: its clients are "
		   "blocked until it is back)\n# TYPE pgw_agent_interface_present gauge\n");
	if (sqlite3_prepare_v2(db,
			       "SELECT lan_iface, lan_iface_present, wan_iface, wan_iface_present FROM agent_state "
			       "WHERE id = 1 AND lan_iface != ''",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 0));
		fprintf(f, "pgw_agent_interface_present{role=\"lan\",iface=\"%s\"} %d\n", lbl,
			sqlite3_column_int(st, 1));
		label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 2));
		fprintf(f, "pgw_agent_interface_present{role=\"wan\",iface=\"%s\"} %d\n", lbl,
			sqlite3_column_int(st, 3));
	}
	sqlite3_finalize(st);
	fwd = fwdstats_scoped(fwdstats_load(cfg->run_dir, FWDSTATS_TIMEOUT_MS, 0), db, r->org);
	if (fwd) {
		fprintf(
		    f,
		    "# HELP pgw_forwarder_mappings_unread 1 while pgw-forwarder blocks every client because it has "
		    "read no mappings for too long (pgwctl status says how long)\n# TYPE pgw_forwarder_mappings_unread "
		    "gauge\npgw_forwarder_mappings_unread "
		    "%d\n",
		    json_is_true(json_object_get(fwd, "mappings_unread")));
		fprintf(f,
			"# HELP pgw_forwarder_active_connections relayed connections open now\n"
			"# TYPE pgw_forwarder_active_connections gauge\npgw_forwarder_active_connections %lld\n",
			(long long)json_integer_value(json_object_get(fwd, "active")));
		fprintf(f,
			"# HELP pgw_forwarder_connections_total accepted connections\n"
			"# TYPE pgw_forwarder_connections_total counter\npgw_forwarder_connections_total %lld\n",
			(long long)json_integer_value(json_object_get(fwd, "accepted")));
		fprintf(f,
			"# HELP pgw_forwarder_bytes_total relayed bytes\n# TYPE pgw_forwarder_bytes_total counter\n"
			"pgw_forwarder_bytes_total{direction=\"up\"} "
			"%lld\npgw_forwarder_bytes_total{direction=\"down\"} %lld\n",
			(long long)json_integer_value(json_object_get(fwd, "bytes_up")),
			(long long)json_integer_value(json_object_get(fwd, "bytes_down")));
		fprintf(f, "# HELP pgw_forwarder_closes_total connections ended, by reason\n# TYPE "
			   "pgw_forwarder_closes_total counter\n");
		{
			json_t *v;
			json_object_foreach(json_object_get(fwd, "closes"), k, v) fprintf(
			    f, "pgw_forwarder_closes_total{reason=\"%s\"} %lld\n", k, (long long)json_integer_value(v));
			fprintf(f,
				"# HELP pgw_forwarder_upstream_errors_total failed upstream connects and handshakes\n"
				"# TYPE pgw_forwarder_upstream_errors_total counter\n");
			json_object_foreach(json_object_get(fwd, "upstream_errors"), k, v)
			    fprintf(f, "pgw_forwarder_upstream_errors_total{kind=\"%s\"} %lld\n", k,
				    (long long)json_integer_value(v));
			fprintf(f,
				"# HELP pgw_forwarder_destination_failures_total connections a working proxy could not "
				"take to their destination (SOCKS5 reply, HTTP status to CONNECT, or \"succeeded\" "
				"then closed with nothing sent back)\n"
				"# TYPE pgw_forwarder_destination_failures_total counter\n");
			json_object_foreach(json_object_get(fwd, "destination_failures"), k, v)
			    fprintf(f, "pgw_forwarder_destination_failures_total{kind=\"%s\"} %lld\n", k,
				    (long long)json_integer_value(v));
			if (json_object_get(fwd, "destination_reports")) /* the gateway's: not in a scoped share */
				fprintf(
				    f,
				    "# HELP pgw_forwarder_destination_reports_total proxies reported to pgw-healthd "
				    "because destinations failed across the board\n"
				    "# TYPE pgw_forwarder_destination_reports_total counter\n"
				    "pgw_forwarder_destination_reports_total %lld\n",
				    (long long)json_integer_value(json_object_get(fwd, "destination_reports")));
			if (json_object_get(fwd, "upstream_sessions")) { /* the gateway's: not in a scoped share */
				json_t *us = json_object_get(fwd, "upstream_sessions");
				fprintf(
				    f,
				    "# HELP pgw_forwarder_upstream_sessions_ready sessions to proxies kept connected, "
				    "greeted and authenticated for the next client connection\n"
				    "# TYPE pgw_forwarder_upstream_sessions_ready gauge\n"
				    "pgw_forwarder_upstream_sessions_ready %lld\n"
				    "# HELP pgw_forwarder_upstream_sessions_total what became of sessions and "
				    "connections: used (a connection took a ready one), missed (none was ready: it "
				    "opened its own), stale (the one taken had been closed by the proxy: it opened its "
				    "own), retired (closed unused), closed_by_proxy, failed (to open)\n"
				    "# TYPE pgw_forwarder_upstream_sessions_total counter\n",
				    (long long)json_integer_value(json_object_get(us, "ready")));
				json_object_foreach(us, k, v) if (strcmp(k, "ready") != 0)
				    fprintf(f, "pgw_forwarder_upstream_sessions_total{event=\"%s\"} %lld\n", k,
					    (long long)json_integer_value(v));
				fprintf(
				    f,
				    "# HELP pgw_forwarder_early_data_total connections whose first bytes went to the "
				    "proxy with the request, ahead of its reply\n"
				    "# TYPE pgw_forwarder_early_data_total counter\n"
				    "pgw_forwarder_early_data_total %lld\n",
				    (long long)json_integer_value(json_object_get(fwd, "early_data")));
			}
			fprintf(
			    f,
			    "# HELP pgw_forwarder_client_connections_total relayed connections per client (mapping)\n"
			    "# TYPE pgw_forwarder_client_connections_total counter\n");
			json_object_foreach(json_object_get(fwd, "clients"), k, v)
			    fprintf(f, "pgw_forwarder_client_connections_total{client=\"%s\"} %lld\n", k,
				    (long long)json_integer_value(json_object_get(v, "connections")));
			fprintf(f, "# HELP pgw_forwarder_client_bytes_total relayed bytes per client (TCP, counted as "
				   "they flow)\n"
				   "# TYPE pgw_forwarder_client_bytes_total counter\n");
			json_object_foreach(json_object_get(fwd, "clients"), k, v)
			{
				fprintf(f, "pgw_forwarder_client_bytes_total{client=\"%s\",direction=\"up\"} %lld\n", k,
					(long long)json_integer_value(json_object_get(v, "bytes_up")));
				fprintf(f, "pgw_forwarder_client_bytes_total{client=\"%s\",direction=\"down\"} %lld\n",
					k, (long long)json_integer_value(json_object_get(v, "bytes_down")));
			}
		}
		dns_metrics(f, db, fwd);
		udp_metrics(f, fwd);
		json_decref(fwd);
	} else {
		dns_metrics(f, db, NULL);
	}
	fclose(f);
	ret = reply_text(r, 200, "text/plain; version=0.0.4", buf, len);
	free(buf);
	return ret;
}
