/* notify.h - the event path between daemons: fixed-size datagrams on unix sockets in
 * PGW_RUN_DIR (<name>.sock). Best effort by design: a lost datagram is caught by the polling
 * fallback (dbwatch), so senders never block and never fail because a peer is down. */
#ifndef PGW_NOTIFY_H
#define PGW_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#define NOTIFY_WIRE_SIZE 96
#define NOTIFY_TEXT_MAX	 60 /* 59 bytes + NUL: what fits after the 37-byte header */
#define NOTIFY_NAME_MAX	 32

enum notify_type {
	NOTIFY_CHANGED = 1,	    /* DB rows changed; topics says which */
	NOTIFY_CHECK_REQUEST = 2,   /* "check proxy <id> now"; the answer goes back to the sender */
	NOTIFY_CHECK_RESULT = 3,    /* status = 1 up / 0 down, value = latency ms, text = exit ip or error */
	NOTIFY_UPSTREAM_FAILED = 4, /* forwarder saw proxy <id> fail (passive health) */
};

enum notify_topic {
	TOPIC_PROXIES = 1u << 0,
	TOPIC_MAPPINGS = 1u << 1,
	TOPIC_HEALTH = 1u << 2,
	TOPIC_SETTINGS = 1u << 3,
	TOPIC_USERS = 1u << 4,
	TOPIC_AGENT = 1u << 5,
	TOPIC_FORWARDER = 1u << 6,
};

struct notify_msg {
	uint8_t type;
	uint32_t topics;
	int64_t id;
	uint64_t seq;
	uint32_t status;
	int32_t value;
	char text[NOTIFY_TEXT_MAX]; /* NUL-terminated */
};

struct notify;

/* The daemons that listen; broadcast goes to each of them except the sender. */
extern const char *const notify_peers[];

/* Bind <run_dir>/<name>.sock (a stale socket file is replaced). name NULL: send-only. */
struct notify *notify_open(const char *run_dir, const char *name, char *err, size_t errlen);
void notify_close(struct notify *n); /* also removes its socket file */
int notify_fd(const struct notify *n);

/* 0; -ENOENT/-ECONNREFUSED when the peer is not running; -EAGAIN when its queue is full. */
int notify_send(struct notify *n, const char *peer, const struct notify_msg *m);
/* Number of peers that got it. */
int notify_broadcast(struct notify *n, const struct notify_msg *m);
/* 0 with m (and the sender's name in from, "" if unbound), -EAGAIN when nothing is queued,
 * -EBADMSG for a datagram of the wrong size/magic/version, -ENOTSUP for an unknown type. */
int notify_recv(struct notify *n, struct notify_msg *m, char *from, size_t fromlen);

/* Pure wire format, exposed for tests and the fuzzer. */
void notify_encode(const struct notify_msg *m, uint8_t buf[NOTIFY_WIRE_SIZE]);
int notify_decode(const uint8_t *buf, size_t len, struct notify_msg *m);
const char *notify_type_str(int type);

/* The on-demand health check, one exchange for the API's gate and `pgwctl check`: send
 * CHECK_REQUEST for proxy_id to pgw-healthd from n (a named socket: the answer comes back to
 * it), drop stale answers first, and wait up to wait_ms for CHECK_RESULT of that proxy.
 * 1 up, 0 down (*res filled either way), -ENOENT healthd not running, -ETIMEDOUT no answer. */
int notify_check(struct notify *n, int64_t proxy_id, unsigned wait_ms, struct notify_msg *res);

/* The same for k distinct proxies side by side: at most window (1..NOTIFY_CHECK_WINDOW) asked at
 * once, each waited for up to wait_ms from its first try to ask (healthd's queue full: tried
 * again every NOTIFY_FULL_RETRY_MS within that wait and total_ms, else given up as unanswered). Once one is down or not
 * answered in time, none more is asked after total_ms from the call (its caller's answer is a refusal anyway); until
 * then every one is. st[i]: 1 up, 0 down (res[i] filled either way), -ETIMEDOUT no answer in time (or healthd's queue
 * full for all that wait), -ECANCELED not asked (one down or not answered, and total_ms over). 0, or -ENOENT when
 * healthd is not running (nothing more asked; st[] then not to be read). Each answer is healthd's probe of that proxy
 * begun after the ask or at most one wait before it (a late answer to an earlier ask of this socket is one of those).
 */
/* under a datagram socket's queue (net.unix.max_dgram_qlen, 10 by default): an answer is never
 * sent again */
#define NOTIFY_CHECK_WINDOW  8
#define NOTIFY_FULL_RETRY_MS 10
int notify_check_many(struct notify *n, const int64_t *ids, size_t k, size_t window, unsigned wait_ms,
		      unsigned total_ms, struct notify_msg *res, int *st);

#endif
