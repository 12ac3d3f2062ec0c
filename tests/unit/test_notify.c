/* The notify path: the wire format, delivery between sockets, absent peers, and the polling
 * fallback catching a change whose datagram was lost. */
#include "testlib.h"

#include "dbwatch.h"
#include "evloop.h"
#include "notify.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

static void test_roundtrip(void **state)
{
	struct notify_msg in = {.type = NOTIFY_CHECK_RESULT,
				.topics = TOPIC_HEALTH | TOPIC_PROXIES,
				.id = -5,
				.seq = 0x1122334455667788ull,
				.status = 1,
				.value = -42},
			  out;
	uint8_t buf[NOTIFY_WIRE_SIZE];

	(void)state;
	strcpy(in.text, "198.51.100.10");
	notify_encode(&in, buf);
	assert_int_equal(notify_decode(buf, sizeof(buf), &out), 0);
	assert_int_equal(out.type, in.type);
	assert_int_equal(out.topics, in.topics);
	assert_int_equal(out.id, -5);
	assert_true(out.seq == in.seq);
	assert_int_equal(out.status, 1);
	assert_int_equal(out.value, -42);
	assert_string_equal(out.text, "198.51.100.10");
}

/* The longest text fills the datagram exactly; a longer one is cut, never overrun. */
static void test_text_boundary(void **state)
{
	struct notify_msg in = {.type = NOTIFY_CHECK_RESULT}, out;
	uint8_t buf[NOTIFY_WIRE_SIZE + 8];

	(void)state;
	memset(buf, 0xAA, sizeof(buf));
	memset(in.text, 'x', NOTIFY_TEXT_MAX - 1);
	in.text[NOTIFY_TEXT_MAX - 1] = '\0';
	notify_encode(&in, buf);
	assert_int_equal(buf[NOTIFY_WIRE_SIZE], 0xAA); /* nothing written past the datagram */
	assert_int_equal(notify_decode(buf, NOTIFY_WIRE_SIZE, &out), 0);
	assert_int_equal(strlen(out.text), NOTIFY_TEXT_MAX - 1);
	buf[36] = NOTIFY_TEXT_MAX - 1 + 1; /* claims one byte more than fits */
	assert_int_equal(notify_decode(buf, NOTIFY_WIRE_SIZE, &out), -EBADMSG);
	/* a text with no NUL in its NOTIFY_TEXT_MAX bytes: cut to what fits */
	memset(buf, 0xAA, sizeof(buf));
	memset(in.text, 'y', NOTIFY_TEXT_MAX);
	notify_encode(&in, buf);
	assert_int_equal(buf[NOTIFY_WIRE_SIZE], 0xAA);
	assert_int_equal(buf[36], NOTIFY_TEXT_MAX - 1);
	assert_int_equal(notify_decode(buf, NOTIFY_WIRE_SIZE, &out), 0);
	assert_int_equal(strlen(out.text), NOTIFY_TEXT_MAX - 1);
}

static void test_decode_rejects_bad_datagrams(void **state)
{
	struct notify_msg m = {.type = NOTIFY_CHANGED}, out;
	uint8_t buf[NOTIFY_WIRE_SIZE], bad[NOTIFY_WIRE_SIZE];

	(void)state;
	notify_encode(&m, buf);
	assert_int_equal(notify_decode(buf, sizeof(buf) - 1, &out), -EBADMSG); /* size */
	memcpy(bad, buf, sizeof(bad));
	bad[0] = 'X';
	assert_int_equal(notify_decode(bad, sizeof(bad), &out), -EBADMSG); /* magic */
	memcpy(bad, buf, sizeof(bad));
	bad[4] = 2;
	assert_int_equal(notify_decode(bad, sizeof(bad), &out), -EBADMSG); /* version */
	memcpy(bad, buf, sizeof(bad));
	bad[36] = NOTIFY_TEXT_MAX;
	assert_int_equal(notify_decode(bad, sizeof(bad), &out), -EBADMSG); /* text length */
	memcpy(bad, buf, sizeof(bad));
	bad[36] = 3; /* text "\0\0\0": embedded NUL */
	assert_int_equal(notify_decode(bad, sizeof(bad), &out), -EBADMSG);
	memcpy(bad, buf, sizeof(bad));
	bad[5] = 99;
	assert_int_equal(notify_decode(bad, sizeof(bad), &out), -ENOTSUP); /* unknown type: ignore */
}

