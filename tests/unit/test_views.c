/* test_views.c: the write state machine of the views over a real HDF5 file (no mount): held
 * partial rows, gap fill, overwrites, truncates, .npy headers, shape text, write-back. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmptree.h"
#include "h5mount/chunkio.h"
#include "h5mount/npy.h"
#include "h5mount/store.h"
#include "h5mount/vdataset.h"
#include "h5mount/views.h"

#define COLS 4
#define ROW (COLS * sizeof(double))

struct fixture {
	char dir[64], path[128];
	struct h5m_store *store;
	struct h5m_views *views;
	struct h5m_node *ear;    /* chunked, unlimited rows, fill -1 */
	struct h5m_node *fixed;  /* contiguous 3 x 4 */
};

/* Writes chunked dataset `name` of doubles into f: dims, maxdims and chunk of rank 2, fill
 * value -1, the first dims[0] * dims[1] values of data; gzip-compressed when `deflate`. */
static void write_chunked(hid_t f, const char *name, const hsize_t *dims, const hsize_t *maxdims,
                          const hsize_t *chunk, const double *data, bool deflate)
{
	double fill = -1;
	hid_t sp = H5Screate_simple(2, dims, maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE), d;

	H5Pset_chunk(dcpl, 2, chunk);
	if (deflate)
		H5Pset_deflate(dcpl, 1);
	H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &fill);
	d = H5Dcreate2(f, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
	H5Dclose(d);
	H5Sclose(sp);
	H5Pclose(dcpl);
}

/* Writes a file with /ear: 10 rows of 4 doubles (value = row * 10 + col), chunks of 3 rows,
 * unlimited rows, fill value -1; /fixed: contiguous 3 x 4; /wide: the first 6 rows of
 * /ear, up to 8 columns, chunks of 3 x 2, fill value -1; /widez: /wide with gzip (read through
 * HDF5's filter pipeline, not direct chunk reads). */
