/* pgw-agent - the only writer of kernel state: reconciles table inet pgw from the state DB.
 * A change of rule parameters (interfaces, ports, modes) rebuilds the whole table in one
 * batch; a change of who is active or blocked moves set elements only, also in one batch.
 * The table is never deleted on exit (fail closed); `pgw-agent --flush` removes it. */
#include "conntrack.h"
#include "daemon.h"
#include "db.h"
#include "desired.h"
#include "evloop.h"
#include "link.h"
#include "log.h"
#include "neigh.h"
#include "nft.h"
#include "route.h"
#include "spoof.h"
#include "tc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MS	 1000
#define VERIFY_MS	 5000
#define EVENT_REBUILD_MS 200  /* at most one rebuild for another program's changes in this time */
#define SPOOF_MS	 2000 /* the MAC binding's refusals are read this often (while some client is bound) */
/* Clients that stop being active: the forwarder is told at once and resets their relayed
 * connections through the NAT mapping; their conntrack entries go this much later. Deleted
 * first, the reset could not reach them (their curl would hang, not fail). Nothing can leak in
 * between: the sets already refuse them, and their mapped flows end at the local forwarder. */
#define FORGET_DELAY_MS 300
#define REPORT_RETRY_MS 250 /* a report that found it held: tried again */
/* No decision (the DB unreadable, a setting in it that does not parse) for this long: every
 * client blocked. A proxy that went down, or changed its exit, meanwhile is blocked within a
 * second when the agent can read; when it cannot, the last decision is trusted this long only
 * (a grace for a passing error, not a health result's freshness). */
#define UNDECIDED_MAX_MS 5000

struct agent {
	struct daemon *d;
	struct nft *nft;
	struct desired applied;
	int have_applied;
	char route_err[300];	  /* the TPROXY routing's verify failed so (said once) */
	int dirty;		  /* a reconcile is due (coalesces bursts of notifications) */
	int failing;		  /* the last apply failed: retry on the timer */
	uint64_t undecided_since; /* when reading a decision began to fail (0: the last read one) */
	int blind;		  /* every client blocked for it (block_all) */
	int applied_none;	  /* what is applied is block_none's table (no decision since the start, or none
				   * that the kernel would take back after a flush) */
	int none_failing;	  /* block_none could not build it (said once) */
	uint64_t generation;
	unsigned long errors_total;
	struct ev_handle *kick, *verify, *link_h, *forget_h, *spoof_h, *watch_h;
	struct spoof_log *spoof;
	struct tc_state *tc;
	int tc_failing;		    /* the last rate limit apply failed: retried on the timer */
	struct forget_queue forget; /* to lose their conntrack entries when forget_h fires */
	struct link_watch *links;
	struct nft_watch *watch; /* another program's changes to our table, at once */
	int force;		 /* the next kick rebuilds the whole table */
	uint64_t forced_at;	 /* when the last such rebuild ran */
	int lan_present, wan_present, ifaces_known;
	char iface_error[256]; /* "" while both interfaces exist */
	/* reports not written yet (the DB's write lock held by another process): report_flush */
	int due_ok, due_err;
	const char *due_kind;
	uint64_t due_us;
	char due_error[512];
	unsigned report_busy; /* flushes that found the lock held, since the last written */
	struct ev_handle *report_h;
};

/* One report written: 0, -EBUSY (another process holds the DB's write lock: try again), or -EIO
 * (said here). */
static int report_write(struct agent *a, const char *kind, uint64_t us, const char *error)
{
	sqlite3_stmt *st = NULL;
	const char *sql =
	    error ? "UPDATE agent_state SET last_error = ?1, error_at = unixepoch(), errors_total = ?2, "
		    "lan_iface = ?7, wan_iface = ?8, lan_iface_present = ?9, wan_iface_present = ?10, "
		    "iface_error = ?11 WHERE id = 1"
		  : "UPDATE agent_state SET generation = ?2, applied_at = unixepoch(), duration_us = ?3, kind = ?4, "
		    "active_count = ?5, blocked_count = ?6, last_error = ?1, lan_iface = ?7, wan_iface = ?8, "
		    "lan_iface_present = ?9, wan_iface_present = ?10, iface_error = ?11 WHERE id = 1";
	int rc;

	if ((rc = sqlite3_prepare_v2(a->d->db, sql, -1, &st, NULL)) != SQLITE_OK) {
		sqlite3_finalize(st);
		if ((rc & 0xff) == SQLITE_BUSY)
			return -EBUSY;
		log_warnx("report: %s", sqlite3_errmsg(a->d->db));
		return -EIO;
	}
	/* an apply error first; else what is wrong with the interfaces; else nothing */
	sqlite3_bind_text(st, 1, error ? error : a->iface_error, -1, SQLITE_STATIC);
	if (error) {
		sqlite3_bind_int64(st, 2, (sqlite3_int64)a->errors_total);
	} else {
		sqlite3_bind_int64(st, 2, (sqlite3_int64)a->generation);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)us);
		sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)a->applied.active.n);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)a->applied.blocked.n);
	}
	sqlite3_bind_text(st, 7, a->applied.rules.lan_iface, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, a->applied.rules.wan_iface, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, a->lan_present);
	sqlite3_bind_int(st, 10, a->wan_present);
	sqlite3_bind_text(st, 11, a->iface_error, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;
	if ((rc & 0xff) == SQLITE_BUSY)
		return -EBUSY;
	log_warnx("report: %s", sqlite3_errmsg(a->d->db));
	return -EIO;
}