static void test_send_recv_and_sender_name(void **state)
{
	char *dir = tl_tmpdir(), err[256], from[NOTIFY_NAME_MAX];
	struct notify *agent = notify_open(dir, "agent", err, sizeof(err));
	struct notify *api = notify_open(dir, "api", err, sizeof(err));
	struct notify_msg m = {.type = NOTIFY_CHECK_REQUEST, .id = 7}, got;

	(void)state;
	assert_non_null(agent);
	assert_non_null(api);
	assert_int_equal(notify_recv(agent, &got, from, sizeof(from)), -EAGAIN);
	assert_int_equal(notify_send(api, "agent", &m), 0);
	assert_int_equal(notify_recv(agent, &got, from, sizeof(from)), 0);
	assert_int_equal(got.type, NOTIFY_CHECK_REQUEST);
	assert_int_equal(got.id, 7);
	assert_true(got.seq > 0);
	assert_string_equal(from, "api");
	notify_close(api);
	notify_close(agent);
	tl_rmdir(dir);
}

static void test_absent_peer_and_bad_names(void **state)
{
	char *dir = tl_tmpdir(), err[256], path[300];
	struct notify *api = notify_open(dir, "api", err, sizeof(err));
	struct notify_msg m = {.type = NOTIFY_CHANGED};

	(void)state;
	assert_int_equal(notify_send(api, "healthd", &m), -ENOENT);
	/* a stale socket file left by a crashed daemon */
	snprintf(path, sizeof(path), "%s/healthd.sock", dir);
	{
		struct notify *h = notify_open(dir, "healthd", err, sizeof(err));
		assert_non_null(h);
		close(notify_fd(h)); /* socket gone, file stays */
		free(h);
	}
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(notify_send(api, "healthd", &m), -ECONNREFUSED);
	/* a restarted daemon replaces the stale file */
	{
		struct notify *h = notify_open(dir, "healthd", err, sizeof(err));
		assert_non_null(h);
		assert_int_equal(notify_send(api, "healthd", &m), 0);
		notify_close(h);
	}
	assert_int_equal(notify_send(api, "../etc", &m), -EINVAL);
	assert_null(notify_open(dir, "Bad/Name", err, sizeof(err)));
	assert_non_null(strstr(err, "invalid socket name"));
	errno = 0; /* (fopen of a socket fails anyway: ENXIO) */
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(errno, ENOENT); /* notify_close removed its socket file */
	notify_close(api);
	tl_rmdir(dir);
}

static void test_broadcast_skips_self(void **state)
{
	char *dir = tl_tmpdir(), err[256];
	struct notify *n[4];
	struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_MAPPINGS}, got;

	(void)state;
	for (int i = 0; i < 4; i++) {
		n[i] = notify_open(dir, notify_peers[i], err, sizeof(err));
		assert_non_null(n[i]);
	}
	assert_int_equal(notify_broadcast(n[3], &m), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(notify_recv(n[i], &got, NULL, 0), 0);
		assert_int_equal(got.topics, TOPIC_MAPPINGS);
	}
	assert_int_equal(notify_recv(n[3], &got, NULL, 0), -EAGAIN);
	for (int i = 0; i < 4; i++)
		notify_close(n[i]);
	tl_rmdir(dir);
}

/* Sending never blocks: with the receiver's queue full the sender gets -EAGAIN at once. */
static void test_full_queue_never_blocks(void **state)
{
	char *dir = tl_tmpdir(), err[256];
	struct notify *rx = notify_open(dir, "forwarder", err, sizeof(err));
	struct notify *tx = notify_open(dir, "api", err, sizeof(err));
	struct notify_msg m = {.type = NOTIFY_CHANGED};
	int r = 0, sent = 0;

	(void)state;
	while (sent < 100000 && (r = notify_send(tx, "forwarder", &m)) == 0)
		sent++;
	assert_int_equal(r, -EAGAIN);
	assert_true(sent > 0);
	notify_close(tx);
	notify_close(rx);
	tl_rmdir(dir);
}

