/* cache.c: bounded LRU of decoded blocks with reference counts. It stores bytes; loading
 * them (HDF5) and keeping them consistent with the file (the views' per-dataset read/resize
 * exclusion) is the caller's business. */
#include "h5mount/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NBUCKETS 16384u

/* Blocks of at least MAP_MIN bytes get mapped pages of their own, so that freeing one gives its
 * memory back to the system: long-lived blocks among short-lived allocations fragment malloc's
 * heaps, which then keep growing with every byte read (400 MB of heap for 26 MB in use after
 * 10,000 random rows). Freed mappings are kept for reuse (resized with mremap when the size
 * differs), so that a cache that replaces blocks, or write-back that turns dirty blocks clean
 * and evicts as many, does not fault in fresh pages for each new block: while blocks and
 * kept mappings together stay within capacity + spare, or up to POOL_MAX bytes without spare.
 * Smaller blocks come from malloc, which keeps the number of mappings low. Under
 * AddressSanitizer every block comes from malloc, so that its bounds are checked. */
#if defined(__SANITIZE_ADDRESS__)
#define MAP_MIN SIZE_MAX
#else
#define MAP_MIN ((size_t)64 << 10)
#endif
#define POOL_MAX ((size_t)8 << 20)

/* The head of a kept mapping, written into its first bytes. */
struct pooled {
	struct pooled *newer, *older;
	size_t len;
};

/* Entries come from slabs of ENT_SLAB, kept until the cache is freed: an entry lives as long as
 * its block, and a small long-lived malloc placed inside a big transient one's freed space
 * (c-blosc takes 2 x its block size per decode) pins that space, which made the heap creep by
 * half a MB per cached block. */
#define ENT_SLAB 255

struct ent_slab;

struct h5m_cache_ent {
	uint64_t owner, block;
	void *data;
	size_t len;
	unsigned refs;                       /* protected by cache.lock */
	bool dead;                           /* unlinked; free at last release (cache.lock) */
	bool dirty;                          /* pinned until written back (cache.lock) */
	size_t delivered;                    /* bytes readers took since it was loaded or last
	                                      * made dirty or clean (cache.lock) */
	struct h5m_cache_ent *hnext;         /* hash chain (cache.lock) */
	struct h5m_cache_ent *prev, *next;   /* LRU list, most recent at head (cache.lock) */
};

struct h5m_cache {
	pthread_mutex_t lock;                /* protects everything below */
	size_t capacity, bytes, dirty_bytes;
	struct h5m_cache_ent *buckets[NBUCKETS];
	struct h5m_cache_ent *head, *tail;
	size_t spare;                        /* see h5m_cache_set_spare */
	struct pooled *newest, *oldest;      /* kept mappings */
	size_t pool_bytes;
	struct ent_slab *slabs;              /* every entry slab */
	struct h5m_cache_ent *free_ents;     /* unused entries, chained by hnext */
};

struct ent_slab {
	struct ent_slab *next;
	struct h5m_cache_ent e[ENT_SLAB];
};

/* Returns an unused entry, or NULL when out of memory. Caller holds the lock. */
static struct h5m_cache_ent *ent_new(struct h5m_cache *c)
{
	struct h5m_cache_ent *e;

	if (!c->free_ents) {
		struct ent_slab *sl = malloc(sizeof(*sl));

		if (!sl)
			return NULL;
		sl->next = c->slabs;
		c->slabs = sl;
		for (unsigned i = 0; i < ENT_SLAB; i++) {
			sl->e[i].hnext = c->free_ents;
			c->free_ents = &sl->e[i];
		}
	}
	e = c->free_ents;
	c->free_ents = e->hnext;
	return e;
}

/* Returns entry e (its data already freed) to the unused ones. Caller holds the lock. */
static void ent_free(struct h5m_cache *c, struct h5m_cache_ent *e)
{
	e->hnext = c->free_ents;
	c->free_ents = e;
}

static unsigned hash(uint64_t owner, uint64_t block)
{
	uint64_t h = owner * 0x9E3779B97F4A7C15ull ^ (block + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;

	return (unsigned)(h >> 32) % NBUCKETS;
}

struct h5m_cache *h5m_cache_new(size_t capacity)
{
	struct h5m_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->capacity = capacity;
	return c;
}

/* Reads one counter of c under its lock. */
static size_t locked_read(struct h5m_cache *c, const size_t *counter)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = *counter;
	pthread_mutex_unlock(&c->lock);
	return n;
}

static size_t page_round(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (len + page - 1) / page * page;
}

/* Unlinks kept mapping m and returns it. Caller holds the lock. */
static void *pool_take(struct h5m_cache *c, struct pooled *m)
{
	if (m->newer)
		m->newer->older = m->older;
	else
		c->newest = m->older;
	if (m->older)
		m->older->newer = m->newer;
	else
		c->oldest = m->newer;
	c->pool_bytes -= m->len;
	return m;
}

