/* res_clients.c - /api/v1/clients and /clients/{ip}: every mapped client with its state and,
 * when blocked, why (issue 19); its forwarder counters since the forwarder started. */
#include "resources.h"

#include "db.h"
#include "leases.h"
#include "quota.h"
#include "net.h"
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The one answer to "why is this client blocked", from the mapping and its primary's health:
 * mapping_disabled, proxy_disabled, exit_ip_mismatch, proxy_down, health_stale (healthd's last
 * word is too old), health_unknown (not checked yet); NULL while active. A failover mapping is
 * blocked only when no proxy of its list is usable: the primary's reason says the first of it. */
static const char *blocked_reason(int active, int enabled, int quota_exceeded, int proxy_enabled, const char *status,
				  int stale, const char *last_error)
{
	if (active)
		return NULL;
	if (!enabled)
		return "mapping_disabled";
	if (quota_exceeded)
		return "quota_exceeded";
	if (!proxy_enabled)
		return "proxy_disabled";
	if (status && strcmp(status, "down") == 0)
		return last_error && strncmp(last_error, "exit_ip_mismatch", 16) == 0 ? "exit_ip_mismatch"
										      : "proxy_down";
	if (stale)
		return "health_stale";
	if (status && strcmp(status, "up") == 0)
		return "no_proxy_up"; /* up and fresh, yet not carrying: its failover list's others */
	return "health_unknown";
}

#define CLIENT_SQL                                                                                                     \
	"SELECT s.id, s.client_ip, s.label, s.enabled, s.active, s.on_down, s.proxy_id, s.carrying_proxy_id, "         \
	"p.name, p.enabled, h.status, coalesce(h.stale, 0), coalesce(h.last_error, ''), m.mac, (SELECT "               \
	"json_group_array(json_object('mac', x.mac, 'packets', x.packets, 'first_seen', x.first_seen, 'last_seen', "   \
	"x.last_seen)) FROM (SELECT * FROM main.mac_spoof x WHERE x.client_ip = s.client_ip ORDER BY x.last_seen "     \
	"DESC "                                                                                                        \
	"LIMIT 16) x), m.down_kbit, m.up_kbit, m.max_conns, m.new_conns_per_s, m.quota_exceeded FROM mapping_state s " \
	"JOIN "                                                                                                        \
	"main.mappings m ON m.id = s.id JOIN proxies p ON p.id = s.proxy_id "                                          \
	"LEFT JOIN health_state h ON h.proxy_id = p.id "

static json_t *client_row(sqlite3 *db, const struct pgw_config *cfg, sqlite3_stmt *st, json_t *fwd,
			  const struct leases *ls)
{
	json_t *refused = json_loads((const char *)sqlite3_column_text(st, 14), 0, NULL);
	const struct lease *l = leases_find(ls, (const char *)sqlite3_column_text(st, 1));
	const char *ip = (const char *)sqlite3_column_text(st, 1), *status = (const char *)sqlite3_column_text(st, 10);
	int active = sqlite3_column_int(st, 4);
	const char *why =
	    blocked_reason(active, sqlite3_column_int(st, 3), sqlite3_column_int(st, 19), sqlite3_column_int(st, 9),
			   status, sqlite3_column_int(st, 11), (const char *)sqlite3_column_text(st, 12));
	json_t *quota = quota_json(db, cfg, (const char *)sqlite3_column_text(st, 1), (int64_t)time(NULL));
	json_t *c = json_object_get(json_object_get(fwd, "clients"), ip);

	return json_pack(
	    "{s:s, s:I, s:s, s:b, s:s, s:s?, s:s?, s:s, s:I, s:s, s:o, s:s, s:s?, s:o, "
	    "s:{s:I, s:I, s:I, s:I}, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
	    "client_ip", ip, "mapping_id", (json_int_t)sqlite3_column_int64(st, 0), "label", sqlite3_column_text(st, 2),
	    "enabled", sqlite3_column_int(st, 3), "state", active ? "active" : "blocked", "reason", why,
	    "reason_detail", why && strcmp(why, "proxy_down") == 0 ? (const char *)sqlite3_column_text(st, 12) : NULL,
	    "on_down", sqlite3_column_text(st, 5), "proxy_id", (json_int_t)sqlite3_column_int64(st, 6), "proxy",
	    sqlite3_column_text(st, 8), "carrying_proxy_id", json_nullable_int(st, 7), "mac",
	    sqlite3_column_text(st, 13), "hostname", l ? l->hostname : NULL, "mac_refused",
	    refused ? refused : json_array(), "limits", "down_kbit", (json_int_t)sqlite3_column_int64(st, 15),
	    "up_kbit", (json_int_t)sqlite3_column_int64(st, 16), "max_conns", (json_int_t)sqlite3_column_int64(st, 17),
	    "new_conns_per_s", (json_int_t)sqlite3_column_int64(st, 18), "quota", quota ? quota : json_null(), "usage",
	    "connections", (json_int_t)json_integer_value(json_object_get(c, "connections")), "active",
	    (json_int_t)json_integer_value(json_object_get(c, "active")), "failures",
	    (json_int_t)json_integer_value(json_object_get(c, "failures")), "bytes_up",
	    (json_int_t)json_integer_value(json_object_get(c, "bytes_up")), "bytes_down",
	    (json_int_t)json_integer_value(json_object_get(c, "bytes_down")), "refused",
	    (json_int_t)json_integer_value(json_object_get(c, "refused")));
}

