/* pipelining.c - see pipelining.h. */
#include "pipelining.h"

#include "log.h"
#include "store.h"

/* Store what the pipelined probe found (or 0 when it must be found again) and tell the forwarder. */
static void set_pipelining(struct healthd *h, struct target *t, int v)
{
	struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_HEALTH, .id = t->id};

	if (t->pipelining == v || store_pipelining(h, t->id, v) < 0)
		return;
	t->pipelining = v;
	notify_send(h->d->nt, "forwarder", &m);
	h->api_dirty = 1;
}

/* Back to lock-step until a pipelined probe succeeds again. */
void pipelining_forget(struct healthd *h, struct target *t, const char *why)
{
	probe_cancel(t->pipe_probe);
	t->pipe_probe = NULL;
	t->pipe_tested = 0;
	if (t->pipelining)
		log_info("proxy %lld (%s): %s: lock-step SOCKS5 handshakes until tested again", (long long)t->id,
			 t->name, why);
	set_pipelining(h, t, 0);
}

static void on_pipe_probe_done(struct probe *p, const struct probe_result *r, void *arg)
{
	struct healthd *h = arg;

	for (size_t i = 0; i < h->n; i++) {
		struct target *t = &h->t[i];
		if (t->pipe_probe != p)
			continue;
		t->pipe_probe = NULL;
		t->pipe_tested = 1;
		log_info("proxy %lld (%s): %s pipelined SOCKS5 handshakes (%s)", (long long)t->id, t->name,
			 r->error == PROBE_OK ? "takes" : "does not take", r->reason);
		set_pipelining(h, t, r->error == PROBE_OK);
		return;
	}
}

/* After a good probe of a SOCKS5 proxy not yet tested: one more, pipelined, on the side. */
void pipelining_test(struct healthd *h, struct target *t)
{
	if (t->type != UPSTREAM_SOCKS5 || t->pipe_tested || t->pipe_probe || !h->pipeline_check)
		return;
	if (!(t->own_url ? t->n_urls : h->n_urls))
		return;
	t->pipe_probe =
	    probe_start(h->d->ev, &t->addr, t->type, t->user, t->pass, 1,
			&(t->own_url ? t->urls : h->urls)[t->ok_url_idx % (t->own_url ? t->n_urls : h->n_urls)],
			h->health_cred, h->timeout_ms, on_pipe_probe_done, h);
}

void pipelining_apply_setting(struct healthd *h)
{
	if (!h->pipeline_check)
		for (size_t i = 0; i < h->n; i++)
			pipelining_forget(h, &h->t[i], "socks_pipelining is off");
}
