"""Names and kinds that have no plain directory entry: groups reached through several hard
links (cycles included) and the dataset kinds once left out of the directory.

Fixtures come from the real tools: h5py (hard links to groups, a group linked into its own
child and into the root, a null dataspace, an H5T_TIME dataset, multi-dimensional variable-
length datasets, a member named `..`) and ncgen (netCDF-4 user types, stored as committed
datatypes). Covers: a group has one directory, at its first path (breadth-first from the
root, names in order), whatever directory is opened first, and each other path is a relative
symlink to it that stays inside the mount; tree walkers
terminate over a cycle; absolute soft links in a multiply-linked group stay dangling; null
dataspaces, H5T_TIME and multi-dimensional vlen data are shown as README "Types" says; `..`
members and committed datatypes stay hidden with their log lines. Usage:

    /usr/bin/python3 tests/mount/test_names.py build/h5mount [TestClass[.test_name] ...]
"""

import os
import stat
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402
from h5py import h5d, h5s, h5t   # noqa: E402

import harness              # noqa: E402
from harness import read_file   # noqa: E402

FIX = {}
RUN_TIMEOUT = 30.0          # seconds a tree walker may take over the tiny fixture
DANGLING = 'h5mount-dangling:'
TIME_VALUES = np.array([0, 1, 86400, 2 ** 31 - 1], dtype='<u4')


# ------------------------------------------------------------------ fixtures

def make_links(path):
    """/a/g is also /b/g2; /a/g/up is /a again and /a/g/top the root (two cycles); /a/g/abs is
    an absolute soft link inside the multiply-linked group; /b/x2 a second name of /a/x;
    /a/g/h is also /b/h2, which a breadth-first walk reaches first (a depth-first one, or
    name order, would pick /a/g/h)."""
    with h5py.File(path, 'w') as f:
        a = f.create_group('a')
        b = f.create_group('b')
        a['x'] = np.arange(5, dtype='<i4')
        g = a.create_group('g')
        g['d'] = np.arange(3, dtype='<i2') + 10
        g.create_group('sub')['e'] = np.arange(2, dtype='<f8')
        h = g.create_group('h')
        h['k'] = np.arange(4, dtype='<u1')
        b['h2'] = h
        b['g2'] = g
        g['up'] = a
        g['top'] = f['/']
        g['abs'] = h5py.SoftLink('/a/x')
        b['x2'] = a['x']


def make_kinds(path):
    with h5py.File(path, 'w') as f:
        f['null'] = h5py.Empty('<f4')
        f['scalar'] = np.float64(2.5)
        v = f.create_dataset('vlen2', (2, 3), dtype=h5py.vlen_dtype(np.dtype('<i2')))
        for i in range(2):
            for j in range(3):
                v[i, j] = np.arange(i * 3 + j, dtype='<i2') + 100 * i + 10 * j
        s = f.create_dataset('vstr2', (2, 2), dtype=h5py.string_dtype())
        s[...] = [['a', 'bb'], ['', 'dddd']]
        c = f.create_dataset('vlen3', (3, 4, 5), dtype=h5py.vlen_dtype(np.dtype('>f8')),
                             chunks=(2, 2, 5))
        for i in range(3):
            for j in range(4):
                for k in range(5):
                    c[i, j, k] = np.arange((i + j + k) % 4, dtype='>f8') / 8 + i * 100 + j * 10 + k
        f.create_dataset('null_vlen', shape=None, dtype=h5py.vlen_dtype(np.dtype('<i4')))
        tid = h5t.UNIX_D32LE.copy()
        d = h5d.create(f.id, b'time', tid, h5s.create_simple((4,)))
        d.write(h5s.ALL, h5s.ALL, TIME_VALUES, mtype=tid)
        g = f.create_group('g')
        g['x'] = np.arange(3, dtype='<i4')
        g['..'] = np.arange(2, dtype='<i4')


USER_TYPES_CDL = """netcdf usertypes {
types:
  compound pt { int a ; double b ; } ;
  int enum color { red = 0, green = 1, blue = 2 } ;
  int(*) ragged ;
  opaque(3) blob ;
dimensions:
  n = 3 ;
variables:
  pt p(n) ;
  color c(n) ;
  ragged r(n) ;
  blob o(n) ;
data:
  p = {1, 0.5}, {2, 1.5}, {3, 2.5} ;
  c = red, green, blue ;
  r = {1, 2}, {3}, {4, 5, 6} ;
  o = 0X010203, 0X040506, 0X070809 ;
}
"""


