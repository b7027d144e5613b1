"""Datasets compressed with h5py's LZF and PyTables' LZO and bzip2, read and appended through mounts.

The daemon has these filters built in (src/filters.c). The expectations come from this process,
where h5py decodes LZF with its own bundled filter and LZO/bzip2 with the ones PyTables registers
in the shared libhdf5 (`import tables`), i.e. with the libraries that wrote the files, never with
h5mount's code; they are also compared with the arrays the fixtures were written from. Covered:
every view of 1-D and 2-D LZF datasets of several dtypes (with and without shuffle and Fletcher32,
with chunks stored raw because they did not compress), PyTables LZO/bzip2 EArrays, CArrays and
Tables; appends through the mount read back by h5py and PyTables, with the new chunks encoded
(filter mask 0); a corrupt LZF chunk fails with EIO while the rest of the file reads, and a bzip2
chunk that would decode to 64 MiB fails without the daemon allocating that. Usage:

    /usr/bin/python3 tests/mount/test_filters.py build/h5mount [TestClass[.test_name] ...]
"""

import bz2
import errno
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402
import tables               # noqa: E402

import harness              # noqa: E402
from harness import read_file   # noqa: E402

FIX = {}        # fixture name -> path
SOURCE = {}     # (fixture, HDF5 path) -> the numpy array the dataset was written from

LZF, LZO, BZIP2 = 32000, 305, 307


# ------------------------------------------------------------------ fixtures

def ramp_rows(n, cols, dtype, start=0):
    """Compressible rows: a ramp plus a slow wave, as dtype (n, cols), or (n,) when cols is 0."""
    i = np.arange(start, start + n, dtype=np.float64)
    if cols:
        i = i[:, None] * cols + np.arange(cols)[None, :]
    return (np.round(np.sin(i / 50.0) * 1000) + i).astype(dtype)


def noise(n, dtype, seed):
    """Incompressible values (random bits) of an integer dtype."""
    return np.frombuffer(np.random.default_rng(seed).bytes(n * np.dtype(dtype).itemsize),
                         dtype=dtype).copy()


PAIR = np.dtype([('a', '<i4'), ('b', '<f8')])


class Reading(tables.IsDescription):
    """A small PyTables table row."""
    name = tables.StringCol(8, pos=0)
    count = tables.Int32Col(pos=1)
    value = tables.Float64Col(pos=2)
    vec = tables.Float32Col(shape=(2,), pos=3)


def table_rows(n, start=0):
    rows = np.zeros(n, dtype=tables.description.dtype_from_descr(Reading))
    k = np.arange(start, start + n)
    rows['name'] = [b'r%05d' % i for i in k]
    rows['count'] = k * 3
    rows['value'] = np.cos(k / 7.0)
    rows['vec'] = np.stack([k * 0.5, -k * 0.25], axis=1)
    return rows


def make_h5py_lzf(path):
    """h5py's LZF: 1-D and 2-D, little- and big-endian, compound, with shuffle and Fletcher32
    (h5py puts it after LZF), and random uint16 whose chunks LZF cannot shrink (stored raw)."""
    data = {
        '/f8_1d': (ramp_rows(10000, 0, '<f8'), dict(chunks=(1000,))),
        '/i4_2d_shuffle': (ramp_rows(2000, 5, '<i4'), dict(chunks=(256, 5), shuffle=True)),
        '/f4_be_2d': (ramp_rows(3000, 2, '>f4'), dict(chunks=(500, 2))),
        '/u2_noise': (noise(5000, '<u2', 1), dict(chunks=(1024,))),
        '/pair': (np.array(list(zip(range(1500), np.linspace(0, 1, 1500))), dtype=PAIR),
                  dict(chunks=(300,))),
        '/g/i8_fletcher': (ramp_rows(4000, 0, '<i8'), dict(chunks=(700,), shuffle=True,
                                                             fletcher32=True)),
    }
    with h5py.File(path, 'w') as f:
        for name, (arr, kw) in data.items():
            f.create_dataset(name, data=arr, compression='lzf',
                             maxshape=(None,) + arr.shape[1:], **kw)
            SOURCE[('lzf', name)] = arr
    return path


