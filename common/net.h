/* net.h - small address helpers shared by the daemons. */
#ifndef PGW_NET_H
#define PGW_NET_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

struct net_cidr4 {
	uint32_t addr; /* host byte order, masked */
	uint8_t prefix;
};

/* Dotted-quad only (no shorthand like "10.1"). 0 or -EINVAL. addr in host byte order. */
int net_ipv4_parse(const char *s, uint32_t *addr);
/* A client address, IPv4 or IPv6, in one 16-byte form: IPv4 as ::ffff:a.b.c.d. */
struct net_ip {
	uint8_t a[16];
};
#define NET_IP_STR_MAX 46 /* INET6_ADDRSTRLEN */
/* Dotted quad (as net_ipv4_parse) or an IPv6 literal. 0 or -EINVAL. */
int net_ip_parse(const char *s, struct net_ip *out);
int net_ip_is4(const struct net_ip *ip);
uint32_t net_ip_v4(const struct net_ip *ip); /* host byte order; only when net_ip_is4 */
void net_ip_from4(uint32_t addr, struct net_ip *out);
/* From an AF_INET or AF_INET6 socket address (a v4-mapped IPv6 address becomes IPv4). */
int net_ip_from_sa(const struct sockaddr_storage *sa, struct net_ip *out);
/* The canonical text: dotted quad, or RFC 5952 IPv6 (lower case, shortest). */
void net_ip_str(const struct net_ip *ip, char buf[NET_IP_STR_MAX]);
/* The same for a socket address, its port left out ("?" when not IP): for log lines. */
void net_sa_ip_str(const struct sockaddr_storage *sa, char buf[NET_IP_STR_MAX]);
/* The port of an AF_INET or AF_INET6 socket address, in host byte order (0 for another family). */
uint16_t net_sa_port(const struct sockaddr_storage *sa);
/* 1 when a and b are the same IP address, ports aside. */
int net_sa_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* 1 with the IPv4 address (host byte order) inside a well-known NAT64 (64:ff9b::/96) or 6to4
 * (2002::/16) address; 0 for anything else. */
int net_addr_embedded_v4(const struct sockaddr_storage *sa, uint32_t *v4);
uint32_t net_ip_hash(const struct net_ip *ip);
/* Whether s can be a LAN client: IPv4 inside lan (NULL: anywhere), or an IPv6 unicast address
 * that a client uses to reach the internet (global or unique local; not link-local, loopback,
 * multicast, unspecified or IPv4-mapped). 0 with the canonical text in canon, or -EINVAL with
 * the reason in *why. */
struct net_cidr4;
int net_client_ip(const char *s, const struct net_cidr4 *lan, char canon[NET_IP_STR_MAX], const char **why);
/* "a.b.c.d/n" with host bits zero. 0 or -EINVAL. */
int net_cidr4_parse(const char *s, struct net_cidr4 *out);
int net_cidr4_contains(const struct net_cidr4 *c, uint32_t addr);
/* A network of either family: "a.b.c.d/n", "v6/n", or a bare address (/32, /128). len counts
 * the bits of the 16-byte form (an IPv4 /24 is 96 + 24). Host bits must be zero. */
struct net_prefix {
	struct net_ip addr;
	uint8_t len;
};
int net_prefix_parse(const char *s, struct net_prefix *out);
int net_prefix_contains(const struct net_prefix *p, const struct net_ip *ip);
/* The IPv6 networks on interface ifname: its global and unique-local addresses with their prefix
 * lengths, each once (link-local and loopback skipped). How many, at most max (0: none, or no
 * such interface). */
int net_iface_prefixes6(const char *ifname, struct net_prefix *out, int max);
/* The LAN as the daemons know it: lan_cidr (prefix 0: none) and the LAN interface's IPv6
 * networks (net_iface_prefixes6 of lan_iface). */
#define NET_LAN6_MAX 8
struct net_lan {
	struct net_cidr4 v4;
	struct net_prefix v6[NET_LAN6_MAX];
	int n6;
	char ifname[16]; /* lan_iface: its index looked up at each route test ("" or none here: no
			  * route out of it either, so no test) */
};
/* Why the gateway should send nothing of its own to a (NULL: it may): loopback, unspecified,
 * "this network" (0/8), link-local, multicast, reserved or broadcast (240/4), IPv4-mapped or
 * -compatible IPv6, or inside the LAN. IPv4 inside NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
 * addresses is judged as that IPv4 address. No syscall: cheap on hot paths. */
const char *net_addr_special(const struct sockaddr_storage *a, const struct net_lan *lan);
/* 1 when a is one of this host's own addresses (the source a datagram to it would take is a
 * itself), or the kernel delivers it here all the same (its route is local, as AnyIP, or
 * anycast, as the subnet-router address of a network the host forwards for); also when that
 * cannot be told, so a caller refusing local addresses fails closed. */
int net_addr_local(const struct sockaddr_storage *a);
/* As net_addr_local, but -1 when it cannot be told (the source a datagram to it would take, or
 * its route: net_addr_local says 1 then, refused). */
int net_addr_own(const struct sockaddr_storage *a);
/* Hearing the kernel make an address this host's own: a socket in rtnetlink's address and route
 * groups (nonblocking), NULL on error (errno). */