static void make_file(const char *path)
{
	hsize_t dims[2] = { 10, COLS }, maxdims[2] = { H5S_UNLIMITED, COLS }, chunk[2] = { 3, COLS };
	hsize_t wdims[2] = { 6, COLS }, wmax[2] = { H5S_UNLIMITED, 2 * COLS }, wchunk[2] = { 3, 2 };
	hsize_t fdims[2] = { 3, COLS };
	double data[10 * COLS];
	hid_t f, sp, d;

	for (int i = 0; i < 10 * COLS; i++)
		data[i] = (i / COLS) * 10 + i % COLS;
	f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	write_chunked(f, "ear", dims, maxdims, chunk, data, false);
	write_chunked(f, "wide", wdims, wmax, wchunk, data, false);
	write_chunked(f, "widez", wdims, wmax, wchunk, data, true);
	sp = H5Screate_simple(2, fdims, NULL);
	d = H5Dcreate2(f, "fixed", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
	H5Dclose(d);
	H5Sclose(sp);
	H5Fclose(f);
}

static struct h5m_node *find(struct h5m_store *s, const char *name)
{
	const struct h5m_dirent *d;
	int err;

	d = h5m_store_lookup(s, h5m_store_node(s, 0), name, &err);
	assert_non_null(d);
	return h5m_store_node(s, d->node);
}

static void open_views(struct fixture *fx)
{
	char err[256];

	assert_int_equal(h5m_store_open(fx->path, true, 4096, (size_t)64 << 20, 0, &fx->store, err, sizeof(err)), 0);
	fx->views = h5m_views_new(fx->store, 1 << 20, 1 << 20);
	assert_non_null(fx->views);
	fx->ear = find(fx->store, "ear");
	fx->fixed = find(fx->store, "fixed");
}

static void close_views(struct fixture *fx)
{
	h5m_views_free(fx->views);
	h5m_store_close(fx->store);
	fx->views = NULL;
	fx->store = NULL;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	strcpy(fx->dir, "/tmp/h5m-views-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof(fx->path), "%s/t.h5", fx->dir);
	make_file(fx->path);
	open_views(fx);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	close_views(fx);
	assert_int_equal(tmptree_remove(fx->dir), 0);
	free(fx);
	return 0;
}

static uint64_t size_of(struct fixture *fx, struct h5m_node *n, enum h5m_view v)
{
	uint64_t size = 0;

	assert_int_equal(h5m_view_size(fx->views, n, v, &size), 0);
	return size;
}

static void shape_is(struct fixture *fx, struct h5m_node *n, const char *want)
{
	char text[64] = "";
	ssize_t got = h5m_view_read(fx->views, n, H5M_VIEW_SHAPE, text, sizeof(text) - 1, 0);

	assert_true(got > 0);
	text[got] = 0;
	assert_string_equal(text, want);
}

static double cell(struct fixture *fx, uint64_t row, unsigned col)
{
	double d = 0;

	assert_int_equal(h5m_view_read(fx->views, fx->ear, H5M_VIEW_OBJ, &d, sizeof(d), row * ROW + col * 8), 8);
	return d;
}

static ssize_t put(struct fixture *fx, struct h5m_node *n, struct h5m_view_handle *h, const void *buf, size_t len,
                   uint64_t off)
{
	struct h5m_change chg;

	return h5m_view_write(fx->views, n, h, buf, len, off, &chg);
}

/* Reads /ear straight through HDF5 after the views are closed. */
static void file_rows(struct fixture *fx, hsize_t *rows, double *out, size_t cap)
{
	hid_t f = H5Fopen(fx->path, H5F_ACC_RDONLY, H5P_DEFAULT), d, sp;
	hsize_t dims[2];

	assert_true(f >= 0);
	d = H5Dopen2(f, "ear", H5P_DEFAULT);
	sp = H5Dget_space(d);
	H5Sget_simple_extent_dims(sp, dims, NULL);
	*rows = dims[0];
	assert_true(dims[0] * COLS <= cap);
	assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0);
	H5Sclose(sp);
	H5Dclose(d);
	H5Fclose(f);
}

static void test_partial_row_is_held_and_shows_in_size_only(void **state)
{
	struct fixture *fx = *state;
	struct h5m_view_handle h = { .view = H5M_VIEW_OBJ, .write = true };
	double half[2] = { 100, 101 };

	assert_int_equal(put(fx, fx->ear, &h, half, sizeof(half), 10 * ROW), sizeof(half));
	assert_int_equal(size_of(fx, fx->ear, H5M_VIEW_OBJ), 10 * ROW + 16);
	shape_is(fx, fx->ear, "10 4\n");
	assert_true(cell(fx, 10, 1) == 101);
	/* The rest of the row completes it. */
	assert_int_equal(put(fx, fx->ear, &h, half, sizeof(half), 10 * ROW + 16), sizeof(half));
	shape_is(fx, fx->ear, "11 4\n");
	assert_true(cell(fx, 10, 3) == 101);
	assert_true(cell(fx, 9, 3) == 93);
	h5m_view_handle_destroy(&h);
}

static void test_release_completes_a_held_row_with_the_fill_value_and_close_does_not(void **state)
{
	struct fixture *fx = *state;
	struct h5m_view_handle h = { .view = H5M_VIEW_OBJ, .write = true };
	struct h5m_change chg;
	double one = 5, rows[12 * COLS];
	hsize_t n;

	assert_int_equal(put(fx, fx->ear, &h, &one, 8, 10 * ROW), 8);
	/* A close of one descriptor (FLUSH) leaves the row held: the writer may go on. */
	assert_int_equal(h5m_view_close(fx->views, fx->ear, &h, &chg), 0);
	assert_false(chg.size);
	shape_is(fx, fx->ear, "10 4\n");
	assert_int_equal(size_of(fx, fx->ear, H5M_VIEW_OBJ), 10 * ROW + 8);
	assert_int_equal(h5m_view_release(fx->views, fx->ear, &h, &chg), 0);
	assert_true(chg.size && chg.moved && chg.data_off == 10 * ROW && chg.data_len == ROW);
	shape_is(fx, fx->ear, "11 4\n");
	assert_true(cell(fx, 10, 0) == 5);
	assert_true(cell(fx, 10, 1) == -1);
	assert_int_equal(h5m_views_flush(fx->views, true, true), 0);
	close_views(fx);
	file_rows(fx, &n, rows, sizeof(rows) / sizeof(*rows));
	assert_int_equal(n, 11);
	assert_true(rows[10 * COLS] == 5);
	assert_true(rows[10 * COLS + 3] == -1);
	assert_true(rows[9 * COLS + 2] == 92);
	open_views(fx);
}

/* `printf abc >> x; printf def >> x`: RELEASE comes after close(2) returns, so the second file
 * may write before the first one's RELEASE. The row the closed file left ends before the other
 * file's bytes, and its late release pads nothing more; a file still open when another one
 * writes (no close between) is continued, and the last writer's release completes the row. */
static void test_a_closed_files_row_ends_before_another_files_write(void **state)
{
	struct fixture *fx = *state;
	struct h5m_view_handle h1 = { .view = H5M_VIEW_OBJ, .write = true, .append = true };
	struct h5m_view_handle h2 = h1, h3 = h1;
	struct h5m_change chg;
	double five = 5, seven = 7, nine = 9;

	assert_int_equal(put(fx, fx->ear, &h1, &five, 8, 0), 8);
	assert_int_equal(h5m_view_close(fx->views, fx->ear, &h1, &chg), 0);
	assert_int_equal(h5m_view_write(fx->views, fx->ear, &h2, &seven, 8, 0, &chg), 8);
	assert_true(chg.size && chg.moved && chg.data_off == 10 * ROW && chg.data_len == ROW + 8);
	shape_is(fx, fx->ear, "11 4\n");
	assert_int_equal(size_of(fx, fx->ear, H5M_VIEW_OBJ), 11 * ROW + 8);
	assert_int_equal(h5m_view_release(fx->views, fx->ear, &h1, &chg), 0);
	assert_false(chg.size);
	shape_is(fx, fx->ear, "11 4\n");
	/* h2 is not closed: h3's bytes continue its row. */
	assert_int_equal(put(fx, fx->ear, &h3, &nine, 8, 0), 8);
	assert_int_equal(h5m_view_release(fx->views, fx->ear, &h2, &chg), 0);
	assert_false(chg.size);
	assert_int_equal(h5m_view_release(fx->views, fx->ear, &h3, &chg), 0);
	assert_true(chg.size && chg.data_off == 11 * ROW && chg.data_len == ROW);
	shape_is(fx, fx->ear, "12 4\n");
	assert_true(cell(fx, 10, 0) == 5);
	assert_true(cell(fx, 10, 1) == -1);
	assert_true(cell(fx, 11, 0) == 7);
	assert_true(cell(fx, 11, 1) == 9);
	assert_true(cell(fx, 11, 2) == -1);
}

static void test_write_past_the_end_fills_the_gap(void **state)
{
	struct fixture *fx = *state;
	struct h5m_view_handle h = { .view = H5M_VIEW_OBJ, .write = true };
	double row[COLS] = { 1, 2, 3, 4 };

	assert_int_equal(put(fx, fx->ear, &h, row, ROW, 13 * ROW), ROW);
	shape_is(fx, fx->ear, "14 4\n");
	assert_true(cell(fx, 10, 0) == -1);
	assert_true(cell(fx, 12, 3) == -1);
	assert_true(cell(fx, 13, 3) == 4);
}

static void test_overwrite_inside_the_extent_is_read_modify_write(void **state)
{
	struct fixture *fx = *state;
	struct h5m_view_handle h = { .view = H5M_VIEW_OBJ, .write = true };
	double v[3] = { 7, 8, 9 }, rows[10 * COLS];
	hsize_t n;

	/* Unaligned: the last cell of row 2 and the first two of row 3. */
	assert_int_equal(put(fx, fx->ear, &h, v, sizeof(v), 2 * ROW + 24), sizeof(v));
	assert_true(cell(fx, 2, 2) == 22);
	assert_true(cell(fx, 2, 3) == 7);
	assert_true(cell(fx, 3, 1) == 9);
	assert_true(cell(fx, 3, 2) == 32);
	assert_int_equal(h5m_views_flush(fx->views, false, false), 0);
	close_views(fx);
	file_rows(fx, &n, rows, sizeof(rows) / sizeof(*rows));
	assert_int_equal(n, 10);
	assert_true(rows[2 * COLS + 3] == 7);
	assert_true(rows[3 * COLS + 0] == 8);
	assert_true(rows[3 * COLS + 2] == 32);
	open_views(fx);
}

static void test_truncate_needs_whole_rows_and_regrowth_shows_fill(void **state)
{
	struct fixture *fx = *state;
	struct h5m_change chg;

	assert_int_equal(h5m_view_truncate(fx->views, fx->ear, H5M_VIEW_OBJ, 5 * ROW + 1, &chg), -EINVAL);
	assert_int_equal(h5m_view_truncate(fx->views, fx->ear, H5M_VIEW_OBJ, 4 * ROW, &chg), 0);
	shape_is(fx, fx->ear, "4 4\n");
	assert_int_equal(h5m_view_truncate(fx->views, fx->ear, H5M_VIEW_OBJ, 10 * ROW, &chg), 0);
	shape_is(fx, fx->ear, "10 4\n");
	assert_true(cell(fx, 3, 3) == 33);
	assert_true(cell(fx, 4, 0) == -1);   /* never the old 40 */
	assert_true(cell(fx, 9, 3) == -1);
	/* .npy sizes: 0 or the header length means no rows; inside the header is refused. */
	assert_int_equal(h5m_view_truncate(fx->views, fx->ear, H5M_VIEW_NPY, fx->ear->ds->npy_header_len - 1, &chg), -EINVAL);
	assert_int_equal(h5m_view_truncate(fx->views, fx->ear, H5M_VIEW_NPY, fx->ear->ds->npy_header_len + 2 * ROW, &chg), 0);
	shape_is(fx, fx->ear, "2 4\n");
	assert_int_equal(h5m_view_truncate(fx->views, fx->ear, H5M_VIEW_NPY, 0, &chg), 0);
	shape_is(fx, fx->ear, "0 4\n");
}

static void test_fixed_datasets_cannot_grow(void **state)
{
	struct fixture *fx = *state;
	struct h5m_view_handle h = { .view = H5M_VIEW_OBJ, .write = true };
	struct h5m_change chg;
	double v = 3;

	assert_int_equal(put(fx, fx->fixed, &h, &v, 8, 3 * ROW), -EFBIG);
	assert_int_equal(put(fx, fx->fixed, &h, &v, 8, 2 * ROW), 8);
	assert_int_equal(h5m_view_truncate(fx->views, fx->fixed, H5M_VIEW_OBJ, 4 * ROW, &chg), -EFBIG);
	assert_int_equal(h5m_view_truncate(fx->views, fx->fixed, H5M_VIEW_OBJ, 2 * ROW, &chg), -EINVAL);
	assert_int_equal(size_of(fx, fx->fixed, H5M_VIEW_OBJ), 3 * ROW);
}

static void npy_header(const char *descr, uint64_t rows, uint64_t cols, char *buf, size_t *len)
{
	uint64_t shape[2] = { rows, cols };
	int version;

	assert_int_equal(h5m_npy_header_size(descr, 2, len, &version), 0);
	assert_int_equal(h5m_npy_header_write(descr, 2, shape, buf, *len), 0);
}

static void test_npy_header_must_match_dtype_and_trailing_dims(void **state)
{
	struct fixture *fx = *state;
	struct h5m_view_handle h = { .view = H5M_VIEW_NPY, .write = true };
	char hdr[256];
	size_t len;
	double row[COLS] = { 1, 1, 1, 1 };

	npy_header("'<f4'", 3, COLS, hdr, &len);
	assert_int_equal(put(fx, fx->ear, &h, hdr, len, 0), -EINVAL);
	npy_header("'<f8'", 3, COLS + 1, hdr, &len);
	assert_int_equal(put(fx, fx->ear, &h, hdr, len, 0), -EINVAL);
	shape_is(fx, fx->ear, "10 4\n");
	/* A matching header with any leading dim is accepted; then data follows it. */
	npy_header("'<f8'", 999, COLS, hdr, &len);
	assert_int_equal(put(fx, fx->ear, &h, hdr, len, 0), (ssize_t)len);
	assert_int_equal(put(fx, fx->ear, &h, row, ROW, len + 10 * ROW), ROW);
	shape_is(fx, fx->ear, "11 4\n");
	h5m_view_handle_destroy(&h);
}

static void test_npy_truncating_open_waits_for_a_valid_header(void **state)
{
	struct fixture *fx = *state;
	struct h5m_view_handle h = { .view = H5M_VIEW_NPY, .write = true };
	struct h5m_change chg;
	char hdr[256];
	size_t len;
	double rows[2 * COLS] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	assert_int_equal(h5m_view_open_truncate(fx->views, fx->ear, &h, &chg), 0);
	npy_header("'>f8'", 2, COLS, hdr, &len);
	assert_int_equal(put(fx, fx->ear, &h, hdr, len, 0), -EINVAL);
	shape_is(fx, fx->ear, "10 4\n");        /* a rejected header changed nothing */
	assert_int_equal(h5m_view_close(fx->views, fx->ear, &h, &chg), 0);
	shape_is(fx, fx->ear, "10 4\n");

	memset(&h, 0, sizeof(h));
	h.view = H5M_VIEW_NPY;
	h.write = true;
	assert_int_equal(h5m_view_open_truncate(fx->views, fx->ear, &h, &chg), 0);
	npy_header("'<f8'", 2, COLS, hdr, &len);
	memcpy(hdr + len, rows, sizeof(rows));  /* header and data in one write, like cp */
	assert_int_equal(put(fx, fx->ear, &h, hdr, len + sizeof(rows), 0), (ssize_t)(len + sizeof(rows)));
	assert_int_equal(h5m_view_close(fx->views, fx->ear, &h, &chg), 0);
	shape_is(fx, fx->ear, "2 4\n");
	assert_true(cell(fx, 1, 3) == 8);
}

static void test_shape_text_resizes_or_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct h5m_view_handle h = { .view = H5M_VIEW_SHAPE, .write = true };

	assert_int_equal(put(fx, fx->ear, &h, "12 4\n", 5, 0), 5);
	shape_is(fx, fx->ear, "12 4\n");
	assert_true(cell(fx, 11, 0) == -1);
	assert_int_equal(put(fx, fx->ear, &h, "12 5\n", 5, 0), -EINVAL);   /* beyond maxdims */
	assert_int_equal(put(fx, fx->ear, &h, "12\n", 3, 0), -EINVAL);     /* other rank */
	assert_int_equal(put(fx, fx->ear, &h, "1x 4\n", 5, 0), -EINVAL);
	shape_is(fx, fx->ear, "12 4\n");
	assert_int_equal(put(fx, fx->fixed, &h, "4 4\n", 4, 0), -EFBIG);   /* cannot grow */
	assert_int_equal(put(fx, fx->fixed, &h, "3 5\n", 4, 0), -EINVAL);  /* beyond maxdims */
	h5m_view_handle_destroy(&h);
}

