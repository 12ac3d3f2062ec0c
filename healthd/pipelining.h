/* pipelining.h - after the first good probe of a SOCKS5 proxy, one more on the side with
 * greeting, auth and CONNECT in one write: success sets proxy_health.pipelining (the forwarder
 * then pipelines to it), failure leaves lock-step and never counts against the proxy. Then (any
 * proxy, over a plain http health URL) one with the GET in the same write as the request, ahead
 * of the proxy's reply: success sets proxy_health.early_data (the forwarder then sends a
 * client's first bytes with its request). What was learnt is forgotten when the proxy changes,
 * when the forwarder reports a failure, and while the socks_pipelining setting is false. */
#ifndef HEALTHD_PIPELINING_H
#define HEALTHD_PIPELINING_H

#include "healthd.h"

/* After a good probe: test it once, if not tested since it was loaded, changed or failed. */
void pipelining_test(struct healthd *h, struct target *t);
/* Store again what the DB refused (set_capability): from the tick, outside any read. */
void pipelining_retry(struct healthd *h, struct target *t);
/* Back to lock-step until a pipelined probe succeeds again (why: for the log). */
void pipelining_forget(struct healthd *h, struct target *t, const char *why);
/* socks_pipelining=false: every proxy lock-step. */
void pipelining_apply_setting(struct healthd *h);

#endif
