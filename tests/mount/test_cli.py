"""Command-line behaviour of h5mount: every startup error gives one `h5mount: ` line on
stderr, a non-zero status and no HDF5 error stack (an unknown dash option, a file another
HDF5 program or mount holds, a dead mount point left by kill -9 included); --help/--version;
the mount options (-s, -d, -o ro, -o cache_size=, -o chunk_size=, -o compress=, background
mode) serve the same bytes, and bad chunk_size and compress values are refused in one line; and
the mount's source and statfs are the HDF5 file's path and file system. Usage:

    /usr/bin/python3 tests/mount/test_cli.py build/h5mount [TestClass[.test_name] ...]
"""

import os
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h5py                 # noqa: E402
import numpy as np          # noqa: E402

import fixtures             # noqa: E402
import harness              # noqa: E402
import mounting             # noqa: E402
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
        # A missing file in an existing directory is created (test_newfile.py); in a missing
        # directory, or with -o ro, it is an error.
        mnt = harness.new_mountpoint()
        missing = os.path.join(harness.workdir(), 'no-such-dir', 'does-not-exist.h5')
        self.assertOneLineError(['-f', missing, mnt], 'No such file or directory', missing,
                                mountpoint=mnt)
        missing = os.path.join(harness.workdir(), 'does-not-exist.h5')
        self.assertOneLineError(['-f', '-o', 'ro', missing, mnt], 'does not exist', missing,
                                mountpoint=mnt)
        self.assertFalse(os.path.exists(missing))

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

    def test_invalid_chunk_size_reports_the_value_and_the_range(self):
        mnt = harness.new_mountpoint()
        for bad in ('0', '512', '100M', '1G', 'abc', '-4K', ''):
            with self.subTest(chunk_size=bad):
                self.assertOneLineError(['-f', '-o', 'chunk_size=' + bad, FIX['types'], mnt],
                                        "invalid chunk_size '%s'" % bad, '1K to 64M', mountpoint=mnt)

    def test_invalid_compress_reports_the_value_and_what_is_expected(self):
        mnt = harness.new_mountpoint()
        for bad, why in (('zip', 'none, blosc[:LEVEL] or gzip[:LEVEL]'), ('lzf', 'none, blosc'),
                         ('blosc:10', 'expected 0 to 9'), ('gzip:', 'expected 0 to 9'),
                         ('none:1', 'none, blosc'), ('', 'expected none')):
            with self.subTest(compress=bad):
                self.assertOneLineError(['-f', '-o', 'compress=' + bad, FIX['types'], mnt],
                                        "invalid compress '%s'" % bad, why, mountpoint=mnt)

    def test_unknown_long_option_reports_unknown_option(self):
        mnt = harness.new_mountpoint()
        self.assertOneLineError(['-f', '--bogus', FIX['types'], mnt], 'unknown option',
                                mountpoint=mnt)

    def test_unknown_dash_option_is_refused_before_its_value_is_taken_for_the_file(self):
        mnt = harness.new_mountpoint()
        line = self.assertOneLineError(['--cache-size', '64M', FIX['types'], mnt],
                                       "unknown option '--cache-size'", mountpoint=mnt)
        self.assertNotIn('64M', line)
        self.assertOneLineError(['-x', FIX['types'], mnt], "unknown option '-x'", mountpoint=mnt)
        # Refused before the file is looked at: a missing file is not what it reports.
        self.assertOneLineError(['-f', '--bogus', '/no/such/file.h5', mnt],
                                "unknown option '--bogus'", mountpoint=mnt)

    def test_a_file_mounted_read_write_already_is_refused_in_words(self):
        path = harness.fresh_copy(FIX['types'], 'held.h5')
        with harness.Mount(path):
            for opts in ([], ['-o', 'ro']):
                with self.subTest(opts=opts):
                    mnt = harness.new_mountpoint()
                    line = self.assertOneLineError(
                        ['-f'] + opts + [path, mnt],
                        'is open in another HDF5 program or mounted already', mountpoint=mnt)
                    self.assertNotIn('errno', line)

    def test_a_file_h5py_holds_open_for_writing_is_refused_in_words(self):
        path = harness.fresh_copy(FIX['types'], 'h5py-held.h5')
        with h5py.File(path, 'r+'):
            for opts in ([], ['-o', 'ro']):
                with self.subTest(opts=opts):
                    mnt = harness.new_mountpoint()
                    line = self.assertOneLineError(
                        ['-f'] + opts + [path, mnt],
                        path, 'is open in another HDF5 program or mounted already',
                        mountpoint=mnt)
                    self.assertNotIn('errno', line)

    def test_dead_mount_point_after_kill_9_says_to_run_fusermount3_first(self):
        m = harness.Mount(FIX['types'], ['-o', 'ro'])
        m.start()
        try:
            m.proc.kill()
            m.proc.wait(timeout=harness.MOUNT_TIMEOUT)
            self.assertTrue(harness.is_mounted(m.path))
            # The dead mount is still listed: run_h5mount must not take it for a new one.
            status, out, err = run_h5mount(['-f', '-o', 'ro', FIX['types'], m.path])
            self.assertNotEqual(status, 0)
            self.assertEqual(len(err.rstrip('\n').split('\n')), 1, err)
            self.assertIn('Transport endpoint is not connected', err)
            self.assertIn("run 'fusermount3 -u %s' first" % m.path, err)
        finally:
            m.cleanup()
            for _ in range(3):      # an h5mount that mounted over the dead mount is gone too
                if harness.is_mounted(m.path):
                    harness.fusermount_unmount(m.path)
        self.assertFalse(harness.is_mounted(m.path))
        # Doing what it says is enough.
        with harness.Mount(FIX['types'], ['-o', 'ro'], mountpoint=m.path) as m2:
            self.assertEqual(read_file(m2.p('layout/contiguous')),
                             np.arange(3000, dtype='<f8').tobytes())

    def test_errors_are_reported_before_detaching_without_f(self):
        mnt = harness.new_mountpoint()
        missing = os.path.join(harness.workdir(), 'no-such-dir', 'gone.h5')
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

    def test_chunk_size_and_compress_options_are_accepted(self):
        for opts in ('chunk_size=1K', 'chunk_size=64M,compress=none', 'chunk_size=256KiB,compress=blosc',
                     'compress=blosc:0', 'compress=blosc:9', 'compress=gzip', 'compress=gzip:1'):
            with self.subTest(opts=opts):
                with harness.Mount(FIX['types'], ['-o', 'ro,' + opts]) as m:
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
        while mounting.daemons_serving([mnt]) and time.monotonic() < deadline:
            time.sleep(harness.POLL)
        self.assertEqual(mounting.daemons_serving([mnt]), [])


