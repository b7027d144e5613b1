"""Writes the HDF5 files the h5mount integration tests mount; it checks nothing itself.

Every generator is deterministic (fixed seeds) and writes into a directory it is given.
PyTables files follow the PyTables tutorials (EArray/CArray/Array/Table/VLArray, with
and without Blosc); h5py files cover the element types, layouts, filters, attributes,
links and name clashes of the daemon's contract. Run it by hand to inspect the files:

    /usr/bin/python3 tests/mount/fixtures.py OUTDIR [all|pytables|types|big|...]
"""

import os
import sys

import numpy as np
import h5py
import tables

# Rows of each 1000-column EArray in the big file; H5M_TEST_ROWS overrides it
# (20000 rows = 160 MB per array for the full-size check).
DEFAULT_BIG_ROWS = 10000
# Rows of the 1000-column EArrays in the feature file (a few thousand).
TUTORIAL_ROWS = 2000
MISSING_FILTER_ID = 32099   # no libhdf5 plugin or built-in filter uses this id
MANY_DATASETS = 1000        # datasets in /many of the types file


def signal_block(row0, nrows, ncols, seed):
    """Smooth signal plus noise, rows [row0, row0+nrows) of an (N, ncols) float64 array."""
    rng = np.random.default_rng(seed + row0)
    t = np.arange(row0, row0 + nrows, dtype=np.float64)[:, None]
    c = np.arange(ncols, dtype=np.float64)[None, :]
    period = 150.0 + (c % 37.0) * 7.0
    smooth = np.sin(2.0 * np.pi * t / period + c / 10.0) * (1.0 + c / ncols)
    return smooth + 0.01 * rng.standard_normal((nrows, ncols))


def append_signal(earray, nrows, ncols, seed, block=1000):
    for row0 in range(0, nrows, block):
        earray.append(signal_block(row0, min(block, nrows - row0), ncols, seed))


# ---------------------------------------------------------------- PyTables files

class Particle(tables.IsDescription):
    """The tutorial's particle, plus a nested column, an array column, a bool and an enum."""
    name = tables.StringCol(16, pos=0)
    idnumber = tables.Int64Col(pos=1)
    ADCcount = tables.UInt16Col(pos=2)
    TDCcount = tables.UInt8Col(pos=3)
    grid_i = tables.Int32Col(pos=4)
    grid_j = tables.Int32Col(pos=5)
    pressure = tables.Float32Col(pos=6)
    energy = tables.Float64Col(pos=7)
    momentum = tables.Float32Col(shape=(3,), pos=8)
    detected = tables.BoolCol(pos=9)
    color = tables.EnumCol(['red', 'green', 'blue'], 'red', base='uint8', pos=10)

    class info(tables.IsDescription):
        _v_pos = 11
        label = tables.StringCol(8, pos=0)
        value = tables.Float64Col(pos=1)
        flags = tables.UInt16Col(shape=(2,), pos=2)


def fill_particles(table, nrows):
    row = table.row
    colors = table.get_enum('color')
    for i in range(nrows):
        row['name'] = ('Particle: %6d' % i).encode()
        row['TDCcount'] = i % 256
        row['ADCcount'] = (i * 256) % (1 << 16)
        row['grid_i'] = i
        row['grid_j'] = 10 - i
        row['pressure'] = float(i * i)
        row['energy'] = float(i * i) ** 4
        row['idnumber'] = i * (2 ** 34)
        row['momentum'] = (i * 0.5, -i * 0.25, i % 7)
        row['detected'] = (i % 3 == 0)
        row['color'] = colors[('red', 'green', 'blue')[i % 3]]
        row['info/label'] = ('L%d' % (i % 1000)).encode()
        row['info/value'] = i / 7.0
        row['info/flags'] = (i % 65536, (i * 3) % 65536)
        row.append()
    table.flush()


BLOSC_VARIANTS = [
    # (node name, Filters kwargs)
    ('blosc', dict(complevel=5, complib='blosc', shuffle=True)),
    ('blosc_lz4', dict(complevel=5, complib='blosc:lz4', shuffle=True)),
    ('blosc_lz4hc', dict(complevel=4, complib='blosc:lz4hc', shuffle=True)),
    ('blosc_zstd_bitshuffle', dict(complevel=5, complib='blosc:zstd', shuffle=False,
                                   bitshuffle=True)),
    ('blosc_zlib_noshuffle', dict(complevel=5, complib='blosc:zlib', shuffle=False)),
    ('blosc_snappy', dict(complevel=5, complib='blosc:snappy', shuffle=True)),
    ('zlib', dict(complevel=5, complib='zlib', shuffle=True)),
]


