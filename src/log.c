/* log.c: one-line log messages to stderr, syslog or a log file; formats and writes, never exits
 * or aborts. */
#include "h5mount/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* Lines kept while held, at most this many bytes (later lines are counted, not kept). */
#define HOLD_MAX 16384

/* Set once by h5m_log_setup() / h5m_log_to_file() before threads start; read-only afterwards. */
static bool log_syslog;
static bool log_file;                /* lines go to log_fd */
static enum h5m_log_level log_max = H5M_LOG_INFO;

/* The log file: opened by h5m_log_open_file; the descriptor's number never changes (a reopen
 * dup2()s the new file onto it, so a line is written to the old file or the new one). */
static int log_fd = -1;
static char log_path[4096];

#define LOG_FILE_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY)

/* Start-up hold: set and released by the main thread before any other thread exists. */
static bool log_held;
static char *held;          /* the held lines, each ending in '\n' (malloc'd) */
static size_t held_len, held_dropped;

void h5m_log_setup(bool use_syslog, enum h5m_log_level max_level)
{
	log_syslog = use_syslog && !log_file;
	log_max = max_level;
	if (log_syslog)
		openlog("h5mount", LOG_PID, LOG_DAEMON);
}

/* Opens the log file `path`: a regular file of the daemon's user, reached without following a
 * symlink, so that a name in a shared directory (/tmp) planted by another user (a symlink, a
 * hard link, a FIFO that would block the open) never makes the daemon append elsewhere.
 * Async-signal-safe. Returns the descriptor, -ELOOP (a symlink), -EPERM (not a regular file of
 * ours) or -errno. */
static int open_log(const char *path)
{
	struct stat st;
	int fd = open(path, LOG_FILE_FLAGS | O_NOFOLLOW | O_NONBLOCK, 0600);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int h5m_log_open_file(const char *path)
{
	int fd;

	if (path[0] != '/' || strlen(path) >= sizeof(log_path))
		return -EINVAL;
	fd = open_log(path);
	if (fd < 0)
		return fd;
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	strcpy(log_path, path);
	return 0;
}

void h5m_log_to_file(void)
{
	if (log_fd < 0)
		return;
	log_file = true;
	log_syslog = false;
}

void h5m_log_reopen(void)
{
	int fd;

	if (log_fd < 0)
		return;
	fd = open_log(log_path);
	if (fd < 0)
		return; /* keep writing to the old file */
	dup2(fd, log_fd);
	close(fd);
}

bool h5m_log_syslog_available(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Writes "DATE TIME h5mount[PID]: TAG: LINE\n" to the log file in one write(2), so that lines of
 * threads and of other daemons appending to the same file never interleave. */
static void file_line(const char *tag, const char *line)
{
	char out[1200], stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	if (!localtime_r(&now, &tm) || !strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm))
		stamp[0] = 0;
	n = snprintf(out, sizeof(out), "%s h5mount[%ld]: %s: %s\n", stamp, (long)getpid(), tag, line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(out)) {
		n = (int)sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	if (write(log_fd, out, (size_t)n) < 0)
		return; /* nowhere left to say so */
}

/* The whole log's rate: a token bucket of LOG_BURST lines refilled LOG_RATE a second, so that a
 * user repeating a refused operation through the mount (each logs a line) cannot fill the disk
 * under the log; the lines dropped are counted and the next line logged says how many. */
#define LOG_BURST 500
#define LOG_RATE 10
static pthread_mutex_t rate_lock = PTHREAD_MUTEX_INITIALIZER; /* leaf: protects the 3 below */
static double rate_tokens = LOG_BURST;
static struct timespec rate_last;
static uint64_t rate_dropped;

/* Takes a token for one line. Returns false when the line must be dropped (counted); else true
 * with *dropped set to the lines dropped since the last one logged. */
static bool rate_take(uint64_t *dropped)
{
	struct timespec now;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&rate_lock);
	if (rate_last.tv_sec || rate_last.tv_nsec) {
		rate_tokens += ((double)(now.tv_sec - rate_last.tv_sec) + (double)(now.tv_nsec - rate_last.tv_nsec) / 1e9) *
		               LOG_RATE;
		if (rate_tokens > LOG_BURST)
			rate_tokens = LOG_BURST;
	}
	rate_last = now;
	ok = rate_tokens >= 1;
	if (ok) {
		rate_tokens -= 1;
		*dropped = rate_dropped;
		rate_dropped = 0;
	} else {
		rate_dropped++;
	}
	pthread_mutex_unlock(&rate_lock);
	return ok;
}

/* Writes one formatted line (n: its vsnprintf length) where lines go now. */
static void emit(enum h5m_log_level level, char *line, int n)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error", "warning", "info", "debug" };

	/* Names and values quoted in a line come from users and files: a newline or an escape
	 * sequence in them must not forge a line of its own or drive the terminal. */
	for (char *c = line; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	if (log_syslog) {
		syslog(prio[level], "%s", line);
		return;
	}
	if (log_held) {
		char *nb = held_len + (size_t)n + 16 <= HOLD_MAX ? realloc(held, held_len + (size_t)n + 16) : NULL;

		if (!nb) {
			held_dropped++;
			return;
		}
		held = nb;
		held_len += (size_t)snprintf(held + held_len, (size_t)n + 16, "%s: %s\n", tag[level], line);
		return;
	}
	if (log_file) {
		file_line(tag[level], line);
		return;
	}
	/* One fprintf per line: stdio locks the stream, so lines from threads never interleave. */
	fprintf(stderr, "h5mount: %s: %s\n", tag[level], line);
}

void h5m_log(enum h5m_log_level level, const char *fmt, ...)
{
	char line[1024];
	uint64_t dropped = 0;
	va_list ap;
	int n;

	if (level > log_max)
		return;
	if (!log_held && !rate_take(&dropped))
		return;
	if (dropped) {
		n = snprintf(line, sizeof(line), "%llu log lines were dropped: more than %d a second",
		             (unsigned long long)dropped, LOG_RATE);
		emit(H5M_LOG_WARN, line, n);
	}
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n >= 0)
		emit(level, line, n);
}

