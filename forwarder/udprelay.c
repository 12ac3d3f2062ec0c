/* udprelay.c - see udprelay.h.
 *
 * A session (struct usess, udpsess.c) is one client socket (address and port): its copy of the
 * mapping, the control connection (connecting and handshaking, then only watched: its end ends
 * the session), the UDP socket that talks to the relay and the flows. A flow (struct uflow) is
 * one destination of that socket: a socket bound to that destination (IP_TRANSPARENT) so that
 * replies reach the client from the address it sent to. Replies from the relay go to the flow of
 * their source; one from a source the socket never sent to gets a flow of its own (full cone:
 * what games, VoIP and WebRTC expect of a NAT). What a client's sockets share (limits, the
 * backoff after a failed association) is struct uclient. Datagrams that arrive while a session
 * is set up wait in a short queue. */
#include "udprelay_int.h"

#include "log.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const drop_names[UD_MAX] = {
    [UD_UNKNOWN] = "unknown_client",	[UD_NOT_ALLOWED] = "not_allowed", [UD_NO_SESSION] = "no_association",
    [UD_QUEUE_FULL] = "queue_full",	[UD_RATE] = "rate_limited",	  [UD_FLOWS] = "flow_limit",
    [UD_BAD_HEADER] = "bad_header",	[UD_FRAGMENT] = "fragment",	  [UD_BAD_SOURCE] = "wrong_source",
    [UD_NOT_ROUTABLE] = "not_routable", [UD_NO_DST] = "no_original_dst",  [UD_SEND] = "send_error",
};
static const char *const end_names[UE_MAX] = {
    [UE_FAILED] = "failed", [UE_PROXY_CLOSED] = "proxy_closed", [UE_REVOKED] = "revoked",
    [UE_IDLE] = "idle",	    [UE_SHUTDOWN] = "shutdown",
};

/* ---- addresses ---- */

int sa_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return 0;
}

int udp_routable(const struct sockaddr_storage *d, const struct fwd_limits *l)
{
	return net_addr_special(d, &l->lan) == NULL;
}

int udp_flow_refused(struct udprelay *r, const struct sockaddr_storage *d, const struct fwd_limits *l, int as_source,
		     uint64_t now)
{
	struct net_ip ip;
	int refused;

	if (net_ip_from_sa(d, &ip) < 0)
		return 1;
	for (int i = 0; i < U_JUDGED; i++) {
		const struct ujudged *x = &r->judged[i];
		/* (the gateway's own, refused as a destination, is refused as a source too) */
		if (x->until > now && (x->as_source == as_source || (x->refused && !x->as_source)) &&
		    memcmp(&x->ip, &ip, sizeof(ip)) == 0)
			return x->refused;
	}
	refused = as_source ? net_dest_refused(d, &l->lan) != NULL : net_addr_local(d);
	r->judged[r->judged_next++ % U_JUDGED] =
	    (struct ujudged){.ip = ip, .until = now + U_JUDGED_MS, .as_source = as_source, .refused = refused};
	return refused;
}

/* A receive buffer for bursts (U_RCVBUF; beyond net.core.rmem_max with CAP_NET_ADMIN, which
 * the transparent sockets need anyway): a full one drops in the kernel, unseen. */
