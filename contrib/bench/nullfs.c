/* nullfs: the benchmark's FUSE ceiling, a null file system with one file; it stores nothing and reads nothing from disk.
 *
 * The mount has one regular file, `null`. A WRITE is answered at once (nothing is stored; the
 * file grows to the end of the write), a READ is answered with a fixed pattern straight from a
 * static buffer (byte at offset o is o % 251, no copy beyond the reply), SETATTR sets the size.
 * Opens mirror h5mount's: write-only opens are `direct_io` (one WRITE per write(2)), read opens
 * go through the page cache, and the mount's read_ahead_kb is raised as h5mount raises it (as
 * root), so that row appends and 1 MiB sequential reads cost what FUSE itself costs on the
 * machine. It runs the same multi-threaded libfuse 3 low-level loop as h5mount.
 * Usage: nullfs [-f] [-s] [-d] [-o readahead_kb=N,max_threads=N,...] MOUNTPOINT
 * Not installed; contrib/bench/bench.py starts it. */

#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROOT_INO FUSE_ROOT_ID
#define FILE_INO 2
#define FILE_NAME "null"
#define PERIOD 251u                 /* the read pattern's period: not a divisor of a page */
#define MAX_REPLY (4u << 20)        /* the most one READ reply carries (requests are <= 1 MiB) */
#define DEFAULT_READAHEAD_KB 2048   /* what h5mount sets (src/fs.c READ_AHEAD_KB) */

struct nullfs {
	uint64_t size;        /* the file's size; atomic (__atomic_*), any thread */
	int readahead_kb;     /* from -o readahead_kb=, 0: leave the kernel's; read-only after start */
	int readahead_done;   /* 1 once tuned; atomic */
	char bdi[64];         /* major:minor of the mount, "" if unknown; read-only after start */
};

struct nullfs_opts {
	int readahead_kb;
};

static const struct fuse_opt nullfs_opt_spec[] = {
	{ "readahead_kb=%d", offsetof(struct nullfs_opts, readahead_kb), 0 },
	FUSE_OPT_END
};

/* The bytes every READ reply points into: pattern[i] == i % PERIOD; filled once in main(). */
static unsigned char pattern[MAX_REPLY + PERIOD];

static struct nullfs *nfs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Writes the readahead into /sys/class/bdi/BDI/read_ahead_kb at the first request after INIT
 * (the kernel sets it from the INIT reply), as h5mount does. Failures only print a line. */
static void tune_readahead(struct nullfs *fs)
{
	char path[128];
	FILE *f;

	if (!fs->readahead_kb || !fs->bdi[0] || __atomic_exchange_n(&fs->readahead_done, 1, __ATOMIC_SEQ_CST))
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", fs->bdi);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%d\n", fs->readahead_kb) < 0 || fclose(f) != 0)
		fprintf(stderr, "nullfs: cannot set %s\n", path);
}

static void fill_attr(struct nullfs *fs, fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (ino == ROOT_INO) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		st->st_size = (off_t)__atomic_load_n(&fs->size, __ATOMIC_RELAXED);
	}
}

static void nullfs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* As h5mount: no writeback cache, so each write(2) is one WRITE. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void nullfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	tune_readahead(nfs(req));
	if (parent != ROOT_INO || strcmp(name, FILE_NAME) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = FILE_INO;
	e.attr_timeout = 1.0;
	e.entry_timeout = 1.0;
	fill_attr(nfs(req), FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void nullfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	tune_readahead(nfs(req));
	if (ino != ROOT_INO && ino != FILE_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(nfs(req), ino, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void nullfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                           struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != FILE_INO) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE)
		__atomic_store_n(&nfs(req)->size, (uint64_t)attr->st_size, __ATOMIC_RELAXED);
	fill_attr(nfs(req), ino, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void nullfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	static const struct { const char *name; fuse_ino_t ino; mode_t mode; } ents[] = {
		{ ".", ROOT_INO, S_IFDIR }, { "..", ROOT_INO, S_IFDIR }, { FILE_NAME, FILE_INO, S_IFREG },
	};
	char buf[512];
	size_t used = 0;

	(void)fi;
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	for (size_t i = (size_t)off; i < sizeof(ents) / sizeof(ents[0]); i++) {
		struct stat st = { .st_ino = ents[i].ino, .st_mode = ents[i].mode };
		size_t n = fuse_add_direntry(req, buf + used, sizeof(buf) - used, ents[i].name, &st,
		                             (off_t)(i + 1));

		if (used + n > sizeof(buf) || used + n > size)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static void nullfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (fi->flags & O_TRUNC)
		__atomic_store_n(&nfs(req)->size, 0, __ATOMIC_RELAXED);
	/* As h5mount's data files: write-only opens write directly, one request per write(2);
	 * reads go through the page cache, which a new open drops (every read reaches us). */
	fi->direct_io = (fi->flags & O_ACCMODE) == O_WRONLY;
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

static void nullfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
	uint64_t end = __atomic_load_n(&nfs(req)->size, __ATOMIC_RELAXED);

	(void)ino;
	(void)fi;
	if (off < 0 || (uint64_t)off >= end) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > end - (uint64_t)off)
		size = (size_t)(end - (uint64_t)off);
	if (size > MAX_REPLY)
		size = MAX_REPLY;
	fuse_reply_buf(req, (const char *)pattern + (uint64_t)off % PERIOD, size);
}

static void nullfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                         struct fuse_file_info *fi)
{
	struct nullfs *fs = nfs(req);
	uint64_t end = (uint64_t)off + size, cur = __atomic_load_n(&fs->size, __ATOMIC_RELAXED);

	(void)ino;
	(void)buf;
	(void)fi;
	while (cur < end && !__atomic_compare_exchange_n(&fs->size, &cur, end, false, __ATOMIC_RELAXED,
	                                                 __ATOMIC_RELAXED))
		;
	fuse_reply_write(req, size);
}

static void nullfs_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void nullfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	nullfs_ok(req, ino, fi);
}