/* A subscriber wired like a daemon: notify fd + dbwatch polling fallback. */
struct sub {
	struct evloop *ev;
	struct notify *nt;
	struct dbwatch *w;
	int by_event, by_poll;
	uint64_t t_seen;
};

static void sub_on_notify(struct evloop *ev, int fd, uint32_t events, void *arg)
{
	struct sub *s = arg;
	struct notify_msg m;

	(void)fd, (void)events;
	while (notify_recv(s->nt, &m, NULL, 0) == 0) {
		s->by_event++;
		dbwatch_sync(s->w);
		s->t_seen = ev_now_ms();
	}
	(void)ev; /* keep running past a poll period: the poll must not report it again */
}

static void sub_on_poll(void *arg)
{
	struct sub *s = arg;

	s->by_poll++;
	s->t_seen = ev_now_ms();
	ev_stop(s->ev);
}

static void give_up(struct evloop *ev, void *arg)
{
	(void)arg;
	ev_stop(ev);
}

static void writer_commit(struct evloop *ev, void *arg)
{
	sqlite3 *w = arg;

	(void)ev;
	assert_int_equal(tl_exec(w, "INSERT INTO settings (key, value) VALUES (hex(randomblob(4)), 'x')"), SQLITE_OK);
}

static void run_scenario(int send_datagram, struct sub *s)
{
	char *dir = tl_tmpdir(), err[256];
	sqlite3 *reader = tl_db(dir, "s.db"), *writer;
	struct notify *tx;
	struct ev_handle *commit, *deadline;
	uint64_t t0;

	writer = NULL;
	{
		char path[300];
		snprintf(path, sizeof(path), "%s/s.db", dir);
		assert_int_equal(db_open(path, 0, &writer, err, sizeof(err)), 0);
	}
	s->ev = ev_new();
	s->nt = notify_open(dir, "agent", err, sizeof(err));
	tx = notify_open(dir, "api", err, sizeof(err));
	assert_non_null(s->nt);
	assert_non_null(tx);
	assert_non_null(ev_add_fd(s->ev, notify_fd(s->nt), EPOLLIN, sub_on_notify, s));
	s->w = dbwatch_new(s->ev, reader, 1000, NULL, sub_on_poll, s);
	assert_non_null(s->w);
	/* commit from the writer's side, with or without telling anyone */
	commit = ev_add_timer(s->ev, 1, 0, writer_commit, writer);
	assert_non_null(commit);
	deadline = ev_add_timer(s->ev, send_datagram ? 1600 : 5000, 0, give_up, NULL);
	assert_non_null(deadline);
	t0 = ev_now_ms();
	if (send_datagram) {
		struct notify_msg m = {.type = NOTIFY_CHANGED, .topics = TOPIC_MAPPINGS};
		writer_commit(s->ev, writer);
		ev_del(s->ev, commit);
		assert_int_equal(notify_send(tx, "agent", &m), 0);
	}
	assert_int_equal(ev_run(s->ev), 0);
	s->t_seen = s->t_seen ? s->t_seen - t0 : 0;
	dbwatch_free(s->w);
	notify_close(tx);
	notify_close(s->nt);
	ev_free(s->ev);
	db_close(writer);
	db_close(reader);
	tl_rmdir(dir);
}

static void test_event_path_delivers(void **state)
{
	struct sub s = {0};

	(void)state;
	run_scenario(1, &s);
	assert_int_equal(s.by_event, 1);
	assert_true(s.t_seen < 1000);	/* before the first poll could have seen it */
	assert_int_equal(s.by_poll, 0); /* synced: the poll does not report the same change again */
}

static void test_lost_datagram_caught_by_polling(void **state)
{
	struct sub s = {0};

	(void)state;
	run_scenario(0, &s);
	assert_int_equal(s.by_event, 0);
	assert_int_equal(s.by_poll, 1);
	/* functional bound of the fallback (poll period 1 s, DoD < 5 s); not a speed benchmark */
	assert_true(s.t_seen > 0 && s.t_seen < 5000);
}