static void on_report(struct evloop *ev, void *arg);

/* What is due goes to agent_state, then everyone is told. The DB's write lock is waited for
 * DB_BRIEF_WAIT_MS only: the kernel's rules are what matter, and a process that holds the lock
 * (a long import, one stopped mid-write) must not hold the loop that applies them (5 s with the
 * DB's own busy timeout). What could not be written is tried again REPORT_RETRY_MS on. */
static void report_flush(struct agent *a)
{
	struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_AGENT};
	int wrote = 0, r;

	db_brief_wait(a->d->db, 1);
	if (a->due_ok && (r = report_write(a, a->due_kind, a->due_us, NULL)) != -EBUSY) {
		a->due_ok = 0;
		wrote |= r == 0;
	}
	if (!a->due_ok && a->due_err && (r = report_write(a, NULL, 0, a->due_error)) != -EBUSY) {
		a->due_err = 0;
		wrote |= r == 0;
	}
	db_brief_wait(a->d->db, 0);
	if (a->due_ok || a->due_err) {
		if (!a->report_busy++)
			log_warnx("report: the state DB is locked by another process; retried every %d ms",
				  REPORT_RETRY_MS);
		if (!a->report_h || ev_timer_set(a->report_h, REPORT_RETRY_MS, 0) < 0)
			log_warnx("report: no timer to retry it: it waits for the next one");
	} else if (a->report_busy) {
		log_info("report: written (the DB was locked %u times)", a->report_busy);
		a->report_busy = 0;
	}
	/* no dbwatch_sync() here: our own commits do not move data_version, and the fingerprint
	 * must not be taken after the state was read (a result that went stale meanwhile would
	 * then never be seen as a change) */
	if (wrote)
		notify_broadcast(a->d->nt, &m);
}

static void on_report(struct evloop *ev, void *arg)
{
	(void)ev;
	report_flush(arg);
}

/* An apply's outcome (error NULL: applied as kind, in us), for agent_state. A success makes an
 * earlier error not written yet moot; an error after a success not written yet goes after it. */
static void report(struct agent *a, const char *kind, uint64_t us, const char *error)
{
	if (error) {
		a->due_err = 1;
		snprintf(a->due_error, sizeof(a->due_error), "%s", error);
	} else {
		a->due_ok = 1;
		a->due_err = 0;
		a->due_kind = kind;
		a->due_us = us;
	}
	report_flush(a);
}

/* Do the interfaces the applied rules name exist? Returns 1 when that changed (reported by the
 * caller), 0 when not. A missing interface keeps the rules blocking (nft.c's invariant): the
 * agent carries on enforcing and says so until the interface is back. */
static int check_ifaces(struct agent *a)
{
	const struct desired_rules *r = &a->applied.rules;
	int lan = link_present(r->lan_iface), wan = link_present(r->wan_iface);
	char msg[sizeof(a->iface_error)];

	if (!a->have_applied)
		return 0;
	if (!lan || !wan)
		snprintf(msg, sizeof(msg), "%s%s%s%s%s%s%s: %s", !lan ? "lan_iface '" : "", !lan ? r->lan_iface : "",
			 !lan ? "'" : "", !lan && !wan ? " and " : "", !wan ? "wan_iface '" : "",
			 !wan ? r->wan_iface : "", !wan ? "'" : "",
			 !lan ? "no such interface; LAN clients are blocked until it is back (fail closed)"
			      : "no such interface; nothing can reach the upstream proxies until it is back");
	else
		msg[0] = 0;
	if (a->ifaces_known && lan == a->lan_present && wan == a->wan_present && strcmp(msg, a->iface_error) == 0)
		return 0;
	if (msg[0])
		log_error("interfaces: %s", msg);
	else if (a->ifaces_known && a->iface_error[0])
		log_info("interfaces: %s and %s are back; the report is cleared", r->lan_iface, r->wan_iface);
	a->lan_present = lan;
	a->wan_present = wan;
	a->ifaces_known = 1;
	snprintf(a->iface_error, sizeof(a->iface_error), "%s", msg);
	return 1;
}

