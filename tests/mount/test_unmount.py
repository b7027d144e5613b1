"""`h5mount -u MOUNTPOINT` unmounts and returns only when the daemon has written everything back
and closed and unlocked the HDF5 file: h5py opens the file at once after it and sees all rows
(root, and a user mounting their own file). It fails with one line and a non-zero status when
the directory is not an h5mount mount, the unmount is refused (busy), the final write-back fails
(a full file system), or the daemon died. Usage:

    /usr/bin/python3 tests/mount/test_unmount.py build/h5mount [TestClass[.test_name] ...]
"""

import os
import signal
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h5py                 # noqa: E402
import numpy as np          # noqa: E402

import harness              # noqa: E402
from harness import Mount   # noqa: E402

COLS = 1000
BIG_ROWS = 25000            # 200 MB of float64 rows per round
RUN_TIMEOUT = 120.0


def make_file(path, rows=10):
    with h5py.File(path, 'w') as f:
        f.create_dataset('x', data=np.arange(rows * COLS, dtype='<f8').reshape(rows, COLS),
                         maxshape=(None, COLS), chunks=(128, COLS))
    return path


def unmount(m, prefix=()):
    """Runs `h5mount -u` on m (a Mount, or a path) under prefix (e.g. setpriv); returns
    (status, stderr)."""
    path = m if isinstance(m, str) else m.path
    r = subprocess.run(list(prefix) + [harness.EXE, '-u', path], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if not isinstance(m, str) and not harness.is_mounted(path):
        m.forget_mount()
    return r.returncode, r.stderr


class UnmountWaits(unittest.TestCase):

    def test_h5py_opens_the_file_at_once_after_200_mb_appended_3_of_3_times(self):
        h5 = make_file(os.path.join(harness.workdir(), 'big.h5'))
        rows = 10
        for round_ in range(3):
            m = Mount(h5, ['-o', 'dirty_limit=1G,flush_interval=0']).start()
            try:
                block = np.full((BIG_ROWS, COLS), round_ + 1.0)
                with open(m.p('x'), 'ab') as fp:
                    fp.write(block.tobytes())
                del block
                rc, err = unmount(m)
                self.assertEqual((rc, err), (0, ''), 'round %d' % round_)
                self.assertFalse(harness.is_mounted(m.path))
                # No retry, no wait: the file is closed and unlocked now.
                with h5py.File(h5, 'r') as f:
                    x = f['x']
                    rows += BIG_ROWS
                    self.assertEqual(x.shape, (rows, COLS), 'round %d' % round_)
                    for r in (rows - BIG_ROWS, rows - BIG_ROWS // 2, rows - 1):
                        self.assertTrue((x[r] == round_ + 1.0).all(), 'round %d row %d' % (round_, r))
                    self.assertTrue((x[9] == np.arange(9 * COLS, 10 * COLS)).all())
            finally:
                problem = m.cleanup()
            self.assertIsNone(problem)
            self.assertEqual(m.returncode, 0)

    def test_a_user_unmounts_their_own_mount_and_waits(self):
        d = harness.nobody_dir(self)
        h5 = make_file(os.path.join(d, 'own.h5'))
        os.chown(h5, harness.NOBODY, harness.NOBODY)
        os.chown(d, harness.NOBODY, harness.NOBODY)   # the write-back's journal goes beside h5
        m = harness.mount_as_nobody(self, d, h5)
        # Only the mounting user may use the mount (no allow_other): append as that user.
        subprocess.run(harness.AS_NOBODY + [
            sys.executable, '-c', 'import sys, numpy as np; open(sys.argv[1], "ab").write('
            'np.full((1000, %d), 7.0).tobytes())' % COLS, os.path.join(m.path, 'x')], check=True,
            timeout=RUN_TIMEOUT)
        rc, err = unmount(m, harness.AS_NOBODY)
        self.assertEqual((rc, err), (0, ''))
        self.assertFalse(harness.is_mounted(m.path))
        with h5py.File(h5, 'r') as f:
            self.assertEqual(f['x'].shape, (1010, COLS))
            self.assertTrue((f['x'][-1] == 7.0).all())


class UnmountFails(unittest.TestCase):

    def test_a_directory_that_is_not_a_mount_point_fails_in_one_line(self):
        d = harness.new_mountpoint()
        rc, err = unmount(d)
        self.assertEqual(rc, 1)
        self.assertEqual(err, "h5mount: '%s' is not a mount point\n" % d)

    def test_another_file_system_is_not_unmounted(self):
        t = harness.Tmpfs('1m').start()
        try:
            rc, err = unmount(t.path)
            self.assertEqual(rc, 1)
            self.assertEqual(err, "h5mount: '%s' is not an h5mount mount (it is tmpfs)\n" % t.path)
            self.assertTrue(harness.is_mounted(t.path))
        finally:
            t.cleanup()

    def test_a_busy_mount_stays_mounted_and_fails(self):
        h5 = make_file(os.path.join(harness.workdir(), 'busy.h5'))
        with Mount(h5) as m:
            fd = os.open(m.p('x'), os.O_RDONLY)
            try:
                rc, err = unmount(m)
            finally:
                os.close(fd)
            self.assertEqual(rc, 1)
            self.assertIn("'%s' was not unmounted (fusermount3 -u failed)" % m.path, err)
            self.assertTrue(harness.is_mounted(m.path))
            self.assertEqual(os.path.getsize(m.p('x')), 10 * COLS * 8)

    def test_a_final_write_back_that_fails_on_a_full_file_system_fails(self):
        t = harness.Tmpfs('4m').start()
        try:
            h5 = make_file(os.path.join(t.path, 'full.h5'))
            m = Mount(h5, ['-o', 'dirty_limit=64M,flush_interval=0'])
            m.check_status = False
            m.start()
            try:
                with open(m.p('x'), 'ab') as fp:      # 16 MB: more than the 4 MB tmpfs holds
                    fp.write(np.ones((2000, COLS)).tobytes())
                rc, err = unmount(m)
            finally:
                problem = m.cleanup()
            self.assertIsNone(problem)
            self.assertEqual(m.returncode, 1)
            self.assertEqual(rc, 1)
            self.assertEqual(err, "h5mount: '%s': the final write-back failed; the file keeps its "
                             "last committed state\n" % h5)
            with h5py.File(h5, 'r') as f:
                self.assertEqual(f['x'].shape, (10, COLS))
        finally:
            t.cleanup()

    def test_a_daemon_killed_with_sigkill_is_reported_and_its_mount_removed(self):
        h5 = make_file(os.path.join(harness.workdir(), 'killed.h5'))
        m = Mount(h5).start()
        try:
            os.kill(m.pid, signal.SIGKILL)
            m.proc.wait()
            rc, err = unmount(m)
        finally:
            m.cleanup()
        self.assertEqual(rc, 1)
        self.assertEqual(err, "h5mount: the daemon of '%s' (pid %d) died before it finished; '%s' "
                         "keeps what was last committed\n" % (m.path, m.pid, h5))
        self.assertFalse(harness.is_mounted(m.path))


if __name__ == '__main__':
    harness.run_tests()
