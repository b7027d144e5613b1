"""Copying trees into and within a read-write mount with real clients (issue 13, namespace model
rules 3 and 4): `cp -r`, `tar -x` and `rsync -a` of a host directory of .npy and raw files;
`cp -r mnt/g mnt/g2`; `cp -r mnt/g ~/copy` then back; `tar -x` of a tarball of a mounted group
whose names come in every order; rsync onto existing datasets; a kill -9 of the daemon during
`cp -r` of many small .npy files. Each copy is compared with `diff -r` through the mount and,
after unmount, with h5py and PyTables. What it does not test: single creations, typing and
O_TRUNC rules (test_create.py), removal and renames (test_namespace.py). Usage:

    /usr/bin/python3 tests/mount/test_copytree.py build/h5mount [TestClass[.test_name] ...]
"""

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402
import tables               # noqa: E402

import harness              # noqa: E402

REC = np.dtype([('a', '<i4'), ('b', '>f8'), ('s', 'S5')])


def arrays():
    """{name: array} of the datasets every copy carries: 2-D float over several chunks and
    128 KiB writes, a structured dtype with a big-endian field, a 3-D big-endian integer, a
    1-D uint8 (a raw file, no .npy), a 1-D int64 and a 2-D complex."""
    rec = np.zeros(23, dtype=REC)
    rec['a'] = np.arange(23) - 7
    rec['b'] = np.linspace(-1, 1, 23)
    rec['s'] = [b'r%03d' % i for i in range(23)]
    return {
        'f2d': (np.arange(3000 * 7, dtype='<f8') / 7.0).reshape(3000, 7),
        'rec': rec,
        'u3': np.arange(40 * 3 * 2, dtype='>u2').reshape(40, 3, 2),
        'blob': np.frombuffer(bytes((i * 37 + 11) % 256 for i in range(1001)), dtype='u1'),
        'i1d': np.arange(1000, dtype='<i8') * -3,
        'cpx': (np.arange(20, dtype='<c8') * (1 + 2j)).reshape(10, 2),
    }


SUB = {'deep': np.arange(15, dtype='<f4').reshape(5, 3) / 3}   # in the subgroup sub/
RAW = {'blob'}                                                # written as raw files, no .npy


def make_group_file(path, group='g', data=None, sub=None):
    """An h5py file holding `group` with arrays() (chunked, extendable) and group/sub with SUB."""
    with h5py.File(path, 'w') as f:
        g = f.create_group(group)
        for name, a in sorted((data or arrays()).items()):
            g.create_dataset(name, data=a, chunks=True, maxshape=(None,) + a.shape[1:])
        s = g.create_group('sub')
        for name, a in sorted((sub or SUB).items()):
            s.create_dataset(name, data=a, chunks=True, maxshape=(None,) + a.shape[1:])
    return path


def make_empty_file(path):
    with h5py.File(path, 'w'):
        pass
    return path


def host_npy_tree(root, names=('f2d', 'rec', 'blob', 'i1d', 'cpx')):
    """A host directory of what users copy in: np.save'd .npy files and raw files (RAW), and a
    subdirectory. The 3-D array is left out: its .npy header through the mount reserves room for
    three 20-digit dimensions (192 bytes) where numpy writes 128, so `diff` would differ in the
    header although the data are equal (the mounted-group copies carry it)."""
    os.makedirs(os.path.join(root, 'sub'))
    a = arrays()
    for name in names:
        if name in RAW:
            with open(os.path.join(root, name), 'wb') as fp:
                fp.write(a[name].tobytes())
        else:
            np.save(os.path.join(root, name + '.npy'), a[name])
    for name, arr in SUB.items():
        np.save(os.path.join(root, 'sub', name + '.npy'), arr)
    return {name: a[name] for name in names}


def sh(*argv, cwd=None):
    """Runs a real client; returns (exit status, stdout + stderr)."""
    p = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd)
    return p.returncode, p.stdout.decode(errors='replace')


def stored(h5, path):
    """(npy dtype, shape, maxshape, bytes as stored) of dataset `path`, read with h5py."""
    with h5py.File(h5, 'r') as f:
        ds = f[path]
        return (harness.npy_dtype(ds.id.get_type()), tuple(ds.shape), ds.maxshape,
                harness.read_as_stored(ds))


def datasets_below(h5, group):
    """{path relative to group: h5py dataset path} of every dataset below `group`."""
    out = {}
    with h5py.File(h5, 'r') as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = group.rstrip('/') + '/' + name
        f[group].visititems(visit)
    return out


