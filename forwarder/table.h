/* table.h - who is mapped to which upstream: an immutable hash of client address (IPv4 or
 * IPv6) -> entry, loaded
 * from the DB and swapped whole on reload, so a lookup never sees a half-loaded table and
 * established connections keep the entry they copied. */
#ifndef FWD_TABLE_H
#define FWD_TABLE_H

#include "net.h"
#include "upstream.h"

#include <netinet/in.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

enum fwd_state { FWD_ACTIVE = 0, FWD_BLOCKED }; /* blocked: disabled, proxy disabled or not up */

struct fwd_entry {
	struct net_ip client;
	enum fwd_state state;
	int64_t proxy_id;
	enum upstream_type type;
	struct sockaddr_storage proxy; /* IPv4 or IPv6, resolved when the table is loaded */
	uint64_t endpoint;	       /* FNV-1a of the configured "host port": what the admin set, not
					* what a name resolved to this time (a revalidation compares it) */
	char user[UPSTREAM_CRED_MAX + 1];
	char pass[UPSTREAM_CRED_MAX + 1];
	int pipeline;	/* SOCKS5 handshake in one write: healthd found the proxy takes it */
	int early;	/* the client's first bytes go with the request: healthd found the proxy takes it */
	int preconnect; /* sessions kept ready for the next connection (pool.h); 0: the proxy opted out */
	int proxy_down; /* blocked only because its proxy is not up (or does not resolve): DNS SERVFAIL */
	int unread;	/* blocked only because no mappings could be read for 5 s (table_block_all): DNS
			 * SERVFAIL, so devices ask again */
	int dns_down;	/* pgw-healthd found the proxy does not carry DNS: DNS SERVFAIL at once */
	int udp;	/* pgw-healthd found the proxy carries UDP (a SOCKS5 proxy only): the UDP relay may */
	uint64_t path;	/* the proxy as the DNS cache knows it: id, endpoint, type, address, credentials */
	int64_t org_id; /* the mapping's organisation: whose resolvers its DNS goes to */
	unsigned max_conns, conns_per_s; /* the mapping's limits; 0: the gateway's settings (0019) */
	long long quota_limit;		 /* quota_bytes + granted this period; 0: no quota (0023) */
	long long quota_used;		 /* what pgw-api counted this period (client_quota.used) */
	long long seen_run, seen_total;	 /* ... as of these forwarder counters (usage_seen) */
};

struct fwd_table;

/* Where a proxy is: its host when that is an address; for a name, the address pgw-healthd's last
 * good probe reached (probed_*, 0030), while the row still names the host and port probed. 1
 * with out set, or 0: nowhere yet (its clients blocked until a probe). */
int proxy_address(const char *host, uint16_t port, const char *probed_host, int probed_port, const char *probed_addr,
		  struct sockaddr_storage *out);

/* Load every mapping; entries whose proxy has no address yet (proxy_address) are blocked, and
 * so are those whose proxy is where net_dest_refused says no proxy may be, given refuse (the LAN;
 * NULL: proxy_allow_local, nothing refused). */
struct net_lan;
int table_load(sqlite3 *db, const struct net_lan *refuse, struct fwd_table **out, char *err, size_t errlen);
void table_free(struct fwd_table *t);
size_t table_size(const struct fwd_table *t);
/* cb for every entry. */
void table_foreach(const struct fwd_table *t, void (*cb)(const struct fwd_entry *e, void *arg), void *arg);
/* Every entry blocked, as unread (the forwarder's mappings unreadable too long): the number that
 * were active. Call with the table's users locked out. */
size_t table_block_all(struct fwd_table *t);
/* The entry for a client, or NULL (unknown). The pointer lives as long as the table. */
const struct fwd_entry *table_lookup(const struct fwd_table *t, const struct net_ip *client);
/* now (an entry of the current table, or NULL) is still the path then was: the client active,
 * the same proxy, configured endpoint (host and port as set, so a name resolving elsewhere this
 * time changes nothing), type and credentials. */
int table_same_path(const struct fwd_entry *now, const struct fwd_entry *then);

#endif
