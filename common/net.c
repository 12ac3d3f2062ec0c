/* net.c - see net.h. */
#include "net.h"

#include "parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <net/if.h>
#include <netdb.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <string.h>
#include <unistd.h>

int net_ipv4_parse(const char *s, uint32_t *addr)
{
	struct in_addr a;
	int dots = 0;

	for (const char *p = s; *p; p++) {
		if (*p == '.')
			dots++;
		else if (!isdigit((unsigned char)*p))
			return -EINVAL;
	}
	if (dots != 3 || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*addr = ntohl(a.s_addr);
	return 0;
}

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void net_ip_from4(uint32_t addr, struct net_ip *out)
{
	uint32_t n = htonl(addr);

	memcpy(out->a, v4mapped, 12);
	memcpy(out->a + 12, &n, 4);
}

int net_ip_is4(const struct net_ip *ip)
{
	return memcmp(ip->a, v4mapped, 12) == 0;
}

uint32_t net_ip_v4(const struct net_ip *ip)
{
	uint32_t n;

	memcpy(&n, ip->a + 12, 4);
	return ntohl(n);
}

int net_ip_parse(const char *s, struct net_ip *out)
{
	struct in6_addr a6;
	uint32_t a4;

	if (net_ipv4_parse(s, &a4) == 0) {
		net_ip_from4(a4, out);
		return 0;
	}
	if (!strchr(s, ':') || strchr(s, '%') || inet_pton(AF_INET6, s, &a6) != 1)
		return -EINVAL;
	memcpy(out->a, &a6, 16);
	return 0;
}

int net_ip_from_sa(const struct sockaddr_storage *sa, struct net_ip *out)
{
	if (sa->ss_family == AF_INET) {
		net_ip_from4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr), out);
		return 0;
	}
	if (sa->ss_family == AF_INET6) {
		memcpy(out->a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 0;
	}
	return -EAFNOSUPPORT;
}

void net_ip_str(const struct net_ip *ip, char buf[NET_IP_STR_MAX])
{
	if (net_ip_is4(ip))
		inet_ntop(AF_INET, ip->a + 12, buf, NET_IP_STR_MAX);
	else
		inet_ntop(AF_INET6, ip->a, buf, NET_IP_STR_MAX);
}

void net_sa_ip_str(const struct sockaddr_storage *sa, char buf[NET_IP_STR_MAX])
{
	struct net_ip ip;

	if (net_ip_from_sa(sa, &ip) < 0)
		snprintf(buf, NET_IP_STR_MAX, "?");
	else
		net_ip_str(&ip, buf);
}

uint16_t net_sa_port(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

int net_sa_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	struct net_ip x, y;

	return net_ip_from_sa(a, &x) == 0 && net_ip_from_sa(b, &y) == 0 && memcmp(&x, &y, sizeof(x)) == 0;
}

int net_addr_embedded_v4(const struct sockaddr_storage *sa, uint32_t *v4)
{
	static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
	const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, *p;

	if (sa->ss_family != AF_INET6)
		return 0;
	p = memcmp(a, nat64, 12) == 0 ? a + 12 : a[0] == 0x20 && a[1] == 0x02 ? a + 2 : NULL;
	if (!p)
		return 0;
	*v4 = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return 1;
}

uint32_t net_ip_hash(const struct net_ip *ip)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (int i = 0; i < 16; i++)
		h = (h ^ ip->a[i]) * 16777619u;
	return h;
}

