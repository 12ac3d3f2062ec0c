/* neigh.c - see neigh.h. */
#include "neigh.h"

#include "net.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static int talk(struct mnl_socket *nl, struct nlmsghdr *nlh, int tolerate)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	ssize_t n;

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	if (mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, mnl_socket_get_portid(nl), NULL, NULL) < 0 && errno != tolerate)
		return -errno;
	return 0;
}

static struct nlmsghdr *neigh_msg(char *buf, uint16_t type, uint16_t flags, uint32_t seq, unsigned ifindex,
				  const struct binding *b)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ndmsg *nd;
	int v4 = net_ip_is4(&b->addr);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = seq;
	nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	nd->ndm_family = v4 ? AF_INET : AF_INET6;
	nd->ndm_ifindex = (int)ifindex;
	nd->ndm_state = NUD_PERMANENT;
	nd->ndm_type = RTN_UNICAST;
	mnl_attr_put(nlh, NDA_DST, v4 ? 4 : 16, v4 ? b->addr.a + 12 : b->addr.a);
	if (type == RTM_NEWNEIGH)
		mnl_attr_put(nlh, NDA_LLADDR, 6, b->mac);
	return nlh;
}

static int bound(const struct bindset *s, const struct net_ip *a)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (memcmp(&s->e[i].addr, a, sizeof(*a)) == 0)
			return 1;
	return 0;
}

int neigh_bind(const char *ifname, const struct bindset *want, const struct bindset *gone, char *err, size_t errlen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned ifindex = if_nametoindex(ifname);
	struct mnl_socket *nl;
	uint32_t seq = (uint32_t)time(NULL);
	int r = 0;

	if (!ifindex || ((!want || !want->n) && (!gone || !gone->n)))
		return 0;
	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		snprintf(err, errlen, "rtnetlink: %s", strerror(errno));
		if (nl)
			mnl_socket_close(nl);
		return r;
	}
	for (size_t i = 0; gone && i < gone->n && r == 0; i++)
		if (!bound(want, &gone->e[i].addr))
			r = talk(nl, neigh_msg(buf, RTM_DELNEIGH, 0, ++seq, ifindex, &gone->e[i]), ENOENT);
	for (size_t i = 0; want && i < want->n && r == 0; i++) {
		r = talk(nl, neigh_msg(buf, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, ++seq, ifindex, &want->e[i]),
			 0);
		if (r == -EAFNOSUPPORT && !net_ip_is4(&want->e[i].addr))
			r = 0; /* IPv6 off in this kernel: no IPv6 client to bind */
	}
	if (r < 0)
		snprintf(err, errlen, "permanent neighbour entries on %s: %s", ifname, strerror(-r));
	mnl_socket_close(nl);
	return r;
}
