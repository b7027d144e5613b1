"""Writes attributes and metadata through read-write mounts with the real clients (setfattr,
getfattr, cp -a, rsync -aX, touch, chmod, chown) and checks the file with h5py and PyTables
after unmounting.

Covers: a new attribute is a variable-length UTF-8 string (fixed-length bytes when the text is
not UTF-8), on every view of a dataset; `getfattr --dump` restored with `setfattr --restore`
onto a copy whose attributes were all changed gives back every value, dtype and shape; text
that does not parse as the attribute's type is EINVAL and changes nothing (one log line);
XATTR_CREATE / XATTR_REPLACE, removal, ENOTSUP outside user.*, E2BIG; EROFS on read-only
mounts; chmod/chown/utimensat of any name change the HDF5 file's mode, owner and times, which
every name shows and which stay across a remount; `cp -a` and `rsync -aX --inplace` onto
datasets that exist exit 0 and print nothing. Usage:

    /usr/bin/python3 tests/mount/test_attrs.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
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
X_ROWS = 16
T2020 = 1577934245.123456789    # 2020-01-02 03:04:05.123456789 UTC


def add_more_attributes(obj):
    """Kinds add_attributes lacks: compounds (complex, a record with an array and a string),
    sequences, opaque, an object reference, half and big-endian floats, 3-D, empty ones, an
    array type, a 12-bit integer, PyTables' bitfield booleans."""
    a = obj.attrs
    a['complex'] = np.array([1.5 - 2j, 0.25 + 1e-3j])
    rec = np.dtype([('k', '<i4'), ('m', '<f8', (2, 2)), ('s', 'S5')])
    a['record'] = np.array([(7, [[0.5, 1.0], [2.0, -3.25]], b'a, b}'), (-1, 0, b'')], dtype=rec)
    a.create('seq', np.array([np.arange(3, dtype='<i4'), np.array([], dtype='<i4')], dtype=object),
             dtype=h5py.vlen_dtype(np.dtype('<i4')))
    a['opaque'] = np.void(b'\x00\xffab')
    a['ref'] = obj.file['/g/x'].ref
    a['half'] = np.array([0.1, 65504.0, -2.5], dtype='<f2')
    a['float_be'] = np.array([1.1, -1e-300], dtype='>f8')
    a['int_3d'] = np.arange(24, dtype='>i2').reshape(2, 3, 4) - 12
    a['empty'] = h5py.Empty('<f8')
    a['zero_size'] = np.zeros((0, 3), dtype='<i4')
    tid = h5py.h5t.array_create(h5py.h5t.NATIVE_INT16, (2, 3))
    aid = h5py.h5a.create(obj.id, b'array_type', tid, h5py.h5s.create(h5py.h5s.SCALAR))
    aid.write(np.frombuffer(np.arange(6, dtype='<i2').tobytes(), dtype='V12').reshape(()), mtype=tid)
    t12 = h5py.h5t.STD_U16LE.copy()
    t12.set_precision(12)
    aid = h5py.h5a.create(obj.id, b'uint12', t12, h5py.h5s.create_simple((2,)))
    aid.write(np.array([4095, 7], dtype='<u2'))
    aid = h5py.h5a.create(obj.id, b'pt_bool', h5py.h5t.STD_B8LE, h5py.h5s.create(h5py.h5s.SCALAR))
    aid.write(np.array(1, dtype='u1'), mtype=h5py.h5t.STD_B8LE)


def make_attrs(path):
    """/g (every kind of attribute), /g/x (16 x <i4, extendable, attributes too), /g/y
    (4 x 3 <f8), /plain (a group without attributes)."""
    with h5py.File(path, 'w') as f:
        g = f.create_group('g')
        g.create_dataset('x', data=np.arange(X_ROWS, dtype='<i4') * 3, maxshape=(None,), chunks=(8,))
        g.create_dataset('y', data=np.arange(12, dtype='<f8').reshape(4, 3) / 4)
        f.create_group('plain')
        fixtures.add_attributes(g)
        add_more_attributes(g)
        fixtures.add_attributes(g['x'])
        f.attrs['root_note'] = 'attributes on the root group'
    return path


