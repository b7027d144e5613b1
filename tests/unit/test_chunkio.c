/* test_chunkio.c: the store's raw data path (chunkio.c) without a mount: block reads of every
 * layout compared byte for byte with what h5py and PyTables wrote, fill values for what was
 * never written, partial reads around a damaged chunk, pread of raw rows, chunk and block
 * writes read back by h5py and PyTables, extent limits. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "h5mount/blocks.h"
#include "h5mount/blosc.h"
#include "h5mount/chunkio.h"
#include "h5mount/store.h"
#include "h5fixture.h"
#include "tmptree.h"

static char dir[64];
static bool have_python; /* the fixtures were written (h5py and PyTables importable) */

/* c.h5 (h5py), each (100, 3) little-endian doubles, value row * 3 + col + 0.25 where written:
 * contig; chunked, gzip, shuf (shuffle + gzip), lzf: chunks (16, 3), max (200, 3), fill 7.5,
 * only rows 0-39 and 80-99 written (rows 48-79 are two chunks never written); never: fill time
 * never, fill 7.5, rows 0-15 written. bad.h5: z, gzip (16, 3) chunks, all written (the test
 * damages one). b.h5 (PyTables): blosc, lz4 + shuffle, like chunked but fill 0; rand, (256, 64)
 * random bytes in (64, 64) chunks that Blosc cannot shrink (stored raw, filter mask 1). w.h5 and
 * bw.h5 for the write tests. NAME.bin: the bytes of each read dataset as h5py/PyTables read it. */
static const char fixture_script[] =
	"import sys, numpy as np, h5py, tables\n"
	"d = sys.argv[1]\n"
	"a = np.arange(300, dtype=\"<f8\").reshape(100, 3) + 0.25\n"
	"def partial(f, name, **kw):\n"
	"    x = f.create_dataset(name, shape=(100, 3), maxshape=(200, 3), chunks=(16, 3), dtype=\"<f8\",\n"
	"                         fillvalue=7.5, **kw)\n"
	"    x[0:40] = a[0:40]\n"
	"    x[80:100] = a[80:100]\n"
	"    x[...].tofile(\"%s/%s.bin\" % (d, name))\n"
	"with h5py.File(d + \"/c.h5\", \"w\") as f:\n"
	"    f.create_dataset(\"contig\", data=a)\n"
	"    a.tofile(d + \"/contig.bin\")\n"
	"    partial(f, \"chunked\")\n"
	"    partial(f, \"gzip\", compression=\"gzip\")\n"
	"    partial(f, \"shuf\", compression=\"gzip\", shuffle=True)\n"
	"    partial(f, \"lzf\", compression=\"lzf\")\n"
	"    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)\n"
	"    dcpl.set_chunk((16, 3))\n"
	"    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)\n"
	"    dcpl.set_fill_value(np.array(7.5))\n"
	"    sp = h5py.h5s.create_simple((100, 3), (200, 3))\n"
	"    h5py.h5d.create(f.id, b\"never\", h5py.h5t.IEEE_F64LE, sp, dcpl=dcpl)\n"
	"    f[\"never\"][0:16] = a[0:16]\n"
	"    e = np.full((100, 3), 7.5)\n"
	"    e[0:16] = a[0:16]\n"
	"    e.tofile(d + \"/never.bin\")\n"
	"with h5py.File(d + \"/bad.h5\", \"w\") as f:\n"
	"    f.create_dataset(\"z\", data=a, chunks=(16, 3), compression=\"gzip\")\n"
	"with tables.open_file(d + \"/b.h5\", \"w\") as f:\n"
	"    c = f.create_carray(\"/\", \"blosc\", tables.Float64Atom(), shape=(100, 3), chunkshape=(16, 3),\n"
	"                        filters=tables.Filters(complevel=5, complib=\"blosc:lz4\", shuffle=True))\n"
	"    c[0:40] = a[0:40]\n"
	"    c[80:100] = a[80:100]\n"
	"    c[:].tofile(d + \"/blosc.bin\")\n"
	"    r = np.random.default_rng(7).integers(0, 256, size=(256, 64), dtype=\"u1\")\n"
	"    c = f.create_carray(\"/\", \"rand\", tables.UInt8Atom(), shape=(256, 64), chunkshape=(64, 64),\n"
	"                        filters=tables.Filters(complevel=5, complib=\"blosc:lz4\"))\n"
	"    c[:] = r\n"
	"    r.tofile(d + \"/rand.bin\")\n"
	"with h5py.File(d + \"/w.h5\", \"w\") as f:\n"
	"    x = f.create_dataset(\"wc\", shape=(96, 3), maxshape=(None, 3), chunks=(16, 3), dtype=\"<f8\", fillvalue=7.5)\n"
	"    x[0:16] = a[0:16]\n"
	"    f.create_dataset(\"lim\", data=a, maxshape=(200, 3), chunks=(16, 3))\n"
	"    f.create_dataset(\"contig\", data=a)\n"
	"with tables.open_file(d + \"/bw.h5\", \"w\") as f:\n"
	"    e = f.create_earray(\"/\", \"wb\", tables.Float64Atom(), shape=(0, 3), chunkshape=(16, 3),\n"
	"                        filters=tables.Filters(complevel=5, complib=\"blosc:lz4\", shuffle=True))\n"
	"    e.append(a[0:96])\n"
	"    c = f.create_carray(\"/\", \"wrand\", tables.UInt8Atom(), shape=(128, 64), chunkshape=(64, 64),\n"
	"                        filters=tables.Filters(complevel=5, complib=\"blosc:lz4\"))\n"
	"    c[:] = 0\n";