static void count_poll(void *arg)
{
	++*(int *)arg;
}

/* With a fingerprint, a commit to rows nobody watches does not wake the daemon; one that
 * changes the fingerprint does. */
static void test_fingerprint_filters_commits(void **state)
{
	char *dir = tl_tmpdir(), path[300], err[256];
	sqlite3 *reader = tl_db(dir, "f.db"), *writer = NULL;
	struct evloop *ev = ev_new();
	struct dbwatch *w;
	int hits = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/f.db", dir);
	assert_int_equal(db_open(path, 0, &writer, err, sizeof(err)), 0);
	w = dbwatch_new(ev, reader, 100, "SELECT sum(seq) FROM change_seq WHERE topic = 'settings'", count_poll, &hits);
	assert_non_null(w);
	assert_int_equal(tl_exec(writer, "INSERT INTO audit (action) VALUES ('noise')"), SQLITE_OK);
	assert_non_null(ev_add_timer(ev, 350, 0, give_up, NULL));
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(hits, 0); /* a commit, but not to settings */
	assert_int_equal(tl_exec(writer, "INSERT INTO settings (key, value) VALUES ('x', 'y')"), SQLITE_OK);
	assert_non_null(ev_add_timer(ev, 350, 0, give_up, NULL));
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(hits, 1);
	dbwatch_free(w);
	ev_free(ev);
	db_close(writer);
	db_close(reader);
	tl_rmdir(dir);
}

/* A DB that does not read (here: another connection's exclusive lock on a database in rollback
 * journal mode, no busy timeout) is told as a change once, not at every poll, and its reading
 * again as another: the daemon's reload finds out either way (the agent and the forwarder
 * block after 5 s undecided), never trusting what it read before for as long as it lasts. */
static void test_unreadable_is_a_change(void **state)
{
	/* data_version alone, and with a fingerprint (the agent's, the forwarder's, healthd's way) */
	static const char *const fps[] = {NULL, "SELECT count(*) FROM t"};

	(void)state;
	for (int k = 0; k < 2; k++) {
		char *dir = tl_tmpdir(), path[300];
		sqlite3 *reader = NULL, *writer = NULL;
		struct evloop *ev = ev_new();
		struct dbwatch *w;
		int hits = 0;

		snprintf(path, sizeof(path), "%s/u.db", dir);
		assert_int_equal(sqlite3_open(path, &writer), SQLITE_OK);
		assert_int_equal(sqlite3_open(path, &reader), SQLITE_OK);
		assert_int_equal(tl_exec(writer, "CREATE TABLE t (x)"), SQLITE_OK);
		w = dbwatch_new(ev, reader, 100, fps[k], count_poll, &hits);
		assert_non_null(w);
		assert_int_equal(tl_exec(writer, "BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)"), SQLITE_OK);
		assert_non_null(ev_add_timer(ev, 550, 0, give_up, NULL));
		assert_int_equal(ev_run(ev), 0);
		assert_int_equal(hits, 1); /* five polls that did not read: one change */
		assert_int_equal(dbwatch_hits(w), 1);
		/* reads again, with what was committed meanwhile: one change for both (not a second one
		 * at the next poll for what the first already told) */
		assert_int_equal(tl_exec(writer, "COMMIT"), SQLITE_OK);
		assert_non_null(ev_add_timer(ev, 350, 0, give_up, NULL));
		assert_int_equal(ev_run(ev), 0);
		assert_int_equal(hits, 2);
		assert_non_null(ev_add_timer(ev, 350, 0, give_up, NULL)); /* and nothing more after */
		assert_int_equal(ev_run(ev), 0);
		assert_int_equal(hits, 2);
		assert_int_equal(tl_exec(writer, "INSERT INTO t VALUES (2)"), SQLITE_OK); /* a change: seen as ever */
		assert_non_null(ev_add_timer(ev, 350, 0, give_up, NULL));
		assert_int_equal(ev_run(ev), 0);
		assert_int_equal(hits, 3);
		/* an outage that changed nothing (rolled back): its end is told all the same (the
		 * daemon's reload failed at its start), once */
		assert_int_equal(tl_exec(writer, "BEGIN EXCLUSIVE; INSERT INTO t VALUES (3)"), SQLITE_OK);
		assert_non_null(ev_add_timer(ev, 350, 0, give_up, NULL));
		assert_int_equal(ev_run(ev), 0);
		assert_int_equal(hits, 4);
		assert_int_equal(tl_exec(writer, "ROLLBACK"), SQLITE_OK);
		assert_non_null(ev_add_timer(ev, 350, 0, give_up, NULL));
		assert_int_equal(ev_run(ev), 0);
		assert_int_equal(hits, 5);
		assert_non_null(ev_add_timer(ev, 350, 0, give_up, NULL));
		assert_int_equal(ev_run(ev), 0);
		assert_int_equal(hits, 5);
		dbwatch_free(w);
		ev_free(ev);
		sqlite3_close(writer);
		sqlite3_close(reader);
		tl_rmdir(dir);
	}
}

