/* tc.c - see tc.h. */
#include "tc.h"

#include "log.h"
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define HTB_HANDLE   0x10000u	 /* 1: */
#define INGRESS	     0xffff0000u /* ffff: */
#define PSCHED_SHIFT 6		 /* the kernel's time unit for HTB buffers: 64 ns */

struct slotted {
	struct limit l;
	unsigned slot;
};

struct tc_state {
	struct slotted *a; /* applied, sorted by address */
	size_t n;
	int built;	      /* the qdiscs are ours and a holds what the kernel has */
	unsigned lan_ifindex; /* the LAN interface they are on */
	uint8_t used[TC_SLOTS + 1];
	struct mnl_socket *nl;
	uint32_t seq;
	char *err;
	size_t errlen;
};

struct tc_state *tc_open(void)
{
	return calloc(1, sizeof(struct tc_state));
}

void tc_close(struct tc_state *t)
{
	if (t)
		free(t->a);
	free(t);
}

void tc_forget(struct tc_state *t)
{
	t->built = 0;
}

/* Send one request, read its ack. An errno in tolerate (0-terminated) counts as success. */
static int talk(struct tc_state *t, struct nlmsghdr *nlh, const int *tolerate)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	ssize_t n;

	nlh->nlmsg_seq = ++t->seq;
	if (mnl_socket_sendto(t->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(t->nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	if (mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, mnl_socket_get_portid(t->nl), NULL, NULL) < 0) {
		int e = errno;
		for (; tolerate && *tolerate; tolerate++)
			if (e == *tolerate)
				return 0;
		return -e;
	}
	return 0;
}

static const int gone[] = {ENOENT, EINVAL, ENODEV, 0}; /* deleting what is not there */

static struct nlmsghdr *tc_msg(char *buf, uint16_t type, uint16_t flags, unsigned ifindex, uint32_t handle,
			       uint32_t parent, uint32_t info)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct tcmsg *tcm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = (int)ifindex;
	tcm->tcm_handle = handle;
	tcm->tcm_parent = parent;
	tcm->tcm_info = info;
	return nlh;
}

static int htb_root(struct tc_state *t, unsigned ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = tc_msg(buf, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, ifindex, HTB_HANDLE, TC_H_ROOT, 0);
	struct tc_htb_glob g = {.version = 3, .rate2quantum = 10, .defcls = 0}; /* unclassified: not shaped */
	struct nlattr *opt;

	mnl_attr_put_strz(nlh, TCA_KIND, "htb");
	opt = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put(nlh, TCA_HTB_INIT, sizeof(g), &g);
	mnl_attr_nest_end(nlh, opt);
	return talk(t, nlh, NULL);
}

static int ingress_qdisc(struct tc_state *t, unsigned ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = tc_msg(buf, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, ifindex, INGRESS, TC_H_INGRESS, 0);

	mnl_attr_put_strz(nlh, TCA_KIND, "ingress");
	return talk(t, nlh, NULL);
}

static int del_qdiscs(struct tc_state *t, unsigned ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int r = talk(t, tc_msg(buf, RTM_DELQDISC, 0, ifindex, 0, TC_H_ROOT, 0), gone);

	if (r == 0)
		r = talk(t, tc_msg(buf, RTM_DELQDISC, 0, ifindex, INGRESS, TC_H_INGRESS, 0), gone);
	return r;
}

/* The IFB: created (an existing one is fine) and up; its ifindex, or -errno. */
static int ifb_up(struct tc_state *t)
{
	static const int exists[] = {EEXIST, 0};
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;
	struct nlattr *li;
	unsigned idx;
	int r;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, TC_IFB_NAME);
	li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "ifb");
	mnl_attr_nest_end(nlh, li);
	if ((r = talk(t, nlh, exists)) < 0)
		return r;
	if (!(idx = if_nametoindex(TC_IFB_NAME)))
		return -ENODEV;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)idx;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	if ((r = talk(t, nlh, NULL)) < 0)
		return r;
	return (int)idx;
}

static int ifb_delete(struct tc_state *t)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_DELLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, TC_IFB_NAME);
	return talk(t, nlh, gone);
}

