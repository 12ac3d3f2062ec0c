/* net.c - see net.h. */
#include "net.h"

#include "parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <string.h>

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

int net_resolve4(const char *host, uint16_t port, struct sockaddr_in *out)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	uint32_t a;

	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons(port);
	if (net_ipv4_parse(host, &a) == 0) {
		out->sin_addr.s_addr = htonl(a);
		return 0;
	}
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return -ENOENT;
	out->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
	freeaddrinfo(res);
	return 0;
}
