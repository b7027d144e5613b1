/* test_filters.c: unit tests of the built-in LZF, LZO and bzip2 HDF5 filters, including files h5py and PyTables wrote; no FUSE. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <bzlib.h>
#include <hdf5.h>
#include <lzf.h>
#include <lzo/lzo1x.h>

#include "h5fixture.h"
#include "tmptree.h"
#include "xorshift.h"
#include "h5mount/filters.h"

/* Per-process fixture, set up in main() before the first HDF5 call. */
static char tmpdir[] = "/tmp/test_filters.XXXXXX"; /* files of all tests */
static htri_t avail_before_register[3] = {-1, -1, -1};

static const int ids[3] = {H5M_LZF_FILTER_ID, H5M_LZO_FILTER_ID, H5M_BZIP2_FILTER_ID};

enum { ROWS = 1000, COLS = 3, CHUNK_ROWS = 100, CHUNK_BYTES = CHUNK_ROWS * COLS * 8 };

/* ---- helpers --------------------------------------------------------------------------- */

static void tmp_path(char *out, size_t outlen, const char *name)
{
	h5fixture_path(out, outlen, tmpdir, name);
}

/* Creates `path` with one chunked (CHUNK_ROWS, COLS) dataset "d" of ROWS x COLS doubles with
 * filter `id` (flags `flags`, `ncd` parameters), after the shuffle filter when `shuffle`,
 * writes `data` and closes it all. */
static void write_dataset(const char *path, int id, unsigned flags, size_t ncd, const unsigned *cd,
                          bool shuffle, const void *data)
{
	const hsize_t dims[2] = {ROWS, COLS}, chunk[2] = {CHUNK_ROWS, COLS};
	hid_t f, space, dcpl, d;

	f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(f >= 0);
	space = H5Screate_simple(2, dims, NULL);
	assert_true(space >= 0);
	dcpl = H5Pcreate(H5P_DATASET_CREATE);
	assert_true(dcpl >= 0);
	assert_true(H5Pset_chunk(dcpl, 2, chunk) >= 0);
	if (shuffle)
		assert_true(H5Pset_shuffle(dcpl) >= 0);
	assert_true(H5Pset_filter(dcpl, (H5Z_filter_t)id, flags, ncd, cd) >= 0);
	d = H5Dcreate2(f, "d", H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	assert_true(d >= 0);
	assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
	H5Dclose(d);
	H5Pclose(dcpl);
	H5Sclose(space);
	assert_true(H5Fclose(f) >= 0);
}

/* cd_values of filter `id` of dataset d (at most 16); returns their count. */
static size_t read_cd_values(hid_t d, int id, unsigned *flags, unsigned cd[16])
{
	hid_t dcpl = H5Dget_create_plist(d);
	size_t ncd = 16;

	assert_true(dcpl >= 0);
	assert_true(H5Pget_filter_by_id2(dcpl, (H5Z_filter_t)id, flags, &ncd, cd, 0, NULL, NULL) >= 0);
	H5Pclose(dcpl);
	return ncd;
}

/* Opens `path`, reads "d" back as doubles and compares with `want`; returns the open
 * dataset (and its file in *f) for more checks. */
static hid_t read_back(const char *path, const double *want, hid_t *f)
{
	double *back = malloc(ROWS * COLS * sizeof *back);
	hid_t d;

	assert_non_null(back);
	*f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(*f >= 0);
	d = H5Dopen2(*f, "d", H5P_DEFAULT);
	assert_true(d >= 0);
	memset(back, 0xAA, ROWS * COLS * sizeof *back);
	assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, want, ROWS * COLS * sizeof *back);
	free(back);
	return d;
}

/* An lzo1x_1 stream of n bytes of src; *len gets its size. The caller frees it. */
static unsigned char *lzo_stream(const void *src, size_t n, size_t *len)
{
	lzo_uint out = n + n / 16 + 64 + 3;
	unsigned char *dst = malloc(out);
	void *work = malloc(LZO1X_1_MEM_COMPRESS);

	assert_non_null(dst);
	assert_non_null(work);
	assert_int_equal(lzo1x_1_compress(src, n, dst, &out, work), LZO_E_OK);
	free(work);
	*len = out;
	return dst;
}

/* A chunk of `n` bytes of src encoded by filter `id` with a stream library call (not the
 * module under test); *len gets its size. The caller frees it. */
