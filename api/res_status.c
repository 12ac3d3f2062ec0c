/* res_status.c - /api/v1/status (daemons, what the agent applied, forwarder totals, counts: an
 * organisation's own clients and proxies, every one's for a superadmin) and /healthz. */
#include "resources.h"

#include "db.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A daemon is running when its notify socket accepts a connect (a stale file refuses). */
static int daemon_alive(const char *run_dir, const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock", run_dir, name);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

json_t *api_daemons(const char *run_dir)
{
	return json_pack("{s:b, s:b, s:b, s:b}", "api", 1, "agent", daemon_alive(run_dir, "agent"), "forwarder",
			 daemon_alive(run_dir, "forwarder"), "healthd", daemon_alive(run_dir, "healthd"));
}

static json_t *agent_state(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	json_t *j = json_object();

	if (sqlite3_prepare_v2(db,
			       "SELECT generation, applied_at, duration_us, kind, active_count, blocked_count, "
			       "last_error, error_at, errors_total, lan_iface, wan_iface, lan_iface_present, "
			       "wan_iface_present, iface_error FROM agent_state WHERE id = 1",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		json_decref(j);
		j = json_pack(
		    "{s:I, s:o, s:o, s:s, s:I, s:I, s:s, s:o, s:I, s:s, s:s, s:b, s:b, s:s}", "generation",
		    (json_int_t)sqlite3_column_int64(st, 0), "applied_at", json_nullable_int(st, 1), "duration_us",
		    json_nullable_int(st, 2), "kind", sqlite3_column_text(st, 3), "active_count",
		    (json_int_t)sqlite3_column_int64(st, 4), "blocked_count", (json_int_t)sqlite3_column_int64(st, 5),
		    "last_error", sqlite3_column_text(st, 6), "error_at", json_nullable_int(st, 7), "errors_total",
		    (json_int_t)sqlite3_column_int64(st, 8), "lan_iface", sqlite3_column_text(st, 9), "wan_iface",
		    sqlite3_column_text(st, 10), "lan_iface_present", sqlite3_column_int(st, 11), "wan_iface_present",
		    sqlite3_column_int(st, 12), "iface_error", sqlite3_column_text(st, 13));
	}
	sqlite3_finalize(st);
	return j;
}

int res_status(struct req *r, const char *const *seg, int nseg)
{
	const char *rd = r->api->cfg->run_dir;
	json_t *fwd, *agent;
	long long active, blocked;
	sqlite3 *db;

	(void)seg;
	if (nseg != 0)
		return reply_error(r, 404, "not_found", "no such resource");
	if (!(db = read_only_start(r, NULL)))
		return MHD_YES;
	fwd = fwdstats_scoped(fwdstats_load(rd, FWDSTATS_TIMEOUT_MS, 0), db, r->org);
	agent = agent_state(db);
	if (r->org != API_ORG_ALL) { /* one organisation's clients, not the whole kernel's */
		active = db_query_int(db, "SELECT count(*) FROM mapping_state WHERE active", 0);
		blocked = db_query_int(db, "SELECT count(*) FROM mapping_state WHERE NOT active", 0);
		json_object_set_new(agent, "active_count", json_integer(active));
		json_object_set_new(agent, "blocked_count", json_integer(blocked));
	}
	return reply_json(
	    r, 200,
	    json_pack(
		"{s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "daemons", api_daemons(rd), "agent", agent,
		"forwarder", fwd ? fwd : json_null(), "counts", "proxies",
		(json_int_t)db_query_int(db, "SELECT count(*) FROM proxies", 0), "proxies_up",
		(json_int_t)db_query_int(db, "SELECT count(*) FROM health_state WHERE effective_status = 'up'", 0),
		"proxies_down",
		(json_int_t)db_query_int(db, "SELECT count(*) FROM health_state WHERE effective_status = 'down'", 0),
		"mappings", (json_int_t)db_query_int(db, "SELECT count(*) FROM mappings", 0), "clients_active",
		json_integer_value(json_object_get(agent, "active_count")), "clients_blocked",
		json_integer_value(json_object_get(agent, "blocked_count"))));
}

int res_healthz(struct req *r)
{
	sqlite3 *db;

	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	db = api_db(r->api);
	if (!db || db_query_int(db, "SELECT 1", 0) != 1)
		return reply_json(r, 503, json_pack("{s:s}", "status", "database unavailable"));
	return reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}