static int setup_group(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/h5m-chunkio-XXXXXX");
	if (!mkdtemp(dir) || h5m_store_global_init() != 0)
		return -1;
	have_python = h5fixture_python_file(dir, "fixtures", "h5py, tables, numpy", fixture_script);
	return 0;
}

static int teardown_group(void **state)
{
	(void)state;
	return tmptree_remove(dir);
}

static struct h5m_store *open_file(const char *name, bool rw)
{
	struct h5m_store *s;
	char path[128], err[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (h5m_store_open(path, rw, 4096, (size_t)16 << 20, 0, &s, err, sizeof(err)) != 0)
		fail_msg("%s: %s", path, err);
	return s;
}

static unsigned char *expected(const char *name, size_t *len)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s.bin", dir, name);
	return h5fixture_slurp(path, len);
}

/* The stored chunk of dataset `name` of `file` at row `row` (a rank-2 dataset): its file
 * address and stored size; returns its filter mask. Asks HDF5 directly, not the store. */
static unsigned chunk_info(const char *file, const char *name, hsize_t row, haddr_t *addr, hsize_t *size)
{
	hsize_t coord[2] = { row, 0 };
	unsigned mask = 0;
	char path[128];
	hid_t f, d;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, name, H5P_DEFAULT);
	assert_true(d >= 0);
	assert_true(H5Dget_chunk_info_by_coord(d, coord, &mask, addr, size) >= 0);
	H5Dclose(d);
	H5Fclose(f);
	return mask;
}

/* Reads every block of geometry b of ds into a buffer of stale bytes (0xAA) and compares it
 * with want (the dataset's bytes; rows past its end: the fill value `fill`). */
static void blocks_match(struct h5m_dataset *ds, const struct h5m_blocks *b, const unsigned char *want, size_t have,
                         double fill, const char *what)
{
	for (uint64_t k = 0; k < b->nblocks; k++) {
		uint64_t start, len;
		unsigned char *buf;

		h5m_blocks_extent(b, k, &start, &len);
		buf = malloc((size_t)len);
		assert_non_null(buf);
		memset(buf, 0xAA, (size_t)len);
		if (h5m_chunkio_read_block(ds, b, k, buf, (size_t)len, false) != 0)
			fail_msg("%s: block %llu failed", what, (unsigned long long)k);
		for (uint64_t i = 0; i < len; i += ds->dt.elem_size) {
			uint64_t at = start + i;

			if (at < have ? memcmp(buf + i, want + at, ds->dt.elem_size) != 0
			              : memcmp(buf + i, &fill, sizeof(fill)) != 0)
				fail_msg("%s: block %llu differs at byte %llu", what, (unsigned long long)k,
				         (unsigned long long)at);
		}
		free(buf);
	}
}

