/* test_cache.c: the block cache: hits, LRU eviction within capacity, references, invalidation. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h5mount/cache.h"

static void *filled(size_t n, int byte)
{
	void *p = malloc(n);

	assert_non_null(p);
	memset(p, byte, n);
	return p;
}

static void test_put_then_get_returns_the_same_bytes(void **state)
{
	struct h5m_cache *c = h5m_cache_new(4096);
	struct h5m_cache_ent *e;
	const unsigned char *d;
	size_t len;

	(void)state;
	assert_null(h5m_cache_get(c, 1, 7));
	e = h5m_cache_put(c, 1, 7, filled(100, 0xab), 100);
	assert_non_null(e);
	h5m_cache_release(c, e);
	e = h5m_cache_get(c, 1, 7);
	assert_non_null(e);
	d = h5m_cache_data(e, &len);
	assert_int_equal(len, 100);
	assert_int_equal(d[0], 0xab);
	assert_int_equal(d[99], 0xab);
	h5m_cache_release(c, e);
	assert_null(h5m_cache_get(c, 2, 7));
	assert_null(h5m_cache_get(c, 1, 8));
	h5m_cache_free(c);
}

static void test_least_recently_used_block_is_evicted_at_capacity(void **state)
{
	struct h5m_cache *c = h5m_cache_new(1000);
	struct h5m_cache_ent *e;

	(void)state;
	for (uint64_t b = 0; b < 2; b++)
		h5m_cache_release(c, h5m_cache_put(c, 1, b, filled(400, (int)b), 400));
	h5m_cache_release(c, h5m_cache_get(c, 1, 0)); /* block 0 is now the most recent */
	h5m_cache_release(c, h5m_cache_put(c, 1, 2, filled(400, 2), 400));
	assert_int_equal(h5m_cache_bytes(c), 800);
	e = h5m_cache_get(c, 1, 1);
	assert_null(e);
	e = h5m_cache_get(c, 1, 0);
	assert_non_null(e);
	h5m_cache_release(c, e);
	h5m_cache_free(c);
}

static void test_referenced_blocks_survive_eviction_until_released(void **state)
{
	struct h5m_cache *c = h5m_cache_new(500);
	struct h5m_cache_ent *held, *other;
	const unsigned char *d;
	size_t len;

	(void)state;
	held = h5m_cache_put(c, 3, 0, filled(400, 0x11), 400);
	other = h5m_cache_put(c, 3, 1, filled(400, 0x22), 400);
	/* Both referenced: over capacity, nothing can go. */
	assert_int_equal(h5m_cache_bytes(c), 800);
	d = h5m_cache_data(held, &len);
	assert_int_equal(d[399], 0x11);
	h5m_cache_release(c, held);   /* now evictable: the LRU one goes */
	assert_int_equal(h5m_cache_bytes(c), 400);
	assert_null(h5m_cache_get(c, 3, 0));
	h5m_cache_release(c, other);
	h5m_cache_free(c);
}

static void test_duplicate_put_keeps_the_first_copy(void **state)
{
	struct h5m_cache *c = h5m_cache_new(4096);
	struct h5m_cache_ent *a, *b;
	const unsigned char *d;
	size_t len;

	(void)state;
	a = h5m_cache_put(c, 1, 1, filled(10, 1), 10);
	b = h5m_cache_put(c, 1, 1, filled(10, 2), 10);
	assert_ptr_equal(a, b);
	d = h5m_cache_data(b, &len);
	assert_int_equal(d[0], 1);
	assert_int_equal(h5m_cache_bytes(c), 10);
	h5m_cache_release(c, a);
	h5m_cache_release(c, b);
	h5m_cache_free(c);
}

static void test_invalidate_drops_only_the_owner_blocks(void **state)
{
	struct h5m_cache *c = h5m_cache_new(4096);
	struct h5m_cache_ent *held;

	(void)state;
	held = h5m_cache_put(c, 5, 0, filled(10, 1), 10);
	h5m_cache_release(c, h5m_cache_put(c, 6, 0, filled(10, 1), 10));
	h5m_cache_invalidate(c, 5);
	assert_null(h5m_cache_get(c, 5, 0));
	assert_non_null(held);                       /* still readable by its holder */
	h5m_cache_release(c, held);
	assert_int_equal(h5m_cache_bytes(c), 10);    /* only owner 6's block remains */
	held = h5m_cache_get(c, 6, 0);
	assert_non_null(held);
	h5m_cache_release(c, held);
	h5m_cache_free(c);
}

