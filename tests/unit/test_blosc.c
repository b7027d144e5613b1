/* test_blosc.c: unit tests of the Blosc codec helpers and the HDF5 filter 32001, including files PyTables wrote; no FUSE. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <blosc.h>
#include <hdf5.h>

#include "h5fixture.h"
#include "tmptree.h"
#include "xorshift.h"
#include "h5mount/blosc.h"

/* Per-process fixture, set up in main() before the first HDF5 call. */
static char tmpdir[] = "/tmp/test_blosc.XXXXXX"; /* files of all tests */
static htri_t avail_before_register = -1;       /* H5Zfilter_avail(32001) before any test */

/* ---- helpers --------------------------------------------------------------------------- */

static void tmp_path(char *out, size_t outlen, const char *name)
{
	h5fixture_path(out, outlen, tmpdir, name);
}

/* A buffer of `len` bytes that ends exactly where a PROT_NONE page starts, so a library
 * (which ASan does not instrument) that reads or writes past it faults. */
struct guarded {
	unsigned char *map;
	size_t maplen;
	unsigned char *p; /* the `len` usable bytes */
};

static void guarded_alloc(struct guarded *g, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t body = (len + page - 1) / page * page;

	g->maplen = body + page;
	g->map = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g->map != MAP_FAILED);
	assert_int_equal(mprotect(g->map + body, page, PROT_NONE), 0);
	g->p = g->map + body - len;
}

static void guarded_free(struct guarded *g)
{
	munmap(g->map, g->maplen);
}

/* Creates `path` with one chunked dataset "d" of `type`, `rank` dims and `chunk` dims, with
 * the blosc filter given `ncd` parameters, writes `data` (whole extent) and closes it all. */
