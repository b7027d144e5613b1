/* vlen.h: reads of variable-length datasets (strings, sequences), shown as their values back to
 * back with an int64 row-offsets view. Reads are bounded (damaged lengths fail with EIO instead
 * of making HDF5 allocate gigabytes), and raw descriptors are checked against the global heap
 * before HDF5 follows them. Knows nothing of FUSE: errors are negative errno values.
 *
 * Locking: each call takes the HDF5 lock (store_priv.h) for its whole duration. */
#ifndef H5MOUNT_VLEN_H
#define H5MOUNT_VLEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "h5mount/store.h"

/* vlen datasets: reads `len` bytes of the concatenated values at `off`. Returns bytes or -EIO. */
ssize_t h5m_vlen_read(struct h5m_store *s, struct h5m_dataset *ds, void *buf, size_t len, uint64_t off);

/* vlen datasets: the row offsets (nrows + 1 values) in *offsets, computing them on first use.
 * The array stays owned by the dataset. Returns 0 or -EIO. */
int h5m_vlen_offsets(struct h5m_store *s, struct h5m_dataset *ds, const uint64_t **offsets, uint64_t *nrows);

#endif
