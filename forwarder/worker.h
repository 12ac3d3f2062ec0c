/* worker.h - what relay.c (the connections) and workers.c (the threads) share, private to the
 * forwarder: a worker thread with its event loop, listeners and connections. */
#ifndef FWD_WORKER_H
#define FWD_WORKER_H

#include "evloop.h"
#include "notify.h"
#include "relay.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#define PIPE_POOL 64 /* per worker */
/* empty pipes a worker keeps in its pool (topped up at each accept; not while draining): when its descriptor table is
 * full, they are what its established connections move bytes with (in turns: a connection that finds none waits, its
 * bytes in its socket, until one comes back). A new connection is let in only with them there (relay_on_accept). */
#define PIPE_RESERVE 8
#define EARLY_MAX    16384 /* the client's first bytes sent with the request: at most this */
/* Every socket of a connection (and of a session kept ready) is watched for everything, edge-
 * triggered, from the start: no epoll_ctl after it is added. Safe because each handler reads or
 * writes until EAGAIN before it waits (the handshake tries the reply's recv right after its send;
 * the relay pumps both ways when it starts), and ignores the edges it has no use for. */
#define EV_ALL (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv6/ip6_tables.h, which clashes with libc headers */
#endif

/* Listeners of a worker: REDIRECT and TPROXY, each for IPv4 and IPv6. */
enum { L_REDIR4, L_REDIR6, L_TPROXY4, L_TPROXY6, L_MAX };

struct worker;

struct conn {
	uint64_t id;
	struct worker *w;
	struct conn *prev, *next;
	int cfd, ufd;
	struct ev_handle *ch, *uh;
	struct sockaddr_storage client, dst;
	struct fwd_entry map;
	struct upstream_hs *hs; /* during the handshake only */
	int relaying;
	int pipe_up[2], pipe_down[2]; /* client -> upstream, upstream -> client; -1: no bytes in flight */
	size_t in_up, in_down;	      /* bytes sitting in each pipe */
	int eof_c, eof_u, shut_c, shut_u;
	int rd_c, rd_u, wr_c, wr_u; /* relaying: each side may have bytes / take some (pump()) */
	int quota_wait;		    /* a read found no quota to read with: the tick tries again */
	TAILQ_ENTRY(conn) pw;	    /* in the worker's line of those waiting for a pipe... */
	int pipe_waiting;	    /* ...while this is set (pipe_wait) */
	/* the handshake: the client's early read left nothing (bytes that come later bring an edge);
	 * the proxy's side signalled its FIN, a reset or an error (its edge is used: a read shorter
	 * than asked still leaves the EOF to be read) */
	int hs_drained_c, hs_end_u;
	int counted;		/* a mapped, active client: its per-client stats count this connection */
	struct client_stat *cs; /* its client's counters (bytes as they flow, the quota), or NULL */
	int revoked;		/* its path is no longer allowed: cut (on_revoke) */
	uint64_t bytes_up, bytes_down, t_start, t_active, deadline;
	uint64_t t_relay;   /* when the proxy said "succeeded" */
	int upstream_first; /* the proxy's side ended (EOF or reset) while the client's was open */
	/* what the control socket's thread reads (control.c), under the worker's list_lock: */
	atomic_int listed; /* accepted for a mapped, active client: shown (set once, after map) */
	atomic_int kill;   /* an admin closes it: the worker cuts it on its revokefd */
	struct conn_pub {  /* written by the worker with __atomic stores, read with __atomic loads */
		uint64_t up, down, rate_up, rate_down; /* bytes; bytes/s over the last tick */
		int relaying;
	} pub;
	uint64_t tick_up, tick_down, tick_ms; /* the byte counts at the last tick (the rate) */
	/* connection setup (pool.h): the session came ready from the pool; the client's first bytes,
	 * sent with the request (map.early), and the wait for them (a pooled session only) */
	int from_pool, want_early, sent_early;
	uint8_t *early;
	size_t early_len;
	uint64_t early_until, t_req_us; /* ... until when; when the request went on a ready session */
	struct conn *wprev, *wnext;	/* the worker's list of connections waiting for their first bytes */
};

