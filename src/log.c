/* log.c: one-line log messages to stderr or syslog; formats and writes, never exits or aborts. */
#include "h5mount/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <unistd.h>

/* Set once by h5m_log_setup() before threads start; read-only afterwards. */
static bool log_syslog;
static enum h5m_log_level log_max = H5M_LOG_INFO;

void h5m_log_setup(bool use_syslog, enum h5m_log_level max_level)
{
	log_syslog = use_syslog;
	log_max = max_level;
	if (use_syslog)
		openlog("h5mount", LOG_PID, LOG_DAEMON);
}

void h5m_log(enum h5m_log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error", "warning", "info", "debug" };
	char line[1024];
	va_list ap;
	int n;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (log_syslog) {
		syslog(prio[level], "%s", line);
		return;
	}
	/* One fprintf per line: stdio locks the stream, so lines from threads never interleave. */
	fprintf(stderr, "h5mount: %s: %s\n", tag[level], line);
}