int net_client_ip(const char *s, const struct net_cidr4 *lan, char canon[NET_IP_STR_MAX], const char **why)
{
	struct net_ip ip;
	const uint8_t *a = ip.a;

	if (net_ip_parse(s, &ip) < 0) {
		*why = "is not an IPv4 address (like 192.168.2.10) or an IPv6 address (like fd00:2::10)";
		return -EINVAL;
	}
	if (net_ip_is4(&ip)) {
		if (lan && !net_cidr4_contains(lan, net_ip_v4(&ip))) {
			*why = "is not inside the LAN network";
			return -EINVAL;
		}
	} else if (a[0] == 0xff) {
		*why = "is an IPv6 multicast address, which cannot be a client";
		return -EINVAL;
	} else if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) {
		*why = "is an IPv6 link-local address, which cannot be a client (it never reaches the internet)";
		return -EINVAL;
	} else if (memcmp(a, v4mapped, 10) == 0) { /* ::, ::1, ::a.b.c.d (::ffff:a.b.c.d is IPv4, above) */
		*why = "is the unspecified, loopback or an IPv4-compatible IPv6 address, which cannot be a client";
		return -EINVAL;
	}
	net_ip_str(&ip, canon);
	return 0;
}

int net_cidr4_parse(const char *s, struct net_cidr4 *out)
{
	char buf[INET_ADDRSTRLEN + 4];
	const char *slash = strchr(s, '/');
	uint64_t prefix;
	uint32_t addr, mask;
	size_t len;

	if (!slash)
		return -EINVAL;
	len = (size_t)(slash - s);
	if (len == 0 || len >= INET_ADDRSTRLEN)
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (net_ipv4_parse(buf, &addr) < 0 || parse_u64(slash + 1, 0, 32, &prefix) < 0)
		return -EINVAL;
	mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
	if (addr & ~mask)
		return -EINVAL;
	out->addr = addr;
	out->prefix = (uint8_t)prefix;
	return 0;
}

int net_cidr4_contains(const struct net_cidr4 *c, uint32_t addr)
{
	uint32_t mask = c->prefix == 0 ? 0 : 0xffffffffu << (32 - c->prefix);

	return (addr & mask) == c->addr;
}

int net_hostport_parse(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon, *h = s;
	size_t len;
	uint64_t p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		len = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			return -EINVAL;
		len = (size_t)(colon - s);
	}
	if (len == 0 || len >= hostlen)
		return -EINVAL;
	if (parse_u64(colon + 1, 1, 65535, &p) < 0)
		return -EINVAL;
	memcpy(host, h, len);
	host[len] = '\0';
	*port = (uint16_t)p;
	return 0;
}

int net_mac_parse(const char *s, uint8_t out[6])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t m[6];
	char sep = 0;

	if (!s || strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		const char *h = p[0] ? strchr(hex, tolower((unsigned char)p[0])) : NULL;
		const char *l = p[1] ? strchr(hex, tolower((unsigned char)p[1])) : NULL;
		if (!h || !l)
			return -EINVAL;
		if (i < 5) {
			if ((p[2] != ':' && p[2] != '-') || (sep && p[2] != sep))
				return -EINVAL;
			sep = p[2];
		}
		m[i] = (uint8_t)((h - hex) << 4 | (l - hex));
	}
	if (m[0] & 1)
		return -EINVAL;
	if (!(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
		return -EINVAL;
	memcpy(out, m, 6);
	return 0;
}

void net_mac_str(const uint8_t mac[6], char out[NET_MAC_STR_MAX])
{
	snprintf(out, NET_MAC_STR_MAX, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

int net_ifname_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (; *s; s++) {
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s))
			return 0;
	}
	return 1;
}

int net_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* A comma-separated list (spaces around items allowed), each item handed to one(item, i, ctx):
 * how many, or -EINVAL (an empty item, one longer than 511, more than max, a trailing comma, or
 * one() refusing one). */
static int list_walk(const char *s, int max, int (*one)(const char *item, int i, void *ctx), void *ctx)
{
	char item[512];
	int n = 0;

	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		while (len && *s == ' ')
			s++, len--;
		while (len && s[len - 1] == ' ')
			len--;
		if (len == 0 || len >= sizeof(item) || n == max)
			return -EINVAL;
		memcpy(item, s, len);
		item[len] = '\0';
		if (one(item, n, ctx) < 0)
			return -EINVAL;
		n++;
		if (!comma)
			break;
		s = comma + 1;
		if (!*s)
			return -EINVAL; /* a trailing comma */
	}
	return n;
}

