/* stats.c - see stats.h. */
#include "stats.h"

#include <limits.h>
#include <sched.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const destfail_names[DF_MAX] = {
    [DF_SOCKS_NET] = "socks5_0x03_network_unreachable",
    [DF_SOCKS_HOST] = "socks5_0x04_host_unreachable",
    [DF_SOCKS_REFUSED] = "socks5_0x05_connection_refused",
    [DF_SOCKS_TTL] = "socks5_0x06_ttl_expired",
    [DF_HTTP_502] = "http_502",
    [DF_HTTP_503] = "http_503",
    [DF_HTTP_504] = "http_504",
    [DF_CLOSED_AFTER_CONNECT] = "closed_after_connect",
    [DF_SOCKS_RULESET] = "socks5_0x02_not_allowed",
    [DF_SOCKS_ATYP] = "socks5_0x08_address_type_not_supported",
    [DF_HTTP_403] = "http_403",
};

const char *fwd_destfail_str(enum fwd_destfail k)
{
	return (unsigned)k < DF_MAX ? destfail_names[k] : "unknown";
}

static const char *const close_names[CLOSE_MAX] = {
    [CLOSE_DONE] = "done",
    [CLOSE_UNKNOWN_CLIENT] = "unknown_client",
    [CLOSE_BLOCKED_CLIENT] = "blocked_client",
    [CLOSE_NO_ORIGINAL_DST] = "no_original_dst",
    [CLOSE_MAX_CONNECTIONS] = "max_connections",
    [CLOSE_UPSTREAM] = "upstream",
    [CLOSE_HANDSHAKE_TIMEOUT] = "handshake_timeout",
    [CLOSE_IDLE_TIMEOUT] = "idle_timeout",
    [CLOSE_CLIENT_RESET] = "client_reset",
    [CLOSE_UPSTREAM_RESET] = "upstream_reset",
    [CLOSE_SHUTDOWN] = "shutdown",
    [CLOSE_INTERNAL] = "internal_error",
    [CLOSE_REVOKED] = "revoked",
    [CLOSE_CLIENT_MAX_CONNS] = "client_max_conns",
    [CLOSE_CLIENT_RATE] = "client_rate",
    [CLOSE_QUOTA] = "quota_exceeded",
    [CLOSE_ADMIN] = "closed_by_admin",
    [CLOSE_NO_DESCRIPTORS] = "no_descriptors",
};

const char *fwd_close_str(enum fwd_close c)
{
	return (unsigned)c < CLOSE_MAX ? close_names[c] : "unknown";
}

int stats_init(struct fwd_stats *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	s->started_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	pthread_mutex_init(&s->clients_lock, NULL);
	s->clients_n = 0;
	s->clients = calloc(CLIENT_INDEX_FIRST, sizeof(*s->clients));
	s->clients_cap = s->clients ? CLIENT_INDEX_FIRST : 0;
	return s->clients ? 0 : -ENOMEM;
}

void stats_fini(struct fwd_stats *s)
{
	for (size_t i = 0; i < s->clients_cap; i++)
		free(s->clients[i]);
	free(s->clients);
	s->clients = NULL;
	s->clients_cap = s->clients_n = 0;
	pthread_mutex_destroy(&s->clients_lock);
}

/* The client's counters if it has any (none are made). Call locked. */
static struct client_stat *client_find(struct fwd_stats *s, const struct net_ip *client)
{
	const size_t mask = s->clients_cap - 1;
	size_t i = (size_t)net_ip_hash(client) & mask;

	/* at most half the slots are in use: an empty one ends every way (none without an index) */
	for (size_t k = 0; k < s->clients_cap && s->clients[i]; k++, i = (i + 1) & mask)
		if (memcmp(&s->clients[i]->client, client, sizeof(*client)) == 0)
			return s->clients[i];
	return NULL;
}

/* cs into the index idx of cap slots (a power of two, at most half in use): its first empty slot
 * from cs's home on. */
static void put(struct client_stat **idx, size_t cap, struct client_stat *cs)
{
	size_t i;

	for (i = (size_t)net_ip_hash(&cs->client) & (cap - 1); idx[i]; i = (i + 1) & (cap - 1))
		;
	idx[i] = cs;
}