static void test_appends_survive_write_back_and_reopen(void **state)
{
	struct fixture *fx = *state;
	struct h5m_view_handle h = { .view = H5M_VIEW_OBJ, .write = true, .append = true };
	double block[50 * COLS], rows[60 * COLS];
	hsize_t n;

	for (int i = 0; i < 50 * COLS; i++)
		block[i] = 1000 + i;
	/* O_APPEND: the offset given is ignored. */
	assert_int_equal(put(fx, fx->ear, &h, block, sizeof(block), 0), sizeof(block));
	shape_is(fx, fx->ear, "60 4\n");
	assert_true(h5m_views_dirty_bytes(fx->views) > 0);
	assert_int_equal(h5m_views_flush(fx->views, true, true), 0);
	assert_int_equal(h5m_views_dirty_bytes(fx->views), 0);
	close_views(fx);
	file_rows(fx, &n, rows, sizeof(rows) / sizeof(*rows));
	assert_int_equal(n, 60);
	assert_true(rows[0] == 0);
	assert_true(rows[10 * COLS] == 1000);
	assert_true(rows[60 * COLS - 1] == 1000 + 50 * COLS - 1);
	open_views(fx);
	shape_is(fx, fx->ear, "60 4\n");
}

/* A reader whose geometry predates rows that are in the file (appended and written back since)
 * loads the whole block: the rows the file has beyond its view are read, never filled. */
