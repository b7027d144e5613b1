/* test_blocks.c: byte ranges <-> whole-chunk blocks: choice of block shape, locate, extent, slab. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "h5mount/blocks.h"

#define KIB 1024u

static void test_earray_blocks_are_whole_chunk_rows_near_target(void **state)
{
	uint64_t dims[2] = { 5000, 1000 }, chunk[2] = { 8, 1000 }, block, within, start, n;
	uint64_t st[2], ct[2];
	struct h5m_blocks b;

	(void)state;
	assert_int_equal(h5m_blocks_init(&b, 2, dims, chunk, 8, 256 * KIB), 0);
	assert_int_equal(b.level, 0);
	assert_int_equal(b.len, 32); /* 4 chunks of 8 rows x 8000 bytes = 256000 <= 262144 */
	assert_int_equal(b.nblocks, 157);
	assert_int_equal(b.total, 40000000);
	h5m_blocks_locate(&b, 32 * 8000 + 17, &block, &within);
	assert_int_equal(block, 1);
	assert_int_equal(within, 17);
	h5m_blocks_extent(&b, 156, &start, &n);
	assert_int_equal(start, 4992 * 8000);
	assert_int_equal(n, 8 * 8000); /* the last block is clipped to the rows that exist */
	h5m_blocks_slab(&b, 156, st, ct);
	assert_int_equal(st[0], 4992);
	assert_int_equal(ct[0], 8);
	assert_int_equal(st[1], 0);
	assert_int_equal(ct[1], 1000);
}

static void test_chunk_rows_above_target_stay_whole(void **state)
{
	/* PyTables' chunks for a 1 GB EArray of 1000 float64 columns: 65 rows, 520 KB. */
	uint64_t dims[2] = { 134217, 1000 }, chunk[2] = { 65, 1000 }, block, within, st[2], ct[2];
	struct h5m_blocks b;

	(void)state;
	assert_int_equal(h5m_blocks_init(&b, 2, dims, chunk, 8, 128 * KIB), 0);
	assert_int_equal(b.level, 0);
	assert_int_equal(b.len, 65);
	h5m_blocks_locate(&b, 100ull * 8000 + 5, &block, &within);
	assert_int_equal(block, 1);
	assert_int_equal(within, 35 * 8000 + 5);
	h5m_blocks_slab(&b, block, st, ct);
	assert_int_equal(st[0], 65);
	assert_int_equal(ct[0], 65);
	assert_int_equal(ct[1], 1000);
}

static void test_wide_rows_split_at_a_later_dim(void **state)
{
	/* One chunk row is 32 MB, above H5M_BLOCKS_SLAB_MAX: cut inside it. */
	uint64_t dims[2] = { 4, 4000000 }, chunk[2] = { 1, 4000000 }, block, within, st[2], ct[2];
	struct h5m_blocks b;

	(void)state;
	assert_true(4000000 * 8 > H5M_BLOCKS_SLAB_MAX);
	assert_int_equal(h5m_blocks_init(&b, 2, dims, chunk, 8, 256 * KIB), 0);
	assert_int_equal(b.level, 1);
	assert_int_equal(b.len, 32768);
	assert_int_equal(b.per_outer, 123);
	h5m_blocks_locate(&b, (2 * 4000000 + 500000) * 8ull + 3, &block, &within);
	assert_int_equal(block, 2 * 123 + 500000 / 32768);
	assert_int_equal(within, (500000 % 32768) * 8 + 3);
	h5m_blocks_slab(&b, block, st, ct);
	assert_int_equal(st[0], 2);
	assert_int_equal(ct[0], 1);
	assert_int_equal(st[1], 15 * 32768);
	assert_int_equal(ct[1], 32768);
	h5m_blocks_slab(&b, 2 * 123 + 122, st, ct);
	assert_int_equal(st[1], 122 * 32768);
	assert_int_equal(ct[1], 4000000 - 122 * 32768);
}

static void check_tiling(unsigned rank, const uint64_t *dims, const uint64_t *chunk, size_t elem, size_t target)
{
	struct h5m_blocks b;
	uint64_t pos = 0;

	assert_int_equal(h5m_blocks_init(&b, rank, dims, chunk, elem, target), 0);
	for (uint64_t k = 0; k < b.nblocks; k++) {
		uint64_t start, n, block, within, st[8], ct[8], elems = 1;

		h5m_blocks_extent(&b, k, &start, &n);
		assert_int_equal(start, pos);
		assert_true(n > 0);
		h5m_blocks_locate(&b, start, &block, &within);
		assert_int_equal(block, k);
		assert_int_equal(within, 0);
		h5m_blocks_locate(&b, start + n - 1, &block, &within);
		assert_int_equal(block, k);
		assert_int_equal(within, n - 1);
		h5m_blocks_slab(&b, k, st, ct);
		for (unsigned i = 0; i < rank; i++) {
			assert_true(st[i] + ct[i] <= dims[i]);
			elems *= ct[i];
			/* Blocks start on chunk boundaries at and after the split level. */
			if (chunk && i >= b.level && b.len >= chunk[i])
				assert_int_equal(st[i] % chunk[i], 0);
		}
		assert_int_equal(elems * elem, n);
		pos += n;
	}
	assert_int_equal(pos, b.total);
}

