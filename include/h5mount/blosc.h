/* blosc.h: the Blosc HDF5 filter (id 32001) as PyTables writes it, built on c-blosc's
 * thread-safe _ctx calls. It registers a filter with HDF5; it does not load plugins. */
#ifndef H5MOUNT_BLOSC_H
#define H5MOUNT_BLOSC_H

#include <stddef.h>

/* HDF5 filter id registered for Blosc by PyTables (and hdf5-blosc). */
#define H5M_BLOSC_FILTER_ID 32001

/* Registers the Blosc filter with the HDF5 library unless one is already registered.
 * Returns 0 or -EIO. Call once, before opening files; takes no lock of its own. */
int h5m_blosc_register(void);

/* Decodes one stored Blosc chunk (a self-describing blosc frame) of `srclen` bytes into
 * `dst` of capacity `dstlen` using `nthreads` threads. Returns the number of bytes
 * written or -EIO when the frame is corrupt or does not fit. Thread-safe; never allocates. */
long h5m_blosc_decode(const void *src, size_t srclen, void *dst, size_t dstlen, int nthreads);

/* Encodes `srclen` bytes into `dst` (capacity `dstlen`, at least srclen + 16) with the
 * compressor code/level/shuffle of a PyTables cd_values array. Returns the frame size or
 * -EINVAL for unknown parameters. Thread-safe; never allocates. */
long h5m_blosc_encode(const void *src, size_t srclen, void *dst, size_t dstlen,
                      unsigned typesize, int clevel, int shuffle, int compcode, int nthreads);

/* Most cd_values the filter takes (PyTables writes 6 or 7). */
#define H5M_BLOSC_CD_MAX 16

/* Room a frame may need beyond the data it encodes. */
#define H5M_BLOSC_OVERHEAD 16

/* Encodes `srclen` bytes into `dst` (capacity at least srclen + H5M_BLOSC_OVERHEAD) exactly as
 * the filter does for a dataset with these cd_values (typesize, level, shuffle, compressor;
 * defaults for absent slots), on the calling thread. Returns the frame size, -EINVAL for
 * parameters it does not know, or -EIO. Thread-safe; never allocates. */
long h5m_blosc_encode_cd(size_t ncd, const unsigned *cd, const void *src, size_t srclen, void *dst, size_t dstlen);

#endif
