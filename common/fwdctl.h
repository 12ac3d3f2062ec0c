/* fwdctl.h - pgw-forwarder's control socket (issue 20): PGW_RUN_DIR/forwarder.ctl, a Unix stream
 * socket (mode 0660, in the run dir's 0750) that pgw-api asks on demand. One request per
 * connection: a line
 *
 *     OP [KEY=VALUE ...]\n
 *
 * answered with one JSON document, then the forwarder closes (a line without its "\n" within 2 s
 * is refused, never acted on). Ops and keys:
 *     conns [id=ID] [client=IP] [proxy=ID] [org=ID|-1] [limit=1..1000] [cursor=ID]
 *         the open TCP connections (handshaking or relaying) by ascending id after cursor:
 *         {"total":N,"connections":[...],"next_cursor":ID|null}
 *     close id=ID [org=ID|-1]      |      close client=IP [org=ID|-1]
 *         cut them (a TCP reset to both sides, close=closed_by_admin): {"closed":N}
 *     stats [for=usage]
 *         the forwarder's counters, as they are now: totals, closes by reason, errors by kind,
 *         per client, the resolver's and the UDP relay's (what /status, /metrics, the usage
 *         history and the live feed are made of; asked each second by pgw-api, no file).
 *         for=usage: the ask of pgw-api's feed, which writes the usage history: a forwarder
 *         stopping waits for one of these to hand its last counts over
 *     ping
 *         whether the forwarder's loops run (each ticks once a second: the TCP workers, the
 *         resolver, the UDP relay), without the counters (`pgwctl ha check`, every second):
 *         {"alive":true}, or {"alive":false,"error":"..."} naming the loop that stopped
 * org -1 (the default) is every organisation; another value only its clients' connections.
 * An error answers {"error":"..."}. Connection ids count up from the forwarder's start time in
 * microseconds: unique across runs. */
#ifndef PGW_FWDCTL_H
#define PGW_FWDCTL_H

#include "net.h"

#include <stddef.h>
#include <stdint.h>

#define FWDCTL_SOCK	    "forwarder.ctl"
#define FWDCTL_LINE_MAX	    512
#define FWDCTL_PAGE_MAX	    1000
#define FWDCTL_PAGE_DEFAULT 100
#define FWDCTL_REPLY_MAX    (64u * 1024 * 1024) /* "stats" with all 65,536 clients: 20-28 MiB, 40 at most */

enum fwdctl_op { FWDCTL_CONNS = 1, FWDCTL_CLOSE, FWDCTL_STATS, FWDCTL_PING };

struct fwdctl_req {
	enum fwdctl_op op;
	int has_client;
	struct net_ip client;
	int64_t proxy; /* 0: any */
	int64_t org;   /* -1: every organisation */
	unsigned limit;
	uint64_t cursor, id; /* id 0: none */
	int for_usage;	     /* stats for=usage */
};

/* Parse one request line (len bytes, no NUL needed; a trailing "\n" or "\r\n" allowed).
 * 0, or -1 with the reason in err. A close needs exactly one of id and client. */
int fwdctl_parse(const char *line, size_t len, struct fwdctl_req *r, char *err, size_t errlen);

/* The socket's path in run_dir. 0, or -1 when it does not fit a socket address. */
int fwdctl_path(const char *run_dir, char *buf, size_t size);

/* Ask the forwarder: send line (with its "\n"), read the answer (NUL-terminated, *reply to
 * free()), the whole exchange within timeout_ms. 0, or -errno (-ENOENT/-ECONNREFUSED: the forwarder
 * is not running) with the reason in err. */
int fwdctl_call(const char *run_dir, const char *line, char **reply, size_t *len, int timeout_ms, char *err,
		size_t errlen);

#endif