def make_usertypes(d):
    cdl = os.path.join(d, 'usertypes.cdl')
    with open(cdl, 'w') as fp:
        fp.write(USER_TYPES_CDL)
    out = os.path.join(d, 'usertypes.nc')
    subprocess.run(['ncgen', '-k', 'nc4', '-o', out, cdl], check=True, capture_output=True)
    return out


def setUpModule():
    d = harness.workdir()
    FIX['links'] = os.path.join(d, 'links.h5')
    make_links(FIX['links'])
    FIX['kinds'] = os.path.join(d, 'kinds.h5')
    make_kinds(FIX['kinds'])
    FIX['nc'] = make_usertypes(d)
    # Expectations read before any mount: a read-write mount holds HDF5's lock on the file.
    with h5py.File(FIX['kinds'], 'r') as f:
        FIX['null_shape'] = f['null'].shape
        FIX['vlen2'] = [np.asarray(r, dtype='<i2') for r in f['vlen2'][...].ravel()]
        FIX['vstr2'] = list(f['vstr2'][...].ravel())
    FIX['kinds_exp'] = harness.compute_expectations(FIX['kinds'], ['/vlen2', '/vstr2', '/vlen3'])
    with h5py.File(FIX['nc'], 'r') as f:
        FIX['nc_p'] = f['p'][...]
        FIX['nc_c'] = f['c'][...]


def run(argv, cwd=None):
    """Runs a tree walker with a deadline: a cycle it cannot see would make it run forever."""
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def assert_safe_symlinks(tc, root):
    """Every symlink under root is '../' at most as many times as its directory lies below
    root, then names that are not empty, '.' or '..', or one dangling name."""
    for dirpath, dirs, files in os.walk(root):
        depth = 0 if dirpath == root else os.path.relpath(dirpath, root).count('/') + 1
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                continue
            text = os.readlink(p)
            if text.startswith(DANGLING):
                tc.assertNotIn('/', text, p)
                continue
            parts = text.split('/')
            k = 0
            while k < len(parts) and parts[k] == '..':
                k += 1
            tc.assertLessEqual(k, depth, '%s -> %s climbs out of the mount' % (p, text))
            rest = parts[k:]
            if text != '.':
                for c in rest:
                    tc.assertNotIn(c, ('', '.', '..'), '%s -> %s' % (p, text))
            tc.assertTrue(os.path.realpath(p).startswith(os.path.realpath(root)), p)


# ------------------------------------------------------------------ item 7: group aliases

