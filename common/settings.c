/* settings.c - see settings.h. */
#include "settings.h"

#include "quota.h"

#include "dns.h"
#include "log.h"
#include "net.h"
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

enum skind {
	K_IFACE,
	K_CIDR,
	K_ENUM,
	K_RANGE,
	K_URL,
	K_BOOL,
	K_PREFIXES,
	K_RESOLVERS,
	K_HOSTNAME,
	K_HOSTPORT,
	K_PATH,
	K_TZ,
	K_ISSUER,  /* empty, or an https:// URL (http:// only on loopback) */
	K_TEXT,	   /* printable, no control characters, min..max bytes */
	K_WORD,	   /* as K_TEXT, and no spaces */
	K_SCOPES,  /* space-separated words, openid among them */
	K_ROLEMAP, /* group=role, comma-separated */
	K_USERNAME /* empty, or a user name */
};
static const char *const kind_names[] = {"interface", "cidr",	   "enum",     "range",	   "url",     "bool",
					 "prefixes",  "resolvers", "hostname", "hostport", "path",    "timezone",
					 "issuer",    "text",	   "word",     "scopes",   "rolemap", "username"};

struct sdef {
	struct settings_key pub; /* key, label, help */
	enum skind kind;
	const char *choices; /* K_ENUM: '|'-separated; first is the default */
	unsigned min, max;
	const char *def; /* the default (K_ENUM: the first choice) */
};

/* THE registry: every runtime setting, its validation, its default and how the dashboard
 * shows it (GET /api/v1/config/schema). Daemons read values through settings_uint/_bool/_str,
 * which fall back to these defaults (or the environment variable that seeds a key). */
