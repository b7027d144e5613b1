/* readahead.c: loads the blocks after a sequential reader's reads into the block cache on a
 * worker, and registers blocks being loaded so that two loaders never decode one block twice;
 * it decides what to load and when, never how (the views' loader does that). */
#include "h5mount/readahead.h"

#include <pthread.h>
#include <stdlib.h>

#include "h5mount/cache.h"
#include "h5mount/pool.h"
#include "h5mount/vdataset.h"

/* A sequential reader of a dataset gets the blocks after each of its reads
 * loaded into the cache on a worker while the kernel is busy with this read's reply, so that
 * its next read finds them decoded. Once delivered, they leave the cache again (use-once).
 * The kernel keeps two reads of a sequential reader in flight at times, served out of order
 * by two threads: blocks being loaded are registered, so that a read that needs one of them
 * waits for it instead of decoding it a second time (it still does when the loader decoded
 * the whole block straight into its own reply, or when all slots are taken). One position is
 * kept per dataset, so two sequential readers far apart in the same dataset read ahead only
 * while one of them is near the last read's end. The task loads like a reader, under a
 * try-read (h5m_vds_read_try_begin), and stops at a reshape or truncate until a read of the new
 * geometry schedules it again. */
#define READ_AHEAD_MAX ((uint64_t)8 << 20)
#define NO_BLOCK UINT64_MAX
/* Blocks being loaded at once per dataset: a few reads in flight, each with a few blocks, and
 * the task. A slot number of LOADING_MAX is none. */
#define LOADING_MAX H5M_READAHEAD_NO_SLOT
/* Reads in a row that must each start near where the one before ended before reading ahead
 * (so three reads): an mmap fault reads 2 MiB around it as two adjacent requests, which must
 * not look like a sequential reader. */
#define READ_AHEAD_STREAK 2

struct h5m_readaheads {
	struct h5m_cache *cache;
	size_t cache_bytes;
	h5m_readahead_load_fn load;   /* loads a block into the cache (the views' loader) */
	void *load_ctx;
	struct h5m_pool *pool;        /* set by h5m_readaheads_start before any request, NULL until then */
	pthread_mutex_t lock;         /* creates read-ahead states; protects list */
	struct h5m_readahead *list;
	bool stopping;                /* tasks return at once (atomic) */
};

struct h5m_readahead {
	struct h5m_pool_task task;  /* first: the pool hands it back to readahead_run */
	struct h5m_readaheads *r;
	struct h5m_node *n;
	struct h5m_vds *vs;         /* n's views state */
	pthread_cond_t loaded;      /* a block left `loading` (with vs->meta) */
	uint64_t expect;            /* where a sequential reader's next read starts (vs->meta) */
	uint64_t next, until;       /* blocks [next, until) are still to be read ahead (vs->meta) */
	uint64_t scheduled_to;      /* the furthest byte read ahead so far, this pass (vs->meta) */
	uint64_t epoch;             /* the resize epoch of the geometry [next, until) are of (vs->meta) */
	unsigned streak;            /* reads in a row that started near the one before (vs->meta) */
	uint64_t loading[LOADING_MAX]; /* blocks being loaded, by reads or the task (vs->meta) */
	bool queued;                /* the task is queued or running (vs->meta) */
	struct h5m_readahead *link; /* on r->list (r->lock) */
};

/* The slot that holds `block` (NO_BLOCK: a free one), or LOADING_MAX. Caller holds vs->meta. */
static unsigned loading_find(const struct h5m_readahead *ra, uint64_t block)
{
	unsigned k = 0;

	assert(h5m_mutex_held(&ra->vs->meta));

	while (k < LOADING_MAX && ra->loading[k] != block)
		k++;
	return k;
}

/* Registers `block` as being loaded by the caller, unless it already is: then waits until a
 * load ends and returns true (look in the cache again, and claim again if it is not there). Also when no slot is free, the caller
 * loads it unregistered (*slot = LOADING_MAX). Caller holds vs->meta.
 * A read waits here while holding registrations of the lower blocks of its round, never of
 * higher ones (blocks are claimed in offset order), so no two reads wait for each other; the
 * task never waits, and every loader makes progress on its own (h5m_pool_for runs the caller's
 * items on the caller too). */
static bool loading_claim(struct h5m_readahead *ra, uint64_t block, unsigned *slot)
{
	assert(h5m_mutex_held(&ra->vs->meta));
	if (loading_find(ra, block) < LOADING_MAX) { /* being loaded: wait for a load to end */
		h5m_mutex_wait(&ra->loaded, &ra->vs->meta);
		*slot = LOADING_MAX;
		return true;
	}
	*slot = loading_find(ra, NO_BLOCK);
	if (*slot < LOADING_MAX)
		ra->loading[*slot] = block;
	return false;
}

void h5m_readahead_done(struct h5m_readahead *ra, unsigned slot)
{
	if (slot == LOADING_MAX)
		return;
	h5m_mutex_lock(&ra->vs->meta);
	ra->loading[slot] = NO_BLOCK;
	pthread_cond_broadcast(&ra->loaded);
	h5m_mutex_unlock(&ra->vs->meta);
}

