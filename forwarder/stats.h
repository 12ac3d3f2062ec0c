/* stats.h - what pgw-forwarder counts and publishes: totals, closes by reason, upstream errors
 * by kind, and per client (mapping) counters; asked for over the control socket (fwdctl.h
 * "stats") by pgw-api and pgwctl. One module owns the counters, their names and their JSON. */
#ifndef FWD_STATS_H
#define FWD_STATS_H

#include "net.h"
#include "upstream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

enum fwd_close {
	CLOSE_DONE = 0,	      /* both sides finished */
	CLOSE_UNKNOWN_CLIENT, /* not mapped: fail closed */
	CLOSE_BLOCKED_CLIENT, /* mapped but blocked */
	CLOSE_NO_ORIGINAL_DST,
	CLOSE_MAX_CONNECTIONS,
	CLOSE_UPSTREAM, /* + the upstream_result in detail */
	CLOSE_HANDSHAKE_TIMEOUT,
	CLOSE_IDLE_TIMEOUT,
	CLOSE_CLIENT_RESET,
	CLOSE_UPSTREAM_RESET,
	CLOSE_SHUTDOWN,
	CLOSE_INTERNAL,
	CLOSE_REVOKED,		/* the client stopped being active, or its path changed: cut (TCP reset) */
	CLOSE_CLIENT_MAX_CONNS, /* the client has max_conns open already */
	CLOSE_CLIENT_RATE,	/* the client opened new_conns_per_s this second already */
	CLOSE_QUOTA,		/* the client's quota is used up (cut at the byte) */
	CLOSE_ADMIN,		/* closed by an admin (DELETE /api/v1/connections): a TCP reset */
	CLOSE_NO_DESCRIPTORS,	/* its worker's descriptor table was full: refused at accept */
	CLOSE_MAX
};
const char *fwd_close_str(enum fwd_close c);

/* Failures at the destination through a working proxy (destfail.h), by kind. */
enum fwd_destfail {
	DF_SOCKS_NET = 0, /* SOCKS5 0x03 network unreachable */
	DF_SOCKS_HOST,	  /* 0x04 host unreachable */
	DF_SOCKS_REFUSED, /* 0x05 connection refused */
	DF_SOCKS_TTL,	  /* 0x06 TTL expired */
	DF_HTTP_502,
	DF_HTTP_503,
	DF_HTTP_504,
	DF_CLOSED_AFTER_CONNECT, /* "succeeded", then closed with nothing sent back */
	DF_SOCKS_RULESET,	 /* 0x02 not allowed by the proxy's ruleset (a port it blocks) */
	DF_SOCKS_ATYP,		 /* 0x08 address type not supported (an IPv6 destination) */
	DF_HTTP_403,		 /* CONNECT forbidden (squid's SSL_ports) */
	DF_MAX
};
const char *fwd_destfail_str(enum fwd_destfail k);

struct client_stat;

struct fwd_stats {
	long long started_ms; /* wall clock at start: this run's identity (pid 1 in every container) */
	atomic_ulong accepted, active, bytes_up, bytes_down;
	atomic_ulong closes[CLOSE_MAX];
	atomic_ulong upstream_errors[UP_RESULT_MAX];
	atomic_ulong dest_failures[DF_MAX];
	atomic_ulong dest_reports; /* proxies reported to healthd for failures across destinations */
	/* upstream sessions (pool.h): ready now; connections that took a ready one, or opened their
	 * own; a taken one found closed (the connection opened its own); ready ones retired unused,
	 * closed by the proxy, failed to open; connections whose first bytes went with the request */
	atomic_ulong sess_ready, sess_used, sess_missed, sess_stale, sess_retired, sess_closed, sess_failed;
	atomic_ulong early_data;
	pthread_mutex_t clients_lock;
	/* the clients' counters (under clients_lock): an index of pointers to them, open addressing
	 * (linear probing), grown 4 times at once so that at most half of its slots are in use, and
	 * made smaller at a reload that gives counters back */
	struct client_stat **clients;
	size_t clients_cap, clients_n; /* its slots (0: no memory for it at start); counters in it */
};

/* Per-client counters (the stats of a mapping), each in memory of its own (they never move); for
 * at most CLIENT_STATS_MAX clients at once; connections at open and close, bytes as they flow
 * (bytes_up/bytes_down with atomic operations, quota_left/quota_held under the counters' own
 * qlock; the rest under the lock).
 * A connection keeps a pointer to its client's while it counts as open (active); counters are given
 * back at a reload only when their address is mapped no more and nothing holds them. The stats
 * answer lists them all: 65,536 take 20-28 MiB, 40 at the counters' largest (FWDCTL_REPLY_MAX).
 * At that many, 13 MiB of counters and a 2 MiB index. */