def scramble(path):
    """Changes every attribute it can to another value of the same dtype and shape (zeros,
    flipped bytes, other strings), as h5py writes them."""
    changed = 0
    with h5py.File(path, 'r+') as f:
        objs = [f, f['g'], f['g/x']]
        for obj in objs:
            for name in list(obj.attrs):
                aid = h5py.h5a.open(obj.id, name.encode())
                if aid.shape is None or 0 in aid.shape:
                    continue
                dt = aid.dtype
                cur = np.zeros(aid.shape, dtype=dt)
                if dt.kind == 'O' and h5py.check_string_dtype(dt):
                    new = np.full(aid.shape, 'scrambled', dtype=object)
                elif dt.kind == 'O' or (dt.names and any(dt[n].kind == 'O' for n in dt.names)) \
                        or aid.get_type().get_class() == h5py.h5t.REFERENCE:
                    continue
                elif aid.get_type().get_class() == h5py.h5t.ARRAY:
                    continue
                else:
                    aid.read(cur)
                    raw = cur.view(np.uint8) if cur.ndim else cur.reshape(1).view(np.uint8)
                    new = (raw ^ 0x01).view(dt).reshape(aid.shape)
                    if dt.kind in 'b':
                        new = ~cur
                    if aid.get_type().get_class() == h5py.h5t.ENUM:
                        new = cur      # keep members valid
                        continue
                    if aid.get_type().get_class() == h5py.h5t.INTEGER and \
                            aid.get_type().get_precision() < 8 * dt.itemsize:
                        new = (cur ^ 1).astype(dt)
                    if dt.kind == 'f' and dt.itemsize == 2:
                        new = (cur + 1).astype(dt)
                aid.write(np.ascontiguousarray(new, dtype=dt))
                changed += 1
    return changed


def attr_snapshot(path):
    """{object path: {name: (dtype str, shape, value repr)}} of every attribute, as h5py reads
    them; references are compared by the path they point to."""
    out = {}
    with h5py.File(path, 'r') as f:
        for opath in ('/', '/g', '/g/x', '/g/y', '/plain'):
            obj = f[opath]
            snap = {}
            for name in obj.attrs:
                aid = h5py.h5a.open(obj.id, name.encode())
                v = obj.attrs[name]
                if aid.get_type().get_class() == h5py.h5t.REFERENCE:
                    v = f[v].name
                elif isinstance(v, np.ndarray) and v.dtype.kind == 'O':
                    v = [list(x) if isinstance(x, np.ndarray) else x for x in v.ravel()]
                snap[name] = (str(aid.dtype), aid.shape, repr(v))
            out[opath] = snap
    return out


def setUpModule():
    d = harness.workdir()
    FIX['attrs'] = make_attrs(os.path.join(d, 'attrs.h5'))
    FIX['tutorial'] = fixtures.make_pytables(os.path.join(d, 'tutorial.h5'), rows=200)


def fresh(name='attrs'):
    """A copy of fixture `name` to write into."""
    dst = os.path.join(harness.workdir(), 'w-%s-%d.h5' % (name, time.monotonic_ns()))
    shutil.copyfile(FIX[name], dst)
    return dst


def run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True)


def poll(fn, want, what, deadline=5.0):
    """Polls fn() every 0.05 s until it returns want (a name's cached attributes expire within
    the mount's 1 s attribute timeout); fails after `deadline` seconds."""
    end = time.monotonic() + deadline
    while True:
        got = fn()
        if got == want or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert got == want, '%s: %r, expected %r' % (what, got, want)


