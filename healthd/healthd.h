/* healthd.h - pgw-healthd's state, shared by its modules (private to healthd/): main.c
 * schedules the probes, store.c writes results, hysteresis.c decides the status, pipelining.c
 * learns which SOCKS5 proxies take a pipelined handshake. */
#ifndef HEALTHD_H
#define HEALTHD_H

#include "daemon.h"
#include "dns.h"
#include "hysteresis.h"
#include "net.h"
#include "probe.h"
#include "settings.h"

#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define TICK_MS			250
#define HEALTHD_NAME_REFRESH_MS 60000 /* a proxy's host name is asked again this often */
#define HEALTHD_NAME_RETRY_MS	10000 /* ... and this often while it does not resolve */
/* How long a write may wait for a DB another process holds locked; past it the result is kept
 * and retried on a later tick, so a locked DB never stalls the probes (a stalled loop would
 * time out probes that were answered, and a down proxy is re-checked only every
 * health_down_interval). */
#define HEALTHD_DB_BUSY_MS     200
#define HEALTHD_STORE_RETRY_MS 500
#define HEALTHD_EXPECT_MAX     32 /* PROXY_EXPECTED_MAX of the API */

struct target {
	int64_t id;
	char name[257]; /* (for the log) 64 characters of up to 4 bytes */
	enum upstream_type type;
	char host[NET_HOST_MAX + 1]; /* as the proxy row has it: an address or a name */
	uint16_t port;
	struct sockaddr_storage resolved; /* host:port as resolved (common/hostres.c for a name) */
	int resolved_ok;		  /* ... or not (no such name) */
	int resolving;			  /* a name with no answer yet: no probe until it has one */
	uint64_t asked_ms;		  /* when the name was last asked (0: not yet) */
	struct sockaddr_storage addr;	  /* resolved, when the guard allows it: where probes go */
	int addr_ok;
	int refused;	    /* !addr_ok since the guard refuses the address (down at once, not after fail_th) */
	char addr_why[160]; /* when !addr_ok: why (no such name, or refused by proxy_allow_local) */
	struct net_http_url urls[NET_HTTP_URLS_MAX];   /* its organisation's health_url (org_settings), when own_url */
	int own_url, n_urls;			       /* n_urls 0: unusable */
	int url_idx;				       /* the URL the probe in flight fetches */
	int ok_url_idx;				       /* the one that answered last (the pipelining test asks it) */
	struct dns_upstream dns_up[DNS_UPSTREAMS_MAX]; /* its organisation's dns_upstream, when dns_own */
	int dns_own, dns_n;
	struct net_prefix expect[HEALTHD_EXPECT_MAX]; /* expected_exit: where it must leave from (none: anywhere) */
	int n_expect;
	int expect_broken;  /* expected_exit does not parse (written by hand): no exit is expected */
	int64_t verify_gen; /* proxy_health.verify_gen (0031) as loaded: what its probes' results are of */
	int64_t org_id;
	char user[UPSTREAM_CRED_MAX + 1], pass[UPSTREAM_CRED_MAX + 1];
	struct hysteresis hs; /* status (unknown | up | down) and the counts behind it */
	char exit_ip[PROBE_IP_MAX];
	uint64_t next_due;
	uint64_t done_at; /* when its last probe's result came (0: none yet): next_due follows an interval change */
	struct probe *probe;
	struct probe *pipe_probe;  /* the pipelined capability probe */
	int pipe_tested;	   /* since the proxy was loaded or last changed or failed */
	int pipelining;		   /* as stored in proxy_health.pipelining */
	struct probe *early_probe; /* the early-data capability probe (after the pipelined one) */
	int early_tested, early;   /* ... and proxy_health.early_data */
	int cap_retry[2];	   /* pipelining, early_data: a value the DB refused + 1, stored again (0: none) */
	char (*waiters)[NOTIFY_NAME_MAX]; /* who asked for a check now: all get the one probe's result */
	size_t n_waiters, cap_waiters;
	int seen;
	struct dnscheck *dns_check;  /* the DNS check in flight (dnscheck.c) */
	int dns_status;		     /* 0 unknown, 1 up, 2 down: as stored */
	struct udpcheck *udp_check;  /* the UDP check in flight (udpcheck.c) */
	int udp;		     /* 0 unknown, 1 yes, 2 no: as stored */
	struct probe_result unsaved; /* the latest result, when the DB refused it: retried each tick */
	time_t unsaved_at;
	int has_unsaved;
	/* where that result's probe went, taken with it (the target may have moved since; a retry
	 * must not record a new address no probe reached): probed_* (0030); addr "" unless good */
	char unsaved_host[NET_HOST_MAX + 1];
	uint16_t unsaved_port;
	char unsaved_addr[NET_IP_STR_MAX];
};

/* The settings used as read (no resource built from them, unlike health_url's, the CA's or the
 * resolvers'): put in use in one step. */
struct health_params {
	unsigned interval_ms, down_interval_ms, timeout_ms, fail_th, succ_th, hist_max;
	int pipeline_check; /* setting socks_pipelining */
	struct net_lan lan; /* lan_cidr, lan_iface's IPv6 networks: where no proxy (nor UDP relay) may be */
	int allow_local;    /* setting proxy_allow_local: ... unless this */
};

/* The settings healthd runs on, as read: put in use only when every one read (read_settings
 * in main.c), so a read that failed gives a probe no default (but at the start, with none in
 * use yet, until they read). */
struct health_settings {
	struct health_params params;
	char url[SETTINGS_VALUE_MAX], ca_file[SETTINGS_VALUE_MAX]; /* health_url, health_ca_file */
	char dns_mode[SETTINGS_VALUE_MAX], dns_upstream[SETTINGS_VALUE_MAX], dns_check_name[256];
	char udp_check[SETTINGS_VALUE_MAX];
};

struct healthd {
	struct daemon *d;
	struct target *t;
	size_t n, cap;
	int reload;		  /* the last load_targets read the proxies in part: the tick tries again */
	unsigned load_failing;	  /* tries in a row that failed (logged at the first, and when it ends) */
	int64_t loaded_dv;	  /* the DB's data_version read before the last load that read it all (-1: none such) */
	unsigned settings_unread; /* loads in a row whose settings did not read (the tick tries again) */
	uint64_t settings_tried_ms;		     /* the last load of them (ev_now_ms) */
	struct net_http_url urls[NET_HTTP_URLS_MAX]; /* health_url: tried in turn, up when any answers */
	int n_urls;				     /* 0: unusable */
	/* the trust store of https health URLs (health_ca_file, else the system's); replaced ones
	 * are kept until exit, since a probe in flight may use one */
	gnutls_certificate_credentials_t health_cred, retired[8];
	int n_retired;
	char health_ca[256];
	struct health_params params; /* in use (interval_ms 0: none yet, at the start) */
	struct ev_handle *tick;
	int api_dirty;
	int dns_on; /* dns_mode=proxy: check DNS through each proxy */
	struct dns_upstream dns_up[DNS_UPSTREAMS_MAX];
	int dns_n;
	char dns_name[256];
	void *dns_cred;			    /* gnutls_certificate_credentials_t for tls:// resolvers */
	struct sockaddr_storage udp_target; /* setting udp_check (a DNS server), resolved */
	int udp_target_ok;
	char udp_check_val[SETTINGS_VALUE_MAX]; /* the value udp_target was resolved from */
	uint64_t store_retry_at;		/* after a refused write: no other write before this (ev_now_ms) */
	int store_failing;			/* logged once per spell, and when it ends */
};

struct target *healthd_find(struct healthd *h, int64_t id);

#endif