static int one_url(const char *item, int i, void *ctx)
{
	return net_http_url_parse(item, (struct net_http_url *)ctx + i);
}

int net_http_url_list_parse(const char *s, struct net_http_url *out, int max)
{
	int n = list_walk(s, max, one_url, out);

	return n > 0 ? n : -EINVAL;
}

int net_http_url_parse(const char *url, struct net_http_url *out)
{
	const char *h, *end, *slash, *colon;
	size_t hl;
	uint64_t port = 80;

	memset(out, 0, sizeof(*out));
	if (strpbrk(url, " \t\r\n"))
		return -EINVAL;
	if (strncmp(url, "https://", 8) == 0) {
		out->tls = 1;
		port = 443;
		h = url + 8;
	} else if (strncmp(url, "http://", 7) == 0) {
		h = url + 7;
	} else {
		return -EINVAL;
	}
	slash = strchr(h, '/');
	if (!slash)
		slash = h + strlen(h);
	if (*h == '[') { /* [IPv6]:port */
		struct net_ip ip;
		end = memchr(h, ']', (size_t)(slash - h));
		if (!end || (size_t)(end - h - 1) > NET_HOST_MAX)
			return -EINVAL;
		memcpy(out->host, h + 1, (size_t)(end - h - 1));
		if (net_ip_parse(out->host, &ip) < 0 || net_ip_is4(&ip))
			return -EINVAL;
		out->is6 = 1;
		end++;
		if (end != slash && *end != ':')
			return -EINVAL;
		colon = end == slash ? NULL : end;
	} else {
		colon = memchr(h, ':', (size_t)(slash - h));
		hl = (size_t)((colon ? colon : slash) - h);
		if (hl == 0 || hl > NET_HOST_MAX)
			return -EINVAL;
		memcpy(out->host, h, hl);
		for (size_t i = 0; i < hl; i++)
			if (!isalnum((unsigned char)out->host[i]) && out->host[i] != '.' && out->host[i] != '-')
				return -EINVAL;
	}
	if (colon) {
		char pb[8];
		size_t pl = (size_t)(slash - colon - 1);
		if (pl == 0 || pl >= sizeof(pb))
			return -EINVAL;
		memcpy(pb, colon + 1, pl);
		pb[pl] = '\0';
		if (parse_u64(pb, 1, 65535, &port) < 0)
			return -EINVAL;
	}
	out->port = (uint16_t)port;
	if (strlen(*slash ? slash : "/") >= sizeof(out->path))
		return -EINVAL;
	snprintf(out->path, sizeof(out->path), "%s", *slash ? slash : "/");
	return 0;
}

void net_ip_to_sa(const struct net_ip *ip, uint16_t port, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (net_ip_is4(ip)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = htonl(net_ip_v4(ip));
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, ip->a, 16);
	}
}

socklen_t net_sa_len(const struct sockaddr_storage *sa)
{
	return sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

int net_resolve(const char *host, uint16_t port, struct sockaddr_storage *out)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL, *pick = NULL;
	struct net_ip ip;

	memset(out, 0, sizeof(*out));
	if (net_ip_parse(host, &ip) == 0) {
		net_ip_to_sa(&ip, port, out);
		return 0;
	}
	if (strchr(host, ':') || getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return -ENOENT;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) /* the first IPv4 address, else the first IPv6 */
		if ((ai->ai_family == AF_INET && (!pick || pick->ai_family != AF_INET)) ||
		    (ai->ai_family == AF_INET6 && !pick))
			pick = ai;
	if (pick && net_ip_from_sa((const struct sockaddr_storage *)pick->ai_addr, &ip) == 0)
		net_ip_to_sa(&ip, port, out);
	freeaddrinfo(res);
	return out->ss_family ? 0 : -ENOENT;
}