/* Reads dataset `name` of `file` through three geometries: whole-chunk blocks, 5-row blocks
 * that cut its chunks, and one-element blocks (split below the first dim). */
static void layout_reads_match(const char *file, const char *name)
{
	struct h5m_store *s = open_file(file, false);
	struct h5m_dataset *ds = h5fixture_node(s, name)->ds;
	uint64_t dims[2] = { 100, 3 };
	struct h5m_blocks b;
	unsigned char *want;
	size_t have;

	if (strcmp(name, "rand") == 0) {
		dims[0] = 256;
		dims[1] = 64;
	}
	want = expected(name, &have);
	assert_int_equal(have, dims[0] * dims[1] * ds->dt.elem_size);
	assert_int_equal(h5m_blocks_init(&b, 2, dims, ds->chunked ? ds->chunk : NULL, ds->dt.elem_size, 1024), 0);
	blocks_match(ds, &b, want, have, 0, name);
	assert_int_equal(h5m_blocks_init(&b, 2, dims, NULL, ds->dt.elem_size, 5 * dims[1] * ds->dt.elem_size), 0);
	assert_int_equal(b.level, 0);
	blocks_match(ds, &b, want, have, 0, name);
	assert_int_equal(h5m_blocks_init(&b, 2, dims, NULL, ds->dt.elem_size, dims[1] * ds->dt.elem_size / 2), 0);
	assert_int_equal(b.level, 1);
	blocks_match(ds, &b, want, have, 0, name);
	free(want);
	h5m_store_close(s);
}

static void test_block_reads_of_every_layout_match_what_h5py_wrote(void **state)
{
	static const char *const names[] = { "contig", "chunked", "gzip", "shuf", "lzf", "never" };

	(void)state;
	if (!have_python)
		skip();
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		layout_reads_match("c.h5", names[i]);
}

static void test_block_reads_of_blosc_chunks_match_what_pytables_wrote(void **state)
{
	struct h5m_store *s;
	hsize_t size;
	haddr_t addr;

	(void)state;
	if (!have_python)
		skip();
	/* Blosc could not shrink rand's chunks: PyTables stored them raw, filter mask 1. */
	assert_int_equal(chunk_info("b.h5", "rand", 64, &addr, &size), 1);
	assert_int_equal(size, 64 * 64);
	s = open_file("b.h5", false);
	assert_true(h5fixture_node(s, "blosc")->ds->direct); /* decoded outside the HDF5 lock */
	assert_true(h5fixture_node(s, "rand")->ds->blosc);
	h5m_store_close(s);
	layout_reads_match("b.h5", "blosc");
	layout_reads_match("b.h5", "rand");
}

static void test_rows_beyond_the_file_and_never_written_chunks_read_as_the_fill_value(void **state)
{
	uint64_t dims[2] = { 120, 3 };
	struct h5m_store *s;
	struct h5m_blocks b;
	unsigned char *want;
	size_t have;

	(void)state;
	if (!have_python)
		skip();
	s = open_file("c.h5", false);
	/* Rows 100-119: appended, not in the file yet; rows 40-79 in the file but never written. */
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "never" : "chunked";
		struct h5m_dataset *ds = h5fixture_node(s, name)->ds;

		want = expected(name, &have);
		for (size_t r = 40; r < 80 && i == 0; r++)
			for (size_t c = 0; c < 3; c++)
				assert_true(((double *)want)[r * 3 + c] == 7.5);
		assert_int_equal(h5m_blocks_init(&b, 2, dims, ds->chunk, 8, 1024), 0);
		blocks_match(ds, &b, want, have, 7.5, name);
		assert_int_equal(h5m_blocks_init(&b, 2, dims, NULL, 8, 7 * 24), 0);
		blocks_match(ds, &b, want, have, 7.5, name);
		free(want);
	}
	h5m_store_close(s);
}

