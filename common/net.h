/* net.h - small address helpers shared by the daemons. */
#ifndef PGW_NET_H
#define PGW_NET_H

#include <netinet/in.h>
#include <stdint.h>

struct net_cidr4 {
	uint32_t addr; /* host byte order, masked */
	uint8_t prefix;
};

/* Dotted-quad only (no shorthand like "10.1"). 0 or -EINVAL. addr in host byte order. */
int net_ipv4_parse(const char *s, uint32_t *addr);
/* "a.b.c.d/n" with host bits zero. 0 or -EINVAL. */
int net_cidr4_parse(const char *s, struct net_cidr4 *out);
int net_cidr4_contains(const struct net_cidr4 *c, uint32_t addr);
/* "host:port" or "[v6]:port"; host copied into host (size hostlen). 0 or -EINVAL. */
int net_hostport_parse(const char *s, char *host, size_t hostlen, uint16_t *port);
/* Interface name as the kernel accepts it (1..15 chars, no '/', no whitespace). */
int net_ifname_valid(const char *s);
int net_set_nonblock(int fd);
/* host (dotted quad or a name, resolved with getaddrinfo, IPv4 only) and port into out.
 * 0 or -ENOENT. A name blocks while it resolves: call it outside hot paths. */
struct sockaddr_in;
int net_resolve4(const char *host, uint16_t port, struct sockaddr_in *out);

#endif