int net_prefix_parse(const char *s, struct net_prefix *out)
{
	char buf[NET_IP_STR_MAX + 1];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	uint64_t bits;
	int v4;

	if (len == 0 || len > NET_IP_STR_MAX)
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (net_ip_parse(buf, &out->addr) < 0)
		return -EINVAL;
	v4 = net_ip_is4(&out->addr);
	if (!slash)
		bits = v4 ? 32 : 128;
	else if (parse_u64(slash + 1, 0, v4 ? 32 : 128, &bits) < 0)
		return -EINVAL;
	out->len = (uint8_t)(bits + (v4 ? 96 : 0));
	for (unsigned i = out->len; i < 128; i++) /* host bits must be zero */
		if (out->addr.a[i / 8] & (0x80 >> (i % 8)))
			return -EINVAL;
	return 0;
}

void net_prefix_str(const struct net_prefix *p, char out[NET_PREFIX_STR_MAX])
{
	char ip[NET_IP_STR_MAX];
	int v4 = net_ip_is4(&p->addr);

	net_ip_str(&p->addr, ip);
	snprintf(out, NET_PREFIX_STR_MAX, "%s/%u", ip, (unsigned)(p->len - (v4 ? 96 : 0)));
}

int net_prefix_contains(const struct net_prefix *p, const struct net_ip *ip)
{
	unsigned full = p->len / 8, rest = p->len % 8;

	if (net_ip_is4(&p->addr) != net_ip_is4(ip)) /* ::/0 is not every IPv4 address */
		return 0;
	if (memcmp(p->addr.a, ip->a, full) != 0)
		return 0;
	return rest == 0 || ((p->addr.a[full] ^ ip->a[full]) & (0xff00 >> rest) & 0xff) == 0;
}

int net_iface_prefixes6(const char *ifname, struct net_prefix *out, int max)
{
	/* /proc/net/if_inet6 (this network namespace's), not getifaddrs(): no netlink dump for a
	 * list the kernel writes out as text (the units allow netlink for net_route_oif). A line: the
	 * address (32 hex digits), the interface index, the prefix length, the scope, the flags (hex)
	 * and the name. */
	FILE *f = fopen("/proc/net/if_inet6", "re");
	char hex[33], name[IF_NAMESIZE + 1];
	unsigned idx, plen, scope, flags;
	int n = 0;

	if (!f)
		return 0;
	while (n < max && fscanf(f, "%32s %x %x %x %x %16s", hex, &idx, &plen, &scope, &flags, name) == 6) {
		struct net_prefix p;
		int k, dup = 0;

		/* scope 0: global (and unique local); link-local (0x20) and host (0x10) skipped */
		if (strcmp(name, ifname) != 0 || scope != 0 || plen > 128 || strlen(hex) != 32)
			continue;
		memset(&p, 0, sizeof(p));
		for (k = 0; k < 16; k++) {
			unsigned b;
			if (sscanf(hex + 2 * k, "%2x", &b) != 1)
				break;
			p.addr.a[k] = (uint8_t)b;
		}
		if (k < 16)
			continue;
		p.len = (uint8_t)plen;
		for (k = 0; k < 16; k++) { /* the host bits off */
			int keep = (int)plen - 8 * k;
			if (keep <= 0)
				p.addr.a[k] = 0;
			else if (keep < 8)
				p.addr.a[k] &= (uint8_t)(0xff00 >> keep);
		}
		for (k = 0; k < n; k++)
			dup |= out[k].len == p.len && memcmp(out[k].addr.a, p.addr.a, 16) == 0;
		if (!dup)
			out[n++] = p;
	}
	fclose(f);
	return n;
}

static int one_prefix(const char *item, int i, void *ctx)
{
	return strlen(item) < 80 ? net_prefix_parse(item, (struct net_prefix *)ctx + i) : -EINVAL;
}