json_t *client_alert(sqlite3 *db, const char *ip)
{
	sqlite3_stmt *st = NULL;
	json_t *j = NULL;

	if (sqlite3_prepare_v2(db, CLIENT_SQL "WHERE s.client_ip = ?1", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *why =
		    blocked_reason(sqlite3_column_int(st, 4), sqlite3_column_int(st, 3), sqlite3_column_int(st, 19),
				   sqlite3_column_int(st, 9), (const char *)sqlite3_column_text(st, 10),
				   sqlite3_column_int(st, 11), (const char *)sqlite3_column_text(st, 12));
		j = json_pack("{s:s, s:I, s:s, s:I, s:s, s:s?, s:s?}", "client_ip", sqlite3_column_text(st, 1),
			      "mapping_id", (json_int_t)sqlite3_column_int64(st, 0), "label",
			      sqlite3_column_text(st, 2), "proxy_id", (json_int_t)sqlite3_column_int64(st, 6), "proxy",
			      sqlite3_column_text(st, 8), "reason", why, "reason_detail",
			      why && strcmp(why, "proxy_down") == 0 ? (const char *)sqlite3_column_text(st, 12) : NULL);
	}
	sqlite3_finalize(st);
	return j;
}

/* The leases of the file the setting dhcp_leases_file names (none: empty). A file that cannot be
 * read gives no names, with a warning at most once a minute. */
void api_leases(sqlite3 *db, const struct pgw_config *cfg, struct leases *ls)
{
	static time_t warned;
	char path[SETTINGS_VALUE_MAX], err[320];

	memset(ls, 0, sizeof(*ls));
	settings_value(db, cfg, "dhcp_leases_file", path, sizeof(path));
	if (!*path || leases_load(path, ls, err, sizeof(err)) == 0)
		return;
	if (time(NULL) - warned >= 60) {
		warned = time(NULL);
		log_warnx("dhcp_leases_file: %s (no device names)", err);
	}
}

/* The address is mapped by the caller's organisation (the scoped view). */
static int client_visible(sqlite3 *db, const char *ip)
{
	sqlite3_stmt *st = NULL;
	int found = 0;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM mapping_state WHERE client_ip = ?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
		found = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	return found;
}

/* A query argument as a non-negative integer: 0 (absent: *v untouched), or -1 (not one). */
static int arg_int(struct req *r, const char *name, int64_t *v)
{
	const char *s = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);

	if (!s)
		return 0;
	if (strcmp(s, "0") == 0)
		return *v = 0, 0;
	return (*v = path_id(s)) < 0 ? -1 : 0;
}

/* /clients/{ip}/usage and /proxies/{id}/usage ?from=&to=&step=[&format=csv]: the usage history
 * of a client (ip; migration 0020) or of a proxy (proxy_id; 0024), one row per bucket that has
 * any, oldest first. The caller has checked the caller may see it. */
