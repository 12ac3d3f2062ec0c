/* libFuzzer: configuration from arbitrary NAME=VALUE lines must be accepted or refused with a
 * message naming a PGW_ variable; never a crash. */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *lines[32];

static const char *get(const char *name, void *ctx)
{
	size_t len = strlen(name);

	(void)ctx;
	for (int i = 0; i < 32 && lines[i]; i++)
		if (strncmp(lines[i], name, len) == 0 && lines[i][len] == '=')
			return lines[i] + len + 1;
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *save = NULL, *tok;
	struct pgw_config c;
	char err[512];
	int n = 0;

	memcpy(buf, data, size);
	buf[size] = '\0';
	memset(lines, 0, sizeof(lines));
	for (tok = strtok_r(buf, "\n", &save); tok && n < 31; tok = strtok_r(NULL, "\n", &save))
		if (strncmp(tok, "PGW_JWT_SECRET_FILE=", 20) != 0) /* no file reads from fuzz input */
			lines[n++] = tok;
	if (config_load(&c, get, NULL, err, sizeof(err)) < 0)
		assert(strncmp(err, "PGW_", 4) == 0);
	else
		config_wipe(&c);
	free(buf);
	return 0;
}
