/* pyfx.h: fixtures written by h5py and PyTables in a child /usr/bin/python3, and store nodes
 * found by path, shared by the store's unit tests (test_store.c, test_chunkio.c). Test support
 * only; nothing of the daemon uses it. Include after <cmocka.h>. */
#ifndef H5MOUNT_TESTS_PYFX_H
#define H5MOUNT_TESTS_PYFX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5mount/store.h"

/* Writes `script` to DIR/NAME.py and runs it as `/usr/bin/python3 DIR/NAME.py DIR`. Returns 1
 * when it ran and exited 0, 0 when /usr/bin/python3 cannot import `modules` (e.g. "h5py, numpy":
 * the caller skips). Fails the test when the script fails. */
static inline int pyfx_run(const char *dir, const char *name, const char *modules, const char *script)
{
	char path[512], cmd[1024];
	FILE *f;
	int n;

	n = snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c 'import %s' >/dev/null 2>&1", modules);
	assert_true(n > 0 && (size_t)n < sizeof(cmd));
	if (system(cmd) != 0)
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
static inline struct h5m_node *pyfx_node(struct h5m_store *s, const char *path)
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
static inline unsigned char *pyfx_slurp(const char *path, size_t *len)
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