int reply_usage(struct req *r, sqlite3 *db, const char *ip, int64_t proxy_id)
{
	const char *fmt = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "format");
	int64_t to = (int64_t)time(NULL), from, step = 0, tot[3] = {0, 0, 0};
	sqlite3_stmt *st = NULL;
	json_t *items;
	char *buf = NULL;
	size_t len = 0;
	FILE *csv = NULL;
	int ret;

	if (arg_int(r, "to", &to) < 0 || (from = to > 86400 ? to - 86400 : 0, arg_int(r, "from", &from)) < 0 ||
	    from < 0 || arg_int(r, "step", &step) < 0)
		return reply_error(r, 400, "bad_request", "'from', 'to' and 'step' are unix times and seconds");
	if (from > to)
		return reply_error(r, 400, "bad_request", "'from' is after 'to'");
	if (step == 0) { /* the finest still kept back to 'from' (minutes a day, hours 31 days) */
		int64_t age = (int64_t)time(NULL) - from;
		step = age <= 86400 ? 60 : age <= 31 * 86400 ? 3600 : 86400;
	}
	if (step != 60 && step != 3600 && step != 86400)
		return reply_error(r, 400, "bad_request", "'step' must be 60, 3600 or 86400");
	if (fmt && strcmp(fmt, "csv") != 0 && strcmp(fmt, "json") != 0)
		return reply_error(r, 400, "bad_request", "'format' must be json or csv");
	if (sqlite3_prepare_v2(
		db,
		ip ? "SELECT t, bytes_up, bytes_down, connections FROM main.client_usage WHERE client_ip = "
		     "?1 AND step = ?2 AND t >= ?3 / ?2 * ?2 AND t <= ?4 ORDER BY t"
		   : "SELECT t, bytes_up, bytes_down, connections FROM main.proxy_usage WHERE proxy_id = ?1 "
		     "AND step = ?2 AND t >= ?3 / ?2 * ?2 AND t <= ?4 ORDER BY t",
		-1, &st, NULL) != SQLITE_OK)
		return reply_db_error(r, db);
	if (ip)
		sqlite3_bind_text(st, 1, ip, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, proxy_id);
	sqlite3_bind_int64(st, 2, step);
	sqlite3_bind_int64(st, 3, from);
	sqlite3_bind_int64(st, 4, to);
	items = json_array();
	if (fmt && strcmp(fmt, "csv") == 0 && (csv = open_memstream(&buf, &len)))
		fputs("t,bytes_up,bytes_down,connections\r\n", csv);
	while (sqlite3_step(st) == SQLITE_ROW) {
		for (int i = 0; i < 3; i++)
			tot[i] += sqlite3_column_int64(st, i + 1);
		if (csv)
			fprintf(csv, "%lld,%lld,%lld,%lld\r\n", (long long)sqlite3_column_int64(st, 0),
				(long long)sqlite3_column_int64(st, 1), (long long)sqlite3_column_int64(st, 2),
				(long long)sqlite3_column_int64(st, 3));
		else
			json_array_append_new(items, json_pack("{s:I, s:I, s:I, s:I}", "t",
							       (json_int_t)sqlite3_column_int64(st, 0), "bytes_up",
							       (json_int_t)sqlite3_column_int64(st, 1), "bytes_down",
							       (json_int_t)sqlite3_column_int64(st, 2), "connections",
							       (json_int_t)sqlite3_column_int64(st, 3)));
	}
	sqlite3_finalize(st);
	if (csv) {
		char name[80];
		fclose(csv);
		json_decref(items);
		if (ip)
			snprintf(name, sizeof(name), "usage-%s.csv", ip);
		else
			snprintf(name, sizeof(name), "usage-proxy-%lld.csv", (long long)proxy_id);
		ret = reply_csv_download(r, buf, len, name);
		free(buf);
		return ret;
	}
	return reply_json(r, 200,
			  json_pack("{s:o, s:I, s:I, s:I, s:o, s:{s:I, s:I, s:I}}", ip ? "client_ip" : "proxy_id",
				    ip ? json_string(ip) : json_integer(proxy_id), "step", step, "from", from, "to", to,
				    "items", items, "total", "bytes_up", tot[0], "bytes_down", tot[1], "connections",
				    tot[2]));
}

/* POST /clients/{ip}/quota/grant {"bytes": N}: N more this period; POST .../quota/reset: nothing
 * used this period (and nothing granted). Either may end the client's block at once. */
