/* ruleset.h - table inet pgw as nf_tables messages (the invariant: docs/SECURITY.md). Builds
 * into a batch; sends nothing. The ruleset ruleset.c builds (nft syntax, for reading):
 *
 * table inet pgw {
 *   set active4  { type ipv4_addr; }   # mapped, enabled, proxy up (and its health fresh)
 *   set blocked4 { type ipv4_addr; }   # mapped but blocked
 *   set active6  { type ipv6_addr; }   # the same for IPv6 clients
 *   set blocked6 { type ipv6_addr; }
 *   set udp4 { type ipv4_addr; }       # active, and their proxy carries UDP (udp_relay on)
 *   set udp6 { type ipv6_addr; }
 *   chain prerouting { type nat hook prerouting priority dstnat; policy accept;
 *     [dns proxy: iifname LAN meta l4proto { udp, tcp } th dport 53 counter redirect to :DNS]
 *     iifname LAN meta l4proto tcp ip saddr @active4 tcp dport != 53 counter redirect to :FWD
 *     iifname LAN meta l4proto tcp ip6 saddr @active6 tcp dport != 53 counter redirect to :FWD }
 *   [forwarder_mode=tproxy, instead of the two TCP rules (prerouting keeps only the DNS ones):
 *    chain mangle_prerouting { type filter hook prerouting priority mangle;
 *     iifname LAN meta l4proto tcp ip saddr @active4 tcp dport != 53 counter
 *     tproxy ip to :TPROXY meta mark set 0x2470 accept
 *     (and the same with ip6 saddr @active6 ... tproxy ip6 to :TPROXY) }, and in lan_in: meta mark 0x2470 accept]
 *   [udp_relay on: chain mangle_prerouting (as above) also holds, in every forwarder_mode,
 *     iifname LAN meta l4proto udp ip saddr @udp4 udp dport != 53 udp dport != 443 counter
 *     tproxy ip to :TPROXY meta mark set 0x2470 accept      (and ip6 saddr @udp6 ... tproxy ip6)
 *    and lan_in the mark rule: their UDP reaches the forwarder's UDP relay; port 53 stays the
 *    resolver's, port 443 (QUIC) is refused below like everyone's]
 *   [some mapping has a MAC: sets bound4/6, macip4/6, spoof4/6 and chain mac_guard (prerouting,
 *    priority -175): a bound address only from its MAC, see build_mac_guard()]
 *   chain forward { type filter hook forward priority filter; policy drop;  # pgw forwards NOTHING
 *     meta l4proto { udp, tcp } th dport 53 counter drop                  # DNS: silently
 *     ip saddr @blocked4 counter BLOCK                                      # known clients: fail fast
 *     ip6 saddr @blocked6 counter BLOCK
 *     ip saddr @active4 udp dport 443 counter reject with icmpx port-unreachable   # QUIC: use TCP now
 *     (the same for @active6, iifname LAN, ip saddr LAN)
 *     ip saddr @active4 counter BLOCK                                       # (their other non-TCP)
 *     ip6 saddr @active6 counter BLOCK
 *     iifname LAN counter BLOCK
 *     ip saddr LAN counter BLOCK
 *     counter drop }                                                         # everything else
 *   chain input { type filter hook input priority filter; policy accept;
 *     iifname "lo" accept
 *     iifname != LAN meta l4proto { udp, tcp } th dport DNS counter drop    # the resolver: LAN only
 *     iifname LAN jump lan_in         (LAN missing: iifname != WAN jump lan_in)
 *     ip saddr LAN jump lan_in
 *     ip saddr @active4 jump lan_in   (and @blocked4, @active6, @blocked6) }
 *   chain lan_in {
 *     ct state established,related accept
 *     meta l4proto { icmp, ipv6-icmp } accept
 *     meta l4proto tcp ip saddr @active4 th dport FWD accept
 *     meta l4proto tcp ip6 saddr @active6 th dport FWD accept
 *     ip saddr ALLOWED meta l4proto tcp th dport API accept    (each api_allow network; default LAN)
 *     [dns proxy: meta l4proto { udp, tcp } th dport DNS accept]
 *     [dns local: meta l4proto { udp, tcp } th dport 53 accept]
 *     counter BLOCK }
 *   [strict_output: sets proxies4 and proxies6 and chain output, see build_strict_output(); with
 *    udp_relay on also sets proxyhosts4/6 and "oifname WAN meta skuid UID meta l4proto udp ip
 *    daddr @proxyhosts4 accept" (and ip6): the service user's datagrams to the proxies' relays;
 *    WAN missing: its "oifname WAN" is "oifname != lo oifname != LAN"]
 * }
 * BLOCK is "reject with tcp reset" for TCP then "reject with icmpx admin-prohibited", or "drop".
 *
 * The invariant (docs/SECURITY.md): the forward chain has no accept verdict and a drop policy,
 * so nothing is forwarded whatever the settings say. Interface names, the LAN network and the
 * client sets only choose HOW a packet is refused (reject fast or drop) and which clients are
 * redirected to the forwarder: a wrong name, a wrong network or an empty set can only send a
 * client to the drop policy (block more), never let one through (block less). */
#ifndef AGENT_RULESET_H
#define AGENT_RULESET_H

#include "batch.h"
#include "desired.h"

#define NFT_TABLE		 "pgw"
#define RULESET_PROBE_SET	 "active4" /* nft_table_present() asks for it */
#define RULESET_SPOOF4		 "spoof4"  /* MAC binding: who was refused (ether_addr . ipv4_addr) */
#define RULESET_SPOOF6		 "spoof6"
#define RULESET_SPOOF_TIMEOUT_MS 600000u /* a pair is forgotten 10 min after its last packet */
#define RULESET_SPOOF_MAX	 1024u	 /* pairs remembered at most (then: dropped, not remembered) */

/* The whole table in one batch: add, delete and re-create it with its sets, elements, chains
 * and rules, so the kernel switches atomically. */
void ruleset_full(struct batch *bt, const struct desired *d);
/* The set elements ruleset_full writes for d (batch_init's count): every client in active,
 * blocked and udp, every proxy, and two for each MAC binding (bound, macip). */
size_t ruleset_full_elements(const struct desired *d);
/* Set element changes only: clients leave udp*, then active*, before anything is granted; udp* last. */
void ruleset_elements(struct batch *bt, const struct set_delta *d);
/* Delete the table (valid whether or not it exists). */
void ruleset_delete(struct batch *bt);
/* The sets whose elements grant a client anything (udp4, udp6, active4, active6: in the order
 * they are to be taken away), and one of them flushed (every element taken away). */
#define RULESET_GRANT_SETS 4
extern const char *const ruleset_grant_sets[RULESET_GRANT_SETS];
void ruleset_flush_set(struct batch *bt, const char *set);

#endif
