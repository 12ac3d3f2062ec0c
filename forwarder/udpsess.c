/* udpsess.c - the UDP relay's sessions and flows (see udprelay.c): the association with the
 * client's proxy, datagrams up through the relay and back to the client, timeouts and
 * revalidation. Runs on the relay's thread only. */
#include "udprelay_int.h"

#include "log.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static unsigned bucket_of(const struct net_ip *a)
{
	uint32_t h = net_ip_hash(a);

	return (h ^ (h >> 16)) & (U_BUCKETS - 1);
}

static unsigned sess_bucket(const struct sockaddr_storage *src)
{
	struct net_ip a;

	net_ip_from_sa(src, &a);
	return (bucket_of(&a) ^ (net_sa_port(src) * 40503u >> 6)) & (U_BUCKETS - 1);
}

struct usess *sess_find(struct udprelay *r, const struct sockaddr_storage *src)
{
	for (struct usess *s = r->bucket[sess_bucket(src)]; s; s = s->hnext)
		if (sa_eq(&s->src, src))
			return s;
	return NULL;
}

struct uclient *client_get(struct udprelay *r, const struct net_ip *ip, uint64_t now, int create)
{
	unsigned b = bucket_of(ip);
	struct uclient *c;

	for (c = r->clients[b]; c; c = c->hnext)
		if (memcmp(&c->ip, ip, sizeof(*ip)) == 0)
			return c;
	if (!create || !(c = calloc(1, sizeof(*c))))
		return NULL;
	c->ip = *ip;
	c->tok_ms = now;
	c->tokens = -1; /* filled by the first datagram (the limit is the session's) */
	c->hnext = r->clients[b];
	r->clients[b] = c;
	return c;
}

/* Clients' drops before any session into the stats; clients with no session left whose backoff
 * is over freed. */
static void clients_gc(struct udprelay *r, uint64_t now, int all)
{
	for (unsigned b = 0; b < U_BUCKETS; b++) {
		struct uclient **pp = &r->clients[b], *c;
		while ((c = *pp)) {
			if (c->n_drop) {
				stats_client_udp(&r->sh->stats, &c->ip, c->org, 0, 0, 0, 0, c->n_drop, 0);
				c->n_drop = 0;
			}
			if (c->n_sessions == 0 && (all || now >= c->retry_at)) {
				*pp = c->hnext;
				free(c);
			} else {
				pp = &c->hnext;
			}
		}
	}
}

static void flow_free(struct udprelay *r, struct usess *s, struct uflow *f)
{
	if (f->unsolicited)
		s->n_unsolicited--;
	close(f->fd);
	free(f);
	s->n_flows--;
	s->c->n_flows--;
	atomic_fetch_sub(&r->n_flows, 1);
}

static void drop_pending(struct udprelay *r, struct usess *s)
{
	while (s->pend) {
		struct upend *p = s->pend;
		s->pend = p->next;
		free(p);
		udp_drop(r, s, UD_NO_SESSION);
	}
	s->pend_tail = &s->pend;
	s->n_pend = 0;
	s->pend_bytes = 0;
}

/* Close the proxy side and every flow; the session stays (failed) or goes (sess_free). */
static void sess_close_io(struct udprelay *r, struct usess *s)
{
	if (s->ch)
		ev_del(r->ev, s->ch);
	if (s->uh)
		ev_del(r->ev, s->uh);
	s->ch = s->uh = NULL;
	if (s->ctl >= 0)
		close(s->ctl);
	if (s->ufd >= 0)
		close(s->ufd);
	s->ctl = s->ufd = -1;
	if (s->hs) {
		upstream_hs_wipe(s->hs);
		free(s->hs);
		s->hs = NULL;
	}
	while (s->flows) {
		struct uflow *f = s->flows;
		s->flows = f->next;
		flow_free(r, s, f);
	}
	drop_pending(r, s);
}