/* h5m_log_limited's memory of the pairs logged lately. */
#define LIMIT_SLOTS 64
static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER; /* leaf: protects limit_slots */
static struct limit_slot {
	const void *key;
	unsigned kind;
	int64_t last;        /* CLOCK_MONOTONIC seconds of the line logged */
	uint64_t left_out;   /* lines not logged since */
} limit_slots[LIMIT_SLOTS];

void h5m_log_limited(const void *key, unsigned kind, enum h5m_log_level level, const char *fmt, ...)
{
	struct limit_slot *slot = NULL, *oldest = &limit_slots[0];
	struct timespec ts;
	uint64_t left_out = 0;
	bool log = true;
	char line[1024];
	va_list ap;

	if (level > log_max)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&limit_lock);
	for (unsigned i = 0; i < LIMIT_SLOTS && !slot; i++) {
		if (limit_slots[i].key == key && limit_slots[i].kind == kind)
			slot = &limit_slots[i];
		else if (limit_slots[i].last < oldest->last)
			oldest = &limit_slots[i];
	}
	if (slot && ts.tv_sec - slot->last < H5M_LOG_LIMIT_SEC) {
		slot->left_out++;
		log = false;
	} else {
		if (!slot) {
			slot = oldest;
			*slot = (struct limit_slot){ .key = key, .kind = kind };
		}
		left_out = slot->left_out;
		slot->left_out = 0;
		slot->last = ts.tv_sec;
	}
	pthread_mutex_unlock(&limit_lock);
	if (!log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (left_out)
		h5m_log(level, "%s (and %llu more like it, not logged, since the last such line)", line,
		        (unsigned long long)left_out);
	else
		h5m_log(level, "%s", line);
}

void h5m_log_hold(void)
{
	log_held = true;
}

void h5m_log_release(bool print)
{
	log_held = false;
	for (char *p = held, *nl; print && p && p < held + held_len; p = nl + 1) {
		nl = strchr(p, '\n');
		if (log_syslog) {
			syslog(LOG_INFO, "%.*s", (int)(nl - p), p);
		} else if (log_file) {
			char *colon = memchr(p, ':', (size_t)(nl - p));

			*nl = 0; /* held lines are "TAG: TEXT" */
			if (colon) {
				*colon = 0;
				file_line(p, colon + 2 <= nl ? colon + 2 : nl);
			} else {
				file_line("info", p);
			}
		} else
			fprintf(stderr, "h5mount: %.*s\n", (int)(nl - p), p);
	}
	if (print && held_dropped)
		h5m_log(H5M_LOG_WARN, "%zu more start-up log lines were dropped", held_dropped);
	free(held);
	held = NULL;
	held_len = held_dropped = 0;
}
