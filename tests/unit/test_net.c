/* Address and number parsers: strict, whole-string, range-checked. */
#include "testlib.h"

#include "net.h"
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

static void test_ipv4(void **state)
{
	uint32_t a;

	(void)state;
	assert_int_equal(net_ipv4_parse("192.168.2.10", &a), 0);
	assert_int_equal(a, 0xc0a8020a);
	assert_int_equal(net_ipv4_parse("0.0.0.0", &a), 0);
	const char *bad[] = {"",	 "192.168.2", "192.168.2.256", "1.2.3.4.5", " 1.2.3.4",
			     "1.2.3.4 ", "::1",	      "a.b.c.d",       "1..2.3"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(net_ipv4_parse(bad[i], &a), -EINVAL);
}

static void test_mac(void **state)
{
	uint8_t m[6];
	char out[NET_MAC_STR_MAX];

	(void)state;
	assert_int_equal(net_mac_parse("02:00:5E:aa:BB:0c", m), 0);
	net_mac_str(m, out);
	assert_string_equal(out, "02:00:5e:aa:bb:0c");
	assert_int_equal(net_mac_parse("02-00-5e-aa-bb-0c", m), 0);
	net_mac_str(m, out);
	assert_string_equal(out, "02:00:5e:aa:bb:0c");
	const char *bad[] = {"",
			     "02:00:5e:aa:bb",
			     "02:00:5e:aa:bb:0c:",
			     "02:00-5e:aa:bb:0c", /* mixed separators */
			     "02:00:5e:aa:bb:0g",
			     "0200.5eaa.bb0c",
			     "01:00:5e:00:00:01", /* a group address */
			     "ff:ff:ff:ff:ff:ff",
			     "00:00:00:00:00:00",
			     " 02:00:5e:aa:bb:0c",
			     "02:00:5e:aa:bb:0c "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(net_mac_parse(bad[i], m), -EINVAL);
}

static void test_cidr(void **state)
{
	struct net_cidr4 c;
	uint32_t a;

	(void)state;
	assert_int_equal(net_cidr4_parse("192.168.2.0/24", &c), 0);
	assert_int_equal(c.prefix, 24);
	net_ipv4_parse("192.168.2.254", &a);
	assert_true(net_cidr4_contains(&c, a));
	net_ipv4_parse("192.168.3.1", &a);
	assert_false(net_cidr4_contains(&c, a));
	assert_int_equal(net_cidr4_parse("0.0.0.0/0", &c), 0);
	assert_true(net_cidr4_contains(&c, a));
	assert_int_equal(net_cidr4_parse("192.168.2.1/24", &c), -EINVAL); /* host bits */
	assert_int_equal(net_cidr4_parse("192.168.2.0", &c), -EINVAL);
	assert_int_equal(net_cidr4_parse("192.168.2.0/", &c), -EINVAL);
	assert_int_equal(net_cidr4_parse("192.168.2.0/-1", &c), -EINVAL);
}

static void test_hostport(void **state)
{
	char host[64];
	uint16_t port;

	(void)state;
	assert_int_equal(net_hostport_parse("0.0.0.0:8080", host, sizeof(host), &port), 0);
	assert_string_equal(host, "0.0.0.0");
	assert_int_equal(port, 8080);
	assert_int_equal(net_hostport_parse("[::1]:443", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 443);
	assert_int_equal(net_hostport_parse("gw.lan:65535", host, sizeof(host), &port), 0);
	const char *bad[] = {"host", "host:", ":80", "host:0", "host:65536", "::1:80", "[::1]80", "h:8a"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(net_hostport_parse(bad[i], host, sizeof(host), &port), -EINVAL);
	assert_int_equal(net_hostport_parse("averylonghostname:1", host, 8, &port), -EINVAL);
}

/* Well-formed UTF-8 passes; each kind of ill-formed sequence is found where it starts. */
static void test_utf8(void **state)
{
	static const struct {
		const char *s;
		size_t at;
	} cases[] = {
	    {"plain ascii", 11},
	    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", 19}, /* 2, 3, 4 bytes; U+10FFFF */
	    {"a\xe9"
	     "b",
	     1},		     /* Latin-1 */
	    {"a\x80", 1},	     /* lone continuation */
	    {"\xc0\xaf", 0},	     /* overlong '/' */
	    {"\xe0\x80\xaf", 0},     /* overlong, 3 bytes */
	    {"\xf0\x8f\xbf\xbf", 0}, /* overlong, 4 bytes */
	    {"x\xed\xa0\x80", 1},    /* surrogate D800 */
	    {"\xf4\x90\x80\x80", 0}, /* above U+10FFFF */
	    {"\xf5\x80\x80\x80", 0},
	    {"ok\xe2\x82", 2}, /* truncated at the end */
	    {"\xe2\x28\xa1", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (utf8_invalid_at(cases[i].s, strlen(cases[i].s)) != cases[i].at)
			fail_msg("case %zu: %zu, expected %zu", i, utf8_invalid_at(cases[i].s, strlen(cases[i].s)),
				 cases[i].at);
	assert_int_equal(utf8_invalid_at("a\0b", 3), 3); /* NUL is ASCII here (callers refuse it) */
}

static void test_numbers_and_bools(void **state)
{
	uint64_t v;
	int b;

	(void)state;
	assert_int_equal(parse_u64("42", 1, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(parse_u64("0", 1, 100, &v), -ERANGE);
	assert_int_equal(parse_u64("101", 1, 100, &v), -ERANGE);
	assert_int_equal(parse_u64("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_u64("-1", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_u64("+1", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_u64("1x", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_u64("", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_bool("On", &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(parse_bool("false", &b), 0);
	assert_int_equal(b, 0);
	assert_int_equal(parse_bool("maybe", &b), -EINVAL);
}

static void test_ifname(void **state)
{
	(void)state;
	assert_true(net_ifname_valid("ens19"));
	assert_true(net_ifname_valid("abcdefghijklmno"));
	assert_false(net_ifname_valid("abcdefghijklmnop"));
	assert_false(net_ifname_valid(""));
	assert_false(net_ifname_valid("a b"));
	assert_false(net_ifname_valid("a/b"));
	assert_false(net_ifname_valid(".."));
}

/* Client addresses, IPv4 and IPv6: one 16-byte form, canonical text, what may be a client. */
static void test_client_ip(void **state)
{
	struct net_cidr4 lan;
	struct net_ip a, b;
	char canon[NET_IP_STR_MAX];
	const char *why = NULL;
	struct sockaddr_storage ss;

	(void)state;
	assert_int_equal(net_cidr4_parse("192.168.2.0/24", &lan), 0);
	assert_int_equal(net_client_ip("192.168.2.10", &lan, canon, &why), 0);
	assert_string_equal(canon, "192.168.2.10");
	assert_int_equal(net_client_ip("192.168.3.10", &lan, canon, &why), -EINVAL);
	assert_string_equal(why, "is not inside the LAN network");
	assert_int_equal(net_client_ip("192.168.3.10", NULL, canon, &why), 0);
	/* IPv6: stored in its one canonical form, so "FD00:2:0::0010" and "fd00:2::10" are one client */
	assert_int_equal(net_client_ip("FD00:2:0::0010", &lan, canon, &why), 0);
	assert_string_equal(canon, "fd00:2::10");
	assert_int_equal(net_client_ip("2001:db8::1", &lan, canon, &why), 0);
	assert_int_equal(net_client_ip("::ffff:192.168.2.10", &lan, canon, &why), 0); /* the IPv4 client */
	assert_string_equal(canon, "192.168.2.10");
	assert_int_equal(net_client_ip("::ffff:10.0.0.1", &lan, canon, &why), -EINVAL);
	for (const char *const *p =
		 (const char *const[]){"fe80::1", "ff02::1", "::1", "::", "::1.2.3.4", "fd00::1%eth0", "fd00::1/64",
				       "fd00:::1", "192.168.2", "1.2.3.4.5", "", "x", NULL};
	     *p; p++) {
		why = NULL;
		assert_int_equal(net_client_ip(*p, &lan, canon, &why), -EINVAL);
		assert_non_null(why);
	}
	assert_int_equal(net_ip_parse("fd00:2::10", &a), 0);
	assert_false(net_ip_is4(&a));
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET6;
	inet_pton(AF_INET6, "fd00:2::10", &((struct sockaddr_in6 *)&ss)->sin6_addr);
	assert_int_equal(net_ip_from_sa(&ss, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	/* FNV-1a of the 16 bytes (the known answer, computed apart: Python over ip_address().packed) */
	assert_int_equal(net_ip_hash(&a), 0x112baeaeu);
	{
		struct net_ip v4;
		assert_int_equal(net_ip_parse("192.168.2.3", &v4), 0); /* as ::ffff:192.168.2.3 */
		assert_int_equal(net_ip_hash(&v4), 0x101b5ca8u);
	}
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET;
	((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(0xc0a8020a);
	assert_int_equal(net_ip_from_sa(&ss, &b), 0);
	assert_true(net_ip_is4(&b));
	assert_int_equal(net_ip_v4(&b), 0xc0a8020a);
	net_ip_str(&b, canon);
	assert_string_equal(canon, "192.168.2.10");
	ss.ss_family = AF_UNIX;
	assert_int_equal(net_ip_from_sa(&ss, &b), -EAFNOSUPPORT);
}

/* The health URL: names, IPv4, [IPv6] hosts; everything else refused. */
static void test_http_url(void **state)
{
	struct net_http_url u;

	(void)state;
	static const struct {
		const char *url, *host;
		unsigned port;
		int is6;
		const char *path;
	} good[] = {
	    {"http://203.0.113.10/ip", "203.0.113.10", 80, 0, "/ip"},
	    {"http://ifconfig.me", "ifconfig.me", 80, 0, "/"},
	    {"http://[2001:db8:203::10]:8080/ip?x=1", "2001:db8:203::10", 8080, 1, "/ip?x=1"},
	    {"http://[::1]", "::1", 80, 1, "/"},
	    {"https://203.0.113.10/ip", "203.0.113.10", 443, 0, "/ip"}, /* https: 443 by default */
	    {"https://echo.example:8443", "echo.example", 8443, 0, "/"},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(net_http_url_parse(good[i].url, &u), 0);
		assert_string_equal(u.host, good[i].host);
		assert_int_equal(u.port, good[i].port);
		assert_int_equal(u.is6, good[i].is6);
		assert_string_equal(u.path, good[i].path);
		assert_int_equal(u.tls, strncmp(good[i].url, "https", 5) == 0);
	}
	const char *bad[] = {"https://",
			     "http://",
			     "http:///ip",
			     "http://x:/",
			     "http://x:0/",
			     "http://x:65536/",
			     "http://user@x/",
			     "http://x y/",
			     "http://x/a b",
			     "http://[2001:db8::1/",
			     "http://[x]/",
			     "http://[1.2.3.4]/",
			     "http://[::1]x/",
			     "http://[fe80::1%eth0]/",
			     "http://2001:db8::1/",
			     "ftp://x/",
			     "http://x/\r\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(net_http_url_parse(bad[i], &u), -EINVAL);
}

/* Several health URLs: up to the maximum, no empty item. */
static void test_http_url_list(void **state)
{
	struct net_http_url u[NET_HTTP_URLS_MAX];

	(void)state;
	assert_int_equal(net_http_url_list_parse("http://a/ip", u, NET_HTTP_URLS_MAX), 1);
	assert_int_equal(net_http_url_list_parse("https://a/ip, http://[::1]:81/x,http://b", u, NET_HTTP_URLS_MAX), 3);
	assert_int_equal(u[0].tls, 1);
	assert_int_equal(u[1].port, 81);
	assert_string_equal(u[2].host, "b");
	assert_int_equal(
	    net_http_url_list_parse("http://a/,http://b/,http://c/,http://d/,http://e/", u, NET_HTTP_URLS_MAX),
	    -EINVAL);
	assert_int_equal(net_http_url_list_parse("http://a/,", u, NET_HTTP_URLS_MAX), -EINVAL);
	assert_int_equal(net_http_url_list_parse(",http://a/", u, NET_HTTP_URLS_MAX), -EINVAL);
	assert_int_equal(net_http_url_list_parse("", u, NET_HTTP_URLS_MAX), -EINVAL);
	assert_int_equal(net_http_url_list_parse("http://a/,ftp://b/", u, NET_HTTP_URLS_MAX), -EINVAL);
}

static const char *special(const char *ip, const struct net_lan *lan)
{
	struct net_ip a;
	struct sockaddr_storage sa;

	assert_int_equal(net_ip_parse(ip, &a), 0);
	net_ip_to_sa(&a, 80, &sa);
	return net_addr_special(&sa, lan);
}

/* Where the gateway sends nothing of its own: each kind, the LAN of both families, IPv4 inside
 * NAT64 and 6to4 addresses; ordinary public and private addresses pass. */
static void test_addr_special(void **state)
{
	static const char *const bad[] = {"127.0.0.1",
					  "127.9.9.9",
					  "0.0.0.0",
					  "0.1.2.3",
					  "169.254.1.1",
					  "224.0.0.1",
					  "239.1.1.1",
					  "255.255.255.255",
					  "240.0.0.1",
					  "192.168.2.77",
					  "::",
					  "::1",
					  "fe80::1",
					  "ff02::1",
					  "fd00:2::77",
					  "64:ff9b::7f00:1",
					  "64:ff9b::c0a8:205",
					  "2002:7f00:1::1",
					  "2002:c0a8:0205::9",
					  "::ffff:0:c633:640a",
					  "64:ff9b:1::1",
					  "fec0::1"};
	static const char *const good[] = {"198.51.100.10", "10.1.2.3",		  "172.16.0.1",
					   "100.64.0.1",    "192.168.3.1",	  "2001:db8::1",
					   "fd00:3::1",	    "64:ff9b::c633:640a", "2002:c633:640a::1"};
	struct net_lan lan;
	struct sockaddr_storage mapped;
	struct sockaddr_in6 *m6 = (struct sockaddr_in6 *)&mapped;

	(void)state;
	memset(&lan, 0, sizeof(lan));
	assert_int_equal(net_cidr4_parse("192.168.2.0/24", &lan.v4), 0);
	assert_int_equal(net_prefix_parse("fd00:2::/64", &lan.v6[0]), 0);
	lan.n6 = 1;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!special(bad[i], &lan))
			fail_msg("%s passed", bad[i]);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (special(good[i], &lan))
			fail_msg("%s refused: %s", good[i], special(good[i], &lan));
	assert_null(special("192.168.2.77", NULL)); /* no LAN known: only the kinds */
	/* a LAN numbered from 6to4 (2002:<its public IPv4>::/48): its devices are on the LAN, though
	 * the IPv4 inside is public (judged by the IPv4 alone, they passed: fuzz_netguard) */
	assert_int_equal(net_prefix_parse("2002:c633:640a:1::/64", &lan.v6[1]), 0);
	lan.n6 = 2;
	assert_non_null(special("2002:c633:640a:1::9", &lan));
	assert_string_equal(special("2002:c633:640a:1::9", &lan), "on the LAN (an IPv6 network of lan_iface)");
	assert_null(special("2002:c633:640a:2::9", &lan)); /* another network of that site: not the LAN */
	/* the route test (rtnetlink, read only): an address is refused when the kernel routes it out
	 * of the LAN interface; here the LAN is whatever interface this host's route to a
	 * documentation address leaves by, if it has one, and loopback if not */
	{
		struct sockaddr_storage doc;
		int oif;
		net_ip_to_sa(&(struct net_ip){.a = {[10] = 0xff, [11] = 0xff, 198, 51, 100, 10}}, 0, &doc);
		oif = net_route_oif(&doc, NULL);
		assert_true(oif >= 0);
		char name[IF_NAMESIZE];
		snprintf(lan.ifname, sizeof(lan.ifname), "lo");
		assert_null(net_dest_refused(&doc, &lan)); /* not routed out of loopback */
		if (oif > 0) {
			assert_non_null(if_indextoname((unsigned)oif, name));
			snprintf(lan.ifname, sizeof(lan.ifname), "%s", name);
			assert_string_equal(net_dest_refused(&doc, &lan),
					    "reached through the LAN interface (a network routed behind the LAN)");
		} else {
			print_message("(no route to 198.51.100.10 here: the refusal itself not shown)\n");
		}
		snprintf(lan.ifname, sizeof(lan.ifname), "pgwt-none0");
		assert_null(net_dest_refused(&doc, &lan)); /* no such interface: nothing routes out of it */
		lan.ifname[0] = 0;
		/* the kernel's own addresses route out of loopback, by a local route */
		net_ip_to_sa(&(struct net_ip){.a = {[10] = 0xff, [11] = 0xff, 127, 0, 0, 1}}, 0, &doc);
		unsigned char type = RTN_UNSPEC;
		assert_int_equal(net_route_oif(&doc, &type), (int)if_nametoindex("lo"));
		assert_int_equal(type, RTN_LOCAL);
	}
	lan.n6 = 1;
	/* ::ffff:a.b.c.d as an AF_INET6 socket address (net_ip_to_sa would make it AF_INET) */
	memset(&mapped, 0, sizeof(mapped));
	m6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "::ffff:198.51.100.10", &m6->sin6_addr), 1);
	assert_non_null(net_addr_special(&mapped, &lan));
	/* the gateway's own addresses: loopback is, a documentation address is not */
	net_ip_to_sa(&(struct net_ip){.a = {[10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1}}, 0, &mapped);
	assert_int_equal(net_addr_local(&mapped), 1);
	assert_non_null(net_dest_refused(&mapped, NULL));
	net_ip_to_sa(&(struct net_ip){.a = {[10] = 0xff, [11] = 0xff, [12] = 198, [13] = 51, [14] = 100, [15] = 10}}, 0,
		     &mapped);
	assert_int_equal(net_addr_local(&mapped), 0);
	assert_null(net_dest_refused(&mapped, NULL));
}

/* An answer as the kernel writes it: a message of type (seq, port), then payload. */
static size_t nl_msg(uint32_t *buf, size_t at, uint16_t type, uint32_t seq, uint32_t port, const void *payload,
		     size_t plen)
{
	struct nlmsghdr h = {.nlmsg_len = NLMSG_LENGTH(plen), .nlmsg_type = type, .nlmsg_seq = seq, .nlmsg_pid = port};

	memcpy((char *)buf + at, &h, sizeof(h));
	memcpy((char *)buf + at + NLMSG_HDRLEN, payload, plen);
	return at + NLMSG_ALIGN(h.nlmsg_len);
}

/* a route of kind type for an IPv6 destination, leaving by oif (0: no RTA_OIF) */
static size_t nl_route(uint32_t *buf, size_t at, uint32_t seq, uint32_t port, unsigned char type, int oif)
{
	struct {
		struct rtmsg r;
		struct rtattr dst;
		struct in6_addr a;
		struct rtattr oa;
		int oif;
	} p;

	memset(&p, 0, sizeof(p));
	p.r = (struct rtmsg){.rtm_family = AF_INET6, .rtm_dst_len = 128, .rtm_table = RT_TABLE_MAIN, .rtm_type = type};
	p.dst = (struct rtattr){.rta_len = RTA_LENGTH(16), .rta_type = RTA_DST};
	inet_pton(AF_INET6, "2001:db8:100::", &p.a);
	p.oa = (struct rtattr){.rta_len = RTA_LENGTH(sizeof(int)), .rta_type = RTA_OIF};
	p.oif = oif;
	return nl_msg(buf, at, RTM_NEWROUTE, seq, port, &p, oif ? sizeof(p) : sizeof(p) - sizeof(p.oa) - sizeof(int));
}

static size_t nl_error(uint32_t *buf, size_t at, uint32_t seq, uint32_t port, int err)
{
	struct nlmsgerr e = {.error = -err};

	return nl_msg(buf, at, NLMSG_ERROR, seq, port, &e, sizeof(e));
}

/* The kernel's answer to a route request read (net_route_answer; what cannot be made to happen
 * on this host's own table, IPv6 included): a unicast route gives its interface, a local one
 * too, an anycast one (the subnet-router address of a network of the gateway's) and one without
 * an interface cannot be told; unreachable is nowhere, as is an unreachable error, any other
 * error cannot be told; messages to other requests, or from other ports, are passed over; an
 * answer cut short, or claiming more bytes than there are, is not there yet. */
static void test_route_answer(void **state)
{
	uint32_t buf[256];
	unsigned char type;
	size_t n;

	(void)state;
	n = nl_route(buf, 0, 5, 77, RTN_UNICAST, 7);
	assert_int_equal(net_route_answer(buf, n, 5, 77, &type), 7);
	assert_int_equal(type, RTN_UNICAST);
	assert_int_equal(net_route_answer(buf, n, 6, 77, &type), -2);	  /* another request's */
	assert_int_equal(net_route_answer(buf, n, 5, 78, &type), -2);	  /* another socket's */
	assert_int_equal(net_route_answer(buf, n - 4, 5, 77, &type), -2); /* cut short */
	buf[0] += 0x80000000u;						  /* a length of over 2 GiB */
	assert_int_equal(net_route_answer(buf, n, 5, 77, &type), -2);
	buf[0] -= 0x80000000u;
	buf[0] -= 2; /* not padded to 4 bytes, as the kernel's are: malformed */
	assert_int_equal(net_route_answer(buf, n, 5, 77, &type), -1);
	n = nl_route(buf, 0, 5, 77, RTN_LOCAL, 1);
	assert_int_equal(net_route_answer(buf, n, 5, 77, &type), 1);
	assert_int_equal(type, RTN_LOCAL);
	n = nl_route(buf, 0, 5, 77, RTN_ANYCAST, 3);
	assert_int_equal(net_route_answer(buf, n, 5, 77, &type), -1);
	assert_int_equal(type, RTN_ANYCAST);
	n = nl_route(buf, 0, 5, 77, RTN_UNICAST, 0);
	assert_int_equal(net_route_answer(buf, n, 5, 77, &type), -1); /* no interface named */
	n = nl_route(buf, 0, 5, 77, RTN_UNICAST, -4);
	assert_int_equal(net_route_answer(buf, n, 5, 77, &type), -1); /* nor a real one */
	n = nl_route(buf, 0, 5, 77, RTN_UNREACHABLE, 0);
	assert_int_equal(net_route_answer(buf, n, 5, 77, &type), 0);
	n = nl_error(buf, 0, 5, 77, ENETUNREACH);
	assert_int_equal(net_route_answer(buf, n, 5, 77, &type), 0);
	assert_int_equal(type, RTN_UNSPEC);
	n = nl_error(buf, 0, 5, 77, EPERM);
	assert_int_equal(net_route_answer(buf, n, 5, 77, &type), -1);
	/* an earlier request's answer first, then this one's */
	n = nl_route(buf, 0, 4, 77, RTN_UNICAST, 9);
	n = nl_route(buf, n, 5, 77, RTN_ANYCAST, 3);
	assert_int_equal(net_route_answer(buf, n, 5, 77, &type), -1);
	assert_int_equal(type, RTN_ANYCAST);
	assert_int_equal(net_route_answer(buf, n, 4, 77, &type), 9);
}

/* What the kernel tells the address and route groups (net_own_event): a new address, or a new
 * local or anycast route, may make an address the host's own; a removed one, or a unicast route,
 * cannot, nor one in a policy table; in a datagram of several, any one counts; a route message too
 * short for its header, or a message claiming more bytes than there are, is nothing. */
static void test_own_event(void **state)
{
	struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = 32, .ifa_index = 1};
	uint32_t buf[256];
	size_t n;

	(void)state;
	n = nl_msg(buf, 0, RTM_NEWADDR, 0, 0, &ifa, sizeof(ifa));
	assert_int_equal(net_own_event(buf, n), 1);
	buf[0] += 0x80000000u;
	assert_int_equal(net_own_event(buf, n), 0);
	n = nl_msg(buf, 0, RTM_DELADDR, 0, 0, &ifa, sizeof(ifa));
	assert_int_equal(net_own_event(buf, n), 0);
	n = nl_route(buf, 0, 0, 0, RTN_UNICAST, 2);
	assert_int_equal(net_own_event(buf, n), 0);
	n = nl_route(buf, n, 0, 0, RTN_LOCAL, 1); /* the second of two */
	assert_int_equal(net_own_event(buf, n), 1);
	n = nl_route(buf, 0, 0, 0, RTN_ANYCAST, 2);
	assert_int_equal(net_own_event(buf, n), 1);
	((uint8_t *)buf)[NLMSG_HDRLEN + 4] = RT_TABLE_LOCAL; /* rtm_table */
	assert_int_equal(net_own_event(buf, n), 1);
	((uint8_t *)buf)[NLMSG_HDRLEN + 4] = RT_TABLE_COMPAT; /* a policy table (pgw-agent's 2470) */
	assert_int_equal(net_own_event(buf, n), 0);
	n = nl_msg(buf, 0, RTM_NEWROUTE, 0, 0, &ifa, 4); /* shorter than a struct rtmsg */
	assert_int_equal(net_own_event(buf, n), 0);
	n = nl_route(buf, 0, 0, 0, RTN_LOCAL, 1);
	assert_int_equal(net_own_event(buf, n - 4), 0); /* cut short */
	assert_int_equal(net_own_event(buf, 0), 0);
}

static struct sockaddr_storage sa_of(const char *ip, uint16_t port)
{
	struct net_ip a;
	struct sockaddr_storage sa;

	assert_int_equal(net_ip_parse(ip, &a), 0);
	net_ip_to_sa(&a, port, &sa);
	return sa;
}

/* The IPv4 address inside NAT64 and 6to4 addresses, nothing from others; addresses compared
 * without their ports, v4-mapped as IPv4; the text for logs. */
static void test_sa_helpers(void **state)
{
	struct sockaddr_storage a = sa_of("64:ff9b::c633:640a", 1), b = sa_of("2002:7f00:1::9", 1);
	struct sockaddr_storage mapped = {.ss_family = AF_INET6}, other = {.ss_family = AF_UNIX};
	char buf[NET_IP_STR_MAX];
	uint32_t v4 = 0;

	(void)state;
	assert_int_equal(net_addr_embedded_v4(&a, &v4), 1);
	assert_int_equal(v4, 0xc633640a);
	assert_int_equal(net_addr_embedded_v4(&b, &v4), 1);
	assert_int_equal(v4, 0x7f000001);
	a = sa_of("64:ff9b:1::c633:640a", 1); /* local-use NAT64: not the well-known prefix */
	assert_int_equal(net_addr_embedded_v4(&a, &v4), 0);
	a = sa_of("2001:db8::1", 1);
	assert_int_equal(net_addr_embedded_v4(&a, &v4), 0);
	a = sa_of("198.51.100.10", 1);
	assert_int_equal(net_addr_embedded_v4(&a, &v4), 0);

	a = sa_of("198.51.100.10", 1080);
	b = sa_of("198.51.100.10", 53);
	assert_int_equal(net_sa_same_host(&a, &b), 1);
	assert_int_equal(inet_pton(AF_INET6, "::ffff:198.51.100.10", &((struct sockaddr_in6 *)&mapped)->sin6_addr), 1);
	assert_int_equal(net_sa_same_host(&a, &mapped), 1);
	b = sa_of("198.51.100.11", 1080);
	assert_int_equal(net_sa_same_host(&a, &b), 0);
	assert_int_equal(net_sa_same_host(&a, &other), 0);

	net_sa_ip_str(&mapped, buf);
	assert_string_equal(buf, "198.51.100.10");
	a = sa_of("2001:DB8:0::1", 9);
	net_sa_ip_str(&a, buf);
	assert_string_equal(buf, "2001:db8::1");
	net_sa_ip_str(&other, buf);
	assert_string_equal(buf, "?");
}

/* Proxy addresses: literals of either family without DNS; no brackets, no zones. */
static void test_resolve(void **state)
{
	struct sockaddr_storage sa;

	(void)state;
	assert_int_equal(net_resolve("198.51.100.10", 1080, &sa), 0);
	assert_int_equal(sa.ss_family, AF_INET);
	assert_int_equal(net_sa_len(&sa), sizeof(struct sockaddr_in));
	assert_int_equal(net_sa_port(&sa), 1080);
	assert_int_equal(ntohl(((struct sockaddr_in *)&sa)->sin_addr.s_addr), 0xc633640a);
	assert_int_equal(net_resolve("2001:db8:100::20", 8888, &sa), 0);
	assert_int_equal(sa.ss_family, AF_INET6);
	assert_int_equal(net_sa_len(&sa), sizeof(struct sockaddr_in6));
	assert_int_equal(net_sa_port(&sa), 8888);
	assert_int_equal(((struct sockaddr_in6 *)&sa)->sin6_addr.s6_addr[1], 0x01);
	assert_int_equal(((struct sockaddr_in6 *)&sa)->sin6_addr.s6_addr[15], 0x20);
	assert_int_equal(net_resolve("::ffff:198.51.100.10", 1, &sa), 0); /* v4-mapped: used as IPv4 */
	assert_int_equal(sa.ss_family, AF_INET);
	assert_int_equal(net_resolve("[2001:db8::1]", 1080, &sa), -ENOENT);
	assert_int_equal(net_resolve("fe80::1%eth0", 1080, &sa), -ENOENT);
	assert_int_equal(sa.ss_family, 0);
	assert_int_equal(net_sa_port(&sa), 0); /* not an IP address: no port */
	memset(&sa, 0xff, sizeof(sa));	       /* ... whatever its bytes say */
	sa.ss_family = AF_UNIX;
	assert_int_equal(net_sa_port(&sa), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ipv4),	  cmocka_unit_test(test_cidr),
	    cmocka_unit_test(test_hostport),	  cmocka_unit_test(test_numbers_and_bools),
	    cmocka_unit_test(test_utf8),	  cmocka_unit_test(test_ifname),
	    cmocka_unit_test(test_client_ip),	  cmocka_unit_test(test_http_url),
	    cmocka_unit_test(test_http_url_list), cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_mac),		  cmocka_unit_test(test_addr_special),
	    cmocka_unit_test(test_sa_helpers),	  cmocka_unit_test(test_route_answer),
	    cmocka_unit_test(test_own_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
