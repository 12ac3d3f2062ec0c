/* mapping_rules.h - what a mapping may be and when it must pass the health gate: one set of
 * rules for the mapping handlers and the CSV import. */
#ifndef API_MAPPING_RULES_H
#define API_MAPPING_RULES_H

#include "config.h"
#include "net.h"

#include <sqlite3.h>
#include <stdint.h>

/* A mapping's client_ip: IPv4 inside the LAN network (setting lan_cidr) or an IPv6 client
 * address (net_client_ip). 0 with the canonical text in canon, or -EINVAL and *why. */
int client_ip_check(sqlite3 *db, const struct pgw_config *cfg, const char *ip, char canon[NET_IP_STR_MAX],
		    const char **why);
/* 1 when a mapping becoming (proxy, enabled) must pass the health gate first: a new one, a
 * move to another proxy, or (re)enabling. exists: there is one now, with old_proxy/old_enabled. */
/* Failover proxies a mapping may list after its primary (migration 0018 holds the same bound). */
#define MAPPING_FAILOVER_MAX 8

int mapping_gate_needed(int exists, int64_t old_proxy, int old_enabled, int64_t proxy, int enabled);

#endif
