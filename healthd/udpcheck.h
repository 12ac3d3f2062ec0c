/* udpcheck.h - whether a SOCKS5 proxy carries UDP (issue 17): after each good probe, UDP
 * ASSOCIATE (RFC 1928 7) over a control connection, then one datagram through the relay to the
 * setting udp_check (a DNS server, host:port: a query for dns_check_name) and its answer back.
 * The verdict goes to proxy_health.udp ('yes' or 'no', with udp_error); HTTP CONNECT proxies are
 * 'no' without a check. It never changes the proxy's own status. */
#ifndef HEALTHD_UDPCHECK_H
#define HEALTHD_UDPCHECK_H

#include "healthd.h"

void udpcheck_start(struct healthd *h, struct target *t);
void udpcheck_cancel(struct target *t);
/* udp_check as read put in use (resolved when it changed). */
void udpcheck_use_settings(struct healthd *h, const struct health_settings *s);

#endif