static void test_a_block_read_with_an_older_geometry_has_the_rows_the_file_has(void **state)
{
	struct fixture *fx = *state;
	struct h5m_dataset *ds = fx->ear->ds;
	struct h5m_blocks stale = ds->blocks; /* the store's geometry at open */
	uint64_t dims[2] = { 7, COLS }, start, len;
	size_t nominal = (size_t)(stale.len * stale.inner * stale.elem);
	double *buf;

	assert_int_equal(h5m_blocks_resize(&stale, dims), 0);
	h5m_blocks_extent(&stale, 0, &start, &len);
	assert_int_equal(len, 7 * ROW);              /* the old view: 7 rows */
	assert_true(nominal >= 12 * ROW);            /* the block holds more than the file's 10 */
	buf = malloc(nominal);
	assert_non_null(buf);
	assert_int_equal(h5m_chunkio_read_block(ds, &stale, 0, buf, nominal, false), 0);
	for (unsigned r = 0; r < 12; r++)
		for (unsigned c = 0; c < COLS; c++)
			assert_true(buf[r * COLS + c] == (r < 10 ? r * 10.0 + c : -1.0));
	/* A buffer of the old extent only gets the old extent. */
	memset(buf, 0, nominal);
	assert_int_equal(h5m_chunkio_read_block(ds, &stale, 0, buf, (size_t)len, false), 0);
	assert_true(buf[6 * COLS] == 60.0);
	assert_true(buf[7 * COLS] == 0.0);
	free(buf);
}

