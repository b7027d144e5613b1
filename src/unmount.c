/* unmount.c: `h5mount -u MOUNTPOINT`: finds the mount and its daemon's status file, unmounts
 * with fusermount3 and waits for the daemon's last word. It never touches the HDF5 file. */
#include "unmount.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "h5mount/runstate.h"

extern char **environ;

#define PROGRESS_AFTER_MS 1000
#define POLL_MS 100

/* What /proc/self/mountinfo says of one mount. */
struct mount_entry {
	char dev[64];      /* "major:minor" */
	char fstype[128];  /* "fuse.h5mount" for ours */
	long uid;          /* the FUSE super option user_id=, -1 if absent */
};

/* Decodes mountinfo's octal escapes (\040 for a space ...) in place. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = 0;
}

/* The absolute path of `mp` without following its last component, which may be a FUSE mount
 * whose daemon died (stat says ENOTCONN there). Returns a malloc'd path or NULL (errno set). */
static char *mount_path(const char *mp)
{
	char *copy1 = strdup(mp), *copy2 = strdup(mp), *dir = NULL, *out = NULL;
	size_t n;

	if (!copy1 || !copy2)
		goto out;
	n = strlen(copy2);
	while (n > 1 && copy2[n - 1] == '/')
		copy2[--n] = 0;
	dir = realpath(dirname(copy1), NULL);
	if (!dir)
		goto out;
	if (!strcmp(copy2, "/"))
		out = strdup("/");
	else if (asprintf(&out, "%s/%s", strcmp(dir, "/") ? dir : "", basename(copy2)) < 0)
		out = NULL;
out:
	free(dir);
	free(copy1);
	free(copy2);
	return out;
}

/* Finds the last mount at `path` (the one on top) in /proc/self/mountinfo. Returns 0,
 * -ENOENT (not a mount point) or -errno. */
static int find_mount(const char *path, struct mount_entry *e)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *field[5], *tok = strtok_r(line, " \n", &save), *sep;
		int i = 0;

		for (; tok && i < 5; tok = strtok_r(NULL, " \n", &save))
			field[i++] = tok;
		if (i < 5)
			continue;
		unescape(field[4]);
		if (strcmp(field[4], path))
			continue;
		/* optional fields, then "-", then fstype, source, super options */
		while (tok && strcmp(tok, "-"))
			tok = strtok_r(NULL, " \n", &save);
		sep = tok ? strtok_r(NULL, " \n", &save) : NULL;
		if (!sep)
			continue;
		snprintf(e->dev, sizeof(e->dev), "%s", field[2]);
		snprintf(e->fstype, sizeof(e->fstype), "%s", sep);
		e->uid = -1;
		if (strtok_r(NULL, " \n", &save) && (tok = strtok_r(NULL, " \n", &save))) {
			char *u = strstr(tok, "user_id=");

			if (u && (u == tok || u[-1] == ','))
				e->uid = strtol(u + 8, NULL, 10);
		}
		rc = 0; /* keep going: a later line mounted over this one */
	}
	free(line);
	fclose(f);
	return rc;
}

/* Runs `fusermount3 -u path`, its messages going to our stderr. Returns its exit status, or -1
 * when it could not be run (said why). */
static int run_fusermount(const char *path)
{
	char *argv[] = { "fusermount3", "-u", "--", (char *)path, NULL };
	pid_t pid;
	int st, rc = posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ);

	if (rc) {
		fprintf(stderr, "h5mount: cannot run fusermount3: %s\n", strerror(rc));
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for the daemon to release its lock on the status file `fd`; on a terminal, shows how
 * long the final write-back of `file` has taken once it passes a second. */
static void wait_daemon(int fd, const char *file)
{
	long long start = now_ms();
	bool shown = false;

	if (!isatty(STDERR_FILENO)) {
		while (flock(fd, LOCK_SH) < 0 && errno == EINTR)
			;
		return;
	}
	while (flock(fd, LOCK_SH | LOCK_NB) < 0 && (errno == EWOULDBLOCK || errno == EINTR)) {
		long long ms = now_ms() - start;
		struct timespec pause = { 0, POLL_MS * 1000000L };

		if (ms >= PROGRESS_AFTER_MS) {
			char dirty[32] = "";
			unsigned long long bytes;

			if (h5m_runstate_get(fd, "dirty", dirty, sizeof(dirty)) == 0 && sscanf(dirty, "%llu", &bytes) == 1)
				snprintf(dirty, sizeof(dirty), "%.1f MB ", (double)bytes / 1e6);
			else
				dirty[0] = 0;
			fprintf(stderr, "\rh5mount: writing back %sto %s: %.1f s ", dirty, file, (double)ms / 1000);
			shown = true;
		}
		nanosleep(&pause, NULL);
	}
	if (shown)
		fprintf(stderr, "done\n");
}

int h5m_unmount(const char *mountpoint)
{
	struct mount_entry e;
	char file[4096] = "the HDF5 file", status[1024], pid[32] = "?";
	char *path = mount_path(mountpoint);
	int fd = -1, ret = 1, rc;

	if (!path) {
		fprintf(stderr, "h5mount: '%s': %s\n", mountpoint, strerror(errno));
		goto out;
	}
	rc = find_mount(path, &e);
	if (rc == -ENOENT) {
		fprintf(stderr, "h5mount: '%s' is not a mount point\n", mountpoint);
		goto out;
	}
	if (rc < 0) {
		fprintf(stderr, "h5mount: cannot read the mount table: %s\n", strerror(-rc));
		goto out;
	}
	if (strcmp(e.fstype, "fuse.h5mount")) {
		fprintf(stderr, "h5mount: '%s' is not an h5mount mount (it is %s)\n", mountpoint, e.fstype);
		goto out;
	}
	fd = h5m_runstate_open(e.uid < 0 ? getuid() : (uid_t)e.uid, e.dev, path);
	if (fd < 0) {
		fprintf(stderr, "h5mount: no status of the mount at '%s' found (%s; an older h5mount, or another user's "
		        "mount?): nothing done; 'fusermount3 -u %s' unmounts without waiting for the write-back\n",
		        mountpoint, strerror(-fd), mountpoint);
		goto out;
	}
	h5m_runstate_get(fd, "file", file, sizeof(file));
	h5m_runstate_get(fd, "pid", pid, sizeof(pid));
	rc = run_fusermount(path);
	if (rc != 0) {
		fprintf(stderr, "h5mount: '%s' was not unmounted (fusermount3 -u failed)\n", mountpoint);
		goto out;
	}
	wait_daemon(fd, file);
	if (h5m_runstate_get(fd, "exit", status, sizeof(status)) < 0) {
		fprintf(stderr, "h5mount: the daemon of '%s' (pid %s) died before it finished; '%s' keeps what was last "
		        "committed\n", mountpoint, pid, file);
		goto out;
	}
	if (strcmp(status, "0") != 0) {
		const char *why = strchr(status, ' ');

		fprintf(stderr, "h5mount: '%s': %s\n", file, why ? why + 1 : "the daemon failed");
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}
