"""Mounts h5mount for the integration tests and states what each mounted path must hold.

What it does: a `Mount` context manager (background `h5mount -f`, deadline-polled mount,
`fusermount3 -u` cleanup that always runs; the process handling is mounting.py's, shared with
contrib/bench/bench.py), the expected bytes/npy/shape/listing/xattr
of every HDF5 object computed from h5py (cross-checked against h5py's and PyTables' own
reads), `check_*` helpers that compare a mounted path with those expectations, and
`run_tests()`, the entry point shared by the test scripts (skip = exit 77).
What it does not: generate fixtures (fixtures.py) or decide which behaviours are tested.
"""

import ast
import errno
import io
import mmap
import os
import posixpath
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import tables   # noqa: F401  (registers Blosc in libhdf5 so h5py can read it in-process)
import h5py

from mounting import MOUNT_TIMEOUT, POLL, DaemonError, is_mounted, vm_hwm  # noqa: F401
import mounting

MiB = 1 << 20

EXE = None                # path of the h5mount binary, set by run_tests()
_WORKDIR = None           # per-script scratch directory, removed at exit


# ------------------------------------------------------------------ scratch space

def workdir():
    """The script's temporary directory (created on first use, removed by run_tests)."""
    global _WORKDIR
    if _WORKDIR is None:
        _WORKDIR = tempfile.mkdtemp(prefix='h5mount-test-')
    return _WORKDIR


def new_mountpoint():
    return tempfile.mkdtemp(prefix='mnt-', dir=workdir())


# ------------------------------------------------------------------ mounting (mounting.py)

def _term_when_parent_dies():
    """preexec_fn for daemons a test starts itself: mounting.die_with_parent."""
    mounting.die_with_parent()


def fusermount_unmount(mnt):
    """Unmounts mnt with `fusermount3 -u`, falling back to a lazy `-uz`. Returns the
    (returncode, stderr) of the last attempt."""
    return mounting.fusermount_unmount(mnt)[1]


class Mount(mounting.Daemon):
    """`with Mount(h5file) as m:` mounts h5file at m.path with `h5mount -f`.

    Waits up to MOUNT_TIMEOUT s (polling every 0.1 s) for the mount and raises DaemonError
    with the daemon's stderr if the daemon exits first. On exit it always unmounts with
    fusermount3 -u (then -uz), waits for the daemon and, unless the body already raised,
    asserts that the daemon exited with status 0."""

    def __init__(self, h5file, opts=(), mountpoint=None, exe=None, foreground=True):
        super().__init__(mountpoint or new_mountpoint())
        self.h5file = h5file
        self.opts = list(opts)
        self.exe = exe or EXE
        self.foreground = foreground
        # Without -f the process started is the launcher, whose status is not the daemon's.
        self.check_status = foreground

    @property
    def argv(self):
        return [self.exe] + (['-f'] if self.foreground else []) + self.opts + \
            [self.h5file, self.path]

    def mounted(self):
        # os.path.ismount stats the mount point, so the daemon is serving requests too.
        return os.path.ismount(self.path)

    def start(self):
        fd, self.logpath = tempfile.mkstemp(prefix='h5mount-stderr-', dir=workdir())
        os.close(fd)
        return super().start()

    def stderr_text(self):
        return self.log_text()

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        problem = self.cleanup()
        if problem and exc_type is None:
            raise DaemonError('%s (mount of %s)\nstderr:\n%s'
                              % (problem, self.h5file, self.stderr_text()))
        return False

    # helpers for tests
    def p(self, *parts):
        """Mounted path of HDF5 path parts ('a/b', 'x.npy' ...)."""
        return os.path.join(self.path, *[q.strip('/') for q in parts if q.strip('/')])


class MountsCase(unittest.TestCase):
    """A test case that mounts self.h5 (set by the subclass's setUp) as often as it likes:
    every mount is cleaned up at tearDown; unmount() asserts a clean unmount."""

    def setUp(self):
        self.mounts = []

    def tearDown(self):
        for m in self.mounts:
            m.cleanup()

    def mount(self, *opts):
        m = Mount(self.h5, list(opts))
        self.mounts.append(m)
        return m.start()

    def unmount(self, m):
        problem = m.cleanup()
        self.assertIsNone(problem, m.stderr_text())


def mount_for_class(cls, h5file, opts=('-o', 'ro')):
    """For a TestCase's setUpClass: mounts h5file (Mount options `opts`) and returns the
    Mount, with a class cleanup that unmounts it and raises DaemonError, quoting the daemon's
    stderr, when the daemon did not unmount and exit cleanly."""
    mnt = Mount(h5file, opts)

    def unmount():
        problem = mnt.cleanup()
        if problem:
            raise DaemonError('%s\ndaemon stderr:\n%s' % (problem, mnt.stderr_text()))
    cls.addClassCleanup(unmount)
    return mnt.start()


def _on_signal(signum, frame):
    mounting.cleanup_all()
    raise SystemExit(128 + signum)


# ------------------------------------------------------------------ HDF5 type -> npy

class Absent(Exception):
    """The object must not be listed (references, vlen in compounds, null dataspaces)."""


class Unspecified(Exception):
    """The contract says nothing about this type; tests must not assert on it."""