/* The index made again with cap slots (a power of two); the counters marked given back freed.
 * 0, or -ENOMEM: nothing changed (the index there works, the marked counters are still in it).
 * Call locked. */
static int reindex(struct fwd_stats *s, size_t cap)
{
	struct client_stat **idx = calloc(cap, sizeof(*idx));

	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < s->clients_cap; i++) {
		struct client_stat *cs = s->clients[i];

		if (cs && cs->given_back) {
			free(cs);
			s->clients_n--;
		} else if (cs) {
			put(idx, cap, cs);
		}
	}
	free(s->clients);
	s->clients = idx;
	s->clients_cap = cap;
	return 0;
}

/* The client's counters, made on first use; NULL for a client past CLIENT_STATS_MAX (or out of
 * memory): it goes uncounted, so unlimited. Call locked.
 * org: whose the counts are (its mapping's organisation; 0: not known here), the counters' tag when
 * they have none yet. Only the reload's rebind moves a tag, starting the counts over. */
static struct client_stat *client_slot(struct fwd_stats *s, const struct net_ip *client, int64_t org)
{
	struct client_stat *cs = client_find(s, client);
	size_t cap = s->clients_cap;

	if (!cs) {
		if (!cap || s->clients_n >= CLIENT_STATS_MAX)
			return NULL;
		if ((s->clients_n + 1) * 2 > cap) { /* at most half in use: 4 times the slots, a quarter */
			while ((s->clients_n + 1) * 4 > cap)
				cap *= 2;
			if (reindex(s, cap) < 0)
				return NULL;
		}
		if (!(cs = calloc(1, sizeof(*cs))))
			return NULL;
		cs->client = *client;
		put(s->clients, cap, cs);
		s->clients_n++;
	}
	if (!cs->org)
		cs->org = org;
	return cs;
}

void stats_client_closed(struct fwd_stats *s, struct client_stat *cs, int failed)
{
	if (!cs) /* never counted (no counters for it: CLIENT_STATS_MAX clients, or no memory): none made now */
		return;
	pthread_mutex_lock(&s->clients_lock);
	cs->active--;
	cs->failures += (unsigned long)failed;
	pthread_mutex_unlock(&s->clients_lock);
}

void stats_clients_rebind(struct fwd_stats *s, int64_t (*org_of)(void *arg, const struct net_ip *ip), void *arg)
{
	size_t cap, gone = 0;

	pthread_mutex_lock(&s->clients_lock);
	for (size_t i = 0; i < s->clients_cap; i++) {
		struct client_stat *cs = s->clients[i];
		int64_t now;

		if (!cs)
			continue;
		now = org_of(arg, &cs->client);
		if (now == 0 && cs->active == 0 && cs->udp_flows == 0 && cs->quota_held == 0) {
			/* mapped no more, nothing open that holds them (a connection's pointer goes with its
			 * count, conn_close): given back below, so that clients come and go for good without
			 * filling the index (full, new ones would go uncounted, their quotas and limits
			 * unkept) */
			cs->given_back = 1;
			gone++;
			continue;
		}
		if (!cs->org || now == 0 || now == cs->org)
			continue;
		/* connections may be adding bytes through their pointer to these counters right now: they
		 * start over (the byte counters with atomic stores), the quota stays (it is set
		 * again at this reload) */
		__atomic_store_n(&cs->bytes_up, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&cs->bytes_down, 0, __ATOMIC_RELAXED);
		cs->connections = cs->failures = cs->refused = 0;
		cs->dns_queries = cs->dns_hits = cs->dns_errors = cs->dns_ms_sum = 0;
		cs->udp_up = cs->udp_down = cs->udp_bytes_up = cs->udp_bytes_down = cs->udp_dropped = 0;
		cs->tokens = 0;
		cs->tokens_at = 0;
		cs->org = now; /* (active and udp_flows stay: those are still open) */
	}
	/* given back: freed as the index is made again without them (linear probing: a slot emptied
	 * in place could end another client's way), halved as often as a quarter of it would still hold
	 * every client. Out of memory for it: none given back this time, the next reload tries again */
	for (cap = s->clients_cap; cap > CLIENT_INDEX_FIRST && (s->clients_n - gone + 1) * 4 <= cap / 2;)
		cap /= 2;
	if (gone && reindex(s, cap) < 0)
		for (size_t i = 0; i < s->clients_cap; i++)
			if (s->clients[i])
				s->clients[i]->given_back = 0;
	pthread_mutex_unlock(&s->clients_lock);
}

