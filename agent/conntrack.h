/* conntrack.h - forget the kernel's connection tracking state of clients that stopped being
 * active (libnetfilter_conntrack), so that no NAT mapping (REDIRECT) or "established" verdict
 * outlives the decision to block them. */
#ifndef AGENT_CONNTRACK_H
#define AGENT_CONNTRACK_H

#include "desired.h"

#include <stddef.h>

/* Delete every conntrack entry whose original source is one of clients (IPv4 and IPv6).
 * Returns how many were deleted, or -errno with the reason in err. */
int conntrack_forget(const struct addrset *clients, char *err, size_t errlen);
/* ... every entry redirected to port1 or port2 of the gateway (REDIRECT: its reply from that
 * port, and from another address or port than the original destination), IPv4 and IPv6: the
 * clients' relayed connections and redirected DNS, whoever they are. */
int conntrack_forget_redirected(uint16_t port1, uint16_t port2, char *err, size_t errlen);

#endif
