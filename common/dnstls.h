/* dnstls.h - the client side of DNS over TLS (RFC 7858) for pgw-forwarder's resolver and
 * pgw-healthd's DNS check, with GnuTLS: one trust store (PGW_DNS_TLS_CA, else the system's),
 * sessions that check the certificate's chain and name in the handshake, and an error text
 * that says what was wrong with a certificate. */
#ifndef PGW_DNSTLS_H
#define PGW_DNSTLS_H

#include <gnutls/gnutls.h>
#include <stddef.h>
#include <stdint.h>

/* The trust store: ca_file (PEM) or, when "", the system's. 0, or -1 with err set (no CA in
 * it: tls:// resolvers cannot be verified, and every TLS handshake will fail). *out is set
 * either way unless memory ran out. */
int dns_tls_creds(const char *ca_file, gnutls_certificate_credentials_t *out, char *err, size_t errlen);
/* A non-blocking client session over fd that accepts only a certificate valid for name. 0 or -1. */
int dns_tls_session(gnutls_session_t *s, gnutls_certificate_credentials_t cred, int fd, const char *name);
/* Why a handshake failed (k: its return): the certificate's faults, or GnuTLS's message. */
void dns_tls_error(gnutls_session_t s, int k, char *buf, size_t size);
/* One step of a non-blocking handshake: 1 done, 0 again (wait for *want: EPOLLIN or EPOLLOUT),
 * -1 failed (why says why). */
int dns_tls_handshake(gnutls_session_t s, uint32_t *want, char *why, size_t size);

#endif