static const struct sdef defs[] = {
    {{"lan_iface", "LAN interface", "The interface facing the clients."}, K_IFACE, NULL, 0, 0, "ens19"},
    {{"wan_iface", "WAN interface",
      "The interface facing the upstream proxies. Nothing from the LAN is ever forwarded to it."},
     K_IFACE,
     NULL,
     0,
     0,
     "eth0"},
    {{"lan_cidr", "LAN network", "IPv4 network of the clients, like 192.168.2.0/24. IPv4 mappings must be inside it."},
     K_CIDR,
     NULL,
     0,
     0,
     "192.168.2.0/24"},
    {{"forwarder_mode", "Forwarder mode",
      "How client TCP reaches the forwarder: redirect (NAT) works everywhere; tproxy keeps the original destination on "
      "the socket and needs CAP_NET_ADMIN for the forwarder."},
     K_ENUM,
     "redirect|tproxy",
     0,
     0,
     NULL},
    {{"dns_mode", "DNS mode",
      "proxy: the gateway answers every client's DNS (UDP and TCP port 53, to any address) and resolves it through "
      "that client's own proxy to the DNS upstreams; minimal: client DNS is dropped; local: clients may query a "
      "resolver running on the gateway itself (which looks names up from the gateway's own address)."},
     K_ENUM,
     "proxy|minimal|local",
     0,
     0,
     NULL},
    {{"dns_upstream", "DNS upstreams",
      "Resolvers asked through each client's proxy (dns_mode proxy), comma-separated, tried in order: host:port is DNS "
      "over TCP, tls://host:port#name DNS over TLS with the certificate checked against name (#name may be left out "
      "when host is a name). At most 8."},
     K_RESOLVERS,
     NULL,
     0,
     0,
     "1.1.1.1:53,9.9.9.9:53"},
    {{"dns_check_name", "DNS check name",
      "The name pgw-healthd looks up through each proxy to tell whether it carries DNS."},
     K_HOSTNAME,
     NULL,
     0,
     0,
     "example.com"},
    {{"udp_check", "UDP check target",
      "A DNS server (host:port) that pgw-healthd asks, through each SOCKS5 proxy's UDP relay (UDP ASSOCIATE), for "
      "dns_check_name: a proxy whose relay brings the answer back carries UDP."},
     K_HOSTPORT,
     NULL,
     0,
     0,
     "1.1.1.1:53"},
    {{"udp_relay", "UDP relay",
      "Relay the UDP of clients whose proxy carries it (pgw-healthd's UDP check) through that proxy (SOCKS5 UDP "
      "ASSOCIATE). Off: all client UDP but DNS is blocked. Either way no client UDP ever leaves another way."},
     K_BOOL,
     NULL,
     0,
     0,
     "true"},
    {{"udp_flow_timeout", "UDP flow timeout (s)",
      "Seconds a relayed UDP flow (client port and destination) lives without a datagram either way."},
     K_RANGE,
     NULL,
     5,
     3600,
     "60"},
    {{"udp_session_timeout", "UDP session timeout (s)",
      "Seconds a client socket's UDP association with its proxy stays open once it has no flow left."},
     K_RANGE,
     NULL,
     5,
     86400,
     "120"},
    {{"udp_client_flows", "UDP flows per client", "Most UDP flows one client may have open at once; more are dropped."},
     K_RANGE,
     NULL,
     1,
     65535,
     "512"},
    {{"udp_client_pps", "UDP datagrams/s per client",
      "Most datagrams per second one client may send through the UDP relay (a burst of as many); more are dropped."},
     K_RANGE,
     NULL,
     1,
     1000000,
     "20000"},
    {{"client_max_conns", "Connections per client",
      "Most TCP connections one client may have open through the forwarder at once (a mapping's max_conns "
      "overrides it); more are refused. 0: no limit but forwarder_max_connections."},
     K_RANGE,
     NULL,
     0,
     1000000,
     "4000"},
    {{"client_new_conns_per_s", "New connections/s per client",
      "Most TCP connections one client may open per second, a burst of as many (a mapping's new_conns_per_s "
      "overrides it); more are refused. 0: no limit."},
     K_RANGE,
     NULL,
     0,
     100000,
     "0"},
    {{"dns_query_log", "DNS query log",
      "Log every client query (client, name, type, answer, time) in pgw-forwarder's log. Off by default: it names "
      "what every device looks up."},
     K_BOOL,
     NULL,
     0,
     0,
     "false"},
    {{"block_action", "Block action",
      "How blocked clients are refused: reject answers at once (TCP reset, ICMP); drop stays silent. (DNS is answered, "
      "REFUSED or SERVFAIL, and QUIC of active and unmapped devices refused, whatever this says.)"},
     K_ENUM,
     "reject|drop",
     0,
     0,
     NULL},
    {{"strict_output", "Strict OUTPUT mode",
      "The gateway itself may reach the WAN only as the pgw user and only to the proxies."},
     K_BOOL,
     NULL,
     0,
     0,
     "false"},
    {{"health_interval", "Health interval (s)", "Seconds between probes of an up proxy."},
     K_RANGE,
     NULL,
     1,
     86400,
     "30"},
    {{"health_down_interval", "Down re-check interval (s)",
      "Seconds between probes of a down proxy, so recovery is quick."},
     K_RANGE,
     NULL,
     1,
     3600,
     "5"},
    {{"health_timeout", "Health timeout (s)", "Seconds each probe step may take."}, K_RANGE, NULL, 1, 300, "5"},
    {{"health_url", "Health URL",
      "An exit-IP echo URL (http:// or https://host[:port][/path]) fetched through each proxy; https is TLS through "
      "the proxy, its certificate checked (health_ca_file). Up to 4, comma-separated: a proxy is up when any of them "
      "answers (tried in turn), so one echo service being down takes no proxy down."},
     K_URL,
     NULL,
     0,
     0,
     "http://ifconfig.me/ip"},
    {{"audit_retention_days", "Audit log retention (days)",
      "Audit log rows older than this many days are deleted (pgw-api looks at its start and then hourly). 0 keeps "
      "them all."},
     K_RANGE,
     NULL,
     0,
     36500,
     "365"},
    {{"quota_timezone", "Quota time zone",
      "The time zone clients' quota periods begin in (midnight, Monday, the 1st): an IANA name such as "
      "Europe/Berlin, or UTC."},
     K_TZ,
     NULL,
     0,
     0,
     "UTC"},
    {{"dhcp_leases_file", "DHCP leases file",
      "The DHCP server's lease file (dnsmasq's dnsmasq.leases or ISC dhcpd's dhcpd.leases), read for the names "
      "of the LAN's devices (shown with clients and devices). Empty: no names."},
     K_PATH,
     NULL,
     0,
     0,
     ""},
    {{"health_ca_file", "Health CA file",
      "PEM file of the certificate authorities an https health_url's certificate must chain to. Empty: the system's "
      "store."},
     K_PATH,
     NULL,
     0,
     0,
     ""},
    {{"health_fail_threshold", "Failures before down", "Failed probes before a proxy is down (1 blocks fastest)."},
     K_RANGE,
     NULL,
     1,
     10,
     "1"},
    {{"health_success_threshold", "Successes before up", "Good probes before a down proxy is up again."},
     K_RANGE,
     NULL,
     1,
     10,
     "2"},
    {{"failover_hysteresis", "Failover hysteresis (probes)",
      "Probes in a row a recovered proxy must be up before failover clients move back to it (a flapping primary "
      "never takes them back). Only mappings with on_down = failover move."},
     K_RANGE,
     NULL,
     1,
     100,
     "3"}, /* the default is also migration 0018's, which reads the setting */
    {{"health_history_max", "Health history kept", "History entries kept per proxy (the dashboard's sparklines)."},
     K_RANGE,
     NULL,
     10,
     100000,
     "1000"},
    {{"socks_pipelining", "SOCKS5 pipelining",
      "Send greeting, login and request in one write (one round trip instead of three) to SOCKS5 proxies that a probe "
      "found to take it; the others stay lock-step."},
     K_BOOL,
     NULL,
     0,
     0,
     "true"},
    {{"api_allow", "API and dashboard from",
      "Networks (IPv4 or IPv6, comma-separated, at most 16) that may reach the API and the dashboard, enforced by the "
      "kernel on the LAN side and by pgw-api. Empty: the LAN network; loopback always may."},
     K_PREFIXES,
     NULL,
     0,
     0,
     ""},
    {{"metrics_public", "Public /metrics",
      "Serve /metrics to anyone who can reach the API. Off: a signed-in user or the metrics token (PGW_METRICS_TOKEN) "
      "is needed, since the metrics name clients, exit IPs and traffic (of every organisation, when public)."},
     K_BOOL,
     NULL,
     0,
     0,
     "false"},
    {{"proxy_allow_local", "Proxies on the gateway or the LAN",
      "Let a proxy's host be loopback, one of the gateway's own addresses, link-local, on the LAN (lan_cidr, "
      "lan_iface's IPv6 networks) or in a network routed behind it (the route leaves through lan_iface). Off: pgw-api "
      "refuses such an address, and pgw-healthd and pgw-forwarder refuse a "
      "name that resolves there (its clients are blocked), so an organisation's admin cannot aim the gateway's probes "
      "and connections at its own services or another organisation's devices. Turn on for a proxy running on the "
      "gateway itself (ss-local, tor, ssh -D on 127.0.0.1)."},
     K_BOOL,
     NULL,
     0,
     0,
     "false"},
    {{"webhook_allow_private", "Webhooks to private addresses",
      "Let webhooks reach loopback, link-local, private (RFC 1918, ULA, CGNAT) and the LAN's addresses, and "
      "networks routed behind the LAN. Off: "
      "pgw-api refuses to connect there (an organisation's admin cannot aim the gateway at its own services or "
      "another organisation's devices); turn on for a receiver inside your network."},
     K_BOOL,
     NULL,
     0,
     0,
     "false"},
    {{"oidc_issuer", "SSO provider (issuer)",
      "The OpenID Connect provider's issuer URL (https://, or http:// on loopback only); pgw-api reads its "
      "/.well-known/openid-configuration. Empty: no single sign-on."},
     K_ISSUER,
     NULL,
     0,
     0,
     ""},
    {{"oidc_client_id", "SSO client ID", "The client ID this gateway is registered under at the provider."},
     K_WORD,
     NULL,
     0,
     255,
     ""},
    {{"oidc_client_secret_file", "SSO client secret file",
      "File holding the client secret, its first line (read by pgw-api at each sign-in). It must be a regular file "
      "only its owner may read (e.g. 0600), at most 1 KiB, and none of the gateway's own secrets, or the sign-in is "
      "refused. Empty: a public client (PKCE only)."},
     K_PATH,
     NULL,
     0,
     0,
     ""},
    {{"oidc_redirect_url", "SSO redirect URL",
      "Where the provider sends the browser back, as registered there. Empty: the API's own "
      "/api/v1/auth/oidc/callback at the address the browser used."},
     K_ISSUER,
     NULL,
     1, /* any http(s) URL */
     0,
     ""},
    {{"oidc_scopes", "SSO scopes",
      "Scopes asked for, space-separated; openid is required. Add the one that brings the role claim where the "
      "provider needs it (often groups)."},
     K_SCOPES,
     NULL,
     0,
     0,
     "openid profile email"},
    {{"oidc_role_claim", "SSO role claim", "The ID token claim (a string or a list) that oidc_role_map reads."},
     K_WORD,
     NULL,
     1,
     64,
     "groups"},
    {{"oidc_role_map", "SSO role map",
      "Values of the role claim and the role each grants, comma-separated: admins=admin,staff=viewer. A role is "
      "admin, viewer, superadmin, or ORG:admin / ORG:viewer for an organisation by name (a bare admin or viewer is "
      "the gateway's only organisation, and there an admin is a superadmin, as for local users). The highest role "
      "granted wins; a user granted none cannot sign in."},
     K_ROLEMAP,
     NULL,
     0,
     0,
     ""},
    {{"oidc_provider_name", "SSO provider name", "Shown on the login page: Sign in with <name>."},
     K_TEXT,
     NULL,
     1,
     64,
     "SSO"},
    {{"oidc_ca_file", "SSO CA file",
      "PEM file of the certificate authorities the provider's https certificate must chain to. Empty: the "
      "system's store."},
     K_PATH,
     NULL,
     0,
     0,
     ""},
    {{"local_login", "Password login",
      "on: users sign in with their password (and with SSO when configured). breakglass: only the user named by "
      "oidc_breakglass_user signs in with a password; everyone else signs in through the provider (needs "
      "oidc_issuer, oidc_client_id and oidc_breakglass_user set)."},
     K_ENUM,
     "on|breakglass",
     0,
     0,
     NULL},
    {{"oidc_breakglass_user", "Break-glass user",
      "The one local user who may sign in with a password while local_login is breakglass (when the provider is "
      "down). It must be an enabled local superadmin; while local_login is breakglass it cannot be deleted, "
      "disabled or demoted."},
     K_USERNAME,
     NULL,
     0,
     0,
     ""},
    {{"forwarder_connect_timeout", "Connect timeout (s)", "Seconds to connect to a proxy and finish its handshake."},
     K_RANGE,
     NULL,
     1,
     120,
     "10"},
    {{"forwarder_idle_timeout", "Idle timeout (s)", "Seconds a relayed connection may stay silent both ways."},
     K_RANGE,
     NULL,
     10,
     86400,
     "900"},
    {{"forwarder_max_connections", "Max connections", "Relayed connections at once; more are refused."},
     K_RANGE,
     NULL,
     16,
     1000000,
     "20000"},
    {{"forwarder_drain_timeout", "Drain timeout (s)", "Seconds a stopping forwarder waits for open connections."},
     K_RANGE,
     NULL,
     0,
     300,
     "10"},
};

