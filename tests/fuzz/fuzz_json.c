/* libFuzzer: API request bodies are untrusted. Parse as pgw-api does (and with JSON_ALLOW_NUL too,
 * which pgw-api does not use, so that json_check's own NUL rule is reached), then validate against a
 * field list of every kind (strings with lengths in characters, integers with ranges, booleans,
 * lists with item counts; required and optional): json_check accepts a body exactly when a
 * second, independent reading of the rules says it has the promised shape (every key a listed
 * field of the right type within its bounds, no NUL in a string, no control character in a name, every required field
 * present unless partial), and says why when it refuses. */
#include "../../api/http.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct jfield fields[] = {
    {"name", J_NAME, 1, 1, 64},	  {"type", J_STR, 1, 4, 6},	  {"host", J_STR, 1, 1, 253},
    {"port", J_INT, 1, 1, 65535}, {"password", J_STR, 0, 0, 255}, {"enabled", J_BOOL, 0, 0, 1},
    {"ids", J_ARRAY, 0, 1, 3},	  {"limit", J_INT, 0, -5, 5},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* characters of valid UTF-8 (jansson's strings are): bytes that do not continue one */
static long long chars_of(const char *s, size_t len)
{
	long long n = 0;

	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

static int shape_ok(const json_t *j, int partial)
{
	const char *key;
	json_t *v;

	if (!json_is_object(j))
		return 0;
	json_object_foreach((json_t *)j, key, v)
	{
		const struct jfield *f = NULL;
		for (size_t i = 0; i < NFIELDS; i++)
			if (strcmp(fields[i].name, key) == 0)
				f = &fields[i];
		if (!f)
			return 0;
		switch (f->type) {
		case J_NAME: /* no control characters: C0 or DEL */
			if (!json_is_string(v))
				return 0;
			for (size_t k = 0; k < json_string_length(v); k++)
				if ((unsigned char)json_string_value(v)[k] < 0x20 || json_string_value(v)[k] == 0x7f)
					return 0;
			/* fall through: and a string's rules */
		case J_STR:
			if (!json_is_string(v) || memchr(json_string_value(v), 0, json_string_length(v)) ||
			    chars_of(json_string_value(v), json_string_length(v)) < f->min ||
			    chars_of(json_string_value(v), json_string_length(v)) > f->max)
				return 0;
			break;
		case J_INT:
			if (!json_is_integer(v) || json_integer_value(v) < f->min || json_integer_value(v) > f->max)
				return 0;
			break;
		case J_BOOL:
			if (!json_is_boolean(v))
				return 0;
			break;
		case J_ARRAY:
			if (!json_is_array(v) || (long long)json_array_size(v) < f->min ||
			    (long long)json_array_size(v) > f->max)
				return 0;
			break;
		}
	}
	for (size_t i = 0; !partial && i < NFIELDS; i++)
		if (fields[i].required && !json_object_get(j, fields[i].name))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	char err[256];

	if (!j)
		return 0;
	for (int partial = 0; partial < 2; partial++) {
		err[0] = 0;
		int ok = json_check(j, fields, NFIELDS, partial, err, sizeof(err)) == 0;
		assert(ok == shape_ok(j, partial));
		assert(ok || err[0]);
	}
	json_decref(j);
	return 0;
}