def _int_dtype(tid):
    size = tid.get_size()
    if size not in (1, 2, 4, 8):
        raise Unspecified('integer of %d bytes' % size)
    kind = 'i' if tid.get_sign() == h5py.h5t.SGN_2 else 'u'
    order = '|' if size == 1 else ('>' if tid.get_order() == h5py.h5t.ORDER_BE else '<')
    return np.dtype('%s%s%d' % (order, kind, size))


def _is_bool_enum(tid):
    if tid.get_nmembers() != 2 or tid.get_size() != 1:
        return False
    members = {tid.get_member_name(i): tid.get_member_value(i) for i in range(2)}
    return members == {b'FALSE': 0, b'TRUE': 1}


def _complex_dtype(tid):
    """c8/c16 if tid is the {r, i} compound both libraries write for complex, else None."""
    if tid.get_nmembers() != 2:
        return None
    names = [tid.get_member_name(i) for i in range(2)]
    if names != [b'r', b'i']:
        return None
    t0, t1 = tid.get_member_type(0), tid.get_member_type(1)
    if t0.get_class() != h5py.h5t.FLOAT or t1.get_class() != h5py.h5t.FLOAT:
        return None
    size = t0.get_size()
    if size not in (4, 8) or t1.get_size() != size or t0.get_order() != t1.get_order():
        return None
    if tid.get_member_offset(0) != 0 or tid.get_member_offset(1) != size or \
            tid.get_size() != 2 * size:
        return None
    return np.dtype('%sc%d' % ('>' if t0.get_order() == h5py.h5t.ORDER_BE else '<', 2 * size))


def npy_dtype(tid):
    """The npy dtype the daemon must serve for an element of HDF5 type tid (fixed-size
    types only). Raises Absent for types that hide the dataset, Unspecified otherwise."""
    cls = tid.get_class()
    if cls == h5py.h5t.INTEGER:
        return _int_dtype(tid)
    if cls == h5py.h5t.FLOAT:
        size = tid.get_size()
        if size not in (2, 4, 8):
            raise Unspecified('float of %d bytes' % size)
        return np.dtype('%sf%d' % ('>' if tid.get_order() == h5py.h5t.ORDER_BE else '<', size))
    if cls == h5py.h5t.BITFIELD:
        if tid.get_size() == 1:
            return np.dtype('|b1')      # PyTables' bool
        raise Unspecified('bitfield of %d bytes' % tid.get_size())
    if cls == h5py.h5t.ENUM:
        if _is_bool_enum(tid):
            return np.dtype('|b1')      # h5py's bool
        return _int_dtype(tid.get_super())
    if cls == h5py.h5t.STRING:
        if tid.is_variable_str():
            raise Absent('variable-length string inside a fixed type')
        return np.dtype('S%d' % tid.get_size())
    if cls == h5py.h5t.OPAQUE:
        return np.dtype('V%d' % tid.get_size())
    if cls == h5py.h5t.ARRAY:
        return np.dtype((npy_dtype(tid.get_super()), tuple(tid.get_array_dims())))
    if cls == h5py.h5t.COMPOUND:
        cdt = _complex_dtype(tid)
        if cdt is not None:
            return cdt
        n = tid.get_nmembers()
        return np.dtype({'names': [tid.get_member_name(i).decode('utf-8') for i in range(n)],
                         'formats': [npy_dtype(tid.get_member_type(i)) for i in range(n)],
                         'offsets': [tid.get_member_offset(i) for i in range(n)],
                         'itemsize': tid.get_size()})
    if cls in (h5py.h5t.REFERENCE, h5py.h5t.VLEN):
        raise Absent('reference or variable-length member')
    raise Unspecified('HDF5 type class %d' % cls)


def shape_text(dims):
    return (' '.join(str(d) for d in dims) + '\n').encode()


class Expected:
    """What the views of one dataset must contain.

    kind 'fixed': raw (bytes of x), dtype/npy_shape (x.npy), dims (x.shape).
    kind 'vlen': raw (flat values), offsets (x.offsets bytes), dtype/npy_shape (flat 1-D),
    dims = (rows,), rows (list of per-row arrays/bytes for semantic checks)."""

    def __init__(self, path, kind, raw, dtype, npy_shape, dims, offsets=None, rows=None):
        self.path = path
        self.kind = kind
        self.raw = raw
        self.dtype = dtype
        self.npy_shape = tuple(npy_shape)
        self.dims = tuple(dims)
        self.offsets = offsets
        self.rows = rows
        self.shadowed = set()   # view names taken by real sibling datasets (not checked)

    @property
    def array(self):
        count = int(np.prod(self.npy_shape, dtype=np.int64))
        return np.frombuffer(self.raw, dtype=self.dtype, count=count).reshape(self.npy_shape)

    def views(self):
        names = [self.leaf, self.leaf + '.npy', self.leaf + '.shape']
        if self.kind == 'vlen':
            names.append(self.leaf + '.offsets')
        return names

    @property
    def leaf(self):
        return posixpath.basename(self.path)


def dataset_kind(ds):
    """'fixed' or 'vlen' for a listed dataset; raises Absent/Unspecified. (Null dataspaces
    are entries of kind 'null', see group_entries.)"""
    if ds.id.get_space().get_simple_extent_type() == h5py.h5s.NULL:
        raise Unspecified('null dataspace')
    tid = ds.id.get_type()
    cls = tid.get_class()
    if cls == h5py.h5t.VLEN or (cls == h5py.h5t.STRING and tid.is_variable_str()):
        if ds.ndim == 0:
            raise Unspecified('variable-length scalar')
        if cls == h5py.h5t.VLEN:
            npy_dtype(tid.get_super())          # Absent/Unspecified for odd bases
        return 'vlen'
    npy_dtype(tid)
    return 'fixed'


