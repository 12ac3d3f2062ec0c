/* pgwctl check - probe a proxy now through pgw-healthd (the exchange the API's health gate
 * uses: notify_check()). Exit 0 when up, 1 when down, 2 when healthd does not answer. */
#include "pgwctl.h"

#include "notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CHECK_WAIT_MS 30000

int cmd_check(struct ctl *c, int argc, char **argv)
{
	struct notify_msg res;
	char name[NOTIFY_NAME_MAX], err[256];
	struct notify *n;
	long long id;
	char *end;
	int r;

	if (argc != 2 || (id = strtoll(argv[1], &end, 10)) <= 0 || *end) {
		fprintf(stderr, "usage: pgwctl check PROXY_ID\n");
		return CTL_USAGE;
	}
	snprintf(name, sizeof(name), "ctl-%d", (int)getpid());
	n = notify_open(c->cfg.run_dir, name, err, sizeof(err));
	if (!n) {
		fprintf(stderr, "pgwctl: %s\n", err);
		return CTL_FAIL;
	}
	r = notify_check(n, id, CHECK_WAIT_MS, &res);
	notify_close(n);
	if (r == -ENOENT) {
		fprintf(stderr, "pgwctl: pgw-healthd is not running (no socket in %s)\n", c->cfg.run_dir);
		return CTL_USAGE;
	}
	if (r < 0) {
		fprintf(stderr, "pgwctl: no answer from pgw-healthd within %d s\n", CHECK_WAIT_MS / 1000);
		return CTL_USAGE;
	}
	if (r)
		printf("proxy %lld: up, %d ms, exit ip %s\n", id, res.value, res.text);
	else
		printf("proxy %lld: down: %s\n", id, res.text);
	return r ? CTL_OK : CTL_FAIL;
}
