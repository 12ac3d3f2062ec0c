/* res_misc.c - /health, /config, /status, /healthz, /metrics, and helpers shared by resources. */
#include "resources.h"

#include "db.h"
#include "password.h"
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int reply_db_error(struct req *r, sqlite3 *db)
{
	return reply_error(r, 500, "internal", "database error: %s", sqlite3_errmsg(db));
}

unsigned gate_wait_ms(sqlite3 *db, const struct pgw_config *cfg)
{
	return settings_get_uint(db, "health_timeout", cfg->health_timeout_s) * 3000u + 1000u;
}

int reply_gate_unavailable(struct req *r, int err)
{
	if (err == -ENOENT)
		return reply_error(r, 503, "unavailable", "pgw-healthd is not running: the proxy cannot be checked");
	return reply_error(r, 503, "unavailable", "pgw-healthd did not answer in time");
}

static json_t *nullable_int(sqlite3_stmt *st, int col)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL ? json_null() : json_integer(sqlite3_column_int64(st, col));
}

int res_health(struct req *r, const char *const *seg, int nseg)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	json_t *items = json_array();
	int64_t id;
	long limit = 100;

	if (!(db = read_only_start(r, NULL)))
		goto done;
	if (nseg == 0) {
		if (sqlite3_prepare_v2(db, "SELECT proxy_id, effective_status, latency_ms, exit_ip, checked_at, last_error, "
					   "connect_ms, handshake_ms, first_byte_ms, pipelining, stale, fresh_until FROM health_state "
					   "ORDER BY proxy_id",
				       -1, &st, NULL) != SQLITE_OK) {
			reply_db_error(r, db);
			goto done;
		}
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(items, json_pack("{s:I, s:s, s:o, s:s, s:o, s:s, s:o, s:o, s:o, s:b, s:b, s:o}", "proxy_id",
						       (json_int_t)sqlite3_column_int64(st, 0), "status",
						       sqlite3_column_text(st, 1), "latency_ms", nullable_int(st, 2),
						       "exit_ip", sqlite3_column_text(st, 3), "checked_at",
						       nullable_int(st, 4), "last_error", sqlite3_column_text(st, 5),
						       "connect_ms", nullable_int(st, 6), "handshake_ms",
						       nullable_int(st, 7), "first_byte_ms", nullable_int(st, 8),
						       "pipelining", sqlite3_column_int(st, 9), "stale",
						       sqlite3_column_int(st, 10), "fresh_until", nullable_int(st, 11)));
		sqlite3_finalize(st);
		reply_json(r, 200, json_pack("{s:I, s:O}", "total", (json_int_t)json_array_size(items), "items", items));
		goto done;
	}
	if (nseg != 2 || strcmp(seg[1], "history") != 0 || (id = path_id(seg[0])) < 0) {
		reply_error(r, 404, "not_found", "no such resource");
		goto done;
	}
	{
		const char *l = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
		if (l && ((limit = path_id(l)) < 1 || limit > 1000)) {
			reply_error(r, 400, "bad_request", "'limit' must be from 1 to 1000");
			goto done;
		}
	}
	{
		json_t *p = proxy_json(db, id);
		if (!p) {
			reply_error(r, 404, "not_found", "no proxy %lld", (long long)id);
			goto done;
		}
		json_decref(p);
	}
	if (sqlite3_prepare_v2(db, "SELECT checked_at, status, latency_ms, exit_ip, error FROM health_history "
				   "WHERE proxy_id = ?1 ORDER BY id DESC LIMIT ?2", -1, &st, NULL) != SQLITE_OK) {
		reply_db_error(r, db);
		goto done;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, limit);
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(items, json_pack("{s:I, s:s, s:o, s:s, s:s}", "checked_at",
					       (json_int_t)sqlite3_column_int64(st, 0), "status", sqlite3_column_text(st, 1),
					       "latency_ms", nullable_int(st, 2), "exit_ip", sqlite3_column_text(st, 3),
					       "error", sqlite3_column_text(st, 4)));
	sqlite3_finalize(st);
	reply_json(r, 200, json_pack("{s:I, s:O}", "total", (json_int_t)json_array_size(items), "items", items));
done:
	json_decref(items);
	return MHD_YES;
}

