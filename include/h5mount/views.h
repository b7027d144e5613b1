/* views.h: the files a dataset shows (raw bytes, .npy, .shape, .offsets): their sizes and byte
 * ranges, served from the block cache or the store. Knows nothing of FUSE or paths. */
#ifndef H5MOUNT_VIEWS_H
#define H5MOUNT_VIEWS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "h5mount/store.h"

struct h5m_views;

/* Creates the view layer over `store` with a block cache of `cache_bytes`. Does not own the
 * store. Returns NULL on allocation failure. */
struct h5m_views *h5m_views_new(struct h5m_store *store, size_t cache_bytes);

/* Frees the view layer and its cache. */
void h5m_views_free(struct h5m_views *v);

/* Size in bytes of view `view` of dataset node n. Returns 0, -EINVAL (not a dataset view) or -EIO. */
int h5m_view_size(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, uint64_t *size);

/* Reads up to `len` bytes at `off` of a dataset view into buf. Returns the byte count (short
 * only at end of file) or -EIO/-ENOMEM. Thread-safe; cache hits take no HDF5 lock. */
ssize_t h5m_view_read(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, void *buf, size_t len, uint64_t off);

#endif