static unsigned char *encode_with_library(int id, const void *src, size_t n, size_t *len)
{
	unsigned char *dst;
	unsigned u;

	switch (id) {
	case H5M_LZF_FILTER_ID:
		dst = malloc(n + n / 16 + 16);
		assert_non_null(dst);
		u = lzf_compress(src, (unsigned)n, dst, (unsigned)(n + n / 16 + 16));
		assert_true(u > 0);
		*len = u;
		return dst;
	case H5M_LZO_FILTER_ID:
		return lzo_stream(src, n, len);
	default:
		u = (unsigned)(n + n / 100 + 600);
		dst = malloc(u);
		assert_non_null(dst);
		assert_int_equal(BZ2_bzBuffToBuffCompress((char *)dst, &u, (char *)src, (unsigned)n, 9, 0, 0), BZ_OK);
		*len = u;
		return dst;
	}
}

/* Replaces the stored bytes of the first chunk of "d" in `path` with the `len` bytes at
 * `bytes`, marked as filtered (mask 0): what a damaged file or a foreign writer leaves. */
static void replace_first_chunk(const char *path, const void *bytes, size_t len)
{
	const hsize_t origin[2] = {0, 0};
	hid_t f, d;

	f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, "d", H5P_DEFAULT);
	assert_true(d >= 0);
	assert_true(H5Dwrite_chunk(d, H5P_DEFAULT, 0, origin, len, bytes) >= 0);
	H5Dclose(d);
	H5Fclose(f);
}

/* Writes `data` as "d" of tmpdir/name with LZF (after shuffle when `shuffle`), then replaces
 * its first chunk with an LZF stream of only the first `nbytes` of it; `path` gets the file's
 * path (4096 bytes). */
static void write_short_first_chunk(char *path, const char *name, bool shuffle, const double *data,
                                    size_t nbytes)
{
	unsigned char *enc;
	size_t len;

	tmp_path(path, 4096, name);
	write_dataset(path, H5M_LZF_FILTER_ID, H5Z_FLAG_OPTIONAL, 0, NULL, shuffle, data);
	enc = encode_with_library(H5M_LZF_FILTER_ID, data, nbytes, &len);
	replace_first_chunk(path, enc, len);
	free(enc);
}

/* Reads "d" of `path` as ROWS x COLS doubles into `back` (first filled with 0xAA bytes) with
 * a whole chunk expected from each decode, as the store sets it (h5m_filters_expect). */
static void read_expecting_whole_chunks(const char *path, double *back)
{
	hid_t f, d;

	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, "d", H5P_DEFAULT);
	assert_true(d >= 0);
	memset(back, 0xAA, ROWS * COLS * sizeof *back);
	h5m_filters_expect(CHUNK_BYTES);
	assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	h5m_filters_expect(0);
	H5Dclose(d);
	H5Fclose(f);
}

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data)
{
	(void)n;
	if (e->desc)
		snprintf(data, 256, "%s", e->desc); /* downward: the last is the innermost */
	return 0;
}

/* Copies the innermost description on the thread's HDF5 error stack into buf[256]; clears it. */
static void innermost_error(char buf[256])
{
	buf[0] = 0;
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, innermost, buf);
	H5Eclear2(H5E_DEFAULT);
}

/* ---- registration ------------------------------------------------------------------------ */

static void test_register_adds_the_three_filters_and_restores_plugin_loading(void **state)
{
	unsigned before = 0, after = 0;
	char name[32];

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(avail_before_register[i], 0); /* the test starts without them */
	assert_true(H5PLget_loading_state(&before) >= 0);
	assert_int_equal(h5m_filters_register(), 0);
	assert_int_equal(h5m_filters_register(), 0); /* registered already: nothing to do */
	assert_true(H5PLget_loading_state(&after) >= 0);
	assert_int_equal(after, before);
	for (int i = 0; i < 3; i++)
		assert_int_equal(H5Zfilter_avail((H5Z_filter_t)ids[i]), 1);

	/* the names h5py and PyTables give them, as h5dump and H5Pget_filter2 report */
	for (int i = 0; i < 3; i++) {
		static const char *const names[3] = {"lzf", "lzo", "bzip2"};
		hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
		unsigned flags;
		size_t ncd = 0;

		assert_true(H5Pset_filter(dcpl, (H5Z_filter_t)ids[i], H5Z_FLAG_OPTIONAL, 0, NULL) >= 0);
		assert_int_equal(H5Pget_filter2(dcpl, 0, &flags, &ncd, NULL, sizeof name, name, NULL), ids[i]);
		assert_string_equal(name, names[i]);
		H5Pclose(dcpl);
	}
}

