/* dns.c - see dns.h. */
#include "dns.h"

#include "net.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DNS_LABELS_MAX 128 /* 255 bytes hold at most 127 one-byte labels and the root */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* Step over a name at *off (labels, ending in a zero label or a compression pointer). The
 * pointer is not followed: a name inside a record is only skipped here. */
static int skip_name(const uint8_t *m, size_t len, size_t *off)
{
	size_t o = *off, total = 0;

	for (int n = 0; n < DNS_LABELS_MAX; n++) {
		uint8_t b;

		if (o >= len)
			return -EBADMSG;
		b = m[o];
		if (b == 0) {
			*off = o + 1;
			return 0;
		}
		if ((b & 0xC0) == 0xC0) {
			if (o + 2 > len)
				return -EBADMSG;
			*off = o + 2;
			return 0;
		}
		if (b & 0xC0) /* 0x40, 0x80: extended label types, obsolete */
			return -EBADMSG;
		total += 1u + b;
		if (total + 1 > DNS_NAME_MAX || o + 1 + b > len)
			return -EBADMSG;
		o += 1u + b;
	}
	return -EBADMSG;
}

/* An uncompressed name at *off, copied lower-cased into out (the question of a query). */
static int read_name(const uint8_t *m, size_t len, size_t *off, uint8_t *out, size_t *out_len)
{
	size_t o = *off, n = 0;

	for (;;) {
		uint8_t b;

		if (o >= len)
			return -EBADMSG;
		b = m[o];
		if (b & 0xC0) /* no compression in a question: nothing precedes it to point at */
			return -EBADMSG;
		if (n + 1u + b > DNS_NAME_MAX || o + 1u + b > len)
			return -EBADMSG;
		out[n++] = b;
		for (size_t i = 0; i < b; i++)
			out[n++] = lower(m[o + 1 + i]);
		o += 1u + b;
		if (b == 0)
			break;
	}
	*off = o;
	*out_len = n;
	return 0;
}

void dns_set_id(uint8_t *m, uint16_t id)
{
	put16(m, id);
}

int dns_tcp_next(const uint8_t *in, size_t len, size_t *mlen)
{
	if (len < 2)
		return 0;
	*mlen = (size_t)in[0] << 8 | in[1];
	return len - 2 >= *mlen;
}

int dns_parse_query(const uint8_t *m, size_t len, struct dns_query *q)
{
	size_t off = DNS_HEADER;
	unsigned qd, an, ns, ar;

	memset(q, 0, sizeof(*q));
	q->udp_size = DNS_UDP_MIN; /* also for the FORMERR of a query that does not parse */
	if (len >= 2)
		q->id = get16(m);
	if (len < DNS_HEADER)
		return -EBADMSG;
	q->flags = get16(m + 2);
	if (q->flags & DNS_FLAG_QR)
		return -EPROTO;
	if ((q->flags >> 11 & 0xF) != 0)
		return -EOPNOTSUPP;
	qd = get16(m + 4);
	an = get16(m + 6);
	ns = get16(m + 8);
	ar = get16(m + 10);
	if (qd != 1 || an != 0 || ns != 0 || ar > 1)
		return -EBADMSG;
	if (read_name(m, len, &off, q->qname, &q->qname_len) < 0 || off + 4 > len)
		return -EBADMSG;
	q->qtype = get16(m + off);
	q->qclass = get16(m + off + 2);
	off += 4;
	q->question_end = off;
	q->udp_size = DNS_UDP_MIN;
	if (ar == 1) { /* only an OPT: the root name, type 41, class = UDP size, TTL = flags */
		uint16_t size, rdlen;

		if (off + 11 > len || m[off] != 0 || get16(m + off + 1) != DNS_TYPE_OPT)
			return -EBADMSG;
		size = get16(m + off + 3);
		q->do_bit = (m[off + 7] & 0x80) != 0;
		rdlen = get16(m + off + 9);
		off += 11;
		if (off + rdlen > len)
			return -EBADMSG;
		for (size_t o = off; o < off + rdlen;) { /* options: code, length, data */
			if (o + 4 > off + rdlen || o + 4 + get16(m + o + 2) > off + rdlen) {
				q->uncached = 1; /* passed on as sent; whatever the resolver reads in it, not cached */
				break;
			}
			if (get16(m + o) != DNS_OPT_COOKIE && get16(m + o) != DNS_OPT_KEEPALIVE &&
			    get16(m + o) != DNS_OPT_PADDING)
				q->uncached = 1; /* a Client Subnet, or an option the answer may be for */
			o += 4 + get16(m + o + 2);
		}
		off += rdlen;
		q->edns = 1;
		q->udp_size = size < DNS_UDP_MIN ? DNS_UDP_MIN : size > DNS_UDP_MAX ? DNS_UDP_MAX : size;
	}
	if (off != len) /* bytes after the last record */
		return -EBADMSG;
	return 0;
}

