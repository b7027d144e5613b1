/* iobuf.h: transient byte buffers for one request (a reply, a raw or decoded chunk) with one
 * bounded stash shared by all threads, so that what stays allocated between requests is bounded
 * by the stash, not by the number of threads that ever ran a big request. Knows nothing of
 * FUSE, HDF5 or what the bytes are. */
#ifndef H5MOUNT_IOBUF_H
#define H5MOUNT_IOBUF_H

#include <stddef.h>

/* A buffer taken with h5m_iobuf_get; give it back with h5m_iobuf_put. */
struct h5m_iobuf {
	void *data; /* cap bytes, contents unspecified (not cleared) */
	size_t cap;
};

/* Bytes the stash keeps for reuse between requests (shared by all threads). */
#define H5M_IOBUF_STASH ((size_t)4 << 20)

/* Points b at a buffer of at least len bytes: a kept one that fits, else a new one (big ones
 * are mappings of their own, so that freeing them returns their pages). Returns 0 or -ENOMEM
 * (b is then empty). Takes the stash lock briefly. */
int h5m_iobuf_get(struct h5m_iobuf *b, size_t len);

/* Gives b's buffer back: kept for reuse while the stash stays within H5M_IOBUF_STASH (the
 * largest kept ones are freed first), else freed. Empties b. An empty b is a no-op. */
void h5m_iobuf_put(struct h5m_iobuf *b);

/* Bytes kept in the stash now. */
size_t h5m_iobuf_stashed(void);

/* Frees every kept buffer (at exit, or in tests). Buffers still out may be put afterwards. */
void h5m_iobuf_drain(void);

#endif