struct mnl_socket;
struct mnl_socket *net_own_watch_open(void);
void net_own_watch_close(struct mnl_socket *nl);
/* Read what is waiting (at most 64 datagrams a call; the rest stays readable): 1 when an address
 * may have become the host's own (an address or a local or anycast route added, or the kernel
 * dropped messages: ENOBUFS), 0 when not, -1 when the socket fails. Only the kernel's count. */
int net_own_watch_read(struct mnl_socket *nl);
/* net_own_watch_read's reading of one datagram (buf aligned for a struct nlmsghdr): 1 when it
 * holds RTM_NEWADDR, or RTM_NEWROUTE of type RTN_LOCAL or RTN_ANYCAST in the local, main or
 * default table. */
int net_own_event(const void *buf, size_t len);
/* The index of the interface the kernel routes a out of (RTM_GETROUTE, as `ip route get` asks;
 * nothing sent), 0 when a is unreachable, -1 when it cannot be told (no answer from the kernel,
 * an error, a route of another kind than unicast or local); *type (or NULL) the route's kind
 * (RTN_LOCAL, RTN_ANYCAST, ...; RTN_UNSPEC with none). */
int net_route_oif(const struct sockaddr_storage *a, unsigned char *type);
/* net_route_oif's reading of what the kernel sent (buf aligned for a struct nlmsghdr): the answer
 * to request seq from port, as net_route_oif returns it, or -2 when none is in buf (messages to
 * other requests are passed over). *type as net_route_oif's. */
int net_route_answer(const void *buf, size_t len, uint32_t seq, uint32_t port, unsigned char *type);
/* net_addr_special, then "one of the gateway's own addresses", then "reached through the LAN
 * interface" (the kernel routes it out of lan_iface: a network routed behind the LAN; a route
 * that cannot be looked up is refused too): where a proxy (or a webhook) may not be, lest an
 * organisation's admin aim the gateway at its own services or at LAN devices. */
const char *net_dest_refused(const struct sockaddr_storage *a, const struct net_lan *lan);
/* 1 where a request made for a user (a webhook) must not go: private (RFC 1918), CGNAT,
 * loopback, link-local, multicast, unspecified, reserved (240/4); ULA (fc00::/7); IPv4 inside
 * IPv6 (mapped, compatible, NAT64 64:ff9b::/96, 6to4 2002::/16) judged as that IPv4 address;
 * whatever net_dest_refused says (the LAN of either family, the gateway's own addresses, a
 * network routed behind the LAN, a route that cannot be looked up); any
 * family but IPv4 and IPv6. Else 0. */
int net_addr_private(const struct sockaddr *sa, const struct net_lan *lan);
/* The canonical text: "a.b.c.d/n" or "v6/n". */
#define NET_PREFIX_STR_MAX (NET_IP_STR_MAX + 5)
void net_prefix_str(const struct net_prefix *p, char out[NET_PREFIX_STR_MAX]);
/* A comma-separated list of at most max prefixes (spaces allowed after commas); "" is an
 * empty list. Returns how many, or -EINVAL (bad or too many). */
int net_prefix_list_parse(const char *s, struct net_prefix *out, int max);
/* "host:port" or "[v6]:port"; host copied into host (size hostlen). 0 or -EINVAL. */
int net_hostport_parse(const char *s, char *host, size_t hostlen, uint16_t *port);
/* Interface name as the kernel accepts it (1..15 chars, no '/', no whitespace). */
int net_ifname_valid(const char *s);
/* A unicast MAC address: six hex pairs separated by ':' or '-' (any case). 0, or -EINVAL (also
 * for a group address or 00:00:00:00:00:00, which no client has). */
#define NET_MAC_STR_MAX 18
int net_mac_parse(const char *s, uint8_t out[6]);
/* lower case, colon-separated: the form mappings.mac stores */
void net_mac_str(const uint8_t mac[6], char out[NET_MAC_STR_MAX]);
int net_set_nonblock(int fd);
/* An http:// URL as pgw-healthd fetches it through each proxy. */
#define NET_HOST_MAX 255
struct net_http_url {
	char host[NET_HOST_MAX + 1]; /* a name, a dotted quad, or an IPv6 literal (no brackets) */
	uint16_t port;
	int is6; /* host is an IPv6 literal: written [host] in URLs and Host headers */
	int tls; /* https: TLS through the proxy, the certificate checked against host */
	char path[256];
};
/* "http://host[:port][/path]" or "https://..." (port 443 by default), host a name, a dotted
 * quad or [IPv6]; no user info, query characters only in the path, no whitespace. 0 or
 * -EINVAL. */
int net_http_url_parse(const char *url, struct net_http_url *out);
/* A comma-separated list of at most max such URLs (spaces allowed after commas): how many, or
 * -EINVAL (a bad one, an empty item, or too many). */
#define NET_HTTP_URLS_MAX 4
int net_http_url_list_parse(const char *s, struct net_http_url *out, int max);
/* ip and port as a socket address (IPv4 as AF_INET), and that address's length. */
void net_ip_to_sa(const struct net_ip *ip, uint16_t port, struct sockaddr_storage *out);
socklen_t net_sa_len(const struct sockaddr_storage *sa);
/* host (dotted quad, IPv6 literal without brackets, or a name resolved with getaddrinfo: its
 * first IPv4 address, else its first IPv6 one) and port into out. 0 or -ENOENT. A name blocks
 * while it resolves: call it outside hot paths. */
int net_resolve(const char *host, uint16_t port, struct sockaddr_storage *out);

#endif