/* Gives back the oldest kept mapping. Caller holds the lock. */
static void pool_drop_oldest(struct h5m_cache *c)
{
	struct pooled *m = c->oldest;
	size_t len = m->len;

	munmap(pool_take(c, m), len);
}

/* Whether len more bytes may be kept. Caller holds the lock. */
static bool pool_fits(const struct h5m_cache *c, size_t len)
{
	return c->bytes + c->pool_bytes + len <= c->capacity + c->spare || (c->spare == 0 && c->pool_bytes + len <= POOL_MAX);
}

/* Frees block data of len bytes (from h5m_cache_alloc), already uncounted in c->bytes. Caller
 * holds the lock. */
static void data_free(struct h5m_cache *c, void *data, size_t len)
{
	struct pooled *m = data;

	if (!data)
		return;
	if (len < MAP_MIN) {
		free(data);
		return;
	}
	len = page_round(len);
	while (c->oldest && !pool_fits(c, len))
		pool_drop_oldest(c);
	if (!pool_fits(c, len)) {
		munmap(data, len);
		return;
	}
	*m = (struct pooled){ .newer = NULL, .older = c->newest, .len = len };
	if (c->newest)
		c->newest->newer = m;
	else
		c->oldest = m;
	c->newest = m;
	c->pool_bytes += len;
}

void *h5m_cache_alloc(struct h5m_cache *c, size_t len, bool *zeroed)
{
	struct pooled *m;
	size_t have;
	void *p;

	*zeroed = false;
	if (len < MAP_MIN)
		return malloc(len ? len : 1);
	len = page_round(len);
	pthread_mutex_lock(&c->lock);
	/* The newest kept mapping of this size, else the newest of any size. */
	for (m = c->newest; m && m->len != len; m = m->older)
		;
	m = m ? m : c->newest;
	p = m ? pool_take(c, m) : NULL;
	have = m ? m->len : 0;
	pthread_mutex_unlock(&c->lock);
	if (!p) {
		/* Fresh anonymous pages read as zeros; populated in one go, not a fault per page. */
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		*zeroed = p != MAP_FAILED;
		return p == MAP_FAILED ? NULL : p;
	}
	if (have != len) {
		void *q = mremap(p, have, len, MREMAP_MAYMOVE);

		if (q == MAP_FAILED) {
			munmap(p, have);
			return NULL;
		}
		p = q;
	}
	return p;
}

void h5m_cache_discard(struct h5m_cache *c, void *data, size_t len)
{
	pthread_mutex_lock(&c->lock);
	data_free(c, data, len);
	pthread_mutex_unlock(&c->lock);
}

void h5m_cache_set_spare(struct h5m_cache *c, size_t spare)
{
	pthread_mutex_lock(&c->lock);
	c->spare = spare;
	pthread_mutex_unlock(&c->lock);
}

size_t h5m_cache_pooled(struct h5m_cache *c)
{
	return locked_read(c, &c->pool_bytes);
}