/* ---- round trips through HDF5 ------------------------------------------------------------ */

static void test_hdf5_roundtrip_compresses_each_filter_with_and_without_shuffle(void **state)
{
	/* PyTables' parameters for LZO/bzip2 level 5; none for LZF (set_local fills them) */
	static const unsigned pt_cd[3] = {5, 11, 2};
	double *data = malloc(ROWS * COLS * sizeof *data);
	const hsize_t origin[2] = {0, 0};
	char path[4096];

	(void)state;
	assert_non_null(data);
	h5fixture_ramp(data, ROWS * COLS);
	assert_int_equal(h5m_filters_register(), 0);
	tmp_path(path, sizeof path, "roundtrip.h5");
	for (int i = 0; i < 3; i++) {
		for (int shuffle = 0; shuffle < 2; shuffle++) {
			size_t ncd = ids[i] == H5M_LZF_FILTER_ID ? 0 : 3, rawlen, outlen;
			unsigned cd[16], flags;
			unsigned char *raw, *plain;
			uint32_t mask;
			hid_t f, d;

			write_dataset(path, ids[i], H5Z_FLAG_OPTIONAL, ncd, pt_cd, shuffle, data);
			d = read_back(path, data, &f);
			ncd = read_cd_values(d, ids[i], &flags, cd);
			if (ids[i] == H5M_LZF_FILTER_ID) {
				/* h5py's layout: revision 4, LZF API 0x0105, chunk bytes */
				assert_int_equal(ncd, 3);
				assert_int_equal(cd[0], 4);
				assert_int_equal(cd[1], 0x0105);
				assert_int_equal(cd[2], CHUNK_BYTES);
			} else {
				assert_int_equal(ncd, 3);
				assert_memory_equal(cd, pt_cd, sizeof pt_cd);
			}
			/* the stored chunk is encoded (mask 0), smaller, and decodes to the chunk */
			raw = h5fixture_read_raw_chunk(d, origin, &rawlen, &mask);
			assert_int_equal(mask, 0);
			assert_true(rawlen < CHUNK_BYTES);
			plain = h5m_filters_decode(ids[i], ncd, cd, raw, rawlen, &outlen);
			assert_non_null(plain);
			assert_int_equal(outlen, CHUNK_BYTES);
			if (!shuffle)
				assert_memory_equal(plain, data, CHUNK_BYTES);
			free(plain);
			free(raw);
			H5Dclose(d);
			H5Fclose(f);
		}
	}
	free(data);
}

static void test_hdf5_incompressible_chunks_round_trip(void **state)
{
	double *data = malloc(ROWS * COLS * sizeof *data);
	const hsize_t origin[2] = {0, 0};
	char path[4096];

	(void)state;
	assert_non_null(data);
	fill_random(data, ROWS * COLS * sizeof *data, 7);
	assert_int_equal(h5m_filters_register(), 0);
	tmp_path(path, sizeof path, "random.h5");
	for (int i = 0; i < 3; i++) {
		for (int optional = 0; optional < 2; optional++) {
			unsigned flags = optional ? H5Z_FLAG_OPTIONAL : H5Z_FLAG_MANDATORY;
			unsigned char *raw;
			size_t rawlen;
			uint32_t mask;
			hid_t f, d;

			write_dataset(path, ids[i], flags, 0, NULL, false, data);
			d = read_back(path, data, &f);
			raw = h5fixture_read_raw_chunk(d, origin, &rawlen, &mask);
			if (optional && ids[i] != H5M_BZIP2_FILTER_ID) {
				/* as h5py and PyTables: declined, so HDF5 stores the chunk raw */
				assert_int_equal(mask, 1);
				assert_int_equal(rawlen, CHUNK_BYTES);
				assert_memory_equal(raw, data, CHUNK_BYTES);
			} else {
				/* bzip2 (as PyTables) and a mandatory filter store the larger encoding */
				assert_int_equal(mask, 0);
				assert_true(rawlen > CHUNK_BYTES);
			}
			free(raw);
			H5Dclose(d);
			H5Fclose(f);
		}
	}
	free(data);
}

