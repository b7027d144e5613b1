/* test_jvfd.c: the journaling file driver: held writes, atomic commits, crash recovery, ENOSPC; no FUSE. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hdf5.h>

#include "tmptree.h"
#include "xorshift.h"
#include "h5mount/jvfd.h"

/* Per-process fixture, created in main() before the first test. */
static char tmpdir[] = "/tmp/test_jvfd.XXXXXX";
static char mnt[sizeof tmpdir + 8];   /* the tiny tmpfs of the ENOSPC test */
static bool mounted;

/* ---- helpers --------------------------------------------------------------------------- */

static void path_in(char *buf, size_t cap, const char *name)
{
	int n = snprintf(buf, cap, "%s/%s", tmpdir, name);

	assert_true(n > 0 && (size_t)n < cap);
}

static void journal_of(char *buf, size_t cap, const char *path)
{
	int n = snprintf(buf, cap, "%s%s", path, H5M_JVFD_SUFFIX);

	assert_true(n > 0 && (size_t)n < cap);
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The whole file as read with read(2); *len its size. Never NULL (a missing file fails the test). */
static unsigned char *slurp(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		assert_true(r > 0);
		got += (size_t)r;
	}
	close(fd);
	*len = got;
	return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static hid_t fapl_jvfd(void)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);

	assert_true(fapl >= 0);
	assert_int_equal(h5m_jvfd_set_fapl(fapl), 0);
	return fapl;
}

/* A plain sec2 reader that ignores the writer's flock (same process, another descriptor). */
static hid_t fapl_sec2_reader(void)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);

	assert_true(fapl >= 0);
	assert_true(H5Pset_fapl_sec2(fapl) >= 0);
	assert_true(H5Pset_file_locking(fapl, 0, 1) >= 0);
	return fapl;
}

static hid_t create_with(const char *path, hid_t fapl)
{
	hid_t fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);

	assert_true(fid >= 0);
	return fid;
}

static hid_t open_with(const char *path, unsigned flags, hid_t fapl)
{
	hid_t fid = H5Fopen(path, flags, fapl);

	assert_true(fid >= 0);
	return fid;
}

/* Creates a 1-D chunked dataset of n elements with unlimited maxdims. */
static hid_t create_extendable(hid_t loc, const char *name, hid_t type, hsize_t n, hsize_t chunk)
{
	hsize_t max = H5S_UNLIMITED;
	hid_t space = H5Screate_simple(1, &n, &max), dcpl = H5Pcreate(H5P_DATASET_CREATE), d;

	assert_true(H5Pset_chunk(dcpl, 1, &chunk) >= 0);
	d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	assert_true(d >= 0);
	H5Pclose(dcpl);
	H5Sclose(space);
	return d;
}

/* Grows a 1-D dataset to n elements and writes buf to elements [from, n). */
static void extend_and_write(hid_t d, hid_t memtype, hsize_t from, hsize_t n, const void *buf)
{
	hsize_t count = n - from;
	hid_t fs, ms;

	assert_true(H5Dset_extent(d, &n) >= 0);
	fs = H5Dget_space(d);
	ms = H5Screate_simple(1, &count, NULL);
	assert_true(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &from, NULL, &count, NULL) >= 0);
	assert_true(H5Dwrite(d, memtype, ms, fs, H5P_DEFAULT, buf) >= 0);
	H5Sclose(ms);
	H5Sclose(fs);
}

static hsize_t extent_of(hid_t d)
{
	hid_t s = H5Dget_space(d);
	hsize_t n = 0;

	assert_int_equal(H5Sget_simple_extent_dims(s, &n, NULL), 1);
	H5Sclose(s);
	return n;
}

/* Opens path read-only with fapl and checks that 1-D dataset `name` holds exactly n elements
 * equal to want (n * size bytes of memtype). */
static void expect_dataset_with(hid_t fapl, const char *path, const char *name, hid_t memtype, const void *want,
				hsize_t n)
{
	hid_t fid = open_with(path, H5F_ACC_RDONLY, fapl), d;
	size_t size = H5Tget_size(memtype);
	void *got = malloc(n * size + 1);

	d = H5Dopen2(fid, name, H5P_DEFAULT);
	assert_true(d >= 0);
	assert_int_equal(extent_of(d), n);
	assert_true(H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0);
	assert_memory_equal(got, want, n * size);
	free(got);
	H5Dclose(d);
	assert_true(H5Fclose(fid) >= 0);
}

/* Opens path with sec2 (no locking) and checks that 1-D dataset `name` holds exactly n
 * elements equal to want (n * size bytes of memtype). */
static void expect_dataset(const char *path, const char *name, hid_t memtype, const void *want, hsize_t n)
{
	hid_t fapl = fapl_sec2_reader(), fid = open_with(path, H5F_ACC_RDONLY, fapl), d;
	size_t size = H5Tget_size(memtype);
	void *got = malloc(n * size + 1);

	d = H5Dopen2(fid, name, H5P_DEFAULT);
	assert_true(d >= 0);
	assert_int_equal(extent_of(d), n);
	assert_true(H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0);
	assert_memory_equal(got, want, n * size);
	free(got);
	H5Dclose(d);
	assert_true(H5Fclose(fid) >= 0);
	H5Pclose(fapl);
}

/* ---- journal files written by hand (the format of src/jvfd.c) ------------------------- */

struct jbuild {
	unsigned char b[4096];
	size_t n;
};

static void jb_u64(struct jbuild *j, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		j->b[j->n++] = (unsigned char)(v >> (8 * i));
}

static void jb_bytes(struct jbuild *j, const void *p, size_t len)
{
	memcpy(j->b + j->n, p, len);
	j->n += len;
}

/* The journal checksum, written independently of the driver: FNV-1a over little-endian 64-bit
 * words, then over the trailing bytes. */
