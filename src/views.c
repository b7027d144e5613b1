/* views.c: sizes and reads of the raw, .npy, .shape and .offsets views of a dataset, through
 * the block cache; it never calls HDF5 directly (the store does). */
#include "h5mount/views.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "h5mount/cache.h"
#include "h5mount/npy.h"
#include "h5mount/shape.h"

struct h5m_views {
	struct h5m_store *store;
	struct h5m_cache *cache;
};

struct h5m_views *h5m_views_new(struct h5m_store *store, size_t cache_bytes)
{
	struct h5m_views *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->store = store;
	v->cache = h5m_cache_new(cache_bytes);
	if (!v->cache) {
		free(v);
		return NULL;
	}
	return v;
}

void h5m_views_free(struct h5m_views *v)
{
	if (!v)
		return;
	h5m_cache_free(v->cache);
	free(v);
}

/* Shape of the .npy array: dataset dims + array-type dims, or the flat vlen length. */
static int npy_shape(struct h5m_views *v, struct h5m_dataset *ds, uint64_t *shape, unsigned *rank)
{
	uint64_t bytes;
	int rc;

	if (ds->dt.kind != H5M_DT_FIXED) {
		rc = h5m_store_data_size(v->store, ds, &bytes);
		if (rc)
			return rc;
		shape[0] = bytes / ds->dt.elem_size;
		*rank = 1;
		return 0;
	}
	h5m_store_dims(v->store, ds, shape);
	for (unsigned i = 0; i < ds->dt.extra_rank; i++)
		shape[ds->rank + i] = ds->dt.extra_dims[i];
	*rank = ds->rank + ds->dt.extra_rank;
	return 0;
}

static int shape_text(struct h5m_views *v, struct h5m_dataset *ds, char *out, size_t cap)
{
	uint64_t dims[H5M_NPY_MAXDIMS];

	if (ds->dt.kind != H5M_DT_FIXED) {
		dims[0] = ds->nrows;
		return h5m_shape_format(ds->rank ? 1 : 0, dims, out, cap);
	}
	h5m_store_dims(v->store, ds, dims);
	return h5m_shape_format(ds->rank, dims, out, cap);
}

int h5m_view_size(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, uint64_t *size)
{
	struct h5m_dataset *ds = n->ds;
	char text[H5M_SHAPE_TEXT_MAX(H5M_NPY_MAXDIMS)];
	uint64_t bytes;
	int rc;

	if (n->type != H5M_NODE_DATASET)
		return -EINVAL;
	switch (view) {
	case H5M_VIEW_OBJ:
		return h5m_store_data_size(v->store, ds, size);
	case H5M_VIEW_NPY:
		rc = h5m_store_data_size(v->store, ds, &bytes);
		*size = ds->npy_header_len + bytes;
		return rc;
	case H5M_VIEW_SHAPE:
		rc = shape_text(v, ds, text, sizeof(text));
		if (rc < 0)
			return rc;
		*size = (uint64_t)rc;
		return 0;
	case H5M_VIEW_OFFSETS:
		if (ds->dt.kind == H5M_DT_FIXED)
			return -EINVAL;
		*size = (ds->nrows + 1) * 8;
		return 0;
	}
	return -EINVAL;
}

/* A block failed to load: read just the chunk-aligned indices of the split dim that cover
 * bytes [within, within + want) of the block, uncached, into out. Returns 0 or -EIO. */
static int narrow_read(struct h5m_views *v, struct h5m_dataset *ds, uint64_t block, uint64_t within, size_t want,
                       char *out)
{
	const struct h5m_blocks *b = &ds->blocks;
	uint64_t unit = b->inner * b->elem, step = ds->chunked ? ds->chunk[b->level] : 1;
	uint64_t bstart, blen, have, i0, i1;
	char *tmp;
	int rc;

	h5m_blocks_extent(b, block, &bstart, &blen);
	have = blen / unit;
	i0 = within / unit / step * step;
	i1 = (within + want + unit - 1) / unit;
	i1 = (i1 + step - 1) / step * step;
	if (i1 > have)
		i1 = have;
	tmp = malloc((size_t)((i1 - i0) * unit));
	if (!tmp)
		return -ENOMEM;
	rc = h5m_store_read_block_part(v->store, ds, block, i0, i1 - i0, tmp);
	if (!rc)
		memcpy(out, tmp + (within - i0 * unit), want);
	free(tmp);
	return rc;
}