static void write_dataset(const char *path, hid_t type, int rank, const hsize_t *dims,
                          const hsize_t *chunk, size_t ncd, const unsigned *cd, const void *data)
{
	hid_t f, space, dcpl, d;

	f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(f >= 0);
	space = H5Screate_simple(rank, dims, NULL);
	assert_true(space >= 0);
	dcpl = H5Pcreate(H5P_DATASET_CREATE);
	assert_true(dcpl >= 0);
	assert_true(H5Pset_chunk(dcpl, rank, chunk) >= 0);
	assert_true(H5Pset_filter(dcpl, H5M_BLOSC_FILTER_ID, H5Z_FLAG_OPTIONAL, ncd, cd) >= 0);
	d = H5Dcreate2(f, "d", type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	assert_true(d >= 0);
	if (data != NULL)
		assert_true(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
	H5Dclose(d);
	H5Pclose(dcpl);
	H5Sclose(space);
	H5Fclose(f);
}

/* Reads the blosc filter's flags and cd_values of dataset `d`; returns the count. */
static size_t read_cd_values(hid_t d, unsigned *flags, unsigned cd[16])
{
	hid_t dcpl = H5Dget_create_plist(d);
	size_t ncd = 16;
	char name[32] = "";
	unsigned config = 0;

	assert_true(dcpl >= 0);
	assert_int_equal(H5Pget_nfilters(dcpl), 1);
	assert_int_equal(H5Pget_filter2(dcpl, 0, flags, &ncd, cd, sizeof name, name, &config),
	                 H5M_BLOSC_FILTER_ID);
	assert_string_equal(name, "blosc");
	H5Pclose(dcpl);
	return ncd;
}

/* ---- registration ---------------------------------------------------------------------- */

static void test_register_adds_filter_once_and_restores_plugin_loading(void **state)
{
	unsigned plugins = 0, config = 0;

	(void)state;
	/* nothing else provides 32001 in this process (the plugin path is an empty directory),
	 * so every HDF5 read below goes through our filter */
	assert_int_equal(avail_before_register, 0);

	assert_true(H5PLset_loading_state(H5PL_ALL_PLUGIN) >= 0);
	assert_int_equal(h5m_blosc_register(), 0);
	assert_int_equal(H5Zfilter_avail(H5M_BLOSC_FILTER_ID), 1);
	assert_true(H5Zget_filter_info(H5M_BLOSC_FILTER_ID, &config) >= 0);
	assert_int_equal(config & (H5Z_FILTER_CONFIG_ENCODE_ENABLED |
	                           H5Z_FILTER_CONFIG_DECODE_ENABLED),
	                 H5Z_FILTER_CONFIG_ENCODE_ENABLED | H5Z_FILTER_CONFIG_DECODE_ENABLED);
	assert_true(H5PLget_loading_state(&plugins) >= 0);
	assert_int_equal(plugins, H5PL_ALL_PLUGIN);

	assert_int_equal(h5m_blosc_register(), 0); /* already there: a no-op */
	assert_int_equal(H5Zfilter_avail(H5M_BLOSC_FILTER_ID), 1);
}

/* ---- codec helpers --------------------------------------------------------------------- */

static void test_roundtrip_every_compressor_and_shuffle(void **state)
{
	static const char *const libs[] = {"BloscLZ", "LZ4", "LZ4", "Snappy", "Zlib", "Zstd"};
	enum { N = 8192 };
	double *src = malloc(N * sizeof *src), *back = malloc(N * sizeof *back);
	size_t srclen = N * sizeof *src, frame_cap = srclen + BLOSC_MAX_OVERHEAD;
	unsigned char *frame = malloc(frame_cap);

	(void)state;
	assert_non_null(src);
	assert_non_null(back);
	assert_non_null(frame);
	h5fixture_ramp(src, N);
	for (int code = 0; code <= 5; code++) {
		for (int shuffle = 0; shuffle <= 2; shuffle++) {
			size_t typesize = 0;
			int flags = 0;
			long n = h5m_blosc_encode(src, srclen, frame, frame_cap, sizeof *src, 5,
			                          shuffle, code, 1);

			assert_true(n > BLOSC_MAX_OVERHEAD);
			assert_true((size_t)n < srclen); /* a ramp compresses with all of them */
			assert_string_equal(blosc_cbuffer_complib(frame), libs[code]);
			blosc_cbuffer_metainfo(frame, &typesize, &flags);
			assert_int_equal(typesize, sizeof *src);
			assert_int_equal(flags & BLOSC_DOSHUFFLE, shuffle == 1 ? BLOSC_DOSHUFFLE : 0);
			assert_int_equal(flags & BLOSC_DOBITSHUFFLE,
			                 shuffle == 2 ? BLOSC_DOBITSHUFFLE : 0);

			memset(back, 0xAA, srclen);
			assert_int_equal(h5m_blosc_decode(frame, (size_t)n, back, srclen, 1),
			                 (long)srclen);
			assert_memory_equal(back, src, srclen);
			/* several decoding threads give the same bytes */
			memset(back, 0xAA, srclen);
			assert_int_equal(h5m_blosc_decode(frame, (size_t)n, back, srclen, 2),
			                 (long)srclen);
			assert_memory_equal(back, src, srclen);
		}
	}
	free(frame);
	free(back);
	free(src);
}

static void test_encode_rejects_unknown_parameters(void **state)
{
	unsigned char src[256] = {0}, dst[256 + BLOSC_MAX_OVERHEAD];

	(void)state;
	assert_int_equal(h5m_blosc_encode(src, 256, dst, sizeof dst, 8, 5, 1, 6, 1), -EINVAL);
	assert_int_equal(h5m_blosc_encode(src, 256, dst, sizeof dst, 8, 5, 1, -1, 1), -EINVAL);
	assert_int_equal(h5m_blosc_encode(src, 256, dst, sizeof dst, 8, 10, 1, 1, 1), -EINVAL);
	assert_int_equal(h5m_blosc_encode(src, 256, dst, sizeof dst, 8, -1, 1, 1, 1), -EINVAL);
	assert_int_equal(h5m_blosc_encode(src, 256, dst, sizeof dst, 8, 5, 3, 1, 1), -EINVAL);
	assert_int_equal(h5m_blosc_encode(src, 256, dst, sizeof dst, 0, 5, 1, 1, 1), -EINVAL);
	/* one byte less than srclen + BLOSC_MAX_OVERHEAD */
	assert_int_equal(h5m_blosc_encode(src, 256, dst, sizeof dst - 1, 8, 5, 1, 1, 1), -EINVAL);
	/* typesize over 255 is accepted and stored as 1 */
	assert_true(h5m_blosc_encode(src, 256, dst, sizeof dst, 300, 5, 1, 1, 1) > 0);
	assert_int_equal(dst[3], 1);
}

static void test_encode_of_incompressible_data_costs_only_the_header(void **state)
{
	enum { N = 65536 };
	unsigned char *src = malloc(N), *back = malloc(N), *frame = malloc(N + BLOSC_MAX_OVERHEAD);
	size_t typesize = 0;
	int flags = 0;

	(void)state;
	assert_non_null(src);
	assert_non_null(back);
	assert_non_null(frame);
	fill_random(src, N, 42);
	for (int code = 0; code <= 5; code++) {
		long n = h5m_blosc_encode(src, N, frame, N + BLOSC_MAX_OVERHEAD, 8, 9, 1, code, 1);

		assert_int_equal(n, N + BLOSC_MAX_OVERHEAD);
		blosc_cbuffer_metainfo(frame, &typesize, &flags);
		assert_int_equal(flags & BLOSC_MEMCPYED, BLOSC_MEMCPYED);
		assert_int_equal(h5m_blosc_decode(frame, (size_t)n, back, N, 1), N);
		assert_memory_equal(back, src, N);
	}
	free(frame);
	free(back);
	free(src);
}

/* ---- corrupt input ----------------------------------------------------------------------- */

/* Encodes a compressible 4 KiB ramp with `code`, byte shuffle; returns the frame length. */
static size_t make_frame(unsigned char *frame, size_t cap, double *src, int code)
{
	long n;

	h5fixture_ramp(src, 512);
	n = h5m_blosc_encode(src, 512 * sizeof *src, frame, cap, 8, 5, 1, code, 1);
	assert_true(n > BLOSC_MAX_OVERHEAD);
	return (size_t)n;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void test_decode_rejects_truncated_and_forged_headers(void **state)
{
	double src[512], back[512];
	unsigned char frame[sizeof src + BLOSC_MAX_OVERHEAD], bad[sizeof frame];
	size_t len = make_frame(frame, sizeof frame, src, 1);

	(void)state;
	assert_true(len < sizeof bad);
	/* the frame itself is fine */
	assert_int_equal(h5m_blosc_decode(frame, len, back, sizeof back, 1), (long)sizeof back);

	/* truncated: one byte short, header only, less than a header, nothing */
	assert_int_equal(h5m_blosc_decode(frame, len - 1, back, sizeof back, 1), -EIO);
	assert_int_equal(h5m_blosc_decode(frame, BLOSC_MIN_HEADER_LENGTH, back, sizeof back, 1),
	                 -EIO);
	assert_int_equal(h5m_blosc_decode(frame, 15, back, sizeof back, 1), -EIO);
	assert_int_equal(h5m_blosc_decode(frame, 0, back, sizeof back, 1), -EIO);
	assert_int_equal(h5m_blosc_decode(NULL, len, back, sizeof back, 1), -EIO);

	/* unknown format version */
	memcpy(bad, frame, len);
	bad[0] = 0xFF;
	assert_int_equal(h5m_blosc_decode(bad, len, back, sizeof back, 1), -EIO);

	/* cbytes claims more than there is */
	memcpy(bad, frame, len);
	put_le32(bad + 12, (uint32_t)len + 1);
	assert_int_equal(h5m_blosc_decode(bad, len, back, sizeof back, 1), -EIO);

	/* a byte after the frame: a stored chunk is exactly one frame */
	memcpy(bad, frame, len);
	bad[len] = 0;
	assert_int_equal(h5m_blosc_decode(bad, len + 1, back, sizeof back, 1), -EIO);

	/* cbytes claims less than there is */
	memcpy(bad, frame, len);
	put_le32(bad + 12, (uint32_t)len - 1);
	assert_int_equal(h5m_blosc_decode(bad, len, back, sizeof back, 1), -EIO);

	/* nbytes claims more than the destination holds */
	memcpy(bad, frame, len);
	put_le32(bad + 4, (uint32_t)sizeof back + 8);
	assert_int_equal(h5m_blosc_decode(bad, len, back, sizeof back, 1), -EIO);

	/* nbytes over BLOSC_MAX_BUFFERSIZE */
	memcpy(bad, frame, len);
	put_le32(bad + 4, 0xFFFFFFFFu);
	assert_int_equal(h5m_blosc_decode(bad, len, back, sizeof back, 1), -EIO);

	/* first block start points past the end of the frame */
	memcpy(bad, frame, len);
	put_le32(bad + 16, 0x7FFFFFF0u);
	assert_int_equal(h5m_blosc_decode(bad, len, back, sizeof back, 1), -EIO);

	/* destination one byte too small */
	assert_int_equal(h5m_blosc_decode(frame, len, back, sizeof back - 1, 1), -EIO);
}

static void test_decode_of_any_single_byte_corruption_is_eio_or_bounded(void **state)
{
	static const unsigned char xors[] = {0x01, 0x80, 0xFF};
	double src[512];
	unsigned char frame[sizeof src + BLOSC_MAX_OVERHEAD];
	struct guarded in, out;
	unsigned eio = 0, decoded = 0;

	(void)state;
	for (int code = 0; code <= 5; code++) {
		size_t len = make_frame(frame, sizeof frame, src, code);

		/* both buffers end at a PROT_NONE page: any over-read or over-write faults */
		guarded_alloc(&in, len);
		guarded_alloc(&out, sizeof src);
		for (size_t i = 0; i < len; i++) {
			for (size_t x = 0; x < sizeof xors; x++) {
				long n;

				memcpy(in.p, frame, len);
				in.p[i] ^= xors[x];
				n = h5m_blosc_decode(in.p, len, out.p, sizeof src, 1);
				assert_true(n == -EIO || (n >= 0 && (size_t)n <= sizeof src));
				if (n == -EIO)
					eio++;
				else
					decoded++;
			}
		}
		guarded_free(&out);
		guarded_free(&in);
	}
	/* blosc 1 has no checksum: some flips decode to wrong bytes, but most are caught */
	assert_true(eio > 0);
	print_message("single-byte corruptions: %u rejected, %u decoded\n", eio, decoded);
}

/* ---- through HDF5 ---------------------------------------------------------------------- */

static void test_hdf5_roundtrip_compresses_and_fills_cd_values(void **state)
{
	enum { ROWS = 64, COLS = 32, CROWS = 16 };
	const hsize_t dims[2] = {ROWS, COLS}, chunk[2] = {CROWS, COLS}, origin[2] = {0, 0};
	const unsigned cd_in[7] = {2, 2, 8, 0, 5, 1, 1};
	const unsigned chunkbytes = CROWS * COLS * sizeof(double);
	double *data = malloc(ROWS * COLS * sizeof *data), *back = malloc(ROWS * COLS * sizeof *back);
	unsigned char *raw, decoded[CROWS * COLS * sizeof(double)];
	unsigned cd[16], flags = 0;
	uint32_t mask;
	size_t ncd, rawlen;
	char path[4096];
	hid_t f, d;

	(void)state;
	assert_non_null(data);
	assert_non_null(back);
	assert_int_equal(h5m_blosc_register(), 0);
	h5fixture_ramp(data, ROWS * COLS);
	tmp_path(path, sizeof path, "roundtrip.h5");
	write_dataset(path, H5T_NATIVE_DOUBLE, 2, dims, chunk, 7, cd_in, data);

	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, "d", H5P_DEFAULT);
	assert_true(d >= 0);
	memset(back, 0, ROWS * COLS * sizeof *back);
	assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, data, ROWS * COLS * sizeof *data);

	ncd = read_cd_values(d, &flags, cd);
	assert_int_equal(ncd, 7);
	assert_int_equal(flags & H5Z_FLAG_OPTIONAL, H5Z_FLAG_OPTIONAL);
	assert_int_equal(cd[0], 2);
	assert_int_equal(cd[1], 2);
	assert_int_equal(cd[2], 8);
	assert_int_equal(cd[3], chunkbytes);
	assert_int_equal(cd[4], 5);
	assert_int_equal(cd[5], 1);
	assert_int_equal(cd[6], 1);

	/* chunk 0 on disk is an lz4 blosc frame, smaller than the chunk, filter not skipped */
	raw = h5fixture_read_raw_chunk(d, origin, &rawlen, &mask);
	assert_int_equal(mask, 0);
	assert_true(rawlen < chunkbytes);
	assert_string_equal(blosc_cbuffer_complib(raw), "LZ4");
	assert_int_equal(h5m_blosc_decode(raw, rawlen, decoded, sizeof decoded, 1),
	                 (long)chunkbytes);
	assert_memory_equal(decoded, data, chunkbytes);
	free(raw);

	H5Dclose(d);
	H5Fclose(f);
	free(back);
	free(data);
}

static void test_hdf5_filter_without_parameters_uses_blosclz_level5_shuffle(void **state)
{
	enum { N = 1000, CN = 256 };
	const hsize_t dims[1] = {N}, chunk[1] = {CN}, last[1] = {768};
	int32_t data[N], back[N];
	unsigned cd[16], flags = 0;
	unsigned char *raw, decoded[CN * sizeof(int32_t)];
	size_t ncd, rawlen, typesize = 0;
	int bflags = 0;
	uint32_t mask;
	char path[4096];
	hid_t f, d;

	(void)state;
	assert_int_equal(h5m_blosc_register(), 0);
	for (int i = 0; i < N; i++)
		data[i] = i * 3;
	tmp_path(path, sizeof path, "defaults.h5");
	write_dataset(path, H5T_NATIVE_INT32, 1, dims, chunk, 0, NULL, data);

	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, "d", H5P_DEFAULT);
	assert_true(d >= 0);
	assert_true(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, data, sizeof data);

	ncd = read_cd_values(d, &flags, cd);
	assert_int_equal(ncd, 4);
	assert_int_equal(cd[0], 2);
	assert_int_equal(cd[1], 2);
	assert_int_equal(cd[2], 4);
	assert_int_equal(cd[3], CN * 4);

	/* the partial last chunk (rows 768..999 of 1024) is stored full size */
	raw = h5fixture_read_raw_chunk(d, last, &rawlen, &mask);
	assert_int_equal(mask, 0);
	assert_string_equal(blosc_cbuffer_complib(raw), "BloscLZ");
	blosc_cbuffer_metainfo(raw, &typesize, &bflags);
	assert_int_equal(typesize, 4);
	assert_int_equal(bflags & (BLOSC_DOSHUFFLE | BLOSC_DOBITSHUFFLE), BLOSC_DOSHUFFLE);
	assert_int_equal(h5m_blosc_decode(raw, rawlen, decoded, sizeof decoded, 1),
	                 (long)sizeof decoded);
	assert_memory_equal(decoded, data + 768, (N - 768) * sizeof(int32_t));
	free(raw);

	H5Dclose(d);
	H5Fclose(f);
}

