/* ruleset.c - see ruleset.h (the ruleset it builds, in nft syntax, and its invariant). */
#include "ruleset.h"

#include "batch.h"
#include "expr.h"
#include "route.h"

#include <arpa/inet.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <string.h>

#ifndef IPPROTO_VRRP
#define IPPROTO_VRRP 112
#endif

#define SET_ACTIVE	  "active4"
#define SET_BLOCKED	  "blocked4"
#define SET_ID_ACTIVE	  1
#define SET_ID_BLOCKED	  2
#define SET_PROXIES	  "proxies4"
#define SET_ID_PROXIES	  3
#define SET_PROXIES6	  "proxies6"
#define SET_ID_PROXIES6	  6
#define SET_ACTIVE6	  "active6"
#define SET_BLOCKED6	  "blocked6"
#define SET_ID_ACTIVE6	  4
#define SET_ID_BLOCKED6	  5
#define SET_UDP		  "udp4"
#define SET_UDP6	  "udp6"
#define SET_ID_UDP	  7
#define SET_ID_UDP6	  8
#define SET_HOSTS	  "proxyhosts4"
#define SET_HOSTS6	  "proxyhosts6"
#define SET_ID_HOSTS	  9
#define SET_ID_HOSTS6	  10
#define SET_BOUND	  "bound4" /* addresses bound to a MAC (0021) */
#define SET_BOUND6	  "bound6"
#define SET_ID_BOUND	  11
#define SET_ID_BOUND6	  12
#define SET_MACIP	  "macip4" /* their ether saddr . ip saddr pairs */
#define SET_MACIP6	  "macip6"
#define SET_ID_MACIP	  13
#define SET_ID_MACIP6	  14
#define SET_SPOOF	  RULESET_SPOOF4 /* pairs refused: filled by the kernel, read by the agent */
#define SET_SPOOF6	  RULESET_SPOOF6
#define SET_ID_SPOOF	  15
#define SET_ID_SPOOF6	  16
#define TYPE_ETHERADDR	  9
#define TYPE_INET_SERVICE 13
#define ELEMS_PER_MSG	  1000 /* a set element list is one netlink nest: keep it well under 64 KiB */
#define TYPE_IPADDR	  7    /* nft's ipv4_addr datatype */
#define TYPE_IP6ADDR	  8    /* ipv6_addr */

/* Strict output: "goes to the WAN". With the WAN interface missing, that is everything that
 * goes neither to loopback nor to the LAN interface: a wrong name limits more, not less. */
static void m_to_wan(struct nftnl_rule *r, const struct desired_rules *dr)
{
	static const char lo[16] = "lo";

	if (!dr->wan_missing) {
		m_ifname(r, NFT_META_OIFNAME, dr->wan_iface);
		return;
	}
	m_ifname_not(r, NFT_META_OIFNAME, lo);
	m_ifname_not(r, NFT_META_OIFNAME, dr->lan_iface);
}

/* ip saddr @set (IPv4 sets) or ip6 saddr @set (IPv6 sets: ids SET_ID_ACTIVE6, SET_ID_BLOCKED6, SET_ID_UDP6) */
static void m_saddr_in(struct nftnl_rule *r, const char *set, uint32_t set_id)
{
	int v6 = set_id == SET_ID_ACTIVE6 || set_id == SET_ID_BLOCKED6 || set_id == SET_ID_UDP6;

	m_u8(r, NFT_META_NFPROTO, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	if (v6)
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 8, 16);
	else
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
	e_lookup(r, set, set_id);
}

/* ip saddr PREFIX (IPv4) or ip6 saddr PREFIX: the address under a mask, compared */
static void m_saddr_prefix(struct nftnl_rule *r, const struct net_prefix *p)
{
	int v4 = net_ip_is4(&p->addr);
	uint8_t mask[16] = {0}, net[16];
	unsigned bits = v4 ? p->len - 96u : p->len, len = v4 ? 4 : 16;

	for (unsigned b = 0; b < bits; b++)
		mask[b / 8] |= (uint8_t)(0x80 >> (b % 8));
	memcpy(net, v4 ? p->addr.a + 12 : p->addr.a, len);
	m_u8(r, NFT_META_NFPROTO, v4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
	e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v4 ? 12 : 8, len);
	e_and_n(r, mask, len);
	e_cmp(r, NFT_CMP_EQ, net, len);
}

/* ---- objects ---- */

static void put_rule(struct batch *bt, struct nftnl_rule *r, const char *chain)
{
	struct nlmsghdr *nlh;

	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nlh = batch_msg(bt, NFT_MSG_NEWRULE, NLM_F_APPEND | NLM_F_CREATE);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	batch_next(bt);
}

static void put_table(struct batch *bt, uint16_t type)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nlh = batch_msg(bt, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	batch_next(bt);
}

static void put_chain(struct batch *bt, const char *name, const char *type, int hook, int prio, uint32_t policy)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	if (type) {
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, (uint32_t)hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, policy);
	}
	nlh = batch_msg(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	batch_next(bt);
}

