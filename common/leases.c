/* leases.c - see leases.h. */
#include "leases.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASES_FILE_MAX (4u << 20)
#define TOK_MAX		256

struct cursor {
	const char *p, *end;
};

static void name_clean(const char *in, size_t n, char out[LEASE_NAME_MAX])
{
	size_t w = 0;

	for (size_t i = 0; i < n && w + 1 < LEASE_NAME_MAX; i++) {
		unsigned char c = (unsigned char)in[i];
		if (isalnum(c) || c == '.' || c == '-' || c == '_')
			out[w++] = (char)c;
	}
	out[w] = '\0';
}

static int cmp_lease(const void *a, const void *b)
{
	return strcmp(((const struct lease *)a)->ip, ((const struct lease *)b)->ip);
}

/* Every lease as read, in order; the last of each address wins (a lease file appends), and an
 * ISC block whose binding state is not active takes the address away (gone). */
struct entry {
	struct lease l;
	size_t seq;
	int gone;
};

struct acc {
	struct entry *e;
	size_t n, cap;
};

static int put(struct acc *a, const struct lease *l, int gone)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 32;
		struct entry *p = realloc(a->e, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		a->e = p;
		a->cap = nc;
	}
	a->e[a->n].l = *l;
	a->e[a->n].seq = a->n;
	a->e[a->n].gone = gone;
	a->n++;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->l.ip, y->l.ip);

	return c ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int ip_canon(const char *s, size_t n, char out[NET_IP_STR_MAX])
{
	char buf[64];
	struct net_ip a;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (net_ip_parse(buf, &a) < 0)
		return -1;
	net_ip_str(&a, out);
	return 0;
}

static int mac_canon(const char *s, size_t n, char out[NET_MAC_STR_MAX])
{
	char buf[NET_MAC_STR_MAX];
	uint8_t m[6];

	if (n != 17)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (net_mac_parse(buf, m) < 0)
		return -1;
	net_mac_str(m, out);
	return 0;
}

/* ---- dnsmasq: one lease per line ---- */

static int parse_dnsmasq(const char *text, size_t len, struct acc *ls)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
		const char *f[5];
		size_t fl[5];
		int nf = 0;
		const char *q = p;

		while (q < le && nf < 5) {
			while (q < le && (*q == ' ' || *q == '\t' || *q == '\r'))
				q++;
			if (q >= le)
				break;
			f[nf] = q;
			while (q < le && *q != ' ' && *q != '\t' && *q != '\r')
				q++;
			fl[nf] = (size_t)(q - f[nf]);
			nf++;
		}
		if (nf >= 4 && isdigit((unsigned char)f[0][0])) {
			struct lease l;
			char num[24];
			memset(&l, 0, sizeof(l));
			if (fl[0] < sizeof(num) && ip_canon(f[2], fl[2], l.ip) == 0) {
				memcpy(num, f[0], fl[0]);
				num[fl[0]] = '\0';
				l.expires = strtoll(num, NULL, 10);
				if (mac_canon(f[1], fl[1], l.mac) < 0)
					l.mac[0] = '\0'; /* DHCPv6: an IAID */
				if (!(fl[3] == 1 && f[3][0] == '*'))
					name_clean(f[3], fl[3], l.hostname);
				if (put(ls, &l, 0) < 0)
					return -ENOMEM;
			}
		}
		p = nl ? nl + 1 : end;
	}
	return 0;
}

/* ---- ISC dhcpd.leases: blocks of statements ---- */

/* The next token: a word, a quoted string (without its quotes), or one of { } ;. 0 at the end. */
static size_t token(struct cursor *c, char out[TOK_MAX], int *quoted)
{
	size_t n = 0;

	*quoted = 0;
	for (;;) {
		while (c->p < c->end && isspace((unsigned char)*c->p))
			c->p++;
		if (c->p < c->end && *c->p == '#') { /* a comment to the end of the line */
			while (c->p < c->end && *c->p != '\n')
				c->p++;
			continue;
		}
		break;
	}
	if (c->p >= c->end)
		return 0;
	if (*c->p == '{' || *c->p == '}' || *c->p == ';') {
		out[0] = *c->p++;
		out[1] = '\0';
		return 1;
	}
	if (*c->p == '"') {
		*quoted = 1;
		c->p++;
		while (c->p < c->end && *c->p != '"') {
			if (*c->p == '\\' && c->p + 1 < c->end)
				c->p++;
			if (n + 1 < TOK_MAX)
				out[n++] = *c->p;
			c->p++;
		}
		if (c->p < c->end)
			c->p++;
		out[n] = '\0';
		return n ? n : 1; /* "" is a token too */
	}
	while (c->p < c->end && !isspace((unsigned char)*c->p) && *c->p != '{' && *c->p != '}' && *c->p != ';' &&
	       *c->p != '"') {
		if (n + 1 < TOK_MAX)
			out[n++] = *c->p;
		c->p++;
	}
	out[n] = '\0';
	return n;
}