/* Clients that stopped being active lose their conntrack state (REDIRECT's NAT mapping). */
static void forget_clients(const struct addrset *gone)
{
	char err[256];
	int n;

	if (gone->n == 0)
		return;
	n = conntrack_forget(gone, err, sizeof(err));
	if (n < 0)
		log_warnx("%s", err);
	else if (n > 0)
		log_info("conntrack: %d entries of %zu clients no longer active deleted", n, gone->n);
}

/* The clients that went at least delay_ms ago and are not active now lose their conntrack
 * state; the timer is set for the next one due. */
static void forget_due(struct agent *a, uint64_t delay_ms)
{
	static const struct addrset none;
	struct addrset due = {0};
	long long next;

	if (a->forget.n == 0)
		return;
	const struct addrset *active = a->have_applied ? &a->applied.active : &none;
	next = forget_take(&a->forget, active, ev_now_ms(), delay_ms, &due);
	if (next < 0) { /* out of memory: every one not active again now rather than none */
		log_warnx("conntrack: out of memory; the entries of %zu clients no longer active are deleted now",
			  a->forget.n);
		if (forget_take(&a->forget, active, ev_now_ms(), 0, &due) < 0) {
			log_warnx("conntrack: out of memory; %zu clients keep their entries for now", a->forget.n);
			if (a->forget_h) /* (the queue kept: tried again) */
				ev_timer_set(a->forget_h, FORGET_DELAY_MS, 0);
			return;
		}
	}
	forget_clients(&due);
	free(due.addr);
	if (next > 0 && (!a->forget_h || ev_timer_set(a->forget_h, (unsigned)next, 0) < 0))
		forget_due(a, 0); /* no timer: at once */
}

static void on_forget(struct evloop *ev, void *arg)
{
	(void)ev;
	forget_due(arg, FORGET_DELAY_MS);
}

/* gone (taken over), who the rules applied just now no longer hold active: the forwarder resets
 * their connections now, conntrack forgets each FORGET_DELAY_MS after it went (a decision that
 * takes nobody away leaves the waiting ones and their timer alone). */
static void forget_later(struct agent *a, struct addrset *gone)
{
	struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_HEALTH | TOPIC_MAPPINGS};

	if (gone->n == 0)
		return;
	notify_send(a->d->nt, "forwarder", &m);
	if (forget_add(&a->forget, gone, ev_now_ms()) < 0) {
		forget_clients(gone); /* out of memory: at once */
		return;
	}
	forget_due(a, FORGET_DELAY_MS); /* sets the timer for the first one due */
}

/* Element changes between what is applied and what is wanted: -ENOMEM or an nft error, else count. */
static int apply_elements(struct agent *a, const struct desired *want, char *err, size_t errlen)
{
	struct set_delta d;
	int r = set_delta_of(&a->applied, want, &d);

	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		return r;
	}
	if (r > 0) {
		int e = nft_apply_elements(a->nft, &d, err, errlen);
		if (e < 0)
			r = e;
		else
			log_info("applied: %zu now active, %zu now blocked, %zu with UDP (+%zu -%zu active, +%zu -%zu "
				 "blocked, +%zu -%zu UDP)",
				 want->active.n, want->blocked.n, want->udp.n, d.add_active.n, d.del_active.n,
				 d.add_blocked.n, d.del_blocked.n, d.add_udp.n, d.del_udp.n);
	}
	set_delta_free(&d);
	return r;
}

/* The rate limits (tc.c): apart from the table, and never a reason not to apply it (a limit is
 * not the kill switch); a failure is logged and retried every second. */
static void apply_limits(struct agent *a, const struct desired *want)
{
	char err[512];
	uint64_t t0 = ev_now_us();
	int r = tc_apply(a->tc, want->rules.lan_iface, &want->limits, err, sizeof(err));

	if (r < 0) {
		if (!a->tc_failing)
			log_error("%s; retrying every %d ms", err, RETRY_MS);
		a->tc_failing = 1;
		a->errors_total++;
		ev_timer_set(a->kick, RETRY_MS, 0);
		return;
	}
	if (r > 0)
		log_info("rate limits applied: %zu clients limited (%llu ms)", want->limits.n,
			 (unsigned long long)((ev_now_us() - t0 + 500) / 1000));
	else if (a->tc_failing)
		log_info("rate limits: recovered");
	a->tc_failing = 0;
}