class GroupLinks(unittest.TestCase):
    def test_second_name_of_a_group_is_a_symlink_to_the_first(self):
        with harness.Mount(FIX['links']) as m:
            os.listdir(m.p('a'))                 # /a/g is listed first: its directory
            self.assertTrue(stat.S_ISDIR(os.lstat(m.p('a/g')).st_mode))
            st = os.lstat(m.p('b/g2'))
            self.assertTrue(stat.S_ISLNK(st.st_mode), 'b/g2 mode %o' % st.st_mode)
            self.assertEqual(os.readlink(m.p('b/g2')), '../a/g')
            self.assertEqual(st.st_size, len('../a/g'))
            self.assertEqual(os.stat(m.p('b/g2')).st_ino, os.stat(m.p('a/g')).st_ino)
            self.assertEqual(read_file(m.p('b/g2/d')), (np.arange(3, dtype='<i2') + 10).tobytes())
            self.assertEqual(sorted(os.listdir(m.p('b/g2'))), sorted(os.listdir(m.p('a/g'))))
            # Datasets with several names still share one inode (regular files may).
            self.assertEqual(os.lstat(m.p('b/x2')).st_ino, os.lstat(m.p('a/x')).st_ino)
            self.assertTrue(stat.S_ISREG(os.lstat(m.p('b/x2')).st_mode))

    def test_first_path_does_not_depend_on_which_directory_is_listed_first(self):
        with harness.Mount(FIX['links']) as m:
            os.listdir(m.p('b'))                 # /b/g2 is met before /a/g this time
            for _ in range(2):
                self.assertEqual(os.readlink(m.p('b/g2')), '../a/g')
                self.assertTrue(stat.S_ISDIR(os.lstat(m.p('a/g')).st_mode))
                self.assertEqual(os.readlink(m.p('a/g/up')), '../../a')
                self.assertEqual(os.readlink(m.p('a/g/top')), '../..')
                self.assertEqual(read_file(m.p('b/g2/sub/e')), np.arange(2, dtype='<f8').tobytes())
                assert_safe_symlinks(self, m.path)

    def test_first_path_is_the_breadth_first_one(self):
        with harness.Mount(FIX['links']) as m:
            os.listdir(m.p('a/g'))               # /a/g/h (depth 3) is met before /b/h2 (2)
            self.assertEqual(os.readlink(m.p('a/g/h')), '../../b/h2')
            self.assertTrue(stat.S_ISDIR(os.lstat(m.p('b/h2')).st_mode))
            self.assertEqual(read_file(m.p('a/g/h/k')), np.arange(4, dtype='<u1').tobytes())
            self.assertIn('groups linked under several names: walked', m.stderr_text())

    def test_listings_match_the_harness_walk(self):
        with harness.Mount(FIX['links'], opts=['-o', 'ro']) as m:
            failures = harness.check_listings(m, FIX['links'])
            self.assertEqual(failures, [], '\n'.join(failures))
            assert_safe_symlinks(self, m.path)

    def test_cycles_are_symlinks_up(self):
        with harness.Mount(FIX['links']) as m:
            os.listdir(m.p('a'))
            self.assertEqual(os.readlink(m.p('a/g/up')), '../../a')
            self.assertEqual(os.readlink(m.p('a/g/top')), '../..')
            self.assertEqual(os.path.realpath(m.p('a/g/up')), os.path.realpath(m.p('a')))
            self.assertEqual(os.path.realpath(m.p('a/g/top')), os.path.realpath(m.path))
            self.assertEqual(read_file(m.p('a/g/up/g/up/x')), np.arange(5, dtype='<i4').tobytes())
            for p in ('a/g/up', 'a/g/top', 'b/g2'):
                self.assertTrue(stat.S_ISLNK(os.lstat(m.p(p)).st_mode), p)
            assert_safe_symlinks(self, m.path)

    def test_absolute_soft_link_in_multiply_linked_group_stays_dangling(self):
        with harness.Mount(FIX['links']) as m:
            os.listdir(m.p('a'))
            self.assertEqual(os.readlink(m.p('a/g/abs')), DANGLING + 'soft:%2Fa%2Fx')
            self.assertIn("/a/g/abs: soft link to '/a/x' shown dangling", m.stderr_text())

    def test_tree_walkers_terminate_without_errors(self):
        with harness.Mount(FIX['links']) as m:
            r = run(['ls', '-lR', m.path])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn('?', r.stdout)
            r = run(['find', '-L', m.path])
            # find -L reports each cycle ("File system loop detected") and exits 1; it must
            # reach every dataset once and never hit ELOOP/EIO on a directory.
            self.assertNotIn('Input/output error', r.stderr)
            self.assertNotIn('Too many levels', r.stderr)
            self.assertIn('loop', r.stderr)
            found = set(os.path.relpath(p, m.path) for p in r.stdout.split('\n') if p)
            for p in ('a/x', 'a/g/d', 'a/g/sub/e', 'b/x2', 'b/g2/d', 'b/h2/k', 'a/g/h/k'):
                self.assertIn(p, found)
            r = run(['tar', '-cf', os.devnull, '-C', m.path, '.'])
            self.assertEqual(r.returncode, 0, r.stderr)
            copy = os.path.join(harness.workdir(), 'copy')
            r = run(['cp', '-r', m.path, copy])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(os.readlink(os.path.join(copy, 'b/g2')), '../a/g')
            with open(os.path.join(copy, 'a/g/d'), 'rb') as fp:
                self.assertEqual(fp.read(), (np.arange(3, dtype='<i2') + 10).tobytes())
            # du -L counts each inode once; its one complaint is the dangling soft link.
            r = run(['du', '-sL', m.path])
            self.assertEqual([ln for ln in r.stderr.split('\n') if ln and 'a/g/abs' not in ln], [])
            self.assertTrue(r.stdout.endswith('\t%s\n' % m.path), r.stdout)


# ------------------------------------------------------------------ item 8: hidden kinds

