/* route.c - see route.h. */
#include "route.h"

#include "log.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define RULE_PRIORITY 24700u /* below the main table's 32766 */

/* Send one request and read its ack. tolerate: an errno that counts as success (*hit set to
 * whether the kernel answered with that errno, when hit is given). */
static int talk_hit(struct mnl_socket *nl, struct nlmsghdr *nlh, int tolerate, int *hit)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned portid = mnl_socket_get_portid(nl);
	ssize_t n;
	int r;

	if (hit)
		*hit = 0;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	r = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid, NULL, NULL);
	if (r < 0 && errno != tolerate)
		return -errno;
	if (r < 0 && hit)
		*hit = 1;
	return 0;
}

static int talk(struct mnl_socket *nl, struct nlmsghdr *nlh, int tolerate)
{
	return talk_hit(nl, nlh, tolerate, NULL);
}

static struct nlmsghdr *rule_msg(char *buf, uint8_t family, uint16_t type, uint16_t flags, uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct fib_rule_hdr *frh;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = seq;
	frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = family;
	frh->action = FR_ACT_TO_TBL;
	mnl_attr_put_u32(nlh, FRA_FWMARK, PGW_TPROXY_MARK);
	mnl_attr_put_u32(nlh, FRA_FWMASK, 0xffffffffu);
	mnl_attr_put_u32(nlh, FRA_TABLE, PGW_TPROXY_TABLE);
	mnl_attr_put_u32(nlh, FRA_PRIORITY, RULE_PRIORITY);
	return nlh;
}

static struct nlmsghdr *route_msg(char *buf, uint8_t family, uint16_t type, uint16_t flags, uint32_t seq, uint32_t lo)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = seq;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = family;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = RT_TABLE_UNSPEC;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_HOST;
	rtm->rtm_type = RTN_LOCAL;
	mnl_attr_put_u32(nlh, RTA_TABLE, PGW_TPROXY_TABLE);
	mnl_attr_put_u32(nlh, RTA_OIF, lo);
	return nlh;
}

/* on: 1 add (the route replaced), 2 add only what is missing (EXCL: nothing there is touched);
 * *made counts what was added. 0 remove. */
static int tproxy_family(struct mnl_socket *nl, char *buf, uint8_t f, int on, uint32_t *seq, uint32_t lo, int *made)
{
	int r, had;

	if (on) {
		r = talk_hit(
		    nl,
		    route_msg(buf, f, RTM_NEWROUTE, NLM_F_CREATE | (on == 2 ? NLM_F_EXCL : NLM_F_REPLACE), ++*seq, lo),
		    EEXIST, &had);
		*made += r == 0 && !had;
		if (r == 0)
			r = talk_hit(nl, rule_msg(buf, f, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, ++*seq), EEXIST,
				     &had);
		*made += r == 0 && !had;
		return r;
	}
	r = talk(nl, rule_msg(buf, f, RTM_DELRULE, 0, ++*seq), ENOENT);
	while (r == 0 && talk(nl, rule_msg(buf, f, RTM_DELRULE, 0, ++*seq), -1) == 0)
		; /* duplicates left by older runs */
	if (r == 0)
		r = talk(nl, route_msg(buf, f, RTM_DELROUTE, 0, ++*seq, lo), ESRCH);
	return r;
}

static int v6_said; /* IPv6 off here: said once */

/* on: 1 add, 0 remove, 2 restore what is missing (*made: how many). */
static int route_do(int on, int *made, char *err, size_t errlen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	uint32_t seq = (uint32_t)time(NULL), lo = if_nametoindex("lo");
	int r, r6;

	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "rtnetlink: %s", strerror(errno));
		if (nl)
			mnl_socket_close(nl);
		return -errno;
	}
	r = tproxy_family(nl, buf, AF_INET, on, &seq, lo, made);
	r6 = tproxy_family(nl, buf, AF_INET6, on, &seq, lo, made);
	/* IPv6 off here: no IPv6 client can be TPROXYed, nothing to route. Off in the kernel
	 * (ipv6.disable=1): no IPv6 rtnetlink (EAFNOSUPPORT, EOPNOTSUPP); off on lo (sysctl
	 * disable_ipv6, common on gateways): "IPv6 is disabled on nexthop device" (EACCES). Such a
	 * host's IPv4 must not wait on it: it used to fail every apply there (udp_relay is on by default) */
	if (r6 == -EAFNOSUPPORT || r6 == -EOPNOTSUPP || r6 == -EACCES) {
		if (!v6_said)
			log_info("TPROXY policy routing: IPv4 only (IPv6 is off here: %s)", strerror(-r6));
		v6_said = 1;
	} else if (r == 0 && r6 < 0) {
		r = r6;
	}
	if (r < 0)
		snprintf(err, errlen, "tproxy policy routing (%s): %s",
			 on == 2 ? "restore"
			 : on	 ? "add"
				 : "remove",
			 strerror(-r));
	mnl_socket_close(nl);
	return r;
}

int route_tproxy(int on, char *err, size_t errlen)
{
	int made = 0;

	return route_do(on ? 1 : 0, &made, err, errlen);
}

int route_tproxy_restore(int *made, char *err, size_t errlen)
{
	*made = 0;
	return route_do(2, made, err, errlen);
}
