"""Other users and hostile links: with `-o allow_other` the kernel checks every access against
the HDF5 file's own owner, group and mode (views and directories show them), and no soft or
external link in a file can make a symlink that leads out of the mount unless the user asks
for host paths with `-o external_links=host`. Needs root (a second user, `h5m-other`, is
created with useradd when missing; commands run as it through setpriv). Usage:

    /usr/bin/python3 tests/mount/test_security.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402

import harness              # noqa: E402
from harness import read_file   # noqa: E402

OTHER = 'h5m-other'
RUN_TIMEOUT = 30.0
ROWS = np.arange(32, dtype='<i4').reshape(8, 4)
DANGLING = 'h5mount-dangling:'

# What the other user's probe does to each path; one errno (or 0) per operation.
PROBE = r'''
import errno, json, mmap, os, sys
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = 0
    except OSError as e:
        out[name] = e.errno
def mmap_write(p):
    with open(p, 'r+b') as fp:
        with mmap.mmap(fp.fileno(), 0) as mm:
            mm[0:4] = b'\xff\xff\xff\xff'
            mm.flush()
def read_all(p):
    with open(p, 'rb') as fp:
        fp.read()
ops = json.loads(sys.argv[1])
for name, op, p in ops:
    if op == 'read':
        attempt(name, lambda: read_all(p))
    elif op == 'list':
        attempt(name, lambda: os.listdir(p))
    elif op == 'stat':
        attempt(name, lambda: os.stat(p))
    elif op == 'mmap_write':
        attempt(name, lambda: mmap_write(p))
    elif op == 'append_row':
        def app():
            with open(p, 'ab') as fp:
                fp.write(bytes(range(16)))
        attempt(name, app)
print(json.dumps(out))
'''


def other_ids():
    """(uid, gid) of OTHER, created with useradd when missing (idempotent)."""
    try:
        pw = pwd.getpwnam(OTHER)
    except KeyError:
        r = subprocess.run(['useradd', '--system', '--no-create-home', '--home-dir', '/nonexistent',
                            '--shell', '/usr/sbin/nologin', OTHER], capture_output=True, text=True)
        if r.returncode not in (0, 9):          # 9: created meanwhile by someone else
            raise AssertionError('useradd %s failed: %s' % (OTHER, r.stderr.strip()))
        pw = pwd.getpwnam(OTHER)
    return pw.pw_uid, pw.pw_gid


def as_other():
    uid, gid = other_ids()
    return ['setpriv', '--reuid=%d' % uid, '--regid=%d' % gid, '--clear-groups']


def run_as_other(argv, stdin=None):
    """Runs argv as OTHER; returns the CompletedProcess (text)."""
    return subprocess.run(as_other() + list(argv), input=stdin, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)


def probe_as_other(ops):
    """Runs PROBE as OTHER on ops [(name, op, path)]; returns {name: errno or 0}."""
    r = run_as_other(['/usr/bin/python3', '-c', PROBE, json.dumps(ops)])
    if r.returncode != 0:
        raise AssertionError('probe failed: %s' % r.stderr)
    return json.loads(r.stdout)


def shared_dir():
    """A new directory every user can traverse (the workdir is made 0711 for this)."""
    os.chmod(harness.workdir(), 0o711)
    d = tempfile.mkdtemp(prefix='shared-', dir=harness.workdir())
    os.chmod(d, 0o755)
    return d


def make_rows_file(path, mode, owner=None):
    """A file with a growable int32 dataset `x` (ROWS) and a vlen dataset `v`, chmod'ed to
    mode and chown'ed to owner (uid, gid) when given."""
    with h5py.File(path, 'w') as f:
        f.create_dataset('x', data=ROWS, maxshape=(None, 4), chunks=(4, 4))
        v = f.create_dataset('g/v', (2,), dtype=h5py.vlen_dtype(np.dtype('<i4')))
        v[0] = np.arange(3, dtype='<i4')
        v[1] = np.arange(2, dtype='<i4')
    os.chmod(path, mode)
    if owner:
        os.chown(path, *owner)
    return path