void udp_rcvbuf(int fd)
{
	int size = U_RCVBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

/* ---- counting ---- */

void udp_drop(struct udprelay *r, struct usess *s, enum udrop why)
{
	atomic_fetch_add(&r->drops[why], 1);
	if (s)
		s->n_drop++;
}

/* Add a session's counts since the last flush to its client's and its proxy's. */
void sess_flush(struct udprelay *r, struct usess *s)
{
	struct upstat *p;
	unsigned slot;

	if (!(s->dg_up | s->dg_down | s->n_drop | s->new_session | s->new_failure) && s->n_flows == s->flushed_flows)
		return;
	stats_client_udp(&r->sh->stats, &s->map.client, s->map.org_id, s->dg_up, s->dg_down, s->b_up, s->b_down,
			 s->n_drop, (long)s->n_flows - (long)s->flushed_flows);
	s->flushed_flows = s->n_flows;
	pthread_mutex_lock(&r->plock);
	slot = (unsigned)s->map.proxy_id & (UPROXY_STATS - 1);
	for (unsigned k = 0; k < UPROXY_STATS; k++, slot = (slot + 1) & (UPROXY_STATS - 1)) {
		p = &r->pstats[slot];
		if (p->proxy_id == 0)
			p->proxy_id = s->map.proxy_id;
		if (p->proxy_id != s->map.proxy_id)
			continue;
		p->dg_up += s->dg_up;
		p->dg_down += s->dg_down;
		p->b_up += s->b_up;
		p->b_down += s->b_down;
		p->drops += s->n_drop;
		p->sessions += s->new_session;
		p->failures += s->new_failure;
		break;
	}
	pthread_mutex_unlock(&r->plock);
	s->dg_up = s->dg_down = s->b_up = s->b_down = s->n_drop = 0;
	s->new_session = s->new_failure = 0;
}

void udprelay_write_stats(struct udprelay *r, FILE *out)
{
	int first = 1, enabled;

	if (!r)
		return;
	pthread_rwlock_rdlock(&r->sh->lock);
	enabled = r->sh->limits.udp_on;
	pthread_rwlock_unlock(&r->sh->lock);
	fprintf(out,
		",\"udp\":{\"enabled\":%s,\"listening\":%s,\"error\":\"%s\",\"sessions\":%lu,\"flows\":%lu,\"sessions_"
		"opened\":%lu,"
		"\"datagrams_up\":%lu,\"datagrams_down\":%lu,\"bytes_up\":%lu,\"bytes_down\":%lu,\"session_ends\":{",
		enabled ? "true" : "false", r->started ? "true" : "false", r->error, atomic_load(&r->n_sessions),
		atomic_load(&r->n_flows), atomic_load(&r->opened), atomic_load(&r->dg_up), atomic_load(&r->dg_down),
		atomic_load(&r->b_up), atomic_load(&r->b_down));
	for (int i = 0; i < UE_MAX; i++)
		fprintf(out, "%s\"%s\":%lu", i ? "," : "", end_names[i], atomic_load(&r->ends[i]));
	fputs("},\"dropped\":{", out);
	for (int i = 0; i < UD_MAX; i++)
		fprintf(out, "%s\"%s\":%lu", i ? "," : "", drop_names[i], atomic_load(&r->drops[i]));
	fputs("},\"proxies\":{", out);
	pthread_mutex_lock(&r->plock);
	for (unsigned i = 0; i < UPROXY_STATS; i++) {
		const struct upstat *p = &r->pstats[i];
		if (!p->proxy_id)
			continue;
		fprintf(out,
			"%s\"%lld\":{\"sessions\":%lu,\"failures\":%lu,\"datagrams_up\":%lu,\"datagrams_down\":%lu,"
			"\"bytes_up\":%lu,\"bytes_down\":%lu,\"dropped\":%lu}",
			first ? "" : ",", (long long)p->proxy_id, p->sessions, p->failures, p->dg_up, p->dg_down,
			p->b_up, p->b_down, p->drops);
		first = 0;
	}
	pthread_mutex_unlock(&r->plock);
	fputs("}}", out);
}

/* ---- the client side ---- */

/* What the table says about a client now: 0 with its entry when its UDP may be relayed. */
static enum udrop allowed(struct udprelay *r, const struct net_ip *client, struct fwd_entry *e, struct fwd_limits *l)
{
	const struct fwd_entry *t;
	enum udrop why = UD_MAX;

	pthread_rwlock_rdlock(&r->sh->lock);
	*l = r->sh->limits;
	t = table_lookup(r->sh->table, client);
	if (!t)
		why = UD_UNKNOWN;
	else if (t->state != FWD_ACTIVE || t->type != UPSTREAM_SOCKS5 || !t->udp || !l->udp_on)
		why = UD_NOT_ALLOWED;
	else
		*e = *t;
	pthread_rwlock_unlock(&r->sh->lock);
	return why;
}

/* A token bucket of pps datagrams per client, refilled continuously: 1 when one is taken. */
static int take_token(struct uclient *c, unsigned pps, uint64_t now)
{
	if (c->tokens < 0)
		c->tokens = pps;
	c->tokens += (double)(now - c->tok_ms) * pps / 1000.0;
	c->tok_ms = now;
	if (c->tokens > pps)
		c->tokens = pps;
	if (c->tokens < 1.0)
		return 0;
	c->tokens -= 1.0;
	return 1;
}

/* A datagram from client c (NULL: not known) dropped: counted in its session's (s), else in
 * c's own count (the client's stats show drops that came before any session too). */
static void drop_for(struct udprelay *r, struct usess *s, struct uclient *c, enum udrop why)
{
	udp_drop(r, s, why);
	if (!s && c)
		c->n_drop++;
}

/* One datagram from a client socket (src) to dst. Everything that costs (a session: a TCP
 * connection and sockets) comes after the checks that cost nothing. */
static void from_client(struct udprelay *r, const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
			const uint8_t *data, size_t len)
{
	struct net_ip cip;
	struct uclient *c;
	struct usess *s;
	struct uflow *f;
	struct fwd_entry e;
	struct fwd_limits l;
	const struct fwd_limits *lim;
	uint64_t now = ev_now_ms();
	int fresh = 0; /* a new session: dst was checked not to be the gateway's own */

	if (net_ip_from_sa(src, &cip) < 0)
		return;
	s = sess_find(r, src);
	if (s) {
		c = s->c;
		lim = &s->lim;
	} else {
		enum udrop why = allowed(r, &cip, &e, &l);
		if (why != UD_MAX) {
			udp_drop(r, NULL, why);
			return;
		}
		lim = &l;
		if (!(c = client_get(r, &cip, now, 1))) {
			udp_drop(r, NULL, UD_NO_SESSION);
			goto out;
		}
		c->org = e.org_id;
	}
	if (!udp_routable(dst, lim)) {
		drop_for(r, s, c, UD_NOT_ROUTABLE);
		goto out;
	}
	if (!take_token(c, lim->udp_client_pps, now)) {
		drop_for(r, s, c, UD_RATE);
		goto out;
	}
	if (!s) {
		if (c->n_flows >= lim->udp_client_flows && !flow_unsolicited_any(c))
			drop_for(r, NULL, c, UD_FLOWS);
		else if (udp_flow_refused(r, dst, lim, 0, now)) /* the gateway's own: nothing to relay there */
			drop_for(r, NULL, c, UD_NOT_ROUTABLE);
		else if (now < c->retry_at || c->n_connecting >= U_CONNECTING ||
			 atomic_load(&r->n_sessions) >= U_SESSIONS)
			drop_for(r, NULL, c, UD_NO_SESSION);
		/* a session has a flow when made, but may outlive its flows by udp_session_timeout: the
		 * client's sessions are bounded by its flows too (the one empty longest makes room, once
		 * the new one would be allowed otherwise) */
		else if (c->n_sessions >= lim->udp_client_flows && !sess_make_room(r, c))
			drop_for(r, NULL, c, UD_FLOWS);
		else if (!(s = sess_new(r, c, src, &e, &l, now)))
			drop_for(r, NULL, c, UD_NO_SESSION);
		explicit_bzero(&e, sizeof(e));
		if (!s)
			return;
		fresh = 1;
	}
	if (!(f = flow_get(r, s, dst, now, fresh)))
		return; /* counted */
	s->last = now;
	if (s->state == US_READY)
		send_up(r, s, dst, data, len);
	else
		sess_queue(r, s, dst, data, len);
	return;
out:
	if (!s)
		explicit_bzero(&e, sizeof(e));
}

/* The original destination of a TPROXYed datagram (IP_RECVORIGDSTADDR / IPV6_RECVORIGDSTADDR). */
static int orig_dst(struct msghdr *mh, struct sockaddr_storage *dst)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR) {
			memset(dst, 0, sizeof(*dst));
			memcpy(dst, CMSG_DATA(c), sizeof(struct sockaddr_in));
			return 0;
		}
		if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR) {
			memset(dst, 0, sizeof(*dst));
			memcpy(dst, CMSG_DATA(c), sizeof(struct sockaddr_in6));
			return 0;
		}
	}
	return -1;
}