def make_pytables(path):
    """PyTables' LZO and bzip2: EArrays (with shuffle; LZO also with Fletcher32, which PyTables
    puts before the compressor), a CArray of noise, and Tables."""
    with tables.open_file(path, 'w') as f:
        specs = [
            ('/lzo_f8', 'lzo', tables.Float64Atom(), ramp_rows(3000, 3, '<f8'), {}),
            ('/bzip2_i2', 'bzip2', tables.Int16Atom(), ramp_rows(3000, 4, '<i2'), {}),
            ('/lzo_fletcher', 'lzo', tables.Int32Atom(), ramp_rows(2500, 2, '<i4'),
             dict(fletcher32=True)),
        ]
        for name, lib, atom, arr, kw in specs:
            filters = tables.Filters(complevel=5, complib=lib, shuffle=True, **kw)
            ea = f.create_earray('/', name[1:], atom, (0,) + arr.shape[1:], filters=filters,
                                 chunkshape=(512,) + arr.shape[1:])
            ea.append(arr)
            SOURCE[('pt', name)] = arr
        arr = noise(20000, '<u1', 2)
        f.create_carray('/', 'bzip2_noise', obj=arr, chunkshape=(4096,),
                        filters=tables.Filters(complevel=9, complib='bzip2'))
        SOURCE[('pt', '/bzip2_noise')] = arr
        for lib in ('lzo', 'bzip2'):
            t = f.create_table('/', 'table_' + lib, Reading, filters=tables.Filters(5, lib),
                               chunkshape=(128,))
            rows = table_rows(1000)
            t.append(rows)
            SOURCE[('pt', '/table_' + lib)] = rows
    return path


def setUpModule():
    missing = [lib for lib in ('lzo', 'bzip2') if not tables.which_lib_version(lib)]
    if missing:
        raise unittest.SkipTest('PyTables here lacks %s' % ', '.join(missing))
    d = harness.workdir()
    FIX['lzf'] = make_h5py_lzf(os.path.join(d, 'lzf.h5'))
    FIX['pt'] = make_pytables(os.path.join(d, 'pytables.h5'))


def filter_ids(h5path, name):
    with h5py.File(h5path, 'r') as f:
        plist = f[name].id.get_create_plist()
        return [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]


def copy_with_chunk_replaced(src, name, dataset, index, payload):
    """A fresh copy `name` of src whose chunk number `index` of `dataset` holds payload(info)
    (info: h5py's chunk info of the chunk it replaces), stored with filter mask 0 as if
    the filters had written it; returns its path."""
    path = harness.fresh_copy(src, name)
    with h5py.File(path, 'r+') as f:
        ds = f[dataset]
        info = ds.id.get_chunk_info(index)
        ds.id.write_direct_chunk(info.chunk_offset, payload(info), 0)
    return path


def chunk_infos(h5path, name):
    with h5py.File(h5path, 'r') as f:
        dsid = f[name].id
        return [dsid.get_chunk_info(i) for i in range(dsid.get_num_chunks())]


# ------------------------------------------------------------------ reads

class ReadCase(unittest.TestCase):
    fixture = None
    pytables = False

    @classmethod
    def setUpClass(cls):
        cls.h5 = FIX[cls.fixture]
        cls.exp = harness.compute_expectations(cls.h5, pytables=cls.pytables)
        cls.mnt = harness.mount_for_class(cls, cls.h5)

    def check_all_views_match_the_writer(self):
        failures = harness.check_all(self.mnt, self.exp)
        self.assertEqual(failures, [], '\n'.join(failures) + '\ndaemon stderr:\n' +
                         self.mnt.stderr_text()[-2000:])

    def check_sources(self, fixture):
        for (fx, name), arr in SOURCE.items():
            if fx != fixture:
                continue
            got = read_file(self.mnt.p(name))
            harness.assert_bytes_equal(got, np.ascontiguousarray(arr).tobytes(), name)


class H5pyLzfRead(ReadCase):
    fixture = 'lzf'

    def test_fixture_uses_lzf_and_has_chunks_stored_raw(self):
        for name in ('/f8_1d', '/i4_2d_shuffle', '/g/i8_fletcher'):
            self.assertIn(LZF, filter_ids(self.h5, name), name)
        masks = [c.filter_mask for c in chunk_infos(self.h5, '/u2_noise')]
        self.assertIn(1, masks, 'no chunk of /u2_noise was stored raw')

    def test_every_view_matches_h5py(self):
        self.check_all_views_match_the_writer()

    def test_raw_views_hold_the_written_arrays(self):
        self.check_sources('lzf')

    def test_npy_view_loads_as_the_written_array(self):
        got = np.load(self.mnt.p('i4_2d_shuffle.npy'))
        np.testing.assert_array_equal(got, SOURCE[('lzf', '/i4_2d_shuffle')])
        self.assertEqual(got.dtype, np.dtype('<i4'))
        got = np.load(self.mnt.p('f4_be_2d.npy'))
        self.assertEqual(got.dtype, np.dtype('>f4'))
        np.testing.assert_array_equal(got, SOURCE[('lzf', '/f4_be_2d')])

    def test_reads_at_unaligned_offsets_span_chunks(self):
        want = SOURCE[('lzf', '/f8_1d')].tobytes()
        with open(self.mnt.p('f8_1d'), 'rb') as fp:
            for off, n in ((7995, 20), (1, 8000 * 3 + 5), (len(want) - 3, 10)):
                self.assertEqual(os.pread(fp.fileno(), n, off), want[off:off + n], (off, n))


