/* link.c - see link.h. */
#include "link.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct link_watch {
	struct mnl_socket *nl;
};

struct link_watch *link_watch_open(char *err, size_t errlen)
{
	struct link_watch *lw = calloc(1, sizeof(*lw));

	if (!lw) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	lw->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!lw->nl || mnl_socket_bind(lw->nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "rtnetlink link events: %s", strerror(errno));
		link_watch_close(lw);
		return NULL;
	}
	return lw;
}

int link_watch_fd(const struct link_watch *lw)
{
	return mnl_socket_get_fd(lw->nl);
}

void link_watch_drain(struct link_watch *lw)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];

	/* ENOBUFS (events lost) is fine too: the caller looks at the names afresh */
	while (mnl_socket_recvfrom(lw->nl, buf, sizeof(buf)) > 0)
		;
}

void link_watch_close(struct link_watch *lw)
{
	if (!lw)
		return;
	if (lw->nl)
		mnl_socket_close(lw->nl);
	free(lw);
}

int link_present(const char *name)
{
	return name[0] && if_nametoindex(name) != 0;
}