/* A client's socket cut with a reset once the bytes it was sent have gone (relay.c reset_later) */
#define RESET_WAIT_MAX 256
#define RESET_STALL_MS 5000  /* a client that takes none of them for this long gets its reset then */
#define RESET_WAIT_MS  60000 /* ... and one that takes them slowly, after this */
struct reset_wait {
	int fd, left;	       /* bytes not yet acknowledged at the last look */
	uint64_t moved, until; /* when some last went; the end of the wait (0: now, resets_of_gone) */
	struct net_ip client;  /* no longer active (a revalidation finds): the reset at once, while
				* conntrack still maps it (the agent forgets it 300 ms on) */
	int has_client;
};

struct worker {
	struct fwd_shared *sh;
	unsigned index;
	pthread_t thread;
	struct evloop *ev;
	int lfd[L_MAX], stopfd, revokefd; /* lfd -1: not listening (TPROXY needs CAP_NET_ADMIN; IPv6 may be off) */
	struct ev_handle *lh[L_MAX], *sh_h, *rv_h, *tick;
	struct notify *nt;
	pthread_mutex_t list_lock; /* conns' links: the worker changes them, control.c walks them */
	struct conn *conns;
	unsigned n_conns;
	int draining;
	atomic_int started; /* read by the control thread (ping: workers_alive) while a join clears it */
	int own_fds;	    /* its descriptors are in a table of its own (workers.c own_fd_table) */
	sem_t ready;	    /* posted by the thread once set up: init_rc, err say how */
	int init_rc;	    /* 0, or -1 (err) */
	char err[300];
	int spare_fd;				   /* held for the moment the table is full (relay_on_accept) */
	unsigned long fd_refused;		   /* connections refused for want of a descriptor */
	unsigned long fd_refused_said;		   /* ... as many as the tick has logged */
	int accept_paused;			   /* no spare either: the listeners are off until the tick */
	TAILQ_HEAD(conn_line, conn) pipe_line;	   /* waiting for a pipe, oldest first */
	unsigned long pipe_waits, pipe_waits_said; /* waits for a pipe; as many as the tick has logged */
	struct ev_handle *pipe_timer;		   /* a pipe came back: the waiting try again */
	int pipe_armed;
	atomic_ullong last_tick; /* ms, CLOCK_MONOTONIC: the watchdog asks whether this loop runs */
	uint64_t drain_until;
	uint64_t last_report[256];
	int pipes[PIPE_POOL][2]; /* empty pipes kept for reuse */
	unsigned n_pipes;
	struct pool *pools; /* upstream sessions kept ready (pool.h) */
	unsigned n_pools;
	struct conn *wait_head, *wait_tail; /* waiting for their first bytes, oldest first */
	struct ev_handle *early_timer;
	int early_armed;
	uint8_t early_buf[EARLY_MAX]; /* where the client's first bytes are read */
	struct reset_wait resets[RESET_WAIT_MAX];
	unsigned n_resets;
};

struct fwd_workers {
	unsigned n;
	struct worker *w;
};

/* relay.c: the data path, called from each worker's loop */
static inline void conn_publish(struct conn *c)
{
	__atomic_store_n(&c->pub.up, c->bytes_up, __ATOMIC_RELAXED);
	__atomic_store_n(&c->pub.down, c->bytes_down, __ATOMIC_RELAXED);
}
void conn_close(struct conn *c, enum fwd_close why, enum upstream_result up);
void relay_on_accept(struct evloop *ev, int fd, uint32_t events, void *arg);
void relay_on_tick(struct evloop *ev, void *arg);
void relay_on_revoke(struct evloop *ev, int fd, uint32_t events, void *arg);
void relay_on_early_timer(struct evloop *ev, void *arg);
void relay_on_pipe_timer(struct evloop *ev, void *arg);
void pipe_line_wake(struct worker *w);				/* descriptors were freed: the pipe line tries again */
void relay_resets_due(struct worker *w, uint64_t now, int all); /* all: at the worker's end */

#endif
