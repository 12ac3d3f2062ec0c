/* dnscache.h - the resolver's answer cache: one per gateway, keyed by the proxy (its id, endpoint,
 * type and credentials, hashed by the resolver: the same name may resolve differently by exit)
 * as well as the question and the flags that change an answer (DO, CD, RD, EDNS0), TTL-bounded (the answer's own TTL,
 * at most DNS_CACHE_TTL_MAX) and size-bounded (entries and bytes, least recently used out
 * first). Not thread-safe: the resolver thread owns it. */
#ifndef FWD_DNSCACHE_H
#define FWD_DNSCACHE_H

#include "dns.h"

#include <stddef.h>
#include <stdint.h>

#define DNS_CACHE_TTL_MAX   86400
#define DNS_CACHE_ENTRY_MAX 16384 /* bytes: larger answers are not kept */

struct dns_cache;

struct dns_cache *dns_cache_new(size_t max_entries, size_t max_bytes);
void dns_cache_free(struct dns_cache *c);
/* A fresh answer to q asked through the proxy path: copied into out with its TTLs aged,
 * the question written as q asked it (its case) and q's id. The length, or 0 (none; always for a
 * query with a Client Subnet or another option its answer may be for, q->uncached). */
size_t dns_cache_get(struct dns_cache *c, uint64_t path, const struct dns_query *q, const uint8_t *query,
		     uint64_t now_ms, uint8_t *out, size_t cap);
/* Keep an answer for ttl seconds (0: not at all; nor for q->uncached, whose answer leaves what is
 * kept for the name as it was). */
void dns_cache_put(struct dns_cache *c, uint64_t path, const struct dns_query *q, const uint8_t *msg, size_t len,
		   uint32_t ttl, uint64_t now_ms);
size_t dns_cache_entries(const struct dns_cache *c);
void dns_cache_clear(struct dns_cache *c);

#endif
