"""Reads files that other tools write the way those tools' readers do (h5py, h5dump).

Fixtures come from the real tools: h5py (user blocks, low-level odd integer types, fill
time "never"), h5jam (a user block added to a finished file), ncgen (netCDF-4 `_NoFill`
variables), h5repack (copies of those, N-bit filtered copies). Covers: data behind a user
block on every read path; storage never written reads as the fill value (zeros when there
is none) and never as bytes of another dataset; integers with a precision or bit offset
and integers of 3, 5, 6 or 7 bytes are served as values in the smallest numpy integer that
holds them, with a .npy header np.load accepts. Usage:

    /usr/bin/python3 tests/mount/test_conformance.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402
from h5py import h5d, h5p, h5s, h5t   # noqa: E402

import harness              # noqa: E402
from harness import read_file   # noqa: E402

FIX = {}
TOOLS = ('h5jam', 'h5repack', 'ncgen')


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


NOFILL_CDL = """netcdf nofill {
dimensions:
  n = 2000 ;
  r = 40 ;
  c = 25 ;
variables:
  int never(n) ;
    never:_NoFill = "true" ;
    never:_Storage = "contiguous" ;
  double never2d(r, c) ;
    never2d:_NoFill = "true" ;
    never2d:_Storage = "contiguous" ;
  double other(n) ;
    other:_Storage = "contiguous" ;
data:
  other = 1.5, 2.5, 3.5 ;
}
"""


def make_nofill(d):
    """netCDF-4 NoFill variables never written (ncgen), an h5repack copy of them, and h5py
    datasets with fill time "never": contiguous with a fill value, gzip chunks mostly never
    written. (HDF5 refuses fill time "never" for variable-length types.)"""
    cdl = os.path.join(d, 'nofill.cdl')
    with open(cdl, 'w') as fp:
        fp.write(NOFILL_CDL)
    nc = os.path.join(d, 'nofill.nc')
    run('ncgen', '-k', 'nc4', '-o', nc, cdl)
    repacked = os.path.join(d, 'nofill_repack.h5')
    run('h5repack', nc, repacked)
    hp = os.path.join(d, 'never_h5py.h5')
    with h5py.File(hp, 'w') as f:
        f.create_dataset('other', data=np.arange(4096, dtype='<u8') * 0x0101010101010101)
        for name, tid, shape, chunk, fill in (
                ('never_fill', h5t.STD_I32LE, (1000,), None, np.int32(7)),
                ('never_gzip', h5t.IEEE_F64LE, (1000,), (100,), None)):
            dcpl = h5p.create(h5p.DATASET_CREATE)
            dcpl.set_fill_time(h5d.FILL_TIME_NEVER)
            if fill is not None:
                dcpl.set_fill_value(np.array(fill))
            if chunk:
                dcpl.set_chunk(chunk)
                dcpl.set_deflate(4)
            h5d.create(f.id, name.encode(), tid, h5s.create_simple(shape), dcpl=dcpl)
        f['never_gzip'][200:300] = np.arange(100) + 0.5
    return nc, repacked, hp


def lowlevel(f, name, tid, values, mtype_dtype, dcpl=None):
    """Creates dataset `name` of type tid and writes `values` converted from mtype_dtype."""
    arr = np.asarray(values, dtype=mtype_dtype)
    ds = h5d.create(f.id, name.encode(), tid, h5s.create_simple(arr.shape), dcpl=dcpl)
    ds.write(h5s.ALL, h5s.ALL, arr, mtype=h5t.py_create(arr.dtype))


def int_type(base, size=None, precision=None, offset=None, order=None):
    t = base.copy()
    if size is not None:
        t.set_size(size)
    if precision is not None:
        t.set_precision(precision)
    if offset is not None:
        t.set_offset(offset)
    if order is not None:
        t.set_order(order)
    return t


def make_odd_ints(d):
    """Integers with a precision or bit offset (h5py low level), an N-bit filtered copy
    (h5repack -f NBIT), integers of 3, 5, 6 and 7 bytes, and such integers inside a
    compound and an array type."""
    p = os.path.join(d, 'odd_ints.h5')
    with h5py.File(p, 'w') as f:
        lowlevel(f, 'u12_off2', int_type(h5t.STD_U16LE, precision=12, offset=2),
                 [0, 1, 2, 4095, 1000], '<u2')
        lowlevel(f, 'i12', int_type(h5t.STD_I16LE, precision=12),
                 [-150, 5, -2048, 2047, 0], '<i2')
        lowlevel(f, 'u20_off5_be', int_type(h5t.STD_U32BE, precision=20, offset=5),
                 [0, 1, (1 << 20) - 1, 12345], '<u4')
        lowlevel(f, 'u12_in_u32', int_type(h5t.STD_U32LE, precision=12, offset=0),
                 [[0, 4095], [17, 18]], '<u4')
        # Widths numpy has no integer for.
        lowlevel(f, 'i3', int_type(h5t.STD_I32LE, size=3), [-5, 70000, -(1 << 23), (1 << 23) - 1],
                 '<i4')
        lowlevel(f, 'u3_be', int_type(h5t.STD_U32BE, size=3), [1, (1 << 24) - 1, 256], '<u4')
        lowlevel(f, 'i5', int_type(h5t.STD_I64LE, size=5), [-(1 << 39), 3, (1 << 39) - 1], '<i8')
        lowlevel(f, 'u6_be', int_type(h5t.STD_U64BE, size=6), [(1 << 48) - 1, 9], '<u8')
        lowlevel(f, 'i7', int_type(h5t.STD_I64LE, size=7), [[-1, 2], [-(1 << 55), 4]], '<i8')
        # Inside other types: a compound with a gap, an array type, an enum.
        ct = h5t.create(h5t.COMPOUND, 16)
        ct.insert(b'a', 0, int_type(h5t.STD_U16LE, precision=12, offset=2))
        ct.insert(b'c', 2, int_type(h5t.STD_I32LE, size=3))
        ct.insert(b'b', 8, h5t.IEEE_F64LE)
        rec = np.array([(4095, -70000, 0.5), (3, 8388607, -1.25)],
                       dtype=np.dtype({'names': ['a', 'c', 'b'],
                                       'formats': ['<u2', '<i4', '<f8'],
                                       'offsets': [0, 2, 8], 'itemsize': 16}))
        ds = h5d.create(f.id, b'compound', ct, h5s.create_simple((2,)))
        ds.write(h5s.ALL, h5s.ALL, rec, mtype=h5t.py_create(rec.dtype))
        at = h5t.array_create(int_type(h5t.STD_I32LE, size=3), (3,))
        arr = np.array([[1, -2, 3], [-4, 5, -(1 << 23)]], dtype='<i4')
        ds = h5d.create(f.id, b'array_i3', at, h5s.create_simple((2,)))
        ds.write(h5s.ALL, h5s.ALL, arr, mtype=h5t.array_create(h5t.STD_I32LE, (3,)))
        et = h5t.enum_create(int_type(h5t.STD_U16LE, precision=10))
        mt = h5t.enum_create(h5t.STD_U16LE)
        for name, v in ((b'LOW', 1), (b'HIGH', 1000)):
            et.enum_insert(name, v)
            mt.enum_insert(name, v)
        ds = h5d.create(f.id, b'enum10', et, h5s.create_simple((3,)))
        ds.write(h5s.ALL, h5s.ALL, np.array([1, 1000, 1], dtype='<u2'), mtype=mt)
    nbit = os.path.join(d, 'nbit.h5')
    run('h5repack', '-f', 'u12_off2,i12,u20_off5_be,u12_in_u32:NBIT', '-l',
        'u12_off2,i12,u20_off5_be:CHUNK=2', '-l', 'u12_in_u32:CHUNK=1x2', p, nbit)
    return p, nbit


def setUpModule():
    d = harness.workdir()
    FIX['userblock'], FIX['jammed'] = make_userblock(d)
    FIX['nofill'], FIX['nofill_repack'], FIX['never_h5py'] = make_nofill(d)
    FIX['odd'], FIX['nbit'] = make_odd_ints(d)


# ------------------------------------------------------------------ expectations

def values(h5path, name, dtype):
    """Dataset `name` read by h5py as `dtype` (HDF5 converts, as h5py does for ds[()])."""
    with h5py.File(h5path, 'r') as f:
        ds = f[name]
        out = np.zeros(ds.shape, dtype=dtype)
        ds.id.read(h5s.ALL, h5s.ALL, out, mtype=h5t.py_create(dtype))
        return out


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


# ------------------------------------------------------------------ 2. never written

class NeverWritten(Case):
    """Each check reads another dataset's views first, then the never-written one, and
    the other way round on a fresh mount: the bytes must not depend on what was read
    before (they used to be a reused buffer's: another view's .npy header or data)."""

    def check(self, key, other, never, opts):
        """Mounts `key` twice: reads `other` then the datasets of `never` (name -> wanted
        array), and the other way round."""
        h5 = FIX[key]
        want_other = h5py_read(h5, other)
        what = '%s %s' % (key, ' '.join(opts) or 'rw')
        with harness.Mount(h5, opts) as m:
            self.assert_views(m, other, want_other, what)
            for n, want in never.items():
                self.assert_views(m, n, want, '%s, after %s' % (what, other))
        with harness.Mount(h5, opts) as m:
            for n, want in never.items():
                self.assert_views(m, n, want, '%s, read first' % what)
            self.assert_views(m, other, want_other, what)
            for n, want in never.items():
                self.assert_views(m, n, want, '%s, read again after %s' % (what, other))

    def netcdf_never(self):
        return {'never': np.zeros(2000, '<i4'), 'never2d': np.zeros((40, 25), '<f8')}

    def test_netcdf_nofill_variables_read_as_zeros_read_only(self):
        self.check('nofill', 'other', self.netcdf_never(), ('-o', 'ro'))

    def test_netcdf_nofill_variables_read_as_zeros_read_write(self):
        self.check('nofill', 'other', self.netcdf_never(), ())

    def test_h5repack_copy_of_nofill_variables_reads_as_zeros(self):
        self.check('nofill_repack', 'other', self.netcdf_never(), ('-o', 'ro'))
        self.check('nofill_repack', 'other', self.netcdf_never(), ())

    def h5py_never(self):
        gz = np.zeros(1000, '<f8')
        gz[200:300] = np.arange(100) + 0.5
        return {'never_fill': np.full(1000, 7, '<i4'), 'never_gzip': gz}

    def test_fill_time_never_reads_the_fill_value_or_zeros(self):
        self.check('never_h5py', 'other', self.h5py_never(), ('-o', 'ro'))
        self.check('never_h5py', 'other', self.h5py_never(), ())


# ------------------------------------------------------------------ 3, 4. odd integers

# name -> served numpy dtype (the smallest numpy integer holding every value)
ODD = {
    'u12_off2': '<u2', 'i12': '<i2', 'u20_off5_be': '>u4', 'u12_in_u32': '<u2',
    'i3': '<i4', 'u3_be': '>u4', 'i5': '<i8', 'u6_be': '>u8', 'i7': '<i8',
}
NBIT = ('u12_off2', 'i12', 'u20_off5_be', 'u12_in_u32')


class OddIntegers(Case):
    def check_odd(self, key, names, opts=('-o', 'ro')):
        h5 = FIX[key]
        want = {n: values(h5, n, np.dtype(ODD[n])) for n in names}
        with harness.Mount(h5, opts) as m:
            for n in names:
                self.assert_views(m, n, want[n], key)
        return want

    def test_precision_and_offset_integers_serve_the_values_h5dump_shows(self):
        want = self.check_odd('odd', ('u12_off2', 'i12', 'u20_off5_be', 'u12_in_u32'))
        self.assertEqual(want['u12_off2'].tolist(), [0, 1, 2, 4095, 1000])
        self.assertEqual(want['i12'].tolist(), [-150, 5, -2048, 2047, 0])
        # h5py's own read gives the same values (in its container-width dtype).
        for n in ('u12_off2', 'i12', 'u20_off5_be', 'u12_in_u32'):
            self.assertTrue(np.array_equal(h5py_read(FIX['odd'], n), want[n]), n)

    def test_nbit_filtered_copies_from_h5repack_serve_the_same_values(self):
        with h5py.File(FIX['nbit'], 'r') as f:
            for n in NBIT:
                self.assertIn('5', f[n]._filters, '%s is N-bit filtered' % n)
        want = self.check_odd('nbit', NBIT)
        self.assertEqual(want['i12'].tolist(), [-150, 5, -2048, 2047, 0])
        self.check_odd('nbit', NBIT, opts=())

    def test_three_five_six_seven_byte_integers_widen_to_a_numpy_integer(self):
        want = self.check_odd('odd', ('i3', 'u3_be', 'i5', 'u6_be', 'i7'))
        self.assertEqual(want['i3'].tolist(), [-5, 70000, -(1 << 23), (1 << 23) - 1])
        self.assertEqual(want['u6_be'].tolist(), [(1 << 48) - 1, 9])
        self.check_odd('odd', ('i3', 'u3_be', 'i5', 'u6_be', 'i7'), opts=())

    def test_odd_integers_inside_compound_array_and_enum_types(self):
        h5 = FIX['odd']
        cdt = np.dtype({'names': ['a', 'c', 'b'], 'formats': ['<u2', '<i4', '<f8'],
                        'offsets': [0, 2, 9], 'itemsize': 17})
        comp = values(h5, 'compound', cdt)
        self.assertEqual(comp['c'].tolist(), [-70000, 8388607])
        arr = values(h5, 'array_i3', np.dtype(('<i4', (3,))))
        with harness.Mount(h5, ('-o', 'ro')) as m:
            got = load(m.p('compound.npy'))
            self.assertEqual(got.dtype.itemsize, 17)
            self.assertEqual(got.dtype.fields['b'][1], 9, 'the gap before b is kept')
            for field in ('a', 'c', 'b'):
                self.assertTrue(np.array_equal(got[field], comp[field]), field)
            self.assertEqual(read_file(m.p('compound')), comp.tobytes())
            got = load(m.p('array_i3.npy'))
            self.assertEqual(got.dtype, np.dtype('<i4'))
            self.assertEqual(got.tolist(), [[1, -2, 3], [-4, 5, -(1 << 23)]])
            self.assertEqual(read_file(m.p('array_i3')), np.ascontiguousarray(arr).tobytes())
            got = load(m.p('enum10.npy'))
            self.assertEqual(got.dtype, np.dtype('<u2'))
            self.assertEqual(got.tolist(), [1, 1000, 1])

    def test_odd_integer_views_are_read_only_in_a_writable_mount(self):
        h5 = harness.fresh_copy(FIX['odd'], 'odd_rw.h5')
        with harness.Mount(h5) as m:
            for n in ('i3', 'u12_off2', 'i3.npy'):
                self.assertEqual(harness.errno_of(open, m.p(n), 'r+b'), errno.EACCES, n)
                self.assertEqual(os.stat(m.p(n)).st_mode & 0o222, 0, n)
            self.assertEqual(harness.errno_of(os.truncate, m.p('i3'), 0), errno.EACCES)
        self.assertEqual(values(h5, 'i3', np.dtype('<i4')).tolist(),
                         [-5, 70000, -(1 << 23), (1 << 23) - 1])


if __name__ == '__main__':
    harness.run_tests(tools=TOOLS)