def make_pytables(path, rows=TUTORIAL_ROWS):
    """The PyTables tutorial file: EArrays, CArrays, Arrays, Tables, VLArrays."""
    rng = np.random.default_rng(1)
    with tables.open_file(path, 'w', title='h5mount tutorial fixtures') as f:
        f.root._v_attrs.creator = 'fixtures.py'
        f.root._v_attrs.answer = 42
        f.root._v_attrs.ratio = 0.1

        g = f.create_group('/', 'earrays', 'Extendable arrays')
        plain = f.create_earray(g, 'signal', tables.Float64Atom(), (0, 1000),
                                'smooth signal plus noise')
        append_signal(plain, rows, 1000, seed=10)
        b5 = f.create_earray(g, 'signal_blosc5', tables.Float64Atom(), (0, 1000),
                             'the same, Blosc level 5',
                             filters=tables.Filters(complevel=5, complib='blosc'))
        append_signal(b5, rows, 1000, seed=10)
        for name, kw in BLOSC_VARIANTS:
            ea = f.create_earray(g, 'f8_' + name, tables.Float64Atom(), (0, 100),
                                 filters=tables.Filters(**kw))
            append_signal(ea, 777, 100, seed=20)
            ea.attrs.complib = kw['complib']
            ei = f.create_earray(g, 'i2_' + name, tables.Int16Atom(), (0, 50),
                                 filters=tables.Filters(**kw))
            ei.append((np.arange(333 * 50, dtype=np.int64).reshape(333, 50) % 1000 - 500)
                      .astype(np.int16))
        # Random bytes do not compress: hdf5-blosc stores such chunks raw with
        # filter_mask bit 0 set, which a direct-chunk reader must honour.
        inc = f.create_earray(g, 'blosc_incompressible', tables.UInt8Atom(), (0, 4096),
                              filters=tables.Filters(complevel=5, complib='blosc:lz4',
                                                     shuffle=False))
        inc.append(rng.integers(0, 256, (64, 4096), dtype=np.uint8))
        be = f.create_earray(g, 'f4_bigendian', tables.Float32Atom(), (0, 30),
                             byteorder='big', filters=tables.Filters(5, 'blosc:lz4'))
        be.append(rng.standard_normal((200, 30)).astype(np.float32))
        f.create_earray(g, 'empty', tables.Int32Atom(), (0, 8))   # never appended to

        g = f.create_group('/', 'carrays', 'Chunked arrays')
        grid = (np.arange(300 * 401, dtype=np.int32).reshape(300, 401) * 7) % 100003
        f.create_carray(g, 'grid', obj=grid, chunkshape=(64, 64))
        f.create_carray(g, 'grid_blosc_lz4', obj=grid, chunkshape=(64, 64),
                        filters=tables.Filters(5, 'blosc:lz4'))
        f.create_carray(g, 'grid_bigendian', obj=grid, chunkshape=(50, 100), byteorder='big')
        f.create_carray(g, 'cube_blosc_zstd', obj=rng.standard_normal((20, 30, 40)),
                        filters=tables.Filters(5, 'blosc:zstd', bitshuffle=True))
        # Only one block written: the other chunks were never stored and read as dflt.
        sparse = f.create_carray(g, 'sparse_blosc_dflt', tables.Float64Atom(dflt=-1.5), (300, 300),
                                 chunkshape=(50, 50), filters=tables.Filters(5, 'blosc:lz4'))
        sparse[100:150, 50:100] = 1.0
        sparse[290:300, 0:10] = 2.0
        f.create_carray(g, 'complex_blosc', obj=(rng.standard_normal((40, 40))
                                                 + 1j * rng.standard_normal((40, 40))),
                        filters=tables.Filters(5, 'blosc'))

        g = f.create_group('/', 'arrays', 'Plain arrays')
        f.create_array(g, 'floats', np.linspace(0.0, 1.0, 101))
        f.create_array(g, 'int16_2d', np.arange(-60, 60, dtype=np.int16).reshape(10, 12))
        f.create_array(g, 'strings', np.array([b'alpha', b'be', b'gamma!!']))
        f.create_array(g, 'bools', np.array([True, False, False, True, True]))
        f.create_array(g, 'scalar', 42)
        f.create_array(g, 'complex', np.array([1 + 2j, -3.5 - 0.25j], dtype=np.complex128))
        f.create_array(g, 'u64_bigendian', np.array([0, 1, 2**63, 2**64 - 1], dtype='>u8'))

        g = f.create_group('/', 'tables', 'Tables')
        t = f.create_table(g, 'particles', Particle, 'Readout example')
        fill_particles(t, 1000)
        t.attrs.units = 'GeV'
        tb = f.create_table(g, 'particles_blosc_zstd', Particle, 'zstd 9',
                            filters=tables.Filters(complevel=9, complib='blosc:zstd'))
        fill_particles(tb, 1000)
        tl = f.create_table(g, 'particles_blosc_lz4', Particle, 'lz4',
                            filters=tables.Filters(complevel=5, complib='blosc:lz4'))
        fill_particles(tl, 333)

        g = f.create_group('/', 'vlarrays', 'Variable-length arrays')
        vi = f.create_vlarray(g, 'ints', tables.Int32Atom(), 'ragged ints')
        for i in range(50):
            vi.append(np.arange(i * 3 % 11, dtype=np.int32) * (i - 25))
        vf = f.create_vlarray(g, 'floats_blosc', tables.Float64Atom(), 'ragged floats',
                              filters=tables.Filters(5, 'blosc'))
        for i in range(40):
            vf.append(rng.standard_normal(i % 9))
        vs = f.create_vlarray(g, 'strings', tables.VLStringAtom(), 'ragged strings')
        for s in ['', 'a', 'hello world', 'grüße', '温度', 'x' * 300]:
            vs.append(s.encode('utf-8'))
        vo = f.create_vlarray(g, 'objects', tables.ObjectAtom(), 'pickled objects')
        for obj in [{'a': 1}, [1, 2, 3], 'text', 3.5, None, (b'by', 7)]:
            vo.append(obj)
        vb = f.create_vlarray(g, 'bytes_blosc', tables.VLStringAtom(), 'ragged bytes',
                              filters=tables.Filters(5, 'blosc:lz4'))
        for i in range(30):
            vb.append((('row %d ' % i) * (i % 5)).encode())
    return path