/* Returns the cd_values count of a new dataset of `type` (chunk 10 elements), slots in cd. */
static size_t cd_values_for_type(hid_t type, const char *name, unsigned cd[16])
{
	const hsize_t dims[1] = {20}, chunk[1] = {10};
	const unsigned cd_in[6] = {0, 0, 0, 0, 3, 0};
	unsigned flags = 0;
	char path[4096];
	size_t ncd;
	hid_t f, d;

	tmp_path(path, sizeof path, name);
	write_dataset(path, type, 1, dims, chunk, 6, cd_in, NULL);
	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, "d", H5P_DEFAULT);
	assert_true(d >= 0);
	ncd = read_cd_values(d, &flags, cd);
	H5Dclose(d);
	H5Fclose(f);
	return ncd;
}

static void test_set_local_uses_array_base_size_and_caps_large_types(void **state)
{
	const hsize_t adims[1] = {3};
	unsigned cd[16];
	hid_t arr, big;

	(void)state;
	assert_int_equal(h5m_blosc_register(), 0);

	/* int32[3]: typesize is the base 4, chunk bytes use the whole 12 */
	arr = H5Tarray_create2(H5T_NATIVE_INT32, 1, adims);
	assert_true(arr >= 0);
	assert_int_equal(cd_values_for_type(arr, "array.h5", cd), 6);
	assert_int_equal(cd[2], 4);
	assert_int_equal(cd[3], 10 * 12);
	assert_int_equal(cd[4], 3); /* user slots kept */
	assert_int_equal(cd[5], 0);
	H5Tclose(arr);

	/* a 300-byte opaque element: typesize 1, chunk bytes 3000 */
	big = H5Tcreate(H5T_OPAQUE, 300);
	assert_true(big >= 0);
	assert_true(H5Tset_tag(big, "blob") >= 0);
	assert_int_equal(cd_values_for_type(big, "big.h5", cd), 6);
	assert_int_equal(cd[2], 1);
	assert_int_equal(cd[3], 3000);
	H5Tclose(big);
}