int net_prefix_list_parse(const char *s, struct net_prefix *out, int max)
{
	return list_walk(s, max, one_prefix, out);
}

/* The IPv4 networks no proxy or webhook may be in; those marked private only where a request
 * made for a user (a webhook) must not go, but a proxy may be (a proxy farm on 10.0.0.0/8). */
static const struct {
	uint32_t net;
	uint8_t len, private_only;
	const char *why;
} v4_nets[] = {
    {0x7f000000, 8, 0, "a loopback address"},
    {0x00000000, 8, 0, "an unspecified (\"this network\") address"},
    {0xa9fe0000, 16, 0, "a link-local address"},
    {0xe0000000, 4, 0, "a multicast address"},
    {0xf0000000, 4, 0, "a reserved or broadcast address"},
    {0x0a000000, 8, 1, "a private address"},
    {0xac100000, 12, 1, "a private address"},
    {0xc0a80000, 16, 1, "a private address"},
    {0x64400000, 10, 1, "a shared (CGNAT) address"},
};

static const char *special_v4(uint32_t a, const struct net_lan *lan, int private)
{
	for (size_t i = 0; i < sizeof(v4_nets) / sizeof(v4_nets[0]); i++)
		if ((private || !v4_nets[i].private_only) &&
		    (a & (0xffffffffu << (32 - v4_nets[i].len))) == v4_nets[i].net)
			return v4_nets[i].why;
	if (lan && lan->v4.prefix && net_cidr4_contains(&lan->v4, a))
		return "on the LAN (lan_cidr)";
	return NULL;
}

/* net_addr_special, and with private the networks only a webhook must not reach too. */
static const char *special(const struct sockaddr_storage *sa, const struct net_lan *lan, int private)
{
	if (sa->ss_family == AF_INET)
		return special_v4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr), lan, private);
	if (sa->ss_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const uint8_t zero[8], nat64l[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
		struct net_ip ip;
		uint32_t v4;
		const char *why;

		/* ::/64: ::, ::1, ::a.b.c.d, ::ffff:a.b.c.d, ::ffff:0:a.b.c.d: no IPv4 by the back door */
		if (memcmp(a, zero, 8) == 0) {
			static const uint8_t any[16], one[16] = {[15] = 1};
			return memcmp(a, any, 16) == 0	 ? "the unspecified address"
			       : memcmp(a, one, 16) == 0 ? "a loopback address"
							 : "an IPv4-mapped or -compatible IPv6 address";
		}
		if (a[0] == 0xff)
			return "a multicast address";
		if (a[0] == 0xfe && (a[1] & 0x80) == 0x80) /* fe80::/10, and fec0::/10 (site-local, deprecated) */
			return "a link-local address";
		if (memcmp(a, nat64l, 6) == 0) /* 64:ff9b:1::/48, local-use NAT64: into networks of its own */
			return "a local-use NAT64 address";
		if (private && (a[0] & 0xfe) == 0xfc)
			return "a unique local address";
		/* NAT64 and 6to4: judged as the IPv4 inside too (and still by the LAN's own prefixes:
		 * a LAN may number itself from 2002::/16; found by fuzz_netguard) */
		if (net_addr_embedded_v4(sa, &v4) && (why = special_v4(v4, lan, private)))
			return why;
		memcpy(ip.a, a, 16);
		for (int i = 0; lan && i < lan->n6; i++)
			if (net_prefix_contains(&lan->v6[i], &ip))
				return "on the LAN (an IPv6 network of lan_iface)";
		return NULL;
	}
	return "not an IP address";
}

const char *net_addr_special(const struct sockaddr_storage *sa, const struct net_lan *lan)
{
	return special(sa, lan, 0);
}