static const char *end_text(enum uend why)
{
	return why == UE_PROXY_CLOSED ? "the proxy closed its control connection"
	       : why == UE_REVOKED    ? "revoked: the client may no longer use it"
	       : why == UE_IDLE	      ? "idle"
	       : why == UE_FAILED     ? "failed"
				      : "shutdown";
}

void sess_free(struct udprelay *r, struct usess *s, enum uend why)
{
	struct usess **pp = &r->bucket[sess_bucket(&s->src)];
	char ip[NET_IP_STR_MAX];

	atomic_fetch_add(&r->ends[why], 1);
	if (why != UE_FAILED) {
		net_ip_str(&s->map.client, ip);
		log_info("udp: client=%s port=%u proxy=%lld association closed (%s)", ip, net_sa_port(&s->src),
			 (long long)s->map.proxy_id, end_text(why));
	}
	if (s->state == US_CONNECTING)
		s->c->n_connecting--;
	sess_close_io(r, s);
	sess_flush(r, s);
	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	if (s->prev)
		s->prev->next = s->next;
	else
		r->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (s->cprev)
		s->cprev->cnext = s->cnext;
	else
		s->c->sessions = s->cnext;
	if (s->cnext)
		s->cnext->cprev = s->cprev;
	s->c->n_sessions--;
	atomic_fetch_sub(&r->n_sessions, 1);
	explicit_bzero(s->map.user, sizeof(s->map.user));
	explicit_bzero(s->map.pass, sizeof(s->map.pass));
	free(s);
}

/* The association could not be set up, or broke: the session goes, and the client's datagrams
 * that would need a new one are dropped for U_RETRY_MS (no connection storm to a dead proxy). */
static void sess_fail(struct udprelay *r, struct usess *s, const char *why)
{
	char ip[NET_IP_STR_MAX];

	net_ip_str(&s->map.client, ip);
	log_info("udp: client=%s port=%u proxy=%lld association failed: %s", ip, net_sa_port(&s->src),
		 (long long)s->map.proxy_id, why);
	s->new_failure++;
	s->c->retry_at = ev_now_ms() + U_RETRY_MS;
	sess_free(r, s, UE_FAILED);
}

static void on_ctl(struct evloop *ev, int fd, uint32_t events, void *arg);

struct usess *sess_new(struct udprelay *r, struct uclient *c, const struct sockaddr_storage *src,
		       const struct fwd_entry *e, const struct fwd_limits *l, uint64_t now)
{
	struct usess *s = calloc(1, sizeof(*s));
	struct upstream_target any;
	unsigned b;

	if (!s) {
		c->retry_at = now + U_RETRY_MS;
		return NULL;
	}
	s->r = r;
	s->c = c;
	s->src = *src;
	s->map = *e;
	s->lim = *l;
	s->ctl = s->ufd = -1;
	s->pend_tail = &s->pend;
	s->last = now;
	s->deadline = now + l->connect_timeout_ms;
	s->new_session = 1;
	s->state = US_CONNECTING;
	b = sess_bucket(src);
	s->hnext = r->bucket[b];
	r->bucket[b] = s;
	s->next = r->sessions;
	if (r->sessions)
		r->sessions->prev = s;
	r->sessions = s;
	s->cnext = c->sessions;
	if (c->sessions)
		c->sessions->cprev = s;
	c->sessions = s;
	c->n_sessions++;
	c->n_connecting++;
	atomic_fetch_add(&r->n_sessions, 1);
	atomic_fetch_add(&r->opened, 1);
	memset(&any, 0, sizeof(any));
	any.addr.ss_family = AF_INET; /* 0.0.0.0:0: the address we send from is not known to it yet */
	s->hs = malloc(sizeof(*s->hs));
	s->ctl = socket(e->proxy.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!s->hs || s->ctl < 0) {
		sess_fail(r, s, "out of resources");
		return NULL;
	}
	upstream_hs_init(s->hs, UPSTREAM_SOCKS5, &any, s->map.user, s->map.pass);
	s->hs->cmd = SOCKS5_CMD_UDP_ASSOCIATE;
	if ((connect(s->ctl, (const struct sockaddr *)&e->proxy, net_sa_len(&e->proxy)) < 0 && errno != EINPROGRESS) ||
	    !(s->ch = ev_add_fd(r->ev, s->ctl, EPOLLOUT, on_ctl, s))) {
		sess_fail(r, s, strerror(errno));
		return NULL;
	}
	return s;
}

