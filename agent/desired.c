/* desired.c - see desired.h. */
#include "desired.h"

#include "db.h"
#include "link.h"
#include "log.h"
#include "net.h"
#include "settings.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_ip(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct net_ip));
}

void addrset_sort(struct addrset *s)
{
	size_t w = 0;

	if (s->n)
		qsort(s->addr, s->n, sizeof(*s->addr), cmp_ip);
	for (size_t i = 0; i < s->n; i++)
		if (w == 0 || cmp_ip(&s->addr[w - 1], &s->addr[i]) != 0)
			s->addr[w++] = s->addr[i];
	s->n = w;
}

static int addrset_push(struct addrset *s, size_t *cap, const struct net_ip *a)
{
	if (s->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct net_ip *p = realloc(s->addr, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->addr = p;
		*cap = nc;
	}
	s->addr[s->n++] = *a;
	return 0;
}

int addrset_minus(const struct addrset *a, const struct addrset *b, struct addrset *out)
{
	size_t i = 0, j = 0;

	out->n = 0;
	out->addr = malloc((a->n ? a->n : 1) * sizeof(*out->addr));
	if (!out->addr)
		return -ENOMEM;
	while (i < a->n) {
		int c = j < b->n ? cmp_ip(&a->addr[i], &b->addr[j]) : -1;
		if (c < 0)
			out->addr[out->n++] = a->addr[i++];
		else if (c > 0)
			j++;
		else
			i++, j++;
	}
	return 0;
}

int addrset_union(const struct addrset *a, const struct addrset *b, struct addrset *out)
{
	size_t i = 0, j = 0;

	out->n = 0;
	out->addr = malloc((a->n + b->n ? a->n + b->n : 1) * sizeof(*out->addr));
	if (!out->addr)
		return -ENOMEM;
	while (i < a->n || j < b->n) {
		int c = i == a->n ? 1 : j == b->n ? -1 : cmp_ip(&a->addr[i], &b->addr[j]);
		out->addr[out->n++] = c <= 0 ? a->addr[i] : b->addr[j];
		i += c <= 0;
		j += c >= 0;
	}
	return 0;
}

int forget_add(struct forget_queue *q, const struct addrset *gone, uint64_t now_ms)
{
	struct forget_entry *u;
	size_t i = 0, j = 0, n = 0;

	if (gone->n == 0)
		return 0;
	if (!(u = malloc((q->n + gone->n) * sizeof(*u))))
		return -ENOMEM;
	while (i < q->n || j < gone->n) { /* two sorted sets merged; one that went again: now */
		int c = i == q->n ? 1 : j == gone->n ? -1 : cmp_ip(&q->e[i].addr, &gone->addr[j]);
		if (c < 0)
			u[n++] = q->e[i++];
		else
			u[n++] = (struct forget_entry){.addr = gone->addr[j++], .went_ms = now_ms};
		i += c == 0;
	}
	free(q->e);
	q->e = u;
	q->n = n;
	return 0;
}

long long forget_take(struct forget_queue *q, const struct addrset *active, uint64_t now_ms, uint64_t delay_ms,
		      struct addrset *out)
{
	size_t i, j = 0, keep = 0;
	uint64_t next = 0;

	out->n = 0;
	if (!(out->addr = malloc((q->n ? q->n : 1) * sizeof(*out->addr))))
		return -ENOMEM;
	for (i = 0; i < q->n; i++) {
		while (j < active->n && cmp_ip(&active->addr[j], &q->e[i].addr) < 0)
			j++;
		if (j < active->n && cmp_ip(&active->addr[j], &q->e[i].addr) == 0)
			continue; /* active again */
		if (q->e[i].went_ms + delay_ms <= now_ms) {
			out->addr[out->n++] = q->e[i].addr;
			continue;
		}
		if (!next || q->e[i].went_ms + delay_ms < next)
			next = q->e[i].went_ms + delay_ms;
		q->e[keep++] = q->e[i];
	}
	q->n = keep;
	if (keep == 0)
		forget_free(q);
	return next ? (long long)(next - now_ms) : 0;
}

void forget_free(struct forget_queue *q)
{
	free(q->e);
	memset(q, 0, sizeof(*q));
}

static int load_rules(sqlite3 *db, const struct pgw_config *cfg, struct desired_rules *r, char *err, size_t errlen)
{
	char v[SETTINGS_VALUE_MAX], why[600];
	struct net_cidr4 lan;

	memset(r, 0, sizeof(*r));
	settings_value(db, cfg, "lan_iface", v, sizeof(v));
	if (settings_validate("lan_iface", v, why, sizeof(why)) < 0)
		goto bad;
	memcpy(r->lan_iface, v, strlen(v)); /* validated: at most 15 bytes */
	settings_value(db, cfg, "wan_iface", v, sizeof(v));
	if (settings_validate("wan_iface", v, why, sizeof(why)) < 0)
		goto bad;
	memcpy(r->wan_iface, v, strlen(v));
	settings_value(db, cfg, "lan_cidr", v, sizeof(v));
	if (net_cidr4_parse(v, &lan) < 0) {
		snprintf(why, sizeof(why), "lan_cidr: '%s' is not an IPv4 network", v);
		goto bad;
	}
	r->lan_addr = lan.addr;
	r->lan_mask = lan.prefix ? 0xffffffffu << (32 - lan.prefix) : 0;
	settings_str(db, cfg, "dns_mode", v, sizeof(v));
	r->dns_local = strcmp(v, "local") == 0;
	r->dns_proxy = strcmp(v, "proxy") == 0;
	r->dns_port = cfg->dns_port;
	settings_str(db, cfg, "block_action", v, sizeof(v));
	r->block_drop = strcmp(v, "drop") == 0;
	settings_str(db, cfg, "forwarder_mode", v, sizeof(v));
	r->tproxy = strcmp(v, "tproxy") == 0;
	r->tproxy_port = cfg->tproxy_port;
	r->udp = settings_bool(db, cfg, "udp_relay");
	r->strict_output = settings_bool(db, cfg, "strict_output");
	if (r->strict_output) {
		struct passwd *pw = getpwnam(cfg->service_user);
		if (pw) {
			r->strict_uid = (uint32_t)pw->pw_uid;
		} else {
			log_error(
			    "strict_output: no user '%s' (PGW_SERVICE_USER): nothing on the gateway may reach the WAN",
			    cfg->service_user);
			r->strict_uid = 0xfffffffeu;
		}
	}
	r->forwarder_port = cfg->forwarder_port;
	r->api_port = cfg->api_port;
	settings_str(db, cfg, "api_allow", v, sizeof(v)); /* a bad value: "" (the LAN network only) */
	{
		int n = net_prefix_list_parse(v, r->api_allow, SETTINGS_PREFIXES_MAX);
		if (n <= 0) { /* the LAN network */
			net_ip_from4(lan.addr, &r->api_allow[0].addr);
			r->api_allow[0].len = (uint8_t)(96 + lan.prefix);
			n = 1;
		}
		r->n_api_allow = (uint8_t)n;
	}
	if (cfg->ha_peer[0] && net_ip_parse(cfg->ha_peer, &r->ha_peer.addr) == 0) {
		r->ha = 1;
		r->ha_peer.len = 128;
	}
	/* a name that matches nothing must not make the rules that use it match less */
	r->lan_missing = !link_present(r->lan_iface);
	r->wan_missing = !link_present(r->wan_iface);
	return 0;
bad:
	snprintf(err, errlen, "settings: %s", why);
	return -EINVAL;
}

static int cmp_ap(const void *a, const void *b)
{
	const struct addrport *x = a, *y = b;
	int c = memcmp(&x->addr, &y->addr, sizeof(x->addr));

	return c ? c : (int)x->port - (int)y->port;
}

/* Enabled proxies given as IPv4 or IPv6 addresses. Names are not resolved here: in strict mode the
 * gateway's own DNS would be blocked, so strict mode needs proxies by address. */
static int load_proxies(sqlite3 *db, struct proxyset *ps)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0, w = 0;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT host, port FROM proxies WHERE enabled = 1", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *host = (const char *)sqlite3_column_text(st, 0);
		struct net_ip a;

		if (!host || net_ip_parse(host, &a) < 0) {
			log_warnx("strict_output: proxy host '%s' is not an IP address; the gateway cannot reach it",
				  host ? host : "");
			continue;
		}
		if (ps->n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct addrport *p = realloc(ps->e, nc * sizeof(*p));
			if (!p) {
				sqlite3_finalize(st);
				return -ENOMEM;
			}
			ps->e = p;
			cap = nc;
		}
		ps->e[ps->n].addr = a;
		ps->e[ps->n].port = (uint16_t)sqlite3_column_int(st, 1);
		ps->n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) /* read in part: not a smaller set of proxies */
		return -EIO;
	if (ps->n)
		qsort(ps->e, ps->n, sizeof(*ps->e), cmp_ap);
	for (size_t i = 0; i < ps->n; i++)
		if (w == 0 || cmp_ap(&ps->e[w - 1], &ps->e[i]) != 0)
			ps->e[w++] = ps->e[i];
	ps->n = w;
	return 0;
}

