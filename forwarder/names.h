/* names.h - the proxies' host names as the forwarder's table uses them, resolved off the main
 * thread (common/hostres): a reload never waits for a resolver. A name keeps its last answer
 * while it is asked again (once a minute, every 10 s while it does not resolve; at a reload or
 * on a timer); an answer that differs calls changed (a reload). */
#ifndef FWD_NAMES_H
#define FWD_NAMES_H

#include "evloop.h"

#include <stdint.h>
#include <sys/socket.h>

/* Start the resolver thread and watch its answers on ev (the main thread's). 0 or -errno. A
 * batch of answers that changes anything calls changed once (a reload: 0, or <0 when it failed,
 * and it is called again a second later). */
int names_start(struct evloop *ev, int (*changed)(void *arg), void *arg);
/* host:port: 1 with addr (an address, or a name's last answer, asked again meanwhile), 0 when
 * it does not resolve, -EAGAIN while a new name waits for its first answer (its clients are
 * blocked until then). Main thread only. */
int names_get(const char *host, uint16_t port, struct sockaddr_storage *addr);
/* After a load: names no proxy used in it are forgotten. */
void names_sweep(void);

#endif
