/* mapping_rules.c - see mapping_rules.h: what a mapping may be, and when it must pass the
 * health gate; the same for the mapping handlers and the CSV import. */
#include "mapping_rules.h"

#include "resources.h"
#include "settings.h"

#include <errno.h>

#include <stdio.h>

int client_ip_check(sqlite3 *db, const struct pgw_config *cfg, const char *ip, char canon[NET_IP_STR_MAX],
		    const char **why)
{
	char cidr[SETTINGS_VALUE_MAX];
	struct net_cidr4 lan;

	struct net_ip a;
	int in = 0;

	settings_str(db, cfg, "lan_cidr", cidr, sizeof(cidr));
	if (net_client_ip(ip, net_cidr4_parse(cidr, &lan) == 0 ? &lan : NULL, canon, why) < 0)
		return -EINVAL;
	/* one answer for an address in another organisation's network and one in nobody's: the
	 * others are not to be learnt from it */
	if (net_ip_parse(canon, &a) < 0 || (in = org_holds_ip(db, &a)) <= 0) {
		*why = in < 0 ? "cannot read the organisation's networks" : "is not in the organisation's networks";
		return -EINVAL;
	}
	return 0;
}

int mapping_gate_needed(int exists, int64_t old_proxy, int old_enabled, int64_t proxy, int enabled)
{
	/* a new mapping, a move to another proxy, or (re)enabling: the proxy is checked first */
	return !exists || proxy != old_proxy || (enabled && !old_enabled);
}
