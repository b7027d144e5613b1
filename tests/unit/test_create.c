/* test_create.c: unit tests of create.c: descr -> HDF5 type round trips and refusals, the chunk
 * heuristic, -o compress parsing, datasets created and replaced (read back by h5py and PyTables),
 * new empty files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <hdf5.h>

#include "h5fixture.h"
#include "tmptree.h"
#include "h5mount/blosc.h"
#include "h5mount/create.h"
#include "h5mount/dtype.h"
#include "h5mount/npy.h"

static char tmpdir[] = "/tmp/test_create.XXXXXX";

/* Describes t and returns its canonical descr in out. */
static void describe(hid_t t, char *out, size_t cap)
{
	struct h5m_dtype dt;
	char why[160];

	assert_int_equal(h5m_dtype_describe(t, &dt, why, sizeof why), 0);
	assert_false(dt.converted);
	assert_int_equal(h5m_npy_descr_canon(dt.descr, out, cap), 0);
	h5m_dtype_destroy(&dt);
}

/* ---- descr -> type ---- */

static void test_every_served_descr_round_trips_through_the_created_type(void **state)
{
	/* input descr, and what the read path shows (NULL: the input itself) */
	static const char *const table[][2] = {
		{ "'<f8'", NULL }, { "'>f8'", NULL }, { "'<f4'", NULL }, { "'>f4'", NULL },
		{ "'<f2'", NULL }, { "'>f2'", NULL }, { "'<f16'", NULL },
		{ "'|b1'", NULL }, { "'|i1'", NULL }, { "'|u1'", NULL }, { "'<i1'", "'|i1'" },
		{ "'<i2'", NULL }, { "'>i2'", NULL }, { "'<u2'", NULL }, { "'>u2'", NULL },
		{ "'<i4'", NULL }, { "'>i4'", NULL }, { "'<u4'", NULL }, { "'>u4'", NULL },
		{ "'<i8'", NULL }, { "'>i8'", NULL }, { "'<u8'", NULL }, { "'>u8'", NULL },
		{ "'<c8'", NULL }, { "'>c8'", NULL }, { "'<c16'", NULL }, { "'>c16'", NULL },
		{ "'|S1'", NULL }, { "'|S5'", NULL }, { "'|V7'", NULL }, { "'|V1'", NULL },
		{ "[('a', '<i4'), ('b', '>f8'), ('s', '|S5')]", NULL },
		{ "[('a','|u1'),('','|V3'),('b','<f4'),('','|V8')]", NULL },
		{ "[('','|V2'),('a','|u1')]", NULL },
		{ "[('a','|u1'),('','|V1'),('','|V2'),('b','<i4')]", "[('a','|u1'),('','|V3'),('b','<i4')]" },
		{ "[('p', [('u', '|u1'), ('v', '<f4')]), ('q', '<i2')]", NULL },
		{ "[('p',[('u','|u1'),('','|V3'),('v','<f4')]),('','|V4'),('q','<i2')]", NULL },
		{ "[('arr', '<f4', (3,))]", NULL },
		{ "[('m', '>i2', (2, 3)), ('t', '|b1')]", NULL },
		{ "[('s', [('x', '|b1'), ('y', '<c8')], (2,))]", NULL },
		{ "[('c', '>c16'), ('v', '|V3'), ('z', '|S2', (4,))]", NULL },
		{ "[(\"a'b\", '<i4'), ('tab\\t', '<i2')]", "[('a\\'b','<i4'),('tab\\x09','<i2')]" },
		{ "[('\xc3\xa9t\xc3\xa9', '<f8')]", NULL },
		{ "[('a', '<i4', 3)]", "[('a','<i4',(3,))]" },
		{ "'=u4'", "'<u4'" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		const char *want = table[i][1] ? table[i][1] : table[i][0];
		char why[256] = "", got[4096], canon[4096];
		hid_t t;
		int rc = h5m_create_type(table[i][0], &t, why, sizeof why);

		if (rc)
			fail_msg("%s: %d %s", table[i][0], rc, why);
		describe(t, got, sizeof got);
		assert_int_equal(h5m_npy_descr_canon(want, canon, sizeof canon), 0);
		if (strcmp(got, canon))
			fail_msg("%s reads back as %s", table[i][0], got);
		H5Tclose(t);
	}
}

static void test_bool_is_h5pys_enum_and_strings_are_nullpad(void **state)
{
	char why[160];
	hid_t t;

	(void)state;
	assert_int_equal(h5m_create_type("'|b1'", &t, why, sizeof why), 0);
	assert_int_equal(H5Tget_class(t), H5T_ENUM);
	assert_int_equal(H5Tget_size(t), 1);
	H5Tclose(t);
	assert_int_equal(h5m_create_type("'|S4'", &t, why, sizeof why), 0);
	assert_int_equal(H5Tget_strpad(t), H5T_STR_NULLPAD);
	H5Tclose(t);
}

static void test_descrs_the_read_path_would_not_serve_are_refused_with_a_reason(void **state)
{
	static const struct {
		const char *descr;
		int rc;
	} table[] = {
		{ "'|O'", -ENOTSUP },
		{ "[('a','<i4'),('o','|O')]", -ENOTSUP },
		{ "'<U5'", -ENOTSUP },
		{ "'<M8[ns]'", -ENOTSUP },
		{ "'<m8[s]'", -ENOTSUP },
		{ "'<c32'", -ENOTSUP },
		{ "'<f3'", -ENOTSUP },
		{ "'>f16'", -ENOTSUP },
		{ "[('r','<f8'),('i','<f8')]", -ENOTSUP }, /* reads back as complex */
		{ "[(('title','a'),'<i4')]", -ENOTSUP },
		{ "[]", -ENOTSUP },
		{ "[('','|V4')]", -ENOTSUP },
		{ "'<x4'", -EINVAL },
		{ "'<i3'", -EINVAL },
		{ "'|f8'", -EINVAL },
		{ "'|S0'", -EINVAL },
		{ "'<i4", -EINVAL },
		{ "'<i4'x", -EINVAL },
		{ "<i4", -EINVAL },
		{ "[('a','<i4'),('a','<f8')]", -EINVAL },
		{ "[('','<i4')]", -EINVAL },
		{ "[('a','<i4',(0,))]", -EINVAL },
		{ "[('a','<i4',())]", -EINVAL },
		{ "[('a','<i4')", -EINVAL },
		{ "[('a\\q','<i4')]", -EINVAL },
		{ "[('a\\x00','<i4')]", -EINVAL },
	};
	(void)state;
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		char why[256] = "";
		hid_t t = 12345;
		int rc = h5m_create_type(table[i].descr, &t, why, sizeof why);

		if (rc != table[i].rc)
			fail_msg("%s: got %d (%s), want %d", table[i].descr, rc, why, table[i].rc);
		assert_true(strlen(why) > 5);
		assert_int_equal(t, H5I_INVALID_HID);
	}
}

