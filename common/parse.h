/* parse.h - strict parsers for numbers and booleans from text (env, CLI, settings); text lengths. */
#ifndef PGW_PARSE_H
#define PGW_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Whole string must be a decimal number in [min, max]. 0 or -EINVAL / -ERANGE. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* "1/true/yes/on" and "0/false/no/off". 0 or -EINVAL. */
int parse_bool(const char *s, int *out);
/* How many characters (UTF-8 code points) s has: lengths users are told are characters. */
size_t utf8_chars(const char *s);
/* Where the first byte of s[0..n) that is not well-formed UTF-8 is (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF, no truncated sequence), or n when there is none. */
size_t utf8_invalid_at(const char *s, size_t n);

#endif
