/* udprelay_int.h - what udprelay.c (listeners, thread, stats) and udpsess.c (sessions, flows,
 * the proxy side) share; private to the UDP relay. */
#ifndef FWD_UDPRELAY_INT_H
#define FWD_UDPRELAY_INT_H

#include "evloop.h"
#include "udprelay.h"
#include "upstream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#define U_BUCKETS     1024	 /* sessions by client socket, clients by address */
#define U_QUEUE	      16	 /* datagrams a session holds while its association is set up */
#define U_QUEUE_BYTES (64 << 10) /* ... and their bytes at most */
#define U_CONNECTING  64	 /* associations of one client being set up at once */
#define U_SESSIONS    32768	 /* sessions in all */
#define U_BATCH	      64	 /* datagrams read per wakeup, per socket */
#define U_RETRY_MS    1000	 /* after a failed association: the client's datagrams dropped this long */
#define U_TICK_MS     500
#define U_OWN_MIN_MS  1000 /* flows judged again at most this often (own_changed) */
#define U_HDR_MAX     22   /* RSV, FRAG, ATYP, an IPv6 address, a port */
#define U_MMSG	      32   /* datagrams per recvmmsg() */
#define U_SLOT	      65536
#define UPROXY_STATS  256
#define U_RCVBUF      (4 << 20) /* listeners and relay sockets: bursts at line rate */
#define U_JUDGED      256	/* addresses judged for a flow lately, remembered ... */
#define U_JUDGED_MS   5000	/* ... this long (udp_flow_refused) */

enum udrop { /* why a datagram was dropped: the stats' "dropped" */
	     UD_UNKNOWN,
	     UD_NOT_ALLOWED, /* blocked, or its proxy carries no UDP, or udp_relay off */
	     UD_NO_SESSION,  /* its association failed (a new one tried after U_RETRY_MS) */
	     UD_QUEUE_FULL,
	     UD_RATE,
	     UD_FLOWS,
	     UD_BAD_HEADER, /* from the relay: short, reserved bytes set, unknown address type */
	     UD_FRAGMENT,
	     UD_BAD_SOURCE, /* on the relay socket, from anything but the relay */
	     UD_NOT_ROUTABLE,
	     UD_NO_DST,
	     UD_SEND,
	     UD_MAX
};

enum uend { UE_FAILED, UE_PROXY_CLOSED, UE_REVOKED, UE_IDLE, UE_SHUTDOWN, UE_MAX };

enum { US_CONNECTING, US_READY };

struct uflow {
	struct uflow *next;
	struct sockaddr_storage remote; /* where the client socket sent to */
	int fd;				/* bound to remote (IP_TRANSPARENT): replies leave from there */
	uint64_t last;
	uint64_t own_gen; /* remote judged not the gateway's own as of this r->own_gen (flow_foreign) */
	int unsolicited;  /* made for a reply from where the client never sent (until it sends there) */
};

struct upend {
	struct upend *next;
	struct sockaddr_storage dst;
	size_t len;
	uint8_t data[];
};

/* A client address: what its sessions share (limits, the backoff after a failed association). */
struct usess;
struct uclient {
	struct uclient *hnext;
	struct usess *sessions; /* its own (usess.cnext): sess_make_room looks at these only */
	struct net_ip ip;
	unsigned n_sessions, n_flows, n_connecting;
	double tokens;
	uint64_t tok_ms, retry_at;
	uint64_t n_drop; /* datagrams dropped before they had a session, not yet in the stats */
	int64_t org;
};

/* One client socket (address and port): its own association, so that the far side sees one
 * source per client socket and every reply finds its socket (a NAT's endpoint-independent mapping). */
struct usess {
	struct usess *next, *prev, *hnext;
	struct usess *cnext, *cprev; /* the client's sessions */
	struct udprelay *r;
	struct uclient *c;
	struct sockaddr_storage src; /* the client socket */
	struct fwd_entry map;	     /* the client, its proxy and how to reach it, as when the session began */
	struct fwd_limits lim;
	int state;
	int ctl, ufd;
	struct ev_handle *ch, *uh;
	struct upstream_hs *hs; /* during the handshake only */
	struct sockaddr_storage relay;
	struct uflow *flows; /* most recently used first */
	unsigned n_flows, flushed_flows, n_pend;
	unsigned n_unsolicited; /* of its flows, those made for replies (flow_for_reply) */
	size_t pend_bytes;
	struct upend *pend, **pend_tail;
	uint64_t deadline, last, empty_since; /* empty_since: when its last flow closed (0: has flows) */
	/* since the last flush into the stats */
	uint64_t dg_up, dg_down, b_up, b_down, n_drop;
	unsigned new_session, new_failure;
	int revoke; /* sess_revalidate: judged under the table lock, closed after it */
};

struct upstat {
	int64_t proxy_id; /* 0: free slot */
	unsigned long sessions, failures, dg_up, dg_down, b_up, b_down, drops;
};

