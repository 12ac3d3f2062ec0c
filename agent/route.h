/* route.h - the policy routing TPROXY mode needs, through rtnetlink (never `ip`):
 *   ip rule add fwmark PGW_TPROXY_MARK lookup PGW_TPROXY_TABLE
 *   ip route add local 0.0.0.0/0 dev lo table PGW_TPROXY_TABLE
 * so that marked packets are delivered to the local (transparent) forwarder socket. */
#ifndef AGENT_ROUTE_H
#define AGENT_ROUTE_H

#include <stddef.h>

#define PGW_TPROXY_MARK	 0x2470u
#define PGW_TPROXY_TABLE 2470u

/* on: add the rule and the route (already there is fine); off: remove them (absent is fine). */
int route_tproxy(int on, char *err, size_t errlen);

/* Add whichever of them is missing (removed by another tool: an `ip rule flush`, a network
 * manager that deletes rules it did not make); *made: how many were. 0 or -errno (err set). */
int route_tproxy_restore(int *made, char *err, size_t errlen);

#endif
