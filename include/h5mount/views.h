/* views.h: the files a dataset shows (raw bytes, .npy, .shape, .offsets): sizes, reads and
 * writes (appends with held partial rows, overwrites, truncates, .npy headers, shape text) over
 * a block cache with bounded write-back. Knows nothing of FUSE, paths or inode numbers. */
#ifndef H5MOUNT_VIEWS_H
#define H5MOUNT_VIEWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "h5mount/npy.h"
#include "h5mount/store.h"

struct h5m_views;

/* Creates the view layer over `store` with a block cache of `cache_bytes` (clean blocks) and
 * at most `dirty_limit` bytes of dirty blocks before a write-back. Does not own the store.
 * Returns NULL on allocation failure. */
struct h5m_views *h5m_views_new(struct h5m_store *store, size_t cache_bytes, size_t dirty_limit);

/* Starts `workers` threads that load the blocks of one read, and encode and write the chunks
 * of one write-back, in parallel, and read ahead of sequential readers (0:
 * none; everything then runs on its caller alone, as before this is called, and nothing is
 * read ahead). Call once, after fork/daemon and before serving requests. Returns 0 or -ENOMEM. */
int h5m_views_start(struct h5m_views *v, unsigned workers);

/* Starts the thread that writes dirty blocks back every `interval` seconds (writeback.c).
 * Call after h5m_views_start. Returns 0 or -errno. */
int h5m_views_start_flusher(struct h5m_views *v, unsigned interval);

/* Stops that thread (after the write-back it may be doing). No-op when it does not run. */
void h5m_views_stop_flusher(struct h5m_views *v);

/* Frees the view layer and its cache (stopping the flusher); dirty data not flushed before is
 * lost. */
void h5m_views_free(struct h5m_views *v);

/* What a write, truncate or close changed, for the adapter to tell the kernel. */
struct h5m_change {
	bool size;           /* sizes, the .npy header and the shape text may have changed */
	bool moved;          /* the write landed elsewhere than the caller said (O_APPEND, other header) */
	bool all;            /* every byte may have changed (e.g. a reshape) */
	uint64_t data_off;   /* raw data bytes [data_off, data_off + data_len) changed */
	uint64_t data_len;
};

/* State of one open file of a view, owned by the caller (one per open(2)). */
struct h5m_view_handle {
	enum h5m_view view;
	bool write;          /* opened for writing */
	bool append;         /* O_APPEND: data writes land at the real end */
	bool wrote;          /* wrote data: complete an incomplete row at release */
	bool closed;         /* a close(2) of it (FLUSH) came since it last wrote data: another
	                      * file's write completes the row it left first (wlock) */
	bool trunc_pending;  /* .npy opened with O_TRUNC: empty the dataset once a valid header
	                      * arrives (or at close if nothing was written); a rejected header
	                      * leaves the dataset as it was */
	bool trunc_at_write; /* raw view of a name shown again by a create (ns-model rule 3
	                      * amended): empty the dataset at the first data write */
	bool refused;        /* a write of it was refused as a bad .npy header, or its header
	                      * never completed by the close (fs.c: a dataset created for it and
	                      * still empty is removed at release) */
	uint64_t npy_hdr;    /* .npy: header length this writer declared (0: the view's own) */
	char *stage;         /* .npy header bytes or .shape text not yet applied (malloc) */
	size_t stage_len;
};

/* Size in bytes of view `view` of dataset node n. Returns 0, -EINVAL (not a dataset view), -EIO,
 * or -ENOMEM (the views' state of the dataset, made on first use, could not be allocated). */
int h5m_view_size(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, uint64_t *size);

/* Records the current time as when dataset node n last changed through the mount (the
 * adapter calls it for each change it tells the kernel of). Takes the dataset's meta lock. */
void h5m_view_touch(struct h5m_views *v, struct h5m_node *n);

/* Dataset node n was deleted (its last name removed, or replaced by a rename): its cached
 * blocks, dirty ones included, and a held partial row are dropped, never written back into
 * any object. Files still open on it read the rows the file had (rows only written to the
 * cache read as fill); their later writes go to the unlinked object, which HDF5 frees at
 * close. Takes the dataset's wlock, then meta and the cache lock; no-op for a dataset the
 * views never used. */
void h5m_view_forget(struct h5m_views *v, struct h5m_node *n);

/* When dataset node n last changed through the mount: true with *ts set, false when it never
 * did (the file's mtime then applies). Takes the dataset's meta lock. */
bool h5m_view_mtime(struct h5m_views *v, struct h5m_node *n, struct timespec *ts);

/* Whether view `view` of n accepts writes (fixed-size types in a writable store). */
bool h5m_view_writable(struct h5m_views *v, struct h5m_node *n, enum h5m_view view);

/* Bytes of disk a view of dataset n accounts for (its st_blocks * 512), given its size: the
 * raw view carries what the dataset occupies in the file (h5m_store_storage_size; for
 * variable-length data its flat size), the derived views (.npy, .shape, .offsets) none, so
 * that du counts each dataset once. Takes the HDF5 lock only when the file changed. */