/* The source address the kernel would send to a from, without sending anything: a UDP socket
 * connected to a takes one (the outgoing interface's, or a itself for one of this host's own
 * addresses: the local routing table). 1 with *me set, 0 when a is unreachable, -1 when it
 * cannot be told (EACCES: a broadcast address). */
static int route_source(const struct sockaddr_storage *a, struct sockaddr_storage *me)
{
	struct sockaddr_storage to = *a;
	socklen_t len = sizeof(*me);
	int fd = socket(a->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = -1;

	if (fd < 0)
		return -1;
	if (to.ss_family == AF_INET)
		((struct sockaddr_in *)&to)->sin_port = htons(9);
	else
		((struct sockaddr_in6 *)&to)->sin6_port = htons(9);
	if (connect(fd, (struct sockaddr *)&to, net_sa_len(&to)) == 0 &&
	    getsockname(fd, (struct sockaddr *)me, &len) == 0)
		r = 1;
	else if (errno == ENETUNREACH || errno == EHOSTUNREACH || errno == EPERM)
		r = 0;
	close(fd);
	return r;
}

/* 1 when a is the gateway's own, 0 when not (*oif net_route_oif's), -1 when the kernel's route
 * to it cannot be looked up, -2 when the source it would take cannot be told (EACCES: a
 * broadcast address; out of descriptors). (A bind() test would say "local" for everything with
 * ip_nonlocal_bind, set next to keepalived.) */
static int judge_own(const struct sockaddr_storage *a, int *oif)
{
	struct sockaddr_storage me;
	unsigned char type;
	int r = route_source(a, &me);

	*oif = -1;
	if (r == 1 && net_sa_same_host(&me, a))
		return 1;
	/* the source test misses what the kernel delivers here without an address of its own: a
	 * local route (AnyIP), an anycast one (the subnet-router address of one of its IPv6
	 * networks, answered by the gateway itself when it forwards) */
	*oif = net_route_oif(a, &type);
	if (type == RTN_LOCAL || type == RTN_ANYCAST)
		return 1;
	if (r < 0)
		return -2;
	return *oif < 0 && type == RTN_UNSPEC ? -1 : 0;
}

/* judge_own, where a source that cannot be told counts as the gateway's own (refused). */
static int own_address(const struct sockaddr_storage *a, int *oif)
{
	int k = judge_own(a, oif);

	return k == -2 ? 1 : k;
}

int net_addr_local(const struct sockaddr_storage *a)
{
	return net_addr_own(a) != 0; /* unreachable: not local; cannot tell: local, refused */
}

int net_addr_own(const struct sockaddr_storage *a)
{
	int oif, k = judge_own(a, &oif);

	return k < 0 ? -1 : k;
}

struct mnl_socket *net_own_watch_open(void)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (nl && mnl_socket_bind(nl, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
				  MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		mnl_socket_close(nl);
		errno = e;
		return NULL;
	}
	return nl;
}

void net_own_watch_close(struct mnl_socket *nl)
{
	if (nl)
		mnl_socket_close(nl);
}

/* Whether a whole message starts at h, left bytes before the end: libmnl's mnl_nlmsg_ok, and
 * the length checked as unsigned too (libmnl 1.0.4 compares it as a signed int: a message of 2
 * GiB or more would pass, and be read far past the buffer; fuzz_rtnl found it). */
static int nl_msg_ok(const struct nlmsghdr *h, int left)
{
	return mnl_nlmsg_ok(h, left) && h->nlmsg_len <= (unsigned)left;
}

int net_own_event(const void *buf, size_t len)
{
	int left = len > 65536 ? 65536 : (int)len;

	for (const struct nlmsghdr *h = buf; nl_msg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
		if (h->nlmsg_type == RTM_NEWADDR)
			return 1;
		if (h->nlmsg_type == RTM_NEWROUTE && mnl_nlmsg_get_payload_len(h) >= sizeof(struct rtmsg)) {
			const struct rtmsg *rm = mnl_nlmsg_get_payload(h);
			/* (in the tables a plain lookup reads: not a policy table, such as the one
			 * pgw-agent's TPROXY route is made again in at each rebuild) */
			if ((rm->rtm_type == RTN_LOCAL || rm->rtm_type == RTN_ANYCAST) &&
			    (rm->rtm_table == RT_TABLE_LOCAL || rm->rtm_table == RT_TABLE_MAIN ||
			     rm->rtm_table == RT_TABLE_DEFAULT))
				return 1;
		}
	}
	return 0;
}

/* One datagram from the kernel (port 0) on a netlink socket into buf: its length, 0 for one from
 * anyone else (read past), -1 with errno. */
static ssize_t nl_recv_kernel(struct mnl_socket *nl, void *buf, size_t size, int flags)
{
	struct sockaddr_nl from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(mnl_socket_get_fd(nl), buf, size, flags, (struct sockaddr *)&from, &fl);

	if (n < 0)
		return -1;
	return fl >= sizeof(from) && from.nl_family == AF_NETLINK && from.nl_pid == 0 ? n : 0;
}

int net_own_watch_read(struct mnl_socket *nl)
{
	union {
		struct nlmsghdr n;
		char b[8192];
	} buf;
	int changed = 0;

	for (int i = 0; i < 64; i++) {
		ssize_t n = nl_recv_kernel(nl, buf.b, sizeof(buf.b), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			if (errno != ENOBUFS)
				return -1;
			changed = 1; /* messages lost: any of them may have been one */
		} else if (n > 0 && net_own_event(buf.b, (size_t)n)) {
			changed = 1;
		}
	}
	return changed;
}

/* An answer's RTA_OIF (4 bytes exactly; libmnl's check), into *data. */
static int route_attr(const struct nlattr *at, void *data)
{
	if (mnl_attr_get_type(at) == RTA_OIF && mnl_attr_validate(at, MNL_TYPE_U32) == 0)
		memcpy(data, mnl_attr_get_payload(at), sizeof(int));
	return MNL_CB_OK;
}

int net_route_answer(const void *buf, size_t len, uint32_t seq, uint32_t port, unsigned char *type)
{
	int left = len > 65536 ? 65536 : (int)len;

	*type = RTN_UNSPEC;
	for (const struct nlmsghdr *h = buf; nl_msg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
		if (h->nlmsg_seq != seq || h->nlmsg_pid != port)
			continue; /* not the answer to this request (libmnl's mnl_cb_run would stop here) */
		if (h->nlmsg_len != MNL_ALIGN(h->nlmsg_len))
			return -1; /* (the kernel pads each message: libmnl reads attributes to the padded end) */
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
			int err = mnl_nlmsg_get_payload_len(h) >= sizeof(*e) ? -e->error : EIO;
			return err == ENETUNREACH || err == EHOSTUNREACH || err == EACCES ? 0 : -1;
		}
		if (h->nlmsg_type == RTM_NEWROUTE) {
			const struct rtmsg *rm = mnl_nlmsg_get_payload(h);
			int oif = -1; /* a unicast or local route without one: cannot tell */

			if (mnl_nlmsg_get_payload_len(h) < sizeof(*rm))
				return -1;
			*type = rm->rtm_type;
			mnl_attr_parse(h, sizeof(*rm), route_attr, &oif);
			if (rm->rtm_type == RTN_UNREACHABLE || rm->rtm_type == RTN_BLACKHOLE ||
			    rm->rtm_type == RTN_PROHIBIT || rm->rtm_type == RTN_THROW)
				return 0; /* nowhere */
			if (rm->rtm_type != RTN_UNICAST && rm->rtm_type != RTN_LOCAL)
				return -1; /* anycast, broadcast, multicast: not a proxy's */
			return oif > 0 ? oif : -1;
		}
		return -1; /* an answer of another kind */
	}
	return -2;
}