static uint64_t jsum(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w = 0;

		for (int k = 7; k >= 0; k--)
			w = w << 8 | p[i + (size_t)k];
		h = (h ^ w) * 0x100000001b3ull;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* The 1000 'a' bytes the hand-written journals are applied to, and the expected result. */
static void plain_before(unsigned char *b)
{
	memset(b, 'a', 1000);
}

static void plain_after(unsigned char *b)
{
	memset(b, 0, 1200);
	memset(b, 'a', 600);
	memcpy(b + 10, "HELLO", 5);
	memset(b + 700, 'z', 50);
}

/* A journal that cuts the file to 600 bytes, writes "HELLO" at 10 and 50 'z' at 700, and ends
 * it at 1200. Version 1 has the 40-byte header; version 2 and later add the binding to the
 * file at `path` (its st_dev and st_ino, its size 1000, and the region [0, 600) before and
 * after: plain_before and plain_after). */
static void build_journal(struct jbuild *j, uint32_t version, const char *path)
{
	unsigned char z[50], before[1000], after[1200];
	uint64_t body;
	struct stat st;

	memset(z, 'z', sizeof z);
	plain_before(before);
	plain_after(after);
	j->n = 0;
	jb_bytes(j, "H5MJRNL1", 8);
	for (int i = 0; i < 4; i++)
		j->b[j->n++] = (unsigned char)(version >> (8 * i));
	jb_bytes(j, "\0\0\0\0", 4);
	jb_u64(j, 2);
	jb_u64(j, 600);
	jb_u64(j, 1200);
	if (version >= 2) {
		assert_int_equal(stat(path, &st), 0);
		jb_u64(j, (uint64_t)st.st_dev);
		jb_u64(j, (uint64_t)st.st_ino);
		jb_u64(j, 1000);
		jb_u64(j, 0);
		jb_u64(j, 600);
		jb_u64(j, jsum(before, 600));
		jb_u64(j, jsum(after, 600));
	}
	jb_u64(j, 10);
	jb_u64(j, 5);
	jb_bytes(j, "HELLO", 5);
	jb_u64(j, 700);
	jb_u64(j, sizeof z);
	jb_bytes(j, z, sizeof z);
	body = j->n;
	jb_u64(j, body);
	jb_u64(j, jsum(j->b, body));
	jb_bytes(j, "H5MJEND1", 8);
}

/* ---- tests: HDF5 through the driver --------------------------------------------------- */

static void test_file_written_through_the_driver_reads_back_identically_with_sec2(void **state)
{
	char path[512], jpath[600];
	hsize_t dims[2] = { 200, 300 }, chunk[2] = { 50, 60 }, nflat = 10000, nsmall = 17;
	int32_t *gz = malloc(sizeof(int32_t) * 200 * 300), *gzback = malloc(sizeof(int32_t) * 200 * 300);
	double *flat = malloc(sizeof(double) * nflat), *flatback = malloc(sizeof(double) * nflat);
	unsigned char small[17], smallback[17];
	hid_t fapl = fapl_jvfd(), fid, space, dcpl, d, a, aspace, str, g;
	int answer = 42, answerback = 0;
	char units[8] = { 0 };

	(void)state;
	path_in(path, sizeof path, "created.h5");
	journal_of(jpath, sizeof jpath, path);
	for (int i = 0; i < 200 * 300; i++)
		gz[i] = i * 7 - 3;
	for (hsize_t i = 0; i < nflat; i++)
		flat[i] = (double)i * 0.5;
	fill_random(small, sizeof small, 3);

	fid = create_with(path, fapl);
	space = H5Screate_simple(2, dims, NULL);
	dcpl = H5Pcreate(H5P_DATASET_CREATE);
	assert_true(H5Pset_chunk(dcpl, 2, chunk) >= 0 && H5Pset_deflate(dcpl, 6) >= 0);
	d = H5Dcreate2(fid, "gz", H5T_STD_I32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	assert_true(d >= 0);
	assert_true(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, gz) >= 0);
	str = H5Tcopy(H5T_C_S1);
	H5Tset_size(str, 4);
	aspace = H5Screate(H5S_SCALAR);
	a = H5Acreate2(d, "units", str, aspace, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(a >= 0 && H5Awrite(a, str, "m/s") >= 0);
	H5Aclose(a);
	H5Dclose(d);
	H5Sclose(space);
	H5Pclose(dcpl);

	space = H5Screate_simple(1, &nflat, NULL);
	d = H5Dcreate2(fid, "flat", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(d >= 0);
	assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, flat) >= 0);
	H5Dclose(d);
	H5Sclose(space);

	g = H5Gcreate2(fid, "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	space = H5Screate_simple(1, &nsmall, NULL);
	d = H5Dcreate2(g, "small", H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(d >= 0 && H5Dwrite(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, small) >= 0);
	H5Dclose(d);
	H5Sclose(space);
	H5Gclose(g);
	a = H5Acreate2(fid, "answer", H5T_STD_I32LE, aspace, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &answer) >= 0);
	H5Aclose(a);
	H5Sclose(aspace);
	assert_true(H5Fclose(fid) >= 0);
	assert_false(exists(jpath)); /* the empty journal is removed at close */

	H5Pclose(fapl);
	fapl = fapl_sec2_reader();
	fid = open_with(path, H5F_ACC_RDONLY, fapl);
	d = H5Dopen2(fid, "gz", H5P_DEFAULT);
	assert_true(d >= 0 && H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, gzback) >= 0);
	assert_memory_equal(gzback, gz, sizeof(int32_t) * 200 * 300);
	a = H5Aopen(d, "units", H5P_DEFAULT);
	assert_true(a >= 0 && H5Aread(a, str, units) >= 0);
	assert_string_equal(units, "m/s");
	H5Aclose(a);
	H5Dclose(d);
	d = H5Dopen2(fid, "flat", H5P_DEFAULT);
	assert_true(d >= 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, flatback) >= 0);
	assert_memory_equal(flatback, flat, sizeof(double) * nflat);
	H5Dclose(d);
	d = H5Dopen2(fid, "g/small", H5P_DEFAULT);
	assert_true(d >= 0 && H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, smallback) >= 0);
	assert_memory_equal(smallback, small, sizeof small);
	H5Dclose(d);
	a = H5Aopen(fid, "answer", H5P_DEFAULT);
	assert_true(a >= 0 && H5Aread(a, H5T_NATIVE_INT, &answerback) >= 0);
	assert_int_equal(answerback, 42);
	H5Aclose(a);
	assert_true(H5Fclose(fid) >= 0);
	H5Tclose(str);
	H5Pclose(fapl);
	free(gz);
	free(gzback);
	free(flat);
	free(flatback);
}