#define NDEFS (sizeof(defs) / sizeof(defs[0]))

const struct settings_key *settings_keys(void)
{
	static struct settings_key keys[NDEFS + 1];

	if (!keys[0].key)
		for (size_t i = 0; i < NDEFS; i++)
			keys[i] = defs[i].pub;
	return keys;
}

static const struct sdef *find(const char *key)
{
	for (size_t i = 0; i < NDEFS; i++)
		if (strcmp(defs[i].pub.key, key) == 0)
			return &defs[i];
	return NULL;
}

static int choice_ok(const char *choices, const char *value)
{
	size_t vl = strlen(value);

	for (const char *p = choices; *p;) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == vl && strncmp(p, value, len) == 0)
			return 1;
		p += len + (bar ? 1 : 0);
	}
	return 0;
}

int settings_url_ok(const char *url, int any_host)
{
	struct net_http_url u;
	struct net_ip ip;

	if (net_http_url_parse(url, &u) < 0 || strchr(url, '?') || strchr(url, '#'))
		return 0;
	if (u.tls || any_host || strcmp(u.host, "localhost") == 0)
		return 1;
	if (net_ip_parse(u.host, &ip) < 0)
		return 0;
	return net_ip_is4(&ip) ? ip.a[12] == 127 : IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)ip.a);
}