/* A health result going stale is a change with no commit at all: the enforcement fingerprint
 * is read on every poll and moves when an 'up' result passes its fresh_until (0008). */
static void test_fingerprint_sees_staleness(void **state)
{
	char *dir = tl_tmpdir();
	sqlite3 *db = tl_db(dir, "s.db");
	struct evloop *ev = ev_new();
	struct dbwatch *w;
	int hits = 0;

	(void)state;
	assert_int_equal(tl_exec(db, "INSERT INTO proxies (name, type, host, port) VALUES ('p', 'socks5', 'h', 1);"
				     "UPDATE proxy_health SET status = 'up', fresh_until = unixepoch() + 1"),
			 SQLITE_OK);
	w = dbwatch_new(ev, db, 100, DBWATCH_ENFORCEMENT_SQL, count_poll, &hits);
	assert_non_null(w);
	assert_int_equal(tl_int(db, "SELECT sum(active) FROM mapping_state"),
			 0); /* no mapping yet: just the view runs */
	assert_non_null(ev_add_timer(ev, 2500, 0, give_up, NULL));
	assert_int_equal(ev_run(ev), 0);
	assert_int_equal(hits, 1); /* went stale once, nothing committed */
	assert_int_equal(tl_int(db, "SELECT stale FROM health_state"), 1);
	dbwatch_free(w);
	ev_free(ev);
	db_close(db);
	tl_rmdir(dir);
}

/* A stand-in for pgw-healthd's check service: an odd id is up, an even one down, and an id at
 * or above `hole` never answered (a black hole); answers are held until `batch` are due (side by
 * side asks are the only way to get them); when each ask came is kept. */
struct fake_healthd {
	struct notify *nt;
	_Atomic int64_t hole;
	atomic_int stop, n, batch;
	_Atomic uint64_t hold_until; /* nothing read before then (ev_now_ms): its queue fills */
	uint64_t at_ms[16];
	int64_t id[16];
	struct notify_msg due[16];
	int n_due;
};

static void *fake_healthd_run(void *p)
{
	struct fake_healthd *f = p;

	while (!f->stop) {
		struct pollfd pfd = {.fd = notify_fd(f->nt), .events = POLLIN};
		struct notify_msg m, a = {.type = NOTIFY_CHECK_RESULT};
		char from[NOTIFY_NAME_MAX];
		int i;

		if (ev_now_ms() < f->hold_until) {
			usleep(2000);
			continue;
		}
		if (poll(&pfd, 1, 20) <= 0 || notify_recv(f->nt, &m, from, sizeof(from)) < 0)
			continue;
		if ((i = f->n) < 16) {
			f->at_ms[i] = ev_now_ms();
			f->id[i] = m.id;
			f->n = i + 1;
		}
		if (m.type != NOTIFY_CHECK_REQUEST || m.id >= f->hole)
			continue;
		a.id = m.id;
		a.status = (uint32_t)(m.id & 1);
		a.value = (int32_t)m.id * 10;
		snprintf(a.text, sizeof(a.text), "%s", a.status ? "203.0.113.7" : "connection refused");
		f->due[f->n_due++ % 16] = a;
		if (f->n_due >= f->batch) {
			for (int j = 0; j < f->n_due && j < 16; j++)
				notify_send(f->nt, from, &f->due[j]);
			f->n_due = 0;
		}
	}
	return NULL;
}