/* Wrap dst's header around the data and send it to the relay. */
void send_up(struct udprelay *r, struct usess *s, const struct sockaddr_storage *dst, const uint8_t *data, size_t len)
{
	uint8_t hdr[U_HDR_MAX];
	int h = socks5_udp_header(hdr, sizeof(hdr), dst);
	struct iovec iov[2] = {{.iov_base = hdr, .iov_len = (size_t)(h > 0 ? h : 0)},
			       {.iov_base = (void *)data, .iov_len = len}};
	struct msghdr mh = {
	    .msg_name = &s->relay, .msg_namelen = net_sa_len(&s->relay), .msg_iov = iov, .msg_iovlen = 2};

	if (h < 0 || sendmsg(s->ufd, &mh, MSG_DONTWAIT) < 0) {
		udp_drop(r, s, UD_SEND);
		return;
	}
	s->dg_up++;
	s->b_up += len;
	atomic_fetch_add(&r->dg_up, 1);
	atomic_fetch_add(&r->b_up, len);
}

void sess_queue(struct udprelay *r, struct usess *s, const struct sockaddr_storage *dst, const uint8_t *data,
		size_t len)
{
	struct upend *p;

	if (s->n_pend >= U_QUEUE || s->pend_bytes + len > U_QUEUE_BYTES || !(p = malloc(sizeof(*p) + len))) {
		udp_drop(r, s, UD_QUEUE_FULL);
		return;
	}
	p->next = NULL;
	p->dst = *dst;
	p->len = len;
	memcpy(p->data, data, len);
	*s->pend_tail = p;
	s->pend_tail = &p->next;
	s->n_pend++;
	s->pend_bytes += len;
}

/* A socket bound to remote (a foreign address: IP_TRANSPARENT, never one of the gateway's own:
 * a transparent socket there would take that address's traffic from the gateway's own
 * services; checked before) to answer the client from; -1 on error. */
static int reply_socket(const struct sockaddr_storage *remote)
{
	int one = 1, fd;

	fd = socket(remote->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if ((remote->ss_family == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
					   : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one))) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)remote, net_sa_len(remote)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Flows made for replies from sources the client never sent to (full cone): at most a quarter of
 * the client's flows a session, and they give way to the client's own. A host that learnt the
 * proxy's relay address could otherwise send from udp_client_flows ports and keep the client's
 * budget full: every new destination and socket of the client refused. */
static unsigned unsolicited_max(const struct usess *s)
{
	return s->lim.udp_client_flows / 4 ? s->lim.udp_client_flows / 4 : 1;
}

/* Close the unsolicited flow heard from least recently of session only, or of all c's sessions
 * (only NULL): 1 when one went. */
static int flow_evict(struct udprelay *r, struct uclient *c, struct usess *only, uint64_t now)
{
	struct usess *vs = NULL;
	struct uflow **vp = NULL, *f;

	for (struct usess *s = only ? only : c->sessions; s; s = only ? NULL : s->cnext)
		for (struct uflow **pp = &s->flows; (f = *pp); pp = &f->next)
			if (f->unsolicited && (!vp || f->last < (*vp)->last)) {
				vp = pp;
				vs = s;
			}
	if (!vp)
		return 0;
	f = *vp;
	*vp = f->next;
	flow_free(r, vs, f);
	if (!vs->flows && !vs->empty_since)
		vs->empty_since = now;
	return 1;
}