static void test_deep_nesting_is_refused_without_recursing_forever(void **state)
{
	char descr[4096] = "", why[160];
	hid_t t;
	int n = 0;

	(void)state;
	for (int i = 0; i < 40; i++)
		n += snprintf(descr + n, sizeof descr - (size_t)n, "[('a',");
	n += snprintf(descr + n, sizeof descr - (size_t)n, "'<i4'");
	for (int i = 0; i < 40; i++)
		n += snprintf(descr + n, sizeof descr - (size_t)n, ")]");
	assert_int_equal(h5m_create_type(descr, &t, why, sizeof why), -ENOTSUP);
	assert_non_null(strstr(why, "nested"));
}

/* ---- chunk shape ---- */

static void check_chunk(size_t esize, unsigned trank, const uint64_t *tdims, uint64_t rows, size_t bytes,
                        const hsize_t *want)
{
	struct h5m_layout lay = { .chunk_bytes = bytes };
	hsize_t chunk[H5M_NPY_MAXDIMS];
	char why[160];

	assert_int_equal(h5m_create_chunk_dims(esize, trank, tdims, rows, &lay, chunk, why, sizeof why), 0);
	for (unsigned i = 0; i <= trank; i++)
		if (chunk[i] != want[i])
			fail_msg("axis %u: chunk %llu, want %llu", i, (unsigned long long)chunk[i], (unsigned long long)want[i]);
}

