/* libFuzzer: a proxy as an admin sends it (api/proxybody.c): a JSON body (POST, PUT, PATCH) and
 * a proxy CSV file's rows (the import). The first byte picks which the rest is. A body taken is
 * what the relay and healthd rely on: type socks5 or http, a port, a host that is an ASCII name
 * or a canonical address outside the LAN (192.168.2.0/24, fd00:1::/64 here) and not loopback,
 * logins of at most 255 bytes, expected_exit one canonical list; taken again it is unchanged
 * (the canonical form is a fixed point). A CSV file's header is taken only with known columns,
 * none twice; its rows become bodies that go through the same check. */
#include "../../api/proxybody.h"
#include "net.h"
#include "upstream.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct net_lan lan;

static void taken(json_t *b, int partial, const struct net_lan *refuse)
{
	const char *type = json_string_value(json_object_get(b, "type"));
	const char *host = json_string_value(json_object_get(b, "host"));
	const char *exits = json_string_value(json_object_get(b, "expected_exit"));
	json_t *port = json_object_get(b, "port"), *again;
	char err[256];

	assert(partial || (type && host && port && json_string_value(json_object_get(b, "name"))));
	assert(!type || strcmp(type, "socks5") == 0 || strcmp(type, "http") == 0);
	assert(!port || (json_integer_value(port) >= 1 && json_integer_value(port) <= 65535));
	if (host) {
		struct net_ip ip;
		char canon[NET_IP_STR_MAX];

		for (const char *c = host; *c; c++)
			assert((unsigned char)*c < 0x80 && !strchr(" \t\r\n/@[]%", *c));
		if (net_ip_parse(host, &ip) == 0) {
			struct sockaddr_storage sa;
			net_ip_str(&ip, canon);
			assert(strcmp(canon, host) == 0);
			net_ip_to_sa(&ip, 1, &sa);
			assert(!refuse || !net_dest_refused(&sa, refuse));
		} else {
			struct in_addr a4;
			assert(!strchr(host, ':'));
			assert(!inet_aton(host, &a4)); /* 127.1, 2130706433: addresses getaddrinfo would take */
		}
	}
	for (int i = 0; i < 2; i++) {
		const char *v = json_string_value(json_object_get(b, i ? "password" : "username"));
		assert(!v || strlen(v) <= UPSTREAM_CRED_MAX);
	}
	if (json_object_get(b, "expected_exit")) {
		struct net_prefix p[PROXY_EXPECTED_MAX];
		assert(exits && net_prefix_list_parse(exits, p, PROXY_EXPECTED_MAX) >= 0);
	}
	/* the canonical form is a fixed point (expected_exit goes back as the list it came as) */
	again = json_deep_copy(b);
	if (exits) {
		struct net_prefix p[PROXY_EXPECTED_MAX];
		int n = net_prefix_list_parse(exits, p, PROXY_EXPECTED_MAX);
		json_t *a = json_array();
		for (int i = 0; i < n; i++) {
			char one[NET_PREFIX_STR_MAX];
			net_prefix_str(&p[i], one);
			json_array_append_new(a, json_string(one));
		}
		json_object_set_new(again, "expected_exit", a);
	}
	assert(proxy_body_check(again, partial, refuse, err, sizeof(err)) == 0);
	assert(json_equal(again, b));
	json_decref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];

	if (!lan.v4.prefix) {
		assert(net_cidr4_parse("192.168.2.0/24", &lan.v4) == 0 &&
		       net_prefix_parse("fd00:1::/64", &lan.v6[0]) == 0);
		lan.n6 = 1;
	}
	if (size < 1)
		return 0;
	if (data[0] & 1) { /* a CSV file */
		struct csv_row *rows = NULL;
		size_t n = 0;
		int col[PROXY_NCOLS];

		if (csv_parse((const char *)data + 1, size - 1, &rows, &n, err, sizeof(err)) == 0 && n) {
			if (csv_columns(&rows[0], proxy_col_names, PROXY_NCOLS, col, err, sizeof(err)) == 0) {
				for (int c = 0; c < PROXY_NCOLS; c++) { /* each known column at most once */
					assert(col[c] < rows[0].n &&
					       (col[c] < 0 || strcmp(rows[0].field[col[c]], proxy_col_names[c]) == 0));
					for (int d = 0; d < c; d++)
						assert(col[c] < 0 || col[c] != col[d]);
				}
				for (size_t i = 1; i < n; i++) {
					json_t *b = rows[i].n == rows[0].n
							? proxy_csv_body(&rows[i], col, err, sizeof(err))
							: NULL;
					if (b && proxy_body_check(b, 0, &lan, err, sizeof(err)) == 0)
						taken(b, 0, &lan);
					json_decref(b);
				}
			} else {
				assert(err[0]);
			}
		}
		free(rows);
	} else { /* a JSON body */
		json_t *j = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);

		for (int partial = 0; j && partial < 2; partial++) {
			json_t *b = json_deep_copy(j);
			const struct net_lan *refuse = data[0] & 2 ? NULL : &lan;
			err[0] = '\0';
			if (proxy_body_check(b, partial, refuse, err, sizeof(err)) == 0)
				taken(b, partial, refuse);
			else
				assert(err[0]);
			json_decref(b);
		}
		json_decref(j);
	}
	return 0;
}
