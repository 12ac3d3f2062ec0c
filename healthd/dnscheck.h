/* dnscheck.h - whether a proxy carries DNS (dns_mode=proxy): after each good probe, the name in
 * dns_check_name (type A) is asked through the proxy from the dns_upstream resolvers in turn,
 * over TCP or TLS as each is given, until one answers (NOERROR or NXDOMAIN: the path works).
 * The verdict goes to proxy_health.dns_status ('up' or 'down', with dns_error and
 * dns_latency_ms); pgw-forwarder answers SERVFAIL at once for clients of a proxy marked down.
 * It never changes the proxy's own status: a proxy without DNS still carries TCP. */
#ifndef HEALTHD_DNSCHECK_H
#define HEALTHD_DNSCHECK_H

#include "healthd.h"

/* Check t now (if dns_mode=proxy and no check of it is running). */
void dnscheck_start(struct healthd *h, struct target *t);
void dnscheck_cancel(struct target *t);
/* The settings as read (dns_mode, dns_upstream, dns_check_name) put in use; PGW_DNS_TLS_CA. */
void dnscheck_use_settings(struct healthd *h, const struct health_settings *s);
void dnscheck_fini(struct healthd *h);

#endif
