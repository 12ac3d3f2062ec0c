/* resolver.h - pgw-forwarder's DNS (dns_mode=proxy): pgw-agent redirects every LAN device's UDP
 * and TCP port 53 here; each query is answered for its client only, through that client's own
 * proxy, from the resolvers in dns_upstream (DNS over TCP, RFC 7766, or over TLS, RFC 7858):
 * up to four persistent connections per proxy and resolver (a query on an idle one where it can,
 * else pipelined), reconnected as needed, with a timeout per attempt and failover to the next
 * resolver. Unknown and blocked clients get REFUSED at once, a client whose proxy is down
 * SERVFAIL; malformed queries FORMERR. Answers are cached per proxy endpoint (dnscache.h). One
 * thread with its own event loop. */
#ifndef FWD_RESOLVER_H
#define FWD_RESOLVER_H

#include "dns.h"
#include "relay.h"

#include <stdint.h>
#include <stdio.h>

#define RESOLVER_ATTEMPT_MS 2000 /* one resolver's time to answer (connecting included) */
#define RESOLVER_QUERY_MS   5000 /* a query's time in all: then SERVFAIL */

struct resolver;

/* Listen on port (UDP and TCP, IPv4 and IPv6) and start the thread. ca_file: PEM CA bundle for
 * DNS-over-TLS resolvers ("" = the system's trust store). 0, or -errno with err set. */
int resolver_start(struct fwd_shared *sh, uint16_t port, const char *ca_file, struct resolver **out, char *err,
		   size_t errlen);
void resolver_stop(struct resolver *r);
/* 1 when the resolver's loop ticked within max_ms. */
int resolver_alive(struct resolver *r, uint64_t max_ms);
/* ,"dns":{...}: totals, latency histogram, per proxy (the forwarder's stats, fwdctl.h). */
void resolver_write_stats(struct resolver *r, FILE *out);

#endif