static int cmp_binding(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct binding));
}

/* Every mapping with a MAC, enabled or not: an address that is bound stays bound while its
 * mapping is off, so that a host borrowing it is refused as early as ever. */
static int load_bindings(sqlite3 *db, struct bindset *bs)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT client_ip, mac FROM main.mappings WHERE mac != ''", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ip = (const char *)sqlite3_column_text(st, 0),
			   *mac = (const char *)sqlite3_column_text(st, 1);
		struct binding b;

		memset(&b, 0, sizeof(b));
		if (!ip || net_ip_parse(ip, &b.addr) < 0) {
			log_warnx("mapping with invalid client_ip '%s' ignored", ip ? ip : "");
			continue;
		}
		if (net_mac_parse(mac, b.mac) < 0) { /* (written by hand: the API refuses it) */
			log_warnx("mapping of '%s' with invalid MAC '%s': bound to no MAC, its traffic is dropped", ip,
				  mac ? mac : "");
			memset(b.mac, 0, sizeof(b.mac)); /* no client has 00:00:00:00:00:00: nothing matches */
		}
		if (bs->n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct binding *p = realloc(bs->e, nc * sizeof(*p));
			if (!p) {
				sqlite3_finalize(st);
				return -ENOMEM;
			}
			bs->e = p;
			cap = nc;
		}
		bs->e[bs->n++] = b;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -EIO;
	if (bs->n)
		qsort(bs->e, bs->n, sizeof(*bs->e), cmp_binding);
	return 0;
}