static void test_committed_bytes_are_unchanged_until_the_next_commit(void **state)
{
	char path[512], jpath[600];
	int64_t v[1000], old[100];
	unsigned char *before, *now;
	size_t nbefore, nnow;
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fid, d;

	(void)state;
	path_in(path, sizeof path, "unchanged.h5");
	journal_of(jpath, sizeof jpath, path);
	for (int i = 0; i < 1000; i++)
		v[i] = i;
	fid = create_with(path, fapl);
	d = create_extendable(fid, "rows", H5T_STD_I64LE, 100, 64);
	assert_true(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
	H5Dclose(d);
	assert_true(H5Fclose(fid) >= 0);
	H5Pclose(fapl);

	fapl = fapl_jvfd();
	fid = open_with(path, H5F_ACC_RDWR, fapl);
	/* HDF5 commits once inside H5Fopen(RDWR): it sets the superblock's "open for writing"
	 * flag and flushes. No committed byte may change before the next H5Fflush; the new
	 * chunks may already lie past the committed end, where nothing refers to them. */
	before = slurp(path, &nbefore);
	assert_int_equal(h5m_jvfd_set_durable(fid, false), 0);
	d = H5Dopen2(fid, "rows", H5P_DEFAULT);
	for (int i = 0; i < 100; i++)
		v[i] = -i; /* rewrites the committed chunks: held */
	for (int i = 100; i < 1000; i++)
		v[i] = 3 * i;
	extend_and_write(d, H5T_NATIVE_INT64, 0, 1000, v);
	H5Dclose(d); /* evicts the dataset's chunks and object header into the driver */
	assert_true(h5m_jvfd_held_bytes(fid) >= 100 * sizeof(int64_t));
	now = slurp(path, &nnow);
	assert_true(nnow >= nbefore);
	assert_memory_equal(now, before, nbefore);
	free(now);
	for (int i = 0; i < 100; i++)
		old[i] = i;
	expect_dataset(path, "rows", H5T_NATIVE_INT64, old, 100); /* as committed */

	assert_true(H5Fflush(fid, H5F_SCOPE_GLOBAL) >= 0);
	assert_int_equal(h5m_jvfd_held_bytes(fid), 0);
	now = slurp(path, &nnow);
	assert_true(nnow > nbefore);
	free(now);
	expect_dataset(path, "rows", H5T_NATIVE_INT64, v, 1000);
	assert_true(H5Fclose(fid) >= 0);
	H5Pclose(fapl);
	free(before);
}

static void test_reads_before_a_commit_see_held_bytes(void **state)
{
	char path[512];
	int32_t v[4096], back[4096];
	unsigned char *before, *now;
	size_t nbefore, nnow;
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), dapl = H5Pcreate(H5P_DATASET_ACCESS), fid, d;

	(void)state;
	path_in(path, sizeof path, "held.h5");
	memset(v, 0, sizeof v);
	fid = create_with(path, fapl);
	d = create_extendable(fid, "d", H5T_STD_I32LE, 4096, 256);
	assert_true(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
	H5Dclose(d);
	assert_true(H5Fclose(fid) >= 0);
	H5Pclose(fapl);

	/* No chunk cache: chunks go straight to the driver and are read back from it. */
	assert_true(H5Pset_chunk_cache(dapl, 0, 0, 1.0) >= 0);
	fapl = fapl_jvfd();
	fid = open_with(path, H5F_ACC_RDWR, fapl);
	before = slurp(path, &nbefore); /* after the commit H5Fopen makes */
	d = H5Dopen2(fid, "d", dapl);
	assert_true(d >= 0);
	for (int i = 0; i < 4096; i++)
		v[i] = i + 1;
	assert_true(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
	assert_true(h5m_jvfd_held_bytes(fid) >= sizeof v);
	memset(back, 0, sizeof back);
	assert_true(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, v, sizeof v);
	H5Dclose(d);
	d = H5Dopen2(fid, "d", dapl);
	memset(back, 0, sizeof back);
	assert_true(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, v, sizeof v);
	H5Dclose(d);
	now = slurp(path, &nnow);
	assert_int_equal(nnow, nbefore);
	assert_memory_equal(now, before, nbefore);
	free(now);
	assert_true(H5Fclose(fid) >= 0);
	expect_dataset(path, "d", H5T_NATIVE_INT32, v, 4096);
	H5Pclose(dapl);
	H5Pclose(fapl);
	free(before);
}

static void test_flush_with_nothing_held_writes_no_journal(void **state)
{
	char path[512], jpath[600];
	unsigned char *before, *now;
	size_t nbefore, nnow;
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fid, d;
	struct stat st1, st2;
	H5FD_t *f;

	(void)state;
	path_in(path, sizeof path, "idle.h5");
	journal_of(jpath, sizeof jpath, path);
	fid = create_with(path, fapl);
	d = create_extendable(fid, "d", H5T_STD_I32LE, 10, 10);
	H5Dclose(d);
	assert_true(H5Fclose(fid) >= 0);
	H5Pclose(fapl);
	fapl = fapl_jvfd();

	/* At the driver's level: open, flush, close, with no write at all. */
	before = slurp(path, &nbefore);
	f = H5FDopen(path, H5F_ACC_RDWR, fapl, HADDR_UNDEF);
	assert_non_null(f);
	assert_true(H5FDset_eoa(f, H5FD_MEM_DEFAULT, nbefore) >= 0);
	assert_true(H5FDflush(f, H5P_DEFAULT, 0) >= 0);
	assert_false(exists(jpath));
	assert_true(H5FDclose(f) >= 0);
	assert_false(exists(jpath));
	now = slurp(path, &nnow);
	assert_int_equal(nnow, nbefore);
	assert_memory_equal(now, before, nbefore);
	free(now);
	free(before);

	/* Through HDF5, which commits its "open for writing" flag inside H5Fopen: later flushes
	 * with nothing new neither rewrite the journal nor touch the file. */
	fid = open_with(path, H5F_ACC_RDWR, fapl);
	before = slurp(path, &nbefore);
	assert_int_equal(stat(jpath, &st1), 0);
	assert_int_equal(st1.st_size, 0);
	assert_true(H5Fflush(fid, H5F_SCOPE_GLOBAL) >= 0);
	assert_true(H5Fflush(fid, H5F_SCOPE_GLOBAL) >= 0);
	assert_int_equal(stat(jpath, &st2), 0);
	assert_int_equal(st2.st_ino, st1.st_ino); /* a commit renames a new journal into place */
	assert_int_equal(st2.st_size, 0);
	assert_int_equal(h5m_jvfd_held_bytes(fid), 0);
	assert_int_equal(h5m_jvfd_take_error(fid), 0);
	now = slurp(path, &nnow);
	assert_int_equal(nnow, nbefore);
	assert_memory_equal(now, before, nbefore);
	free(now);
	free(before);
	assert_true(H5Fclose(fid) >= 0);
	assert_false(exists(jpath));
	H5Pclose(fapl);
}

static void test_helpers_reject_files_not_using_the_driver(void **state)
{
	char path[512];
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fid;

	(void)state;
	path_in(path, sizeof path, "sec2.h5");
	assert_true(H5Pset_fapl_sec2(fapl) >= 0);
	fid = create_with(path, fapl);
	assert_int_equal(h5m_jvfd_set_durable(fid, true), -EINVAL);
	assert_int_equal(h5m_jvfd_take_error(fid), -EINVAL);
	assert_int_equal(h5m_jvfd_held_bytes(fid), 0);
	assert_int_equal(h5m_jvfd_set_durable(fapl, true), -EINVAL); /* not even a file */
	assert_int_equal(h5m_jvfd_set_durable(H5I_INVALID_HID, true), -EINVAL);
	assert_int_equal(h5m_jvfd_held_bytes(H5I_INVALID_HID), 0);
	H5Eclear2(H5E_DEFAULT);
	assert_true(H5Fclose(fid) >= 0);
	H5Pclose(fapl);
}

static void test_held_bytes_count_writes_until_a_commit(void **state)
{
	char path[512];
	unsigned char v[8192];
	hid_t fapl = fapl_jvfd(), dapl = H5Pcreate(H5P_DATASET_ACCESS), fid, d;
	size_t held;

	(void)state;
	path_in(path, sizeof path, "count.h5");
	assert_true(H5Pset_chunk_cache(dapl, 0, 0, 1.0) >= 0);
	fid = create_with(path, fapl);
	assert_int_equal(h5m_jvfd_set_durable(fid, false), 0);
	d = create_extendable(fid, "d", H5T_STD_U8LE, 0, 4096);
	H5Dclose(d);
	assert_true(H5Fflush(fid, H5F_SCOPE_GLOBAL) >= 0);
	assert_int_equal(h5m_jvfd_held_bytes(fid), 0);
	d = H5Dopen2(fid, "d", dapl);
	fill_random(v, sizeof v, 9);
	extend_and_write(d, H5T_NATIVE_UCHAR, 0, sizeof v, v);
	/* New chunks go past the committed end, straight into the file: only metadata is held. */
	assert_true(h5m_jvfd_held_bytes(fid) < 4096);
	assert_true(H5Fflush(fid, H5F_SCOPE_GLOBAL) >= 0);
	assert_int_equal(h5m_jvfd_held_bytes(fid), 0);
	/* Rewriting committed chunks is held until the commit. */
	fill_random(v, sizeof v, 10);
	extend_and_write(d, H5T_NATIVE_UCHAR, 0, sizeof v, v);
	held = h5m_jvfd_held_bytes(fid);
	assert_true(held >= sizeof v);
	assert_true(held < 4 * sizeof v);
	H5Dclose(d);
	assert_int_equal(h5m_jvfd_set_durable(fid, true), 0);
	assert_true(H5Fflush(fid, H5F_SCOPE_GLOBAL) >= 0);
	assert_int_equal(h5m_jvfd_held_bytes(fid), 0);
	assert_int_equal(h5m_jvfd_take_error(fid), 0);
	assert_true(H5Fclose(fid) >= 0);
	expect_dataset(path, "d", H5T_NATIVE_UCHAR, v, sizeof v);
	H5Pclose(dapl);
	H5Pclose(fapl);
}

static void test_relative_paths_survive_a_change_of_directory(void **state)
{
	char path[512], jpath[600], cwd[512];
	unsigned char v[5000], back[5000];
	hid_t fapl = fapl_jvfd(), dapl = H5Pcreate(H5P_DATASET_ACCESS), fid, d;

	(void)state;
	path_in(path, sizeof path, "relative.h5");
	journal_of(jpath, sizeof jpath, path);
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(tmpdir), 0);
	fid = create_with("relative.h5", fapl);
	assert_int_equal(chdir("/"), 0); /* as a daemon does */
	assert_true(H5Pset_chunk_cache(dapl, 0, 0, 1.0) >= 0);
	d = create_extendable(fid, "d", H5T_STD_U8LE, 0, 1000);
	H5Dclose(d);
	d = H5Dopen2(fid, "d", dapl);
	fill_random(v, sizeof v, 4);
	extend_and_write(d, H5T_NATIVE_UCHAR, 0, sizeof v, v);
	assert_true(H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, v, sizeof v);
	H5Dclose(d);
	assert_true(H5Fflush(fid, H5F_SCOPE_GLOBAL) >= 0);
	assert_true(exists(jpath)); /* next to the file, not in / */
	assert_true(H5Fclose(fid) >= 0);
	assert_false(exists(jpath));
	assert_int_equal(chdir(cwd), 0);
	expect_dataset(path, "d", H5T_NATIVE_UCHAR, v, sizeof v);
	H5Pclose(dapl);
	H5Pclose(fapl);
}

/* ---- tests: the driver's byte level, against a flat model ----------------------------- */

#define MODEL_CAP (1u << 20)

static void expect_disk_is_model(const char *path, const unsigned char *model, size_t size)
{
	size_t n;
	unsigned char *disk = slurp(path, &n);

	assert_int_equal(n, size);
	assert_memory_equal(disk, model, size);
	free(disk);
}

static void test_random_writes_truncates_and_commits_match_a_flat_model(void **state)
{
	char path[512], jpath[600];
	unsigned char *model = calloc(1, MODEL_CAP), *buf = malloc(MODEL_CAP);
	size_t size = 0;
	uint64_t seed = 0x1234567;
	hid_t fapl = fapl_jvfd();
	H5FD_t *f;

	(void)state;
	assert_non_null(model);
	assert_non_null(buf);
	path_in(path, sizeof path, "model.bin");
	journal_of(jpath, sizeof jpath, path);
	f = H5FDopen(path, H5F_ACC_RDWR | H5F_ACC_CREAT | H5F_ACC_TRUNC, fapl, HADDR_UNDEF);
	assert_non_null(f);
	assert_true(H5FDset_eoa(f, H5FD_MEM_DEFAULT, MODEL_CAP) >= 0);
	for (int op = 0; op < 20000; op++) {
		uint64_t r = rnd(&seed) % 1000;

		if (r < 650) {
			/* Mostly small writes clustered in the first 64 KiB, so they overlap. */
			size_t len = 1 + rnd(&seed) % (r < 600 ? 64 : 40000);
			uint64_t addr = rnd(&seed) % ((r < 500 ? 65536 : MODEL_CAP) - len + 1);

			fill_random(model + addr, len, rnd(&seed));
			assert_true(H5FDwrite(f, H5FD_MEM_DRAW, H5P_DEFAULT, addr, len, model + addr) >= 0);
			if (addr + len > size)
				size = addr + len;
		} else if (r < 900) {
			size_t len = 1 + rnd(&seed) % 70000;
			uint64_t addr = rnd(&seed) % (MODEL_CAP - len + 1);

			memset(buf, 0xee, len);
			assert_true(H5FDread(f, H5FD_MEM_DRAW, H5P_DEFAULT, addr, len, buf) >= 0);
			assert_memory_equal(buf, model + addr, len);
		} else if (r < 960) {
			uint64_t to = size / 2 + rnd(&seed) % (MODEL_CAP - size / 2);

			assert_true(H5FDset_eoa(f, H5FD_MEM_DEFAULT, to) >= 0);
			assert_true(H5FDtruncate(f, H5P_DEFAULT, 0) >= 0);
			assert_true(H5FDset_eoa(f, H5FD_MEM_DEFAULT, MODEL_CAP) >= 0);
			if (to < size)
				memset(model + to, 0, size - to);
			size = to;
		} else {
			assert_true(H5FDflush(f, H5P_DEFAULT, 0) >= 0);
			expect_disk_is_model(path, model, size);
		}
		assert_int_equal(H5FDget_eof(f, H5FD_MEM_DEFAULT), size);
	}
	assert_true(H5FDclose(f) >= 0);
	expect_disk_is_model(path, model, size);
	assert_false(exists(jpath));
	H5Pclose(fapl);
	free(buf);
	free(model);
}

/* Reads [lo, hi) through the driver and compares it with the model. */
static void expect_driver_reads(H5FD_t *f, const unsigned char *model, uint64_t lo, uint64_t hi)
{
	unsigned char *buf = malloc(hi - lo);

	assert_non_null(buf);
	memset(buf, 0xee, hi - lo);
	assert_true(H5FDread(f, H5FD_MEM_DRAW, H5P_DEFAULT, lo, hi - lo, buf) >= 0);
	assert_memory_equal(buf, model + lo, hi - lo);
	free(buf);
}

static void write_model(H5FD_t *f, unsigned char *model, uint64_t addr, size_t len, int c)
{
	memset(model + addr, c, len);
	assert_true(H5FDwrite(f, H5FD_MEM_DRAW, H5P_DEFAULT, addr, len, model + addr) >= 0);
}

static void truncate_model(H5FD_t *f, unsigned char *model, uint64_t *size, uint64_t to)
{
	assert_true(H5FDset_eoa(f, H5FD_MEM_DEFAULT, to) >= 0);
	assert_true(H5FDtruncate(f, H5P_DEFAULT, 0) >= 0);
	assert_true(H5FDset_eoa(f, H5FD_MEM_DEFAULT, 4096) >= 0);
	if (to < *size)
		memset(model + to, 0, *size - to);
	*size = to;
}

static void test_writes_past_the_committed_end_go_to_the_file_and_truncate_like_held_ones(void **state)
{
	char path[512];
	unsigned char model[4096] = { 0 }, committed[1510], *disk;
	uint64_t size = 1000;
	size_t n;
	hid_t fapl = fapl_jvfd();
	struct stat st;
	H5FD_t *f;

	(void)state;
	path_in(path, sizeof path, "direct.bin");
	f = H5FDopen(path, H5F_ACC_RDWR | H5F_ACC_CREAT | H5F_ACC_TRUNC, fapl, HADDR_UNDEF);
	assert_non_null(f);
	assert_true(H5FDset_eoa(f, H5FD_MEM_DEFAULT, 4096) >= 0);
	write_model(f, model, 0, 1000, 'a');
	assert_true(H5FDflush(f, H5P_DEFAULT, 0) >= 0);
	expect_disk_is_model(path, model, 1000);

	/* Past the committed end: in the file at once, nothing held, the committed bytes intact. */
	write_model(f, model, 1100, 100, 'b');
	size = 1200;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 1200);
	expect_disk_is_model(path, model, 1200);
	expect_driver_reads(f, model, 900, 1300);

	/* A truncation inside them, then growth: the cut-off bytes read as zeros, on disk too. */
	truncate_model(f, model, &size, 1150);
	assert_int_equal(H5FDget_eof(f, H5FD_MEM_DEFAULT), 1150);
	write_model(f, model, 1500, 10, 'c');
	size = 1510;
	assert_int_equal(H5FDget_eof(f, H5FD_MEM_DEFAULT), 1510);
	expect_driver_reads(f, model, 0, 1600);
	/* Below the committed end: held; the disk keeps 'a'. */
	write_model(f, model, 990, 20, 'd');
	expect_driver_reads(f, model, 0, 1600);
	assert_true(H5FDflush(f, H5P_DEFAULT, 0) >= 0);
	expect_disk_is_model(path, model, 1510);
	memcpy(committed, model, 1510);

	/* A truncation below the committed end drops the direct bytes; later writes are held. */
	write_model(f, model, 1600, 50, 'e');
	size = 1650;
	truncate_model(f, model, &size, 500);
	assert_int_equal(H5FDget_eof(f, H5FD_MEM_DEFAULT), 500);
	write_model(f, model, 1520, 30, 'f');
	size = 1550;
	expect_driver_reads(f, model, 0, 1700);
	disk = slurp(path, &n);
	assert_true(n >= 1510);
	assert_memory_equal(disk, committed, 1510);
	free(disk);
	assert_true(H5FDflush(f, H5P_DEFAULT, 0) >= 0);
	expect_disk_is_model(path, model, 1550);
	assert_true(H5FDclose(f) >= 0);
	expect_disk_is_model(path, model, 1550);
	H5Pclose(fapl);
}

