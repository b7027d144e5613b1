/* filters.h: the LZF (h5py, 32000), LZO (PyTables, 305) and bzip2 (PyTables, 307) HDF5 filters
 * on Debian's liblzf, liblzo2 and libbz2. It registers filter classes with HDF5; it loads no plugins. */
#ifndef H5MOUNT_FILTERS_H
#define H5MOUNT_FILTERS_H

#include <stddef.h>

#include <hdf5.h>

/* HDF5 filter ids, as h5py and PyTables register them. */
#define H5M_LZF_FILTER_ID 32000
#define H5M_LZO_FILTER_ID 305
#define H5M_BZIP2_FILTER_ID 307

/* The most bytes one chunk may decode to when the dataset's chunk size is not known (see
 * h5m_filters_expect). HDF5 allows chunks up to 4 GiB, but neither h5py nor PyTables makes
 * chunks anywhere near this; a chunk decoding to more fails, and set_local refuses to create
 * an LZF dataset with larger chunks. */
#define H5M_FILTERS_MAX_CHUNK ((size_t)256 << 20)

/* Registers each of the three filters with the HDF5 library unless a filter with its id is
 * registered already (plugin loading is switched off during that check, so a plugin never
 * takes the place of a built-in one). Returns 0 or -EIO. Call once, before opening files;
 * takes no lock of its own and must not run concurrently with other HDF5 users. */
int h5m_filters_register(void);

/* Registers each of the n filter classes whose id HDF5 has no filter for yet, with filter
 * plugin loading switched off around the H5Zfilter_avail checks (and restored after), so that
 * a plugin of that id is never loaded in our place. Returns 0 when all are available
 * afterwards, or -EIO. Not thread-safe with other HDF5 users changing the plugin loading
 * state: call once at start-up, under the caller's HDF5 lock. Shared with blosc.c. */
int h5m_filters_register_classes(const H5Z_class2_t *classes, size_t n);

/* Tells the filters how many bytes a chunk of the dataset that the calling thread is about to
 * read, write or resize through HDF5 holds (0: unknown, the default). Until the next call, a
 * chunk this thread decodes may be at most that plus a little room (filters that run before
 * ours on write may lengthen the data: PyTables puts Fletcher32's 4 bytes first) rather than
 * H5M_FILTERS_MAX_CHUNK, and decodes in one pass. In the HDF5 filter callbacks a shorter one
 * is zero-padded to it (HDF5 does not check the size a filter returns); h5m_filters_decode
 * returns the length decoded. Thread-local: no lock, never fails. */
void h5m_filters_expect(size_t chunk_bytes);

/* Decodes one stored chunk of `srclen` bytes written by filter `id` (one of the ids above)
 * with the dataset's `ncd` cd_values, exactly as the registered filter does on read (within
 * the calling thread's h5m_filters_expect bound). Returns a buffer from malloc holding the
 * decoded bytes (the caller owns it; free()) and their count in *outlen, or NULL with *outlen
 * 0 when the chunk is corrupt, decodes to more than the bound, the id is not one of the three,
 * or memory runs out. Thread-safe; holds no lock. */
void *h5m_filters_decode(int id, size_t ncd, const unsigned *cd, const void *src, size_t srclen,
                         size_t *outlen);

#endif