def read_as_stored(ds):
    """The dataset's bytes read with its own file type as the memory type (no conversion)."""
    tid = ds.id.get_type()
    nbytes = int(ds.size) * tid.get_size()
    buf = np.zeros(nbytes, dtype=np.uint8)
    if nbytes:
        ds.id.read(h5py.h5s.ALL, h5py.h5s.ALL, buf, mtype=tid)
    return buf.tobytes()


def values_equal(a, b):
    """Value equality that handles NaN, structured dtypes (by field name) and voids."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.names or b.dtype.names:
        if set(a.dtype.names or ()) != set(b.dtype.names or ()):
            return False
        return all(values_equal(a[n], b[n]) for n in a.dtype.names)
    if a.dtype.kind == 'V' or b.dtype.kind == 'V':
        return a.tobytes() == b.tobytes()
    if a.dtype.kind in 'SU' or b.dtype.kind in 'SU':
        return np.array_equal(a, b)
    if a.dtype.kind in 'fc' or b.dtype.kind in 'fc':
        return np.array_equal(a.astype(np.result_type(a.dtype, b.dtype).newbyteorder('=')),
                              b.astype(np.result_type(a.dtype, b.dtype).newbyteorder('=')),
                              equal_nan=True)
    return np.array_equal(a, b)


def _vlen_row(r, base):
    """One row of a vlen-of-`base` dataset as h5py returned it, in dtype `base`.

    h5py 3.7 returns rows of a non-native-order base (vlen of >f8) labelled with the
    native dtype but holding the stored (big-endian) bytes; reinterpret those bytes."""
    r = np.asarray(r)
    if r.dtype != base and r.dtype == base.newbyteorder('=') and \
            base.byteorder not in ('=', '|'):
        return np.frombuffer(r.tobytes(), dtype=base)
    return r.astype(base)


def expected_for(ds, path, pt_file=None):
    """Expected views of h5py dataset ds at HDF5 path `path`, cross-checked against h5py's
    high-level read and, if pt_file (an open tables.File) is given, PyTables' read."""
    kind = dataset_kind(ds)
    tid = ds.id.get_type()
    if kind == 'fixed':
        dt = npy_dtype(tid)
        raw = read_as_stored(ds)
        npy_shape = tuple(ds.shape) + dt.shape
        exp = Expected(path, 'fixed', raw, dt.base if dt.shape else dt, npy_shape, npy_shape)
        got = exp.array
        h5 = ds[()]
        if not values_equal(got, h5 if not dt.shape else np.asarray(h5).reshape(npy_shape)):
            raise AssertionError('fixture self-check: stored bytes of %s differ from h5py read'
                                 % path)
        if pt_file is not None and not values_equal(got, np.asarray(pt_file.get_node(path).read())):
            raise AssertionError('fixture self-check: %s differs from PyTables read' % path)
        return exp
    # variable length: rows are the elements in C order, whatever the rank
    elems = np.asarray(ds[()], dtype=object).ravel()
    if tid.get_class() == h5py.h5t.STRING:
        base = np.dtype('|u1')
        rows = [r if isinstance(r, bytes) else str(r).encode('utf-8') for r in elems]
        flat = b''.join(rows)
        lengths = [len(r) for r in rows]
    else:
        base = npy_dtype(tid.get_super())
        if base.shape:
            raise Unspecified('vlen of an array type')
        rows = [_vlen_row(r, base) for r in elems]
        flat = b''.join(r.tobytes() for r in rows)
        lengths = [len(r) for r in rows]
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype('<i8')
    total = int(offsets[-1])
    if pt_file is not None:
        node = pt_file.get_node(path)
        ptrows = node.read()
        if len(ptrows) != len(rows):
            raise AssertionError('fixture self-check: %s row count differs from PyTables' % path)
    return Expected(path, 'vlen', flat, base, (total,), tuple(ds.shape),
                    offsets=offsets.tobytes(), rows=rows)


# ------------------------------------------------------------------ walking a file

class Entry:
    """One link in a group: kind in group/alias/dataset/null/absent/unspecified/soft/
    external. An 'alias' is a hard link to a group whose first path (first_paths) is another:
    a symlink to `target`, that path."""

    def __init__(self, name, kind, path, target=None, dskind=None, reason=None):
        self.name, self.kind, self.path = name, kind, path
        self.target, self.dskind, self.reason = target, dskind, reason


def _shown_name(name):
    return 0 < len(name.encode('utf-8')) <= 255 and name not in ('.', '..')


def first_paths(f):
    """{object address: path} of every group, the path by which a breadth-first walk from the
    root (members in name order, hard links with names h5mount shows) reaches it first: its
    directory in the mount; its other paths are symlinks to it."""
    root = h5py.h5o.get_info(f['/'].id).addr
    out = {root: '/'}
    queue = ['/']
    while queue:
        gpath = queue.pop(0)
        grp = f[gpath]
        for name in grp:
            if not _shown_name(name) or not isinstance(grp.get(name, getlink=True), h5py.HardLink):
                continue
            obj = grp[name]
            if not isinstance(obj, h5py.Group):
                continue
            addr = h5py.h5o.get_info(obj.id).addr
            if addr not in out:
                out[addr] = posixpath.join(gpath, name)
                queue.append(out[addr])
    return out