/* A set of table inet pgw by name; id != 0: one created in this batch. */
static struct nftnl_set *set_of(const char *name, uint32_t id)
{
	struct nftnl_set *s = nftnl_set_alloc();

	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	if (id)
		nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	return s;
}

static void put_set(struct batch *bt, const char *name, uint32_t id, uint32_t key_type, uint32_t key_len)
{
	struct nftnl_set *s = set_of(name, id);
	struct nlmsghdr *nlh;

	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, key_len);
	nlh = batch_msg(bt, NFT_MSG_NEWSET, NLM_F_CREATE);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	batch_next(bt);
}

/* NEWSETELEM / DELSETELEM for the addresses of one family (v6: the IPv6 ones, else IPv4), in
 * chunks. set_id 0: an existing set. */
static void put_elems(struct batch *bt, uint16_t type, const char *set, uint32_t set_id, const struct addrset *a,
		      int v6)
{
	size_t i = 0;

	while (i < a->n) {
		struct nftnl_set *s = NULL;
		struct nlmsghdr *nlh;
		size_t k = 0;

		for (; i < a->n && k < ELEMS_PER_MSG; i++) {
			struct nftnl_set_elem *e;
			if (net_ip_is4(&a->addr[i]) == v6)
				continue;
			if (!s)
				s = set_of(set, set_id);
			e = nftnl_set_elem_alloc();
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, v6 ? a->addr[i].a : a->addr[i].a + 12, v6 ? 16 : 4);
			nftnl_set_elem_add(s, e);
			k++;
		}
		if (!s)
			break;
		nlh = batch_msg(bt, type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		batch_next(bt);
	}
}

/* The MAC bindings of one family into bound4|6 and macip4|6 (sets created in this batch). */
static void put_binding_elems(struct batch *bt, const struct bindset *bs, int v6)
{
	for (int pass = 0; pass < 2; pass++) { /* addresses, then MAC . address pairs */
		size_t i = 0;
		while (i < bs->n) {
			const char *name = pass ? (v6 ? SET_MACIP6 : SET_MACIP) : (v6 ? SET_BOUND6 : SET_BOUND);
			uint32_t id = pass ? (v6 ? SET_ID_MACIP6 : SET_ID_MACIP) : (v6 ? SET_ID_BOUND6 : SET_ID_BOUND);
			struct nftnl_set *s = set_of(name, id);
			size_t k = 0;

			for (; i < bs->n && k < ELEMS_PER_MSG; i++) {
				const struct binding *b = &bs->e[i];
				uint8_t key[24] = {0}; /* the MAC takes two 4-byte registers, then the address */
				size_t alen = v6 ? 16 : 4;
				struct nftnl_set_elem *e;

				if (net_ip_is4(&b->addr) == v6)
					continue;
				e = nftnl_set_elem_alloc();
				if (pass) {
					memcpy(key, b->mac, 6);
					memcpy(key + 8, v6 ? b->addr.a : b->addr.a + 12, alen);
					nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, 8 + alen);
				} else {
					nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, v6 ? b->addr.a : b->addr.a + 12,
							   alen);
				}
				nftnl_set_elem_add(s, e);
				k++;
			}
			if (k) {
				struct nlmsghdr *nlh = batch_msg(bt, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
				nftnl_set_elems_nlmsg_build_payload(nlh, s);
				batch_next(bt);
			}
			nftnl_set_free(s);
		}
	}
}

/* ether saddr . ip[6] saddr into registers 1.. (the MAC in two 4-byte registers, the address after) */
static void load_mac_ip(struct nftnl_rule *r, int v6)
{
	e_payload_to(r, NFT_PAYLOAD_LL_HEADER, 6, 6, NFT_REG32_00);
	e_payload_to(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4, NFT_REG32_02);
}

/* MAC binding (mappings.mac), before anything else looks at a packet (priority -175: before
 * TPROXY at mangle -150 and REDIRECT at dstnat -100):
 *   chain mac_guard { type filter hook prerouting priority -175; policy accept;
 *     ip saddr @bound4 ether saddr . ip saddr @macip4 accept        # the bound host itself
 *     ip saddr @bound4 update @spoof4 { ether saddr . ip saddr counter } counter drop   # another
 *     ip saddr @bound4 counter drop         # no link-layer address to check: refused as well
 *     (and the same three for ip6 saddr with bound6, macip6, spoof6) }
 * A bound address is admitted only from its MAC: a host that takes it gets nothing from the
 * gateway (not the forwarder, not the API, not DNS), and the agent reads spoof4/6 to count and
 * log who tried. The sets exist only while some mapping has a MAC. */
