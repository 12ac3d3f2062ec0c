/* libFuzzer: where a webhook may connect (net_addr_private, common/net.c; the addresses come from
 * DNS answers anyone can write). Any address of either family, with any LAN: every address that a
 * second, independent list (written here from RFC 6890, RFC 6598, RFC 4193 and RFC 6052 as CIDR
 * text, matched bit by bit) calls private, loopback, link-local, multicast, reserved, unspecified
 * or on the LAN is refused, IPv4 inside IPv6 (mapped, compatible, NAT64, 6to4) judged as that
 * IPv4 address; any other family is refused; the answer does not change when asked again. */
#include "net.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const v4_refused[] = {"0.0.0.0/8",	   "10.0.0.0/8",     "100.64.0.0/10",
					 "127.0.0.0/8",	   "169.254.0.0/16", "172.16.0.0/12",
					 "192.168.0.0/16", "224.0.0.0/4",    "240.0.0.0/4"};
static const char *const v6_refused[] = {"::/80", "fc00::/7", "fe80::/10", "ff00::/8"};

/* the first len bits of a and b are the same */
static int same_bits(const uint8_t *a, const uint8_t *b, int len)
{
	for (int i = 0; i < len; i++)
		if (((a[i / 8] >> (7 - i % 8)) & 1) != ((b[i / 8] >> (7 - i % 8)) & 1))
			return 0;
	return 1;
}

#define N4 (sizeof(v4_refused) / sizeof(v4_refused[0]))
#define N6 (sizeof(v6_refused) / sizeof(v6_refused[0]))
struct net {
	uint8_t p[16];
	int len;
};
static struct net v4_nets[N4], v6_nets[N6]; /* the lists, parsed once */

static void parse(int family, const char *const *list, size_t n, struct net *out)
{
	for (size_t i = 0; i < n; i++) {
		char net[64];
		const char *slash = strchr(list[i], '/');
		memcpy(net, list[i], (size_t)(slash - list[i]));
		net[slash - list[i]] = 0;
		assert(inet_pton(family, net, out[i].p) == 1);
		out[i].len = atoi(slash + 1);
	}
}

static int in_list(const uint8_t *addr, const struct net *nets, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (same_bits(addr, nets[i].p, nets[i].len))
			return 1;
	return 0;
}

static int v4_private(const uint8_t a[4], const struct net_lan *lan)
{
	uint8_t lan_net[4] = {lan->v4.addr >> 24, lan->v4.addr >> 16, lan->v4.addr >> 8, lan->v4.addr};
	return in_list(a, v4_nets, N4) || (lan->v4.prefix && same_bits(a, lan_net, lan->v4.prefix));
}

static int v6_private(const uint8_t a[16], const struct net_lan *lan)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
			     nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

	if (in_list(a, v6_nets, N6))
		return 1;
	if ((memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0) && v4_private(a + 12, lan))
		return 1;
	if (a[0] == 0x20 && a[1] == 0x02 && v4_private(a + 2, lan)) /* 6to4: 2002:V4ADDR::/48 */
		return 1;
	for (int i = 0; i < lan->n6; i++)
		if (same_bits(a, lan->v6[i].addr.a, lan->v6[i].len))
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int parsed;
	struct sockaddr_storage ss;
	struct net_lan lan;
	int r;

	if (!parsed) {
		parse(AF_INET, v4_refused, N4, v4_nets);
		parse(AF_INET6, v6_refused, N6, v6_nets);
		parsed = 1;
	}
	if (size < 1 + 16 + 5 + 17)
		return 0;
	memset(&ss, 0, sizeof(ss));
	memset(&lan, 0, sizeof(lan));
	/* the LAN: an IPv4 network (masked, as settings_lan makes it) and one IPv6 prefix */
	lan.v4.prefix = data[21] % 33;
	lan.v4.addr = (uint32_t)data[17] << 24 | (uint32_t)data[18] << 16 | (uint32_t)data[19] << 8 | data[20];
	lan.v4.addr &= lan.v4.prefix ? 0xffffffffu << (32 - lan.v4.prefix) : 0;
	memcpy(lan.v6[0].addr.a, data + 22, 16);
	lan.v6[0].len = data[38] % 129;
	for (int i = lan.v6[0].len; i < 128; i++) /* masked, as net_prefix_parse makes it */
		lan.v6[0].addr.a[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
	lan.n6 = data[38] & 0x80 ? 1 : 0; /* sometimes none */
	if (data[0] % 3 == 2) {		  /* another family */
		ss.ss_family = (sa_family_t)(data[1] | data[2] << 8);
		if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
			return 0;
		assert(net_addr_private((struct sockaddr *)&ss, &lan) == 1);
		return 0;
	}
	if (data[0] % 3 == 0) {
		ss.ss_family = AF_INET;
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, data + 1, 4);
	} else {
		ss.ss_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, data + 1, 16);
	}
	r = net_addr_private((struct sockaddr *)&ss, &lan);
	if (ss.ss_family == AF_INET ? v4_private(data + 1, &lan) : v6_private(data + 1, &lan))
		assert(r == 1);
	assert(net_addr_private((struct sockaddr *)&ss, &lan) == r);
	return 0;
}