int settings_rolemap_next(const char **pos, char *group, size_t gsize, char *role, size_t rsize)
{
	const char *p = *pos, *end, *eq;
	size_t gl, rl;

	while (*p == ' ' || *p == ',')
		p++;
	if (!*p)
		return 0;
	end = p + strcspn(p, ",");
	eq = memchr(p, '=', (size_t)(end - p));
	if (!eq)
		return -1;
	gl = (size_t)(eq - p);
	while (gl && p[gl - 1] == ' ')
		gl--;
	const char *r = eq + 1;
	while (*r == ' ')
		r++;
	rl = (size_t)(end - r);
	while (rl && r[rl - 1] == ' ')
		rl--;
	if (!gl || !rl || gl >= gsize || rl >= rsize)
		return -1;
	for (size_t i = 0; i < gl; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == '=')
			return -1;
	memcpy(group, p, gl);
	group[gl] = 0;
	memcpy(role, r, rl);
	role[rl] = 0;
	{ /* admin, viewer, superadmin, or ORG:admin / ORG:viewer */
		const char *colon = strrchr(role, ':'), *what = colon ? colon + 1 : role;
		if (strcmp(what, "admin") != 0 && strcmp(what, "viewer") != 0 &&
		    (colon || strcmp(what, "superadmin") != 0))
			return -1;
		if (colon == role)
			return -1;
	}
	*pos = end;
	return 1;
}

