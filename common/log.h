/* log.h - one line per event on stderr, text or JSON, with an optional request/connection id. */
#ifndef PGW_LOG_H
#define PGW_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
enum log_format { LOG_FMT_TEXT = 0, LOG_FMT_JSON };

void log_init(const char *daemon, enum log_format fmt, enum log_level level);
/* Where lines go (default 2, stderr). Tests point it at a pipe or file. */
void log_set_fd(int fd);
int log_get_fd(void);
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);
const char *log_level_str(enum log_level l);
int log_enabled(enum log_level l);

/* id may be NULL; errnum > 0 appends strerror(errnum). */
void log_emit(enum log_level l, const char *id, int errnum, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_error(...)	      log_emit(LOG_LVL_ERROR, NULL, 0, __VA_ARGS__)
#define log_warn(...)	      log_emit(LOG_LVL_WARN, NULL, errno, __VA_ARGS__)
#define log_warnx(...)	      log_emit(LOG_LVL_WARN, NULL, 0, __VA_ARGS__)
#define log_info(...)	      log_emit(LOG_LVL_INFO, NULL, 0, __VA_ARGS__)
#define log_debug(...)	      log_emit(LOG_LVL_DEBUG, NULL, 0, __VA_ARGS__)
#define log_info_id(id, ...)  log_emit(LOG_LVL_INFO, id, 0, __VA_ARGS__)
#define log_warnx_id(id, ...) log_emit(LOG_LVL_WARN, id, 0, __VA_ARGS__)
#define log_debug_id(id, ...) log_emit(LOG_LVL_DEBUG, id, 0, __VA_ARGS__)

/* JSON string escaping into buf (always NUL-terminated, truncated to fit). Returns length. */
size_t log_json_escape(char *buf, size_t size, const char *s);

#endif