static int quota_action(struct req *r, const char *ipstr, const char *what)
{
#define GRANT_MAX 1000000000000000LL /* 1 PB: a grant, and all of a period's grants together */
	static const struct jfield grant_fields[] = {{"bytes", J_INT, 1, 1, GRANT_MAX}};
	char canon[NET_IP_STR_MAX], err[256], oid[64];
	struct net_ip ip;
	sqlite3 *db;
	json_t *before, *after, *ev;
	int grant = strcmp(what, "grant") == 0, n;
	int64_t now_ms = (int64_t)time(NULL) * 1000;
	sqlite3_stmt *st = NULL;

	if (!grant && strcmp(what, "reset") != 0)
		return reply_error(r, 404, "not_found", "no such resource");
	if (auth_require(r, 1) < 0)
		return MHD_YES;
	if (strcmp(r->method, "POST") != 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	if (grant && req_parse_json(r) < 0)
		return MHD_YES;
	if (grant && json_check(r->body, grant_fields, 1, 0, err, sizeof(err)) < 0)
		return reply_error(r, 400, "bad_request", "%s", err);
	if (!(db = api_db(r->api)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	if (net_ip_parse(ipstr, &ip) < 0)
		return reply_error(r, 404, "not_found", "no client %.64s", ipstr);
	net_ip_str(&ip, canon);
	/* the caller's organisation's client, with a quota */
	if (db_begin(db) < 0)
		return reply_error(r, 503, "unavailable", "the database is busy; try again");
	before = quota_json(db, r->api->cfg, canon, now_ms / 1000);
	if (!before || !client_visible(db, canon)) {
		db_rollback(db);
		json_decref(before);
		return client_visible(db, canon)
			   ? reply_error(r, 409, "conflict", "client %s has no quota (set quota_bytes on its mapping)",
					 canon)
			   : reply_error(r, 404, "not_found", "no client %s", canon);
	}
	/* bring the row to this period first, then change it */
	ev = json_array();
	n = quota_apply(db, r->api->cfg, NULL, now_ms, ev);
	if (n >= 0 &&
	    sqlite3_prepare_v2(
		db,
		grant
		    ? "UPDATE main.client_quota SET granted = granted + ?2 WHERE client_ip = ?1 AND granted + ?2 <= ?3"
		    : "UPDATE main.client_quota SET used = 0, granted = 0, warned = 0 WHERE client_ip = ?1",
		-1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
		if (grant) {
			sqlite3_bind_int64(st, 2, json_integer_value(json_object_get(r->body, "bytes")));
			sqlite3_bind_int64(st, 3, GRANT_MAX);
		}
		n = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
		if (n == 0 && grant && sqlite3_changes(db) == 0) { /* beyond: int64 would overflow in the end */
			sqlite3_finalize(st);
			db_rollback(db);
			json_decref(ev);
			json_decref(before);
			return reply_error(r, 409, "conflict",
					   "the grants of this period would exceed %lld bytes; reset the quota instead",
					   GRANT_MAX);
		}
	} else {
		n = -1;
	}
	sqlite3_finalize(st);
	if (n == 0)
		n = quota_apply(db, r->api->cfg, NULL, now_ms, ev); /* under its limit now: unblocked */
	if (n < 0 || db_commit(db) < 0) {
		db_rollback(db);
		json_decref(ev);
		json_decref(before);
		return reply_db_error(r, db);
	}
	quota_publish(ev);
	after = quota_json(db, r->api->cfg, canon, now_ms / 1000);
	snprintf(oid, sizeof(oid), "%s", canon);
	api_audit(r, grant ? "client.quota_grant" : "client.quota_reset", "client", oid, before,
		  r->body ? r->body : NULL, "ok");
	json_decref(before);
	api_notify(r, TOPIC_MAPPINGS);
	return reply_json(r, 200, after);
}

int res_clients(struct req *r, const char *const *seg, int nseg)
{
	char canon[NET_IP_STR_MAX];
	struct net_ip ip;
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	json_t *items, *fwd;
	struct leases ls;

	if (nseg == 3 && strcmp(seg[1], "quota") == 0)
		return quota_action(r, seg[0], seg[2]);
	if (nseg > 2 || (nseg == 2 && strcmp(seg[1], "usage") != 0))
		return reply_error(r, 404, "not_found", "no such resource");
	if (!(db = read_only_start(r, NULL)))
		return MHD_YES;
	/* not an address: no such client, as for an address nobody (or another organisation) maps */
	if (nseg >= 1 && net_ip_parse(seg[0], &ip) < 0)
		return reply_error(r, 404, "not_found", "no client %.64s", seg[0]);
	if (sqlite3_prepare_v2(db, nseg ? CLIENT_SQL "WHERE s.client_ip = ?1" : CLIENT_SQL "ORDER BY s.id", -1, &st,
			       NULL) != SQLITE_OK)
		return reply_db_error(r, db);
	if (nseg) {
		net_ip_str(&ip, canon); /* as stored: one spelling per client */
		sqlite3_bind_text(st, 1, canon, -1, SQLITE_TRANSIENT);
	}
	/* the history (nseg 2) needs only the row's existence: no ask to the forwarder */
	fwd =
	    nseg == 2 ? NULL : fwdstats_scoped(fwdstats_load(r->api->cfg->run_dir, FWDSTATS_TIMEOUT_MS, 0), db, r->org);
	api_leases(db, r->api->cfg, &ls);
	items = json_array();
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(items, client_row(db, r->api->cfg, st, fwd, &ls));
	sqlite3_finalize(st);
	leases_free(&ls);
	json_decref(fwd);
	if (nseg >= 1) {
		json_t *one = json_incref(json_array_get(items, 0));
		json_decref(items);
		if (one && nseg == 2) /* the client is one the caller may see: its history */
			return json_decref(one), reply_usage(r, db, canon, 0);
		return one ? reply_json(r, 200, one) : reply_error(r, 404, "not_found", "no client %s", canon);
	}
	return reply_json(r, 200, json_pack("{s:I, s:o}", "total", (json_int_t)json_array_size(items), "items", items));
}
