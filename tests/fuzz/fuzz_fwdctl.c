/* libFuzzer: the forwarder's control requests (fwdctl.h). Whatever parses is within its bounds:
 * a known op, a page of 1 to FWDCTL_PAGE_MAX, an organisation of -1 or > 0, a close naming
 * exactly one connection or one client, a ping with nothing. */
#include "fwdctl.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fwdctl_req r;
	char err[256];

	err[0] = '\0';
	if (fwdctl_parse((const char *)data, size, &r, err, sizeof(err)) < 0) {
		assert(err[0] != '\0');
		return 0;
	}
	assert(r.op == FWDCTL_CONNS || r.op == FWDCTL_CLOSE || r.op == FWDCTL_STATS || r.op == FWDCTL_PING);
	if (r.op == FWDCTL_PING) /* it takes nothing */
		assert(!r.has_client && !r.id && !r.proxy && r.org == -1 && !r.cursor && !r.for_usage);
	assert(r.limit >= 1 && r.limit <= FWDCTL_PAGE_MAX);
	assert(r.org == -1 || r.org > 0);
	assert(r.proxy >= 0);
	if (r.op == FWDCTL_CLOSE)
		assert(!r.id != !r.has_client && r.proxy == 0);
	return 0;
}
