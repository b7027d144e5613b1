/* h5fixture.h: HDF5 test data shared by the unit tests that write .h5 files (paths in a temporary
 * directory, ramp data, files written by h5py/PyTables, raw chunk reads, read-back checks, store
 * nodes found by path).
 * Test support only: it fails the calling cmocka test on any error, and nothing of the daemon
 * uses it. Include it after cmocka.h's prerequisites (setjmp.h, stdarg.h, stddef.h, stdint.h). */
#ifndef H5MOUNT_TESTS_H5FIXTURE_H
#define H5MOUNT_TESTS_H5FIXTURE_H

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

#include "h5mount/store.h"

/* Writes "dir/name" to out (outlen bytes); fails the test if it does not fit. */
static inline void h5fixture_path(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < outlen);
}

/* Compressible doubles, like numpy.arange(n) * 0.25. */
static inline void h5fixture_ramp(double *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (double)i * 0.25;
}

/* Whether /usr/bin/python3 can import `modules` (e.g. "h5py, tables"). */
static inline int h5fixture_python_has(const char *modules)
{
	char cmd[1024];
	int n = snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import %s' >/dev/null 2>&1", modules);

	assert_true(n > 0 && (size_t)n < sizeof cmd);
	return system(cmd) == 0;
}

/* Runs the Python `script` with /usr/bin/python3 and `dir` as its argv[1], once per process:
 * *have caches the outcome (start it at -1). Returns 1 when the script ran (now or before), 0
 * when /usr/bin/python3 cannot import `modules` (e.g. "h5py, tables": the caller skips). Fails
 * the test if the script fails. The writers run in their own process, so their filters never
 * meet the ones under test. `script` must not contain a single quote. */
static inline int h5fixture_python(int *have, const char *modules, const char *script, const char *dir)
{
	char cmd[8192];
	int n;

	if (*have >= 0)
		return *have;
	if (!h5fixture_python_has(modules)) {
		*have = 0;
		return *have;
	}
	n = snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c '%s' '%s'", script, dir);
	assert_true(n > 0 && (size_t)n < sizeof cmd);
	assert_int_equal(system(cmd), 0);
	*have = 1;
	return *have;
}

/* Reads the stored bytes and filter mask of the chunk of d at `offset` into a new malloc'd
 * buffer (the caller frees it); *len gets its size. */
static inline unsigned char *h5fixture_read_raw_chunk(hid_t d, const hsize_t *offset, size_t *len,
                                                      uint32_t *mask)
{
	hsize_t stored = 0;
	unsigned char *buf;

	assert_true(H5Dget_chunk_storage_size(d, offset, &stored) >= 0);
	assert_true(stored > 0);
	buf = malloc(stored);
	assert_non_null(buf);
	*mask = 0xdeadbeef;
	assert_true(H5Dread_chunk(d, H5P_DEFAULT, offset, mask, buf) >= 0);
	*len = stored;
	return buf;
}

/* Reads the open dataset d (n elements) as doubles and checks that element i holds i, as
 * numpy.arange(n) written by h5py or PyTables does. */
static inline void h5fixture_check_arange(hid_t d, size_t n)
{
	double *back = malloc(n * sizeof *back);

	assert_non_null(back);
	memset(back, 0xAA, n * sizeof *back);
	assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	for (size_t i = 0; i < n; i++)
		assert_true(back[i] == (double)i);
	free(back);
}

/* Per-process setup before the first HDF5 call: makes the directory `tmpdir` (a mkdtemp
 * template, rewritten in place) with an empty "plugins" directory in it, and points
 * HDF5_PLUGIN_PATH there, so that no installed plugin can stand in for a filter under test.
 * Returns 0, or -1 after printing why (main() then exits 1). */
static inline int h5fixture_setup(char *tmpdir)
{
	char plugins[4096];

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	if (snprintf(plugins, sizeof plugins, "%s/plugins", tmpdir) >= (int)sizeof plugins ||
	    mkdir(plugins, 0700) != 0 || setenv("HDF5_PLUGIN_PATH", plugins, 1) != 0) {
		perror(plugins);
		return -1;
	}
	return 0;
}

/* Writes `script` (any quotes) to DIR/NAME.py and runs it as `/usr/bin/python3 DIR/NAME.py DIR`. Returns 1
 * when it ran and exited 0, 0 when /usr/bin/python3 cannot import `modules` (e.g. "h5py, numpy":
 * the caller skips). Fails the test when the script fails. */
static inline int h5fixture_python_file(const char *dir, const char *name, const char *modules, const char *script)
{
	char path[512], cmd[1024];
	FILE *f;
	int n;

	if (!h5fixture_python_has(modules))
		return 0;
	n = snprintf(path, sizeof(path), "%s/%s.py", dir, name);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(script, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	n = snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' '%s'", path, dir);
	assert_true(n > 0 && (size_t)n < sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	return 1;
}

/* The node at `path` ("a/b/c", no leading '/') below the root of s; fails the test when a
 * component is missing. */
static inline struct h5m_node *h5fixture_node(struct h5m_store *s, const char *path)
{
	struct h5m_node *n = h5m_store_node(s, 0);
	char buf[512], *save = NULL;

	assert_true(strlen(path) < sizeof(buf));
	strcpy(buf, path);
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		int err = 0;
		const struct h5m_dirent *e = h5m_store_lookup(s, n, c, &err);

		if (!e)
			fail_msg("%s: no '%s' (%d)", path, c, err);
		n = h5m_store_node(s, e->node);
	}
	return n;
}

/* Reads all of file `path` into a malloc'd buffer; its length in *len. Fails the test if it
 * cannot. */
static inline unsigned char *h5fixture_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	if (!f)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc(n ? (size_t)n : 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

#endif
