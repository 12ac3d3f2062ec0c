/* libFuzzer: API request bodies are untrusted. Parse as pgw-api does, then validate against
 * the proxy and mapping field lists; an accepted body must really have the promised shape. */
#include "../../api/http.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct jfield fields[] = {
    {"name", J_STR, 1, 1, 64},	  {"type", J_STR, 1, 4, 6},	  {"host", J_STR, 1, 1, 253},
    {"port", J_INT, 1, 1, 65535}, {"password", J_STR, 0, 0, 255}, {"enabled", J_BOOL, 0, 0, 1},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
	char err[256];

	if (!j)
		return 0;
	for (int partial = 0; partial < 2; partial++) {
		if (json_check(j, fields, 6, partial, err, sizeof(err)) == 0) {
			json_t *port = json_object_get(j, "port");
			assert(json_is_object(j));
			assert(!port || (json_is_integer(port) && json_integer_value(port) >= 1 &&
					 json_integer_value(port) <= 65535));
			assert(partial || json_is_string(json_object_get(j, "name")));
		} else {
			assert(err[0]);
		}
	}
	json_decref(j);
	return 0;
}
