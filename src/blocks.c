/* blocks.c: cuts C-order dataset bytes into whole-chunk hyperslab blocks; arithmetic only. */
#include "h5mount/blocks.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* Recomputes inner, per_outer, nblocks, total from dims, level and len. */
static int derive(struct h5m_blocks *b)
{
	uint64_t outer = 1, inner = 1, total;

	if (b->rank == 0) {
		b->inner = 1;
		b->per_outer = 1;
		b->nblocks = 1;
		b->total = b->elem;
		return 0;
	}
	for (unsigned i = b->level + 1; i < b->rank; i++)
		if (__builtin_mul_overflow(inner, b->dims[i], &inner))
			return -EOVERFLOW;
	for (unsigned i = 0; i < b->level; i++)
		if (__builtin_mul_overflow(outer, b->dims[i], &outer))
			return -EOVERFLOW;
	if (__builtin_mul_overflow(outer, b->dims[b->level], &total) || __builtin_mul_overflow(total, inner, &total) ||
	    __builtin_mul_overflow(total, (uint64_t)b->elem, &total))
		return -EOVERFLOW;
	b->inner = inner;
	b->per_outer = ceil_div(b->dims[b->level], b->len);
	b->nblocks = total ? outer * b->per_outer : 0;
	b->total = total;
	return 0;
}

int h5m_blocks_init(struct h5m_blocks *b, unsigned rank, const uint64_t *dims, const uint64_t *chunk,
                    size_t elem, size_t target)
{
	uint64_t unit = 0, step = 1;
	bool whole = false;                    /* blocks are whole chunk-thick slabs at b->level */

	if (rank > H5M_NPY_MAXDIMS || elem == 0)
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	b->rank = rank;
	b->elem = elem;
	if (rank)
		memcpy(b->dims, dims, rank * sizeof(*dims));
	b->len = 1;
	if (rank == 0)
		return derive(b);
	if (target < elem)
		target = elem;
	/* Go down the dims until a chunk-thick slab of the remaining dims fits the target (or, for
	 * chunks, H5M_BLOCKS_SLAB_MAX). */
	for (b->level = 0;; b->level++) {
		uint64_t inner = elem;
		int overflow = 0;

		step = chunk ? (chunk[b->level] ? chunk[b->level] : 1) : 1;
		for (unsigned i = b->level + 1; i < rank; i++)
			overflow |= __builtin_mul_overflow(inner, dims[i], &inner);
		overflow |= __builtin_mul_overflow(inner, step, &unit);
		whole = !overflow && (unit <= target || (chunk && unit <= H5M_BLOCKS_SLAB_MAX));
		if (whole || b->level == rank - 1)
			break;
	}
	if (unit == 0) {
		b->len = step;                                     /* empty trailing dims: any len */
	} else if (whole) {
		b->len = step * (unit <= target ? target / unit : 1); /* whole chunks */
	} else {
		b->len = target / elem;                            /* one chunk is bigger than target */
		if (b->len == 0)
			b->len = 1;
	}
	return derive(b);
}

int h5m_blocks_resize(struct h5m_blocks *b, const uint64_t *dims)
{
	if (b->rank)
		memcpy(b->dims, dims, b->rank * sizeof(*dims));
	return derive(b);
}

void h5m_blocks_locate(const struct h5m_blocks *b, uint64_t byte, uint64_t *block, uint64_t *within)
{
	uint64_t e = byte / b->elem, per, outer, idx, j, start;

	if (b->rank == 0) {
		*block = 0;
		*within = byte;
		return;
	}
	per = b->dims[b->level] * b->inner;      /* elements per outer index */
	outer = e / per;
	idx = (e % per) / b->inner;              /* index along dim `level` */
	j = idx / b->len;
	*block = outer * b->per_outer + j;
	start = (outer * per + j * b->len * b->inner) * b->elem;
	*within = byte - start;
}

void h5m_blocks_extent(const struct h5m_blocks *b, uint64_t block, uint64_t *start, uint64_t *nbytes)
{
	uint64_t outer, j, first, n;

	if (b->rank == 0) {
		*start = 0;
		*nbytes = b->elem;
		return;
	}
	outer = block / b->per_outer;
	j = block % b->per_outer;
	first = j * b->len;
	n = b->dims[b->level] - first < b->len ? b->dims[b->level] - first : b->len;
	*start = (outer * b->dims[b->level] * b->inner + first * b->inner) * b->elem;
	*nbytes = n * b->inner * b->elem;
}

void h5m_blocks_slab(const struct h5m_blocks *b, uint64_t block, uint64_t *start, uint64_t *count)
{
	uint64_t outer = b->rank ? block / b->per_outer : 0, j = b->rank ? block % b->per_outer : 0;

	/* Dims before `level` get single indices: unravel `outer` in C order. */
	for (unsigned i = b->level; i-- > 0;) {
		start[i] = outer % b->dims[i];
		count[i] = 1;
		outer /= b->dims[i];
	}
	if (b->rank == 0)
		return;
	start[b->level] = j * b->len;
	count[b->level] = b->dims[b->level] - start[b->level] < b->len ? b->dims[b->level] - start[b->level] : b->len;
	for (unsigned i = b->level + 1; i < b->rank; i++) {
		start[i] = 0;
		count[i] = b->dims[i];
	}
}