int settings_validate(const char *key, const char *value, char *err, size_t errlen)
{
	char scratch[8];

	if (!err) { /* only the verdict is wanted */
		err = scratch;
		errlen = sizeof(scratch);
	}
	const struct sdef *d = find(key);
	struct net_cidr4 c;
	uint64_t n;
	int b;

	if (!d) {
		snprintf(err, errlen, "%s: unknown setting", key);
		return -ENOENT;
	}
	if (strlen(value) >= SETTINGS_VALUE_MAX) {
		snprintf(err, errlen, "%s: value too long", key);
		return -EINVAL;
	}
	switch (d->kind) {
	case K_IFACE:
		if (net_ifname_valid(value))
			return 0;
		snprintf(err, errlen, "%s: '%s' is not a valid interface name", key, value);
		break;
	case K_CIDR:
		if (net_cidr4_parse(value, &c) == 0)
			return 0;
		snprintf(err, errlen, "%s: '%s' is not an IPv4 network like 192.168.2.0/24", key, value);
		break;
	case K_ENUM:
		if (choice_ok(d->choices, value))
			return 0;
		snprintf(err, errlen, "%s: '%s' is not one of %s", key, value, d->choices);
		break;
	case K_RANGE:
		if (parse_u64(value, d->min, d->max, &n) == 0)
			return 0;
		snprintf(err, errlen, "%s: '%s' is not a whole number from %u to %u", key, value, d->min, d->max);
		break;
	case K_URL: { /* one URL, or several (comma-separated: tried in turn) */
		struct net_http_url urls[NET_HTTP_URLS_MAX];
		if (net_http_url_list_parse(value, urls, NET_HTTP_URLS_MAX) > 0)
			return 0;
	}
		snprintf(
		    err, errlen,
		    "%s: '%s' must be http:// or https://host[:port][/path] (host: a name, an IPv4 address or [an IPv6 "
		    "address]), or up to 4 of them, comma-separated",
		    key, value);
		break;
	case K_BOOL:
		if (parse_bool(value, &b) == 0)
			return 0;
		snprintf(err, errlen, "%s: '%s' is not true or false", key, value);
		break;
	case K_RESOLVERS: {
		struct dns_upstream u[DNS_UPSTREAMS_MAX];
		char why[200];
		if (dns_upstreams_parse(value, u, DNS_UPSTREAMS_MAX, why, sizeof(why)) > 0)
			return 0;
		snprintf(err, errlen, "%s: %s", key, why);
		break;
	}
	case K_PATH: /* empty, or an absolute path */
		if (!*value || (value[0] == '/' && strlen(value) < 256 && !strpbrk(value, "\t\r\n")))
			return 0;
		snprintf(err, errlen, "%s: '%.64s' must be empty or an absolute path", key, value);
		break;
	case K_HOSTPORT: {
		char host[256];
		uint16_t port;
		struct net_ip ip;
		if (net_hostport_parse(value, host, sizeof(host), &port) == 0 &&
		    (net_ip_parse(host, &ip) == 0 || dns_hostname_valid(host)))
			return 0;
		snprintf(err, errlen, "%s: '%s' is not host:port (host: an IPv4 address, [an IPv6 address] or a name)",
			 key, value);
		break;
	}
	case K_TZ:
		if (*value && quota_tz_valid(value))
			return 0;
		snprintf(err, errlen,
			 "%s: '%.64s' is not a time zone this gateway knows (an IANA name like Europe/Berlin, or UTC)",
			 key, value);
		break;
	case K_HOSTNAME:
		if (dns_hostname_valid(value))
			return 0;
		snprintf(err, errlen, "%s: '%s' is not a host name like www.example.com", key, value);
		break;
	case K_ISSUER:
		if (!*value || settings_url_ok(value, d->min))
			return 0;
		snprintf(
		    err, errlen,
		    d->min
			? "%s: '%.128s' must be empty or an http:// or https:// URL"
			: "%s: '%.128s' must be empty or an https:// URL (http:// only on loopback: 127.0.0.1, [::1], "
			  "localhost)",
		    key, value);
		break;
	case K_TEXT:
	case K_WORD: {
		size_t l = strlen(value);
		int bad = l < d->min || l > d->max;
		for (const unsigned char *p = (const unsigned char *)value; !bad && *p; p++) {
			int more = *p < 0x80		 ? 0
				   : (*p & 0xe0) == 0xc0 ? 1
				   : (*p & 0xf0) == 0xe0 ? 2
				   : (*p & 0xf8) == 0xf0 ? 3
							 : -1;
			/* UTF-8 as JSON takes it: no overlong forms, surrogates or code points past U+10FFFF */
			bad = *p < 0x20 || *p == 0x7f || (d->kind == K_WORD && (*p == ' ' || more)) || more < 0 ||
			      (*p >= 0x80 && *p < 0xc2) || *p > 0xf4 || (*p == 0xe0 && p[1] < 0xa0) ||
			      (*p == 0xed && p[1] >= 0xa0) || (*p == 0xf0 && p[1] < 0x90) ||
			      (*p == 0xf4 && p[1] >= 0x90);
			for (int k = 0; k < more && !bad; k++) /* its continuation bytes */
				bad = (*++p & 0xc0) != 0x80;
		}
		if (!bad)
			return 0;
		snprintf(err, errlen, "%s: must be %u to %u bytes of UTF-8%s, without control characters", key, d->min,
			 d->max, d->kind == K_WORD ? " (ASCII) and no spaces" : "");
		break;
	}
	case K_SCOPES: {
		int openid = 0, bad = 0;
		for (const char *p = value; *p;) {
			size_t l = strcspn(p, " ");
			openid |= l == 6 && strncmp(p, "openid", 6) == 0;
			for (size_t i = 0; i < l; i++)
				bad |= (unsigned char)p[i] <= 0x20 || p[i] == 0x7f || p[i] == '"' || p[i] == '\\';
			p += l + (p[l] == ' ');
		}
		if (openid && !bad)
			return 0;
		snprintf(err, errlen, "%s: '%.128s' must be scopes separated by spaces, openid among them", key, value);
		break;
	}
	case K_ROLEMAP: {
		char group[SETTINGS_VALUE_MAX], role[SETTINGS_VALUE_MAX];
		const char *p = value;
		int r;
		while ((r = settings_rolemap_next(&p, group, sizeof(group), role, sizeof(role))) > 0)
			;
		if (r == 0)
			return 0;
		snprintf(
		    err, errlen,
		    "%s: '%.128s' must be claim values and roles like admins=admin,staff=viewer (roles: admin, viewer, "
		    "superadmin, ORG:admin, ORG:viewer)",
		    key, value);
		break;
	}
	case K_USERNAME:
		if (strlen(value) <= 64 &&
		    strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-") ==
			strlen(value))
			return 0;
		snprintf(err, errlen, "%s: '%.64s' is not a user name (A-Z a-z 0-9 . _ @ -, at most 64)", key, value);
		break;
	case K_PREFIXES: {
		struct net_prefix p[SETTINGS_PREFIXES_MAX];
		if (net_prefix_list_parse(value, p, SETTINGS_PREFIXES_MAX) >= 0)
			return 0;
		snprintf(err, errlen, "%s: '%s' is not a list of at most %d networks like 192.168.2.0/24, fd00:2::/64",
			 key, value, SETTINGS_PREFIXES_MAX);
		break;
	}
	}
	return -EINVAL;
}

