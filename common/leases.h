/* leases.h - a DHCP server's leases, for the names of the LAN's devices (issue 19): dnsmasq's
 * lease file ("EXPIRY MAC IP HOSTNAME CLIENT-ID" per line; IPv6 lines name an IAID, not a MAC)
 * or ISC dhcpd's dhcpd.leases ("lease IP { ... hardware ethernet MAC; client-hostname "NAME";
 * binding state active; ... }", later blocks replacing earlier ones). The format is told from
 * the text. Names keep only letters, digits, '.', '-' and '_' (a lease file is written from what
 * a device claims: nothing else reaches a log or the dashboard). */
#ifndef PGW_LEASES_H
#define PGW_LEASES_H

#include "net.h"

#include <stddef.h>
#include <stdint.h>

#define LEASE_NAME_MAX 64

struct lease {
	char ip[NET_IP_STR_MAX];   /* canonical */
	char mac[NET_MAC_STR_MAX]; /* "" when the lease names none */
	char hostname[LEASE_NAME_MAX];
	int64_t expires; /* unix time; 0: never */
};

struct leases {
	struct lease *e; /* one per address, sorted by address */
	size_t n;
};

/* Parse text (len bytes; need not end in NUL). Lines or blocks that make no sense are skipped.
 * 0, or -ENOMEM. */
int leases_parse(const char *text, size_t len, struct leases *out);
/* Read and parse a file (at most 4 MiB). 0, or -errno with the reason in err. */
int leases_load(const char *path, struct leases *out, char *err, size_t errlen);
/* The lease of an address (any spelling), or NULL. */
const struct lease *leases_find(const struct leases *ls, const char *ip);
/* The lease of a MAC (any spelling), the latest to expire; NULL if none. */
const struct lease *leases_find_mac(const struct leases *ls, const char *mac);
void leases_free(struct leases *ls);

#endif