int udp_recv_batch(struct udprelay *r, int fd, int with_cmsg)
{
	int n;

	for (int i = 0; i < U_MMSG; i++) {
		r->iov[i] = (struct iovec){.iov_base = r->slots + (size_t)i * U_SLOT, .iov_len = U_SLOT};
		r->mm[i].msg_hdr = (struct msghdr){.msg_name = &r->from[i],
						   .msg_namelen = sizeof(r->from[i]),
						   .msg_iov = &r->iov[i],
						   .msg_iovlen = 1,
						   .msg_control = with_cmsg ? r->cm[i].buf : NULL,
						   .msg_controllen = with_cmsg ? sizeof(r->cm[i].buf) : 0};
	}
	n = recvmmsg(fd, r->mm, U_MMSG, MSG_DONTWAIT, NULL);
	return n > 0 ? n : 0;
}

static void on_listen(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct udprelay *r = arg;

	(void)ev, (void)events;
	for (int round = 0; round < U_BATCH / U_MMSG; round++) {
		int n = udp_recv_batch(r, fd, 1);

		for (int i = 0; i < n; i++) {
			struct sockaddr_storage dst;
			if (orig_dst(&r->mm[i].msg_hdr, &dst) < 0) {
				udp_drop(r, NULL, UD_NO_DST);
				continue;
			}
			from_client(r, &r->from[i], &dst, r->iov[i].iov_base, r->mm[i].msg_len);
		}
		if (n < U_MMSG)
			break;
	}
}