static void test_hdf5_incompressible_chunk_is_stored_as_frame_with_mask_0(void **state)
{
	enum { N = 8192 };
	const hsize_t dims[1] = {N}, chunk[1] = {N}, origin[1] = {0};
	const unsigned cd_in[7] = {2, 2, 1, 0, 9, 1, 5};
	unsigned char *data = malloc(N), *back = malloc(N), *raw;
	size_t rawlen;
	uint32_t mask;
	char path[4096];
	hid_t f, d;

	(void)state;
	assert_non_null(data);
	assert_non_null(back);
	assert_int_equal(h5m_blosc_register(), 0);
	fill_random(data, N, 7);
	tmp_path(path, sizeof path, "random.h5");
	write_dataset(path, H5T_NATIVE_UCHAR, 1, dims, chunk, 7, cd_in, data);

	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, "d", H5P_DEFAULT);
	assert_true(d >= 0);
	assert_true(H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, data, N);

	/* hdf5-blosc would fail here (output buffer of nbytes) and HDF5 would store the chunk
	 * raw with mask 0x1; ours has room for the header, so every chunk is a frame */
	raw = h5fixture_read_raw_chunk(d, origin, &rawlen, &mask);
	assert_int_equal(mask, 0);
	assert_int_equal(rawlen, N + BLOSC_MAX_OVERHEAD);
	assert_memory_equal(raw + BLOSC_MAX_OVERHEAD, data, N); /* memcpy'd payload */
	free(raw);

	H5Dclose(d);
	H5Fclose(f);
	free(back);
	free(data);
}

