/* dns.h - DNS messages (RFC 1035, EDNS0 RFC 6891) for pgw-forwarder's resolver and pgw-healthd's
 * DNS check: pure functions over a buffer (no I/O, no allocation), so tests and fuzz_dns drive
 * them. Parsers check every length against the buffer: bad input is an error, never a read past
 * the end. */
#ifndef PGW_DNS_H
#define PGW_DNS_H

#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER	   12
#define DNS_NAME_MAX	   255	/* wire form, with the final zero label */
#define DNS_UDP_MIN	   512	/* a client without EDNS0 takes this much over UDP */
#define DNS_UDP_MAX	   1232 /* the most pgw sends over UDP, whatever a client offers (DNS flag day 2020) */
#define DNS_MSG_MAX	   65535
#define DNS_ERROR_MAX	   (DNS_HEADER + DNS_NAME_MAX + 4 + 11) /* dns_build_error's longest: question, OPT */
#define DNS_TYPE_SOA	   6
#define DNS_TYPE_OPT	   41
#define DNS_OPT_COOKIE	   10 /* RFC 7873: the answer is the same for every client */
#define DNS_OPT_KEEPALIVE  11 /* RFC 7828 */
#define DNS_OPT_PADDING	   12 /* RFC 7830 */
#define DNS_CLASS_IN	   1
#define DNS_RCODE_OK	   0
#define DNS_RCODE_FORMERR  1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_NOTIMP   4
#define DNS_RCODE_REFUSED  5
#define DNS_FLAG_QR	   0x8000
#define DNS_FLAG_TC	   0x0200
#define DNS_FLAG_RD	   0x0100
#define DNS_FLAG_RA	   0x0080
#define DNS_FLAG_CD	   0x0010

/* A query as a client sent it: exactly one question, no answers; additional records only an OPT. */
struct dns_query {
	uint16_t id, flags;
	uint8_t qname[DNS_NAME_MAX]; /* wire form, lower-cased (the cache key) */
	size_t qname_len;
	uint16_t qtype, qclass;
	size_t question_end; /* offset just past the question */
	int edns;	     /* an OPT record was present */
	uint16_t udp_size;   /* what the client takes over UDP: 512, or its EDNS0 size within 512..DNS_UDP_MAX */
	int do_bit;	     /* EDNS0 DO: DNSSEC records wanted */
	int uncached;	     /* an EDNS option other than a cookie, TCP keepalive or padding (a Client
			      * Subnet, RFC 7871, a device or policy id a resolver answers for), or options
			      * that do not parse: the answer may be for what that client named, so it is
			      * neither taken from the cache nor put there (one client must not steer
			      * others' answers) */
};

/* 0, or -EBADMSG (malformed: FORMERR), -EOPNOTSUPP (an opcode other than QUERY: NOTIMP), or
 * -EPROTO (a response, not a query: ignore it). With at least 2 bytes, q->id is set either way. */
int dns_parse_query(const uint8_t *m, size_t len, struct dns_query *q);

/* A whole answer walked: its rcode and how long it may be cached. */
struct dns_answer {
	uint16_t id, flags;
	int rcode;
	unsigned ancount;
	uint32_t ttl; /* positive: the least TTL of its records; negative: min(SOA TTL, SOA MINIMUM);
		       * 0: not to be cached (SERVFAIL, no SOA on a negative answer, a TTL of 0) */
};
/* The answer to q (a response, the same question, every record inside the buffer, one OPT at
 * most and only among the additional records): 0 with a filled, or -EBADMSG. */
int dns_parse_answer(const uint8_t *m, size_t len, const struct dns_query *q, struct dns_answer *a);

/* An error reply to q (rcode), echoing the question when q is complete (it is not after
 * -EBADMSG: then only the header, with q->id), with a bare OPT record when the query had one.
 * Bytes written, or -ENOSPC. */
int dns_build_error(const struct dns_query *q, const uint8_t *query, size_t query_len, int rcode, uint8_t *out,
		    size_t cap);

/* Fit an answer of len bytes into max (a UDP client's size): unchanged when it fits, else the
 * header and question only, TC set, counts zeroed (RFC 2181 9: the client retries over TCP),
 * and a bare OPT record when the client sent one (edns). Returns the new length. */
size_t dns_truncate(uint8_t *m, size_t len, size_t max, int edns);

/* Remove the options (cookies, padding, client subnet...) from an answer's OPT record, keeping
 * the record: what one client's exchange carried is not served to another from the cache.
 * Returns the new length (len when there is nothing to strip or the message does not parse). */
size_t dns_strip_opt(uint8_t *m, size_t len);

/* Subtract elapsed seconds from every TTL in an answer (not the OPT record's), at 0 at least:
 * a cached answer tells the client how long it is still good. 0, or -EBADMSG. */
int dns_age(uint8_t *m, size_t len, uint32_t elapsed);

/* Set the message id. */
void dns_set_id(uint8_t *m, uint16_t id);

/* DNS over TCP (RFC 7766 section 8; RFC 1035 4.2.2): each message behind its 2-byte length. For
 * the stream's unread bytes in[0..len): 1 and *mlen (0-65535) when the first message is all
 * there (it starts at in + 2), 0 when more must arrive first. fuzz_dnstcp. */
int dns_tcp_next(const uint8_t *in, size_t len, size_t *mlen);

/* A query for name (dotted, e.g. "www.example.org", at most 253 characters) and qtype, RD set,
 * with an EDNS0 OPT of DNS_UDP_MAX: bytes written, or -EINVAL / -ENOSPC. */
int dns_build_query(uint16_t id, const char *name, uint16_t qtype, uint8_t *out, size_t cap);

/* The question name as text ("www.example.org."), for logs: buf at least 4 * DNS_NAME_MAX bytes
 * (unusual bytes are written \DDD). */
void dns_name_str(const uint8_t *wire, size_t len, char *buf, size_t size);

/* The setting dns_upstream: comma-separated resolvers, each "host:port" (DNS over TCP, RFC 7766)
 * or "tls://host:port#name" (DNS over TLS, RFC 7858; the certificate must be valid for name).
 * host: an IPv4 address, [an IPv6 address] or a name (resolved by the proxy). */
#define DNS_UPSTREAMS_MAX 8
struct dns_upstream {
	char host[256];
	uint16_t port;
	int tls;
	char name[256]; /* tls: the name the certificate must carry */
};
/* How many (1..max), or -EINVAL with the reason in err. */
int dns_upstreams_parse(const char *s, struct dns_upstream *out, int max, char *err, size_t errlen);
/* A host name as DNS has it: labels of 1..63 letters, digits, '-' or '_', at most 253 in all. */
int dns_hostname_valid(const char *s);

#endif
