/* log.h: the one logger of h5mount: stderr, syslog or a log file, levels, printf-style. It
 * never exits. */
#ifndef H5MOUNT_LOG_H
#define H5MOUNT_LOG_H

#include <stdbool.h>

enum h5m_log_level { H5M_LOG_ERR = 0, H5M_LOG_WARN = 1, H5M_LOG_INFO = 2, H5M_LOG_DEBUG = 3 };

/* Sends messages at `max_level` or more severe to syslog (use_syslog) or to stderr.
 * Call before starting threads; default is stderr at H5M_LOG_INFO. */
void h5m_log_setup(bool use_syslog, enum h5m_log_level max_level);

/* Opens `path` (absolute) as the log file: appended to, created 0600, close-on-exec; it must be
 * a regular file of the daemon's user with one link, not reached through a symlink as its last
 * component. Lines go there after h5m_log_to_file. Call before threads start. Returns 0 or
 * -errno (-EINVAL for a relative or too long path, -ELOOP for a symlink, -EPERM for another
 * user's file, a hard link or a file that is not regular). */
int h5m_log_open_file(const char *path);

/* From now on every line goes to the file h5m_log_open_file opened (no-op without one), as
 * "YYYY-MM-DD HH:MM:SS h5mount[PID]: LEVEL: TEXT", whatever h5m_log_setup says later. Call
 * before threads start. */
void h5m_log_to_file(void);

/* Reopens the log file by its path (for logrotate: SIGHUP). Async-signal-safe: only open,
 * dup2 and close; if the open fails, lines keep going to the old file. */
void h5m_log_reopen(void);

/* True when something listens on /dev/log (syslog would not drop the lines). */
bool h5m_log_syslog_available(void);

/* Logs one line (a trailing newline is added; control bytes in it are written as '?').
 * Thread-safe: one write per line. Rate-limited for the whole process (500 lines at once, then
 * 10 a second; held start-up lines excepted): lines over it are dropped and counted, and the
 * next line logged is preceded by one saying how many. Takes log.c's leaf lock briefly. */
void h5m_log(enum h5m_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Seconds during which h5m_log_limited logs a (key, kind) only once. */
#define H5M_LOG_LIMIT_SEC 60

/* Logs like h5m_log, but at most once per H5M_LOG_LIMIT_SEC seconds for each (key, kind), so
 * that a loop repeating one refused operation cannot flood the log; the next line logged for
 * it after a quiet spell says how many were left out. `key` identifies the object (a dataset),
 * `kind` the rule. Remembers the last 64 pairs (an older pair forgotten may log again early).
 * Thread-safe; takes log.c's own leaf lock, never held while logging. */
void h5m_log_limited(const void *key, unsigned kind, enum h5m_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Start-up: keep the lines logged from now on instead of writing them, so that a start-up
 * failure can print one line only. Call from the only thread; ends with h5m_log_release. */
void h5m_log_hold(void);

/* Ends the hold: writes the kept lines (print) or drops them, and frees them. A process forked
 * while lines are held inherits the hold: its lines go nowhere unless it releases them. */
void h5m_log_release(bool print);

#endif