/* Pool task: loads blocks [next, until) into the cache, one at a time, in order. */
static void readahead_run(struct h5m_pool_task *t)
{
	struct h5m_readahead *ra = (struct h5m_readahead *)t;
	struct h5m_readaheads *r = ra->r;
	struct h5m_vds *vs = ra->vs;

	for (;;) {
		struct h5m_cache_ent *e = NULL;
		struct h5m_vsnap sn;
		uint64_t block, epoch;
		unsigned slot;
		bool busy;
		int err = 0;

		h5m_mutex_lock(&vs->meta);
		if (ra->next >= ra->until || __atomic_load_n(&r->stopping, __ATOMIC_RELAXED)) {
			ra->queued = false;
			h5m_mutex_unlock(&vs->meta);
			return;
		}
		block = ra->next++;
		epoch = ra->epoch;
		busy = loading_find(ra, block) < LOADING_MAX;
		if (!busy)
			loading_claim(ra, block, &slot); /* never waits: block is not being loaded */
		h5m_mutex_unlock(&vs->meta);
		if (busy) /* a read is loading it */
			continue;
		if (h5m_vds_read_try_begin(vs, &sn)) {
			/* Not after a resize (blocks of another geometry), nor truncated meanwhile. */
			if (sn.epoch == epoch && block < sn.b.nblocks)
				e = r->load(r->load_ctx, ra->n, &sn.b, block, &err);
			h5m_vds_read_end(vs);
		}
		h5m_cache_release(r->cache, e);
		h5m_readahead_done(ra, slot);
		if (!e) { /* a resize, or an error the reader will meet itself */
			h5m_mutex_lock(&vs->meta);
			if (ra->epoch == epoch) /* not a schedule made meanwhile for a new geometry */
				ra->next = ra->until;
			h5m_mutex_unlock(&vs->meta);
		}
	}
}

struct h5m_readahead *h5m_readahead_of(struct h5m_readaheads *r, struct h5m_node *n)
{
	struct h5m_vds *vs = h5m_vds_peek(n->ds);
	struct h5m_readahead *ra = __atomic_load_n(&vs->ra, __ATOMIC_ACQUIRE);

	if (ra || h5m_pool_workers(r->pool) == 0)
		return ra;
	ra = calloc(1, sizeof(*ra));
	if (!ra)
		return NULL;
	*ra = (struct h5m_readahead){ .task.fn = readahead_run, .r = r, .n = n, .vs = vs };
	for (unsigned k = 0; k < LOADING_MAX; k++)
		ra->loading[k] = NO_BLOCK;
	pthread_cond_init(&ra->loaded, NULL);
	pthread_mutex_lock(&r->lock);
	if (vs->ra) { /* another reader was first */
		pthread_cond_destroy(&ra->loaded);
		free(ra);
	} else {
		ra->link = r->list;
		r->list = ra;
		__atomic_store_n(&vs->ra, ra, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&r->lock);
	return vs->ra;
}

bool h5m_readahead_claim(struct h5m_readahead *ra, uint64_t block, unsigned *slot)
{
	struct h5m_vds *vs = ra->vs;
	bool waited;

	h5m_mutex_lock(&vs->meta);
	waited = loading_claim(ra, block, slot);
	if (!waited && block >= ra->next && block < ra->until)
		ra->next = block + 1;
	h5m_mutex_unlock(&vs->meta);
	return waited;
}

/* Schedules after a streak of READ_AHEAD_STREAK reads that each started near where the reads
 * before ended (near: the kernel may send two at once, out of order). */
void h5m_readahead_after(struct h5m_readahead *ra, const struct h5m_vsnap *sn, uint64_t off, size_t len)
{
	struct h5m_readaheads *r = ra->r;
	struct h5m_vds *vs = ra->vs;
	const struct h5m_blocks *b = &sn->b;
	uint64_t from = off + len, ahead = 4 * (uint64_t)len, to, first, last, within;
	bool start = false, near;

	if (ahead > READ_AHEAD_MAX)
		ahead = READ_AHEAD_MAX;
	if (ahead > r->cache_bytes / 4) /* what is read ahead must still be cached when wanted */
		ahead = r->cache_bytes / 4;
	to = b->total - from < ahead ? b->total : from + ahead;
	h5m_mutex_lock(&vs->meta);
	near = off <= ra->expect + ahead && from + ahead >= ra->expect;
	ra->streak = near ? ra->streak + 1 : 0;
	if (ra->streak >= READ_AHEAD_STREAK && to > from) {
		h5m_blocks_locate(b, from, &first, &within);
		h5m_blocks_locate(b, to - 1, &last, &within);
		if (to + READ_AHEAD_MAX < ra->scheduled_to || sn->epoch != ra->epoch) {
			/* Far behind what was read ahead: a new pass or a seek back (reads in flight
			 * together are never that far apart); or a new geometry. Start over here. */
			ra->next = first;
			ra->until = last + 1;
			ra->scheduled_to = to;
			ra->epoch = sn->epoch;
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
	h5m_mutex_unlock(&vs->meta);
	if (start && !h5m_pool_submit(r->pool, &ra->task)) {
		h5m_mutex_lock(&vs->meta);
		ra->queued = false;
		h5m_mutex_unlock(&vs->meta);
	}
}

struct h5m_readaheads *h5m_readaheads_new(struct h5m_cache *cache, size_t cache_bytes, h5m_readahead_load_fn load,
                                          void *ctx)
{
	struct h5m_readaheads *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	*r = (struct h5m_readaheads){ .cache = cache, .cache_bytes = cache_bytes, .load = load, .load_ctx = ctx };
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

void h5m_readaheads_start(struct h5m_readaheads *r, struct h5m_pool *pool)
{
	r->pool = pool;
}

void h5m_readaheads_stop(struct h5m_readaheads *r)
{
	if (r)
		__atomic_store_n(&r->stopping, true, __ATOMIC_RELAXED);
}

void h5m_readaheads_free(struct h5m_readaheads *r)
{
	if (!r)
		return;
	while (r->list) {
		struct h5m_readahead *ra = r->list;

		r->list = ra->link;
		ra->vs->ra = NULL;
		pthread_cond_destroy(&ra->loaded);
		free(ra);
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}
