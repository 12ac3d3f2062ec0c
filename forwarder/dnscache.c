/* dnscache.c - see dnscache.h. Chained hash buckets plus one LRU list. */
#include "dnscache.h"

#include <stdlib.h>
#include <string.h>

struct centry {
	struct centry *hnext;	    /* bucket chain */
	struct centry *prev, *next; /* LRU: head most recent */
	uint64_t endpoint, hash;
	uint8_t qname[DNS_NAME_MAX];
	size_t qname_len;
	uint16_t qtype, qclass;
	uint8_t flags; /* DO and CD: they change the answer */
	uint64_t stored_ms, expires_ms;
	size_t len;
	uint8_t msg[];
};

struct dns_cache {
	struct centry **buckets;
	size_t nbuckets, n, bytes, max_entries, max_bytes;
	struct centry *head, *tail;
};

/* What else changes an answer: DO and CD (DNSSEC), RD, and whether the client spoke EDNS0 (an
 * answer carries an OPT record exactly when its query did). */
static uint8_t qflags(const struct dns_query *q)
{
	return (uint8_t)((q->do_bit ? 1 : 0) | (q->flags & DNS_FLAG_CD ? 2 : 0) | (q->flags & DNS_FLAG_RD ? 4 : 0) |
			 (q->edns ? 8 : 0));
}

static uint64_t key_hash(uint64_t endpoint, const struct dns_query *q)
{
	uint64_t h = 14695981039346656037ull ^ endpoint;

	for (size_t i = 0; i < q->qname_len; i++)
		h = (h ^ q->qname[i]) * 1099511628211ull;
	h = (h ^ q->qtype) * 1099511628211ull;
	h = (h ^ q->qclass) * 1099511628211ull;
	return (h ^ qflags(q)) * 1099511628211ull;
}

struct dns_cache *dns_cache_new(size_t max_entries, size_t max_bytes)
{
	struct dns_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	for (c->nbuckets = 64; c->nbuckets < max_entries; c->nbuckets *= 2)
		;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	c->max_entries = max_entries;
	c->max_bytes = max_bytes;
	return c;
}

static void unlink_lru(struct dns_cache *c, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void push_front(struct dns_cache *c, struct centry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static void drop(struct dns_cache *c, struct centry *e)
{
	struct centry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	unlink_lru(c, e);
	c->n--;
	c->bytes -= e->len;
	free(e);
}

void dns_cache_clear(struct dns_cache *c)
{
	while (c->head)
		drop(c, c->head);
}

void dns_cache_free(struct dns_cache *c)
{
	if (!c)
		return;
	dns_cache_clear(c);
	free(c->buckets);
	free(c);
}

static struct centry *find(struct dns_cache *c, uint64_t endpoint, const struct dns_query *q, uint64_t h)
{
	for (struct centry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == h && e->endpoint == endpoint && e->qtype == q->qtype && e->qclass == q->qclass &&
		    e->flags == qflags(q) && e->qname_len == q->qname_len &&
		    memcmp(e->qname, q->qname, q->qname_len) == 0)
			return e;
	return NULL;
}

size_t dns_cache_get(struct dns_cache *c, uint64_t endpoint, const struct dns_query *q, const uint8_t *query,
		     uint64_t now_ms, uint8_t *out, size_t cap)
{
	uint64_t h;
	struct centry *e;

	if (q->uncached) /* an answer for the subnet (or device, policy) it names: not one for everyone */
		return 0;
	h = key_hash(endpoint, q);
	if (!(e = find(c, endpoint, q, h)))
		return 0;
	if (now_ms >= e->expires_ms) {
		drop(c, e);
		return 0;
	}
	if (e->len > cap || q->question_end > e->len)
		return 0;
	memcpy(out, e->msg, e->len);
	memcpy(out + DNS_HEADER, query + DNS_HEADER, q->question_end - DNS_HEADER); /* the client's own case */
	dns_set_id(out, q->id);
	if (dns_age(out, e->len, (uint32_t)((now_ms - e->stored_ms) / 1000)) < 0)
		return 0;
	unlink_lru(c, e);
	push_front(c, e);
	return e->len;
}

void dns_cache_put(struct dns_cache *c, uint64_t endpoint, const struct dns_query *q, const uint8_t *msg, size_t len,
		   uint32_t ttl, uint64_t now_ms)
{
	uint64_t h;
	struct centry *e;

	if (q->uncached) /* an answer for what it named: neither kept nor replacing the one kept */
		return;
	h = key_hash(endpoint, q);
	if ((e = find(c, endpoint, q, h)))
		drop(c, e);
	if (ttl == 0 || len > DNS_CACHE_ENTRY_MAX || len > c->max_bytes || c->max_entries == 0)
		return;
	if (ttl > DNS_CACHE_TTL_MAX)
		ttl = DNS_CACHE_TTL_MAX;
	while (c->tail && (c->n + 1 > c->max_entries || c->bytes + len > c->max_bytes))
		drop(c, c->tail);
	e = malloc(sizeof(*e) + len);
	if (!e)
		return;
	memset(e, 0, sizeof(*e));
	e->endpoint = endpoint;
	e->hash = h;
	memcpy(e->qname, q->qname, q->qname_len);
	e->qname_len = q->qname_len;
	e->qtype = q->qtype;
	e->qclass = q->qclass;
	e->flags = qflags(q);
	e->stored_ms = now_ms;
	e->expires_ms = now_ms + (uint64_t)ttl * 1000;
	e->len = len;
	memcpy(e->msg, msg, len);
	e->hnext = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = e;
	push_front(c, e);
	c->n++;
	c->bytes += len;
}

size_t dns_cache_entries(const struct dns_cache *c)
{
	return c->n;
}