static void test_many_small_writes_in_any_order_stay_fast(void **state)
{
	enum { N = 200000, W = 8 };
	char path[512];
	unsigned char *model = calloc(N, W * 2), *back = malloc((size_t)N * W * 2);
	uint64_t seed = 77;
	hid_t fapl = fapl_jvfd();
	struct timespec t0, t1;
	H5FD_t *f;

	(void)state;
	path_in(path, sizeof path, "small.bin");
	f = H5FDopen(path, H5F_ACC_RDWR | H5F_ACC_CREAT | H5F_ACC_TRUNC, fapl, HADDR_UNDEF);
	assert_non_null(f);
	assert_true(H5FDset_eoa(f, H5FD_MEM_DEFAULT, (haddr_t)N * W * 2) >= 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Descending adjacent writes (each one before the last), then random ones. */
	for (int i = N - 1; i >= 0; i--) {
		fill_random(model + (size_t)i * W, W, (uint64_t)i + 1);
		assert_true(H5FDwrite(f, H5FD_MEM_DRAW, H5P_DEFAULT, (haddr_t)i * W, W, model + (size_t)i * W) >= 0);
	}
	for (int i = 0; i < N; i++) {
		uint64_t addr = rnd(&seed) % ((uint64_t)N * W * 2 - W);

		fill_random(model + addr, W, rnd(&seed));
		assert_true(H5FDwrite(f, H5FD_MEM_DRAW, H5P_DEFAULT, addr, W, model + addr) >= 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 30); /* quadratic copying would take hours */
	assert_true(H5FDread(f, H5FD_MEM_DRAW, H5P_DEFAULT, 0, (size_t)N * W * 2, back) >= 0);
	assert_memory_equal(back, model, (size_t)N * W * 2);
	assert_true(H5FDclose(f) >= 0);
	free(back);
	back = slurp(path, &(size_t){ 0 });
	assert_memory_equal(back, model, (size_t)N * W); /* the file ends at the last byte written */
	free(back);
	free(model);
	H5Pclose(fapl);
}

/* ---- tests: crashes and recovery ------------------------------------------------------- */

static void test_killed_writer_leaves_the_last_commit(void **state)
{
	char path[512], jpath[600], err[256];
	int32_t ones[1000], twos[1000];
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fid, d;
	int status;
	pid_t pid;

	(void)state;
	path_in(path, sizeof path, "killed.h5");
	journal_of(jpath, sizeof jpath, path);
	for (int i = 0; i < 1000; i++) {
		ones[i] = 1;
		twos[i] = 2;
	}
	fid = create_with(path, fapl);
	d = create_extendable(fid, "d", H5T_STD_I32LE, 1000, 100);
	assert_true(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ones) >= 0);
	H5Dclose(d);
	assert_true(H5Fclose(fid) >= 0);
	H5Pclose(fapl);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The child: commit A (all twos), then more changes, then die without a commit. */
		static int32_t threes[50000];
		hid_t cfapl = H5Pcreate(H5P_FILE_ACCESS), cfid, cd;

		for (int i = 0; i < 50000; i++)
			threes[i] = 3;
		if (h5m_jvfd_set_fapl(cfapl) != 0 || (cfid = H5Fopen(path, H5F_ACC_RDWR, cfapl)) < 0)
			_exit(2);
		h5m_jvfd_set_durable(cfid, false);
		cd = H5Dopen2(cfid, "d", H5P_DEFAULT);
		if (cd < 0 || H5Dwrite(cd, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, twos) < 0 ||
		    H5Fflush(cfid, H5F_SCOPE_GLOBAL) < 0)
			_exit(3);
		extend_and_write(cd, H5T_NATIVE_INT32, 0, 50000, threes);
		H5Dclose(cd); /* new chunks are past the committed end, changed headers are held */
		if (h5m_jvfd_held_bytes(cfid) == 0)
			_exit(4);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	assert_true(exists(jpath)); /* emptied by commit A, never removed: the child never closed */
	assert_int_equal(h5m_jvfd_recover(path, err, sizeof err), 0);
	assert_false(exists(jpath));
	expect_dataset(path, "d", H5T_NATIVE_INT32, twos, 1000);

	/* The dead child's chunks are still past the committed end: the file takes new appends. */
	fapl = fapl_jvfd();
	fid = open_with(path, H5F_ACC_RDWR, fapl);
	d = H5Dopen2(fid, "d", H5P_DEFAULT);
	assert_true(d >= 0);
	extend_and_write(d, H5T_NATIVE_INT32, 1000, 2000, ones);
	H5Dclose(d);
	assert_true(H5Fclose(fid) >= 0);
	H5Pclose(fapl);
	{
		static int32_t want[2000];

		for (int i = 0; i < 2000; i++)
			want[i] = i < 1000 ? 2 : 1;
		expect_dataset(path, "d", H5T_NATIVE_INT32, want, 2000);
	}
}

static void test_writer_killed_between_journal_and_file_is_replayed(void **state)
{
	enum { BIG = 4 << 20, NEW = 300000 };
	char path[512], jpath[600], err[256];
	unsigned char *big = malloc(BIG);
	int32_t *sevens = malloc(sizeof(int32_t) * NEW);
	hsize_t nbig = BIG;
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fid, d, space;
	int status;
	pid_t pid;

	(void)state;
	path_in(path, sizeof path, "halfway.h5");
	journal_of(jpath, sizeof jpath, path);
	fill_random(big, BIG, 5);
	for (int i = 0; i < NEW; i++)
		sevens[i] = 7;
	fid = create_with(path, fapl);
	space = H5Screate_simple(1, &nbig, NULL);
	d = H5Dcreate2(fid, "big", H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(d >= 0 && H5Dwrite(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, big) >= 0);
	H5Dclose(d);
	H5Sclose(space);
	d = create_extendable(fid, "d", H5T_STD_I32LE, 1000, 1000);
	assert_true(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, sevens) >= 0);
	H5Dclose(d);
	assert_true(H5Fclose(fid) >= 0);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The child dies right after its journal is complete, before the file is touched:
		 * exactly a daemon killed between the journal and the file. */
		hid_t cfapl = H5Pcreate(H5P_FILE_ACCESS), cfid, cd;

		if (h5m_jvfd_set_fapl(cfapl) != 0 || (cfid = H5Fopen(path, H5F_ACC_RDWR, cfapl)) < 0)
			_exit(2);
		h5m_jvfd_set_durable(cfid, false);
		if ((cd = H5Dopen2(cfid, "d", H5P_DEFAULT)) < 0)
			_exit(3);
		extend_and_write(cd, H5T_NATIVE_INT32, 1000, NEW, sevens);
		H5Dclose(cd);
		h5m_jvfd_crash_after_journal(true);
		H5Fflush(cfid, H5F_SCOPE_GLOBAL);
		_exit(5); /* not reached */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 86);

	assert_true(exists(jpath));
	/* The driver refuses to open a file with an unrecovered journal for writing. */
	H5Pclose(fapl);
	fapl = fapl_jvfd();
	assert_true(H5Fopen(path, H5F_ACC_RDWR, fapl) < 0);
	H5Eclear2(H5E_DEFAULT);
	assert_int_equal(h5m_jvfd_recover(path, err, sizeof err), 1);
	assert_false(exists(jpath));
	expect_dataset(path, "d", H5T_NATIVE_INT32, sevens, NEW);
	expect_dataset(path, "big", H5T_NATIVE_UCHAR, big, BIG);
	fid = open_with(path, H5F_ACC_RDONLY, fapl); /* and now it opens */
	assert_true(H5Fclose(fid) >= 0);
	H5Pclose(fapl);
	free(sevens);
	free(big);
}