/* tc's ratespec of kbit/s (rates above 4 GB/s go in TCA_HTB_RATE64/CEIL64) */
static void ratespec(struct tc_ratespec *rs, uint64_t bytes_s)
{
	memset(rs, 0, sizeof(*rs));
	rs->linklayer = TC_LINKLAYER_ETHERNET; /* no rate table needed */
	rs->cell_align = -1;
	rs->rate = bytes_s >= 0xffffffffu ? 0xffffffffu : (uint32_t)bytes_s;
}

static int add_class(struct tc_state *t, unsigned ifindex, unsigned slot, uint32_t kbit)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = tc_msg(buf, RTM_NEWTCLASS, NLM_F_CREATE, ifindex, HTB_HANDLE | slot, HTB_HANDLE, 0);
	uint64_t bps = (uint64_t)kbit * 1000 / 8;		      /* bytes per second */
	uint64_t burst = bps / 50 > 3200 ? bps / 50 : 3200;	      /* 20 ms worth, at least two frames */
	uint64_t quantum = bps / 10;				      /* r2q 10, kept in HTB's range */
	uint64_t ticks = burst * 1000000000ull / bps >> PSCHED_SHIFT; /* the burst's time at the rate */
	struct tc_htb_opt o;
	struct nlattr *opt;

	memset(&o, 0, sizeof(o));
	ratespec(&o.rate, bps);
	ratespec(&o.ceil, bps);
	o.buffer = o.cbuffer = ticks > 0xffffffffu ? 0xffffffffu : (uint32_t)ticks;
	o.quantum = (uint32_t)(quantum < 1600 ? 1600 : quantum > 200000 ? 200000 : quantum);
	mnl_attr_put_strz(nlh, TCA_KIND, "htb");
	opt = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put(nlh, TCA_HTB_PARMS, sizeof(o), &o);
	if (bps >= 0xffffffffu) {
		mnl_attr_put_u64(nlh, TCA_HTB_RATE64, bps);
		mnl_attr_put_u64(nlh, TCA_HTB_CEIL64, bps);
	}
	mnl_attr_nest_end(nlh, opt);
	return talk(t, nlh, NULL);
}

/* u32 at prio slot on (ifindex, parent): ADDR as the source (src) or destination (and, given mac,
 * that source MAC: the link-layer header just before the network header, at ingress); to class
 * 1:slot, or (redirect_to) mirred egress redirect to that interface. */
static int add_filter(struct tc_state *t, unsigned ifindex, uint32_t parent, unsigned slot, const struct net_ip *a,
		      int src, unsigned redirect_to, const uint8_t *mac)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int v4 = net_ip_is4(a);
	uint16_t proto = v4 ? ETH_P_IP : ETH_P_IPV6;
	struct nlmsghdr *nlh = tc_msg(buf, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, ifindex, 0, parent,
				      TC_H_MAKE((uint32_t)slot << 16, htons(proto)));
	struct {
		struct tc_u32_sel sel;
		struct tc_u32_key k[6];
	} s;
	struct nlattr *opt;
	int nk = v4 ? 1 : 4;

	memset(&s, 0, sizeof(s));
	s.sel.flags = TC_U32_TERMINAL;
	s.sel.nkeys = (unsigned char)nk;
	for (int i = 0; i < nk; i++) {
		uint32_t w;
		memcpy(&w, v4 ? a->a + 12 : a->a + 4 * i, 4);
		s.k[i].mask = 0xffffffffu;
		s.k[i].val = w; /* network order, as in the packet */
		s.k[i].off = v4 ? (src ? 12 : 16) : (src ? 8 : 24) + 4 * i;
	}
	if (mac) { /* ether saddr: 8 bytes before the network header, then 2 more and the type */
		static const uint8_t m2[4] = {0xff, 0xff, 0, 0};
		uint8_t v2[4] = {mac[4], mac[5], 0, 0};
		memcpy(&s.k[nk].val, mac, 4);
		s.k[nk].mask = 0xffffffffu;
		s.k[nk++].off = -8;
		memcpy(&s.k[nk].val, v2, 4);
		memcpy(&s.k[nk].mask, m2, 4);
		s.k[nk++].off = -4;
		s.sel.nkeys = (unsigned char)nk;
	}
	mnl_attr_put_strz(nlh, TCA_KIND, "u32");
	opt = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put(nlh, TCA_U32_SEL, sizeof(s.sel) + (size_t)nk * sizeof(s.k[0]), &s);
	if (redirect_to) {
		struct tc_mirred m;
		struct nlattr *acts, *one, *aopt;

		memset(&m, 0, sizeof(m));
		m.action = TC_ACT_STOLEN;
		m.eaction = TCA_EGRESS_REDIR;
		m.ifindex = redirect_to;
		acts = mnl_attr_nest_start(nlh, TCA_U32_ACT);
		one = mnl_attr_nest_start(nlh, 1);
		mnl_attr_put_strz(nlh, TCA_ACT_KIND, "mirred");
		aopt = mnl_attr_nest_start(nlh, TCA_ACT_OPTIONS);
		mnl_attr_put(nlh, TCA_MIRRED_PARMS, sizeof(m), &m);
		mnl_attr_nest_end(nlh, aopt);
		mnl_attr_nest_end(nlh, one);
		mnl_attr_nest_end(nlh, acts);
	} else {
		mnl_attr_put_u32(nlh, TCA_U32_CLASSID, HTB_HANDLE | slot);
	}
	mnl_attr_nest_end(nlh, opt);
	return talk(t, nlh, NULL);
}