static void test_hdf5_read_of_corrupt_stored_chunk_fails(void **state)
{
	enum { N = 512 };
	const hsize_t dims[1] = {N}, chunk[1] = {N}, origin[1] = {0};
	const unsigned cd_in[7] = {2, 2, 8, 0, 5, 1, 1};
	double data[N], back[N];
	unsigned char garbage[600];
	char path[4096];
	hid_t f, d;

	(void)state;
	assert_int_equal(h5m_blosc_register(), 0);
	h5fixture_ramp(data, N);
	tmp_path(path, sizeof path, "corrupt.h5");
	write_dataset(path, H5T_NATIVE_DOUBLE, 1, dims, chunk, 7, cd_in, data);

	/* replace the stored chunk with bytes that are not a blosc frame, filter not skipped */
	fill_random(garbage, sizeof garbage, 99);
	f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, "d", H5P_DEFAULT);
	assert_true(d >= 0);
	assert_true(H5Dwrite_chunk(d, H5P_DEFAULT, 0, origin, sizeof garbage, garbage) >= 0);
	H5Dclose(d);
	H5Fclose(f);

	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, "d", H5P_DEFAULT);
	assert_true(d >= 0);
	memset(back, 0, sizeof back);
	assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) < 0);
	H5Dclose(d);
	H5Fclose(f);
}

