/* resources.h - the API's resource handlers (one file per resource group) and their helpers. */
#ifndef API_RESOURCES_H
#define API_RESOURCES_H

#include "auth.h"
#include "http.h"
#include "net.h"
#include "notify.h"

/* seg: the path segments after the resource name (e.g. {"3", "check"} for /proxies/3/check). */
int res_proxies(struct req *r, const char *const *seg, int nseg);
int res_mappings(struct req *r, const char *const *seg, int nseg);
int res_health(struct req *r, const char *const *seg, int nseg);
int res_config(struct req *r, const char *const *seg, int nseg);
int res_status(struct req *r, const char *const *seg, int nseg);
int res_users(struct req *r, const char *const *seg, int nseg);
int res_audit(struct req *r, const char *const *seg, int nseg);
int res_mappings_export(struct req *r, sqlite3 *db);
int res_mappings_import(struct req *r, sqlite3 *db);
int res_healthz(struct req *r);
int res_metrics(struct req *r);

json_t *proxy_json(sqlite3 *db, int64_t id);
int reply_db_error(struct req *r, sqlite3 *db);
/* How long the health gate waits for healthd: every probe step may take health_timeout. */
unsigned gate_wait_ms(sqlite3 *db, const struct pgw_config *cfg);
/* A mapping's client_ip: IPv4 inside the LAN network (setting lan_cidr) or an IPv6 client
 * address (net_client_ip). 0 with the canonical text in canon, or -EINVAL and *why. */
int client_ip_check(sqlite3 *db, const struct pgw_config *cfg, const char *ip, char canon[NET_IP_STR_MAX],
		    const char **why);
int reply_gate_unavailable(struct req *r, int err);
/* The start of a read-only resource: signed in (an admin, when admin_only gives the reason for
 * the 403), GET only, the thread's DB. NULL when a reply has been sent. */
sqlite3 *read_only_start(struct req *r, const char *admin_only);
/* DELETE one row (sql: "DELETE FROM ... WHERE id = ?1"), audit it with before (stolen), notify
 * topic, 204. */
int reply_deleted(struct req *r, sqlite3 *db, const char *sql, int64_t id, const char *action, const char *kind,
		  json_t *before, unsigned topic);

#endif