/* ---- the thread ---- */

/* An address may have become the gateway's own: every flow is judged again at its next datagram
 * (flow_foreign), every address afresh; at most once every U_OWN_MIN_MS (the rest at a tick), so
 * a flood of changes or lost messages costs one pass over the flows a second at most. */
static void own_changed(struct udprelay *r, uint64_t now)
{
	if (now - r->own_at < U_OWN_MIN_MS) {
		r->own_pending = 1;
		return;
	}
	r->own_gen++;
	r->own_at = now;
	r->own_pending = 0;
	memset(r->judged, 0, sizeof(r->judged));
}

static void on_tick(struct evloop *ev, void *arg)
{
	struct udprelay *r = arg;

	(void)ev;
	atomic_store(&r->last_tick, ev_now_ms());
	if (r->own_pending)
		own_changed(r, ev_now_ms());
	sess_tick(r, ev_now_ms());
}

static void on_wake(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct udprelay *r = arg;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* eventfd: nothing to do */
	}
	if (atomic_load(&r->stopping))
		ev_stop(ev);
	else
		sess_revalidate(r);
}

static void on_own(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct udprelay *r = arg;
	int k = net_own_watch_read(r->own_nl);

	(void)fd, (void)events;
	if (k != 0)
		own_changed(r, ev_now_ms());
	if (k < 0) { /* (once: flows are judged as they are made from now on) */
		log_warn("udp: no longer hearing the gateway's address changes (netlink): a flow's address is judged "
			 "when the flow is made only");
		ev_del(ev, r->own_h);
		r->own_h = NULL;
		net_own_watch_close(r->own_nl);
		r->own_nl = NULL;
	}
}

static void *udprelay_main(void *arg)
{
	struct udprelay *r = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	ev_run(r->ev);
	sess_free_all(r);
	return NULL;
}