class PyTablesLzoBzip2Read(ReadCase):
    fixture = 'pt'
    pytables = True

    def test_fixture_uses_lzo_and_bzip2(self):
        self.assertEqual(filter_ids(self.h5, '/lzo_f8'), [2, LZO])
        self.assertEqual(filter_ids(self.h5, '/bzip2_i2'), [2, BZIP2])
        self.assertEqual(filter_ids(self.h5, '/lzo_fletcher'), [3, 2, LZO])
        self.assertEqual(filter_ids(self.h5, '/table_bzip2'), [2, BZIP2])

    def test_every_view_matches_pytables(self):
        self.check_all_views_match_the_writer()

    def test_raw_views_hold_the_written_arrays(self):
        self.check_sources('pt')


# ------------------------------------------------------------------ appends

class AppendCase(unittest.TestCase):
    """Each test appends to its own copy of a fixture, unmounts, and reads the file natively."""

    def setUp(self):
        self.h5 = harness.fresh_copy(FIX[self.fixture], self._testMethodName + '.h5')

    def append_through_mount(self, items):
        """items: [(HDF5 path, new rows)]; appends each to the raw view, checks the views on the
        mount and unmounts. Returns {path: all rows expected}."""
        want = {}
        m = harness.Mount(self.h5)
        self.addCleanup(m.cleanup)
        m.start()
        for name, new in items:
            base = SOURCE[(self.fixture, name)]
            with open(m.p(name), 'ab') as fp:
                fp.write(np.ascontiguousarray(new).tobytes())
            want[name] = np.concatenate([base, new]).astype(base.dtype, copy=False)
            try:
                harness.check_dataset(m, harness.expected_from_array(name, want[name]))
            except AssertionError as e:
                self.fail('%s after the append: %s\n%s' % (name, e, m.stderr_text()[-2000:]))
        problem = m.cleanup()
        self.assertIsNone(problem, m.stderr_text()[-2000:])
        return want

    def assertChunksEncoded(self, name, nrows):
        """Every chunk of `name` is stored with its filters applied (mask 0) and smaller than
        the chunk, and they cover nrows rows."""
        with h5py.File(self.h5, 'r') as f:
            ds = f[name]
            chunk_bytes = int(np.prod(ds.chunks)) * ds.dtype.itemsize
            chunk_rows = ds.chunks[0]
        infos = chunk_infos(self.h5, name)
        self.assertEqual(len(infos), -(-nrows // chunk_rows), name)
        for info in infos:
            self.assertEqual(info.filter_mask, 0, '%s chunk at %r' % (name, info.chunk_offset))
            self.assertLess(info.size, chunk_bytes, '%s chunk at %r' % (name, info.chunk_offset))


class H5pyLzfAppend(AppendCase):
    fixture = 'lzf'

    def test_appends_read_back_in_h5py_as_lzf_chunks(self):
        items = [('/f8_1d', ramp_rows(2500, 0, '<f8', start=10000)),
                 ('/i4_2d_shuffle', ramp_rows(700, 5, '<i4', start=2000)),
                 ('/f4_be_2d', ramp_rows(333, 2, '>f4', start=3000)),
                 ('/pair', np.array([(i, i / 3.0) for i in range(1500, 1900)], dtype=PAIR)),
                 ('/g/i8_fletcher', ramp_rows(1000, 0, '<i8', start=4000))]
        want = self.append_through_mount(items)
        with h5py.File(self.h5, 'r') as f:
            for name, arr in want.items():
                ds = f[name]
                self.assertEqual(ds.compression, 'lzf', name)
                self.assertEqual(ds.shape, arr.shape, name)
                got = ds[...]
                self.assertEqual(got.tobytes(), arr.tobytes(), '%s read by h5py' % name)
        for name, arr in want.items():
            self.assertChunksEncoded(name, len(arr))

    def test_appended_noise_is_stored_raw_and_reads_back(self):
        new = noise(3000, '<u2', 9)
        want = self.append_through_mount([('/u2_noise', new)])['/u2_noise']
        with h5py.File(self.h5, 'r') as f:
            self.assertEqual(f['/u2_noise'][...].tobytes(), want.tobytes())
        # rows 5120..6143 are all appended noise: the mount's LZF declined that chunk, as h5py's
        masks = {c.chunk_offset: c.filter_mask for c in chunk_infos(self.h5, '/u2_noise')}
        self.assertEqual(masks[(5120,)], 1, 'an incompressible appended chunk was not stored raw')


class PyTablesAppend(AppendCase):
    fixture = 'pt'

    def test_appends_read_back_in_pytables_and_grow_natively(self):
        items = [('/lzo_f8', ramp_rows(1200, 3, '<f8', start=3000)),
                 ('/bzip2_i2', ramp_rows(900, 4, '<i2', start=3000)),
                 ('/lzo_fletcher', ramp_rows(600, 2, '<i4', start=2500)),
                 ('/table_lzo', table_rows(300, start=1000)),
                 ('/table_bzip2', table_rows(300, start=1000))]
        want = self.append_through_mount(items)
        with tables.open_file(self.h5, 'r') as pt:
            for name, arr in want.items():
                node = pt.get_node(name)
                self.assertEqual(node.nrows, len(arr), name)
                self.assertEqual(node.filters.complib, 'lzo' if 'lzo' in name else 'bzip2', name)
                got = node.read()
                self.assertEqual(got.tobytes(), arr.tobytes(), '%s read by PyTables' % name)
        for name, arr in want.items():
            self.assertChunksEncoded(name, len(arr))
        # PyTables appends after the rows the mount wrote, and reads all of them back
        with tables.open_file(self.h5, 'a') as pt:
            pt.get_node('/lzo_f8').append(ramp_rows(100, 3, '<f8', start=4200))
            pt.get_node('/table_bzip2').append(table_rows(50, start=1300))
        with tables.open_file(self.h5, 'r') as pt:
            np.testing.assert_array_equal(pt.get_node('/lzo_f8').read(),
                                          ramp_rows(4300, 3, '<f8'))
            self.assertEqual(pt.get_node('/table_bzip2').read().tobytes(),
                             table_rows(1350).tobytes())


# ------------------------------------------------------------------ corruption

class CorruptLzfChunk(unittest.TestCase):
    """Chunk 2 of /f8_1d overwritten with 0xff bytes: an LZF back reference before the start."""

    @classmethod
    def setUpClass(cls):
        cls.h5 = copy_with_chunk_replaced(FIX['lzf'], 'corrupt_lzf.h5', '/f8_1d', 2,
                                          lambda info: b'\xff' * info.size)
        cls.mnt = harness.mount_for_class(cls, cls.h5)

    def pread(self, off, n):
        with open(self.mnt.p('f8_1d'), 'rb') as fp:
            return os.pread(fp.fileno(), n, off)

    def test_reading_the_corrupt_chunk_fails_with_eio_and_the_rest_reads(self):
        want = SOURCE[('lzf', '/f8_1d')].tobytes()
        self.assertEqual(harness.errno_of(self.pread, 2 * 8000 + 100, 64), errno.EIO)
        self.assertEqual(self.pread(0, 8000), want[:8000])
        self.assertEqual(self.pread(5 * 8000, 8000), want[5 * 8000:6 * 8000])
        harness.assert_bytes_equal(read_file(self.mnt.p('i4_2d_shuffle')),
                                   SOURCE[('lzf', '/i4_2d_shuffle')].tobytes(), 'i4_2d_shuffle')
        self.assertTrue(self.mnt.alive())
        size = chunk_infos(self.h5, '/f8_1d')[2].size
        self.assertIn('/f8_1d: read failed (EIO): LZF chunk of %d bytes is corrupt' % size,
                      self.mnt.stderr_text())


class Bzip2BombChunk(unittest.TestCase):
    """Chunk 1 of /bzip2_i2 (4 KiB of data) replaced by a valid bzip2 stream of 64 MiB of zeros."""

    BOMB = 64 * harness.MiB

    @classmethod
    def setUpClass(cls):
        bomb = bz2.compress(bytes(cls.BOMB), 9)
        cls.h5 = copy_with_chunk_replaced(FIX['pt'], 'bomb.h5', '/bzip2_i2', 1, lambda info: bomb)
        cls.mnt = harness.mount_for_class(cls, cls.h5)

    def test_reading_it_fails_with_eio_without_decoding_it(self):
        row = 4 * 2
        want = SOURCE[('pt', '/bzip2_i2')].tobytes()
        with open(self.mnt.p('bzip2_i2'), 'rb') as fp:
            self.assertEqual(fp.read(512 * row), want[:512 * row])
            before = harness.vm_hwm(self.mnt.proc.pid)
            self.assertEqual(harness.errno_of(os.pread, fp.fileno(), row, 600 * row), errno.EIO)
            self.assertEqual(os.pread(fp.fileno(), 512 * row, 1024 * row),
                             want[1024 * row:1536 * row])
        grown = harness.vm_hwm(self.mnt.proc.pid) - before
        # a few kB in a plain build, about 17 MiB under ASan (its allocator and shadow memory)
        self.assertLess(grown, self.BOMB // 2, 'the daemon grew by %d bytes' % grown)
        self.assertIn('/bzip2_i2: read failed (EIO): bzip2 chunk of', self.mnt.stderr_text())
        self.assertIn('decodes to more than', self.mnt.stderr_text())


if __name__ == '__main__':
    harness.run_tests()
