/* fs.h: the FUSE low-level adapter: turns requests into calls on the views and store and
 * translates their negative errno results into replies. It holds no storage logic. */
#ifndef H5MOUNT_FS_H
#define H5MOUNT_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "h5mount/store.h"
#include "h5mount/views.h"

#define H5M_FS_STRIPES 1024
#define H5M_FS_KNOWN_SLOTS 65536

struct h5m_notifier;
struct h5m_fs_file;

/* All state of a mount, reached through fuse_req_userdata(). */
struct h5m_fs {
	struct h5m_store *store;   /* thread-safe by itself */
	struct h5m_views *views;   /* thread-safe by itself */
	struct fuse_session *se;   /* set before the loop starts */
	bool writable;             /* the store accepts writes */
	bool single_thread;        /* -s: never invalidate inline (nobody else could answer) */
	unsigned views_shown;      /* -o views=: bit (1 << enum h5m_view) set for each dataset view shown */
	uid_t uid;                 /* owner shown for every file: the HDF5 file's (atomic: chown) */
	gid_t gid;                 /* group shown for every file: the HDF5 file's (atomic: chown) */
	mode_t mode;               /* the HDF5 file's permission bits (0777 mask), see fill_stat
	                            * (atomic: chmod) */
	double timeout;            /* entry and attribute timeout, seconds */
	int64_t mtime;             /* the HDF5 file's mtime, shown until a dataset changes */
	pthread_mutex_t times_lock; /* leaf: protects the times set through the mount below */
	bool times_set;            /* atime/mtime_set hold the HDF5 file's times (at mount, or as a
	                            * utimensat or an attribute's commit left them at set_at): every
	                            * name shows them, except datasets changed after set_at; else
	                            * fs->mtime (seconds) */
	struct timespec atime, mtime_set, set_at;
	int host_fd;               /* O_PATH descriptor of the HDF5 file, for statfs (set before mounting) */
	int writers[H5M_FS_STRIPES]; /* write requests in flight per dataset stripe (atomic) */
	struct h5m_notifier *notifier; /* queue of kernel cache invalidations (own lock) */
	/* Per inode, hashed: whether the kernel may know it (looked up since mount) and may hold
	 * pages of it (a READ or buffered WRITE of it came); a collision only costs a needless
	 * invalidation. Bits set with atomics, never cleared. */
	unsigned char known[H5M_FS_KNOWN_SLOTS];
	char bdi[64];              /* "major:minor" of the mount, to raise its readahead (root) */
	int readahead_done;        /* set once by the first request (atomic) */
	pthread_mutex_t handles_lock;  /* protects handles */
	struct h5m_fs_file *handles;   /* open files, freed at release or at shutdown */
};

/* Frees the open-file state of files still open when the loop ended (SIGTERM with writers). */
void h5m_fs_release_all(struct h5m_fs *fs);

/* The views' observer (h5m_views_set_observer, ctx = the h5m_fs): tells the kernel what a
 * flush changed in a dataset nobody wrote to just then (a held row completed at fsync of
 * another file, at unmount or at SIGTERM). */
void h5m_fs_flushed(void *ctx, struct h5m_node *n, const struct h5m_change *c);

/* The operations table for fuse_session_new(). */
const struct fuse_lowlevel_ops *h5m_fs_ops(void);

/* Starts and stops the thread that sends queued cache invalidations to the kernel. Start after
 * fs->se is set; stop before the session is destroyed. Returns 0 or -errno. */
int h5m_fs_notifier_start(struct h5m_fs *fs);
void h5m_fs_notifier_stop(struct h5m_fs *fs);

#endif