def group_entries(grp, grp_path, firsts=None):
    out = []
    for name in grp:
        path = posixpath.join(grp_path, name)
        link = grp.get(name, getlink=True)
        if isinstance(link, h5py.SoftLink):
            out.append(Entry(name, 'soft', path, target=link.path))
            continue
        if isinstance(link, h5py.ExternalLink):
            out.append(Entry(name, 'external', path, target=(link.filename, link.path)))
            continue
        obj = grp[name]
        if isinstance(obj, h5py.Group):
            first = firsts.get(h5py.h5o.get_info(obj.id).addr, path) if firsts else path
            if first == path:
                out.append(Entry(name, 'group', path))
            else:
                out.append(Entry(name, 'alias', path, target=first))
        elif isinstance(obj, h5py.Dataset) and \
                obj.id.get_space().get_simple_extent_type() == h5py.h5s.NULL:
            out.append(Entry(name, 'null', path))
        elif isinstance(obj, h5py.Dataset):
            try:
                out.append(Entry(name, 'dataset', path, dskind=dataset_kind(obj)))
            except Absent as e:
                out.append(Entry(name, 'absent', path, reason=str(e)))
            except Unspecified as e:
                out.append(Entry(name, 'unspecified', path, reason=str(e)))
        else:
            out.append(Entry(name, 'unspecified', path, reason='committed datatype'))
    return out


def walk_groups(f):
    """Yields (group path, group, entries) for every group reached by hard links, once, at
    its first path (first_paths): its other paths are 'alias' entries."""
    firsts = first_paths(f)
    for path in sorted(firsts.values(), key=lambda p: (p.count('/') if p != '/' else 0, p)):
        grp = f[path]
        yield path, grp, group_entries(grp, path, firsts)


def expected_listing(entries):
    """The names os.listdir must return for a group with these entries, or None if an
    entry of unspecified kind makes it undefined. Real names shadow view names."""
    names = set()
    for e in entries:
        if e.kind == 'unspecified':
            return None
        if e.kind != 'absent':
            names.add(e.name)
    real = set(names)
    for e in entries:
        if e.kind == 'null':
            names.add(e.name + '.shape')
        if e.kind == 'dataset':
            views = [e.name + '.npy', e.name + '.shape']
            if e.dskind == 'vlen':
                views.append(e.name + '.offsets')
            names.update(v for v in views if v not in real)
    return names


def all_datasets(h5path):
    """HDF5 paths of every listed dataset (kind 'dataset') reached by hard links."""
    out = []
    with h5py.File(h5path, 'r') as f:
        for _, _, entries in walk_groups(f):
            out.extend(e.path for e in entries if e.kind == 'dataset')
    return out


def compute_expectations(h5path, paths=None, pytables=False):
    """{hdf5 path: Expected} for the given dataset paths (default: all listed ones)."""
    if paths is None:
        paths = all_datasets(h5path)
    out = {}
    pt = tables.open_file(h5path, 'r') if pytables else None
    try:
        with h5py.File(h5path, 'r') as f:
            for p in paths:
                out[p] = expected_for(f[p], p, pt)
                siblings = set(f[posixpath.dirname(p)].keys())
                out[p].shadowed = {v for v in out[p].views()[1:] if v in siblings}
    finally:
        if pt is not None:
            pt.close()
    return out


# ------------------------------------------------------------------ checks on a mount

def first_difference(a, b):
    n = min(len(a), len(b))
    for start in range(0, n, 4096):
        if a[start:start + 4096] != b[start:start + 4096]:
            for i in range(start, min(start + 4096, n)):
                if a[i] != b[i]:
                    return i
    return n if len(a) != len(b) else None


def assert_bytes_equal(got, want, what):
    if got != want:
        i = first_difference(got, want)
        raise AssertionError('%s: %d bytes, expected %d; first difference at byte %s '
                             '(got %r, want %r)' % (what, len(got), len(want), i,
                                                    got[i:i + 16], want[i:i + 16]))


def read_file(path):
    with open(path, 'rb') as fp:
        return fp.read()


def check_bytes_file(path, want, what=None, rng=None):
    """Compares a mounted regular file with `want`: stat size and mode, one whole read,
    1 MiB preads starting at odd offsets, random odd preads, reads at/after EOF."""
    what = what or path
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise AssertionError('%s: not a regular file (mode %o)' % (what, st.st_mode))
    if st.st_size != len(want):
        raise AssertionError('%s: st_size %d, expected %d' % (what, st.st_size, len(want)))
    assert_bytes_equal(read_file(path), want, what + ' (whole read)')
    rng = rng or np.random.default_rng(len(want))
    fd = os.open(path, os.O_RDONLY)
    try:
        size = len(want)
        offsets = [0] if size else []
        off = 1 if size > 1 else size
        got = [os.pread(fd, 1, 0)] if size else []
        while off < size:
            piece = os.pread(fd, MiB, off)
            if len(piece) != min(MiB, size - off):
                raise AssertionError('%s: pread(%d, %d) returned %d bytes'
                                     % (what, MiB, off, len(piece)))
            got.append(piece)
            offsets.append(off)
            off += len(piece)
        assert_bytes_equal(b''.join(got), want, what + ' (1 MiB preads at odd offsets)')
        for _ in range(8 if size else 0):
            o = int(rng.integers(0, size)) | 1 if size > 1 else 0
            o = min(o, size - 1)
            n = int(rng.integers(1, min(size, 3 * MiB) + 1)) | 1
            assert_bytes_equal(os.pread(fd, n, o), want[o:o + n],
                               '%s (pread %d bytes at %d)' % (what, n, o))
        if os.pread(fd, 4096, size) != b'':
            raise AssertionError('%s: read at EOF returned data' % what)
        if os.pread(fd, 10, size + 12345) != b'':
            raise AssertionError('%s: read past EOF returned data' % what)
    finally:
        os.close(fd)