static int del_filter(struct tc_state *t, unsigned ifindex, uint32_t parent, unsigned slot, const struct net_ip *a)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint16_t proto = net_ip_is4(a) ? ETH_P_IP : ETH_P_IPV6;

	return talk(
	    t, tc_msg(buf, RTM_DELTFILTER, 0, ifindex, 0, parent, TC_H_MAKE((uint32_t)slot << 16, htons(proto))), gone);
}

static int del_class(struct tc_state *t, unsigned ifindex, unsigned slot)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];

	return talk(t, tc_msg(buf, RTM_DELTCLASS, 0, ifindex, HTB_HANDLE | slot, HTB_HANDLE, 0), gone);
}

/* One client's objects: filters first, so nothing points at a class being removed. */
static int client_del(struct tc_state *t, unsigned lan, unsigned ifb, const struct slotted *c)
{
	int r = 0;

	if (c->l.down_kbit) {
		r = del_filter(t, lan, HTB_HANDLE, c->slot, &c->l.addr);
		if (r == 0)
			r = del_class(t, lan, c->slot);
	}
	if (r == 0 && c->l.up_kbit) {
		r = del_filter(t, lan, INGRESS, c->slot, &c->l.addr);
		if (r == 0 && ifb)
			r = del_filter(t, ifb, HTB_HANDLE, c->slot, &c->l.addr);
		if (r == 0 && ifb)
			r = del_class(t, ifb, c->slot);
	}
	t->used[c->slot] = 0;
	return r;
}

/* Classes before the filters that lead to them; the redirect into the IFB last. */
static int client_add(struct tc_state *t, unsigned lan, unsigned ifb, const struct slotted *c)
{
	int r = 0;

	if (c->l.down_kbit) {
		r = add_class(t, lan, c->slot, c->l.down_kbit);
		if (r == 0)
			r = add_filter(t, lan, HTB_HANDLE, c->slot, &c->l.addr, 0, 0, NULL);
	}
	if (r == 0 && c->l.up_kbit) {
		r = add_class(t, ifb, c->slot, c->l.up_kbit);
		if (r == 0)
			r = add_filter(t, ifb, HTB_HANDLE, c->slot, &c->l.addr, 1, 0, NULL);
		/* a bound client's: only from its MAC, so a host borrowing the address (dropped later by
		 * mac_guard) cannot use up the real client's upload */
		if (r == 0)
			r = add_filter(t, lan, INGRESS, c->slot, &c->l.addr, 1, ifb, c->l.has_mac ? c->l.mac : NULL);
	}
	return r;
}

