/* test_ruleset.c - table inet pgw without a kernel: the batch ruleset.c builds, decoded with
 * libnftnl into text. A golden file pins the whole ruleset (tests/unit/golden/; regenerate with
 * PGW_UPDATE_GOLDEN=1 and read the diff), and the fail-closed invariant of docs/SECURITY.md is
 * checked over a matrix of settings: the forward chain drops by policy and never accepts,
 * jumps or redirects, whatever the names, networks and sets say. */
#include "testlib.h"

#include "../../agent/batch.h"
#include "../../agent/ruleset.h"

#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

/* One line per message: "<kind> <what libnftnl prints>". Returns a malloc'd text. */
static char *decode(const struct batch *bt)
{
	size_t len, out_len = 0;
	const void *data = batch_data(bt, &len);
	const struct nlmsghdr *nlh = data;
	char *out = NULL, line[8192];
	FILE *f = open_memstream(&out, &out_len);
	int left = (int)len;

	assert_non_null(f);
	for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
		uint16_t type = NFNL_MSG_TYPE(nlh->nlmsg_type);

		line[0] = 0;
		if (nlh->nlmsg_type == NFNL_MSG_BATCH_BEGIN || nlh->nlmsg_type == NFNL_MSG_BATCH_END) {
			fprintf(f, "%s\n", nlh->nlmsg_type == NFNL_MSG_BATCH_BEGIN ? "batch begin" : "batch end");
			continue;
		}
		if (type == NFT_MSG_NEWTABLE || type == NFT_MSG_DELTABLE) {
			struct nftnl_table *t = nftnl_table_alloc();
			assert_int_equal(nftnl_table_nlmsg_parse(nlh, t), 0);
			nftnl_table_snprintf(line, sizeof(line), t, NFTNL_OUTPUT_DEFAULT, 0);
			fprintf(f, "%s %s\n", type == NFT_MSG_NEWTABLE ? "add table" : "delete table", line);
			nftnl_table_free(t);
		} else if (type == NFT_MSG_NEWCHAIN) {
			struct nftnl_chain *c = nftnl_chain_alloc();
			assert_int_equal(nftnl_chain_nlmsg_parse(nlh, c), 0);
			nftnl_chain_snprintf(line, sizeof(line), c, NFTNL_OUTPUT_DEFAULT, 0);
			fprintf(f, "add chain %s\n", line);
			nftnl_chain_free(c);
		} else if (type == NFT_MSG_NEWRULE) {
			struct nftnl_rule *r = nftnl_rule_alloc();
			assert_int_equal(nftnl_rule_nlmsg_parse(nlh, r), 0);
			nftnl_rule_snprintf(line, sizeof(line), r, NFTNL_OUTPUT_DEFAULT, 0);
			fprintf(f, "add rule %s\n", line);
			nftnl_rule_free(r);
		} else if (type == NFT_MSG_NEWSET) {
			struct nftnl_set *s = nftnl_set_alloc();
			assert_int_equal(nftnl_set_nlmsg_parse(nlh, s), 0);
			nftnl_set_snprintf(line, sizeof(line), s, NFTNL_OUTPUT_DEFAULT, 0);
			fprintf(f, "add set %s\n", line);
			nftnl_set_free(s);
		} else if (type == NFT_MSG_NEWSETELEM || type == NFT_MSG_DELSETELEM) {
			struct nftnl_set *s = nftnl_set_alloc();
			assert_int_equal(nftnl_set_elems_nlmsg_parse(nlh, s), 0);
			nftnl_set_snprintf(line, sizeof(line), s, NFTNL_OUTPUT_DEFAULT, 0);
			fprintf(f, "%s %s\n", type == NFT_MSG_NEWSETELEM ? "add elements" : "delete elements", line);
			nftnl_set_free(s);
		} else {
			fprintf(f, "message type %u\n", type);
		}
	}
	fclose(f);
	return out;
}

static void addrs(struct addrset *s, const char *const *ips, size_t n)
{
	s->addr = calloc(n ? n : 1, sizeof(*s->addr));
	s->n = n;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(net_ip_parse(ips[i], &s->addr[i]), 0);
}

