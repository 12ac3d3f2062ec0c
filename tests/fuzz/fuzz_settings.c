/* libFuzzer: settings values typed into the Configuration tab or pgwctl: "key\0value". The
 * value is also read as a health URL (a URL that parses, written back out, parses the same), a
 * list of them, and
 * as a dns_upstream list (whatever parses is within its bounds), and as an SSO role map. */
#include "dns.h"
#include "net.h"
#include "settings.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), err[600];
	const char *key, *value;
	int r;

	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = '\0';
	key = buf;
	value = buf + strlen(buf) + (strlen(buf) < size ? 1 : 0);
	r = settings_validate(key, value, err, sizeof(err));
	assert(r == 0 || r == -EINVAL || r == -ENOENT);
	if (r < 0)
		assert(strncmp(err, key, strlen(key) < 20 ? strlen(key) : 20) == 0);
	{
		struct net_http_url u, again;
		char back[700];
		if (net_http_url_parse(value, &u) == 0) {
			assert(u.host[0] && u.port > 0 && u.path[0] == '/');
			snprintf(back, sizeof(back), "%s://%s%s%s:%u%s", u.tls ? "https" : "http", u.is6 ? "[" : "",
				 u.host, u.is6 ? "]" : "", u.port, u.path);
			assert(net_http_url_parse(back, &again) == 0);
			assert(memcmp(&u, &again, sizeof(u)) == 0);
		}
	}
	{ /* several health URLs: whatever parses is within its bounds */
		struct net_http_url urls[NET_HTTP_URLS_MAX];
		int n = net_http_url_list_parse(value, urls, NET_HTTP_URLS_MAX);
		assert(n == -EINVAL || (n >= 1 && n <= NET_HTTP_URLS_MAX));
		for (int i = 0; i < n; i++)
			assert(urls[i].host[0] && urls[i].port > 0 && urls[i].path[0] == '/');
	}
	{
		struct dns_upstream up[DNS_UPSTREAMS_MAX];
		int n = dns_upstreams_parse(value, up, DNS_UPSTREAMS_MAX, err, sizeof(err));
		assert(n == -EINVAL || (n >= 1 && n <= DNS_UPSTREAMS_MAX));
		for (int i = 0; i < n; i++) {
			assert(up[i].host[0] && up[i].port > 0 && strlen(up[i].host) < sizeof(up[i].host));
			assert(!up[i].tls || dns_hostname_valid(up[i].name)); /* a TLS name is always checked against */
		}
		(void)dns_hostname_valid(value);
	}
	{ /* a role map (oidc_role_map): every entry it yields is bounded, non-empty and of a known role */
		char g[64], role[64];
		const char *pos = value;
		int n = 0, k;
		while ((k = settings_rolemap_next(&pos, g, sizeof(g), role, sizeof(role))) > 0 && n < 1000) {
			const char *c = strrchr(role, ':'), *what = c ? c + 1 : role;
			assert(g[0] && role[0] && strlen(g) < sizeof(g) && pos > value);
			assert(!strcmp(what, "admin") || !strcmp(what, "viewer") ||
			       (!c && !strcmp(what, "superadmin")));
			n++;
		}
		assert(k == 0 || k == -1);
		(void)settings_url_ok(value, 0);
	}
	free(buf);
	return 0;
}
