/* nft.c - see nft.h: the netlink side. ruleset.c builds the batches; this sends them, reads
 * every ack, and asks whether the table is there. */
#include "nft.h"

#include "batch.h"
#include "ruleset.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/filter.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/chain.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACK_TIMEOUT_MS 5000

struct nft {
	struct mnl_socket *nl;
	unsigned portid;
	uint32_t seq;
};

struct nft *nft_open(char *err, size_t errlen)
{
	struct nft *n = calloc(1, sizeof(*n));

	if (!n) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!n->nl || mnl_socket_bind(n->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "netlink: %s (pgw-agent needs CAP_NET_ADMIN)", strerror(errno));
		if (n->nl)
			mnl_socket_close(n->nl);
		free(n);
		return NULL;
	}
	n->portid = mnl_socket_get_portid(n->nl);
	n->seq = (uint32_t)time(NULL);
	return n;
}

void nft_close(struct nft *n)
{
	if (!n)
		return;
	mnl_socket_close(n->nl);
	free(n);
}

static int start(struct batch *bt, struct nft *n, size_t elems, char *err, size_t errlen)
{
	if (batch_init(bt, n->seq, elems) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static void done(struct batch *bt, struct nft *n)
{
	n->seq = bt->seq + 1;
	batch_free(bt);
}

/* Send the batch and read one answer per message that asked for an ack. */
static int batch_send(struct nft *n, struct batch *bt, char *err, size_t errlen)
{
	char rbuf[MNL_SOCKET_BUFFER_SIZE];
	unsigned answered = 0;
	int first_err = 0, fd = mnl_socket_get_fd(n->nl);
	uint32_t failed_seq = 0;
	size_t len;

	if (batch_end(bt) < 0) {
		snprintf(err, errlen, "batch larger than its buffer");
		return -E2BIG;
	}
	len = mnl_nlmsg_batch_size(bt->b);
	{
		int sz = (int)(len + 65536);
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		sz = 4 << 20;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	if (mnl_socket_sendto(n->nl, mnl_nlmsg_batch_head(bt->b), len) < 0) {
		snprintf(err, errlen, "netlink send (%zu bytes): %s", len, strerror(errno));
		return -errno;
	}
	while (answered < bt->acks) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		struct nlmsghdr *nlh;
		ssize_t r;
		int left;

		r = poll(&pfd, 1, ACK_TIMEOUT_MS);
		if (r <= 0) {
			if (first_err)
				break; /* the kernel aborted the batch: not every message is answered */
			snprintf(err, errlen, "netlink: %u of %u acks after %d ms", answered, bt->acks, ACK_TIMEOUT_MS);
			return -ETIMEDOUT;
		}
		r = mnl_socket_recvfrom(n->nl, rbuf, sizeof(rbuf));
		if (r < 0) {
			snprintf(err, errlen, "netlink recv: %s", strerror(errno));
			return -errno;
		}
		left = (int)r;
		for (nlh = (struct nlmsghdr *)rbuf; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq < bt->first_seq ||
			    nlh->nlmsg_seq > bt->seq)
				continue;
			answered++;
			{
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
				int rc = mnl_nlmsg_get_payload_len(nlh) < sizeof(e->error) ? -EPROTO : e->error;
				if (rc < 0 && !first_err) { /* (a cut-short answer: a failure, never a success) */
					first_err = rc;
					failed_seq = nlh->nlmsg_seq;
				}
			}
		}
	}
	if (first_err) {
		snprintf(err, errlen, "kernel refused message %u of the batch: %s", failed_seq - bt->first_seq,
			 strerror(-first_err));
		return first_err;
	}
	return 0;
}

int nft_apply_full(struct nft *n, const struct desired *d, char *err, size_t errlen)
{
	struct batch bt;
	int r;

	if ((r = start(&bt, n, ruleset_full_elements(d), err, errlen)) < 0)
		return r;
	ruleset_full(&bt, d);
	r = batch_send(n, &bt, err, errlen);
	done(&bt, n);
	return r;
}

int nft_apply_elements(struct nft *n, const struct set_delta *d, char *err, size_t errlen)
{
	struct batch bt;
	int r;

	if ((r = start(&bt, n,
		       d->add_active.n + d->del_active.n + d->add_blocked.n + d->del_blocked.n + d->add_udp.n +
			   d->del_udp.n,
		       err, errlen)) < 0)
		return r;
	ruleset_elements(&bt, d);
	r = bt.acks ? batch_send(n, &bt, err, errlen) : 0;
	done(&bt, n);
	return r;
}

/* One GET request (nlh, its seq) answered: the callback sees the answer's message (1 if it judges
 * it whole, 0 if not), and the result is that, 0 for ENOENT, or -errno. */
static int ask(struct nft *n, struct nlmsghdr *nlh, uint32_t seq, int (*judge)(const struct nlmsghdr *))
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int r, found = 0;

	if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		struct pollfd pfd = {.fd = mnl_socket_get_fd(n->nl), .events = POLLIN};
		int left;

		if (poll(&pfd, 1, ACK_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		r = (int)mnl_socket_recvfrom(n->nl, buf, sizeof(buf));
		if (r < 0)
			return -errno;
		left = r;
		for (nlh = (struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
				if (mnl_nlmsg_get_payload_len(nlh) < sizeof(e->error))
					return -EPROTO;
				if (e->error == 0)
					return found;
				return e->error == -ENOENT ? 0 : e->error;
			}
			found = judge(nlh);
		}
	}
}

static int any(const struct nlmsghdr *nlh)
{
	(void)nlh;
	return 1;
}

static int awake(const struct nlmsghdr *nlh)
{
	struct nftnl_table *t = nftnl_table_alloc();
	int ok = t && nftnl_table_nlmsg_parse(nlh, t) == 0 &&
		 !(nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS) & NFT_TABLE_F_DORMANT);

	nftnl_table_free(t);
	return ok;
}

