"""Conformance walk: every fixture file the mount tests build, every dataset and attribute,
compared with what h5py reads.

For each file (mounted read-only) and every group reached by hard links:
- each dataset h5py sees is either shown, with its three views agreeing with h5py (`x`
  holds the bytes after `x.npy`'s header; np.load(`x.npy`) holds h5py's values, with the
  array type's dims appended to the shape; `x.shape` is that shape as text; variable-length
  datasets: the rows cut from the flat array by `x.offsets`), or it is one of the kinds the
  README leaves out (hidden_reason below), never both and never neither;
- each attribute's xattr text is exactly what the README's rule gives for h5py's value
  (expected_text below: floats in the fewest digits numpy's shortest repr gives in the
  attribute's own precision, which must also read back as the same value).
Fixtures: the builders of fixtures.py and of test_conformance, test_filters, test_journal
test_text and test_names (h5py, PyTables, h5jam, h5repack, ncgen), not the damaged or big ones.
Datasets h5py cannot read (a missing filter) must fail to read on the mount too; fill time
"never" datasets are compared in shape only (h5py reads garbage there; test_conformance
checks their values). Usage:

    /usr/bin/python3 tests/mount/test_walk.py build/h5mount
"""

import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402

import fixtures             # noqa: E402
import harness              # noqa: E402
from harness import read_file   # noqa: E402

FILES = {}      # label -> path of a fixture file
NAME_MAX = 255
TOOLS = ('h5jam', 'h5repack', 'ncgen')


def build_fixtures():
    import tables
    import test_conformance
    import test_filters
    import test_journal
    import test_text
    d = harness.workdir()
    j = lambda name: os.path.join(d, name)      # noqa: E731
    FILES.update({k: v for k, v in fixtures.make_all(d).items()
                  if k not in ('corrupt', 'corrupt_blosc')})
    FILES['writable'] = fixtures.make_writable(j('writable.h5'))
    FILES['earrays'] = fixtures.make_growable_earrays(j('earrays.h5'))
    FILES['userblock'], FILES['jammed'] = test_conformance.make_userblock(d)
    FILES['nofill'], FILES['nofill_repack'], FILES['never_h5py'] = test_conformance.make_nofill(d)
    FILES['odd'], FILES['nbit'] = test_conformance.make_odd_ints(d)
    FILES['journal'] = test_journal.make_fixture(j('journal.h5')) or j('journal.h5')
    FILES['lzf'] = test_filters.make_h5py_lzf(j('lzf.h5'))
    if all(tables.which_lib_version(lib) for lib in ('lzo', 'bzip2')):
        # h5py reads them through the filters PyTables registered in this process.
        FILES['lzo_bzip2'] = test_filters.make_pytables(j('lzo_bzip2.h5'))
    test_text.setUpModule()         # h5py, ncgen and h5repack fixtures of test_text
    for k, v in test_text.FIX.items():
        FILES['text_' + k] = v
    import test_names
    test_names.setUpModule()        # hard-linked groups, null/time/multi-dim vlen, ncgen types
    for k in ('links', 'kinds', 'nc'):
        FILES['names_' + k] = test_names.FIX[k]


# ------------------------------------------------------------------ hidden kinds

def _classes(tid, top=True):
    """Yields (class, type id, at top level) for tid and every type nested in it."""
    cls = tid.get_class()
    yield cls, tid, top
    if cls == h5py.h5t.COMPOUND:
        for i in range(tid.get_nmembers()):
            yield from _classes(tid.get_member_type(i), False)
    elif cls in (h5py.h5t.ARRAY, h5py.h5t.VLEN, h5py.h5t.ENUM):
        yield from _classes(tid.get_super(), False)