static int cmp_limit(const void *a, const void *b)
{
	return memcmp(&((const struct limit *)a)->addr, &((const struct limit *)b)->addr, sizeof(struct net_ip));
}

static int load_limits(sqlite3 *db, struct limitset *ls)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	if (sqlite3_prepare_v2(
		db, "SELECT client_ip, down_kbit, up_kbit, mac FROM main.mappings WHERE down_kbit > 0 OR up_kbit > 0",
		-1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ip = (const char *)sqlite3_column_text(st, 0);
		struct limit l;

		memset(&l, 0, sizeof(l));
		if (!ip || net_ip_parse(ip, &l.addr) < 0)
			continue;
		l.down_kbit = (uint32_t)sqlite3_column_int64(st, 1);
		l.up_kbit = (uint32_t)sqlite3_column_int64(st, 2);
		l.has_mac = net_mac_parse((const char *)sqlite3_column_text(st, 3), l.mac) == 0;
		if (ls->n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct limit *p = realloc(ls->e, nc * sizeof(*p));
			if (!p) {
				sqlite3_finalize(st);
				return -ENOMEM;
			}
			ls->e = p;
			cap = nc;
		}
		ls->e[ls->n++] = l;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -EIO;
	if (ls->n)
		qsort(ls->e, ls->n, sizeof(*ls->e), cmp_limit);
	return 0;
}

static int load_all(sqlite3 *db, const struct pgw_config *cfg, struct desired *d, char *err, size_t errlen);

/* One read transaction: every row from one snapshot, and a database that cannot be read fails the
 * load here, at its first read, instead of a setting read falling back to its default (which
 * could drop strict_output or widen api_allow for one rebuild); so does a setting whose own read
 * fails after that (a corrupt page, out of memory: settings_read_end). */
int desired_load(sqlite3 *db, const struct pgw_config *cfg, struct desired *d, char *err, size_t errlen)
{
	char why[256];
	int r;

	memset(d, 0, sizeof(*d));
	if (db_read_begin(db, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "db: %s", why);
		return -EIO;
	}
	settings_read_begin();
	r = load_all(db, cfg, d, err, errlen);
	if (r == 0 && settings_read_end() < 0) { /* a default stood in for what the DB says */
		snprintf(err, errlen, "db: a setting could not be read (its default is no answer for the rules)");
		desired_free(d);
		r = -EIO;
	}
	db_read_end(db);
	return r;
}

static int load_all(sqlite3 *db, const struct pgw_config *cfg, struct desired *d, char *err, size_t errlen)
{
	/* active: the rule lives in migration 0004 (0008, 0018: the proxy carrying the client); udp:
	 * 0013, and only SOCKS5 relays UDP */
	static const char *const sql =
	    "SELECT s.client_ip, s.active, s.active AND p.type = 'socks5' AND coalesce(h.udp, '') = 'yes' "
	    "FROM mapping_state s JOIN proxies p ON p.id = coalesce(s.carrying_proxy_id, s.proxy_id) LEFT JOIN "
	    "proxy_health h ON h.proxy_id = p.id";
	sqlite3_stmt *st = NULL;
	size_t cap_a = 0, cap_b = 0, cap_u = 0;
	int r, rc;

	memset(d, 0, sizeof(*d));
	r = load_rules(db, cfg, &d->rules, err, errlen);
	if (r < 0)
		return r;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "db: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ip = (const char *)sqlite3_column_text(st, 0);
		struct net_ip a;

		if (!ip || net_ip_parse(ip, &a) < 0) {
			log_warnx("mapping with invalid client_ip '%s' ignored", ip ? ip : "");
			continue;
		}
		r = sqlite3_column_int(st, 1) ? addrset_push(&d->active, &cap_a, &a)
					      : addrset_push(&d->blocked, &cap_b, &a);
		if (r == 0 && d->rules.udp && sqlite3_column_int(st, 2))
			r = addrset_push(&d->udp, &cap_u, &a);
		if (r < 0)
			break;
	}
	sqlite3_finalize(st);
	if (r < 0 || rc != SQLITE_DONE) {
		snprintf(err, errlen, "db: %s", r < 0 ? strerror(-r) : sqlite3_errmsg(db));
		desired_free(d);
		return r < 0 ? r : -EIO;
	}
	addrset_sort(&d->active);
	addrset_sort(&d->blocked);
	addrset_sort(&d->udp);
	if ((r = load_bindings(db, &d->bound)) < 0 || (r = load_limits(db, &d->limits)) < 0) {
		snprintf(err, errlen, "db: cannot read the MAC bindings or rate limits");
		desired_free(d);
		return r;
	}
	if (d->rules.strict_output && (r = load_proxies(db, &d->proxies)) < 0) {
		snprintf(err, errlen, "db: cannot read proxies");
		desired_free(d);
		return r;
	}
	return 0;
}