/* The whole table rebuilt as d says: its spoof sets are new, so their counts start over. */
static int apply_full(struct agent *a, const struct desired *d, char *err, size_t errlen)
{
	int r = nft_apply_full(a->nft, d, err, errlen);

	if (r == 0)
		spoof_reset(a->spoof);
	return r;
}

/* No table of ours in the kernel (none at all, the boot failsafe's, or gone to another program's
 * `flush ruleset` since) and no decision to build one from: none applied since the start, or the
 * last one's rebuild refused too (put_back, block_all). With IP forwarding on nothing would stop
 * the clients. The table granting nobody, from the configuration alone (the DB's settings may be
 * what cannot be read), at once; it is then the decision applied, which block_all and a rebuild
 * start from. 1, or -1. */
static int block_none(struct agent *a)
{
	struct desired none;
	char err[256];

	if (desired_none(&a->d->cfg, &none, err, sizeof(err)) < 0 || apply_full(a, &none, err, sizeof(err)) < 0) {
		if (!a->none_failing++)
			log_warnx("no decision applied and table inet pgw is not there, and a table granting nobody "
				  "could not be built (tried again with each retry): %s",
				  err);
		desired_free(&none);
		return -1;
	}
	log_error("no decision applied and no table inet pgw of ours was there: built granting no client (from "
		  "the configuration alone) until one is");
	{ /* who was granted is not known: whatever is redirected to the forwarder goes */
		int n = conntrack_forget_redirected(none.rules.forwarder_port, none.rules.dns_port, err, sizeof(err));
		if (n < 0)
			log_warnx("%s", err);
		else if (n > 0)
			log_info("conntrack: %d entries redirected to pgw-forwarder deleted", n);
	}
	if (a->have_applied && !a->applied_none) { /* a decision's table was there before it went */
		forget_later(a, &a->applied.active);
		if (a->applied.bound.n &&
		    neigh_bind(a->applied.rules.lan_iface, NULL, &a->applied.bound, err, sizeof(err)) < 0)
			log_warnx("%s", err); /* (the next decision binds its own again) */
	}
	desired_free(&a->applied);
	a->applied = none;
	a->have_applied = 1;
	a->applied_none = 1; /* (who was active before is not known now: see reconcile) */
	a->none_failing = 0;
	a->blind = 1;
	return 1;
}

/* A rebuild was refused: when no table of ours is left (another program's flush), block_none's;
 * when ours is still there, it stands (-1: tried again at the next retry). */
static int none_if_gone(struct agent *a)
{
	return nft_table_present(a->nft) == 0 ? block_none(a) : -1;
}

/* No decision for UNDECIDED_MAX_MS: every client blocked, until a decision read and applied
 * says otherwise. With a decision applied: its clients, all into the blocked sets (an element
 * update; a rebuild from the blocked decision when that fails or the table must be rebuilt);
 * none applied yet (the agent restarted, the table is a process before's): the granting sets
 * flushed. None applied and no table of ours there: block_none at once, without the wait (and
 * the rest as before if it fails); the blocked decision refused with no table of ours there:
 * block_none too. Returns 1 when the kernel now blocks every client (or did
 * already), 0 when the time has not come, -1 when the block failed (tried again at the next
 * retry: never a rebuild from the decision it replaces). */
