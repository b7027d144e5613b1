/* runstate.c: a mount's status file (runstate.h): created and locked by the daemon, read by
 * `h5mount -u`. Files and flock only; it never logs (its callers say what failed). */
#include "h5mount/runstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_STATUS 65536 /* a status file is a few lines; more is not ours */

struct h5m_runstate {
	int fd;      /* the locked status file (O_APPEND) */
	char *path;  /* its name, unlinked at finish (owned) */
};

int h5m_runstate_dirs(uid_t uid, char dirs[][256], size_t cap)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n = 0;

	if (uid == 0)
		snprintf(dirs[n++], cap, "/run/h5mount");
	else
		snprintf(dirs[n++], cap, "/run/user/%u/h5mount", (unsigned)uid);
	if (xdg && xdg[0] == '/' && uid == geteuid() && strlen(xdg) + sizeof("/h5mount") <= cap &&
	    strcmp(xdg, uid ? "/run/user" : "/run") != 0)
		snprintf(dirs[n++], cap, "%s/h5mount", xdg);
	snprintf(dirs[n++], cap, "/tmp/h5mount-%u", (unsigned)uid);
	return n;
}

/* A directory `uid` may trust: a real directory owned by uid that nobody else may write to. */
static bool dir_usable(const char *dir, uid_t uid)
{
	struct stat st;

	return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid && !(st.st_mode & 022);
}

/* Locks the directory that holds `path` (flock on the directory itself): a daemon putting its
 * status file in place and one removing its own are never interleaved, so an old daemon never
 * removes the file a new mount of the same device just put there. Returns the descriptor to
 * close, or -1 (then unlocked: better than nothing). */
static int lock_dir_of(const char *path)
{
	char dir[1024];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash || (size_t)(slash - path) >= sizeof(dir))
		return -1;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Writes all of buf to fd (O_APPEND). Returns 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

int h5m_runstate_dir(char *out, size_t cap)
{
	char dirs[H5M_RUNSTATE_DIRS][256];
	uid_t uid = geteuid();
	int n = h5m_runstate_dirs(uid, dirs, sizeof(dirs[0]));

	for (int i = 0; i < n; i++) {
		if (mkdir(dirs[i], 0700) < 0 && errno != EEXIST)
			continue;
		if (dir_usable(dirs[i], uid)) {
			snprintf(out, cap, "%s", dirs[i]);
			return 0;
		}
	}
	snprintf(out, cap, "no usable runtime directory (tried %s and %s)", dirs[0], dirs[n - 1]);
	return -EACCES;
}

int h5m_runstate_create(const char *dev, const char *file, const char *mountpoint, struct h5m_runstate **out,
                        char *err, size_t cap)
{
	char dir[256], tmp[1024], *text = NULL, *path;
	struct h5m_runstate *rs = NULL;
	int fd = -1, rc, len = 0;

	*out = NULL;
	rc = h5m_runstate_dir(dir, sizeof(dir));
	if (rc < 0) {
		snprintf(err, cap, "%s", dir);
		return rc;
	}
	rs = calloc(1, sizeof(*rs));
	if (rs && asprintf(&path, "%s/mount-%s", dir, dev) >= 0)
		rs->path = path;
	if (rs && rs->path)
		len = asprintf(&text, "h5mount 1\npid %ld\nfile %s\nmountpoint %s\n", (long)getpid(), file,
		               mountpoint);
	if (!rs || !rs->path || len < 0) {
		text = NULL; /* asprintf leaves its pointer undefined on failure */
		rc = -ENOMEM;
		snprintf(err, cap, "%s", strerror(ENOMEM));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s/.mount-%s.%ld", dir, dev, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	rc = fd < 0 || flock(fd, LOCK_EX) < 0 ? -errno : 0;
	if (rc == 0)
		rc = write_all(fd, text, (size_t)len);
	if (rc == 0) {
		int dfd = lock_dir_of(rs->path);

		if (rename(tmp, rs->path) < 0)
			rc = -errno;
		if (dfd >= 0)
			close(dfd);
	}
	if (rc < 0) {
		snprintf(err, cap, "cannot create '%s': %s", rs->path, strerror(-rc));
		if (fd >= 0)
			unlink(tmp);
		goto out;
	}
	rs->fd = fd;
	fd = -1;
	*out = rs;
	rs = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rs)
		free(rs->path);
	free(rs);
	free(text);
	return rc;
}

int h5m_runstate_note(struct h5m_runstate *rs, const char *key, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, m;

	if (!rs)
		return 0;
	n = snprintf(line, sizeof(line), "%s ", key);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return -EINVAL;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	for (int i = 0; i < n; i++) /* one line per note */
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	return write_all(rs->fd, line, (size_t)n);
}

void h5m_runstate_finish(struct h5m_runstate *rs, int status, const char *reason)
{
	struct stat mine, named;
	int dfd;

	if (!rs)
		return;
	/* Remove the name only while it is still ours: a new mount that got the same device may
	 * have put its own file there. */
	dfd = lock_dir_of(rs->path);
	if (fstat(rs->fd, &mine) == 0 && stat(rs->path, &named) == 0 && mine.st_dev == named.st_dev &&
	    mine.st_ino == named.st_ino)
		unlink(rs->path);
	if (dfd >= 0)
		close(dfd);
	if (reason && *reason)
		h5m_runstate_note(rs, "exit", "%d %s", status, reason);
	else
		h5m_runstate_note(rs, "exit", "%d", status);
	close(rs->fd);
	free(rs->path);
	free(rs);
}

int h5m_runstate_get(int fd, const char *key, char *out, size_t cap)
{
	char *buf = malloc(MAX_STATUS + 1);
	size_t klen = strlen(key), len = 0;
	int rc = -ENOENT;

	if (!buf)
		return -ENOMEM;
	while (len < MAX_STATUS) {
		ssize_t r = pread(fd, buf + len, MAX_STATUS - len, (off_t)len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	for (char *line = buf, *nl; line < buf + len; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl)
			break; /* a line still being written */
		if (!strncmp(line, key, klen) && (line[klen] == ' ' || line + klen == nl)) {
			const char *v = line + klen + (line + klen < nl);

			snprintf(out, cap, "%.*s", (int)(nl - v), v);
			rc = 0;
		}
	}
out:
	free(buf);
	return rc;
}

int h5m_runstate_open(uid_t uid, const char *dev, const char *mountpoint)
{
	char dirs[H5M_RUNSTATE_DIRS][256], path[1024], mp[4096];
	int n = h5m_runstate_dirs(uid, dirs, sizeof(dirs[0])), err = -ENOENT;

	for (int i = 0; i < n; i++) {
		int fd;

		if (!dir_usable(dirs[i], uid))
			continue;
		snprintf(path, sizeof(path), "%s/mount-%s", dirs[i], dev);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			if (errno != ENOENT)
				err = -errno;
			continue;
		}
		if (h5m_runstate_get(fd, "mountpoint", mp, sizeof(mp)) == 0 && !strcmp(mp, mountpoint))
			return fd;
		close(fd);
	}
	return err;
}