/* Invalidating one owner never keeps another's loads out: a block loaded while owner 5 + 4096
 * (which shared owner 5's generation slot when the cache dated blocks) was invalidated is
 * cached, and so is a block of the invalidated owner loaded after. */
static void test_a_load_is_cached_whatever_other_owners_invalidate(void **state)
{
	struct h5m_cache *c = h5m_cache_new(4096);
	struct h5m_cache_ent *e;

	(void)state;
	h5m_cache_invalidate(c, 5 + 4096);
	e = h5m_cache_put(c, 5, 1, filled(10, 7), 10);
	assert_non_null(e);
	h5m_cache_release(c, e);
	e = h5m_cache_get(c, 5, 1);
	assert_non_null(e);
	h5m_cache_release(c, e);
	h5m_cache_invalidate(c, 5);
	e = h5m_cache_put(c, 5, 1, filled(10, 8), 10);
	assert_non_null(e);
	assert_int_equal(((const unsigned char *)h5m_cache_data(e, &(size_t){ 0 }))[0], 8);
	h5m_cache_release(c, e);
	h5m_cache_free(c);
}

struct worker {
	struct h5m_cache *c;
	unsigned seed;
};

static void *hammer(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 20000; i++) {
		uint64_t b = (uint64_t)(rand_r(&w->seed) % 64);
		struct h5m_cache_ent *e = h5m_cache_get(w->c, 9, b);
		const unsigned char *d;
		size_t len;

		if (!e)
			e = h5m_cache_put(w->c, 9, b, filled(256, (int)b), 256);
		d = h5m_cache_data(e, &len);
		if (len != 256 || d[0] != b || d[255] != b)
			return (void *)1;
		h5m_cache_release(w->c, e);
	}
	return NULL;
}

static void test_concurrent_readers_always_see_their_block(void **state)
{
	struct h5m_cache *c = h5m_cache_new(16 * 256);
	struct worker w[4];
	pthread_t t[4];
	void *res;

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct worker){ c, i + 1 };
		pthread_create(&t[i], NULL, hammer, &w[i]);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(t[i], &res);
		assert_null(res);
	}
	assert_true(h5m_cache_bytes(c) <= 16 * 256);
	h5m_cache_free(c);
}

static void test_dirty_blocks_are_pinned_and_not_counted_against_capacity(void **state)
{
	struct h5m_cache *c = h5m_cache_new(1000);
	struct h5m_cache_ent *e;

	(void)state;
	e = h5m_cache_put(c, 1, 0, filled(600, 1), 600);
	h5m_cache_set_dirty(c, e, true);
	h5m_cache_release(c, e);
	/* 1800 bytes held, 600 of them dirty: the clean 1200 exceed 1000, so a clean one goes. */
	h5m_cache_release(c, h5m_cache_put(c, 1, 1, filled(600, 2), 600));
	h5m_cache_release(c, h5m_cache_put(c, 1, 2, filled(600, 3), 600));
	assert_int_equal(h5m_cache_dirty_bytes(c), 600);
	assert_int_equal(h5m_cache_bytes(c), 1200);
	e = h5m_cache_get(c, 1, 0);
	assert_non_null(e);                            /* the dirty, least recent one stayed */
	assert_int_equal(((const unsigned char *)h5m_cache_data(e, &(size_t){ 0 }))[0], 1);
	h5m_cache_set_dirty(c, e, false);
	h5m_cache_release(c, e);
	assert_int_equal(h5m_cache_dirty_bytes(c), 0);
	assert_int_equal(h5m_cache_bytes(c), 600);     /* clean again, so evictable */
	h5m_cache_free(c);
}