int flow_unsolicited_any(const struct uclient *c)
{
	for (const struct usess *s = c->sessions; s; s = s->cnext)
		if (s->n_unsolicited)
			return 1;
	return 0;
}

static struct uflow *flow_new(struct udprelay *r, struct usess *s, const struct sockaddr_storage *remote, uint64_t now,
			      int not_local)
{
	struct uflow *f;

	if (s->c->n_flows >= s->lim.udp_client_flows && !flow_evict(r, s->c, NULL, now)) {
		udp_drop(r, s, UD_FLOWS);
		return NULL;
	}
	if (!not_local && udp_flow_refused(r, remote, &s->lim, 0, now)) {
		udp_drop(r, s, UD_NOT_ROUTABLE);
		return NULL;
	}
	if (!(f = calloc(1, sizeof(*f))) || (f->fd = reply_socket(remote)) < 0) {
		udp_drop(r, s, UD_SEND);
		free(f);
		return NULL;
	}
	f->remote = *remote;
	f->last = now;
	f->own_gen = r->own_gen;
	f->next = s->flows;
	s->flows = f;
	s->n_flows++;
	s->c->n_flows++;
	atomic_fetch_add(&r->n_flows, 1);
	return f;
}

/* The flow *pp still answers from a foreign address: judged again after the kernel said an
 * address may have become the gateway's own (r->own_gen: an HA address taken over, one added to
 * the WAN), so such a flow goes at its next datagram, and its transparent socket with it (bound
 * there, it would take that address's datagrams from the gateway's own services). Only an
 * address found to be the gateway's ends a flow: one whose lookup fails now stays (a new flow
 * there is refused). 0: it went (unlinked, freed, the datagram counted as dropped). */
static int flow_foreign(struct udprelay *r, struct usess *s, struct uflow **pp, uint64_t now)
{
	struct uflow *f = *pp;

	if (f->own_gen == r->own_gen)
		return 1;
	f->own_gen = r->own_gen;
	/* (the verdict table first: one lookup an address, however many flows go there) */
	if (!udp_flow_refused(r, &f->remote, &s->lim, 0, now) || net_addr_own(&f->remote) != 1)
		return 1;
	*pp = f->next;
	flow_free(r, s, f);
	if (!s->flows && !s->empty_since)
		s->empty_since = now;
	udp_drop(r, s, UD_NOT_ROUTABLE);
	return 0;
}

struct uflow *flow_get(struct udprelay *r, struct usess *s, const struct sockaddr_storage *dst, uint64_t now,
		       int not_local)
{
	struct uflow **pp, *f;

	for (pp = &s->flows; (f = *pp); pp = &f->next)
		if (sa_eq(&f->remote, dst)) {
			if (!flow_foreign(r, s, pp, now))
				return NULL;
			if (f->unsolicited) { /* the client sends there now: its own */
				f->unsolicited = 0;
				s->n_unsolicited--;
			}
			*pp = f->next; /* to the front: the most recently used */
			f->next = s->flows;
			s->flows = f;
			f->last = now;
			return f;
		}
	return flow_new(r, s, dst, now, not_local);
}

/* The flow a reply from remote goes to: the one that sent there, else (full cone: whoever the
 * client's socket has shown its address to may answer) a new one from remote. */
