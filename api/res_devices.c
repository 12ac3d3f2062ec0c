/* res_devices.c - /api/v1/devices: the devices seen on the LAN (issue 19), from the gateway's
 * neighbour table (ARP and NDP on the LAN interface), the DHCP leases (setting dhcp_leases_file)
 * and the MAC binding's refusals (mac_spoof, written by pgw-agent), each with its name and what
 * the gateway does with it: mapped, unmapped (one click in the dashboard maps it) or
 * mac_mismatch (its address is bound to another MAC: it gets nothing). */
#include "resources.h"

#include "db.h"
#include "leases.h"
#include "log.h"
#include "mapping_rules.h"
#include "net.h"
#include "settings.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define DEVICES_MAX	4096
#define REFUSED_FRESH_S 600 /* a refusal this recent makes its MAC a device still there */

struct device {
	char ip[NET_IP_STR_MAX];
	char mac[NET_MAC_STR_MAX];
	const char *seen; /* neighbour | lease | refused */
	const char *nud;  /* the neighbour entry's state, or NULL */
};

struct devlist {
	struct device *d;
	size_t n, cap;
};

static void add(struct devlist *l, const char *ip, const char *mac, const char *seen, const char *nud)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->d[i].ip, ip) == 0 && strcmp(l->d[i].mac, mac) == 0)
			return; /* the first source wins: the neighbour table, then leases, then refusals */
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct device *p;
		if (l->n >= DEVICES_MAX || !(p = realloc(l->d, nc * sizeof(*p))))
			return;
		l->d = p;
		l->cap = nc;
	}
	snprintf(l->d[l->n].ip, sizeof(l->d[l->n].ip), "%s", ip);
	snprintf(l->d[l->n].mac, sizeof(l->d[l->n].mac), "%s", mac);
	l->d[l->n].seen = seen;
	l->d[l->n].nud = nud;
	l->n++;
}

static const char *nud_name(uint16_t s)
{
	return s & NUD_PERMANENT   ? "permanent"
	       : s & NUD_REACHABLE ? "reachable"
	       : s & NUD_STALE	   ? "stale"
	       : s & NUD_DELAY	   ? "delay"
	       : s & NUD_PROBE	   ? "probe"
				   : NULL;
}

struct neigh_ctx {
	struct devlist *l;
	int ifindex;
};

static int neigh_cb(const struct nlmsghdr *nlh, void *data)
{
	struct neigh_ctx *c = data;
	const struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *attr;
	const void *dst = NULL, *ll = NULL;
	size_t dlen = 0, llen = 0;
	const char *nud;
	struct net_ip a;
	char ip[NET_IP_STR_MAX], mac[NET_MAC_STR_MAX];

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*nd) || nlh->nlmsg_type != RTM_NEWNEIGH ||
	    nd->ndm_ifindex != c->ifindex || !(nud = nud_name(nd->ndm_state)))
		return MNL_CB_OK;
	mnl_attr_for_each(attr, nlh, sizeof(*nd))
	{
		if (mnl_attr_get_type(attr) == NDA_DST)
			dst = mnl_attr_get_payload(attr), dlen = mnl_attr_get_payload_len(attr);
		else if (mnl_attr_get_type(attr) == NDA_LLADDR)
			ll = mnl_attr_get_payload(attr), llen = mnl_attr_get_payload_len(attr);
	}
	if (!dst || !ll || llen != 6 || (nd->ndm_family == AF_INET ? dlen != 4 : dlen != 16))
		return MNL_CB_OK;
	memset(&a, 0, sizeof(a));
	if (dlen == 4) {
		const uint8_t *b = dst;
		net_ip_from4((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3], &a);
	} else {
		memcpy(a.a, dst, 16);
		if (a.a[0] == 0xfe && (a.a[1] & 0xc0) == 0x80)
			return MNL_CB_OK; /* link-local: not an address a mapping names */
	}
	net_ip_str(&a, ip);
	net_mac_str(ll, mac);
	add(c->l, ip, mac, "neighbour", nud);
	return MNL_CB_OK;
}

/* The LAN interface's neighbour entries (both families). 0, or -errno. */
static int neighbours(const char *ifname, struct devlist *l)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct neigh_ctx c = {l, (int)if_nametoindex(ifname)};
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct ndmsg *nd;
	uint32_t seq = (uint32_t)time(NULL);
	unsigned portid;
	int r;

	if (!c.ifindex)
		return -ENODEV;
	if (!(nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC)))
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		mnl_socket_close(nl);
		return r;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETNEIGH;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	nd->ndm_family = AF_UNSPEC;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		mnl_socket_close(nl);
		return r;
	}
	do {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			r = -errno;
			break;
		}
		r = mnl_cb_run(buf, (size_t)n, seq, portid, neigh_cb, &c);
	} while (r > 0);
	mnl_socket_close(nl);
	return r < 0 ? (errno ? -errno : -EIO) : 0;
}

