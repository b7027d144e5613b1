"""Creating datasets through a read-write mount (issue 13, ns-model rules 3-5 and 7): np.save
of every fixed-size dtype family into new .npy names, cp of .npy and raw files, open_memmap
w+, the npy-append-array pattern, np.save with O_TRUNC over a dataset of another dtype
(replaced, attributes kept), names shown again, copies of mounted groups in any order of
their names, -o compress / -o chunk_size, refused headers and names, EROFS, kill -9 after a
create, and a reader hammering a dataset while it is replaced. Every result is checked
through the mount and, after unmount, with h5py and PyTables. Usage:

    /usr/bin/python3 tests/mount/test_create.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import io
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402
import tables               # noqa: E402

import harness              # noqa: E402
from harness import read_file   # noqa: E402

STRUCT_PADDED = np.dtype({'names': ['a', 'b'], 'formats': ['<i2', '>f8'], 'offsets': [0, 8],
                          'itemsize': 24})
SUBARRAY = np.dtype([('v', '<i4', (3,)), ('w', 'u1'), ('m', '>f4', (2, 2))])

# One array per fixed-size dtype family and byte order the read path serves.
ARRAYS = {
    'b1': np.array([True, False, True, True]),
    'i1': np.arange(-5, 5, dtype='i1'),
    'u1': np.arange(250, 256, dtype='u1'),
    'i2le': np.arange(-30, 30, dtype='<i2').reshape(20, 3),
    'i2be': np.arange(-30, 30, dtype='>i2').reshape(20, 3),
    'u4le': np.arange(40, dtype='<u4').reshape(10, 2, 2),
    'u4be': np.arange(40, dtype='>u4').reshape(10, 4),
    'i8le': np.arange(-7, 7, dtype='<i8'),
    'i8be': np.arange(-7, 7, dtype='>i8'),
    'f2': np.linspace(-2, 2, 9).astype('<f2'),
    'f4le': np.linspace(0, 1, 12, dtype='<f4').reshape(4, 3),
    'f4be': np.linspace(0, 1, 12, dtype='>f4').reshape(6, 2),
    'f8le': np.linspace(0, 1, 7, dtype='<f8'),
    'f8be': np.linspace(0, 1, 7, dtype='>f8'),
    'c8': (np.arange(6) + 1j * np.arange(6)).astype('<c8'),
    'c16be': (np.arange(6) - 2j).astype('>c16'),
    'S5': np.array([b'ab', b'hello', b'', b'xyz'], dtype='S5'),
    'V3': np.frombuffer(b'abcdefghi', dtype='V3'),
    'struct': np.zeros(5, dtype=STRUCT_PADDED),  # zeros: padding bytes included
    'subarray': np.zeros(4, dtype=SUBARRAY),
}
ARRAYS['subarray']['v'] = np.arange(12).reshape(4, 3)
ARRAYS['subarray']['m'] = 1.5
ARRAYS['struct']['a'] = np.arange(5)
ARRAYS['struct']['b'] = np.arange(5) / 2
# PyTables reads these back too (it has no opaque or half-float-free story worth testing).
PYTABLES = ('i1', 'u1', 'i2le', 'i2be', 'u4le', 'u4be', 'i8le', 'i8be', 'f4le', 'f4be', 'f8le',
            'f8be', 'c8', 'c16be', 'S5', 'struct', 'subarray')


def sh(*argv):
    p = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode, p.stdout.decode(errors='replace')


def npy_bytes(arr):
    b = io.BytesIO()
    np.save(b, arr)
    return b.getvalue()


def make_file(path):
    with h5py.File(path, 'w') as f:
        g = f.create_group('g')
        d = g.create_dataset('x', data=np.arange(30.0).reshape(10, 3), maxshape=(None, 3), chunks=(4, 3))
        d.attrs['units'] = 'volt'
        d.attrs['scale'] = np.int32(7)
        g.create_dataset('y', data=np.arange(5, dtype='<u2'), maxshape=(None,), chunks=(8,))
        f.create_group('empty')
    return path


class CreateCase(harness.MountsCase):

    def setUp(self):
        self.h5 = make_file(os.path.join(harness.workdir(), '%s.h5' % self.id().rsplit('.', 1)[-1]))
        super().setUp()

    def assertErrno(self, err, fn, *args):
        got = harness.errno_of(fn, *args)
        self.assertEqual(got, err, '%s%r: %s, expected %s' % (
            fn.__name__, args, errno.errorcode.get(got, got), errno.errorcode[err]))

    def assertStored(self, path, arr, pytables=True):
        with h5py.File(self.h5, 'r') as f:
            d = f[path]
            self.assertEqual(d.dtype, arr.dtype, path)
            self.assertEqual(d.shape, arr.shape, path)
            self.assertEqual(d.maxshape[0], None, path)
            self.assertEqual(d[()].tobytes(), arr.tobytes(), path)
        if pytables:
            with tables.open_file(self.h5, 'r') as f:
                # PyTables serves values in native byte order: compare values.
                # (structured: field by field; it drops padding).
                got = f.get_node('/' + path).read()
                for field in arr.dtype.names or (None,):
                    a, b = (got, arr) if field is None else (got[field], arr[field])
                    self.assertEqual(a.astype(b.dtype).tobytes(), b.tobytes(), '%s %s' % (path, field))


class NewDatasets(CreateCase):

    def test_np_save_makes_a_dataset_of_every_fixed_size_dtype_family_and_byte_order(self):
        m = self.mount()
        for name, arr in ARRAYS.items():
            with self.subTest(name):
                np.save(m.p('g/%s.npy' % name), arr)
                got = np.load(m.p('g/%s.npy' % name))
                self.assertEqual(got.dtype, arr.dtype)
                self.assertEqual(got.tobytes(), arr.tobytes())
                # A dataset created through x.npy shows only that name (rule 3).
                self.assertFalse(os.path.exists(m.p('g/' + name)))
                self.assertEqual(os.stat(m.p('g/%s.npy' % name)).st_nlink, 1)
        self.unmount(m)
        for name, arr in ARRAYS.items():
            with self.subTest(name):
                self.assertStored('g/' + name, arr, pytables=name in PYTABLES)

    def test_a_fortran_order_or_object_header_is_refused_logged_and_creates_nothing(self):
        m = self.mount()
        before = sorted(os.listdir(m.p('g')))
        with self.assertRaises(OSError) as cm:
            np.save(m.p('g/fo.npy'), np.asfortranarray(np.zeros((3, 4))))
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        with self.assertRaises(OSError) as cm:
            np.save(m.p('g/ob.npy'), np.array([1, 'a', None], dtype=object), allow_pickle=True)
        self.assertEqual(cm.exception.errno, errno.ENOTSUP)
        harness.wait_until(lambda: sorted(os.listdir(m.p('g'))) == before)
        self.assertEqual(sorted(os.listdir(m.p('g'))), before)
        log = m.stderr_text()
        self.assertIn('Fortran order', log)
        self.assertRegex(log, re.escape("/g/ob: a .npy header of dtype '|O' refused (Operation not supported)"))
        self.unmount(m)
        with h5py.File(self.h5, 'r') as f:
            self.assertEqual(sorted(f['g']), ['x', 'y'])

    def test_a_npy_header_that_never_completes_creates_nothing(self):
        m = self.mount()
        before = sorted(os.listdir(m.p('g')))
        head = np.lib.format.magic(1, 0) + b'\x76\x00{"descr": "<f8", '   # cut inside the dict
        with self.assertRaises(OSError) as cm:
            with open(m.p('g/cut.npy'), 'wb') as fp:
                fp.write(head)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        harness.wait_until(lambda: sorted(os.listdir(m.p('g'))) == before)
        self.assertEqual(sorted(os.listdir(m.p('g'))), before)
        self.assertIn("/g/cut: refused (EINVAL): a .npy header that never completed", m.stderr_text())
        self.unmount(m)
        with h5py.File(self.h5, 'r') as f:
            self.assertEqual(sorted(f['g']), ['x', 'y'])

    def test_cp_of_npy_and_raw_files_round_trips_byte_for_byte(self):
        src = os.path.join(harness.workdir(), 'src-%d' % os.getpid())
        os.makedirs(src, exist_ok=True)
        arr = np.arange(1000, dtype='>u8').reshape(250, 4)
        np.save(os.path.join(src, 'a.npy'), arr)
        blob = os.urandom(100003)  # an odd size
        with open(os.path.join(src, 'blob.bin'), 'wb') as fp:
            fp.write(blob)
        m = self.mount()
        self.assertEqual(sh('cp', os.path.join(src, 'a.npy'), os.path.join(src, 'blob.bin'), m.p('g')),
                         (0, ''))
        self.assertEqual(sh('cmp', os.path.join(src, 'a.npy'), m.p('g/a.npy')), (0, ''))
        self.assertEqual(sh('cmp', os.path.join(src, 'blob.bin'), m.p('g/blob.bin')), (0, ''))
        with open(m.p('log'), 'wb') as fp:
            for piece in (b'one\n', b'two three\n', b'x' * 7):
                fp.write(piece)
                fp.flush()
        self.assertEqual(read_file(m.p('log')), b'one\ntwo three\nxxxxxxx')
        self.assertEqual(os.stat(m.p('log')).st_nlink, 1)
        self.unmount(m)
        self.assertStored('g/a', arr)
        self.assertStored('g/blob.bin', np.frombuffer(blob, 'u1'))
        self.assertStored('log', np.frombuffer(b'one\ntwo three\nxxxxxxx', 'u1'))

    def test_open_memmap_w_plus_then_writes_through_the_map(self):
        m = self.mount()
        want = np.arange(700, dtype='<f4').reshape(100, 7)
        a = np.lib.format.open_memmap(m.p('g/mm.npy'), mode='w+', dtype='<f4', shape=(100, 7))
        a[:] = want
        a.flush()
        del a
        self.assertEqual(np.load(m.p('g/mm.npy')).tobytes(), want.tobytes())
        self.unmount(m)
        self.assertStored('g/mm', want)

    def test_npy_append_array_pattern_header_rows_then_header_rewritten(self):
        m = self.mount()
        p = m.p('g/ap.npy')
        with open(p, 'wb') as fp:
            np.lib.format.write_array_header_1_0(fp, {'descr': '<f8', 'fortran_order': False, 'shape': (0, 3)})
        rows = np.arange(15.0).reshape(5, 3)
        with open(p, 'r+b') as fp:
            fp.seek(0, 2)
            fp.write(rows[:2].tobytes())
            fp.write(rows[2:].tobytes())
            fp.seek(0)
            np.lib.format.write_array_header_1_0(fp, {'descr': '<f8', 'fortran_order': False, 'shape': (5, 3)})
        self.assertEqual(np.load(p).tobytes(), rows.tobytes())
        self.unmount(m)
        self.assertStored('g/ap', rows)

    def test_o_trunc_np_save_over_another_dtype_replaces_the_dataset_keeping_attributes(self):
        m = self.mount()
        new = np.arange(12, dtype='>i2').reshape(3, 4)
        np.save(m.p('g/x.npy'), new)
        got = np.load(m.p('g/x.npy'))
        self.assertEqual((got.dtype, got.tobytes()), (new.dtype, new.tobytes()))
        self.assertEqual(read_file(m.p('g/x')), new.tobytes())
        self.assertEqual(read_file(m.p('g/x.shape')), b'3 4\n')
        self.assertEqual(os.getxattr(m.p('g/x'), 'user.units'), b'volt')
        # Without O_TRUNC another dtype stays EINVAL.
        with self.assertRaises(OSError) as cm:
            with open(m.p('g/y.npy'), 'r+b') as fp:
                fp.write(npy_bytes(np.zeros(3, '<f8')))
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        # Repeated replaces (alternating dtypes) leave one dataset, the last one.
        for i in range(6):
            np.save(m.p('g/x.npy'), np.full((2, i + 1), i, dtype='<f4' if i % 2 else '<i8'))
        last = np.full((2, 6), 5, dtype='<f4')
        self.assertEqual(np.load(m.p('g/x.npy')).tobytes(), last.tobytes())
        self.unmount(m)
        self.assertStored('g/x', last)
        with h5py.File(self.h5, 'r') as f:
            self.assertEqual(f['g/x'].attrs['units'], 'volt')
            self.assertEqual(f['g/x'].attrs['scale'], 7)
            self.assertEqual(sorted(f['g']), ['x', 'y'])
        self.assertStored('g/y', np.arange(5, dtype='<u2'))

    def test_o_excl_collisions_and_bad_names_are_refused_with_a_log_line(self):
        m = self.mount()

        def create(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644))
        os.mkdir(m.p('g/z.npy'))  # a group named like a view of z
        cases = [
            (errno.EEXIST, m.p('g/x')),           # shown name
            (errno.EEXIST, m.p('g/x.npy')),
            (errno.EEXIST, m.p('empty.npy')),     # dataset `empty` would be a group's name
            (errno.EEXIST, m.p('g/z')),           # dataset z would show z.npy, a group
            (errno.EINVAL, m.p('g/v.offsets')),
            (errno.ENAMETOOLONG, m.p('g/' + 'n' * 256)),
        ]
        for err, path in cases:
            with self.subTest(os.path.basename(path)[:20]):
                self.assertErrno(err, create, path)
        self.assertIn("refused (EEXIST): a dataset 'z' would show 'z.npy'", m.stderr_text())
        self.assertEqual(sorted(os.listdir(m.p('g'))), ['x', 'x.npy', 'x.shape', 'y', 'y.npy', 'y.shape',
                                                        'z.npy'])
        self.unmount(m)
        with h5py.File(self.h5, 'r') as f:
            self.assertEqual(sorted(f['g']), ['x', 'y', 'z.npy'])

    def test_read_only_mount_refuses_creation_with_erofs(self):
        m = self.mount('-o', 'ro')
        self.assertErrno(errno.EROFS, open, m.p('g/new.npy'), 'wb')
        self.assertErrno(errno.EROFS, open, m.p('new'), 'wb')
        self.unmount(m)
        with h5py.File(self.h5, 'r') as f:
            self.assertEqual(sorted(f), ['empty', 'g'])


class HiddenNames(CreateCase):

    def test_touch_after_rm_shows_the_name_again_and_changes_nothing(self):
        m = self.mount()
        os.unlink(m.p('g/x'))
        self.assertEqual(os.stat(m.p('g/x.npy')).st_nlink, 2)
        self.assertEqual(sh('touch', m.p('g/x')), (0, ''))
        self.assertEqual(os.stat(m.p('g/x.npy')).st_nlink, 3)
        self.assertEqual(read_file(m.p('g/x')), np.arange(30.0).tobytes())
        # Re-created O_EXCL and written: the copy replaces the data (as if O_TRUNC).
        os.unlink(m.p('g/x'))
        with open(m.p('g/x'), 'xb') as fp:
            fp.write(np.arange(6.0).tobytes())
        self.assertEqual(read_file(m.p('g/x.shape')), b'2 3\n')
        self.unmount(m)
        self.assertStored('g/x', np.arange(6.0).reshape(2, 3))

    def test_a_dataset_created_raw_shows_other_names_when_created_and_they_type_it(self):
        want = np.arange(30.0).reshape(10, 3)
        m = self.mount()
        # Every order of the three names of a mounted dataset, copied into a new group.
        for i, order in enumerate(itertools.permutations(('', '.npy', '.shape'))):
            with self.subTest(order=order):
                d = 'c%d' % i
                os.mkdir(m.p(d))
                for suffix in order:
                    self.assertEqual(sh('cp', m.p('g/x' + suffix), m.p(d, 'x' + suffix)), (0, ''))
                self.assertEqual(sh('diff', '-r', m.p('g/x'), m.p(d, 'x')), (0, ''))
                self.assertEqual(sh('diff', m.p('g/x.npy'), m.p(d, 'x.npy')), (0, ''))
                self.assertEqual(read_file(m.p(d, 'x.shape')), b'10 3\n')
        self.unmount(m)
        for i in range(6):
            self.assertStored('c%d/x' % i, want)

    def test_cp_r_and_tar_of_a_mounted_group_inside_the_mount_diff_equal(self):
        m = self.mount()
        np.save(m.p('g/s.npy'), ARRAYS['struct'])
        self.assertEqual(sh('cp', '-r', m.p('g'), m.p('g2')), (0, ''))
        self.assertEqual(sh('diff', '-r', m.p('g'), m.p('g2')), (0, ''))
        out = os.path.join(harness.workdir(), 'copy-%d' % os.getpid())
        shutil.rmtree(out, ignore_errors=True)
        self.assertEqual(sh('cp', '-r', m.p('g'), out), (0, ''))
        self.assertEqual(sh('cp', '-r', out, m.p('g3')), (0, ''))
        self.assertEqual(sh('diff', '-r', m.p('g'), m.p('g3')), (0, ''))
        tar = out + '.tar'
        self.assertEqual(sh('tar', '-C', m.path, '-cf', tar, 'g'), (0, ''))
        os.mkdir(m.p('t'))
        self.assertEqual(sh('tar', '-C', m.p('t'), '-xf', tar), (0, ''))
        self.assertEqual(sh('diff', '-r', m.p('g'), m.p('t/g')), (0, ''))
        self.unmount(m)
        for g in ('g2', 'g3', 't/g'):
            self.assertStored(g + '/x', np.arange(30.0).reshape(10, 3))
            self.assertStored(g + '/y', np.arange(5, dtype='<u2'))
            self.assertStored(g + '/s', ARRAYS['struct'])


class Rsync(CreateCase):

    def test_rsync_a_of_npy_shape_and_raw_files_renames_its_temporaries_onto_them(self):
        if shutil.which('rsync') is None:
            self.skipTest('rsync is not installed (contrib/deps installs it)')
        src = os.path.join(harness.workdir(), 'rs-%d' % os.getpid())
        os.makedirs(src, exist_ok=True)
        f2d = np.arange(20, dtype='<i4').reshape(10, 2)
        np.save(os.path.join(src, 'f2d.npy'), f2d)
        with open(os.path.join(src, 'f2d.shape'), 'w') as fp:
            fp.write('10 2\n')
        with open(os.path.join(src, 'blob'), 'wb') as fp:
            fp.write(b'abc' * 1001)
        np.save(os.path.join(src, 'x.npy'), np.ones((4, 2), '>f4'))  # onto x: replaced
        m = self.mount()
        # rsync writes ".f2d.npy.XXXXXX" (a raw name) and renames it onto f2d.npy.
        self.assertEqual(sh('rsync', '-a', src + '/', m.p('g') + '/'), (0, ''))
        for n in ('f2d.npy', 'f2d.shape', 'blob', 'x.npy'):
            self.assertEqual(sh('cmp', os.path.join(src, n), m.p('g', n)), (0, ''), n)
        self.assertFalse([n for n in os.listdir(m.p('g')) if n.startswith('.')])
        self.unmount(m)
        self.assertStored('g/f2d', f2d)
        self.assertStored('g/x', np.ones((4, 2), '>f4'))
        self.assertStored('g/blob', np.frombuffer(b'abc' * 1001, 'u1'))


class Layouts(CreateCase):

    def test_compress_and_chunk_size_apply_to_new_datasets(self):
        arr = np.arange(40000, dtype='<f8').reshape(10000, 4)
        for opts, want in [(('-o', 'compress=blosc'), 'blosc'), (('-o', 'compress=gzip:6'), 'gzip'),
                           (('-o', 'chunk_size=16k'), None)]:
            with self.subTest(opts=opts):
                self.h5 = make_file(self.h5)
                m = self.mount(*opts)
                np.save(m.p('g/a.npy'), arr)
                self.assertEqual(np.load(m.p('g/a.npy')).tobytes(), arr.tobytes())
                self.unmount(m)
                with h5py.File(self.h5, 'r') as f:
                    d = f['g/a']
                    self.assertEqual(d.maxshape, (None, 4))
                    self.assertEqual(d.fillvalue, 0)
                    if want == 'gzip':
                        self.assertEqual((d.compression, d.compression_opts, d.shuffle), ('gzip', 6, True))
                        self.assertEqual(d[()].tobytes(), arr.tobytes())
                    elif want == 'blosc':
                        self.assertIn('32001', d._filters)
                    else:
                        self.assertIsNone(d.compression)
                        self.assertEqual(d.chunks, (512, 4))  # 16 KiB of whole rows
                        self.assertEqual(d[()].tobytes(), arr.tobytes())
                with tables.open_file(self.h5, 'r') as f:
                    node = f.get_node('/g/a')
                    if want == 'blosc':
                        self.assertEqual(node.filters.complib, 'blosc')
                    self.assertEqual(node.read().tobytes(), arr.tobytes())


class Crashes(CreateCase):

    def test_kill_9_after_a_create_and_fsync_keeps_the_dataset(self):
        m = self.mount()
        arr = np.arange(300, dtype='<i4').reshape(100, 3)
        with open(m.p('g/k.npy'), 'wb') as fp:
            np.save(fp, arr)
            fp.flush()
            os.fsync(fp.fileno())
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(timeout=harness.MOUNT_TIMEOUT)
        m.cleanup()
        # A second mount replays anything the journal holds; then the file is plain HDF5.
        m = self.mount()
        self.assertEqual(np.load(m.p('g/k.npy')).tobytes(), arr.tobytes())
        self.unmount(m)
        self.assertStored('g/k', arr)


class Concurrency(CreateCase):

    def test_a_reader_of_a_dataset_being_replaced_never_breaks_the_daemon(self):
        m = self.mount()
        np.save(m.p('r.npy'), np.zeros((64, 8), '<f8'))
        stop = threading.Event()
        seen = []

        def reader():
            while not stop.is_set():
                for name in ('r.npy', 'r'):
                    try:
                        with open(m.p(name), 'rb') as fp:
                            seen.append(len(fp.read()))
                    except OSError as e:
                        seen.append(e.errno)
        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for i in range(40):
                np.save(m.p('r.npy'), np.full((64, 8), i, dtype='<f8' if i % 2 else '<i4'))
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertTrue(m.alive(), m.stderr_text())
        self.assertEqual(np.load(m.p('r.npy')).tobytes(), np.full((64, 8), 39, '<f8').tobytes())
        self.assertGreater(len(seen), 0)
        size = os.stat(self.h5).st_size
        self.unmount(m)
        # The replaced datasets' space is freed within the session: 40 copies of 4 KiB do not
        # pile up (each would add a chunk of 64 KiB or more).
        self.assertLess(size, 1 << 20)
        self.assertStored('r', np.full((64, 8), 39, '<f8'))


if __name__ == '__main__':
    harness.run_tests(tools=('cp', 'cmp', 'diff', 'tar', 'touch'))