class SourceAndStatfs(unittest.TestCase):
    """mount, findmnt and df show the HDF5 file's absolute path as the mount's source, and
    statfs gives the figures of the file system that holds the file."""

    def test_source_is_the_file_path_with_space_comma_and_backslash(self):
        d = os.path.join(harness.workdir(), 'dir with space, and comma')
        os.makedirs(d, exist_ok=True)
        for name in ('data, set 1.h5', 'back\\slash.h5'):
            path = os.path.join(d, name)
            with open(FIX['types'], 'rb') as src, open(path, 'wb') as dst:
                dst.write(src.read())
            with self.subTest(name=name), harness.Mount(path, ['-o', 'ro']) as m:
                with open('/proc/self/mountinfo', encoding='utf-8',
                          errors='surrogateescape') as fp:
                    fields = [line.split() for line in fp]
                mine = [f for f in fields if mounting.unescape_mountinfo(f[4]) == m.path]
                self.assertEqual(len(mine), 1)
                post = mine[0][mine[0].index('-') + 1:]
                self.assertEqual(post[0], 'fuse.h5mount')
                self.assertEqual(mounting.unescape_mountinfo(post[1]), path)
                if '\\' not in name:    # findmnt prints a backslash as \x5c
                    r = subprocess.run(['findmnt', '-no', 'SOURCE', m.path],
                                       capture_output=True, text=True, timeout=RUN_TIMEOUT)
                    self.assertEqual(r.stdout.rstrip('\n'), path, r.stderr)

    def test_statfs_reports_the_file_system_holding_the_file(self):
        with harness.Mount(FIX['types'], ['-o', 'ro']) as m:
            host_dir = os.path.dirname(FIX['types'])
            # Other processes change the free space meanwhile: the mount's figures must lie
            # between two readings of the host's, in one of a few tries.
            for attempt in range(5):
                h1 = os.statvfs(host_dir)
                got = os.statvfs(m.path)
                h2 = os.statvfs(host_dir)
                for field in ('f_bsize', 'f_frsize', 'f_blocks', 'f_files'):
                    self.assertEqual(getattr(got, field), getattr(h1, field), field)
                self.assertGreater(got.f_blocks, 0)
                if all(min(getattr(h1, f), getattr(h2, f)) <= getattr(got, f) <=
                       max(getattr(h1, f), getattr(h2, f))
                       for f in ('f_bfree', 'f_bavail', 'f_ffree')):
                    break
            else:
                self.fail('free space of the mount %r is not that of the host %r' % (got, h1))
            self.assertEqual(got.f_namemax, 255)



if __name__ == '__main__':
    harness.run_tests()
