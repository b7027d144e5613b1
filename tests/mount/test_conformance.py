"""Reads files that other tools write the way those tools' readers do (h5py, h5dump).

Fixtures come from the real tools: h5py (user blocks) and h5jam (a user block added to a
finished file). Covers: data behind a user block on every read path. Usage:

    /usr/bin/python3 tests/mount/test_conformance.py build/h5mount [TestClass[.test_name] ...]
"""

import os
import shutil
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
TOOLS = ('h5jam',)


def run(*argv):
    subprocess.run(argv, check=True, capture_output=True)


# ------------------------------------------------------------------ fixtures

def userblock_datasets(f):
    """Datasets on every read path: contiguous (pread), chunks of whole rows (raw rows),
    tiles (chunk by chunk), gzip (HDF5), storage never allocated and chunks never written."""
    f.create_dataset('contig', data=np.arange(1000, dtype='<i4') * 3 + 1)
    f.create_dataset('chunked', data=np.arange(1000, dtype='<i4') + 7, chunks=(100,))
    f.create_dataset('rows', data=np.arange(2000, dtype='<f8').reshape(200, 10) / 4,
                     chunks=(16, 10), maxshape=(None, 10))
    f.create_dataset('tiles', data=np.arange(600, dtype='<i2').reshape(30, 20),
                     chunks=(7, 3))
    f.create_dataset('gzip', data=np.arange(1000, dtype='<i8') - 500, chunks=(64,),
                     compression='gzip')
    f.create_dataset('unallocated', shape=(300,), dtype='<i2')
    f.create_dataset('unallocated_fill', shape=(300,), dtype='<i2', fillvalue=-3)
    sparse = f.create_dataset('sparse', shape=(1000,), dtype='<i4', chunks=(100,),
                              fillvalue=5)
    sparse[300:400] = np.arange(100)


def make_userblock(d):
    """The same datasets behind a 512-byte user block written by h5py, and behind one that
    h5jam adds to a finished file."""
    ub = os.path.join(d, 'userblock.h5')
    with h5py.File(ub, 'w', userblock_size=512) as f:
        userblock_datasets(f)
    plain = os.path.join(d, 'plain.h5')
    with h5py.File(plain, 'w') as f:
        userblock_datasets(f)
    text = os.path.join(d, 'ub.txt')
    with open(text, 'w') as fp:
        fp.write('h5mount conformance test: a user block from h5jam\n')
    jammed = os.path.join(d, 'jammed.h5')
    run('h5jam', '-i', plain, '-u', text, '-o', jammed)
    return ub, jammed


def setUpModule():
    d = harness.workdir()
    FIX['userblock'], FIX['jammed'] = make_userblock(d)


# ------------------------------------------------------------------ expectations

def h5py_read(h5path, name):
    with h5py.File(h5path, 'r') as f:
        return f[name][()]


def load(path):
    """np.load of a mounted .npy: the strictest check of its header."""
    return np.load(path)


class Case(unittest.TestCase):
    def assert_views(self, m, name, want, what):
        """x.npy loads as `want` (dtype and values) and x holds want's bytes."""
        want = np.ascontiguousarray(want)
        got = load(m.p(name + '.npy'))
        self.assertEqual(got.dtype, want.dtype, '%s: %s.npy dtype' % (what, name))
        self.assertEqual(got.shape, want.shape, '%s: %s.npy shape' % (what, name))
        self.assertTrue(harness.values_equal(got, want), '%s: %s.npy values' % (what, name))
        harness.assert_bytes_equal(read_file(m.p(name)), want.tobytes(),
                                   '%s: raw %s' % (what, name))


# ------------------------------------------------------------------ 1. user blocks

UB_NAMES = ('contig', 'chunked', 'rows', 'tiles', 'gzip', 'unallocated', 'unallocated_fill',
            'sparse')


class UserBlock(Case):
    def check_file(self, key, opts):
        h5 = FIX[key]
        want = {n: h5py_read(h5, n) for n in UB_NAMES}
        self.assertEqual(want['unallocated_fill'][0], -3)
        self.assertEqual(want['sparse'][0], 5)
        with harness.Mount(h5, opts) as m:
            for n in UB_NAMES:
                with self.subTest(dataset=n):
                    self.assert_views(m, n, want[n], '%s %s' % (key, ' '.join(opts) or 'rw'))

    def test_h5py_user_block_every_read_path_read_only(self):
        self.check_file('userblock', ('-o', 'ro'))

    def test_h5py_user_block_every_read_path_read_write(self):
        self.check_file('userblock', ())

    def test_h5jam_user_block_every_read_path_read_only(self):
        self.check_file('jammed', ('-o', 'ro'))

    def test_h5jam_user_block_every_read_path_read_write(self):
        self.check_file('jammed', ())


    def test_appends_and_overwrites_behind_a_user_block_keep_the_block_and_the_data(self):
        h5 = harness.fresh_copy(FIX['jammed'], 'jammed_rw.h5')
        with open(h5, 'rb') as fp:
            block = fp.read(512)
        with harness.Mount(h5) as m:
            with open(m.p('sparse'), 'r+b') as fp:
                fp.seek(4 * 10)
                fp.write(np.arange(3, dtype='<i4').tobytes())
            with open(m.p('rows'), 'ab') as fp:
                fp.write(np.full((16, 10), 2.5, '<f8').tobytes())
        with open(h5, 'rb') as fp:
            self.assertEqual(fp.read(512), block, 'the user block is unchanged')
        sparse = h5py_read(h5, 'sparse')
        self.assertEqual(sparse[9:14].tolist(), [5, 0, 1, 2, 5])
        rows = h5py_read(h5, 'rows')
        self.assertEqual(rows.shape, (216, 10))
        self.assertTrue((rows[200:] == 2.5).all())
        self.assertTrue(np.array_equal(rows[:200], np.arange(2000).reshape(200, 10) / 4))


if __name__ == '__main__':
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        print('SKIP: missing %s (contrib/deps installs them)' % ' '.join(missing))
        sys.exit(77)
    harness.run_tests()
