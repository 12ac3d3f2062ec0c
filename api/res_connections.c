/* res_connections.c - /api/v1/connections (issue 20): the forwarder's open TCP connections,
 * asked on demand over its control socket (fwdctl.h) and scoped to the caller's organisation
 * there; GET pages them (filters client= and proxy=, limit=, cursor=), DELETE /connections/{id}
 * and DELETE /connections?client=IP close them (admins, audited). */
#include "resources.h"

#include "fwdctl.h"
#include "log.h"
#include "parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_TIMEOUT_MS 3000

static const char *arg(struct req *r, const char *name)
{
	const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);

	return v && *v ? v : NULL;
}

/* Ask the forwarder; its JSON answer, or NULL with the reply sent. */
static json_t *ask(struct req *r, const char *line)
{
	char err[256], *out = NULL;
	size_t len;
	json_error_t je;
	json_t *j;
	int rc = fwdctl_call(r->api->cfg->run_dir, line, &out, &len, CTL_TIMEOUT_MS, err, sizeof(err));

	if (rc < 0) {
		log_warnx("%s", err);
		reply_error(r, 503, "forwarder_unavailable", "%s",
			    rc == -ENOENT || rc == -ECONNREFUSED ? "pgw-forwarder is not running (no control socket)"
								 : "pgw-forwarder did not answer");
		return NULL;
	}
	j = json_loadb(out, len, 0, &je);
	free(out);
	if (!json_is_object(j)) {
		json_decref(j);
		reply_error(r, 502, "bad_gateway", "pgw-forwarder's answer is not JSON");
		return NULL;
	}
	if (json_is_string(json_object_get(j, "error"))) {
		reply_error(r, 400, "bad_request", "%s", json_string_value(json_object_get(j, "error")));
		json_decref(j);
		return NULL;
	}
	return j;
}

/* " client=IP" (canonical) from the query's client, "" without one; -1 with a 400 sent. */
static int client_arg(struct req *r, char *out, size_t size, char canon[NET_IP_STR_MAX])
{
	const char *v = arg(r, "client");
	struct net_ip ip;

	out[0] = canon[0] = '\0';
	if (!v)
		return 0;
	if (net_ip_parse(v, &ip) < 0)
		return reply_error(r, 400, "bad_request", "client: '%.64s' is not an IP address", v), -1;
	net_ip_str(&ip, canon);
	snprintf(out, size, " client=%s", canon);
	return 0;
}

/* Names for the page: each connection's proxy_name and client_label (the caller's view). */
static void add_names(sqlite3 *db, json_t *conns)
{
	sqlite3_stmt *px = NULL, *mp = NULL;
	size_t i;
	json_t *c;

	if (sqlite3_prepare_v2(db, "SELECT name FROM proxies WHERE id = ?1", -1, &px, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT label FROM mappings WHERE client_ip = ?1", -1, &mp, NULL) != SQLITE_OK) {
		sqlite3_finalize(px);
		return;
	}
	json_array_foreach(conns, i, c)
	{
		sqlite3_bind_int64(px, 1, json_integer_value(json_object_get(c, "proxy_id")));
		sqlite3_bind_text(mp, 1, json_string_value(json_object_get(c, "client_ip")), -1, SQLITE_TRANSIENT);
		json_object_set_new(c, "proxy_name",
				    sqlite3_step(px) == SQLITE_ROW
					? json_string((const char *)sqlite3_column_text(px, 0))
					: json_null());
		json_object_set_new(c, "client_label",
				    sqlite3_step(mp) == SQLITE_ROW
					? json_string((const char *)sqlite3_column_text(mp, 0))
					: json_null());
		sqlite3_reset(px);
		sqlite3_reset(mp);
	}
	sqlite3_finalize(px);
	sqlite3_finalize(mp);
}

static int list(struct req *r)
{
	char line[FWDCTL_LINE_MAX], cl[96], canon[NET_IP_STR_MAX];
	const char *proxy = arg(r, "proxy"), *limit = arg(r, "limit"), *cursor = arg(r, "cursor");
	uint64_t p = 0, l = FWDCTL_PAGE_DEFAULT, c = 0;
	sqlite3 *db;
	json_t *j;

	if (!(db = read_only_start(r, NULL)))
		return MHD_YES;
	if (client_arg(r, cl, sizeof(cl), canon) < 0)
		return MHD_YES;
	if (proxy && parse_u64(proxy, 1, INT64_MAX, &p) < 0)
		return reply_error(r, 400, "bad_request", "proxy: a proxy id");
	if (limit && parse_u64(limit, 1, FWDCTL_PAGE_MAX, &l) < 0)
		return reply_error(r, 400, "bad_request", "limit: 1 to %d", FWDCTL_PAGE_MAX);
	if (cursor && parse_u64(cursor, 0, UINT64_MAX, &c) < 0)
		return reply_error(r, 400, "bad_request", "cursor: the next_cursor of the previous page");
	snprintf(line, sizeof(line), "conns org=%lld%s limit=%llu cursor=%llu", (long long)r->org, cl,
		 (unsigned long long)l, (unsigned long long)c);
	if (p)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), " proxy=%llu", (unsigned long long)p);
	strcat(line, "\n");
	if (!(j = ask(r, line)))
		return MHD_YES;
	add_names(db, json_object_get(j, "connections"));
	return reply_json(r, 200, j);
}