static void build_mac_guard(struct batch *bt, const struct desired *d)
{
	put_set(bt, SET_BOUND, SET_ID_BOUND, TYPE_IPADDR, 4);
	put_set(bt, SET_BOUND6, SET_ID_BOUND6, TYPE_IP6ADDR, 16);
	put_set(bt, SET_MACIP, SET_ID_MACIP, TYPE_ETHERADDR << 6 | TYPE_IPADDR, 12);
	put_set(bt, SET_MACIP6, SET_ID_MACIP6, TYPE_ETHERADDR << 6 | TYPE_IP6ADDR, 24);
	for (int v6 = 0; v6 <= 1; v6++) {
		struct nftnl_set *s = set_of(v6 ? SET_SPOOF6 : SET_SPOOF, v6 ? SET_ID_SPOOF6 : SET_ID_SPOOF);
		struct nlmsghdr *nlh;

		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, TYPE_ETHERADDR << 6 | (v6 ? TYPE_IP6ADDR : TYPE_IPADDR));
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, v6 ? 24 : 12);
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_TIMEOUT | NFT_SET_EVAL);
		nftnl_set_set_u64(s, NFTNL_SET_TIMEOUT, RULESET_SPOOF_TIMEOUT_MS);
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, RULESET_SPOOF_MAX);
		nlh = batch_msg(bt, NFT_MSG_NEWSET, NLM_F_CREATE);
		nftnl_set_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		batch_next(bt);
		put_binding_elems(bt, &d->bound, v6);
	}
	put_chain(bt, "mac_guard", "filter", NF_INET_PRE_ROUTING, -175, NF_ACCEPT);
	for (int v6 = 0; v6 <= 1; v6++) {
		const char *bound = v6 ? SET_BOUND6 : SET_BOUND;
		uint32_t bound_id = v6 ? SET_ID_BOUND6 : SET_ID_BOUND;
		struct nftnl_rule *r = nftnl_rule_alloc();

		m_u8(r, NFT_META_NFPROTO, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4);
		e_lookup(r, bound, bound_id);
		load_mac_ip(r, v6);
		e_lookup(r, v6 ? SET_MACIP6 : SET_MACIP, v6 ? SET_ID_MACIP6 : SET_ID_MACIP);
		e_verdict(r, NF_ACCEPT, NULL);
		put_rule(bt, r, "mac_guard");

		r = nftnl_rule_alloc();
		m_u8(r, NFT_META_NFPROTO, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4);
		e_lookup(r, bound, bound_id);
		load_mac_ip(r, v6);
		e_dynset_update(r, v6 ? SET_SPOOF6 : SET_SPOOF, v6 ? SET_ID_SPOOF6 : SET_ID_SPOOF);
		e_counter(r);
		e_verdict(r, NF_DROP, NULL);
		put_rule(bt, r, "mac_guard");

		r = nftnl_rule_alloc();
		m_u8(r, NFT_META_NFPROTO, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4);
		e_lookup(r, bound, bound_id);
		e_counter(r);
		e_verdict(r, NF_DROP, NULL);
		put_rule(bt, r, "mac_guard");
	}
}

/* How a refused packet is refused: "reject with tcp reset" for TCP then "reject with icmpx
 * admin-prohibited" for the rest, or plain drop. match() adds the rule's condition. */
static void put_block(struct batch *bt, const struct desired_rules *dr, const char *chain,
		      void (*match)(struct nftnl_rule *, const struct desired_rules *, const void *), const void *arg)
{
	struct nftnl_rule *r;

	if (!dr->block_drop) {
		r = nftnl_rule_alloc();
		if (match)
			match(r, dr, arg);
		m_u8(r, NFT_META_L4PROTO, IPPROTO_TCP);
		e_counter(r);
		e_reject(r, NFT_REJECT_TCP_RST, 0);
		put_rule(bt, r, chain);
	}
	r = nftnl_rule_alloc();
	if (match)
		match(r, dr, arg);
	e_counter(r);
	if (dr->block_drop)
		e_verdict(r, NF_DROP, NULL);
	else
		e_reject(r, NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_ADMIN_PROHIBITED);
	put_rule(bt, r, chain);
}

/* match, then UDP to port 443: ICMP port unreachable, whatever block_action says (the client is
 * not blocked; its QUIC only has no path, and says so at once). */
static void put_quic_reject(struct batch *bt, const struct desired_rules *dr,
			    void (*match)(struct nftnl_rule *, const struct desired_rules *, const void *),
			    const void *arg)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	match(r, dr, arg);
	m_u8(r, NFT_META_L4PROTO, IPPROTO_UDP);
	m_dport(r, NFT_CMP_EQ, 443);
	e_counter(r);
	e_reject(r, NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH);
	put_rule(bt, r, "forward");
}

/* The conditions that say "this packet comes from a LAN client", each alone. */
struct client_set {
	const char *name;
	uint32_t id;
};
static const struct client_set client_sets[] = {
    {SET_BLOCKED, SET_ID_BLOCKED},
    {SET_BLOCKED6, SET_ID_BLOCKED6},
    {SET_ACTIVE, SET_ID_ACTIVE},
    {SET_ACTIVE6, SET_ID_ACTIVE6},
};

static void match_set(struct nftnl_rule *r, const struct desired_rules *dr, const void *arg)
{
	const struct client_set *cs = arg;

	(void)dr;
	m_saddr_in(r, cs->name, cs->id);
}