static void lru_unlink(struct h5m_cache *c, struct h5m_cache_ent *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct h5m_cache *c, struct h5m_cache_ent *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static void hash_unlink(struct h5m_cache *c, struct h5m_cache_ent *e)
{
	struct h5m_cache_ent **pp = &c->buckets[hash(e->owner, e->block)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
}

/* Unlinks e from the table and LRU; frees it now if unreferenced. Caller holds the lock. */
static void kill(struct h5m_cache *c, struct h5m_cache_ent *e)
{
	hash_unlink(c, e);
	lru_unlink(c, e);
	e->dead = true;
	if (e->dirty) {
		e->dirty = false;
		c->dirty_bytes -= e->len;
	}
	if (e->refs == 0) {
		c->bytes -= e->len;
		data_free(c, e->data, e->len);
		ent_free(c, e);
	}
}

/* Evicts unreferenced clean entries from the LRU tail until the clean bytes are within
 * capacity. Caller holds the lock. */
static void evict(struct h5m_cache *c)
{
	struct h5m_cache_ent *e = c->tail;

	while (c->bytes - c->dirty_bytes > c->capacity && e) {
		struct h5m_cache_ent *prev = e->prev;

		if (e->refs == 0 && !e->dirty)
			kill(c, e);
		e = prev;
	}
}

void h5m_cache_free(struct h5m_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < NBUCKETS; i++) {
		struct h5m_cache_ent *e = c->buckets[i];

		while (e) {
			struct h5m_cache_ent *n = e->hnext;

			data_free(c, e->data, e->len);
			e = n;
		}
	}
	while (c->oldest)
		pool_drop_oldest(c);
	while (c->slabs) {
		struct ent_slab *next = c->slabs->next;

		free(c->slabs);
		c->slabs = next;
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct h5m_cache_ent *find(struct h5m_cache *c, uint64_t owner, uint64_t block)
{
	struct h5m_cache_ent *e = c->buckets[hash(owner, block)];

	while (e && !(e->owner == owner && e->block == block))
		e = e->hnext;
	return e;
}

struct h5m_cache_ent *h5m_cache_get(struct h5m_cache *c, uint64_t owner, uint64_t block)
{
	struct h5m_cache_ent *e;

	pthread_mutex_lock(&c->lock);
	e = find(c, owner, block);
	if (e) {
		e->refs++;
		lru_unlink(c, e);
		lru_push(c, e);
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

struct h5m_cache_ent *h5m_cache_put(struct h5m_cache *c, uint64_t owner, uint64_t block, void *data, size_t len)
{
	struct h5m_cache_ent *e, *n;

	pthread_mutex_lock(&c->lock);
	e = find(c, owner, block);
	if (e) {
		e->refs++;
		data_free(c, data, len);
		pthread_mutex_unlock(&c->lock);
		return e;
	}
	n = ent_new(c);
	if (!n) {
		data_free(c, data, len);
		pthread_mutex_unlock(&c->lock);
		return NULL;
	}
	*n = (struct h5m_cache_ent){ .owner = owner, .block = block, .data = data, .len = len, .refs = 1 };
	n->hnext = c->buckets[hash(owner, block)];
	c->buckets[hash(owner, block)] = n;
	lru_push(c, n);
	c->bytes += len;
	evict(c);
	pthread_mutex_unlock(&c->lock);
	return n;
}

void h5m_cache_release(struct h5m_cache *c, struct h5m_cache_ent *e)
{
	h5m_cache_release_delivered(c, e, 0);
}

void h5m_cache_release_delivered(struct h5m_cache *c, struct h5m_cache_ent *e, size_t bytes)
{
	if (!e)
		return;
	pthread_mutex_lock(&c->lock);
	e->delivered = bytes > e->len - e->delivered ? e->len : e->delivered + bytes;
	if (--e->refs == 0) {
		if (e->dead) {
			c->bytes -= e->len;
			data_free(c, e->data, e->len);
			ent_free(c, e);
		} else if (!e->dirty && e->delivered == e->len) {
			/* Only at the last release: a writer holding it may be about to change it. */
			kill(c, e);
		} else {
			evict(c);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

const void *h5m_cache_data(const struct h5m_cache_ent *e, size_t *len)
{
	*len = e->len;
	return e->data;
}

void h5m_cache_invalidate(struct h5m_cache *c, uint64_t owner)
{
	struct h5m_cache_ent *e, *prev;

	pthread_mutex_lock(&c->lock);
	for (e = c->tail; e; e = prev) {
		prev = e->prev;
		if (e->owner == owner)
			kill(c, e);
	}
	pthread_mutex_unlock(&c->lock);
}

size_t h5m_cache_bytes(struct h5m_cache *c)
{
	return locked_read(c, &c->bytes);
}

void *h5m_cache_data_mut(struct h5m_cache_ent *e)
{
	return e->data;
}

uint64_t h5m_cache_block(const struct h5m_cache_ent *e)
{
	return e->block;
}

void h5m_cache_set_dirty(struct h5m_cache *c, struct h5m_cache_ent *e, bool dirty)
{
	pthread_mutex_lock(&c->lock);
	if (!e->dead && e->dirty != dirty) {
		e->dirty = dirty;
		e->delivered = 0;
		if (dirty)
			c->dirty_bytes += e->len;
		else
			c->dirty_bytes -= e->len;
	}
	pthread_mutex_unlock(&c->lock);
}

size_t h5m_cache_dirty_bytes(struct h5m_cache *c)
{
	return locked_read(c, &c->dirty_bytes);
}

static int by_block(const void *a, const void *b)
{
	uint64_t x = (*(struct h5m_cache_ent *const *)a)->block, y = (*(struct h5m_cache_ent *const *)b)->block;

	return x < y ? -1 : x > y;
}

int h5m_cache_dirty_list(struct h5m_cache *c, uint64_t owner, struct h5m_cache_ent ***out, size_t *n)
{
	struct h5m_cache_ent **list = NULL, *e;
	size_t cnt = 0, cap = 0;

	pthread_mutex_lock(&c->lock);
	for (e = c->head; e; e = e->next) {
		if (e->owner != owner || !e->dirty)
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct h5m_cache_ent **nl = realloc(list, ncap * sizeof(*nl));

			if (!nl) {
				for (size_t i = 0; i < cnt; i++)
					list[i]->refs--;
				pthread_mutex_unlock(&c->lock);
				free(list);
				return -ENOMEM;
			}
			list = nl;
			cap = ncap;
		}
		e->refs++;
		list[cnt++] = e;
	}
	pthread_mutex_unlock(&c->lock);
	if (cnt)
		qsort(list, cnt, sizeof(*list), by_block);
	*out = list;
	*n = cnt;
	return 0;
}