static void test_recover_replays_a_complete_journal_idempotently(void **state)
{
	char path[512], jpath[600], err[256] = "";
	unsigned char plain[1000], want[1200], *got;
	struct jbuild j;
	size_t n;

	(void)state;
	path_in(path, sizeof path, "replay.bin");
	journal_of(jpath, sizeof jpath, path);
	plain_before(plain);
	plain_after(want);
	spit(path, plain, sizeof plain);
	build_journal(&j, 2, path);
	for (int round = 0; round < 2; round++) { /* a replay cut short by a crash is replayed again */
		spit(jpath, j.b, j.n);
		assert_int_equal(h5m_jvfd_recover(path, err, sizeof err), 1);
		assert_false(exists(jpath));
		got = slurp(path, &n);
		assert_int_equal(n, sizeof want);
		assert_memory_equal(got, want, sizeof want);
		free(got);
	}
	assert_int_equal(h5m_jvfd_recover(path, err, sizeof err), 0); /* no journal */
	assert_string_equal(err, "");
}

static void test_recover_discards_incomplete_and_corrupt_journals(void **state)
{
	char path[512], jpath[600], jtmp[700], err[256];
	unsigned char plain[1000], *got;
	struct jbuild j;
	size_t n;

	(void)state;
	path_in(path, sizeof path, "discard.bin");
	journal_of(jpath, sizeof jpath, path);
	snprintf(jtmp, sizeof jtmp, "%s.tmp", jpath);
	plain_before(plain);
	spit(path, plain, sizeof plain);
	build_journal(&j, 2, path);
	for (size_t cut = 0; cut < j.n; cut++) {
		spit(jpath, j.b, cut);
		assert_int_equal(h5m_jvfd_recover(path, err, sizeof err), 0);
		assert_false(exists(jpath));
	}
	for (size_t at = 0; at < j.n; at++) {
		if (at >= 8 && at < 12)
			continue; /* the version: see the next test */
		j.b[at] ^= 0x40;
		spit(jpath, j.b, j.n);
		j.b[at] ^= 0x40;
		assert_int_equal(h5m_jvfd_recover(path, err, sizeof err), 0);
		assert_false(exists(jpath));
	}
	spit(jtmp, j.b, j.n); /* never renamed into place: never applied */
	assert_int_equal(h5m_jvfd_recover(path, err, sizeof err), 0);
	assert_false(exists(jtmp));
	got = slurp(path, &n);
	assert_int_equal(n, sizeof plain);
	assert_memory_equal(got, plain, sizeof plain);
	free(got);
}