/* Walk count records from *off; for each, call back with its type, TTL offset and rdata. */
struct rr {
	uint16_t type;
	size_t ttl_off, rdata, rdlen;
};

static int next_rr(const uint8_t *m, size_t len, size_t *off, struct rr *rr)
{
	if (skip_name(m, len, off) < 0 || *off + 10 > len)
		return -EBADMSG;
	rr->type = get16(m + *off);
	rr->ttl_off = *off + 4;
	rr->rdlen = get16(m + *off + 8);
	rr->rdata = *off + 10;
	if (rr->rdata + rr->rdlen > len)
		return -EBADMSG;
	*off = rr->rdata + rr->rdlen;
	return 0;
}

/* A record's TTL as a cache may use it: one with the top bit set means 0 (RFC 2181 8). */
static uint32_t rr_ttl(const uint8_t *m, const struct rr *rr)
{
	uint32_t t = get32(m + rr->ttl_off);

	return t > 0x7fffffffu ? 0 : t;
}

/* The offset after the question section, or 0. */
static size_t question_end(const uint8_t *m, size_t len)
{
	size_t off = DNS_HEADER;
	unsigned qd;

	if (len < DNS_HEADER)
		return 0;
	qd = get16(m + 4);
	for (unsigned i = 0; i < qd; i++) {
		if (skip_name(m, len, &off) < 0 || off + 4 > len)
			return 0;
		off += 4;
	}
	return off;
}

int dns_parse_answer(const uint8_t *m, size_t len, const struct dns_query *q, struct dns_answer *a)
{
	uint8_t name[DNS_NAME_MAX];
	size_t off = DNS_HEADER, nlen;
	unsigned an, ns, ar;
	uint32_t ttl = UINT32_MAX, neg = UINT32_MAX;
	int have_ttl = 0, opts = 0;

	memset(a, 0, sizeof(*a));
	if (len < DNS_HEADER)
		return -EBADMSG;
	a->id = get16(m);
	a->flags = get16(m + 2);
	a->rcode = a->flags & 0xF;
	if (!(a->flags & DNS_FLAG_QR) || get16(m + 4) != 1)
		return -EBADMSG;
	an = get16(m + 6);
	ns = get16(m + 8);
	ar = get16(m + 10);
	if (read_name(m, len, &off, name, &nlen) < 0 || off + 4 > len)
		return -EBADMSG;
	if (nlen != q->qname_len || memcmp(name, q->qname, nlen) != 0 || get16(m + off) != q->qtype ||
	    get16(m + off + 2) != q->qclass)
		return -EBADMSG; /* an answer to another question */
	off += 4;
	a->ancount = an;
	for (unsigned i = 0; i < an + ns + ar; i++) {
		struct rr rr;
		uint32_t t;

		if (next_rr(m, len, &off, &rr) < 0)
			return -EBADMSG;
		if (rr.type == DNS_TYPE_OPT) { /* one at most, in the additional section (RFC 6891 6.1.1) */
			if (i < an + ns || opts++)
				return -EBADMSG;
			continue;
		}
		t = rr_ttl(m, &rr);
		if (i < an + ns) {
			if (t < ttl)
				ttl = t;
			have_ttl = 1;
		}
		if (i >= an && i < an + ns && rr.type == DNS_TYPE_SOA && rr.rdlen >= 22) {
			uint32_t min = get32(m + rr.rdata + rr.rdlen - 4);
			if (min > 0x7fffffffu)
				min = 0;
			uint32_t v = t < min ? t : min;
			if (v < neg)
				neg = v;
		}
	}
	if (off != len)
		return -EBADMSG;
	if (a->rcode == DNS_RCODE_OK && an > 0)
		a->ttl = have_ttl ? ttl : 0;
	else if ((a->rcode == DNS_RCODE_OK || a->rcode == DNS_RCODE_NXDOMAIN) && neg != UINT32_MAX)
		a->ttl = neg; /* NODATA or NXDOMAIN: RFC 2308 */
	else
		a->ttl = 0;
	if (a->flags & DNS_FLAG_TC)
		a->ttl = 0;
	return 0;
}