def make_big(path, rows=None):
    """The "done when" file: two 1000-column float64 EArrays, plain and Blosc level 5."""
    if rows is None:
        rows = int(os.environ.get('H5M_TEST_ROWS', DEFAULT_BIG_ROWS))
    with tables.open_file(path, 'w') as f:
        plain = f.create_earray('/', 'plain', tables.Float64Atom(), (0, 1000))
        append_signal(plain, rows, 1000, seed=99)
        blosc = f.create_earray('/', 'blosc5', tables.Float64Atom(), (0, 1000),
                                filters=tables.Filters(complevel=5, complib='blosc'))
        append_signal(blosc, rows, 1000, seed=99)
    return path


# ---------------------------------------------------------------- h5py files

def numeric_values(dt):
    """A (5, 7) array of dtype dt with its extremes and, for floats, nan/inf/-0.0/subnormal."""
    dt = np.dtype(dt)
    if dt.kind in 'iu':
        info = np.iinfo(dt)
        vals = [info.min, info.max, 0, 1, info.max - 1, info.min + 1]
        span = min(int(info.max), 10**6)
        vals += [int(x) for x in (np.arange(35 - len(vals)) * 37 % (span + 1))]
        return np.array(vals, dtype=dt).reshape(5, 7)
    info = np.finfo(dt)
    vals = [np.nan, np.inf, -np.inf, -0.0, 0.0, float(info.max), float(info.tiny) / 4, 1.0 / 3]
    vals += list(np.linspace(-100.0, 100.0, 35 - len(vals)))
    return np.array(vals, dtype=dt).reshape(5, 7)


def create_lowlevel(group, name, tid, shape, dcpl=None, maxshape=None):
    space = h5py.h5s.create_simple(shape, maxshape)
    dsid = h5py.h5d.create(group.id, name.encode(), tid, space, dcpl)
    return h5py.Dataset(dsid)


def write_as_stored(ds, arr):
    """Writes arr's bytes with the dataset's own type as the memory type (no conversion)."""
    arr = np.ascontiguousarray(arr)
    assert arr.nbytes == ds.size * ds.id.get_type().get_size()
    ds.id.write(h5py.h5s.ALL, h5py.h5s.ALL, arr, mtype=ds.id.get_type())


