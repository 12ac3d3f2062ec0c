/* pgw-agent - reconciles table inet pgw in the kernel from the state DB (nftables)
 * Skeleton until its capability lands: configuration, DB schema check, notify socket with the
 * polling fallback, signals. Each change it is told about is logged. */
#include "daemon.h"
#include "log.h"

static void on_change(struct daemon *d, const struct notify_msg *msg, const char *from)
{
	(void)d;
	if (msg)
		log_info("change: %s topics=0x%x from %s (event)", notify_type_str(msg->type), msg->topics,
			 *from ? from : "a client");
	else
		log_info("change: reload (%s)", from);
}

static const struct daemon_info info = {
	.name = "pgw-agent",
	.sock_name = "agent",
	.summary = "reconciles table inet pgw in the kernel from the state DB (nftables)",
	.on_change = on_change,
	.validate = NULL,
};

int main(int argc, char **argv)
{
	struct daemon d;
	int r = daemon_init(&d, &info, argc, argv);

	if (r == DAEMON_CONTINUE)
		r = daemon_run(&d) < 0 ? DAEMON_EXIT_FAIL : DAEMON_EXIT_OK;
	daemon_fini(&d);
	return r == DAEMON_EXIT_FAIL ? 1 : 0;
}
