"""Groups reached through several hard links, cycles included.

Fixtures come from h5py (hard links to groups, a group linked into its own child and into
the root). Covers: a group has one directory, at its first path (breadth-first from the
root, names in order), whatever directory is opened first, and each other path is a relative
symlink to it that stays inside the mount; tree walkers terminate over a cycle; absolute
soft links in a multiply-linked group stay dangling. Usage:

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

import harness              # noqa: E402
from harness import read_file   # noqa: E402

FIX = {}
RUN_TIMEOUT = 30.0          # seconds a tree walker may take over the tiny fixture
DANGLING = 'h5mount-dangling:'


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


def setUpModule():
    d = harness.workdir()
    FIX['links'] = os.path.join(d, 'links.h5')
    make_links(FIX['links'])


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


if __name__ == '__main__':
    harness.run_tests()