void stats_client_bytes(struct client_stat *cs, uint64_t up, uint64_t down)
{
	if (!cs)
		return;
	if (up)
		__atomic_fetch_add(&cs->bytes_up, (unsigned long)up, __ATOMIC_RELAXED);
	if (down)
		__atomic_fetch_add(&cs->bytes_down, (unsigned long)down, __ATOMIC_RELAXED);
}

/* The two quota counters change together: a reader never sees one without the other. */
static void qlock(struct client_stat *cs)
{
	for (int spins = 0; __atomic_test_and_set(&cs->qlock, __ATOMIC_ACQUIRE); spins++)
		if (spins > 100)
			sched_yield(); /* its holder was preempted */
}

static void qunlock(struct client_stat *cs)
{
	__atomic_clear(&cs->qlock, __ATOMIC_RELEASE);
}

size_t stats_quota_take(struct client_stat *cs, size_t want, size_t *held)
{
	size_t got;

	*held = 0;
	if (!cs || !want || !__atomic_load_n(&cs->quota_on, __ATOMIC_RELAXED))
		return want;
	qlock(cs);
	got = cs->quota_left >= (long long)want ? want : cs->quota_left > 0 ? (size_t)cs->quota_left : 0;
	cs->quota_left -= (long long)got;
	cs->quota_held += (long long)got;
	qunlock(cs);
	*held = got;
	return got;
}

void stats_quota_done(struct client_stat *cs, size_t held, size_t unused)
{
	if (!cs || !held)
		return;
	qlock(cs);
	cs->quota_left += (long long)unused;
	cs->quota_held -= (long long)held;
	qunlock(cs);
}

void stats_quota_give(struct client_stat *cs, size_t n)
{
	if (!cs || !n || !__atomic_load_n(&cs->quota_on, __ATOMIC_RELAXED))
		return;
	qlock(cs);
	cs->quota_left += (long long)n;
	qunlock(cs);
}

void stats_quota_charge(struct client_stat *cs, size_t n)
{
	if (!cs || !n || !__atomic_load_n(&cs->quota_on, __ATOMIC_RELAXED))
		return;
	qlock(cs);
	cs->quota_left -= (long long)n;
	qunlock(cs);
}

long long stats_quota_left(struct client_stat *cs)
{
	long long v;

	if (!cs || !__atomic_load_n(&cs->quota_on, __ATOMIC_RELAXED))
		return LLONG_MAX;
	qlock(cs);
	v = cs->quota_left + cs->quota_held;
	qunlock(cs);
	return v;
}

