/* pool.h - upstream sessions kept ready (issue 24). Per worker and per proxy path (table.h: the
 * proxy, its address, type and credentials), a few connections to the proxy already connected,
 * greeted and authenticated (upstream_hs parked), each waiting for one client connection: a
 * new connection then costs one round trip to the proxy (its request, with the client's first
 * bytes where the proxy takes them) instead of two to four. A session serves one connection and
 * is never reused after its request.
 *
 * How many: following the recent connection rate to the proxy (at least one while a client
 * connection came within POOL_KEEP_MS, at most POOL_MAX). Unused ones are retired before the
 * proxy's own timeout: after POOL_IDLE_MS, or half the age at which this proxy closed one; a
 * proxy that keeps closing them within POOL_IDLE_MIN_MS gets none for POOL_OFF_MS. A session that fails to open stops
 * the pool for POOL_BACKOFF_MS (the client connections that follow go the usual way and report
 * the proxy as usual). proxies.preconnect = 0 opts a proxy out. */
#ifndef FWD_POOL_H
#define FWD_POOL_H

#include "table.h"
#include "upstream.h"

#include <stdint.h>

#define POOL_MAX	 8	/* sessions ready or opening, per proxy and worker */
#define POOL_KEEP_MS	 120000 /* kept while a client connection to the proxy came within this */
#define POOL_IDLE_MS	 15000	/* an unused session is retired after this (most proxies wait 30 s or more) */
#define POOL_IDLE_MIN_MS 1000
#define POOL_YOUNG_OFF	 3	/* ... ended by the proxy within POOL_IDLE_MIN_MS in this many seconds: */
#define POOL_OFF_MS	 600000 /* none kept for the proxy for this long */
#define POOL_RELEARN_MS	 60000	/* a minute after the proxy taught a shorter timeout, the pool tries longer */
#define POOL_BACKOFF_MS	 5000
#define POOL_PROXIES_MAX 256 /* paths a worker keeps sessions for */
/* TCP_USER_TIMEOUT of a session: 3 x the time one takes to open, within these */
#define POOL_USER_TIMEOUT_MIN_MS 1000
#define POOL_USER_TIMEOUT_MS	 3000

struct worker;
struct ev_handle;

/* A ready session for e's path, handed over: its socket (TCP_USER_TIMEOUT set: clear it once the
 * tunnel is up), handshake (parked) and event handle (the caller sets its callback: ev_set_cb).
 * 1 when one was ready; 0 when none was (counted as missed); -1 when the proxy gets none (opted
 * out, draining, backing off: nothing counted). Nothing changes hands unless 1. The connection
 * counts toward the pool's rate and the pool is topped up. */
int pool_take(struct worker *w, const struct fwd_entry *e, uint64_t now, int *fd, struct upstream_hs **hs,
	      struct ev_handle **h);
/* Once a second: retire, time out, top up, forget pools no longer used. */
void pool_tick(struct worker *w, uint64_t now, uint64_t connect_timeout_ms);
/* After the table changed (under the shared lock): pools of paths no active mapping with
 * preconnect uses any more are closed. */
void pool_revalidate(struct worker *w, const struct fwd_table *t);
/* Close every session and pool (drain, stop). */
void pool_free_all(struct worker *w);

#endif
