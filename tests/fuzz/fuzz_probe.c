/* libFuzzer: the health URL's answer, relayed by an upstream proxy, is untrusted. */
#include "../../healthd/probe.h"

#include <arpa/inet.h>
#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char ip[PROBE_IP_MAX];
	unsigned char tmp[16];
	int status;
	enum probe_error e = probe_parse_response((const char *)data, size, &status, ip);

	(void)probe_response_complete((const char *)data, size); /* framing: never reads past size */

	if (e == PROBE_OK) /* an exit IP is only ever a real address */
		assert(inet_pton(AF_INET, ip, tmp) == 1 || inet_pton(AF_INET6, ip, tmp) == 1);
	return 0;
}