static int listen_transparent(int family, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT};
	int one = 1, fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	const char *what = "socket";

	if (fd < 0)
		goto fail;
	if (family == AF_INET6
		? (what = "IPV6_TRANSPARENT", setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
						  setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0 ||
						  setsockopt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof(one)) < 0)
		: (what = "IP_TRANSPARENT", setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0 ||
						setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof(one)) < 0))
		goto fail;
	udp_rcvbuf(fd);
	what = "bind";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (family == AF_INET6 ? bind(fd, (struct sockaddr *)&sa6, sizeof(sa6))
				: bind(fd, (struct sockaddr *)&sa, sizeof(sa))) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s on UDP port %u: %s%s", what, port, strerror(errno),
		 errno == EPERM ? " (the UDP relay needs CAP_NET_ADMIN)" : "");
	if (fd >= 0)
		close(fd);
	return -1;
}

int udprelay_start(struct fwd_shared *sh, uint16_t port, struct udprelay **out)
{
	struct udprelay *r = calloc(1, sizeof(*r));
	char err6[160];

	*out = NULL;
	if (!r)
		return -ENOMEM;
	*out = r;
	pthread_mutex_init(&r->plock, NULL);
	r->sh = sh;
	r->wakefd = r->lfd4 = r->lfd6 = -1;
	r->lfd4 = listen_transparent(AF_INET, port, r->error, sizeof(r->error));
	if (r->lfd4 < 0) {
		log_warnx("udp: relay off: %s; client UDP is dropped on the gateway", r->error);
		return 0;
	}
	r->lfd6 = listen_transparent(AF_INET6, port, err6, sizeof(err6));
	if (r->lfd6 < 0)
		log_warnx("udp: no IPv6 listener (%s): IPv4 clients only", err6);
	r->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r->slots = malloc((size_t)U_MMSG * U_SLOT); /* touched as datagrams need it */
	if (r->wakefd < 0 || !r->slots || !(r->ev = ev_new()) || !ev_add_fd(r->ev, r->lfd4, EPOLLIN, on_listen, r) ||
	    (r->lfd6 >= 0 && !ev_add_fd(r->ev, r->lfd6, EPOLLIN, on_listen, r)) ||
	    !ev_add_fd(r->ev, r->wakefd, EPOLLIN, on_wake, r) || !ev_add_timer(r->ev, U_TICK_MS, U_TICK_MS, on_tick, r))
		goto fail;
	if (!(r->own_nl = net_own_watch_open()) ||
	    !(r->own_h = ev_add_fd(r->ev, mnl_socket_get_fd(r->own_nl), EPOLLIN, on_own, r)))
		log_warn("udp: cannot hear the gateway's address changes (netlink): a flow's address is judged when "
			 "the flow is made only");
	atomic_store(&r->last_tick, ev_now_ms());
	if (pthread_create(&r->thread, NULL, udprelay_main, r) != 0)
		goto fail;
	r->started = 1;
	log_info("udp: relay listening on port %u (TPROXY, IPv4%s)", port, r->lfd6 >= 0 ? " and IPv6" : "");
	return 0;
fail:
	snprintf(r->error, sizeof(r->error), "cannot start its thread: %s", strerror(errno ? errno : ENOMEM));
	log_warnx("udp: relay off: %s; client UDP is dropped on the gateway", r->error);
	return 0;
}

static void wake(struct udprelay *r)
{
	uint64_t one = 1;

	if (r && r->started && write(r->wakefd, &one, sizeof(one)) < 0)
		log_warn("udp: wake");
}

void udprelay_revalidate(struct udprelay *r)
{
	wake(r);
}

void udprelay_stop(struct udprelay *r)
{
	if (!r)
		return;
	if (r->started) {
		atomic_store(&r->stopping, 1);
		wake(r);
		pthread_join(r->thread, NULL);
	}
	if (r->ev)
		ev_free(r->ev);
	net_own_watch_close(r->own_nl);
	for (int *fd = &r->wakefd; fd <= &r->lfd6; fd++)
		if (*fd >= 0)
			close(*fd);
	pthread_mutex_destroy(&r->plock);
	free(r->slots);
	free(r);
}

int udprelay_alive(struct udprelay *r, uint64_t max_ms)
{
	return !r || !r->started || ev_now_ms() <= atomic_load(&r->last_tick) + max_ms;
}
