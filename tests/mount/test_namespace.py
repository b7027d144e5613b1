"""Names through a read-write mount (issue 13's namespace rules, README "Names: remove, rename,
link"): rm of a dataset's names in any order, rm -r / rm -rf of group trees, mkdir -p, rmdir,
mv of datasets and groups within and across groups and onto existing datasets, symlinks, the
errors (EINVAL, EEXIST, ENOTEMPTY, EISDIR, ENOTDIR, ENAMETOOLONG, EROFS), open files and maps
of removed or moved datasets, and a kill -9 during renames. Every change is checked through
the mount and, after unmount, with h5py and PyTables. Usage:

    /usr/bin/python3 tests/mount/test_namespace.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import itertools
import mmap
import os
import signal
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402
import tables               # noqa: E402

import harness              # noqa: E402
from harness import read_file   # noqa: E402

VIEWS = ('', '.npy', '.shape')


def data(seed, rows=6, cols=3):
    return np.arange(rows * cols, dtype='<i4').reshape(rows, cols) + 1000 * seed


def make_file(path, names=('a', 'b'), groups=None):
    """Datasets `names` (data(i)) at the root; `groups`: {group: [datasets]} (data(100+i))."""
    with h5py.File(path, 'w') as f:
        for i, n in enumerate(names):
            f.create_dataset(n, data=data(i), maxshape=(None, 3), chunks=(4, 3))
        for gi, (g, members) in enumerate(sorted((groups or {}).items())):
            grp = f.require_group(g)
            for i, n in enumerate(members):
                grp.create_dataset(n, data=data(100 + 10 * gi + i))
    return path


def sh(*argv):
    """Runs a real client; returns (exit status, stdout + stderr)."""
    p = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode, p.stdout.decode(errors='replace')


def tree(h5):
    """{hdf5 path: kind} of the file, read with h5py (soft links as 'link:VALUE')."""
    out = {}
    with h5py.File(h5, 'r') as f:
        def visit(g, prefix):
            for name in g:
                link = g.get(name, getlink=True)
                path = prefix + name
                if isinstance(link, h5py.SoftLink):
                    out[path] = 'link:' + link.path
                elif isinstance(g[name], h5py.Group):
                    out[path] = 'group'
                    visit(g[name], path + '/')
                else:
                    out[path] = 'dataset'
        visit(f, '/')
    return out


def pytables_nodes(h5):
    """The node paths PyTables sees (it must open the file too)."""
    with tables.open_file(h5, 'r') as f:
        return sorted(n._v_pathname for n in f.walk_nodes('/') if n._v_pathname != '/')


class NamespaceCase(harness.MountsCase):

    def setUp(self):
        self.h5 = os.path.join(harness.workdir(), '%s.h5' % self.id().rsplit('.', 1)[-1])
        super().setUp()

    def assertQuiet(self, *argv):
        rc, out = sh(*argv)
        self.assertEqual((rc, out), (0, ''), ' '.join(argv))

    def assertErrno(self, err, fn, *args):
        got = harness.errno_of(fn, *args)
        self.assertEqual(got, err, '%s%r: %s, expected %s' % (
            fn.__name__, args, errno.errorcode.get(got, got), errno.errorcode[err]))

    def assertDataset(self, m, path, arr):
        self.assertEqual(read_file(m.p(path)), arr.tobytes(), path)
        self.assertEqual(np.load(m.p(path + '.npy')).tobytes(), arr.tobytes(), path + '.npy')
        self.assertEqual(read_file(m.p(path + '.shape')).decode().split(), [str(d) for d in arr.shape])

    def assertStored(self, path, arr):
        with h5py.File(self.h5, 'r') as f:
            np.testing.assert_array_equal(f[path][()], arr)
        with tables.open_file(self.h5, 'r') as f:
            np.testing.assert_array_equal(f.get_node(path).read(), arr)


class Remove(NamespaceCase):

    def test_rm_of_every_name_in_every_order_exits_0_quietly_and_deletes_the_dataset(self):
        orders = list(itertools.permutations(VIEWS))
        names = ['d%d' % i for i in range(len(orders))]
        make_file(self.h5, names + ['keep'])
        m = self.mount()
        for name, order in zip(names, orders):
            with self.subTest(order=order):
                self.assertEqual(os.stat(m.p(name + order[1])).st_nlink, 3)
                self.assertQuiet('rm', *[m.p(name + v) for v in order])
                for v in VIEWS:
                    self.assertFalse(os.path.lexists(m.p(name + v)), name + v)
        self.assertEqual(sorted(os.listdir(m.path)), ['keep', 'keep.npy', 'keep.shape'])
        self.unmount(m)
        self.assertEqual(tree(self.h5), {'/keep': 'dataset'})
        self.assertEqual(pytables_nodes(self.h5), ['/keep'])
        self.assertStored('/keep', data(len(names)))

    def test_removing_one_name_hides_only_it_and_counts_down_st_nlink(self):
        make_file(self.h5, ['x'])
        m = self.mount()
        os.stat(m.p('x.npy'))    # the kernel caches it: its st_nlink must still change
        os.unlink(m.p('x'))
        self.assertEqual(os.stat(m.p('x.npy')).st_nlink, 2)
        self.assertFalse(os.path.lexists(m.p('x')))
        self.assertEqual(sorted(os.listdir(m.path)), ['x.npy', 'x.shape'])
        self.assertEqual(np.load(m.p('x.npy')).tobytes(), data(0).tobytes())
        self.unmount(m)
        self.assertStored('/x', data(0))      # hidden for the life of the mount only
        m = self.mount()
        self.assertEqual(sorted(os.listdir(m.path)), ['x', 'x.npy', 'x.shape'])
        self.unmount(m)

    def test_rm_r_and_rm_rf_remove_group_trees(self):
        make_file(self.h5, ['top'], {'g': ['p', 'q'], 'g/sub': ['r'], 'h': ['s'], 'h/deep/er': []})
        m = self.mount()
        self.assertQuiet('rm', '-r', m.p('g'))
        self.assertQuiet('rm', '-rf', m.p('h'))
        self.assertEqual(sorted(os.listdir(m.path)), ['top', 'top.npy', 'top.shape'])
        self.unmount(m)
        self.assertEqual(tree(self.h5), {'/top': 'dataset'})
        self.assertEqual(pytables_nodes(self.h5), ['/top'])

    def test_mkdir_p_and_rmdir_of_empty_and_non_empty_groups(self):
        make_file(self.h5, ['x'], {'full': ['y']})
        m = self.mount()
        self.assertQuiet('mkdir', '-p', m.p('a/b/c'))
        self.assertQuiet('mkdir', '-p', m.p('a/b/c'))            # exists: nothing to do
        self.assertTrue(os.path.isdir(m.p('a/b/c')))
        self.assertErrno(errno.EEXIST, os.mkdir, m.p('a'))
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, m.p('a'))
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, m.p('full'))
        self.assertQuiet('rmdir', m.p('a/b/c'))
        self.assertFalse(os.path.lexists(m.p('a/b/c')))
        self.unmount(m)
        self.assertEqual(tree(self.h5), {'/x': 'dataset', '/a': 'group', '/a/b': 'group',
                                         '/full': 'group', '/full/y': 'dataset'})
        self.assertEqual(pytables_nodes(self.h5), ['/a', '/a/b', '/full', '/full/y', '/x'])

    def test_rm_of_a_dataset_with_an_open_reader_and_map_keeps_them_reading(self):
        make_file(self.h5, ['x', 'keep'])
        m = self.mount()
        want = data(0).tobytes()
        fd = os.open(m.p('x'), os.O_RDONLY)
        wfd = os.open(m.p('x'), os.O_WRONLY | os.O_APPEND)
        try:
            mm = mmap.mmap(fd, len(want), access=mmap.ACCESS_READ)
            os.write(wfd, data(9, rows=2).tobytes())     # dirty rows, never written back
            self.assertQuiet('rm', m.p('x'), m.p('x.npy'), m.p('x.shape'))
            os.write(wfd, data(9, rows=1).tobytes())     # lands in the unlinked dataset
            os.close(wfd)
            wfd = -1
            self.assertFalse(os.path.lexists(m.p('x')))
            self.assertEqual(os.pread(fd, len(want), 0), want)
            self.assertEqual(os.fstat(fd).st_nlink, 0)
            self.assertEqual(mm[:], want)
            mm.close()
        finally:
            os.close(fd)
            if wfd >= 0:
                os.close(wfd)
        self.unmount(m)
        self.assertEqual(tree(self.h5), {'/keep': 'dataset'})


class Rename(NamespaceCase):

    def test_mv_renames_a_dataset_and_all_its_views_follow_at_once(self):
        make_file(self.h5, ['x'], {'g': []})
        m = self.mount()
        for v in VIEWS:
            os.stat(m.p('x' + v))          # cached by the kernel: must not lie after the mv
        for v in VIEWS:
            self.assertFalse(os.path.lexists(m.p('y' + v)))   # cached absent
        self.assertQuiet('mv', m.p('x'), m.p('y'))
        for v in VIEWS:
            self.assertFalse(os.path.lexists(m.p('x' + v)), 'x' + v)
            self.assertTrue(os.path.lexists(m.p('y' + v)), 'y' + v)
        self.assertDataset(m, 'y', data(0))
        self.assertQuiet('mv', m.p('y.npy'), m.p('g/z.npy'))
        self.assertDataset(m, 'g/z', data(0))
        self.assertFalse(os.path.lexists(m.p('y.shape')))
        self.assertQuiet('mv', m.p('g'), m.p('h'))
        self.assertDataset(m, 'h/z', data(0))
        self.unmount(m)
        self.assertEqual(tree(self.h5), {'/h': 'group', '/h/z': 'dataset'})
        self.assertStored('/h/z', data(0))

    def test_mv_onto_an_existing_dataset_replaces_it(self):
        make_file(self.h5, ['x', 'y'])
        m = self.mount()
        self.assertDataset(m, 'y', data(1))
        self.assertQuiet('mv', m.p('x.npy'), m.p('y.npy'))
        self.assertEqual(sorted(os.listdir(m.path)), ['y', 'y.npy', 'y.shape'])
        self.assertDataset(m, 'y', data(0))
        self.unmount(m)
        self.assertEqual(tree(self.h5), {'/y': 'dataset'})
        self.assertStored('/y', data(0))

    def test_mv_of_a_group_with_open_files_inside_keeps_them_reading(self):
        make_file(self.h5, [], {'g': ['c'], 'g/sub': ['d']})
        m = self.mount()
        c, d = data(100).tobytes(), data(110).tobytes()
        with open(m.p('g/c'), 'rb') as fc, open(m.p('g/sub/d.npy'), 'rb') as fd:
            head = fd.read(128)
            self.assertQuiet('mv', m.p('g'), m.p('moved'))
            self.assertEqual(fc.read(), c)
            self.assertEqual(fd.read(), d)
            self.assertEqual(len(head), 128)
        self.assertEqual(read_file(m.p('moved/sub/d')), d)
        self.assertQuiet('mkdir', m.p('moved/sub/new'))       # paths below follow the group
        self.unmount(m)
        self.assertEqual(tree(self.h5), {'/moved': 'group', '/moved/c': 'dataset',
                                         '/moved/sub': 'group', '/moved/sub/d': 'dataset',
                                         '/moved/sub/new': 'group'})
        self.assertStored('/moved/sub/d', data(110))

    def test_refused_renames_and_names_say_why_with_an_errno(self):
        make_file(self.h5, ['x', 'y'], {'g': ['c'], 'e': []})
        m = self.mount()
        p = m.p
        cases = [
            (errno.EINVAL, os.rename, p('x.npy'), p('z.shape')),
            (errno.EINVAL, os.rename, p('x'), p('z.npy')),
            (errno.EISDIR, os.rename, p('x'), p('e')),
            (errno.ENOTDIR, os.rename, p('e'), p('x')),
            (errno.ENOTEMPTY, os.rename, p('e'), p('g')),
            (errno.EINVAL, os.rename, p('g'), p('g/inside')),
            (errno.EEXIST, os.mkdir, p('x.npy')),
            (errno.EEXIST, os.mkdir, p('g')),
            (errno.EEXIST, os.symlink, 'c', p('y.shape')),
            (errno.EISDIR, os.unlink, p('g')),
            (errno.ENOTDIR, os.rmdir, p('x')),
            (errno.ENOENT, os.unlink, p('nope')),
            (errno.ENAMETOOLONG, os.mkdir, p('n' * 256)),
            (errno.EPERM, os.symlink, '/etc/passwd', p('abs')),
            (errno.EPERM, os.symlink, '../../out', p('g/out')),
            (errno.EPERM, os.link, p('x'), p('hard')),
        ]
        os.unlink(p('y.npy'))      # not shown now, but still a view of y: not a new name
        cases.append((errno.EEXIST, os.mkdir, p('y.npy')))
        for err, fn, *args in cases:
            with self.subTest(fn=fn.__name__, args=args):
                self.assertErrno(err, fn, *args)
        rc, out = sh('mv', '--no-clobber', p('x'), p('y'))   # RENAME_NOREPLACE
        self.assertEqual(read_file(p('y')), data(1).tobytes())
        self.assertDataset(m, 'x', data(0))
        rc, out = sh('mv', '--exchange', p('x'), p('y'))
        if 'unrecognized option' not in out:
            self.assertNotEqual(rc, 0)
            self.assertIn('Invalid argument', out)
        self.unmount(m)
        self.assertIn('refused (EINVAL): a .npy name keeps its suffix', m.stderr_text())
        self.assertIn('refused (EEXIST): the name is a view of dataset', m.stderr_text())
        self.assertEqual(tree(self.h5), {'/x': 'dataset', '/y': 'dataset', '/g': 'group',
                                         '/g/c': 'dataset', '/e': 'group'})

    def test_read_only_mounts_refuse_every_change_with_erofs(self):
        make_file(self.h5, ['x'], {'g': []})
        m = self.mount('-o', 'ro')
        p = m.p
        for fn, *args in [(os.mkdir, p('n')), (os.rmdir, p('g')), (os.unlink, p('x.npy')),
                          (os.rename, p('x'), p('y')), (os.symlink, 'x', p('l'))]:
            with self.subTest(fn=fn.__name__):
                self.assertErrno(errno.EROFS, fn, *args)
        self.unmount(m)
        self.assertEqual(tree(self.h5), {'/x': 'dataset', '/g': 'group'})

    def test_kill_9_during_mv_onto_existing_datasets_leaves_old_or_new_data(self):
        names = ['t%d' % i for i in range(6)]
        make_file(self.h5, ['src%d' % i for i in range(6)] + names)
        m = self.mount()
        script = ' ; '.join('mv %s %s' % (m.p('src%d' % i), m.p(names[i])) for i in range(6))
        proc = subprocess.Popen(['sh', '-c', script], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # Kill once the loop is under way (some renames done, some not).
        harness.wait_until(lambda: not os.path.lexists(m.p('src2')) or proc.poll() is not None,
                           timeout=10)
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(timeout=harness.MOUNT_TIMEOUT)
        proc.wait(timeout=harness.MOUNT_TIMEOUT)
        m.cleanup()
        with h5py.File(self.h5, 'r') as f:
            self.assertGreater(sum('src%d' % i not in f for i in range(6)), 0, 'no rename was made')
            for i, t in enumerate(names):
                self.assertIn(t, f, 'the target %s vanished' % t)
                got = f[t][()]
                moved = 'src%d' % i not in f
                np.testing.assert_array_equal(got, data(i) if moved else data(6 + i))
        pytables_nodes(self.h5)


class Symlinks(NamespaceCase):

    def test_ln_s_makes_an_hdf5_soft_link_shown_as_written_and_rm_removes_it(self):
        make_file(self.h5, ['x'], {'g': ['c'], 'g/sub': []})
        m = self.mount()
        self.assertQuiet('ln', '-s', 'c', m.p('g/l1'))
        self.assertQuiet('ln', '-s', '../x', m.p('g/l2'))
        self.assertQuiet('ln', '-s', '../../g/c.npy', m.p('g/sub/l3'))
        self.assertEqual(os.readlink(m.p('g/l1')), 'c')
        self.assertEqual(os.readlink(m.p('g/l2')), '../x')
        self.assertEqual(os.readlink(m.p('g/sub/l3')), '../../g/c.npy')
        self.assertEqual(read_file(m.p('g/l1')), data(100).tobytes())
        self.assertEqual(read_file(m.p('g/l2')), data(0).tobytes())
        self.assertEqual(np.load(m.p('g/sub/l3')).tobytes(), data(100).tobytes())
        self.assertQuiet('mv', m.p('g/l1'), m.p('g/l1b'))
        self.assertQuiet('rm', m.p('g/l2'))
        self.unmount(m)
        t = tree(self.h5)
        self.assertEqual(t['/g/l1b'], 'link:c')
        self.assertEqual(t['/g/sub/l3'], 'link:/g/c.npy')
        self.assertNotIn('/g/l2', t)
        with h5py.File(self.h5, 'r') as f:
            np.testing.assert_array_equal(f['g/l1b'][()], data(100))


if __name__ == '__main__':
    harness.run_tests(tools=('fusermount3', 'mv', 'rm', 'ln', 'mkdir', 'rmdir'))
