/* blocks.h: how a dataset's C-order bytes are cut into cache blocks that are whole-chunk
 * hyperslabs, and the mapping between byte ranges and blocks. Pure arithmetic: no HDF5, no I/O. */
#ifndef H5MOUNT_BLOCKS_H
#define H5MOUNT_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "h5mount/npy.h"

/* A block is contiguous in C order: one index in each dim before `level`, `len` indices of dim
 * `level` (a multiple of the chunk size there, so blocks hold whole chunks), and all of every
 * later dim. Block ids stay valid when dims[0] changes (for level > 0 the ids of existing rows
 * do not depend on dims[0] either). */
struct h5m_blocks {
	unsigned rank;                    /* 0 for a scalar (treated as one element) */
	uint64_t dims[H5M_NPY_MAXDIMS];
	size_t elem;                      /* bytes per element */
	unsigned level;                   /* the dim that blocks split */
	uint64_t len;                     /* indices of dim `level` per block */
	uint64_t inner;                   /* elements per index of dim `level` */
	uint64_t per_outer;               /* blocks per index of the dims before `level` */
	uint64_t nblocks;                 /* blocks covering the current dims */
	uint64_t total;                   /* bytes of the whole dataset */
};

/* A chunked dataset's block is at least one chunk thick along the first dim whose chunk-thick
 * slab (all the dims after it whole) has at most this many bytes, even when that is more than
 * the target: a block split inside a chunk costs a decode of the whole chunk per block. */
#define H5M_BLOCKS_SLAB_MAX ((size_t)16 << 20)

/* Chooses the block shape for a dataset of `rank` dims `dims`, element size `elem`, chunk dims
 * `chunk` (NULL when not chunked): whole chunk-thick slabs along the first dim where such a
 * slab fits H5M_BLOCKS_SLAB_MAX (as many as fit `target` bytes, at least one), otherwise along
 * a later dim; without chunks, about `target` bytes.
 * Returns 0, or -EOVERFLOW when the dataset's byte size does not fit in 64 bits, or -EINVAL. */
int h5m_blocks_init(struct h5m_blocks *b, unsigned rank, const uint64_t *dims, const uint64_t *chunk,
                    size_t elem, size_t target);

/* Updates the dims (same rank) keeping level and len; returns 0 or -EOVERFLOW. */
int h5m_blocks_resize(struct h5m_blocks *b, const uint64_t *dims);

/* The block holding byte `byte` (< total) and the byte's offset inside that block. */
void h5m_blocks_locate(const struct h5m_blocks *b, uint64_t byte, uint64_t *block, uint64_t *within);

/* The byte range of `block` (< nblocks) in the dataset: first byte and length (clipped to dims). */
void h5m_blocks_extent(const struct h5m_blocks *b, uint64_t block, uint64_t *start, uint64_t *nbytes);

/* The hyperslab of `block`: start and count per dim (rank values each). */
void h5m_blocks_slab(const struct h5m_blocks *b, uint64_t block, uint64_t *start, uint64_t *count);

#endif
