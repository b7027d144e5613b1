/* main.c: h5mount's entry point: parses and validates the command line, opens the HDF5 file,
 * mounts, daemonizes and runs the FUSE loop. Failures before mounting print one line. */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <blosc.h>

#include "h5m_config.h"
#include "h5mount/check.h"
#include "h5mount/create.h"
#include "h5mount/jvfd.h"
#include "h5mount/log.h"
#include "h5mount/runstate.h"
#include "h5mount/remote.h"
#include "opts.h"
#include "unmount.h"

#define BLOCK_TARGET ((size_t)128 << 10)
/* A remote file's blocks are bigger: each block read is one batch of ranged GETs (remote.h),
 * so fewer, larger batches mean fewer round trips. */
#define REMOTE_BLOCK_TARGET ((size_t)1 << 20)

/* libfuse's own messages, gathered into one line so a failure prints as one "h5mount:" line.
 * Only used from the main thread before the loop starts. */
static char fuse_msg[512];
static bool fuse_msg_capture = true;

static void fuse_log_sink(enum fuse_log_level level, const char *fmt, va_list ap)
{
	size_t n = strlen(fuse_msg);

	if (!fuse_msg_capture) {
		char line[512];

		vsnprintf(line, sizeof(line), fmt, ap);
		line[strcspn(line, "\n")] = 0;
		if (*line)
			h5m_log(level <= FUSE_LOG_ERR ? H5M_LOG_ERR : level <= FUSE_LOG_WARNING ? H5M_LOG_WARN : H5M_LOG_DEBUG,
			        "%s", line);
		return;
	}
	vsnprintf(fuse_msg + n, sizeof(fuse_msg) - n, fmt, ap);
	for (char *p = fuse_msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

/* Prints "h5mount: <message>" built from libfuse's captured text (without its "fuse: "). */
static void print_fuse_failure(const char *fallback)
{
	const char *m = fuse_msg;
	size_t n;

	while (!strncmp(m, "fuse: ", 6))
		m += 6;
	n = strlen(m);
	while (n && m[n - 1] == ' ')
		n--;
	if (n)
		fprintf(stderr, "h5mount: %.*s\n", (int)n, m);
	else
		fprintf(stderr, "h5mount: %s\n", fallback);
	fuse_msg[0] = 0;
}

static int check_mountpoint(const char *mp)
{
	struct statvfs sv;
	struct stat st;

	/* mount.fuse3 -o drop_privileges mounts by itself and passes the /dev/fuse descriptor:
	 * that mount lacks default_permissions (README "Security") and the file's path. */
	if (!strncmp(mp, "/dev/fd/", 8)) {
		fprintf(stderr, "h5mount: mountpoint '%s': a descriptor mounted by mount.fuse3 "
		        "(-o drop_privileges) is not supported; mount without it\n", mp);
		return -1;
	}
	/* A FUSE mount whose daemon died answers ENOTCONN to what reaches the daemon: statfs
	 * always does (stat may come from the kernel's cache of the root's attributes). */
	if (statvfs(mp, &sv) < 0 && errno == ENOTCONN) {
		fprintf(stderr, "h5mount: mountpoint '%s': %s (a mount whose daemon died is still there: "
		        "run 'fusermount3 -u %s' first)\n", mp, strerror(errno), mp);
		return -1;
	}
	if (stat(mp, &st) < 0) {
		fprintf(stderr, "h5mount: mountpoint '%s': %s\n", mp, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "h5mount: mountpoint '%s': %s\n", mp, strerror(ENOTDIR));
		return -1;
	}
	return 0;
}

/* Finds the "major:minor" of the mount at `mp` in /proc/self/mountinfo (no stat of our own
 * mount, which would need the loop running). Writes it to out[cap]; returns 0 or -ENOENT. */
static int mount_bdi(const char *mp, char *out, size_t cap)
{
	char *real = realpath(mp, NULL), line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	int rc = -ENOENT;

	while (real && f && fgets(line, sizeof(line), f)) {
		char dev[64], point[4096];

		/* id parent major:minor root mountpoint ... */
		if (sscanf(line, "%*d %*d %63s %*s %4095s", dev, point) == 2 && !strcmp(point, real)) {
			snprintf(out, cap, "%s", dev);
			rc = 0; /* keep going: the last one mounted there is ours */
		}
	}
	if (f)
		fclose(f);
	free(real);
	return rc;
}

/* Adds -o fsname=PATH before the other options (a user's own fsname= comes later and wins),
 * escaped for libfuse's option lists, so that mount, df and findmnt show the HDF5 file.
 * Returns 0 or -1 (out of memory). */
static int add_fsname(struct fuse_args *args, const char *path)
{
	char *opt = malloc(2 * strlen(path) + sizeof("-ofsname=")), *d;
	int rc;

	if (!opt)
		return -1;
	d = stpcpy(opt, "-ofsname=");
	for (const char *p = path; *p; p++) {
		if (*p == ',' || *p == '\\')
			*d++ = '\\';
		*d++ = *p;
	}
	*d = 0;
	rc = fuse_opt_insert_arg(args, 1, opt);
	free(opt);
	return rc;
}

/* Opens the store, for writing unless `ro`; a file the user cannot write is opened read-only
 * with a log line. HDF5's chunk caches get `chunk_cache` bytes in all. `flags`: H5M_STORE_*.
 * Prints the one-line reason on failure. */
static struct h5m_store *open_store(const char *shown, const char *path, struct h5m_remote *remote, bool ro,
                                    size_t chunk_cache, unsigned flags, bool *rw)
{
	struct h5m_store *s;
	char err[600];
	int rc = remote ? h5m_store_open_remote(remote, REMOTE_BLOCK_TARGET, chunk_cache, &s, err, sizeof(err))
	                : h5m_store_open(path, !ro, BLOCK_TARGET, chunk_cache, flags, &s, err, sizeof(err));

	*rw = !ro && !remote;
	if (!ro && (rc == -EACCES || rc == -EROFS || rc == -EPERM)) {
		h5m_log(H5M_LOG_WARN, "'%s' is not writable (%s): mounting read-only", shown, err);
		*rw = false;
		rc = h5m_store_open(path, false, BLOCK_TARGET, chunk_cache, flags, &s, err, sizeof(err));
	}
	if (rc == 0)
		return s;
	if (rc == -EBUSY || (rc == -EIO && strstr(err, "unable to lock file")))
		fprintf(stderr, "h5mount: '%s' is open in another HDF5 program or mounted already\n", shown);
	else if (rc == -EINVAL)
		fprintf(stderr, "h5mount: '%s' %s\n", shown, err);
	else if (rc == -ESTALE)
		fprintf(stderr, "h5mount: %s\n", err); /* a journal refused: err names both files */
	else if (rc == -EIO)
		fprintf(stderr, "h5mount: cannot read HDF5 file '%s': %s\n", shown, err);
	else
		fprintf(stderr, "h5mount: cannot open '%s': %s\n", shown, err);
	return NULL;
}

/* Refuses a file on which reading the metadata crashes HDF5, takes too much memory or time
 * (check.c), with one line. A mount that may write replays a crash's journal first, so the
 * check sees the state that will be mounted; if that fails the open below says why. Returns 0
 * (go on) or -1 (refused, printed). */
static int check_file(const struct h5m_config *cfg, const char *shown, const char *path, struct h5m_remote *remote)
{
	struct h5m_check_limits lim = { .max_rss = cfg->check_memory, .timeout = cfg->check_timeout,
	                                .block_target = remote ? REMOTE_BLOCK_TARGET : BLOCK_TARGET, .remote = remote };
	char why[600];
	unsigned ms;
	int rc;

	if (!remote && !cfg->read_only && access(path, W_OK) == 0 && h5m_jvfd_recover(path, why, sizeof(why)) == 1)
		h5m_log(H5M_LOG_WARN, "%s: replayed the journal of an interrupted write-back", path);
	rc = h5m_check_file(path, &lim, why, sizeof(why), &ms);
	h5m_log(H5M_LOG_DEBUG, "the check of '%s' took %u ms", shown, ms);
	if (rc == -EIO) {
		fprintf(stderr, "h5mount: '%s' is damaged: %s; nothing was mounted\n", shown, why);
		return -1;
	}
	if (rc < 0) {
		fprintf(stderr, "h5mount: %s\n", why);
		return -1;
	}
	return 0;
}

/* Creates the status file `h5mount -u` waits on (runstate.h) for the mount at `mp` of the HDF5
 * file `file` (real path). Returns it, or NULL with a warning (then -u cannot wait). */
static struct h5m_runstate *start_runstate(const char *mp, const char *file)
{
	struct h5m_runstate *rs = NULL;
	char dev[64], err[600], *real = realpath(mp, NULL);
	int rc = real ? mount_bdi(mp, dev, sizeof(dev)) : -errno;

	if (rc == 0)
		rc = h5m_runstate_create(dev, file, real, &rs, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "the mount is not in /proc/self/mountinfo");
	if (rc < 0)
		h5m_log(H5M_LOG_WARN, "no status file for 'h5mount -u' to wait on: %s", err);
	free(real);
	return rs;
}

/* SIGHUP with a log file: reopen it (logrotate moved it away). Async-signal-safe. */
static void reopen_log(int sig)
{
	(void)sig;
	h5m_log_reopen();
}

/* Opens -o log=FILE (a relative name is taken from the current directory: the daemon moves to
 * /). Returns 0, or -1 after printing why. */
static int open_log(const char *path)
{
	char cwd[PATH_MAX], abs[PATH_MAX + 4096];
	int rc;

	if (path[0] != '/' && !getcwd(cwd, sizeof(cwd))) {
		fprintf(stderr, "h5mount: cannot open the log file '%s': %s\n", path, strerror(errno));
		return -1;
	}
	snprintf(abs, sizeof(abs), "%s%s%s", path[0] == '/' ? "" : cwd, path[0] == '/' ? "" : "/", path);
	rc = h5m_log_open_file(abs);
	if (rc == -ELOOP || rc == -EPERM) {
		fprintf(stderr, "h5mount: the log file '%s' is %s: refused (it must be a regular file of the "
		        "daemon's user with one link)\n", path, rc == -ELOOP ? "a symlink" : "not a file of ours");
		return -1;
	}
	if (rc < 0) {
		fprintf(stderr, "h5mount: cannot open the log file '%s': %s\n", path, strerror(-rc));
		return -1;
	}
	return 0;
}

/* Where the daemon's lines go once mounted: -o log=FILE (chosen already), stderr with -f or
 * -d, else syslog when something listens on /dev/log, else RUNDIR/h5mount.log (runstate.h),
 * whose path is printed now. A log file is reopened on SIGHUP (instead of stopping). */
static void setup_log(const struct h5m_config *cfg, bool foreground, enum h5m_log_level level)
{
	struct sigaction sa = { .sa_handler = reopen_log, .sa_flags = SA_RESTART };
	char dir[256], path[300];
	bool to_file = cfg->log_path != NULL;

	if (!to_file && !foreground && !h5m_log_syslog_available()) {
		if (h5m_runstate_dir(dir, sizeof(dir)) == 0 && snprintf(path, sizeof(path), "%s/h5mount.log", dir) > 0 &&
		    h5m_log_open_file(path) == 0) {
			h5m_log_to_file();
			to_file = true;
			fprintf(stderr, "h5mount: no syslog (nothing listens on /dev/log): logging to %s\n", path);
		} else {
			fprintf(stderr, "h5mount: no syslog (nothing listens on /dev/log) and no log file: the "
			        "daemon's messages are lost; use -o log=FILE\n");
		}
	}
	h5m_log_setup(!foreground, level);
	if (to_file) {
		sigemptyset(&sa.sa_mask);
		sigaction(SIGHUP, &sa, NULL);
	}
}

/* The absolute path a FILE that does not exist would have: its directory's real path and its
 * name. Returns it (malloc'd), or NULL with errno set (ENOENT when the directory is missing
 * or the name is a dangling symlink, EINVAL for a name that cannot be a file). */
static char *new_file_path(const char *given)
{
	const char *slash = strrchr(given, '/'), *name = slash ? slash + 1 : given;
	char *dir = slash ? strndup(given, (size_t)(slash - given)) : strdup("."), *real = NULL, *path = NULL;
	struct stat st;

	if (!dir)
		return NULL;
	real = realpath(*dir ? dir : "/", NULL);
	if (real && (!*name || !strcmp(name, ".") || !strcmp(name, ".."))) {
		errno = EINVAL;
	} else if (real && asprintf(&path, "%s%s%s", real, strcmp(real, "/") ? "/" : "", name) < 0) {
		path = NULL;
	} else if (path && lstat(path, &st) == 0) { /* a dangling symlink: not followed to create */
		free(path);
		path = NULL;
		errno = ENOENT;
	}
	free(real);
	free(dir);
	return path;
}

/* Threads that help one read decode its blocks, or one write-back encode its chunks: one
 * fewer than the CPUs, since the thread that took the request works too. */
static unsigned pool_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 2)
		return 0;
	return n > 16 ? 15 : (unsigned)(n - 1);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts fopts = { 0 };
	struct fuse_loop_config *loop = NULL;
	struct fuse_session *se = NULL;
	struct h5m_config cfg;
	struct h5m_fs fs = { .handles_lock = PTHREAD_MUTEX_INITIALIZER, .times_lock = PTHREAD_MUTEX_INITIALIZER,
	                     .host_fd = -1 };
	struct h5m_remote *remote = NULL;
	struct stat st;
	char err[512], *file = NULL;
	struct h5m_runstate *runstate = NULL;
	const char *why = NULL;
	bool mounted = false, handlers = false, flushing = false, rw = false, create = false, created = false;
	int ret = 1, rc;

	/* Memory stays bounded (README "Memory"). Our request buffers come from a stash (iobuf.c)
	 * and our blocks from the cache's own mappings; what is left in malloc's heaps is HDF5's
	 * and libraries' memory, c-blosc's per-call scratch (twice a Blosc block, up to about
	 * 2 MiB for the usual chunks) among it: keep that in the heaps for reuse (as mappings of
	 * their own, each call faults in fresh pages: a sequential Blosc read ran 45% slower), and
	 * map only bigger ones. Two arenas and a modest trim threshold keep the heaps small.
	 * No M_PERTURB here: filling every allocation and every freed chunk made all of the
	 * heaps' free space resident (186 instead of 121 MiB in a 30 s append-and-read soak with
	 * cache_size=64M,dirty_limit=16M); the pre-mount check child fills them instead (check.c),
	 * so that HDF5 reading memory it never wrote crashes the check, not the daemon. */
	mallopt(M_MMAP_THRESHOLD, 2 << 20);
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	mallopt(M_ARENA_MAX, 2);
	fuse_set_log_func(fuse_log_sink);
	if (h5m_opts_parse(&args, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "h5mount: %s\n", err);
		goto out;
	}
	if (cfg.show_help) {
		h5m_opts_help();
		ret = 0;
		goto out;
	}
	if (cfg.show_version) {
		printf("h5mount %s (HDF5 %d.%d.%d, libfuse %s, c-blosc %s)\n", H5M_VERSION, H5_VERS_MAJOR, H5_VERS_MINOR,
		       H5_VERS_RELEASE, fuse_pkgversion(), BLOSC_VERSION_STRING);
		ret = 0;
		goto out;
	}
	if (cfg.unmount) {
		if (!cfg.file || cfg.mountpoint)
			fprintf(stderr, "h5mount: usage: %s -u MOUNTPOINT\n", argv[0]);
		else
			ret = h5m_unmount(cfg.file);
		goto out;
	}
	if (!cfg.file || !cfg.mountpoint) {
		fprintf(stderr, "h5mount: usage: %s [options] FILE MOUNTPOINT (see --help)\n", argv[0]);
		goto out;
	}
	if (cfg.log_path && open_log(cfg.log_path) < 0)
		goto out;
	if (h5m_remote_is_url(cfg.file) && cfg.host_elinks) {
		/* A remote file's external links name files on its server, not host paths. */
		fprintf(stderr, "h5mount: -o external_links=host is for local files only\n");
		goto out;
	} else if (h5m_remote_is_url(cfg.file)) {
		file = strdup(cfg.file); /* opened below, once the mountpoint is known good */
	} else if (cfg.endpoint) {
		fprintf(stderr, "h5mount: -o endpoint= is for s3:// URLs only\n");
		goto out;
	} else {
		file = realpath(cfg.file, NULL);
		if (!file && errno == ENOENT && cfg.read_only) {
			fprintf(stderr, "h5mount: '%s' does not exist (a new file is created only without -o ro)\n", cfg.file);
			goto out;
		}
		if (!file && errno == ENOENT) /* a new file, made once the command line is valid */
			create = (file = new_file_path(cfg.file)) != NULL;
	}
	if (!file) {
		fprintf(stderr, "h5mount: cannot open '%s': %s\n", cfg.file, strerror(errno));
		goto out;
	}
	if (check_mountpoint(cfg.mountpoint) < 0)
		goto out;
	if (fuse_parse_cmdline(&args, &fopts) != 0 || !fopts.mountpoint) {
		print_fuse_failure("invalid arguments");
		goto out;
	}
	h5m_log_setup(false, fopts.debug ? H5M_LOG_DEBUG : H5M_LOG_INFO);
	/* Until the mount is up, log lines are kept: a failure prints its one line only. */
	h5m_log_hold();
	if (h5m_store_global_init() < 0) {
		fprintf(stderr, "h5mount: cannot initialise the HDF5 library or the Blosc filter\n");
		goto out;
	}
	if (create) {
		if (h5m_create_file(file, err, sizeof(err)) < 0) {
			fprintf(stderr, "h5mount: cannot create '%s': %s\n", cfg.file, err);
			goto out;
		}
		created = true;
		h5m_log(H5M_LOG_INFO, "created '%s', a new empty HDF5 file", cfg.file);
	}
	if (h5m_remote_is_url(file)) {
		if (h5m_remote_global_init() < 0) {
			fprintf(stderr, "h5mount: cannot initialise libcurl\n");
			goto out;
		}
		rc = h5m_remote_open(file, cfg.endpoint, &remote, err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "h5mount: cannot open '%s': %s\n", cfg.file, err);
			goto out;
		}
	}
	if (!cfg.nocheck && check_file(&cfg, cfg.file, file, remote) < 0)
		goto out;
	/* cache_size is shared: an eighth for HDF5's chunk caches (datasets whose blocks cut their
	 * chunks), the rest for our cache of decoded blocks. */
	fs.store = open_store(cfg.file, file, remote, cfg.read_only, cfg.cache_size / 8,
	                      cfg.host_elinks ? H5M_STORE_HOST_ELINKS : 0, &rw);
	if (!fs.store)
		goto out;
	fs.writable = rw;
	fs.views_shown = cfg.views_shown;
	fs.single_thread = fopts.singlethread;
	h5m_store_set_layout(fs.store, &cfg.layout); /* of datasets created through the mount */
	fs.views = h5m_views_new(fs.store, cfg.cache_size - cfg.cache_size / 8, cfg.dirty_limit);
	if (!fs.views) {
		fprintf(stderr, "h5mount: %s\n", strerror(ENOMEM));
		goto out;
	}
	/* Views and directories show the HDF5 file's owner, group and mode (fs.c fill_stat), and
	 * the kernel checks them for every access (default_permissions below): with allow_other,
	 * other users get what the file itself allows them. */
	rc = h5m_store_stat(fs.store, &st);
	if (rc < 0) {
		fprintf(stderr, "h5mount: cannot stat '%s': %s\n", cfg.file, strerror(-rc));
		goto out;
	}
	fs.uid = st.st_uid;
	fs.gid = st.st_gid;
	fs.mode = st.st_mode & 0777;
	/* Read-only: nothing changes, attributes can be cached long. Read-write: every change made
	 * through the mount is invalidated explicitly, so a second is only a safety net. */
	fs.timeout = rw ? 1.0 : 3600.0;
	fs.mtime = h5m_store_mtime(fs.store);
	/* Every name shows the file's times to the nanosecond (a utimensat through the mount sets
	 * them; datasets changed since show their change's). */
	fs.times_set = true;
	fs.atime = st.st_atim;
	fs.mtime_set = st.st_mtim;
	fs.host_fd = remote ? -1 : open(file, O_PATH | O_CLOEXEC);
	if (!remote && fs.host_fd < 0) {
		fprintf(stderr, "h5mount: cannot open '%s': %s\n", cfg.file, strerror(errno));
		goto out;
	}
	/* A read-only store is a read-only mount: writes fail with EROFS in the kernel. */
	if (!rw && !cfg.read_only && fuse_opt_add_arg(&args, "-oro") < 0)
		goto out;
	if (add_fsname(&args, file) < 0 || fuse_opt_add_arg(&args, "-osubtype=h5mount") < 0 ||
	    fuse_opt_add_arg(&args, "-odefault_permissions") < 0)
		goto out;
	se = fuse_session_new(&args, h5m_fs_ops(), sizeof(struct fuse_lowlevel_ops), &fs);
	if (!se) {
		print_fuse_failure("cannot create the FUSE session");
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		print_fuse_failure("cannot install signal handlers");
		goto out;
	}
	handlers = true;
	if (fuse_session_mount(se, fopts.mountpoint) != 0) {
		print_fuse_failure("cannot mount");
		goto out;
	}
	mounted = true;
	if (cfg.log_path)
		h5m_log_to_file(); /* the start-up lines go there too */
	h5m_log_release(true);
	if (geteuid() == 0 && mount_bdi(cfg.mountpoint, fs.bdi, sizeof(fs.bdi)) < 0)
		fs.bdi[0] = 0;
	runstate = start_runstate(cfg.mountpoint, file);
	fuse_msg_capture = false;
	setup_log(&cfg, fopts.foreground, fopts.debug ? H5M_LOG_DEBUG : H5M_LOG_INFO);
	if (fuse_daemonize(fopts.foreground) != 0)
		goto out;
	h5m_runstate_note(runstate, "pid", "%ld", (long)getpid());
	/* Threads only after daemonizing: fork keeps just the calling thread. */
	fs.se = se;
	if (h5m_views_start(fs.views, fopts.singlethread ? 0 : pool_workers()) < 0) {
		h5m_log(H5M_LOG_ERR, "cannot start the worker threads: %s", strerror(ENOMEM));
		goto out;
	}
	if (h5m_fs_notifier_start(&fs) < 0)
		goto out;
	h5m_views_set_observer(fs.views, h5m_fs_flushed, &fs);
	if (rw && cfg.flush_interval) {
		if (h5m_views_start_flusher(fs.views, cfg.flush_interval) < 0)
			goto out;
		flushing = true;
	}
	/* The loops return 0, -errno, or the number of the signal (SIGTERM, SIGINT, SIGHUP) that
	 * ended them: a signal is a clean stop. */
	if (fopts.singlethread) {
		ret = fuse_session_loop(se) < 0 ? 1 : 0;
	} else {
		loop = fuse_loop_cfg_create();
		if (!loop)
			goto out;
		fuse_loop_cfg_set_clone_fd(loop, fopts.clone_fd);
		/* libfuse leaves these at UINT_MAX when not given: keep its defaults then. */
		if (fopts.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(loop, fopts.max_idle_threads);
		if (fopts.max_threads != 0 && fopts.max_threads != UINT_MAX)
			fuse_loop_cfg_set_max_threads(loop, fopts.max_threads);
		ret = fuse_session_loop_mt(se, loop) < 0 ? 1 : 0;
	}
out:
	h5m_log_release(false); /* a start-up failure printed its one line; nothing if released */
	if (loop)
		fuse_loop_cfg_destroy(loop);
	if (flushing)
		h5m_views_stop_flusher(fs.views);
	if (ret != 0 && mounted)
		why = "the daemon failed while mounted (see its log)";
	/* Unmount, SIGTERM or SIGINT: complete held rows and write everything back, durably. */
	if (fs.views && rw)
		h5m_runstate_note(runstate, "dirty", "%zu", h5m_views_dirty_bytes(fs.views));
	if (fs.views && rw && h5m_views_flush(fs.views, true, true) < 0) {
		why = "the final write-back failed; the file keeps its last committed state";
		h5m_log(H5M_LOG_ERR, "%s", why);
		ret = 1;
	}
	h5m_fs_notifier_stop(&fs);
	h5m_fs_release_all(&fs);
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se)
		fuse_session_destroy(se);
	h5m_views_free(fs.views);
	h5m_store_close_at_exit(fs.store);
	h5m_remote_free(remote); /* after the store, which borrows it */
	if (fs.host_fd >= 0)
		close(fs.host_fd);
	if (created && !mounted) /* a mount that failed leaves no new file behind */
		unlink(file);
	/* Last: the file is written back, fsync'ed, closed and unlocked (h5mount -u waits for this). */
	h5m_runstate_finish(runstate, ret, why);
	free(file);
	free(fopts.mountpoint);
	h5m_opts_destroy(&cfg);
	fuse_opt_free_args(&args);
	return ret;
}