int net_route_oif(const struct sockaddr_storage *a, unsigned char *type)
{
	union {
		struct nlmsghdr n;
		char b[8192]; /* (a route answer is some 100 bytes) */
	} buf;
	struct timeval tv = {.tv_sec = 1};
	struct mnl_socket *nl;
	struct nlmsghdr *req;
	struct rtmsg *rm;
	unsigned char ignored;
	uint32_t seq = 1, port;
	int oif = -2;

	if (!type)
		type = &ignored;
	*type = RTN_UNSPEC;
	if (a->ss_family != AF_INET && a->ss_family != AF_INET6)
		return -1;
	req = mnl_nlmsg_put_header(buf.b);
	req->nlmsg_type = RTM_GETROUTE;
	req->nlmsg_flags = NLM_F_REQUEST;
	req->nlmsg_seq = seq;
	rm = mnl_nlmsg_put_extra_header(req, sizeof(*rm));
	rm->rtm_family = (unsigned char)a->ss_family;
	if (a->ss_family == AF_INET) {
		rm->rtm_dst_len = 32;
		mnl_attr_put(req, RTA_DST, 4, &((const struct sockaddr_in *)a)->sin_addr);
	} else {
		rm->rtm_dst_len = 128;
		mnl_attr_put(req, RTA_DST, 16, &((const struct sockaddr_in6 *)a)->sin6_addr);
	}
	if (!(nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC)))
		return -1;
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); /* the kernel answers at once */
	/* bound first: the port the kernel's answer names is known before it comes */
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == 0 && (port = mnl_socket_get_portid(nl)) != 0 &&
	    mnl_socket_sendto(nl, req, req->nlmsg_len) == (ssize_t)req->nlmsg_len) {
		/* the answer: from the kernel (port 0), to this request; anything else is read past */
		for (int reads = 0; oif == -2 && reads < 8; reads++) {
			ssize_t len = nl_recv_kernel(nl, buf.b, sizeof(buf.b), 0);
			if (len < 0)
				break;
			if (len > 0)
				oif = net_route_answer(buf.b, (size_t)len, seq, port, type);
		}
	}
	mnl_socket_close(nl);
	return oif == -2 ? -1 : oif;
}

