/* settings.h - the runtime-editable settings (DB table settings, the Configuration tab):
 * one registry of keys with their validation, first values taken from the environment. */
#ifndef PGW_SETTINGS_H
#define PGW_SETTINGS_H

#include "config.h"

#include <sqlite3.h>
#include <stddef.h>

#define SETTINGS_VALUE_MAX    512
#define SETTINGS_PREFIXES_MAX 16 /* networks in a list setting (api_allow) */

struct settings_key {
	const char *key;
	const char *label; /* short, for the dashboard */
	const char *help;
};

/* NULL-terminated list of every known key. */
const struct settings_key *settings_keys(void);
/* 0 when value is valid for key; -ENOENT for an unknown key; -EINVAL with the reason in err. */
int settings_validate(const char *key, const char *value, char *err, size_t errlen);
/* Insert the first value of every key that has none yet (from cfg, else the default). */
int settings_seed(sqlite3 *db, const struct pgw_config *cfg);
/* 0 with value, -ENOENT when unset, -EIO when the DB cannot say (busy, broken). */
int settings_get(sqlite3 *db, const char *key, char *value, size_t size);
/* A setting's value as the daemons use it: the DB's, else (unset, or a bad row written by
 * hand) its default from the registry, or from the environment variable that seeds it (cfg).
 * The only place defaults live is the registry in settings.c. */
void settings_str(sqlite3 *db, const struct pgw_config *cfg, const char *key, char *buf, size_t size);
/* The same without the fallback for a bad row: the DB's value as it is (else the first value),
 * for a caller that refuses bad values itself (the agent's interfaces and network). */
void settings_value(sqlite3 *db, const struct pgw_config *cfg, const char *key, char *buf, size_t size);
/* The accessors below never fail: a setting the DB does not say (a failed read, not "unset")
 * takes its default. A caller for whom a default is no answer (the agent's rules, the
 * forwarder's table, healthd's probes) brackets its reads: settings_read_begin() clears this
 * thread's error, and settings_read_end() is -EIO when any read since then failed (as ferror()
 * for a stream), 0 when each read what the DB says. Per thread: another thread's reads never
 * fail a caller's. */
void settings_read_begin(void);
int settings_read_end(void);
/* The LAN as the daemons use it: lan_cidr and lan_iface's IPv6 networks (struct net_lan). */
struct net_lan;
void settings_lan(sqlite3 *db, const struct pgw_config *cfg, struct net_lan *lan);
unsigned settings_uint(sqlite3 *db, const struct pgw_config *cfg, const char *key);
int settings_bool(sqlite3 *db, const struct pgw_config *cfg, const char *key); /* true/false, 1/0, yes/no, on/off */
/* Every setting with its label, help, kind (interface|cidr|enum|range|url|bool), choices,
 * range and default, as a JSON array (malloc'd): GET /api/v1/config/schema. */
char *settings_schema_json(void);
/* A change of settings that name the system (lan_iface, wan_iface, lan_cidr) checked against
 * the live system, before anything is stored: each interface it names must exist, and lan_cidr
 * must hold an IPv4 address of lan_iface (when that has any). keys/values: the change (other
 * keys are ignored); the rest comes from the DB. Only what the change touches is judged, so an
 * unrelated change is never refused because a NIC went away. 0, or -EINVAL with a message
 * naming the setting and the interface. */
int settings_check_system(sqlite3 *db, const char *const *keys, const char *const *values, size_t n, char *err,
			  size_t errlen);
/* url is http:// or https://host[:port][/path] with no query or fragment, and https (or any_host,
 * or a loopback host: 127.0.0.0/8, ::1, localhost). */
int settings_url_ok(const char *url, int any_host);
/* The next entry of a role map (oidc_role_map: "admins=admin, staff=viewer, ops=Org B:admin"),
 * from *pos on: 1 with group and role (admin, viewer, superadmin, or ORG:admin / ORG:viewer), 0
 * at the end, -1 when it is malformed. */
int settings_rolemap_next(const char **pos, char *group, size_t gsize, char *role, size_t rsize);
/* A change of the login settings (local_login, oidc_breakglass_user, oidc_issuer,
 * oidc_client_id) checked with the rest from the DB: breakglass needs single sign-on set up and
 * a break-glass user who is an enabled local superadmin. 0 or -EINVAL with err. */
int settings_check_login(sqlite3 *db, const char *const *keys, const char *const *values, size_t n, char *err,
			 size_t errlen);
/* 1 when user_id is the break-glass user while local_login is breakglass (it may not be
 * deleted, disabled or demoted then: nobody could sign in with the provider down). */
int settings_breakglass_user(sqlite3 *db, int64_t user_id);
/* Organisations that may have DNS resolvers of their own (org_settings dns_upstream): pgw-api
 * refuses more, pgw-forwarder holds this many lists. */
#define ORG_DNS_UPSTREAMS_MAX 16

/* Validate and store: 0, -ENOENT, -EINVAL (err says why) or -EIO. lan_cidr also becomes the
 * IPv4 network of a single-organisation install's organisation (when it has one). */
int settings_set(sqlite3 *db, const char *key, const char *value, char *err, size_t errlen);

#endif
