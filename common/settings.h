/* settings.h - the runtime-editable settings (DB table settings, the Configuration tab):
 * one registry of keys with their validation, first values taken from the environment. */
#ifndef PGW_SETTINGS_H
#define PGW_SETTINGS_H

#include "config.h"

#include <sqlite3.h>
#include <stddef.h>

#define SETTINGS_VALUE_MAX 512

struct settings_key {
	const char *key;
	const char *help;
};

/* NULL-terminated list of every known key. */
const struct settings_key *settings_keys(void);
/* 0 when value is valid for key; -ENOENT for an unknown key; -EINVAL with the reason in err. */
int settings_validate(const char *key, const char *value, char *err, size_t errlen);
/* Insert the first value of every key that has none yet (from cfg, else the default). */
int settings_seed(sqlite3 *db, const struct pgw_config *cfg);
/* 0 with value, -ENOENT when unset. */
int settings_get(sqlite3 *db, const char *key, char *value, size_t size);
/* The value of a numeric setting, or def when unset. */
unsigned settings_get_uint(sqlite3 *db, const char *key, unsigned def);
/* true/false (also 1/0, yes/no, on/off), or def when unset or not a boolean. */
int settings_get_bool(sqlite3 *db, const char *key, int def);
/* Validate and store: 0, -ENOENT, -EINVAL (err says why) or -EIO. */
/* A change of settings that name the system (lan_iface, wan_iface, lan_cidr) checked against
 * the live system, before anything is stored: each interface it names must exist, and lan_cidr
 * must hold an IPv4 address of lan_iface (when that has any). keys/values: the change (other
 * keys are ignored); the rest comes from the DB. Only what the change touches is judged, so an
 * unrelated change is never refused because a NIC went away. 0, or -EINVAL with a message
 * naming the setting and the interface. */
int settings_check_system(sqlite3 *db, const char *const *keys, const char *const *values, size_t n, char *err,
			  size_t errlen);
int settings_set(sqlite3 *db, const char *key, const char *value, char *err, size_t errlen);

#endif