static void match_lan_iface(struct nftnl_rule *r, const struct desired_rules *dr, const void *arg)
{
	(void)arg;
	m_ifname(r, NFT_META_IIFNAME, dr->lan_iface);
}

/* ip saddr & MASK == LAN */
static void match_lan_net(struct nftnl_rule *r, const struct desired_rules *dr, const void *arg)
{
	uint32_t net = htonl(dr->lan_addr);

	(void)arg;
	m_u8(r, NFT_META_NFPROTO, NFPROTO_IPV4);
	e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
	e_and(r, htonl(dr->lan_mask));
	e_cmp(r, NFT_CMP_EQ, &net, 4);
}

/* The proxies' address . port pairs of one family into a set created in this batch. */
static void put_proxy_elems(struct batch *bt, const struct proxyset *ps, int v6, const char *name, uint32_t id)
{
	size_t i = 0;

	while (i < ps->n) {
		struct nftnl_set *s = set_of(name, id);
		struct nlmsghdr *nlh;
		size_t k = 0;

		for (; i < ps->n && k < ELEMS_PER_MSG; i++) {
			struct nftnl_set_elem *e;
			uint8_t key[20] = {0};
			uint16_t port = htons(ps->e[i].port);
			size_t alen = v6 ? 16 : 4; /* each part of a concatenation takes whole 4-byte registers */

			if (net_ip_is4(&ps->e[i].addr) == v6)
				continue;
			memcpy(key, v6 ? ps->e[i].addr.a : ps->e[i].addr.a + 12, alen);
			memcpy(key + alen, &port, 2);
			e = nftnl_set_elem_alloc();
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, alen + 4);
			nftnl_set_elem_add(s, e);
			k++;
		}
		if (k) {
			nlh = batch_msg(bt, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			batch_next(bt);
		}
		nftnl_set_free(s);
	}
}

/* The proxies' addresses of one family (no ports: their UDP relays' ports are theirs to choose)
 * into a set created in this batch. ps is sorted by address: each address once. */
static void put_proxy_hosts(struct batch *bt, const struct proxyset *ps, int v6, const char *name, uint32_t id)
{
	struct nftnl_set *s = set_of(name, id);
	size_t k = 0;

	for (size_t i = 0; i < ps->n; i++) {
		struct nftnl_set_elem *e;
		if (net_ip_is4(&ps->e[i].addr) == v6 ||
		    (i > 0 && memcmp(&ps->e[i - 1].addr, &ps->e[i].addr, sizeof(ps->e[i].addr)) == 0))
			continue;
		e = nftnl_set_elem_alloc();
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, v6 ? ps->e[i].addr.a : ps->e[i].addr.a + 12, v6 ? 16 : 4);
		nftnl_set_elem_add(s, e);
		if (++k == ELEMS_PER_MSG) {
			struct nlmsghdr *nlh = batch_msg(bt, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			batch_next(bt);
			nftnl_set_free(s);
			s = set_of(name, id);
			k = 0;
		}
	}
	if (k) {
		struct nlmsghdr *nlh = batch_msg(bt, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		batch_next(bt);
	}
	nftnl_set_free(s);
}

/* oifname WAN meta skuid UID meta l4proto tcp ip[6] daddr . tcp dport @proxies4|6 accept, or with
 * udp: ... meta l4proto udp ip[6] daddr @proxyhosts4|6 accept (the UDP relay's datagrams to the
 * proxies' relays, whose ports are the proxies' to choose) */
static void put_proxy_rule(struct batch *bt, const struct desired_rules *dr, int v6, int udp)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	m_to_wan(r, dr);
	e_meta(r, NFT_META_SKUID);
	e_cmp(r, NFT_CMP_EQ, &dr->strict_uid, 4);
	m_u8(r, NFT_META_NFPROTO, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	m_u8(r, NFT_META_L4PROTO, udp ? IPPROTO_UDP : IPPROTO_TCP);
	e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, v6 ? 16 : 4);
	if (udp) {
		e_lookup(r, v6 ? SET_HOSTS6 : SET_HOSTS, v6 ? SET_ID_HOSTS6 : SET_ID_HOSTS);
	} else { /* daddr, then the port in the register after it: 4 registers for IPv6, 1 for IPv4 */
		e_payload_to(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, v6 ? NFT_REG32_04 : NFT_REG32_01);
		e_lookup(r, v6 ? SET_PROXIES6 : SET_PROXIES, v6 ? SET_ID_PROXIES6 : SET_ID_PROXIES);
	}
	e_verdict(r, NF_ACCEPT, NULL);
	put_rule(bt, r, "output");
}