class Attributes(unittest.TestCase):

    def test_setfattr_writes_a_new_utf8_string_seen_by_every_view_h5py_and_pytables(self):
        h5 = fresh()
        with harness.Mount(h5) as m:
            r = run('setfattr', '-n', 'user.units', '-v', 'volt', m.p('g/x.npy'))
            self.assertEqual((r.returncode, r.stderr), (0, ''))
            r = run('setfattr', '-n', 'user.note', '-v', 'grüße 温度', m.p('plain'))
            self.assertEqual((r.returncode, r.stderr), (0, ''))
            for view in ('g/x', 'g/x.npy', 'g/x.shape'):
                self.assertEqual(os.getxattr(m.p(view), 'user.units'), b'volt', view)
                self.assertIn('user.units', os.listxattr(m.p(view)))
            os.setxattr(m.p('g'), 'user.raw', b'\xff\xfe ab')   # not UTF-8
            self.assertEqual(os.getxattr(m.p('g'), 'user.raw'), b'\xff\xfe ab')
        with h5py.File(h5, 'r') as f:
            a = f['g/x'].attrs
            self.assertEqual(a['units'], 'volt')
            aid = h5py.h5a.open(f['g/x'].id, b'units')
            self.assertEqual(aid.shape, ())
            self.assertEqual(h5py.check_string_dtype(aid.dtype).encoding, 'utf-8')
            self.assertIsNone(h5py.check_string_dtype(aid.dtype).length)   # variable length
            self.assertEqual(f['plain'].attrs['note'], 'grüße 温度')
            self.assertEqual(f['g'].attrs['raw'], b'\xff\xfe ab')
            self.assertEqual(f['g'].attrs.get_id('raw').dtype, np.dtype('S5'))
            np.testing.assert_array_equal(f['g/x'][:], np.arange(X_ROWS) * 3)
        with tables.open_file(h5) as t:
            self.assertEqual(t.get_node('/g/x').attrs['units'], 'volt')
            self.assertEqual(t.get_node('/plain')._v_attrs['note'], 'grüße 温度')
            self.assertEqual(t.get_node('/g')._v_attrs['raw'], b'\xff\xfe ab')

    def test_getfattr_dump_restored_onto_a_scrambled_copy_gives_back_every_attribute(self):
        orig = fresh()
        target = fresh()
        self.assertGreater(scramble(target), 40)
        before = attr_snapshot(target)
        want = attr_snapshot(orig)
        differ = [n for n in want['/g'] if want['/g'][n] != before['/g'].get(n)]
        self.assertGreater(len(differ), 25, 'the scrambled copy should differ')
        with harness.Mount(orig, ('-o', 'ro')) as src:
            r = subprocess.run(['getfattr', '-R', '-P', '--dump', '-m', '^user\\.', '.'],
                               cwd=src.path, capture_output=True)
            self.assertEqual((r.returncode, r.stderr), (0, b''))
            dump = r.stdout
        self.assertIn(b'# file: g/x.npy', dump)
        with harness.Mount(target) as m:
            r = subprocess.run(['setfattr', '--restore=-'], input=dump, cwd=m.path,
                               capture_output=True)
            self.assertEqual((r.returncode, r.stderr), (0, b''))
            log = m.stderr_text()
        self.assertNotIn('not written', log)
        got = attr_snapshot(target)
        for opath in want:
            for name in want[opath]:
                self.assertEqual(got[opath].get(name), want[opath][name], '%s %s' % (opath, name))
        with tables.open_file(target) as t:
            self.assertEqual(t.get_node('/g')._v_attrs['str_scalar'], 'hello world')
            self.assertEqual(t.get_node('/g/x').attrs['int_scalar'], 42)

    def test_pytables_file_round_trip_changes_no_attribute(self):
        h5 = fresh('tutorial')
        want = {}
        with tables.open_file(h5) as t:
            for node in t.walk_nodes('/'):
                want[node._v_pathname] = {k: repr(node._v_attrs[k]) for k in node._v_attrs._v_attrnames}
        with harness.Mount(h5) as m:
            r = subprocess.run(['getfattr', '-R', '-P', '--dump', '-m', '^user\\.', '.'],
                               cwd=m.path, capture_output=True)
            self.assertEqual((r.returncode, r.stderr), (0, b''))
            self.assertIn(b'user.CLASS=', r.stdout)
            r = subprocess.run(['setfattr', '--restore=-'], input=r.stdout, cwd=m.path,
                               capture_output=True)
            self.assertEqual((r.returncode, r.stderr), (0, b''))
        with tables.open_file(h5) as t:
            got = {node._v_pathname: {k: repr(node._v_attrs[k]) for k in node._v_attrs._v_attrnames}
                   for node in t.walk_nodes('/')}
        self.assertEqual(got, want)

    def test_text_that_does_not_parse_is_einval_and_changes_nothing(self):
        h5 = fresh()
        bad = [('int_scalar', b'4x3'), ('int_negative', b'40000'), ('uint64_max', b'-1'),
               ('int_2d', b'1 2 3 4 5'), ('int_2d', b'1 2 3 4 5 6 7'), ('enum_scalar', b'GREEN'),
               ('str_fixed', b'longer than five'), ('str_utf8', b'\xff'), ('float32', b'1e39'),
               ('half', b'1 2 70000'), ('complex', b'{r: 1.0, i: 2.0}'),
               ('record', b'{k: 1} {k: 2}'), ('str_array', b"'a' 'b"), ('ref', b'/nowhere'),
               ('opaque', b'00ff'), ('empty', b'1.0')]
        with harness.Mount(h5) as m:
            before = {n: os.getxattr(m.p('g'), 'user.' + n) for n, _ in bad}
            for name, text in bad:
                with self.subTest(name=name, text=text):
                    self.assertEqual(harness.errno_of(os.setxattr, m.p('g'), 'user.' + name, text),
                                     errno.EINVAL)
                    self.assertEqual(os.getxattr(m.p('g'), 'user.' + name), before[name])
            log = m.stderr_text()
        for name, _ in bad:
            self.assertIn("/g: attribute '%s' not written (Invalid argument)" % name, log)
        self.assertEqual(attr_snapshot(h5), attr_snapshot(FIX['attrs']))

    def test_existing_attributes_take_new_values_of_their_own_type(self):
        h5 = fresh()
        with harness.Mount(h5) as m:
            g = m.p('g/y.shape')
            for name, text in (('int_scalar', b'-5'), ('int_2d', b'9 8 7\n6 5 4'),
                               ('enum_scalar', b'RED'), ('bool_true', b'FALSE'),
                               ('str_array', b"'a b' \"c\" d"), ('str_fixed', b'ab'),
                               ('float_1d', b'1 2 3 nan'), ('half', b'0.5 -0.5 65504.0'),
                               ('complex', b'{r: 0.0, i: 1.0} {r: -1.0, i: inf}'),
                               ('uint12', b'0 4095'), ('pt_bool', b'0'), ('seq', b'[] [5 6 7 8]'),
                               ('ref', b'/g/y'), ('opaque', b'0102ff00'),
                               ('record', b"{k: 1, m: [[1.0 2.0] [3.0 4.0]], s: 'xy'} "
                                          b"{k: 2, m: [[0.0 0.0] [0.0 0.5]], s: ''}")):
                os.setxattr(m.p('g'), 'user.' + name, text)
            os.setxattr(g, 'user.int_scalar', b'7')   # g/y through its .shape view: new
        with h5py.File(h5, 'r') as f:
            a = f['g'].attrs
            self.assertEqual((a['int_scalar'], a['int_scalar'].dtype), (-5, np.dtype('<i8')))
            np.testing.assert_array_equal(a['int_2d'], [[9, 8, 7], [6, 5, 4]])
            self.assertEqual(a['int_2d'].dtype, np.dtype('<u2'))
            self.assertEqual(a['enum_scalar'], 0)
            self.assertEqual(h5py.check_enum_dtype(a.get_id('enum_scalar').dtype), {'RED': 0, 'BLUE': 42})
            self.assertIs(bool(a['bool_true']), False)
            self.assertEqual(list(a['str_array']), ['a b', 'c', 'd'])
            self.assertEqual(a['str_fixed'], b'ab')
            self.assertEqual(a.get_id('str_fixed').dtype, np.dtype('S5'))
            np.testing.assert_array_equal(a['float_1d'][:3], [1.0, 2.0, 3.0])
            self.assertTrue(np.isnan(a['float_1d'][3]))
            self.assertEqual(a['half'].dtype, np.dtype('<f2'))
            np.testing.assert_array_equal(a['half'], np.array([0.5, -0.5, 65504], dtype='<f2'))
            np.testing.assert_array_equal(a['complex'], [1j, complex(-1, np.inf)])
            np.testing.assert_array_equal(a['uint12'], [0, 4095])
            self.assertEqual([list(s) for s in a['seq']], [[], [5, 6, 7, 8]])
            self.assertEqual(f[a['ref']].name, '/g/y')
            self.assertEqual(a['opaque'].tobytes(), b'\x01\x02\xff\x00')
            self.assertEqual(a['record']['k'].tolist(), [1, 2])
            np.testing.assert_array_equal(a['record']['m'][1], [[0, 0], [0, 0.5]])
            self.assertEqual(a['record']['s'].tolist(), [b'xy', b''])
            self.assertEqual(f['g/y'].attrs['int_scalar'], '7')   # g/y had none: a new string

    def test_create_replace_remove_namespaces_and_sizes(self):
        h5 = fresh()
        with harness.Mount(h5) as m:
            g = m.p('g')
            self.assertEqual(harness.errno_of(os.setxattr, g, 'user.int_scalar', b'1', os.XATTR_CREATE),
                             errno.EEXIST)
            self.assertEqual(harness.errno_of(os.setxattr, g, 'user.absent', b'1', os.XATTR_REPLACE),
                             errno.ENODATA)
            os.setxattr(g, 'user.int_scalar', b'1', os.XATTR_REPLACE)
            os.setxattr(g, 'user.fresh', b'1', os.XATTR_CREATE)
            self.assertEqual(harness.errno_of(os.removexattr, g, 'user.absent'), errno.ENODATA)
            r = run('setfattr', '-x', 'user.str_scalar', m.p('g/x.npy'))   # x's own attribute
            self.assertEqual((r.returncode, r.stderr), (0, ''))
            self.assertNotIn('user.str_scalar', os.listxattr(m.p('g/x')))
            for name in ('security.test', 'trusted.test', 'h5.test'):
                with self.subTest(name=name):
                    self.assertEqual(harness.errno_of(os.setxattr, g, name, b'1'), errno.ENOTSUP)
                    self.assertEqual(harness.errno_of(os.removexattr, g, name), errno.ENOTSUP)
                    self.assertEqual(harness.errno_of(os.getxattr, g, name), errno.ENODATA)
            self.assertEqual(harness.errno_of(os.setxattr, g, 'user.big', b'x' * 65537), errno.E2BIG)
            os.setxattr(g, 'user.big', b'x' * 65536)
            self.assertEqual(os.getxattr(g, 'user.big'), b'x' * 65536)
            self.assertEqual(harness.errno_of(os.setxattr, g, 'user.bigraw', b'\xff' * 62000),
                             errno.E2BIG)
            self.assertEqual(harness.errno_of(os.setxattr, g, 'user.nul', b'a\0b'), errno.EINVAL)
            # h5py decodes names as UTF-8 (PyTables 3.7 crashed on one that was not).
            self.assertEqual(harness.errno_of(os.setxattr, g, b'user.bad\xff', b'1'), errno.EINVAL)
            os.setxattr(g, 'user.unité', 'degrés'.encode())
            self.assertNotIn('user.nul', os.listxattr(g))
        with h5py.File(h5, 'r') as f:
            self.assertEqual(f['g'].attrs['int_scalar'], 1)
            self.assertEqual(f['g'].attrs['fresh'], '1')
            self.assertEqual(f['g'].attrs['big'], 'x' * 65536)
            self.assertNotIn('str_scalar', f['g/x'].attrs)
            self.assertIn('str_scalar', f['g'].attrs)
            self.assertNotIn('bigraw', f['g'].attrs)
            self.assertEqual(f['g'].attrs['unité'], 'degrés')
        with tables.open_file(h5) as t:
            self.assertEqual(t.get_node('/g')._v_attrs['unité'], 'degrés')

    def test_kill_9_during_setfattr_leaves_each_attribute_before_or_after(self):
        h5 = fresh()
        old, new = b'0 1 2\n3 4 5', b'9 8 7\n6 5 4'
        acked = []
        m = harness.Mount(h5).start()
        try:
            g = m.p('g')

            def writer():
                for i in range(100000):
                    try:
                        os.setxattr(g, 'user.int_2d', new if i % 2 == 0 else old)
                        os.setxattr(g, 'user.n%d' % i, str(i).encode())
                    except OSError:
                        return
                    acked.append(i)
            t = threading.Thread(target=writer)
            t.start()
            deadline = time.monotonic() + 10
            while len(acked) < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            m.proc.send_signal(signal.SIGKILL)
            self.assertEqual(m.proc.wait(timeout=10), -signal.SIGKILL)
            t.join(10)
        finally:
            m.cleanup()
        self.assertGreaterEqual(len(acked), 20)
        with harness.Mount(h5):   # replays a journal the kill left
            pass
        with h5py.File(h5, 'r') as f:
            a = f['g'].attrs
            self.assertIn(a['int_2d'].tolist(), ([[0, 1, 2], [3, 4, 5]], [[9, 8, 7], [6, 5, 4]]))
            for i in acked:   # each setxattr that returned was committed, durably
                self.assertEqual(a['n%d' % i], str(i))
            self.assertEqual(a['str_scalar'], 'hello world')

    def test_read_only_mount_refuses_every_change_with_erofs(self):
        h5 = fresh()
        st = os.stat(h5)
        with harness.Mount(h5, ('-o', 'ro')) as m:
            for fn, args in ((os.setxattr, (m.p('g'), 'user.new', b'1')),
                             (os.removexattr, (m.p('g'), 'user.int_scalar')),
                             (os.chmod, (m.p('g/x'), 0o600)),
                             (os.chown, (m.p('g/x'), 1, 1)),
                             (os.utime, (m.p('g/x'), (0, 0)))):
                with self.subTest(fn=fn.__name__):
                    self.assertEqual(harness.errno_of(fn, *args), errno.EROFS)
        st2 = os.stat(h5)
        self.assertEqual((st2.st_mode, st2.st_uid, st2.st_mtime_ns), (st.st_mode, st.st_uid, st.st_mtime_ns))