struct reshaper {
	struct fixture *fx;
	struct h5m_node *n;
	int rounds, failed;
	int progress; /* rounds done (atomic) */
	bool done; /* atomic */
};

static void *reshape_back_and_forth(void *arg)
{
	struct reshaper *r = arg;
	struct h5m_view_handle h = { .view = H5M_VIEW_SHAPE, .write = true };

	for (int i = 0; i < r->rounds && !r->failed; i++) {
		if (put(r->fx, r->n, &h, "6 8\n", 4, 0) != 4 || put(r->fx, r->n, &h, "6 4\n", 4, 0) != 4)
			r->failed = 1;
		__atomic_add_fetch(&r->progress, 1, __ATOMIC_RELEASE);
	}
	h5m_view_handle_destroy(&h);
	__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Whether `bytes` read at element `first` of /wide are (part of) one of its two layouts: 6 x 4
 * of row * 10 + col, or 6 x 8 with fill values (-1) in the added columns. A read racing with a
 * reshape may be cut at the other layout's size. */
static bool is_layout(const double *got, unsigned first, ssize_t bytes, unsigned cols)
{
	if (bytes < 8 || bytes % 8 != 0 || first * 8 + bytes > 6 * (ssize_t)cols * 8)
		return false;
	for (unsigned i = first; i < first + bytes / 8; i++)
		if (got[i - first] != (i % cols < 4 ? (double)(i / cols * 10 + i % cols) : -1.0))
			return false;
	return true;
}

static bool wide_layout(const double *got, unsigned first, ssize_t bytes)
{
	return is_layout(got, first, bytes, 4) || is_layout(got, first, bytes, 8);
}

/* Reads racing with reshapes of the trailing dim each see one layout, never a mix (a .npy read
 * gets the header of the layout it reads, and all of it), and the cache is never left with a
 * block of the other: the last read matches a fresh mount's. */
static void reads_race_reshapes(struct fixture *fx, const char *name)
{
	struct reshaper r = { fx, find(fx->store, name), 1000, 0, 0, false };
	size_t hl = r.n->ds->npy_header_len;
	char npy[4096];
	struct h5m_npy_header hdr;
	double got[6 * 8];
	pthread_t t;
	int bad = 0, reads = 0;
	ssize_t n;

	assert_non_null(r.n);
	assert_int_equal(h5m_views_start(fx->views, 1), 0); /* with read-ahead */
	assert_int_equal(pthread_create(&t, NULL, reshape_back_and_forth, &r), 0);
	while (!__atomic_load_n(&r.done, __ATOMIC_ACQUIRE)) {
		/* From the second element on: parts of the block, which go through the cache, in
		 * reads that follow each other (read-ahead starts) and one that ends at the end. */
		for (unsigned first = 1; first < 6 * 8; first += 5) {
			n = h5m_view_read(fx->views, r.n, H5M_VIEW_OBJ, got, first < 36 ? 40 : sizeof(got), first * 8);
			bad += n != 0 && !wide_layout(got, first, n); /* 0: past the end of 6 x 4 */
			reads++;
		}
		/* The .npy view from its start: the header and all the rows of its shape. */
		n = h5m_view_read(fx->views, r.n, H5M_VIEW_NPY, npy, hl + sizeof(got), 0);
		bad += n <= (ssize_t)hl || h5m_npy_header_parse(npy, hl, &hdr) != 0 || hdr.rank != 2 || hdr.shape[0] != 6 ||
		       (hdr.shape[1] != 4 && hdr.shape[1] != 8) || n != (ssize_t)(hl + 6 * hdr.shape[1] * 8) ||
		       (memcpy(got, npy + hl, (size_t)n - hl), !is_layout(got, 0, n - (ssize_t)hl, (unsigned)hdr.shape[1]));
	}
	pthread_join(t, NULL);
	assert_true(reads > 0);
	assert_int_equal(r.failed, 0);
	assert_int_equal(bad, 0);
	n = h5m_view_read(fx->views, r.n, H5M_VIEW_OBJ, got, sizeof(got) - 8, 8);
	assert_int_equal(n, 6 * 4 * 8 - 8);
	assert_true(wide_layout(got, 1, n));
	close_views(fx);
	open_views(fx);
	r.n = find(fx->store, name);
	n = h5m_view_read(fx->views, r.n, H5M_VIEW_OBJ, got, sizeof(got), 0);
	assert_true(n == 6 * 4 * 8 && wide_layout(got, 0, n));
}

static void test_reads_during_reshapes_see_one_layout_and_leave_no_stale_block(void **state)
{
	reads_race_reshapes(*state, "wide");
}

/* The same through HDF5's filter pipeline, where a read of the old layout against the new
 * extent fails rather than reading fill values: no read may fail. */
static void test_reads_of_a_gzip_dataset_during_reshapes_never_fail(void **state)
{
	reads_race_reshapes(*state, "widez");
}

/* A resize of one dataset never makes the reads of another start over or load again: while
 * /wide is reshaped back and forth, a read of /ear after each round finds the block the first
 * one loaded (the cache dates no blocks, so no resize can refuse another dataset's load). */
static void test_resizes_of_one_dataset_never_reload_another(void **state)
{
	struct fixture *fx = *state;
	struct reshaper r = { fx, find(fx->store, "wide"), 100, 0, 0, false };
	int seen = -1, reads = 0;
	uint64_t before;
	pthread_t t;
	double got;

	before = h5m_views_blocks_loaded(fx->views);
	assert_int_equal(pthread_create(&t, NULL, reshape_back_and_forth, &r), 0);
	/* One read per round (fewer than it takes to deliver the whole block, after which a
	 * clean block is forgotten by design). */
	while (!__atomic_load_n(&r.done, __ATOMIC_ACQUIRE)) {
		int now = __atomic_load_n(&r.progress, __ATOMIC_ACQUIRE);

		if (now == seen) {
			sched_yield();
			continue;
		}
		seen = now;
		assert_int_equal(h5m_view_read(fx->views, fx->ear, H5M_VIEW_OBJ, &got, sizeof(got), 8), sizeof(got));
		assert_true(got == 1.0);
		reads++;
	}
	pthread_join(t, NULL);
	assert_int_equal(r.failed, 0);
	assert_true(reads > 0);
	assert_int_equal(h5m_views_blocks_loaded(fx->views) - before, 1);
}

struct waiting_read {
	struct fixture *fx;
	struct h5m_node *n;
	char npy[4096];
	ssize_t n_got;
	bool done; /* atomic */
};

/* Reads the whole .npy view of /wide as 6 x 8 (more than its 6 x 4 when the read starts). */
static void *read_npy_start(void *arg)
{
	struct waiting_read *w = arg;

	w->n_got = h5m_view_read(w->fx->views, w->n, H5M_VIEW_NPY, w->npy, w->n->ds->npy_header_len + 6 * 8 * 8, 0);
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
	return NULL;
}

struct reshape_once {
	struct fixture *fx;
	struct h5m_node *n;
	const char *text;
	ssize_t rc;
};

static void *reshape_once_main(void *arg)
{
	struct reshape_once *r = arg;
	struct h5m_view_handle h = { .view = H5M_VIEW_SHAPE, .write = true };

	r->rc = put(r->fx, r->n, &h, r->text, strlen(r->text), 0);
	h5m_view_handle_destroy(&h);
	return NULL;
}

/* Waits (at most 10 s) until a resize of vs waits for the reads under way: new reads then
 * wait behind it, so a try-read is refused. Returns whether it came to that. */
static bool resize_is_waiting(struct h5m_vds *vs)
{
	struct timespec t0, now;
	struct h5m_vsnap sn;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (!h5m_vds_read_try_begin(vs, &sn))
			return true;
		h5m_vds_read_end(vs);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 10)
			return false;
		sched_yield();
	}
}