def stored(path, name='x'):
    with h5py.File(path, 'r') as f:
        return f[name][()]


def errname(e):
    return errno.errorcode.get(e, str(e)) if e else 'succeeded'


class SecurityCase(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        other_ids()

    def mount(self, h5, opts=(), **kw):
        mp = tempfile.mkdtemp(prefix='mnt-', dir=os.path.dirname(h5))
        os.chmod(mp, 0o755)
        m = harness.Mount(h5, list(opts), mountpoint=mp, **kw)
        self.addCleanup(m.cleanup)
        return m.start()

    def unmount(self, m):
        problem = m.cleanup()
        self.assertIsNone(problem, m.stderr_text())


# ====================================================================== other users

class OtherUsers(SecurityCase):

    def test_other_user_reads_but_cannot_change_a_root_owned_0644_dataset(self):
        h5 = make_rows_file(os.path.join(shared_dir(), 'root644.h5'), 0o644)
        m = self.mount(h5, ['-o', 'allow_other'])
        x, shape = m.p('x'), m.p('x.shape')
        r = run_as_other(['cat', x])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run_as_other(['cat', shape])
        self.assertEqual((r.returncode, r.stdout), (0, '8 4\n'), r.stderr)
        self.assertEqual(probe_as_other([('read npy', 'read', m.p('x.npy'))]), {'read npy': 0})
        commands = {
            'dd conv=notrunc': ['dd', 'if=/dev/zero', 'of=' + x, 'bs=16', 'count=1', 'conv=notrunc',
                                'status=none'],
            'cat >>': ['sh', '-c', 'cat >> "$1"', 'sh', x],
            'truncate -s': ['truncate', '-s', '16', x],
            ': > (O_TRUNC)': ['sh', '-c', ': > "$1"', 'sh', x],
            ': > x.npy': ['sh', '-c', ': > "$1"', 'sh', m.p('x.npy')],
            'write x.shape': ['sh', '-c', 'echo "2 4" > "$1"', 'sh', shape],
        }
        wrong = {}
        for what, argv in commands.items():
            r = run_as_other(argv, stdin='0123456789abcdef')
            if r.returncode == 0 or 'Permission denied' not in r.stderr:
                wrong[what] = (r.returncode, r.stderr.strip())
        self.assertEqual(wrong, {}, 'these did not fail with "Permission denied"')
        got = probe_as_other([('mmap r+ x', 'mmap_write', x), ('mmap r+ x.npy', 'mmap_write', m.p('x.npy')),
                              ('append x', 'append_row', x)])
        self.assertEqual({k: errname(v) for k, v in got.items()},
                         {k: 'EACCES' for k in got})
        self.assertEqual(read_file(x), ROWS.tobytes())
        self.unmount(m)
        np.testing.assert_array_equal(stored(h5), ROWS)

    def test_a_0600_root_file_is_closed_to_other_users(self):
        h5 = make_rows_file(os.path.join(shared_dir(), 'root600.h5'), 0o600)
        m = self.mount(h5, ['-o', 'allow_other'])
        modes = {n: stat.S_IMODE(os.lstat(m.p(n)).st_mode) for n in ('x', 'x.npy', 'x.shape', 'g')}
        modes['/'] = stat.S_IMODE(os.stat(m.path).st_mode)
        self.assertEqual(modes, {'x': 0o600, 'x.npy': 0o600, 'x.shape': 0o600, 'g': 0o700, '/': 0o700})
        got = probe_as_other([('list /', 'list', m.path), ('list g', 'list', m.p('g')),
                              ('read x', 'read', m.p('x')), ('read x.npy', 'read', m.p('x.npy')),
                              ('read x.shape', 'read', m.p('x.shape')), ('stat x', 'stat', m.p('x'))])
        self.assertEqual({k: errname(v) for k, v in got.items()}, {k: 'EACCES' for k in got})
        r = run_as_other(['ls', m.path])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('Permission denied', r.stderr)
        self.assertEqual(read_file(m.p('x')), ROWS.tobytes())      # root still reads it
        self.unmount(m)

    def test_a_file_of_the_other_user_shows_its_owner_and_mode_and_takes_its_writes(self):
        uid, gid = other_ids()
        h5 = make_rows_file(os.path.join(shared_dir(), 'theirs.h5'), 0o640, owner=(uid, gid))
        m = self.mount(h5, ['-o', 'allow_other'])
        seen = {}
        for n in ('', 'x', 'x.npy', 'x.shape', 'g', 'g/v', 'g/v.offsets'):
            st = os.lstat(m.p(n)) if n else os.stat(m.path)
            seen[n or '/'] = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
        self.assertEqual(seen, {'/': (uid, gid, 0o750), 'x': (uid, gid, 0o640), 'x.npy': (uid, gid, 0o640),
                                'x.shape': (uid, gid, 0o640), 'g': (uid, gid, 0o750),
                                'g/v': (uid, gid, 0o440), 'g/v.offsets': (uid, gid, 0o440)})
        got = probe_as_other([('append x', 'append_row', m.p('x'))])
        self.assertEqual(got, {'append x': 0})
        self.unmount(m)
        np.testing.assert_array_equal(stored(h5), np.vstack([ROWS, np.arange(16, dtype=np.uint8)
                                                             .view('<i4').reshape(1, 4)]))

    def test_read_only_mount_shows_no_write_bits(self):
        h5 = make_rows_file(os.path.join(shared_dir(), 'ro.h5'), 0o640)
        m = self.mount(h5, ['-o', 'ro'])
        modes = {}
        for root, dirs, files in os.walk(m.path):
            for n in dirs + files:
                p = os.path.join(root, n)
                modes[os.path.relpath(p, m.path)] = stat.S_IMODE(os.lstat(p).st_mode)
        modes['/'] = stat.S_IMODE(os.stat(m.path).st_mode)
        want = {'/': 0o550, 'g': 0o550}
        want.update({n: 0o440 for n in ('x', 'x.npy', 'x.shape', 'g/v', 'g/v.npy', 'g/v.shape', 'g/v.offsets')})
        self.assertEqual(modes, want)
        self.unmount(m)

    def test_read_write_mount_takes_the_file_mode_minus_write_bits_of_views_that_take_no_writes(self):
        h5 = make_rows_file(os.path.join(shared_dir(), 'rw.h5'), 0o664)
        m = self.mount(h5)
        modes = {n: stat.S_IMODE(os.lstat(m.p(n)).st_mode)
                 for n in ('x', 'x.npy', 'x.shape', 'g', 'g/v', 'g/v.offsets')}
        self.assertEqual(modes, {'x': 0o664, 'x.npy': 0o664, 'x.shape': 0o664, 'g': 0o775,
                                 'g/v': 0o444, 'g/v.offsets': 0o444})
        self.unmount(m)


# ====================================================================== links

class HostileLinks(SecurityCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Layout: W/victim.txt and W/p/data are host files; W/box/hostile.h5 is mounted at
        # W/box/mnt-*, so "../../../../p/data" from mnt/p/G climbs to W/p/data.
        cls.w = shared_dir()
        cls.victim = os.path.join(cls.w, 'victim.txt')
        with open(cls.victim, 'wb') as fp:
            fp.write(b'host file, must not change\n')
        os.mkdir(os.path.join(cls.w, 'p'))
        with open(os.path.join(cls.w, 'p', 'data'), 'wb') as fp:
            fp.write(b'host bytes outside the mount\n')
        box = os.path.join(cls.w, 'box')
        os.mkdir(box)
        os.chmod(box, 0o755)
        cls.h5 = os.path.join(box, 'hostile.h5')
        up = '/..' * 12
        with h5py.File(cls.h5, 'w') as f:
            f.create_dataset('a/b/data', data=np.arange(6, dtype='<i4'))
            f['a/b/evil'] = h5py.SoftLink('/../../../../../../etc/passwd')
            f['a/b/evil_rel'] = h5py.SoftLink('../../etc/passwd')
            f['a/b/evil_victim'] = h5py.SoftLink(up + cls.victim)
            f['a/b/ext'] = h5py.ExternalLink('/etc', 'passwd')
            f['a/b/ext_up'] = h5py.ExternalLink('../../../etc/hosts', '/x')
            f['a/b/ext_victim'] = h5py.ExternalLink(cls.w, 'victim.txt')
            f['a/b/ext_rel'] = h5py.ExternalLink('other.h5', '/d')
            f['a/b/good_abs'] = h5py.SoftLink('/a/b/data')
            f['a/b/good_dot'] = h5py.SoftLink('//a/./b//data')
            f['a/good_rel'] = h5py.SoftLink('b/data')
            f['a/b/to_root'] = h5py.SoftLink('/')
            f['top_root'] = h5py.SoftLink('/')
            # One group under two names at different depths: /p/G and /q/r/s/G.
            g = f.create_group('p/G')
            f['q/r/s/G'] = g
            f.create_dataset('p/data', data=np.arange(3, dtype='<i2'))
            g['up'] = h5py.SoftLink('/p/data')

    def link_texts(self, m, names):
        return {n: os.readlink(m.p(n)) for n in names}

    def assert_stays_inside(self, m, name):
        """Resolving `name` never reaches a host file: its real path is inside the mount, and
        opening it finds nothing."""
        real = os.path.realpath(m.p(name))
        self.assertTrue(real.startswith(m.path + os.sep), '%s resolves to %s' % (name, real))
        self.assertEqual(harness.errno_of(open, m.p(name), 'rb'), errno.ENOENT, name)

    def test_hostile_links_are_dangling_single_components(self):
        m = self.mount(self.h5)
        got = self.link_texts(m, ['a/b/evil', 'a/b/evil_rel', 'a/b/ext', 'a/b/ext_up', 'a/b/ext_rel'])
        self.assertEqual(got, {
            'a/b/evil': DANGLING + 'soft:%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd',
            'a/b/evil_rel': DANGLING + 'soft:..%2F..%2Fetc%2Fpasswd',
            'a/b/ext': DANGLING + 'external:%2Fetc%2F%2Fpasswd',
            'a/b/ext_up': DANGLING + 'external:..%2F..%2F..%2Fetc%2Fhosts%2F%2Fx',
            'a/b/ext_rel': DANGLING + 'external:other.h5%2F%2Fd',
        })
        self.assertEqual(os.readlink(m.p('a/b/evil_victim')),
                         DANGLING + 'soft:' + (('/..' * 12) + self.victim).replace('/', '%2F'))
        self.assertEqual(os.readlink(m.p('a/b/ext_victim')),
                         DANGLING + 'external:' + (self.w + '//victim.txt').replace('/', '%2F'))
        for n in ('a/b/evil', 'a/b/evil_rel', 'a/b/evil_victim', 'a/b/ext', 'a/b/ext_up', 'a/b/ext_victim'):
            self.assert_stays_inside(m, n)
        err = m.stderr_text()
        self.assertIn("/a/b/evil: soft link to '/../../../../../../etc/passwd' shown dangling", err)
        self.assertIn("/a/b/ext: external link to '/etc//passwd' shown dangling "
                      "(mount with -o external_links=host", err)
        self.unmount(m)

    def test_a_long_hostile_target_is_cut_to_one_255_byte_component(self):
        h5 = os.path.join(shared_dir(), 'long.h5')
        with h5py.File(h5, 'w') as f:
            f['l'] = h5py.SoftLink('/..' * 200 + '/%')
        m = self.mount(h5)
        text = os.readlink(m.p('l'))
        self.assertEqual(len(text), 255)
        self.assertEqual(text, (DANGLING + 'soft:' + '%2F..' * 200)[:255])
        self.unmount(m)

    def test_writes_through_hostile_links_do_not_touch_host_files(self):
        m = self.mount(self.h5)
        for n in ('a/b/evil_victim', 'a/b/ext_victim'):
            self.assertEqual(harness.errno_of(open, m.p(n), 'r+b'), errno.ENOENT, n)
            # O_CREAT follows the dangling symlink to a new name in a/b: refused.
            self.assertEqual(harness.errno_of(open, m.p(n), 'wb'), errno.EPERM, n)
            self.assertEqual(harness.errno_of(open, m.p(n), 'ab'), errno.EPERM, n)
        self.unmount(m)
        self.assertEqual(read_file(self.victim), b'host file, must not change\n')

    def test_good_links_resolve_to_their_dataset_inside_the_mount(self):
        m = self.mount(self.h5)
        self.assertEqual(self.link_texts(m, ['a/b/good_abs', 'a/b/good_dot', 'a/good_rel', 'a/b/to_root',
                                             'top_root']),
                         {'a/b/good_abs': '../../a/b/data', 'a/b/good_dot': '../../a/b/data',
                          'a/good_rel': 'b/data', 'a/b/to_root': '../..', 'top_root': '.'})
        want = np.arange(6, dtype='<i4').tobytes()
        for n in ('a/b/good_abs', 'a/b/good_dot', 'a/good_rel'):
            self.assertEqual(read_file(m.p(n)), want, n)
            self.assertEqual(os.path.realpath(m.p(n)), os.path.join(m.path, 'a/b/data'))
        self.assertTrue(os.path.samefile(m.p('a/b/to_root'), m.path))
        self.assertTrue(os.path.samefile(m.p('top_root'), m.path))
        self.unmount(m)

    def test_absolute_link_in_a_group_linked_at_two_depths_does_not_climb_out(self):
        m = self.mount(self.h5)
        # Meet the group first at its deeper name, then resolve the link through the other one.
        os.listdir(m.p('q/r/s/G'))
        text = os.readlink(m.p('p/G/up'))
        self.assertTrue(text.startswith(DANGLING + 'soft:'), text)
        self.assert_stays_inside(m, 'p/G/up')
        self.assert_stays_inside(m, 'q/r/s/G/up')
        self.assertIn("/up: soft link to '/p/data' shown dangling: its group is linked under more than one name",
                      m.stderr_text())
        self.unmount(m)

    def test_external_links_host_option_shows_host_paths(self):
        m = self.mount(self.h5, ['-o', 'external_links=host'])
        base = os.path.dirname(self.h5)
        self.assertEqual(self.link_texts(m, ['a/b/ext', 'a/b/ext_up', 'a/b/ext_rel']),
                         {'a/b/ext': '/etc//passwd', 'a/b/ext_up': base + '/../../../etc/hosts//x',
                          'a/b/ext_rel': base + '/other.h5//d'})
        # Soft links are unchanged by the option.
        self.assertTrue(os.readlink(m.p('a/b/evil')).startswith(DANGLING + 'soft:'))
        self.unmount(m)

    def test_invalid_external_links_value_is_a_one_line_error(self):
        mp = tempfile.mkdtemp(prefix='mnt-', dir=harness.workdir())
        r = subprocess.run([harness.EXE, '-f', '-o', 'external_links=bogus', self.h5, mp],
                           capture_output=True, text=True, timeout=RUN_TIMEOUT)
        if harness.is_mounted(mp):
            harness.fusermount_unmount(mp)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stderr, "h5mount: invalid external_links 'bogus' (expected dangling or host)\n")


def skip_reason():
    if os.geteuid() != 0:
        return 'needs root to create and act as a second user'
    for tool in ('setpriv', 'useradd'):
        if shutil.which(tool) is None:
            return '%s is not installed' % tool
    return None


if __name__ == '__main__':
    if skip_reason():
        print('SKIP: ' + skip_reason())
        sys.exit(77)        # meson's skip status; a class-level skip would run no test and fail
    harness.run_tests()