static void test_hdf5_read_of_corrupt_stored_chunk_fails(void **state)
{
	double *data = malloc(ROWS * COLS * sizeof *data), *back = malloc(ROWS * COLS * sizeof *back);
	static const char *const names[3] = {"LZF", "LZO", "bzip2"};
	unsigned char junk[512];
	char path[4096], why[256], want[256];

	(void)state;
	assert_non_null(data);
	assert_non_null(back);
	h5fixture_ramp(data, ROWS * COLS);
	fill_random(junk, sizeof junk, 3);
	assert_int_equal(h5m_filters_register(), 0);
	tmp_path(path, sizeof path, "corrupt.h5");
	for (int i = 0; i < 3; i++) {
		hid_t f, d;

		write_dataset(path, ids[i], H5Z_FLAG_OPTIONAL, 0, NULL, false, data);
		/* the first chunk replaced by random bytes, marked as filtered */
		replace_first_chunk(path, junk, sizeof junk);

		f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
		assert_true(f >= 0);
		d = H5Dopen2(f, "d", H5P_DEFAULT);
		assert_true(d >= 0);
		assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) < 0);
		/* the filter says why, for the store's log line */
		innermost_error(why);
		snprintf(want, sizeof want, "%s chunk of %zu bytes is corrupt", names[i], sizeof junk);
		assert_string_equal(why, want);
		H5Dclose(d);
		H5Fclose(f);
	}
	free(back);
	free(data);
}

/* ---- decoding, directly ------------------------------------------------------------------ */

static void test_decode_rejects_truncated_empty_and_random_chunks(void **state)
{
	const unsigned lzf_cd[3] = {4, 0x0105, CHUNK_BYTES};
	double *data = malloc(CHUNK_BYTES);
	unsigned char junk[4096];
	size_t outlen = 99;

	(void)state;
	assert_non_null(data);
	h5fixture_ramp(data, CHUNK_BYTES / 8);
	fill_random(junk, sizeof junk, 11);
	for (int i = 0; i < 3; i++) {
		size_t len, ncd = ids[i] == H5M_LZF_FILTER_ID ? 3 : 0;
		unsigned char *enc = encode_with_library(ids[i], data, CHUNK_BYTES, &len);
		void *out;

		out = h5m_filters_decode(ids[i], ncd, lzf_cd, enc, len, &outlen);
		assert_non_null(out);
		assert_int_equal(outlen, CHUNK_BYTES);
		assert_memory_equal(out, data, CHUNK_BYTES);
		free(out);

		/* LZO and bzip2 end their streams with a marker, so every truncation fails; LZF
		 * has none: cut between two runs, it decodes shorter (HDF5 reads get that chunk
		 * zero-padded, see test_expected_chunk_size_bounds_and_pads_decoding) */
		for (size_t cut = 0; cut < len; cut++) {
			out = h5m_filters_decode(ids[i], ncd, lzf_cd, enc, cut, &outlen);
			if (ids[i] == H5M_LZF_FILTER_ID && out != NULL) {
				assert_true(outlen < CHUNK_BYTES);
				assert_memory_equal(out, data, outlen);
				free(out);
				continue;
			}
			assert_null(out);
			assert_int_equal(outlen, 0);
		}
		out = h5m_filters_decode(ids[i], ncd, lzf_cd, junk, sizeof junk, &outlen);
		assert_null(out);
		assert_int_equal(outlen, 0);
		free(enc);
	}
	assert_null(h5m_filters_decode(1, 0, NULL, junk, sizeof junk, &outlen)); /* not ours */
	assert_null(h5m_filters_decode(H5M_LZO_FILTER_ID, 0, NULL, NULL, 10, &outlen));
	free(data);
}

static void test_decode_of_any_single_byte_corruption_fails_or_stays_bounded(void **state)
{
	const unsigned lzf_cd[3] = {4, 0x0105, CHUNK_BYTES};
	double *data = malloc(CHUNK_BYTES);

	(void)state;
	assert_non_null(data);
	h5fixture_ramp(data, CHUNK_BYTES / 8);
	for (int i = 0; i < 3; i++) {
		size_t len, ncd = ids[i] == H5M_LZF_FILTER_ID ? 3 : 0;
		unsigned char *enc = encode_with_library(ids[i], data, CHUNK_BYTES, &len);

		for (size_t at = 0; at < len; at++) {
			size_t outlen;
			void *out;

			enc[at] ^= 0x5A;
			out = h5m_filters_decode(ids[i], ncd, lzf_cd, enc, len, &outlen);
			enc[at] ^= 0x5A;
			if (out == NULL)
				continue;
			/* LZF and LZO carry no checksum: a flip may decode to other bytes, within the
			 * bound. bzip2's CRCs let only flips of padding bits through, which change
			 * nothing. */
			assert_true(outlen > 0 && outlen <= H5M_FILTERS_MAX_CHUNK);
			if (ids[i] == H5M_BZIP2_FILTER_ID) {
				assert_int_equal(outlen, CHUNK_BYTES);
				assert_memory_equal(out, data, CHUNK_BYTES);
			}
			free(out);
		}
		free(enc);
	}
	free(data);
}