static int block_all(struct agent *a, int force_full)
{
	struct desired blind;
	struct addrset gone = a->applied.active;
	char err[256];
	int r, none_failed = 0;

	if (!a->have_applied && nft_table_present(a->nft) == 0) {
		if (block_none(a) == 1)
			return 1;
		none_failed = 1;
	}
	if (ev_now_ms() - a->undecided_since < UNDECIDED_MAX_MS)
		return 0;
	if (a->blind && !force_full)
		return 1;
	if (!a->have_applied) {
		struct addrset granted;

		if ((r = nft_flush_grants(a->nft, &granted, err, sizeof(err))) < 0 && r != -ENOENT) {
			log_warnx("no decision applied for %d s, and the granting sets could not be flushed: %s",
				  UNDECIDED_MAX_MS / 1000, err);
			free(granted.addr);
			return -1;
		}
		/* no table of ours, and none could be built (said): maybe no table at all */
		if (r == -ENOENT && none_failed) {
			free(granted.addr);
			return -1;
		}
		if (!a->blind && r == -ENOENT)
			log_error("no decision applied for %d s, and table inet pgw has no granting sets (none "
				  "there): nothing to flush",
				  UNDECIDED_MAX_MS / 1000);
		else if (!a->blind)
			log_error("no decision applied for %d s: every client blocked (the granting sets flushed, %zu "
				  "clients were in them) until one is",
				  UNDECIDED_MAX_MS / 1000, granted.n);
		a->blind = 1;
		forget_later(a, &granted); /* their connections end as for any block */
		free(granted.addr);
		return 1;
	}
	blind = a->applied; /* (its rules, proxies, bindings and limits: the same arrays) */
	blind.active = blind.udp = (struct addrset){0};
	if (addrset_union(&a->applied.active, &a->applied.blocked, &blind.blocked) < 0)
		return -1;
	r = force_full ? -1 : apply_elements(a, &blind, err, sizeof(err));
	if (r < 0 && (r = apply_full(a, &blind, err, sizeof(err))) < 0) {
		log_warnx("no decision applied for %d s, and every client could not be blocked: %s",
			  UNDECIDED_MAX_MS / 1000, err);
		free(blind.blocked.addr);
		return none_if_gone(a);
	}
	if (!a->blind)
		log_error("no decision applied for %d s: every client blocked (%zu were active) until one is",
			  UNDECIDED_MAX_MS / 1000, gone.n);
	free(a->applied.blocked.addr);
	free(a->applied.udp.addr);
	a->applied.active = blind.active;
	a->applied.blocked = blind.blocked;
	a->applied.udp = blind.udp;
	a->blind = 1;
	forget_later(a, &gone); /* their connections end as for any block */
	free(gone.addr);
	return 1;
}

/* Our table gone or changed by another program while no decision can be applied, and block_all's
 * 5 s not over: the last decision put back at once (with IP forwarding on, nothing would stop the
 * clients meanwhile), or, when even that is refused and no table of ours is there, the table
 * granting nobody (block_none). 1 when the kernel holds one of them, else -1. */
static int put_back(struct agent *a)
{
	char err[256];

	if (apply_full(a, &a->applied, err, sizeof(err)) == 0) {
		log_warnx("table inet pgw rebuilt as last applied (no decision can be applied now)");
		return 1;
	}
	log_warnx("table inet pgw could not be rebuilt as last applied either: %s", err);
	return none_if_gone(a);
}

/* No decision applied now: the 5 s of block_all count from the first such attempt. */
static void undecided(struct agent *a)
{
	if (!a->undecided_since)
		a->undecided_since = ev_now_ms();
}

/* A decision read and applied: whatever block_all did is over. */
static void decided(struct agent *a)
{
	if (a->blind)
		log_info("a decision read and applied again: clients as it says");
	a->blind = 0;
	a->undecided_since = 0;
	a->applied_none = 0; /* (what is applied is a decision, or one just like it) */
}