/* net_dest_refused, and with private net_addr_private's networks too. */
static const char *dest_refused(const struct sockaddr_storage *a, const struct net_lan *lan, int private)
{
	static const char own[] = "one of the gateway's own addresses";
	const char *why = special(a, lan, private);
	static const char unknown[] = "an address whose route the gateway cannot look up (netlink)";
	struct sockaddr_storage in = {.ss_family = AF_INET};
	uint32_t v4;
	int r, oif;

	if (why)
		return why;
	if ((r = own_address(a, &oif)) != 0)
		return r > 0 ? own : unknown;
	/* a network routed behind the LAN (another organisation's clients, say): the kernel's route
	 * to it leaves through the LAN interface (its index looked up now: a bridge or VLAN made
	 * again gets a new one) */
	if (lan && lan->ifname[0] && oif != 0 && (oif < 0 || oif == (int)if_nametoindex(lan->ifname)))
		return oif < 0 ? unknown : "reached through the LAN interface (a network routed behind the LAN)";
	if (net_addr_embedded_v4(a, &v4)) { /* NAT64 or 6to4 to one of the gateway's IPv4 addresses */
		((struct sockaddr_in *)&in)->sin_addr.s_addr = htonl(v4);
		if (net_addr_local(&in))
			return own;
	}
	return NULL;
}

const char *net_dest_refused(const struct sockaddr_storage *a, const struct net_lan *lan)
{
	return dest_refused(a, lan, 0);
}

/* See net.h. */
int net_addr_private(const struct sockaddr *sa, const struct net_lan *lan)
{
	struct sockaddr_storage ss;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return 1; /* not IP: never */
	memcpy(&ss, sa, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	return dest_refused(&ss, lan, 1) != NULL;
}
