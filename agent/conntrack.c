/* conntrack.c - see conntrack.h. A dump of each family's table, filtered here by source
 * address (the clients are a sorted set), then one delete per entry found. */
#include "conntrack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct found {
	const struct addrset *clients; /* NULL: the ones redirected to ports[] */
	uint16_t ports[2];
	struct nf_conntrack **ct;
	size_t n, cap;
	int oom;
};

static int cmp_ip(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct net_ip));
}

/* Redirected to one of pgw's ports on the gateway (REDIRECT: the reply comes from another
 * address or port than the one the client asked for, and from that port), IPv4 or IPv6. Not the
 * gateway's own connections, nor another program's DNAT. */
static int redirected(const struct found *f, const struct nf_conntrack *ct)
{
	uint16_t port;
	int moved;

	if (nfct_attr_is_set(ct, ATTR_ORIG_PORT_DST) <= 0 || nfct_attr_is_set(ct, ATTR_REPL_PORT_SRC) <= 0)
		return 0;
	port = ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC));
	if (port != f->ports[0] && port != f->ports[1])
		return 0;
	moved = nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST) != nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC);
	if (nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO) == AF_INET) {
		moved |= nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST) != nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC);
	} else {
		const void *d = nfct_get_attr(ct, ATTR_ORIG_IPV6_DST), *s = nfct_get_attr(ct, ATTR_REPL_IPV6_SRC);
		moved |= d && s && memcmp(d, s, 16) != 0;
	}
	return moved;
}

static int on_entry(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *arg)
{
	struct found *f = arg;
	struct net_ip src;

	(void)type;
	if (!f->clients) {
		if (!redirected(f, ct))
			return NFCT_CB_CONTINUE;
	} else if (nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO) == AF_INET) {
		uint32_t a = nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_SRC); /* network order */
		memset(&src, 0, sizeof(src));
		src.a[10] = src.a[11] = 0xff;
		memcpy(src.a + 12, &a, 4);
	} else {
		const void *a = nfct_get_attr(ct, ATTR_ORIG_IPV6_SRC);
		if (!a)
			return NFCT_CB_CONTINUE;
		memcpy(src.a, a, 16);
	}
	if (f->clients && !bsearch(&src, f->clients->addr, f->clients->n, sizeof(src), cmp_ip))
		return NFCT_CB_CONTINUE;
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 64;
		struct nf_conntrack **p = realloc(f->ct, nc * sizeof(*p));
		if (!p) {
			f->oom = 1;
			return NFCT_CB_STOP;
		}
		f->ct = p;
		f->cap = nc;
	}
	f->ct[f->n++] = ct;
	return NFCT_CB_STOLEN; /* kept: deleted after the dump (no query inside a callback) */
}

/* One dump of each family, the entries f takes deleted after it. */
static int forget(struct found *f, char *err, size_t errlen)
{
	static const uint8_t families[] = {AF_INET, AF_INET6};
	struct nfct_handle *h;
	int deleted = 0, r = 0;

	h = nfct_open(CONNTRACK, 0);
	if (!h) {
		snprintf(err, errlen, "conntrack: %s", strerror(errno));
		return -errno;
	}
	nfct_callback_register(h, NFCT_T_ALL, on_entry, f);
	for (size_t i = 0; i < sizeof(families) && !f->oom; i++) {
		struct nfct_filter_dump *fd = nfct_filter_dump_create();
		if (!fd) {
			f->oom = 1;
			break;
		}
		nfct_filter_dump_set_attr_u8(fd, NFCT_FILTER_DUMP_L3NUM, families[i]);
		if (nfct_query(h, NFCT_Q_DUMP_FILTER, fd) < 0 && !r) {
			r = -errno;
			snprintf(err, errlen, "conntrack dump: %s", strerror(errno));
		}
		nfct_filter_dump_destroy(fd);
	}
	nfct_callback_unregister(h);
	for (size_t i = 0; i < f->n; i++) {
		/* ENOENT: it ended by itself meanwhile, which is just as good */
		if (nfct_query(h, NFCT_Q_DESTROY, f->ct[i]) == 0)
			deleted++;
		else if (errno != ENOENT && !r) {
			r = -errno;
			snprintf(err, errlen, "conntrack delete: %s", strerror(errno));
		}
		nfct_destroy(f->ct[i]);
	}
	free(f->ct);
	nfct_close(h);
	if (f->oom && !r) {
		snprintf(err, errlen, "conntrack: out of memory");
		r = -ENOMEM;
	}
	return r < 0 ? r : deleted;
}

int conntrack_forget(const struct addrset *clients, char *err, size_t errlen)
{
	struct found f = {.clients = clients};

	return clients->n ? forget(&f, err, errlen) : 0;
}

int conntrack_forget_redirected(uint16_t port1, uint16_t port2, char *err, size_t errlen)
{
	struct found f = {.ports = {port1, port2}};

	return forget(&f, err, errlen);
}