def make_types(path, ext_name='ext.h5'):
    """h5py fixtures: types, layouts, filters, attributes, links, absent things, names."""
    rng = np.random.default_rng(2)
    with h5py.File(path, 'w') as f:
        g = f.create_group('numeric')
        for kind in ('i', 'u'):
            for size in (1, 2, 4, 8):
                for order in ('<', '>'):
                    if size == 1 and order == '>':
                        continue
                    dt = np.dtype('%s%s%d' % (order, kind, size))
                    name = '%s%d%s' % ('int' if kind == 'i' else 'uint', size * 8,
                                       '' if size == 1 else ('_le' if order == '<' else '_be'))
                    g.create_dataset(name, data=numeric_values(dt))
        for size in (2, 4, 8):
            for order in ('<', '>'):
                dt = np.dtype('%sf%d' % (order, size))
                g.create_dataset('float%d_%s' % (size * 8, 'le' if order == '<' else 'be'),
                                 data=numeric_values(dt))
        g.create_dataset('bool', data=np.array([[True, False, True], [False, False, True]]))
        for size in (8, 16):
            for order in ('<', '>'):
                vals = (np.arange(12) - 3.5) + 1j * (np.arange(12) * 0.25)
                g.create_dataset('complex%d_%s' % (size * 8, 'le' if order == '<' else 'be'),
                                 data=vals.astype('%sc%d' % (order, size)).reshape(3, 4))
        g.create_dataset('one_element', data=np.array([7], dtype='<i8'))
        for name, tid in (('int8_be', h5py.h5t.STD_I8BE), ('uint8_be', h5py.h5t.STD_U8BE)):
            ds = create_lowlevel(g, name, tid, (6,))
            write_as_stored(ds, np.array([-128, -1, 0, 1, 127, 5], dtype='i1').view(
                'i1' if name == 'int8_be' else 'u1'))

        g = f.create_group('strings')
        g.create_dataset('fixed5', data=np.array([b'a', b'hello', b'', b'xyz\x00w', b'12345']))
        g.create_dataset('fixed1_2d', data=np.array([[b'a', b'b'], [b'c', b'']], dtype='S1'))
        ds = g.create_dataset('fixed_utf8', shape=(2,), dtype=h5py.string_dtype('utf-8', 8))
        write_as_stored(ds, np.array(['grüße'.encode(), '温度'.encode()], dtype='S8'))

        g = f.create_group('enums')
        g.create_dataset('color_i2', data=np.array([0, 1, 42, 1], dtype='<i2'),
                         dtype=h5py.enum_dtype({'RED': 0, 'GREEN': 1, 'BLUE': 42}, basetype='<i2'))
        g.create_dataset('level_u1', data=np.array([[3, 2], [1, 3]], dtype='u1'),
                         dtype=h5py.enum_dtype({'LOW': 1, 'MID': 2, 'HIGH': 3}, basetype='u1'))
        g.create_dataset('state_i4_be', data=np.array([-1, 0, 70000], dtype='>i4'),
                         dtype=h5py.enum_dtype({'NEG': -1, 'ZERO': 0, 'BIG': 70000},
                                               basetype='>i4'))

        g = f.create_group('compound')
        gap_dt = np.dtype({'names': ['a', 'b', 's'], 'formats': ['<i4', '>f8', 'S5'],
                           'offsets': [0, 8, 20], 'itemsize': 32})
        gap = np.zeros(6, gap_dt)
        gap['a'] = np.arange(6) - 2
        gap['b'] = np.arange(6) * 1.5
        gap['s'] = [b'x', b'yy', b'zzz', b'wwwww', b'', b'q']
        g.create_dataset('gaps', data=gap)
        g.create_dataset('gaps_chunked', data=gap, chunks=(4,), compression='gzip')
        packed = np.zeros(5, [('u8', '<u8'), ('i2be', '>i2'), ('f4', '<f4'), ('flag', '?'),
                              ('c', '<c8')])
        packed['u8'] = [0, 1, 2**63, 2**64 - 1, 5]
        packed['i2be'] = [-3, 3, 300, -300, 0]
        packed['f4'] = np.linspace(0, 1, 5)
        packed['flag'] = [True, False, True, True, False]
        packed['c'] = np.arange(5) * (1 + 1j)
        g.create_dataset('packed_mixed', data=packed)
        nested_dt = np.dtype([('id', '<i4'), ('pos', [('x', '<f4'), ('y', '>f4')]),
                              ('tag', 'S3'), ('inner', [('deep', [('v', '<u2')])])])
        nested = np.zeros(4, nested_dt)
        nested['id'] = [1, 2, 3, 4]
        nested['pos']['x'] = [0.5, 1.5, 2.5, 3.5]
        nested['pos']['y'] = [-1, -2, -3, -4]
        nested['tag'] = [b'abc', b'd', b'', b'ef']
        nested['inner']['deep']['v'] = [9, 8, 7, 65535]
        g.create_dataset('nested', data=nested)
        arr_dt = np.dtype([('id', '<u2'), ('vec', '<f8', (3,)), ('m', '>i2', (2, 2))])
        arr = np.zeros(5, arr_dt)
        arr['id'] = np.arange(5)
        arr['vec'] = np.arange(15).reshape(5, 3) / 4.0
        arr['m'] = np.arange(20).reshape(5, 2, 2) - 10
        g.create_dataset('array_field', data=arr)
        g.create_dataset('scalar', data=np.array((7, 2.5), dtype=[('k', '<i8'), ('v', '<f8')]))
        color = h5py.enum_dtype({'RED': 0, 'GREEN': 1, 'BLUE': 42}, basetype='<i2')
        we_dt = np.dtype([('id', '<i4'), ('color', color), ('on', '?'), ('name', 'S4')])
        we = np.zeros(3, we_dt)
        we['id'] = [1, 2, 3]
        we['color'] = [42, 0, 1]
        we['on'] = [True, False, True]
        we['name'] = [b'one', b'two', b'six!']
        g.create_dataset('with_enum_and_bool', data=we)
        pts_dt = np.dtype([('n', '<u1'), ('pts', [('x', '<f4'), ('y', '>f8')], (2,)),
                           ('tags', 'S2', (3,))])
        pts = np.zeros(4, pts_dt)
        pts['n'] = [1, 2, 3, 4]
        pts['pts']['x'] = np.arange(8).reshape(4, 2)
        pts['pts']['y'] = -np.arange(8).reshape(4, 2) / 2
        pts['tags'] = [[b'a', b'bb', b''], [b'c', b'd', b'e'], [b'', b'', b''], [b'zz', b'y', b'x']]
        g.create_dataset('subarray_of_compound', data=pts)

        g = f.create_group('array_typed')
        ds = create_lowlevel(g, 'f4x4', h5py.h5t.array_create(h5py.h5t.IEEE_F32LE, (4,)), (6,))
        write_as_stored(ds, np.arange(24, dtype='<f4').reshape(6, 4))
        ds = create_lowlevel(g, 'i2be_2x3', h5py.h5t.array_create(h5py.h5t.STD_I16BE, (2, 3)),
                             (5,))
        write_as_stored(ds, np.arange(30, dtype='>i2').reshape(5, 2, 3) - 15)
        ds = create_lowlevel(g, 'u1x3_2d', h5py.h5t.array_create(h5py.h5t.STD_U8LE, (3,)),
                             (2, 4))
        write_as_stored(ds, np.arange(24, dtype='u1').reshape(2, 4, 3))

        g = f.create_group('opaque')
        g.create_dataset('v7', data=np.array(
            [b'abcdefg', b'1234567', b'\x00\x01\x02\x03\x04\x05\x06'], dtype='V7'))

        g = f.create_group('scalar')
        g.create_dataset('int', data=np.int32(-42))
        g.create_dataset('float_be', data=np.array(2.5, dtype='>f8'))
        g.create_dataset('string', data=np.bytes_(b'scalar!'))
        g.create_dataset('bool', data=np.bool_(True))

        g = f.create_group('empty')
        g.create_dataset('rows0', shape=(0, 3), maxshape=(None, 3), dtype='<f8', chunks=(16, 3))
        g.create_dataset('vector0', shape=(0,), maxshape=(None,), dtype='>i2', chunks=(8,))

        g = f.create_group('layout')
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        ds = create_lowlevel(g, 'compact', h5py.h5t.STD_I32LE, (10, 20), dcpl)
        ds[...] = np.arange(200, dtype='<i4').reshape(10, 20) * 3
        g.create_dataset('contiguous', data=np.arange(3000, dtype='<f8').reshape(30, 100))
        data = rng.standard_normal((1000, 37))
        g.create_dataset('chunked_plain', data=data, chunks=(100, 10))
        g.create_dataset('gzip_shuffle_fletcher32', data=data, chunks=(64, 16),
                         compression='gzip', compression_opts=6, shuffle=True, fletcher32=True)
        g.create_dataset('gzip_int_be',
                         data=(np.arange(50000) % 1234).astype('>i4').reshape(500, 100),
                         chunks=(128, 33), compression='gzip')
        g.create_dataset('chunked_extendable', data=np.arange(90, dtype='<u2').reshape(30, 3),
                         maxshape=(None, 3), chunks=(7, 3))
        # Chunks never written and contiguous storage never allocated read as the fill value.
        sparse = g.create_dataset('sparse_gzip_fill', shape=(100, 100), dtype='<i4',
                                  chunks=(10, 10), fillvalue=-1, compression='gzip')
        sparse[20:30, 40:50] = 5
        sparse[95:100, 0:3] = 6
        g.create_dataset('unwritten_contiguous', shape=(50,), dtype='>i2', fillvalue=9)
        g.create_dataset('unwritten_chunked', shape=(40, 3), dtype='<f8', chunks=(8, 3),
                         fillvalue=2.5)
        # Unfiltered chunks of whole rows, some never written: read-only mounts read these
        # straight from the file, chunk by chunk.
        rows = g.create_dataset('sparse_rows', shape=(50, 4), dtype='<i2', chunks=(6, 4),
                                maxshape=(None, 4), fillvalue=3)
        rows[10:20] = np.arange(40, dtype='<i2').reshape(10, 4)
        rows[49] = -1
        if h5py.h5z.filter_avail(h5py.h5z.FILTER_SZIP):
            g.create_dataset('szip', data=(np.arange(20000) % 777).astype('<i4').reshape(200, 100),
                             chunks=(64, 50), compression='szip')

        g = f.create_group('attrs')
        add_attributes(g)
        ds = g.create_dataset('data', data=np.arange(10, dtype='<i4'))
        add_attributes(ds)
        f.attrs['root_note'] = 'attributes on the root group'

        g = f.create_group('links')
        tg = g.create_group('target_group')
        tgt = tg.create_dataset('data', data=np.arange(12, dtype='<i8').reshape(3, 4))
        tg.create_dataset('other', data=np.arange(5, dtype='<f4'))
        g['soft_abs'] = h5py.SoftLink('/links/target_group/data')
        g.create_group('sub')
        g['sub/soft_abs_up'] = h5py.SoftLink('/links/target_group/data')
        g['soft_group'] = h5py.SoftLink('/links/target_group')
        g['soft_rel'] = h5py.SoftLink('target_group/data')
        g['ext'] = h5py.ExternalLink(ext_name, '/data')
        g['ext_group'] = h5py.ExternalLink(ext_name, '/grp')
        g['hard'] = tgt
        g['hard_group'] = tg
        g['dangling'] = h5py.SoftLink('/no/such/object')
        f['root_soft'] = h5py.SoftLink('/links/target_group/data')

        g = f.create_group('absent')
        g.create_dataset('present', data=np.arange(3, dtype='<i4'))
        refs = g.create_dataset('objref', (2,), dtype=h5py.ref_dtype)
        refs[0] = f['links'].ref
        refs[1] = tgt.ref
        rr = g.create_dataset('regionref', (1,), dtype=h5py.regionref_dtype)
        rr[0] = tgt.regionref[0:2, 1:3]
        vc_dt = np.dtype([('a', '<i4'), ('v', h5py.vlen_dtype(np.dtype('<i4')))])
        vc = np.empty(2, vc_dt)
        vc[0] = (1, np.arange(3, dtype='<i4'))
        vc[1] = (2, np.arange(0, dtype='<i4'))
        g.create_dataset('vlen_in_compound', data=vc)
        g.create_dataset('null', data=h5py.Empty('<f4'))
        rc_dt = np.dtype([('a', '<i4'), ('r', h5py.ref_dtype)])
        rc = g.create_dataset('ref_in_compound', (1,), dtype=rc_dt)
        rc[0] = (5, tgt.ref)

        g = f.create_group('vlen')
        g.create_dataset('str', data=['a', 'bcé', '', '温度計', 'x' * 100, 'end'],
                         dtype=h5py.string_dtype('utf-8'))
        g.create_dataset('ascii', data=[b'one', b'', b'three'],
                         dtype=h5py.string_dtype('ascii'))
        g.create_dataset('int', data=[np.arange(3, dtype='<i4'), np.arange(0, dtype='<i4'),
                                      np.arange(5, dtype='<i4') - 2, np.array([2**31 - 1], '<i4')],
                         dtype=h5py.vlen_dtype(np.dtype('<i4')))
        rows = [np.linspace(0, 1, n) for n in (4, 1, 0, 7)]
        g.create_dataset('f8_be', data=[r.astype('>f8') for r in rows],
                         dtype=h5py.vlen_dtype(np.dtype('>f8')))
        empty_rows = g.create_dataset('all_rows_empty', shape=(3,),
                                      dtype=h5py.vlen_dtype(np.dtype('<i2')))
        for i in range(3):
            empty_rows[i] = np.arange(0, dtype='<i2')
        g.create_dataset('zero_rows', shape=(0,), maxshape=(None,), chunks=(4,),
                         dtype=h5py.vlen_dtype(np.dtype('<u8')))
        g.create_dataset('chunked_gzip', data=[np.arange(i % 13, dtype='<i8') for i in range(200)],
                         dtype=h5py.vlen_dtype(np.dtype('<i8')), chunks=(32,),
                         compression='gzip')

        g = f.create_group('shadow')
        g.create_dataset('y', data=np.arange(6, dtype='<i4'))
        g.create_dataset('y.npy', data=np.array([b'I am the real y.npy'], dtype='S32'))
        g.create_dataset('z', data=np.arange(4, dtype='<f8').reshape(2, 2))
        g.create_dataset('z.shape', data=np.array([1, 2, 3], dtype='<u1'))

        # Enough entries (3 per dataset) that readdir needs many replies.
        g = f.create_group('many')
        for i in range(MANY_DATASETS):
            g.create_dataset('d%04d' % i, data=np.array([i, -i], dtype='<i4'))
        g = f.create_group('/'.join(['deep'] + ['level%02d' % i for i in range(16)]))
        g.create_dataset('bottom', data=np.arange(3, dtype='<u8'))

        g = f.create_group('ünïcødé')
        g.create_dataset('温度', data=np.array([21.5, 22.0, 19.75], dtype='<f4'))
        g.create_dataset('naïve name', data=np.arange(4, dtype='<u2'))
        g.attrs['unité'] = 'degrés'

    with h5py.File(os.path.join(os.path.dirname(path), ext_name), 'w') as f:
        f.create_dataset('data', data=np.arange(8, dtype='<i2') * 11)
        f.create_group('grp').create_dataset('inner', data=np.arange(3, dtype='<f8'))
    return path


