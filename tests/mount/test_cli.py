"""Command-line behaviour of h5mount: every startup error gives one `h5mount: ` line on
stderr, a non-zero status and no HDF5 error stack; --help/--version; and the mount
options (-s, -d, -o ro, -o cache_size=, background mode) serve the same bytes. Usage:

    /usr/bin/python3 tests/mount/test_cli.py build/h5mount [TestClass[.test_name] ...]
"""

import os
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402

import fixtures             # noqa: E402
import harness              # noqa: E402
from harness import read_file   # noqa: E402

FIX = {}
RUN_TIMEOUT = 20.0


def setUpModule():
    d = harness.workdir()
    FIX['types'] = fixtures.make_types(os.path.join(d, 'types.h5'))
    FIX.update(fixtures.make_cli_files(d, FIX['types']))
    FIX['regular_file'] = os.path.join(d, 'plain-file')
    with open(FIX['regular_file'], 'w') as fp:
        fp.write('I am not a directory\n')


def run_h5mount(args, mountpoint=None):
    """Runs h5mount with args; returns (status, stdout, stderr) as text.

    If it is still running after RUN_TIMEOUT s, or left mountpoint mounted, the mount is
    removed, the process killed, and AssertionError raised: a startup error must exit."""
    proc = subprocess.Popen([harness.EXE] + list(args), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        if mountpoint and harness.is_mounted(mountpoint):
            harness.fusermount_unmount(mountpoint)
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError('h5mount %r did not exit within %.0f s; stderr: %r'
                             % (args, RUN_TIMEOUT, err))
    if mountpoint and harness.is_mounted(mountpoint):
        harness.fusermount_unmount(mountpoint)
        raise AssertionError('h5mount %r mounted %s instead of failing' % (args, mountpoint))
    return proc.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')


class Errors(unittest.TestCase):
    """Each startup error: one line `h5mount: ...`, non-zero status, no HDF5-DIAG."""

    def assertOneLineError(self, args, *needles, mountpoint=None):
        status, out, err = run_h5mount(args, mountpoint)
        self.assertNotEqual(status, 0, 'h5mount %r exited 0; stderr %r' % (args, err))
        self.assertNotIn('HDF5-DIAG', err)
        lines = err.rstrip('\n').split('\n')
        self.assertEqual(len(lines), 1, 'expected one stderr line, got %r' % err)
        self.assertTrue(lines[0].startswith('h5mount: '), repr(lines[0]))
        for needle in needles:
            self.assertIn(needle, lines[0])
        return lines[0]

    def test_missing_file_reports_no_such_file_and_the_path(self):
        mnt = harness.new_mountpoint()
        missing = os.path.join(harness.workdir(), 'does-not-exist.h5')
        self.assertOneLineError(['-f', missing, mnt], 'No such file or directory', missing,
                                mountpoint=mnt)

    def test_text_file_reports_is_not_an_hdf5_file(self):
        mnt = harness.new_mountpoint()
        self.assertOneLineError(['-f', FIX['text'], mnt], 'is not an HDF5 file', mountpoint=mnt)

    def test_truncated_hdf5_file_reports_cannot_read(self):
        mnt = harness.new_mountpoint()
        self.assertOneLineError(['-f', FIX['truncated'], mnt], 'cannot read HDF5 file',
                                mountpoint=mnt)

    def test_corrupted_superblock_reports_cannot_read(self):
        mnt = harness.new_mountpoint()
        self.assertOneLineError(['-f', FIX['badsuper'], mnt], 'cannot read HDF5 file',
                                mountpoint=mnt)

    def test_missing_mountpoint_reports_mountpoint_no_such_file(self):
        missing = os.path.join(harness.workdir(), 'no-such-mountpoint')
        self.assertOneLineError(['-f', FIX['types'], missing], 'mountpoint',
                                'No such file or directory')
        self.assertFalse(os.path.exists(missing))

    def test_mountpoint_that_is_a_regular_file_reports_not_a_directory(self):
        self.assertOneLineError(['-f', FIX['types'], FIX['regular_file']], 'Not a directory')

    def test_unknown_o_option_reports_unknown_option(self):
        mnt = harness.new_mountpoint()
        self.assertOneLineError(['-f', '-o', 'bogus_opt=1', FIX['types'], mnt], 'unknown option',
                                mountpoint=mnt)

    def test_unknown_long_option_reports_unknown_option(self):
        mnt = harness.new_mountpoint()
        self.assertOneLineError(['-f', '--bogus', FIX['types'], mnt], 'unknown option',
                                mountpoint=mnt)

    def test_errors_are_reported_before_detaching_without_f(self):
        mnt = harness.new_mountpoint()
        missing = os.path.join(harness.workdir(), 'gone.h5')
        self.assertOneLineError([missing, mnt], 'No such file or directory', missing,
                                mountpoint=mnt)
        self.assertOneLineError([FIX['text'], mnt], 'is not an HDF5 file', mountpoint=mnt)

    def test_no_arguments_prints_usage_and_fails(self):
        status, out, err = run_h5mount([])
        self.assertNotEqual(status, 0)
        self.assertIn('usage:', err)
        self.assertNotIn('HDF5-DIAG', err)

    def test_one_argument_prints_usage_and_fails(self):
        status, out, err = run_h5mount([FIX['types']])
        self.assertNotEqual(status, 0)
        self.assertNotIn('HDF5-DIAG', err)
        self.assertTrue(err.startswith('h5mount: ') or 'usage:' in err, repr(err))

    def test_help_prints_usage_and_exits_zero(self):
        status, out, err = run_h5mount(['--help'])
        self.assertEqual(status, 0, err)
        self.assertIn('usage:', out + err)

    def test_version_prints_name_and_version_and_exits_zero(self):
        status, out, err = run_h5mount(['--version'])
        self.assertEqual(status, 0, err)
        self.assertIn('h5mount 0.1.0', out + err)


class Options(unittest.TestCase):
    """Every accepted option mounts and serves the same bytes as the default."""

    want = np.arange(3000, dtype='<f8').reshape(30, 100).tobytes()

    @classmethod
    def setUpClass(cls):
        # Computed before mounting: a read-write mount holds HDF5's lock on the file.
        cls.exp = harness.compute_expectations(FIX['types'], ['/layout/gzip_shuffle_fletcher32',
                                                              '/vlen/str', '/compound/gaps'])

    def assertServes(self, m):
        self.assertEqual(read_file(m.p('layout/contiguous')), self.want)
        failures = harness.check_all(m, self.exp)
        self.assertEqual(failures, [], '\n'.join(failures))

    def test_default_options_mount_serves_data_and_exits_zero_on_unmount(self):
        with harness.Mount(FIX['types']) as m:
            self.assertServes(m)
        self.assertEqual(m.returncode, 0)

    def test_single_threaded_option(self):
        with harness.Mount(FIX['types'], ['-s']) as m:
            self.assertServes(m)

    def test_debug_option_serves_data_and_writes_debug_output(self):
        with harness.Mount(FIX['types'], ['-d']) as m:
            self.assertServes(m)
            self.assertNotEqual(m.stderr_text().strip(), '')

    def test_read_only_option(self):
        with harness.Mount(FIX['types'], ['-o', 'ro']) as m:
            self.assertServes(m)

    def test_cache_size_accepts_k_m_and_g_suffixes(self):
        for size in ('2048K', '64M', '1G'):
            with self.subTest(cache_size=size):
                with harness.Mount(FIX['types'], ['-o', 'cache_size=' + size]) as m:
                    self.assertServes(m)

    def test_options_combine_in_one_o_list(self):
        with harness.Mount(FIX['types'], ['-s', '-o', 'ro,cache_size=64M']) as m:
            self.assertServes(m)

    def test_the_same_file_can_be_mounted_twice_at_once_read_only(self):
        with harness.Mount(FIX['types'], ['-o', 'ro']) as m1, harness.Mount(FIX['types'], ['-o', 'ro']) as m2:
            self.assertServes(m1)
            self.assertServes(m2)

    def test_without_f_the_daemon_detaches_mounts_and_exits_after_unmount(self):
        mnt = harness.new_mountpoint()
        status, out, err = None, '', ''
        proc = subprocess.Popen([harness.EXE, FIX['types'], mnt], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
            status = proc.returncode
            self.assertEqual(status, 0, err)
            deadline = time.monotonic() + harness.MOUNT_TIMEOUT
            while not os.path.ismount(mnt) and time.monotonic() < deadline:
                time.sleep(harness.POLL)
            self.assertTrue(os.path.ismount(mnt), 'not mounted after the parent exited')
            self.assertEqual(read_file(os.path.join(mnt, 'layout', 'contiguous')), self.want)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            if harness.is_mounted(mnt):
                harness.fusermount_unmount(mnt)
        self.assertFalse(harness.is_mounted(mnt))
        # The detached daemon must go away once unmounted.
        deadline = time.monotonic() + harness.MOUNT_TIMEOUT
        while daemons_serving(mnt) and time.monotonic() < deadline:
            time.sleep(harness.POLL)
        self.assertEqual(daemons_serving(mnt), [])


def daemons_serving(mnt):
    """Pids of h5mount processes whose command line names mountpoint mnt."""
    pids = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as fp:
                argv = fp.read().split(b'\0')
        except OSError:
            continue
        if mnt.encode() in argv and any(a.endswith(b'h5mount') for a in argv[:1]):
            pids.append(int(pid))
    return pids


if __name__ == '__main__':
    harness.run_tests()
