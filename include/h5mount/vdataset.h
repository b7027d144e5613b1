/* vdataset.h: the views' own state of one fixed-size dataset (logical dims, block geometry,
 * the held partial row, write-back error, mtime, read-ahead) and the exclusion of its readers,
 * writers and resizes. The store's struct h5m_dataset keeps what is fixed at open and what
 * lives under the HDF5 lock; this is everything the views change while mounted. It knows
 * nothing of FUSE, HDF5 calls or the block cache. */
#ifndef H5MOUNT_VDATASET_H
#define H5MOUNT_VDATASET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "h5mount/blocks.h"
#include "h5mount/lock.h"
#include "h5mount/store.h"

struct h5m_readahead;

/* Locks (their place in the daemon's order: lock.h): wlock, then resize (write-held inside
 * wlock by a resize; read-held alone by a read), then meta (brief, innermost of the three).
 * Each field says who writes it holding what (W:) and what a reader holds (R:). */
struct h5m_view_handle;

struct h5m_vds {
	struct h5m_dataset *ds;    /* the store's dataset (its immutable fields only); immutable */
	struct h5m_mutex wlock;    /* one writer, truncate, reshape or write-back of this dataset */
	struct h5m_mutex meta;     /* the logical state below; brief */
	pthread_rwlock_t resize;   /* read-held by each read of the file (h5m_vds_read_begin ..
	                            * read_end), write-held by a reshape or truncate while it changes
	                            * the file's extent and the block geometry. Writer-preferring:
	                            * new reads wait behind a waiting resize, so a thread must never
	                            * read-lock it twice (only try-locks may nest) */
	uint64_t epoch;            /* resizes begun so far: tells geometries apart for read-ahead
	                            * (W: resize write-held + meta; R: meta) */
	uint64_t dims[H5M_NPY_MAXDIMS]; /* logical dims: complete rows, flushed or not
	                            * (W: wlock + meta; R: meta, or wlock) */
	struct h5m_blocks blocks;  /* block geometry for the logical dims; its trailing dims change
	                            * only under resize write-held too (W: wlock + meta; R: meta,
	                            * or wlock, or a read's snapshot) */
	uint64_t row_bytes;        /* bytes below axis 0 (the element size for rank 0 and 1); changes
	                            * with a reshape (W: wlock + meta + resize; R: wlock or meta) */
	unsigned char *tail;       /* bytes of an incomplete last row, row_bytes long, or NULL
	                            * (pointer and bytes W: wlock + meta; R: meta, or wlock) */
	uint64_t tail_len;         /* how many of them were written (W: wlock + meta; R: meta, or wlock) */
	const struct h5m_view_handle *tail_owner; /* the open file whose write left the held bytes,
	                            * or NULL; its release completes the row (views.c; wlock) */
	int wb_error;              /* -errno of a failed write-back not yet reported (meta) */
	bool pending;              /* dirty blocks or rows not yet in the file (W: wlock + meta; R: meta) */
	int64_t mtime_sec;         /* last change through the mount, 0 if none (meta) */
	long mtime_nsec;           /* (meta) */
	struct h5m_readahead *ra;  /* the read-ahead state, or NULL: set once (release) under the
	                            * readaheads' lock, read with acquire ordering */
};

/* The views' state of fixed-size dataset ds, created on first use from the dims and block
 * geometry the store found at open (every later change of them goes through this state).
 * Lock-free: set once in the dataset's slot with release ordering, read with acquire ordering
 * (two first users race with a compare-and-swap; the loser frees its copy). Returns NULL when
 * out of memory. The state lives until h5m_vds_free. */
struct h5m_vds *h5m_vds_get(struct h5m_dataset *ds);

/* The state of ds if it was created, else NULL. Lock-free. */
struct h5m_vds *h5m_vds_peek(struct h5m_dataset *ds);

/* Frees the state of ds (if any) and clears its slot. No other thread may use it any more;
 * the read-ahead state must be freed before. */
void h5m_vds_free(struct h5m_dataset *ds);

/* Snapshot of a dataset's logical state for a reader or writer. */
struct h5m_vsnap {
	struct h5m_blocks b;
	uint64_t tail_len;
	uint64_t epoch;            /* of the geometry b */
};

/* Copies the geometry and held length into *sn. Takes meta. */
void h5m_vds_snapshot(struct h5m_vds *vs, struct h5m_vsnap *sn);

/* Reads and resizes exclude each other (the resize rwlock): a resize (resize_begin ..
 * resize_end) waits for the reads under way to end, and new reads wait for it. A reader's
 * snapshot, taken by read_begin, thus stays true of the file until its read_end: this is the
 * only consistency mechanism between reads and resizes (a resize of one dataset never touches
 * the reads of another). read_try_begin never waits: it returns false while a resize runs or
 * waits. A thread holding a read must not call read_begin again (read_try_begin is fine).
 * Snapshots take meta. */
void h5m_vds_read_begin(struct h5m_vds *vs, struct h5m_vsnap *sn);
bool h5m_vds_read_try_begin(struct h5m_vds *vs, struct h5m_vsnap *sn);
void h5m_vds_read_end(struct h5m_vds *vs);

/* Starts a change of the file's extent and the block geometry (caller holds wlock, no read):
 * waits for the reads under way; new ones wait until resize_end. Moves the epoch on. */
void h5m_vds_resize_begin(struct h5m_vds *vs);
void h5m_vds_resize_end(struct h5m_vds *vs);

/* Takes a pending write-back error (reported once): returns it, or 0. Takes meta. */
int h5m_vds_take_wb_error(struct h5m_vds *vs);

/* Keeps -errno rc as the write-back error the next writer reports. Takes meta. */
void h5m_vds_set_wb_error(struct h5m_vds *vs, int rc);

/* Sets whether dirty blocks or rows are waiting for write-back. Takes meta. */
void h5m_vds_set_pending(struct h5m_vds *vs, bool pending);

#endif
