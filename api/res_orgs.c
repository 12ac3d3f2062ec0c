/* res_orgs.c - /api/v1/orgs: organisations, their LAN networks and their own settings
 * (/orgs/{id}/settings: the health URL; docs/design/TENANTS.md).
 * Superadmins create, change and delete them; a member reads the ones they belong to (another
 * one answers 404 like a missing one). A client address belongs to the organisation whose
 * network holds it: networks never overlap, IPv4 ones lie inside lan_cidr, and a change that
 * would leave one of the organisation's mappings outside its networks is refused. */
#include "resources.h"

#include "db.h"
#include "settings.h"

#include <stdio.h>
#include <string.h>

#define ORG_NETWORKS_MAX 64

/* Two networks share an address (one holds the other's first address). */
static int prefix_overlap(const struct net_prefix *a, const struct net_prefix *b)
{
	return net_prefix_contains(a, &b->addr) || net_prefix_contains(b, &a->addr);
}

static json_t *org_json(sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	json_t *j = NULL, *nets;

	if (sqlite3_prepare_v2(db, "SELECT id, name, created_at FROM main.orgs WHERE id = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		j = json_pack("{s:I, s:s, s:[], s:I}", "id", (json_int_t)sqlite3_column_int64(st, 0), "name",
			      sqlite3_column_text(st, 1), "networks", "created_at",
			      (json_int_t)sqlite3_column_int64(st, 2));
	sqlite3_finalize(st);
	if (!j)
		return NULL;
	nets = json_object_get(j, "networks");
	if (sqlite3_prepare_v2(db,
			       "SELECT cidr FROM main.org_networks WHERE org_id = ?1 ORDER BY cidr GLOB '*:*', cidr",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(nets, json_string((const char *)sqlite3_column_text(st, 0)));
	}
	sqlite3_finalize(st);
	return j;
}

/* The organisation is one the caller may read: any for a superadmin, the key's own for an API
 * key, one they belong to for a user. */
static int visible(struct req *r, sqlite3 *db, int64_t id)
{
	if (r->user.key_id && !r->user.superadmin)
		return id == r->org;
	return r->user.superadmin ? auth_org_exists(db, id) : auth_member(db, r->user.id, id, 0);
}

static int list(struct req *r, sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	json_t *items = json_array();

	if (sqlite3_prepare_v2(db, "SELECT id FROM main.orgs ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
		json_decref(items);
		return reply_db_error(r, db);
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		json_t *o;
		if (visible(r, db, id) && (o = org_json(db, id)))
			json_array_append_new(items, o);
	}
	sqlite3_finalize(st);
	return reply_json(r, 200, json_pack("{s:I, s:o}", "total", (json_int_t)json_array_size(items), "items", items));
}

/* 'networks' of a body: a list of distinct, non-overlapping CIDRs (IPv4 inside lan_cidr). n
 * set; 0, or -1 with the reason in err. */
static int parse_networks(struct req *r, sqlite3 *db, json_t *arr, struct net_prefix *p, int *n, char *err,
			  size_t errlen)
{
	char lan_s[SETTINGS_VALUE_MAX], a[NET_PREFIX_STR_MAX], b[NET_PREFIX_STR_MAX];
	struct net_prefix lan;
	size_t i;
	json_t *v;

	if (!json_is_array(arr) || json_array_size(arr) > ORG_NETWORKS_MAX) {
		snprintf(err, errlen, "'networks' must be a list of at most %d CIDRs", ORG_NETWORKS_MAX);
		return -1;
	}
	settings_str(db, r->api->cfg, "lan_cidr", lan_s, sizeof(lan_s));
	if (net_prefix_parse(lan_s, &lan) < 0) {
		snprintf(err, errlen, "lan_cidr (%.64s) is not a network: fix the gateway's settings first", lan_s);
		return -1;
	}
	*n = 0;
	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(v);
		if (!s || net_prefix_parse(s, &p[*n]) < 0) {
			snprintf(err, errlen,
				 "'networks'[%zu] is not a CIDR with its host bits zero (a.b.c.d/n or v6/n)", i);
			return -1;
		}
		net_prefix_str(&p[*n], a);
		if (net_ip_is4(&p[*n].addr) && (p[*n].len < lan.len || !net_prefix_contains(&lan, &p[*n].addr))) {
			snprintf(err, errlen, "'networks': %s is not inside the LAN network lan_cidr %.64s", a, lan_s);
			return -1;
		}
		for (int k = 0; k < *n; k++)
			if (prefix_overlap(&p[k], &p[*n])) {
				net_prefix_str(&p[k], b);
				snprintf(err, errlen, "'networks': %s overlaps %s", a, b);
				return -1;
			}
		(*n)++;
	}
	return 0;
}

/* Under the write transaction: the networks p[n] may become organisation id's (id 0: a new
 * one). 0, or the HTTP status with the reason in err: 409 when one overlaps another
 * organisation's network, or one of id's mappings would be left outside. */
static int networks_fit(sqlite3 *db, int64_t id, const struct net_prefix *p, int n, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char a[NET_PREFIX_STR_MAX];
	int status = 0, rc = SQLITE_DONE;

	if (sqlite3_prepare_v2(db,
			       "SELECT n.cidr, o.name FROM main.org_networks n JOIN main.orgs o ON o.id = n.org_id "
			       "WHERE n.org_id != ?1",
			       -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_int64(st, 1, id);
	while (!status && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct net_prefix q;
		if (net_prefix_parse((const char *)sqlite3_column_text(st, 0), &q) < 0) {
			snprintf(err, errlen, "organisation '%s' has a network that is not one (%s): fix it first",
				 (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 0));
			status = 409;
			break;
		}
		for (int k = 0; k < n && !status; k++)
			if (prefix_overlap(&p[k], &q)) {
				net_prefix_str(&p[k], a);
				snprintf(err, errlen, "%s overlaps %s of organisation '%s'", a,
					 (const char *)sqlite3_column_text(st, 0),
					 (const char *)sqlite3_column_text(st, 1));
				status = 409;
			}
	}
	sqlite3_finalize(st);
	if (!status && rc != SQLITE_DONE)
		goto dberr;
	if (status)
		return status;
	/* every mapping stays in its own organisation's networks: this one's inside the new ones,
	 * no other one's inside them (one made by hand, or before organisations) */
	if (sqlite3_prepare_v2(db, "SELECT client_ip, org_id = ?1 FROM main.mappings ORDER BY id", -1, &st, NULL) !=
	    SQLITE_OK)
		goto dberr;
	sqlite3_bind_int64(st, 1, id);
	while (!status && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ip_s = (const char *)sqlite3_column_text(st, 0);
		int ours = sqlite3_column_int(st, 1), in = 0;
		struct net_ip ip;
		if (net_ip_parse(ip_s, &ip) < 0)
			continue; /* not an address: no network holds it */
		for (int k = 0; k < n && !in; k++)
			in = net_prefix_contains(&p[k], &ip);
		if (ours && !in) {
			snprintf(err, errlen,
				 "the mapping of %s would be outside the organisation's networks: move or "
				 "delete it first",
				 ip_s);
			status = 409;
		} else if (!ours && in) {
			snprintf(err, errlen, "%s is mapped by another organisation: move or delete that mapping first",
				 ip_s);
			status = 409;
		}
	}
	sqlite3_finalize(st);
	if (!status && rc != SQLITE_DONE)
		goto dberr;
	return status;
dberr:
	snprintf(err, errlen, "database error: %s", sqlite3_errmsg(db));
	return 500;
}

static int set_networks(sqlite3 *db, int64_t id, const struct net_prefix *p, int n)
{
	sqlite3_stmt *st = NULL;
	char s[NET_PREFIX_STR_MAX];
	int rc = SQLITE_DONE;

	if (sqlite3_prepare_v2(db, "DELETE FROM main.org_networks WHERE org_id = ?1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || sqlite3_prepare_v2(db, "INSERT INTO main.org_networks (org_id, cidr) VALUES (?1, ?2)",
						    -1, &st, NULL) != SQLITE_OK)
		return -1;
	for (int k = 0; k < n && rc == SQLITE_DONE; k++) {
		net_prefix_str(&p[k], s);
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, s, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* POST (id < 0), PUT (every field) or PATCH (the fields given). */
static int save(struct req *r, sqlite3 *db, int64_t id, int partial)
{
	static const struct jfield f[] = {{"name", J_NAME, 1, 1, 64}, {"networks", J_ARRAY, 0, 0, ORG_NETWORKS_MAX}};
	struct net_prefix p[ORG_NETWORKS_MAX];
	json_t *before = NULL, *after, *nets;
	const char *name;
	char err[320], oid[24];
	sqlite3_stmt *st = NULL;
	int n = 0, status, rc, have_nets;

	if (req_parse_json(r) < 0)
		return MHD_YES;
	if (id > 0 && !(before = org_json(db, id)))
		return reply_error(r, 404, "not_found", "no organisation %lld", (long long)id);
	if (json_check(r->body, f, 2, partial, err, sizeof(err)) < 0) {
		json_decref(before);
		return reply_error(r, 400, "bad_request", "%s", err);
	}
	name = json_string_value(json_object_get(r->body, "name"));
	nets = json_object_get(r->body, "networks");
	if (!nets && id < 0)
		nets = json_array(); /* a new one may start without networks (it maps no client yet) */
	else
		json_incref(nets);
	if (nets && parse_networks(r, db, nets, p, &n, err, sizeof(err)) < 0) {
		json_decref(nets);
		json_decref(before);
		return reply_error(r, 400, "bad_request", "%s", err);
	}
	have_nets = nets || !partial; /* PUT replaces the list: none given, none kept */
	json_decref(nets);
	if (db_begin(db) < 0) {
		json_decref(before);
		return reply_error(r, 503, "unavailable", "the database is busy; try again");
	}
	if (have_nets && (status = networks_fit(db, id > 0 ? id : 0, p, n, err, sizeof(err)))) {
		db_rollback(db);
		json_decref(before);
		return reply_error(r, status, status == 409 ? "conflict" : "internal", "%s", err);
	}
	rc = sqlite3_prepare_v2(db,
				id < 0 ? "INSERT INTO main.orgs (name) VALUES (?1)"
				       : "UPDATE main.orgs SET name = coalesce(?1, name) WHERE id = ?2",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		if (name)
			sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, id);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		int unique = sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE;
		rc = unique ? reply_error(r, 409, "conflict", "an organisation named '%s' exists", name)
			    : reply_db_error(r, db);
		db_rollback(db);
		json_decref(before);
		return rc;
	}
	if (id < 0)
		id = sqlite3_last_insert_rowid(db);
	if (have_nets && set_networks(db, id, p, n) < 0) {
		rc = reply_db_error(r, db);
		db_rollback(db);
		json_decref(before);
		return rc;
	}
	if (db_commit(db) < 0) {
		db_rollback(db);
		json_decref(before);
		return reply_error(r, 503, "unavailable", "the database is busy; try again");
	}
	after = org_json(db, id);
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, before ? "org.update" : "org.create", "org", oid, before, after, "ok");
	status = before ? 200 : 201;
	json_decref(before);
	api_notify(r, TOPIC_USERS);
	return reply_json(r, status, after);
}

/* DELETE: only an empty organisation (no proxies, no mappings), never organisation 1, which
 * holds what is written without one (pgwctl, scripts on the DB). Its API keys go with it. */
static int del(struct req *r, sqlite3 *db, int64_t id)
{
	json_t *before = org_json(db, id);
	sqlite3_stmt *st = NULL;
	long long owned;
	char oid[24];
	int rc;

	if (!before)
		return reply_error(r, 404, "not_found", "no organisation %lld", (long long)id);
	if (id == 1) {
		json_decref(before);
		return reply_error(r, 409, "conflict",
				   "organisation 1 cannot be deleted: it holds what is written without one");
	}
	if (db_begin(db) < 0) {
		json_decref(before);
		return reply_error(r, 503, "unavailable", "the database is busy; try again");
	}
	if (sqlite3_prepare_v2(db,
			       "SELECT (SELECT count(*) FROM main.proxies WHERE org_id = ?1) + (SELECT count(*) FROM "
			       "main.mappings WHERE org_id = ?1)",
			       -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_int64(st, 1, id);
	owned = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	if (owned != 0) {
		db_rollback(db);
		json_decref(before);
		return owned < 0 ? reply_db_error(r, db)
				 : reply_error(r, 409, "conflict",
					       "the organisation still owns proxies or mappings: delete them first");
	}
	if (sqlite3_prepare_v2(db, "DELETE FROM main.api_keys WHERE org_id = ?1", -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE ||
	    sqlite3_prepare_v2(db, "DELETE FROM main.orgs WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || db_commit(db) < 0)
		goto dberr;
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	api_audit(r, "org.delete", "org", oid, before, NULL, "ok");
	json_decref(before);
	api_notify(r, TOPIC_USERS);
	return reply_empty(r, 204);
dberr:
	rc = reply_db_error(r, db);
	db_rollback(db);
	json_decref(before);
	return rc;
}

/* The caller may change organisation id's own settings: a superadmin, an admin of it, or an
 * admin key made in it. */
static int org_admin(struct req *r, sqlite3 *db, int64_t id)
{
	if (r->user.superadmin && strcmp(r->user.role, "admin") == 0)
		return 1;
	if (r->user.key_id)
		return id == r->org && strcmp(r->user.role, "admin") == 0;
	return auth_member(db, r->user.id, id, 1);
}

/* The settings an organisation may set for itself (org_settings), null where the gateway's apply. */
static const char *const org_keys[] = {"health_url", "dns_upstream"};
#define N_ORG_KEYS (sizeof(org_keys) / sizeof(org_keys[0]))

static json_t *org_settings_json(struct req *r, sqlite3 *db, int64_t id)
{
	json_t *own = json_object(), *gw = json_object();
	char v[SETTINGS_VALUE_MAX];
	sqlite3_stmt *st = NULL;

	for (size_t i = 0; i < N_ORG_KEYS; i++) {
		json_object_set_new(own, org_keys[i], json_null());
		settings_str(db, r->api->cfg, org_keys[i], v, sizeof(v));
		json_object_set_new(gw, org_keys[i], json_string(v));
	}
	if (sqlite3_prepare_v2(db, "SELECT key, value FROM main.org_settings WHERE org_id = ?1", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW)
			json_object_set_new(own, (const char *)sqlite3_column_text(st, 0),
					    json_string((const char *)sqlite3_column_text(st, 1)));
	}
	sqlite3_finalize(st);
	json_object_set_new(own, "gateway", gw);
	return own;
}

/* Under the write transaction: ORG_DNS_UPSTREAMS_MAX other organisations have resolvers of their
 * own already (pgw-forwarder holds that many lists): 1, else 0; -1 on a database error. */
static int dns_lists_full(sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st = NULL;
	long long n = -1;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM main.org_settings WHERE key = 'dns_upstream' AND org_id != ?1",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return n < 0 ? -1 : n >= ORG_DNS_UPSTREAMS_MAX;
}

/* PUT /orgs/{id}/settings: {key: value or null (the gateway's again)}; all or nothing. */
static int put_org_settings(struct req *r, sqlite3 *db, int64_t id)
{
	json_t *before, *v;
	const char *key;
	char err[600], oid[24];
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_DONE;

	if (!json_is_object(r->body) || json_object_size(r->body) == 0)
		return reply_error(r, 400, "bad_request", "send an object of settings, e.g. {\"health_url\": null}");
	json_object_foreach(r->body, key, v)
	{
		size_t i;
		for (i = 0; i < N_ORG_KEYS && strcmp(org_keys[i], key) != 0; i++)
			;
		if (i == N_ORG_KEYS)
			return reply_error(r, 400, "bad_request", "'%.64s' is not a setting an organisation sets", key);
		if (!json_is_null(v) && !json_is_string(v))
			return reply_error(r, 400, "bad_request", "'%s' must be a string, or null for the gateway's",
					   key);
		if (json_is_string(v) && settings_validate(key, json_string_value(v), err, sizeof(err)) < 0)
			return reply_error(r, 400, "bad_request", "%s", err);
	}
	before = org_settings_json(r, db, id);
	if (db_begin(db) < 0) {
		json_decref(before);
		return reply_error(r, 503, "unavailable", "the database is busy; try again");
	}
	if (json_is_string(json_object_get(r->body, "dns_upstream")) && (rc = dns_lists_full(db, id)) != 0) {
		db_rollback(db);
		json_decref(before);
		return rc < 0 ? reply_db_error(r, db)
			      : reply_error(r, 409, "conflict", "at most %d organisations have resolvers of their own",
					    ORG_DNS_UPSTREAMS_MAX);
	}
	rc = SQLITE_DONE;
	json_object_foreach(r->body, key, v)
	{
		if (rc != SQLITE_DONE)
			break;
		rc = sqlite3_prepare_v2(db,
					json_is_null(v)
					    ? "DELETE FROM main.org_settings WHERE org_id = ?1 AND key = ?2"
					    : "INSERT INTO main.org_settings (org_id, key, value) VALUES (?1, ?2, "
					      "?3) ON CONFLICT (org_id, key) DO UPDATE SET value = excluded.value",
					-1, &st, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, id);
			sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
			if (!json_is_null(v))
				sqlite3_bind_text(st, 3, json_string_value(v), -1, SQLITE_STATIC);
			rc = sqlite3_step(st);
		}
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_DONE || db_commit(db) < 0) {
		rc = reply_db_error(r, db);
		db_rollback(db);
		json_decref(before);
		return rc;
	}
	snprintf(oid, sizeof(oid), "%lld", (long long)id);
	r->audit_org = id; /* the organisation's own business: its admins see it */
	api_audit(r, "org.settings", "org", oid, before, r->body, "ok");
	json_decref(before);
	/* pgw-healthd and pgw-forwarder reload; not "settings": the gateway's did not change, and
	 * the other organisations' dashboards are not to hear of this one's */
	api_notify(r, TOPIC_PROXIES);
	return reply_json(r, 200, org_settings_json(r, db, id));
}

/* /orgs/{id}/settings: members read, the organisation's admins (and superadmins) change. */
static int org_settings(struct req *r, sqlite3 *db, int64_t id)
{
	int get = strcmp(r->method, "GET") == 0;

	if (!get && strcmp(r->method, "PUT") != 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here (GET, PUT)", r->method);
	if (!get && req_parse_json(r) < 0)
		return MHD_YES;
	if (!visible(r, db, id))
		return reply_error(r, 404, "not_found", "no organisation %lld", (long long)id);
	if (get)
		return reply_json(r, 200, org_settings_json(r, db, id));
	if (!org_admin(r, db, id))
		return reply_error(r, 403, "forbidden", "only the organisation's admins change its settings");
	return put_org_settings(r, db, id);
}

int res_orgs(struct req *r, const char *const *seg, int nseg)
{
	int get = strcmp(r->method, "GET") == 0;
	sqlite3 *db;
	int64_t id = -1;

	if (auth_require(r, !get) < 0)
		return MHD_YES;
	if (!(db = api_db(r->api)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	if (nseg == 2 && strcmp(seg[1], "settings") == 0 && (id = path_id(seg[0])) > 0)
		return org_settings(r, db, id);
	if (nseg > 1 || (nseg == 1 && (id = path_id(seg[0])) < 0))
		return reply_error(r, 404, "not_found", "no such organisation");
	if (!get && ((nseg == 0) != (strcmp(r->method, "POST") == 0) ||
		     (strcmp(r->method, "POST") != 0 && strcmp(r->method, "PUT") != 0 &&
		      strcmp(r->method, "PATCH") != 0 && strcmp(r->method, "DELETE") != 0)))
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	/* the request's own faults first, then whether the organisation is there for the caller */
	if (!get && strcmp(r->method, "DELETE") != 0 && req_parse_json(r) < 0)
		return MHD_YES;
	if (nseg == 1 && !visible(r, db, id)) /* another one is missing, whatever the method */
		return reply_error(r, 404, "not_found", "no organisation %lld", (long long)id);
	if (get) {
		json_t *o;
		if (nseg == 0)
			return list(r, db);
		return (o = org_json(db, id)) ? reply_json(r, 200, o)
					      : reply_error(r, 404, "not_found", "no organisation %lld", (long long)id);
	}
	if (!r->user.superadmin || strcmp(r->user.role, "admin") != 0)
		return reply_error(r, 403, "forbidden", "only superadmins manage organisations");
	if (strcmp(r->method, "DELETE") == 0)
		return del(r, db, id);
	return save(r, db, nseg == 0 ? -1 : id, strcmp(r->method, "PATCH") == 0);
}

int org_holds_ip(sqlite3 *db, const struct net_ip *ip)
{
	sqlite3_stmt *st = NULL;
	int in = 0;

	if (sqlite3_prepare_v2(db, "SELECT cidr FROM main.org_networks WHERE org_id = " ORG_OWNER, -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	while (!in && sqlite3_step(st) == SQLITE_ROW) {
		struct net_prefix p;
		in = net_prefix_parse((const char *)sqlite3_column_text(st, 0), &p) == 0 && net_prefix_contains(&p, ip);
	}
	sqlite3_finalize(st);
	return in;
}

int orgs_seed(sqlite3 *db, const struct pgw_config *cfg)
{
	char lan[SETTINGS_VALUE_MAX];
	struct net_prefix p;
	sqlite3_stmt *st = NULL;
	int rc;

	settings_str(db, cfg, "lan_cidr", lan, sizeof(lan));
	if (net_prefix_parse(lan, &p) < 0 || !net_ip_is4(&p.addr))
		return 0; /* nothing to give; mappings are refused until a superadmin sets networks */
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO main.org_networks (org_id, cidr) SELECT 1, ?1 WHERE (SELECT count(*) FROM "
			       "main.orgs) = 1 AND EXISTS (SELECT 1 FROM main.orgs WHERE id = 1) AND NOT EXISTS "
			       "(SELECT 1 FROM main.org_networks WHERE cidr NOT GLOB '*:*')",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, lan, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}