/* Some organisation maps the address (not necessarily the caller's). */
static int mapped_by_anyone(sqlite3_stmt *any, const char *ip)
{
	sqlite3_reset(any);
	sqlite3_bind_text(any, 1, ip, -1, SQLITE_STATIC);
	return sqlite3_step(any) == SQLITE_ROW;
}

int res_devices(struct req *r, const char *const *seg, int nseg)
{
	char lan[SETTINGS_VALUE_MAX];
	struct devlist l = {NULL, 0, 0};
	struct leases ls;
	sqlite3 *db;
	sqlite3_stmt *st = NULL, *map = NULL, *any = NULL;
	json_t *items;
	time_t now = time(NULL);
	int nr;

	(void)seg;
	if (nseg != 0)
		return reply_error(r, 404, "not_found", "no such resource");
	if (!(db = read_only_start(r, NULL)))
		return MHD_YES;
	settings_value(db, r->api->cfg, "lan_iface", lan, sizeof(lan));
	nr = neighbours(lan, &l);
	api_leases(db, r->api->cfg, &ls);
	for (size_t i = 0; i < ls.n; i++)
		if (ls.e[i].mac[0] && (!ls.e[i].expires || ls.e[i].expires > now))
			add(&l, ls.e[i].ip, ls.e[i].mac, "lease", NULL);
	/* refusals: of the caller's organisation's bound clients only (the scoped view) */
	if (sqlite3_prepare_v2(db,
			       "SELECT x.client_ip, x.mac FROM main.mac_spoof x JOIN mapping_state s ON s.client_ip = "
			       "x.client_ip WHERE x.last_seen >= ?1 ORDER BY x.last_seen DESC",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)now - REFUSED_FRESH_S);
		while (sqlite3_step(st) == SQLITE_ROW)
			add(&l, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
			    "refused", NULL);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db,
			       "SELECT s.id, m.mac FROM mapping_state s JOIN main.mappings m ON m.id = s.id WHERE "
			       "s.client_ip = ?1",
			       -1, &map, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT 1 FROM main.mappings WHERE client_ip = ?1", -1, &any, NULL) != SQLITE_OK) {
		sqlite3_finalize(map);
		free(l.d);
		leases_free(&ls);
		return reply_db_error(r, db);
	}
	items = json_array();
	for (size_t i = 0; i < l.n; i++) {
		const struct device *d = &l.d[i];
		const struct lease *le = leases_find(&ls, d->ip);
		char canon[NET_IP_STR_MAX];
		const char *why, *state;
		json_int_t mid = 0;

		if (!le || strcmp(le->mac, d->mac) != 0)
			le = leases_find_mac(&ls, d->mac); /* the name goes with the device */
		sqlite3_reset(map);
		sqlite3_bind_text(map, 1, d->ip, -1, SQLITE_STATIC);
		if (sqlite3_step(map) == SQLITE_ROW) {
			const char *bound = (const char *)sqlite3_column_text(map, 1);
			mid = (json_int_t)sqlite3_column_int64(map, 0);
			state = bound && *bound && strcmp(bound, d->mac) != 0 ? "mac_mismatch" : "mapped";
		} else if (client_ip_check(db, r->api->cfg, d->ip, canon, &why) == 0 && !mapped_by_anyone(any, d->ip)) {
			state = "unmapped"; /* an address this organisation may map, mapped by nobody */
		} else {
			continue; /* another organisation's, or outside the networks a mapping may name */
		}
		json_array_append_new(items,
				      json_pack("{s:s, s:s, s:s?, s:s, s:o, s:s, s:s?}", "ip", d->ip, "mac", d->mac,
						"hostname", le && le->hostname[0] ? le->hostname : NULL, "state", state,
						"mapping_id", mid ? json_integer(mid) : json_null(), "seen", d->seen,
						"neighbour_state", d->nud));
	}
	sqlite3_finalize(map);
	sqlite3_finalize(any);
	free(l.d);
	leases_free(&ls);
	{
		json_t *out = json_pack("{s:I, s:o}", "total", (json_int_t)json_array_size(items), "items", items);
		if (nr < 0)
			json_object_set_new(out, "neighbours_error", json_string(strerror(-nr)));
		return reply_json(r, 200, out);
	}
}
