/* probe.h - one health probe of one proxy, non-blocking: TCP connect to the proxy, SOCKS5 or
 * HTTP CONNECT handshake (common/upstream) to the health URL's host, GET the URL, parse the
 * exit IP from the body. Every step has its own deadline. */
#ifndef HEALTHD_PROBE_H
#define HEALTHD_PROBE_H

#include "evloop.h"
#include "net.h"
#include "upstream.h"

#include <gnutls/gnutls.h>

#include <netinet/in.h>
#include <stdint.h>

#define PROBE_BODY_MAX 4096
#define PROBE_IP_MAX   46

enum probe_error {
	PROBE_OK = 0,
	PROBE_UPSTREAM,		/* see up (connection_refused, auth_failed, proxy_refused, ...) */
	PROBE_TIMEOUT,		/* a step took longer than the timeout */
	PROBE_HTTP_STATUS,	/* the URL answered non-2xx (http_status holds it) */
	PROBE_BAD_HTTP,		/* not an HTTP response */
	PROBE_UNPARSEABLE_BODY, /* no IP address in the body */
	PROBE_INTERNAL,
	PROBE_EXIT_MISMATCH, /* it answered, from an exit address outside the proxy's expected_exit */
	PROBE_TLS,	     /* an https URL: the TLS handshake through the proxy failed (reason says why) */
};

struct probe_result {
	enum probe_error error;
	enum upstream_result up;
	int http_status;
	char exit_ip[PROBE_IP_MAX];
	unsigned total_ms, connect_ms, handshake_ms, first_byte_ms;
	char reason[160]; /* the typed reason as text: "auth_failed", "http_status 502", "timeout (handshake)",
			     "proxy_refused (SOCKS5 0x05 connection refused)", "proxy_refused (HTTP 503)" */
};

struct probe;
#define PROBE_PIPELINED 1
#define PROBE_EARLY	2
typedef void (*probe_done_cb)(struct probe *p, const struct probe_result *r, void *arg);

/* Pure: a complete (or EOF-terminated) HTTP response: status and the exit IP from the body
 * (first token, IPv4 or IPv6, or {"ip":"..."}). Returns PROBE_OK, PROBE_HTTP_STATUS,
 * PROBE_BAD_HTTP or PROBE_UNPARSEABLE_BODY. */
enum probe_error probe_parse_response(const char *buf, size_t len, int *status, char ip[PROBE_IP_MAX]);
/* Pure: the response is whole already by its own framing (Content-Length, a chunked body's last
 * chunk, or no body: 1xx/204/304), or malformed: 1; 0 when only EOF can end it, or more bytes
 * are needed. A proxy or server that keeps the connection open after answering costs nothing. */
int probe_response_complete(const char *buf, size_t len);

/* Start a probe; cb runs exactly once (also on immediate failure, from the loop). flags:
 * PROBE_PIPELINED sends the SOCKS5 greeting, auth and CONNECT in one write (upstream.h),
 * PROBE_EARLY the GET right behind the request, ahead of the proxy's reply (an http URL only),
 * to learn whether the proxy takes that. cred: the trust store for an https URL (its certificate must chain to it and
 * name the URL's host); it must outlive the probe. */
struct probe *probe_start(struct evloop *ev, const struct sockaddr_storage *proxy, enum upstream_type type,
			  const char *user, const char *pass, int flags, const struct net_http_url *url,
			  gnutls_certificate_credentials_t cred, unsigned timeout_ms, probe_done_cb cb, void *arg);
/* Abandon a probe without calling back. */
void probe_cancel(struct probe *p);

#endif