/* The first value of a key: from the environment where one maps to it, else the default. */
static const char *first_value(const struct sdef *d, const struct pgw_config *cfg, char *buf, size_t size)
{
	const char *k = d->pub.key;

	if (strcmp(k, "lan_iface") == 0)
		return cfg->lan_iface;
	if (strcmp(k, "wan_iface") == 0)
		return cfg->wan_iface;
	if (strcmp(k, "lan_cidr") == 0)
		return cfg->lan_cidr;
	if (strcmp(k, "health_url") == 0)
		return cfg->health_url;
	if (strcmp(k, "health_interval") == 0 || strcmp(k, "health_timeout") == 0) {
		snprintf(buf, size, "%u", k[7] == 'i' ? cfg->health_interval_s : cfg->health_timeout_s);
		return buf;
	}
	if (d->kind == K_ENUM) {
		const char *bar = strchr(d->choices, '|');
		snprintf(buf, size, "%.*s", (int)(bar - d->choices), d->choices);
		return buf;
	}
	return d->def;
}

int settings_seed(sqlite3 *db, const struct pgw_config *cfg)
{
	sqlite3_stmt *st = NULL;
	char buf[64];
	int r = -EIO;

	if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	for (size_t i = 0; i < NDEFS; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, defs[i].pub.key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, first_value(&defs[i], cfg, buf, sizeof(buf)), -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

int settings_get(sqlite3 *db, const char *key, char *value, size_t size)
{
	sqlite3_stmt *st = NULL;
	int r = -EIO, rc;

	if (!db) /* no DB to read (pgw-agent's table granting nobody): the configuration's values */
		return -EIO;
	if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key = ?1", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const struct sdef *d = find(key);
		const char *v = (const char *)sqlite3_column_text(st, 0);
		int b;

		/* a switch reads "true" or "false", however it was written (pgwctl takes yes/on/1...,
		 * and a database from before settings_set wrote it so): the dashboard's choice of two */
		if (d && d->kind == K_BOOL && v && parse_bool(v, &b) == 0)
			v = b ? "true" : "false";
		snprintf(value, size, "%s", v ? v : "");
		r = 0;
	} else if (rc == SQLITE_DONE) {
		r = -ENOENT;
	}
	sqlite3_finalize(st);
	return r;
}

static _Thread_local int read_failed; /* a settings_get failure but "not set", with a DB, since begin */

void settings_read_begin(void)
{
	read_failed = 0;
}

int settings_read_end(void)
{
	return read_failed ? -EIO : 0;
}

static void value_of(sqlite3 *db, const struct pgw_config *cfg, const struct sdef *d, char *buf, size_t size)
{
	char first[64];
	int r = settings_get(db, d->pub.key, buf, size);

	if (r == 0)
		return;
	if (r != -ENOENT && db)
		read_failed = 1;
	snprintf(buf, size, "%s", first_value(d, cfg, first, sizeof(first)));
}

void settings_value(sqlite3 *db, const struct pgw_config *cfg, const char *key, char *buf, size_t size)
{
	const struct sdef *d = find(key);

	if (d)
		value_of(db, cfg, d, buf, size);
	else
		buf[0] = 0;
}

void settings_str(sqlite3 *db, const struct pgw_config *cfg, const char *key, char *buf, size_t size)
{
	const struct sdef *d = find(key);

	if (!d) { /* a typo in the code, not a user's: loud, and nothing */
		log_error("settings: no setting '%s'", key);
		buf[0] = 0;
		return;
	}
	value_of(db, cfg, d, buf, size);
	if (settings_validate(key, buf, NULL, 0) < 0) { /* a bad row written by hand: the first value */
		char first[64];
		snprintf(buf, size, "%s", first_value(d, cfg, first, sizeof(first)));
	}
}

unsigned settings_uint(sqlite3 *db, const struct pgw_config *cfg, const char *key)
{
	char v[SETTINGS_VALUE_MAX];
	uint64_t n;

	settings_str(db, cfg, key, v, sizeof(v));
	return parse_u64(v, 0, UINT32_MAX, &n) == 0 ? (unsigned)n : 0;
}

int settings_bool(sqlite3 *db, const struct pgw_config *cfg, const char *key)
{
	char v[SETTINGS_VALUE_MAX];
	int b;

	settings_str(db, cfg, key, v, sizeof(v));
	return parse_bool(v, &b) == 0 ? b : 0;
}

/* [{key, label, help, kind, default, choices?, min?, max?}] as JSON text (malloc'd). */
char *settings_schema_json(void)
{
	char *out = NULL, esc[1024];
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	fputc('[', f);
	for (size_t i = 0; i < NDEFS; i++) {
		const struct sdef *d = &defs[i];
		char def[64];

		fprintf(f, "%s{\"key\":\"%s\",", i ? "," : "", d->pub.key);
		log_json_escape(esc, sizeof(esc), d->pub.label);
		fprintf(f, "\"label\":\"%s\",", esc);
		log_json_escape(esc, sizeof(esc), d->pub.help);
		fprintf(f, "\"help\":\"%s\",\"kind\":\"%s\",", esc, kind_names[d->kind]);
		if (d->kind == K_ENUM) {
			const char *bar = strchr(d->choices, '|');
			snprintf(def, sizeof(def), "%.*s", (int)(bar - d->choices), d->choices);
			fputs("\"choices\":[", f);
			for (const char *p = d->choices; *p;) {
				const char *b = strchr(p, '|');
				size_t l = b ? (size_t)(b - p) : strlen(p);
				fprintf(f, "%s\"%.*s\"", p == d->choices ? "" : ",", (int)l, p);
				p += l + (b ? 1 : 0);
			}
			fputs("],", f);
		} else {
			snprintf(def, sizeof(def), "%s", d->def);
		}
		if (d->kind == K_RANGE)
			fprintf(f, "\"min\":%u,\"max\":%u,", d->min, d->max);
		if (d->kind == K_BOOL)
			fputs("\"choices\":[\"true\",\"false\"],", f);
		log_json_escape(esc, sizeof(esc), def);
		fprintf(f, "\"default\":\"%s\"}", esc);
	}
	fputc(']', f);
	fclose(f);
	return out;
}

int settings_set(sqlite3 *db, const char *key, const char *value, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const struct sdef *d = find(key);
	int r = settings_validate(key, value, err, errlen), b;

	if (r < 0)
		return r;
	if (d && d->kind == K_BOOL && parse_bool(value, &b) == 0) /* stored as the dashboard shows it */
		value = b ? "true" : "false";
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO settings (key, value) VALUES (?1, ?2) "
			       "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = unixepoch()",
			       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", key, sqlite3_errmsg(db));
		return -EIO;
	}
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	/* a single-organisation install's organisation owns the LAN: its one IPv4 network follows
	 * lan_cidr (with several, the superadmin sets each one's networks) */
	if (r == 0 && strcmp(key, "lan_cidr") == 0) {
		st = NULL;
		r = sqlite3_prepare_v2(db,
				       "UPDATE org_networks SET cidr = ?1 WHERE cidr NOT GLOB '*:*' AND (SELECT "
				       "count(*) FROM orgs) = 1 AND (SELECT count(*) FROM org_networks WHERE cidr NOT "
				       "GLOB '*:*') = 1",
				       -1, &st, NULL) == SQLITE_OK
			? 0
			: -EIO;
		if (r == 0) {
			sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
			r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
		}
		sqlite3_finalize(st);
	}
	if (r < 0)
		snprintf(err, errlen, "%s: %s", key, sqlite3_errmsg(db));
	return r;
}