/* ---- files written by PyTables ----------------------------------------------------------- */

/* Run once: /lz4 and /blosclz are arange(30000.).reshape(-1, 3) EArrays (chunk 2730 x 3),
 * /random holds 65536 RandomState(0) bytes, also dumped raw to random.bin. */
static const char pytables_script[] =
	"import sys, numpy as np, tables\n"
	"d = sys.argv[1]\n"
	"a = np.arange(30000, dtype=\"f8\").reshape(-1, 3)\n"
	"r = np.frombuffer(np.random.RandomState(0).bytes(65536), dtype=\"u1\")\n"
	"r.tofile(d + \"/random.bin\")\n"
	"with tables.open_file(d + \"/pytables.h5\", \"w\") as f:\n"
	"    for name, lib in ((\"lz4\", \"blosc:lz4\"), (\"blosclz\", \"blosc\")):\n"
	"        e = f.create_earray(\"/\", name, tables.Float64Atom(), shape=(0, 3),\n"
	"                            filters=tables.Filters(complevel=5, complib=lib))\n"
	"        e.append(a)\n"
	"    f.create_carray(\"/\", \"random\", obj=r, chunkshape=(8192,),\n"
	"                    filters=tables.Filters(complevel=5, complib=\"blosc:lz4\"))\n";