/* A read that starts while a resize waits for the reads under way (the test holds one, as a
 * reader in the middle of its read would) waits for the resize and reads the new layout whole,
 * with the header of the new shape. Meanwhile another dataset reads at once: a resize of one
 * dataset never holds up the reads of another (nor restarts them: nothing but this exclusion
 * keeps reads and resizes apart, see test_cache's invalidation tests). */
static void test_a_read_during_a_resize_waits_and_reads_the_new_layout(void **state)
{
	struct fixture *fx = *state;
	struct waiting_read w = { .fx = fx, .n = find(fx->store, "wide") };
	struct reshape_once r = { fx, w.n, "6 8\n", 0 };
	size_t hl = w.n->ds->npy_header_len;
	struct h5m_npy_header hdr;
	struct h5m_vsnap held;
	struct h5m_vds *vs;
	double got[6 * 8], ear[10 * COLS];
	pthread_t rt, t;

	assert_int_equal(size_of(fx, w.n, H5M_VIEW_OBJ), 6 * 4 * 8); /* creates the views' state */
	vs = h5m_vds_peek(w.n->ds);
	assert_non_null(vs);
	h5m_vds_read_begin(vs, &held);
	assert_int_equal(pthread_create(&rt, NULL, reshape_once_main, &r), 0);
	assert_true(resize_is_waiting(vs));
	assert_int_equal(pthread_create(&t, NULL, read_npy_start, &w), 0);
	/* Another dataset reads while /wide's resize is pending. */
	assert_int_equal(h5m_view_read(fx->views, fx->ear, H5M_VIEW_OBJ, ear, sizeof(ear), 0), sizeof(ear));
	for (unsigned i = 0; i < 10 * COLS; i++)
		assert_true(ear[i] == (i / COLS) * 10 + i % COLS);
	/* The resize cannot have run (this test holds a read), so neither has the read behind it. */
	assert_false(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE));
	assert_int_equal(r.rc, 0);
	h5m_vds_read_end(vs);
	pthread_join(rt, NULL);
	pthread_join(t, NULL);
	assert_int_equal(r.rc, 4);
	assert_int_equal(w.n_got, hl + 6 * 8 * 8);
	assert_int_equal(h5m_npy_header_parse(w.npy, hl, &hdr), 0);
	assert_int_equal(hdr.rank, 2);
	assert_true(hdr.shape[0] == 6 && hdr.shape[1] == 8);
	memcpy(got, w.npy + hl, sizeof(got));
	assert_true(is_layout(got, 0, sizeof(got), 8));
	/* The resize ended: reads start at once again. */
	assert_true(h5m_vds_read_try_begin(vs, &held));
	h5m_vds_read_end(vs);
}

