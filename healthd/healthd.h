/* healthd.h - pgw-healthd's state, shared by its modules (private to healthd/): main.c
 * schedules the probes, store.c writes results, hysteresis.c decides the status, pipelining.c
 * learns which SOCKS5 proxies take a pipelined handshake. */
#ifndef HEALTHD_H
#define HEALTHD_H

#include "daemon.h"
#include "hysteresis.h"
#include "net.h"
#include "probe.h"

#include <stdint.h>
#include <sys/socket.h>

#define TICK_MS 250

struct target {
	int64_t id;
	char name[65];
	enum upstream_type type;
	struct sockaddr_storage addr; /* IPv4 or IPv6 */
	int addr_ok;
	char user[UPSTREAM_CRED_MAX + 1], pass[UPSTREAM_CRED_MAX + 1];
	struct hysteresis hs; /* status (unknown | up | down) and the counts behind it */
	char exit_ip[PROBE_IP_MAX];
	uint64_t next_due;
	struct probe *probe;
	struct probe *pipe_probe;	  /* the pipelined capability probe */
	int pipe_tested;		  /* since the proxy was loaded or last changed or failed */
	int pipelining;			  /* as stored in proxy_health.pipelining */
	char (*waiters)[NOTIFY_NAME_MAX]; /* who asked for a check now: all get the one probe's result */
	size_t n_waiters, cap_waiters;
	int seen;
};

struct healthd {
	struct daemon *d;
	struct target *t;
	size_t n, cap;
	struct net_http_url url;
	int url_ok;
	unsigned interval_ms, down_interval_ms, timeout_ms, fail_th, succ_th, hist_max;
	int pipeline_check; /* setting socks_pipelining */
	struct ev_handle *tick;
	int api_dirty;
};

struct target *healthd_find(struct healthd *h, int64_t id);

#endif