static int drops(const struct nlmsghdr *nlh)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	int ok = c && nftnl_chain_nlmsg_parse(nlh, c) == 0 && nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) &&
		 nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == NF_DROP;

	nftnl_chain_free(c);
	return ok;
}

/* One object of table inet pgw asked for by name (the table itself: name NULL), as a GET of
 * type with the table's and the name's attributes; judge says whether the answer will do. */
static int ask_named(struct nft *n, uint16_t type, uint16_t table_attr, uint16_t name_attr, const char *name,
		     int (*judge)(const struct nlmsghdr *))
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t seq = n->seq++;
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, NLM_F_ACK, seq);

	mnl_attr_put_strz(nlh, table_attr, NFT_TABLE);
	if (name)
		mnl_attr_put_strz(nlh, name_attr, name);
	return ask(n, nlh, seq, judge);
}

/* The table awake, its probe set there, and its forward chain hooked with policy drop (what
 * keeps a client's packets off the WAN, whatever the rules in it): 1, else 0, or -errno. The
 * events see other programs' changes at once; this is for when they were lost. */
int nft_table_present(struct nft *n)
{
	int r;

	if ((r = ask_named(n, NFT_MSG_GETTABLE, NFTA_TABLE_NAME, 0, NULL, awake)) <= 0)
		return r;
	if ((r = ask_named(n, NFT_MSG_GETSET, NFTA_SET_TABLE, NFTA_SET_NAME, RULESET_PROBE_SET, any)) <= 0)
		return r;
	return ask_named(n, NFT_MSG_GETCHAIN, NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, "forward", drops);
}

int nft_flush(struct nft *n, char *err, size_t errlen)
{
	struct batch bt;
	int r;

	if ((r = start(&bt, n, 0, err, errlen)) < 0)
		return r;
	ruleset_delete(&bt);
	r = batch_send(n, &bt, err, errlen);
	done(&bt, n);
	return r;
}

struct spoof_walk {
	int v6;
	nft_spoof_cb cb;
	void *arg;
};

static int count_packets(struct nftnl_expr *e, void *data)
{
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (name && strcmp(name, "counter") == 0)
		*(uint64_t *)data += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
	return 0;
}