/* Overwrites the stored bytes of the chunk of bad.h5's /z at row 32 with 0xFF. */
static void damage_chunk_at_row_32(void)
{
	hsize_t size = 0;
	haddr_t addr = HADDR_UNDEF;
	char path[128];
	unsigned char junk[4096];
	int fd;

	chunk_info("bad.h5", "z", 32, &addr, &size);
	snprintf(path, sizeof(path), "%s/bad.h5", dir);
	assert_true(addr != HADDR_UNDEF && size > 0 && size <= sizeof(junk));
	memset(junk, 0xFF, sizeof(junk));
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, (size_t)size, (off_t)addr), (ssize_t)size);
	close(fd);
}

static void test_a_damaged_chunk_fails_its_block_but_not_its_neighbours(void **state)
{
	uint64_t dims[2] = { 100, 3 }, start, len;
	unsigned char *want, buf[32 * 24];
	struct h5m_dataset *ds;
	struct h5m_store *s;
	struct h5m_blocks b;
	size_t have;

	(void)state;
	if (!have_python)
		skip();
	damage_chunk_at_row_32();
	want = expected("contig", &have); /* z holds the same values */
	s = open_file("bad.h5", false);
	ds = h5fixture_node(s, "z")->ds;
	assert_int_equal(h5m_blocks_init(&b, 2, dims, ds->chunk, 8, 768), 0);
	assert_int_equal(b.len, 32); /* blocks of two chunks: rows 32-47 (damaged) and 48-63 */
	h5m_blocks_extent(&b, 1, &start, &len);
	assert_int_equal(h5m_chunkio_read_block(ds, &b, 1, buf, sizeof(buf), false), -EIO);
	assert_int_equal(h5m_chunkio_read_block_part(ds, &b, 1, 0, 16, buf), -EIO);
	memset(buf, 0xAA, sizeof(buf));
	assert_int_equal(h5m_chunkio_read_block_part(ds, &b, 1, 16, 16, buf), 0);
	assert_memory_equal(buf, want + 48 * 24, 16 * 24);
	assert_int_equal(h5m_chunkio_read_block_part(ds, &b, 1, 16, 17, buf), -EIO); /* past the block */
	assert_int_equal(h5m_chunkio_read_block(ds, &b, 0, buf, sizeof(buf), false), 0);
	assert_memory_equal(buf, want, 32 * 24);
	assert_int_equal(h5m_chunkio_read_block(ds, &b, 2, buf, sizeof(buf), false), 0);
	assert_memory_equal(buf, want + 64 * 24, 32 * 24);
	free(want);
	h5m_store_close(s);
}

static void test_pread_rows_reads_any_range_with_unwritten_chunks_as_fill(void **state)
{
	static const uint64_t ranges[][2] = { { 0, 2400 }, { 100, 1000 }, { 1151, 500 }, { 2399, 1 }, { 1152, 768 } };
	unsigned char buf[2400], *want, *cwant;
	struct h5m_dataset *ds, *contig;
	struct h5m_store *s;
	size_t have;

	(void)state;
	if (!have_python)
		skip();
	s = open_file("c.h5", false);
	ds = h5fixture_node(s, "chunked")->ds;
	contig = h5fixture_node(s, "contig")->ds;
	assert_true(ds->raw_rows);
	assert_true(contig->contig_offset >= 0);
	want = expected("chunked", &have);
	cwant = expected("contig", &have);
	for (size_t i = 0; i < sizeof(ranges) / sizeof(*ranges); i++) {
		size_t len = (size_t)ranges[i][1];

		memset(buf, 0xAA, sizeof(buf));
		assert_int_equal(h5m_chunkio_pread_rows(s, ds, buf, len, ranges[i][0]), (ssize_t)len);
		assert_memory_equal(buf, want + ranges[i][0], len);
		memset(buf, 0xAA, sizeof(buf));
		assert_int_equal(h5m_chunkio_pread(s, contig, buf, len, ranges[i][0]), (ssize_t)len);
		assert_memory_equal(buf, cwant + ranges[i][0], len);
	}
	free(want);
	free(cwant);
	h5m_store_close(s);
}