def add_attributes(obj):
    """One attribute of each kind the xattr contract names."""
    a = obj.attrs
    a['str_scalar'] = 'hello world'
    a['str_utf8'] = 'grüße 温度'
    a['str_fixed'] = np.bytes_(b'fixed')
    a['str_empty'] = ''
    a['int_scalar'] = np.int64(42)
    a['int_negative'] = np.int16(-7)
    a['uint64_max'] = np.uint64(2**64 - 1)
    a.create('int_bigendian', np.array(513, dtype='>i4'))
    a['float_scalar'] = np.float64(0.1)
    a['float_third'] = np.float64(1.0 / 3.0)
    a['float_big'] = np.float64(1.2345678901234567e300)
    a['float32'] = np.float32(1.1)
    a['float_negative_tiny'] = np.float64(-5e-324)
    a['int_1d'] = np.arange(5, dtype='<i4') - 1
    a['float_1d'] = np.array([0.5, 1e-300, -2.25, 1.0 / 3.0])
    a['int_2d'] = np.arange(6, dtype='<u2').reshape(2, 3)
    a['int_long'] = np.arange(3000, dtype='<i8') * 1000003     # ~30 KB of text
    a['float_2d'] = np.array([[1.5, -2.0], [0.1, 3.0e10], [7.0, 8.25]])
    a['str_array'] = np.array(['alpha', 'beta', 'gamma'], dtype=h5py.string_dtype())
    a['str_fixed_array'] = np.array([b'ab', b'cde', b'f'], dtype='S3')
    a.create('enum_scalar', 42, dtype=h5py.enum_dtype({'RED': 0, 'BLUE': 42}, basetype='<i2'))
    a['bool_true'] = np.bool_(True)
    a['bool_false'] = np.bool_(False)


