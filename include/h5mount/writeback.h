/* writeback.h: the one owner of "when bytes reach the disk": dirty blocks of the cache are
 * written back into the HDF5 file and committed when they exceed the dirty limit (the writer
 * waits: back-pressure), every flush interval (a thread of its own), at fsync and at unmount
 * (durably, held rows completed), and after a write-back the freed memory goes back to the
 * system (malloc policy). Knows nothing of FUSE; writes through the store. */
#ifndef H5MOUNT_WRITEBACK_H
#define H5MOUNT_WRITEBACK_H

#include <stdbool.h>
#include <stddef.h>

#include "h5mount/store.h"
#include "h5mount/views.h"

struct h5m_cache;
struct h5m_pool;
struct h5m_writeback;

/* Completes the held incomplete row of dataset node n, if any, with the fill value (it becomes
 * a complete row, dirty; logged) and sets *completed to what changed (nothing when no row was
 * held). Caller holds n's wlock. Returns 0 or -errno. */
typedef int (*h5m_writeback_complete_fn)(void *ctx, struct h5m_node *n, struct h5m_change *completed);

/* Creates the write-back of `store` for the dirty blocks of `cache`, flushing when they exceed
 * `dirty_limit` bytes; `complete` completes held rows (the views' growth). Does not own store
 * or cache. Returns NULL when out of memory. */
struct h5m_writeback *h5m_writeback_new(struct h5m_store *store, struct h5m_cache *cache, size_t dirty_limit,
                                        h5m_writeback_complete_fn complete, void *ctx);

/* Encodes and writes chunks on `pool` (NULL or no workers: on the caller). Before any request. */
void h5m_writeback_set_pool(struct h5m_writeback *wb, struct h5m_pool *pool);

/* Tells `fn` of rows a flush completed (see h5m_views_observer). Before any request. */
void h5m_writeback_set_observer(struct h5m_writeback *wb, h5m_views_observer fn, void *ctx);

/* Starts the thread that writes back (not durably) every `interval` seconds. Returns 0,
 * -EBUSY when it runs already, or -errno of pthread_create. */
int h5m_writeback_start_timer(struct h5m_writeback *wb, unsigned interval);

/* Stops that thread, after the write-back it may be doing. No-op when it does not run. */
void h5m_writeback_stop_timer(struct h5m_writeback *wb);

/* Stops the timer and frees. Dirty blocks not written back are lost. NULL is a no-op. */
void h5m_writeback_free(struct h5m_writeback *wb);

/* Writes the dirty blocks of dataset node n back in row order, a round at a time, growing the
 * file's extent only as far as each round's rows and committing a slice whenever enough is
 * held uncommitted (a crash leaves a prefix of appended rows, never holes). With
 * complete_row, a held incomplete row is completed first (logged; *completed says where, if
 * not NULL). Does not commit the rest. Caller holds n's wlock. Returns 0 or -errno. */
int h5m_writeback_dataset(struct h5m_writeback *wb, struct h5m_node *n, bool complete_row,
                          struct h5m_change *completed);

/* Writes every dataset back and commits (durable: fsync'ed); see h5m_views_flush. Takes the
 * flush lock, then each dataset's wlock in turn. Returns 0 or the first -errno. */
int h5m_writeback_all(struct h5m_writeback *wb, bool durable, bool complete_rows);

/* Commits what was written through the store so far (not durably), for a change that must be
 * in the file at once: a truncate or reshape, after it set the extent. Caller holds the
 * dataset's wlock. Returns 0, -ENOSPC or -EIO (logged). */
int h5m_writeback_commit(struct h5m_writeback *wb);

/* After a write (no lock held): when the dirty blocks exceed the limit, writes everything back
 * now, on the writer's thread (back-pressure), then gives freed memory back to the system. */
void h5m_writeback_after_write(struct h5m_writeback *wb);

#endif