/* Returns 1 when pytables.h5 exists in tmpdir (writing it on first call), 0 when
 * /usr/bin/python3 cannot import tables. */
static int have_pytables_file(void)
{
	static int have = -1;

	return h5fixture_python(&have, "tables", pytables_script, tmpdir);
}

/* Opens `name` in pytables.h5, checks its cd_values against `want` (`nwant` slots), reads
 * it back as doubles and compares with arange(30000). */
static void check_pytables_ramp(hid_t f, const char *name, size_t nwant, const unsigned *want)
{
	enum { N = 30000, CHUNK = 2730 * 3 };
	const hsize_t origin[2] = {0, 0};
	double decoded[CHUNK];
	unsigned cd[16], flags = 0;
	unsigned char *raw;
	size_t ncd, rawlen;
	uint32_t mask;
	hid_t d = H5Dopen2(f, name, H5P_DEFAULT);

	assert_true(d >= 0);
	ncd = read_cd_values(d, &flags, cd);
	assert_int_equal(ncd, nwant);
	assert_memory_equal(cd, want, nwant * sizeof *want);
	assert_int_equal(flags & H5Z_FLAG_OPTIONAL, H5Z_FLAG_OPTIONAL);

	h5fixture_check_arange(d, N);

	raw = h5fixture_read_raw_chunk(d, origin, &rawlen, &mask);
	assert_int_equal(mask, 0);
	assert_int_equal(h5m_blosc_decode(raw, rawlen, decoded, sizeof decoded, 1),
	                 (long)sizeof decoded);
	for (int i = 0; i < CHUNK; i++)
		assert_true(decoded[i] == (double)i);
	free(raw);
	H5Dclose(d);
}