/* strict OUTPUT mode: the gateway itself reaches the WAN only as the service user and only to
 * the proxies' address:port pairs; replies, ICMPv6 (neighbour discovery) and the DHCP client
 * stay possible; loopback and LAN are not touched.
 *   chain output { type filter hook output priority filter; policy accept;
 *     oifname WAN ct state established,related accept
 *     oifname WAN meta l4proto ipv6-icmp accept
 *     oifname WAN udp sport 68 udp dport 67 accept
 *     oifname WAN meta skuid UID meta l4proto tcp ip daddr . tcp dport @proxies4 accept
 *     oifname WAN meta skuid UID meta l4proto tcp ip6 daddr . tcp dport @proxies6 accept
 *     [udp_relay on: oifname WAN meta skuid UID meta l4proto udp ip daddr @proxyhosts4 accept,
 *      and the same for ip6 daddr @proxyhosts6: datagrams to the proxies' UDP relays]
 *     oifname WAN counter drop } */
static void build_strict_output(struct batch *bt, const struct desired *d)
{
	const struct desired_rules *dr = &d->rules;
	struct nftnl_rule *r;
	uint16_t p67 = htons(67), p68 = htons(68);

	put_set(bt, SET_PROXIES, SET_ID_PROXIES, TYPE_IPADDR << 6 | TYPE_INET_SERVICE, 8);
	put_set(bt, SET_PROXIES6, SET_ID_PROXIES6, TYPE_IP6ADDR << 6 | TYPE_INET_SERVICE, 20);
	put_proxy_elems(bt, &d->proxies, 0, SET_PROXIES, SET_ID_PROXIES);
	put_proxy_elems(bt, &d->proxies, 1, SET_PROXIES6, SET_ID_PROXIES6);

	r = nftnl_rule_alloc();
	m_to_wan(r, dr);
	m_ct_established(r);
	e_verdict(r, NF_ACCEPT, NULL);
	put_rule(bt, r, "output");
	r = nftnl_rule_alloc();
	m_to_wan(r, dr);
	m_u8(r, NFT_META_L4PROTO, IPPROTO_ICMPV6);
	e_verdict(r, NF_ACCEPT, NULL);
	put_rule(bt, r, "output");
	r = nftnl_rule_alloc();
	m_to_wan(r, dr);
	m_u8(r, NFT_META_L4PROTO, IPPROTO_UDP);
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2);
	e_cmp(r, NFT_CMP_EQ, &p68, 2);
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
	e_cmp(r, NFT_CMP_EQ, &p67, 2);
	e_verdict(r, NF_ACCEPT, NULL);
	put_rule(bt, r, "output");
	put_proxy_rule(bt, dr, 0, 0);
	put_proxy_rule(bt, dr, 1, 0);
	if (dr->udp) {
		put_set(bt, SET_HOSTS, SET_ID_HOSTS, TYPE_IPADDR, 4);
		put_set(bt, SET_HOSTS6, SET_ID_HOSTS6, TYPE_IP6ADDR, 16);
		put_proxy_hosts(bt, &d->proxies, 0, SET_HOSTS, SET_ID_HOSTS);
		put_proxy_hosts(bt, &d->proxies, 1, SET_HOSTS6, SET_ID_HOSTS6);
		put_proxy_rule(bt, dr, 0, 1);
		put_proxy_rule(bt, dr, 1, 1);
	}
	r = nftnl_rule_alloc();
	m_to_wan(r, dr);
	e_counter(r);
	e_verdict(r, NF_DROP, NULL);
	put_rule(bt, r, "output");
}

/* The output chain: first, whatever the settings, nothing from or to the LAN network leaves by
 * the WAN. The gateway's own LAN-addressed traffic (an HA pair's sync, replies to LAN hosts)
 * follows the LAN route; when the LAN link goes down that route goes with it, and without these
 * rules the kernel would send such packets out of the default route, LAN source and all.
 *   oifname WAN ip saddr LAN_NET counter drop
 *   oifname WAN ip daddr LAN_NET counter drop
 *   [HA: oifname WAN ip(6) daddr PEER counter drop]
 * then strict OUTPUT mode when on. */
static void build_output(struct batch *bt, const struct desired *d)
{
	const struct desired_rules *dr = &d->rules;
	uint32_t net = htonl(dr->lan_addr);
	struct nftnl_rule *r;

	put_chain(bt, "output", "filter", NF_INET_LOCAL_OUT, 0, NF_ACCEPT);
	for (int dst = 0; dst <= 1; dst++) {
		r = nftnl_rule_alloc();
		m_to_wan(r, dr);
		m_u8(r, NFT_META_NFPROTO, NFPROTO_IPV4);
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, dst ? 16 : 12, 4);
		e_and(r, htonl(dr->lan_mask));
		e_cmp(r, NFT_CMP_EQ, &net, 4);
		e_counter(r);
		e_verdict(r, NF_DROP, NULL);
		put_rule(bt, r, "output");
	}
	if (dr->ha) {
		int v4 = net_ip_is4(&dr->ha_peer.addr);
		r = nftnl_rule_alloc();
		m_to_wan(r, dr);
		m_u8(r, NFT_META_NFPROTO, v4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v4 ? 16 : 24, v4 ? 4 : 16);
		e_cmp(r, NFT_CMP_EQ, v4 ? dr->ha_peer.addr.a + 12 : dr->ha_peer.addr.a, v4 ? 4 : 16);
		e_counter(r);
		e_verdict(r, NF_DROP, NULL);
		put_rule(bt, r, "output");
	}
	if (dr->strict_output)
		build_strict_output(bt, d);
}