int desired_none(const struct pgw_config *cfg, struct desired *d, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	return load_rules(NULL, cfg, &d->rules, err, errlen);
}

void desired_free(struct desired *d)
{
	free(d->active.addr);
	free(d->blocked.addr);
	free(d->udp.addr);
	free(d->proxies.e);
	free(d->bound.e);
	free(d->limits.e);
	memset(d, 0, sizeof(*d));
}

int desired_rules_equal(const struct desired *a, const struct desired *b)
{
	return memcmp(&a->rules, &b->rules, sizeof(a->rules)) == 0 && a->proxies.n == b->proxies.n &&
	       (a->proxies.n == 0 || memcmp(a->proxies.e, b->proxies.e, a->proxies.n * sizeof(*a->proxies.e)) == 0) &&
	       a->bound.n == b->bound.n &&
	       (a->bound.n == 0 || memcmp(a->bound.e, b->bound.e, a->bound.n * sizeof(*a->bound.e)) == 0);
}

int set_delta_of(const struct desired *from, const struct desired *to, struct set_delta *d)
{
	memset(d, 0, sizeof(*d));
	if (addrset_minus(&to->active, &from->active, &d->add_active) < 0 ||
	    addrset_minus(&from->active, &to->active, &d->del_active) < 0 ||
	    addrset_minus(&to->blocked, &from->blocked, &d->add_blocked) < 0 ||
	    addrset_minus(&from->blocked, &to->blocked, &d->del_blocked) < 0 ||
	    addrset_minus(&to->udp, &from->udp, &d->add_udp) < 0 ||
	    addrset_minus(&from->udp, &to->udp, &d->del_udp) < 0) {
		set_delta_free(d);
		return -ENOMEM;
	}
	return (int)(d->add_active.n + d->del_active.n + d->add_blocked.n + d->del_blocked.n + d->add_udp.n +
		     d->del_udp.n);
}

void set_delta_free(struct set_delta *d)
{
	free(d->add_active.addr);
	free(d->del_active.addr);
	free(d->add_blocked.addr);
	free(d->del_blocked.addr);
	free(d->add_udp.addr);
	free(d->del_udp.addr);
	memset(d, 0, sizeof(*d));
}