static void wait_n(struct fake_healthd *f, int n)
{
	for (int i = 0; i < 300 && f->n < n; i++)
		usleep(10000);
	assert_int_equal(f->n, n);
}

/* A fake healthd on its own thread and the API's socket asking it: each notify_check_many test's
 * fixture (a fresh one each, so no late ask of another test is counted). */
struct check_lab {
	char *dir;
	struct notify *api;
	struct fake_healthd f;
	pthread_t th;
};

static int check_lab_up(void **state)
{
	struct check_lab *l = calloc(1, sizeof(*l));
	char err[256];

	assert_non_null(l);
	l->dir = tl_tmpdir();
	l->f.hole = 6;
	l->f.batch = 1;
	assert_non_null(l->api = notify_open(l->dir, "api", err, sizeof(err)));
	assert_non_null(l->f.nt = notify_open(l->dir, "healthd", err, sizeof(err)));
	assert_int_equal(pthread_create(&l->th, NULL, fake_healthd_run, &l->f), 0);
	*state = l;
	return 0;
}

static int check_lab_down(void **state)
{
	struct check_lab *l = *state;

	l->f.stop = 1;
	assert_int_equal(pthread_join(l->th, NULL), 0);
	notify_close(l->f.nt);
	notify_close(l->api);
	tl_rmdir(l->dir);
	free(l);
	return 0;
}

/* No healthd socket at all: -ENOENT, nothing decided. */
static void test_check_no_healthd(void **state)
{
	char *dir = tl_tmpdir(), err[256];
	struct notify *api = notify_open(dir, "api", err, sizeof(err));
	const int64_t ids[2] = {1, 2};
	struct notify_msg res[2];
	int st[2];

	(void)state;
	assert_non_null(api);
	assert_int_equal(notify_check_many(api, ids, 2, 2, 500, 5000, res, st), -ENOENT);
	assert_int_equal(notify_check(api, 1, 500, res), -ENOENT);
	notify_close(api);
	tl_rmdir(dir);
}

/* Up, down and one never answered, answers matched by id; a stale answer queued before is not
 * taken; the one-proxy form. */
static void test_check_mixed(void **state)
{
	struct check_lab *l = *state;
	const int64_t ids[6] = {1, 2, 3, 4, 5, 6};
	struct notify_msg res[6], stale = {.type = NOTIFY_CHECK_RESULT, .id = 1, .status = 0};
	int st[6];

	assert_int_equal(notify_send(l->f.nt, "api", &stale), 0);
	assert_int_equal(notify_check_many(l->api, ids, 6, 3, 1000, 8000, res, st), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(st[i], (int)(ids[i] & 1));
		assert_int_equal(res[i].id, ids[i]);
		assert_int_equal(res[i].value, ids[i] * 10);
		assert_string_equal(res[i].text, ids[i] & 1 ? "203.0.113.7" : "connection refused");
	}
	assert_int_equal(st[5], -ETIMEDOUT);
	wait_n(&l->f, 6);
	assert_int_equal(notify_check(l->api, 3, 1000, &res[0]), 1);
	assert_int_equal(notify_check(l->api, 8, 100, &res[0]), -ETIMEDOUT);
	wait_n(&l->f, 8); /* each asked once: no ask made twice */
}