uint64_t h5m_view_disk_bytes(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, uint64_t size);

/* Like h5m_view_writable, for a write or truncate about to be refused: returns 0, or -EACCES
 * after logging why (the file is read-only, a derived view, a variable-length or converted
 * dataset; once a minute per dataset: h5m_log_limited). Locks nothing but the log's leaf lock. */
int h5m_view_check_writable(struct h5m_views *v, struct h5m_node *n, enum h5m_view view);

/* Reads up to `len` bytes at `off` of a dataset view into buf. Returns the byte count (short
 * only at end of file) or -EIO/-ENOMEM. Thread-safe; cache hits take no HDF5 lock and never
 * wait for a write-back. */
ssize_t h5m_view_read(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, void *buf, size_t len, uint64_t off);

/* Writes `len` bytes at `off` through handle h. Returns len or -errno: -EINVAL (a bad .npy
 * header or shape text, nothing changed), -EFBIG (the dataset cannot grow that far), -EACCES
 * (read-only view), -ENOSPC/-EIO (a write-back failed since the last report). Fills *chg. */
ssize_t h5m_view_write(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, const void *buf,
                       size_t len, uint64_t off, struct h5m_change *chg);

/* Sets the size of a view (truncate): whole rows for raw and .npy (0 or exactly the header
 * length for .npy means no rows), anything for .shape (ignored). Returns 0, -EINVAL, -EFBIG, -EACCES or
 * -EIO/-ENOSPC. Fills *chg. */
int h5m_view_truncate(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, uint64_t size,
                      struct h5m_change *chg);

/* At open(2) with O_TRUNC through handle h: the raw view is emptied now, the .npy view once a
 * valid header is written (or at close), the .shape view never. Returns 0 or -errno. */
int h5m_view_open_truncate(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, struct h5m_change *chg);

/* At each close(2) of a descriptor of handle h (FUSE FLUSH; dup'ed and inherited descriptors
 * each send one): applies pending shape text and reports a failed write-back. Returns 0 or
 * -errno. Fills *chg. */
int h5m_view_close(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, struct h5m_change *chg);

/* When the last reference to handle h goes (FUSE RELEASE), never earlier: completes an
 * incomplete row the handle wrote with the fill value (logged). A close of one descriptor of
 * several (a forked child's, a dup's) must not: the writer's next bytes belong to that row.
 * Returns 0 or -errno (the row could not grow). Fills *chg. */
int h5m_view_release(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, struct h5m_change *chg);

/* Whether a write of `len` bytes at `off` through .npy handle h of dataset n completes a
 * valid C-order .npy header that asks for another dataset (ns-model rules 4 and 5): n is
 * untyped (node->untyped) or h empties it (O_TRUNC), and the header's dtype or trailing dims
 * differ from n's. Returns 1 with *hdr filled (the caller replaces the dataset:
 * h5m_store_retype), or 0: the write goes on as usual (a bad header is refused there). Reads
 * h's staging buffer (the caller's, one request at a time per open file); takes meta. */
int h5m_view_npy_wants_type(struct h5m_views *v, struct h5m_node *n, const struct h5m_view_handle *h,
                            const void *buf, size_t len, uint64_t off, struct h5m_npy_header *hdr);

/* Whether a write of `len` bytes at `off` through .shape handle h of untyped dataset n
 * completes shape text (a newline) of another rank or trailing dims than n's (ns-model rule
 * 4). Returns 1 with dims[0..*rank) filled (the caller gives n a uint8 type of those trailing
 * dims: h5m_store_retype), or 0: the write goes on as usual. Reads h's staging buffer. */
int h5m_view_shape_wants_rank(struct h5m_views *v, struct h5m_node *n, const struct h5m_view_handle *h,
                              const void *buf, size_t len, uint64_t off, uint64_t *dims, unsigned *rank);

/* Frees the staging buffers of a handle (not the handle itself). */
void h5m_view_handle_destroy(struct h5m_view_handle *h);

/* Told that a flush changed dataset n other than by a write through one of its files: its held
 * incomplete row was completed with the fill value (`c` says where; c->size is set). Called
 * with no lock of the views held, from the flushing thread. */
typedef void (*h5m_views_observer)(void *ctx, struct h5m_node *n, const struct h5m_change *c);

/* Sets the observer (NULL: none). Call before serving requests. */
void h5m_views_set_observer(struct h5m_views *v, h5m_views_observer fn, void *ctx);

/* Writes every dirty block back and commits (durable: fsync'ed). With complete_rows, incomplete
 * last rows are completed with the fill value first (logged, and reported to the observer).
 * Returns 0 or the first -errno (also kept for the writers of the affected datasets).
 * Serialized with other flushes. */
int h5m_views_flush(struct h5m_views *v, bool durable, bool complete_rows);

/* Blocks read from the file so far (into the cache or straight into a reader's buffer; a
 * block that failed and was read in parts is not counted). Lock-free. */
uint64_t h5m_views_blocks_loaded(struct h5m_views *v);

/* Bytes of dirty blocks waiting for write-back. */
size_t h5m_views_dirty_bytes(struct h5m_views *v);

#endif
