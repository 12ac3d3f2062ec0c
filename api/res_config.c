/* res_config.c - /api/v1/config: the runtime settings, validated all at once (and those that
 * name the system against it); any error changes nothing. */
#include "resources.h"

#include "db.h"
#include "settings.h"

#include <stdlib.h>
#include <string.h>

/* Settings only a superadmin reads: who signs in how (the break-glass user, the provider's group
 * that makes a superadmin), who reaches the API, and where the gateway keeps files. */
static int superadmin_only(const char *key)
{
	static const char *const keys[] = {
	    "oidc_breakglass_user", "oidc_role_map", "oidc_client_secret_file", "oidc_ca_file", "health_ca_file",
	    "dhcp_leases_file",	    "api_allow"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(key, keys[i]) == 0)
			return 1;
	return 0;
}

static json_t *all_settings(sqlite3 *db, int superadmin)
{
	json_t *o = json_object();
	char v[SETTINGS_VALUE_MAX];

	for (const struct settings_key *k = settings_keys(); k->key; k++)
		if ((superadmin || !superadmin_only(k->key)) && settings_get(db, k->key, v, sizeof(v)) == 0)
			json_object_set_new(o, k->key, json_string(v));
	return o;
}

/* GET /config/schema: every setting with its label, help, kind, choices, range and default,
 * from the one registry (common/settings.c); the dashboard renders its form from it. */
static int schema(struct req *r)
{
	char *text;
	json_t *j;

	if (!read_only_start(r, NULL))
		return MHD_YES;
	text = settings_schema_json();
	j = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	if (!j)
		return reply_error(r, 500, "internal", "cannot build the settings schema");
	return reply_json(r, 200, json_pack("{s:o}", "items", j));
}

int res_config(struct req *r, const char *const *seg, int nseg)
{
	int get = strcmp(r->method, "GET") == 0;
	const char *key;
	json_t *v, *before;
	char err[600];
	sqlite3 *db;

	if (nseg == 1 && strcmp(seg[0], "schema") == 0)
		return schema(r);
	if (nseg != 0)
		return reply_error(r, 404, "not_found", "no such resource");
	if (!get && strcmp(r->method, "PUT") != 0)
		return reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
	if (auth_require(r, !get) < 0)
		return MHD_YES;
	if (!get && !r->user.superadmin) /* the gateway's settings: interfaces, modes, who reaches the API */
		return reply_error(r, 403, "forbidden", "only superadmins change the gateway's settings");
	if (!(db = api_db(r->api)))
		return reply_error(r, 503, "unavailable", "database unavailable");
	if (get)
		return reply_json(r, 200, all_settings(db, r->user.superadmin));
	if (req_parse_json(r) < 0)
		return MHD_YES;
	if (!json_is_object(r->body) || json_object_size(r->body) == 0)
		return reply_error(r, 400, "bad_request",
				   "send an object of settings to change, e.g. {\"health_interval\": \"30\"}");
	/* validate everything first: one bad value changes nothing */
	json_object_foreach(r->body, key, v)
	{
		if (!json_is_string(v))
			return reply_error(r, 400, "bad_request", "'%.64s' must be a string", key);
		if (settings_validate(key, json_string_value(v), err, sizeof(err)) < 0)
			return reply_error(r, 400, "bad_request", "%s", err);
	}
	{ /* interfaces and the LAN network against the live system */
		const char *keys[8], *vals[8];
		size_t n = 0;
		json_object_foreach(r->body, key, v)
		{
			if (n < 8 && (strcmp(key, "lan_iface") == 0 || strcmp(key, "wan_iface") == 0 ||
				      strcmp(key, "lan_cidr") == 0)) {
				keys[n] = key;
				vals[n++] = json_string_value(v);
			}
		}
		if (settings_check_system(db, keys, vals, n, err, sizeof(err)) < 0)
			return reply_error(r, 400, "bad_request", "%s", err);
		n = 0;
		json_object_foreach(r->body, key, v)
		{
			if (n < 8 && (strcmp(key, "local_login") == 0 || strcmp(key, "oidc_breakglass_user") == 0 ||
				      strcmp(key, "oidc_issuer") == 0 || strcmp(key, "oidc_client_id") == 0)) {
				keys[n] = key;
				vals[n++] = json_string_value(v);
			}
		}
		if (settings_check_login(db, keys, vals, n, err, sizeof(err)) < 0)
			return reply_error(r, 400, "bad_request", "%s", err);
	}
	before = all_settings(db, 1);
	if (db_begin(db) < 0) {
		json_decref(before);
		return reply_db_error(r, db);
	}
	json_object_foreach(r->body, key, v)
	{
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
	return reply_json(r, 200, all_settings(db, 1)); /* (a superadmin, who may change them) */
}