/* "4 2026/12/03 10:00:00" (UTC), "epoch 1796292000" or "never" */
static int64_t isc_time(char words[][TOK_MAX], int n)
{
	struct tm tm;

	if (n >= 1 && strcmp(words[0], "never") == 0)
		return 0;
	if (n >= 2 && strcmp(words[0], "epoch") == 0)
		return strtoll(words[1], NULL, 10);
	memset(&tm, 0, sizeof(tm));
	if (n >= 3 && sscanf(words[1], "%d/%d/%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) == 3 &&
	    sscanf(words[2], "%d:%d:%d", &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 3 && tm.tm_year >= 1970 &&
	    tm.tm_year < 10000 && tm.tm_mon >= 1 && tm.tm_mon <= 12) {
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		return (int64_t)timegm(&tm);
	}
	return 0;
}

static int parse_isc(const char *text, size_t len, struct acc *ls)
{
	struct cursor c = {text, text + len};
	char tok[TOK_MAX];
	int q;

	while (token(&c, tok, &q)) {
		struct lease l;
		int depth = 0, active = 1, ok;
		char words[8][TOK_MAX];
		int nw = 0;

		if (q || strcmp(tok, "lease") != 0)
			continue;
		memset(&l, 0, sizeof(l));
		if (!token(&c, tok, &q))
			break;
		ok = ip_canon(tok, strlen(tok), l.ip) == 0;
		if (!token(&c, tok, &q) || strcmp(tok, "{") != 0)
			continue;
		depth = 1;
		/* statements up to the closing brace: words up to ';' */
		while (depth > 0 && token(&c, tok, &q)) {
			if (!q && strcmp(tok, "{") == 0) {
				depth++;
				nw = 0;
			} else if (!q && strcmp(tok, "}") == 0) {
				depth--;
				nw = 0;
			} else if (!q && strcmp(tok, ";") == 0) {
				if (depth == 1 && nw >= 3 && strcmp(words[0], "hardware") == 0 &&
				    strcmp(words[1], "ethernet") == 0 &&
				    mac_canon(words[2], strlen(words[2]), l.mac) < 0)
					l.mac[0] = '\0';
				else if (depth == 1 && nw >= 2 && strcmp(words[0], "client-hostname") == 0)
					name_clean(words[1], strlen(words[1]), l.hostname);
				else if (depth == 1 && nw >= 3 && strcmp(words[0], "binding") == 0 &&
					 strcmp(words[1], "state") == 0)
					active = strcmp(words[2], "active") == 0;
				else if (depth == 1 && nw >= 2 && strcmp(words[0], "ends") == 0)
					l.expires = isc_time(words + 1, nw - 1);
				nw = 0;
			} else if (nw < 8) {
				memcpy(words[nw++], tok, TOK_MAX);
			}
		}
		if (!ok)
			continue;
		if (put(ls, &l, !active) < 0)
			return -ENOMEM;
	}
	return 0;
}

int leases_parse(const char *text, size_t len, struct leases *out)
{
	struct acc a = {NULL, 0, 0};
	int r, isc = 0;

	memset(out, 0, sizeof(*out));
	/* ISC's file has "lease ADDR {" blocks from a line's start; dnsmasq's lines start with a number */
	for (const char *p = text; p && p + 6 <= text + len; p++) {
		p = memchr(p, 'l', (size_t)(text + len - p));
		if (!p || p + 6 > text + len)
			break;
		if (memcmp(p, "lease ", 6) == 0 && (p == text || p[-1] == '\n')) { /* at a line's start */
			isc = 1;
			break;
		}
	}
	r = isc ? parse_isc(text, len, &a) : parse_dnsmasq(text, len, &a);
	if (r == 0 && a.n && !(out->e = malloc(a.n * sizeof(*out->e))))
		r = -ENOMEM;
	if (r < 0) {
		free(a.e);
		return r;
	}
	if (a.n)
		qsort(a.e, a.n, sizeof(*a.e), cmp_entry);
	for (size_t i = 0; i < a.n; i++) /* the last of each address, unless that one is gone */
		if ((i + 1 == a.n || strcmp(a.e[i].l.ip, a.e[i + 1].l.ip) != 0) && !a.e[i].gone)
			out->e[out->n++] = a.e[i].l;
	free(a.e);
	return 0;
}

int leases_load(const char *path, struct leases *out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;
	int r;

	memset(out, 0, sizeof(*out));
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	buf = malloc(LEASES_FILE_MAX);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	n = fread(buf, 1, LEASES_FILE_MAX, f);
	fclose(f);
	r = leases_parse(buf, n, out);
	free(buf);
	if (r < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
	return r;
}

const struct lease *leases_find(const struct leases *ls, const char *ip)
{
	struct lease key;

	if (!ls || !ls->n || !ip || ip_canon(ip, strlen(ip), key.ip) < 0)
		return NULL;
	return bsearch(&key, ls->e, ls->n, sizeof(*ls->e), cmp_lease);
}

const struct lease *leases_find_mac(const struct leases *ls, const char *mac)
{
	char m[NET_MAC_STR_MAX];
	const struct lease *best = NULL;

	if (!ls || !mac || mac_canon(mac, strlen(mac), m) < 0)
		return NULL;
	for (size_t i = 0; i < ls->n; i++)
		if (strcmp(ls->e[i].mac, m) == 0 &&
		    (!best || (best->expires && (!ls->e[i].expires || ls->e[i].expires > best->expires))))
			best = &ls->e[i];
	return best;
}

void leases_free(struct leases *ls)
{
	free(ls->e);
	memset(ls, 0, sizeof(*ls));
}