static void reconcile(struct agent *a, int force_full)
{
	struct desired want;
	char err[512];
	const char *kind = "elements";
	uint64_t t0 = ev_now_us();
	int r, said = 0;

	a->dirty = 0;
	r = desired_load(a->d->db, &a->d->cfg, &want, err, sizeof(err));
	if (r < 0) {
		int b;

		undecided(a);
		b = block_all(a, force_full);
		/* our table gone or changed and nothing new to decide from: the last decision (while it
		 * is trusted: past that, only the block's rebuild) */
		if (b == 0 && force_full && a->have_applied && put_back(a) == 1)
			b = 1;
		if (b == 1)
			force_full = 0;		   /* (the kernel holds what a->applied says) */
		if (a->blind && a->applied_none) { /* (from block_none on, each retry's report says it) */
			size_t n = strlen(err);
			snprintf(err + n, sizeof(err) - n,
				 "; no table of ours was there: every client blocked (a table granting nobody, from "
				 "the configuration)");
			said = 1;
		}
		goto fail;
	}
	if (force_full || !a->have_applied || !desired_rules_equal(&want, &a->applied)) {
		kind = "full";
		/* TPROXY needs its route before the rules use it; it goes after they stop using it */
		/* (TCP in tproxy mode, UDP with udp_relay on) */
		int route = want.rules.tproxy || want.rules.udp;
		r = route ? route_tproxy(1, err, sizeof(err)) : 0;
		if (r == 0)
			r = apply_full(a, &want, err, sizeof(err));
		if (r == 0 && !route)
			r = route_tproxy(0, err, sizeof(err));
		if (r == 0)
			log_info(
			    "applied: table inet pgw rebuilt (%s, UDP relay %s), %zu active, %zu blocked, %zu with "
			    "UDP",
			    want.rules.tproxy ? "tproxy" : "redirect", want.rules.udp ? "on" : "off", want.active.n,
			    want.blocked.n, want.udp.n);
	} else {
		r = apply_elements(a, &want, err, sizeof(err));
		if (r == 0) { /* nothing changed; after a failure (a setting set wrong and back) that is a success */
			if (a->tc)
				apply_limits(a, &want); /* a limit may have */
			desired_free(&want);
			decided(a); /* (unchanged: the decision read may block every client too) */
			if (a->failing) {
				log_info("recovered: rules applied again");
				a->failing = 0;
				report(a, kind, ev_now_us() - t0, NULL);
			}
			return;
		}
		if (r < 0) { /* the kernel's sets differ from what we think: rebuild them all */
			log_warnx("element update failed (%s); rebuilding the table", err);
			kind = "full";
			r = apply_full(a, &want, err, sizeof(err));
		}
	}
	/* the rate limits after the table, whatever became of it: a block is not kept waiting for
	 * tc's work (thousands of classes at a start, a LAN interface recreated) */
	if (a->tc)
		apply_limits(a, &want);
	if (r < 0) {
		desired_free(&want);
		undecided(a); /* read, and not applied: no decision either */
		/* (a rebuild: the kernel may hold the new table while a->applied is the old one) */
		int b = block_all(a, 1);
		/* and our table gone meanwhile (a flush, then this rebuild refused): the last one back */
		if (b == 0 && a->have_applied && nft_table_present(a->nft) == 0)
			b = put_back(a);
		if (b == 1)
			kind = "elements"; /* (the kernel holds what a->applied says: no forced retry for that) */
		goto fail;
	}
	if (a->have_applied && a->applied.bound.n && strcmp(a->applied.rules.lan_iface, want.rules.lan_iface) != 0) {
		char nerr[256]; /* another LAN interface: the old one's entries go */
		if (neigh_bind(a->applied.rules.lan_iface, NULL, &a->applied.bound, nerr, sizeof(nerr)) < 0)
			log_warnx("%s", nerr);
	}
	if (want.bound.n || (a->have_applied && a->applied.bound.n)) {
		/* replies to a bound address go to its MAC: not fatal (the rules refuse the other host
		 * already), retried at the next verify */
		char nerr[256];
		if (neigh_bind(want.rules.lan_iface, &want.bound, a->have_applied ? &a->applied.bound : NULL, nerr,
			       sizeof(nerr)) < 0)
			log_warnx("%s", nerr);
	}
	{ /* whoever was active and is not any more (at start, and after block_none's table: every
	   * blocked client, since who was active before is not known): no tracked state may outlive
	   * the decision */
		static const struct addrset none;
		struct addrset gone = {0};
		int e = a->have_applied && !a->applied_none ? addrset_minus(&a->applied.active, &want.active, &gone)
							    : addrset_minus(&want.blocked, &none, &gone);
		desired_free(&a->applied);
		a->applied = want;
		a->have_applied = 1;
		a->applied_none = 0;
		if (e == 0) /* once applied: a pending client active again is not forgotten */
			forget_later(a, &gone);
		free(gone.addr);
	}
	a->generation++;
	decided(a);
	if (a->failing)
		log_info("recovered: rules applied again");
	a->failing = 0;
	check_ifaces(a);
	report(a, kind, ev_now_us() - t0, NULL);
	return;
fail:
	if (!said && a->blind && ev_now_ms() - a->undecided_since >= UNDECIDED_MAX_MS) {
		size_t n = strlen(err);
		snprintf(err + n, sizeof(err) - n, "; no decision applied for %d s: every client blocked",
			 UNDECIDED_MAX_MS / 1000);
	}
	/* retried as a rebuild: the table may be gone or changed, or be the new one while a->applied
	 * is the old (a route step failed after it), and an element update would compare with that */
	if (force_full || strcmp(kind, "full") == 0)
		a->force = 1;
	a->errors_total++;
	log_error("reconcile failed, retrying in %d ms: %s", RETRY_MS, err);
	a->failing = 1;
	report(a, kind, 0, err);
	ev_timer_set(a->kick, RETRY_MS, 0);
}

