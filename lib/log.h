/*
 * Logging: one line an event to stderr, with a syslog priority prefix
 * that journald understands (<3> error ... <7> debug), the program's name
 * and key=value fields after a short message.
 *
 * Library code never logs: it returns errors for programs to report.
 */
#ifndef EXPOSE_LOG_H
#define EXPOSE_LOG_H

enum log_level { LOG_ERR = 3, LOG_WARN = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

/* Names the program in every line; call first in main(). */
void log_init(const char *progname, enum log_level max);
enum log_level log_max(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* From log_hold to log_release, lines wait and go out in one write: a
 * program writes what its visitor waits for first, and its log after.
 * A full batch is written early; log_release is safe to call any time. */
void log_hold(void);
void log_release(void);

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_max() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