def make_missing_filter(path):
    """A chunked dataset whose filter (id 32099) exists nowhere, between two good ones.

    HDF5 refuses to create a dataset with an unregistered *mandatory* filter, but accepts
    an optional one; H5Dwrite_chunk then stores chunks with filter_mask 0, so a reader
    must run filter 32099 to decode them, and cannot."""
    with h5py.File(path, 'w') as f:
        f.create_dataset('good', data=np.arange(100, dtype='<i4') * 2, chunks=(10,),
                         compression='gzip')
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((10,))
        dcpl.set_filter(MISSING_FILTER_ID, h5py.h5z.FLAG_OPTIONAL, (1, 2))
        ds = create_lowlevel(f, 'missing', h5py.h5t.STD_I32LE, (100,), dcpl,
                             maxshape=(h5py.h5s.UNLIMITED,))
        for i in range(10):
            chunk = np.arange(i * 10, i * 10 + 10, dtype='<i4')
            ds.id.write_direct_chunk((i * 10,), chunk.tobytes(), 0)
        f.create_dataset('good_after', data=np.linspace(0, 1, 50, dtype='<f8'))
    return path


CORRUPT_CHUNK_ELEMS = 16384   # 128 KiB of float64 per chunk
CORRUPT_NCHUNKS = 8
CORRUPT_INDEX = 3


