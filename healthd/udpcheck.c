/* udpcheck.c - see udpcheck.h. One check per proxy at a time, non-blocking: TCP to the proxy,
 * greeting (and login), UDP ASSOCIATE with 0.0.0.0:0 (our UDP address is not known to it yet);
 * then a UDP socket sends one DNS query, wrapped in the RFC 1928 header, to the relay the reply
 * named (the proxy's own address when it names 0.0.0.0 or ::), and waits for the answer from
 * the target through the relay. The control connection stays open until the end: the relay
 * lives as long as it does. health_timeout for all of it. */
#include "udpcheck.h"

#include "log.h"
#include "random.h"
#include "settings.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct udpcheck {
	struct healthd *h;
	int64_t id;
	int tcp, udp;
	struct ev_handle *th, *uh, *timer;
	struct upstream_hs hs;
	struct dns_query q;
	uint8_t out[600];
	size_t out_len;
	int sent;
	char why[200];
	struct sockaddr_storage proxy; /* the address connected to (the target's may change meanwhile) */
};

static void uc_close(struct udpcheck *c)
{
	struct evloop *ev = c->h->d->ev;

	if (c->th)
		ev_del(ev, c->th);
	if (c->uh)
		ev_del(ev, c->uh);
	if (c->timer)
		ev_del(ev, c->timer);
	c->th = c->uh = c->timer = NULL;
	if (c->tcp >= 0)
		close(c->tcp);
	if (c->udp >= 0)
		close(c->udp);
	c->tcp = c->udp = -1;
	upstream_hs_wipe(&c->hs);
}

void udpcheck_cancel(struct target *t)
{
	if (!t->udp_check)
		return;
	uc_close(t->udp_check);
	free(t->udp_check);
	t->udp_check = NULL;
}

/* Record a verdict for t (stored; the agent and the forwarder told when it changed). */
static void verdict(struct healthd *h, struct target *t, int yes, const char *why)
{
	int v = yes ? 1 : 2;

	if (store_check(h, t->id, "UDP", "UPDATE proxy_health SET udp = ?2, udp_error = ?3 WHERE proxy_id = ?1",
			yes ? "yes" : "no", yes, why, -1) < 0)
		return;
	if (t->udp != v) {
		struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_HEALTH, .id = t->id};
		log_info("proxy %lld (%s): UDP %s%s%s", (long long)t->id, t->name, yes ? "yes" : "no", yes ? "" : ": ",
			 yes ? "" : why);
		notify_send(h->d->nt, "agent", &m);
		notify_send(h->d->nt, "forwarder", &m);
	}
	t->udp = v;
	h->api_dirty = 1;
}

static void done(struct udpcheck *c, int yes)
{
	struct healthd *h = c->h;
	struct target *t = healthd_find(h, c->id);

	uc_close(c);
	if (t && t->udp_check == c) {
		t->udp_check = NULL;
		verdict(h, t, yes, c->why);
	}
	free(c);
}

static void fail(struct udpcheck *c, const char *what, const char *detail)
{
	snprintf(c->why, sizeof(c->why), "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
	done(c, 0);
}

static void on_udp(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct udpcheck *c = arg;
	uint8_t buf[2048];
	struct sockaddr_storage from;
	struct dns_answer a;
	size_t off;
	ssize_t n;
	int r;

	(void)ev, (void)events;
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			fail(c, "the relay", strerror(errno)); /* e.g. ICMP port unreachable: no relay there */
		return;
	}
	r = socks5_udp_parse(buf, (size_t)n, &from, &off);
	if (r < 0 || net_sa_len(&from) != net_sa_len(&c->h->udp_target) ||
	    memcmp(&from, &c->h->udp_target, net_sa_len(&from)) != 0)
		return; /* not from the relay's far side as asked: ignored (the timeout decides) */
	if (dns_parse_answer(buf + off, (size_t)n - off, &c->q, &a) < 0 || a.id != c->q.id)
		return;
	done(c, 1);
}