/* The lab's gateway: ens19 / eth0, 192.168.2.0/24, two active and one blocked client. */
static void lab(struct desired *d)
{
	static const char *const active[] = {"192.168.2.10", "fd00:2::10"}, *const blocked[] = {"192.168.2.11"};

	memset(d, 0, sizeof(*d));
	memcpy(d->rules.lan_iface, "ens19", 5);
	memcpy(d->rules.wan_iface, "eth0", 4);
	d->rules.lan_addr = 0xc0a80200u;
	d->rules.lan_mask = 0xffffff00u;
	d->rules.forwarder_port = 12345;
	d->rules.tproxy_port = 12346;
	d->rules.dns_port = 15353;
	d->rules.api_port = 8080;
	addrs(&d->active, active, 2);
	addrs(&d->blocked, blocked, 1);
	addrs(&d->udp, active, 1); /* 192.168.2.10's proxy carries UDP */
	/* the API from the LAN network (api_allow empty) and from an IPv6 prefix */
	assert_int_equal(net_prefix_parse("192.168.2.0/24", &d->rules.api_allow[0]), 0);
	assert_int_equal(net_prefix_parse("fd00:2::/64", &d->rules.api_allow[1]), 0);
	d->rules.n_api_allow = 2;
}

static char *build(const struct desired *d)
{
	struct batch bt;
	char *text;

	assert_int_equal(batch_init(&bt, 1, 64), 0);
	ruleset_full(&bt, d);
	assert_int_equal(batch_end(&bt), 0);
	text = decode(&bt);
	batch_free(&bt);
	return text;
}

static void golden(const char *name, const char *text)
{
	char path[256], *want = NULL;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "tests/unit/golden/%s", name);
	if (getenv("PGW_UPDATE_GOLDEN")) { /* written, and not a pass: review the diff, run again without */
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(text, f);
		fclose(f);
		fail_msg("%s rewritten (PGW_UPDATE_GOLDEN): review `git diff` and run again without it", path);
	}
	f = fopen(path, "r");
	if (!f)
		fail_msg("%s missing (run the unit tests with PGW_UPDATE_GOLDEN=1 from the repository root)", path);
	assert_true(getdelim(&want, &len, '\0', f) >= 0);
	fclose(f);
	if (strcmp(want, text) != 0) {
		fprintf(stderr, "# %s differs; what was built:\n%s", path, text);
		fail_msg("the ruleset is not %s (PGW_UPDATE_GOLDEN=1 rewrites it: review the diff)", path);
	}
	free(want);
}

static void test_golden_redirect(void **state)
{
	struct desired d;
	char *text;

	(void)state;
	lab(&d);
	d.rules.dns_proxy = 1;
	d.rules.udp = 1;
	text = build(&d);
	golden("ruleset_redirect.txt", text);
	free(text);
	desired_free(&d);
}

static void test_golden_tproxy_strict(void **state)
{
	static const char *const proxies[] = {"198.51.100.10", "2001:db8:100::40"};
	struct desired d;
	char *text;

	(void)state;
	lab(&d);
	d.rules.tproxy = 1;
	d.rules.udp = 1;
	d.rules.strict_output = 1;
	d.rules.strict_uid = 999;
	d.rules.dns_local = 1;
	d.proxies.e = calloc(2, sizeof(*d.proxies.e));
	d.proxies.n = 2;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(net_ip_parse(proxies[i], &d.proxies.e[i].addr), 0);
		d.proxies.e[i].port = 1080;
	}
	text = build(&d);
	golden("ruleset_tproxy_strict.txt", text);
	free(text);
	desired_free(&d);
}

/* Each rule of chain (libnftnl prints "add rule inet pgw <chain>" and then one "  [ ... ]" line
 * per expression) as one block; bad() judges a block. -1 with the block in why, else the count. */