static void test_dirty_list_returns_an_owners_dirty_blocks_in_block_order(void **state)
{
	struct h5m_cache *c = h5m_cache_new(1 << 20);
	struct h5m_cache_ent **list;
	size_t n;

	(void)state;
	for (uint64_t b = 5; b > 0; b--) {
		struct h5m_cache_ent *e = h5m_cache_put(c, 7, b * 10, filled(8, (int)b), 8);

		if (b != 3)
			h5m_cache_set_dirty(c, e, true);
		h5m_cache_release(c, e);
	}
	h5m_cache_set_dirty(c, h5m_cache_put(c, 8, 1, filled(8, 9), 8), true); /* other owner, kept referenced */
	assert_int_equal(h5m_cache_dirty_list(c, 7, &list, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(h5m_cache_block(list[0]), 10);
	assert_int_equal(h5m_cache_block(list[1]), 20);
	assert_int_equal(h5m_cache_block(list[2]), 40);
	assert_int_equal(h5m_cache_block(list[3]), 50);
	for (size_t i = 0; i < n; i++)
		h5m_cache_release(c, list[i]);
	free(list);
	/* Invalidating an owner drops its dirty bytes too. */
	h5m_cache_invalidate(c, 7);
	assert_int_equal(h5m_cache_dirty_bytes(c), 8);
	h5m_cache_release(c, h5m_cache_get(c, 8, 1));
	h5m_cache_release(c, h5m_cache_get(c, 8, 1));
	h5m_cache_free(c);
}

static void test_a_clean_block_read_to_the_last_byte_is_forgotten_at_its_last_release(void **state)
{
	struct h5m_cache *c = h5m_cache_new(1 << 20);
	struct h5m_cache_ent *e, *other, *w;
	unsigned char *d;

	(void)state;
	/* Two reads of 600 and 400 bytes deliver all 1000: gone at the last release. */
	e = h5m_cache_put(c, 1, 0, filled(1000, 1), 1000);
	h5m_cache_release_delivered(c, e, 600);
	e = h5m_cache_get(c, 1, 0);
	assert_non_null(e);
	other = h5m_cache_get(c, 1, 0);              /* a second holder */
	h5m_cache_release_delivered(c, e, 400);
	assert_int_equal(h5m_cache_bytes(c), 1000);  /* kept while someone holds it */
	assert_int_equal(((const unsigned char *)h5m_cache_data(other, &(size_t){ 0 }))[999], 1);
	h5m_cache_release(c, other);
	assert_null(h5m_cache_get(c, 1, 0));
	assert_int_equal(h5m_cache_bytes(c), 0);
	/* A writer holding a block that readers finish changes it and keeps it (dirty). */
	e = h5m_cache_put(c, 1, 2, filled(1000, 3), 1000);
	w = h5m_cache_get(c, 1, 2);
	h5m_cache_release_delivered(c, e, 1000);
	d = h5m_cache_data_mut(w);
	memset(d, 0x44, 1000);
	h5m_cache_set_dirty(c, w, true);
	h5m_cache_release(c, w);
	w = h5m_cache_get(c, 1, 2);
	assert_non_null(w);
	assert_int_equal(((const unsigned char *)h5m_cache_data(w, &(size_t){ 0 }))[0], 0x44);
	assert_int_equal(h5m_cache_dirty_bytes(c), 1000);
	h5m_cache_set_dirty(c, w, false);
	h5m_cache_release(c, w);
	/* Plain releases and partial deliveries keep a block. */
	e = h5m_cache_put(c, 1, 1, filled(1000, 2), 1000);
	h5m_cache_release(c, e);
	e = h5m_cache_get(c, 1, 1);
	h5m_cache_release_delivered(c, e, 999);
	e = h5m_cache_get(c, 1, 1);
	assert_non_null(e);
	/* A dirty block is never forgotten, and making it dirty or clean restarts the count. */
	h5m_cache_set_dirty(c, e, true);
	h5m_cache_release_delivered(c, e, 5000);
	e = h5m_cache_get(c, 1, 1);
	assert_non_null(e);
	h5m_cache_set_dirty(c, e, false);
	h5m_cache_release_delivered(c, e, 999);
	e = h5m_cache_get(c, 1, 1);
	assert_non_null(e);
	h5m_cache_release_delivered(c, e, 1);
	assert_null(h5m_cache_get(c, 1, 1));
	assert_int_equal(h5m_cache_bytes(c), 1000);  /* block 2 */
	h5m_cache_free(c);
}

/* Large blocks are mappings of their own: evicted ones are kept (8 MiB, or more within capacity
 * + spare) and handed out again (not cleared: only fresh pages are said to be zeros) instead
 * of growing the heap. */
static void test_evicted_large_blocks_are_reused_and_the_pool_is_bounded(void **state)
{
	const size_t big = 300000, page = 4096, rounded = (big + page - 1) / page * page;
	struct h5m_cache *c = h5m_cache_new(2 * big);
	struct h5m_cache_ent *e;
	unsigned char *p;

	bool zeroed;

	(void)state;
	for (uint64_t b = 0; b < 40; b++) {
		p = h5m_cache_alloc(c, big, &zeroed);
		assert_non_null(p);
		for (size_t i = 0; zeroed && i < big; i += 4093)
			assert_int_equal(p[i], 0);                /* fresh pages, said to be zeros */
#if !defined(__SANITIZE_ADDRESS__)
		assert_int_equal(zeroed, b < 3);              /* then evicted mappings, not cleared */
#endif
		memset(p, 0xa0 + (int)(b % 16), big);
		h5m_cache_release(c, h5m_cache_put(c, 1, b, p, big));
		assert_true(h5m_cache_bytes(c) <= 2 * big);
	}
	/* The two newest blocks are cached and intact; the pool holds whole evicted mappings. */
	e = h5m_cache_get(c, 1, 39);
	assert_non_null(e);
	p = (unsigned char *)h5m_cache_data(e, &(size_t){ 0 });
	assert_int_equal(p[0], 0xa0 + 39 % 16);
	assert_int_equal(p[big - 1], 0xa0 + 39 % 16);
	h5m_cache_release(c, e);
	e = h5m_cache_get(c, 1, 38);
	assert_non_null(e);
	h5m_cache_release(c, e);
	assert_null(h5m_cache_get(c, 1, 37));
#if defined(__SANITIZE_ADDRESS__)
	(void)rounded;
	assert_int_equal(h5m_cache_pooled(c), 0);    /* from malloc under ASan */
#else
	assert_int_equal(h5m_cache_pooled(c), rounded); /* each eviction's mapping was reused */
	/* Invalidation frees 2 blocks into the pool. Any size is served from it (resized). */
	h5m_cache_invalidate(c, 1);
	assert_int_equal(h5m_cache_pooled(c), 3 * rounded);
	p = h5m_cache_alloc(c, 5 * big, &zeroed);
	assert_non_null(p);
	assert_false(zeroed);
	p[5 * big - 1] = 1;
	assert_int_equal(h5m_cache_pooled(c), 2 * rounded);
	h5m_cache_discard(c, p, 5 * big);
	/* Without spare, at most 8 MiB (or what capacity leaves) is kept; with spare, more. */
	for (size_t spare = 0; spare <= ((size_t)16 << 20); spare += (size_t)16 << 20) {
		void *many[60];

		h5m_cache_set_spare(c, spare);
		for (int i = 0; i < 60; i++)
			many[i] = h5m_cache_alloc(c, big, &zeroed);
		for (int i = 0; i < 60; i++)
			h5m_cache_discard(c, many[i], big);
		size_t limit = spare ? 2 * big + spare : (size_t)8 << 20;   /* no blocks are held */

		assert_true(h5m_cache_pooled(c) <= limit);
		assert_true(h5m_cache_pooled(c) > limit - rounded);
	}
#endif
	h5m_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_then_get_returns_the_same_bytes),
		cmocka_unit_test(test_least_recently_used_block_is_evicted_at_capacity),
		cmocka_unit_test(test_referenced_blocks_survive_eviction_until_released),
		cmocka_unit_test(test_duplicate_put_keeps_the_first_copy),
		cmocka_unit_test(test_invalidate_drops_only_the_owner_blocks),
		cmocka_unit_test(test_a_load_is_cached_whatever_other_owners_invalidate),
		cmocka_unit_test(test_concurrent_readers_always_see_their_block),
		cmocka_unit_test(test_dirty_blocks_are_pinned_and_not_counted_against_capacity),
		cmocka_unit_test(test_dirty_list_returns_an_owners_dirty_blocks_in_block_order),
		cmocka_unit_test(test_evicted_large_blocks_are_reused_and_the_pool_is_bounded),
		cmocka_unit_test(test_a_clean_block_read_to_the_last_byte_is_forgotten_at_its_last_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
