"""The text the mount shows: attribute values as xattrs and the `.shape` of array types.

Fixtures come from h5py (float16, long double, array-typed, string-array, compound, enum,
bool, opaque, reference and empty attributes; array-typed datasets), ncgen (netCDF-4
float and string-array attributes) and h5repack (a copy of the array-typed datasets).
Covers: every attribute prints by the README's one rule (fewest digits that read back in
the attribute's own precision; spaces within the last dimension, newlines between rows,
no trailing newline; an array type adds its dims; strings of arrays quoted); `.shape` of
a dataset of a top-level array type lists the array dims as `x.npy` does, and a `.shape`
write must keep them. Usage:

    /usr/bin/python3 tests/mount/test_text.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import os
import shutil
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402
from h5py import h5t        # noqa: E402

import harness              # noqa: E402
from harness import read_file   # noqa: E402

FIX = {}

CDL = r'''netcdf attrs {
dimensions:
    x = 3 ;
variables:
    float v(x) ;
        v:valid_range = 0.1f, 65504.f ;
        v:scale = 1.1f ;
        string v:names = "a b", "", "c" ;
        v:units = "m s-1" ;
        v:weights = 0.5, 0.25 ;
data:
    v = 1, 2, 3 ;
}
'''


def array_attr(obj, name, base, dims, value):
    """A scalar attribute of an H5T_ARRAY type, written with h5py's low-level API."""
    tid = h5t.array_create(base, dims)
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    aid = h5py.h5a.create(obj.id, name.encode(), tid, space)
    aid.write(np.ascontiguousarray(value), mtype=tid)


