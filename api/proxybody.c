/* proxybody.c - see proxybody.h. Pure (JSON and addresses in, JSON out): fuzz_proxybody drives it. */
#include "proxybody.h"

#include "net.h"
#include "upstream.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const proxy_col_names[PROXY_NCOLS] = {"name",     "type",	  "host",	  "port",
						  "username", "password", "expected_exit"};

static const struct jfield proxy_fields[] = {
    {"name", J_NAME, 1, 1, 64},	     {"type", J_STR, 1, 4, 6},
    {"host", J_STR, 1, 1, 253},	     {"port", J_INT, 1, 1, 65535},
    {"username", J_STR, 0, 0, 255},  {"password", J_STR, 0, 0, 255},
    {"enabled", J_BOOL, 0, 0, 1},    {"expected_exit", J_ARRAY, 0, 0, PROXY_EXPECTED_MAX},
    {"preconnect", J_BOOL, 0, 0, 1},
};
#define NFIELDS (sizeof(proxy_fields) / sizeof(proxy_fields[0]))

int proxy_body_check(json_t *b, int partial, const struct net_lan *refuse, char *err, size_t errlen)
{
	const char *type, *host, *user;

	if (json_check(b, proxy_fields, NFIELDS, partial, err, errlen) < 0)
		return -1;
	type = json_string_value(json_object_get(b, "type"));
	host = json_string_value(json_object_get(b, "host"));
	user = json_string_value(json_object_get(b, "username"));
	if (type && strcmp(type, "socks5") != 0 && strcmp(type, "http") != 0)
		return snprintf(err, errlen, "'type' must be socks5 or http"), -1;
	if (host && strpbrk(host, " \t\r\n/@[]%"))
		return snprintf(
			   err, errlen,
			   "'host' must be a host name, an IPv4 address or an IPv6 address (no brackets, no port)"),
		       -1;
	for (const char *c = host; c && *c; c++) /* (before host is canonicalised below, which frees it) */
		if ((unsigned char)*c >= 0x80)
			return snprintf(err, errlen,
					"'host' must be ASCII: a name with other letters in its IDNA form (xn--...)"),
			       -1;
	if (host && strchr(host, ':')) {
		struct net_ip ip;
		char canon[NET_IP_STR_MAX];
		if (net_ip_parse(host, &ip) < 0 || net_ip_is4(&ip))
			return snprintf(err, errlen,
					"'host' with ':' must be an IPv6 address (the port goes in 'port')"),
			       -1;
		net_ip_str(&ip, canon);
		json_object_set_new(b, "host", json_string(canon));
	}
	host = json_string_value(json_object_get(b, "host"));
	if (host && !strchr(host, ':')) { /* 127.1, 2130706433, 0x7f000001: addresses to getaddrinfo */
		struct in_addr a4;
		struct net_ip ip;
		if (inet_aton(host, &a4) && net_ip_parse(host, &ip) < 0)
			return snprintf(err, errlen,
					"'host' %s is an IPv4 address in a short or numeric form: write it "
					"as a dotted quad",
					host),
			       -1;
	}
	if (host && refuse) { /* an address (a name is judged where it is resolved: healthd, forwarder) */
		struct net_ip ip;
		struct sockaddr_storage sa;
		const char *why;
		if (net_ip_parse(host, &ip) == 0 && (net_ip_to_sa(&ip, 1, &sa), why = net_dest_refused(&sa, refuse)))
			return snprintf(err, errlen,
					"'host' %s is %s: a proxy is reached over the WAN (a superadmin's setting "
					"proxy_allow_local allows it)",
					host, why),
			       -1;
	}
	if (user && strchr(user, ':') && type && strcmp(type, "http") == 0)
		return snprintf(err, errlen, "'username' cannot contain ':' for an HTTP proxy"), -1;
	/* the lengths above are characters; what goes on the wire is bytes: a SOCKS5 login takes 255
	 * bytes each (RFC 1929), and a name is ASCII (an international one in its xn-- form) */
	for (int i = 0; i < 2; i++) {
		const char *k = i ? "password" : "username", *v = json_string_value(json_object_get(b, k));
		if (v && strlen(v) > UPSTREAM_CRED_MAX)
			return snprintf(err, errlen, "'%s' is longer than %d bytes (UTF-8): %zu", k, UPSTREAM_CRED_MAX,
					strlen(v)),
			       -1;
	}
	if (json_object_get(b, "expected_exit")) { /* stored as one canonical "a/n,b/n" */
		char list[PROXY_EXPECTED_MAX * (NET_PREFIX_STR_MAX + 1)] = "", one[NET_PREFIX_STR_MAX];
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(b, "expected_exit"), i, v)
		{
			struct net_prefix p;
			if (!json_is_string(v) || net_prefix_parse(json_string_value(v), &p) < 0)
				return snprintf(err, errlen,
						"'expected_exit'[%zu] must be an IP address or a CIDR (host bits zero)",
						i),
				       -1;
			net_prefix_str(&p, one);
			if (i)
				strcat(list, ",");
			strcat(list, one);
		}
		json_object_set_new(b, "expected_exit", json_string(list));
	}
	return 0;
}

json_t *proxy_csv_body(const struct csv_row *row, const int col[PROXY_NCOLS], char *err, size_t errlen)
{
	json_t *b = json_object();
	long long port;

	for (int c = 0; c < PROXY_NCOLS; c++) {
		const char *v = col[c] >= 0 ? csv_unformula(row->field[col[c]]) : NULL;
		if (!v ||
		    (!*v && c != PROXY_COL_NAME && c != PROXY_COL_TYPE && c != PROXY_COL_HOST && c != PROXY_COL_PORT))
			continue;
		if (c == PROXY_COL_PORT) {
			char *end;
			port = strtoll(v, &end, 10);
			if (!*v || *end) {
				json_decref(b);
				return snprintf(err, errlen, "port must be a number"), NULL;
			}
			json_object_set_new(b, "port", json_integer(port));
		} else if (c == PROXY_COL_EXIT) { /* addresses and CIDRs, separated by spaces or commas */
			json_t *a = json_array();
			char tmp[CSV_MAX_FIELD + 2], *save = NULL, *tok;
			snprintf(tmp, sizeof(tmp), "%s", v);
			for (tok = strtok_r(tmp, " ,;", &save); tok; tok = strtok_r(NULL, " ,;", &save))
				if (json_array_append_new(a, json_string(tok)) < 0) { /* never a pin dropped */
					json_decref(a);
					json_decref(b);
					return snprintf(err, errlen, "expected_exit is not UTF-8 text"), NULL;
				}
			json_object_set_new(b, "expected_exit", a);
		} else if (json_object_set_new(b, proxy_col_names[c], json_string(v)) <
			   0) { /* jansson takes only UTF-8 */
			json_decref(b);
			return snprintf(err, errlen, "%s is not UTF-8 text", proxy_col_names[c]), NULL;
		}
	}
	return b;
}
