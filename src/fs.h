/* fs.h: the FUSE low-level adapter: turns requests into calls on the views and store and
 * translates their negative errno results into replies. It holds no storage logic. */
#ifndef H5MOUNT_FS_H
#define H5MOUNT_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <stdint.h>
#include <sys/types.h>

#include "h5mount/store.h"
#include "h5mount/views.h"

/* All state of a mount, reached through fuse_req_userdata(). */
struct h5m_fs {
	struct h5m_store *store;   /* thread-safe by itself */
	struct h5m_views *views;   /* thread-safe by itself */
	uid_t uid;                 /* owner shown for every file */
	gid_t gid;
	double timeout;            /* entry and attribute timeout, seconds */
	int64_t mtime;             /* shown as every file's times */
};

/* The operations table for fuse_session_new(). */
const struct fuse_lowlevel_ops *h5m_fs_ops(void);

#endif