static void test_chunks_follow_pytables_expectedrows_with_whole_rows(void **state)
{
	const uint64_t three[] = { 3 }, big[] = { 100, 1000 }, huge[] = { 1000, 1000 }, img[] = { 64, 64 };

	(void)state;
	/* 10000 rows expected (the default) of under 1 MiB: 64 KiB chunks */
	check_chunk(8, 0, NULL, 0, 0, (const hsize_t[]){ 8192 });
	check_chunk(1, 0, NULL, 0, 0, (const hsize_t[]){ 65536 });
	/* (N, 3) doubles: PyTables' own EArray chunk (2730, 3) */
	check_chunk(8, 1, three, 0, 0, (const hsize_t[]){ 2730, 3 });
	/* 800 MB expected: two decades over 1 MiB, 256 KiB */
	check_chunk(8, 0, NULL, 100000000, 0, (const hsize_t[]){ 32768 });
	/* anything past 10 GB: capped at 1 MiB */
	check_chunk(8, 0, NULL, UINT64_MAX, 0, (const hsize_t[]){ 131072 });
	/* 16 KiB images, 10000 expected (156 MiB: 256 KiB): whole images, 16 per chunk */
	check_chunk(4, 2, img, 0, 0, (const hsize_t[]){ 16, 64, 64 });
	/* a row larger than the target is cut along its outer trailing axis */
	check_chunk(8, 2, big, 1, 0, (const hsize_t[]){ 1, 8, 1000 });
	check_chunk(8, 2, huge, 1, 0, (const hsize_t[]){ 1, 8, 1000 });
	/* chunk_size given */
	check_chunk(8, 0, NULL, 0, 4096, (const hsize_t[]){ 512 });
	check_chunk(8, 1, three, UINT64_MAX, 4096, (const hsize_t[]){ 170, 3 });
	check_chunk(8, 2, big, 0, 1024, (const hsize_t[]){ 1, 1, 128 });
}

static void test_chunks_refuse_zero_dims_and_elements_too_large(void **state)
{
	const uint64_t zero[] = { 4, 0 }, ovf[] = { UINT64_MAX / 2, 4 };
	hsize_t chunk[H5M_NPY_MAXDIMS];
	char why[160];

	(void)state;
	assert_int_equal(h5m_create_chunk_dims(8, 2, zero, 0, NULL, chunk, why, sizeof why), -EINVAL);
	assert_non_null(strstr(why, "dimension of 0"));
	assert_int_equal(h5m_create_chunk_dims(8, 2, ovf, 0, NULL, chunk, why, sizeof why), -EINVAL);
	assert_int_equal(h5m_create_chunk_dims((size_t)1 << 33, 0, NULL, 0, NULL, chunk, why, sizeof why), -EINVAL);
	assert_int_equal(h5m_create_chunk_dims(0, 0, NULL, 0, NULL, chunk, why, sizeof why), -EINVAL);
}

/* ---- -o compress ---- */

