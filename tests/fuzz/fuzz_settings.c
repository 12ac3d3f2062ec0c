/* libFuzzer: settings values typed into the Configuration tab or pgwctl: "key\0value". */
#include "settings.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), err[600];
	const char *key, *value;
	int r;

	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = '\0';
	key = buf;
	value = buf + strlen(buf) + (strlen(buf) < size ? 1 : 0);
	r = settings_validate(key, value, err, sizeof(err));
	assert(r == 0 || r == -EINVAL || r == -ENOENT);
	if (r < 0)
		assert(strncmp(err, key, strlen(key) < 20 ? strlen(key) : 20) == 0);
	free(buf);
	return 0;
}