static const struct fuse_lowlevel_ops nullfs_ops = {
	.init = nullfs_init,
	.lookup = nullfs_lookup,
	.getattr = nullfs_getattr,
	.setattr = nullfs_setattr,
	.readdir = nullfs_readdir,
	.open = nullfs_open,
	.read = nullfs_read,
	.write = nullfs_write,
	.flush = nullfs_ok,
	.release = nullfs_ok,
	.fsync = nullfs_fsync,
};

/* Finds the major:minor of the last mount at mp in /proc/self/mountinfo (h5mount's way; a
 * stat of the mount point would wait for our own loop). Returns 0 or -ENOENT. */
static int mount_bdi(const char *mp, char *out, size_t cap)
{
	char *real = realpath(mp, NULL), line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	int rc = -ENOENT;

	while (real && f && fgets(line, sizeof(line), f)) {
		char dev[64], point[4096];

		if (sscanf(line, "%*d %*d %63s %*s %4095s", dev, point) == 2 && !strcmp(point, real)) {
			snprintf(out, cap, "%s", dev);
			rc = 0;
		}
	}
	if (f)
		fclose(f);
	free(real);
	return rc;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts = { 0 };
	struct nullfs_opts nopts = { .readahead_kb = DEFAULT_READAHEAD_KB };
	struct nullfs fs = { 0 };
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	bool handlers = false, mounted = false;
	int ret = 1;

	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)(i % PERIOD);
	if (fuse_parse_cmdline(&args, &opts) != 0)
		goto out;
	if (opts.show_help || opts.show_version || !opts.mountpoint) {
		fprintf(opts.mountpoint || opts.show_help || opts.show_version ? stdout : stderr,
		        "usage: %s [-f] [-s] [-d] [-o readahead_kb=N,...] MOUNTPOINT\n", argv[0]);
		ret = opts.mountpoint || opts.show_help || opts.show_version ? 0 : 2;
		goto out;
	}
	if (fuse_opt_parse(&args, &nopts, nullfs_opt_spec, NULL) != 0 || nopts.readahead_kb < 0) {
		fprintf(stderr, "nullfs: bad options\n");
		ret = 2;
		goto out;
	}
	fs.readahead_kb = geteuid() == 0 ? nopts.readahead_kb : 0;
	se = fuse_session_new(&args, &nullfs_ops, sizeof(nullfs_ops), &fs);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	handlers = true;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out;
	mounted = true;
	if (mount_bdi(opts.mountpoint, fs.bdi, sizeof(fs.bdi)) < 0)
		fs.bdi[0] = 0;
	if (fuse_daemonize(opts.foreground) != 0)
		goto out;
	if (opts.singlethread) {
		ret = fuse_session_loop(se) < 0 ? 1 : 0;
	} else {
		loop = fuse_loop_cfg_create();
		if (!loop)
			goto out;
		fuse_loop_cfg_set_clone_fd(loop, opts.clone_fd);
		if (opts.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(loop, opts.max_idle_threads);
		if (opts.max_threads != 0 && opts.max_threads != UINT_MAX)
			fuse_loop_cfg_set_max_threads(loop, opts.max_threads);
		ret = fuse_session_loop_mt(se, loop) < 0 ? 1 : 0;
	}
out:
	if (loop)
		fuse_loop_cfg_destroy(loop);
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se)
		fuse_session_destroy(se);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