class OwnersModesTimes(unittest.TestCase):

    def test_chmod_chown_touch_of_any_name_are_the_files_and_stay_across_a_remount(self):
        h5 = fresh()
        os.chmod(h5, 0o644)
        with harness.Mount(h5) as m:
            x = m.p('g/x')
            self.assertEqual(stat.S_IMODE(os.stat(x).st_mode), 0o644)
            r = run('chmod', '640', m.p('g/x.npy'))
            self.assertEqual((r.returncode, r.stderr), (0, ''))
            self.assertEqual(stat.S_IMODE(os.stat(m.p('g/x.npy')).st_mode), 0o640)
            self.assertEqual(stat.S_IMODE(os.stat(h5).st_mode), 0o640)
            poll(lambda: stat.S_IMODE(os.stat(x).st_mode), 0o640, 'x after chmod of x.npy')
            poll(lambda: stat.S_IMODE(os.stat(m.p('g')).st_mode), 0o750, 'g after chmod 640')
            # Bits a name cannot have are masked: no x bits on files, none of them shown.
            r = run('chmod', '2755', m.p('g'))
            self.assertEqual((r.returncode, r.stderr), (0, ''))
            self.assertEqual(stat.S_IMODE(os.stat(h5).st_mode), 0o755)
            self.assertEqual(stat.S_IMODE(os.stat(m.p('g')).st_mode), 0o755)
            poll(lambda: stat.S_IMODE(os.stat(x).st_mode), 0o644, 'x after chmod 2755 of g')
            r = run('chown', '1234:5678', m.p('g/y.shape'))
            self.assertEqual((r.returncode, r.stderr), (0, ''))
            self.assertEqual((os.stat(h5).st_uid, os.stat(h5).st_gid), (1234, 5678))
            poll(lambda: (os.stat(x).st_uid, os.stat(x).st_gid), (1234, 5678), 'x after chown')
            r = run('touch', '-d', '@%.9f' % T2020, x)
            self.assertEqual((r.returncode, r.stderr), (0, ''))
            self.assertEqual(os.stat(x).st_mtime_ns, os.stat(h5).st_mtime_ns)
            self.assertEqual(int(os.stat(x).st_mtime), int(T2020))
            poll(lambda: os.stat(m.p('plain')).st_mtime_ns, os.stat(h5).st_mtime_ns, 'plain after touch')
        self.assertEqual(int(os.stat(h5).st_mtime), int(T2020))
        with harness.Mount(h5) as m:
            for name in ('g/x', 'g/x.npy', 'plain', ''):
                st = os.stat(m.p(name))
                self.assertEqual((st.st_uid, st.st_gid, int(st.st_mtime)), (1234, 5678, int(T2020)), name)
            self.assertEqual(stat.S_IMODE(os.stat(m.p('g/y')).st_mode), 0o644)
        os.chown(h5, 0, 0)

    def test_a_mount_that_changes_nothing_leaves_the_files_times(self):
        h5 = fresh()
        os.utime(h5, ns=(int(T2020 * 1e9), int(T2020 * 1e9)))
        want = os.stat(h5).st_mtime_ns
        with harness.Mount(h5) as m:
            self.assertEqual(os.stat(m.p('g/x')).st_mtime_ns, want)
            read_file(m.p('g/x.npy'))
            os.getxattr(m.p('g'), 'user.int_2d')
            os.setxattr(m.p('g'), 'user.int_2d', os.getxattr(m.p('g'), 'user.int_2d'))  # same text
        self.assertEqual(os.stat(h5).st_mtime_ns, want)

    def test_a_change_after_touch_shows_its_own_time_and_moves_the_files(self):
        h5 = fresh()
        with harness.Mount(h5) as m:
            x = m.p('g/x')
            os.utime(x, (T2020, T2020))
            self.assertEqual(int(os.stat(m.p('g/y')).st_mtime), int(T2020))
            with open(x, 'ab') as fp:
                fp.write(np.array([1], dtype='<i4').tobytes())
            self.assertGreater(os.stat(x).st_mtime, T2020 + 1e6)
            self.assertEqual(int(os.stat(m.p('g/y')).st_mtime), int(T2020))
            # An attribute is a change of the file that no dataset's time shows: every name
            # shows the file's time again, which its commit moved.
            os.utime(x, (T2020, T2020))
            os.setxattr(m.p('g'), 'user.note', b'changed')
            want = os.stat(h5).st_mtime_ns
            self.assertGreater(want, (T2020 + 1e6) * 1e9)
            poll(lambda: os.stat(m.p('g/y')).st_mtime_ns, want, 'g/y after setxattr')
            poll(lambda: os.stat(m.p('g/x.shape')).st_mtime_ns, want, 'g/x.shape after setxattr')
        # The append was committed after the times were set: the file's time is the change's.
        self.assertGreater(os.stat(h5).st_mtime, T2020 + 1e6)

    def _source_tree(self):
        """A directory shaped like /g holding files named as its datasets, with xattrs."""
        src = os.path.join(harness.workdir(), 'src-%d' % time.monotonic_ns())
        os.makedirs(os.path.join(src, 'g'))
        x = os.path.join(src, 'g', 'x')
        with open(x, 'wb') as fp:
            fp.write((np.arange(X_ROWS, dtype='<i4') * 5).tobytes())
        os.setxattr(x, 'user.units', b'volt')
        os.setxattr(x, 'user.int_scalar', b'43')     # an existing <i8 attribute of x
        os.setxattr(os.path.join(src, 'g'), 'user.origin', 'rsync ünïcode'.encode())
        os.chmod(x, 0o640)
        os.chmod(os.path.join(src, 'g'), 0o750)
        os.utime(x, (T2020, T2020))
        os.utime(os.path.join(src, 'g'), (T2020 + 100, T2020 + 100))
        return src

    def _check_copied(self, h5, want_rows, mtime_ok):
        with h5py.File(h5, 'r') as f:
            np.testing.assert_array_equal(f['g/x'][:], want_rows)
            self.assertEqual(f['g/x'].attrs['units'], 'volt')
            self.assertEqual(f['g/x'].attrs['int_scalar'], 43)
            self.assertEqual(f['g/x'].attrs['int_scalar'].dtype, np.dtype('<i8'))
            self.assertEqual(f['g'].attrs['origin'], 'rsync ünïcode')
        with tables.open_file(h5) as t:
            self.assertEqual(t.get_node('/g/x').attrs['units'], 'volt')
        st = os.stat(h5)
        # Every name is the file: the last chmod and utimensat (the directory's) win.
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o750)
        self.assertTrue(mtime_ok(st.st_mtime), st.st_mtime)
        with harness.Mount(h5) as m:
            for name in ('g', 'g/x', 'g/x.npy'):
                self.assertEqual(os.stat(m.p(name)).st_mtime_ns, st.st_mtime_ns, name)
            self.assertEqual(stat.S_IMODE(os.stat(m.p('g/x')).st_mode), 0o640)
            self.assertEqual(stat.S_IMODE(os.stat(m.p('g')).st_mode), 0o750)

    def test_cp_a_onto_existing_datasets_exits_0_silently(self):
        h5 = fresh()
        src = self._source_tree()
        t0 = time.time()
        with harness.Mount(h5) as m:
            r = run('cp', '-a', os.path.join(src, 'g'), m.path)
            self.assertEqual((r.returncode, r.stderr), (0, ''))
            self.assertEqual(os.getxattr(m.p('g/x.shape'), 'user.units'), b'volt')
            self.assertEqual(read_file(m.p('g/x')), read_file(os.path.join(src, 'g', 'x')))
        # cp sets a file's attributes after its times, and an attribute is a change of the
        # HDF5 file: the file's time is that of the last one cp set (the directory's).
        self._check_copied(h5, np.arange(X_ROWS) * 5, lambda t: t >= t0 - 1)

    def test_rsync_aX_inplace_onto_existing_datasets_exits_0_silently(self):
        if shutil.which('rsync') is None:
            self.skipTest('rsync is not installed (contrib/deps installs it)')
        h5 = fresh()
        src = self._source_tree()
        with harness.Mount(h5) as m:
            r = run('rsync', '-aX', '--inplace', os.path.join(src, 'g') + '/', m.p('g') + '/')
            self.assertEqual((r.returncode, r.stderr), (0, ''))
            self.assertEqual(os.getxattr(m.p('g/x'), 'user.units'), b'volt')
            # A second run finds nothing to do for x's bytes, and still exits 0.
            r = run('rsync', '-aX', '--inplace', os.path.join(src, 'g') + '/', m.p('g') + '/')
            self.assertEqual((r.returncode, r.stderr), (0, ''))
        # rsync sets attributes, then modes, then times: the directory's times, the last set.
        self._check_copied(h5, np.arange(X_ROWS) * 5, lambda t: int(t) == int(T2020 + 100))

    def test_rsync_aX_of_security_attributes_reports_enotsup_unless_filtered(self):
        if shutil.which('rsync') is None:
            self.skipTest('rsync is not installed (contrib/deps installs it)')
        h5 = fresh()
        src = self._source_tree()
        os.setxattr(os.path.join(src, 'g', 'x'), 'security.h5mount-test', b'1')
        with harness.Mount(h5) as m:
            r = run('rsync', '-aX', '--inplace', os.path.join(src, 'g') + '/', m.p('g') + '/')
            self.assertEqual(r.returncode, 23)
            self.assertIn('security.h5mount-test', r.stderr)
            self.assertIn('Operation not supported', r.stderr)
            r = run('rsync', '-aX', '--inplace', '--filter=-x security.*',
                    os.path.join(src, 'g') + '/', m.p('g') + '/')
            self.assertEqual((r.returncode, r.stderr), (0, ''))
            self.assertEqual(os.getxattr(m.p('g/x'), 'user.units'), b'volt')
            self.assertIn("setxattr 'security.h5mount-test': not supported", m.stderr_text())


if __name__ == '__main__':
    harness.run_tests(tools=('setfattr', 'getfattr'))