void stats_quota_set(struct fwd_stats *s, const struct net_ip *client, long long limit, long long used,
		     long long seen_run, long long seen_total)
{
	struct client_stat *cs;

	pthread_mutex_lock(&s->clients_lock);
	if ((cs = limit > 0 ? client_slot(s, client, 0) : client_find(s, client))) { /* no quota: none made */
		if (limit > 0) {
			long long total = (long long)(__atomic_load_n(&cs->bytes_up, __ATOMIC_RELAXED) +
						      __atomic_load_n(&cs->bytes_down, __ATOMIC_RELAXED) +
						      cs->udp_bytes_up + cs->udp_bytes_down);
			/* what this run counted that pgw-api has not added yet: all of it, unless the DB's
			 * count is of this very run */
			long long unseen =
			    seen_run == s->started_ms && total >= seen_total ? total - seen_total : total;
			/* reads under way hold some: they give back what they did not read (stats_quota_done) */
			qlock(cs);
			cs->quota_left = limit - used - unseen - cs->quota_held;
			qunlock(cs);
		}
		__atomic_store_n(&cs->quota_on, limit > 0, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&s->clients_lock);
}

int stats_client_open(struct fwd_stats *s, const struct net_ip *client, int64_t org, unsigned max, unsigned rate,
		      uint64_t now, struct client_stat **slot)
{
	struct client_stat *cs;
	int r = 0;

	*slot = NULL;
	pthread_mutex_lock(&s->clients_lock);
	if ((cs = client_slot(s, client, org))) {
		if (rate) {			/* a token bucket of one second's worth */
			if (cs->tokens_at == 0) /* first use: a full bucket */
				cs->tokens = rate, cs->tokens_at = now;
			else if (now > cs->tokens_at) /* another worker's clock may be behind: never refill back */
				cs->tokens += (double)(now - cs->tokens_at) * rate / 1000.0, cs->tokens_at = now;
			if (cs->tokens > rate)
				cs->tokens = rate;
		}
		if (cs->quota_on && stats_quota_left(cs) <= 0)
			r = CLOSE_QUOTA;
		else if (max && cs->active >= max)
			r = CLOSE_CLIENT_MAX_CONNS;
		else if (rate && cs->tokens < 1.0)
			r = CLOSE_CLIENT_RATE;
		if (r) {
			cs->refused++;
		} else {
			cs->tokens -= rate ? 1.0 : 0.0;
			cs->active++;
			cs->connections++;
			*slot = cs;
		}
	}
	pthread_mutex_unlock(&s->clients_lock);
	return r;
}

void stats_client_dns(struct fwd_stats *s, const struct net_ip *client, int64_t org, int hit, int error, uint64_t ms)
{
	struct client_stat *cs;

	pthread_mutex_lock(&s->clients_lock);
	if ((cs = client_slot(s, client, org))) {
		cs->dns_queries++;
		cs->dns_hits += (unsigned long)(hit != 0);
		cs->dns_errors += (unsigned long)(error != 0);
		cs->dns_ms_sum += ms;
	}
	pthread_mutex_unlock(&s->clients_lock);
}

void stats_client_udp(struct fwd_stats *s, const struct net_ip *client, int64_t org, uint64_t up, uint64_t down,
		      uint64_t bytes_up, uint64_t bytes_down, uint64_t dropped, long flows)
{
	struct client_stat *cs;

	pthread_mutex_lock(&s->clients_lock);
	if ((cs = client_slot(s, client, org))) {
		/* (never below 0: flows counted open while it had no counters close here) */
		cs->udp_flows =
		    flows < 0 && 0UL - (unsigned long)flows > cs->udp_flows ? 0 : cs->udp_flows + (unsigned long)flows;
		cs->udp_up += up;
		cs->udp_down += down;
		cs->udp_bytes_up += bytes_up;
		cs->udp_bytes_down += bytes_down;
		cs->udp_dropped += dropped;
		/* counted off its quota (the agent blocks it once pgw-api sees it is over) */
		stats_quota_charge(cs, bytes_up + bytes_down);
	}
	pthread_mutex_unlock(&s->clients_lock);
}

/* What the stats answer shows of a client. */
struct client_row {
	struct net_ip client;
	unsigned long v[16];
	long long org;
};

static void row_of(const struct client_stat *cs, struct client_row *r)
{
	const unsigned long v[16] = {cs->active,
				     cs->connections,
				     cs->failures,
				     __atomic_load_n(&cs->bytes_up, __ATOMIC_RELAXED),
				     __atomic_load_n(&cs->bytes_down, __ATOMIC_RELAXED),
				     cs->dns_queries,
				     cs->dns_hits,
				     cs->dns_errors,
				     cs->dns_ms_sum,
				     cs->udp_flows,
				     cs->udp_up,
				     cs->udp_down,
				     cs->udp_bytes_up,
				     cs->udp_bytes_down,
				     cs->udp_dropped,
				     cs->refused};

	r->client = cs->client;
	memcpy(r->v, v, sizeof(v));
	r->org = (long long)cs->org;
}

static void write_row(FILE *out, const struct client_row *r, int first)
{
	char ip[NET_IP_STR_MAX];
	const unsigned long *v = r->v;

	net_ip_str(&r->client, ip);
	fprintf(out,
		"%s\"%s\":{\"active\":%lu,\"connections\":%lu,\"failures\":%lu,\"bytes_up\":%lu,\"bytes_down\":"
		"%lu,\"dns_queries\":%lu,\"dns_cache_hits\":%lu,\"dns_errors\":%lu,\"dns_latency_ms_sum\":%lu,"
		"\"udp_flows\":%lu,\"udp_datagrams_up\":%lu,\"udp_datagrams_down\":%lu,\"udp_bytes_up\":%lu,"
		"\"udp_bytes_down\":%lu,\"udp_dropped\":%lu,\"refused\":%lu,\"org_id\":%lld}",
		first ? "" : ",", ip, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12],
		v[13], v[14], v[15], r->org);
}

