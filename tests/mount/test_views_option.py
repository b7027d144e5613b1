"""`-o views=LIST` shows only the listed views of each dataset (raw, npy, shape, offsets; the
others are absent from listings and lookups), and du counts each dataset once: the raw view's
st_blocks are the dataset's storage in the file, the derived views have none, so `du -s` of a
mount is about the size of the .h5 file while its apparent size is twice the data. Usage:

    /usr/bin/python3 tests/mount/test_views_option.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h5py                 # noqa: E402
import numpy as np          # noqa: E402

import harness              # noqa: E402
from harness import Mount, errno_of   # noqa: E402

FIX = {}


def setUpModule():
    path = os.path.join(harness.workdir(), 'views.h5')
    rng = np.random.default_rng(5)
    with h5py.File(path, 'w') as f:
        f.create_dataset('zeros', data=np.zeros((2000, 1000)), chunks=(100, 1000),
                         compression='gzip', maxshape=(None, 1000))
        f.create_dataset('noise', data=rng.random((1000, 1000)), chunks=(100, 1000))
        f.create_dataset('contig', data=rng.random((100, 1000)))
        g = f.create_group('g')
        g.create_dataset('small', data=np.arange(12, dtype='<i4').reshape(3, 4),
                         maxshape=(None, 4), chunks=(2, 4))
        v = g.create_dataset('ragged', (2,), dtype=h5py.vlen_dtype(np.dtype('<f8')))
        v[0] = np.arange(3.0)
        v[1] = np.arange(2.0)
    FIX['h5'] = path


def du_bytes(path):
    r = subprocess.run(['du', '-s', '--block-size=1', path], capture_output=True, text=True,
                       check=True)
    return int(r.stdout.split()[0])


def listing(path):
    return sorted(os.listdir(path))


class DuCountsEachDatasetOnce(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.m = harness.mount_for_class(cls, FIX['h5'], opts=())

    def test_du_of_the_mount_is_about_the_size_of_the_file(self):
        size = os.path.getsize(FIX['h5'])
        apparent = sum(os.path.getsize(os.path.join(d, f))
                       for d, _, files in os.walk(self.m.path) for f in files)
        self.assertGreater(apparent, 2.5 * size)        # gzip'ed zeros, and every view counted
        used = du_bytes(self.m.path)
        self.assertGreater(used, 0.9 * size)
        self.assertLess(used, 1.02 * size)

    def test_derived_views_have_no_blocks_and_raw_views_their_storage(self):
        for name in ('zeros.npy', 'zeros.shape', 'noise.npy', 'g/ragged.offsets', 'g/ragged.npy'):
            self.assertEqual(os.stat(self.m.p(name)).st_blocks, 0, name)
        with h5py.File(FIX['h5'], 'r', locking=False) as f:
            for name in ('zeros', 'noise', 'contig'):
                want = f[name].id.get_storage_size()
                self.assertEqual(os.stat(self.m.p(name)).st_blocks, (want + 511) // 512, name)
        self.assertLess(os.stat(self.m.p('zeros')).st_blocks * 512,
                        os.path.getsize(self.m.p('zeros')) // 100)

    def test_cp_of_a_dataset_with_few_blocks_copies_every_byte(self):
        dst = os.path.join(harness.workdir(), 'zeros.copy')
        subprocess.run(['cp', self.m.p('zeros'), dst], check=True)
        self.assertEqual(os.path.getsize(dst), 2000 * 1000 * 8)
        with open(dst, 'rb') as fp:
            self.assertEqual(fp.read(), bytes(2000 * 1000 * 8))


class ViewsOption(unittest.TestCase):

    def test_npy_and_shape_only_hide_the_raw_view_and_offsets(self):
        with Mount(FIX['h5'], ['-o', 'views=npy:shape']) as m:
            self.assertEqual(listing(m.path), ['contig.npy', 'contig.shape', 'g', 'noise.npy',
                                               'noise.shape', 'zeros.npy', 'zeros.shape'])
            self.assertEqual(listing(m.p('g')), ['ragged.npy', 'ragged.shape', 'small.npy',
                                                 'small.shape'])
            self.assertEqual(errno_of(os.stat, m.p('zeros')), errno.ENOENT)
            self.assertEqual(errno_of(os.stat, m.p('g/ragged.offsets')), errno.ENOENT)
            a = np.load(m.p('g/small.npy'))
            self.assertTrue((a == np.arange(12).reshape(3, 4)).all())
            # The dataset takes appends through its .npy alone.
            with open(m.p('g/small.npy'), 'ab') as fp:
                fp.write(np.full((1, 4), 7, dtype='<i4').tobytes())
            with open(m.p('g/small.shape')) as fp:
                self.assertEqual(fp.read(), '4 4\n')

    def test_raw_only_with_an_escaped_comma_list(self):
        with Mount(FIX['h5'], ['-o', r'views=raw\,offsets']) as m:
            self.assertEqual(listing(m.path), ['contig', 'g', 'noise', 'zeros'])
            self.assertEqual(listing(m.p('g')), ['ragged', 'ragged.offsets', 'small'])
            self.assertEqual(errno_of(os.stat, m.p('zeros.npy')), errno.ENOENT)
            self.assertGreater(du_bytes(m.path), 0.9 * os.path.getsize(FIX['h5']))

    def test_an_unknown_view_is_a_one_line_error(self):
        mnt = harness.new_mountpoint()
        for value in ('npy:json', '', 'npy:'):
            r = subprocess.run([harness.EXE, '-f', '-o', 'views=' + value, FIX['h5'], mnt],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr, "h5mount: invalid views '%s' (expected one or more of "
                             "raw, npy, shape, offsets, separated by ':' or '+')\n" % value)
            self.assertFalse(harness.is_mounted(mnt))


if __name__ == '__main__':
    harness.run_tests(tools=('du', 'cp'))
