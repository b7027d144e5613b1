/* cache.c: bounded LRU of decoded blocks with reference counts and per-owner generations.
 * It stores bytes; loading them (HDF5) is the caller's business. */
#include "h5mount/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define NBUCKETS 16384u
#define NGENS 4096u

struct h5m_cache_ent {
	uint64_t owner, block;
	void *data;
	size_t len;
	unsigned refs;                       /* protected by cache.lock */
	bool dead;                           /* unlinked; free at last release (cache.lock) */
	bool dirty;                          /* pinned until written back (cache.lock) */
	struct h5m_cache_ent *hnext;         /* hash chain (cache.lock) */
	struct h5m_cache_ent *prev, *next;   /* LRU list, most recent at head (cache.lock) */
};

/* Generations are kept per owner in a small table hashed by owner; a collision only makes an
 * owner share another's counter, which can cause a spurious refusal to cache, never staleness. */
struct h5m_cache {
	pthread_mutex_t lock;                /* protects everything below */
	size_t capacity, bytes, dirty_bytes;
	struct h5m_cache_ent *buckets[NBUCKETS];
	struct h5m_cache_ent *head, *tail;
	uint64_t gens[NGENS];
};

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
		free(e->data);
		free(e);
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

			free(e->data);
			free(e);
			e = n;
		}
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

struct h5m_cache_ent *h5m_cache_put(struct h5m_cache *c, uint64_t owner, uint64_t block, uint64_t gen,
                                    void *data, size_t len)
{
	struct h5m_cache_ent *e, *n = malloc(sizeof(*n));

	pthread_mutex_lock(&c->lock);
	if (gen != c->gens[owner % NGENS] || !n) {
		pthread_mutex_unlock(&c->lock);
		free(data);
		free(n);
		return NULL;
	}
	e = find(c, owner, block);
	if (e) {
		e->refs++;
		pthread_mutex_unlock(&c->lock);
		free(data);
		free(n);
		return e;
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
	if (!e)
		return;
	pthread_mutex_lock(&c->lock);
	if (--e->refs == 0) {
		if (e->dead) {
			c->bytes -= e->len;
			free(e->data);
			free(e);
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

uint64_t h5m_cache_invalidate(struct h5m_cache *c, uint64_t owner)
{
	struct h5m_cache_ent *e, *prev;
	uint64_t gen;

	pthread_mutex_lock(&c->lock);
	for (e = c->tail; e; e = prev) {
		prev = e->prev;
		if (e->owner == owner)
			kill(c, e);
	}
	gen = ++c->gens[owner % NGENS];
	pthread_mutex_unlock(&c->lock);
	return gen;
}

uint64_t h5m_cache_generation(struct h5m_cache *c, uint64_t owner)
{
	uint64_t gen;

	pthread_mutex_lock(&c->lock);
	gen = c->gens[owner % NGENS];
	pthread_mutex_unlock(&c->lock);
	return gen;
}

size_t h5m_cache_bytes(struct h5m_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return n;
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
		if (dirty)
			c->dirty_bytes += e->len;
		else
			c->dirty_bytes -= e->len;
	}
	pthread_mutex_unlock(&c->lock);
}

size_t h5m_cache_dirty_bytes(struct h5m_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->dirty_bytes;
	pthread_mutex_unlock(&c->lock);
	return n;
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