def hidden_reason(name, ds):
    """Why the README leaves dataset `ds` (link name `name`) out of its directory, or None.
    Kept in step with README "Types" and "Links and names"."""
    if len(name.encode()) > NAME_MAX:
        return 'name longer than 255 bytes'
    if name in ('.', '..'):
        return 'a member named . or .. (no file name can be)'
    tid = ds.id.get_type()
    top = tid.get_class()
    for cls, t, at_top in _classes(tid):
        if cls == h5py.h5t.REFERENCE:
            return 'references have no byte form'
        if cls == h5py.h5t.VLEN and not at_top:
            return 'variable-length data nested inside another type'
        if cls == h5py.h5t.STRING and t.is_variable_str() and not at_top:
            return 'variable-length strings nested inside another type'
        if cls == h5py.h5t.ARRAY and t.get_super().get_class() == h5py.h5t.ARRAY:
            return 'nested array types'
        if cls in (h5py.h5t.INTEGER, h5py.h5t.BITFIELD) and t.get_size() > 8 and \
                (not hasattr(t, 'get_precision') or t.get_precision() > 64):
            return 'integers of more than 64 bits'
        if cls == h5py.h5t.COMPOUND and t.get_nmembers() == 0:
            return 'compound without members'
    if top == h5py.h5t.VLEN and tid.get_super().get_class() == h5py.h5t.ARRAY:
        return 'variable-length arrays of array types'
    return None


# ------------------------------------------------------------------ dataset views

def check_views(mnt, path, ds, siblings):
    """Compares x, x.npy, x.shape (and x.offsets) of a shown dataset with h5py."""
    leaf = path.rsplit('/', 1)[-1]
    base = mnt.p(path)
    tid = ds.id.get_type()
    vlen = tid.get_class() == h5py.h5t.VLEN or \
        (tid.get_class() == h5py.h5t.STRING and tid.is_variable_str())
    arr = None
    if ds.id.get_space().get_simple_extent_type() == h5py.h5s.NULL:
        # README: an empty x, an empty x.shape, and no x.npy.
        if read_file(base) != b'' or read_file(base + '.shape') != b'' or \
                os.path.lexists(base + '.npy'):
            raise AssertionError('null dataspace: x, x.shape not empty or x.npy shown')
        return
    try:
        want = ds[()]
    except OSError:
        # h5py cannot read it (a missing filter): neither may the mount.
        if harness.errno_of(read_file, base) is None:
            raise AssertionError('h5py cannot read it, yet the mount can')
        return
    except TypeError:
        want = None
    if leaf + '.npy' not in siblings:
        arr = np.load(base + '.npy')
    if want is None:
        # A type numpy lacks (a 3-byte integer): HDF5 converts to the served type, as
        # h5py does when given that memory type. HDF5 has no conversion for arrays of
        # them: test_conformance checks those against h5dump.
        if arr is None or vlen:
            return
        want = np.zeros(arr.shape[:ds.ndim], dtype=np.dtype((arr.dtype, arr.shape[ds.ndim:])))
        try:
            ds.id.read(h5py.h5s.ALL, h5py.h5s.ALL, want, mtype=h5py.h5t.py_create(want.dtype))
        except OSError:
            arr = None
    raw = read_file(base)
    if arr is not None:
        off = harness.npy_data_offset(base + '.npy')
        harness.assert_bytes_equal(read_file(base + '.npy')[off:], raw, path + ': x vs x.npy')
    plist = ds.id.get_create_plist()
    if plist.get_fill_time() == h5py.h5d.FILL_TIME_NEVER:
        arr = None      # h5py reads garbage where nothing was written (test_conformance)
    if vlen:
        # Rows are the elements in C order, whatever the rank; x.shape gives the dims.
        if ds.ndim == 1:
            rows = want
        else:
            rows = np.empty(max(ds.size, 1) if ds.ndim else 1, dtype=object)
            if ds.ndim == 0:
                rows[0] = want
            else:
                rows[:] = list(np.asarray(want, dtype=object).reshape(-1))
        offsets = np.frombuffer(read_file(base + '.offsets'), '<i8')
        if len(offsets) != len(rows) + 1:
            raise AssertionError('%d offsets for %d rows' % (len(offsets), len(rows)))
        shape = tuple(ds.shape) if ds.ndim != 1 else (len(rows),)
        for i, row in enumerate(rows):
            a, b = int(offsets[i]), int(offsets[i + 1])
            if tid.get_class() == h5py.h5t.STRING:
                wb = row if isinstance(row, bytes) else str(row).encode()
                if raw[a:b] != wb:
                    raise AssertionError('row %d: %r, h5py %r' % (i, raw[a:b], wb))
            elif arr is not None and not harness.values_equal(
                    arr[a:b], harness._vlen_row(row, arr.dtype)):
                raise AssertionError('row %d differs from h5py' % i)
    else:
        shape = np.load(base + '.npy', mmap_mode='r').shape if leaf + '.npy' not in siblings \
            else tuple(ds.shape)
        w = np.asarray(want)
        if arr is not None and (w.shape != shape or not harness.values_equal(arr, w)):
            raise AssertionError('np.load gives %r %r, h5py %r %r'
                                 % (arr.dtype, arr.shape, w.dtype, w.shape))
    if leaf + '.shape' not in siblings:
        text = read_file(base + '.shape')
        if text != harness.shape_text(shape):
            raise AssertionError('.shape %r, .npy shape %r' % (text, shape))