static void test_compress_option_parses_levels_and_refuses_the_rest(void **state)
{
	static const char *const bad[] = { "", "zip", "blosc:10", "blosc:", "gzip:x", "none:1", "gzip:-1", "blosc:5x",
		                           "lzf" };
	struct h5m_layout lay = { 0 };
	char why[160];

	(void)state;
	assert_int_equal(h5m_create_parse_compress("none", &lay, why, sizeof why), 0);
	assert_int_equal(lay.compress, H5M_COMPRESS_NONE);
	assert_int_equal(h5m_create_parse_compress("blosc", &lay, why, sizeof why), 0);
	assert_int_equal(lay.compress, H5M_COMPRESS_BLOSC);
	assert_int_equal(lay.level, 5);
	assert_int_equal(h5m_create_parse_compress("blosc:9", &lay, why, sizeof why), 0);
	assert_int_equal(lay.level, 9);
	assert_int_equal(h5m_create_parse_compress("gzip", &lay, why, sizeof why), 0);
	assert_int_equal(lay.compress, H5M_COMPRESS_GZIP);
	assert_int_equal(lay.level, 4);
	assert_int_equal(h5m_create_parse_compress("gzip:0", &lay, why, sizeof why), 0);
	assert_int_equal(lay.level, 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = 0;
		if (h5m_create_parse_compress(bad[i], &lay, why, sizeof why) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(strlen(why) > 5);
	}
}

/* ---- datasets, read back by h5py and PyTables ---- */

static hid_t new_file(const char *name)
{
	char path[512];
	hid_t f;

	h5fixture_path(path, sizeof path, tmpdir, name);
	f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(f >= 0);
	return f;
}

static hid_t make(hid_t loc, const char *name, const char *descr, unsigned trank, const uint64_t *tdims,
                  const char *compress, size_t chunk_bytes)
{
	struct h5m_layout lay = { .chunk_bytes = chunk_bytes };
	char why[256];
	hid_t t, d;
	int rc;

	assert_int_equal(h5m_create_parse_compress(compress, &lay, why, sizeof why), 0);
	assert_int_equal(h5m_create_type(descr, &t, why, sizeof why), 0);
	rc = h5m_create_dataset(loc, name, t, trank, tdims, 0, &lay, &d, why, sizeof why);
	if (rc)
		fail_msg("%s: %d %s", name, rc, why);
	H5Tclose(t);
	return d;
}

/* Appends `rows` rows from buf (memory type = the dataset's type). */
static void append(hid_t d, hsize_t rows, const void *buf)
{
	hsize_t dims[H5M_NPY_MAXDIMS], start[H5M_NPY_MAXDIMS] = { 0 };
	hid_t fs, ms, t;
	int r;

	fs = H5Dget_space(d);
	r = H5Sget_simple_extent_dims(fs, dims, NULL);
	H5Sclose(fs);
	start[0] = dims[0];
	dims[0] += rows;
	assert_true(H5Dset_extent(d, dims) >= 0);
	fs = H5Dget_space(d);
	dims[0] = rows;
	ms = H5Screate_simple(r, dims, NULL);
	assert_true(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, dims, NULL) >= 0);
	t = H5Dget_type(d);
	assert_true(H5Dwrite(d, t, ms, fs, H5P_DEFAULT, buf) >= 0);
	H5Tclose(t);
	H5Sclose(ms);
	H5Sclose(fs);
}

