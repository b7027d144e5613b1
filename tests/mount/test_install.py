"""h5mount as installed: `meson install` into a temporary DESTDIR puts h5mount in bin and
h5mount(1) in share/man/man1; `man -l` renders the page without a warning; --help lists each
option once and all of them are in the page; and the mount helper path works for real:
`mount -t fuse.h5mount FILE DIR -o ro`, `mount -a -T FSTAB` and `mount -T FSTAB DIR` (mount(8)
runs /sbin/mount.fuse3, which runs `h5mount FILE DIR -o OPTS` through /bin/sh with the
default PATH: mount(8) drops the caller's PATH). Those run in a private mount namespace
(unshare -m) in which the installed bin directory is bind-mounted over /usr/local/bin, so the
host is not touched; what they read is compared with h5py. Usage:

    /usr/bin/python3 tests/mount/test_install.py build/h5mount [TestClass[.test_name] ...]
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h5py                 # noqa: E402
import numpy as np          # noqa: E402

import harness              # noqa: E402
import mounting             # noqa: E402

RUN_TIMEOUT = 60.0
ROWS, COLS = 300, 40
INST = {}


def setUpModule():
    d = harness.workdir()
    INST['h5'] = make_file(os.path.join(d, 'run1.h5'))
    build = os.path.dirname(harness.EXE)
    dest = os.path.join(d, 'dest')
    meson = shutil.which('meson')
    if meson is None:
        raise unittest.SkipTest('meson is not on PATH')
    r = subprocess.run([meson, 'install', '-C', build, '--no-rebuild', '--quiet',
                        '--destdir', dest], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    INST['install'] = (r.returncode, r.stdout + r.stderr)
    INST['bin'] = INST['man'] = None
    for root, dirs, files in os.walk(dest):
        if os.path.basename(root) == 'bin' and 'h5mount' in files:
            INST['bin'] = root
        if root.endswith(os.path.join('share', 'man', 'man1')) and 'h5mount.1' in files:
            INST['man'] = os.path.join(root, 'h5mount.1')


def make_file(path):
    """A chunked, compressed, growable dataset and a small contiguous one."""
    with h5py.File(path, 'w') as f:
        f.create_dataset('g/ear', data=np.sin(np.arange(ROWS * COLS, dtype='<f8')).reshape(ROWS, COLS),
                         chunks=(64, COLS), compression='gzip', maxshape=(None, COLS))
        f['ids'] = np.arange(1000, dtype='<i4')
    return path


def expected(path):
    with h5py.File(path, 'r') as f:
        return {'g/ear': harness.read_as_stored(f['g/ear']), 'ids': harness.read_as_stored(f['ids']),
                'shape': tuple(f['g/ear'].shape)}


def wait_for_daemons(mountpoints):
    """Waits (deadline) for the daemons of `mountpoints` to exit; kills what outlives it.
    Returns the pids that had to be killed."""
    if not harness.wait_until(lambda: not mounting.daemons_serving(mountpoints), harness.MOUNT_TIMEOUT):
        stuck = mounting.daemons_serving(mountpoints)
        for pid in stuck:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        return stuck
    return []


def in_namespace(script, mountpoints):
    """Runs the sh `script` in a private mount namespace where the installed bin directory
    is /usr/local/bin. Whatever happens, the mounts are undone on its way out and the daemons
    waited for (killed after the deadline). Returns (status, output)."""
    guard = ''.join('mountpoint -q "%s" && umount -l "%s"; ' % (m, m) for m in mountpoints)
    full = 'set -e\ntrap \'%s:\' EXIT\nmount --bind "%s" /usr/local/bin\n%s\n' % (
        guard, INST['bin'], script)
    try:
        r = subprocess.run(['unshare', '--mount', '--propagation', 'private', 'sh', '-c', full],
                           capture_output=True, text=True, timeout=RUN_TIMEOUT)
        status, out = r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        status, out = 'timeout', str(e)
    stuck = wait_for_daemons(mountpoints)
    if stuck:
        out += '\n(daemons %r outlived their unmount and were killed)' % stuck
        status = status or 'stuck'
    return status, out


class Installed(unittest.TestCase):
    """meson install's result: the binary, the manual page and --help."""

    def test_meson_install_puts_h5mount_in_bin_and_the_man_page_in_man1(self):
        self.assertEqual(INST['install'][0], 0, INST['install'][1])
        self.assertIsNotNone(INST['bin'], 'no bin/h5mount installed')
        self.assertIsNotNone(INST['man'], 'no share/man/man1/h5mount.1 installed')
        # Both under one prefix.
        prefix = os.path.dirname(INST['bin'])
        self.assertEqual(INST['man'], os.path.join(prefix, 'share', 'man', 'man1', 'h5mount.1'))
        r = subprocess.run([os.path.join(INST['bin'], 'h5mount'), '--version'],
                           capture_output=True, text=True, timeout=RUN_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith('h5mount '), r.stdout)

    def man(self, *args):
        if INST['man'] is None:
            self.fail('no man page installed')
        env = dict(os.environ, LC_ALL='C.UTF-8', MANWIDTH='80', MANROFFSEQ='')
        return subprocess.run(['man'] + list(args) + ['-l', INST['man']], capture_output=True,
                              text=True, env=env, timeout=RUN_TIMEOUT)

    def test_man_l_renders_the_page_without_warnings(self):
        r = self.man('--warnings', '-E', 'UTF-8', '-Tutf8', '-Z')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, '', 'groff warnings')
        text = self.man('-P', 'cat').stdout
        for section in ('NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'VIEWS', 'WRITING',
                        'DURABILITY', 'EXIT STATUS', 'EXAMPLES'):
            self.assertRegex(text, r'(?m)^%s' % section)
        self.assertIn('fuse.h5mount', text)

    def test_help_lists_each_option_once_and_the_man_page_has_them_all(self):
        r = subprocess.run([harness.EXE, '--help'], capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        tags = re.findall(r'(?m)^    (-\S+(?: \S+)?)(?: {2,}|$)', r.stdout)
        for want in ('-o ro', '-o cache_size=SIZE', '-o dirty_limit=SIZE', '-o nocheck',
                     '-f', '-d', '-s', '-o allow_other', '-o auto_unmount', '-o max_threads=N',
                     '-h, --help', '-V, --version'):
            self.assertIn(want, tags)
        self.assertEqual(len(tags), len(set(tags)), 'an option is listed twice: %r' % tags)
        page = self.man('-P', 'cat').stdout
        page = re.sub(r'\s+', ' ', page.replace('\u2010', '-').replace('\u2212', '-'))
        for tag in tags:
            self.assertIn(tag, page)


class MountHelper(unittest.TestCase):
    """mount(8), /sbin/mount.fuse3 and an fstab line run the installed h5mount."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest('mount(8) and unshare need root')
        for tool in ('unshare', 'mount', 'umount', 'mountpoint', 'findmnt'):
            if shutil.which(tool) is None:
                raise unittest.SkipTest('%s is missing (util-linux, mount)' % tool)
        if not os.path.exists('/sbin/mount.fuse3'):
            raise unittest.SkipTest('/sbin/mount.fuse3 is missing (fuse3)')
        if INST.get('bin') is None:
            raise unittest.SkipTest('nothing installed (see Installed)')
        cls.exp = expected(INST['h5'])

    def out(self, name):
        return os.path.join(self.outdir, name)

    def setUp(self):
        self.outdir = harness.new_mountpoint()

    def assertCopied(self, prefix, exp):
        with open(self.out(prefix + '.ear'), 'rb') as fp:
            harness.assert_bytes_equal(fp.read(), exp['g/ear'], prefix + ' g/ear')
        with open(self.out(prefix + '.ids'), 'rb') as fp:
            harness.assert_bytes_equal(fp.read(), exp['ids'], prefix + ' ids')
        with open(self.out(prefix + '.shape')) as fp:
            self.assertEqual(fp.read(), '%d %d\n' % exp['shape'])
        arr = np.load(self.out(prefix + '.npy'), mmap_mode='r')
        self.assertEqual(arr.tobytes(), exp['g/ear'])

    def copy_out(self, mnt, prefix):
        return ('cat "{m}/g/ear" > "{o}.ear"; cat "{m}/ids" > "{o}.ids"; '
                'cat "{m}/g/ear.shape" > "{o}.shape"; cat "{m}/g/ear.npy" > "{o}.npy"; '
                'findmnt -J -o SOURCE,FSTYPE,OPTIONS "{m}" > "{o}.findmnt"\n'
                .format(m=mnt, o=self.out(prefix)))

    def findmnt(self, prefix):
        with open(self.out(prefix + '.findmnt')) as fp:
            fs = json.load(fp)['filesystems'][0]
        return fs['source'], fs['fstype'], fs['options'].split(',')

    def test_mount_t_fuse_h5mount_runs_the_installed_h5mount(self):
        mnt = harness.new_mountpoint()
        script = 'mount -t fuse.h5mount "%s" "%s" -o ro\n' % (INST['h5'], mnt)
        script += self.copy_out(mnt, 't') + 'umount "%s"\n' % mnt
        status, out = in_namespace(script, [mnt])
        self.assertEqual(status, 0, out)
        self.assertCopied('t', self.exp)
        source, fstype, options = self.findmnt('t')
        self.assertEqual((source, fstype), (INST['h5'], 'fuse.h5mount'))
        self.assertIn('ro', options)
        self.assertFalse(harness.is_mounted(mnt))

    def test_fstab_line_mounts_with_mount_a_read_only_for_all_users(self):
        mnt = harness.new_mountpoint()
        fstab = self.out('fstab')
        with open(fstab, 'w') as fp:
            fp.write('# h5mount test\n%s %s fuse.h5mount ro,nofail,allow_other,x-test=1 0 0\n'
                     % (INST['h5'], mnt))
        script = 'mount -a -T "%s"\n' % fstab + self.copy_out(mnt, 'a') + 'umount "%s"\n' % mnt
        status, out = in_namespace(script, [mnt])
        self.assertEqual(status, 0, out)
        self.assertCopied('a', self.exp)
        source, fstype, options = self.findmnt('a')
        self.assertEqual((source, fstype), (INST['h5'], 'fuse.h5mount'))
        self.assertIn('ro', options)
        self.assertIn('allow_other', options)

    def test_noauto_fstab_line_mounts_by_mount_point_read_write_and_appends(self):
        path = harness.fresh_copy(INST['h5'], 'rw copy.h5')
        mnt = harness.new_mountpoint()
        fstab = self.out('fstab')
        with open(fstab, 'w') as fp:
            fp.write('%s %s fuse.h5mount rw,nofail,noauto,_netdev,user,x-systemd.automount 0 0\n'
                     % (path.replace(' ', '\\040'), mnt))
        rows = np.full((3, COLS), 2.5, dtype='<f8')
        with open(self.out('rows.bin'), 'wb') as fp:
            fp.write(rows.tobytes())
        script = ('mount -a -T "{f}"\n'             # noauto: mount -a leaves it alone
                  'if mountpoint -q "{m}"; then echo "mount -a mounted noauto" >&2; exit 1; fi\n'
                  'mount -T "{f}" "{m}"\n'
                  'cat "{o}" >> "{m}/g/ear"\n'
                  'findmnt -J -o SOURCE,FSTYPE,OPTIONS "{m}" > "{o}.findmnt"\n'
                  'umount "{m}"\n').format(f=fstab, m=mnt, o=self.out('rows.bin'))
        status, out = in_namespace(script, [mnt])
        self.assertEqual(status, 0, out)
        source, fstype, options = self.findmnt('rows.bin')
        self.assertEqual((source, fstype), (path, 'fuse.h5mount'))
        self.assertIn('rw', options)
        # The daemon has exited (in_namespace waited): the file has the rows, committed.
        with h5py.File(path, 'r') as f:
            self.assertEqual(f['g/ear'].shape, (ROWS + 3, COLS))
            np.testing.assert_array_equal(f['g/ear'][ROWS:], rows)
            self.assertEqual(harness.read_as_stored(f['g/ear'])[:ROWS * COLS * 8],
                             self.exp['g/ear'])


    def test_drop_privileges_is_refused_in_words(self):
        # mount.fuse3 would mount by itself, without default_permissions and the file's
        # path, and hand h5mount /dev/fd/N: refused, one line.
        mnt = harness.new_mountpoint()
        script = 'mount -t fuse.h5mount "%s" "%s" -o ro,drop_privileges\n' % (INST['h5'], mnt)
        status, out = in_namespace(script, [mnt])
        self.assertNotEqual(status, 0, out)
        self.assertIn("(-o drop_privileges) is not supported", out)
        self.assertNotIn('Not a directory', out)


class HelperArguments(unittest.TestCase):
    """h5mount called the way mount.fuse3 calls it: FILE MOUNTPOINT -o OPTIONS, with the
    options of fstab and mount(8) that mean nothing to it."""

    def test_file_mountpoint_then_o_with_ignored_mount_options(self):
        exp = expected(INST['h5'])
        mnt = harness.new_mountpoint()
        opts = 'ro,dev,suid,nofail,noauto,auto,_netdev,user,users,nouser,defaults,x-gvfs-show,comment=x'
        r = subprocess.run([harness.EXE, INST['h5'], mnt, '-o', opts], capture_output=True,
                           text=True, timeout=RUN_TIMEOUT)
        try:
            self.assertEqual(r.returncode, 0, r.stderr)
            # Nothing but, where nothing listens on /dev/log, where the daemon logs instead.
            self.assertRegex(r.stderr, r'^(h5mount: no syslog \(nothing listens on /dev/log\): '
                             r'logging to \S+/h5mount\.log\n)?$')
            self.assertTrue(harness.wait_until(lambda: os.path.ismount(mnt), harness.MOUNT_TIMEOUT))
            harness.assert_bytes_equal(harness.read_file(os.path.join(mnt, 'g', 'ear')),
                                       exp['g/ear'], 'g/ear')
        finally:
            if harness.is_mounted(mnt):
                harness.fusermount_unmount(mnt)
            stuck = wait_for_daemons([mnt])
        self.assertEqual(stuck, [])


if __name__ == '__main__':
    harness.run_tests(tools=('man',))