/* The generation goes on from where the last agent left it: monotonic across restarts. */
static void load_generation(struct agent *a)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(a->d->db, "SELECT generation, errors_total FROM agent_state WHERE id = 1", -1, &st,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		a->generation = (uint64_t)sqlite3_column_int64(st, 0);
		a->errors_total = (unsigned long)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
}

static void on_kick(struct evloop *ev, void *arg)
{
	struct agent *a = arg;

	int force = a->force;

	(void)ev;
	a->force = 0; /* set again by a rebuild that fails: its retry is a rebuild too */
	if (force)
		a->forced_at = ev_now_ms();
	reconcile(a, force || (a->failing && !a->have_applied));
}

/* Reconcile once the current batch of events is handled (coalesces bursts). */
static void kick(struct agent *a)
{
	if (!a->dirty) {
		a->dirty = 1;
		ev_timer_set(a->kick, 0, 0);
	}
}

/* A link appeared, disappeared or was renamed. */
static void on_link(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct agent *a = arg;

	(void)ev, (void)fd, (void)events;
	link_watch_drain(a->links);
	kick(a); /* a missing interface changes the rules (desired_rules.lan_missing/wan_missing) */
}

/* Someone (an admin, a failsafe load, another tool) replaced or removed our table. */
static void on_verify(struct evloop *ev, void *arg)
{
	struct agent *a = arg;
	int r = nft_table_present(a->nft);

	(void)ev;
	if (!a->links)
		kick(a); /* no link events: look at the interfaces now and then */
	if (r == 0) {
		log_warnx("table inet pgw is missing or not ours; rebuilding");
		reconcile(a, 1);
	} else if (r > 0) {
		log_debug("verify: table inet pgw as built (awake, probe set there, forward chain dropping)");
	} else {
		log_emit(LOG_LVL_WARN, NULL, -r, "cannot verify table inet pgw");
	}
	/* (not while a reconcile is failing: it may be the one taking them away) */
	if (a->have_applied && !a->failing && (a->applied.rules.tproxy || a->applied.rules.udp)) {
		char err[sizeof(a->route_err)];
		int made = 0, rr = route_tproxy_restore(&made, err, sizeof(err));

		if (made)
			log_warnx("the TPROXY policy routing was gone (%d of its routes and rules removed by another "
				  "tool); restored",
				  made);
		if (rr < 0 && strcmp(err, a->route_err) != 0) /* said once, not every 5 s */
			log_warnx("cannot verify the TPROXY policy routing: %s", err);
		else if (rr == 0 && a->route_err[0])
			log_info("the TPROXY policy routing verifies again");
		snprintf(a->route_err, sizeof(a->route_err), "%s", rr < 0 ? err : "");
	}
	if (a->tc && a->have_applied && !tc_present(a->tc, a->applied.rules.lan_iface)) {
		log_warnx("the rate limits' qdiscs are gone (deleted, or the interface was recreated); rebuilding");
		tc_forget(a->tc);
		kick(a);
	}
	if (a->have_applied && a->applied.bound.n) { /* an entry flushed or replaced meanwhile */
		char nerr[256];
		if (neigh_bind(a->applied.rules.lan_iface, &a->applied.bound, NULL, nerr, sizeof(nerr)) < 0)
			log_warnx("%s", nerr);
	}
}

/* Another program changed our table (nftables.service's `flush ruleset` at its start, reload or
 * stop; an admin's nft): rebuilt at once, not at the next verify (with IP forwarding on, the
 * clients would be routed to the WAN without it). Events lost: the table is looked at. */
static void on_nft_event(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct agent *a = arg;
	int r = nft_watch_drain(a->watch);

	(void)ev, (void)fd, (void)events;
	if (r > 0)
		log_warnx("table inet pgw was changed by another program; rebuilding");
	else if (r == -ENOBUFS && nft_table_present(a->nft) == 0)
		log_warnx("table inet pgw is missing or not ours; rebuilding");
	else
		return;
	/* through the kick timer: a burst is one rebuild, and a program that answers every change
	 * with one of its own gets a rebuild at most every EVENT_REBUILD_MS, not a storm */
	a->force = 1;
	if (!a->dirty) {
		uint64_t now = ev_now_ms();
		a->dirty = 1;
		ev_timer_set(
		    a->kick,
		    now < a->forced_at + EVENT_REBUILD_MS ? (unsigned)(a->forced_at + EVENT_REBUILD_MS - now) : 0, 0);
	}
}

static void on_spoof(struct evloop *ev, void *arg)
{
	struct agent *a = arg;

	(void)ev;
	if (a->have_applied && a->applied.bound.n)
		spoof_poll(a->spoof, a->nft, a->d->db, &a->applied.bound);
}