static struct uflow *flow_for_reply(struct udprelay *r, struct usess *s, const struct sockaddr_storage *remote,
				    uint64_t now)
{
	struct uflow *f;

	for (struct uflow **pp = &s->flows; (f = *pp); pp = &f->next)
		if (sa_eq(&f->remote, remote)) {
			if (!flow_foreign(r, s, pp, now))
				return NULL;
			f->last = now;
			return f;
		}
	if (remote->ss_family != s->src.ss_family) { /* no way to answer an IPv4 client from IPv6 */
		udp_drop(r, s, UD_BAD_HEADER);
		return NULL;
	}
	/* a source the relay names: one we could send to, and where a proxy could be (not the
	 * gateway's own, not a network routed behind the LAN: datagrams "from" there are not the
	 * proxy's to make) */
	if (!udp_routable(remote, &s->lim) || udp_flow_refused(r, remote, &s->lim, 1, now)) {
		udp_drop(r, s, UD_NOT_ROUTABLE);
		return NULL;
	}
	if (s->n_unsolicited >= unsolicited_max(s)) /* the oldest of them makes room */
		flow_evict(r, s->c, s, now);
	if (!(f = flow_new(r, s, remote, now, 1)))
		return NULL;
	f->unsolicited = 1;
	s->n_unsolicited++;
	return f;
}

static void on_relay(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct usess *s = arg;
	struct udprelay *r = s->r;
	uint64_t now = ev_now_ms();

	(void)ev, (void)events;
	for (int round = 0; round < U_BATCH / U_MMSG; round++) {
		int n = udp_recv_batch(r, fd, 0);

		for (int i = 0; i < n; i++) {
			const uint8_t *buf = r->iov[i].iov_base;
			size_t len = r->mm[i].msg_len, off;
			struct sockaddr_storage remote;
			struct uflow *f;
			int k;

			if (!sa_eq(&r->from[i], &s->relay)) {
				udp_drop(r, s, UD_BAD_SOURCE);
				continue;
			}
			k = socks5_udp_parse(buf, len, &remote, &off);
			if (k < 0) {
				udp_drop(r, s, k == -EPROTONOSUPPORT ? UD_FRAGMENT : UD_BAD_HEADER);
				continue;
			}
			if (!(f = flow_for_reply(r, s, &remote, now)))
				continue;
			if (sendto(f->fd, buf + off, len - off, MSG_DONTWAIT, (struct sockaddr *)&s->src,
				   net_sa_len(&s->src)) < 0) {
				udp_drop(r, s, UD_SEND);
				continue;
			}
			s->last = now;
			s->dg_down++;
			s->b_down += len - off;
			atomic_fetch_add(&r->dg_down, 1);
			atomic_fetch_add(&r->b_down, len - off);
		}
		if (n < U_MMSG)
			break;
	}
}

/* The handshake done: the relay's address, a socket to talk to it, the queue sent. */
static void sess_ready(struct udprelay *r, struct usess *s)
{
	char ip[NET_IP_STR_MAX];

	if (socks5_udp_relay(&s->hs->bound, &s->map.proxy, &s->relay) < 0) {
		sess_fail(r, s, "no relay address in the UDP ASSOCIATE reply");
		return;
	}
	/* the proxy names where client data goes: its own address (wherever that is: the LAN, this
	 * host), else never this host, the LAN, a network behind it or nowhere (as pgw-healthd) */
	if (!net_sa_same_host(&s->relay, &s->map.proxy) &&
	    (!udp_routable(&s->relay, &s->lim) || net_dest_refused(&s->relay, &s->lim.lan))) {
		sess_fail(r, s, "the UDP ASSOCIATE reply names a relay on this host, the LAN or nowhere");
		return;
	}
	s->ufd = socket(s->relay.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->ufd >= 0)
		udp_rcvbuf(s->ufd);
	if (s->ufd < 0 || !(s->uh = ev_add_fd(r->ev, s->ufd, EPOLLIN, on_relay, s))) {
		sess_fail(r, s, "cannot open a socket to the relay");
		return;
	}
	upstream_hs_wipe(s->hs);
	free(s->hs);
	s->hs = NULL;
	s->state = US_READY;
	s->c->n_connecting--;
	ev_mod_fd(r->ev, s->ch, EPOLLIN | EPOLLRDHUP);
	net_ip_str(&s->map.client, ip);
	log_debug("udp: client=%s proxy=%lld association up", ip, (long long)s->map.proxy_id);
	while (s->pend) {
		struct upend *p = s->pend;
		s->pend = p->next;
		send_up(r, s, &p->dst, p->data, p->len);
		free(p);
	}
	s->pend_tail = &s->pend;
	s->n_pend = 0;
	s->pend_bytes = 0;
}