static void test_recover_keeps_a_journal_of_an_unknown_version(void **state)
{
	char path[512], jpath[600], err[256] = "";
	unsigned char plain[1000], *got;
	struct jbuild j;
	size_t n;

	(void)state;
	path_in(path, sizeof path, "version.bin");
	journal_of(jpath, sizeof jpath, path);
	plain_before(plain);
	spit(path, plain, sizeof plain);
	build_journal(&j, 3, path);
	spit(jpath, j.b, j.n);
	assert_int_equal(h5m_jvfd_recover(path, err, sizeof err), -EPROTO);
	assert_non_null(strstr(err, "version"));
	assert_true(exists(jpath));
	got = slurp(path, &n);
	assert_int_equal(n, sizeof plain);
	assert_memory_equal(got, plain, sizeof plain);
	free(got);
}

static void test_recover_refuses_a_file_locked_by_another_writer(void **state)
{
	char path[512], jpath[600], err[256] = "";
	unsigned char plain[1000], want[1200], *got;
	struct jbuild j;
	size_t n;
	int fd;

	(void)state;
	path_in(path, sizeof path, "locked.bin");
	journal_of(jpath, sizeof jpath, path);
	plain_before(plain);
	plain_after(want);
	spit(path, plain, sizeof plain);
	build_journal(&j, 2, path);
	spit(jpath, j.b, j.n);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	assert_int_equal(h5m_jvfd_recover(path, err, sizeof err), -EBUSY);
	assert_true(strlen(err) > 0);
	assert_true(exists(jpath));
	close(fd);
	assert_int_equal(h5m_jvfd_recover(path, err, sizeof err), 1);
	got = slurp(path, &n);
	assert_int_equal(n, sizeof want);
	assert_memory_equal(got, want, sizeof want);
	free(got);
	assert_int_equal(h5m_jvfd_recover("/nonexistent-dir/x.h5", err, sizeof err), 0);
}

/* ---- tests: journals bound to the file state they belong to ---------------------------- */

enum { FX_OLD = 1000, FX_NEW = 3000, FX_C = 2000 };

/* The crash fixture's data: "d" (int32, extendable, chunks of 100) and "c" (contiguous
 * doubles) before (old) and after (new) the child's commit. */
static void fixture_values(bool new_state, int32_t *d, double *c)
{
	for (int i = 0; i < (new_state ? FX_NEW : FX_OLD); i++)
		d[i] = new_state ? 7 * i + 1 : i;
	for (int i = 0; i < FX_C; i++)
		c[i] = new_state ? -(double)i : i / 2.0;
}

/* Creates path (over any file there, keeping its inode) with a user block of ub bytes (0 for
 * none) and the fixture's old state, written with sec2. */
static void make_fixture(const char *path, hsize_t ub)
{
	static int32_t d0[FX_NEW];
	static double c0[FX_C];
	hsize_t nc = FX_C;
	hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fid, d, space;

	fixture_values(false, d0, c0);
	assert_true(fcpl >= 0);
	if (ub)
		assert_true(H5Pset_userblock(fcpl, ub) >= 0);
	fid = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
	assert_true(fid >= 0);
	d = create_extendable(fid, "d", H5T_STD_I32LE, FX_OLD, 100);
	assert_true(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, d0) >= 0);
	H5Dclose(d);
	space = H5Screate_simple(1, &nc, NULL);
	d = H5Dcreate2(fid, "c", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(d >= 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, c0) >= 0);
	H5Dclose(d);
	H5Sclose(space);
	assert_true(H5Fclose(fid) >= 0);
	H5Pclose(fcpl);
}

/* An unrelated HDF5 file at path: one dataset "e" of 50 bytes. */
static void make_other(const char *path)
{
	unsigned char e[50];
	hsize_t n = sizeof e;
	hid_t fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), space, d;

	memset(e, 0x5a, sizeof e);
	assert_true(fid >= 0);
	space = H5Screate_simple(1, &n, NULL);
	d = H5Dcreate2(fid, "e", H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(d >= 0 && H5Dwrite(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, e) >= 0);
	H5Dclose(d);
	H5Sclose(space);
	assert_true(H5Fclose(fid) >= 0);
}

/* A child process opens path through the driver, writes the fixture's new state (d grown to
 * FX_NEW, c overwritten in place) and commits, killed right after the journal when
 * `after_journal`, or after `writes` writes into the file when writes > 0. Returns its exit
 * status: 86 when killed, 0 when the commit finished. */