size_t ruleset_full_elements(const struct desired *d)
{
	return d->active.n + d->blocked.n + d->udp.n + d->proxies.n + 2 * d->bound.n;
}

void ruleset_full(struct batch *bt, const struct desired *d)
{
	const struct desired_rules *dr = &d->rules;
	static const uint8_t l4[] = {IPPROTO_UDP, IPPROTO_TCP};
	struct nftnl_rule *r;

	/* add-then-delete makes the delete valid whether or not the table exists */
	put_table(bt, NFT_MSG_NEWTABLE);
	put_table(bt, NFT_MSG_DELTABLE);
	put_table(bt, NFT_MSG_NEWTABLE);
	put_set(bt, SET_ACTIVE, SET_ID_ACTIVE, TYPE_IPADDR, 4);
	put_set(bt, SET_BLOCKED, SET_ID_BLOCKED, TYPE_IPADDR, 4);
	put_set(bt, SET_ACTIVE6, SET_ID_ACTIVE6, TYPE_IP6ADDR, 16);
	put_set(bt, SET_BLOCKED6, SET_ID_BLOCKED6, TYPE_IP6ADDR, 16);
	put_set(bt, SET_UDP, SET_ID_UDP, TYPE_IPADDR, 4);
	put_set(bt, SET_UDP6, SET_ID_UDP6, TYPE_IP6ADDR, 16);
	for (int v6 = 0; v6 <= 1; v6++) {
		put_elems(bt, NFT_MSG_NEWSETELEM, v6 ? SET_UDP6 : SET_UDP, v6 ? SET_ID_UDP6 : SET_ID_UDP, &d->udp, v6);
		put_elems(bt, NFT_MSG_NEWSETELEM, v6 ? SET_ACTIVE6 : SET_ACTIVE, v6 ? SET_ID_ACTIVE6 : SET_ID_ACTIVE,
			  &d->active, v6);
		put_elems(bt, NFT_MSG_NEWSETELEM, v6 ? SET_BLOCKED6 : SET_BLOCKED,
			  v6 ? SET_ID_BLOCKED6 : SET_ID_BLOCKED, &d->blocked, v6);
	}
	if (d->bound.n)
		build_mac_guard(bt, d);
	if (dr->tproxy || dr->udp)
		put_chain(bt, "mangle_prerouting", "filter", NF_INET_PRE_ROUTING, -150,
			  NF_ACCEPT); /* not "tproxy": an nft keyword */
	if (!dr->tproxy || dr->dns_proxy)
		put_chain(bt, "prerouting", "nat", NF_INET_PRE_ROUTING, -100, NF_ACCEPT);
	put_chain(bt, "forward", "filter", NF_INET_FORWARD, 0,
		  NF_DROP); /* pgw forwards nothing, whatever the settings */
	put_chain(bt, "input", "filter", NF_INET_LOCAL_IN, 0, NF_ACCEPT);
	put_chain(bt, "lan_in", NULL, 0, 0, 0);

	/* prerouting, dns_mode=proxy: every LAN device's DNS, to whatever address, to the forwarder's
	 * resolver, which answers it through the device's own proxy (or refuses it) */
	for (size_t i = 0; dr->dns_proxy && i < sizeof(l4); i++) {
		r = nftnl_rule_alloc();
		m_ifname(r, NFT_META_IIFNAME, dr->lan_iface);
		m_u8(r, NFT_META_L4PROTO, l4[i]);
		m_dport(r, NFT_CMP_EQ, 53);
		e_counter(r);
		e_redirect(r, dr->dns_port);
		put_rule(bt, r, "prerouting");
	}

	/* prerouting: active clients' TCP to the forwarder (DNS over TCP is not relayed):
	 * REDIRECT (nat), or TPROXY (mark + tproxy, delivered by the policy route of route.c) */
	for (int v6 = 0; v6 <= 1; v6++) {
		r = nftnl_rule_alloc();
		m_ifname(r, NFT_META_IIFNAME, dr->lan_iface);
		m_u8(r, NFT_META_L4PROTO, IPPROTO_TCP);
		m_saddr_in(r, v6 ? SET_ACTIVE6 : SET_ACTIVE, v6 ? SET_ID_ACTIVE6 : SET_ID_ACTIVE);
		m_dport(r, NFT_CMP_NEQ, 53);
		e_counter(r);
		if (dr->tproxy) {
			e_tproxy(r, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4, PGW_TPROXY_MARK, dr->tproxy_port);
			put_rule(bt, r, "mangle_prerouting");
		} else {
			e_redirect(r, dr->forwarder_port);
			put_rule(bt, r, "prerouting");
		}
	}

	/* mangle_prerouting, udp_relay on: the UDP of clients whose proxy carries it to the forwarder's
	 * UDP relay by TPROXY (port 53 is the resolver's, 443 is refused in forward: QUIC uses TCP) */
	for (int v6 = 0; dr->udp && v6 <= 1; v6++) {
		r = nftnl_rule_alloc();
		m_ifname(r, NFT_META_IIFNAME, dr->lan_iface);
		m_u8(r, NFT_META_L4PROTO, IPPROTO_UDP);
		m_saddr_in(r, v6 ? SET_UDP6 : SET_UDP, v6 ? SET_ID_UDP6 : SET_ID_UDP);
		m_dport(r, NFT_CMP_NEQ, 53);
		m_dport(r, NFT_CMP_NEQ, 443);
		e_counter(r);
		e_tproxy(r, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4, PGW_TPROXY_MARK, dr->tproxy_port);
		put_rule(bt, r, "mangle_prerouting");
	}

	/* forward: nothing is ever forwarded (policy drop, no accept); LAN clients are refused fast */
	for (size_t i = 0; i < sizeof(l4); i++) {
		r = nftnl_rule_alloc();
		m_u8(r, NFT_META_L4PROTO, l4[i]);
		m_dport(r, NFT_CMP_EQ, 53);
		e_counter(r);
		e_verdict(r, NF_DROP, NULL);
		put_rule(bt, r, "forward");
	}
	for (size_t i = 0; i < 2; i++) /* blocked4, blocked6 */
		put_block(bt, dr, "forward", match_set, &client_sets[i]);
	/* QUIC (UDP 443) is not relayed: refused at once, so browsers fall back to TCP at once */
	put_quic_reject(bt, dr, match_set, &client_sets[2]);
	put_quic_reject(bt, dr, match_set, &client_sets[3]);
	put_quic_reject(bt, dr, match_lan_iface, NULL);
	put_quic_reject(bt, dr, match_lan_net, NULL);
	for (size_t i = 2; i < sizeof(client_sets) / sizeof(client_sets[0]); i++)
		put_block(bt, dr, "forward", match_set, &client_sets[i]);
	put_block(bt, dr, "forward", match_lan_iface, NULL);
	put_block(bt, dr, "forward", match_lan_net, NULL);
	r = nftnl_rule_alloc();
	e_counter(r);
	e_verdict(r, NF_DROP, NULL);
	put_rule(bt, r, "forward");

	/* input: LAN clients reach only what they need on the gateway */
	{
		static const char lo[16] = "lo";
		r = nftnl_rule_alloc();
		m_ifname(r, NFT_META_IIFNAME, lo);
		e_verdict(r, NF_ACCEPT, NULL);
		put_rule(bt, r, "input");
	}
	for (size_t i = 0; i < sizeof(l4); i++) {
		/* the resolver answers the LAN interface only, whatever dns_mode says (pgw-forwarder
		 * listens on its port in every mode): a query from elsewhere (a spoofed client address
		 * from the WAN side) never reaches it */
		r = nftnl_rule_alloc();
		m_ifname_not(r, NFT_META_IIFNAME, dr->lan_iface);
		m_u8(r, NFT_META_L4PROTO, l4[i]);
		m_dport(r, NFT_CMP_EQ, dr->dns_port);
		e_counter(r);
		e_verdict(r, NF_DROP, NULL);
		put_rule(bt, r, "input");
	}
	r = nftnl_rule_alloc();
	if (dr->lan_missing) /* the LAN NIC is gone or misnamed: whatever is not the WAN is limited */
		m_ifname_not(r, NFT_META_IIFNAME, dr->wan_iface);
	else
		match_lan_iface(r, dr, NULL);
	e_verdict(r, NFT_JUMP, "lan_in");
	put_rule(bt, r, "input");
	r = nftnl_rule_alloc();
	match_lan_net(r, dr, NULL);
	e_verdict(r, NFT_JUMP, "lan_in");
	put_rule(bt, r, "input");
	for (size_t i = 0; i < sizeof(client_sets) / sizeof(client_sets[0]); i++) {
		r = nftnl_rule_alloc();
		match_set(r, dr, &client_sets[i]);
		e_verdict(r, NFT_JUMP, "lan_in");
		put_rule(bt, r, "input");
	}

	r = nftnl_rule_alloc();
	m_ct_established(r);
	e_verdict(r, NF_ACCEPT, NULL);
	put_rule(bt, r, "lan_in");
	if (dr->tproxy || dr->udp) { /* TPROXYed packets keep their remote destination: accept by mark */
		uint32_t mark = PGW_TPROXY_MARK;
		r = nftnl_rule_alloc();
		e_meta(r, NFT_META_MARK);
		e_cmp(r, NFT_CMP_EQ, &mark, 4);
		e_verdict(r, NF_ACCEPT, NULL);
		put_rule(bt, r, "lan_in");
	}
	{
		static const uint8_t icmp[] = {IPPROTO_ICMP, IPPROTO_ICMPV6};
		for (size_t i = 0; i < sizeof(icmp); i++) {
			r = nftnl_rule_alloc();
			m_u8(r, NFT_META_L4PROTO, icmp[i]);
			e_verdict(r, NF_ACCEPT, NULL);
			put_rule(bt, r, "lan_in");
		}
	}
	for (int v6 = 0; v6 <= 1; v6++) {
		r = nftnl_rule_alloc();
		m_u8(r, NFT_META_L4PROTO, IPPROTO_TCP);
		m_saddr_in(r, v6 ? SET_ACTIVE6 : SET_ACTIVE, v6 ? SET_ID_ACTIVE6 : SET_ID_ACTIVE);
		m_dport(r, NFT_CMP_EQ, dr->forwarder_port);
		e_verdict(r, NF_ACCEPT, NULL);
		put_rule(bt, r, "lan_in");
	}
	for (int i = 0; i < dr->n_api_allow; i++) { /* the API and dashboard: only from api_allow */
		r = nftnl_rule_alloc();
		m_saddr_prefix(r, &dr->api_allow[i]);
		m_u8(r, NFT_META_L4PROTO, IPPROTO_TCP);
		m_dport(r, NFT_CMP_EQ, dr->api_port);
		e_verdict(r, NF_ACCEPT, NULL);
		put_rule(bt, r, "lan_in");
	}
	if (dr->ha) { /* the HA peer, and only it: its VRRP adverts (protocol 112) and the config sync
		       * (pgw-api's port) */
		r = nftnl_rule_alloc();
		m_saddr_prefix(r, &dr->ha_peer);
		m_u8(r, NFT_META_L4PROTO, IPPROTO_VRRP);
		e_verdict(r, NF_ACCEPT, NULL);
		put_rule(bt, r, "lan_in");
		r = nftnl_rule_alloc();
		m_saddr_prefix(r, &dr->ha_peer);
		m_u8(r, NFT_META_L4PROTO, IPPROTO_TCP);
		m_dport(r, NFT_CMP_EQ, dr->api_port);
		e_verdict(r, NF_ACCEPT, NULL);
		put_rule(bt, r, "lan_in");
	}
	for (size_t i = 0; dr->dns_proxy && i < sizeof(l4); i++) { /* redirected DNS, for the resolver */
		r = nftnl_rule_alloc();
		m_u8(r, NFT_META_L4PROTO, l4[i]);
		m_dport(r, NFT_CMP_EQ, dr->dns_port);
		e_verdict(r, NF_ACCEPT, NULL);
		put_rule(bt, r, "lan_in");
	}
	if (dr->dns_local) {
		for (size_t i = 0; i < sizeof(l4); i++) {
			r = nftnl_rule_alloc();
			m_u8(r, NFT_META_L4PROTO, l4[i]);
			m_dport(r, NFT_CMP_EQ, 53);
			e_verdict(r, NF_ACCEPT, NULL);
			put_rule(bt, r, "lan_in");
		}
	}
	put_block(bt, dr, "lan_in", NULL, NULL);
	build_output(bt, d);
}