# ------------------------------------------------------------------ attribute text

def digits_exp(v):
    """The shortest digits (as numpy's repr finds them) and decimal exponent of float v."""
    s = np.format_float_scientific(v, unique=True, trim='-')
    mant, exp = s.lstrip('-').split('e')
    digits = mant.replace('.', '').rstrip('0') or '0'
    return digits, int(exp)


def float_text(v):
    """README: fewest digits that read back in v's own precision, Python's repr layout."""
    if np.isnan(v):
        return 'nan'
    if np.isinf(v):
        return '-inf' if v < 0 else 'inf'
    digits, exp = digits_exp(v)
    sign = '-' if np.signbit(v) else ''
    if exp >= 16 or exp < -4:
        m = digits[0] + ('.' + digits[1:] if len(digits) > 1 else '')
        return '%s%se%s%02d' % (sign, m, '-' if exp < 0 else '+', abs(exp))
    if exp < 0:
        return sign + '0.' + '0' * (-exp - 1) + digits
    if exp + 1 >= len(digits):
        return sign + digits + '0' * (exp + 1 - len(digits)) + '.0'
    return sign + digits[:exp + 1] + '.' + digits[exp + 1:]


def quoted(b):
    out = ["'"]
    for c in b:
        if c in (0x27, 0x5c):
            out.append('\\' + chr(c))
        elif c < 0x20 or c == 0x7f:
            out.append('\\x%02x' % c)
        else:
            out.append(None)
            out[-1] = bytes([c])
    return b''.join(x if isinstance(x, bytes) else x.encode() for x in out) + b"'"


def as_bytes(s):
    return s if isinstance(s, bytes) else str(s).encode('utf-8')


class Oracle:
    """The README text of one attribute's values, from h5py's reading of them."""

    def __init__(self, f, tid):
        self.f = f
        self.tid = tid

    def elem(self, v, tid, quote):
        cls = tid.get_class()
        if cls == h5py.h5t.STRING:
            if isinstance(v, bytes):        # fixed strings: up to the first NUL
                v = v.split(b'\0', 1)[0]
            return quoted(as_bytes(v)) if quote else as_bytes(v)
        if cls in (h5py.h5t.INTEGER, h5py.h5t.BITFIELD):
            return str(int(v)).encode()
        if cls == h5py.h5t.FLOAT:
            return float_text(np.asarray(v)[()]).encode()
        if cls == h5py.h5t.ENUM:
            names = {tid.get_member_value(i): tid.get_member_name(i)
                     for i in range(tid.get_nmembers())}
            iv = int(v)
            return names.get(iv, str(iv).encode())
        if cls == h5py.h5t.COMPOUND:
            parts = []
            for i in range(tid.get_nmembers()):
                n = tid.get_member_name(i)
                mt = tid.get_member_type(i)
                if np.iscomplexobj(v):
                    mv = v.real if n == b'r' else v.imag
                else:
                    mv = v[n.decode()]
                parts.append(n + b': ' + self.elem(mv, mt, True))
            return b'{' + b', '.join(parts) + b'}'
        if cls == h5py.h5t.ARRAY:
            return self.nested(np.asarray(v), tid.get_super())
        if cls == h5py.h5t.VLEN:
            return b'[' + b' '.join(self.elem(x, tid.get_super(), True) for x in v) + b']'
        if cls == h5py.h5t.OPAQUE:
            return bytes(np.asarray(v).tobytes()).hex().encode()
        if cls == h5py.h5t.REFERENCE:
            name = self.f[v].name.encode() if v else b''
            return quoted(name) if quote else name
        raise AssertionError('no README rule for HDF5 type class %d' % cls)

    def nested(self, a, base):
        if a.ndim == 0:
            return self.elem(a[()], base, True)
        return b'[' + b' '.join(self.nested(x, base) for x in a) + b']'

    def text(self, val):
        tid = self.tid
        a = np.asarray(val) if not isinstance(val, (bytes, str)) else None
        while tid.get_class() == h5py.h5t.ARRAY:      # array dims join the shape
            tid = tid.get_super()
        if a is None or a.ndim == 0:
            return self.elem(val if a is None else a[()], tid, False)
        rows = a.reshape(-1, a.shape[-1]) if a.shape[-1] else a.reshape(0, 0)
        return b'\n'.join(b' '.join(self.elem(x, tid, True) for x in row) for row in rows)


