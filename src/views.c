/* views.c: sizes, reads, writes and truncates of the raw, .npy, .shape and .offsets views of a
 * dataset (held partial rows, .npy headers, shape text) through the block cache; when the
 * bytes reach the file is writeback.c's business, what to read ahead readahead.c's, and the
 * per-dataset state and its exclusion vdataset.c's. It never calls HDF5 directly. */
#include "h5mount/views.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5mount/cache.h"
#include "h5mount/chunkio.h"
#include "h5mount/log.h"
#include "h5mount/npy.h"
#include "h5mount/pool.h"
#include "h5mount/readahead.h"
#include "h5mount/shape.h"
#include "h5mount/vdataset.h"
#include "h5mount/vlen.h"
#include "h5mount/writeback.h"

#define STAGE_MAX 65536

struct h5m_views {
	struct h5m_store *store;
	struct h5m_cache *cache;
	struct h5m_pool *pool;        /* loads a read's blocks and writes back chunks in parallel,
	                               * and reads ahead; set by h5m_views_start before any request,
	                               * NULL until then */
	struct h5m_readaheads *ra;    /* read-ahead of sequential readers */
	uint64_t blocks_loaded;       /* blocks read from the file (atomic) */
	struct h5m_writeback *wb;     /* when dirty blocks reach the file */
};

static struct h5m_cache_ent *block_get(struct h5m_views *v, struct h5m_node *n, const struct h5m_blocks *b,
                                       uint64_t block, int *err);
static int grow(struct h5m_views *v, struct h5m_node *n, uint64_t end);

/* The views' state of dataset node n, which the entry points created (vds_ready). */
static struct h5m_vds *vds(struct h5m_node *n)
{
	return n->type == H5M_NODE_DATASET ? h5m_vds_peek(n->ds) : NULL;
}

/* Creates the views' state of a fixed-size dataset node on first use. Returns 0 or -ENOMEM. */
static int vds_ready(struct h5m_node *n)
{
	if (n->type != H5M_NODE_DATASET || n->ds->dt.kind != H5M_DT_FIXED)
		return 0;
	return h5m_vds_get(n->ds) ? 0 : -ENOMEM;
}

/* The rules a refused write or truncate broke: each is logged once a minute per dataset. */
enum refusal {
	R_PARTIAL_ROW,  /* a size that is not whole rows */
	R_NPY_SIZE,     /* a .npy size inside its header */
	R_SCALAR,       /* a scalar holds one element */
	R_NO_BYTES,     /* rows of no bytes (a trailing dimension of 0) */
	R_CANNOT_GROW,  /* not chunked: its extent is fixed */
	R_MAXSHAPE,     /* beyond the maximum shape */
	R_SHAPE_TEXT,   /* .shape text that does not parse, or of another rank */
	R_NPY_HEADER,   /* a .npy header that is malformed or states another dtype/shape */
	R_NO_WRITES,    /* a dataset that takes no writes */
	R_DERIVED,      /* .offsets, derived from the data */
};

/* Logs why a write to dataset ds was refused, with its path and the rule (at most once a
 * minute per dataset and rule: h5m_log_limited), and returns err. Takes only log.c's leaf lock. */
