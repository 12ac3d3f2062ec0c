/* relay.h - the data path: worker threads, each with its own event loop and SO_REUSEPORT
 * listener; per connection: original destination, mapping lookup (fail closed), upstream
 * handshake, then splice() through a pipe per direction with half-close propagated. */
#ifndef FWD_RELAY_H
#define FWD_RELAY_H

#include "destfail.h"
#include "dns.h"
#include "settings.h"
#include "net.h"
#include "stats.h"
#include "table.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct fwd_limits {
	unsigned connect_timeout_ms, idle_timeout_ms, max_connections, drain_timeout_ms;
	unsigned client_max_conns, client_conns_per_s; /* the defaults of a mapping's 0 (0: no limit) */
	/* the UDP relay: udp_relay, udp_flow_timeout, udp_session_timeout, udp_client_flows, udp_client_pps */
	unsigned udp_on, udp_flow_ms, udp_session_ms, udp_client_flows, udp_client_pps;
	struct net_lan lan; /* lan_cidr, lan_iface's IPv6 networks: no destination of the UDP relay, nor a proxy */
	unsigned proxy_allow_local; /* proxy_allow_local: a proxy may be on loopback, the gateway or the LAN */
};

/* Organisations with resolvers of their own (org_settings dns_upstream); pgw-api allows no more. */
#define FWD_DNS_ORGS_MAX ORG_DNS_UPSTREAMS_MAX
struct fwd_dns_org {
	int64_t org;
	int n;
	struct dns_upstream up[DNS_UPSTREAMS_MAX];
};

/* The resolver's settings (dns_upstream, dns_query_log, organisations' own dns_upstream); gen
 * changes with every reload that changes them. */
struct fwd_dns {
	struct dns_upstream up[DNS_UPSTREAMS_MAX];
	int n, query_log;
	uint64_t gen;
	struct fwd_dns_org orgs[FWD_DNS_ORGS_MAX];
	int n_orgs;
};

/* The resolvers for a client of organisation org: its own, else the gateway's; *n how many. */
static inline const struct dns_upstream *fwd_dns_for(const struct fwd_dns *d, int64_t org, int *n)
{
	for (int i = 0; i < d->n_orgs; i++)
		if (d->orgs[i].org == org) {
			*n = d->orgs[i].n;
			return d->orgs[i].up;
		}
	*n = d->n;
	return d->up;
}

/* What the main thread shares with the workers. */
struct fwd_shared {
	pthread_rwlock_t lock; /* guards table and limits */
	struct fwd_table *table;
	struct fwd_limits limits;
	struct fwd_dns dns;
	struct fwd_stats stats;
	struct destfail destfail; /* failures at destinations, per proxy */
	const char *run_dir;
	uint16_t port;		    /* REDIRECT */
	uint16_t tproxy_port;	    /* TPROXY (IP_TRANSPARENT) */
	atomic_ullong next_conn_id; /* connection ids, unique in this run (the control socket's) */
	atomic_ullong table_gen;    /* one more at each table swapped in: the resolver checks its queries again */
};

#endif