static void on_change(struct daemon *d, const struct notify_msg *msg, const char *from)
{
	struct agent *a = d->priv;
	const uint32_t relevant = TOPIC_PROXIES | TOPIC_MAPPINGS | TOPIC_HEALTH | TOPIC_SETTINGS;

	if (msg && (msg->type != NOTIFY_CHANGED || !(msg->topics & relevant)))
		return;
	log_debug("change from %s (%s)", msg ? (*from ? from : "a client") : from, msg ? "event" : "poll");
	kick(a);
}

static const struct daemon_info info = {
    .name = "pgw-agent",
    .sock_name = "agent",
    .summary = "Reconciles table inet pgw in the kernel from the state DB (nftables, one atomic batch).\n"
	       "  --flush             delete table inet pgw and exit (uninstall; clients lose their rules)",
    .on_change = on_change,
    .watch_sql = DBWATCH_ENFORCEMENT_SQL, /* proxies, mappings, health status, settings, staleness */
    .watch_topics = TOPIC_PROXIES | TOPIC_MAPPINGS | TOPIC_HEALTH | TOPIC_SETTINGS,
    .net_admin = 1,
};

static int flush_and_exit(void)
{
	char err[512];
	struct nft *n = nft_open(err, sizeof(err));

	if (!n || nft_flush(n, err, sizeof(err)) < 0 || route_tproxy(0, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgw-agent: --flush: %s\n", err);
		nft_close(n);
		return 1;
	}
	nft_close(n);
	printf("pgw-agent: table inet pgw and the TPROXY policy route removed\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct daemon d;
	struct agent a;
	char err[512];
	int r;

	if (argc == 2 && strcmp(argv[1], "--flush") == 0)
		return flush_and_exit();
	memset(&a, 0, sizeof(a));
	r = daemon_init(&d, &info, argc, argv);
	if (r == DAEMON_CONTINUE) {
		a.d = &d;
		d.priv = &a;
		load_generation(&a);
		/* armed when a report finds the DB locked */
		if ((a.report_h = ev_add_timer(d.ev, REPORT_RETRY_MS, 0, on_report, &a)))
			ev_timer_stop(a.report_h);
		a.nft = nft_open(err, sizeof(err));
		a.kick = ev_add_timer(d.ev, 0, 0, on_kick, &a); /* first reconcile at once */
		a.verify = ev_add_timer(d.ev, VERIFY_MS, VERIFY_MS, on_verify, &a);
		/* armed when clients stop being active */
		if ((a.forget_h = ev_add_timer(d.ev, FORGET_DELAY_MS, 0, on_forget, &a)))
			ev_timer_stop(a.forget_h);
		a.spoof = spoof_open();
		a.tc = tc_open();
		a.spoof_h = ev_add_timer(d.ev, SPOOF_MS, SPOOF_MS, on_spoof, &a);
		a.links = link_watch_open(err, sizeof(err));
		if (a.links)
			a.link_h = ev_add_fd(d.ev, link_watch_fd(a.links), EPOLLIN, on_link, &a);
		else /* the 5 s verify timer looks at the names as well */
			log_warnx("%s: interface changes are seen every %d s only", err, VERIFY_MS / 1000);
		if (a.nft && (a.watch = nft_watch_open(a.nft, err, sizeof(err))) &&
		    !(a.watch_h = ev_add_fd(d.ev, nft_watch_fd(a.watch), EPOLLIN, on_nft_event, &a)))
			snprintf(err, sizeof(err), "nf_tables events: cannot watch them");
		if (a.nft && !a.watch_h) /* the verify timer still finds a missing table, within VERIFY_MS */
			log_warnx("%s: another program's changes to the table are seen every %d s only", err,
				  VERIFY_MS / 1000);
		if (!a.nft || !a.kick || !a.verify) {
			log_error("%s", a.nft ? "timers failed" : err);
			r = DAEMON_EXIT_FAIL;
		} else {
			a.dirty = 1;
			r = daemon_run(&d) < 0 ? DAEMON_EXIT_FAIL : DAEMON_EXIT_OK;
		}
	}
	/* fail closed: whatever is in the kernel stays there */
	forget_due(&a, 0);
	link_watch_close(a.links);
	nft_watch_close(a.watch);
	spoof_close(a.spoof);
	tc_close(a.tc);
	desired_free(&a.applied);
	nft_close(a.nft);
	daemon_fini(&d);
	return r == DAEMON_EXIT_FAIL ? 1 : 0;
}
