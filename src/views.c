/* views.c: sizes, reads and writes of the raw, .npy, .shape and .offsets views of a dataset,
 * through the block cache with write-back; it never calls HDF5 directly (the store does). */
#include "h5mount/views.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "h5mount/cache.h"
#include "h5mount/chunkio.h"
#include "h5mount/log.h"
#include "h5mount/npy.h"
#include "h5mount/pool.h"
#include "h5mount/shape.h"
#include "h5mount/vlen.h"

#define STAGE_MAX 65536

struct h5m_views {
	struct h5m_store *store;
	struct h5m_cache *cache;
	size_t cache_bytes;
	size_t dirty_limit;
	pthread_mutex_t flush_lock;   /* one write-back at a time; taken before any dataset's wlock */
	struct h5m_pool *pool;        /* loads a read's blocks and writes back chunks in parallel,
	                               * and reads ahead; set by h5m_views_start before any request,
	                               * NULL until then */
	pthread_mutex_t ra_lock;      /* creates read-ahead states; protects ra_list */
	struct h5m_readahead *ra_list;
	bool stopping;                /* read-ahead tasks return at once (atomic) */
	h5m_views_observer observer;  /* told of rows a flush completed; set before any request */
	void *observer_ctx;
};

static void readahead_free_all(struct h5m_views *v);

struct h5m_views *h5m_views_new(struct h5m_store *store, size_t cache_bytes, size_t dirty_limit)
{
	struct h5m_views *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->store = store;
	v->cache_bytes = cache_bytes;
	v->dirty_limit = dirty_limit;
	pthread_mutex_init(&v->flush_lock, NULL);
	pthread_mutex_init(&v->ra_lock, NULL);
	v->cache = h5m_cache_new(cache_bytes);
	if (v->cache)
		h5m_cache_set_spare(v->cache, dirty_limit);
	if (!v->cache) {
		pthread_mutex_destroy(&v->ra_lock);
		pthread_mutex_destroy(&v->flush_lock);
		free(v);
		return NULL;
	}
	return v;
}

void h5m_views_set_observer(struct h5m_views *v, h5m_views_observer fn, void *ctx)
{
	v->observer = fn;
	v->observer_ctx = ctx;
}

void h5m_views_free(struct h5m_views *v)
{
	if (!v)
		return;
	__atomic_store_n(&v->stopping, true, __ATOMIC_RELAXED);
	h5m_pool_free(v->pool); /* first: no read-ahead runs after this */
	readahead_free_all(v);
	h5m_cache_free(v->cache);
	pthread_mutex_destroy(&v->ra_lock);
	pthread_mutex_destroy(&v->flush_lock);
	free(v);
}