static int rules_of(const char *text, const char *chain, int (*bad)(const char *rule), char *why, size_t whylen)
{
	char head[64], rule[8192];
	size_t used = 0;
	int n = 0, in = 0;

	snprintf(head, sizeof(head), "add rule inet pgw %s", chain);
	for (const char *p = text;;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		int expr = len > 2 && p[0] == ' ' && p[1] == ' ' && p[2] == '[';

		if (in && !expr) { /* the rule ended */
			n++;
			if (bad && bad(rule)) {
				snprintf(why, whylen, "%s", rule);
				return -1;
			}
			in = 0;
		}
		if (!expr && len == strlen(head) && strncmp(p, head, len) == 0) {
			in = 1;
			used = (size_t)snprintf(rule, sizeof(rule), "%.*s", (int)len, p);
		} else if (in && used < sizeof(rule)) {
			used += (size_t)snprintf(rule + used, sizeof(rule) - used, "\n%.*s", (int)len, p);
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return n;
}

/* A forward rule may only refuse: no accept, no jump or goto, no NAT, no TPROXY. */
static int lets_through(const char *line)
{
	return strstr(line, "accept") || strstr(line, "jump") || strstr(line, "goto") || strstr(line, "redir") ||
	       strstr(line, "tproxy") || strstr(line, "return") || strstr(line, "queue");
}

/* A TPROXY rule marks only after tproxy: a packet no transparent socket took stays unmarked
 * (routed, refused in forward), never delivered to the gateway's own services. */
static int marks_before_tproxy(const char *line)
{
	const char *tp = strstr(line, "tproxy"), *mark = strstr(line, "meta set mark");

	return tp && (!mark || mark < tp);
}

/* Every redirect/TPROXY rule must look the client up in the active sets, but one: port 53 to the
 * resolver's port (15353 here), which answers any LAN device itself (refusing the unknown). */
static int redirects_without_active(const char *line)
{
	int dns = strstr(line, "cmp eq reg 1 0x00003500 ]") && strstr(line, "immediate reg 1 0x0000f93b ]") &&
		  strstr(line, "redir") && !strstr(line, "tproxy");
	return (strstr(line, "redir") || strstr(line, "tproxy")) && !strstr(line, "set active") &&
	       !strstr(line, "set udp") && !dns;
}

/* UDP to the relay: only from the udp sets (a subset of the active clients), never port 53 (the
 * resolver's) nor 443 (QUIC, refused), and only with udp_relay on. */
static int udp_rule_wrong(const char *line)
{
	const char *tp = strstr(line, "tproxy"), *mark = strstr(line, "meta set mark");

	if (!strstr(line, "cmp eq reg 1 0x00000011 ]")) /* not a UDP rule */
		return 0;
	return !strstr(line, "meta load iifname") || !strstr(line, "set udp") ||
	       !strstr(line, "cmp neq reg 1 0x00003500 ]") || !strstr(line, "cmp neq reg 1 0x0000bb01 ]") || !tp ||
	       !mark || mark < tp; /* marked only once a transparent socket took it */
}

static void test_invariant_over_settings(void **state)
{
	static const char *const names[] = {"ens19", "nope0", "", "eth0", "lo"};
	char why[8192] = "";
	int cases = 0;

	(void)state;
	for (unsigned v = 0; v < 256; v++) {
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
			struct desired d;
			char *text;

			lab(&d);
			memset(d.rules.lan_iface, 0, sizeof(d.rules.lan_iface));
			memcpy(d.rules.lan_iface, names[k], strlen(names[k]));
			d.rules.block_drop = v & 1;
			d.rules.tproxy = (v >> 1) & 1;
			d.rules.strict_output = (v >> 2) & 1;
			d.rules.dns_local = (v >> 3) & 1;
			d.rules.lan_missing = (v >> 4) & 1;
			d.rules.wan_missing = (v >> 5) & 1;
			d.rules.dns_proxy = (v >> 6) & 1;
			d.rules.udp = (v >> 7) & 1;
			if (k == 2) { /* and no clients at all, and a LAN network that holds nothing (the
				       * interface name "" and the flags above kept) */
				free(d.active.addr);
				free(d.blocked.addr);
				free(d.udp.addr);
				d.active.addr = d.blocked.addr = d.udp.addr = NULL;
				d.active.n = d.blocked.n = d.udp.n = 0;
				d.rules.lan_addr = 0x0a090900u;
			}
			text = build(&d);
			if (!strstr(text,
				    "add chain inet pgw forward use 0 type filter hook forward prio 0 policy drop"))
				fail_msg("case %u/%s: the forward chain does not drop by policy:\n%s", v, names[k],
					 text);
			if (rules_of(text, "forward", lets_through, why, sizeof(why)) < 6)
				fail_msg("case %u/%s: a forward rule lets something through (or too few rules): %s", v,
					 names[k], why);
			if (rules_of(text, "mangle_prerouting", redirects_without_active, why, sizeof(why)) < 0 ||
			    rules_of(text, "prerouting", redirects_without_active, why, sizeof(why)) < 0)
				fail_msg("case %u/%s: a redirect not limited to active clients: %s", v, names[k], why);
			{
				int n = rules_of(text, "mangle_prerouting", udp_rule_wrong, why, sizeof(why));
				if (n < 0 || (d.rules.udp && !strstr(text, "lookup reg 1 set udp4")))
					fail_msg("case %u/%s: a UDP TPROXY rule too wide: %s", v, names[k], why);
				if (rules_of(text, "mangle_prerouting", marks_before_tproxy, why, sizeof(why)) < 0)
					fail_msg("case %u/%s: a TPROXY rule marks before tproxy: %s", v, names[k], why);
				if (!d.rules.udp && strstr(text, "lookup reg 1 set udp"))
					fail_msg("case %u/%s: UDP relayed with udp_relay off", v, names[k]);
			}
			if (d.rules.dns_proxy != (strstr(text, "immediate reg 1 0x0000f93b ]") != NULL))
				fail_msg("case %u/%s: DNS %sredirected with dns_proxy %d", v, names[k],
					 d.rules.dns_proxy ? "not " : "", d.rules.dns_proxy);
			free(text);
			desired_free(&d);
			cases++;
		}
	}
	assert_int_equal(cases, 256 * 5);
}

/* Element updates: clients leave udp, then active, before anything is granted, in one batch. */
static void test_elements_order(void **state)
{
	static const char *const a[] = {"192.168.2.20"}, *const b[] = {"192.168.2.21"};
	struct set_delta d = {0};
	struct batch bt;
	char *text, *del, *add, *del_u, *add_u;

	(void)state;
	addrs(&d.add_active, a, 1);
	addrs(&d.del_active, b, 1);
	addrs(&d.add_blocked, b, 1);
	addrs(&d.add_udp, a, 1);
	addrs(&d.del_udp, b, 1);
	assert_int_equal(batch_init(&bt, 1, 4), 0);
	ruleset_elements(&bt, &d);
	assert_int_equal(batch_end(&bt), 0);
	text = decode(&bt);
	del = strstr(text, "delete elements active4 pgw");
	add = strstr(text, "add elements active4 pgw");
	del_u = strstr(text, "delete elements udp4 pgw");
	add_u = strstr(text, "add elements udp4 pgw");
	assert_non_null(del);
	assert_non_null(add);
	assert_non_null(del_u);
	assert_non_null(add_u);
	assert_true(del_u < del);
	assert_true(del < add);
	assert_true(add < add_u);
	assert_non_null(strstr(text, "add elements blocked4 pgw"));
	free(text);
	batch_free(&bt);
	set_delta_free(&d);
}

/* MAC binding: the sets and the mac_guard chain, only while some mapping has a MAC */
static void test_golden_macbind(void **state)
{
	static const char *const ips[] = {"192.168.2.10", "fd00:2::10"};
	static const uint8_t mac[6] = {0x02, 0x00, 0x5e, 0xaa, 0xbb, 0x0c};
	struct desired d;
	char *text, why[8192];

	(void)state;
	lab(&d);
	text = build(&d);
	assert_null(strstr(text, "mac_guard"));
	free(text);
	d.bound.e = calloc(2, sizeof(*d.bound.e));
	d.bound.n = 2;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(net_ip_parse(ips[i], &d.bound.e[i].addr), 0);
		memcpy(d.bound.e[i].mac, mac, 6);
	}
	text = build(&d);
	golden("ruleset_macbind.txt", text);
	/* three rules per family, none of them without a verdict */
	assert_int_equal(rules_of(text, "mac_guard", NULL, why, sizeof(why)), 6);
	free(text);
	desired_free(&d);
}

