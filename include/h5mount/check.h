/* check.h: the check before mounting: a child process opens the HDF5 file read-only and walks
 * all the metadata the daemon could later touch, under a memory bound and a deadline, so that
 * a file on which HDF5 1.10.8 crashes, allocates without bound or never finishes is refused
 * before anything is mounted. It reads no chunk data. Knows nothing of FUSE. */
#ifndef H5MOUNT_CHECK_H
#define H5MOUNT_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "h5mount/store.h"

struct h5m_check_limits {
	size_t max_rss;         /* resident bytes the child may reach before it is killed */
	unsigned timeout;       /* seconds the child may take before it is killed */
	size_t block_target;    /* the store's block size, as the daemon opens it */
	struct h5m_remote *remote; /* non-NULL: the file is this remote one (remote.h; path is its
	                         * name), opened with h5m_store_open_remote */
};

/* Walks store `s` as the daemon's requests would: every group listed (recursively, through
 * h5m_store_list), every attribute of every group and dataset listed and read as getxattr
 * reads it, every variable-length dataset's row offsets computed as stat does. Errors of single
 * objects (EIO, E2BIG, ENODATA) are what the daemon would answer, not failures. Returns 0, or
 * -ENOMEM (the walk stops). Counts the objects walked in *nodes. Takes the store's locks. */
int h5m_check_walk(struct h5m_store *s, uint64_t *nodes);

/* Runs the walk of `path` in a forked child (stderr to /dev/null, log lines dropped) and waits
 * for it, polling its resident size. Returns 0 when the walk finished within the limits, or when
 * the child could not open the file at all (the caller's own open then says why); -EIO when the
 * file must be refused, with the reason in why[cap] (one line, e.g. "the HDF5 library crashed
 * (SIGSEGV) while reading its metadata"); -errno when the check could not run. *elapsed_ms gets
 * the check's duration. Forks: call while the process has a single thread. */
int h5m_check_file(const char *path, const struct h5m_check_limits *lim, char *why, size_t cap,
                   unsigned *elapsed_ms);

#endif
