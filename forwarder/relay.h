/* relay.h - the data path: worker threads, each with its own event loop and SO_REUSEPORT
 * listener; per connection: original destination, mapping lookup (fail closed), upstream
 * handshake, then splice() through a pipe per direction with half-close propagated. */
#ifndef FWD_RELAY_H
#define FWD_RELAY_H

#include "net.h"
#include "stats.h"
#include "table.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct fwd_limits {
	unsigned connect_timeout_ms, idle_timeout_ms, max_connections, drain_timeout_ms;
};

/* What the main thread shares with the workers. */
struct fwd_shared {
	pthread_rwlock_t lock; /* guards table and limits */
	struct fwd_table *table;
	struct fwd_limits limits;
	struct fwd_stats stats;
	const char *run_dir;
	uint16_t port;	      /* REDIRECT */
	uint16_t tproxy_port; /* TPROXY (IP_TRANSPARENT) */
};

struct fwd_workers;

/* Start n workers listening on port (REDIRECT) and tproxy_port (TPROXY, if permitted). */
int relay_start(struct fwd_shared *sh, unsigned n, struct fwd_workers **out, char *err, size_t errlen);
/* After a table swap: every worker checks its open connections against the new table and
 * cuts (TCP reset to the client, close reason "revoked") each one whose client is no longer
 * active or whose path changed: another proxy, or the proxy's address, type or credentials. */
void relay_revalidate(struct fwd_workers *w);
/* 1 when every worker's loop ran its once-a-second tick within the last max_ms. */
int relay_alive(struct fwd_workers *w, uint64_t max_ms);
/* Stop accepting, let open connections finish up to the drain timeout, join. */
void relay_stop(struct fwd_workers *w);

#endif