#define CLIENT_STATS_MAX   65536
#define CLIENT_INDEX_FIRST 1024 /* slots in the index at start (8 KiB) */
struct client_stat {
	struct net_ip client;
	unsigned long active, connections, failures, bytes_up, bytes_down;
	unsigned long dns_queries, dns_hits, dns_errors; /* errors: SERVFAIL or REFUSED given */
	unsigned long dns_ms_sum;			 /* their answer times added up */
	unsigned long udp_flows;			 /* open now */
	unsigned long udp_up, udp_down, udp_bytes_up, udp_bytes_down, udp_dropped; /* datagrams relayed */
	unsigned long refused; /* over max_conns or new_conns_per_s */
	double tokens;	       /* new connections it may open now (rate) */
	uint64_t tokens_at;    /* ms of the last refill */
	int64_t org;	       /* the organisation its counters are of */
	long long quota_left;  /* quota_on: bytes it may still move this period (TCP and UDP, each way),
				* less what reads under way hold (quota_held) */
	long long quota_held;  /* taken for reads under way, on any worker (stats_quota_take .. _done) */
	char qlock;	       /* a spin lock over the two (a few instructions held; every worker's reads) */
	int quota_on;	       /* its mapping has a quota (set at each reload, stats_quota_set) */
	char given_back;       /* to be freed (stats_clients_rebind, under the lock) */
};

/* 0, or -ENOMEM. */
int stats_init(struct fwd_stats *s);
void stats_fini(struct fwd_stats *s);
/* A mapped, active client asks to open a connection at now (ms): 0 (counted as open; *slot: its
 * counters, or NULL), or CLOSE_CLIENT_MAX_CONNS / CLOSE_CLIENT_RATE / CLOSE_QUOTA (refused,
 * counted; max or rate 0: no limit). A client without counters (CLIENT_STATS_MAX others have
 * them, or no memory) is not limited. */
int stats_client_open(struct fwd_stats *s, const struct net_ip *client, int64_t org, unsigned max, unsigned rate,
		      uint64_t now, struct client_stat **slot);
/* Bytes a connection of cs delivered: counted now (its quota took them when they were read). */
void stats_client_bytes(struct client_stat *cs, uint64_t up, uint64_t down);
/* Up to want bytes of cs's quota for a read, taken off at once (so no other connection of the
 * client can read them too): how many (want when it has no quota; 0 when it is used up).
 * *held: what the quota holds for the read (0 with no quota), for stats_quota_done. */
size_t stats_quota_take(struct client_stat *cs, size_t want, size_t *held);
/* The read that took `held` (stats_quota_take's) is done: `unused` of it back. */
void stats_quota_done(struct client_stat *cs, size_t held, size_t unused);
/* n bytes read earlier were never delivered: back to the quota. */
void stats_quota_give(struct client_stat *cs, size_t n);
/* n bytes read without a take (the proxy's, with its reply to the handshake): charged, even past
 * what is left (the client's other connections and new ones then stop). */
void stats_quota_charge(struct client_stat *cs, size_t n);
/* What cs may still move (LLONG_MAX: no quota), counting what reads under way hold as not used
 * (another worker's read in progress must not make the client look used up). */
long long stats_quota_left(struct client_stat *cs);
/* At a reload: the client's quota, or none (limit 0). used: what the DB has counted this period,
 * as of the forwarder counters seen_total of run seen_run (pgw-api's usage_seen): what this run
 * counted since is taken off as well. */
void stats_quota_set(struct fwd_stats *s, const struct net_ip *client, long long limit, long long used,
		     long long seen_run, long long seen_total);
/* After a reload: an address now mapped by another organisation than the one its counters were
 * counted for starts over (open connections aside), so nobody sees a previous owner's; counters of
 * an address mapped no more that hold nothing open are freed, the index made smaller with them.
 * org_of: the organisation mapping ip now, 0 for none. */
void stats_clients_rebind(struct fwd_stats *s, int64_t (*org_of)(void *arg, const struct net_ip *ip), void *arg);
/* A connection that stats_client_open counted (cs: the counters it gave, NULL when it had none:
 * nothing to count down) ended (failed; its bytes were counted as they flowed,
 * stats_client_bytes). cs is not to be used after this: the next reload may free it. */
void stats_client_closed(struct fwd_stats *s, struct client_stat *cs, int failed);

/* A DNS query of a mapped client answered (from the cache: hit; SERVFAIL or REFUSED: error); org:
 * its mapping's organisation, whose the counts are when nothing else said so yet. */
void stats_client_dns(struct fwd_stats *s, const struct net_ip *client, int64_t org, int hit, int error, uint64_t ms);

/* A client's UDP relay counts since the last call (flows: the change in its open flows); org as
 * for stats_client_dns. */
void stats_client_udp(struct fwd_stats *s, const struct net_ip *client, int64_t org, uint64_t up, uint64_t down,
		      uint64_t bytes_up, uint64_t bytes_down, uint64_t dropped, long flows);

struct stats_header {
	unsigned workers;
	uint16_t port;
	size_t mappings;
	int64_t unread_since; /* no mappings read for 5 s, every client blocked (main.c block_all): since when
			       * the reloads failed (CLOCK_REALTIME ms); 0: read */
	void (*extra)(void *arg, FILE *out); /* more members of the top object (the resolver's) */
	void *extra_arg;
};
/* The stats as one JSON document (the control socket's answer to "stats"). */
void stats_write(struct fwd_stats *s, const struct stats_header *h, FILE *out);

#endif