_SHAPE_RE = re.compile(r"'shape':\s*\(([^)]*)\)")


def parse_npy_header(head):
    """(version, header_len, data offset, header dict text, dict) of npy bytes `head`."""
    if head[:6] != b'\x93NUMPY':
        raise AssertionError('bad npy magic %r' % head[:8])
    major, minor = head[6], head[7]
    if (major, minor) == (1, 0):
        hlen = int.from_bytes(head[8:10], 'little')
        start = 10
    elif (major, minor) in ((2, 0), (3, 0)):
        hlen = int.from_bytes(head[8:12], 'little')
        start = 12
    else:
        raise AssertionError('unknown npy version %d.%d' % (major, minor))
    text = head[start:start + hlen].decode('utf-8' if major == 3 else 'latin1')
    try:
        d = ast.literal_eval(text)
    except (SyntaxError, ValueError) as e:
        raise AssertionError('npy header is not a dict literal (%s): %r' % (e, text))
    if not isinstance(d, dict):
        raise AssertionError('npy header is not a dict: %r' % text)
    return (major, minor), hlen, start + hlen, text, d


def check_npy_file(path, exp, what=None, check_bytes=True):
    """Checks a mounted x.npy against Expected exp: header layout, fixed room for 20-digit
    dims, np.load(mmap_mode='r') dtype/shape/bytes, and the bytes after the header."""
    what = what or path
    with open(path, 'rb') as fp:
        head = fp.read(16384)
    version, hlen, data_off, text, d = parse_npy_header(head)
    if data_off % 64:
        raise AssertionError('%s: header ends at %d, not a multiple of 64' % (what, data_off))
    if not text.endswith('\n'):
        raise AssertionError('%s: header does not end with a newline' % what)
    if set(d) != {'descr', 'fortran_order', 'shape'}:
        raise AssertionError('%s: header keys %r' % (what, sorted(d)))
    if d['fortran_order'] is not False:
        raise AssertionError('%s: fortran_order %r' % (what, d['fortran_order']))
    if tuple(d['shape']) != exp.npy_shape:
        raise AssertionError('%s: header shape %r, expected %r' % (what, d['shape'], exp.npy_shape))
    hdr_dtype = np.lib.format.descr_to_dtype(d['descr'])
    if hdr_dtype != exp.dtype:
        raise AssertionError('%s: header dtype %r, expected %r' % (what, hdr_dtype, exp.dtype))
    # Room for every dim written with 20 digits, so the data offset never moves.
    m = _SHAPE_RE.search(text)
    if not m:
        raise AssertionError('%s: no shape tuple in header %r' % (what, text))
    rank = len(exp.npy_shape)
    big = '(' + ', '.join(['99999999999999999999'] * rank) + (',)' if rank == 1 else ')')
    widest = (text[:m.start()] + "'shape': " + big + text[m.end():]).rstrip(' \n')
    if len(widest) + 1 > hlen:
        raise AssertionError('%s: header of %d bytes has no room for 20-digit dims (needs %d): %r'
                             % (what, hlen, len(widest) + 1, text))
    st = os.stat(path)
    if st.st_size != data_off + len(exp.raw):
        raise AssertionError('%s: st_size %d, expected header %d + data %d'
                             % (what, st.st_size, data_off, len(exp.raw)))
    if check_bytes:
        # Plain reads first: a failing read under mmap would be SIGBUS, not an error.
        whole = read_file(path)
        assert_bytes_equal(whole[data_off:], exp.raw, what + ' (bytes after header)')
        check_bytes_file(path, head[:data_off] + exp.raw, what)
    arr = np.load(path, mmap_mode='r')
    if arr.dtype != exp.dtype or arr.shape != exp.npy_shape:
        raise AssertionError('%s: np.load gives %r %r, expected %r %r'
                             % (what, arr.dtype, arr.shape, exp.dtype, exp.npy_shape))
    assert_bytes_equal(np.ascontiguousarray(arr).tobytes(), exp.raw, what + ' (np.load mmap)')
    del arr
    return data_off


def check_dataset(mnt, exp, rng=None):
    """All views of one dataset. Raises AssertionError naming the view that differs."""
    base = mnt.p(exp.path)
    leaf = exp.leaf
    check_bytes_file(base, exp.raw, exp.path, rng)
    if leaf + '.npy' not in exp.shadowed:
        check_npy_file(base + '.npy', exp, exp.path + '.npy')
    if leaf + '.shape' not in exp.shadowed:
        check_bytes_file(base + '.shape', shape_text(exp.dims), exp.path + '.shape')
    if exp.kind == 'vlen':
        if leaf + '.offsets' not in exp.shadowed:
            check_bytes_file(base + '.offsets', exp.offsets, exp.path + '.offsets')
    elif leaf + '.offsets' not in exp.shadowed and os.path.lexists(base + '.offsets'):
        raise AssertionError('%s.offsets exists for a fixed-size dataset' % exp.path)


