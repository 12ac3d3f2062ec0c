/* jsoncheck.c - validation of JSON request bodies against a field list: pure (no HTTP), so
 * the fuzzer (tests/fuzz/fuzz_json.c) can drive it. See json_check() in http.h. */
#include "http.h"

#include "parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *type_name(enum jtype t)
{
	return t == J_STR || t == J_NAME ? "a string"
	       : t == J_INT		 ? "an integer"
	       : t == J_ARRAY		 ? "a list"
					 : "true or false";
}

int json_check(const json_t *body, const struct jfield *fields, size_t n, int partial, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	if (!json_is_object(body)) {
		snprintf(err, errlen, "the body must be a JSON object");
		return -EINVAL;
	}
	json_object_foreach((json_t *)body, key, v)
	{
		size_t i;
		for (i = 0; i < n && strcmp(fields[i].name, key) != 0; i++)
			;
		if (i == n) {
			snprintf(err, errlen, "unknown field '%.64s'", key);
			return -EINVAL;
		}
		if (((fields[i].type == J_STR || fields[i].type == J_NAME) && !json_is_string(v)) ||
		    (fields[i].type == J_INT && !json_is_integer(v)) ||
		    (fields[i].type == J_BOOL && !json_is_boolean(v)) ||
		    (fields[i].type == J_ARRAY && !json_is_array(v))) {
			snprintf(err, errlen, "'%s' must be %s", key, type_name(fields[i].type));
			return -EINVAL;
		}
		if (fields[i].type == J_INT &&
		    (json_integer_value(v) < fields[i].min || json_integer_value(v) > fields[i].max)) {
			snprintf(err, errlen, "'%s' must be from %lld to %lld", key, fields[i].min, fields[i].max);
			return -EINVAL;
		}
		if (fields[i].type == J_ARRAY &&
		    ((long long)json_array_size(v) < fields[i].min || (long long)json_array_size(v) > fields[i].max)) {
			snprintf(err, errlen, "'%s' must hold %lld to %lld items", key, fields[i].min, fields[i].max);
			return -EINVAL;
		}
		if (fields[i].type == J_STR || fields[i].type == J_NAME) {
			size_t chars;

			if (memchr(json_string_value(v), '\0', json_string_length(v))) {
				snprintf(err, errlen, "'%s' must not contain NUL", key);
				return -EINVAL;
			}
			if (fields[i].type == J_NAME)
				for (const unsigned char *c = (const unsigned char *)json_string_value(v); *c; c++)
					if (*c < 0x20 || *c == 0x7f) {
						snprintf(err, errlen, "'%s' must not contain control characters", key);
						return -EINVAL;
					}
			chars = utf8_chars(json_string_value(v)); /* lengths in characters, not bytes */
			if ((long long)chars < fields[i].min || (long long)chars > fields[i].max) {
				snprintf(err, errlen, "'%s' must be %lld to %lld characters", key, fields[i].min,
					 fields[i].max);
				return -EINVAL;
			}
		}
	}
	for (size_t i = 0; !partial && i < n; i++) {
		if (fields[i].required && !json_object_get(body, fields[i].name)) {
			snprintf(err, errlen, "'%s' is required", fields[i].name);
			return -EINVAL;
		}
	}
	return 0;
}
