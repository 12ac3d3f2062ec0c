/* destfail.h - a proxy that works but cannot reach one destination has not failed. Failures at
 * the destination (SOCKS5 replies 0x02-0x06 and 0x08, HTTP 403 and 502-504 to CONNECT: the
 * destination unreachable, or refused by the proxy's policy; a "succeeded" followed by
 * a close with nothing sent back: proxies that answer before they have connected) are counted per
 * proxy by destination; only DESTFAIL_SPREAD distinct destinations failing within
 * DESTFAIL_WINDOW_MS, with no connection through the proxy answered (a first byte from the far
 * side) in between, make it the
 * proxy's failure (told to pgw-healthd, which probes it now). Shared by the workers. */
#ifndef FWD_DESTFAIL_H
#define FWD_DESTFAIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define DESTFAIL_SLOTS	   256 /* proxies tracked at once (by id); a collision starts the slot over */
#define DESTFAIL_SPREAD	   3
#define DESTFAIL_WINDOW_MS 30000
#define DESTFAIL_EARLY_MS  5000 /* a close with nothing sent back this soon after "succeeded" */

struct destfail_slot {
	int64_t proxy_id;
	atomic_uint n; /* destinations in dst[]: read without the lock by destfail_ok() */
	uint64_t dst[DESTFAIL_SPREAD], at[DESTFAIL_SPREAD];
};

struct destfail {
	pthread_mutex_t lock;
	struct destfail_slot s[DESTFAIL_SLOTS];
};

int destfail_init(struct destfail *d);
void destfail_fini(struct destfail *d);
/* A failure at destination dst (a hash of its address and port) through proxy_id at now (ms):
 * 1 when it makes DESTFAIL_SPREAD distinct ones within the window (report the proxy; the count
 * starts over), else 0. The same destination failing again counts once. */
int destfail_failed(struct destfail *d, int64_t proxy_id, uint64_t dst, uint64_t now);
/* A connection through proxy_id was answered: its destination failures are forgotten. Cheap
 * when there are none (no lock). */
void destfail_ok(struct destfail *d, int64_t proxy_id);

#endif