def check_all(mnt, expectations):
    """Checks every Expected; returns a list of failure strings (empty when all pass)."""
    failures = []
    for path, exp in sorted(expectations.items()):
        try:
            check_dataset(mnt, exp)
        except Exception as e:      # noqa: BLE001 - every exception is a failure to report
            failures.append('%s: %s: %s' % (path, type(e).__name__, e))
    return failures


def check_listings(mnt, h5path):
    """Compares os.listdir and lstat of every group with the HDF5 file; returns failures."""
    failures = []
    with h5py.File(h5path, 'r') as f:
        for gpath, _, entries in walk_groups(f):
            want = expected_listing(entries)
            if want is None:
                continue
            d = mnt.p(gpath)
            try:
                got = set(os.listdir(d))
            except OSError as e:
                failures.append('%s: listdir: %s' % (gpath, e))
                continue
            if got != want:
                failures.append('%s: listing has extra %r, lacks %r'
                                % (gpath, sorted(got - want), sorted(want - got)))
            for e in entries:
                p = mnt.p(e.path)
                try:
                    st = os.lstat(p)
                except OSError as err:
                    if e.kind != 'absent':
                        failures.append('%s: lstat: %s' % (e.path, err))
                    continue
                if e.kind == 'absent':
                    failures.append('%s: must be absent (%s) but lstat works' % (e.path, e.reason))
                elif e.kind == 'group' and not stat.S_ISDIR(st.st_mode):
                    failures.append('%s: group is not a directory' % e.path)
                elif e.kind == 'alias' and not (stat.S_ISLNK(st.st_mode) and
                                                os.path.realpath(p) == os.path.realpath(mnt.p(e.target))):
                    failures.append('%s: second name of a group is not a symlink to %s' % (e.path, e.target))
                elif e.kind == 'null' and not (stat.S_ISREG(st.st_mode) and st.st_size == 0):
                    failures.append('%s: null dataspace is not an empty regular file' % e.path)
                elif e.kind == 'dataset' and not stat.S_ISREG(st.st_mode):
                    failures.append('%s: dataset is not a regular file' % e.path)
                elif e.kind in ('soft', 'external') and not stat.S_ISLNK(st.st_mode):
                    failures.append('%s: link is not a symlink' % e.path)
    return failures


# ------------------------------------------------------------------ attributes -> xattrs

def attr_expectation(obj, name):
    """('text', bytes) or ('floats', nested list of (value, numpy float type)) for the
    xattr user.<name>, or None when the contract does not define the attribute's text."""
    aid = obj.attrs.get_id(name)
    shape = aid.shape
    if shape is None:
        return None
    rank = len(shape)
    if rank > 2 or (rank and 0 in shape):
        return None
    tid = aid.get_type()
    cls = tid.get_class()
    val = obj.attrs[name]

    def text(v):
        return v if isinstance(v, bytes) else str(v).encode('utf-8')

    if cls == h5py.h5t.STRING:
        if rank == 0:
            return ('text', text(val))
        if rank == 1 and all(b"'" not in text(v) and b'\\' not in text(v) for v in val):
            return ('text', b' '.join(b"'" + text(v) + b"'" for v in val))
        return None
    if cls == h5py.h5t.INTEGER:
        a = np.asarray(val)
        if rank == 0:
            return ('text', str(int(a)).encode())
        if rank == 1:
            return ('text', ' '.join(str(int(v)) for v in a).encode())
        return ('text', '\n'.join(' '.join(str(int(v)) for v in row) for row in a).encode())
    if cls == h5py.h5t.FLOAT:
        a = np.asarray(val)
        ftype = a.dtype.type
        if rank == 0:
            return ('floats', [[(float(a), ftype)]])
        if rank == 1:
            return ('floats', [[(float(v), ftype) for v in a]])
        return ('floats', [[(float(v), ftype) for v in row] for row in a])
    if cls == h5py.h5t.ENUM and rank == 0:
        if _is_bool_enum(tid):
            return ('text', b'TRUE' if bool(val) else b'FALSE')
        names = {tid.get_member_value(i): tid.get_member_name(i)
                 for i in range(tid.get_nmembers())}
        return ('text', names[int(np.asarray(val))])
    return None


def check_xattr_value(got, expectation, what):
    kind, want = expectation
    if kind == 'text':
        if got != want:
            raise AssertionError('%s: xattr %r, expected %r' % (what, got, want))
        return
    lines = got.decode('ascii').split('\n')
    if len(lines) != len(want):
        raise AssertionError('%s: %d lines in %r, expected %d' % (what, len(lines), got, len(want)))
    for line, row in zip(lines, want):
        toks = line.split(' ')
        if len(toks) != len(row):
            raise AssertionError('%s: %r has %d values, expected %d'
                                 % (what, got, len(toks), len(row)))
        for tok, (v, ftype) in zip(toks, row):
            # A float32 attribute must parse back to the same float32; a float64 one to
            # the same double.
            back = float(ftype(float(tok))) if ftype is not np.float64 else float(tok)
            if not (back == v or (np.isnan(back) and np.isnan(v))):
                raise AssertionError('%s: %r parses back to %r, expected %r'
                                     % (what, tok, back, v))