static void test_blocks_tile_the_dataset_exactly(void **state)
{
	uint64_t d1[1] = { 100003 }, c1[1] = { 1000 };
	uint64_t d2[2] = { 777, 33 }, c2[2] = { 10, 7 };
	uint64_t d3[3] = { 9, 50, 4000 }, c3[3] = { 2, 5, 300 };
	uint64_t d4[3] = { 3, 5, 7 };

	(void)state;
	check_tiling(1, d1, c1, 8, 256 * KIB);
	check_tiling(1, d1, c1, 8, 1000);      /* a chunk above target on a 1-D dataset */
	check_tiling(2, (uint64_t[]){ 7, 5000000 }, (uint64_t[]){ 2, 3000000 }, 8, 4 * KIB); /* slab > max */
	check_tiling(2, d2, c2, 4, 1 * KIB);
	check_tiling(3, d3, c3, 2, 64 * KIB);
	check_tiling(3, d3, c3, 16, 4 * KIB);
	check_tiling(3, d4, NULL, 12, 100);    /* contiguous: virtual chunks of one index */
}

static void test_scalar_is_one_block_of_one_element(void **state)
{
	struct h5m_blocks b;
	uint64_t start, n, block, within;

	(void)state;
	assert_int_equal(h5m_blocks_init(&b, 0, NULL, NULL, 24, 256 * KIB), 0);
	assert_int_equal(b.nblocks, 1);
	assert_int_equal(b.total, 24);
	h5m_blocks_extent(&b, 0, &start, &n);
	assert_int_equal(start, 0);
	assert_int_equal(n, 24);
	h5m_blocks_locate(&b, 5, &block, &within);
	assert_int_equal(block, 0);
	assert_int_equal(within, 5);
}

static void test_empty_dataset_has_no_blocks(void **state)
{
	uint64_t dims[2] = { 0, 1000 }, chunk[2] = { 8, 1000 };
	struct h5m_blocks b;

	(void)state;
	assert_int_equal(h5m_blocks_init(&b, 2, dims, chunk, 8, 256 * KIB), 0);
	assert_int_equal(b.nblocks, 0);
	assert_int_equal(b.total, 0);
	assert_int_equal(b.len, 32);
}

static void test_growing_axis0_keeps_block_ids_of_existing_rows(void **state)
{
	uint64_t dims[2] = { 100, 1000 }, chunk[2] = { 8, 1000 }, grown[2] = { 5000, 1000 };
	uint64_t b1, w1, b2, w2;
	struct h5m_blocks b;

	(void)state;
	assert_int_equal(h5m_blocks_init(&b, 2, dims, chunk, 8, 256 * KIB), 0);
	h5m_blocks_locate(&b, 99 * 8000, &b1, &w1);
	assert_int_equal(h5m_blocks_resize(&b, grown), 0);
	h5m_blocks_locate(&b, 99 * 8000, &b2, &w2);
	assert_int_equal(b1, b2);
	assert_int_equal(w1, w2);
	assert_int_equal(b.nblocks, 157);
}

static void test_byte_size_overflow_is_refused(void **state)
{
	uint64_t dims[2] = { UINT64_MAX / 2, 1000 }, chunk[2] = { 1, 1000 };
	struct h5m_blocks b;

	(void)state;
	assert_int_equal(h5m_blocks_init(&b, 2, dims, chunk, 8, 256 * KIB), -EOVERFLOW);
	assert_int_equal(h5m_blocks_init(&b, 2, dims, chunk, 0, 256 * KIB), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_earray_blocks_are_whole_chunk_rows_near_target),
		cmocka_unit_test(test_chunk_rows_above_target_stay_whole),
		cmocka_unit_test(test_wide_rows_split_at_a_later_dim),
		cmocka_unit_test(test_blocks_tile_the_dataset_exactly),
		cmocka_unit_test(test_scalar_is_one_block_of_one_element),
		cmocka_unit_test(test_empty_dataset_has_no_blocks),
		cmocka_unit_test(test_growing_axis0_keeps_block_ids_of_existing_rows),
		cmocka_unit_test(test_byte_size_overflow_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