class CopyCase(harness.MountsCase):

    maxDiff = None       # a client's whole complaint, not the first 640 characters

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='%s-' % self.id().rsplit('.', 1)[-1],
                                    dir=harness.workdir())
        self.h5 = os.path.join(self.dir, 'file.h5')
        super().setUp()

    def assertQuiet(self, *argv, cwd=None):
        rc, out = sh(*argv, cwd=cwd)
        self.assertEqual((rc, out), (0, ''), ' '.join(argv))

    def assertSameTree(self, a, b):
        """`diff -r a b` exits 0 and prints nothing."""
        self.assertQuiet('diff', '-r', a, b)

    def assertStoredArray(self, path, arr):
        """h5py and PyTables read dataset `path` of self.h5 as arr: same npy dtype (byte order
        and fields included), shape and bytes; extendable along axis 0."""
        dt, shape, maxshape, raw = stored(self.h5, path)
        self.assertEqual(dt, arr.dtype, path)
        self.assertEqual(shape, arr.shape, path)
        self.assertEqual(maxshape[0], None, '%s: maxshape %r' % (path, maxshape))
        harness.assert_bytes_equal(raw, arr.tobytes(), path)
        with tables.open_file(self.h5, 'r') as t:
            got = t.get_node(path).read()
        self.assertTrue(harness.values_equal(got, arr), '%s: PyTables reads %r' % (path, got[:3]))

    def assertCopiedDatasets(self, src_group, dst_group):
        """After unmount: every dataset below src_group has a copy below dst_group, the same
        for h5py (dtype, shape, stored bytes) and PyTables, and nothing else is there."""
        src = datasets_below(self.h5, src_group)
        dst = datasets_below(self.h5, dst_group)
        self.assertEqual(sorted(dst), sorted(src))
        for rel, path in sorted(src.items()):
            dt, shape, _, raw = stored(self.h5, path)
            arr = np.frombuffer(raw, dtype=dt.base).reshape(shape + dt.shape) \
                if dt.shape else np.frombuffer(raw, dtype=dt).reshape(shape)
            self.assertStoredArray(dst[rel], arr)


class HostTreeIntoMount(CopyCase):
    """A host directory of .npy and raw files copied into a new group of an empty file."""

    def check_host_copy(self, m, host, dest, want):
        self.assertSameTree(host, m.p(dest))
        # Only the names that were created show (rule 3), so the listing equals the host's.
        self.assertEqual(sorted(os.listdir(m.p(dest))), sorted(os.listdir(host)))
        self.unmount(m)
        for name, arr in want.items():
            self.assertStoredArray('/%s/%s' % (dest, name), arr)
        self.assertStoredArray('/%s/sub/deep' % dest, SUB['deep'])
        # Mounted again, every dataset shows all its names; the data are the same.
        m = self.mount('-o', 'ro')
        for name, arr in want.items():
            harness.check_dataset(m, harness.expected_from_array('/%s/%s' % (dest, name), arr))
        self.unmount(m)

    def test_cp_r_of_a_host_tree_of_npy_and_raw_files(self):
        host = os.path.join(self.dir, 'host')
        want = host_npy_tree(host)
        make_empty_file(self.h5)
        m = self.mount()
        self.assertQuiet('cp', '-r', host, m.p('g'))
        self.check_host_copy(m, host, 'g', want)

    def test_tar_x_of_a_host_tree_in_every_name_order(self):
        host = os.path.join(self.dir, 'host')
        want = host_npy_tree(host)
        names = sorted(os.listdir(host))
        tarball = os.path.join(self.dir, 'tree.tar')
        # Two archives with opposite member orders, the subdirectory first in one of them.
        for i, order in enumerate((names, names[::-1])):
            self.assertQuiet('tar', '-c', '-f', tarball + str(i), '--no-recursion', '-C', self.dir,
                             'host', *['host/' + n for n in order], 'host/sub/deep.npy')
        make_empty_file(self.h5)
        m = self.mount()
        for i in range(2):
            os.mkdir(m.p('t%d' % i))
            self.assertQuiet('tar', '-x', '-f', tarball + str(i), '-C', m.p('t%d' % i))
            self.assertSameTree(host, m.p('t%d/host' % i))
        self.unmount(m)
        for i in range(2):
            for name, arr in want.items():
                self.assertStoredArray('/t%d/host/%s' % (i, name), arr)
            self.assertStoredArray('/t%d/host/sub/deep' % i, SUB['deep'])

    def test_rsync_a_of_a_host_tree_of_npy_and_raw_files(self):
        # rsync writes each file under a temporary name (.NAME.XXXXXX) and renames it.
        host = os.path.join(self.dir, 'host')
        want = host_npy_tree(host)
        make_empty_file(self.h5)
        m = self.mount()
        self.assertQuiet('rsync', '-a', host + '/', m.p('g') + '/')
        self.check_host_copy(m, host, 'g', want)

    def test_rsync_a_onto_existing_datasets_replaces_them(self):
        host = os.path.join(self.dir, 'host')
        want = host_npy_tree(host)
        # The same names, other contents: other rows, another dtype (f4 for f8), other bytes.
        old = {'f2d': np.ones((5, 7), dtype='<f4'), 'rec': np.zeros(3, dtype=REC),
               'blob': np.zeros(10, dtype='u1'), 'i1d': np.arange(4, dtype='<i8'),
               'cpx': np.zeros((1, 2), dtype='<c8')}
        make_group_file(self.h5, data=old, sub={'deep': np.zeros((2, 3), dtype='<f4')})
        m = self.mount()
        self.assertQuiet('rsync', '-a', host + '/', m.p('g') + '/')
        for name in want:
            leaf = name if name in RAW else name + '.npy'
            self.assertQuiet('cmp', os.path.join(host, leaf), m.p('g', leaf))
        self.assertQuiet('cmp', os.path.join(host, 'sub/deep.npy'), m.p('g/sub/deep.npy'))
        self.unmount(m)
        for name, arr in want.items():
            self.assertStoredArray('/g/' + name, arr)
        self.assertStoredArray('/g/sub/deep', SUB['deep'])


