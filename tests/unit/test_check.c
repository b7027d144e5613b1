/* test_check.c: the pre-mount check's walk and its child process, and the bounds the store puts
 * on sizes read from a damaged file (vlen descriptors, attribute values), without a mount. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "h5mount/check.h"
#include "h5mount/store.h"
#include "h5mount/vlen.h"
#include "tmptree.h"

#define BLOCK ((size_t)128 << 10)

static char dir[64];
static char path[128];

/* Writes path: /a/b (b with an int attribute), /a/v (3 vlen int rows, contiguous), /big_attr
 * group holding an attribute of 5 Mi int32 values (20 MiB). Returns the file offset of v's data. */
static haddr_t make_file_ub(hsize_t userblock)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fcpl = H5Pcreate(H5P_FILE_CREATE), f, a, b, big;
	hid_t sc = H5Screate(H5S_SCALAR), vt = H5Tvlen_create(H5T_NATIVE_INT32), sp, d, at;
	hsize_t n = 3, nbig = (hsize_t)5 << 20;
	int32_t one = 7, vals[6] = { 1, 2, 3, 4, 5, 6 }, *many = calloc(nbig, sizeof(int32_t));
	hvl_t rows[3] = { { 1, vals }, { 2, vals + 1 }, { 3, vals + 3 } };
	haddr_t off;

	/* The latest format: attributes over 64 KiB need dense attribute storage. */
	H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
	if (userblock)
		H5Pset_userblock(fcpl, userblock);
	f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
	H5Pclose(fcpl);
	H5Pclose(fapl);
	a = H5Gcreate2(f, "a", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	b = H5Gcreate2(a, "b", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	big = H5Gcreate2(f, "big_attr", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);

	assert_non_null(many);
	at = H5Acreate2(b, "n", H5T_STD_I32LE, sc, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(H5Awrite(at, H5T_NATIVE_INT32, &one) >= 0);
	H5Aclose(at);
	sp = H5Screate_simple(1, &nbig, NULL);
	at = H5Acreate2(big, "values", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(at >= 0);
	assert_true(H5Awrite(at, H5T_NATIVE_INT32, many) >= 0);
	H5Aclose(at);
	H5Sclose(sp);
	free(many);
	sp = H5Screate_simple(1, &n, NULL);
	d = H5Dcreate2(a, "v", vt, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(H5Dwrite(d, vt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
	off = H5Dget_offset(d);
	H5Dclose(d);
	H5Sclose(sp);
	H5Tclose(vt);
	H5Sclose(sc);
	H5Gclose(big);
	H5Gclose(b);
	H5Gclose(a);
	H5Fclose(f);
	assert_true(off != HADDR_UNDEF);
	return off;
}

static haddr_t make_file(void)
{
	return make_file_ub(0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/h5m-check-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/f.h5", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tmptree_remove(dir);
}

static struct h5m_node *lookup(struct h5m_store *s, const char *a, const char *b)
{
	int err;
	const struct h5m_dirent *e = h5m_store_lookup(s, h5m_store_node(s, 0), a, &err);

	assert_non_null(e);
	if (b) {
		e = h5m_store_lookup(s, h5m_store_node(s, e->node), b, &err);
		assert_non_null(e);
	}
	return h5m_store_node(s, e->node);
}

static void test_walk_visits_every_group_dataset_and_vlen_offsets(void **state)
{
	struct h5m_store *s;
	uint64_t nodes = 0, nrows;
	const uint64_t *off;
	char err[256];

	(void)state;
	make_file();
	assert_int_equal(h5m_store_open(path, false, BLOCK, 0, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(h5m_check_walk(s, &nodes), 0);
	assert_int_equal(nodes, 5); /* /, /a, /big_attr, /a/b, /a/v */
	/* The walk computed the offsets: a later call finds them. */
	assert_int_equal(h5m_vlen_offsets(s, lookup(s, "a", "v")->ds, &off, &nrows), 0);
	assert_int_equal(nrows, 3);
	assert_int_equal(off[3], 6);
	h5m_store_close(s);
}

static void test_check_of_a_sound_file_passes_and_reports_its_time(void **state)
{
	struct h5m_check_limits lim = { .max_rss = (size_t)1 << 30, .timeout = 60, .block_target = BLOCK };
	char why[256] = "";
	unsigned ms = 12345;

	(void)state;
	make_file();
	assert_int_equal(h5m_check_file(path, &lim, why, sizeof(why), &ms), 0);
	assert_true(ms < 60000);
}

static void test_check_leaves_a_file_it_cannot_open_to_the_caller(void **state)
{
	struct h5m_check_limits lim = { .max_rss = (size_t)1 << 30, .timeout = 60, .block_target = BLOCK };
	char why[256] = "";
	unsigned ms;
	FILE *f;

	(void)state;
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not HDF5\n", f);
	fclose(f);
	assert_int_equal(h5m_check_file(path, &lim, why, sizeof(why), &ms), 0);
}

/* H5Dget_offset includes a user block; the heap addresses in the descriptors do not. */
static void vlen_length_beyond_its_heap_object(hsize_t userblock)
{
	haddr_t at = make_file_ub(userblock);
	struct h5m_store *s;
	unsigned char len[4] = { 3, 0, 0, 0 };
	uint64_t bytes = 1;
	char err[256];
	int fd;

	assert_int_equal(h5m_store_open(path, false, BLOCK, 0, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(h5m_store_data_size(s, lookup(s, "a", "v")->ds, &bytes), 0);
	assert_int_equal(bytes, 6 * 4); /* sound: the check passes */
	h5m_store_close(s);
	/* Row 1's descriptor (16 bytes each: length, heap address, object index) claims 3 elements
	 * for its 2-element heap object: HDF5 1.10.8 reads it without complaint and serves 4 bytes
	 * it never wrote (a larger claim makes it allocate that much; a smaller one overflows). */
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, len, 4, (off_t)at + 16), 4);
	close(fd);
	assert_int_equal(h5m_store_open(path, false, BLOCK, 0, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(h5m_store_data_size(s, lookup(s, "a", "v")->ds, &bytes), -EIO);
	h5m_store_close(s);
}

static void test_vlen_length_beyond_its_heap_object_is_eio_before_hdf5_reads_it(void **state)
{
	(void)state;
	vlen_length_beyond_its_heap_object(0);
}

static void test_vlen_length_beyond_its_heap_object_is_eio_with_a_user_block(void **state)
{
	(void)state;
	vlen_length_beyond_its_heap_object(512);
}

static void test_attribute_of_more_than_16_mib_is_e2big_before_allocating(void **state)
{
	struct h5m_store *s;
	char err[256], *val = NULL;
	size_t len = 0;

	(void)state;
	make_file();
	assert_int_equal(h5m_store_open(path, false, BLOCK, 0, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(h5m_store_xattr_get(s, lookup(s, "big_attr", NULL), "values", &val, &len), -E2BIG);
	assert_null(val);
	h5m_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_walk_visits_every_group_dataset_and_vlen_offsets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_of_a_sound_file_passes_and_reports_its_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_leaves_a_file_it_cannot_open_to_the_caller, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlen_length_beyond_its_heap_object_is_eio_before_hdf5_reads_it, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_vlen_length_beyond_its_heap_object_is_eio_with_a_user_block, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_attribute_of_more_than_16_mib_is_e2big_before_allocating, setup,
		                                teardown),
	};

	if (h5m_store_global_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
