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
/* ... every entry whose original source is in the IPv4 LAN network (lan_addr/lan_mask, host
 * order), and every one redirected to the gateway (its reply from another address or port than
 * the original destination: REDIRECT), IPv6 too: who was granted is not known. */
int conntrack_forget_lan(uint32_t lan_addr, uint32_t lan_mask, char *err, size_t errlen);

#endif