class MountedGroupCopies(CopyCase):
    """Copies of a mounted group, which holds x, x.npy and x.shape for each dataset."""

    def test_cp_r_of_a_mounted_group_inside_the_mount(self):
        make_group_file(self.h5)
        m = self.mount()
        self.assertQuiet('cp', '-r', m.p('g'), m.p('g2'))
        self.assertSameTree(m.p('g'), m.p('g2'))
        self.unmount(m)
        self.assertCopiedDatasets('/g', '/g2')
        m = self.mount('-o', 'ro')
        self.assertSameTree(m.p('g'), m.p('g2'))
        self.unmount(m)

    def check_filtered_copy(self, comp, fid):
        make_group_file(self.h5)
        m = self.mount('-o', 'compress=' + comp)
        self.assertQuiet('cp', '-r', m.p('g'), m.p('g2'))
        self.assertSameTree(m.p('g'), m.p('g2'))
        self.unmount(m)
        self.assertCopiedDatasets('/g', '/g2')
        with h5py.File(self.h5, 'r') as f:
            for path in datasets_below(self.h5, '/g2').values():
                plist = f[path].id.get_create_plist()
                filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
                self.assertIn(fid, filters, path)

    def test_cp_r_inside_a_compress_blosc_mount_makes_blosc_copies(self):
        self.check_filtered_copy('blosc', 32001)

    def test_cp_r_inside_a_compress_gzip_mount_makes_deflate_copies(self):
        self.check_filtered_copy('gzip:1', h5py.h5z.FILTER_DEFLATE)

    def test_cp_r_of_a_mounted_group_to_the_host_and_back(self):
        make_group_file(self.h5)
        copy = os.path.join(self.dir, 'copy')
        m = self.mount()
        self.assertQuiet('cp', '-r', m.p('g'), copy)
        self.assertSameTree(m.p('g'), copy)
        self.assertQuiet('cp', '-r', copy, m.p('g3'))
        self.assertSameTree(copy, m.p('g3'))
        self.assertSameTree(m.p('g'), m.p('g3'))
        self.unmount(m)
        self.assertCopiedDatasets('/g', '/g3')

    def test_tar_x_of_a_tarball_of_a_mounted_group_in_every_name_order(self):
        # Each dataset's three names are archived in another of their six orders, so the
        # creations through x, x.npy and x.shape come in every order.
        make_group_file(self.h5)
        names = sorted(arrays())
        orders = list(itertools.permutations(('', '.npy', '.shape')))
        members = ['g', 'g/sub']
        for name, order in zip(names, orders):
            members += ['g/%s%s' % (name, v) for v in order]
        members += ['g/sub/deep.shape', 'g/sub/deep.npy', 'g/sub/deep']
        tarball = os.path.join(self.dir, 'g.tar')
        m = self.mount()
        self.assertQuiet('tar', '-c', '-f', tarball, '--no-recursion', '-C', m.path, *members)
        os.mkdir(m.p('t'))
        self.assertQuiet('tar', '-x', '-f', tarball, '-C', m.p('t'))
        self.assertSameTree(m.p('g'), m.p('t/g'))
        # Extracting again over the copy: tar unlinks each existing name and creates it anew.
        self.assertQuiet('tar', '-x', '-f', tarball, '-C', m.p('t'))
        self.assertSameTree(m.p('g'), m.p('t/g'))
        self.unmount(m)
        self.assertCopiedDatasets('/g', '/t/g')


