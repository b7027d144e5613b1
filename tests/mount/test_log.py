"""Logs are never lost: `-o log=FILE` appends timestamped lines to FILE (created 0600) instead of
stderr, and reopens it on SIGHUP (logrotate) without stopping; a bad FILE is refused before
mounting; a daemon in the background with nothing listening on /dev/log logs to h5mount.log in
its runtime directory and says so when it mounts. Usage:

    /usr/bin/python3 tests/mount/test_log.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import os
import re
import signal
import shutil
import stat
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h5py                 # noqa: E402
import numpy as np          # noqa: E402

import harness              # noqa: E402
from harness import Mount, errno_of   # noqa: E402

LINE = r'(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d h5mount\[%d\]: warning: '


def make_file(path):
    with h5py.File(path, 'w') as f:
        f.create_dataset('x', data=np.zeros((10, 1000)), maxshape=(None, 1000), chunks=(16, 1000))
    return path


def read(path):
    with open(path) as fp:
        return fp.read()


def write_text(path, text):
    with open(path, 'w') as fp:
        fp.write(text)


def fd_targets(pid):
    """The paths the open descriptors of process pid lead to."""
    out = []
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            out.append(os.readlink('/proc/%d/fd/%s' % (pid, fd)))
        except OSError:
            pass
    return out


class LogFile(unittest.TestCase):

    def setUp(self):
        d = harness.workdir()
        self.h5 = make_file(os.path.join(d, 'log-%s.h5' % self._testMethodName))
        self.log = os.path.join(d, 'log-%s.log' % self._testMethodName)

    def test_log_option_appends_timestamped_lines_to_a_0600_file_not_stderr(self):
        write_text(self.log, 'an earlier line\n')
        os.chmod(self.log, 0o644)   # an existing file keeps its mode; a new one is 0600
        new_log = self.log + '.new'
        with Mount(self.h5, ['-o', 'log=' + self.log]) as m, \
                Mount(make_file(self.h5 + '2'), ['-o', 'log=' + new_log]) as m2:
            self.assertEqual(errno_of(os.truncate, m.p('x'), 123), errno.EINVAL)
            self.assertEqual(errno_of(os.truncate, m2.p('x'), 123), errno.EINVAL)
            text = read(self.log)
            self.assertTrue(text.startswith('an earlier line\n'), text)
            self.assertRegex(text, (LINE % m.pid) + re.escape(
                '/x: refused (EINVAL): truncating its data to 123 bytes'))
            self.assertNotIn('refused', m.stderr_text())
            self.assertEqual(stat.S_IMODE(os.stat(new_log).st_mode), 0o600)
            self.assertIn('refused', read(new_log))

    def test_sighup_reopens_the_log_file_and_the_mount_stays(self):
        with Mount(self.h5, ['-o', 'log=' + self.log]) as m:
            self.assertEqual(errno_of(os.truncate, m.p('x'), 123), errno.EINVAL)
            os.rename(self.log, self.log + '.1')        # what logrotate does
            os.kill(m.pid, signal.SIGHUP)
            # The reopen is done when the daemon's log descriptor is the new file at the old name.
            self.assertTrue(harness.wait_until(lambda: self.log in fd_targets(m.pid), timeout=5))
            self.assertEqual(errno_of(write_text, m.p('x.shape'), '1 2 3\n'), errno.EINVAL)
            self.assertTrue(m.alive())
            self.assertTrue(harness.is_mounted(m.path))
            self.assertIn('truncating its data to 123 bytes', read(self.log + '.1'))
            self.assertNotIn('.shape text', read(self.log + '.1'))
            self.assertRegex(read(self.log), (LINE % m.pid) + re.escape(
                '/x: refused (EINVAL): .shape text of 3 dimensions for a dataset of 2'))

    def test_a_padded_row_is_a_warning_in_the_log_file(self):
        with Mount(self.h5, ['-o', 'log=' + self.log]) as m:
            with open(m.p('x'), 'ab') as fp:
                fp.write(b'\0' * 100)
            # The row is completed at RELEASE, just after close() returns.
            self.assertTrue(harness.wait_until(lambda: os.path.getsize(m.p('x')) == 11 * 8000,
                                               timeout=5))
            self.assertTrue(harness.wait_until(lambda: 'incomplete row' in read(self.log)))
            self.assertRegex(read(self.log), (LINE % m.pid) + re.escape(
                '/x: incomplete row (100 of 8000 bytes) completed with the fill value at close'))

    def test_a_log_file_that_cannot_be_opened_is_refused_before_mounting(self):
        bad = os.path.join(harness.workdir(), 'no-such-dir', 'h5mount.log')
        mnt = harness.new_mountpoint()
        r = subprocess.run([harness.EXE, '-f', '-o', 'log=' + bad, self.h5, mnt],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "h5mount: cannot open the log file '%s': No such file or "
                         "directory\n" % bad)
        self.assertFalse(harness.is_mounted(mnt))


class NoSyslog(unittest.TestCase):

    def test_a_daemon_without_syslog_logs_to_its_runtime_directory_and_says_where(self):
        if os.geteuid() != 0 or shutil.which('unshare') is None:
            self.skipTest('needs root and unshare to hide /dev/log')
        d = harness.workdir()
        h5 = make_file(os.path.join(d, 'nosyslog.h5'))
        mnt = harness.new_mountpoint()
        empty = os.path.join(d, 'not-a-socket')
        write_text(empty, '')
        # In a mount namespace of its own: /dev/log (if any) is hidden behind a plain file, the
        # daemon starts in the background and is unmounted (and waited for) before the end.
        script = '''
set -e
if [ -e /dev/log ]; then mount --bind "$4" /dev/log; fi
trap '"$1" -u "$3" >/dev/null 2>&1 || fusermount3 -uz "$3" 2>/dev/null || true' EXIT
"$1" "$2" "$3"
truncate -s 4567 "$3/x" 2>/dev/null || true
"$1" -u "$3"
trap - EXIT
'''
        r = subprocess.run(['unshare', '-m', '--propagation', 'private', 'sh', '-c', script,
                            'sh', harness.EXE, h5, mnt, empty],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.fullmatch(r'h5mount: no syslog \(nothing listens on /dev/log\): logging to '
                         r'(/\S+/h5mount\.log)\n', r.stderr)
        self.assertIsNotNone(m, r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(m.group(1)).st_mode), 0o600)
        self.assertRegex(read(m.group(1)), r'(?m)h5mount\[\d+\]: warning: ' + re.escape(
            '/x: refused (EINVAL): truncating its data to 4567 bytes'))
        self.assertFalse(harness.is_mounted(mnt))


if __name__ == '__main__':
    harness.run_tests()