/* Answers only once three asks are in: three side by side get them all. */
static void test_check_side_by_side(void **state)
{
	struct check_lab *l = *state;
	const int64_t ids[3] = {1, 2, 3};
	struct notify_msg res[3];
	int st[3];

	l->f.batch = 3;
	assert_int_equal(notify_check_many(l->api, ids, 3, 3, 5000, 5000, res, st), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(st[i], (int)(ids[i] & 1));
	wait_n(&l->f, 3);
}

/* Black holes only, two at a time, 200 ms each, a total not reached: every one asked, a slot freed
 * only by a wait's end (the times only grow with any delay). */
static void test_check_window(void **state)
{
	struct check_lab *l = *state;
	const int64_t ids[6] = {1, 2, 3, 4, 5, 6};
	struct notify_msg res[6];
	int st[6];
	uint64_t t0 = ev_now_ms();

	l->f.hole = 0;
	assert_int_equal(notify_check_many(l->api, ids, 6, 2, 200, 10000, res, st), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(st[i], -ETIMEDOUT);
	wait_n(&l->f, 6);
	assert_true(l->f.at_ms[2] >= t0 + 200 && l->f.at_ms[3] >= t0 + 200);
	assert_true(l->f.at_ms[4] >= t0 + 400 && l->f.at_ms[5] >= t0 + 400);
}

/* Once one is unanswered or down and the total is over, nothing more is asked (a healthd that
 * answers nothing holds no one for k waits). */
static void test_check_total_decides(void **state)
{
	struct check_lab *l = *state;
	const int64_t ids[6] = {1, 2, 3, 4, 5, 6};
	struct notify_msg res[6];
	int st[6];

	/* black holes, a total of 100 ms: the first two not answered decide it */
	l->f.hole = 0;
	assert_int_equal(notify_check_many(l->api, ids, 6, 2, 200, 100, res, st), 0);
	assert_int_equal(st[0], -ETIMEDOUT);
	assert_int_equal(st[1], -ETIMEDOUT);
	for (int i = 2; i < 6; i++)
		assert_int_equal(st[i], -ECANCELED);

	/* one down (id 2): 1 up at once, 3 asked in its slot; 4 asked if 2's answer came within the
	 * total (800 ms); 5 and 6 never (a slot frees at 1,000 ms at the earliest) */
	l->f.hole = 3;
	assert_int_equal(notify_check_many(l->api, ids, 6, 2, 1000, 800, res, st), 0);
	assert_int_equal(st[0], 1);
	assert_int_equal(st[1], 0);
	assert_int_equal(st[2], -ETIMEDOUT);
	assert_true(st[3] == -ETIMEDOUT || st[3] == -ECANCELED);
	assert_int_equal(st[4], -ECANCELED);
	assert_int_equal(st[5], -ECANCELED);
}

/* None down nor unanswered: every one asked, even with no total at all; a down answer (and nothing
 * unanswered) decides it alone. */
static void test_check_no_total(void **state)
{
	struct check_lab *l = *state;
	const int64_t up[6] = {1, 3, 5, 7, 9, 11}, down_first[4] = {2, 1, 3, 5};
	struct notify_msg res[6];
	int st[6];

	l->f.hole = 100;
	assert_int_equal(notify_check_many(l->api, up, 6, 2, 2000, 0, res, st), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(st[i], 1);
	assert_int_equal(notify_check_many(l->api, down_first, 4, 1, 2000, 0, res, st), 0);
	assert_int_equal(st[0], 0);
	for (int i = 1; i < 4; i++)
		assert_int_equal(st[i], -ECANCELED);
}

/* Fill healthd's queue while it reads nothing: from the API's socket, then from as many other
 * daemons' sockets as it takes where a sender's buffer runs out first. */
static int fill_queue(struct check_lab *l, struct notify **other, int n_other)
{
	struct notify_msg junk = {.type = NOTIFY_CHANGED, .topics = TOPIC_PROXIES};
	char err[256];

	usleep(50000); /* (the fake's poll of 20 ms over) */
	for (int j = 0;; j++) {
		int r = notify_send(l->api, "healthd", &junk);

		if (r == -EAGAIN)
			return n_other;
		assert_int_equal(r, 0);
		assert_true(j < 16);
		if (j == n_other) {
			char name[16];
			snprintf(name, sizeof(name), "junk%d", j);
			assert_non_null(other[n_other++] = notify_open(l->dir, name, err, sizeof(err)));
		}
		for (int i = 0; i < 5000 && notify_send(other[j], "healthd", &junk) == 0; i++)
			;
	}
}

/* healthd's queue full: the asks that find it full are made again, not given up at once; full
 * for longer than a wait, each is given up as unanswered at the end of its own wait, and once that
 * decided it, none is tried after the total; an ask's wait counts from its first try. */
static void test_check_queue_full(void **state)
{
	struct check_lab *l = *state;
	struct notify *other[16];
	const int64_t up[4] = {1, 3, 5, 7};
	struct notify_msg res[4];
	int st[4], n_other;
	uint64_t t0;

	l->f.hole = 100;
	l->f.hold_until = ev_now_ms() + 10000;
	n_other = fill_queue(l, other, 0);
	l->f.hold_until = ev_now_ms() + 300;
	assert_int_equal(notify_check_many(l->api, up, 4, 4, 2000, 2000, res, st), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(st[i], 1);

	/* full for 10 s, waits of 200 ms: the first given up at 200 ms, which decides it; the second,
	 * tried from then on, given up at 400 ms with a total of 2 s, not tried with one of 400 ms */
	l->f.hold_until = ev_now_ms() + 10000;
	n_other = fill_queue(l, other, n_other);
	t0 = ev_now_ms();
	assert_int_equal(notify_check_many(l->api, up, 2, 2, 200, 2000, res, st), 0);
	assert_int_equal(st[0], -ETIMEDOUT);
	assert_int_equal(st[1], -ETIMEDOUT);
	assert_true(ev_now_ms() - t0 >= 400); /* one wait after the other */
	n_other = fill_queue(l, other, n_other);
	assert_int_equal(notify_check_many(l->api, up, 2, 2, 200, 400, res, st), 0);
	assert_int_equal(st[0], -ETIMEDOUT);
	assert_int_equal(st[1], -ECANCELED);

	/* full for 1.5 s, then a black hole (8) asked, one at a time, a wait of 2 s and a total of
	 * 3 s: its wait ends 2 s after its first try, within the total, so 1 is asked after it (were
	 * it counted from the ask that went in, it would end past the total, and 1 not be asked) */
	{
		const int64_t late[2] = {8, 1};

		l->f.hole = 6;
		l->f.hold_until = ev_now_ms() + 10000;
		n_other = fill_queue(l, other, n_other);
		l->f.hold_until = ev_now_ms() + 1500;
		assert_int_equal(notify_check_many(l->api, late, 2, 1, 2000, 3000, res, st), 0);
		assert_int_equal(st[0], -ETIMEDOUT);
		assert_int_equal(st[1], 1);
	}
	l->f.hold_until = 0;
	while (n_other)
		notify_close(other[--n_other]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_text_boundary),
	    cmocka_unit_test(test_decode_rejects_bad_datagrams),
	    cmocka_unit_test(test_send_recv_and_sender_name),
	    cmocka_unit_test(test_check_no_healthd),
	    cmocka_unit_test_setup_teardown(test_check_mixed, check_lab_up, check_lab_down),
	    cmocka_unit_test_setup_teardown(test_check_side_by_side, check_lab_up, check_lab_down),
	    cmocka_unit_test_setup_teardown(test_check_window, check_lab_up, check_lab_down),
	    cmocka_unit_test_setup_teardown(test_check_total_decides, check_lab_up, check_lab_down),
	    cmocka_unit_test_setup_teardown(test_check_no_total, check_lab_up, check_lab_down),
	    cmocka_unit_test_setup_teardown(test_check_queue_full, check_lab_up, check_lab_down),
	    cmocka_unit_test(test_absent_peer_and_bad_names),
	    cmocka_unit_test(test_broadcast_skips_self),
	    cmocka_unit_test(test_full_queue_never_blocks),
	    cmocka_unit_test(test_event_path_delivers),
	    cmocka_unit_test(test_lost_datagram_caught_by_polling),
	    cmocka_unit_test(test_fingerprint_filters_commits),
	    cmocka_unit_test(test_unreadable_is_a_change),
	    cmocka_unit_test(test_fingerprint_sees_staleness),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
