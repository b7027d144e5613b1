/* writeback.c: when bytes reach the disk: write-back of dirty blocks (by chunk on the pool,
 * or through HDF5), commits and fsync, the dirty limit's back-pressure, the periodic flush
 * thread and the malloc policy after a write-back. It never decides what the bytes are. */
#include "h5mount/writeback.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h5mount/cache.h"
#include "h5mount/chunkio.h"
#include "h5mount/log.h"
#include "h5mount/pool.h"
#include "h5mount/vdataset.h"

struct h5m_writeback {
	struct h5m_store *store;
	struct h5m_cache *cache;
	size_t dirty_limit;
	h5m_writeback_complete_fn complete;
	void *complete_ctx;
	struct h5m_pool *pool;        /* set before any request, NULL until then */
	h5m_views_observer observer;  /* told of rows a flush completed; set before any request */
	void *observer_ctx;
	pthread_mutex_t flush_lock;   /* one write-back at a time; taken before any dataset's wlock */
	/* The periodic flush thread. */
	pthread_mutex_t timer_lock;   /* protects timer_stop; innermost, never held across a flush */
	pthread_cond_t timer_cv;      /* timer_stop was set */
	bool timer_stop;
	bool timer_running;           /* only the thread that starts and stops it touches this */
	unsigned interval;
	pthread_t timer;
};

struct h5m_writeback *h5m_writeback_new(struct h5m_store *store, struct h5m_cache *cache, size_t dirty_limit,
                                        h5m_writeback_complete_fn complete, void *ctx)
{
	struct h5m_writeback *wb = calloc(1, sizeof(*wb));

	if (!wb)
		return NULL;
	wb->store = store;
	wb->cache = cache;
	wb->dirty_limit = dirty_limit;
	wb->complete = complete;
	wb->complete_ctx = ctx;
	pthread_mutex_init(&wb->flush_lock, NULL);
	pthread_mutex_init(&wb->timer_lock, NULL);
	pthread_cond_init(&wb->timer_cv, NULL);
	return wb;
}

void h5m_writeback_set_pool(struct h5m_writeback *wb, struct h5m_pool *pool)
{
	wb->pool = pool;
}

void h5m_writeback_set_observer(struct h5m_writeback *wb, h5m_views_observer fn, void *ctx)
{
	wb->observer = fn;
	wb->observer_ctx = ctx;
}

/* The periodic write-back: every `interval` seconds until told to stop. */
static void *timer_main(void *arg)
{
	struct h5m_writeback *wb = arg;

	pthread_mutex_lock(&wb->timer_lock);
	while (!wb->timer_stop) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wb->interval;
		pthread_cond_timedwait(&wb->timer_cv, &wb->timer_lock, &until);
		if (wb->timer_stop)
			break;
		pthread_mutex_unlock(&wb->timer_lock);
		h5m_writeback_all(wb, false, false);
		pthread_mutex_lock(&wb->timer_lock);
	}
	pthread_mutex_unlock(&wb->timer_lock);
	return NULL;
}

int h5m_writeback_start_timer(struct h5m_writeback *wb, unsigned interval)
{
	int rc;

	if (wb->timer_running)
		return -EBUSY;
	wb->interval = interval;
	wb->timer_stop = false;
	rc = pthread_create(&wb->timer, NULL, timer_main, wb);
	if (rc)
		return -rc;
	wb->timer_running = true;
	return 0;
}

void h5m_writeback_stop_timer(struct h5m_writeback *wb)
{
	if (!wb->timer_running)
		return;
	pthread_mutex_lock(&wb->timer_lock);
	wb->timer_stop = true;
	pthread_cond_signal(&wb->timer_cv);
	pthread_mutex_unlock(&wb->timer_lock);
	pthread_join(wb->timer, NULL);
	wb->timer_running = false;
}

void h5m_writeback_free(struct h5m_writeback *wb)
{
	if (!wb)
		return;
	h5m_writeback_stop_timer(wb);
	pthread_cond_destroy(&wb->timer_cv);
	pthread_mutex_destroy(&wb->timer_lock);
	pthread_mutex_destroy(&wb->flush_lock);
	free(wb);
}

/* Bytes of written-back data held uncommitted before a flush commits a slice of it: bounds
 * the journal driver's memory while a large write-back runs. */
static size_t slice_bytes(struct h5m_writeback *wb)
{
	size_t slice = wb->dirty_limit / 8;

	return slice < ((size_t)1 << 20) ? (size_t)1 << 20 : slice;
}

/* Grows the file's extent to `rows` rows if it has fewer. */
static int extend_file(struct h5m_writeback *wb, struct h5m_dataset *ds, const struct h5m_blocks *b, uint64_t rows)
{
	uint64_t dims[H5M_NPY_MAXDIMS];

	if (b->rank == 0 || rows <= ds->h5rows)
		return 0;
	memcpy(dims, b->dims, b->rank * sizeof(*dims));
	dims[0] = rows;
	return h5m_chunkio_set_extent(wb->store, ds, dims);
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
	struct h5m_writeback *wb;
	struct h5m_dataset *ds;
	struct wb_chunk *chunks;
};

/* Pool item: writes one chunk; Blosc chunks are encoded outside every lock (on several cores
 * at once), and one chunk's write overlaps the next one's encoding. */
static void write_chunk(void *arg, size_t k)
{
	struct wb_round *r = arg;
	struct wb_chunk *c = &r->chunks[k];

	c->rc = h5m_chunkio_put_chunk(r->wb->store, r->ds, c->row0, c->src);
}

/* Blocks made of whole chunks are encoded and written on the pool; the others through HDF5.
 * Blocks become clean once HDF5 has them. */