static int close_conns(struct req *r, const char *id_seg)
{
	char line[FWDCTL_LINE_MAX], cl[96], canon[NET_IP_STR_MAX], oid[NET_IP_STR_MAX];
	int64_t id = 0;
	json_t *j, *before = NULL;
	json_int_t n;

	if (auth_require(r, 1) < 0)
		return MHD_YES;
	if (id_seg) {
		if ((id = path_id(id_seg)) < 0)
			return reply_error(r, 404, "not_found", "no connection %.32s", id_seg);
		/* what it was, for the audit row (and 404 when it is not the caller's or not open) */
		snprintf(line, sizeof(line), "conns org=%lld id=%lld limit=1\n", (long long)r->org, (long long)id);
		if (!(j = ask(r, line)))
			return MHD_YES;
		before = json_incref(json_array_get(json_object_get(j, "connections"), 0));
		json_decref(j);
		if (!before)
			return reply_error(r, 404, "not_found", "no open connection %lld", (long long)id);
		r->audit_org = json_integer_value(json_object_get(before, "org_id"));
		snprintf(line, sizeof(line), "close org=%lld id=%lld\n", (long long)r->org, (long long)id);
		snprintf(oid, sizeof(oid), "%lld", (long long)id);
	} else {
		if (client_arg(r, cl, sizeof(cl), canon) < 0) {
			return MHD_YES;
		}
		if (!canon[0])
			return reply_error(r, 400, "bad_request",
					   "name the client (DELETE /api/v1/connections?client=IP) or one connection "
					   "(DELETE /api/v1/connections/{id})");
		snprintf(line, sizeof(line), "close org=%lld%s\n", (long long)r->org, cl);
		snprintf(oid, sizeof(oid), "%s", canon);
	}
	if (!(j = ask(r, line))) {
		json_decref(before);
		return MHD_YES;
	}
	n = json_integer_value(json_object_get(j, "closed"));
	if (id_seg && n == 0) { /* it ended between the two questions */
		json_decref(before);
		json_decref(j);
		return reply_error(r, 404, "not_found", "no open connection %lld", (long long)id);
	}
	api_audit(r, id_seg ? "connection.close" : "connection.close_client", id_seg ? "connection" : "client", oid,
		  before, j, "ok");
	json_decref(before);
	return reply_json(r, 200, j);
}

int res_connections(struct req *r, const char *const *seg, int nseg)
{
	if (nseg > 1)
		return reply_error(r, 404, "not_found", "no such resource");
	if (strcmp(r->method, "DELETE") == 0)
		return close_conns(r, nseg ? seg[0] : NULL);
	if (nseg == 1)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here (DELETE closes it)",
				   r->method);
	return list(r);
}