/* "clients": {"192.168.2.10": {...}, ...} for every client with counters now (seen since start or
 * the reload that last found it mapped, each of CLIENT_STATS_MAX at most). Copied under the
 * lock and written after it: with tens of thousands of clients, every worker's new connections
 * and closes would otherwise wait for the whole text (without memory for the copy: written under
 * the lock, as it is). */
static void write_clients(struct fwd_stats *s, FILE *out)
{
	struct client_row *rows, one;
	size_t n = 0;

	fputs(",\"clients\":{", out);
	pthread_mutex_lock(&s->clients_lock);
	rows = s->clients_n ? malloc(s->clients_n * sizeof(*rows)) : NULL;
	for (size_t i = 0; i < s->clients_cap; i++) {
		if (!s->clients[i])
			continue;
		if (rows) {
			row_of(s->clients[i], &rows[n++]);
		} else {
			row_of(s->clients[i], &one);
			write_row(out, &one, n++ == 0);
		}
	}
	pthread_mutex_unlock(&s->clients_lock);
	for (size_t i = 0; rows && i < n; i++)
		write_row(out, &rows[i], i == 0);
	free(rows);
	fputc('}', out);
}

void stats_write(struct fwd_stats *s, const struct stats_header *h, FILE *out)
{
	char since[24] = "null";

	if (h->unread_since)
		snprintf(since, sizeof(since), "%lld", (long long)h->unread_since);
	fprintf(out,
		"{\"pid\":%d,\"started_ms\":%lld,\"workers\":%u,\"port\":%u,\"mappings\":%zu,\"mappings_unread\":%s,"
		"\"mappings_unread_since_ms\":%s,"
		"\"active\":%lu,\"accepted\":%lu,"
		"\"bytes_up\":%lu,\"bytes_down\":%lu,\"closes\":{",
		(int)getpid(), s->started_ms, h->workers, h->port, h->mappings, h->unread_since ? "true" : "false",
		since, atomic_load(&s->active), atomic_load(&s->accepted), atomic_load(&s->bytes_up),
		atomic_load(&s->bytes_down));
	for (int i = 0; i < CLOSE_MAX; i++)
		fprintf(out, "%s\"%s\":%lu", i ? "," : "", fwd_close_str(i), atomic_load(&s->closes[i]));
	fputs("},\"upstream_errors\":{", out);
	for (int i = UP_ERR_CONNECT_REFUSED; i < UP_RESULT_MAX; i++)
		fprintf(out, "%s\"%s\":%lu", i > UP_ERR_CONNECT_REFUSED ? "," : "", upstream_result_str(i),
			atomic_load(&s->upstream_errors[i]));
	fputs("},\"destination_failures\":{", out);
	for (int i = 0; i < DF_MAX; i++)
		fprintf(out, "%s\"%s\":%lu", i ? "," : "", fwd_destfail_str(i), atomic_load(&s->dest_failures[i]));
	fprintf(out, "},\"destination_reports\":%lu", atomic_load(&s->dest_reports));
	fprintf(out,
		",\"upstream_sessions\":{\"ready\":%lu,\"used\":%lu,\"missed\":%lu,\"stale\":%lu,\"retired\":%lu,"
		"\"closed_by_proxy\":%lu,\"failed\":%lu},\"early_data\":%lu",
		atomic_load(&s->sess_ready), atomic_load(&s->sess_used), atomic_load(&s->sess_missed),
		atomic_load(&s->sess_stale), atomic_load(&s->sess_retired), atomic_load(&s->sess_closed),
		atomic_load(&s->sess_failed), atomic_load(&s->early_data));
	write_clients(s, out);
	if (h->extra)
		h->extra(h->extra_arg, out);
	fputs("}\n", out);
}