/* A bare OPT record (no options) at m (11 bytes): what pgw takes over UDP. */
static void put_opt(uint8_t *m)
{
	m[0] = 0;
	put16(m + 1, DNS_TYPE_OPT);
	put16(m + 3, DNS_UDP_MAX);
	put32(m + 5, 0);
	put16(m + 9, 0);
}

int dns_build_error(const struct dns_query *q, const uint8_t *query, size_t query_len, int rcode, uint8_t *out,
		    size_t cap)
{
	size_t n = q->question_end && q->question_end <= query_len ? q->question_end : DNS_HEADER;
	int opt = q->edns && n > DNS_HEADER; /* RFC 6891 7: an OPT in the query, an OPT in the reply */
	uint16_t flags;

	if (cap < n + (opt ? 11 : 0))
		return -ENOSPC;
	memset(out, 0, DNS_HEADER);
	if (n > DNS_HEADER)
		memcpy(out, query, n);
	put16(out, q->id);
	flags =
	    (uint16_t)(DNS_FLAG_QR | (q->flags & (0x7800 | DNS_FLAG_RD | DNS_FLAG_CD)) | DNS_FLAG_RA | (rcode & 0xF));
	put16(out + 2, flags);
	put16(out + 4, n > DNS_HEADER ? 1 : 0);
	put16(out + 6, 0);
	put16(out + 8, 0);
	put16(out + 10, opt ? 1 : 0);
	if (opt)
		put_opt(out + n);
	return (int)(n + (opt ? 11 : 0));
}

size_t dns_truncate(uint8_t *m, size_t len, size_t max, int edns)
{
	size_t q;

	if (len <= max)
		return len;
	q = question_end(m, len);
	if (q == 0 || q > max) { /* cannot keep the question: the header alone */
		q = DNS_HEADER;
		put16(m + 4, 0);
	}
	put16(m + 2, get16(m + 2) | DNS_FLAG_TC);
	put16(m + 6, 0);
	put16(m + 8, 0);
	put16(m + 10, 0);
	if (edns && q + 11 <= max && q + 11 <= len) { /* the client spoke EDNS0: so does the reply */
		put_opt(m + q);
		put16(m + 10, 1);
		q += 11;
	}
	return q;
}

size_t dns_strip_opt(uint8_t *m, size_t len)
{
	size_t off = question_end(m, len);
	unsigned an, ns, ar;

	if (off == 0)
		return len;
	an = get16(m + 6);
	ns = get16(m + 8);
	ar = get16(m + 10);
	for (unsigned i = 0; i < an + ns + ar; i++) {
		struct rr rr;
		size_t end;

		if (next_rr(m, len, &off, &rr) < 0)
			return len;
		if (rr.type != DNS_TYPE_OPT || rr.rdlen == 0)
			continue;
		end = rr.rdata + rr.rdlen;
		memmove(m + rr.rdata, m + end, len - end);
		put16(m + rr.rdata - 2, 0);
		return len - rr.rdlen;
	}
	return len;
}

int dns_age(uint8_t *m, size_t len, uint32_t elapsed)
{
	size_t off = question_end(m, len);
	unsigned n;

	if (off == 0)
		return -EBADMSG;
	n = (unsigned)get16(m + 6) + get16(m + 8) + get16(m + 10);
	for (unsigned i = 0; i < n; i++) {
		struct rr rr;

		if (next_rr(m, len, &off, &rr) < 0)
			return -EBADMSG;
		if (rr.type != DNS_TYPE_OPT)
			put32(m + rr.ttl_off, rr_ttl(m, &rr) > elapsed ? rr_ttl(m, &rr) - elapsed : 0);
	}
	return 0;
}