static unsigned free_slot(struct tc_state *t)
{
	for (unsigned s = 1; s <= TC_SLOTS; s++)
		if (!t->used[s]) {
			t->used[s] = 1;
			return s;
		}
	return 0;
}

static int limit_eq(const struct limit *a, const struct limit *b)
{
	return memcmp(&a->addr, &b->addr, sizeof(a->addr)) == 0 && a->down_kbit == b->down_kbit &&
	       a->up_kbit == b->up_kbit && a->has_mac == b->has_mac && (!a->has_mac || memcmp(a->mac, b->mac, 6) == 0);
}

static int cmp_addr(const struct net_ip *a, const struct net_ip *b)
{
	return memcmp(a, b, sizeof(*a));
}

/* Everything from nothing: the old qdiscs (and their classes and filters) go, new ones come. */
static int rebuild(struct tc_state *t, unsigned lan, const struct limitset *want, struct slotted *next, size_t *nn,
		   int *ifb)
{
	int r;

	memset(t->used, 0, sizeof(t->used));
	if ((r = del_qdiscs(t, lan)) < 0)
		return r;
	if (!want->n) /* nothing to shape: the IFB goes too */
		return ifb_delete(t);
	if ((r = ifb_up(t)) < 0)
		return r;
	*ifb = r;
	if ((r = del_qdiscs(t, (unsigned)*ifb)) < 0 || (r = htb_root(t, lan)) < 0 ||
	    (r = htb_root(t, (unsigned)*ifb)) < 0 || (r = ingress_qdisc(t, lan)) < 0)
		return r;
	for (size_t i = 0; i < want->n; i++) {
		unsigned s = free_slot(t);
		if (!s) {
			log_warnx("rate limits: more than %d clients have one; %zu are not limited", TC_SLOTS,
				  want->n - i);
			break;
		}
		next[*nn].l = want->e[i];
		next[*nn].slot = s;
		if ((r = client_add(t, lan, (unsigned)*ifb, &next[*nn])) < 0)
			return r;
		(*nn)++;
	}
	return 0;
}

int tc_apply(struct tc_state *t, const char *lan_iface, const struct limitset *want, char *err, size_t errlen)
{
	unsigned lan = if_nametoindex(lan_iface);
	int ifb = (int)if_nametoindex(TC_IFB_NAME), r = 0;
	struct slotted *next;
	size_t nn = 0;
	int warned = 0;

	if (!lan) {
		t->built = 0; /* rebuilt when it is back */
		return 0;
	}
	if (lan != t->lan_ifindex)
		t->built = 0;
	if (t->built && t->n == want->n) { /* the same limits: nothing to do */
		size_t i = 0;
		while (i < want->n && limit_eq(&t->a[i].l, &want->e[i]))
			i++;
		if (i == want->n)
			return 0;
	}
	/* (from here on something changes: 1 on success) */
	/* with no limits and none of ours in the kernel (no IFB), an admin's own qdiscs stay */
	if (!t->built && !want->n && !ifb) {
		t->built = 1;
		t->lan_ifindex = lan;
		t->n = 0;
		return 0;
	}
	if (!(next = calloc(want->n + 1, sizeof(*next)))) {
		snprintf(err, errlen, "rate limits: out of memory");
		return -ENOMEM;
	}
	t->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!t->nl || mnl_socket_bind(t->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto out;
	}
	t->seq = (uint32_t)time(NULL);
	if (t->lan_ifindex && lan != t->lan_ifindex && t->n) /* the LAN changed: the old one loses ours */
		del_qdiscs(t, t->lan_ifindex);
	if (!t->built || !t->n) { /* nothing of ours in the kernel yet: from nothing */
		r = rebuild(t, lan, want, next, &nn, &ifb);
	} else if (!want->n) {
		memset(t->used, 0, sizeof(t->used));
		r = del_qdiscs(t, lan);
		if (r == 0)
			r = ifb_delete(t);
	} else { /* the differences: who lost or changed a limit first, then who gained one */
		size_t i = 0, j = 0;
		while (r == 0 && i < t->n) {
			while (j < want->n && cmp_addr(&want->e[j].addr, &t->a[i].l.addr) < 0)
				j++;
			if (j < want->n && limit_eq(&want->e[j], &t->a[i].l))
				t->a[i].slot |= 0x80000000u; /* kept */
			else
				r = client_del(t, lan, (unsigned)ifb, &t->a[i]);
			i++;
		}
		for (i = 0, j = 0; r == 0 && j < want->n; j++) {
			while (i < t->n && cmp_addr(&t->a[i].l.addr, &want->e[j].addr) < 0)
				i++;
			if (i < t->n && (t->a[i].slot & 0x80000000u) &&
			    cmp_addr(&t->a[i].l.addr, &want->e[j].addr) == 0) {
				next[nn].l = want->e[j];
				next[nn++].slot = t->a[i].slot & ~0x80000000u;
				continue;
			}
			next[nn].l = want->e[j];
			if (!(next[nn].slot = free_slot(t))) {
				if (!warned++)
					log_warnx(
					    "rate limits: more than %d clients have one; the rest are not limited",
					    TC_SLOTS);
				continue; /* (the clients kept further on still are) */
			}
			r = client_add(t, lan, (unsigned)ifb, &next[nn]);
			nn++;
		}
	}
out:
	if (t->nl)
		mnl_socket_close(t->nl);
	t->nl = NULL;
	if (r < 0) {
		snprintf(err, errlen, "rate limits on %s: %s", lan_iface, strerror(-r));
		t->built = 0;
		free(next);
		return r;
	}
	free(t->a);
	t->a = next;
	t->n = nn;
	t->built = 1;
	t->lan_ifindex = lan;
	return 1;
}