/* 20,000 IPv6 clients, each active, carried over UDP and bound to a MAC: the batch sized by
 * ruleset_full_elements holds the whole table (the count once left out udp and the bindings:
 * a table this size failed every full rebuild, "batch larger than its buffer") */
static void test_full_batch_fits(void **state)
{
	enum { N = 20000 };
	struct desired d;
	struct batch bt;

	(void)state;
	lab(&d);
	free(d.active.addr);
	free(d.udp.addr);
	d.active.addr = calloc(N, sizeof(*d.active.addr));
	d.udp.addr = calloc(N, sizeof(*d.udp.addr));
	d.bound.e = calloc(N, sizeof(*d.bound.e));
	assert_non_null(d.active.addr);
	assert_non_null(d.udp.addr);
	assert_non_null(d.bound.e);
	d.active.n = d.udp.n = d.bound.n = N;
	for (size_t i = 0; i < N; i++) {
		char ip[NET_IP_STR_MAX];
		snprintf(ip, sizeof(ip), "fd00:2::1:%zx", i);
		assert_int_equal(net_ip_parse(ip, &d.active.addr[i]), 0);
		d.udp.addr[i] = d.bound.e[i].addr = d.active.addr[i];
		memcpy(d.bound.e[i].mac, "\x02\x00\x00\x00\x00\x00", 6);
		d.bound.e[i].mac[4] = (uint8_t)(i >> 8), d.bound.e[i].mac[5] = (uint8_t)i;
	}
	assert_int_equal(batch_init(&bt, 1, ruleset_full_elements(&d)), 0);
	ruleset_full(&bt, &d);
	assert_int_equal(batch_end(&bt), 0);
	batch_free(&bt);
	desired_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden_redirect), cmocka_unit_test(test_golden_tproxy_strict),
	    cmocka_unit_test(test_golden_macbind),  cmocka_unit_test(test_invariant_over_settings),
	    cmocka_unit_test(test_elements_order),  cmocka_unit_test(test_full_batch_fits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
