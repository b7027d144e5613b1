/* test_store.c: the store's object side (store.c) without a mount: the node table and group
 * listings (sorted names, hidden names and views, hard links, soft and external link texts),
 * lookup errors, attributes as xattrs, open errors with their one-line reasons, views per node. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h5mount/store.h"
#include "h5fixture.h"
#include "tmptree.h"

static char dir[64];
static bool have_python; /* s.h5 was written (h5py importable) */
static struct h5m_store *store;

/* s.h5: /x (int32 2 x 3) and a real dataset named x.npy; /b; /h, a group with one name: h/hard
 * (a second name of /x), h/soft -> /x, h/rel -> nowhere, h/up -> ../x, attributes a = 5 and
 * b = "text"; /g, also named /g2, holding g/abs -> /x; /ext, an external link to other.h5:/data;
 * /v (variable-length int32 rows); /null (a null dataspace); a group whose 300-byte name no file
 * system takes. */
static const char fixture_script[] =
	"import sys, numpy as np, h5py\n"
	"with h5py.File(sys.argv[1] + '/s.h5', 'w') as f:\n"
	"    f['x'] = np.arange(6, dtype='<i4').reshape(2, 3)\n"
	"    f['x.npy'] = np.zeros(2)\n"
	"    f['b'] = [1.0]\n"
	"    h = f.create_group('h')\n"
	"    h['hard'] = f['x']\n"
	"    h['soft'] = h5py.SoftLink('/x')\n"
	"    h['rel'] = h5py.SoftLink('nowhere')\n"
	"    h['up'] = h5py.SoftLink('../x')\n"
	"    h.attrs['a'] = np.int32(5)\n"
	"    h.attrs['b'] = 'text'\n"
	"    g = f.create_group('g')\n"
	"    f['g2'] = g\n"
	"    g['abs'] = h5py.SoftLink('/x')\n"
	"    f['ext'] = h5py.ExternalLink('other.h5', '/data')\n"
	"    v = f.create_dataset('v', (3,), dtype=h5py.vlen_dtype(np.int32))\n"
	"    v[0] = [1, 2]\n"
	"    f['null'] = h5py.Empty('<f8')\n"
	"    f.create_group('n' * 300)\n";