/* "lo, ens19, eth0": the interfaces there are, for a message. */
static void iface_list(char *buf, size_t size)
{
	struct if_nameindex *ni = if_nameindex(), *p;
	size_t len = 0;

	buf[0] = 0;
	for (p = ni; p && p->if_index && len + 2 < size; p++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "", p->if_name);
	if (ni)
		if_freenameindex(ni);
}

/* The IPv4 addresses of iface as "a/len, ...", and whether one lies in c. -1: it has none. */
static int iface_in_cidr(const char *iface, const struct net_cidr4 *c, char *addrs, size_t size)
{
	struct ifaddrs *ifa = NULL, *p;
	uint32_t mask = c->prefix ? 0xffffffffu << (32 - c->prefix) : 0;
	size_t len = 0;
	int any = 0, in = 0;

	addrs[0] = 0;
	if (getifaddrs(&ifa) < 0)
		return -1;
	for (p = ifa; p; p = p->ifa_next) {
		char a[INET_ADDRSTRLEN];
		uint32_t v, m;
		if (!p->ifa_addr || p->ifa_addr->sa_family != AF_INET || strcmp(p->ifa_name, iface) != 0)
			continue;
		v = ntohl(((const struct sockaddr_in *)p->ifa_addr)->sin_addr.s_addr);
		m = p->ifa_netmask ? ntohl(((const struct sockaddr_in *)p->ifa_netmask)->sin_addr.s_addr) : 0xffffffffu;
		any = 1;
		in |= (v & mask) == (c->addr & mask);
		inet_ntop(AF_INET, &((const struct sockaddr_in *)p->ifa_addr)->sin_addr, a, sizeof(a));
		if (len + 2 < size)
			len += (size_t)snprintf(addrs + len, size - len, "%s%s/%d", len ? ", " : "", a,
						__builtin_popcount(m));
	}
	freeifaddrs(ifa);
	return any ? in : -1;
}