/* A trailing dim of 0 makes rows of no bytes: the raw view is empty whatever the row count,
 * only 0 is a size for it, bytes cannot be written, and the row count changes through the
 * shape text. Nothing divides by the row size. */
static void test_rows_of_no_bytes_take_no_bytes_and_change_through_the_shape(void **state)
{
	struct fixture *fx = *state;
	struct h5m_node *n = find(fx->store, "wide");
	struct h5m_view_handle sh = { .view = H5M_VIEW_SHAPE, .write = true };
	struct h5m_view_handle raw = { .view = H5M_VIEW_OBJ, .write = true };
	struct h5m_npy_header hdr;
	struct h5m_change chg;
	char npy[4096];
	uint64_t size;

	assert_int_equal(put(fx, n, &sh, "6 0\n", 4, 0), 4);
	shape_is(fx, n, "6 0\n");
	assert_int_equal(h5m_view_size(fx->views, n, H5M_VIEW_OBJ, &size), 0);
	assert_int_equal(size, 0);
	assert_int_equal(h5m_view_truncate(fx->views, n, H5M_VIEW_OBJ, 0, &chg), 0);
	assert_int_equal(h5m_view_truncate(fx->views, n, H5M_VIEW_OBJ, 8, &chg), -EINVAL);
	assert_int_equal(put(fx, n, &raw, "12345678", 8, 0), -EFBIG);
	assert_int_equal(put(fx, n, &sh, "9 0\n", 4, 0), 4);
	shape_is(fx, n, "9 0\n");
	assert_int_equal(put(fx, n, &sh, "3 0\n", 4, 0), 4);
	shape_is(fx, n, "3 0\n");
	assert_int_equal(h5m_view_read(fx->views, n, H5M_VIEW_NPY, npy, sizeof(npy), 0), n->ds->npy_header_len);
	assert_int_equal(h5m_npy_header_parse(npy, n->ds->npy_header_len, &hdr), 0);
	assert_true(hdr.rank == 2 && hdr.shape[0] == 3 && hdr.shape[1] == 0);
	h5m_view_handle_destroy(&sh);
	h5m_view_handle_destroy(&raw);
	close_views(fx);
	open_views(fx);
	shape_is(fx, find(fx->store, "wide"), "3 0\n");
}

/* A read whose length runs past the largest offset reads what there is. */
static void test_a_read_of_any_length_reads_to_the_end(void **state)
{
	struct fixture *fx = *state;
	struct h5m_node *n = find(fx->store, "wide");
	size_t hl = n->ds->npy_header_len;
	char npy[4096];

	assert_int_equal(h5m_view_read(fx->views, n, H5M_VIEW_NPY, npy, SIZE_MAX, 3), hl - 3 + 6 * 4 * 8);
	assert_int_equal(h5m_view_read(fx->views, n, H5M_VIEW_OBJ, npy, SIZE_MAX, 8), 6 * 4 * 8 - 8);
	assert_true(((double *)(void *)(npy))[0] == 1.0);
	assert_int_equal(h5m_view_read(fx->views, n, H5M_VIEW_OBJ, npy, SIZE_MAX, UINT64_MAX - 1), 0);
}

/* Appender and readers at once: a reader that sees a size sees the bytes of it. */
struct append_race {
	struct fixture *fx;
	int rows;            /* rows the appender writes */
	volatile int done;   /* the appender finished */
	int bad;             /* fill values (-1) read inside a reported size */
	long reads;
};