void ruleset_elements(struct batch *bt, const struct set_delta *d)
{
	/* take away first, then grant: a client moving active -> blocked is never in both, and no
	 * client is in a udp set without being in the active one */
	for (int v6 = 0; v6 <= 1; v6++)
		put_elems(bt, NFT_MSG_DELSETELEM, v6 ? SET_UDP6 : SET_UDP, 0, &d->del_udp, v6);
	for (int v6 = 0; v6 <= 1; v6++)
		put_elems(bt, NFT_MSG_DELSETELEM, v6 ? SET_ACTIVE6 : SET_ACTIVE, 0, &d->del_active, v6);
	for (int v6 = 0; v6 <= 1; v6++) {
		put_elems(bt, NFT_MSG_NEWSETELEM, v6 ? SET_BLOCKED6 : SET_BLOCKED, 0, &d->add_blocked, v6);
		put_elems(bt, NFT_MSG_DELSETELEM, v6 ? SET_BLOCKED6 : SET_BLOCKED, 0, &d->del_blocked, v6);
	}
	for (int v6 = 0; v6 <= 1; v6++)
		put_elems(bt, NFT_MSG_NEWSETELEM, v6 ? SET_ACTIVE6 : SET_ACTIVE, 0, &d->add_active, v6);
	for (int v6 = 0; v6 <= 1; v6++)
		put_elems(bt, NFT_MSG_NEWSETELEM, v6 ? SET_UDP6 : SET_UDP, 0, &d->add_udp, v6);
}

const char *const ruleset_grant_sets[RULESET_GRANT_SETS] = {SET_UDP, SET_UDP6, SET_ACTIVE, SET_ACTIVE6};

void ruleset_flush_set(struct batch *bt, const char *set)
{
	struct nftnl_set *s = set_of(set, 0);

	/* no elements named: the kernel flushes the set */
	nftnl_set_elems_nlmsg_build_payload(batch_msg(bt, NFT_MSG_DELSETELEM, 0), s);
	nftnl_set_free(s);
	batch_next(bt);
}

void ruleset_delete(struct batch *bt)
{
	/* add-then-delete makes the delete valid whether or not the table exists */
	put_table(bt, NFT_MSG_NEWTABLE);
	put_table(bt, NFT_MSG_DELTABLE);
}