static int child_commit(const char *path, bool after_journal, unsigned writes)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		static int32_t dn[FX_NEW];
		static double cn[FX_C];
		hid_t cfapl = H5Pcreate(H5P_FILE_ACCESS), cfid, cd, cc;

		fixture_values(true, dn, cn);
		if (h5m_jvfd_set_fapl(cfapl) != 0 || (cfid = H5Fopen(path, H5F_ACC_RDWR, cfapl)) < 0)
			_exit(2);
		h5m_jvfd_set_durable(cfid, false);
		if ((cd = H5Dopen2(cfid, "d", H5P_DEFAULT)) < 0 || (cc = H5Dopen2(cfid, "c", H5P_DEFAULT)) < 0)
			_exit(3);
		extend_and_write(cd, H5T_NATIVE_INT32, 0, FX_NEW, dn);
		if (H5Dwrite(cc, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, cn) < 0)
			_exit(4);
		H5Dclose(cd);
		H5Dclose(cc);
		h5m_jvfd_crash_after_journal(after_journal);
		h5m_jvfd_crash_after_file_writes(writes);
		if (H5Fflush(cfid, H5F_SCOPE_GLOBAL) < 0)
			_exit(5);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* Checks the fixture's state in path, read with fapl (a sec2 reader when fapl < 0). */
static void expect_fixture(const char *path, bool new_state, hid_t fapl)
{
	static int32_t d[FX_NEW];
	static double c[FX_C];
	hid_t use = fapl >= 0 ? fapl : fapl_sec2_reader();

	fixture_values(new_state, d, c);
	expect_dataset_with(use, path, "d", H5T_NATIVE_INT32, d, new_state ? FX_NEW : FX_OLD);
	expect_dataset_with(use, path, "c", H5T_NATIVE_DOUBLE, c, FX_C);
	if (fapl < 0)
		H5Pclose(use);
}

static void expect_same_bytes(const char *path, const unsigned char *want, size_t n)
{
	size_t got_n;
	unsigned char *got = slurp(path, &got_n);

	assert_int_equal(got_n, n);
	assert_memory_equal(got, want, n);
	free(got);
}

static void test_journal_is_refused_for_a_file_renamed_or_copied_over_or_truncated(void **state)
{
	char path[512], jpath[600], other[512], err[1024];
	hid_t fapl = fapl_jvfd();

	(void)state;
	path_in(path, sizeof path, "replaced.h5");
	path_in(other, sizeof other, "other.h5");
	journal_of(jpath, sizeof jpath, path);
	for (int how = 0; how < 3; how++) {
		unsigned char *jbytes, *fbytes;
		size_t jn, fn;
		struct stat before, after;

		make_fixture(path, 0);
		assert_int_equal(child_commit(path, true, 0), 86);
		assert_int_equal(stat(path, &before), 0);
		jbytes = slurp(jpath, &jn);
		if (how == 0) { /* renamed over: another inode */
			make_other(other);
			assert_int_equal(rename(other, path), 0);
		} else if (how == 1) { /* copied over (cp new.h5 file.h5): the same inode, other bytes */
			unsigned char *o;
			size_t on;

			make_other(other);
			o = slurp(other, &on);
			spit(path, o, on);
			free(o);
		} else { /* cut below the superblock region */
			assert_int_equal(truncate(path, 100), 0);
		}
		assert_int_equal(stat(path, &after), 0);
		assert_true(how == 0 ? after.st_ino != before.st_ino : after.st_ino == before.st_ino);
		fbytes = slurp(path, &fn);

		err[0] = '\0';
		assert_int_equal(h5m_jvfd_recover(path, err, sizeof err), -ESTALE);
		assert_non_null(strstr(err, "belongs to another state of"));
		assert_non_null(strstr(err, "move the journal away"));
		assert_null(strchr(err, '\n'));
		err[0] = '\0';
		assert_int_equal(h5m_jvfd_inspect(path, err, sizeof err), -ESTALE);
		assert_non_null(strstr(err, "belongs to another state of"));
		assert_true(H5Fopen(path, H5F_ACC_RDONLY, fapl) < 0); /* not shown either */
		assert_true(H5Fopen(path, H5F_ACC_RDWR, fapl) < 0);
		H5Eclear2(H5E_DEFAULT);
		expect_same_bytes(path, fbytes, fn); /* neither the file ... */
		expect_same_bytes(jpath, jbytes, jn); /* ... nor the journal was touched */
		free(fbytes);
		free(jbytes);
		assert_int_equal(unlink(jpath), 0);
	}
	H5Pclose(fapl);
}

static void test_a_commit_killed_at_any_write_into_the_file_is_replayed(void **state)
{
	static const hsize_t userblocks[] = { 0, 512, 8192 }; /* superblock at 0, 512, 8192 */
	char path[512], jpath[600], err[512];

	(void)state;
	path_in(path, sizeof path, "midway.h5");
	journal_of(jpath, sizeof jpath, path);
	for (size_t u = 0; u < sizeof userblocks / sizeof userblocks[0]; u++) {
		unsigned k;

		for (k = 1; k < 200; k++) {
			int status;

			make_fixture(path, userblocks[u]);
			status = child_commit(path, false, k);
			if (status == 0)
				break; /* the commit made fewer than k writes: every window was tried */
			assert_int_equal(status, 86);
			err[0] = '\0';
			if (h5m_jvfd_recover(path, err, sizeof err) != 1)
				fail_msg("userblock %llu, killed after write %u: %s", (unsigned long long)userblocks[u], k, err);
			assert_false(exists(jpath));
			expect_fixture(path, true, -1);
		}
		assert_true(k > 3 && k < 200); /* several extents, then the region, then it finished */
		expect_fixture(path, true, -1);
	}
}

static void test_a_replay_killed_at_any_write_is_replayed_again(void **state)
{
	char path[512], jpath[600], err[512];
	unsigned k;

	(void)state;
	path_in(path, sizeof path, "replay-twice.h5");
	journal_of(jpath, sizeof jpath, path);
	for (k = 1; k < 200; k++) {
		int status;
		pid_t pid;

		make_fixture(path, 512);
		assert_int_equal(child_commit(path, true, 0), 86);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			char cerr[512];

			h5m_jvfd_crash_after_file_writes(k);
			_exit(h5m_jvfd_recover(path, cerr, sizeof cerr) == 1 ? 0 : 3);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		if (WEXITSTATUS(status) == 0)
			break;
		assert_int_equal(WEXITSTATUS(status), 86);
		assert_true(exists(jpath));
		err[0] = '\0';
		if (h5m_jvfd_recover(path, err, sizeof err) != 1)
			fail_msg("replay killed after write %u: %s", k, err);
		expect_fixture(path, true, -1);
	}
	assert_true(k > 3 && k < 200);
	assert_false(exists(jpath));
	expect_fixture(path, true, -1);
}

static void test_read_only_open_shows_a_complete_journal_and_changes_nothing(void **state)
{
	char path[512], jpath[600], err[512];
	hid_t fapl = fapl_jvfd();

	(void)state;
	path_in(path, sizeof path, "shown.h5");
	journal_of(jpath, sizeof jpath, path);
	for (unsigned writes = 0; writes < 3; writes++) { /* killed after the journal, or midway */
		unsigned char *jbytes, *fbytes;
		size_t jn, fn;

		make_fixture(path, 0);
		assert_int_equal(child_commit(path, writes == 0, writes), 86);
		jbytes = slurp(jpath, &jn);
		fbytes = slurp(path, &fn);
		err[0] = '\0';
		assert_int_equal(h5m_jvfd_inspect(path, err, sizeof err), 1);
		assert_string_equal(err, "");
		expect_fixture(path, true, fapl); /* the state a replay gives, from memory */
		expect_same_bytes(path, fbytes, fn);
		expect_same_bytes(jpath, jbytes, jn);
		if (writes == 0) {
			/* An incomplete journal (its commit never touched the file) is ignored and kept. */
			spit(jpath, jbytes, jn / 2);
			assert_int_equal(h5m_jvfd_inspect(path, err, sizeof err), 0);
			expect_fixture(path, false, fapl);
			assert_true(exists(jpath));
			expect_same_bytes(path, fbytes, fn);
		}
		free(fbytes);
		free(jbytes);
		assert_int_equal(unlink(jpath), 0);
	}
	H5Pclose(fapl);
}