static void test_reads_pytables_blosc_lz4_and_blosclz_datasets(void **state)
{
	const unsigned lz4[7] = {2, 2, 8, 65520, 5, 1, 1}, blosclz[6] = {2, 2, 8, 65520, 5, 1};
	char path[4096];
	hid_t f;

	(void)state;
	if (!have_pytables_file())
		skip();
	assert_int_equal(h5m_blosc_register(), 0);
	tmp_path(path, sizeof path, "pytables.h5");
	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	check_pytables_ramp(f, "/lz4", 7, lz4);
	check_pytables_ramp(f, "/blosclz", 6, blosclz);
	H5Fclose(f);
}

static void test_pytables_incompressible_chunk_is_raw_with_mask_1(void **state)
{
	enum { N = 65536, CHUNK = 8192 };
	const hsize_t origin[1] = {0};
	unsigned char *want = malloc(N), *back = malloc(N), *raw;
	size_t rawlen;
	uint32_t mask;
	char path[4096];
	FILE *bin;
	hid_t f, d;

	(void)state;
	assert_non_null(want);
	assert_non_null(back);
	if (!have_pytables_file()) {
		free(back);
		free(want);
		skip();
	}
	assert_int_equal(h5m_blosc_register(), 0);
	tmp_path(path, sizeof path, "random.bin");
	bin = fopen(path, "rb");
	assert_non_null(bin);
	assert_int_equal(fread(want, 1, N, bin), N);
	fclose(bin);

	tmp_path(path, sizeof path, "pytables.h5");
	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, "/random", H5P_DEFAULT);
	assert_true(d >= 0);
	assert_true(H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, want, N);

	/* hdf5-blosc's output buffer has no room for the header: the filter fails, HDF5 skips
	 * it and stores the chunk as is. A direct-chunk reader must look at the mask. */
	raw = h5fixture_read_raw_chunk(d, origin, &rawlen, &mask);
	assert_int_equal(mask, 1);
	assert_int_equal(rawlen, CHUNK);
	assert_memory_equal(raw, want, CHUNK);
	free(raw);

	H5Dclose(d);
	H5Fclose(f);
	free(back);
	free(want);
}

/* ---- fixture ----------------------------------------------------------------------------- */

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_adds_filter_once_and_restores_plugin_loading),
		cmocka_unit_test(test_roundtrip_every_compressor_and_shuffle),
		cmocka_unit_test(test_encode_rejects_unknown_parameters),
		cmocka_unit_test(test_encode_of_incompressible_data_costs_only_the_header),
		cmocka_unit_test(test_decode_rejects_truncated_and_forged_headers),
		cmocka_unit_test(test_decode_of_any_single_byte_corruption_is_eio_or_bounded),
		cmocka_unit_test(test_hdf5_roundtrip_compresses_and_fills_cd_values),
		cmocka_unit_test(test_hdf5_filter_without_parameters_uses_blosclz_level5_shuffle),
		cmocka_unit_test(test_set_local_uses_array_base_size_and_caps_large_types),
		cmocka_unit_test(test_hdf5_incompressible_chunk_is_stored_as_frame_with_mask_0),
		cmocka_unit_test(test_hdf5_read_of_corrupt_stored_chunk_fails),
		cmocka_unit_test(test_reads_pytables_blosc_lz4_and_blosclz_datasets),
		cmocka_unit_test(test_pytables_incompressible_chunk_is_raw_with_mask_1),
	};
	int failed;

	if (h5fixture_setup(tmpdir) != 0) /* tmpdir, and no installed plugin for HDF5 to find */
		return 1;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	avail_before_register = H5Zfilter_avail(H5M_BLOSC_FILTER_ID);

	failed = cmocka_run_group_tests(tests, NULL, NULL);
	tmptree_remove(tmpdir);
	return failed;
}