int settings_check_system(sqlite3 *db, const char *const *keys, const char *const *values, size_t n, char *err,
			  size_t errlen)
{
	static const char *const names[] = {"lan_iface", "wan_iface", "lan_cidr"};
	char v[3][SETTINGS_VALUE_MAX], list[256], addrs[256];
	int touched[3] = {0, 0, 0};
	struct net_cidr4 c;

	for (int k = 0; k < 3; k++) {
		const struct sdef *d = find(names[k]);
		if (settings_get(db, names[k], v[k], sizeof(v[k])) < 0)
			snprintf(v[k], sizeof(v[k]), "%s", d->def);
		for (size_t i = 0; i < n; i++)
			if (strcmp(keys[i], names[k]) == 0) {
				snprintf(v[k], sizeof(v[k]), "%s", values[i]);
				touched[k] = 1;
			}
	}
	for (int k = 0; k < 2; k++) {
		if (!touched[k] || if_nametoindex(v[k]) != 0)
			continue;
		iface_list(list, sizeof(list));
		snprintf(err, errlen, "%s: no interface '%s' on this gateway (there are: %s)", names[k], v[k], list);
		return -EINVAL;
	}
	if ((touched[0] || touched[2]) && net_cidr4_parse(v[2], &c) == 0 && if_nametoindex(v[0]) != 0 &&
	    iface_in_cidr(v[0], &c, addrs, sizeof(addrs)) == 0) {
		snprintf(err, errlen,
			 "lan_cidr: %s holds no address of %s (%s); clients in it could not reach the gateway", v[2],
			 v[0], addrs);
		return -EINVAL;
	}
	return 0;
}

int settings_check_login(sqlite3 *db, const char *const *keys, const char *const *values, size_t n, char *err,
			 size_t errlen)
{
	static const char *const names[] = {"local_login", "oidc_breakglass_user", "oidc_issuer", "oidc_client_id"};
	char v[4][SETTINGS_VALUE_MAX];
	sqlite3_stmt *st = NULL;
	int touched = 0, ok = 0;

	for (int k = 0; k < 4; k++) {
		if (settings_get(db, names[k], v[k], sizeof(v[k])) < 0)
			snprintf(v[k], sizeof(v[k]), "%s", k == 0 ? "on" : "");
		for (size_t i = 0; i < n; i++)
			if (strcmp(keys[i], names[k]) == 0) {
				snprintf(v[k], sizeof(v[k]), "%s", values[i]);
				touched = 1;
			}
	}
	if (!touched || strcmp(v[0], "breakglass") != 0)
		return 0;
	if (!v[2][0] || !v[3][0]) {
		snprintf(err, errlen,
			 "local_login: breakglass needs single sign-on set up (oidc_issuer and oidc_client_id): "
			 "everyone but the break-glass user signs in through the provider");
		return -EINVAL;
	}
	if (!v[1][0]) {
		snprintf(
		    err, errlen,
		    "local_login: breakglass needs oidc_breakglass_user, the superadmin who may still sign in with "
		    "a password when the provider is down");
		return -EINVAL;
	}
	if (sqlite3_prepare_v2(db,
			       "SELECT 1 FROM main.users WHERE username = ?1 AND disabled = 0 AND superadmin = 1 AND "
			       "sso_issuer IS NULL",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, v[1], -1, SQLITE_STATIC);
		ok = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	if (!ok) {
		snprintf(
		    err, errlen,
		    "oidc_breakglass_user: '%.64s' is not an enabled local superadmin (the break-glass user signs in "
		    "with a password and must be able to set the gateway right)",
		    v[1]);
		return -EINVAL;
	}
	return 0;
}

int settings_breakglass_user(sqlite3 *db, int64_t user_id)
{
	char mode[16], user[SETTINGS_VALUE_MAX];
	sqlite3_stmt *st = NULL;
	int yes = 0;

	if (settings_get(db, "local_login", mode, sizeof(mode)) < 0 || strcmp(mode, "breakglass") != 0 ||
	    settings_get(db, "oidc_breakglass_user", user, sizeof(user)) < 0)
		return 0;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM main.users WHERE id = ?1 AND username = ?2", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, user_id);
		sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
		yes = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	return yes;
}

void settings_lan(sqlite3 *db, const struct pgw_config *cfg, struct net_lan *lan)
{
	char v[SETTINGS_VALUE_MAX];

	memset(lan, 0, sizeof(*lan));
	settings_str(db, cfg, "lan_cidr", v, sizeof(v));
	if (net_cidr4_parse(v, &lan->v4) < 0)
		memset(&lan->v4, 0, sizeof(lan->v4));
	/* IPv6 has no lan_cidr: the LAN interface's own networks (lan_iface, as the agent reads it) */
	settings_str(db, cfg, "lan_iface", v, sizeof(v));
	lan->n6 = net_iface_prefixes6(v, lan->v6, NET_LAN6_MAX);
	if (strlen(v) < sizeof(lan->ifname)) /* (a valid name is at most 15) */
		memcpy(lan->ifname, v, strlen(v) + 1);
}
