/* hostres.h - proxy host names resolved off pgw-healthd's event loop (pgw-forwarder resolves
 * none: it relays to the address a probe reached, 0030). getaddrinfo() blocks for as long as the
 * system's resolver takes (seconds per try when it does not answer): on healthd's loop that
 * stalled every probe in flight (answered ones timed out) and every schedule. HOSTRES_THREADS
 * threads resolve, a name each at a time; results come back to the loop through an eventfd. */
#ifndef PGW_HOSTRES_H
#define PGW_HOSTRES_H

#include "evloop.h"
#include "net.h"

#include <stdint.h>
#include <sys/socket.h>

#define HOSTRES_QUEUE_MAX 64
#define HOSTRES_THREADS	  4 /* names resolved at once: one that never answers holds up one thread */

/* A name's result: ok (addr) or not (no such name, or the resolver failed); after each batch of
 * results, one call with host NULL (act once on many answers). */
typedef void (*hostres_done_cb)(void *arg, const char *host, uint16_t port, int ok,
				const struct sockaddr_storage *addr);

/* Start the thread and watch its results on ev. 0 or -errno. One per process. */
int hostres_start(struct evloop *ev, hostres_done_cb done, void *arg);
/* Resolve host:port (a name: an address needs no asking). Already queued or being resolved: nothing
 * more. 0, or -EAGAIN when the queue is full (ask again later). */
int hostres_ask(const char *host, uint16_t port);

#endif
