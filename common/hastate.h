/* hastate.h - the HA pair's state as every part reads it (table ha_state, migration 0026): the
 * node's VRRP role and how far behind the master its configuration is (issue 22). */
#ifndef PGW_HASTATE_H
#define PGW_HASTATE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define HA_HOLD_MS 5000 /* the master holds a sync request this long waiting for a change */
#define HA_LATE_MS 2000 /* a poll that has not come back HA_HOLD_MS + this after it was answered */

struct ha_state {
	char role[8];		   /* "master", "backup", "fault", or "" (never told: acts as backup) */
	int64_t role_at_ms;	   /* when keepalived last told it (CLOCK_REALTIME ms) */
	int64_t transitions;	   /* role changes so far */
	char origin[24];	   /* the version of the configuration held: a master's random id... */
	int64_t generation;	   /* ...and its count of writes */
	int64_t master_generation; /* the master's generation at the last answer */
	int64_t synced_at_ms;	   /* the last answer from the master */
	int64_t in_sync_at_ms;	   /* the last moment this node was known to hold the master's version */
	char sync_error[256];	   /* why the last exchange failed ("" when it worked) */
};

/* Read the row. 0, or -1 (no table: a database older than 0026, or unreadable). */
int ha_state_read(sqlite3 *db, struct ha_state *s);
/* "master" acts as master; every other role (and none yet) as backup. */
int ha_is_master(const struct ha_state *s);
/* Seconds the configuration here lags the master's: 0 on the master and while the sync keeps up
 * (the last answer said "in step" and the next is not overdue), else the time since it was last
 * known to be in step; -1 when it never was. */
double ha_lag_seconds(const struct ha_state *s, int64_t now_ms);
/* keepalived's word (MASTER, BACKUP, FAULT, STOP; any case) as a role; NULL when not one. */
const char *ha_role_parse(const char *word);
/* Become role (notify hook): a new master takes a new origin, so a version it writes can never be
 * mistaken for one the old master wrote. 0, or -1 with the SQLite error in err. */
int ha_set_role(sqlite3 *db, const char *role, char *err, size_t errlen);
int64_t ha_now_ms(void);
/* A setting each node keeps for itself (its interfaces and files): never synced. */
int ha_setting_is_local(const char *key);
#define HA_LOCAL_SETTINGS_SQL                                                                                          \
	"('lan_iface', 'wan_iface', 'dhcp_leases_file', 'health_ca_file', 'oidc_ca_file', \
			      'oidc_client_secret_file')"

#endif
