/* table.c - see table.h. Open addressing, power-of-two capacity, at most half full. */
#include "table.h"

#include "log.h"
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fwd_table {
	size_t n, cap; /* cap: slots, a power of two */
	struct fwd_entry *slots;
	uint8_t *used;
};

static size_t slot_of(const struct net_ip *a, size_t cap)
{
	uint32_t h = net_ip_hash(a);

	return (size_t)(h ^ (h >> 16)) & (cap - 1);
}

static int same(const struct net_ip *a, const struct net_ip *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static uint64_t endpoint_hash(const char *host, unsigned port)
{
	uint64_t h = 14695981039346656037ull;

	for (const unsigned char *p = (const unsigned char *)(host ? host : ""); *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	h = (h ^ ' ') * 1099511628211ull;
	for (int i = 0; i < 2; i++, port >>= 8)
		h = (h ^ (port & 0xff)) * 1099511628211ull;
	return h;
}

/* What the cache keys an answer by besides the question: the organisation (its own resolvers,
 * and a proxy id may be another organisation's later), the proxy and how it is reached (the
 * same host and port with other credentials can be another exit). */
static uint64_t path_of(const struct fwd_entry *e)
{
	uint64_t h = (14695981039346656037ull ^ (uint64_t)e->org_id) * 1099511628211ull;

	h ^= (uint64_t)e->proxy_id;
	const unsigned char *parts[2] = {(const unsigned char *)e->user, (const unsigned char *)e->pass};

	h = (h ^ e->endpoint) * 1099511628211ull;
	h = (h ^ (uint64_t)e->type) * 1099511628211ull;
	for (const unsigned char *p = (const unsigned char *)&e->proxy; p < (const unsigned char *)(&e->proxy + 1); p++)
		h = (h ^ *p) * 1099511628211ull;
	for (int i = 0; i < 2; i++) {
		for (const unsigned char *p = parts[i]; *p; p++)
			h = (h ^ *p) * 1099511628211ull;
		h = (h ^ 0xff) * 1099511628211ull;
	}
	return h;
}

/* Where a proxy is: its host when that is an address; for a name, the address pgw-healthd's last
 * good probe reached, while the row still names the host and port it probed (0030). The forwarder
 * resolves nothing itself: a name with several addresses could lead it where no probe went (its
 * health, its exit IP unchecked). 0: nowhere yet (blocked until a probe). */
int proxy_address(const char *host, uint16_t port, const char *probed_host, int probed_port, const char *probed_addr,
		  struct sockaddr_storage *out)
{
	struct net_ip ip;

	memset(out, 0, sizeof(*out));
	if (!host)
		return 0;
	if (net_ip_parse(host, &ip) == 0) {
		net_ip_to_sa(&ip, port, out);
		return 1;
	}
	if (!probed_host || !probed_addr || strcmp(probed_host, host) != 0 || probed_port != port ||
	    net_ip_parse(probed_addr, &ip) < 0)
		return 0;
	net_ip_to_sa(&ip, port, out);
	return 1;
}

/* Twice the slots, the entries in them again: 0 or -ENOMEM (t unchanged). */
static int grow(struct fwd_table *t)
{
	size_t cap = t->cap * 2;
	struct fwd_entry *slots = calloc(cap, sizeof(*slots));
	uint8_t *used = calloc(cap, 1);

	if (!slots || !used) {
		free(slots);
		free(used);
		return -ENOMEM;
	}
	for (size_t j = 0; j < t->cap; j++) {
		size_t i;
		if (!t->used[j])
			continue;
		for (i = slot_of(&t->slots[j].client, cap); used[i]; i = (i + 1) & (cap - 1))
			;
		used[i] = 1;
		slots[i] = t->slots[j];
	}
	explicit_bzero(t->slots, t->cap * sizeof(*t->slots)); /* proxies' passwords */
	free(t->slots);
	free(t->used);
	t->slots = slots;
	t->used = used;
	t->cap = cap;
	return 0;
}

int table_load(sqlite3 *db, const struct net_lan *refuse, struct fwd_table **out, char *err, size_t errlen)
{
	static const char *const sql =
	    "SELECT s.client_ip, s.active, p.id, p.type, p.host, p.port, p.username, p.password, "
	    "coalesce(h.pipelining, 0), s.enabled AND p.enabled, coalesce(h.dns_status, '') = 'down', "
	    "p.type = 'socks5' AND coalesce(h.udp, '') = 'yes', s.org_id, m.max_conns, m.new_conns_per_s, "
	    "CASE WHEN m.quota_bytes > 0 THEN m.quota_bytes + coalesce(q.granted, 0) ELSE 0 END, coalesce(q.used, 0), "
	    "coalesce(u.run, 0), coalesce(u.bytes_up + u.bytes_down, 0), coalesce(h.early_data, 0), p.preconnect, "
	    "coalesce(h.probed_host, ''), coalesce(h.probed_port, 0), coalesce(h.probed_addr, '') FROM "
	    "mapping_state s JOIN mappings m ON m.id = s.id JOIN proxies p ON "
	    "p.id = coalesce(s.carrying_proxy_id, s.proxy_id) "
	    "LEFT JOIN proxy_health h ON h.proxy_id = p.id LEFT JOIN client_quota q ON q.client_ip = s.client_ip "
	    "LEFT JOIN usage_seen u ON u.client_ip = s.client_ip ORDER BY p.id"; /* active 0004, pipelining 0006,
										   dns 0012, udp 0013, carrier 0018,
										   quota 0023, preconnect 0028,
										   probed 0030 */
	struct fwd_table *t = calloc(1, sizeof(*t));
	sqlite3_stmt *st = NULL;
	sqlite3_int64 rows;
	int rc, r = -EIO;
	int64_t resolved_id = 0; /* rows come by proxy: each proxy's address is found once, not per client */
	struct sockaddr_storage resolved;
	int resolved_ok = 0;
	const char *why;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	rows = 0;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM mappings", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		rows = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	for (t->cap = 16; t->cap < (size_t)rows * 2; t->cap *= 2)
		;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	t->used = calloc(t->cap, 1);
	if (!t->slots || !t->used) {
		r = -ENOMEM;
		goto fail;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ip = (const char *)sqlite3_column_text(st, 0),
			   *type = (const char *)sqlite3_column_text(st, 3);
		struct fwd_entry e;
		struct net_ip a;
		size_t i;

		if (!ip || net_ip_parse(ip, &a) < 0)
			continue;
		if (t->n * 2 >= t->cap && grow(t) < 0) { /* rows added since the count: none left out */
			snprintf(err, errlen, "out of memory");
			r = -ENOMEM;
			goto fail;
		}
		memset(&e, 0, sizeof(e));
		e.client = a;
		e.state = sqlite3_column_int(st, 1) ? FWD_ACTIVE : FWD_BLOCKED;
		e.proxy_id = sqlite3_column_int64(st, 2);
		e.type = type && strcmp(type, "http") == 0 ? UPSTREAM_HTTP : UPSTREAM_SOCKS5;
		snprintf(e.user, sizeof(e.user), "%s", (const char *)sqlite3_column_text(st, 6));
		snprintf(e.pass, sizeof(e.pass), "%s", (const char *)sqlite3_column_text(st, 7));
		e.pipeline = e.type == UPSTREAM_SOCKS5 && sqlite3_column_int(st, 8);
		e.proxy_down = e.state == FWD_BLOCKED && sqlite3_column_int(st, 9);
		e.dns_down = sqlite3_column_int(st, 10);
		e.udp = sqlite3_column_int(st, 11);
		e.org_id = sqlite3_column_int64(st, 12);
		e.max_conns = (unsigned)sqlite3_column_int(st, 13);
		e.conns_per_s = (unsigned)sqlite3_column_int(st, 14);
		e.quota_limit = sqlite3_column_int64(st, 15);
		e.quota_used = sqlite3_column_int64(st, 16);
		e.seen_run = sqlite3_column_int64(st, 17);
		e.seen_total = sqlite3_column_int64(st, 18);
		e.early = sqlite3_column_int(st, 19);
		e.preconnect = sqlite3_column_int(st, 20);
		if (e.proxy_id != resolved_id) {
			resolved_id = e.proxy_id;
			resolved_ok =
			    proxy_address((const char *)sqlite3_column_text(st, 4), (uint16_t)sqlite3_column_int(st, 5),
					  (const char *)sqlite3_column_text(st, 21), sqlite3_column_int(st, 22),
					  (const char *)sqlite3_column_text(st, 23), &resolved);
			if (!resolved_ok && sqlite3_column_int(st, 9)) /* (a disabled proxy is never probed) */
				log_info(
				    "proxy %lld: host '%s' has no address pgw-healthd reached yet; its clients wait "
				    "(blocked)",
				    (long long)e.proxy_id, (const char *)sqlite3_column_text(st, 4));
			else if (refuse && (why = net_dest_refused(&resolved, refuse))) {
				char at[NET_IP_STR_MAX];
				net_sa_ip_str(&resolved, at);
				log_warnx(
				    "proxy %lld: host '%s' (%s) is %s: refused (proxy_allow_local allows it); its "
				    "clients are blocked",
				    (long long)e.proxy_id, (const char *)sqlite3_column_text(st, 4), at, why);
				resolved_ok = 0;
			}
		}
		e.proxy = resolved;
		e.endpoint =
		    endpoint_hash((const char *)sqlite3_column_text(st, 4), (unsigned)sqlite3_column_int(st, 5));
		if (!resolved_ok) {
			e.state = FWD_BLOCKED;
			e.proxy_down = sqlite3_column_int(st, 9);
		}
		e.path = path_of(&e);
		for (i = slot_of(&a, t->cap); t->used[i] && !same(&t->slots[i].client, &a); i = (i + 1) & (t->cap - 1))
			;
		if (!t->used[i])
			t->n++;
		t->used[i] = 1;
		t->slots[i] = e;
		explicit_bzero(&e, sizeof(e));
	}
	if (rc != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(st);
	*out = t;
	return 0;
dberr:
	snprintf(err, errlen, "db: %s", sqlite3_errmsg(db));
fail:
	sqlite3_finalize(st);
	table_free(t);
	return r;
}

void table_free(struct fwd_table *t)
{
	if (!t)
		return;
	if (t->slots)
		explicit_bzero(t->slots, t->cap * sizeof(*t->slots));
	free(t->slots);
	free(t->used);
	free(t);
}

void table_foreach(const struct fwd_table *t, void (*cb)(const struct fwd_entry *e, void *arg), void *arg)
{
	for (size_t i = 0; t && i < t->cap; i++)
		if (t->used[i])
			cb(&t->slots[i], arg);
}

size_t table_size(const struct fwd_table *t)
{
	return t ? t->n : 0;
}

const struct fwd_entry *table_lookup(const struct fwd_table *t, const struct net_ip *client)
{
	if (!t)
		return NULL;
	for (size_t i = slot_of(client, t->cap); t->used[i]; i = (i + 1) & (t->cap - 1))
		if (same(&t->slots[i].client, client))
			return &t->slots[i];
	return NULL;
}

size_t table_block_all(struct fwd_table *t)
{
	size_t n = 0;

	for (size_t i = 0; t && i < t->cap; i++) {
		if (!t->used[i])
			continue;
		n += t->slots[i].state == FWD_ACTIVE;
		t->slots[i].state = FWD_BLOCKED;
		t->slots[i].unread = 1;
	}
	return n;
}

int table_same_path(const struct fwd_entry *now, const struct fwd_entry *then)
{
	return now && now->state == FWD_ACTIVE && now->proxy_id == then->proxy_id && now->type == then->type &&
	       now->endpoint == then->endpoint && strcmp(now->user, then->user) == 0 &&
	       strcmp(now->pass, then->pass) == 0;
}
