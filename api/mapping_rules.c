/* mapping_rules.c - see mapping_rules.h: what a mapping may be, and when it must pass the
 * health gate; the same for the mapping handlers and the CSV import. */
#include "mapping_rules.h"

#include "settings.h"

#include <stdio.h>

int client_ip_check(sqlite3 *db, const struct pgw_config *cfg, const char *ip, char canon[NET_IP_STR_MAX],
		    const char **why)
{
	char cidr[SETTINGS_VALUE_MAX];
	struct net_cidr4 lan;

	settings_str(db, cfg, "lan_cidr", cidr, sizeof(cidr));
	return net_client_ip(ip, net_cidr4_parse(cidr, &lan) == 0 ? &lan : NULL, canon, why);
}

int mapping_gate_needed(int exists, int64_t old_proxy, int old_enabled, int64_t proxy, int enabled)
{
	/* a new mapping, a move to another proxy, or (re)enabling: the proxy is checked first */
	return !exists || proxy != old_proxy || (enabled && !old_enabled);
}
