/* libFuzzer: notify datagrams from any local process must never crash a daemon. */
#include "notify.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct notify_msg m, m2;
	uint8_t again[NOTIFY_WIRE_SIZE];

	if (notify_decode(data, size, &m) == 0) {
		/* whatever decodes re-encodes to a datagram that decodes to the same message */
		assert(strlen(m.text) < NOTIFY_TEXT_MAX);
		notify_encode(&m, again);
		assert(notify_decode(again, sizeof(again), &m2) == 0);
		assert(m2.type == m.type && m2.topics == m.topics && m2.id == m.id && m2.seq == m.seq &&
		       m2.status == m.status && m2.value == m.value && strcmp(m2.text, m.text) == 0);
	}
	return 0;
}