/* Reads `len` bytes at `off` of the flat data (off + len within the data). */
static ssize_t data_read(struct h5m_views *v, struct h5m_node *n, char *buf, size_t len, uint64_t off)
{
	struct h5m_dataset *ds = n->ds;
	size_t done = 0;

	if (ds->dt.kind != H5M_DT_FIXED)
		return h5m_store_vlen_read(v->store, ds, buf, len, off);
	if (ds->contig_offset >= 0)
		return h5m_store_pread(v->store, ds, buf, len, off);
	while (done < len) {
		uint64_t block, within, bstart, blen, gen;
		struct h5m_cache_ent *e = NULL;
		const char *data;
		size_t have, take;

		h5m_blocks_locate(&ds->blocks, off + done, &block, &within);
		e = h5m_cache_get(v->cache, n->idx, block);
		if (!e) {
			void *fresh;
			int rc;

			h5m_blocks_extent(&ds->blocks, block, &bstart, &blen);
			gen = h5m_cache_generation(v->cache, n->idx);
			fresh = malloc(blen ? blen : 1);
			if (!fresh)
				return -ENOMEM;
			rc = h5m_store_read_block(v->store, ds, block, fresh, (size_t)blen);
			if (rc) {
				size_t want = blen - within < len - done ? (size_t)(blen - within) : len - done;

				free(fresh);
				rc = narrow_read(v, ds, block, within, want, buf + done);
				if (rc)
					return rc;
				done += want;
				continue;
			}
			e = h5m_cache_put(v->cache, n->idx, block, gen, fresh, (size_t)blen);
			if (!e)
				continue; /* invalidated while loading: load again */
		}
		data = h5m_cache_data(e, &have);
		take = have - within < len - done ? (size_t)(have - within) : len - done;
		memcpy(buf + done, data + within, take);
		h5m_cache_release(v->cache, e);
		done += take;
	}
	return (ssize_t)done;
}

/* Copies the part of `src` (srclen bytes, placed at file offset `at`) that overlaps the
 * request [off, off+len) into buf. Returns bytes copied. */
static size_t overlap_copy(char *buf, size_t len, uint64_t off, const void *src, size_t srclen, uint64_t at)
{
	uint64_t lo = off > at ? off : at, hi = off + len < at + srclen ? off + len : at + srclen;

	if (lo >= hi)
		return 0;
	memcpy(buf + (lo - off), (const char *)src + (lo - at), (size_t)(hi - lo));
	return (size_t)(hi - lo);
}

ssize_t h5m_view_read(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, void *buf, size_t len, uint64_t off)
{
	struct h5m_dataset *ds = n->ds;
	uint64_t size, shape[H5M_NPY_MAXDIMS];
	char text[H5M_SHAPE_TEXT_MAX(H5M_NPY_MAXDIMS)];
	unsigned rank;
	ssize_t got;
	int rc;

	rc = h5m_view_size(v, n, view, &size);
	if (rc)
		return rc;
	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	switch (view) {
	case H5M_VIEW_OBJ:
		return data_read(v, n, buf, len, off);
	case H5M_VIEW_NPY: {
		size_t hl = ds->npy_header_len, copied = 0;

		if (off < hl) {
			char *hdr = malloc(hl);

			if (!hdr)
				return -ENOMEM;
			rc = npy_shape(v, ds, shape, &rank);
			if (!rc)
				rc = h5m_npy_header_write(ds->dt.descr, rank, shape, hdr, hl);
			if (!rc)
				copied = overlap_copy(buf, len, off, hdr, hl, 0);
			free(hdr);
			if (rc)
				return rc;
		}
		if (copied == len)
			return (ssize_t)len;
		got = data_read(v, n, (char *)buf + copied, len - copied, off + copied - hl);
		return got < 0 ? got : (ssize_t)(copied + (size_t)got);
	}
	case H5M_VIEW_SHAPE:
		rc = shape_text(v, ds, text, sizeof(text));
		if (rc < 0)
			return rc;
		return (ssize_t)overlap_copy(buf, len, off, text, (size_t)rc, 0);
	case H5M_VIEW_OFFSETS: {
		const uint64_t *offs;
		uint64_t nrows, first = off / 8, last = (off + len + 7) / 8;
		size_t done = 0;

		rc = h5m_store_vlen_offsets(v->store, ds, &offs, &nrows);
		if (rc)
			return rc;
		for (uint64_t i = first; i < last && i <= nrows; i++) {
			unsigned char le[8];

			for (int b = 0; b < 8; b++)
				le[b] = (unsigned char)(offs[i] >> (8 * b));
			done += overlap_copy(buf, len, off, le, 8, i * 8);
		}
		return (ssize_t)done;
	}
	}
	return -EINVAL;
}