static void test_lzf_chunk_size_in_cd_values_is_only_a_first_guess(void **state)
{
	double *data = malloc(CHUNK_BYTES);
	unsigned cd[3] = {4, 0x0105, 0};
	const unsigned stated[] = {0xFFFFFFF0u, CHUNK_BYTES - 8, CHUNK_BYTES + 8, CHUNK_BYTES, 0};
	size_t len, outlen;
	unsigned char *enc;
	void *out;

	(void)state;
	assert_non_null(data);
	h5fixture_ramp(data, CHUNK_BYTES / 8);
	enc = encode_with_library(H5M_LZF_FILTER_ID, data, CHUNK_BYTES, &len);

	/* a size past the bound is not allocated; a wrong one (a filter before LZF on write
	 * changed the length) or none (files from before h5py's set_local) is grown from */
	for (size_t k = 0; k < sizeof stated / sizeof stated[0]; k++) {
		cd[2] = stated[k];
		out = h5m_filters_decode(H5M_LZF_FILTER_ID, 3, cd, enc, len, &outlen);
		assert_non_null(out);
		assert_int_equal(outlen, CHUNK_BYTES);
		assert_memory_equal(out, data, CHUNK_BYTES);
		free(out);
	}
	out = h5m_filters_decode(H5M_LZF_FILTER_ID, 0, NULL, enc, len, &outlen);
	assert_non_null(out);
	assert_int_equal(outlen, CHUNK_BYTES);
	free(out);
	free(enc);
	free(data);
}

static void test_expected_chunk_size_bounds_and_pads_decoding(void **state)
{
	const unsigned lzf_cd[3] = {4, 0x0105, CHUNK_BYTES};
	double *data = malloc(CHUNK_BYTES);

	(void)state;
	assert_non_null(data);
	h5fixture_ramp(data, CHUNK_BYTES / 8);
	for (int i = 0; i < 3; i++) {
		size_t len, outlen, ncd = ids[i] == H5M_LZF_FILTER_ID ? 3 : 0;
		unsigned char *enc = encode_with_library(ids[i], data, CHUNK_BYTES, &len);
		void *out;

		/* a dataset of half-size chunks: this chunk decodes past the bound and fails */
		h5m_filters_expect(CHUNK_BYTES / 2);
		assert_null(h5m_filters_decode(ids[i], ncd, lzf_cd, enc, len, &outlen));
		assert_int_equal(outlen, 0);
		/* 4 bytes over (PyTables' Fletcher32 before the compressor) are within it */
		h5m_filters_expect(CHUNK_BYTES - 4);
		out = h5m_filters_decode(ids[i], ncd, lzf_cd, enc, len, &outlen);
		assert_non_null(out);
		assert_int_equal(outlen, CHUNK_BYTES);
		assert_memory_equal(out, data, CHUNK_BYTES);
		free(out);
		h5m_filters_expect(0);
		free(enc);
	}
	free(data);
}

static void test_hdf5_read_of_short_lzf_chunk_is_zero_padded_to_the_chunk(void **state)
{
	double *data = malloc(ROWS * COLS * sizeof *data), *back = malloc(ROWS * COLS * sizeof *back);
	char path[4096];

	(void)state;
	assert_non_null(data);
	assert_non_null(back);
	h5fixture_ramp(data, ROWS * COLS);
	assert_int_equal(h5m_filters_register(), 0);
	/* the first chunk replaced by an LZF stream of only its first half */
	write_short_first_chunk(path, "short.h5", false, data, CHUNK_BYTES / 2);

	/* HDF5 does not check the size a filter returns; with the chunk size expected (as the
	 * store sets it) the rest of the chunk reads as zeros, not as stale heap bytes */
	read_expecting_whole_chunks(path, back);
	assert_memory_equal(back, data, CHUNK_BYTES / 2);
	for (size_t k = CHUNK_BYTES / 2 / 8; k < CHUNK_BYTES / 8; k++)
		assert_true(back[k] == 0.0);
	assert_memory_equal(back + CHUNK_BYTES / 8, data + CHUNK_BYTES / 8, (ROWS * COLS * 8) - CHUNK_BYTES);
	free(back);
	free(data);
}

