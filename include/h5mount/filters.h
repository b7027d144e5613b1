/* filters.h: the LZF (h5py, 32000), LZO (PyTables, 305) and bzip2 (PyTables, 307) HDF5 filters
 * on Debian's liblzf, liblzo2 and libbz2. It registers filter classes with HDF5; it loads no plugins. */
#ifndef H5MOUNT_FILTERS_H
#define H5MOUNT_FILTERS_H

#include <stddef.h>

/* HDF5 filter ids, as h5py and PyTables register them. */
#define H5M_LZF_FILTER_ID 32000
#define H5M_LZO_FILTER_ID 305
#define H5M_BZIP2_FILTER_ID 307

/* The most bytes one chunk may decode to. HDF5 allows chunks up to 4 GiB, but neither h5py
 * nor PyTables makes chunks anywhere near this; a chunk claiming more fails to decode. */
#define H5M_FILTERS_MAX_CHUNK ((size_t)256 << 20)

/* Registers each of the three filters with the HDF5 library unless a filter with its id is
 * registered already (plugin loading is switched off during that check, so a plugin never
 * takes the place of a built-in one). Returns 0 or -EIO. Call once, before opening files;
 * takes no lock of its own and must not run concurrently with other HDF5 users. */
int h5m_filters_register(void);

/* Decodes one stored chunk of `srclen` bytes written by filter `id` (one of the ids above)
 * with the dataset's `ncd` cd_values, exactly as the registered filter does on read. Returns
 * a buffer from malloc holding the decoded bytes (the caller owns it; free()) and their count
 * in *outlen, or NULL with *outlen 0 when the chunk is corrupt, decodes to more than
 * H5M_FILTERS_MAX_CHUNK (or, for LZF with a chunk size in cd_values, to other than that
 * size), the id is not one of the three, or memory runs out. Thread-safe; holds no lock. */
void *h5m_filters_decode(int id, size_t ncd, const unsigned *cd, const void *src, size_t srclen,
                         size_t *outlen);

#endif