def expected_text(f, obj, name):
    aid = obj.attrs.get_id(name)
    if aid.shape is None or 0 in aid.shape:
        return b''
    tid = aid.get_type()
    val = obj.attrs[name]
    # h5py reads a float16/float32 to its own numpy type; keep that precision per element.
    return Oracle(f, tid).text(val)


def check_float_tokens(got, obj, name):
    """Every float token of a float attribute reads back as the stored value."""
    val = np.asarray(obj.attrs[name])
    if val.dtype.kind != 'f' or val.size == 0:
        return
    toks = got.replace(b'\n', b' ').split(b' ')
    back = np.array([val.dtype.type(t.decode()) for t in toks], dtype=val.dtype)
    if not np.array_equal(back, val.ravel(), equal_nan=True):
        raise AssertionError('%r does not read back as %r' % (got, val.ravel()))


# ------------------------------------------------------------------ the walk

def walk(label, h5path):
    failures = []
    seen = [0, 0]       # datasets shown, attributes checked
    with h5py.File(h5path, 'r') as f, harness.Mount(h5path, ['-o', 'ro']) as mnt:
        for gpath, grp, entries in harness.walk_groups(f):
            objs = [(gpath, grp)]
            names = {e.name for e in entries}
            for e in entries:
                link = grp.get(e.name, getlink=True)
                if not isinstance(link, h5py.HardLink):
                    continue
                obj = grp[e.name]
                if not isinstance(obj, h5py.Dataset):
                    continue
                reason = hidden_reason(e.name, obj)
                # '.' and '..' always exist as paths; only a listing can show such a member.
                shown = os.path.lexists(mnt.p(e.path)) if e.name not in ('.', '..') else \
                    e.name in os.listdir(mnt.p(gpath))
                where = '%s:%s' % (label, e.path)
                if reason is None and not shown:
                    failures.append('%s: h5py sees it, the mount does not, and it is no '
                                    'hidden kind' % where)
                elif reason is not None and shown:
                    failures.append('%s: shown although README hides it (%s)' % (where, reason))
                if not shown:
                    continue
                objs.append((e.path, obj))
                seen[0] += 1
                try:
                    check_views(mnt, e.path, obj, names)
                except (AssertionError, OSError, ValueError, TypeError) as err:
                    failures.append('%s: %s' % (where, err))
            for opath, obj in objs:
                target = mnt.p(opath)
                try:
                    listed = set(os.listxattr(target))
                except OSError as err:
                    failures.append('%s:%s: listxattr: %s' % (label, opath, err))
                    continue
                for name in obj.attrs:
                    where = '%s:%s@%s' % (label, opath, name)
                    if len(('user.' + name).encode()) > NAME_MAX:
                        continue
                    if 'user.' + name not in listed:
                        failures.append('%s: not listed' % where)
                        continue
                    seen[1] += 1
                    try:
                        got = os.getxattr(target, 'user.' + name)
                        want = expected_text(f, obj, name)
                        if got != want:
                            raise AssertionError('xattr %r, README rule gives %r'
                                                 % (got[:200], want[:200]))
                        check_float_tokens(got, obj, name)
                    except (AssertionError, OSError, ValueError, KeyError) as err:
                        failures.append('%s: %s' % (where, err))
    return seen, failures


class Walk(unittest.TestCase):
    def test_every_fixture_dataset_and_attribute_matches_h5py(self):
        failures = []
        datasets = attrs = 0
        for label, path in sorted(FILES.items()):
            with self.subTest(label):
                (d, a), fl = walk(label, path)
                datasets += d
                attrs += a
                failures.extend(fl)
        print('%d files, %d datasets, %d attributes' % (len(FILES), datasets, attrs))
        self.assertGreater(datasets, 1000)
        self.assertGreater(attrs, 200)
        self.assertEqual(failures, [], '\n'.join(failures[:60]))


def setUpModule():
    build_fixtures()


if __name__ == '__main__':
    harness.run_tests(tools=TOOLS)
