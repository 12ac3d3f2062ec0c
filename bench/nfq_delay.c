/* nfq_delay - the bench lab's stand-in for distance (issue 24): every packet the ruleset sends to
 * NFQUEUE QUEUE is held MS milliseconds, then accepted. This machine's kernel has neither netem
 * nor fq, but it has nfnetlink_queue. A constant delay keeps the packets' order, so a ring in
 * arrival order is the whole scheduler. A full ring lets packets through at once rather than
 * drop them. Stops by itself after SECONDS (default 600), or on SIGTERM/SIGINT, accepting what
 * it still holds; the ruleset's `bypass` lets packets pass while it is not running.
 *
 *   nfq_delay QUEUE MS [SECONDS]      prints "nfq_delay ready" once bound, and at exit the count
 */
#define _GNU_SOURCE /* ppoll */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define RING (1 << 16)

static struct {
	uint32_t id;
	int64_t due;
} ring[RING];
static size_t head, tail;
static int64_t delay_ns;
static unsigned long long held, passed_at_once;
static volatile sig_atomic_t stop;

static int64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *arg)
{
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	uint32_t id = ph ? ntohl(ph->packet_id) : 0;

	(void)msg;
	(void)arg;
	if (tail - head >= RING) { /* full: late rather than lost */
		passed_at_once++;
		return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
	}
	ring[tail % RING].id = id;
	ring[tail % RING].due = now_ns() + delay_ns;
	tail++;
	held++;
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static char buf[1 << 16];
	struct nfq_handle *h;
	struct nfq_q_handle *qh;
	long queue, ms, secs = argc > 3 ? atol(argv[3]) : 600;
	int64_t end;
	int fd;

	if (argc < 3 || (queue = atol(argv[1])) < 0 || queue > 65535 || (ms = atol(argv[2])) < 0 || ms > 10000 ||
	    secs <= 0) {
		fprintf(stderr, "usage: nfq_delay QUEUE MS [SECONDS]\n");
		return 2;
	}
	delay_ns = ms * 1000000LL;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (!(h = nfq_open())) {
		perror("nfq_delay: nfq_open");
		return 1;
	}
	nfq_unbind_pf(h, AF_INET); /* old kernels want these; new ones ignore them */
	nfq_bind_pf(h, AF_INET);
	nfq_unbind_pf(h, AF_INET6);
	nfq_bind_pf(h, AF_INET6);
	if (!(qh = nfq_create_queue(h, (uint16_t)queue, on_packet, NULL)) ||
	    nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0 || nfq_set_queue_maxlen(qh, RING) < 0) {
		fprintf(stderr, "nfq_delay: queue %ld: %s\n", queue, strerror(errno));
		nfq_close(h);
		return 1;
	}
	nfnl_rcvbufsiz(nfq_nfnlh(h), 16 << 20);
	fd = nfq_fd(h);
	printf("nfq_delay ready: queue %ld, %ld ms\n", queue, ms);
	fflush(stdout);
	end = now_ns() + secs * 1000000000LL;
	while (!stop && now_ns() < end) {
		int64_t now = now_ns(), wait = head < tail ? ring[head % RING].due - now : 100000000LL;
		struct timespec ts = {.tv_sec = wait > 0 ? wait / 1000000000LL : 0,
				      .tv_nsec = wait > 0 ? wait % 1000000000LL : 0};
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (ppoll(&p, 1, &ts, NULL) > 0)
			while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
				nfq_handle_packet(h, buf, (int)n);
		for (now = now_ns(); head < tail && ring[head % RING].due <= now; head++)
			nfq_set_verdict(qh, ring[head % RING].id, NF_ACCEPT, 0, NULL);
	}
	for (; head < tail; head++) /* nothing held back at exit */
		nfq_set_verdict(qh, ring[head % RING].id, NF_ACCEPT, 0, NULL);
	printf("nfq_delay: %llu packets held %ld ms, %llu let through at once (ring full)\n", held, ms,
	       passed_at_once);
	nfq_destroy_queue(qh);
	nfq_close(h);
	return 0;
}
