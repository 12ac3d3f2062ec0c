/* resources.h - the API's resource handlers (one file per resource group) and their helpers. */
#ifndef API_RESOURCES_H
#define API_RESOURCES_H

#include "auth.h"
#include "crud.h"
#include "http.h"
#include "net.h"
#include "notify.h"
#include "proxybody.h"

/* seg: the path segments after the resource name (e.g. {"3", "check"} for /proxies/3/check). */
int res_proxies(struct req *r, const char *const *seg, int nseg);
int res_mappings(struct req *r, const char *const *seg, int nseg);
int res_health(struct req *r, const char *const *seg, int nseg);
int res_clients(struct req *r, const char *const *seg, int nseg);
int res_devices(struct req *r, const char *const *seg, int nseg);
int res_connections(struct req *r, const char *const *seg, int nseg);
int res_webhooks(struct req *r, const char *const *seg, int nseg);
/* A client as a webhook tells of it: address, mapping, proxy, and why it is blocked (reason,
 * reason_detail; none while active). NULL when not mapped. */
json_t *client_alert(sqlite3 *db, const char *ip);
/* A client's (ip) or a proxy's (ip NULL, proxy_id) usage history, as GET .../usage answers it. */
int reply_usage(struct req *r, sqlite3 *db, const char *ip, int64_t proxy_id);
/* The DHCP leases of the setting dhcp_leases_file (none or unreadable: empty). */
struct leases;
void api_leases(sqlite3 *db, const struct pgw_config *cfg, struct leases *ls);
int res_config(struct req *r, const char *const *seg, int nseg);
int res_status(struct req *r, const char *const *seg, int nseg);
/* Which daemons run ({"api": true, "agent": ..., "forwarder": ..., "healthd": ...}): /status's
 * "daemons", and the live "daemons" event (feed.c). */
json_t *api_daemons(const char *run_dir);
int res_users(struct req *r, const char *const *seg, int nseg);
int res_audit(struct req *r, const char *const *seg, int nseg);
/* Under the write transaction: user id's memberships become list ([{"id": org, "role": ...}];
 * replace: all of them; else one is added or changed), and users.role its summary: admin for a
 * superadmin or an admin of some organisation. 0 or -1. */
int users_write_memberships(sqlite3 *db, int64_t id, json_t *list, int replace);
int res_mappings_export(struct req *r, sqlite3 *db);
/* A CSV download: header, then a line per row of sql (row() writes it; NULL: every column as a
 * field), as filename. */
int reply_csv_export(struct req *r, sqlite3 *db, const char *header, const char *sql, const char *filename,
		     void (*row)(FILE *f, sqlite3_stmt *st));
/* A CSV body as an attachment named filename. */
int reply_csv_download(struct req *r, const char *csv, size_t len, const char *filename);
int res_mappings_import(struct req *r, sqlite3 *db);
int res_healthz(struct req *r);
int res_metrics(struct req *r);
int res_apikeys(struct req *r, const char *const *seg, int nseg);
int res_orgs(struct req *r, const char *const *seg, int nseg);
/* 1 when ip lies in one of the networks of the organisation a new row of this request goes to
 * (ORG_OWNER), 0 when not, -1 on a database error. */
int org_holds_ip(sqlite3 *db, const struct net_ip *ip);
/* At start: organisation 1 of a single-organisation install owns the LAN network (lan_cidr,
 * stored or configured) when it has no IPv4 network yet. 0 or -1. */
int orgs_seed(sqlite3 *db, const struct pgw_config *cfg);
/* A bearer token that is an API key ("pgwk_<id>_<secret>"): 1 with r->user set (name "key:NAME",
 * the key's role), 0 when it is a key but not a valid one, -1 when it is not a key at all. */
int apikey_auth(struct req *r, sqlite3 *db, const char *token);
/* The key may still be used (an open event stream asks). */
int apikey_alive(sqlite3 *db, int64_t id);

json_t *proxy_json(sqlite3 *db, int64_t id);
/* What proxy_body_check refuses: lan filled from the settings, or NULL when proxy_allow_local. */
const struct net_lan *proxy_refuse(sqlite3 *db, const struct pgw_config *cfg, struct net_lan *lan);
int res_proxies_export(struct req *r, sqlite3 *db);
int res_proxies_import(struct req *r, sqlite3 *db);

/* The health row, one definition for GET /health and the live "health" event: run
 * HEALTH_ROW_SQL (add a WHERE or ORDER BY), then health_row() on each row. */
#define HEALTH_ROW_SQL                                                                                                 \
	"SELECT proxy_id, effective_status, latency_ms, exit_ip, checked_at, last_error, connect_ms, handshake_ms, "   \
	"first_byte_ms, pipelining, stale, fresh_until, dns_status, coalesce(dns_error, ''), dns_latency_ms, udp, "    \
	"coalesce(udp_error, ''), early_data, probed_addr FROM health_state"
json_t *health_row(sqlite3_stmt *st);

#endif