def make_corrupt_chunk(path):
    """A gzip dataset of 8 chunks whose chunk 3 has garbage in the middle of its bytes."""
    n = CORRUPT_CHUNK_ELEMS * CORRUPT_NCHUNKS
    with h5py.File(path, 'w') as f:
        f.create_dataset('data', data=np.sin(np.arange(n) / 100.0), chunks=(CORRUPT_CHUNK_ELEMS,),
                         compression='gzip')
        f.create_dataset('other', data=np.arange(1000, dtype='<i4'))
        info = f['data'].id.get_chunk_info(CORRUPT_INDEX)
        offset, size = info.byte_offset, info.size
    with open(path, 'r+b') as fp:
        fp.seek(offset + size // 3)
        fp.write(bytes((37 * i + 11) % 256 for i in range(64)))
    return path


def make_corrupt_blosc(path):
    """A PyTables Blosc EArray whose chunk 2 has a ruined blosc header (sizes = 0xff..)."""
    with tables.open_file(path, 'w') as f:
        ea = f.create_earray('/', 'data', tables.Float64Atom(), (0, 1000),
                             filters=tables.Filters(5, 'blosc:lz4'), chunkshape=(16, 1000))
        append_signal(ea, 16 * CORRUPT_NCHUNKS, 1000, seed=5)
        f.create_array('/', 'other', np.arange(100, dtype='<i8'))
    with h5py.File(path, 'r') as f:
        info = f['data'].id.get_chunk_info(CORRUPT_INDEX)
        assert info.filter_mask == 0, 'chunk was stored raw, not as a blosc frame'
        offset = info.byte_offset
    with open(path, 'r+b') as fp:
        fp.seek(offset + 4)          # nbytes, blocksize, cbytes of the blosc header
        fp.write(b'\xff' * 12)
    return path


def make_cli_files(dirpath, source_h5):
    """Inputs for the error cases: a text file, a truncated and a damaged HDF5 file."""
    text = os.path.join(dirpath, 'notes.txt')
    with open(text, 'w') as fp:
        fp.write('this is not an HDF5 file\n' * 10)
    with open(source_h5, 'rb') as fp:
        blob = fp.read()
    truncated = os.path.join(dirpath, 'truncated.h5')
    with open(truncated, 'wb') as fp:
        fp.write(blob[:2000])
    badsuper = os.path.join(dirpath, 'badsuper.h5')
    damaged = bytearray(blob)
    # Keep the 8-byte signature, so the file still claims to be HDF5, but ruin the
    # superblock versions, sizes and addresses that follow it.
    damaged[8:56] = b'\xff' * 48
    with open(badsuper, 'wb') as fp:
        fp.write(bytes(damaged))
    return {'text': text, 'truncated': truncated, 'badsuper': badsuper}


# ---------------------------------------------------------------- files to write to

WRITE_COLS = 1000          # columns of /grow: one row is 8000 bytes of float64
WRITE_ROWS = 100           # rows of /grow
WRITE_CHUNK_ROWS = 16      # rows per chunk of /grow (128000 bytes)
WRITE_FILL = -7.5          # /grow's fill value: not 0, so fill cannot pass for zeroed memory


def make_writable(path):
    """The write tests' file (h5py, superblock v0 like PyTables'). Growable datasets:
    /grow (100 x 1000 <f8, chunks of 16 rows, fill -7.5), /grow_1d (50 <i4, fill 99),
    /grow_3d (4 x 5 x 6 <f4, fill 0.5), /grow_any (8 x 6 <i2, maxshape (None, None), fill -1),
    /limited (20 x 10 <i8, maxshape (50, 10), fill 7), /g/inner (10 x 3 >i4, fill 3).
    Datasets that cannot grow: /contiguous, /compact, /fixed_chunked (maxshape = shape).
    Read-only by type: /vlen (vlen of <i4)."""
    rng = np.random.default_rng(4)
    with h5py.File(path, 'w') as f:
        f.create_dataset('grow', data=rng.standard_normal((WRITE_ROWS, WRITE_COLS)),
                         maxshape=(None, WRITE_COLS), chunks=(WRITE_CHUNK_ROWS, WRITE_COLS),
                         fillvalue=WRITE_FILL)
        f.create_dataset('grow_1d', data=np.arange(50, dtype='<i4') * 3 - 20, maxshape=(None,),
                         chunks=(32,), fillvalue=99)
        f.create_dataset('grow_3d', data=np.arange(120, dtype='<f4').reshape(4, 5, 6) / 4,
                         maxshape=(None, 5, 6), chunks=(2, 5, 6), fillvalue=0.5)
        f.create_dataset('grow_any', data=np.arange(48, dtype='<i2').reshape(8, 6),
                         maxshape=(None, None), chunks=(4, 4), fillvalue=-1)
        f.create_dataset('limited', data=np.arange(200, dtype='<i8').reshape(20, 10),
                         maxshape=(50, 10), chunks=(8, 10), fillvalue=7)
        f.create_dataset('contiguous', data=np.arange(3000, dtype='<f8').reshape(30, 100) / 8)
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        ds = create_lowlevel(f, 'compact', h5py.h5t.STD_I32LE, (10, 20), dcpl)
        ds[...] = np.arange(200, dtype='<i4').reshape(10, 20) - 50
        f.create_dataset('fixed_chunked', data=np.arange(120, dtype='<u2').reshape(40, 3),
                         chunks=(8, 3))
        f.create_dataset('vlen', data=[np.arange(i % 5, dtype='<i4') + i for i in range(12)],
                         dtype=h5py.vlen_dtype(np.dtype('<i4')))
        g = f.create_group('g')
        g.create_dataset('inner', data=(np.arange(30).reshape(10, 3) * 1001).astype('>i4'),
                         maxshape=(None, 3), chunks=(4, 3), fillvalue=3)
    return path


def make_growable_earrays(path, rows=100):
    """Two PyTables EArrays of 1000 float64 columns to append to: /plain and /blosc5
    (Blosc level 5), each with `rows` rows of fixtures' signal already in them."""
    with tables.open_file(path, 'w', title='h5mount write fixtures') as f:
        plain = f.create_earray('/', 'plain', tables.Float64Atom(), (0, WRITE_COLS),
                                'plain EArray to append to')
        append_signal(plain, rows, WRITE_COLS, seed=7)
        blosc = f.create_earray('/', 'blosc5', tables.Float64Atom(), (0, WRITE_COLS),
                                'Blosc EArray to append to',
                                filters=tables.Filters(complevel=5, complib='blosc'))
        append_signal(blosc, rows, WRITE_COLS, seed=7)
    return path


def make_all(dirpath):
    paths = {
        'pytables': make_pytables(os.path.join(dirpath, 'tutorial.h5')),
        'types': make_types(os.path.join(dirpath, 'types.h5')),
        'missing_filter': make_missing_filter(os.path.join(dirpath, 'missing_filter.h5')),
        'corrupt': make_corrupt_chunk(os.path.join(dirpath, 'corrupt.h5')),
        'corrupt_blosc': make_corrupt_blosc(os.path.join(dirpath, 'corrupt_blosc.h5')),
    }
    paths['ext'] = os.path.join(dirpath, 'ext.h5')
    return paths


def main(argv):
    if len(argv) < 2:
        print('usage: fixtures.py OUTDIR [all|pytables|types|missing|corrupt|cli|big|writable]',
              file=sys.stderr)
        return 2
    out = argv[1]
    what = argv[2] if len(argv) > 2 else 'all'
    os.makedirs(out, exist_ok=True)
    if what == 'all':
        for k, v in make_all(out).items():
            print(k, v)
    elif what == 'pytables':
        print(make_pytables(os.path.join(out, 'tutorial.h5')))
    elif what == 'types':
        print(make_types(os.path.join(out, 'types.h5')))
    elif what == 'missing':
        print(make_missing_filter(os.path.join(out, 'missing_filter.h5')))
    elif what == 'corrupt':
        print(make_corrupt_chunk(os.path.join(out, 'corrupt.h5')))
    elif what == 'cli':
        print(make_cli_files(out, make_types(os.path.join(out, 'types.h5'))))
    elif what == 'big':
        print(make_big(os.path.join(out, 'big.h5')))
    elif what == 'writable':
        print(make_writable(os.path.join(out, 'writable.h5')))
        print(make_growable_earrays(os.path.join(out, 'earrays.h5')))
    else:
        print('unknown fixture set: ' + what, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
