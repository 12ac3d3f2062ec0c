/* desired.h - what the kernel should hold, read from the DB: the rule parameters (a change
 * means a full rebuild) and the client sets (a change means element updates only). */
#ifndef AGENT_DESIRED_H
#define AGENT_DESIRED_H

#include "config.h"
#include "settings.h"
#include "net.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

struct desired_rules {
	char lan_iface[16]; /* zero-padded: compared as the kernel does */
	char wan_iface[16];
	uint32_t lan_addr, lan_mask; /* host byte order */
	uint16_t forwarder_port;
	uint16_t api_port;
	uint8_t dns_local; /* dns_mode=local: clients may query the gateway */
	uint8_t dns_proxy; /* dns_mode=proxy: clients' port 53 to pgw-forwarder's DNS port */
	uint16_t dns_port;
	uint8_t block_drop; /* block_action=drop instead of reject */
	uint8_t strict_output;
	uint8_t tproxy;	      /* forwarder_mode=tproxy */
	uint16_t tproxy_port; /* TPROXY TCP (tproxy mode) and UDP (udp_relay) to the forwarder */
	uint8_t udp;	      /* udp_relay: clients in the udp sets get their UDP relayed (TPROXY) */
	uint32_t strict_uid;  /* PGW_SERVICE_USER; an unknown user gets a uid nobody has: fail closed */
	uint8_t lan_missing;  /* no interface of that name now: input from any non-WAN interface is limited */
	uint8_t n_api_allow;  /* who may reach the API port from the LAN side (setting api_allow; */
	struct net_prefix api_allow[SETTINGS_PREFIXES_MAX]; /* empty: the LAN network) */
	uint8_t wan_missing;	   /* ...: strict output limits everything that does not go to lo or the LAN */
	uint8_t ha;		   /* an HA pair (PGW_HA_PEER): the peer's VRRP and config sync get in */
	struct net_prefix ha_peer; /* the peer's LAN address (a host prefix) */
};

struct addrset {
	struct net_ip *addr; /* IPv4 (as ::ffff:a.b.c.d) and IPv6 clients, sorted, unique */
	size_t n;
};

struct addrport {
	struct net_ip addr; /* IPv4 as ::ffff:a.b.c.d, or IPv6 */
	uint16_t port;
};

struct proxyset {
	struct addrport *e; /* sorted, unique */
	size_t n;
};

/* A client bound to its MAC (mappings.mac, 0021). */
struct binding {
	struct net_ip addr;
	uint8_t mac[6];
};

struct bindset {
	struct binding *e; /* sorted by address, unique */
	size_t n;
};

/* A client's rate limits (mappings.down_kbit, up_kbit, 0022; 0: none that way). */
struct limit {
	struct net_ip addr;
	uint32_t down_kbit, up_kbit;
	uint8_t mac[6]; /* bound (0021): the upload redirect matches its MAC too */
	uint8_t has_mac;
};

struct limitset {
	struct limit *e; /* sorted by address, unique; only clients with a limit */
	size_t n;
};

struct desired {
	struct desired_rules rules;
	struct proxyset proxies; /* strict OUTPUT mode: where the gateway itself may go */
	struct addrset active;	 /* mapped, enabled, proxy enabled and up */
	struct addrset blocked;	 /* mapped but not active */
	struct addrset udp;	 /* active, and their proxy carries UDP (udp_relay on): UDP to the forwarder */
	struct bindset bound;	 /* every mapped client with a MAC, enabled or not (a change: a full rebuild) */
	struct limitset limits;	 /* every mapped client with a rate limit (tc.c; not part of the table) */
};

/* What changes in the kernel's sets from one decision to the next. */
struct set_delta {
	struct addrset add_active, del_active, add_blocked, del_blocked, add_udp, del_udp;
};

/* 0, or -errno with the reason in err. */
int desired_load(sqlite3 *db, const struct pgw_config *cfg, struct desired *d, char *err, size_t errlen);
/* The rules from the configuration alone (PGW_* and the settings' defaults; the DB is not read)
 * and no client in any set: what the kernel holds when no decision can be read and no table of
 * ours is there. 0, or -errno with the reason in err. */
int desired_none(const struct pgw_config *cfg, struct desired *d, char *err, size_t errlen);
void desired_free(struct desired *d);
/* Same rules, same proxy set and same MAC bindings: element updates suffice. */
int desired_rules_equal(const struct desired *a, const struct desired *b);
/* Elements of a not in b, into out (caller frees out->addr). 0 or -ENOMEM. */
int addrset_minus(const struct addrset *a, const struct addrset *b, struct addrset *out);
/* Sorted, each element once. */
void addrset_sort(struct addrset *s);
/* Elements of a or b (each sorted, unique), into out (caller frees out->addr). 0 or -ENOMEM. */
int addrset_union(const struct addrset *a, const struct addrset *b, struct addrset *out);
/* Clients whose conntrack state is to go (main.c): each waits its own delay after it went
 * (the forwarder's reset must reach its connections first), and is not taken at all if it is
 * active again by then (mapped again at once: its new connections keep their NAT mapping). */
struct forget_entry {
	struct net_ip addr;
	uint64_t went_ms; /* when it last stopped being active */
};
struct forget_queue {
	struct forget_entry *e; /* sorted by address, unique */
	size_t n;
};
/* Adds gone (sorted, unique) as of now_ms: one already waiting starts its delay over. 0 or
 * -ENOMEM (the queue unchanged). */
int forget_add(struct forget_queue *q, const struct addrset *gone, uint64_t now_ms);
/* Takes the clients that went at least delay_ms before now_ms into out (caller frees
 * out->addr), and drops those in active (active again: theirs to keep). Returns the ms until the
 * next one is due (0: none left), or -ENOMEM (the queue unchanged). */
long long forget_take(struct forget_queue *q, const struct addrset *active, uint64_t now_ms, uint64_t delay_ms,
		      struct addrset *out);
void forget_free(struct forget_queue *q);
/* from -> to, into d (caller frees with set_delta_free). Elements changed, or -ENOMEM. */
int set_delta_of(const struct desired *from, const struct desired *to, struct set_delta *d);
void set_delta_free(struct set_delta *d);

#endif