static void on_tcp(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct udpcheck *c = arg;
	struct healthd *h = c->h;
	struct target *t = healthd_find(h, c->id);
	struct sockaddr_storage relay;
	uint32_t want = 0;
	enum upstream_result r;
	int k;

	(void)ev;
	if (c->sent) { /* the association's life: its end before the answer is a failure */
		char b[64];
		if ((events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) || recv(fd, b, sizeof(b), MSG_DONTWAIT) == 0)
			fail(c, "the proxy closed the UDP association", NULL);
		return;
	}
	r = upstream_hs_step(&c->hs, fd, &want);
	if (r == UP_IN_PROGRESS) {
		ev_mod_fd(h->d->ev, c->th, want);
		return;
	}
	if (r != UP_OK || !t) {
		char rep[48];
		snprintf(rep, sizeof(rep), "%s%s", upstream_result_str(r),
			 r == UP_ERR_PROXY_REFUSED && c->hs.detail == 7 ? " (command not supported)" : "");
		fail(c, "UDP ASSOCIATE", rep);
		return;
	}
	if (socks5_udp_relay(&c->hs.bound, &c->proxy, &relay) < 0) {
		fail(c, "UDP ASSOCIATE", "no relay address in the reply");
		return;
	}
	if (!net_sa_same_host(&relay, &c->proxy)) { /* as the forwarder: elsewhere, not at the gateway or the LAN */
		const char *why = net_dest_refused(&relay, &h->params.lan);
		if (why) {
			char rep[96];
			snprintf(rep, sizeof(rep), "the relay address named is %s", why);
			fail(c, "UDP ASSOCIATE", rep);
			return;
		}
	}
	c->udp = socket(relay.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->udp < 0 || connect(c->udp, (struct sockaddr *)&relay, net_sa_len(&relay)) < 0) {
		fail(c, "cannot reach the UDP relay", strerror(errno));
		return;
	}
	k = socks5_udp_header(c->out, sizeof(c->out), &h->udp_target);
	if (k < 0) {
		fail(c, "udp_check", "not an address");
		return;
	}
	{
		uint16_t id;
		int n;
		if (random_bytes(&id, sizeof(id)) < 0) {
			fail(c, "no random query id", strerror(errno));
			return;
		}
		n = dns_build_query(id, h->dns_name, 1, c->out + k, sizeof(c->out) - (size_t)k);
		if (n < 0 || dns_parse_query(c->out + k, (size_t)n, &c->q) < 0) {
			fail(c, "dns_check_name", "cannot be asked");
			return;
		}
		c->out_len = (size_t)k + (size_t)n;
	}
	c->uh = ev_add_fd(h->d->ev, c->udp, EPOLLIN, on_udp, c);
	if (!c->uh || send(c->udp, c->out, c->out_len, 0) < 0) {
		fail(c, "cannot send through the UDP relay", strerror(errno));
		return;
	}
	c->sent = 1;
	ev_mod_fd(h->d->ev, c->th, EPOLLRDHUP);
}

static void on_timeout(struct evloop *ev, void *arg)
{
	struct udpcheck *c = arg;

	(void)ev;
	fail(c, c->sent ? "no answer through the UDP relay" : "timed out in UDP ASSOCIATE", NULL);
}

void udpcheck_start(struct healthd *h, struct target *t)
{
	struct upstream_target any;
	struct udpcheck *c;

	if (t->udp_check || !t->addr_ok)
		return;
	if (t->type != UPSTREAM_SOCKS5) { /* HTTP CONNECT carries no UDP */
		if (t->udp != 2)
			verdict(h, t, 0, "HTTP CONNECT proxies carry no UDP");
		return;
	}
	if (!h->udp_target_ok || !(c = calloc(1, sizeof(*c))))
		return;
	c->h = h;
	c->id = t->id;
	c->udp = -1;
	memset(&any, 0, sizeof(any));
	any.addr.ss_family = AF_INET; /* 0.0.0.0:0: "from wherever I send" */
	upstream_hs_init(&c->hs, UPSTREAM_SOCKS5, &any, t->user, t->pass);
	c->hs.cmd = SOCKS5_CMD_UDP_ASSOCIATE;
	c->proxy = t->addr;
	c->tcp = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	t->udp_check = c;
	if (c->tcp < 0 ||
	    (connect(c->tcp, (struct sockaddr *)&t->addr, net_sa_len(&t->addr)) < 0 && errno != EINPROGRESS)) {
		fail(c, "cannot connect to the proxy", strerror(errno));
		return;
	}
	c->th = ev_add_fd(h->d->ev, c->tcp, EPOLLOUT, on_tcp, c);
	c->timer = ev_add_timer(h->d->ev, h->params.timeout_ms, 0, on_timeout, c);
	if (!c->th || !c->timer)
		fail(c, "out of memory", NULL);
}

void udpcheck_use_settings(struct healthd *h, const struct health_settings *s)
{
	const char *v = s->udp_check;
	char host[256];
	uint16_t port;

	/* resolved again only when it changed (or did not resolve): a name is looked up on the loop,
	 * and this runs at every change of any proxy or setting */
	if (h->udp_target_ok && strcmp(v, h->udp_check_val) == 0)
		return;
	snprintf(h->udp_check_val, sizeof(h->udp_check_val), "%s", v);
	h->udp_target_ok =
	    net_hostport_parse(v, host, sizeof(host), &port) == 0 && net_resolve(host, port, &h->udp_target) == 0;
	if (!h->udp_target_ok)
		log_error("udp_check '%s' is not usable: no proxy will be found to carry UDP", v);
}