def make_attrs(path):
    with h5py.File(path, 'w') as f:
        tgt = f.create_group('target')
        d = f.create_dataset('d', data=np.arange(3, dtype='<i4'))
        a = d.attrs
        a['f2'] = np.float16(0.1)
        a['f2_max'] = np.float16(65504)
        a['f2_1d'] = np.array([0.1, 65504, -2, 6.1e-5], dtype='<f2')
        a['f2_be'] = np.array(0.3, dtype='>f2')
        a['f2_pow2'] = np.float16(2.0 ** -6)      # 0.015625: 0.01563 is the shortest
        a['f4'] = np.float32(1.1)
        a['f8'] = np.float64(0.1)
        a['f8_big'] = np.float64(1.5e15)
        a['ld_third'] = np.longdouble(1) / np.longdouble(3)
        a['ld_tenth'] = np.longdouble('0.1')
        array_attr(d, 'arr_f8', h5t.IEEE_F64LE, (3,), np.array([0.0, 1.0, 2.0]))
        array_attr(d, 'arr_i2_2x3', h5t.STD_I16BE, (2, 3), np.arange(6, dtype='>i2').reshape(2, 3))
        array_attr(d, 'arr_f2', h5t.IEEE_F16LE, (2,), np.array([0.1, 0.2], dtype='<f2'))
        a['i3d'] = np.arange(8, dtype='<i4').reshape(2, 2, 2)
        a['str_1d_empty_last'] = np.array(['x', ''], dtype=h5py.string_dtype())
        a['str_2d'] = np.array([['a', 'b c'], ['', "it's"]], dtype=h5py.string_dtype())
        a['str_fixed_1d'] = np.array([b'ab', b'', b'c'], dtype='S3')
        a['str_scalar'] = 'two words'
        a['str_one'] = np.array(['only'], dtype=h5py.string_dtype())
        a['compound'] = np.array((7, 2.5, b'ab'), dtype=[('k', '<i4'), ('v', '<f4'), ('s', 'S4')])
        a['compound_arr'] = np.array([(1, [0.5, 1.5]), (2, [2.5, 3.5])],
                                     dtype=[('k', 'u1'), ('m', '<f8', (2,))])
        a['complex'] = np.complex64(1.5 - 2j)
        a.create('enum_1d', np.array([0, 42, 7], dtype='<i2'),
                 dtype=h5py.enum_dtype({'RED': 0, 'BLUE': 42}, basetype='<i2'))
        a['bool_1d'] = np.array([True, False, True])
        a['opaque'] = np.void(b'\x00\xffab')
        a['empty'] = h5py.Empty('<f8')
        a['zero_size'] = np.zeros((0,), dtype='<i4')
        a['ref'] = tgt.ref
        a.create('refs', [tgt.ref, d.ref], dtype=h5py.ref_dtype)
        a['vlen_int'] = np.array([np.arange(2, dtype='<i4'), np.arange(0, dtype='<i4')],
                                 dtype=h5py.vlen_dtype('<i4'))
        # Every finite float16, and random bit patterns of the wider floats (NaN, infinities
        # and subnormals among them), 4096 values an attribute (an xattr holds 64 KiB).
        g = f.create_group('floats')
        rng = np.random.default_rng(5)
        halfs = np.arange(0x10000, dtype='<u4').astype('<u2').view('<f2')
        halfs = halfs[np.isfinite(halfs)]
        for i in range(0, len(halfs), 4096):
            g.attrs['f2_%02d' % (i // 4096)] = halfs[i:i + 4096]
        g.attrs['f4'] = rng.integers(0, 2**32, 4096, dtype='<u8').astype('<u4').view('<f4')
        g.attrs['f8'] = rng.integers(0, 2**63, 2048, dtype='<u8').view('<f8') * \
            np.where(np.arange(2048) % 2, 1, -1)
        g.attrs['ld'] = (rng.standard_normal(1000) * 10.0 ** rng.integers(-30, 30, 1000)) \
            .astype(np.longdouble) / np.longdouble(3)
    return path


def make_array_typed(path):
    with h5py.File(path, 'w') as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((4,))
        for name, base, dt, adims, dims in (('v3', h5t.IEEE_F32LE, '<f4', (3,), (5,)),
                                            ('m23', h5t.STD_I16BE, '>i2', (2, 3), (4,)),
                                            ('grid', h5t.STD_U8LE, 'u1', (3,), (5, 5, 5))):
            tid = h5t.array_create(base, adims)
            if name == 'grid':
                sid = h5py.h5s.create_simple(dims)
                ds = h5py.h5d.create(f.id, name.encode(), tid, sid)
            else:
                sid = h5py.h5s.create_simple(dims, (h5py.h5s.UNLIMITED,))
                ds = h5py.h5d.create(f.id, name.encode(), tid, sid, dcpl=dcpl)
            n = int(np.prod(dims)) * int(np.prod(adims))
            data = (np.arange(n) % 100).astype(dt)
            ds.write(h5py.h5s.ALL, h5py.h5s.ALL, data.reshape(tuple(dims) + tuple(adims)),
                     mtype=tid)
    return path


def setUpModule():
    d = harness.workdir()
    FIX['attrs'] = make_attrs(os.path.join(d, 'attrs.h5'))
    FIX['arrays'] = make_array_typed(os.path.join(d, 'arrays.h5'))
    FIX['repacked'] = os.path.join(d, 'arrays_repacked.h5')
    subprocess.run(['h5repack', FIX['arrays'], FIX['repacked']], check=True, capture_output=True)
    cdl = os.path.join(d, 'attrs.cdl')
    with open(cdl, 'w') as fp:
        fp.write(CDL)
    FIX['netcdf'] = os.path.join(d, 'attrs_nc.h5')
    subprocess.run(['ncgen', '-k', 'nc4', '-o', FIX['netcdf'], cdl], check=True,
                   capture_output=True)


class AttributeText(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mnt = harness.mount_for_class(cls, FIX['attrs'])

    def x(self, name):
        return os.getxattr(self.mnt.p('d'), 'user.' + name)

    def assertTexts(self, want, path=None):
        """Each xattr user.<name> of `path` (default: dataset d) reads as want[name]; all of
        them are compared at once, so a failure lists every text that differs."""
        path = path or self.mnt.p('d')
        got = {name: os.getxattr(path, 'user.' + name) for name in want}
        self.assertEqual(got, want)

    def test_float16_prints_the_fewest_digits_that_read_back_as_the_half(self):
        self.assertTexts({
            'f2': b'0.1',
            'f2_max': b'65500.0',
            'f2_1d': b'0.1 65500.0 -2.0 6.1e-05',
            'f2_be': b'0.3',
            'f2_pow2': b'0.01563',
        })
        for tok, want in zip(self.x('f2_1d').split(b' '), [0.1, 65504, -2, 6.1e-5]):
            self.assertEqual(np.float16(float(tok)), np.float16(want))

    def test_every_half_and_random_floats_print_numpys_shortest_digits(self):
        import test_walk
        t = self.mnt.p('floats')
        with h5py.File(FIX['attrs'], 'r') as f:
            for name, val in f['floats'].attrs.items():
                toks = os.getxattr(t, 'user.' + name).split(b' ')
                self.assertEqual(len(toks), len(val), name)
                want = [test_walk.float_text(v).encode() for v in val]
                bad = [(w, g) for w, g in zip(want, toks) if w != g]
                self.assertEqual(bad, [], name)
                back = np.array([val.dtype.type(x.decode()) for x in toks], dtype=val.dtype)
                np.testing.assert_array_equal(back, val)

    def test_float32_and_float64_print_as_python_repr(self):
        self.assertTexts({
            'f4': b'1.1',
            'f8': b'0.1',
            'f8_big': b'1500000000000000.0',
        })

    def test_long_double_prints_the_fewest_digits_that_read_back(self):
        third = self.x('ld_third')
        self.assertEqual(np.longdouble(third.decode()), np.longdouble(1) / np.longdouble(3))
        self.assertEqual(len(third.replace(b'0.', b'', 1)), 20, third)
        self.assertEqual(self.x('ld_tenth'), b'0.1')

    def test_array_typed_scalar_attribute_adds_its_dims_without_brackets(self):
        self.assertTexts({
            'arr_f8': b'0.0 1.0 2.0',
            'arr_i2_2x3': b'0 1 2\n3 4 5',
            'arr_f2': b'0.1 0.2',
        })

    def test_rank_three_prints_one_row_of_the_last_dimension_per_line(self):
        self.assertEqual(self.x('i3d'), b'0 1\n2 3\n4 5\n6 7')

    def test_string_arrays_are_quoted_rows_with_no_trailing_newline(self):
        self.assertTexts({
            'str_1d_empty_last': b"'x' ''",
            'str_2d': b"'a' 'b c'\n'' 'it\\'s'",
            'str_fixed_1d': b"'ab' '' 'c'",
            'str_one': b"'only'",
            'str_scalar': b'two words',
        })

    def test_compounds_print_members_in_braces(self):
        self.assertTexts({
            'compound': b"{k: 7, v: 2.5, s: 'ab'}",
            'compound_arr': b'{k: 1, m: [0.5 1.5]} {k: 2, m: [2.5 3.5]}',
            'complex': b'{r: 1.5, i: -2.0}',
        })

    def test_enums_bools_opaque_and_vlen(self):
        self.assertTexts({
            'enum_1d': b'RED BLUE 7',
            'bool_1d': b'TRUE FALSE TRUE',
            'opaque': b'00ff6162',
            'vlen_int': b'[0 1] []',
        })

    def test_empty_and_zero_size_attributes_are_empty_text(self):
        self.assertTexts({
            'empty': b'',
            'zero_size': b'',
        })

    def test_references_print_the_path_of_their_object(self):
        self.assertTexts({
            'ref': b'/target',
            'refs': b"'/target' '/d'",
        })

    def test_netcdf_attributes_written_by_ncgen(self):
        with harness.Mount(FIX['netcdf'], ['-o', 'ro']) as m:
            self.assertTexts({
                'valid_range': b'0.1 65504.0',
                'scale': b'1.1',
                'names': b"'a b' '' 'c'",
                'units': b'm s-1',
                'weights': b'0.5 0.25',
            }, m.p('v'))


class ArrayTypeShape(unittest.TestCase):
    CASES = (('v3', (5, 3), b'5 3\n'), ('m23', (4, 2, 3), b'4 2 3\n'),
             ('grid', (5, 5, 5, 3), b'5 5 5 3\n'))

    def check_read(self, m):
        for name, npy_shape, text in self.CASES:
            with self.subTest(name):
                self.assertEqual(np.load(m.p(name + '.npy'), mmap_mode='r').shape, npy_shape)
                self.assertEqual(read_file(m.p(name + '.shape')), text)
                self.assertEqual(os.stat(m.p(name + '.shape')).st_size, len(text))

    def test_shape_text_lists_the_array_dims_like_the_npy_header(self):
        with harness.Mount(FIX['arrays'], ['-o', 'ro']) as m:
            self.check_read(m)

    def test_h5repack_copy_shows_the_same_shapes(self):
        with harness.Mount(FIX['repacked'], ['-o', 'ro']) as m:
            self.check_read(m)

    def test_shape_write_keeps_the_array_dims_and_resizes_the_rows(self):
        h5 = harness.fresh_copy(FIX['arrays'], 'arrays_write.h5')
        with harness.Mount(h5) as m:
            shp = m.p('v3.shape')
            for bad in (b'7\n', b'7 4\n', b'7 3 1\n'):
                with self.subTest(bad):
                    self.assertEqual(harness.errno_of(self._write, shp, bad), errno.EINVAL)
            self._write(shp, b'7 3\n')
            self.assertEqual(read_file(shp), b'7 3\n')
            a = np.load(m.p('v3.npy'))
            self.assertEqual(a.shape, (7, 3))
            np.testing.assert_array_equal(a[:5].ravel(), np.arange(15, dtype='<f4'))
            self._write(m.p('m23.shape'), b'2 2 3\n')
            self.assertEqual(np.load(m.p('m23.npy')).shape, (2, 2, 3))
        with h5py.File(h5, 'r') as f:
            self.assertEqual(f['v3'].shape, (7,))
            self.assertEqual(f['m23'].shape, (2,))

    @staticmethod
    def _write(path, text):
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, text)
        finally:
            os.close(fd)


if __name__ == '__main__':
    if shutil.which('ncgen') is None or shutil.which('h5repack') is None:
        print('SKIP: ncgen or h5repack is missing (see contrib/deps)')
        sys.exit(77)
    harness.run_tests()
