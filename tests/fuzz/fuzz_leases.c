/* libFuzzer: a DHCP lease file is written from what LAN devices claim. Whatever parses must give
 * canonical addresses, MACs and names of the allowed characters only, each address once, sorted,
 * and every lease must be found again by its address. */
#include "leases.h"

#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct leases ls;

	if (leases_parse((const char *)data, size, &ls) < 0)
		return 0;
	for (size_t i = 0; i < ls.n; i++) {
		const struct lease *l = &ls.e[i];
		struct net_ip a;
		char canon[NET_IP_STR_MAX];
		uint8_t m[6];

		assert(net_ip_parse(l->ip, &a) == 0);
		net_ip_str(&a, canon);
		assert(strcmp(canon, l->ip) == 0);
		assert(!l->mac[0] || net_mac_parse(l->mac, m) == 0);
		for (const char *p = l->hostname; *p; p++)
			assert(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_');
		assert(strlen(l->hostname) < LEASE_NAME_MAX);
		assert(i == 0 || strcmp(ls.e[i - 1].ip, l->ip) < 0);
		assert(leases_find(&ls, l->ip) == l);
	}
	leases_free(&ls);
	return 0;
}