static int refuse(const struct h5m_dataset *ds, enum refusal rule, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(const struct h5m_dataset *ds, enum refusal rule, int err, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	h5m_log_limited(ds, rule, H5M_LOG_WARN, "%s: refused (%s): %s", ds->path, strerrorname_np(-err), why);
	return err;
}

/* A grow to `rows` rows that ds cannot take: logged, -EFBIG. */
static int refuse_growth(const struct h5m_dataset *ds, uint64_t rows)
{
	if (!ds->chunked)
		return refuse(ds, R_CANNOT_GROW, -EFBIG, "growing to %llu rows: a dataset that is not chunked keeps "
		              "its extent", (unsigned long long)rows);
	return refuse(ds, R_MAXSHAPE, -EFBIG, "growing to %llu rows: its maximum shape allows %llu",
	              (unsigned long long)rows, (unsigned long long)ds->maxdims[0]);
}

/* The read-ahead task's loader: the readers' one. */
static struct h5m_cache_ent *readahead_load(void *ctx, struct h5m_node *n, const struct h5m_blocks *b, uint64_t block,
                                            int *err)
{
	return block_get(ctx, n, b, block, err);
}

static int pad_held_row(struct h5m_views *v, struct h5m_node *n, const char *when, struct h5m_change *chg);

/* Write-back's row completion (fsync, unmount, SIGTERM). wlock held. */
static int complete_held_row(void *ctx, struct h5m_node *n, struct h5m_change *completed)
{
	return pad_held_row(ctx, n, "at a write-back", completed);
}

struct h5m_views *h5m_views_new(struct h5m_store *store, size_t cache_bytes, size_t dirty_limit)
{
	struct h5m_views *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->store = store;
	v->cache = h5m_cache_new(cache_bytes);
	if (v->cache)
		h5m_cache_set_spare(v->cache, dirty_limit);
	v->ra = h5m_readaheads_new(v->cache, cache_bytes, readahead_load, v);
	v->wb = h5m_writeback_new(store, v->cache, dirty_limit, complete_held_row, v);
	if (!v->cache || !v->ra || !v->wb) {
		h5m_views_free(v);
		return NULL;
	}
	return v;
}

void h5m_views_set_observer(struct h5m_views *v, h5m_views_observer fn, void *ctx)
{
	h5m_writeback_set_observer(v->wb, fn, ctx);
}

void h5m_views_free(struct h5m_views *v)
{
	struct h5m_node *n;

	if (!v)
		return;
	if (v->wb)
		h5m_writeback_stop_timer(v->wb);
	h5m_readaheads_stop(v->ra);
	h5m_pool_free(v->pool); /* first: no read-ahead runs after this */
	h5m_readaheads_free(v->ra);
	h5m_writeback_free(v->wb);
	h5m_cache_free(v->cache);
	for (uint64_t i = 0; (n = h5m_store_node(v->store, i)); i++)
		if (n->type == H5M_NODE_DATASET)
			h5m_vds_free(n->ds);
	free(v);
}

int h5m_views_start(struct h5m_views *v, unsigned workers)
{
	if (v->pool)
		return 0;
	v->pool = h5m_pool_new(workers);
	if (!v->pool)
		return -ENOMEM;
	h5m_readaheads_start(v->ra, v->pool);
	h5m_writeback_set_pool(v->wb, v->pool);
	return 0;
}

int h5m_views_start_flusher(struct h5m_views *v, unsigned interval)
{
	return h5m_writeback_start_timer(v->wb, interval);
}

void h5m_views_stop_flusher(struct h5m_views *v)
{
	h5m_writeback_stop_timer(v->wb);
}

int h5m_views_flush(struct h5m_views *v, bool durable, bool complete_rows)
{
	return h5m_writeback_all(v->wb, durable, complete_rows);
}

uint64_t h5m_views_blocks_loaded(struct h5m_views *v)
{
	return __atomic_load_n(&v->blocks_loaded, __ATOMIC_RELAXED);
}

size_t h5m_views_dirty_bytes(struct h5m_views *v)
{
	return h5m_cache_dirty_bytes(v->cache);
}

void h5m_view_handle_destroy(struct h5m_view_handle *h)
{
	free(h->stage);
	h->stage = NULL;
	h->stage_len = 0;
}

/* ---- shapes and sizes ---- */

/* Current logical dims of fixed-size dataset ds (its views state exists) into dims. */
static void logical_dims(struct h5m_dataset *ds, uint64_t *dims)
{
	struct h5m_vds *vs = h5m_vds_peek(ds);

	h5m_mutex_lock(&vs->meta);
	memcpy(dims, vs->dims, ds->rank * sizeof(*dims));
	h5m_mutex_unlock(&vs->meta);
}

/* Bytes of the flat data: fixed-size: complete rows and held bytes; vlen: the store's. */
static int data_size(struct h5m_views *v, struct h5m_dataset *ds, uint64_t *bytes)
{
	struct h5m_vds *vs = h5m_vds_peek(ds);

	if (ds->dt.kind != H5M_DT_FIXED)
		return h5m_store_data_size(v->store, ds, bytes);
	h5m_mutex_lock(&vs->meta);
	*bytes = vs->blocks.total + vs->tail_len;
	h5m_mutex_unlock(&vs->meta);
	return 0;
}

/* Shape of the .npy array: dataset dims (`dims`, or the current ones when NULL) + array-type
 * dims, or the flat vlen length. */
static int npy_shape(struct h5m_views *v, struct h5m_dataset *ds, const uint64_t *dims, uint64_t *shape,
                     unsigned *rank)
{
	uint64_t bytes;
	int rc;

	if (ds->dt.kind != H5M_DT_FIXED) {
		rc = data_size(v, ds, &bytes);
		if (rc)
			return rc;
		shape[0] = bytes / ds->dt.elem_size;
		*rank = 1;
		return 0;
	}
	if (dims)
		memcpy(shape, dims, ds->rank * sizeof(*dims));
	else
		logical_dims(ds, shape);
	for (unsigned i = 0; i < ds->dt.extra_rank; i++)
		shape[ds->rank + i] = ds->dt.extra_dims[i];
	*rank = ds->rank + ds->dt.extra_rank;
	return 0;
}

static int shape_text(struct h5m_views *v, struct h5m_dataset *ds, char *out, size_t cap)
{
	uint64_t dims[H5M_NPY_MAXDIMS];

	if (ds->null_space) { /* no shape at all: not even the empty one of a scalar ("\n") */
		if (cap < 1)
			return -ENOSPC;
		out[0] = 0;
		return 0;
	}
	if (ds->dt.kind != H5M_DT_FIXED) /* the dataset's dims; the rows are its elements */
		return h5m_shape_format(ds->rank, ds->dims, out, cap);
	(void)v;
	logical_dims(ds, dims);
	/* A top-level array type adds its dims, as in the .npy header. */
	for (unsigned i = 0; i < ds->dt.extra_rank; i++)
		dims[ds->rank + i] = ds->dt.extra_dims[i];
	return h5m_shape_format(ds->rank + ds->dt.extra_rank, dims, out, cap);
}

int h5m_view_size(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, uint64_t *size)
{
	struct h5m_dataset *ds = n->ds;
	char text[H5M_SHAPE_TEXT_MAX(H5M_NPY_MAXDIMS)];
	uint64_t bytes;
	int rc;

	if (n->type != H5M_NODE_DATASET)
		return -EINVAL;
	rc = vds_ready(n);
	if (rc)
		return rc;
	switch (view) {
	case H5M_VIEW_OBJ:
		return data_size(v, ds, size);
	case H5M_VIEW_NPY:
		rc = data_size(v, ds, &bytes);
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

void h5m_view_touch(struct h5m_views *v, struct h5m_node *n)
{
	struct h5m_vds *vs = n->type == H5M_NODE_DATASET ? h5m_vds_get(n->ds) : NULL;
	struct timespec now;

	(void)v;
	if (!vs)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	h5m_mutex_lock(&vs->meta);
	vs->mtime_sec = now.tv_sec;
	vs->mtime_nsec = now.tv_nsec;
	h5m_mutex_unlock(&vs->meta);
}

void h5m_view_forget(struct h5m_views *v, struct h5m_node *n)
{
	struct h5m_vds *vs = vds(n);

	if (!vs)
		return;
	h5m_mutex_lock(&vs->wlock);
	h5m_cache_invalidate(v->cache, n->idx);
	h5m_mutex_lock(&vs->meta);
	vs->tail_len = 0;
	free(vs->tail);
	vs->tail = NULL;
	vs->tail_owner = NULL;
	vs->pending = false;
	h5m_mutex_unlock(&vs->meta);
	h5m_mutex_unlock(&vs->wlock);
}

bool h5m_view_mtime(struct h5m_views *v, struct h5m_node *n, struct timespec *ts)
{
	struct h5m_vds *vs = n->type == H5M_NODE_DATASET ? h5m_vds_peek(n->ds) : NULL;
	bool set = false;

	(void)v;
	if (!vs)
		return false;
	h5m_mutex_lock(&vs->meta);
	if (vs->mtime_sec) {
		ts->tv_sec = vs->mtime_sec;
		ts->tv_nsec = vs->mtime_nsec;
		set = true;
	}
	h5m_mutex_unlock(&vs->meta);
	return set;
}

bool h5m_view_writable(struct h5m_views *v, struct h5m_node *n, enum h5m_view view)
{
	(void)v;
	return n->type == H5M_NODE_DATASET && n->ds->writable && view != H5M_VIEW_OFFSETS;
}

uint64_t h5m_view_disk_bytes(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, uint64_t size)
{
	uint64_t bytes;

	if (n->type != H5M_NODE_DATASET || view != H5M_VIEW_OBJ)
		return 0;
	if (n->ds->dt.kind != H5M_DT_FIXED)
		return size;
	return h5m_store_storage_size(v->store, n->ds, &bytes) == 0 ? bytes : size;
}

int h5m_view_check_writable(struct h5m_views *v, struct h5m_node *n, enum h5m_view view)
{
	const struct h5m_dataset *ds = n->ds;

	if (h5m_view_writable(v, n, view))
		return 0;
	if (n->type != H5M_NODE_DATASET)
		return -EACCES;
	if (!h5m_store_writable(v->store))
		return refuse(ds, R_NO_WRITES, -EACCES, "the file is open read-only");
	if (view == H5M_VIEW_OFFSETS)
		return refuse(ds, R_DERIVED, -EACCES, "its .offsets view is derived from the data and takes no writes");
	if (ds->dt.kind != H5M_DT_FIXED)
		return refuse(ds, R_NO_WRITES, -EACCES, "a variable-length dataset takes no writes");
	if (ds->null_space)
		return refuse(ds, R_NO_WRITES, -EACCES, "a dataset with a null dataspace takes no writes");
	return refuse(ds, R_NO_WRITES, -EACCES, "its type is shown converted (%s), so its views take no writes",
	              ds->dt.descr);
}

/* ---- blocks ---- */

/* Bytes to allocate for a block: growable chunked datasets get the full nominal block, so rows
 * appended into it later need no reallocation. */
static size_t block_alloc(struct h5m_views *v, struct h5m_dataset *ds, const struct h5m_blocks *b, uint64_t block)
{
	uint64_t start, len;

	if (h5m_store_writable(v->store) && ds->chunked && b->level == 0 && b->rank > 0)
		return (size_t)(b->len * b->inner * b->elem);
	h5m_blocks_extent(b, block, &start, &len);
	return (size_t)len;
}

/* Returns block `block` of geometry b referenced, loading it (rows not in the file get the fill
 * value), or NULL with *err. The caller holds a read of the dataset (h5m_vds_read_begin) or its
 * wlock, so no resize drops the dataset's blocks meanwhile: what it loads is of geometry b. */
static struct h5m_cache_ent *block_get(struct h5m_views *v, struct h5m_node *n, const struct h5m_blocks *b,
                                       uint64_t block, int *err)
{
	struct h5m_dataset *ds = n->ds;
	struct h5m_cache_ent *e;
	size_t alloc;
	void *fresh;
	bool zeroed;

	e = h5m_cache_get(v->cache, n->idx, block);
	if (e)
		return e;
	alloc = block_alloc(v, ds, b, block);
	/* Fresh pages are zeros for free: rows not in the file then need no fill pass. */
	fresh = h5m_cache_alloc(v->cache, alloc, &zeroed);
	if (!fresh) {
		*err = -ENOMEM;
		return NULL;
	}
	*err = h5m_chunkio_read_block(ds, b, block, fresh, alloc, zeroed && ds->zero_fill);
	if (*err) {
		h5m_cache_discard(v->cache, fresh, alloc);
		return NULL;
	}
	__atomic_add_fetch(&v->blocks_loaded, 1, __ATOMIC_RELAXED);
	e = h5m_cache_put(v->cache, n->idx, block, fresh, alloc);
	if (!e)
		*err = -ENOMEM;
	return e;
}

/* Starts a change of the file's extent and the block geometry (wlock held, nothing dirty):
 * waits for the reads under way, then drops every cached block of the dataset. */
static void resize_begin(struct h5m_views *v, struct h5m_node *n)
{
	h5m_vds_resize_begin(vds(n));
	h5m_cache_invalidate(v->cache, n->idx);
}

/* ---- reads ---- */

/* A block failed to load: read just the chunk-aligned indices of the split dim that cover
 * bytes [within, within + want) of the block, uncached, into out. Returns 0 or -EIO. */
static int narrow_read(struct h5m_dataset *ds, const struct h5m_blocks *b, uint64_t block,
                       uint64_t within, size_t want, char *out)
{
	uint64_t unit = b->inner * b->elem, step = ds->chunked ? ds->chunk[b->level] : 1;
	uint64_t bstart, blen, have, i0, i1;
	char *tmp;
	int rc;

	if (b->rank == 0)
		return -EIO;
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
	rc = h5m_chunkio_read_block_part(ds, b, block, i0, i1 - i0, tmp);
	if (!rc)
		memcpy(out, tmp + (within - i0 * unit), want);
	free(tmp);
	return rc;
}

/* One block a read touches: bytes [within, within + take) of it go to the reader's buf + at. */
struct seg {
	uint64_t block, within;
	size_t take, at;
	bool whole;              /* the whole block is wanted */
	struct h5m_cache_ent *e; /* its cached copy, referenced, or NULL */
	int rc;                  /* of loading it */
	unsigned slot;           /* its registration as being loaded (H5M_READAHEAD_NO_SLOT: none) */
};

/* The blocks of one read that are not cached, loaded on the pool. */
struct seg_loads {
	struct h5m_views *v;
	struct h5m_node *n;
	const struct h5m_vsnap *sn;
	char *buf;
	struct seg *segs;
	const size_t *todo; /* indices into segs */
};

/* Pool item: loads one missing block. A whole block is decoded straight into the reader's
 * buffer unless a (possibly dirty) copy is cached: not caching it keeps fresh memory out of
 * sequential reads, and the kernel's page cache keeps these bytes anyway. A part goes through
 * the cache, where the next read finds the rest. */
static void load_seg(void *arg, size_t k)
{
	struct seg_loads *l = arg;
	struct seg *sg = &l->segs[l->todo[k]];

	if (sg->whole) {
		sg->rc = h5m_chunkio_read_block(l->n->ds, &l->sn->b, sg->block, l->buf + sg->at, sg->take,
		                              false);
		if (!sg->rc)
			__atomic_add_fetch(&l->v->blocks_loaded, 1, __ATOMIC_RELAXED);
	} else {
		sg->e = block_get(l->v, l->n, &l->sn->b, sg->block, &sg->rc);
	}
}

/* Puts a loaded segment's bytes into buf (from the cache, or read narrowly when its block
 * failed to load) and drops its reference. Returns 0 or -errno. */
static int finish_seg(struct h5m_views *v, struct h5m_dataset *ds, const struct h5m_vsnap *sn, struct seg *sg, char *buf)
{
	const char *data;
	size_t have;
	bool ok;

	if (!sg->e) {
		if (sg->whole && sg->rc == 0)
			return 0;
		if (!sg->whole && sg->rc == -ENOMEM)
			return sg->rc;
		return narrow_read(ds, &sn->b, sg->block, sg->within, sg->take, buf + sg->at);
	}
	data = h5m_cache_data(sg->e, &have);
	ok = have >= sg->within + sg->take;
	if (ok)
		memcpy(buf + sg->at, data + sg->within, sg->take);
	h5m_cache_release_delivered(v->cache, sg->e, ok ? sg->take : 0);
	sg->e = NULL;
	return ok ? 0 : -EIO;
}

/* Blocks planned per round of a read: a 1 MiB read of 128 KiB blocks fits in one. */
#define READ_SEGS 16

/* Reads bytes [off, off + len) of the complete rows (within sn->b.total) into buf. The blocks
 * that are not cached are loaded in parallel on the pool (the calling thread takes part),
 * after waiting for those that read-ahead or another read is loading; then read-ahead is
 * scheduled after it. The caller holds a read of the dataset (sn is its snapshot). */
static ssize_t rows_read(struct h5m_views *v, struct h5m_node *n, const struct h5m_vsnap *sn, char *buf, size_t len,
                         uint64_t off)
{
	struct h5m_dataset *ds = n->ds;
	struct h5m_readahead *ra;
	size_t done = 0;

	/* Unfiltered data that nothing writes: straight from the file's page cache, no blocks. */
	if (ds->raw_rows)
		return h5m_chunkio_pread_rows(v->store, ds, buf, len, off);
	if (ds->contig_offset >= 0 && !ds->writable)
		return h5m_chunkio_pread(v->store, ds, buf, len, off);
	ra = h5m_readahead_of(v->ra, n);
	while (done < len) {
		struct seg segs[READ_SEGS];
		size_t todo[READ_SEGS], nseg = 0, ntodo = 0;
		struct seg_loads loads = { v, n, sn, buf, segs, todo };
		int rc = 0;

		for (; done < len && nseg < READ_SEGS; nseg++) {
			struct seg *sg = &segs[nseg];
			uint64_t bstart, blen;

			h5m_blocks_locate(&sn->b, off + done, &sg->block, &sg->within);
			h5m_blocks_extent(&sn->b, sg->block, &bstart, &blen);
			sg->take = blen - sg->within < len - done ? (size_t)(blen - sg->within) : len - done;
			sg->at = done;
			sg->whole = sg->within == 0 && sg->take == blen;
			sg->rc = 0;
			sg->slot = H5M_READAHEAD_NO_SLOT;
			sg->e = h5m_cache_get(v->cache, n->idx, sg->block);
			while (!sg->e && ra && h5m_readahead_claim(ra, sg->block, &sg->slot))
				sg->e = h5m_cache_get(v->cache, n->idx, sg->block);
			if (!sg->e)
				todo[ntodo++] = nseg;
			done += sg->take;
		}
		h5m_pool_for(v->pool, ntodo, load_seg, &loads);
		for (size_t k = 0; ra && k < ntodo; k++)
			h5m_readahead_done(ra, segs[todo[k]].slot);
		for (size_t k = 0; k < nseg; k++) {
			int r = rc ? 0 : finish_seg(v, ds, sn, &segs[k], buf);

			if (segs[k].e) /* after a failure: only drop the references */
				h5m_cache_release(v->cache, segs[k].e);
			if (r)
				rc = r;
		}
		if (rc)
			return rc;
	}
	if (ra)
		h5m_readahead_after(ra, sn, off, len);
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

/* Copies the part of the .npy header for shape `dims` (NULL: the current one) that overlaps
 * [off, off + len) into buf; *copied gets its length. Returns 0 or -errno. */
static int header_copy(struct h5m_views *v, struct h5m_dataset *ds, const uint64_t *dims, char *buf, size_t len,
                       uint64_t off, size_t *copied)
{
	uint64_t shape[H5M_NPY_MAXDIMS];
	size_t hl = ds->npy_header_len;
	char *hdr = malloc(hl);
	unsigned rank;
	int rc;

	if (!hdr)
		return -ENOMEM;
	rc = npy_shape(v, ds, dims, shape, &rank);
	if (!rc)
		rc = h5m_npy_header_write(ds->dt.descr, rank, shape, hdr, hl);
	if (!rc)
		*copied = overlap_copy(buf, len, off, hdr, hl, 0);
	free(hdr);
	return rc;
}

/* Reads up to `len` bytes at `off` of the flat data (complete rows, then held partial-row
 * bytes), or of the .npy view (`npy`: its header first). Fixed-size types: the header, the
 * rows and the size come from one snapshot, which no resize changes until read_end, so that
 * a read racing with a resize sees one shape, whole. Variable-length ones: the caller sizes
 * the read. */
static ssize_t data_read(struct h5m_views *v, struct h5m_node *n, bool npy, char *buf, size_t len, uint64_t off)
{
	struct h5m_vds *vs = vds(n);
	struct h5m_dataset *ds = n->ds;
	uint64_t hl = npy ? ds->npy_header_len : 0, from = 0;
	size_t head = 0, in_rows = 0;
	struct h5m_vsnap sn;
	ssize_t got;
	int rc;

	if (ds->dt.kind != H5M_DT_FIXED) { /* read-only: no resize to race with */
		if (off < hl && (rc = header_copy(v, ds, NULL, buf, len, off, &head)) < 0)
			return rc;
		got = head < len ? h5m_vlen_read(v->store, ds, buf + head, len - head, off + head - hl) : 0;
		return got < 0 ? got : (ssize_t)(head + (size_t)got);
	}
	if (len > UINT64_MAX - off) /* nothing ends past the largest offset */
		len = (size_t)(UINT64_MAX - off);
	h5m_vds_read_begin(vs, &sn);
	if (off < hl && (rc = header_copy(v, ds, sn.b.dims, buf, len, off, &head)) < 0) {
		h5m_vds_read_end(vs);
		return rc;
	}
	from = off + head - hl;
	got = 0;
	if (head < len && from < sn.b.total) {
		in_rows = sn.b.total - from < len - head ? (size_t)(sn.b.total - from) : len - head;
		got = rows_read(v, n, &sn, buf + head, in_rows, from);
	}
	if (got >= 0 && head + in_rows < len) {
		uint64_t at = from + in_rows - sn.b.total;
		size_t more;

		h5m_mutex_lock(&vs->meta);
		/* The held bytes may have become a row meanwhile; serve what is still held. */
		more = at < vs->tail_len && vs->blocks.total == sn.b.total ? (size_t)(vs->tail_len - at) : 0;
		if (more > len - head - in_rows)
			more = len - head - in_rows;
		if (more)
			memcpy(buf + head + in_rows, vs->tail + at, more);
		h5m_mutex_unlock(&vs->meta);
		in_rows += more;
	}
	h5m_vds_read_end(vs);
	return got < 0 ? got : (ssize_t)(head + in_rows);
}

ssize_t h5m_view_read(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, void *buf, size_t len, uint64_t off)
{
	struct h5m_dataset *ds = n->ds;
	char text[H5M_SHAPE_TEXT_MAX(H5M_NPY_MAXDIMS)];
	uint64_t size;
	int rc;

	rc = vds_ready(n);
	if (rc)
		return rc;
	if (n->type == H5M_NODE_DATASET && ds->dt.kind == H5M_DT_FIXED && (view == H5M_VIEW_OBJ || view == H5M_VIEW_NPY))
		return data_read(v, n, view == H5M_VIEW_NPY, buf, len, off); /* sized by its snapshot */
	rc = h5m_view_size(v, n, view, &size);
	if (rc)
		return rc;
	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	switch (view) {
	case H5M_VIEW_OBJ:
	case H5M_VIEW_NPY:
		return data_read(v, n, view == H5M_VIEW_NPY, buf, len, off);
	case H5M_VIEW_SHAPE:
		rc = shape_text(v, ds, text, sizeof(text));
		if (rc < 0)
			return rc;
		return (ssize_t)overlap_copy(buf, len, off, text, (size_t)rc, 0);
	case H5M_VIEW_OFFSETS: {
		const uint64_t *offs;
		uint64_t nrows, first = off / 8, last = (off + len + 7) / 8;
		size_t done = 0;

		rc = h5m_vlen_offsets(v->store, ds, &offs, &nrows);
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

/* ---- writes (the caller holds vs->wlock) ---- */


static void set_pending(struct h5m_vds *vs, bool pending)
{
	h5m_vds_set_pending(vs, pending);
}

/* Copies src into the complete rows at raw offset `off` (within sn->b.total), marking the
 * blocks dirty. Returns 0 or -errno. */
static int rows_write(struct h5m_views *v, struct h5m_node *n, const struct h5m_blocks *b, const char *src,
                      size_t len, uint64_t off)
{
	size_t done = 0;

	assert(h5m_mutex_held(&vds(n)->wlock));

	while (done < len) {
		uint64_t block, within, bstart, blen;
		struct h5m_cache_ent *e;
		size_t have, take;
		int rc;

		h5m_blocks_locate(b, off + done, &block, &within);
		h5m_blocks_extent(b, block, &bstart, &blen);
		take = blen - within < len - done ? (size_t)(blen - within) : len - done;
		e = block_get(v, n, b, block, &rc);
		if (!e)
			return rc;
		h5m_cache_data(e, &have);
		if (have < within + take) {
			h5m_cache_release(v->cache, e);
			return -EIO;
		}
		memcpy((char *)h5m_cache_data_mut(e) + within, src + done, take);
		h5m_cache_set_dirty(v->cache, e, true);
		set_pending(vds(n), true);
		h5m_cache_release(v->cache, e);
		done += take;
	}
	return 0;
}

/* The held partial-row buffer, allocated (filled with the fill value) on first use. meta held. */
static unsigned char *tail_buffer(struct h5m_vds *vs)
{
	struct h5m_dataset *ds = vs->ds;

	assert(h5m_mutex_held(&vs->meta));

	if (!vs->tail) {
		vs->tail = malloc(vs->row_bytes ? vs->row_bytes : 1);
		if (vs->tail)
			h5m_store_fill(ds, vs->tail, vs->row_bytes, 0);
	}
	return vs->tail;
}

/* Sets the logical row count to `rows` (growing) and keeps `tail` held bytes. meta taken here. */
static int set_rows(struct h5m_vds *vs, uint64_t rows, uint64_t tail)
{
	struct h5m_dataset *ds = vs->ds;
	uint64_t dims[H5M_NPY_MAXDIMS];
	int rc;

	h5m_mutex_lock(&vs->meta);
	memcpy(dims, vs->dims, ds->rank * sizeof(*dims));
	dims[0] = rows;
	rc = h5m_blocks_resize(&vs->blocks, dims);
	if (!rc) {
		vs->dims[0] = rows;
		vs->tail_len = tail;
		vs->pending = true;
	} else {
		h5m_blocks_resize(&vs->blocks, vs->dims);
	}
	h5m_mutex_unlock(&vs->meta);
	return rc;
}

/* Grows to new_rows complete rows and new_tail held bytes, with the `len` bytes at src written
 * at raw offset `off` on the way (len 0: nothing written; the range may start inside the old
 * extent). An incomplete row that completes moves from the held buffer into the blocks; every
 * other new byte is the fill value. The bytes reach the blocks and the held row BEFORE the new
 * size is published (under meta, together with the held bytes), so that a reader never sees a
 * size whose bytes are not there yet (it would read fill values for rows in flight). Block ids
 * do not depend on dims[0] (blocks.h), so blocks written with the new geometry are the blocks
 * readers with the old one find. On failure nothing is published (bytes already copied into
 * blocks past the old end stay unseen until written again). wlock held. */
static int grow_rows(struct h5m_views *v, struct h5m_node *n, uint64_t new_rows, uint64_t new_tail, const char *src,
                     size_t len, uint64_t off)
{
	struct h5m_vds *vs = vds(n);
	struct h5m_dataset *ds = n->ds;
	uint64_t rb = vs->row_bytes, rows, rows_end, end = off + len, dims[H5M_NPY_MAXDIMS];
	struct h5m_blocks nb;
	struct h5m_vsnap sn;
	int rc;

	assert(h5m_mutex_held(&vds(n)->wlock));

	if (new_rows + (new_tail != 0) > ds->maxdims[0] || !ds->chunked)
		return refuse_growth(ds, new_rows + (new_tail != 0));
	h5m_vds_snapshot(vs, &sn);
	rows = sn.b.rank ? sn.b.dims[0] : 1;
	h5m_mutex_lock(&vs->meta);
	rc = tail_buffer(vs) ? 0 : -ENOMEM;
	h5m_mutex_unlock(&vs->meta);
	if (rc)
		return rc;
	nb = sn.b;
	if (new_rows != rows) {
		memcpy(dims, sn.b.dims, sn.b.rank * sizeof(*dims));
		dims[0] = new_rows;
		rc = h5m_blocks_resize(&nb, dims);
		if (rc)
			return rc;
	}
	rows_end = new_rows * rb;
	/* The held row is complete now: it goes into the blocks (the rest of it is fill). Only
	 * writers (wlock) change the held bytes, so they are read here without meta. */
	if (new_rows > rows && sn.tail_len > 0)
		rc = rows_write(v, n, &nb, (const char *)vs->tail, (size_t)rb, rows * rb);
	if (!rc && len && off < rows_end)
		rc = rows_write(v, n, &nb, src, (size_t)((end < rows_end ? end : rows_end) - off), off);
	if (rc)
		return rc;
	h5m_mutex_lock(&vs->meta);
	if (new_rows != rows) {
		vs->blocks = nb;
		vs->dims[0] = new_rows;
		vs->pending = true;
		h5m_store_fill(ds, vs->tail, (size_t)rb, 0);
		vs->tail_len = new_tail;
	} else if (new_tail > vs->tail_len) {
		vs->tail_len = new_tail;
	}
	if (len && end > rows_end) {
		uint64_t from = off > rows_end ? off : rows_end;

		memcpy(vs->tail + (from - rows_end), src + (from - off), (size_t)(end - from));
	}
	h5m_mutex_unlock(&vs->meta);
	return 0;
}

/* Grows the raw size to `end` bytes (fill values). Rows of no bytes (a trailing dim of 0) hold none. */
static int grow(struct h5m_views *v, struct h5m_node *n, uint64_t end)
{
	uint64_t rb = vds(n)->row_bytes;

	if (rb == 0)
		return end == 0 ? 0 : refuse(n->ds, R_NO_BYTES, -EFBIG, "its rows hold no bytes (a trailing "
		                             "dimension of 0): change its rows through its .shape");
	return grow_rows(v, n, end / rb, end % rb, NULL, 0, 0);
}

/* Takes a pending write-back error (reported once). */
static int take_wb_error(struct h5m_vds *vs)
{
	return h5m_vds_take_wb_error(vs);
}

/* Writes raw data bytes [off, off + len); *off_io is updated for O_APPEND. Caller holds wlock. */
static int data_write_locked(struct h5m_views *v, struct h5m_node *n, const char *buf, size_t len, uint64_t *off_io,
                             bool append, struct h5m_change *chg)
{
	struct h5m_vds *vs = vds(n);
	struct h5m_dataset *ds = n->ds;
	struct h5m_vsnap sn;
	uint64_t size, off, end, rows_bytes;
	int rc;

	assert(h5m_mutex_held(&vds(n)->wlock));

	h5m_vds_snapshot(vs, &sn);
	size = sn.b.total + sn.tail_len;
	off = append ? size : *off_io;
	if (__builtin_add_overflow(off, (uint64_t)len, &end))
		return -EFBIG;
	if (end > size) {
		/* Growth: the bytes go in before the new size is published (grow_rows). */
		if (ds->rank == 0)
			return refuse(ds, R_SCALAR, -EFBIG, "a write past the end of a scalar dataset (one element)");
		if (vs->row_bytes == 0)
			return refuse(ds, R_NO_BYTES, -EFBIG, "its rows hold no bytes (a trailing dimension of 0): "
			              "change its rows through its .shape");
		rc = grow_rows(v, n, end / vs->row_bytes, end % vs->row_bytes, buf, len, off);
		if (rc)
			return rc;
		chg->size = true;
		goto done;
	}
	rows_bytes = sn.b.total;
	if (off < rows_bytes) {
		size_t in_rows = rows_bytes - off < len ? (size_t)(rows_bytes - off) : len;

		rc = rows_write(v, n, &sn.b, buf, in_rows, off);
		if (rc)
			return rc;
	}
	if (end > rows_bytes) {
		uint64_t from = off > rows_bytes ? off : rows_bytes;

		h5m_mutex_lock(&vs->meta);
		memcpy(vs->tail + (from - rows_bytes), buf + (from - off), (size_t)(end - from));
		h5m_mutex_unlock(&vs->meta);
	}
done:
	*off_io = off;
	chg->data_off = off;
	chg->data_len = len;
	return 0;
}

/* Sets the row count to `rows` (truncate): growth is logical; a shrink writes back first, then
 * shrinks the file's extent at once so regrown rows read as fill, never as old data. wlock held. */
static int truncate_rows(struct h5m_views *v, struct h5m_node *n, uint64_t rows, struct h5m_change *chg)
{
	struct h5m_vds *vs = vds(n);
	struct h5m_dataset *ds = n->ds;
	uint64_t dims[H5M_NPY_MAXDIMS];
	struct h5m_vsnap sn;
	int rc;

	assert(h5m_mutex_held(&vds(n)->wlock));

	h5m_vds_snapshot(vs, &sn);
	chg->size = true;
	chg->data_off = rows * vs->row_bytes;
	chg->data_len = UINT64_MAX - chg->data_off;
	if (ds->rank == 0)
		return rows == 1 ? 0 : refuse(ds, R_SCALAR, rows > 1 ? -EFBIG : -EINVAL, "%llu elements for a scalar "
		                              "dataset (one element)", (unsigned long long)rows);
	if (rows > sn.b.dims[0] || (rows == sn.b.dims[0] && sn.tail_len == 0)) {
		if (rows == sn.b.dims[0])
			return 0;
		return grow_rows(v, n, rows, 0, NULL, 0, 0);
	}
	if (!ds->chunked)
		return refuse(ds, R_CANNOT_GROW, -EINVAL, "shrinking to %llu rows: a dataset that is not chunked "
		              "keeps its extent", (unsigned long long)rows);
	/* Drop held bytes, write back what is dirty, then shrink in the file. */
	h5m_mutex_lock(&vs->meta);
	vs->tail_len = 0;
	if (vs->tail)
		h5m_store_fill(ds, vs->tail, (size_t)vs->row_bytes, 0);
	h5m_mutex_unlock(&vs->meta);
	rc = h5m_writeback_dataset(v->wb, n, false, NULL);
	if (rc)
		return rc;
	/* Nothing is dirty now. */
	resize_begin(v, n);
	memcpy(dims, sn.b.dims, ds->rank * sizeof(*dims));
	dims[0] = rows;
	rc = h5m_chunkio_set_extent(v->store, ds, dims);
	if (!rc)
		rc = set_rows(vs, rows, 0);
	h5m_vds_resize_end(vs);
	if (!rc)
		rc = h5m_writeback_commit(v->wb);
	return rc;
}

/* Changes every dim (a .shape write). Trailing dims change the layout: write back, set the
 * file's extent, start a new block geometry. wlock held. */
static int reshape(struct h5m_views *v, struct h5m_node *n, const uint64_t *dims, unsigned rank, struct h5m_change *chg)
{
	struct h5m_vds *vs = vds(n);
	struct h5m_dataset *ds = n->ds;
	struct h5m_blocks nb;
	struct h5m_vsnap sn;
	uint64_t rb = ds->dt.elem_size;
	bool trailing_same = true;
	int rc;

	assert(h5m_mutex_held(&vds(n)->wlock));

	if (rank != ds->rank)
		return refuse(ds, R_SHAPE_TEXT, -EINVAL, ".shape text of %u dimensions for a dataset of %u", rank,
		              ds->rank);
	/* A shape beyond the maximum is a bad shape (EINVAL), except that a dataset that cannot
	 * grow at all (not chunked, or already at its maximum rows) refuses growth with EFBIG as
	 * its appends and truncates do. */
	for (unsigned i = 1; i < rank; i++)
		if (dims[i] > ds->maxdims[i])
			return refuse(ds, R_MAXSHAPE, -EINVAL, "dimension %u of %llu: its maximum shape allows %llu", i,
			              (unsigned long long)dims[i], (unsigned long long)ds->maxdims[i]);
	h5m_vds_snapshot(vs, &sn);
	if (rank > 0 && dims[0] > ds->maxdims[0]) {
		if (ds->chunked && ds->maxdims[0] > sn.b.dims[0])
			return refuse(ds, R_MAXSHAPE, -EINVAL, "%llu rows: its maximum shape allows %llu",
			              (unsigned long long)dims[0], (unsigned long long)ds->maxdims[0]);
		return refuse_growth(ds, dims[0]);
	}
	for (unsigned i = 1; i < rank; i++)
		trailing_same &= dims[i] == sn.b.dims[i];
	if (rank == 0)
		return 0;
	if (trailing_same)
		return truncate_rows(v, n, dims[0], chg);
	if (!ds->chunked)
		return refuse(ds, R_CANNOT_GROW, -EINVAL, "changing a trailing dimension: a dataset that is not "
		              "chunked keeps its extent");
	for (unsigned i = 1; i < rank; i++)
		if (__builtin_mul_overflow(rb, dims[i], &rb))
			return refuse(ds, R_MAXSHAPE, -EINVAL, "a row of that shape does not fit in 64 bits");
	rc = h5m_blocks_init(&nb, rank, dims, ds->chunk, ds->dt.elem_size, h5m_store_block_target(v->store));
	if (rc)
		return refuse(ds, R_MAXSHAPE, -EINVAL, "no block layout for that shape (%s)", strerror(-rc));
	rc = h5m_writeback_dataset(v->wb, n, true, NULL);
	if (rc)
		return rc;
	resize_begin(v, n);
	rc = h5m_chunkio_set_extent(v->store, ds, dims);
	if (!rc) {
		h5m_mutex_lock(&vs->meta);
		memcpy(vs->dims, dims, rank * sizeof(*dims));
		vs->blocks = nb;
		vs->row_bytes = rb;
		vs->tail_len = 0;
		free(vs->tail);
		vs->tail = NULL;
		h5m_mutex_unlock(&vs->meta);
	}
	h5m_vds_resize_end(vs);
	if (rc)
		return rc;
	chg->size = chg->all = true;
	return h5m_writeback_commit(v->wb);
}

/* Checks a complete .npy header against the dataset: same descr, C order, same trailing dims. */
static int check_header(struct h5m_views *v, struct h5m_dataset *ds, const struct h5m_npy_header *h)
{
	uint64_t shape[H5M_NPY_MAXDIMS];
	char canon[sizeof(h->descr)];
	unsigned rank;

	if (h->fortran_order)
		return refuse(ds, R_NPY_HEADER, -EINVAL, "a .npy header in Fortran order (the data is in C order)");
	if (h5m_npy_descr_canon(ds->dt.descr, canon, sizeof(canon)) < 0 || strcmp(canon, h->descr))
		return refuse(ds, R_NPY_HEADER, -EINVAL, "a .npy header of dtype %.200s; the dataset's is %.200s", h->descr,
		              ds->dt.descr);
	if (npy_shape(v, ds, NULL, shape, &rank) < 0 || h->rank != rank)
		return refuse(ds, R_NPY_HEADER, -EINVAL, "a .npy header of %u dimensions for a dataset of %u", h->rank,
		              rank);
	for (unsigned i = 1; i < rank; i++)
		if (h->shape[i] != shape[i])
			return refuse(ds, R_NPY_HEADER, -EINVAL, "a .npy header with dimension %u of %llu; the dataset's "
			              "is %llu", i, (unsigned long long)h->shape[i], (unsigned long long)shape[i]);
	return 0;
}

/* Puts `len` bytes at `off` into the handle's staging buffer (contiguous from 0). */
static int stage(struct h5m_view_handle *h, const void *buf, size_t len, uint64_t off)
{
	char *ns;

	if (off > h->stage_len || off + len > STAGE_MAX)
		return -EINVAL;
	if (off + len > h->stage_len) {
		ns = realloc(h->stage, (size_t)(off + len));
		if (!ns)
			return -ENOMEM;
		h->stage = ns;
		h->stage_len = (size_t)(off + len);
	}
	memcpy(h->stage + off, buf, len);
	return 0;
}

/* A write into a .npy view's header region. Returns bytes consumed or -errno. wlock held. */
static ssize_t npy_header_write(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, const char *buf,
                                size_t len, uint64_t off, struct h5m_change *chg)
{
	struct h5m_npy_header hdr;
	uint64_t data_off = 0, end = off + len, L;
	size_t staged = len;
	int rc;

	assert(h5m_mutex_held(&vds(n)->wlock));

	if (off == 0)
		h5m_view_handle_destroy(h);
	else if (!h->stage)
		return refuse(n->ds, R_NPY_HEADER, -EINVAL, "a write at byte %llu of the .npy header: a header is "
		              "written from its first byte", (unsigned long long)off);
	/* Only the header needs staging; data in the same write is taken from buf below. */
	if (off + staged > STAGE_MAX)
		staged = off < STAGE_MAX ? STAGE_MAX - (size_t)off : 0;
	rc = stage(h, buf, staged, off);
	if (rc)
		return rc == -EINVAL ? refuse(n->ds, R_NPY_HEADER, rc, "a .npy header written out of order or "
		                              "longer than %d bytes", STAGE_MAX) : rc;
	rc = h5m_npy_header_parse(h->stage, h->stage_len, &hdr);
	if (rc == -EAGAIN && h->stage_len < STAGE_MAX)
		return (ssize_t)len;
	if (rc)
		rc = refuse(n->ds, R_NPY_HEADER, -EINVAL, "not a valid .npy header");
	else
		rc = check_header(v, n->ds, &hdr);
	if (rc) {
		h5m_view_handle_destroy(h);
		h->trunc_pending = false; /* a rejected header changes nothing */
		return rc == -EAGAIN ? -EINVAL : rc;
	}
	if (h->trunc_pending) {
		rc = truncate_rows(v, n, 0, chg);
		if (rc) {
			h5m_view_handle_destroy(h);
			return rc;
		}
		h->trunc_pending = false;
	}
	L = hdr.header_len;
	h->npy_hdr = L;
	/* Data already staged by earlier writes ([L, off)), then the rest of this write. */
	if (off > L) {
		rc = data_write_locked(v, n, h->stage + L, (size_t)(off - L), &data_off, false, chg);
		h->wrote = true;
	}
	if (!rc && end > L) {
		uint64_t from = off > L ? off : L;

		data_off = from - L;
		rc = data_write_locked(v, n, buf + (from - off), (size_t)(end - from), &data_off, false, chg);
		h->wrote = true;
	}
	h5m_view_handle_destroy(h);
	if (rc)
		return rc;
	chg->size = true;
	chg->data_off = 0;
	chg->data_len = end > L ? end - L : 0;
	if (L != n->ds->npy_header_len)
		chg->moved = true;
	return (ssize_t)len;
}

/* Applies staged .shape text: the dataset's dims followed by its array type's dims, which
 * must stay as they are (they belong to the element type). Returns 0 or -EINVAL. wlock held. */
static int apply_shape(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, struct h5m_change *chg)
{
	struct h5m_dataset *ds = n->ds;
	uint64_t dims[H5M_NPY_MAXDIMS];
	unsigned rank;
	int rc;

	assert(h5m_mutex_held(&vds(n)->wlock));

	rc = h5m_shape_parse(h->stage, h->stage_len, dims, H5M_NPY_MAXDIMS, &rank);
	if (rc) {
		const char *nl = memchr(h->stage, '\n', h->stage_len);
		size_t shown = nl ? (size_t)(nl - h->stage) : h->stage_len;

		rc = refuse(ds, R_SHAPE_TEXT, -EINVAL, ".shape text '%.*s' does not parse (expected dimensions in "
		            "decimal, separated by single spaces, and a newline)", (int)(shown < 80 ? shown : 80),
		            h->stage);
		h5m_view_handle_destroy(h);
		return rc;
	}
	h5m_view_handle_destroy(h);
	if (ds->dt.kind == H5M_DT_FIXED && ds->dt.extra_rank) {
		if (rank != ds->rank + ds->dt.extra_rank)
			return refuse(ds, R_SHAPE_TEXT, -EINVAL, ".shape text of %u dimensions for a dataset of %u (and "
			              "%u of its array type)", rank, ds->rank, ds->dt.extra_rank);
		for (unsigned i = 0; i < ds->dt.extra_rank; i++)
			if (dims[ds->rank + i] != ds->dt.extra_dims[i])
				return refuse(ds, R_SHAPE_TEXT, -EINVAL, ".shape text changes dimension %u, which belongs "
				              "to the array type", ds->rank + i);
		rank = ds->rank;
	}
	return reshape(v, n, dims, rank, chg);
}

/* Completes the held incomplete row with the fill value (logged, `when` says why) and sets *chg
 * to the row it completed. Caller holds wlock. Returns 0 or -errno. */
static int pad_held_row(struct h5m_views *v, struct h5m_node *n, const char *when, struct h5m_change *chg)
{
	struct h5m_vds *vs = vds(n);
	struct h5m_vsnap sn;
	int rc;

	assert(h5m_mutex_held(&vs->wlock));
	memset(chg, 0, sizeof(*chg));
	h5m_vds_snapshot(vs, &sn);
	vs->tail_owner = NULL;
	if (!sn.tail_len)
		return 0;
	h5m_log(H5M_LOG_WARN, "%s: incomplete row (%llu of %llu bytes) completed with the fill value %s", n->ds->path,
	        (unsigned long long)sn.tail_len, (unsigned long long)vs->row_bytes, when);
	rc = grow(v, n, sn.b.total + vs->row_bytes);
	if (rc)
		return rc;
	chg->size = true;
	chg->moved = true; /* the file grew beyond what was written to it */
	chg->data_off = sn.b.total;
	chg->data_len = vs->row_bytes;
	return 0;
}

/* Widens *chg to cover `more` too (both are changes of one request). */
static void change_merge(struct h5m_change *chg, const struct h5m_change *more)
{
	uint64_t lo, hi;

	if (!more->size && !more->data_len)
		return;
	if (!chg->data_len) {
		lo = more->data_off;
		hi = more->data_off + more->data_len;
	} else {
		lo = chg->data_off < more->data_off ? chg->data_off : more->data_off;
		hi = chg->data_off + chg->data_len > more->data_off + more->data_len ? chg->data_off + chg->data_len
		                                                                      : more->data_off + more->data_len;
	}
	chg->size |= more->size;
	chg->moved |= more->moved;
	chg->all |= more->all;
	chg->data_off = lo;
	chg->data_len = hi - lo;
}

ssize_t h5m_view_write(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, const void *buf,
                       size_t len, uint64_t off, struct h5m_change *chg)
{
	struct h5m_dataset *ds = n->ds;
	struct h5m_change pad = { 0 };
	ssize_t ret = (ssize_t)len;
	struct h5m_vds *vs;
	uint64_t data_off;
	int rc;

	memset(chg, 0, sizeof(*chg));
	rc = h5m_view_check_writable(v, n, h->view);
	if (rc)
		return rc;
	rc = vds_ready(n);
	if (rc)
		return rc;
	vs = vds(n);
	h5m_mutex_lock(&vs->wlock);
	rc = take_wb_error(vs);
	/* Another open file left a row incomplete and was closed since (its RELEASE, which
	 * completes the row, may still be on its way): its row ends here, before these bytes. */
	if (!rc && h->view != H5M_VIEW_SHAPE && vs->tail_owner && vs->tail_owner != h && vs->tail_owner->closed)
		rc = pad_held_row(v, n, "when another file wrote after its writer closed it", &pad);
	if (rc) {
		ret = rc;
		goto out;
	}
	switch (h->view) {
	case H5M_VIEW_OBJ:
		if (h->trunc_at_write) {
			/* A name shown again by a create: the copy replaces the data (rule 3). */
			rc = truncate_rows(v, n, 0, chg);
			h->trunc_at_write = false;
			if (rc)
				break;
		}
		data_off = off;
		rc = data_write_locked(v, n, buf, len, &data_off, h->append, chg);
		if (!rc && data_off != off)
			chg->moved = true;
		break;
	case H5M_VIEW_NPY: {
		uint64_t hl = h->npy_hdr ? h->npy_hdr : ds->npy_header_len;

		if (!h->append && (off < hl || (h->stage && off == h->stage_len))) {
			ret = npy_header_write(v, n, h, buf, len, off, chg);
			goto out;
		}
		if (h->trunc_pending) {
			rc = truncate_rows(v, n, 0, chg);
			h->trunc_pending = false;
			if (rc)
				break;
		}
		data_off = h->append ? 0 : off - hl;
		rc = data_write_locked(v, n, buf, len, &data_off, h->append, chg);
		if (!rc && (h->append || hl != ds->npy_header_len))
			chg->moved = true;
		break;
	}
	case H5M_VIEW_SHAPE:
		rc = stage(h, buf, len, off);
		if (!rc && memchr(h->stage, '\n', h->stage_len))
			rc = apply_shape(v, n, h, chg);
		else if (rc)
			h5m_view_handle_destroy(h);
		break;
	default:
		rc = -EACCES;
	}
	if (rc)
		ret = rc;
	else if (h->view != H5M_VIEW_SHAPE)
		h->wrote = true;
out:
	if (ret > 0 && h->view != H5M_VIEW_SHAPE) {
		h->closed = false;
		vs->tail_owner = vs->tail_len ? h : NULL;
	}
	change_merge(chg, &pad);
	h5m_mutex_unlock(&vs->wlock);
	if (ret > 0)
		h5m_writeback_after_write(v->wb);
	return ret;
}

int h5m_view_truncate(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, uint64_t size,
                      struct h5m_change *chg)
{
	struct h5m_dataset *ds = n->ds;
	struct h5m_vds *vs;
	uint64_t data;
	int rc;

	memset(chg, 0, sizeof(*chg));
	rc = h5m_view_check_writable(v, n, view);
	if (rc)
		return rc;
	rc = vds_ready(n);
	if (rc)
		return rc;
	vs = vds(n);
	if (view == H5M_VIEW_SHAPE)
		return 0; /* `> x.shape` empties the sidecar before the new text is written */
	if (view == H5M_VIEW_NPY && size != 0 && size < ds->npy_header_len)
		return refuse(ds, R_NPY_SIZE, -EINVAL, "truncating its .npy to %llu bytes, inside its %llu-byte header",
		              (unsigned long long)size, (unsigned long long)ds->npy_header_len);
	if (view == H5M_VIEW_NPY)
		data = size == 0 ? 0 : size - ds->npy_header_len;
	else
		data = size;
	if (ds->rank == 0 && data != ds->dt.elem_size)
		return refuse(ds, R_SCALAR, data > ds->dt.elem_size ? -EFBIG : -EINVAL, "truncating a scalar dataset "
		              "to %llu bytes; its element has %zu", (unsigned long long)data, (size_t)ds->dt.elem_size);
	h5m_mutex_lock(&vs->wlock);
	/* row_bytes changes under wlock (reshape); with rows of no bytes, only 0 is a size. */
	if (ds->rank > 0 && vs->row_bytes == 0 && data != 0)
		rc = refuse(ds, R_NO_BYTES, -EINVAL, "truncating to %llu bytes: its rows hold no bytes (a trailing "
		            "dimension of 0): change its rows through its .shape", (unsigned long long)data);
	else if (ds->rank > 0 && vs->row_bytes != 0 && data % vs->row_bytes != 0)
		rc = refuse(ds, R_PARTIAL_ROW, -EINVAL, "truncating its data to %llu bytes, %llu rows and %llu bytes "
		            "of a row: a size must be whole rows of %llu bytes", (unsigned long long)data,
		            (unsigned long long)(data / vs->row_bytes), (unsigned long long)(data % vs->row_bytes),
		            (unsigned long long)vs->row_bytes);
	else
		rc = take_wb_error(vs);
	if (!rc && ds->rank > 0 && vs->row_bytes > 0) {
		uint64_t rows = data / vs->row_bytes;

		if (rows > ds->maxdims[0] || (!ds->chunked && rows > vs->dims[0]))
			rc = refuse_growth(ds, rows);
		else
			rc = truncate_rows(v, n, rows, chg);
	}
	h5m_mutex_unlock(&vs->wlock);
	return rc;
}

int h5m_view_close(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, struct h5m_change *chg)
{
	struct h5m_dataset *ds = n->ds;
	struct h5m_vds *vs;
	int rc = 0;

	memset(chg, 0, sizeof(*chg));
	if (n->type != H5M_NODE_DATASET || !h->write)
		return 0;
	rc = vds_ready(n);
	if (rc)
		return rc;
	vs = vds(n);
	h5m_mutex_lock(&vs->wlock);
	if (h->view == H5M_VIEW_SHAPE && h->stage_len)
		rc = apply_shape(v, n, h, chg);
	else if (h->view == H5M_VIEW_NPY && h->stage_len) {
		rc = refuse(ds, R_NPY_HEADER, -EINVAL, "a .npy header that never completed (%zu bytes written); "
		            "nothing changed", h->stage_len);
		h->refused = true; /* a bad header, as one refused at its write */
	}
	else if (h->trunc_pending && ds->rank > 0)
		rc = truncate_rows(v, n, 0, chg); /* `: > x.npy` */
	h->trunc_pending = false;
	h5m_view_handle_destroy(h);
	h->closed = true;
	if (!rc)
		rc = take_wb_error(vs);
	h5m_mutex_unlock(&vs->wlock);
	return rc;
}

int h5m_view_release(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, struct h5m_change *chg)
{
	struct h5m_vds *vs;
	int rc = 0;

	memset(chg, 0, sizeof(*chg));
	if (n->type != H5M_NODE_DATASET || !h->write || !h->wrote)
		return 0;
	rc = vds_ready(n);
	if (rc)
		return rc;
	vs = h5m_vds_peek(n->ds); /* a dataset's: not NULL after vds_ready */
	h5m_mutex_lock(&vs->wlock);
	/* Only the row this file left: another file's write may have taken it over since (its
	 * bytes continue the row, or it completed it first). */
	if (vs->tail_owner == h)
		rc = pad_held_row(v, n, "at close", chg);
	h5m_mutex_unlock(&vs->wlock);
	return rc;
}

int h5m_view_npy_wants_type(struct h5m_views *v, struct h5m_node *n, const struct h5m_view_handle *h,
                            const void *buf, size_t len, uint64_t off, struct h5m_npy_header *hdr)
{
	struct h5m_dataset *ds = n->ds;
	uint64_t shape[H5M_NPY_MAXDIMS];
	char canon[sizeof(hdr->descr)], *joined = NULL;
	const char *text = buf;
	size_t tlen = len;
	unsigned rank;
	int rc, want = 0;

	if (n->type != H5M_NODE_DATASET || ds->dt.kind != H5M_DT_FIXED || h->view != H5M_VIEW_NPY || h->append ||
	    !(n->untyped || h->trunc_pending) || vds_ready(n))
		return 0;
	if (off != 0) {
		/* The rest of a header staged by earlier writes. */
		if (!h->stage || off != h->stage_len || off + len > STAGE_MAX)
			return 0;
		joined = malloc(h->stage_len + len);
		if (!joined)
			return 0;
		memcpy(joined, h->stage, h->stage_len);
		memcpy(joined + h->stage_len, buf, len);
		text = joined;
		tlen = h->stage_len + len;
	}
	rc = h5m_npy_header_parse(text, tlen, hdr);
	if (rc || hdr->fortran_order || hdr->rank == 0)
		goto out; /* the usual path refuses it, or waits for more */
	if (h5m_npy_descr_canon(ds->dt.descr, canon, sizeof(canon)) < 0 || strcmp(canon, hdr->descr)) {
		want = 1;
		goto out;
	}
	if (npy_shape(v, ds, NULL, shape, &rank) < 0 || rank != hdr->rank) {
		want = 1;
		goto out;
	}
	for (unsigned i = 1; i < rank; i++)
		if (shape[i] != hdr->shape[i])
			want = 1;
out:
	free(joined);
	return want;
}

int h5m_view_shape_wants_rank(struct h5m_views *v, struct h5m_node *n, const struct h5m_view_handle *h,
                              const void *buf, size_t len, uint64_t off, uint64_t *dims, unsigned *rank)
{
	struct h5m_dataset *ds = n->ds;
	uint64_t cur[H5M_NPY_MAXDIMS];
	size_t tlen;
	char *text;
	int want = 0;

	(void)v;
	if (n->type != H5M_NODE_DATASET || !n->untyped || h->view != H5M_VIEW_SHAPE || ds->dt.kind != H5M_DT_FIXED ||
	    off > h->stage_len || off + len > STAGE_MAX || vds_ready(n))
		return 0;
	tlen = (size_t)(off + len);
	text = malloc(tlen ? tlen : 1);
	if (!text)
		return 0;
	if (off)
		memcpy(text, h->stage, (size_t)off);
	if (len)
		memcpy(text + off, buf, len);
	if (memchr(text, '\n', tlen) && !h5m_shape_parse(text, tlen, dims, H5M_NPY_MAXDIMS, rank) && *rank > 0) {
		logical_dims(ds, cur);
		want = *rank != ds->rank;
		for (unsigned i = 1; !want && i < *rank; i++)
			want = dims[i] != cur[i];
	}
	free(text);
	return want;
}

int h5m_view_open_truncate(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, struct h5m_change *chg)
{
	memset(chg, 0, sizeof(*chg));
	switch (h->view) {
	case H5M_VIEW_OBJ:
		return h5m_view_truncate(v, n, H5M_VIEW_OBJ, 0, chg);
	case H5M_VIEW_NPY:
		h->trunc_pending = true;
		return 0;
	default:
		return 0;
	}
}
