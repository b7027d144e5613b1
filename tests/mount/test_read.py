"""Reads real mounts of the fixture files and compares every view with h5py/PyTables.

One test method per behaviour of the daemon's contract: element types, layouts and
filters, variable-length data, listings, name shadowing, links, attributes as xattrs,
read-only-ness, mmap, missing filters and corrupted chunks. Usage:

    /usr/bin/python3 tests/mount/test_read.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import os
import pickle
import stat
import subprocess
import sys
import threading
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402
import tables               # noqa: E402

import fixtures             # noqa: E402
import harness              # noqa: E402
from harness import read_file   # noqa: E402

FIX = {}
WRITE_ERRNOS = (errno.EROFS, errno.EACCES)


def setUpModule():
    FIX.update(fixtures.make_all(harness.workdir()))


def npy_header(path):
    with open(path, 'rb') as fp:
        return harness.parse_npy_header(fp.read(16384))


class MountedCase(unittest.TestCase):
    """Mounts FIX[fixture] once for the class; unmounts (asserting exit 0) afterwards."""
    fixture = None
    pytables = False
    # Read-only: these tests read the .h5 file with h5py while it is mounted, and a
    # read-write mount holds HDF5's write lock on it.
    opts = ('-o', 'ro')

    @classmethod
    def setUpClass(cls):
        cls.h5 = FIX[cls.fixture]
        cls.mnt = harness.mount_for_class(cls, cls.h5, cls.opts)
        cls._death_reported = False

    def tearDown(self):
        # Name the test during which the daemon died, once.
        cls = type(self)
        if not cls.mnt.alive() and not cls._death_reported:
            cls._death_reported = True
            self.fail('h5mount died during this test (status %r); stderr:\n%s'
                      % (cls.mnt.proc.poll(), cls.mnt.stderr_text()[-4000:]))

    _expect_cache = None

    @classmethod
    def expect(cls, path=None):
        if cls._expect_cache is None:
            cls._expect_cache = harness.compute_expectations(cls.h5, pytables=cls.pytables)
        return cls._expect_cache if path is None else cls._expect_cache[path]

    def check(self, *paths):
        for p in paths:
            with self.subTest(dataset=p):
                harness.check_dataset(self.mnt, self.expect(p))

    def npy_descr(self, path):
        return npy_header(self.mnt.p(path) + '.npy')[4]['descr']

    def assertWriteRefused(self, fn, *args):
        err = harness.errno_of(fn, *args)
        self.assertIn(err, WRITE_ERRNOS, '%s%r: errno %s, expected EROFS or EACCES'
                      % (fn.__name__, args, errno.errorcode.get(err, err)))


# ====================================================================== h5py types file

class TypesFile(MountedCase):
    fixture = 'types'

    def test_every_dataset_matches_h5py_in_raw_npy_and_shape_views(self):
        failures = harness.check_all(self.mnt, self.expect())
        self.assertEqual(failures, [], '\n'.join(failures))

    def test_every_group_lists_exactly_its_children_and_their_views(self):
        failures = harness.check_listings(self.mnt, self.h5)
        self.assertEqual(failures, [], '\n'.join(failures))

    def test_integers_of_every_width_keep_their_stored_byte_order(self):
        for kind in ('i', 'u'):
            for size in (1, 2, 4, 8):
                for order in ('<', '>') if size > 1 else ('|',):
                    dt = np.dtype('%s%s%d' % (order if size > 1 else '', kind, size))
                    name = 'numeric/%s%d%s' % ('int' if kind == 'i' else 'uint', size * 8,
                                               '' if size == 1 else
                                               ('_le' if order == '<' else '_be'))
                    with self.subTest(name):
                        self.assertEqual(read_file(self.mnt.p(name)),
                                         fixtures.numeric_values(dt).tobytes())
                        self.assertEqual(self.npy_descr(name), dt.str)
                        self.assertEqual(read_file(self.mnt.p(name + '.shape')), b'5 7\n')
                        harness.check_dataset(self.mnt, self.expect('/' + name))

    def test_floats_f2_f4_f8_keep_nan_inf_negative_zero_and_byte_order(self):
        for size in (2, 4, 8):
            for order, tag in (('<', 'le'), ('>', 'be')):
                dt = np.dtype('%sf%d' % (order, size))
                name = 'numeric/float%d_%s' % (size * 8, tag)
                with self.subTest(name):
                    self.assertEqual(read_file(self.mnt.p(name)),
                                     fixtures.numeric_values(dt).tobytes())
                    self.assertEqual(self.npy_descr(name), dt.str)
                    a = np.load(self.mnt.p(name + '.npy'), mmap_mode='r')
                    self.assertTrue(np.isnan(a[0, 0]) and np.isposinf(a[0, 1]))
                    self.assertTrue(a[0, 3] == 0 and np.signbit(a[0, 3]))

    def test_h5py_bool_enum_is_served_as_b1(self):
        self.assertEqual(self.npy_descr('numeric/bool'), '|b1')
        self.assertEqual(read_file(self.mnt.p('numeric/bool')), bytes([1, 0, 1, 0, 0, 1]))
        a = np.load(self.mnt.p('numeric/bool.npy'), mmap_mode='r')
        np.testing.assert_array_equal(a, [[True, False, True], [False, False, True]])
        self.check('/numeric/bool', '/scalar/bool')

    def test_complex64_and_complex128_in_both_orders_are_c8_and_c16(self):
        for size in (8, 16):
            for order, tag in (('<', 'le'), ('>', 'be')):
                name = 'numeric/complex%d_%s' % (size * 8, tag)
                with self.subTest(name):
                    self.assertEqual(self.npy_descr(name), '%sc%d' % (order, size))
                    want = ((np.arange(12) - 3.5) + 1j * (np.arange(12) * 0.25)).astype(
                        '%sc%d' % (order, size)).reshape(3, 4)
                    self.assertEqual(read_file(self.mnt.p(name)), want.tobytes())
                    np.testing.assert_array_equal(np.load(self.mnt.p(name + '.npy')), want)

    def test_fixed_length_strings_are_S_n_with_their_stored_padding(self):
        want = np.array([b'a', b'hello', b'', b'xyz\x00w', b'12345'], dtype='S5')
        self.assertEqual(read_file(self.mnt.p('strings/fixed5')), want.tobytes())
        self.assertEqual(self.npy_descr('strings/fixed5'), '|S5')
        np.testing.assert_array_equal(np.load(self.mnt.p('strings/fixed5.npy')), want)
        self.check('/strings/fixed1_2d', '/strings/fixed_utf8', '/scalar/string')

    def test_enums_are_served_as_their_base_integer(self):
        cases = [('enums/color_i2', '<i2', [0, 1, 42, 1]),
                 ('enums/level_u1', '|u1', [[3, 2], [1, 3]]),
                 ('enums/state_i4_be', '>i4', [-1, 0, 70000])]
        for name, descr, values in cases:
            with self.subTest(name):
                self.assertEqual(self.npy_descr(name), descr)
                self.assertEqual(read_file(self.mnt.p(name)),
                                 np.array(values, dtype=descr).tobytes())

    def test_compound_with_gaps_keeps_offsets_itemsize_and_stored_bytes(self):
        with h5py.File(self.h5, 'r') as f:
            ds = f['compound/gaps']
            want_dtype = ds.dtype
            with open(self.h5, 'rb') as fp:
                fp.seek(ds.id.get_offset())
                stored = fp.read(ds.id.get_storage_size())
        self.assertEqual(want_dtype.itemsize, 32)
        self.assertEqual(read_file(self.mnt.p('compound/gaps')), stored)
        a = np.load(self.mnt.p('compound/gaps.npy'), mmap_mode='r')
        self.assertEqual(a.dtype, want_dtype)
        self.assertEqual(a.dtype.fields['b'][1], 8)
        self.assertEqual(a.dtype.fields['s'][1], 20)
        np.testing.assert_array_equal(a['a'], np.arange(6) - 2)
        np.testing.assert_array_equal(a['b'], np.arange(6) * 1.5)
        self.assertEqual(a['b'].dtype, np.dtype('>f8'))
        self.check('/compound/gaps', '/compound/gaps_chunked')

    def test_nested_compound_loads_as_nested_structured_dtype(self):
        a = np.load(self.mnt.p('compound/nested.npy'), mmap_mode='r')
        self.assertEqual(a.dtype, np.dtype([('id', '<i4'), ('pos', [('x', '<f4'), ('y', '>f4')]),
                                            ('tag', 'S3'),
                                            ('inner', [('deep', [('v', '<u2')])])]))
        np.testing.assert_array_equal(a['pos']['y'], [-1, -2, -3, -4])
        np.testing.assert_array_equal(a['inner']['deep']['v'], [9, 8, 7, 65535])
        self.check('/compound/nested', '/compound/packed_mixed', '/compound/scalar')

    def test_array_fields_are_subarrays_of_the_structured_dtype(self):
        a = np.load(self.mnt.p('compound/array_field.npy'), mmap_mode='r')
        self.assertEqual(a.dtype, np.dtype([('id', '<u2'), ('vec', '<f8', (3,)),
                                            ('m', '>i2', (2, 2))]))
        np.testing.assert_array_equal(a['m'], np.arange(20).reshape(5, 2, 2) - 10)
        self.check('/compound/array_field')

    def test_bool_and_complex_members_inside_a_compound_are_b1_and_c8(self):
        a = np.load(self.mnt.p('compound/packed_mixed.npy'), mmap_mode='r')
        self.assertEqual(a.dtype['flag'], np.dtype('|b1'))
        self.assertEqual(a.dtype['c'], np.dtype('<c8'))
        self.assertEqual(a.dtype.itemsize, 23)
        np.testing.assert_array_equal(a['u8'], [0, 1, 2**63, 2**64 - 1, 5])

    def test_array_typed_dataset_appends_array_dims_to_npy_shape_and_shape_text(self):
        cases = [('array_typed/f4x4', '<f4', (6, 4), b'6 4\n'),
                 ('array_typed/i2be_2x3', '>i2', (5, 2, 3), b'5 2 3\n'),
                 ('array_typed/u1x3_2d', '|u1', (2, 4, 3), b'2 4 3\n')]
        for name, descr, npy_shape, shape_line in cases:
            with self.subTest(name):
                a = np.load(self.mnt.p(name + '.npy'), mmap_mode='r')
                self.assertEqual(a.shape, npy_shape)
                self.assertEqual(a.dtype, np.dtype(descr))
                self.assertEqual(read_file(self.mnt.p(name + '.shape')), shape_line)
                self.check('/' + name)
        np.testing.assert_array_equal(np.load(self.mnt.p('array_typed/f4x4.npy')),
                                      np.arange(24, dtype='<f4').reshape(6, 4))

    def test_opaque_dataset_is_void_n(self):
        self.assertEqual(self.npy_descr('opaque/v7'), '|V7')
        self.assertEqual(read_file(self.mnt.p('opaque/v7')),
                         b'abcdefg1234567\x00\x01\x02\x03\x04\x05\x06')
        self.check('/opaque/v7')

    def test_scalar_dataset_shape_file_is_a_bare_newline_and_npy_is_0d(self):
        self.assertEqual(read_file(self.mnt.p('scalar/int.shape')), b'\n')
        self.assertEqual(read_file(self.mnt.p('scalar/int')), np.int32(-42).tobytes())
        a = np.load(self.mnt.p('scalar/int.npy'), mmap_mode='r')
        self.assertEqual(a.shape, ())
        self.assertEqual(int(a), -42)
        self.assertEqual(float(np.load(self.mnt.p('scalar/float_be.npy'))), 2.5)
        self.assertEqual(self.npy_descr('scalar/float_be'), '>f8')
        self.check('/scalar/int', '/scalar/float_be', '/scalar/string', '/scalar/bool')

    def test_empty_extendable_dataset_is_zero_bytes_with_a_valid_npy(self):
        self.assertEqual(os.stat(self.mnt.p('empty/rows0')).st_size, 0)
        self.assertEqual(read_file(self.mnt.p('empty/rows0')), b'')
        self.assertEqual(read_file(self.mnt.p('empty/rows0.shape')), b'0 3\n')
        self.assertEqual(read_file(self.mnt.p('empty/vector0.shape')), b'0\n')
        a = np.load(self.mnt.p('empty/rows0.npy'), mmap_mode='r')
        self.assertEqual((a.shape, a.dtype), ((0, 3), np.dtype('<f8')))
        self.check('/empty/rows0', '/empty/vector0')

    def test_compact_layout_dataset_reads_its_values(self):
        self.assertEqual(read_file(self.mnt.p('layout/compact')),
                         (np.arange(200, dtype='<i4').reshape(10, 20) * 3).tobytes())
        self.check('/layout/compact')

    def test_contiguous_dataset_equals_the_bytes_stored_in_the_file(self):
        with h5py.File(self.h5, 'r') as f:
            ds = f['layout/contiguous']
            with open(self.h5, 'rb') as fp:
                fp.seek(ds.id.get_offset())
                stored = fp.read(ds.id.get_storage_size())
        self.assertEqual(read_file(self.mnt.p('layout/contiguous')), stored)
        self.check('/layout/contiguous')

    def test_chunked_gzip_shuffle_fletcher32_with_partial_edge_chunks(self):
        self.check('/layout/gzip_shuffle_fletcher32', '/layout/gzip_int_be',
                   '/layout/chunked_plain', '/layout/chunked_extendable')
        with h5py.File(self.h5, 'r') as f:
            want = f['layout/gzip_shuffle_fletcher32'][()]
        np.testing.assert_array_equal(
            np.load(self.mnt.p('layout/gzip_shuffle_fletcher32.npy'), mmap_mode='r'), want)

    def test_unwritten_chunks_and_unallocated_storage_read_as_the_fill_value(self):
        want = np.full((100, 100), -1, dtype='<i4')
        want[20:30, 40:50] = 5
        want[95:100, 0:3] = 6
        self.assertEqual(read_file(self.mnt.p('layout/sparse_gzip_fill')), want.tobytes())
        self.assertEqual(read_file(self.mnt.p('layout/unwritten_contiguous')),
                         np.full(50, 9, dtype='>i2').tobytes())
        self.assertEqual(read_file(self.mnt.p('layout/unwritten_chunked')),
                         np.full((40, 3), 2.5, dtype='<f8').tobytes())
        want = np.full((50, 4), 3, dtype='<i2')
        want[10:20] = np.arange(40).reshape(10, 4)
        want[49] = -1
        self.assertEqual(read_file(self.mnt.p('layout/sparse_rows')), want.tobytes())
        with open(self.mnt.p('layout/sparse_rows'), 'rb') as fp:   # ranges across chunk edges
            for off, n in ((0, 400), (47, 1), (95, 50), (150, 250), (390, 10), (392, 100)):
                fp.seek(off)
                self.assertEqual(fp.read(n), want.tobytes()[off:off + n], (off, n))
        self.check('/layout/sparse_gzip_fill', '/layout/unwritten_contiguous',
                   '/layout/unwritten_chunked', '/layout/sparse_rows')

    def test_one_byte_big_endian_integers_are_i1_and_u1(self):
        self.assertEqual(self.npy_descr('numeric/int8_be'), '|i1')
        self.assertEqual(self.npy_descr('numeric/uint8_be'), '|u1')
        self.assertEqual(read_file(self.mnt.p('numeric/int8_be')), bytes([128, 255, 0, 1, 127, 5]))
        self.check('/numeric/int8_be', '/numeric/uint8_be')

    def test_enum_bool_and_subarray_of_compound_members(self):
        a = np.load(self.mnt.p('compound/with_enum_and_bool.npy'), mmap_mode='r')
        self.assertEqual(a.dtype, np.dtype([('id', '<i4'), ('color', '<i2'), ('on', '|b1'),
                                            ('name', 'S4')]))
        np.testing.assert_array_equal(a['color'], [42, 0, 1])
        b = np.load(self.mnt.p('compound/subarray_of_compound.npy'), mmap_mode='r')
        self.assertEqual(b.dtype, np.dtype([('n', '|u1'),
                                            ('pts', [('x', '<f4'), ('y', '>f8')], (2,)),
                                            ('tags', 'S2', (3,))]))
        np.testing.assert_array_equal(b['pts']['y'], -np.arange(8).reshape(4, 2) / 2)
        self.check('/compound/with_enum_and_bool', '/compound/subarray_of_compound')

    @unittest.skipUnless(h5py.h5z.filter_avail(h5py.h5z.FILTER_SZIP), 'libhdf5 lacks szip')
    def test_szip_dataset_reads_when_libhdf5_has_szip(self):
        self.assertEqual(read_file(self.mnt.p('layout/szip')),
                         (np.arange(20000) % 777).astype('<i4').tobytes())
        self.check('/layout/szip')

    def test_vlen_strings_concatenate_bytes_with_int64_element_offsets(self):
        strings = ['a', 'bcé', '', '温度計', 'x' * 100, 'end']
        encoded = [s.encode('utf-8') for s in strings]
        flat = read_file(self.mnt.p('vlen/str'))
        self.assertEqual(flat, b''.join(encoded))
        off = np.frombuffer(read_file(self.mnt.p('vlen/str.offsets')), dtype='<i8')
        self.assertEqual(off.tolist(), [0] + np.cumsum([len(e) for e in encoded]).tolist())
        self.assertEqual([flat[off[i]:off[i + 1]].decode('utf-8') for i in range(6)], strings)
        a = np.load(self.mnt.p('vlen/str.npy'), mmap_mode='r')
        self.assertEqual((a.dtype, a.shape), (np.dtype('|u1'), (len(flat),)))
        self.assertEqual(read_file(self.mnt.p('vlen/str.shape')), b'6\n')
        self.check('/vlen/str', '/vlen/ascii')

    def test_vlen_int_offsets_count_elements_not_bytes(self):
        rows = [np.arange(3), np.arange(0), np.arange(5) - 2, np.array([2**31 - 1])]
        off = np.frombuffer(read_file(self.mnt.p('vlen/int.offsets')), dtype='<i8')
        self.assertEqual(off.tolist(), [0, 3, 3, 8, 9])
        self.assertEqual(read_file(self.mnt.p('vlen/int')),
                         np.concatenate(rows).astype('<i4').tobytes())
        a = np.load(self.mnt.p('vlen/int.npy'), mmap_mode='r')
        self.assertEqual((a.dtype, a.shape), (np.dtype('<i4'), (9,)))
        for i, r in enumerate(rows):
            np.testing.assert_array_equal(a[off[i]:off[i + 1]], r)
        self.assertEqual(read_file(self.mnt.p('vlen/int.shape')), b'4\n')
        self.check('/vlen/int', '/vlen/f8_be', '/vlen/chunked_gzip')
        self.assertEqual(self.npy_descr('vlen/f8_be'), '>f8')
        self.assertEqual(read_file(self.mnt.p('vlen/f8_be')),
                         np.concatenate([np.linspace(0, 1, n) for n in (4, 1, 0, 7)])
                         .astype('>f8').tobytes())

    def test_vlen_with_no_rows_or_only_empty_rows(self):
        self.assertEqual(read_file(self.mnt.p('vlen/zero_rows.offsets')), bytes(8))
        self.assertEqual(read_file(self.mnt.p('vlen/zero_rows')), b'')
        self.assertEqual(read_file(self.mnt.p('vlen/zero_rows.shape')), b'0\n')
        self.assertEqual(read_file(self.mnt.p('vlen/all_rows_empty.offsets')), bytes(32))
        self.assertEqual(read_file(self.mnt.p('vlen/all_rows_empty')), b'')
        self.assertEqual(read_file(self.mnt.p('vlen/all_rows_empty.shape')), b'3\n')
        self.check('/vlen/zero_rows', '/vlen/all_rows_empty')

    def test_references_and_vlen_in_compound_are_not_listed(self):
        self.assertEqual(set(os.listdir(self.mnt.p('absent'))),
                         {'present', 'present.npy', 'present.shape', 'null', 'null.shape'})
        for name in ('objref', 'regionref', 'vlen_in_compound', 'ref_in_compound'):
            for view in ('', '.npy', '.shape', '.offsets'):
                with self.subTest(name + view):
                    self.assertEqual(harness.errno_of(os.lstat, self.mnt.p('absent', name + view)),
                                     errno.ENOENT)

    def test_unrepresentable_datasets_are_logged_by_path(self):
        os.listdir(self.mnt.p('absent'))
        log = self.mnt.stderr_text()
        for name in ('objref', 'regionref', 'vlen_in_compound', 'null', 'ref_in_compound'):
            with self.subTest(name):
                lines = [ln for ln in log.splitlines() if 'absent/' + name in ln]
                self.assertGreaterEqual(len(lines), 1, 'no log line names /absent/%s in:\n%s'
                                        % (name, log))
                self.assertNotIn('HDF5-DIAG', log)

    def test_dataset_named_like_a_view_shadows_that_view(self):
        names = set(os.listdir(self.mnt.p('shadow')))
        self.assertEqual(names, {'y', 'y.shape', 'y.npy', 'y.npy.npy', 'y.npy.shape',
                                 'z', 'z.npy', 'z.shape', 'z.shape.npy', 'z.shape.shape'})
        self.assertEqual(read_file(self.mnt.p('shadow/y.npy')),
                         b'I am the real y.npy'.ljust(32, b'\x00'))
        self.assertEqual(read_file(self.mnt.p('shadow/z.shape')), bytes([1, 2, 3]))
        self.assertEqual(read_file(self.mnt.p('shadow/y')), np.arange(6, dtype='<i4').tobytes())
        self.assertEqual(np.load(self.mnt.p('shadow/y.npy.npy'))[0],
                         b'I am the real y.npy')
        self.check('/shadow/y.npy', '/shadow/z.shape')

    def test_non_ascii_group_and_dataset_names_list_and_read(self):
        self.assertIn('ünïcødé', os.listdir(self.mnt.path))
        self.assertEqual(set(os.listdir(self.mnt.p('ünïcødé'))),
                         {'温度', '温度.npy', '温度.shape',
                          'naïve name', 'naïve name.npy', 'naïve name.shape'})
        self.assertEqual(read_file(self.mnt.p('ünïcødé/温度')),
                         np.array([21.5, 22.0, 19.75], dtype='<f4').tobytes())
        self.check('/ünïcødé/温度', '/ünïcødé/naïve name')
        self.assertEqual(os.getxattr(self.mnt.p('ünïcødé'), 'user.unité'), 'degrés'.encode())

    def test_a_group_with_thousands_of_entries_lists_every_one(self):
        names = os.listdir(self.mnt.p('many'))
        self.assertEqual(len(names), 3 * fixtures.MANY_DATASETS)
        self.assertEqual(len(set(names)), len(names), 'duplicate names in readdir')
        want = {'d%04d%s' % (i, v) for i in range(fixtures.MANY_DATASETS)
                for v in ('', '.npy', '.shape')}
        self.assertEqual(set(names), want)
        self.assertEqual(read_file(self.mnt.p('many/d0777')),
                         np.array([777, -777], dtype='<i4').tobytes())

    def test_deeply_nested_dataset_resolves(self):
        path = '/'.join(['deep'] + ['level%02d' % i for i in range(16)] + ['bottom'])
        self.assertEqual(read_file(self.mnt.p(path)), np.arange(3, dtype='<u8').tobytes())
        self.check('/' + path)

    # ---- attributes

    def test_every_attribute_with_a_defined_text_is_a_user_xattr(self):
        failures = harness.check_xattrs(self.mnt, self.h5)
        self.assertEqual(failures, [], '\n'.join(failures))

    def test_group_xattr_list_is_exactly_user_dot_attribute_names(self):
        with h5py.File(self.h5, 'r') as f:
            want = {'user.' + n for n in f['attrs'].attrs}
        self.assertEqual(set(os.listxattr(self.mnt.p('attrs'))), want)

    def _attr_values(self, target):
        return {n: os.getxattr(target, 'user.' + n) for n in (
            'str_scalar', 'str_utf8', 'str_fixed', 'str_empty', 'int_scalar', 'int_negative',
            'uint64_max', 'int_bigendian', 'int_1d', 'int_2d', 'str_array',
            'str_fixed_array', 'enum_scalar', 'bool_true', 'bool_false')}

    def test_string_integer_array_enum_and_bool_xattr_texts(self):
        want = {'str_scalar': b'hello world', 'str_utf8': 'grüße 温度'.encode(),
                'str_fixed': b'fixed', 'str_empty': b'', 'int_scalar': b'42',
                'int_negative': b'-7', 'uint64_max': b'18446744073709551615',
                'int_bigendian': b'513', 'int_1d': b'-1 0 1 2 3', 'int_2d': b'0 1 2\n3 4 5',
                'str_array': b"'alpha' 'beta' 'gamma'", 'str_fixed_array': b"'ab' 'cde' 'f'",
                'enum_scalar': b'BLUE', 'bool_true': b'TRUE', 'bool_false': b'FALSE'}
        for target in ('attrs', 'attrs/data'):
            with self.subTest(target):
                self.assertEqual(self._attr_values(self.mnt.p(target)), want)

    def test_float_xattrs_parse_back_to_the_same_value(self):
        for target in ('attrs', 'attrs/data'):
            t = self.mnt.p(target)
            with self.subTest(target):
                for name, value in (('float_scalar', 0.1), ('float_third', 1.0 / 3.0),
                                    ('float_big', 1.2345678901234567e300),
                                    ('float_negative_tiny', -5e-324)):
                    text = os.getxattr(t, 'user.' + name)
                    self.assertFalse(text.endswith(b'\n'))
                    self.assertEqual(float(text), value, name)
                self.assertEqual(np.float32(float(os.getxattr(t, 'user.float32'))),
                                 np.float32(1.1))
                toks = os.getxattr(t, 'user.float_1d').split(b' ')
                self.assertEqual([float(x) for x in toks], [0.5, 1e-300, -2.25, 1.0 / 3.0])
                rows = [[float(x) for x in r.split(b' ')]
                        for r in os.getxattr(t, 'user.float_2d').split(b'\n')]
                self.assertEqual(rows, [[1.5, -2.0], [0.1, 3.0e10], [7.0, 8.25]])

    def test_long_array_xattr_is_returned_whole(self):
        want = ' '.join(str(v * 1000003) for v in range(3000)).encode()
        self.assertGreater(len(want), 16384)
        self.assertEqual(os.getxattr(self.mnt.p('attrs'), 'user.int_long'), want)

    def test_getfattr_dumps_and_reads_the_attributes(self):
        r = subprocess.run(['getfattr', '--absolute-names', '-d', self.mnt.p('attrs/data')],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('user.int_scalar="42"', r.stdout)
        self.assertIn('user.str_scalar="hello world"', r.stdout)
        r = subprocess.run(['getfattr', '--absolute-names', '--only-values', '-n',
                            'user.enum_scalar', self.mnt.p('attrs')], capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b'BLUE')

    def test_root_group_attributes_are_xattrs_of_the_mountpoint(self):
        self.assertEqual(os.getxattr(self.mnt.path, 'user.root_note'),
                         b'attributes on the root group')

    def test_missing_xattr_is_enodata(self):
        self.assertEqual(harness.errno_of(os.getxattr, self.mnt.p('attrs'), 'user.nope'),
                         errno.ENODATA)
        self.assertEqual(harness.errno_of(os.getxattr, self.mnt.p('numeric/int8'),
                                          'user.nope'), errno.ENODATA)

    # ---- links

    def _assert_resolves_inside(self, link, want_hdf5_path):
        target = os.readlink(self.mnt.p(link))
        self.assertFalse(target.startswith('/'), '%s -> %r is absolute' % (link, target))
        resolved = os.path.normpath(os.path.join(os.path.dirname(link), target))
        self.assertEqual(resolved, want_hdf5_path.strip('/'), '%s -> %r' % (link, target))
        real = os.path.realpath(self.mnt.p(link))
        self.assertEqual(real, os.path.realpath(self.mnt.p(want_hdf5_path)))

    def test_absolute_soft_link_becomes_a_relative_symlink_inside_the_mount(self):
        self.assertTrue(os.path.islink(self.mnt.p('links/soft_abs')))
        self._assert_resolves_inside('links/soft_abs', '/links/target_group/data')
        self.assertEqual(read_file(self.mnt.p('links/soft_abs')),
                         np.arange(12, dtype='<i8').tobytes())

    def test_absolute_soft_link_in_a_subgroup_climbs_with_dotdot(self):
        self._assert_resolves_inside('links/sub/soft_abs_up', '/links/target_group/data')
        self.assertTrue(os.readlink(self.mnt.p('links/sub/soft_abs_up')).startswith('..'))
        self._assert_resolves_inside('root_soft', '/links/target_group/data')
        self.assertEqual(read_file(self.mnt.p('root_soft')), np.arange(12, dtype='<i8').tobytes())

    def test_relative_soft_link_target_is_kept_verbatim(self):
        self.assertEqual(os.readlink(self.mnt.p('links/soft_rel')), 'target_group/data')

    def test_soft_link_to_a_group_is_a_symlink_to_its_directory(self):
        self._assert_resolves_inside('links/soft_group', '/links/target_group')
        self.assertTrue(os.path.isdir(self.mnt.p('links/soft_group')))
        self.assertEqual(sorted(os.listdir(self.mnt.p('links/soft_group'))),
                         sorted(os.listdir(self.mnt.p('links/target_group'))))

    def test_dangling_soft_link_is_a_relative_symlink_that_does_not_resolve(self):
        target = os.readlink(self.mnt.p('links/dangling'))
        self.assertFalse(target.startswith('/'))
        self.assertEqual(os.path.normpath(os.path.join('links', target)), 'no/such/object')
        self.assertEqual(harness.errno_of(os.stat, self.mnt.p('links/dangling')), errno.ENOENT)

    def test_external_link_is_a_dangling_symlink_naming_file_double_slash_path(self):
        # Host paths only with -o external_links=host (test_security.py).
        self.assertEqual(os.readlink(self.mnt.p('links/ext')), 'h5mount-dangling:external:ext.h5%2F%2Fdata')
        self.assertEqual(os.readlink(self.mnt.p('links/ext_group')),
                         'h5mount-dangling:external:ext.h5%2F%2Fgrp')
        self.assertEqual(harness.errno_of(os.stat, self.mnt.p('links/ext')), errno.ENOENT)

    def test_hard_linked_objects_share_an_inode(self):
        ino = lambda p: os.stat(self.mnt.p(p)).st_ino   # noqa: E731
        self.assertEqual(ino('links/hard'), ino('links/target_group/data'))
        self.assertEqual(ino('links/hard_group'), ino('links/target_group'))
        self.assertEqual(ino('links/hard_group/data'), ino('links/target_group/data'))
        self.assertNotEqual(ino('links/target_group/data'), ino('links/target_group/other'))
        self.assertEqual(read_file(self.mnt.p('links/hard')),
                         read_file(self.mnt.p('links/target_group/data')))

    # ---- read-only

    def test_files_are_mode_0444_and_directories_0555(self):
        bad = []
        for root, dirs, files in os.walk(self.mnt.path):
            for d in dirs:
                st = os.lstat(os.path.join(root, d))
                if stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) != 0o555:
                    bad.append('%s %o' % (os.path.join(root, d), st.st_mode))
            for f in files:
                st = os.lstat(os.path.join(root, f))
                if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != 0o444:
                    bad.append('%s %o' % (os.path.join(root, f), st.st_mode))
        st = os.stat(self.mnt.path)
        if stat.S_IMODE(st.st_mode) != 0o555:
            bad.append('mountpoint %o' % st.st_mode)
        self.assertEqual(bad, [])

    def test_opening_a_view_for_writing_fails_with_erofs_or_eacces(self):
        for name in ('numeric/int8', 'numeric/int8.npy', 'numeric/int8.shape', 'vlen/int.offsets'):
            for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_APPEND,
                          os.O_WRONLY | os.O_TRUNC):
                with self.subTest(name=name, flags=flags):
                    self.assertWriteRefused(os.open, self.mnt.p(name), flags)
        self.assertEqual(read_file(self.mnt.p('numeric/int8')),
                         fixtures.numeric_values('i1').tobytes())

    def test_creating_files_and_directories_fails_with_erofs_or_eacces(self):
        self.assertWriteRefused(os.open, self.mnt.p('numeric/new'), os.O_WRONLY | os.O_CREAT, 0o644)
        self.assertWriteRefused(os.mkdir, self.mnt.p('numeric/newdir'))
        self.assertWriteRefused(os.symlink, 'int8', self.mnt.p('numeric/newlink'))
        self.assertWriteRefused(os.link, self.mnt.p('numeric/int8'), self.mnt.p('numeric/hl'))
        self.assertFalse(os.path.lexists(self.mnt.p('numeric/new')))

    def test_removing_renaming_and_truncating_fails_with_erofs_or_eacces(self):
        self.assertWriteRefused(os.unlink, self.mnt.p('numeric/int8'))
        self.assertWriteRefused(os.rmdir, self.mnt.p('empty'))
        self.assertWriteRefused(os.rename, self.mnt.p('numeric/int8'), self.mnt.p('numeric/i8'))
        self.assertWriteRefused(os.truncate, self.mnt.p('numeric/int8'), 0)
        self.assertEqual(os.stat(self.mnt.p('numeric/int8')).st_size, 35)

    def test_changing_metadata_fails_with_erofs_or_eacces(self):
        self.assertWriteRefused(os.chmod, self.mnt.p('numeric/int8'), 0o644)
        self.assertWriteRefused(os.utime, self.mnt.p('numeric/int8'), (0, 0))
        self.assertWriteRefused(os.setxattr, self.mnt.p('attrs'), 'user.new', b'1')
        self.assertWriteRefused(os.removexattr, self.mnt.p('attrs'), 'user.int_scalar')
        self.assertEqual(os.getxattr(self.mnt.p('attrs'), 'user.int_scalar'), b'42')

    # ---- mmap and concurrency

    def test_numpy_memmap_and_python_mmap_match_h5py(self):
        exp = self.expect('/layout/gzip_shuffle_fletcher32')
        raw = self.mnt.p('layout/gzip_shuffle_fletcher32')
        mm = np.memmap(raw, dtype='<f8', mode='r', shape=(1000, 37))
        self.assertEqual(mm.tobytes(), exp.raw)
        np.testing.assert_array_equal(mm[::7, 3], exp.array[::7, 3])
        del mm
        self.assertEqual(harness.mmap_bytes(raw), exp.raw)
        npy = harness.mmap_bytes(raw + '.npy')
        self.assertEqual(npy[-len(exp.raw):], exp.raw)
        self.assertEqual(npy[:6], b'\x93NUMPY')
        a = np.load(raw + '.npy', mmap_mode='r')
        rng = np.random.default_rng(3)
        for i in rng.integers(0, 1000, 50):
            np.testing.assert_array_equal(a[i], exp.array[i])

    def test_concurrent_reads_from_threads_return_the_right_bytes(self):
        exps = [e for e in self.expect().values() if len(e.raw) > 0]
        errors = []

        def worker(k):
            try:
                for e in exps[k::4] + exps[::-1][k::5]:
                    got = read_file(self.mnt.p(e.path))
                    if got != e.raw:
                        errors.append('%s differs under concurrency' % e.path)
                    if e.leaf + '.npy' in e.shadowed:
                        continue
                    a = np.load(self.mnt.p(e.path) + '.npy', mmap_mode='r')
                    if np.ascontiguousarray(a).tobytes() != e.raw:
                        errors.append('%s.npy differs under concurrency' % e.path)
            except Exception as ex:     # noqa: BLE001 - reported below
                errors.append('%s: %r' % (threading.current_thread().name, ex))
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_read_at_and_past_end_of_file_returns_nothing(self):
        fd = os.open(self.mnt.p('numeric/int8'), os.O_RDONLY)
        try:
            self.assertEqual(os.pread(fd, 100, 35), b'')
            self.assertEqual(os.pread(fd, 100, 10**9), b'')
            self.assertEqual(os.pread(fd, 100, 30), fixtures.numeric_values('i1').tobytes()[30:])
        finally:
            os.close(fd)

    def test_npy_header_has_room_for_20_digit_dims_and_64_byte_alignment(self):
        for path in ('/numeric/int8', '/layout/chunked_extendable', '/empty/rows0',
                     '/scalar/int', '/compound/nested', '/array_typed/u1x3_2d', '/vlen/str'):
            with self.subTest(path):
                off = harness.check_npy_file(self.mnt.p(path) + '.npy', self.expect(path))
                self.assertEqual(off % 64, 0)


# ====================================================================== PyTables file

class TutorialFile(MountedCase):
    fixture = 'pytables'
    pytables = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pt = tables.open_file(cls.h5, 'r')
        cls.addClassCleanup(cls.pt.close)

    def test_every_dataset_matches_h5py_and_pytables(self):
        failures = harness.check_all(self.mnt, self.expect())
        self.assertEqual(failures, [], '\n'.join(failures))

    def test_every_group_lists_exactly_its_children_and_their_views(self):
        failures = harness.check_listings(self.mnt, self.h5)
        self.assertEqual(failures, [], '\n'.join(failures))

    def test_1000_column_earray_raw_bytes_equal_pytables_rows(self):
        want = self.pt.root.earrays.signal.read()
        self.assertEqual(want.shape, (fixtures.TUTORIAL_ROWS, 1000))
        self.assertEqual(read_file(self.mnt.p('earrays/signal')), want.astype('<f8').tobytes())
        self.assertEqual(read_file(self.mnt.p('earrays/signal.shape')),
                         b'%d 1000\n' % fixtures.TUTORIAL_ROWS)
        a = np.load(self.mnt.p('earrays/signal.npy'), mmap_mode='r')
        np.testing.assert_array_equal(a[::97], want[::97])

    def test_blosc5_earray_is_byte_identical_to_the_plain_one(self):
        self.assertEqual(read_file(self.mnt.p('earrays/signal_blosc5')),
                         read_file(self.mnt.p('earrays/signal')))
        self.assertEqual(read_file(self.mnt.p('earrays/signal_blosc5.npy')),
                         read_file(self.mnt.p('earrays/signal.npy')))
        self.check('/earrays/signal_blosc5')

    def test_each_blosc_compressor_and_shuffle_decodes_without_a_plugin(self):
        codes = {'blosc': 0, 'blosc:lz4': 1, 'blosc:lz4hc': 2, 'blosc:snappy': 3,
                 'blosc:zlib': 4, 'blosc:zstd': 5}
        with h5py.File(self.h5, 'r') as f:
            for name, kw in fixtures.BLOSC_VARIANTS:
                for prefix in ('f8_', 'i2_'):
                    path = 'earrays/' + prefix + name
                    with self.subTest(path):
                        dcpl = f[path].id.get_create_plist()
                        filters = [dcpl.get_filter(i) for i in range(dcpl.get_nfilters())]
                        if kw['complib'].startswith('blosc'):
                            fid, _, cd, _ = filters[0]
                            self.assertEqual(fid, 32001)
                            self.assertEqual(cd[6] if len(cd) > 6 else 0, codes[kw['complib']])
                            self.assertEqual(cd[5], 2 if kw.get('bitshuffle') else
                                             (1 if kw['shuffle'] else 0))
                        want = self.pt.get_node('/' + path).read()
                        self.assertEqual(read_file(self.mnt.p(path)), want.tobytes())
                        self.check('/' + path)

    def test_incompressible_chunks_stored_raw_by_blosc_read_back(self):
        with h5py.File(self.h5, 'r') as f:
            ds = f['earrays/blosc_incompressible']
            masks = {ds.id.get_chunk_info(i).filter_mask for i in range(ds.id.get_num_chunks())}
        self.assertEqual(masks, {1}, 'fixture: chunks should be stored raw (mask bit 0)')
        self.assertEqual(read_file(self.mnt.p('earrays/blosc_incompressible')),
                         self.pt.root.earrays.blosc_incompressible.read().tobytes())

    def test_blosc_chunk_larger_than_the_whole_dataset(self):
        node = self.pt.root.earrays.i2_blosc_zstd_bitshuffle
        self.assertGreater(node.chunkshape[0], node.nrows)
        self.assertEqual(read_file(self.mnt.p('earrays/i2_blosc_zstd_bitshuffle')),
                         node.read().tobytes())

    def test_carray_with_partial_edge_chunks_and_big_endian_storage(self):
        grid = (np.arange(300 * 401, dtype=np.int32).reshape(300, 401) * 7) % 100003
        self.assertEqual(read_file(self.mnt.p('carrays/grid')), grid.astype('<i4').tobytes())
        self.assertEqual(read_file(self.mnt.p('carrays/grid_bigendian')),
                         grid.astype('>i4').tobytes())
        self.assertEqual(read_file(self.mnt.p('carrays/grid_blosc_lz4')),
                         grid.astype('<i4').tobytes())
        self.assertEqual(self.npy_descr('carrays/grid_bigendian'), '>i4')
        self.assertEqual(self.npy_descr('earrays/f4_bigendian'), '>f4')
        self.check('/carrays/cube_blosc_zstd', '/carrays/complex_blosc', '/earrays/f4_bigendian')
        self.assertEqual(self.npy_descr('carrays/complex_blosc'), '<c16')

    def test_blosc_chunks_never_written_read_as_the_atom_default(self):
        with h5py.File(self.h5, 'r') as f:
            self.assertEqual(f['carrays/sparse_blosc_dflt'].id.get_num_chunks(), 2)
        want = np.full((300, 300), -1.5)
        want[100:150, 50:100] = 1.0
        want[290:300, 0:10] = 2.0
        self.assertEqual(read_file(self.mnt.p('carrays/sparse_blosc_dflt')), want.tobytes())
        np.testing.assert_array_equal(self.pt.root.carrays.sparse_blosc_dflt.read(), want)

    def test_pytables_bool_bitfield_array_is_b1(self):
        self.assertEqual(self.npy_descr('arrays/bools'), '|b1')
        np.testing.assert_array_equal(np.load(self.mnt.p('arrays/bools.npy')),
                                      [True, False, False, True, True])
        self.assertEqual(read_file(self.mnt.p('arrays/bools')), bytes([1, 0, 0, 1, 1]))

    def test_pytables_arrays_scalar_strings_and_complex(self):
        self.assertEqual(read_file(self.mnt.p('arrays/scalar.shape')), b'\n')
        self.assertEqual(read_file(self.mnt.p('arrays/scalar')), np.int64(42).tobytes())
        self.assertEqual(read_file(self.mnt.p('arrays/strings')), b'alpha\0\0be\0\0\0\0\0gamma!!')
        self.assertEqual(self.npy_descr('arrays/strings'), '|S7')
        self.check('/arrays/complex', '/arrays/u64_bigendian', '/arrays/int16_2d',
                   '/arrays/floats')

    def test_table_npy_is_the_structured_array_pytables_reads(self):
        want = self.pt.root.tables.particles.read()
        a = np.load(self.mnt.p('tables/particles.npy'), mmap_mode='r')
        self.assertEqual(a.shape, (1000,))
        self.assertEqual(a.dtype.names, want.dtype.names)
        self.assertEqual(a.dtype['detected'], np.dtype('|b1'))
        self.assertEqual(a.dtype['color'], np.dtype('|u1'))
        self.assertEqual(a.dtype['momentum'], np.dtype(('<f4', (3,))))
        self.assertEqual(a.dtype['info'].names, ('label', 'value', 'flags'))
        for name in want.dtype.names:
            with self.subTest(column=name):
                self.assertTrue(harness.values_equal(a[name], want[name]))
        self.assertEqual(read_file(self.mnt.p('tables/particles.shape')), b'1000\n')

    def test_blosc_zstd_table_is_byte_identical_to_the_plain_table(self):
        self.assertEqual(read_file(self.mnt.p('tables/particles_blosc_zstd')),
                         read_file(self.mnt.p('tables/particles')))
        self.check('/tables/particles_blosc_zstd', '/tables/particles_blosc_lz4')

    def _vlen_rows(self, name, dtype):
        flat = np.load(self.mnt.p(name + '.npy'), mmap_mode='r')
        self.assertEqual(flat.dtype, np.dtype(dtype))
        off = np.frombuffer(read_file(self.mnt.p(name + '.offsets')), dtype='<i8')
        self.assertEqual(off[0], 0)
        self.assertEqual(off[-1], len(flat))
        self.assertEqual(read_file(self.mnt.p(name + '.shape')), b'%d\n' % (len(off) - 1))
        return [flat[off[i]:off[i + 1]] for i in range(len(off) - 1)]

    def test_vlarray_rows_rebuilt_from_offsets_match_pytables(self):
        for name, dtype in (('vlarrays/ints', '<i4'), ('vlarrays/floats_blosc', '<f8')):
            with self.subTest(name):
                want = self.pt.get_node('/' + name).read()
                rows = self._vlen_rows(name, dtype)
                self.assertEqual(len(rows), len(want))
                for r, w in zip(rows, want):
                    np.testing.assert_array_equal(r, w)
                self.check('/' + name)

    def test_vlstring_rows_are_the_strings_pytables_reads(self):
        for name in ('vlarrays/strings', 'vlarrays/bytes_blosc'):
            with self.subTest(name):
                want = self.pt.get_node('/' + name).read()
                rows = [r.tobytes() for r in self._vlen_rows(name, '|u1')]
                self.assertEqual(rows, [w if isinstance(w, bytes) else w.encode() for w in want])
                self.check('/' + name)

    def test_objectatom_rows_unpickle_to_the_objects_pytables_reads(self):
        want = self.pt.root.vlarrays.objects.read()
        rows = self._vlen_rows('vlarrays/objects', '|u1')
        self.assertEqual([pickle.loads(r.tobytes()) for r in rows], want)

    def test_pytables_attributes_are_xattrs(self):
        x = os.getxattr
        self.assertEqual(x(self.mnt.p('earrays/signal'), 'user.CLASS'), b'EARRAY')
        self.assertEqual(x(self.mnt.p('earrays/signal'), 'user.EXTDIM'), b'0')
        self.assertEqual(x(self.mnt.p('earrays'), 'user.CLASS'), b'GROUP')
        self.assertEqual(x(self.mnt.p('earrays'), 'user.TITLE'), b'Extendable arrays')
        self.assertEqual(x(self.mnt.path, 'user.creator'), b'fixtures.py')
        self.assertEqual(x(self.mnt.path, 'user.answer'), b'42')
        self.assertEqual(float(x(self.mnt.path, 'user.ratio')), 0.1)
        self.assertEqual(x(self.mnt.p('tables/particles'), 'user.units'), b'GeV')
        self.assertEqual(x(self.mnt.p('earrays/f8_blosc_lz4'), 'user.complib'), b'blosc:lz4')
        failures = harness.check_xattrs(self.mnt, self.h5)
        self.assertEqual(failures, [], '\n'.join(failures))

    def test_earray_that_was_never_appended_to_is_empty(self):
        self.assertEqual(read_file(self.mnt.p('earrays/empty')), b'')
        self.assertEqual(read_file(self.mnt.p('earrays/empty.shape')), b'0 8\n')
        a = np.load(self.mnt.p('earrays/empty.npy'), mmap_mode='r')
        self.assertEqual((a.shape, a.dtype), ((0, 8), np.dtype('<i4')))


# ====================================================================== failures

class MissingFilter(MountedCase):
    fixture = 'missing_filter'

    def test_dataset_with_unavailable_filter_is_listed_with_its_full_size(self):
        self.assertEqual(set(os.listdir(self.mnt.path)),
                         {'good', 'good.npy', 'good.shape', 'missing', 'missing.npy',
                          'missing.shape', 'good_after', 'good_after.npy', 'good_after.shape'})
        self.assertEqual(os.stat(self.mnt.p('missing')).st_size, 400)
        self.assertEqual(read_file(self.mnt.p('missing.shape')), b'100\n')
        self.assertEqual(os.stat(self.mnt.p('missing.npy')).st_size % 64, 400 % 64)
        self.assertGreaterEqual(os.stat(self.mnt.p('missing.npy')).st_size, 400 + 64)

    def test_reading_dataset_with_unavailable_filter_fails_with_eio(self):
        self.assertEqual(harness.errno_of(read_file, self.mnt.p('missing')), errno.EIO)
        fd = os.open(self.mnt.p('missing'), os.O_RDONLY)
        try:
            self.assertEqual(harness.errno_of(os.pread, fd, 40, 200), errno.EIO)
        finally:
            os.close(fd)
        self.assertEqual(harness.errno_of(read_file, self.mnt.p('missing.npy')), errno.EIO)

    def test_other_datasets_keep_working_after_a_failed_filter_read(self):
        harness.errno_of(read_file, self.mnt.p('missing'))
        self.assertEqual(read_file(self.mnt.p('good')), (np.arange(100, dtype='<i4') * 2).tobytes())
        self.assertEqual(read_file(self.mnt.p('good_after')),
                         np.linspace(0, 1, 50, dtype='<f8').tobytes())
        self.assertEqual(harness.errno_of(read_file, self.mnt.p('missing')), errno.EIO)
        self.assertTrue(self.mnt.alive())

    def test_filter_failure_logs_no_hdf5_error_stack(self):
        harness.errno_of(read_file, self.mnt.p('missing'))
        self.assertNotIn('HDF5-DIAG', self.mnt.stderr_text())


class CorruptChunk(MountedCase):
    fixture = 'corrupt'
    CHUNK = fixtures.CORRUPT_CHUNK_ELEMS * 8

    def want(self):
        n = fixtures.CORRUPT_CHUNK_ELEMS * fixtures.CORRUPT_NCHUNKS
        return np.sin(np.arange(n) / 100.0).astype('<f8').tobytes()

    def pread(self, index, length=None, path='data'):
        fd = os.open(self.mnt.p(path), os.O_RDONLY)
        try:
            return os.pread(fd, length or self.CHUNK, index * self.CHUNK)
        finally:
            os.close(fd)

    def test_reading_a_corrupted_gzip_chunk_fails_with_eio(self):
        self.assertEqual(harness.errno_of(self.pread, fixtures.CORRUPT_INDEX), errno.EIO)
        self.assertEqual(harness.errno_of(read_file, self.mnt.p('data')), errno.EIO)

    def test_chunks_away_from_the_corrupted_one_read_correctly(self):
        want = self.want()
        for i in (0, 1, 5, 6, 7):
            with self.subTest(chunk=i):
                self.assertEqual(self.pread(i), want[i * self.CHUNK:(i + 1) * self.CHUNK])

    def test_chunks_next_to_the_corrupted_one_read_correctly(self):
        want = self.want()
        for i in (fixtures.CORRUPT_INDEX - 1, fixtures.CORRUPT_INDEX + 1):
            with self.subTest(chunk=i):
                self.assertEqual(self.pread(i), want[i * self.CHUNK:(i + 1) * self.CHUNK])

    def test_daemon_keeps_serving_after_a_corrupt_chunk(self):
        harness.errno_of(self.pread, fixtures.CORRUPT_INDEX)
        self.assertEqual(read_file(self.mnt.p('other')), np.arange(1000, dtype='<i4').tobytes())
        self.assertEqual(harness.errno_of(self.pread, fixtures.CORRUPT_INDEX), errno.EIO)
        self.assertTrue(self.mnt.alive())
        self.assertNotIn('HDF5-DIAG', self.mnt.stderr_text())


class CorruptBloscChunk(MountedCase):
    fixture = 'corrupt_blosc'
    CHUNK = 16 * 1000 * 8

    def pread(self, index):
        fd = os.open(self.mnt.p('data'), os.O_RDONLY)
        try:
            return os.pread(fd, self.CHUNK, index * self.CHUNK)
        finally:
            os.close(fd)

    def test_reading_a_blosc_chunk_with_a_ruined_header_fails_with_eio(self):
        self.assertEqual(harness.errno_of(self.pread, fixtures.CORRUPT_INDEX), errno.EIO)

    def test_other_blosc_chunks_and_datasets_still_read(self):
        want = fixtures.signal_block(0, 16 * fixtures.CORRUPT_NCHUNKS, 1000, seed=5).tobytes()
        for i in (0, fixtures.CORRUPT_INDEX + 1, fixtures.CORRUPT_NCHUNKS - 1):
            with self.subTest(chunk=i):
                self.assertEqual(self.pread(i), want[i * self.CHUNK:(i + 1) * self.CHUNK])
        self.assertEqual(read_file(self.mnt.p('other')), np.arange(100, dtype='<i8').tobytes())
        self.assertTrue(self.mnt.alive())


if __name__ == '__main__':
    harness.run_tests()