static json_t *all_settings(sqlite3 *db)
{
	json_t *o = json_object();
	char v[SETTINGS_VALUE_MAX];

	for (const struct settings_key *k = settings_keys(); k->key; k++)
		if (settings_get(db, k->key, v, sizeof(v)) == 0)
			json_object_set_new(o, k->key, json_string(v));
	return o;
}

int res_config(struct req *r, const char *const *seg, int nseg)
{
	int get = strcmp(r->method, "GET") == 0;
	const char *key;
	json_t *v, *before;
	char err[600];
	sqlite3 *db;

	(void)seg;
	if (nseg != 0)
		return reply_error(r, 404, "not_found", "no such resource");
	if (!get && strcmp(r->method, "PUT") != 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	if (auth_require(r, !get) < 0)
		return MHD_YES;
	if (!(db = api_db(r->api)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	if (get)
		return reply_json(r, 200, all_settings(db));
	if (req_parse_json(r) < 0)
		return MHD_YES;
	if (!json_is_object(r->body) || json_object_size(r->body) == 0)
		return reply_error(r, 400, "bad_request", "send an object of settings to change, e.g. {\"health_interval\": \"30\"}");
	/* validate everything first: one bad value changes nothing */
	json_object_foreach(r->body, key, v) {
		if (!json_is_string(v))
			return reply_error(r, 400, "bad_request", "'%.64s' must be a string", key);
		if (settings_validate(key, json_string_value(v), err, sizeof(err)) < 0)
			return reply_error(r, 400, "bad_request", "%s", err);
	}
	{ /* interfaces and the LAN network against the live system */
		const char *keys[8], *vals[8];
		size_t n = 0;
		json_object_foreach(r->body, key, v) {
			if (n < 8 && (strcmp(key, "lan_iface") == 0 || strcmp(key, "wan_iface") == 0 || strcmp(key, "lan_cidr") == 0)) {
				keys[n] = key;
				vals[n++] = json_string_value(v);
			}
		}
		if (settings_check_system(db, keys, vals, n, err, sizeof(err)) < 0)
			return reply_error(r, 400, "bad_request", "%s", err);
	}
	before = all_settings(db);
	if (db_begin(db) < 0) {
		json_decref(before);
		return reply_db_error(r, db);
	}
	json_object_foreach(r->body, key, v) {
		if (settings_set(db, key, json_string_value(v), err, sizeof(err)) < 0) {
			db_rollback(db);
			json_decref(before);
			return reply_error(r, 500, "internal", "%s", err);
		}
	}
	if (db_commit(db) < 0) {
		db_rollback(db);
		json_decref(before);
		return reply_db_error(r, db);
	}
	api_audit(r, "settings.update", "settings", "", before, r->body, "ok");
	json_decref(before);
	api_notify(r, TOPIC_SETTINGS);
	return reply_json(r, 200, all_settings(db));
}

/* A daemon is running when its notify socket accepts a connect (a stale file refuses). */
static int daemon_alive(const char *run_dir, const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock", run_dir, name);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static json_t *forwarder_stats(const char *run_dir)
{
	char path[200];

	snprintf(path, sizeof(path), "%s/forwarder.stats.json", run_dir);
	return json_load_file(path, 0, NULL);
}

static json_t *agent_state(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	json_t *j = json_object();

	if (sqlite3_prepare_v2(db, "SELECT generation, applied_at, duration_us, kind, active_count, blocked_count, "
				   "last_error, error_at, errors_total, lan_iface, wan_iface, lan_iface_present, "
				   "wan_iface_present, iface_error FROM agent_state WHERE id = 1", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		json_decref(j);
		j = json_pack("{s:I, s:o, s:o, s:s, s:I, s:I, s:s, s:o, s:I, s:s, s:s, s:b, s:b, s:s}", "generation",
			      (json_int_t)sqlite3_column_int64(st, 0), "applied_at", nullable_int(st, 1), "duration_us",
			      nullable_int(st, 2), "kind", sqlite3_column_text(st, 3), "active_count",
			      (json_int_t)sqlite3_column_int64(st, 4), "blocked_count", (json_int_t)sqlite3_column_int64(st, 5),
			      "last_error", sqlite3_column_text(st, 6), "error_at", nullable_int(st, 7), "errors_total",
			      (json_int_t)sqlite3_column_int64(st, 8), "lan_iface", sqlite3_column_text(st, 9), "wan_iface",
			      sqlite3_column_text(st, 10), "lan_iface_present", sqlite3_column_int(st, 11), "wan_iface_present",
			      sqlite3_column_int(st, 12), "iface_error", sqlite3_column_text(st, 13));
	}
	sqlite3_finalize(st);
	return j;
}

sqlite3 *read_only_start(struct req *r, const char *admin_only)
{
	sqlite3 *db;

	if (auth_require(r, 0) < 0)
		return NULL;
	if (strcmp(r->method, "GET") != 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method), NULL;
	if (admin_only && strcmp(r->user.role, "admin") != 0)
		return reply_error(r, 403, "forbidden", "%s", admin_only), NULL;
	if (!(db = api_db(r->api)))
		reply_error(r, 503, "unavailable", "database unavailable");
	return db;
}

int reply_deleted(struct req *r, sqlite3 *db, const char *sql, int64_t id, const char *action, const char *kind,
		  json_t *before, unsigned topic)
{
	sqlite3_stmt *st = NULL;
	char oid[24];

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		json_decref(before);
		return reply_db_error(r, db);
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_step(st);
	sqlite3_finalize(st);
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, action, kind, oid, before, NULL, "ok");
	json_decref(before);
	api_notify(r, topic);
	return reply_empty(r, 204);
}

int res_status(struct req *r, const char *const *seg, int nseg)
{
	const char *rd = r->api->cfg->run_dir;
	json_t *fwd;
	sqlite3 *db;

	(void)seg;
	if (nseg != 0)
		return reply_error(r, 404, "not_found", "no such resource");
	if (!(db = read_only_start(r, NULL)))
		return MHD_YES;
	fwd = forwarder_stats(rd);
	return reply_json(
		r, 200,
		json_pack("{s:{s:b, s:b, s:b, s:b}, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "daemons", "api", 1, "agent",
			  daemon_alive(rd, "agent"), "forwarder", daemon_alive(rd, "forwarder"), "healthd",
			  daemon_alive(rd, "healthd"), "agent", agent_state(db), "forwarder", fwd ? fwd : json_null(),
			  "counts", "proxies", (json_int_t)db_query_int(db, "SELECT count(*) FROM proxies", 0), "proxies_up",
			  (json_int_t)db_query_int(db, "SELECT count(*) FROM health_state WHERE effective_status = 'up'", 0), "proxies_down",
			  (json_int_t)db_query_int(db, "SELECT count(*) FROM health_state WHERE effective_status = 'down'", 0), "mappings",
			  (json_int_t)db_query_int(db, "SELECT count(*) FROM mappings", 0), "clients_active",
			  (json_int_t)db_query_int(db, "SELECT active_count FROM agent_state", 0), "clients_blocked",
			  (json_int_t)db_query_int(db, "SELECT blocked_count FROM agent_state", 0)));
}

int res_healthz(struct req *r)
{
	sqlite3 *db = api_db(r->api);

	if (!db || db_query_int(db, "SELECT 1", 0) != 1)
		return reply_json(r, 503, json_pack("{s:s}", "status", "database unavailable"));
	return reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* Prometheus label values: backslash, quote and newline escaped. */
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
	out[n] = '\0';
}

int res_metrics(struct req *r)
{
	const struct pgw_config *cfg = r->api->cfg;
	char *buf = NULL, lbl[200];
	size_t len = 0;
	FILE *f;
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	json_t *fwd;
	const char *k;
	int ret;

	if (cfg->metrics_token[0]) {
		const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
		if (!h || strncasecmp(h, "Bearer ", 7) != 0 ||
		    !password_ct_equal(h + 7, strlen(h + 7), cfg->metrics_token, strlen(cfg->metrics_token)))
			return reply_error(r, 401, "unauthorized", "/metrics needs Authorization: Bearer <PGW_METRICS_TOKEN>");
	}
	if (!(db = api_db(r->api)) || !(f = open_memstream(&buf, &len)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	fprintf(f, "# HELP pgw_build_info pgw version\n# TYPE pgw_build_info gauge\npgw_build_info{version=\"%s\"} 1\n",
		PGW_VERSION);
	fprintf(f, "# HELP pgw_proxy_up 1 when the proxy passed its last health check and that result is still fresh\n"
		   "# TYPE pgw_proxy_up gauge\n");
	fprintf(f, "# HELP pgw_proxy_latency_seconds last probe latency\n# TYPE pgw_proxy_latency_seconds gauge\n");
	if (sqlite3_prepare_v2(db, "SELECT p.id, p.name, h.effective_status, h.latency_ms FROM proxies p JOIN health_state h ON "
				   "h.proxy_id = p.id ORDER BY p.id", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 1));
			fprintf(f, "pgw_proxy_up{proxy=\"%s\",id=\"%lld\"} %d\n", lbl, (long long)sqlite3_column_int64(st, 0),
				strcmp((const char *)sqlite3_column_text(st, 2), "up") == 0);
			if (sqlite3_column_type(st, 3) != SQLITE_NULL)
				fprintf(f, "pgw_proxy_latency_seconds{proxy=\"%s\",id=\"%lld\"} %.3f\n", lbl,
					(long long)sqlite3_column_int64(st, 0), sqlite3_column_int(st, 3) / 1000.0);
		}
	}
	sqlite3_finalize(st);
	/* the exit IP as an info series: a change of exit IP is a new series (alert on changes()) */
	fprintf(f, "# HELP pgw_proxy_exit_ip_info the proxy's current exit address\n# TYPE pgw_proxy_exit_ip_info gauge\n");
	if (sqlite3_prepare_v2(db, "SELECT p.id, p.name, h.exit_ip FROM proxies p JOIN proxy_health h ON h.proxy_id = p.id "
				   "WHERE h.exit_ip != '' ORDER BY p.id", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 1));
			fprintf(f, "pgw_proxy_exit_ip_info{proxy=\"%s\",id=\"%lld\",exit_ip=\"%s\"} 1\n", lbl,
				(long long)sqlite3_column_int64(st, 0), sqlite3_column_text(st, 2));
		}
	}
	sqlite3_finalize(st);
	fprintf(f, "# HELP pgw_proxy_exit_ip_changes_total exit IP changes seen in the kept health history\n"
		   "# TYPE pgw_proxy_exit_ip_changes_total gauge\n");
	if (sqlite3_prepare_v2(db, "SELECT p.id, p.name, (SELECT count(*) FROM (SELECT exit_ip, lag(exit_ip) OVER (ORDER BY id) "
				   "AS prev FROM health_history WHERE proxy_id = p.id AND status = 'up') WHERE prev IS NOT NULL "
				   "AND prev != exit_ip) FROM proxies p ORDER BY p.id", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 1));
			fprintf(f, "pgw_proxy_exit_ip_changes_total{proxy=\"%s\",id=\"%lld\"} %lld\n", lbl,
				(long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 2));
		}
	}
	sqlite3_finalize(st);
	fprintf(f, "# HELP pgw_client_blocked 1 when a mapped client is blocked\n# TYPE pgw_client_blocked gauge\n");
	if (sqlite3_prepare_v2(db, "SELECT client_ip, NOT active FROM mapping_state ORDER BY id", -1, &st, NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW)
			fprintf(f, "pgw_client_blocked{client=\"%s\"} %d\n", sqlite3_column_text(st, 0),
				sqlite3_column_int(st, 1));
	sqlite3_finalize(st);
	fprintf(f, "# HELP pgw_agent_generation rulesets applied\n# TYPE pgw_agent_generation counter\n"
		   "pgw_agent_generation %lld\n", db_query_int(db, "SELECT generation FROM agent_state", 0));
	fprintf(f, "# HELP pgw_agent_reconcile_duration_seconds last apply\n# TYPE pgw_agent_reconcile_duration_seconds gauge\n"
		   "pgw_agent_reconcile_duration_seconds %.6f\n", db_query_int(db, "SELECT coalesce(duration_us, 0) FROM agent_state", 0) / 1e6);
	fprintf(f, "# HELP pgw_agent_errors_total failed applies\n# TYPE pgw_agent_errors_total counter\n"
		   "pgw_agent_errors_total %lld\n", db_query_int(db, "SELECT errors_total FROM agent_state", 0));
	fprintf(f, "# HELP pgw_proxy_health_stale 1 when the proxy's last up result is older than it may be (healthd hung): "
		   "its clients are blocked\n# TYPE pgw_proxy_health_stale gauge\n");
	if (sqlite3_prepare_v2(db, "SELECT p.id, p.name, h.stale FROM proxies p JOIN health_state h ON h.proxy_id = p.id "
				   "ORDER BY p.id", -1, &st, NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW) {
			label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 1));
			fprintf(f, "pgw_proxy_health_stale{proxy=\"%s\",id=\"%lld\"} %d\n", lbl,
				(long long)sqlite3_column_int64(st, 0), sqlite3_column_int(st, 2));
		}
	sqlite3_finalize(st);
	fprintf(f, "# HELP pgw_agent_interface_present 1 when the interface the rules name exists (0: its clients are "
		   "blocked until it is back)\n# TYPE pgw_agent_interface_present gauge\n");
	if (sqlite3_prepare_v2(db, "SELECT lan_iface, lan_iface_present, wan_iface, wan_iface_present FROM agent_state "
				   "WHERE id = 1 AND lan_iface != ''", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 0));
		fprintf(f, "pgw_agent_interface_present{role=\"lan\",iface=\"%s\"} %d\n", lbl, sqlite3_column_int(st, 1));
		label(lbl, sizeof(lbl), (const char *)sqlite3_column_text(st, 2));
		fprintf(f, "pgw_agent_interface_present{role=\"wan\",iface=\"%s\"} %d\n", lbl, sqlite3_column_int(st, 3));
	}
	sqlite3_finalize(st);
	fwd = forwarder_stats(cfg->run_dir);
	if (fwd) {
		fprintf(f, "# HELP pgw_forwarder_active_connections relayed connections open now\n"
			   "# TYPE pgw_forwarder_active_connections gauge\npgw_forwarder_active_connections %lld\n",
			(long long)json_integer_value(json_object_get(fwd, "active")));
		fprintf(f, "# HELP pgw_forwarder_connections_total accepted connections\n"
			   "# TYPE pgw_forwarder_connections_total counter\npgw_forwarder_connections_total %lld\n",
			(long long)json_integer_value(json_object_get(fwd, "accepted")));
		fprintf(f, "# HELP pgw_forwarder_bytes_total relayed bytes\n# TYPE pgw_forwarder_bytes_total counter\n"
			   "pgw_forwarder_bytes_total{direction=\"up\"} %lld\npgw_forwarder_bytes_total{direction=\"down\"} %lld\n",
			(long long)json_integer_value(json_object_get(fwd, "bytes_up")),
			(long long)json_integer_value(json_object_get(fwd, "bytes_down")));
		fprintf(f, "# HELP pgw_forwarder_closes_total connections ended, by reason\n# TYPE pgw_forwarder_closes_total counter\n");
		{
			json_t *v;
			json_object_foreach(json_object_get(fwd, "closes"), k, v)
				fprintf(f, "pgw_forwarder_closes_total{reason=\"%s\"} %lld\n", k, (long long)json_integer_value(v));
			fprintf(f, "# HELP pgw_forwarder_upstream_errors_total failed upstream connects and handshakes\n"
				   "# TYPE pgw_forwarder_upstream_errors_total counter\n");
			json_object_foreach(json_object_get(fwd, "upstream_errors"), k, v)
				fprintf(f, "pgw_forwarder_upstream_errors_total{kind=\"%s\"} %lld\n", k,
					(long long)json_integer_value(v));
			fprintf(f, "# HELP pgw_forwarder_client_connections_total relayed connections per client (mapping)\n"
				   "# TYPE pgw_forwarder_client_connections_total counter\n");
			json_object_foreach(json_object_get(fwd, "clients"), k, v)
				fprintf(f, "pgw_forwarder_client_connections_total{client=\"%s\"} %lld\n", k,
					(long long)json_integer_value(json_object_get(v, "connections")));
			fprintf(f, "# HELP pgw_forwarder_client_bytes_total relayed bytes per client (counted when a connection ends)\n"
				   "# TYPE pgw_forwarder_client_bytes_total counter\n");
			json_object_foreach(json_object_get(fwd, "clients"), k, v) {
				fprintf(f, "pgw_forwarder_client_bytes_total{client=\"%s\",direction=\"up\"} %lld\n", k,
					(long long)json_integer_value(json_object_get(v, "bytes_up")));
				fprintf(f, "pgw_forwarder_client_bytes_total{client=\"%s\",direction=\"down\"} %lld\n", k,
					(long long)json_integer_value(json_object_get(v, "bytes_down")));
			}
		}
		json_decref(fwd);
	}
	fclose(f);
	ret = reply_text(r, 200, "text/plain; version=0.0.4", buf, len);
	free(buf);
	return ret;
}