class KilledDuringCopy(CopyCase):

    FIRST, COUNT = 30, 150      # copied and committed before; copied during the kill

    def test_kill_9_during_cp_r_of_many_small_npy_files_leaves_whole_or_described_datasets(self):
        want = {}
        for part, names in (('first', range(self.FIRST)), ('many', range(self.FIRST, self.COUNT))):
            os.mkdir(os.path.join(self.dir, part))
            for i in names:
                a = np.arange(40, dtype='<f8').reshape(10, 4) + 1000 * i
                want['n%03d' % i] = a
                np.save(os.path.join(self.dir, part, 'n%03d.npy' % i), a)
        make_empty_file(self.h5)
        m = self.mount()
        # A first tree copied whole, then committed: `touch` writes back and commits (README,
        # Owners, modes and times), so the kill must not lose any of it.
        self.assertQuiet('cp', '-r', os.path.join(self.dir, 'first'), m.p('k'))
        self.assertQuiet('touch', m.p('k'))
        cp = subprocess.Popen(['cp', '-r', os.path.join(self.dir, 'many'), m.p('k2')],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def some_copied():
            try:
                return len(os.listdir(m.p('k2'))) >= 20 or cp.poll() is not None
            except OSError:
                return cp.poll() is not None
        harness.wait_until(some_copied, timeout=30)
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(timeout=harness.MOUNT_TIMEOUT)
        cp.wait(timeout=harness.MOUNT_TIMEOUT)
        m.cleanup()
        self.assertNotEqual(cp.returncode, 0, 'cp finished before the kill: nothing was tested')
        m = self.mount()            # replays the journal
        listed = sorted(os.listdir(m.p('k2'))) if os.path.isdir(m.p('k2')) else []
        self.unmount(m)
        states = {'whole': 0, 'typed, fewer rows': 0, 'empty uint8': 0}
        with h5py.File(self.h5, 'r') as f:
            self.assertEqual(sorted(f['k']), ['n%03d' % i for i in range(self.FIRST)])
            for name in f['k']:
                self.assertEqual(harness.npy_dtype(f['k'][name].id.get_type()), np.dtype('<f8'))
                np.testing.assert_array_equal(f['k'][name][()], want[name], name)
            present = sorted(f['k2']) if 'k2' in f else []
            for name in present:
                ds = f['k2'][name]
                self.assertIn(name, want, 'an unexpected object %s' % name)
                a = want[name]
                dt = harness.npy_dtype(ds.id.get_type())
                got = ds[()]
                if dt == a.dtype and ds.shape == a.shape:
                    np.testing.assert_array_equal(got, a, name)
                    states['whole'] += 1
                elif dt == a.dtype:
                    # the rows written back before the kill, as the source's first rows
                    self.assertEqual(ds.shape[1:], a.shape[1:], name)
                    self.assertLess(ds.shape[0], a.shape[0], name)
                    np.testing.assert_array_equal(got, a[:ds.shape[0]], name)
                    states['typed, fewer rows'] += 1
                else:
                    # created, but killed before its data (and .npy header) were written back
                    self.assertEqual((dt, ds.shape), (np.dtype('u1'), (0,)), name)
                    states['empty uint8'] += 1
        with tables.open_file(self.h5, 'r') as t:
            nodes = sorted(n._v_name for n in t.walk_nodes('/', 'Leaf'))
        self.assertEqual(nodes, sorted(want)[:self.FIRST] + present)
        self.assertEqual([v for v in listed if not v.endswith(('.npy', '.shape'))], present)
        self.assertGreater(len(present), 0, 'no creation was committed before the kill')
        print('\n# kill -9 during cp -r of %d files: %d there (%s)' % (
            self.COUNT - self.FIRST, len(present), ', '.join('%s %d' % kv for kv in states.items())))


if __name__ == '__main__':
    harness.run_tests(tools=('fusermount3', 'cp', 'tar', 'rsync', 'diff', 'cmp'))
