/* readahead.h: read-ahead for sequential readers of a dataset, and the registry of blocks being
 * loaded that keeps two loaders (reads, or a read and the read-ahead task) from decoding one
 * block twice. It decides what to load and when; the views' loader decides how. Knows nothing
 * of FUSE or HDF5.
 *
 * A sequential reader gets the blocks after each of its reads loaded into the cache on a worker
 * while the kernel is busy with this read's reply, so that its next read finds them decoded.
 * One position is kept per dataset. The task loads like a reader, under a try-read of the
 * dataset (h5m_vds_read_try_begin: it never waits for a resize, nor holds one up), and only
 * blocks of the geometry (resize epoch) it was scheduled for. */
#ifndef H5MOUNT_READAHEAD_H
#define H5MOUNT_READAHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h5mount/blocks.h"
#include "h5mount/store.h"
#include "h5mount/vdataset.h"

struct h5m_cache;
struct h5m_cache_ent;
struct h5m_pool;
struct h5m_readaheads;  /* every dataset's read-ahead state and what their tasks share */
struct h5m_readahead;   /* one dataset's */

/* A registration slot that is none: the block is loaded unregistered. */
#define H5M_READAHEAD_NO_SLOT 32u

/* Loads block `block` of geometry b of dataset node n into the cache and returns it referenced,
 * or NULL with *err. Called on a worker holding a try-read of the dataset. */
typedef struct h5m_cache_ent *(*h5m_readahead_load_fn)(void *ctx, struct h5m_node *n, const struct h5m_blocks *b,
                                                       uint64_t block, int *err);

/* Creates the read-ahead of a views layer over `cache` (of `cache_bytes`: at most a quarter of
 * it is read ahead at once), loading with `load`. Nothing is read ahead until
 * h5m_readaheads_start. Returns NULL when out of memory. */
struct h5m_readaheads *h5m_readaheads_new(struct h5m_cache *cache, size_t cache_bytes, h5m_readahead_load_fn load,
                                          void *ctx);

/* Runs read-ahead tasks on `pool` (none when it has no workers). Call before any request. */
void h5m_readaheads_start(struct h5m_readaheads *r, struct h5m_pool *pool);

/* Makes queued and running tasks return at once. Lock-free. */
void h5m_readaheads_stop(struct h5m_readaheads *r);

/* Frees every dataset's state; the pool must be gone (no task runs). NULL is a no-op. */
void h5m_readaheads_free(struct h5m_readaheads *r);

/* The read-ahead state of dataset node n (whose views state exists), created on first use;
 * NULL when nothing is read ahead (no workers, or no memory). Takes the readaheads' lock once. */
struct h5m_readahead *h5m_readahead_of(struct h5m_readaheads *r, struct h5m_node *n);

/* A read (holding a read of the dataset) missed `block`: returns true after waiting for another
 * loader of it to finish (look in the cache again); else registers the caller as its loader
 * (*slot, H5M_READAHEAD_NO_SLOT when all slots are taken) and takes it off the task's list.
 * Blocks must be claimed in offset order within a read (so no two reads wait for each other).
 * Takes the dataset's meta. */
bool h5m_readahead_claim(struct h5m_readahead *ra, uint64_t block, unsigned *slot);

/* Ends a registration made by h5m_readahead_claim (NO_SLOT: none). Takes the dataset's meta. */
void h5m_readahead_done(struct h5m_readahead *ra, unsigned slot);

/* After a read of [off, off + len) with snapshot sn: when it ends a streak of sequential reads,
 * schedules the blocks of the 4 x len bytes after it (at most 8 MiB and a quarter of the cache)
 * and queues the task if idle. Takes the dataset's meta. */
void h5m_readahead_after(struct h5m_readahead *ra, const struct h5m_vsnap *sn, uint64_t off, size_t len);

#endif
