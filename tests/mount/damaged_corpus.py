"""Writes a corpus of damaged HDF5 files: a few small real files (h5py and PyTables) and
mutated copies of them made with a fixed seed. It checks nothing itself; test_damaged.py
mounts every variant. Run it by hand to keep the files:

    /usr/bin/python3 tests/mount/damaged_corpus.py OUTDIR [COUNT] [SEED]

Mutations: byte flips, runs of random bytes, truncations, a block copied over another
place, "interesting" integers (0, 2^31, 2^32-1, 2^40, ...) over an aligned word, and in
the global heaps (GCOL collections) the collection and object sizes and the lengths of the
variable-length descriptors that point into them.
"""

import os
import random
import sys

import numpy as np
import h5py
import tables

DEFAULT_SEED = 20261125


def make_h5py_base(path, latest=False):
    """Groups, links, attributes of many types (vlen strings and arrays among them), a
    vlen int and a vlen string dataset, chunked gzip and contiguous datasets."""
    kw = {'libver': 'latest'} if latest else {}
    with h5py.File(path, 'w', **kw) as f:
        f.attrs['title'] = 'damaged corpus base'
        f.attrs['answer'] = np.int64(42)
        f.attrs['vlen_strings'] = np.array(['alpha', 'beta', 'gamma'], dtype=h5py.string_dtype())
        f.attrs.create('vlen_ints', np.array([np.arange(3), np.arange(5)], dtype=object),
                       dtype=h5py.vlen_dtype(np.int32))
        f.attrs['floats'] = np.linspace(0, 1, 7)
        g = f.create_group('grp')
        for i in range(12 if latest else 4):   # over 8: dense attribute storage with 'latest'
            g.attrs['a%02d' % i] = 'value %d' % i
        g.attrs['matrix'] = np.arange(12, dtype='<i2').reshape(3, 4)
        sub = g.create_group('sub')
        sub.attrs['s'] = np.bytes_(b'fixed')
        sub.create_dataset('contig', data=np.arange(64, dtype='<i4'))
        gz = f.create_dataset('gz', data=np.arange(2000, dtype='<f8'), chunks=(250,), compression='gzip')
        gz.attrs['unit'] = 'm/s'
        vi = f.create_dataset('vlen_int', (40,), dtype=h5py.vlen_dtype(np.int32))
        for i in range(40):
            vi[i] = np.arange(i % 7, dtype=np.int32) + i
        vi.attrs['rows'] = np.int32(40)
        vs = f.create_dataset('vlen_str', (30,), dtype=h5py.string_dtype())
        vs[:] = ['row %d %s' % (i, 'x' * (i % 5)) for i in range(30)]
        f.create_dataset('scalar', data=np.float64(3.5))
        f.create_dataset('grid', data=np.arange(120, dtype='<u2').reshape(10, 12), chunks=(5, 6))
        f['soft'] = h5py.SoftLink('/grp/sub/contig')
        f['ext'] = h5py.ExternalLink('other.h5', '/x')
        for i in range(20 if latest else 3):   # many links: a dense link index with 'latest'
            f.create_group('many/g%02d' % i)
    return path


def make_pytables_base(path):
    """A Blosc EArray, a gzip CArray, a Table and a VLArray with PyTables' attributes."""
    with tables.open_file(path, 'w', title='damaged corpus') as f:
        f.root._v_attrs.note = 'pytables base'
        ea = f.create_earray('/', 'ea', tables.Float64Atom(), (0, 16),
                             filters=tables.Filters(5, 'blosc:lz4'), chunkshape=(32, 16))
        ea.append(np.sin(np.arange(100 * 16).reshape(100, 16) / 10.0))
        f.create_carray('/', 'ca', obj=np.arange(400, dtype='<i4').reshape(20, 20),
                        chunkshape=(10, 10), filters=tables.Filters(3, 'zlib'))

        class Row(tables.IsDescription):
            a = tables.Int32Col()
            b = tables.Float64Col()
            s = tables.StringCol(6)
        t = f.create_table('/', 'table', Row, chunkshape=(16,))
        r = t.row
        for i in range(50):
            r['a'], r['b'], r['s'] = i, i / 3.0, b'r%d' % i
            r.append()
        t.flush()
        vl = f.create_vlarray('/', 'vl', tables.Int16Atom(), chunkshape=(8,))
        for i in range(20):
            vl.append(np.arange(i, dtype=np.int16))
    return path


INTERESTING = [0, 1, 0x7f, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
               1 << 32, 1 << 40, (1 << 63) - 1, (1 << 64) - 1]