int dns_build_query(uint16_t id, const char *name, uint16_t qtype, uint8_t *out, size_t cap)
{
	size_t n = DNS_HEADER, nl = strlen(name);
	const char *p = name;

	if (nl > 0 && name[nl - 1] == '.')
		nl--;
	if (nl == 0 || nl > 253)
		return -EINVAL;
	if (cap < DNS_HEADER + nl + 2 + 4 + 11)
		return -ENOSPC;
	memset(out, 0, DNS_HEADER);
	put16(out, id);
	put16(out + 2, DNS_FLAG_RD);
	put16(out + 4, 1);
	put16(out + 10, 1);
	while (p < name + nl) {
		const char *dot = memchr(p, '.', (size_t)(name + nl - p));
		size_t l = dot ? (size_t)(dot - p) : (size_t)(name + nl - p);

		if (l == 0 || l > 63)
			return -EINVAL;
		out[n++] = (uint8_t)l;
		memcpy(out + n, p, l);
		n += l;
		p += l + (dot ? 1 : 0);
	}
	out[n++] = 0;
	put16(out + n, qtype);
	put16(out + n + 2, DNS_CLASS_IN);
	n += 4;
	out[n] = 0; /* OPT: root name, type, UDP size, extended rcode/version/flags, no options */
	put16(out + n + 1, DNS_TYPE_OPT);
	put16(out + n + 3, DNS_UDP_MAX);
	put32(out + n + 5, 0);
	put16(out + n + 9, 0);
	return (int)(n + 11);
}

void dns_name_str(const uint8_t *wire, size_t len, char *buf, size_t size)
{
	size_t o = 0, w = 0;

	if (size == 0)
		return;
	buf[0] = 0;
	while (o < len && wire[o] && w + 5 < size) {
		uint8_t l = wire[o++];
		for (uint8_t i = 0; i < l && o < len && w + 5 < size; i++, o++) {
			uint8_t c = wire[o];
			if (c > 32 && c < 127 && c != '.' && c != '\\')
				buf[w++] = (char)c;
			else
				w += (size_t)snprintf(buf + w, size - w, "\\%03u", c);
		}
		buf[w++] = '.';
	}
	if (w == 0 && w + 1 < size)
		buf[w++] = '.';
	buf[w] = 0;
}

int dns_hostname_valid(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

static int upstream_one(const char *item, struct dns_upstream *u, char *err, size_t errlen)
{
	char buf[600], *hash;
	struct net_ip ip;

	memset(u, 0, sizeof(*u));
	if (strlen(item) >= sizeof(buf))
		goto bad;
	snprintf(buf, sizeof(buf), "%s", item);
	if (strncmp(buf, "tls://", 6) == 0) {
		u->tls = 1;
		memmove(buf, buf + 6, strlen(buf + 6) + 1);
	}
	hash = strchr(buf, '#');
	if (hash) {
		*hash++ = 0;
		if (!u->tls || !dns_hostname_valid(hash) || strlen(hash) >= sizeof(u->name))
			goto bad;
		snprintf(u->name, sizeof(u->name), "%s", hash);
	}
	if (net_hostport_parse(buf, u->host, sizeof(u->host), &u->port) < 0)
		goto bad;
	if (buf[0] == '[' ? net_ip_parse(u->host, &ip) < 0 || net_ip_is4(&ip)
			  : net_ip_parse(u->host, &ip) < 0 && !dns_hostname_valid(u->host))
		goto bad;
	if (u->tls && !u->name[0]) { /* the name to check: the host's, when it is one */
		if (net_ip_parse(u->host, &ip) == 0) {
			snprintf(
			    err, errlen,
			    "'%s': a tls:// resolver given by address needs #name (the name its certificate carries)",
			    item);
			return -EINVAL;
		}
		snprintf(u->name, sizeof(u->name), "%s", u->host);
	}
	return 0;
bad:
	snprintf(err, errlen, "'%.100s' is not host:port or tls://host:port#name (host: IPv4, [IPv6] or a name)", item);
	return -EINVAL;
}

int dns_upstreams_parse(const char *s, struct dns_upstream *out, int max, char *err, size_t errlen)
{
	char item[600];
	int n = 0;

	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);

		while (len > 0 && isspace((unsigned char)*s))
			s++, len--;
		while (len > 0 && isspace((unsigned char)s[len - 1]))
			len--;
		if (len == 0 || len >= sizeof(item)) {
			snprintf(err, errlen, "an empty or over-long resolver in the list");
			return -EINVAL;
		}
		if (n == max) {
			snprintf(err, errlen, "at most %d resolvers", max);
			return -EINVAL;
		}
		memcpy(item, s, len);
		item[len] = 0;
		if (upstream_one(item, &out[n], err, errlen) < 0)
			return -EINVAL;
		n++;
		if (!comma)
			break;
		s = comma + 1;
	}
	if (n == 0) {
		snprintf(err, errlen, "at least one resolver is needed");
		return -EINVAL;
	}
	return n;
}
