/* check.c: the pre-mount check: a child process walks the file's metadata through the store's
 * own code (the daemon's code path) while the parent watches its memory and its time. It reads
 * no chunk data, never writes the file and knows nothing of FUSE. */
#include "h5mount/check.h"

#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "h5mount/log.h"
#include "h5mount/remote.h"

/* The child's exit statuses. */
enum {
	CHILD_WALKED = 0,       /* the walk finished */
	CHILD_UNOPENED = 3,     /* h5m_store_open failed: the parent's own open reports it */
	CHILD_NOMEM = 4,        /* an allocation failed */
};

/* How often the parent looks at the child's resident size: at the ~1-5 GB/s a runaway
 * allocation fills memory, the child overshoots the bound by at most ~100 MB. */
#define POLL_MS 20

static int walk_attributes(struct h5m_store *s, struct h5m_node *n)
{
	char *list = NULL;
	size_t len = 0;
	int rc = h5m_store_xattr_list(s, n, &list, &len);

	if (rc == -ENOMEM)
		return rc;
	for (size_t at = 0; rc == 0 && at < len; at += strlen(list + at) + 1) {
		char *val = NULL;
		size_t vlen = 0;

		/* Names are "user.<attribute>", as listxattr shows them. */
		if (h5m_store_xattr_get(s, n, list + at + 5, &val, &vlen) == -ENOMEM)
			rc = -ENOMEM;
		free(val);
	}
	free(list);
	return rc == -ENOMEM ? rc : 0;
}

int h5m_check_walk(struct h5m_store *s, uint64_t *nodes)
{
	struct h5m_node *n;
	uint64_t i;
	int rc = 0;

	/* The node table grows as groups are listed, each object once (hard links share a node):
	 * going through it by index walks every group below the root, without recursion. */
	for (i = 0; rc == 0 && (n = h5m_store_node(s, i)) != NULL; i++) {
		if (n->type == H5M_NODE_GROUP) {
			const struct h5m_dirent *ents;
			size_t count;

			if (h5m_store_list(s, n, &ents, &count) == -ENOMEM)
				rc = -ENOMEM;
		} else if (n->type == H5M_NODE_DATASET && n->ds->dt.kind != H5M_DT_FIXED) {
			uint64_t bytes;

			if (h5m_store_data_size(s, n->ds, &bytes) == -ENOMEM)
				rc = -ENOMEM;
		}
		if (rc == 0 && n->type != H5M_NODE_SOFTLINK)
			rc = walk_attributes(s, n);
	}
	*nodes = i;
	return rc;
}

/* In the child: opens, walks, exits without closing anything (the daemon does not close a
 * read-only file either, see h5m_store_close_at_exit). Never returns. */
static void child_main(const char *path, const struct h5m_check_limits *lim, size_t block_target)
{
	struct h5m_store *s;
	uint64_t nodes;
	char err[512];
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

	/* A crash report (libc's, a sanitizer's) would add lines to h5mount's one-line refusal:
	 * the parent reports the signal instead. */
	if (devnull >= 0) {
		dup2(devnull, STDERR_FILENO);
		dup2(devnull, STDOUT_FILENO);
	}
#ifdef __GLIBC__
	/* Memory HDF5 reads without having written it holds 0xaa (allocated) or 0x55 (freed),
	 * never the zeros or leftovers the daemon's heaps happen to hold: HDF5 1.10.8 follows such
	 * garbage on some damaged files (it frees a pointer from a dense link table it never
	 * filled), and here that crashes the check, so the file is refused before the daemon, whose
	 * heap layout differs, can meet it. */
	mallopt(M_PERTURB, 0x55);
#endif
	if (lim->remote)
		h5m_remote_forget_connections(lim->remote); /* the parent's sockets stay the parent's */
	if ((lim->remote ? h5m_store_open_remote(lim->remote, block_target, 0, &s, err, sizeof(err))
	                 : h5m_store_open(path, false, block_target, 0, 0, &s, err, sizeof(err))) < 0)
		_exit(CHILD_UNOPENED);
	_exit(h5m_check_walk(s, &nodes) == -ENOMEM ? CHILD_NOMEM : CHILD_WALKED);
}

/* Resident bytes of process pid, or 0 when unknown. */
static size_t rss_of(pid_t pid)
{
	char path[64];
	unsigned long long pages = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%*u %llu", &pages) != 1)
		pages = 0;
	fclose(f);
	return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

int h5m_check_file(const char *path, const struct h5m_check_limits *lim, char *why, size_t cap,
                   unsigned *elapsed_ms)
{
	uint64_t start = now_ms();
	int pfd[2], status = 0, rc = 0;
	bool killed_mem = false, killed_time = false;
	pid_t pid;

	*elapsed_ms = 0;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(why, cap, "cannot run the check: %s", strerror(errno));
		return rc;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		snprintf(why, cap, "cannot run the check: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return rc;
	}
	if (pid == 0) {
		/* A parent killed meanwhile (Ctrl-C) takes the check with it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(CHILD_UNOPENED);
		close(pfd[0]);
		child_main(path, lim, lim->block_target); /* holds pfd[1] until it ends */
	}
	close(pfd[1]);
	/* The pipe's write end closes when the child ends, however it ends. */
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int n = poll(&p, 1, POLL_MS);

		if (n > 0)
			break;
		if (n < 0 && errno != EINTR)
			break;
		if (lim->max_rss && rss_of(pid) > lim->max_rss) {
			killed_mem = true;
			break;
		}
		if (now_ms() - start > (uint64_t)lim->timeout * 1000) {
			killed_time = true;
			break;
		}
	}
	if (killed_mem || killed_time)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	*elapsed_ms = (unsigned)(now_ms() - start);
	if (killed_mem) {
		snprintf(why, cap, "reading its metadata took more than %zu MiB of memory", lim->max_rss >> 20);
		return -EIO;
	}
	if (killed_time) {
		snprintf(why, cap, "reading its metadata did not finish within %u s", lim->timeout);
		return -EIO;
	}
	if (WIFSIGNALED(status)) {
		const char *sig = sigabbrev_np(WTERMSIG(status));

		if (sig)
			snprintf(why, cap, "the HDF5 library crashed (SIG%s) while reading its metadata", sig);
		else
			snprintf(why, cap, "the HDF5 library crashed (signal %d) while reading its metadata", WTERMSIG(status));
		return -EIO;
	}
	switch (WEXITSTATUS(status)) {
	case CHILD_WALKED:
	case CHILD_UNOPENED:
		return 0;
	case CHILD_NOMEM:
		snprintf(why, cap, "reading its metadata ran out of memory");
		return -EIO;
	default:
		snprintf(why, cap, "the check of its metadata failed (status %d)", WEXITSTATUS(status));
		return -EIO;
	}
}
