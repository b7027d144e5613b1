/* chunkio.h: raw data I/O of fixed-size datasets, the store's data path: block reads (chunks
 * read raw under the HDF5 lock and decoded outside it, so threads decode in parallel), partial
 * block reads around a damaged chunk, pread of raw contiguous data and of unfiltered whole-row
 * chunks, extent changes, block and whole-chunk writes. Variable-length data is vlen.h's.
 * Knows nothing of FUSE or of the cache: errors are negative errno values.
 *
 * Locking: each call takes the HDF5 lock itself (store_priv.h), per chunk where it decodes or
 * preads outside it; writers call with the dataset's wlock held (the order is in lock.h).
 * Chunk-sized scratch buffers come from the bounded iobuf stash (iobuf.h) and go back to it
 * before the call returns. */
#ifndef H5MOUNT_CHUNKIO_H
#define H5MOUNT_CHUNKIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "h5mount/blocks.h"
#include "h5mount/store.h"

/* Reads block `block` of geometry `b` (a snapshot of the views' geometry) into buf of `len` bytes (at
 * least the block's extent): rows that exist in the HDF5 file are read, every other byte of buf
 * gets the fill value (skipped when `zeroed` says buf is all zeros and so is the fill value),
 * and so does storage never written, whatever HDF5's fill time: no byte of buf is left as it was.
 * Returns 0 or -EIO (logged once per dataset with the reason, e.g. the missing filter). Takes
 * the HDF5 lock. */
int h5m_chunkio_read_block(struct h5m_dataset *ds, const struct h5m_blocks *b, uint64_t block, void *buf, size_t len,
                           bool zeroed);

/* Reads only indices [first, first + count) of the split dim of block `block` (relative to the
 * block's start there) into buf, for when a whole block cannot be read (a corrupted chunk must
 * not hide its neighbours). Returns 0 or -EIO. Takes the HDF5 lock. */
int h5m_chunkio_read_block_part(struct h5m_dataset *ds, const struct h5m_blocks *b, uint64_t block,
                                uint64_t first, uint64_t count, void *buf);

/* For contiguous, unfiltered, allocated datasets served as stored (ds->contig_offset >= 0,
 * the user block included): reads `len` bytes at data offset `off` straight from the file.
 * Returns bytes read or -EIO. No HDF5 lock. */
ssize_t h5m_chunkio_pread(struct h5m_store *s, struct h5m_dataset *ds, void *buf, size_t len, uint64_t off);

/* For raw_rows datasets: reads `len` bytes at data offset `off` (within the dataset) straight
 * from the file, chunk by chunk (the chunk's address, relative to the user block, looked up
 * under the HDF5 lock, the bytes read outside it); chunks never written read as the fill
 * value. Returns bytes read or -EIO (logged). Takes the HDF5 lock briefly per chunk. */
ssize_t h5m_chunkio_pread_rows(struct h5m_store *s, struct h5m_dataset *ds, void *buf, size_t len, uint64_t off);

/* Sets the HDF5 extent to `dims` (H5Dset_extent). Returns 0, -EFBIG beyond maxdims, -EINVAL
 * when the layout cannot change extent, or -EIO/-ENOSPC. Takes the HDF5 lock; caller holds wlock. */
int h5m_chunkio_set_extent(struct h5m_store *s, struct h5m_dataset *ds, const uint64_t *dims);

/* Whether the blocks of geometry b are runs of whole chunks, each contiguous in the block (the
 * chunks span every dim after the first, the blocks split the first dim at chunk edges) and
 * stored raw or as Blosc frames, so that whole ones can go through h5m_chunkio_put_chunk. Takes
 * no lock. */
bool h5m_chunkio_chunk_rows(const struct h5m_dataset *ds, const struct h5m_blocks *b);

/* Writes the whole chunk whose first row is row0 (a multiple of the chunk's rows; the chunk
 * within the HDF5 extent) from its chunk_bytes at src, straight into the file: a Blosc dataset's
 * chunk is encoded first, outside the HDF5 lock in a buffer from the iobuf stash, so threads
 * encode in parallel (stored raw, as HDF5's optional filter does, when Blosc refuses it). Returns
 * 0, -ENOMEM, -ENOSPC or -EIO (logged). Takes the HDF5 lock; caller holds wlock. */
int h5m_chunkio_put_chunk(struct h5m_store *s, struct h5m_dataset *ds, uint64_t row0, const void *src);

/* Writes block `block` of geometry `b` from buf (the block's extent, whose rows must lie within
 * the HDF5 extent). Returns 0, -ENOSPC or -EIO (logged). Takes the HDF5 lock; caller holds wlock. */
int h5m_chunkio_write_block(struct h5m_store *s, struct h5m_dataset *ds, const struct h5m_blocks *b, uint64_t block,
                            const void *buf);

#endif