def check_xattrs(mnt, h5path, paths=None):
    """For every group and listed dataset (or only `paths`), every attribute with a
    defined text must be listed as user.<name> and read back as specified."""
    failures = []
    with h5py.File(h5path, 'r') as f:
        objs = []
        for gpath, grp, entries in walk_groups(f):
            objs.append((gpath, grp))
            objs.extend((e.path, f[e.path]) for e in entries if e.kind == 'dataset')
        for opath, obj in objs:
            if paths is not None and opath not in paths:
                continue
            target = mnt.p(opath)
            try:
                listed = set(os.listxattr(target))
            except OSError as e:
                failures.append('%s: listxattr: %s' % (opath, e))
                continue
            for name in obj.attrs:
                expct = attr_expectation(obj, name)
                if expct is None:
                    continue
                xname = 'user.' + name
                if xname not in listed:
                    failures.append('%s: %r not in listxattr %r' % (opath, xname, sorted(listed)))
                    continue
                try:
                    check_xattr_value(os.getxattr(target, xname), expct,
                                      '%s %s' % (opath, xname))
                except (AssertionError, OSError, UnicodeDecodeError, ValueError) as e:
                    failures.append(str(e))
    return failures


# ------------------------------------------------------------------ running

def skip_reason():
    if not os.path.exists('/dev/fuse'):
        return '/dev/fuse is missing'
    if shutil.which('fusermount3') is None:
        return 'fusermount3 is not installed'
    return None