struct present_ctx {
	unsigned ifindex;
	uint32_t handle, parent;
	const char *kind;
	int found;
};

static int qdisc_cb(const struct nlmsghdr *nlh, void *data)
{
	struct present_ctx *c = data;
	const struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *attr;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*tcm) || nlh->nlmsg_type != RTM_NEWQDISC ||
	    (unsigned)tcm->tcm_ifindex != c->ifindex || tcm->tcm_handle != c->handle || tcm->tcm_parent != c->parent)
		return MNL_CB_OK;
	mnl_attr_for_each(attr, nlh, sizeof(*tcm))
	{
		if (mnl_attr_get_type(attr) == TCA_KIND && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0 &&
		    strcmp(mnl_attr_get_str(attr), c->kind) == 0)
			c->found = 1;
	}
	return MNL_CB_OK;
}

/* A qdisc (handle, parent, kind) on ifindex: 1, 0, or -1 when that cannot be told. */
static int has_qdisc(unsigned ifindex, uint32_t handle, uint32_t parent, const char *kind)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct present_ctx c = {ifindex, handle, parent, kind, 0};
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct tcmsg *tcm;
	uint32_t seq = (uint32_t)time(NULL);
	int r;

	if (!(nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC)))
		return -1;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(nl);
		return -1;
	}
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETQDISC;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = (int)ifindex;
	r = mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0 ? -1 : 1;
	while (r > 0) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			r = -1;
			break;
		}
		r = mnl_cb_run(buf, (size_t)n, seq, mnl_socket_get_portid(nl), qdisc_cb, &c);
	}
	mnl_socket_close(nl);
	return r < 0 ? -1 : c.found;
}

int tc_present(struct tc_state *t, const char *lan_iface)
{
	unsigned lan = if_nametoindex(lan_iface), ifb;

	if (!t->built || !t->n || !lan)
		return 1;
	if (!(ifb = if_nametoindex(TC_IFB_NAME)))
		return 0;
	/* a question that cannot be answered is not a reason to rebuild */
	return has_qdisc(lan, HTB_HANDLE, TC_H_ROOT, "htb") != 0 &&
	       has_qdisc(lan, INGRESS, TC_H_INGRESS, "ingress") != 0 &&
	       has_qdisc(ifb, HTB_HANDLE, TC_H_ROOT, "htb") != 0;
}
