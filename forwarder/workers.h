/* workers.h - the forwarder's worker threads: one per core (at most 16) or PGW_FORWARDER_WORKERS
 * (up to 64), each with its own descriptor table, event loop and SO_REUSEPORT listeners (REDIRECT and TPROXY, IPv4 and
 * IPv6); the data path of each connection is relay.c. */
#ifndef FWD_WORKERS_H
#define FWD_WORKERS_H

#include "relay.h"

#include <stddef.h>
#include <stdint.h>

struct fwd_workers;

/* Start n workers listening on port (REDIRECT) and tproxy_port (TPROXY, if permitted). */
int workers_start(struct fwd_shared *sh, unsigned n, struct fwd_workers **out, char *err, size_t errlen);
/* After a table swap: every worker checks its open connections against the new table and
 * cuts (TCP reset to the client, close reason "revoked") each one whose client is no longer
 * active or whose path changed: another proxy, or the proxy's address, type or credentials. */
void workers_revalidate(struct fwd_workers *w);
/* 1 when every worker's loop ran its once-a-second tick within the last max_ms. */
int workers_alive(struct fwd_workers *w, uint64_t max_ms);
/* Stop accepting, let open connections finish up to the drain timeout, join (their lists stay
 * readable, empty). */
void workers_join(struct fwd_workers *w);
/* workers_join if not done yet, then free everything. */
void workers_stop(struct fwd_workers *w);

#endif