int h5m_views_start(struct h5m_views *v, unsigned workers)
{
	if (v->pool)
		return 0;
	v->pool = h5m_pool_new(workers);
	return v->pool ? 0 : -ENOMEM;
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

/* Shape of the .npy array: dataset dims (`dims`, or the current ones when NULL) + array-type
 * dims, or the flat vlen length. */
static int npy_shape(struct h5m_views *v, struct h5m_dataset *ds, const uint64_t *dims, uint64_t *shape,
                     unsigned *rank)
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
	if (dims)
		memcpy(shape, dims, ds->rank * sizeof(*dims));
	else
		h5m_store_dims(v->store, ds, shape);
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
	h5m_store_dims(v->store, ds, dims);
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

bool h5m_view_writable(struct h5m_views *v, struct h5m_node *n, enum h5m_view view)
{
	(void)v;
	return n->type == H5M_NODE_DATASET && n->ds->writable && view != H5M_VIEW_OFFSETS;
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
 * value). A reader passes the generation its geometry belongs to (`sn_gen`): when the cache has
 * moved on (a reshape or truncate since), nothing is cached and *err is -EAGAIN. A writer
 * (holding wlock, so nothing invalidates meanwhile) passes NULL. NULL with *err on failure. */
static struct h5m_cache_ent *block_get(struct h5m_views *v, struct h5m_node *n, const struct h5m_blocks *b,
                                       const uint64_t *sn_gen, uint64_t block, int *err)
{
	struct h5m_dataset *ds = n->ds;
	struct h5m_cache_ent *e;

	for (;;) {
		uint64_t gen;
		size_t alloc;
		void *fresh;
		bool zeroed;

		e = h5m_cache_get(v->cache, n->idx, block);
		if (e)
			return e;
		gen = sn_gen ? *sn_gen : h5m_cache_generation(v->cache, n->idx);
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
		e = h5m_cache_put(v->cache, n->idx, block, gen, fresh, alloc);
		if (e)
			return e;
		if (h5m_cache_generation(v->cache, n->idx) == gen) {
			*err = -ENOMEM;
			return NULL;
		}
		if (sn_gen) {
			*err = -EAGAIN;
			return NULL;
		}
		/* Invalidated while loading: load again with the new generation. */
	}
}

/* Snapshot of a dataset's logical state for a reader or writer. */
struct snap {
	struct h5m_blocks b;
	uint64_t tail_len;
	uint64_t gen;            /* read_begin: the cache generation b belongs to */
};

static void snapshot(struct h5m_dataset *ds, struct snap *sn)
{
	pthread_mutex_lock(&ds->meta);
	sn->b = ds->blocks;
	sn->tail_len = ds->tail_len;
	pthread_mutex_unlock(&ds->meta);
}

/* Reads and resizes exclude each other: a reshape or truncate (resize_begin .. resize_end)
 * waits for the reads under way to end, and new reads wait for it. A reader's snapshot
 * (geometry and cache generation, taken together) thus stays true of the file until its
 * read_end. The task that reads ahead never waits (a reader may be waiting for its block):
 * during a resize it does not start. */
static bool read_start(struct h5m_views *v, struct h5m_node *n, struct snap *sn, bool wait)
{
	struct h5m_dataset *ds = n->ds;

	pthread_mutex_lock(&ds->meta);
	while (ds->resizing && wait)
		pthread_cond_wait(&ds->resize_cv, &ds->meta);
	if (ds->resizing) {
		pthread_mutex_unlock(&ds->meta);
		return false;
	}
	sn->b = ds->blocks;
	sn->tail_len = ds->tail_len;
	sn->gen = h5m_cache_generation(v->cache, n->idx);
	ds->readers++;
	pthread_mutex_unlock(&ds->meta);
	return true;
}

static void read_begin(struct h5m_views *v, struct h5m_node *n, struct snap *sn)
{
	read_start(v, n, sn, true);
}

static bool read_try_begin(struct h5m_views *v, struct h5m_node *n, struct snap *sn)
{
	return read_start(v, n, sn, false);
}

static void read_end(struct h5m_dataset *ds)
{
	pthread_mutex_lock(&ds->meta);
	if (--ds->readers == 0 && ds->resizing)
		pthread_cond_broadcast(&ds->resize_cv);
	pthread_mutex_unlock(&ds->meta);
}

/* Starts a change of the file's extent and the block geometry (wlock held, nothing dirty):
 * waits for the reads under way, then drops every cached block of the dataset. */
static void resize_begin(struct h5m_views *v, struct h5m_node *n)
{
	struct h5m_dataset *ds = n->ds;

	pthread_mutex_lock(&ds->meta);
	ds->resizing = true;
	while (ds->readers)
		pthread_cond_wait(&ds->resize_cv, &ds->meta);
	pthread_mutex_unlock(&ds->meta);
	h5m_cache_invalidate(v->cache, n->idx);
}

/* Ends it, whether it succeeded or not: reads start again, with the new geometry. */
static void resize_end(struct h5m_dataset *ds)
{
	pthread_mutex_lock(&ds->meta);
	ds->resizing = false;
	pthread_cond_broadcast(&ds->resize_cv);
	pthread_mutex_unlock(&ds->meta);
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
	unsigned slot;           /* its registration as being loaded (LOADING_MAX: none) */
};

/* The blocks of one read that are not cached, loaded on the pool. */
struct seg_loads {
	struct h5m_views *v;
	struct h5m_node *n;
	const struct snap *sn;
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

	if (sg->whole)
		sg->rc = h5m_chunkio_read_block(l->n->ds, &l->sn->b, sg->block, l->buf + sg->at, sg->take,
		                              false);
	else
		sg->e = block_get(l->v, l->n, &l->sn->b, &l->sn->gen, sg->block, &sg->rc);
}

/* Puts a loaded segment's bytes into buf (from the cache, or read narrowly when its block
 * failed to load) and drops its reference. Returns 0 or -errno. */
static int finish_seg(struct h5m_views *v, struct h5m_dataset *ds, const struct snap *sn, struct seg *sg, char *buf)
{
	const char *data;
	size_t have;
	bool ok;

	if (!sg->e) {
		if (sg->whole && sg->rc == 0)
			return 0;
		if (sg->rc == -EAGAIN || (!sg->whole && sg->rc == -ENOMEM))
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

/* ---- read-ahead ---- */

/* A sequential reader of a dataset gets the blocks after each of its reads
 * loaded into the cache on a worker while the kernel is busy with this read's reply, so that
 * its next read finds them decoded. Once delivered, they leave the cache again (use-once).
 * The kernel keeps two reads of a sequential reader in flight at times, served out of order
 * by two threads: blocks being loaded are registered, so that a read that needs one of them
 * waits for it instead of decoding it a second time (it still does when the loader decoded
 * the whole block straight into its own reply, or when all slots are taken). One position is
 * kept per dataset, so two sequential readers far apart in the same dataset read ahead only
 * while one of them is near the last read's end. The task loads like a reader (read_begin),
 * and stops at a reshape or truncate until a read of the new geometry schedules it again. */
#define READ_AHEAD_MAX ((uint64_t)8 << 20)
#define NO_BLOCK UINT64_MAX
#define LOADING_MAX 32 /* blocks being loaded at once per dataset: a few reads in flight,
                        * each with a few blocks, and the task */
/* Reads in a row that must each start near where the one before ended before reading ahead
 * (so three reads): an mmap fault reads 2 MiB around it as two adjacent requests, which must
 * not look like a sequential reader. */
#define READ_AHEAD_STREAK 2

struct h5m_readahead {
	struct h5m_pool_task task;  /* first: the pool hands it back to readahead_run */
	struct h5m_views *v;
	struct h5m_node *n;
	pthread_cond_t loaded;      /* a block left `loading` (with ds->meta) */
	uint64_t expect;            /* where a sequential reader's next read starts (ds->meta) */
	uint64_t next, until;       /* blocks [next, until) are still to be read ahead (ds->meta) */
	uint64_t scheduled_to;      /* the furthest byte read ahead so far, this pass (ds->meta) */
	uint64_t gen;               /* the cache generation of the geometry [next, until) are of (ds->meta) */
	unsigned streak;            /* reads in a row that started near the one before (ds->meta) */
	uint64_t loading[LOADING_MAX]; /* blocks being loaded, by reads or the task (ds->meta) */
	bool queued;                /* the task is queued or running (ds->meta) */
	struct h5m_readahead *link; /* on v->ra_list (v->ra_lock) */
};

/* The slot that holds `block` (NO_BLOCK: a free one), or LOADING_MAX. Caller holds ds->meta. */
static unsigned loading_find(const struct h5m_readahead *ra, uint64_t block)
{
	unsigned k = 0;

	while (k < LOADING_MAX && ra->loading[k] != block)
		k++;
	return k;
}

/* Registers `block` as being loaded by the caller, unless it already is: then waits until a
 * load ends and returns true (look in the cache again, and claim again if it is not there). Also when no slot is free, the caller
 * loads it unregistered (*slot = LOADING_MAX). Caller holds ds->meta.
 * A read waits here while holding registrations of the lower blocks of its round, never of
 * higher ones (blocks are claimed in offset order), so no two reads wait for each other; the
 * task never waits, and every loader makes progress on its own (h5m_pool_for runs the caller's
 * items on the caller too). */
static bool loading_claim(struct h5m_readahead *ra, uint64_t block, unsigned *slot)
{
	if (loading_find(ra, block) < LOADING_MAX) { /* being loaded: wait for a load to end */
		pthread_cond_wait(&ra->loaded, &ra->n->ds->meta);
		*slot = LOADING_MAX;
		return true;
	}
	*slot = loading_find(ra, NO_BLOCK);
	if (*slot < LOADING_MAX)
		ra->loading[*slot] = block;
	return false;
}

/* Ends a registration made by loading_claim. */
static void loading_done(struct h5m_readahead *ra, unsigned slot)
{
	if (slot == LOADING_MAX)
		return;
	pthread_mutex_lock(&ra->n->ds->meta);
	ra->loading[slot] = NO_BLOCK;
	pthread_cond_broadcast(&ra->loaded);
	pthread_mutex_unlock(&ra->n->ds->meta);
}

/* Pool task: loads blocks [next, until) into the cache, one at a time, in order. */
static void readahead_run(struct h5m_pool_task *t)
{
	struct h5m_readahead *ra = (struct h5m_readahead *)t;
	struct h5m_views *v = ra->v;
	struct h5m_dataset *ds = ra->n->ds;

	for (;;) {
		struct h5m_cache_ent *e = NULL;
		struct snap sn;
		uint64_t block, gen;
		unsigned slot;
		bool busy;
		int err = 0;

		pthread_mutex_lock(&ds->meta);
		if (ra->next >= ra->until || __atomic_load_n(&v->stopping, __ATOMIC_RELAXED)) {
			ra->queued = false;
			pthread_mutex_unlock(&ds->meta);
			return;
		}
		block = ra->next++;
		gen = ra->gen;
		busy = loading_find(ra, block) < LOADING_MAX;
		if (!busy)
			loading_claim(ra, block, &slot); /* never waits: block is not being loaded */
		pthread_mutex_unlock(&ds->meta);
		if (busy) /* a read is loading it */
			continue;
		if (read_try_begin(v, ra->n, &sn)) {
			/* Not after a resize (blocks of another geometry), nor truncated meanwhile. */
			if (sn.gen == gen && block < sn.b.nblocks)
				e = block_get(v, ra->n, &sn.b, &sn.gen, block, &err);
			read_end(ds);
		}
		h5m_cache_release(v->cache, e);
		loading_done(ra, slot);
		if (!e) { /* a resize, or an error the reader will meet itself */
			pthread_mutex_lock(&ds->meta);
			if (ra->gen == gen) /* not a schedule made meanwhile for a new geometry */
				ra->next = ra->until;
			pthread_mutex_unlock(&ds->meta);
		}
	}
}

/* The read-ahead state of n, created on first use; NULL when n is not read ahead (no workers,
 * or no memory). */
static struct h5m_readahead *readahead_of(struct h5m_views *v, struct h5m_node *n)
{
	struct h5m_dataset *ds = n->ds;
	struct h5m_readahead *ra = __atomic_load_n(&ds->ra, __ATOMIC_ACQUIRE);

	if (ra || h5m_pool_workers(v->pool) == 0)
		return ra;
	ra = calloc(1, sizeof(*ra));
	if (!ra)
		return NULL;
	*ra = (struct h5m_readahead){ .task.fn = readahead_run, .v = v, .n = n };
	for (unsigned k = 0; k < LOADING_MAX; k++)
		ra->loading[k] = NO_BLOCK;
	pthread_cond_init(&ra->loaded, NULL);
	pthread_mutex_lock(&v->ra_lock);
	if (ds->ra) { /* another reader was first */
		pthread_cond_destroy(&ra->loaded);
		free(ra);
	} else {
		ra->link = v->ra_list;
		v->ra_list = ra;
		__atomic_store_n(&ds->ra, ra, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&v->ra_lock);
	return ds->ra;
}

/* A read missed `block`: returns true after waiting for another loader of it (look again);
 * else registers the caller as its loader (*slot, for loading_done) and takes it off the
 * task's list. */
static bool readahead_claim(struct h5m_readahead *ra, uint64_t block, unsigned *slot)
{
	struct h5m_dataset *ds = ra->n->ds;
	bool waited;

	pthread_mutex_lock(&ds->meta);
	waited = loading_claim(ra, block, slot);
	if (!waited && block >= ra->next && block < ra->until)
		ra->next = block + 1;
	pthread_mutex_unlock(&ds->meta);
	return waited;
}

/* After a read of [off, off + len): when it ends a streak of READ_AHEAD_STREAK reads that each
 * started near where the reads before ended (near: the kernel may send two at once, out of
 * order), schedules the blocks of the 4 x len bytes after it (at most READ_AHEAD_MAX and a
 * quarter of the cache) and starts the task if idle. */
static void readahead_after(struct h5m_views *v, struct h5m_readahead *ra, const struct snap *sn, uint64_t off,
                            size_t len)
{
	const struct h5m_blocks *b = &sn->b;
	struct h5m_dataset *ds = ra->n->ds;
	uint64_t from = off + len, ahead = 4 * (uint64_t)len, to, first, last, within;
	bool start = false, near;

	if (ahead > READ_AHEAD_MAX)
		ahead = READ_AHEAD_MAX;
	if (ahead > v->cache_bytes / 4) /* what is read ahead must still be cached when wanted */
		ahead = v->cache_bytes / 4;
	to = b->total - from < ahead ? b->total : from + ahead;
	pthread_mutex_lock(&ds->meta);
	near = off <= ra->expect + ahead && from + ahead >= ra->expect;
	ra->streak = near ? ra->streak + 1 : 0;
	if (ra->streak >= READ_AHEAD_STREAK && to > from) {
		h5m_blocks_locate(b, from, &first, &within);
		h5m_blocks_locate(b, to - 1, &last, &within);
		if (to + READ_AHEAD_MAX < ra->scheduled_to || sn->gen != ra->gen) {
			/* Far behind what was read ahead: a new pass or a seek back (reads in flight
			 * together are never that far apart); or a new geometry. Start over here. */
			ra->next = first;
			ra->until = last + 1;
			ra->scheduled_to = to;
			ra->gen = sn->gen;
		} else {
			if (ra->next < first)
				ra->next = first;
			if (ra->until < last + 1)
				ra->until = last + 1;
			if (ra->scheduled_to < to)
				ra->scheduled_to = to;
		}
		start = !ra->queued && ra->next < ra->until;
		ra->queued |= start;
	}
	ra->expect = near && ra->expect > from ? ra->expect : from;
	pthread_mutex_unlock(&ds->meta);
	if (start && !h5m_pool_submit(v->pool, &ra->task)) {
		pthread_mutex_lock(&ds->meta);
		ra->queued = false;
		pthread_mutex_unlock(&ds->meta);
	}
}

/* Frees every read-ahead state; the pool is gone, so no task runs. */
static void readahead_free_all(struct h5m_views *v)
{
	while (v->ra_list) {
		struct h5m_readahead *ra = v->ra_list;

		v->ra_list = ra->link;
		ra->n->ds->ra = NULL;
		pthread_cond_destroy(&ra->loaded);
		free(ra);
	}
}

/* Blocks planned per round of a read: a 1 MiB read of 128 KiB blocks fits in one. */
#define READ_SEGS 16

/* Reads bytes [off, off + len) of the complete rows (within sn->b.total) into buf. The blocks
 * that are not cached are loaded in parallel on the pool (the calling thread takes part),
 * after waiting for those that read-ahead or another read is loading; then read-ahead is
 * scheduled after it. -EAGAIN: the geometry changed meanwhile, take a new snapshot. */
static ssize_t rows_read(struct h5m_views *v, struct h5m_node *n, const struct snap *sn, char *buf, size_t len,
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
	ra = readahead_of(v, n);
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
			sg->slot = LOADING_MAX;
			sg->e = h5m_cache_get(v->cache, n->idx, sg->block);
			while (!sg->e && ra && readahead_claim(ra, sg->block, &sg->slot))
				sg->e = h5m_cache_get(v->cache, n->idx, sg->block);
			if (!sg->e)
				todo[ntodo++] = nseg;
			done += sg->take;
		}
		h5m_pool_for(v->pool, ntodo, load_seg, &loads);
		for (size_t k = 0; ra && k < ntodo; k++)
			loading_done(ra, segs[todo[k]].slot);
		for (size_t k = 0; k < nseg; k++) {
			int r = rc ? 0 : finish_seg(v, ds, sn, &segs[k], buf);

			if (segs[k].e) /* after a failure: only drop the references */
				h5m_cache_release(v->cache, segs[k].e);
			if (r)
				rc = r;
		}
		if (rc)
			return h5m_cache_generation(v->cache, n->idx) != sn->gen ? -EAGAIN : rc;
	}
	/* No resize of this dataset runs during a read (read_begin), but datasets share the
	 * cache's generation slots (owner modulo 4096): when another one's resize moved this
	 * generation, blocks could not be cached (-EAGAIN above); reading again is always safe. */
	if (h5m_cache_generation(v->cache, n->idx) != sn->gen)
		return -EAGAIN;
	if (ra)
		readahead_after(v, ra, sn, off, len);
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
	struct h5m_dataset *ds = n->ds;
	uint64_t hl = npy ? ds->npy_header_len : 0, from = 0;
	size_t head = 0, in_rows = 0;
	struct snap sn;
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
	for (;;) {
		read_begin(v, n, &sn);
		if (off < hl && (rc = header_copy(v, ds, sn.b.dims, buf, len, off, &head)) < 0) {
			read_end(ds);
			return rc;
		}
		from = off + head - hl;
		in_rows = 0;
		got = 0;
		if (head < len && from < sn.b.total) {
			in_rows = sn.b.total - from < len - head ? (size_t)(sn.b.total - from) : len - head;
			got = rows_read(v, n, &sn, buf + head, in_rows, from);
		}
		if (got != -EAGAIN)
			break;
		read_end(ds);
	}
	if (got >= 0 && head + in_rows < len) {
		uint64_t at = from + in_rows - sn.b.total;
		size_t more;

		pthread_mutex_lock(&ds->meta);
		/* The held bytes may have become a row meanwhile; serve what is still held. */
		more = at < ds->tail_len && ds->blocks.total == sn.b.total ? (size_t)(ds->tail_len - at) : 0;
		if (more > len - head - in_rows)
			more = len - head - in_rows;
		if (more)
			memcpy(buf + head + in_rows, ds->tail + at, more);
		pthread_mutex_unlock(&ds->meta);
		in_rows += more;
	}
	read_end(ds);
	return got < 0 ? got : (ssize_t)(head + in_rows);
}

ssize_t h5m_view_read(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, void *buf, size_t len, uint64_t off)
{
	struct h5m_dataset *ds = n->ds;
	char text[H5M_SHAPE_TEXT_MAX(H5M_NPY_MAXDIMS)];
	uint64_t size;
	int rc;

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

/* ---- writes (the caller holds ds->wlock) ---- */

static void set_pending(struct h5m_dataset *ds, bool pending)
{
	pthread_mutex_lock(&ds->meta);
	ds->pending = pending;
	pthread_mutex_unlock(&ds->meta);
}


/* Copies src into the complete rows at raw offset `off` (within sn->b.total), marking the
 * blocks dirty. Returns 0 or -errno. */
static int rows_write(struct h5m_views *v, struct h5m_node *n, const struct h5m_blocks *b, const char *src,
                      size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		uint64_t block, within, bstart, blen;
		struct h5m_cache_ent *e;
		size_t have, take;
		int rc;

		h5m_blocks_locate(b, off + done, &block, &within);
		h5m_blocks_extent(b, block, &bstart, &blen);
		take = blen - within < len - done ? (size_t)(blen - within) : len - done;
		e = block_get(v, n, b, NULL, block, &rc);
		if (!e)
			return rc;
		h5m_cache_data(e, &have);
		if (have < within + take) {
			h5m_cache_release(v->cache, e);
			return -EIO;
		}
		memcpy((char *)h5m_cache_data_mut(e) + within, src + done, take);
		h5m_cache_set_dirty(v->cache, e, true);
		set_pending(n->ds, true);
		h5m_cache_release(v->cache, e);
		done += take;
	}
	return 0;
}

/* The held partial-row buffer, allocated (filled with the fill value) on first use. meta held. */
static unsigned char *tail_buffer(struct h5m_dataset *ds)
{
	if (!ds->tail) {
		ds->tail = malloc(ds->row_bytes ? ds->row_bytes : 1);
		if (ds->tail)
			h5m_store_fill(ds, ds->tail, ds->row_bytes, 0);
	}
	return ds->tail;
}

/* Sets the logical row count to `rows` (growing) and keeps `tail` held bytes. meta taken here. */
static int set_rows(struct h5m_dataset *ds, uint64_t rows, uint64_t tail)
{
	uint64_t dims[H5M_NPY_MAXDIMS];
	int rc;

	pthread_mutex_lock(&ds->meta);
	memcpy(dims, ds->dims, ds->rank * sizeof(*dims));
	dims[0] = rows;
	rc = h5m_blocks_resize(&ds->blocks, dims);
	if (!rc) {
		ds->dims[0] = rows;
		ds->tail_len = tail;
		ds->pending = true;
	} else {
		h5m_blocks_resize(&ds->blocks, ds->dims);
	}
	pthread_mutex_unlock(&ds->meta);
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
	struct h5m_dataset *ds = n->ds;
	uint64_t rb = ds->row_bytes, rows, rows_end, end = off + len, dims[H5M_NPY_MAXDIMS];
	struct h5m_blocks nb;
	struct snap sn;
	int rc;

	if (new_rows + (new_tail != 0) > ds->maxdims[0] || !ds->chunked)
		return -EFBIG;
	snapshot(ds, &sn);
	rows = sn.b.rank ? sn.b.dims[0] : 1;
	pthread_mutex_lock(&ds->meta);
	rc = tail_buffer(ds) ? 0 : -ENOMEM;
	pthread_mutex_unlock(&ds->meta);
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
		rc = rows_write(v, n, &nb, (const char *)ds->tail, (size_t)rb, rows * rb);
	if (!rc && len && off < rows_end)
		rc = rows_write(v, n, &nb, src, (size_t)((end < rows_end ? end : rows_end) - off), off);
	if (rc)
		return rc;
	pthread_mutex_lock(&ds->meta);
	if (new_rows != rows) {
		ds->blocks = nb;
		ds->dims[0] = new_rows;
		ds->pending = true;
		h5m_store_fill(ds, ds->tail, (size_t)rb, 0);
		ds->tail_len = new_tail;
	} else if (new_tail > ds->tail_len) {
		ds->tail_len = new_tail;
	}
	if (len && end > rows_end) {
		uint64_t from = off > rows_end ? off : rows_end;

		memcpy(ds->tail + (from - rows_end), src + (from - off), (size_t)(end - from));
	}
	pthread_mutex_unlock(&ds->meta);
	return 0;
}

/* Grows the raw size to `end` bytes (fill values). Rows of no bytes (a trailing dim of 0) hold none. */
static int grow(struct h5m_views *v, struct h5m_node *n, uint64_t end)
{
	uint64_t rb = n->ds->row_bytes;

	if (rb == 0)
		return end == 0 ? 0 : -EFBIG;
	return grow_rows(v, n, end / rb, end % rb, NULL, 0, 0);
}

/* Takes a pending write-back error of ds (reported once). */
static int take_wb_error(struct h5m_dataset *ds)
{
	int rc;

	pthread_mutex_lock(&ds->meta);
	rc = ds->wb_error;
	ds->wb_error = 0;
	pthread_mutex_unlock(&ds->meta);
	return rc;
}

/* Writes raw data bytes [off, off + len); *off_io is updated for O_APPEND. Caller holds wlock. */
static int data_write_locked(struct h5m_views *v, struct h5m_node *n, const char *buf, size_t len, uint64_t *off_io,
                             bool append, struct h5m_change *chg)
{
	struct h5m_dataset *ds = n->ds;
	struct snap sn;
	uint64_t size, off, end, rows_bytes;
	int rc;

	snapshot(ds, &sn);
	size = sn.b.total + sn.tail_len;
	off = append ? size : *off_io;
	if (__builtin_add_overflow(off, (uint64_t)len, &end))
		return -EFBIG;
	if (end > size) {
		/* Growth: the bytes go in before the new size is published (grow_rows). */
		if (ds->rank == 0 || ds->row_bytes == 0)
			return -EFBIG;
		rc = grow_rows(v, n, end / ds->row_bytes, end % ds->row_bytes, buf, len, off);
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

		pthread_mutex_lock(&ds->meta);
		memcpy(ds->tail + (from - rows_bytes), buf + (from - off), (size_t)(end - from));
		pthread_mutex_unlock(&ds->meta);
	}
done:
	*off_io = off;
	chg->data_off = off;
	chg->data_len = len;
	return 0;
}

/* Bytes of written-back data held uncommitted before a flush commits a slice of it: bounds
 * the journal driver's memory while a large write-back runs. */
static size_t slice_bytes(struct h5m_views *v)
{
	size_t slice = v->dirty_limit / 8;

	return slice < ((size_t)1 << 20) ? (size_t)1 << 20 : slice;
}

/* Grows the file's extent to `rows` rows if it has fewer. */
static int extend_file(struct h5m_views *v, struct h5m_dataset *ds, const struct h5m_blocks *b, uint64_t rows)
{
	uint64_t dims[H5M_NPY_MAXDIMS];

	if (b->rank == 0 || rows <= ds->h5rows)
		return 0;
	memcpy(dims, b->dims, b->rank * sizeof(*dims));
	dims[0] = rows;
	return h5m_chunkio_set_extent(v->store, ds, dims);
}

/* A write-back round takes dirty blocks up to this many bytes, whose chunks are written on the
 * pool. */
#define FLUSH_ROUND_BYTES ((size_t)8 << 20)

/* One whole chunk of a dirty block, written back on the pool. */
struct wb_chunk {
	const unsigned char *src; /* its bytes in the block */
	uint64_t row0;
	size_t entry;             /* index of its block in the round */
	int rc;
};

struct wb_round {
	struct h5m_views *v;
	struct h5m_dataset *ds;
	struct wb_chunk *chunks;
};

/* Pool item: writes one chunk; Blosc chunks are encoded outside every lock (on several cores
 * at once), and one chunk's write overlaps the next one's encoding. */
static void write_chunk(void *arg, size_t k)
{
	struct wb_round *r = arg;
	struct wb_chunk *c = &r->chunks[k];

	c->rc = h5m_chunkio_put_chunk(r->v->store, r->ds, c->row0, c->src);
}

/* Flushes one dataset: writes dirty blocks back in row order, a round of them at a time,
 * growing the file's extent only as far as the round's rows and committing a slice whenever
 * enough is held uncommitted, so a crash in the middle leaves a prefix of the appended rows,
 * never holes. Blocks made of whole chunks are encoded and written on the pool; the others
 * through HDF5. Blocks become clean once HDF5 has them. Caller holds wlock. */
static int flush_dataset(struct h5m_views *v, struct h5m_node *n, bool complete_row, struct h5m_change *completed)
{
	struct h5m_dataset *ds = n->ds;
	struct h5m_cache_ent **list = NULL;
	struct wb_chunk *chunks = NULL;
	struct snap sn;
	size_t cnt = 0, cap = 0, i, j;
	bool by_chunk;
	int rc = 0;

	snapshot(ds, &sn);
	if (complete_row && sn.tail_len > 0) {
		h5m_log(H5M_LOG_WARN, "%s: incomplete row (%llu of %llu bytes) completed with the fill value", ds->path,
		        (unsigned long long)sn.tail_len, (unsigned long long)ds->row_bytes);
		rc = grow(v, n, sn.b.total + ds->row_bytes);
		if (rc)
			return rc;
		if (completed)
			*completed = (struct h5m_change){ .size = true, .data_off = sn.b.total, .data_len = ds->row_bytes };
		snapshot(ds, &sn);
	}
	rc = h5m_cache_dirty_list(v->cache, n->idx, &list, &cnt);
	if (rc)
		return rc;
	by_chunk = h5m_chunkio_chunk_rows(ds, &sn.b);
	for (i = 0; i < cnt && !rc; i = j) {
		uint64_t start[H5M_NPY_MAXDIMS], count[H5M_NPY_MAXDIMS], end = 0;
		size_t nchunks = 0, bytes = 0;
		struct wb_round round = { v, ds, NULL };

		/* The round's blocks, the rows they reach, and the whole chunks they hold. */
		for (j = i; j < cnt && (j == i || bytes < FLUSH_ROUND_BYTES) && !rc; j++) {
			uint64_t rows, per;
			size_t have;
			const unsigned char *data = h5m_cache_data(list[j], &have);

			bytes += have;
			if (sn.b.rank == 0)
				continue;
			h5m_blocks_slab(&sn.b, h5m_cache_block(list[j]), start, count);
			rows = sn.b.level == 0 ? count[0] : 1;
			if (start[0] + rows > end)
				end = start[0] + rows;
			if (!by_chunk || rows % ds->chunk[0] != 0 || have < rows * ds->row_bytes)
				continue;
			per = rows / ds->chunk[0];
			if (nchunks + per > cap) {
				size_t ncap = (nchunks + per) * 2;
				struct wb_chunk *grown = realloc(chunks, ncap * sizeof(*grown));

				if (!grown) {
					rc = -ENOMEM;
					continue;
				}
				chunks = grown;
				cap = ncap;
			}
			for (uint64_t c = 0; c < per; c++)
				chunks[nchunks++] = (struct wb_chunk){ data + c * ds->chunk_bytes, start[0] + c * ds->chunk[0],
				                                       j, 0 };
		}
		if (!rc && sn.b.rank > 0)
			rc = extend_file(v, ds, &sn.b, end);
		if (!rc) {
			round.chunks = chunks;
			h5m_pool_for(v->pool, nchunks, write_chunk, &round);
		}
		for (size_t e = i, c = 0; e < j && !rc; e++) {
			bool whole = c < nchunks && chunks[c].entry == e;

			for (; c < nchunks && chunks[c].entry == e; c++)
				if (!rc && chunks[c].rc)
					rc = chunks[c].rc;
			if (!whole && !rc) {
				size_t have;

				rc = h5m_chunkio_write_block(v->store, ds, &sn.b, h5m_cache_block(list[e]),
				                           h5m_cache_data(list[e], &have));
			}
			if (!rc)
				h5m_cache_set_dirty(v->cache, list[e], false);
		}
		if (!rc && h5m_store_uncommitted(v->store) > slice_bytes(v))
			rc = h5m_store_commit(v->store, false);
		for (size_t e = i; e < j; e++)
			h5m_cache_release(v->cache, list[e]);
	}
	for (; i < cnt; i++) /* after a failure: the blocks no round reached */
		h5m_cache_release(v->cache, list[i]);
	free(chunks);
	free(list);
	/* Rows that were never written (a gap, a grown truncate) are fill: extend over them too. */
	if (!rc && sn.b.rank > 0)
		rc = extend_file(v, ds, &sn.b, sn.b.dims[0]);
	if (!rc)
		set_pending(ds, false);
	return rc;
}

/* Whether ds has anything to write back. */
static bool needs_flush(struct h5m_dataset *ds, bool complete_row)
{
	bool need;

	pthread_mutex_lock(&ds->meta);
	need = ds->pending || (complete_row && ds->tail_len > 0);
	pthread_mutex_unlock(&ds->meta);
	return need;
}

int h5m_views_flush(struct h5m_views *v, bool durable, bool complete_rows)
{
	struct h5m_node *n;
	int rc = 0, first = 0;
	bool any = false;

	if (!h5m_store_writable(v->store))
		return 0;
	pthread_mutex_lock(&v->flush_lock);
	for (uint64_t i = 0; (n = h5m_store_node(v->store, i)); i++) {
		struct h5m_change done = { 0 };

		if (n->type != H5M_NODE_DATASET || !n->ds->writable || !needs_flush(n->ds, complete_rows))
			continue;
		pthread_mutex_lock(&n->ds->wlock);
		rc = flush_dataset(v, n, complete_rows, &done);
		pthread_mutex_unlock(&n->ds->wlock);
		/* A completed row changed this dataset's sizes, whichever file asked for the flush. */
		if (done.size && v->observer)
			v->observer(v->observer_ctx, n, &done);
		if (rc) {
			pthread_mutex_lock(&n->ds->meta);
			n->ds->wb_error = rc;
			pthread_mutex_unlock(&n->ds->meta);
			if (!first)
				first = rc;
		}
		any = true;
	}
	(void)any;
	rc = h5m_store_commit(v->store, durable);
	if (rc) {
		/* Every writable dataset may have had data in the failed commit. */
		for (uint64_t i = 0; (n = h5m_store_node(v->store, i)); i++) {
			if (n->type != H5M_NODE_DATASET || !n->ds->writable)
				continue;
			pthread_mutex_lock(&n->ds->meta);
			n->ds->wb_error = rc;
			pthread_mutex_unlock(&n->ds->meta);
		}
		if (!first)
			first = rc;
	}
	pthread_mutex_unlock(&v->flush_lock);
	return first;
}

/* After a write: flush when the dirty blocks exceed the limit (the writer waits: back-pressure). */
static void maybe_flush(struct h5m_views *v)
{
	if (h5m_cache_dirty_bytes(v->cache) > v->dirty_limit) {
		h5m_views_flush(v, false, false);
#ifdef __GLIBC__
		/* A write-back frees what HDF5 and Blosc allocated on the way, in several threads'
		 * arenas; give those pages back before the next one (once per dirty_limit written). */
		malloc_trim(0);
#endif
	}
}

/* Sets the row count to `rows` (truncate): growth is logical; a shrink writes back first, then
 * shrinks the file's extent at once so regrown rows read as fill, never as old data. wlock held. */
static int truncate_rows(struct h5m_views *v, struct h5m_node *n, uint64_t rows, struct h5m_change *chg)
{
	struct h5m_dataset *ds = n->ds;
	uint64_t dims[H5M_NPY_MAXDIMS];
	struct snap sn;
	int rc;

	snapshot(ds, &sn);
	chg->size = true;
	chg->data_off = rows * ds->row_bytes;
	chg->data_len = UINT64_MAX - chg->data_off;
	if (ds->rank == 0)
		return rows == 1 ? 0 : rows > 1 ? -EFBIG : -EINVAL;
	if (rows > sn.b.dims[0] || (rows == sn.b.dims[0] && sn.tail_len == 0)) {
		if (rows == sn.b.dims[0])
			return 0;
		return grow_rows(v, n, rows, 0, NULL, 0, 0);
	}
	if (!ds->chunked)
		return -EINVAL;
	/* Drop held bytes, write back what is dirty, then shrink in the file. */
	pthread_mutex_lock(&ds->meta);
	ds->tail_len = 0;
	if (ds->tail)
		h5m_store_fill(ds, ds->tail, (size_t)ds->row_bytes, 0);
	pthread_mutex_unlock(&ds->meta);
	rc = flush_dataset(v, n, false, NULL);
	if (rc)
		return rc;
	/* Nothing is dirty now. */
	resize_begin(v, n);
	memcpy(dims, sn.b.dims, ds->rank * sizeof(*dims));
	dims[0] = rows;
	rc = h5m_chunkio_set_extent(v->store, ds, dims);
	if (!rc)
		rc = set_rows(ds, rows, 0);
	resize_end(ds);
	if (!rc)
		rc = h5m_store_commit(v->store, false);
	return rc;
}

/* Changes every dim (a .shape write). Trailing dims change the layout: write back, set the
 * file's extent, start a new block geometry. wlock held. */
static int reshape(struct h5m_views *v, struct h5m_node *n, const uint64_t *dims, unsigned rank, struct h5m_change *chg)
{
	struct h5m_dataset *ds = n->ds;
	struct h5m_blocks nb;
	struct snap sn;
	uint64_t rb = ds->dt.elem_size;
	bool trailing_same = true;
	int rc;

	if (rank != ds->rank)
		return -EINVAL;
	/* A shape beyond the maximum is a bad shape (EINVAL), except that a dataset that cannot
	 * grow at all (not chunked, or already at its maximum rows) refuses growth with EFBIG as
	 * its appends and truncates do. */
	for (unsigned i = 1; i < rank; i++)
		if (dims[i] > ds->maxdims[i])
			return -EINVAL;
	snapshot(ds, &sn);
	if (rank > 0 && dims[0] > ds->maxdims[0])
		return ds->chunked && ds->maxdims[0] > sn.b.dims[0] ? -EINVAL : -EFBIG;
	for (unsigned i = 1; i < rank; i++)
		trailing_same &= dims[i] == sn.b.dims[i];
	if (rank == 0)
		return 0;
	if (trailing_same)
		return truncate_rows(v, n, dims[0], chg);
	if (!ds->chunked)
		return -EINVAL;
	for (unsigned i = 1; i < rank; i++)
		if (__builtin_mul_overflow(rb, dims[i], &rb))
			return -EINVAL;
	rc = h5m_blocks_init(&nb, rank, dims, ds->chunk, ds->dt.elem_size, h5m_store_block_target(v->store));
	if (rc)
		return -EINVAL;
	rc = flush_dataset(v, n, true, NULL);
	if (rc)
		return rc;
	resize_begin(v, n);
	rc = h5m_chunkio_set_extent(v->store, ds, dims);
	if (!rc) {
		pthread_mutex_lock(&ds->meta);
		memcpy(ds->dims, dims, rank * sizeof(*dims));
		ds->blocks = nb;
		ds->row_bytes = rb;
		ds->tail_len = 0;
		free(ds->tail);
		ds->tail = NULL;
		pthread_mutex_unlock(&ds->meta);
	}
	resize_end(ds);
	if (rc)
		return rc;
	chg->size = chg->all = true;
	return h5m_store_commit(v->store, false);
}

/* Checks a complete .npy header against the dataset: same descr, C order, same trailing dims. */
static int check_header(struct h5m_views *v, struct h5m_dataset *ds, const struct h5m_npy_header *h)
{
	uint64_t shape[H5M_NPY_MAXDIMS];
	char canon[sizeof(h->descr)];
	unsigned rank;

	if (h->fortran_order || h5m_npy_descr_canon(ds->dt.descr, canon, sizeof(canon)) < 0 || strcmp(canon, h->descr))
		return -EINVAL;
	if (npy_shape(v, ds, NULL, shape, &rank) < 0 || h->rank != rank)
		return -EINVAL;
	for (unsigned i = 1; i < rank; i++)
		if (h->shape[i] != shape[i])
			return -EINVAL;
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

	if (off == 0)
		h5m_view_handle_destroy(h);
	else if (!h->stage)
		return -EINVAL; /* a header is written from its first byte */
	/* Only the header needs staging; data in the same write is taken from buf below. */
	if (off + staged > STAGE_MAX)
		staged = off < STAGE_MAX ? STAGE_MAX - (size_t)off : 0;
	rc = stage(h, buf, staged, off);
	if (rc)
		return rc;
	rc = h5m_npy_header_parse(h->stage, h->stage_len, &hdr);
	if (rc == -EAGAIN && h->stage_len < STAGE_MAX)
		return (ssize_t)len;
	if (rc == 0)
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

	rc = h5m_shape_parse(h->stage, h->stage_len, dims, H5M_NPY_MAXDIMS, &rank);
	h5m_view_handle_destroy(h);
	if (rc)
		return -EINVAL;
	if (ds->dt.kind == H5M_DT_FIXED && ds->dt.extra_rank) {
		if (rank != ds->rank + ds->dt.extra_rank)
			return -EINVAL;
		for (unsigned i = 0; i < ds->dt.extra_rank; i++)
			if (dims[ds->rank + i] != ds->dt.extra_dims[i])
				return -EINVAL;
		rank = ds->rank;
	}
	return reshape(v, n, dims, rank, chg);
}

ssize_t h5m_view_write(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, const void *buf,
                       size_t len, uint64_t off, struct h5m_change *chg)
{
	struct h5m_dataset *ds = n->ds;
	ssize_t ret = (ssize_t)len;
	uint64_t data_off;
	int rc;

	memset(chg, 0, sizeof(*chg));
	if (!h5m_view_writable(v, n, h->view))
		return -EACCES;
	pthread_mutex_lock(&ds->wlock);
	rc = take_wb_error(ds);
	if (rc) {
		ret = rc;
		goto out;
	}
	switch (h->view) {
	case H5M_VIEW_OBJ:
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
	pthread_mutex_unlock(&ds->wlock);
	if (ret > 0)
		maybe_flush(v);
	return ret;
}

int h5m_view_truncate(struct h5m_views *v, struct h5m_node *n, enum h5m_view view, uint64_t size,
                      struct h5m_change *chg)
{
	struct h5m_dataset *ds = n->ds;
	uint64_t data;
	int rc;

	memset(chg, 0, sizeof(*chg));
	if (!h5m_view_writable(v, n, view))
		return -EACCES;
	if (view == H5M_VIEW_SHAPE)
		return 0; /* `> x.shape` empties the sidecar before the new text is written */
	if (view == H5M_VIEW_NPY && size != 0 && size < ds->npy_header_len)
		return -EINVAL; /* a size inside the header */
	if (view == H5M_VIEW_NPY)
		data = size == 0 ? 0 : size - ds->npy_header_len;
	else
		data = size;
	if (ds->rank == 0 && data != ds->dt.elem_size)
		return data > ds->dt.elem_size ? -EFBIG : -EINVAL;
	pthread_mutex_lock(&ds->wlock);
	/* row_bytes changes under wlock (reshape); with rows of no bytes, only 0 is a size. */
	if (ds->rank > 0 && (ds->row_bytes == 0 ? data != 0 : data % ds->row_bytes != 0))
		rc = -EINVAL;
	else
		rc = take_wb_error(ds);
	if (!rc && ds->rank > 0 && ds->row_bytes > 0) {
		uint64_t rows = data / ds->row_bytes;

		if (rows > ds->maxdims[0] || (!ds->chunked && rows > ds->dims[0]))
			rc = -EFBIG;
		else
			rc = truncate_rows(v, n, rows, chg);
	}
	pthread_mutex_unlock(&ds->wlock);
	return rc;
}

int h5m_view_close(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, struct h5m_change *chg)
{
	struct h5m_dataset *ds = n->ds;
	int rc = 0;

	memset(chg, 0, sizeof(*chg));
	if (n->type != H5M_NODE_DATASET || !h->write)
		return 0;
	pthread_mutex_lock(&ds->wlock);
	if (h->view == H5M_VIEW_SHAPE && h->stage_len)
		rc = apply_shape(v, n, h, chg);
	else if (h->view == H5M_VIEW_NPY && h->stage_len)
		rc = -EINVAL; /* a header that never completed: nothing changes */
	else if (h->trunc_pending && ds->rank > 0)
		rc = truncate_rows(v, n, 0, chg); /* `: > x.npy` */
	h->trunc_pending = false;
	h5m_view_handle_destroy(h);
	if (!rc)
		rc = take_wb_error(ds);
	pthread_mutex_unlock(&ds->wlock);
	return rc;
}

int h5m_view_release(struct h5m_views *v, struct h5m_node *n, struct h5m_view_handle *h, struct h5m_change *chg)
{
	struct h5m_dataset *ds = n->ds;
	struct snap sn;
	int rc = 0;

	memset(chg, 0, sizeof(*chg));
	if (n->type != H5M_NODE_DATASET || !h->write || !h->wrote)
		return 0;
	pthread_mutex_lock(&ds->wlock);
	snapshot(ds, &sn);
	if (sn.tail_len) {
		h5m_log(H5M_LOG_WARN, "%s: incomplete row (%llu of %llu bytes) completed with the fill value at close",
		        ds->path, (unsigned long long)sn.tail_len, (unsigned long long)ds->row_bytes);
		rc = grow(v, n, sn.b.total + ds->row_bytes);
		chg->size = true;
		chg->moved = true; /* the file grew beyond what was written to it */
		chg->data_off = sn.b.total;
		chg->data_len = ds->row_bytes;
	}
	pthread_mutex_unlock(&ds->wlock);
	return rc;
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