static void on_ctl(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct usess *s = arg;
	struct udprelay *r = s->r;
	uint32_t want = 0;
	enum upstream_result res;
	char b[256];
	ssize_t n;

	(void)ev;
	if (s->state == US_CONNECTING) {
		res = upstream_hs_step(s->hs, fd, &want);
		if (res == UP_IN_PROGRESS) {
			ev_mod_fd(r->ev, s->ch, want);
		} else if (res != UP_OK) {
			char why[80];
			snprintf(why, sizeof(why), "UDP ASSOCIATE: %s%s", upstream_result_str(res),
				 res == UP_ERR_PROXY_REFUSED && s->hs->detail == 7 ? " (command not supported)" : "");
			sess_fail(r, s, why);
		} else {
			sess_ready(r, s);
		}
		return;
	}
	/* the association lives as long as its control connection (RFC 1928 7): nothing more is
	 * expected on it; its end (or an error) ends the session */
	n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || (events & (EPOLLHUP | EPOLLERR))) {
		s->c->retry_at = ev_now_ms() + U_RETRY_MS; /* a proxy that ends associations gets no storm */
		sess_free(r, s, UE_PROXY_CLOSED);
	}
}

void sess_tick(struct udprelay *r, uint64_t now)
{
	struct usess *s, *next;

	for (s = r->sessions; s; s = next) {
		next = s->next;
		if (s->state == US_CONNECTING && now >= s->deadline) {
			sess_fail(r, s, "timed out");
			continue;
		}
		if (s->state == US_READY) {
			struct uflow **pp = &s->flows, *f;
			while ((f = *pp)) {
				if (now - f->last >= s->lim.udp_flow_ms) {
					*pp = f->next;
					flow_free(r, s, f);
				} else {
					pp = &f->next;
				}
			}
			if (s->flows)
				s->empty_since = 0;
			else if (!s->empty_since)
				s->empty_since = now;
			if (!s->flows && now - s->empty_since >= s->lim.udp_session_ms) {
				sess_free(r, s, UE_IDLE);
				continue;
			}
		}
		sess_flush(r, s);
	}
	clients_gc(r, now, 0);
}

void sess_revalidate(struct udprelay *r)
{
	struct usess *s, *next;

	pthread_rwlock_rdlock(&r->sh->lock); /* judged under the lock, closed after it */
	for (s = r->sessions; s; s = s->next) {
		const struct fwd_entry *e = table_lookup(r->sh->table, &s->map.client);
		s->lim = r->sh->limits;
		s->revoke = !(table_same_path(e, &s->map) && e->type == UPSTREAM_SOCKS5 && e->udp && s->lim.udp_on);
	}
	pthread_rwlock_unlock(&r->sh->lock);
	for (s = r->sessions; s; s = next) {
		next = s->next;
		if (s->revoke)
			sess_free(r, s, UE_REVOKED);
	}
	clients_gc(r, 0, 1); /* a new decision: no backoff from the old one */
}

int sess_make_room(struct udprelay *r, struct uclient *c)
{
	struct usess *idlest = NULL;

	for (struct usess *s = c->sessions; s; s = s->cnext) /* its own: at most udp_client_flows */
		if (s->state == US_READY && !s->flows && (!idlest || s->empty_since < idlest->empty_since))
			idlest = s;
	if (!idlest)
		return 0;
	sess_free(r, idlest, UE_IDLE);
	return 1;
}

void sess_free_all(struct udprelay *r)
{
	while (r->sessions)
		sess_free(r, r->sessions, UE_SHUTDOWN);
	clients_gc(r, 0, 1);
}