static int spoof_elem(struct nftnl_set_elem *e, void *data)
{
	const struct spoof_walk *w = data;
	uint32_t len = 0;
	const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	struct net_ip ip;
	uint64_t packets = 0;

	if (!key || len != (w->v6 ? 24u : 12u))
		return 0;
	if (w->v6)
		memcpy(ip.a, key + 8, 16);
	else
		net_ip_from4((uint32_t)key[8] << 24 | (uint32_t)key[9] << 16 | (uint32_t)key[10] << 8 | key[11], &ip);
	nftnl_set_elem_expr_foreach(e, count_packets, &packets);
	w->cb(key, &ip, packets, w->arg);
	return 0;
}

static int spoof_msg(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (!s)
		return MNL_CB_ERROR;
	if (nftnl_set_elems_nlmsg_parse(nlh, s) == 0)
		nftnl_set_elem_foreach(s, spoof_elem, data);
	nftnl_set_free(s);
	return MNL_CB_OK;
}

/* Every element of set name, one answer message at a time to msg: 0, -ENOENT (no such set), or
 * -errno. */
static int dump_set(struct nft *n, const char *name, mnl_cb_t msg, void *arg)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;
	uint32_t seq = n->seq++;
	int r;

	if (!s)
		return -ENOMEM;
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, seq);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		struct pollfd pfd = {.fd = mnl_socket_get_fd(n->nl), .events = POLLIN};
		ssize_t got;

		if (poll(&pfd, 1, ACK_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		got = mnl_socket_recvfrom(n->nl, buf, sizeof(buf));
		if (got < 0)
			return -errno;
		r = mnl_cb_run(buf, (size_t)got, seq, n->portid, msg, arg);
	} while (r > 0);
	return r < 0 ? -errno : 0;
}

int nft_spoof_list(struct nft *n, nft_spoof_cb cb, void *arg)
{
	for (int v6 = 0; v6 <= 1; v6++) {
		struct spoof_walk w = {v6, cb, arg};
		int r = dump_set(n, v6 ? RULESET_SPOOF6 : RULESET_SPOOF4, spoof_msg, &w);

		if (r < 0 && r != -ENOENT)
			return r;
	}
	return 0;
}

struct grant_walk {
	struct addrset *out;
	size_t cap;
	int oom;
};

static int grant_elem(struct nftnl_set_elem *e, void *data)
{
	struct grant_walk *w = data;
	uint32_t len = 0;
	const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	struct net_ip ip;

	if (!key || (len != 4 && len != 16))
		return 0;
	if (len == 16)
		memcpy(ip.a, key, 16);
	else
		net_ip_from4((uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 | (uint32_t)key[2] << 8 | key[3], &ip);
	if (w->out->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 64;
		struct net_ip *p = realloc(w->out->addr, nc * sizeof(*p));
		if (!p) {
			w->oom = 1;
			return -1;
		}
		w->out->addr = p;
		w->cap = nc;
	}
	w->out->addr[w->out->n++] = ip;
	return 0;
}

static int grant_msg(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (!s)
		return MNL_CB_ERROR;
	if (nftnl_set_elems_nlmsg_parse(nlh, s) == 0)
		nftnl_set_elem_foreach(s, grant_elem, data);
	nftnl_set_free(s);
	return MNL_CB_OK;
}

int nft_flush_grants(struct nft *n, struct addrset *granted, char *err, size_t errlen)
{
	struct grant_walk w = {granted, 0, 0};
	int missing = 0;

	granted->addr = NULL;
	granted->n = 0;
	/* who was in them: their connections are to end as for any block (a failed read: they
	 * are flushed all the same, and time out instead) */
	for (size_t i = 0; i < RULESET_GRANT_SETS; i++)
		if (strncmp(ruleset_grant_sets[i], "active", 6) == 0)
			dump_set(n, ruleset_grant_sets[i], grant_msg, &w);
	addrset_sort(granted);
	for (size_t i = 0; i < RULESET_GRANT_SETS; i++) {
		struct batch bt;
		int r;

		if ((r = start(&bt, n, 0, err, errlen)) < 0)
			return r;
		ruleset_flush_set(&bt, ruleset_grant_sets[i]);
		r = batch_send(n, &bt, err, errlen);
		done(&bt, n);
		if (r == -ENOENT)
			missing++;
		else if (r < 0)
			return r;
	}
	return missing == RULESET_GRANT_SETS ? -ENOENT : 0;
}

/* ---- another program's changes ---- */

struct nft_watch {
	struct mnl_socket *nl;
};

struct nft_watch *nft_watch_open(const struct nft *n, char *err, size_t errlen)
{
	/* in the kernel: none sent for n's own batches (an event's nlmsg_pid is the port of the socket
	 * whose batch made it; one commit's events may share an skb, all of one port, so the first
	 * message's says it for all); loads are big-endian. The kinds are sorted out per message. */
	struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct nlmsghdr, nlmsg_pid)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohl(n->portid), 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, 0),	   /* ours: dropped */
	    BPF_STMT(BPF_RET | BPF_K, 0xffffffff), /* kept, whole */
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
	struct nft_watch *w = calloc(1, sizeof(*w));
	int big = 1 << 20;

	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!w->nl || setsockopt(mnl_socket_get_fd(w->nl), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ||
	    mnl_socket_bind(w->nl, 1u << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "nf_tables events: %s", strerror(errno));
		nft_watch_close(w);
		return NULL;
	}
	setsockopt(mnl_socket_get_fd(w->nl), SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	return w;
}