static const char datasets_check[] =
	"import sys, os\n"
	"import tables, h5py, numpy as np\n" /* tables first: it registers Blosc for h5py too */
	"p = os.path.join(sys.argv[1], 'made.h5')\n"
	"with h5py.File(p, 'r') as f:\n"
	"    d = f['plain']\n"
	"    assert d.dtype == np.dtype('<f8'), d.dtype\n"
	"    assert d.shape == (4, 3) and d.maxshape == (None, 3), (d.shape, d.maxshape)\n"
	"    assert d.chunks == (2730, 3), d.chunks\n"
	"    assert d.fillvalue == 0 and d.compression is None and not d.shuffle\n"
	"    assert d.id.get_create_plist().get_fill_time() == h5py.h5d.FILL_TIME_IFSET\n"
	"    assert (d[:] == np.arange(12.).reshape(4, 3)).all()\n"
	"    g = f['gz']\n"
	"    assert g.dtype == np.dtype([('a', '<i4'), ('b', '>f8'), ('s', 'S5')]), g.dtype\n"
	"    assert g.compression == 'gzip' and g.compression_opts == 6 and g.shuffle, (g.compression, g.shuffle)\n"
	"    assert g.chunks == (3855,) and g.maxshape == (None,), (g.chunks, g.maxshape)\n"
	"    assert g.shape == (2,) and g[1]['a'] == 2 and g[1]['b'] == 2.5 and g[1]['s'] == b'xy', g[:]\n"
	"    assert g.fillvalue == np.zeros((), g.dtype)\n"
	"    b = f['flags']\n"
	"    assert b.dtype == np.dtype('?') and b[:].tolist() == [True, False, True], (b.dtype, b[:])\n"
	"    c = f['blosc']\n"
	"    assert c.dtype == np.dtype('>i4') and c.maxshape == (None, 5), (c.dtype, c.maxshape)\n"
	"    assert (c[:] == np.arange(5000, dtype='>i4').reshape(1000, 5)).all()\n"
	"    s = f['sub']\n"
	"    assert s.dtype == np.dtype([('m', '<f4', (2,)), ('x', '|V3')]), s.dtype\n"
	"t = tables.open_file(p)\n"
	"e = t.get_node('/blosc')\n"
	"assert e.filters.complib == 'blosc' and e.filters.complevel == 7 and e.filters.shuffle, e.filters\n"
	"assert (e[:] == np.arange(5000).reshape(1000, 5)).all()\n"
	"assert e.chunkshape == (3276, 5), e.chunkshape\n"
	"assert t.get_node('/gz').filters.complib == 'zlib'\n"
	"assert (t.get_node('/plain')[:] == np.arange(12.).reshape(4, 3)).all()\n"
	"t.close()\n";

static void test_created_datasets_read_back_in_h5py_and_pytables(void **state)
{
	const uint64_t three[] = { 3 }, five[] = { 5 };
	hid_t f = new_file("made.h5"), d;
	double plain[12];
	int32_t ints[5000];
	unsigned char gz[2][17] = { { 0 } }, flags[3] = { 1, 0, 1 };
	char why[160];

	(void)state;
	for (int i = 0; i < 12; i++)
		plain[i] = i;
	d = make(f, "plain", "'<f8'", 1, three, "none", 0);
	append(d, 4, plain);
	H5Dclose(d);

	d = make(f, "gz", "[('a','<i4'),('b','>f8'),('s','|S5')]", 0, NULL, "gzip:6", 0);
	{
		int32_t a = 2;
		double b = 2.5;
		unsigned char be[8];

		memcpy(gz[1], &a, 4);
		memcpy(be, &b, 8);
		for (int i = 0; i < 8; i++)
			gz[1][4 + i] = be[7 - i];
		memcpy(gz[1] + 12, "xy", 2);
	}
	append(d, 2, gz);
	H5Dclose(d);

	d = make(f, "flags", "'|b1'", 0, NULL, "none", 0);
	append(d, 3, flags);
	H5Dclose(d);

	d = make(f, "blosc", "'>i4'", 1, five, "blosc:7", 0);
	for (int i = 0; i < 5000; i++)
		ints[i] = (int32_t)__builtin_bswap32((uint32_t)i);
	append(d, 1000, ints);
	H5Dclose(d);

	d = make(f, "sub", "[('m','<f4',(2,)),('x','|V3')]", 0, NULL, "none", 0);
	H5Dclose(d);

	/* the name is taken now */
	{
		hid_t t;

		assert_int_equal(h5m_create_type("'<f8'", &t, why, sizeof why), 0);
		assert_int_equal(h5m_create_dataset(f, "plain", t, 0, NULL, 0, NULL, &d, why, sizeof why), -EEXIST);
		assert_int_equal(h5m_create_dataset(f, "a/b", t, 0, NULL, 0, NULL, &d, why, sizeof why), -EINVAL);
		H5Tclose(t);
	}
	assert_true(H5Fclose(f) >= 0);
	if (!h5fixture_python_file(tmpdir, "check_made", "h5py, tables, numpy", datasets_check))
		skip();
}