/* Value the write tests put at row r, column c: the negated original. */
static double written(uint64_t r, unsigned c)
{
	return -((double)(r * 3 + c) + 0.25);
}

static const char verify_script[] =
	"import sys, numpy as np, h5py, tables\n"
	"d = sys.argv[1]\n"
	"a = np.arange(300, dtype='<f8').reshape(100, 3) + 0.25\n"
	"with h5py.File(d + '/w.h5', 'r') as f:\n"
	"    w = f['wc'][...]\n"
	"    e = np.full((96, 3), 7.5)\n"
	"    e[0:16] = -a[0:16]\n"
	"    e[48:64] = -a[48:64]\n"
	"    assert (w == e).all(), w\n"
	"    assert f['lim'].shape == (150, 3), f['lim'].shape\n"
	"    assert (f['lim'][0:100] == a).all()\n"
	"with tables.open_file(d + '/bw.h5') as f:\n"
	"    w = f.root.wb[:]\n"
	"    e = a[0:96].copy()\n"
	"    e[32:48] = -a[32:48]\n"
	"    e[64:80] = -a[64:80]\n"
	"    assert (w == e).all(), w\n"
	"    r = f.root.wrand[:]\n"
	"    assert (r[0:64] == 0).all()\n"
	"    assert r[64:128].tobytes() == open(d + '/wrand.bin', 'rb').read()\n";

static void rows_written(double *buf, uint64_t r0, uint64_t n)
{
	for (uint64_t r = 0; r < n; r++)
		for (unsigned c = 0; c < 3; c++)
			buf[r * 3 + c] = written(r0 + r, c);
}

/* Puts 4 KiB of random bytes, which Blosc cannot shrink, as the chunk at row 64 of bw.h5's
 * wrand (Blosc + lz4), reads them back, and leaves them in wrand.bin for the verifying script. */
static void random_chunk_stored_raw(struct h5m_store *bs)
{
	struct h5m_dataset *ds = h5fixture_node(bs, "wrand")->ds;
	unsigned char chunk[64 * 64], back[64 * 64];
	uint64_t x = 0x9E3779B97F4A7C15u, dims[2] = { 128, 64 };
	struct h5m_blocks b;
	char path[128];
	FILE *f;

	for (size_t i = 0; i < sizeof(chunk); i++) {
		x = x * 6364136223846793005u + 1442695040888963407u;
		chunk[i] = (unsigned char)(x >> 56);
	}
	assert_int_equal(h5m_chunkio_put_chunk(bs, ds, 64, chunk), 0);
	assert_int_equal(h5m_blocks_init(&b, 2, dims, ds->chunk, 1, sizeof(chunk)), 0);
	assert_int_equal(h5m_chunkio_read_block(ds, &b, 1, back, sizeof(back), false), 0);
	assert_memory_equal(back, chunk, sizeof(chunk));
	snprintf(path, sizeof(path), "%s/wrand.bin", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(chunk, 1, sizeof(chunk), f), sizeof(chunk));
	assert_int_equal(fclose(f), 0);
}