static void *appender(void *arg)
{
	struct append_race *r = arg;
	struct h5m_view_handle h = { .view = H5M_VIEW_OBJ, .write = true, .append = true };
	struct h5m_change chg;

	for (int i = 0; i < r->rows; i++) {
		double row[COLS];

		/* Every 1000 rows, wait for a read to complete: the readers run during the appends
		 * however the threads are scheduled (they never wait for the appender). */
		if (i % 1000 == 0) {
			long seen = __atomic_load_n(&r->reads, __ATOMIC_ACQUIRE);

			while (__atomic_load_n(&r->reads, __ATOMIC_ACQUIRE) == seen)
				sched_yield();
		}
		for (int c = 0; c < COLS; c++)
			row[c] = 1000 + i;
		/* Half a row, then the other half: the held row path, then a completed row. */
		h5m_view_write(r->fx->views, r->fx->ear, &h, row, ROW / 2, 0, &chg);
		h5m_view_write(r->fx->views, r->fx->ear, &h, row + COLS / 2, ROW / 2, 0, &chg);
	}
	h5m_view_handle_destroy(&h);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *tail_reader(void *arg)
{
	struct append_race *r = arg;
	double buf[8 * COLS];

	while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
		uint64_t size = 0, from;
		ssize_t got;

		if (h5m_view_size(r->fx->views, r->fx->ear, H5M_VIEW_OBJ, &size) != 0)
			continue;
		from = size > sizeof(buf) ? size - sizeof(buf) : 0;
		from -= from % sizeof(double);
		got = h5m_view_read(r->fx->views, r->fx->ear, H5M_VIEW_OBJ, buf, (size_t)(size - from), from);
		for (ssize_t k = 0; k + (ssize_t)sizeof(double) <= got; k += sizeof(double))
			if (buf[k / sizeof(double)] == -1)
				__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&r->reads, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* The size of an append is published only once its bytes are in the cache or the held row: a
 * reader racing with appends never reads fill values (-1) inside the size it was given. (It
 * read 1 to hundreds of them per run before, from rows and held bytes still being copied.) */
static void test_readers_never_see_an_appended_size_before_its_bytes(void **state)
{
	struct fixture *fx = *state;
	struct append_race r = { .fx = fx, .rows = 20000 };
	pthread_t w, rd[2];

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&rd[i], NULL, tail_reader, &r), 0);
	assert_int_equal(pthread_create(&w, NULL, appender, &r), 0);
	pthread_join(w, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(rd[i], NULL);
	assert_true(r.reads >= r.rows / 1000);
	assert_int_equal(r.bad, 0);
	shape_is(fx, fx->ear, "20010 4\n");
	assert_true(cell(fx, 20009, 3) == 1000 + 19999);
}

struct seen {
	struct h5m_node *n;
	struct h5m_change c;
	int calls;
};

static void record(void *ctx, struct h5m_node *n, const struct h5m_change *c)
{
	struct seen *s = ctx;

	s->n = n;
	s->c = *c;
	s->calls++;
}

/* A flush that completes a dataset's held row (an fsync of another file, the unmount) reports
 * it, so that the adapter can tell the kernel the sizes changed; a flush that completes
 * nothing reports nothing. */
static void test_a_flush_that_completes_a_held_row_reports_the_dataset(void **state)
{
	struct fixture *fx = *state;
	struct h5m_view_handle h = { .view = H5M_VIEW_OBJ, .write = true };
	struct seen s = { 0 };
	double one = 5;

	h5m_views_set_observer(fx->views, record, &s);
	assert_int_equal(h5m_views_flush(fx->views, true, true), 0);
	assert_int_equal(s.calls, 0);
	assert_int_equal(put(fx, fx->ear, &h, &one, 8, 10 * ROW), 8);
	assert_int_equal(h5m_views_flush(fx->views, false, false), 0);
	assert_int_equal(s.calls, 0);
	assert_int_equal(h5m_views_flush(fx->views, true, true), 0);
	assert_int_equal(s.calls, 1);
	assert_ptr_equal(s.n, fx->ear);
	assert_true(s.c.size);
	assert_int_equal(s.c.data_off, 10 * ROW);
	assert_int_equal(s.c.data_len, ROW);
	assert_int_equal(size_of(fx, fx->ear, H5M_VIEW_OBJ), 11 * ROW);
	h5m_view_handle_destroy(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_partial_row_is_held_and_shows_in_size_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readers_never_see_an_appended_size_before_its_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_flush_that_completes_a_held_row_reports_the_dataset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads_during_reshapes_see_one_layout_and_leave_no_stale_block, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_reads_of_a_gzip_dataset_during_reshapes_never_fail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_read_during_a_resize_waits_and_reads_the_new_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resizes_of_one_dataset_never_reload_another, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_of_no_bytes_take_no_bytes_and_change_through_the_shape, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_a_read_of_any_length_reads_to_the_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_block_read_with_an_older_geometry_has_the_rows_the_file_has, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_release_completes_a_held_row_with_the_fill_value_and_close_does_not, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_a_closed_files_row_ends_before_another_files_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_past_the_end_fills_the_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overwrite_inside_the_extent_is_read_modify_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_needs_whole_rows_and_regrowth_shows_fill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixed_datasets_cannot_grow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_npy_header_must_match_dtype_and_trailing_dims, setup, teardown),
		cmocka_unit_test_setup_teardown(test_npy_truncating_open_waits_for_a_valid_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shape_text_resizes_or_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_appends_survive_write_back_and_reopen, setup, teardown),
	};

	if (h5m_store_global_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