class DatasetKinds(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = harness.mount_for_class(cls, FIX['kinds'], ())

    def test_null_dataspace_is_an_empty_file_and_shape_without_npy(self):
        m = self.m
        self.assertEqual(read_file(m.p('null')), b'')
        self.assertEqual(os.stat(m.p('null')).st_size, 0)
        self.assertEqual(read_file(m.p('null.shape')), b'')
        self.assertEqual(read_file(m.p('scalar.shape')), b'\n')   # a scalar has the shape ()
        with self.assertRaises(FileNotFoundError):
            os.stat(m.p('null.npy'))
        self.assertNotIn('null.npy', os.listdir(m.path))
        self.assertIn('/null: null dataspace: shown as an empty file and an empty .shape, '
                      'without .npy', m.stderr_text())
        self.assertIsNone(FIX['null_shape'])    # h5py: no shape either (h5py.Empty)

    def test_time_type_is_raw_bytes(self):
        m = self.m
        self.assertEqual(read_file(m.p('time')), TIME_VALUES.tobytes())
        a = np.load(m.p('time.npy'))
        self.assertEqual(a.dtype, np.dtype('V4'))
        self.assertEqual(a.shape, (4,))
        self.assertEqual(a.tobytes(), TIME_VALUES.tobytes())
        self.assertEqual(read_file(m.p('time.shape')), b'4\n')

    def test_multidimensional_vlen_rows_are_elements_in_c_order(self):
        m = self.m
        rows, strs = FIX['vlen2'], FIX['vstr2']
        want = np.concatenate(rows)
        offs = np.cumsum([0] + [len(r) for r in rows]).astype('<i8')
        self.assertEqual(read_file(m.p('vlen2')), want.tobytes())
        self.assertEqual(read_file(m.p('vlen2.offsets')), offs.tobytes())
        self.assertEqual(read_file(m.p('vlen2.shape')), b'2 3\n')
        a = np.load(m.p('vlen2.npy'))
        self.assertEqual(a.dtype, np.dtype('<i2'))
        np.testing.assert_array_equal(a, want)
        self.assertEqual(read_file(m.p('vstr2')), b''.join(strs))
        soffs = np.cumsum([0] + [len(s) for s in strs]).astype('<i8')
        self.assertEqual(read_file(m.p('vstr2.offsets')), soffs.tobytes())
        self.assertEqual(read_file(m.p('vstr2.shape')), b'2 2\n')
        for p in ('/vlen2', '/vstr2', '/vlen3'):   # every view, as the harness computes it
            harness.check_dataset(m, FIX['kinds_exp'][p])
        self.assertEqual(read_file(m.p('vlen3.shape')), b'3 4 5\n')

    def test_null_dataspace_of_variable_length_type_has_no_rows(self):
        m = self.m
        self.assertEqual(read_file(m.p('null_vlen')), b'')
        self.assertEqual(read_file(m.p('null_vlen.shape')), b'')
        self.assertEqual(read_file(m.p('null_vlen.offsets')), bytes(8))
        self.assertFalse(os.path.lexists(m.p('null_vlen.npy')))

    def test_null_dataspace_takes_no_writes(self):
        m = self.m
        for fn in (lambda: open(m.p('null'), 'ab').write(b'\0\0\0\0'),
                   lambda: open(m.p('null.shape'), 'w').write('3\n'),
                   lambda: os.truncate(m.p('null'), 8)):
            with self.assertRaises(PermissionError):
                fn()
        self.assertEqual(os.stat(m.p('null')).st_size, 0)
        self.assertEqual(read_file(m.p('null.shape')), b'')

    def test_member_named_dotdot_is_hidden(self):
        m = self.m
        names = os.listdir(m.p('g'))
        self.assertEqual(sorted(names), ['x', 'x.npy', 'x.shape'])
        r = run(['ls', '-fa', m.p('g')])
        self.assertEqual(r.stdout.split('\n').count('..'), 1)
        self.assertIn('/g/..: not shown: the name is not a valid file name', m.stderr_text())
        # The kernel's own '..' is the parent, never the member.
        self.assertEqual(os.stat(m.p('g/..')).st_ino, os.stat(m.path).st_ino)


class NetCDFUserTypes(unittest.TestCase):
    def test_committed_datatypes_hidden_variables_shown(self):
        with harness.Mount(FIX['nc']) as m:
            names = set(os.listdir(m.path))
            for t in ('pt', 'color', 'ragged', 'blob'):
                self.assertNotIn(t, names)
            for v in ('p', 'c', 'r', 'o'):
                self.assertIn(v, names)
            p, c = FIX['nc_p'], FIX['nc_c']
            self.assertEqual(read_file(m.p('p')), p.tobytes())
            np.testing.assert_array_equal(np.load(m.p('c.npy')), c)
            self.assertEqual(read_file(m.p('r')), np.array([1, 2, 3, 4, 5, 6], dtype='<i4').tobytes())
            self.assertEqual(read_file(m.p('o')), bytes(range(1, 10)))
            err = m.stderr_text()
            for t in ('pt', 'color', 'ragged', 'blob'):
                self.assertIn('/%s: not shown: named datatypes have no file form' % t, err)


if __name__ == '__main__':
    harness.run_tests()