static void test_chunk_and_block_writes_commit_and_read_back_in_h5py_and_pytables(void **state)
{
	uint64_t dims[2] = { 96, 3 };
	double rows[32 * 3], back[32 * 3];
	struct h5m_dataset *wc, *wb;
	struct h5m_store *s, *bs;
	struct h5m_blocks b;
	hsize_t size;
	haddr_t addr;

	(void)state;
	if (!have_python)
		skip();
	s = open_file("w.h5", true);
	bs = open_file("bw.h5", true);
	wc = h5fixture_node(s, "wc")->ds;
	wb = h5fixture_node(bs, "wb")->ds;
	assert_int_equal(h5m_blocks_init(&b, 2, dims, wc->chunk, 8, 384), 0);
	assert_true(h5m_chunkio_chunk_rows(wc, &b));
	assert_true(h5m_chunkio_chunk_rows(wb, &b));
	/* A whole chunk never written (rows 48-63), and a block through HDF5 (rows 0-15). */
	rows_written(rows, 48, 16);
	assert_int_equal(h5m_chunkio_put_chunk(s, wc, 48, rows), 0);
	rows_written(rows, 0, 16);
	assert_int_equal(h5m_chunkio_write_block(s, wc, &b, 0, rows), 0);
	/* Blosc: a chunk encoded here (rows 32-47) and a block through HDF5's filter (rows 64-79). */
	rows_written(rows, 32, 16);
	assert_int_equal(h5m_chunkio_put_chunk(bs, wb, 32, rows), 0);
	rows_written(rows, 64, 16);
	assert_int_equal(h5m_chunkio_write_block(bs, wb, &b, 4, rows), 0);
	random_chunk_stored_raw(bs);
	assert_int_equal(h5m_chunkio_put_chunk(s, wc, 40, rows), -EIO); /* not a chunk's first row */
	assert_int_equal(h5m_chunkio_put_chunk(s, wc, 96, rows), -EIO); /* beyond the extent */
	assert_int_equal(h5m_store_commit(s, false), 0);
	assert_int_equal(h5m_store_commit(bs, true), 0);
	assert_int_equal(h5m_chunkio_read_block(wc, &b, 3, back, sizeof(back), false), 0);
	rows_written(rows, 48, 16);
	assert_memory_equal(back, rows, 16 * 24);
	assert_int_equal(h5m_chunkio_read_block(wb, &b, 2, back, 16 * 24, false), 0);
	rows_written(rows, 32, 16);
	assert_memory_equal(back, rows, 16 * 24);
	/* The extent: within maxdims, then beyond them. */
	dims[0] = 201;
	assert_int_equal(h5m_chunkio_set_extent(s, h5fixture_node(s, "lim")->ds, dims), -EFBIG);
	dims[0] = 150;
	assert_int_equal(h5m_chunkio_set_extent(s, h5fixture_node(s, "lim")->ds, dims), 0);
	assert_int_equal(h5m_store_commit(s, false), 0);
	h5m_store_close(s);
	h5m_store_close(bs);
	/* Blosc had room for its overhead: a frame of the bytes as they were, not a raw chunk. */
	assert_int_equal(chunk_info("bw.h5", "wrand", 64, &addr, &size), 0);
	assert_true(size > 64 * 64 && size <= 64 * 64 + H5M_BLOSC_OVERHEAD);
	assert_int_equal(h5fixture_python_file(dir, "verify", "h5py, tables, numpy", verify_script), 1);
}

static void test_set_extent_refuses_contiguous_layouts_and_read_only_stores(void **state)
{
	uint64_t dims[2] = { 50, 3 };
	struct h5m_store *s;

	(void)state;
	if (!have_python)
		skip();
	s = open_file("w.h5", true);
	assert_int_equal(h5m_chunkio_set_extent(s, h5fixture_node(s, "contig")->ds, dims), -EINVAL);
	dims[0] = 101;
	assert_int_equal(h5m_chunkio_set_extent(s, h5fixture_node(s, "contig")->ds, dims), -EFBIG);
	dims[0] = 100;
	assert_int_equal(h5m_chunkio_set_extent(s, h5fixture_node(s, "contig")->ds, dims), 0); /* unchanged */
	h5m_store_close(s);
	s = open_file("c.h5", false);
	dims[0] = 120;
	assert_int_equal(h5m_chunkio_set_extent(s, h5fixture_node(s, "chunked")->ds, dims), -EROFS);
	h5m_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_block_reads_of_every_layout_match_what_h5py_wrote),
		cmocka_unit_test(test_block_reads_of_blosc_chunks_match_what_pytables_wrote),
		cmocka_unit_test(test_rows_beyond_the_file_and_never_written_chunks_read_as_the_fill_value),
		cmocka_unit_test(test_a_damaged_chunk_fails_its_block_but_not_its_neighbours),
		cmocka_unit_test(test_pread_rows_reads_any_range_with_unwritten_chunks_as_fill),
		cmocka_unit_test(test_chunk_and_block_writes_commit_and_read_back_in_h5py_and_pytables),
		cmocka_unit_test(test_set_extent_refuses_contiguous_layouts_and_read_only_stores),
	};

	return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