def run_tests(module_name='__main__', tools=()):
    """Entry point of a test script: argv[1] is the h5mount binary. Exits 77 to skip (no
    /dev/fuse, or one of the command-line `tools` missing: contrib/deps installs them),
    1 on any failure or error, 0 otherwise, after printing 'N passed, N failed[, N skipped]'."""
    global EXE
    sys.dont_write_bytecode = True
    if len(sys.argv) < 2:
        print('usage: %s PATH/TO/h5mount [unittest args]' % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    missing = [t for t in tools if shutil.which(t) is None]
    reason = skip_reason() or ('missing %s (contrib/deps installs them)' % ' '.join(missing)
                               if missing else None)
    if reason:
        print('SKIP: ' + reason)
        sys.exit(77)
    EXE = os.path.abspath(sys.argv[1])
    if not os.access(EXE, os.X_OK):
        print('h5mount binary %s is missing or not executable' % EXE, file=sys.stderr)
        sys.exit(1)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    status = 1
    try:
        loader = unittest.TestLoader()
        names = sys.argv[2:]
        module = sys.modules[module_name]
        suite = (loader.loadTestsFromNames(names, module) if names
                 else loader.loadTestsFromModule(module))
        stream = io.TextIOWrapper(sys.stdout.buffer, write_through=True) \
            if hasattr(sys.stdout, 'buffer') else sys.stdout
        runner = unittest.TextTestRunner(stream=stream, verbosity=2)
        result = runner.run(suite)
        failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        skipped = len(result.skipped)
        passed = result.testsRun - failed - skipped
        line = '%d passed, %d failed' % (passed, failed)
        if skipped:
            line += ', %d skipped' % skipped
        print(line, flush=True)
        status = 0 if result.wasSuccessful() and result.testsRun > 0 else 1
    finally:
        mounting.cleanup_all()
        if _WORKDIR is not None:
            leftover = [m for m in os.listdir(_WORKDIR)
                        if is_mounted(os.path.join(_WORKDIR, m))]
            for m in leftover:
                fusermount_unmount(os.path.join(_WORKDIR, m))
            shutil.rmtree(_WORKDIR, ignore_errors=True)
    sys.exit(status)


# ------------------------------------------------------------------ small helpers for tests

def errno_of(fn, *args, **kw):
    """Runs fn and returns the errno of the OSError it raises, or None if it succeeds."""
    try:
        fn(*args, **kw)
    except OSError as e:
        return e.errno
    return None


def mmap_bytes(path):
    with open(path, 'rb') as fp:
        size = os.fstat(fp.fileno()).st_size
        if size == 0:
            return b''
        with mmap.mmap(fp.fileno(), size, access=mmap.ACCESS_READ) as mm:
            return mm[:]


ERRNO_NAMES = errno.errorcode


# ------------------------------------------------------------------ helpers for write tests

def fresh_copy(src, name):
    """Copies src to a new file `name` (made unique) in the script's workdir; returns its path."""
    d = tempfile.mkdtemp(prefix='copy-', dir=workdir())
    dst = os.path.join(d, name)
    shutil.copyfile(src, dst)
    return dst


def wait_until(predicate, timeout=2.0, step=POLL):
    """Polls predicate() every `step` s until it is true or `timeout` s have passed; returns
    its last value. For effects the contract lets lag (existing mmaps, async release)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def expected_from_array(path, arr):
    """Expected views of a fixed-size dataset at HDF5 path `path` holding numpy array arr
    (its dtype is the stored type; no subarray dtypes)."""
    arr = np.ascontiguousarray(arr)
    return Expected(path, 'fixed', arr.tobytes(), arr.dtype, arr.shape, arr.shape)


def npy_data_offset(path):
    """Data offset (= header length including the preamble) of the mounted .npy `path`."""
    with open(path, 'rb') as fp:
        return parse_npy_header(fp.read(16384))[2]


def npy_header_bytes(descr, fortran_order, shape, total=None):
    """A v1.0 .npy header (preamble included) with these fields, padded with spaces and a
    final newline to `total` bytes (default: the next multiple of 64)."""
    text = "{'descr': %r, 'fortran_order': %r, 'shape': %r, }" % (descr, fortran_order,
                                                                    tuple(shape))
    if total is None:
        total = -(-(10 + len(text) + 1) // 64) * 64
    pad = total - 10 - len(text) - 1
    if pad < 0:
        raise ValueError('header %r does not fit in %d bytes' % (text, total))
    body = (text + ' ' * pad + '\n').encode('latin1')
    return b'\x93NUMPY\x01\x00' + len(body).to_bytes(2, 'little') + body


def stored_dataset(h5path, name):
    """(shape, dtype, bytes as stored) of dataset `name` read with h5py from h5path."""
    with h5py.File(h5path, 'r') as f:
        ds = f[name]
        return tuple(ds.shape), npy_dtype(ds.id.get_type()), read_as_stored(ds)


def stored_shape_unlocked(h5path, name):
    """Shape of dataset `name` as the file on disk holds it now, opened without HDF5's file
    lock (to look under a read-write mount); None while the file cannot be opened."""
    try:
        with h5py.File(h5path, 'r', locking=False) as f:
            return tuple(f[name].shape)
    except (OSError, KeyError):
        return None


def close_quietly(fd):
    """os.close(fd), ignoring errors (cleanup of fds on mounts that may be gone)."""
    try:
        os.close(fd)
    except OSError:
        pass


class Tmpfs:
    """A tmpfs of `size` mounted (root only) at a new directory of the workdir; .cleanup()
    unmounts it (lazily if busy). `remount_ro()` makes it read-only."""

    def __init__(self, size='8m'):
        self.size = size
        self.path = tempfile.mkdtemp(prefix='tmpfs-', dir=workdir())
        self._mounted = False

    def start(self):
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=' + self.size, 'h5mount-test',
                            self.path], capture_output=True, text=True)
        if r.returncode != 0:
            raise OSError('mount -t tmpfs failed: ' + r.stderr.strip())
        self._mounted = True
        mounting.ACTIVE.append(self)
        return self

    def remount_ro(self):
        r = subprocess.run(['mount', '-o', 'remount,ro', self.path], capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise OSError('remount,ro failed: ' + r.stderr.strip())

    def cleanup(self):
        if self._mounted and is_mounted(self.path):
            r = subprocess.run(['umount', self.path], capture_output=True)
            if r.returncode != 0:
                subprocess.run(['umount', '-l', self.path], capture_output=True)
        self._mounted = False
        if self in mounting.ACTIVE:
            mounting.ACTIVE.remove(self)
        return None


NOBODY = 65534
AS_NOBODY = ['setpriv', '--reuid=%d' % NOBODY, '--regid=%d' % NOBODY, '--clear-groups']


def nobody_dir(tc):
    """For a test whose daemon runs as uid NOBODY: skips tc unless that can work here (root,
    setpriv, a /dev/fuse others may use, a set-uid fusermount3), else returns a new directory
    (mode 0755, removed after the test) for the files the daemon must reach."""
    if os.geteuid() != 0 or shutil.which('setpriv') is None:
        tc.skipTest('needs root and setpriv to run the daemon as uid %d' % NOBODY)
    st = os.stat('/dev/fuse')
    if st.st_mode & 0o006 != 0o006:
        tc.skipTest('/dev/fuse (mode %o) is not usable by other users' % (st.st_mode & 0o777))
    if not os.stat(shutil.which('fusermount3')).st_mode & stat.S_ISUID:
        tc.skipTest('fusermount3 is not set-uid')
    d = tempfile.mkdtemp(prefix='h5mount-nobody-')
    tc.addCleanup(shutil.rmtree, d, True)
    os.chmod(d, 0o755)
    return d


def mount_as_nobody(tc, d, h5):
    """Mounts h5 (in d, from nobody_dir) at d/mnt with a copy of the daemon in d running as
    uid NOBODY; unmounted after the test. Returns the started MountAs."""
    exe = os.path.join(d, 'h5mount')
    shutil.copyfile(EXE, exe)
    os.chmod(exe, 0o755)
    mnt = os.path.join(d, 'mnt')
    os.mkdir(mnt)
    os.chown(mnt, NOBODY, NOBODY)
    m = MountAs(h5, AS_NOBODY, mountpoint=mnt, exe=exe)
    tc.addCleanup(m.cleanup)
    return m.start()


class MountAs(Mount):
    """A Mount whose daemon runs under `prefix` (e.g. setpriv to another user). Readiness is
    read from /proc/self/mountinfo, since the test's user may not be allowed to stat the
    mount of another user."""

    pdeathsig = False

    def __init__(self, h5file, prefix, opts=(), mountpoint=None, exe=None):
        super().__init__(h5file, opts, mountpoint, exe)
        self.prefix = list(prefix)

    @property
    def argv(self):
        return self.prefix + Mount.argv.fget(self)

    def mounted(self):
        return is_mounted(self.path)