def _gcol_offsets(data):
    """Offsets of the global heap collections ('GCOL') in data."""
    out, i = [], data.find(b'GCOL')
    while i >= 0:
        out.append(i)
        i = data.find(b'GCOL', i + 1)
    return out


def _vlen_descriptor_offsets(path):
    """File offsets of the vlen descriptors (4-byte length, 8-byte heap address, 4-byte
    index) of the contiguous vlen datasets of an h5py base file, or []."""
    out = []
    try:
        with h5py.File(path, 'r') as f:
            for name in ('vlen_int', 'vlen_str'):
                if name in f:
                    off = f[name].id.get_offset()
                    if off is not None:
                        out += [off + 16 * i for i in range(f[name].shape[0])]
    except Exception:
        pass
    return out


def mutate(data, rng, kind, vlen_offsets):
    """One mutated copy of data (bytes) by mutation `kind`."""
    b = bytearray(data)
    n = len(b)
    if kind == 'flip':
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
    elif kind == 'random':
        at, k = rng.randrange(n), rng.randint(4, 32)
        b[at:at + k] = bytes(rng.randrange(256) for _ in range(k))
        del b[n:]
    elif kind == 'truncate':
        del b[rng.randrange(64, n):]
    elif kind == 'copy':
        k = rng.randint(16, 256)
        src, dst = rng.randrange(n - k), rng.randrange(n - k)
        b[dst:dst + k] = data[src:src + k]
    elif kind == 'word':
        width = rng.choice((2, 4, 8))
        at = rng.randrange(0, n - width) & ~(width - 1)
        v = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
        b[at:at + width] = v.to_bytes(width, 'little')
    elif kind == 'gheap':
        heaps = _gcol_offsets(data)
        if not heaps:
            return mutate(data, rng, 'flip', vlen_offsets)
        h = rng.choice(heaps)
        if rng.random() < 0.3:   # the collection size (8 bytes after signature, version, reserved)
            b[h + 8:h + 16] = rng.choice(INTERESTING).to_bytes(8, 'little')
        else:                    # an object's size field: objects start at h + 16
            obj = h + 16 + 16 * rng.randrange(4) + rng.choice((0, 8, 24))
            if obj + 16 <= n:
                b[obj + 8:obj + 16] = rng.choice(INTERESTING).to_bytes(8, 'little')
    elif kind == 'vlen':
        if not vlen_offsets:
            return mutate(data, rng, 'gheap', vlen_offsets)
        d = rng.choice(vlen_offsets)
        field = rng.choice(('len', 'len', 'addr', 'index'))
        if field == 'len':
            b[d:d + 4] = (rng.choice(INTERESTING) & 0xffffffff).to_bytes(4, 'little')
        elif field == 'addr':
            b[d + 4:d + 12] = rng.choice(INTERESTING).to_bytes(8, 'little')
        else:
            b[d + 12:d + 16] = (rng.choice(INTERESTING) & 0xffffffff).to_bytes(4, 'little')
    return bytes(b)


KINDS = ['flip', 'flip', 'random', 'truncate', 'copy', 'word', 'word', 'gheap', 'vlen']


def make_bases(dirpath):
    """The unmutated base files; returns their paths."""
    return [make_h5py_base(os.path.join(dirpath, 'base-h5py.h5')),
            make_h5py_base(os.path.join(dirpath, 'base-latest.h5'), latest=True),
            make_pytables_base(os.path.join(dirpath, 'base-pytables.h5'))]


def make_corpus(dirpath, count, seed=DEFAULT_SEED):
    """Writes the bases and `count` variants (round-robin over the bases) to dirpath;
    returns a list of (variant path, description)."""
    rng = random.Random(seed)
    bases = make_bases(dirpath)
    blobs = [open(p, 'rb').read() for p in bases]
    vlens = [_vlen_descriptor_offsets(p) for p in bases]
    out = []
    for i in range(count):
        k = i % len(bases)
        kind = KINDS[rng.randrange(len(KINDS))]
        data = mutate(blobs[k], rng, kind, vlens[k])
        path = os.path.join(dirpath, 'v%04d-%s-%s.h5' % (i, os.path.basename(bases[k])[5:-3], kind))
        with open(path, 'wb') as fp:
            fp.write(data)
        out.append((path, '%s of %s' % (kind, os.path.basename(bases[k]))))
    return out


if __name__ == '__main__':
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    s = int(sys.argv[3]) if len(sys.argv) > 3 else DEFAULT_SEED
    for p, d in make_corpus(outdir, n, s):
        print(p, d)