static int setup_group(void **state)
{
	char path[128], err[256];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/h5m-store-XXXXXX");
	if (!mkdtemp(dir) || h5m_store_global_init() != 0)
		return -1;
	have_python = h5fixture_python_file(dir, "fixtures", "h5py, numpy", fixture_script);
	if (!have_python)
		return 0;
	snprintf(path, sizeof(path), "%s/s.h5", dir);
	if (h5m_store_open(path, false, 4096, 0, 0, &store, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", path, err);
		return -1;
	}
	return 0;
}

static int teardown_group(void **state)
{
	(void)state;
	if (store)
		h5m_store_close(store);
	return tmptree_remove(dir);
}

static const struct h5m_dirent *entry(struct h5m_node *dir_node, const char *name)
{
	int err = 0;
	const struct h5m_dirent *e = h5m_store_lookup(store, dir_node, name, &err);

	if (!e)
		fail_msg("no '%s' (%d)", name, err);
	return e;
}

static void test_root_lists_sorted_names_with_views_and_hides_what_cannot_show(void **state)
{
	static const char *const want[] = { "b", "b.npy", "b.shape", "ext", "g", "g2", "h", "null", "null.shape", "v",
		                             "v.npy", "v.offsets", "v.shape", "x", "x.npy", "x.npy.npy", "x.npy.shape",
		                             "x.shape" };
	const struct h5m_dirent *ents;
	size_t n;

	(void)state;
	if (!have_python)
		skip();
	assert_int_equal(h5m_store_list(store, h5m_store_node(store, 0), &ents, &n), 0);
	for (size_t i = 0; i < n && i < sizeof(want) / sizeof(*want); i++)
		assert_string_equal(ents[i].name, want[i]);
	assert_int_equal(n, sizeof(want) / sizeof(*want));
	/* x.npy is the real dataset, not x's view; x.shape is x's view. */
	assert_int_equal(entry(h5m_store_node(store, 0), "x.npy")->view, H5M_VIEW_OBJ);
	assert_true(entry(h5m_store_node(store, 0), "x.npy")->node != entry(h5m_store_node(store, 0), "x")->node);
	assert_int_equal(entry(h5m_store_node(store, 0), "x.shape")->view, H5M_VIEW_SHAPE);
	assert_int_equal(entry(h5m_store_node(store, 0), "x.shape")->node, entry(h5m_store_node(store, 0), "x")->node);
}

static void test_a_second_hard_link_is_the_same_node_and_a_group_has_one_directory(void **state)
{
	struct h5m_node *root, *g2;

	(void)state;
	if (!have_python)
		skip();
	root = h5m_store_node(store, 0);
	assert_int_equal(entry(h5fixture_node(store, "h"), "hard")->node, entry(root, "x")->node);
	assert_int_equal(h5fixture_node(store, "g")->type, H5M_NODE_GROUP);
	g2 = h5fixture_node(store, "g2");
	assert_int_equal(g2->type, H5M_NODE_SOFTLINK);
	assert_string_equal(g2->target, "g");
}

static void test_link_texts_stay_inside_the_mount_or_dangle_with_their_target(void **state)
{
	static const char *const links[][2] = {
		{ "h/soft", "../x" },
		{ "h/rel", "nowhere" },
		{ "h/up", "h5mount-dangling:soft:..%2Fx" },
		{ "g/abs", "h5mount-dangling:soft:%2Fx" }, /* g has two names: no one climb fits both */
		{ "ext", "h5mount-dangling:external:other.h5%2F%2Fdata" },
	};

	(void)state;
	if (!have_python)
		skip();
	for (size_t i = 0; i < sizeof(links) / sizeof(*links); i++) {
		struct h5m_node *n = h5fixture_node(store, links[i][0]);

		assert_int_equal(n->type, H5M_NODE_SOFTLINK);
		assert_string_equal(n->target, links[i][1]);
	}
}

static void test_lookup_and_list_errors_are_enoent_and_enotdir(void **state)
{
	const struct h5m_dirent *ents;
	struct h5m_node *x;
	size_t n;
	int err = 0;

	(void)state;
	if (!have_python)
		skip();
	assert_null(h5m_store_lookup(store, h5m_store_node(store, 0), "nope", &err));
	assert_int_equal(err, -ENOENT);
	assert_null(h5m_store_lookup(store, h5m_store_node(store, 0), "nnnnnnnnnn", &err)); /* not the 300-byte group */
	assert_int_equal(err, -ENOENT);
	x = h5fixture_node(store, "x");
	err = 0;
	assert_null(h5m_store_lookup(store, x, "a", &err));
	assert_int_equal(err, -ENOTDIR);
	assert_int_equal(h5m_store_list(store, x, &ents, &n), -ENOTDIR);
	assert_int_equal(h5m_store_list(store, h5fixture_node(store, "ext"), &ents, &n), -ENOTDIR);
	assert_null(h5m_store_node(store, 1u << 30));
}

static void test_attributes_list_as_user_xattrs_and_read_as_text(void **state)
{
	struct h5m_node *h, *link;
	char *val = NULL;
	size_t len = 0;

	(void)state;
	if (!have_python)
		skip();
	h = h5fixture_node(store, "h");
	assert_int_equal(h5m_store_xattr_list(store, h, &val, &len), 0);
	assert_int_equal(len, sizeof("user.a\0user.b"));
	assert_memory_equal(val, "user.a\0user.b", len);
	free(val);
	assert_int_equal(h5m_store_xattr_get(store, h, "a", &val, &len), 0);
	assert_int_equal(len, 1);
	assert_memory_equal(val, "5", 1);
	free(val);
	assert_int_equal(h5m_store_xattr_get(store, h, "b", &val, &len), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(val, "text", 4);
	free(val);
	assert_int_equal(h5m_store_xattr_get(store, h, "c", &val, &len), -ENODATA);
	assert_int_equal(h5m_store_xattr_list(store, h5fixture_node(store, "x"), &val, &len), 0);
	assert_int_equal(len, 0);
	free(val);
	link = h5fixture_node(store, "h/soft");
	assert_int_equal(h5m_store_xattr_list(store, link, &val, &len), 0);
	assert_null(val);
	assert_int_equal(len, 0);
	assert_int_equal(h5m_store_xattr_get(store, link, "a", &val, &len), -ENODATA);
}

static void test_open_errors_say_why_in_one_line(void **state)
{
	struct h5m_store *s = (void *)1;
	char path[128], err[256];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/missing.h5", dir);
	assert_int_equal(h5m_store_open(path, false, 4096, 0, 0, &s, err, sizeof(err)), -ENOENT);
	assert_null(s);
	assert_string_equal(err, "No such file or directory");
	snprintf(path, sizeof(path), "%s/text.h5", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not an HDF5 file at all, just text\n", f);
	fclose(f);
	assert_int_equal(h5m_store_open(path, false, 4096, 0, 0, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "is not an HDF5 file");
	assert_int_equal(h5m_store_open(dir, false, 4096, 0, 0, &s, err, sizeof(err)), -EISDIR);
	assert_string_equal(err, "Is a directory");
}

static void test_views_are_shown_by_kind(void **state)
{
	struct h5m_node *x, *v, *null, *h;

	(void)state;
	if (!have_python)
		skip();
	x = h5fixture_node(store, "x");
	v = h5fixture_node(store, "v");
	null = h5fixture_node(store, "null");
	h = h5fixture_node(store, "h");
	assert_true(h5m_store_has_view(x, H5M_VIEW_OBJ) && h5m_store_has_view(x, H5M_VIEW_NPY) &&
	            h5m_store_has_view(x, H5M_VIEW_SHAPE));
	assert_false(h5m_store_has_view(x, H5M_VIEW_OFFSETS));
	assert_true(h5m_store_has_view(v, H5M_VIEW_OFFSETS) && h5m_store_has_view(v, H5M_VIEW_NPY));
	assert_false(h5m_store_has_view(null, H5M_VIEW_NPY));
	assert_true(h5m_store_has_view(null, H5M_VIEW_SHAPE));
	assert_true(h5m_store_has_view(h, H5M_VIEW_OBJ));
	assert_false(h5m_store_has_view(h, H5M_VIEW_SHAPE));
}

/* ---- the namespace (read-write stores of w*.h5, made here with HDF5 itself) ---- */

/* Makes DIR/NAME: /x and /y (int32 2 x 3), /g holding /g/c (int32 2 x 3) and /e (empty), and
 * opens it read-write into *s. Writes the path to path[128]. */
static void rw_store(const char *name, char path[128], struct h5m_store **s)
{
	hsize_t dims[2] = { 2, 3 };
	int vals[6] = { 1, 2, 3, 4, 5, 6 };
	char err[256];
	hid_t f, sp, g;

	snprintf(path, 128, "%s/%.32s", dir, name);
	f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(f >= 0);
	sp = H5Screate_simple(2, dims, NULL);
	g = H5Gcreate2(f, "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Gclose(H5Gcreate2(f, "e", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
	for (int i = 0; i < 3; i++) {
		hid_t d = H5Dcreate2(i < 2 ? f : g, i == 0 ? "x" : i == 1 ? "y" : "c", H5T_STD_I32LE, sp, H5P_DEFAULT,
		                     H5P_DEFAULT, H5P_DEFAULT);

		vals[0] = i;
		assert_true(d >= 0 && H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals) >= 0);
		H5Dclose(d);
	}
	H5Gclose(g);
	H5Sclose(sp);
	H5Fclose(f);
	assert_int_equal(h5m_store_open(path, true, 4096, 0, 0, s, err, sizeof(err)), 0);
}

/* Whether `path` has link `link` (and, when want_soft, its soft link value). */
static bool has_link(const char *path, const char *link, char *soft, size_t cap)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	bool yes;

	assert_true(f >= 0);
	yes = H5Lexists(f, link, H5P_DEFAULT) > 0;
	if (yes && soft)
		assert_true(H5Lget_val(f, link, soft, cap, H5P_DEFAULT) >= 0);
	H5Fclose(f);
	return yes;
}

static int find(struct h5m_store *s, struct h5m_node *d, const char *name, uint32_t *node)
{
	enum h5m_view v;

	return h5m_store_find(s, d, name, node, &v);
}

static void test_unlink_hides_one_name_at_a_time_and_the_last_deletes_the_link(void **state)
{
	struct h5m_store *s;
	struct h5m_unlinked u;
	struct h5m_node *root, *x;
	uint32_t node;
	char path[128];

	(void)state;
	rw_store("w1.h5", path, &s);
	root = h5m_store_node(s, 0);
	x = h5fixture_node(s, "x");
	assert_int_equal(h5m_store_nlink(x), 3);
	assert_int_equal(h5m_store_unlink(s, root, "x.npy", &u), 0);
	assert_false(u.deleted);
	assert_int_equal(u.view, H5M_VIEW_NPY);
	assert_int_equal(find(s, root, "x.npy", &node), -ENOENT);
	assert_false(h5m_store_shows(x, H5M_VIEW_NPY));
	assert_true(h5m_store_shows(x, H5M_VIEW_OBJ));
	assert_int_equal(h5m_store_nlink(x), 2);
	assert_int_equal(h5m_store_unlink(s, root, "x.npy", &u), -ENOENT);
	assert_int_equal(h5m_store_unlink(s, root, "g", &u), -EISDIR);
	assert_int_equal(h5m_store_unlink(s, root, "x", &u), 0);
	assert_false(u.deleted);
	assert_int_equal(h5m_store_unlink(s, root, "x.shape", &u), 0);
	assert_true(u.deleted);
	assert_int_equal(h5m_store_nlink(x), 0);
	assert_false(h5m_store_shows(x, H5M_VIEW_OBJ));
	assert_int_equal(find(s, root, "y", &node), 0);
	h5m_store_close(s);
	assert_false(has_link(path, "x", NULL, 0));
	assert_true(has_link(path, "y", NULL, 0));
}

/* Collects listed names into a buffer ("a,b,"), from list_each. */
static int collect(void *ctx, size_t pos, const char *name, const struct h5m_node *n, enum h5m_view view)
{
	(void)pos;
	(void)n;
	(void)view;
	strcat(ctx, name);
	strcat(ctx, ",");
	return 0;
}

static void test_rename_moves_every_shown_name_and_replaces_what_it_lands_on(void **state)
{
	struct h5m_store *s;
	struct h5m_renamed r;
	struct h5m_unlinked u;
	struct h5m_node *root, *g, *e, *x, *y, *c;
	char path[128], names[512] = "";
	uint32_t node;

	(void)state;
	rw_store("w2.h5", path, &s);
	root = h5m_store_node(s, 0);
	g = h5fixture_node(s, "g");
	e = h5fixture_node(s, "e");
	x = h5fixture_node(s, "x");
	y = h5fixture_node(s, "y");
	assert_int_equal(h5m_store_rename(s, root, "x.npy", root, "z.shape", 0, &r), -EINVAL);
	assert_int_equal(h5m_store_rename(s, root, "x", root, "z.npy", 0, &r), -EINVAL);
	assert_int_equal(h5m_store_rename(s, root, "x", root, "y", H5M_RENAME_NOREPLACE, &r), -EEXIST);
	assert_int_equal(h5m_store_rename(s, root, "x", root, "e", 0, &r), -EISDIR);
	assert_int_equal(h5m_store_rename(s, root, "e", root, "x", 0, &r), -ENOTDIR);
	assert_int_equal(h5m_store_rename(s, root, "e", root, "g", 0, &r), -ENOTEMPTY);
	assert_int_equal(h5m_store_rename(s, root, "g", e, "g", 0, &r), 0); /* g into e */
	assert_int_equal(h5m_store_rename(s, e, "g", g, "g", 0, &r), -EINVAL); /* into itself */
	/* A hidden name stays hidden; the dataset it lands on is replaced. */
	assert_int_equal(h5m_store_unlink(s, root, "x.shape", &u), 0);
	c = h5fixture_node(s, "e/g/c");
	assert_int_equal(h5m_store_rename(s, root, "x.npy", g, "c.npy", 0, &r), 0);
	assert_int_equal(r.node, x->idx);
	assert_int_equal(r.replaced, c->idx);
	assert_true(c->gone);
	assert_true(r.replaced_deleted);
	assert_int_equal(h5m_store_list_each(s, g, 0, collect, names), 0);
	assert_string_equal(names, "c,c.npy,");
	assert_int_equal(h5m_store_rename(s, root, "y", root, "w", 0, &r), 0);
	assert_int_equal(find(s, root, "y.npy", &node), -ENOENT);
	assert_int_equal(find(s, root, "w.shape", &node), 0);
	assert_int_equal(node, y->idx);
	assert_string_equal(x->ds->path, "/e/g/c");
	assert_string_equal(g->path, "/e/g");
	names[0] = 0;
	assert_int_equal(h5m_store_list_each(s, root, 1, collect, names), 0); /* from the second */
	assert_string_equal(names, "w,w.npy,w.shape,");
	h5m_store_close(s);
	assert_true(has_link(path, "/e/g/c", NULL, 0));
	assert_true(has_link(path, "w", NULL, 0));
	assert_false(has_link(path, "x", NULL, 0) || has_link(path, "y", NULL, 0) || has_link(path, "g", NULL, 0));
}

static void test_mkdir_rmdir_and_symlink_refuse_collisions_and_keep_link_texts(void **state)
{
	struct h5m_store *s;
	struct h5m_unlinked u;
	struct h5m_node *root, *g, *l;
	char path[128], val[64], longname[300];
	uint32_t node, sub;

	(void)state;
	rw_store("w3.h5", path, &s);
	root = h5m_store_node(s, 0);
	g = h5fixture_node(s, "g");
	assert_int_equal(h5m_store_mkdir(s, root, "g", &node), -EEXIST);
	assert_int_equal(h5m_store_mkdir(s, root, "x.npy", &node), -EEXIST);
	assert_int_equal(h5m_store_unlink(s, root, "x.npy", &u), 0);
	assert_int_equal(h5m_store_mkdir(s, root, "x.npy", &node), -EEXIST); /* hidden, still x's */
	memset(longname, 'n', 256);
	longname[256] = 0;
	assert_int_equal(h5m_store_mkdir(s, root, longname, &node), -ENAMETOOLONG);
	assert_int_equal(h5m_store_mkdir(s, root, "new", &node), 0);
	assert_int_equal(h5m_store_mkdir(s, h5m_store_node(s, node), "sub", &sub), 0);
	assert_int_equal(h5m_store_rmdir(s, root, "new"), -ENOTEMPTY);
	assert_int_equal(h5m_store_rmdir(s, root, "x"), -ENOTDIR);
	assert_int_equal(h5m_store_rmdir(s, h5m_store_node(s, node), "sub"), 0);
	assert_true(h5m_store_node(s, sub)->gone);
	assert_int_equal(h5m_store_rmdir(s, root, "new"), 0);
	assert_int_equal(h5m_store_symlink(s, g, "abs", "/x", &node), -EPERM);
	assert_int_equal(h5m_store_symlink(s, g, "out", "../../x", &node), -EPERM);
	assert_int_equal(h5m_store_symlink(s, g, "up", "../x", &node), 0);
	assert_string_equal(h5m_store_node(s, node)->target, "../x");
	assert_int_equal(h5m_store_symlink(s, g, "here", "c", &node), 0);
	l = h5m_store_node(s, node);
	assert_int_equal(h5m_store_nlink(l), 1);
	assert_int_equal(h5m_store_unlink(s, g, "here", &u), 0);
	assert_true(u.deleted && l->gone);
	h5m_store_close(s);
	assert_true(has_link(path, "g/up", val, sizeof(val)));
	assert_string_equal(val, "/x");
	assert_false(has_link(path, "g/here", NULL, 0) || has_link(path, "new", NULL, 0));
}

static void test_a_read_only_store_refuses_namespace_changes_with_erofs(void **state)
{
	struct h5m_node *root;
	struct h5m_unlinked u;
	struct h5m_renamed r;
	uint32_t node;

	(void)state;
	if (!have_python)
		skip();
	root = h5m_store_node(store, 0);
	assert_int_equal(h5m_store_mkdir(store, root, "n", &node), -EROFS);
	assert_int_equal(h5m_store_rmdir(store, root, "g"), -EROFS);
	assert_int_equal(h5m_store_unlink(store, root, "x", &u), -EROFS);
	assert_int_equal(h5m_store_symlink(store, root, "l", "x", &node), -EROFS);
	assert_int_equal(h5m_store_rename(store, root, "x", root, "z", 0, &r), -EROFS);
	assert_int_equal(find(store, root, "x", &node), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_lists_sorted_names_with_views_and_hides_what_cannot_show),
		cmocka_unit_test(test_a_second_hard_link_is_the_same_node_and_a_group_has_one_directory),
		cmocka_unit_test(test_link_texts_stay_inside_the_mount_or_dangle_with_their_target),
		cmocka_unit_test(test_lookup_and_list_errors_are_enoent_and_enotdir),
		cmocka_unit_test(test_attributes_list_as_user_xattrs_and_read_as_text),
		cmocka_unit_test(test_open_errors_say_why_in_one_line),
		cmocka_unit_test(test_views_are_shown_by_kind),
		cmocka_unit_test(test_unlink_hides_one_name_at_a_time_and_the_last_deletes_the_link),
		cmocka_unit_test(test_rename_moves_every_shown_name_and_replaces_what_it_lands_on),
		cmocka_unit_test(test_mkdir_rmdir_and_symlink_refuse_collisions_and_keep_link_texts),
		cmocka_unit_test(test_a_read_only_store_refuses_namespace_changes_with_erofs),
	};

	return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
