/* tc.h - per-client rate limits in the kernel (issue 19), through rtnetlink (libmnl; never the
 * `tc` command). What it builds, in tc syntax:
 *
 *   tc qdisc add dev LAN root handle 1: htb                      # download (to the client)
 *   tc class add dev LAN parent 1: classid 1:S htb rate DOWN ceil DOWN
 *   tc filter add dev LAN parent 1: prio S protocol ip u32 match ip dst ADDR/32 flowid 1:S
 *   ip link add pgwifb0 type ifb; ip link set pgwifb0 up          # upload (from the client)
 *   tc qdisc add dev LAN ingress
 *   tc filter add dev LAN parent ffff: prio S protocol ip u32 match ip src ADDR/32 \
 *       action mirred egress redirect dev pgwifb0
 *   tc qdisc add dev pgwifb0 root handle 1: htb
 *   tc class add dev pgwifb0 parent 1: classid 1:S htb rate UP ceil UP
 *   tc filter add dev pgwifb0 parent 1: prio S protocol ip u32 match ip src ADDR/32 flowid 1:S
 *
 * S is the client's slot (1..TC_SLOTS), stable while it keeps a limit; IPv6 clients match
 * `ip6 dst`/`ip6 src` (protocol ipv6). A class's rate is its ceil: a limited client never
 * borrows. Traffic of clients without a limit matches no filter and is not shaped (HTB's default
 * class 0: sent directly), and never passes the IFB. pgw owns the LAN interface's root and
 * ingress qdiscs while any client has a limit; with none, both and the IFB are removed. */
#ifndef AGENT_TC_H
#define AGENT_TC_H

#include "desired.h"

#include <stddef.h>

#define TC_SLOTS    4000      /* clients with a limit at most (more: warned, not limited) */
#define TC_IFB_NAME "pgwifb0" /* the IFB that shapes uploads */

struct tc_state;

struct tc_state *tc_open(void);
void tc_close(struct tc_state *t);
/* Make the kernel hold want's limits on lan_iface: at the first call (and after tc_forget), a
 * rebuild from nothing; after that, only what changed. 1 (changed), 0 (nothing to change), or
 * -errno with the reason in err (the next call rebuilds). A missing LAN interface: nothing to do
 * (0; rebuilt when it is back). */
int tc_apply(struct tc_state *t, const char *lan_iface, const struct limitset *want, char *err, size_t errlen);
/* The next tc_apply rebuilds everything (the qdiscs were found missing, or the LAN changed). */
void tc_forget(struct tc_state *t);
/* 1 when the qdiscs the applied limits need are in the kernel (or none are needed), 0 when not. */
int tc_present(struct tc_state *t, const char *lan_iface);

#endif
