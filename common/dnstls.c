/* dnstls.c - see dnstls.h. */
#include "dnstls.h"

#include <stdio.h>
#include <sys/epoll.h>
#include <string.h>

int dns_tls_creds(const char *ca_file, gnutls_certificate_credentials_t *out, char *err, size_t errlen)
{
	int k;

	*out = NULL;
	if (gnutls_certificate_allocate_credentials(out) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	k = ca_file[0] ? gnutls_certificate_set_x509_trust_file(*out, ca_file, GNUTLS_X509_FMT_PEM)
		       : gnutls_certificate_set_x509_system_trust(*out);
	if (k <= 0) {
		snprintf(err, errlen,
			 "PGW_DNS_TLS_CA: no CA certificate in %s%.200s%s: tls:// resolvers cannot be verified",
			 ca_file[0] ? "'" : "", ca_file[0] ? ca_file : "the system trust store", ca_file[0] ? "'" : "");
		return -1;
	}
	return 0;
}

int dns_tls_session(gnutls_session_t *s, gnutls_certificate_credentials_t cred, int fd, const char *name)
{
	if (gnutls_init(s, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0) {
		*s = NULL;
		return -1;
	}
	if (gnutls_set_default_priority(*s) < 0 || gnutls_credentials_set(*s, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
	    gnutls_server_name_set(*s, GNUTLS_NAME_DNS, name, strlen(name)) < 0)
		return -1;
	gnutls_session_set_verify_cert(*s, name, 0); /* chain and name, checked in the handshake */
	gnutls_transport_set_int(*s, fd);
	return 0;
}

int dns_tls_handshake(gnutls_session_t s, uint32_t *want, char *why, size_t size)
{
	int k = gnutls_handshake(s);

	if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED) {
		*want = gnutls_record_get_direction(s) ? EPOLLOUT : EPOLLIN;
		return 0;
	}
	if (k < 0) {
		dns_tls_error(s, k, why, size);
		return -1;
	}
	return 1;
}

void dns_tls_error(gnutls_session_t s, int k, char *buf, size_t size)
{
	gnutls_datum_t txt = {NULL, 0};

	if (k == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR &&
	    gnutls_certificate_verification_status_print(gnutls_session_get_verify_cert_status(s), GNUTLS_CRT_X509,
							 &txt, 0) == 0) {
		snprintf(buf, size, "TLS certificate not accepted: %s", (const char *)txt.data);
		gnutls_free(txt.data);
		return;
	}
	snprintf(buf, size, "TLS handshake failed: %s", gnutls_strerror(k));
}