int h5m_writeback_dataset(struct h5m_writeback *wb, struct h5m_node *n, bool complete_row,
                          struct h5m_change *completed)
{
	struct h5m_vds *vs = h5m_vds_peek(n->ds);
	struct h5m_dataset *ds = n->ds;
	struct h5m_cache_ent **list = NULL;
	struct wb_chunk *chunks = NULL;
	struct h5m_vsnap sn;
	size_t cnt = 0, cap = 0, i, j;
	bool by_chunk;
	int rc = 0;

	assert(h5m_mutex_held(&vs->wlock));

	if (complete_row) {
		struct h5m_change c;

		rc = wb->complete(wb->complete_ctx, n, &c);
		if (rc)
			return rc;
		if (completed && c.size)
			*completed = c;
	}
	h5m_vds_snapshot(vs, &sn);
	rc = h5m_cache_dirty_list(wb->cache, n->idx, &list, &cnt);
	if (rc)
		return rc;
	by_chunk = h5m_chunkio_chunk_rows(ds, &sn.b);
	for (i = 0; i < cnt && !rc; i = j) {
		uint64_t start[H5M_NPY_MAXDIMS], count[H5M_NPY_MAXDIMS], end = 0;
		size_t nchunks = 0, bytes = 0;
		struct wb_round round = { wb, ds, NULL };

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
			if (!by_chunk || rows % ds->chunk[0] != 0 || have < rows * vs->row_bytes)
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
			rc = extend_file(wb, ds, &sn.b, end);
		if (!rc) {
			round.chunks = chunks;
			h5m_pool_for(wb->pool, nchunks, write_chunk, &round);
		}
		for (size_t e = i, c = 0; e < j && !rc; e++) {
			bool whole = c < nchunks && chunks[c].entry == e;

			for (; c < nchunks && chunks[c].entry == e; c++)
				if (!rc && chunks[c].rc)
					rc = chunks[c].rc;
			if (!whole && !rc) {
				size_t have;

				rc = h5m_chunkio_write_block(wb->store, ds, &sn.b, h5m_cache_block(list[e]),
				                           h5m_cache_data(list[e], &have));
			}
			if (!rc)
				h5m_cache_set_dirty(wb->cache, list[e], false);
		}
		if (!rc && h5m_store_uncommitted(wb->store) > slice_bytes(wb))
			rc = h5m_store_commit(wb->store, false);
		for (size_t e = i; e < j; e++)
			h5m_cache_release(wb->cache, list[e]);
	}
	for (; i < cnt; i++) /* after a failure: the blocks no round reached */
		h5m_cache_release(wb->cache, list[i]);
	free(chunks);
	free(list);
	/* Rows that were never written (a gap, a grown truncate) are fill: extend over them too. */
	if (!rc && sn.b.rank > 0)
		rc = extend_file(wb, ds, &sn.b, sn.b.dims[0]);
	if (!rc)
		h5m_vds_set_pending(vs, false);
	return rc;
}

/* Whether ds has anything to write back. */
static bool needs_flush(struct h5m_dataset *ds, bool complete_row)
{
	struct h5m_vds *vs = h5m_vds_peek(ds);
	bool need;

	if (!vs) /* never written through the views */
		return false;
	h5m_mutex_lock(&vs->meta);
	need = vs->pending || (complete_row && vs->tail_len > 0);
	h5m_mutex_unlock(&vs->meta);
	return need;
}

int h5m_writeback_all(struct h5m_writeback *wb, bool durable, bool complete_rows)
{
	struct h5m_node *n;
	int rc = 0, first = 0;

	if (!h5m_store_writable(wb->store))
		return 0;
	pthread_mutex_lock(&wb->flush_lock);
	for (uint64_t i = 0; (n = h5m_store_node(wb->store, i)); i++) {
		struct h5m_change done = { 0 };
		struct h5m_vds *vs;

		if (n->type != H5M_NODE_DATASET || !n->ds->writable || !needs_flush(n->ds, complete_rows))
			continue;
		vs = h5m_vds_peek(n->ds);
		h5m_mutex_lock(&vs->wlock);
		rc = h5m_writeback_dataset(wb, n, complete_rows, &done);
		h5m_mutex_unlock(&vs->wlock);
		/* A completed row changed this dataset's sizes, whichever file asked for the flush. */
		if (done.size && wb->observer)
			wb->observer(wb->observer_ctx, n, &done);
		if (rc) {
			h5m_vds_set_wb_error(vs, rc);
			if (!first)
				first = rc;
		}
	}
	rc = h5m_store_commit(wb->store, durable);
	if (rc) {
		/* Every writable dataset may have had data in the failed commit. */
		for (uint64_t i = 0; (n = h5m_store_node(wb->store, i)); i++) {
			struct h5m_vds *vs;

			if (n->type != H5M_NODE_DATASET || !n->ds->writable)
				continue;
			vs = h5m_vds_get(n->ds); /* NULL only when out of memory */
			if (vs)
				h5m_vds_set_wb_error(vs, rc);
		}
		if (!first)
			first = rc;
	}
	pthread_mutex_unlock(&wb->flush_lock);
	return first;
}

int h5m_writeback_commit(struct h5m_writeback *wb)
{
	return h5m_store_commit(wb->store, false);
}

void h5m_writeback_after_write(struct h5m_writeback *wb)
{
	if (h5m_cache_dirty_bytes(wb->cache) > wb->dirty_limit) {
		h5m_writeback_all(wb, false, false);
#ifdef __GLIBC__
		/* A write-back frees what HDF5 and Blosc allocated on the way, in several threads'
		 * arenas; give those pages back before the next one (once per dirty_limit written). */
		malloc_trim(0);
#endif
	}
}

