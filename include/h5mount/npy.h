/* npy.h: the .npy header codec (format 1.0/2.0/3.0): fixed-length headers whose data offset
 * never moves as the leading dimension grows, and a strict parser. Knows nothing of HDF5. */
#ifndef H5MOUNT_NPY_H
#define H5MOUNT_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest rank numpy accepts (NPY_MAXDIMS in numpy 1.24). */
#define H5M_NPY_MAXDIMS 32
/* np.load refuses headers longer than this unless told otherwise (numpy >= 1.24). */
#define H5M_NPY_LOAD_LIMIT 10000

/* Computes the fixed header length (magic + version + length field + padded dict, a multiple of
 * 64) for an array whose descr literal is `descr` (Python literal text, e.g. "'<f8'") and whose
 * rank is `rank`, leaving room for 20-digit dimensions. Stores it in *len and the format major
 * version (1, 2 or 3) in *version. Returns 0, or -EINVAL if rank > H5M_NPY_MAXDIMS. Never allocates. */
int h5m_npy_header_size(const char *descr, unsigned rank, size_t *len, int *version);

/* Writes the header for `shape` (rank dims) into buf, which holds exactly `len` bytes as
 * computed by h5m_npy_header_size() for the same descr and rank. Returns 0 or -EINVAL. */
int h5m_npy_header_write(const char *descr, unsigned rank, const uint64_t *shape, char *buf, size_t len);

/* A parsed header. descr points into an internal buffer of the struct. */
struct h5m_npy_header {
	int version;               /* 1, 2 or 3 */
	size_t header_len;         /* bytes before the data */
	bool fortran_order;
	unsigned rank;
	uint64_t shape[H5M_NPY_MAXDIMS];
	char descr[4096];          /* the descr literal with whitespace outside quotes removed */
};

/* Parses the header at the start of buf (len bytes available). Returns 0; -EAGAIN if more
 * bytes are needed (the preamble or dict is incomplete); -EINVAL if it is not a valid .npy
 * header (bad magic, version, keys, types or syntax). Never allocates. */
int h5m_npy_header_parse(const void *buf, size_t len, struct h5m_npy_header *out);

/* Canonicalizes a descr literal: removes whitespace outside quotes. Writes at most `cap`
 * bytes including the NUL. Returns 0 or -ENAMETOOLONG. */
int h5m_npy_descr_canon(const char *descr, char *out, size_t cap);

#endif