int nft_watch_fd(const struct nft_watch *w)
{
	return mnl_socket_get_fd(w->nl);
}

/* Anything made or deleted in a table: itself (a table re-added `dormant` unhooks every chain),
 * chains, rules, sets, elements. */
static int a_change(unsigned m)
{
	switch (m) {
	case NFT_MSG_NEWTABLE:
	case NFT_MSG_DELTABLE:
	case NFT_MSG_NEWCHAIN:
	case NFT_MSG_DELCHAIN:
	case NFT_MSG_NEWRULE:
	case NFT_MSG_DELRULE:
	case NFT_MSG_NEWSET:
	case NFT_MSG_DELSET:
	case NFT_MSG_NEWSETELEM:
	case NFT_MSG_DELSETELEM:
		return 1;
	default:
		return 0;
	}
}

/* The table an event names (attribute 1 of each kind: NFTA_TABLE_NAME, NFTA_CHAIN_TABLE,
 * NFTA_RULE_TABLE, NFTA_SET_TABLE) is ours. */
static int names_ours(const struct nlmsghdr *nlh)
{
	const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;

	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(*g) || g->nfgen_family != NFPROTO_INET)
		return 0;
	for (a = mnl_nlmsg_get_payload_offset(nlh, sizeof(*g));
	     mnl_attr_ok(a, (char *)mnl_nlmsg_get_payload_tail(nlh) - (char *)a); a = mnl_attr_next(a))
		if (mnl_attr_get_type(a) == 1)
			return mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0 &&
			       strcmp(mnl_attr_get_str(a), NFT_TABLE) == 0;
	return 0;
}

int nft_watch_drain(struct nft_watch *w)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int changed = 0, lost = 0;
	ssize_t got;

	while ((got = mnl_socket_recvfrom(w->nl, buf, sizeof(buf))) != 0) {
		int left = (int)got;

		if (got < 0) {
			if (errno == ENOBUFS) {
				lost = 1;
				continue;
			}
			break; /* EAGAIN: all read */
		}
		for (const struct nlmsghdr *nlh = (const void *)buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left))
			changed |= (nlh->nlmsg_type >> 8) == NFNL_SUBSYS_NFTABLES && a_change(nlh->nlmsg_type & 0xff) &&
				   names_ours(nlh);
	}
	return changed ? 1 : lost ? -ENOBUFS : 0;
}

void nft_watch_close(struct nft_watch *w)
{
	if (!w)
		return;
	if (w->nl)
		mnl_socket_close(w->nl);
	free(w);
}