struct udprelay {
	struct fwd_shared *sh;
	pthread_t thread;
	struct evloop *ev;
	int wakefd, lfd4, lfd6; /* in this order: closed as a range */
	int started;
	atomic_int stopping;
	char error[200];
	atomic_ullong last_tick;
	struct usess *sessions, *bucket[U_BUCKETS];
	struct uclient *clients[U_BUCKETS];
	/* recvmmsg(): up to U_MMSG datagrams a call, from the listeners and the relay sockets */
	uint8_t *slots; /* U_MMSG x U_SLOT bytes */
	struct mmsghdr mm[U_MMSG];
	struct iovec iov[U_MMSG];
	struct sockaddr_storage from[U_MMSG];
	union {
		char buf[CMSG_SPACE(sizeof(struct sockaddr_in6))];
		struct cmsghdr align;
	} cm[U_MMSG];
	atomic_ulong n_sessions, n_flows, opened, dg_up, dg_down, b_up, b_down;
	atomic_ulong drops[UD_MAX], ends[UE_MAX];
	struct ujudged {
		struct net_ip ip;
		uint64_t until;
		int as_source; /* judged as a source a relay names, not as a client's destination */
		int refused;
	} judged[U_JUDGED];
	unsigned judged_next;
	/* the kernel saying an address may have become the gateway's own (net_own_watch_read):
	 * own_gen counts such times, and the verdicts above are forgotten at each */
	struct mnl_socket *own_nl;
	struct ev_handle *own_h;
	uint64_t own_gen, own_at; /* (own_at: when own_gen last grew) */
	int own_pending;	  /* a change heard since, to count at a tick (U_OWN_MIN_MS) */
	pthread_mutex_t plock;
	struct upstat pstats[UPROXY_STATS];
};

int sa_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* A destination the relay may send to or answer from: not this host, nowhere, link-local,
 * multicast, broadcast, reserved, IPv4-mapped or the LAN network (l: lan_cidr). */
int udp_routable(const struct sockaddr_storage *d, const struct fwd_limits *l);
/* Whether no flow may be made for d (after udp_routable): as a client's destination (as_source
 * 0), when it is one of the gateway's own (net_addr_local); as a source a relay names (1), where
 * no proxy may be either (net_dest_refused: the gateway's own, a network routed behind the LAN).
 * A verdict is remembered U_JUDGED_MS (U_JUDGED of them), so a flood to or from a refused
 * address, or new flows to one allowed, cost a look in a small table, not a route lookup each
 * (one thread relays every client's UDP). */
int udp_flow_refused(struct udprelay *r, const struct sockaddr_storage *d, const struct fwd_limits *l, int as_source,
		     uint64_t now);
void udp_rcvbuf(int fd);
/* Read up to U_MMSG datagrams from fd into r->mm / r->from (and r->cm, with_cmsg): how many, or
 * 0 when none is waiting. */
int udp_recv_batch(struct udprelay *r, int fd, int with_cmsg);
void udp_drop(struct udprelay *r, struct usess *s, enum udrop why);
void sess_flush(struct udprelay *r, struct usess *s);

/* udpsess.c */
struct usess *sess_find(struct udprelay *r, const struct sockaddr_storage *src);
struct uclient *client_get(struct udprelay *r, const struct net_ip *ip, uint64_t now, int create);
/* A new session for the client socket src of e (allowed): connecting to its proxy. NULL (the
 * client told to wait U_RETRY_MS) when that cannot start. */
struct usess *sess_new(struct udprelay *r, struct uclient *c, const struct sockaddr_storage *src,
		       const struct fwd_entry *e, const struct fwd_limits *l, uint64_t now);
void sess_free(struct udprelay *r, struct usess *s, enum uend why);
/* The client has as many sessions as it may have flows: its session without a flow that has been
 * so longest ends (UE_IDLE) for a new one. 0 when every one still has a flow (or is setting up). */
int sess_make_room(struct udprelay *r, struct uclient *c);
void sess_queue(struct udprelay *r, struct usess *s, const struct sockaddr_storage *dst, const uint8_t *data,
		size_t len);
/* Whether one of the client's flows is unsolicited (made for a reply; it gives way to a flow of
 * the client's own when its flows are all taken). */
int flow_unsolicited_any(const struct uclient *c);
/* The session's flow to dst, made when new (within udp_client_flows, an unsolicited flow giving
 * way); NULL (counted) when not, or when dst has become one of the gateway's own addresses since
 * (the flow closed). not_local: dst is known not to be a gateway address (a fresh session checked it). */
struct uflow *flow_get(struct udprelay *r, struct usess *s, const struct sockaddr_storage *dst, uint64_t now,
		       int not_local);
void send_up(struct udprelay *r, struct usess *s, const struct sockaddr_storage *dst, const uint8_t *data, size_t len);
void sess_tick(struct udprelay *r, uint64_t now);
void sess_revalidate(struct udprelay *r);
void sess_free_all(struct udprelay *r);

#endif