static const char replace_fixture[] =
	"import sys, os, h5py, numpy as np\n"
	"with h5py.File(os.path.join(sys.argv[1], 'repl.h5'), 'w') as f:\n"
	"    d = f.create_dataset('x', data=np.arange(10, dtype='<i4'), maxshape=(None,), chunks=(4,))\n"
	"    d.attrs['units'] = 'volt'\n"
	"    d.attrs['fixed'] = np.bytes_(b'abc')\n"
	"    d.attrs['scale'] = np.array([1.5, 2.5])\n"
	"    d.attrs['ragged'] = np.array([np.array([1, 2, 3]), np.array([4])], dtype=h5py.vlen_dtype('i8'))\n"
	"    d.attrs['names'] = np.array(['a', 'bc'], dtype=h5py.string_dtype())\n"
	"    d.attrs['\\u00e9t\\u00e9'] = 7\n"
	"    d.attrs.create('empty', h5py.Empty('f4'))\n"
	"    d.attrs['ref'] = f.ref\n"
	"    f.create_group('g')\n"
	"    r = f.create_dataset('withreg', data=np.arange(4))\n"
	"    r.attrs['reg'] = r.regionref[1:3]\n";

static const char replace_check[] =
	"import sys, os, h5py, numpy as np, tables\n"
	"p = os.path.join(sys.argv[1], 'repl.h5')\n"
	"with h5py.File(p, 'r') as f:\n"
	"    d = f['x']\n"
	"    assert d.dtype == np.dtype('>f8') and d.shape == (0, 2) and d.maxshape == (None, 2), (d.dtype, d.shape)\n"
	"    a = d.attrs\n"
	"    assert sorted(a.keys()) == sorted(['units', 'fixed', 'scale', 'ragged', 'names', '\\u00e9t\\u00e9', 'empty', 'ref']), list(a.keys())\n"
	"    assert a['units'] == 'volt' and a['fixed'] == b'abc' and a['scale'].tolist() == [1.5, 2.5]\n"
	"    assert [list(x) for x in a['ragged']] == [[1, 2, 3], [4]]\n"
	"    assert [x.decode() if isinstance(x, bytes) else x for x in a['names']] == ['a', 'bc']\n"
	"    assert a['\\u00e9t\\u00e9'] == 7 and isinstance(a['empty'], h5py.Empty)\n"
	"    assert f[a['ref']].name == '/'\n"
	"    assert [k for k in f.keys()] == ['g', 'withreg', 'x'], list(f.keys())\n"
	"    assert f['withreg'].dtype == np.dtype('<i8'), 'the refused replace left withreg alone'\n"
	"t = tables.open_file(p)\n"
	"assert t.get_node('/x').shape == (0, 2)\n"
	"t.close()\n";

static void test_replace_copies_every_attribute_and_takes_the_old_name(void **state)
{
	const uint64_t two[] = { 2 };
	char path[512], why[256];
	hid_t f, t, d;

	(void)state;
	if (!h5fixture_python_file(tmpdir, "make_repl", "h5py, numpy", replace_fixture))
		skip();
	h5fixture_path(path, sizeof path, tmpdir, "repl.h5");
	f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	assert_true(f >= 0);
	assert_int_equal(h5m_create_type("'>f8'", &t, why, sizeof why), 0);
	assert_int_equal(h5m_create_replace(f, "nothere", t, 1, two, 0, NULL, &d, why, sizeof why), -ENOENT);
	assert_int_equal(h5m_create_replace(f, "g", t, 1, two, 0, NULL, &d, why, sizeof why), -EINVAL);
	assert_int_equal(h5m_create_replace(f, "withreg", t, 1, two, 0, NULL, &d, why, sizeof why), -ENOTSUP);
	assert_non_null(strstr(why, "region"));
	assert_int_equal(h5m_create_replace(f, "x", t, 1, two, 0, NULL, &d, why, sizeof why), 0);
	H5Dclose(d);
	H5Tclose(t);
	{
		H5G_info_t gi;

		assert_true(H5Gget_info(f, &gi) >= 0);
		assert_int_equal(gi.nlinks, 3); /* g, withreg, x: no temporary name left */
	}
	assert_true(H5Fclose(f) >= 0);
	if (!h5fixture_python_file(tmpdir, "check_repl", "h5py, tables, numpy", replace_check))
		skip();
}