static void test_hdf5_read_of_short_chunk_before_unshuffle_stays_in_the_chunk(void **state)
{
	double *data = malloc(ROWS * COLS * sizeof *data), *back = malloc(ROWS * COLS * sizeof *back);
	char path[4096];

	(void)state;
	assert_non_null(data);
	assert_non_null(back);
	h5fixture_ramp(data, ROWS * COLS);
	assert_int_equal(h5m_filters_register(), 0);
	/* shuffle, then LZF: on read HDF5 unshuffles what LZF returns, in a buffer of that size,
	 * then copies a whole chunk out of it (ASan sees a read past a short one) */
	write_short_first_chunk(path, "short_shuffle.h5", true, data, CHUNK_BYTES / 4);

	read_expecting_whole_chunks(path, back);
	/* the damaged chunk reads as unshuffled bytes of its own; the others are intact */
	assert_memory_equal(back + CHUNK_BYTES / 8, data + CHUNK_BYTES / 8, (ROWS * COLS * 8) - CHUNK_BYTES);
	free(back);
	free(data);
}

static void test_hdf5_roundtrip_with_nbit_before_the_filter_decodes_shorter_than_the_chunk(void **state)
{
	enum { N = ROWS * COLS };
	const hsize_t dims[2] = {ROWS, COLS}, chunk[2] = {CHUNK_ROWS, COLS};
	int32_t *data = malloc(N * sizeof *data), *back = malloc(N * sizeof *back);
	char path[4096];

	(void)state;
	assert_non_null(data);
	assert_non_null(back);
	for (int i = 0; i < N; i++)
		data[i] = (i * 7) % 2000; /* fits in 12 bits */
	assert_int_equal(h5m_filters_register(), 0);
	tmp_path(path, sizeof path, "nbit.h5");
	for (int i = 0; i < 3; i++) {
		hid_t f, space, dcpl, type, d;

		f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
		space = H5Screate_simple(2, dims, NULL);
		dcpl = H5Pcreate(H5P_DATASET_CREATE);
		type = H5Tcopy(H5T_STD_I32LE);
		assert_true(f >= 0 && space >= 0 && dcpl >= 0 && type >= 0);
		assert_true(H5Tset_precision(type, 12) >= 0);
		assert_true(H5Pset_chunk(dcpl, 2, chunk) >= 0);
		assert_true(H5Pset_nbit(dcpl) >= 0); /* the filter gets 12 of every 32 bits */
		assert_true(H5Pset_filter(dcpl, (H5Z_filter_t)ids[i], H5Z_FLAG_OPTIONAL, 0, NULL) >= 0);
		d = H5Dcreate2(f, "d", type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
		assert_true(d >= 0);
		assert_true(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
		H5Dclose(d);
		H5Tclose(type);
		H5Pclose(dcpl);
		H5Sclose(space);
		assert_true(H5Fclose(f) >= 0);

		f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
		assert_true(f >= 0);
		d = H5Dopen2(f, "d", H5P_DEFAULT);
		assert_true(d >= 0);
		memset(back, 0xAA, N * sizeof *back);
		h5m_filters_expect(CHUNK_ROWS * COLS * 4); /* what the store sets for this dataset */
		assert_true(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
		h5m_filters_expect(0);
		assert_memory_equal(back, data, N * sizeof *back);
		H5Dclose(d);
		H5Fclose(f);
	}
	free(back);
	free(data);
}

static void test_hdf5_roundtrip_with_fletcher32_before_the_filter_as_pytables_orders_it(void **state)
{
	const hsize_t dims[2] = {ROWS, COLS}, chunk[2] = {CHUNK_ROWS, COLS};
	double *data = malloc(ROWS * COLS * sizeof *data), *back = malloc(ROWS * COLS * sizeof *back);
	char path[4096];

	(void)state;
	assert_non_null(data);
	assert_non_null(back);
	h5fixture_ramp(data, ROWS * COLS);
	assert_int_equal(h5m_filters_register(), 0);
	tmp_path(path, sizeof path, "fletcher.h5");
	for (int i = 0; i < 3; i++) {
		hid_t f, space, dcpl, d;

		f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
		space = H5Screate_simple(2, dims, NULL);
		dcpl = H5Pcreate(H5P_DATASET_CREATE);
		assert_true(f >= 0 && space >= 0 && dcpl >= 0);
		assert_true(H5Pset_chunk(dcpl, 2, chunk) >= 0);
		assert_true(H5Pset_fletcher32(dcpl) >= 0); /* the filter gets chunk + 4 bytes */
		assert_true(H5Pset_shuffle(dcpl) >= 0);
		assert_true(H5Pset_filter(dcpl, (H5Z_filter_t)ids[i], H5Z_FLAG_OPTIONAL, 0, NULL) >= 0);
		d = H5Dcreate2(f, "d", H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
		assert_true(d >= 0);
		assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
		H5Dclose(d);
		H5Pclose(dcpl);
		H5Sclose(space);
		assert_true(H5Fclose(f) >= 0);

		read_expecting_whole_chunks(path, back);
		assert_memory_equal(back, data, ROWS * COLS * sizeof *back);
	}
	free(back);
	free(data);
}

/* Zeros one page past the bound, mapped without touching memory. */
static void *zeros_over_bound(size_t *n)
{
	void *z;

	*n = H5M_FILTERS_MAX_CHUNK + 4096;
	z = mmap(NULL, *n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(z != MAP_FAILED);
	return z;
}

static void test_streams_decoding_past_the_bound_fail(void **state)
{
	size_t n, len, outlen;
	unsigned char *enc;
	void *zeros = zeros_over_bound(&n);
	bz_stream bz;
	unsigned cap = 1 << 16;

	(void)state;
	/* LZO: 256 MiB + 4 KiB of zeros are a few hundred kB of stream */
	enc = lzo_stream(zeros, n, &len);
	assert_true(len < n / 100);
	assert_null(h5m_filters_decode(H5M_LZO_FILTER_ID, 0, NULL, enc, len, &outlen));
	assert_int_equal(outlen, 0);
	free(enc);

	/* bzip2: the same zeros are a stream of a few hundred bytes */
	enc = malloc(cap);
	assert_non_null(enc);
	memset(&bz, 0, sizeof bz);
	assert_int_equal(BZ2_bzCompressInit(&bz, 9, 0, 0), BZ_OK);
	bz.next_in = zeros;
	bz.avail_in = (unsigned)n;
	bz.next_out = (char *)enc;
	bz.avail_out = cap;
	while (BZ2_bzCompress(&bz, BZ_FINISH) == BZ_FINISH_OK)
		;
	len = cap - bz.avail_out;
	assert_int_equal(BZ2_bzCompressEnd(&bz), BZ_OK);
	assert_true(len > 0 && len < 4096);
	assert_null(h5m_filters_decode(H5M_BZIP2_FILTER_ID, 0, NULL, enc, len, &outlen));
	assert_int_equal(outlen, 0);
	free(enc);
	munmap(zeros, n);
}

static void test_lzo_chunk_with_pytables_0_5_checksum_trailer_decodes(void **state)
{
	double *data = malloc(CHUNK_BYTES);
	unsigned char *enc, *chunk;
	size_t len, outlen;
	uint32_t sum, size = CHUNK_BYTES;
	void *out;

	(void)state;
	assert_non_null(data);
	h5fixture_ramp(data, CHUNK_BYTES / 8);
	enc = lzo_stream(data, CHUNK_BYTES, &len);
	chunk = malloc(len + 8);
	assert_non_null(chunk);
	memcpy(chunk, enc, len);
	sum = lzo_adler32(lzo_adler32(0, NULL, 0), (const unsigned char *)data, CHUNK_BYTES);
	for (int b = 0; b < 4; b++) {
		chunk[len + b] = (unsigned char)(sum >> (8 * b));
		chunk[len + 4 + b] = (unsigned char)(size >> (8 * b));
	}
	out = h5m_filters_decode(H5M_LZO_FILTER_ID, 3, (const unsigned[]){1, 10, 1}, chunk, len + 8, &outlen);
	assert_non_null(out);
	assert_int_equal(outlen, CHUNK_BYTES);
	assert_memory_equal(out, data, CHUNK_BYTES);
	free(out);

	/* a wrong checksum, a wrong length, or trailing bytes of another length fail */
	chunk[len] ^= 1;
	assert_null(h5m_filters_decode(H5M_LZO_FILTER_ID, 0, NULL, chunk, len + 8, &outlen));
	chunk[len] ^= 1;
	chunk[len + 4] ^= 8;
	assert_null(h5m_filters_decode(H5M_LZO_FILTER_ID, 0, NULL, chunk, len + 8, &outlen));
	chunk[len + 4] ^= 8;
	assert_null(h5m_filters_decode(H5M_LZO_FILTER_ID, 0, NULL, chunk, len + 7, &outlen));
	free(chunk);
	free(enc);
	free(data);
}

/* ---- files h5py and PyTables wrote --------------------------------------------------------- */

static const char writers_script[] =
	"import sys, numpy as np, h5py, tables\n"
	"d = sys.argv[1]\n"
	"a = np.arange(30000, dtype=\"f8\").reshape(-1, 3)\n"
	"with h5py.File(d + \"/h5py.h5\", \"w\") as f:\n"
	"    f.create_dataset(\"lzf\", data=a, compression=\"lzf\", chunks=(1000, 3))\n"
	"    f.create_dataset(\"lzf_shuffle\", data=a, compression=\"lzf\", shuffle=True, chunks=(1000, 3))\n"
	"with tables.open_file(d + \"/pytables.h5\", \"w\") as f:\n"
	"    for lib in (\"lzo\", \"bzip2\"):\n"
	"        e = f.create_earray(\"/\", lib, tables.Float64Atom(), shape=(0, 3),\n"
	"                            filters=tables.Filters(complevel=5, complib=lib))\n"
	"        e.append(a)\n";

/* Returns 1 when h5py.h5 and pytables.h5 exist in tmpdir (writing them on first call), 0 when
 * /usr/bin/python3 cannot import h5py and tables. */
static int have_writers_files(void)
{
	static int have = -1;

	return h5fixture_python(&have, "h5py, tables", writers_script, tmpdir);
}

/* Reads dataset `name` of `file` (in tmpdir) and compares it with arange(30000). */
static void check_writers_ramp(const char *file, const char *name)
{
	char path[4096];
	hid_t f, d;

	tmp_path(path, sizeof path, file);
	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, name, H5P_DEFAULT);
	assert_true(d >= 0);
	h5fixture_check_arange(d, 30000);
	H5Dclose(d);
	H5Fclose(f);
}

static void test_reads_h5py_lzf_and_pytables_lzo_bzip2_datasets(void **state)
{
	(void)state;
	if (!have_writers_files())
		skip();
	assert_int_equal(h5m_filters_register(), 0);
	/* h5py bundles its own liblzf; Debian's must decode what it wrote */
	check_writers_ramp("h5py.h5", "/lzf");
	check_writers_ramp("h5py.h5", "/lzf_shuffle");
	check_writers_ramp("pytables.h5", "/lzo");
	check_writers_ramp("pytables.h5", "/bzip2");
}

/* ---- fixture ----------------------------------------------------------------------------- */

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_adds_the_three_filters_and_restores_plugin_loading),
		cmocka_unit_test(test_hdf5_roundtrip_compresses_each_filter_with_and_without_shuffle),
		cmocka_unit_test(test_hdf5_incompressible_chunks_round_trip),
		cmocka_unit_test(test_hdf5_read_of_corrupt_stored_chunk_fails),
		cmocka_unit_test(test_decode_rejects_truncated_empty_and_random_chunks),
		cmocka_unit_test(test_decode_of_any_single_byte_corruption_fails_or_stays_bounded),
		cmocka_unit_test(test_lzf_chunk_size_in_cd_values_is_only_a_first_guess),
		cmocka_unit_test(test_expected_chunk_size_bounds_and_pads_decoding),
		cmocka_unit_test(test_hdf5_read_of_short_lzf_chunk_is_zero_padded_to_the_chunk),
		cmocka_unit_test(test_hdf5_read_of_short_chunk_before_unshuffle_stays_in_the_chunk),
		cmocka_unit_test(test_hdf5_roundtrip_with_nbit_before_the_filter_decodes_shorter_than_the_chunk),
		cmocka_unit_test(test_hdf5_roundtrip_with_fletcher32_before_the_filter_as_pytables_orders_it),
		cmocka_unit_test(test_streams_decoding_past_the_bound_fail),
		cmocka_unit_test(test_lzo_chunk_with_pytables_0_5_checksum_trailer_decodes),
		cmocka_unit_test(test_reads_h5py_lzf_and_pytables_lzo_bzip2_datasets),
	};
	int failed;

	if (h5fixture_setup(tmpdir) != 0) /* tmpdir, and no installed plugin for HDF5 to find */
		return 1;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	for (int i = 0; i < 3; i++)
		avail_before_register[i] = H5Zfilter_avail((H5Z_filter_t)ids[i]);
	if (lzo_init() != LZO_E_OK) {
		fputs("lzo_init failed\n", stderr);
		return 1;
	}

	failed = cmocka_run_group_tests(tests, NULL, NULL);
	tmptree_remove(tmpdir);
	return failed;
}