static void test_recover_refuses_a_version_1_journal_and_keeps_it(void **state)
{
	char path[512], jpath[600], err[512] = "";
	unsigned char plain[1000];
	struct jbuild j;

	(void)state;
	path_in(path, sizeof path, "v1.bin");
	journal_of(jpath, sizeof jpath, path);
	plain_before(plain);
	spit(path, plain, sizeof plain);
	build_journal(&j, 1, path);
	spit(jpath, j.b, j.n);
	assert_int_equal(h5m_jvfd_recover(path, err, sizeof err), -ESTALE);
	assert_non_null(strstr(err, "older h5mount"));
	assert_non_null(strstr(err, "move the journal away"));
	err[0] = '\0';
	assert_int_equal(h5m_jvfd_inspect(path, err, sizeof err), -ESTALE);
	assert_non_null(strstr(err, "older h5mount"));
	expect_same_bytes(jpath, j.b, j.n);
	expect_same_bytes(path, plain, sizeof plain);
}

/* ---- tests: a full file system --------------------------------------------------------- */

static int mount_tiny(void **state)
{
	(void)state;
	snprintf(mnt, sizeof mnt, "%s/mnt", tmpdir);
	if (mkdir(mnt, 0700) != 0 && errno != EEXIST)
		return -1;
	mounted = mount("tmpfs", mnt, "tmpfs", 0, "size=16m") == 0;
	return 0;
}

static int unmount_tiny(void **state)
{
	(void)state;
	if (mounted && umount2(mnt, MNT_DETACH) != 0)
		return -1;
	mounted = false;
	return 0;
}

/* Fills the file system of `path` with a file at path, leaving `leave` bytes free. */
static void fill_filler(const char *path, uint64_t leave)
{
	unsigned char *block = calloc(1, 1 << 20);
	struct statvfs vfs;
	uint64_t room;
	int fd;

	assert_non_null(block);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fstatvfs(fd, &vfs), 0);
	room = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	assert_true(room > leave);
	for (uint64_t left = room - leave; left > 0;) {
		size_t n = left > (1 << 20) ? (1 << 20) : (size_t)left;

		assert_int_equal(write(fd, block, n), (ssize_t)n);
		left -= n;
	}
	assert_int_equal(close(fd), 0);
	free(block);
}

static void test_commit_on_a_full_disk_fails_with_enospc_and_keeps_the_old_state(void **state)
{
	enum { CHUNK = 65536, OLD = CHUNK, NEW = CHUNK * 65 };
	char path[512], jpath[600], jtmp[700], filler[512];
	unsigned char *data = malloc(NEW), *back = malloc(NEW);
	hid_t fapl = fapl_jvfd(), fid, d;
	struct stat st;

	(void)state;
	if (!mounted)
		skip(); /* not root, or no tmpfs */
	snprintf(path, sizeof path, "%s/full.h5", mnt);
	snprintf(filler, sizeof filler, "%s/filler", mnt);
	journal_of(jpath, sizeof jpath, path);
	snprintf(jtmp, sizeof jtmp, "%s.tmp", jpath);
	fill_random(data, NEW, 11);

	fid = create_with(path, fapl);
	d = create_extendable(fid, "d", H5T_STD_U8LE, OLD, CHUNK);
	assert_true(H5Dwrite(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
	assert_true(H5Fflush(fid, H5F_SCOPE_GLOBAL) >= 0);

	fill_filler(filler, 1 << 20); /* leaves 1 MiB; then hold about 4 MiB more */
	extend_and_write(d, H5T_NATIVE_UCHAR, OLD, NEW, data + OLD);

	assert_true(H5Fflush(fid, H5F_SCOPE_GLOBAL) < 0);
	H5Eclear2(H5E_DEFAULT);
	assert_int_equal(h5m_jvfd_take_error(fid), ENOSPC);
	assert_int_equal(h5m_jvfd_take_error(fid), 0);
	/* What did not fit on the disk as it was written is held instead. */
	assert_true(h5m_jvfd_held_bytes(fid) >= NEW - OLD - (1 << 20));
	assert_false(exists(jtmp));
	assert_true(stat(jpath, &st) != 0 || st.st_size == 0);
	expect_dataset(path, "d", H5T_NATIVE_UCHAR, data, OLD); /* the old commit, intact */
	memset(back, 0, NEW);
	assert_int_equal(extent_of(d), NEW); /* the driver still sees the new bytes */
	assert_true(H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, data, NEW);

	assert_int_equal(unlink(filler), 0);
	assert_true(H5Fflush(fid, H5F_SCOPE_GLOBAL) >= 0);
	assert_int_equal(h5m_jvfd_take_error(fid), 0);
	assert_int_equal(h5m_jvfd_held_bytes(fid), 0);
	expect_dataset(path, "d", H5T_NATIVE_UCHAR, data, NEW);

	/* A commit that fails inside H5Fclose: the close still succeeds (HDF5 1.10.8 would crash
	 * at exit otherwise) and the file keeps its last commit. */
	fill_filler(filler, 1 << 20);
	fill_random(data, NEW, 12);
	assert_true(H5Dwrite(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
	H5Dclose(d);
	assert_true(H5Fclose(fid) >= 0);
	assert_false(exists(jtmp));
	assert_true(stat(jpath, &st) != 0 || st.st_size == 0);
	fill_random(data, NEW, 11);
	expect_dataset(path, "d", H5T_NATIVE_UCHAR, data, NEW);
	free(back);
	free(data);
}

/* ---- fixture ----------------------------------------------------------------------------- */

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_written_through_the_driver_reads_back_identically_with_sec2),
		cmocka_unit_test(test_committed_bytes_are_unchanged_until_the_next_commit),
		cmocka_unit_test(test_reads_before_a_commit_see_held_bytes),
		cmocka_unit_test(test_flush_with_nothing_held_writes_no_journal),
		cmocka_unit_test(test_helpers_reject_files_not_using_the_driver),
		cmocka_unit_test(test_held_bytes_count_writes_until_a_commit),
		cmocka_unit_test(test_relative_paths_survive_a_change_of_directory),
		cmocka_unit_test(test_random_writes_truncates_and_commits_match_a_flat_model),
		cmocka_unit_test(test_writes_past_the_committed_end_go_to_the_file_and_truncate_like_held_ones),
		cmocka_unit_test(test_many_small_writes_in_any_order_stay_fast),
		cmocka_unit_test(test_killed_writer_leaves_the_last_commit),
		cmocka_unit_test(test_writer_killed_between_journal_and_file_is_replayed),
		cmocka_unit_test(test_recover_replays_a_complete_journal_idempotently),
		cmocka_unit_test(test_recover_discards_incomplete_and_corrupt_journals),
		cmocka_unit_test(test_recover_keeps_a_journal_of_an_unknown_version),
		cmocka_unit_test(test_recover_refuses_a_file_locked_by_another_writer),
		cmocka_unit_test(test_journal_is_refused_for_a_file_renamed_or_copied_over_or_truncated),
		cmocka_unit_test(test_a_commit_killed_at_any_write_into_the_file_is_replayed),
		cmocka_unit_test(test_a_replay_killed_at_any_write_is_replayed_again),
		cmocka_unit_test(test_read_only_open_shows_a_complete_journal_and_changes_nothing),
		cmocka_unit_test(test_recover_refuses_a_version_1_journal_and_keeps_it),
		cmocka_unit_test_setup_teardown(test_commit_on_a_full_disk_fails_with_enospc_and_keeps_the_old_state,
						mount_tiny, unmount_tiny),
	};
	int failed;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	if (mounted)
		umount2(mnt, MNT_DETACH);
	tmptree_remove(tmpdir);
	return failed;
}