/* ---- new files ---- */

static const char file_check[] =
	"import sys, os, subprocess, h5py, tables, numpy as np\n"
	"p = os.path.join(sys.argv[1], 'new.h5')\n"
	"with h5py.File(p, 'r') as f:\n"
	"    assert list(f.keys()) == []\n"
	"t = tables.open_file(p, 'a')\n"
	"t.create_earray('/', 'e', tables.Float64Atom(), (0,)).append(np.arange(5.))\n"
	"t.close()\n"
	"with h5py.File(p, 'a') as f:\n"
	"    assert f['e'][:].tolist() == [0, 1, 2, 3, 4]\n"
	"    f['h'] = np.arange(3)\n"
	"out = subprocess.run(['h5dump', '-H', p], capture_output=True, text=True)\n"
	"assert out.returncode == 0 and 'DATASET \"h\"' in out.stdout, out\n";

static void test_new_file_is_empty_plain_and_opens_everywhere(void **state)
{
	char path[512], why[256];
	struct stat st;
	hid_t f, fcpl;
	H5F_fspace_strategy_t strat;
	hbool_t persist = 1;
	hsize_t thresh;
	H5F_info2_t fi;

	(void)state;
	h5fixture_path(path, sizeof path, tmpdir, "new.h5");
	assert_int_equal(h5m_create_file(path, why, sizeof why), 0);
	assert_int_equal(stat(path, &st), 0);
	printf("# a new empty file is %lld bytes\n", (long long)st.st_size);
	assert_int_equal(h5m_create_file(path, why, sizeof why), -EEXIST);
	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	fcpl = H5Fget_create_plist(f);
	/* no persistent free-space manager: it does not survive a crash (create.c) */
	assert_true(H5Pget_file_space_strategy(fcpl, &strat, &persist, &thresh) >= 0);
	assert_false(persist);
	assert_true(H5Fget_info2(f, &fi) >= 0);
	assert_int_equal(fi.super.version, 0);
	H5Pclose(fcpl);
	H5Fclose(f);
	h5fixture_path(path, sizeof path, tmpdir, "nodir/new.h5");
	assert_int_equal(h5m_create_file(path, why, sizeof why), -EIO);
	assert_int_not_equal(stat(path, &st), 0);
	if (!h5fixture_python_file(tmpdir, "check_new", "h5py, tables, numpy", file_check))
		skip();
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_served_descr_round_trips_through_the_created_type),
		cmocka_unit_test(test_bool_is_h5pys_enum_and_strings_are_nullpad),
		cmocka_unit_test(test_descrs_the_read_path_would_not_serve_are_refused_with_a_reason),
		cmocka_unit_test(test_deep_nesting_is_refused_without_recursing_forever),
		cmocka_unit_test(test_chunks_follow_pytables_expectedrows_with_whole_rows),
		cmocka_unit_test(test_chunks_refuse_zero_dims_and_elements_too_large),
		cmocka_unit_test(test_compress_option_parses_levels_and_refuses_the_rest),
		cmocka_unit_test(test_created_datasets_read_back_in_h5py_and_pytables),
		cmocka_unit_test(test_replace_copies_every_attribute_and_takes_the_old_name),
		cmocka_unit_test(test_new_file_is_empty_plain_and_opens_everywhere),
	};
	int failed;

	if (h5fixture_setup(tmpdir) != 0)
		return 1;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	if (h5m_blosc_register() < 0)
		return 1;
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	tmptree_remove(tmpdir);
	return failed;
}
