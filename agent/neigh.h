/* neigh.h - the permanent neighbour entries (ARP, NDP) of MAC-bound clients, through rtnetlink:
 *   ip neigh replace ADDR lladdr MAC nud permanent dev LAN
 * so that the gateway's replies to a bound address go to its MAC whatever another host claims
 * in ARP or NDP (a host that takes the address would otherwise draw the real client's replies). */
#ifndef AGENT_NEIGH_H
#define AGENT_NEIGH_H

#include "desired.h"

#include <stddef.h>

/* Every binding of want on ifname (replacing what is there); the addresses of gone that want no
 * longer binds lose their entry. The LAN interface missing: nothing to do (0). 0 or -errno. */
int neigh_bind(const char *ifname, const struct bindset *want, const struct bindset *gone, char *err, size_t errlen);

#endif
