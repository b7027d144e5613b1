"""New files: `h5mount new.h5 mnt` where new.h5 does not exist but its directory does creates
an empty HDF5 file, says so in one line and mounts it read-write; the file survives kill -9
during a later mount (a persistent free-space manager would not: see create.c); with -o ro, in a missing directory or through a dangling symlink it is refused in
one line and nothing is created; a mount that fails after the creation leaves no file behind.
Usage:

    /usr/bin/python3 tests/mount/test_newfile.py build/h5mount [TestClass[.test_name] ...]
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
import tables               # noqa: E402

import harness              # noqa: E402

RUN_TIMEOUT = 20.0


def run_h5mount(args, mountpoint):
    """Runs h5mount -f args; returns (status, stderr text). A run that mounts is unmounted
    and fails the test: every case here must be refused."""
    proc = subprocess.Popen([harness.EXE, '-f'] + list(args), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        if harness.is_mounted(mountpoint):
            harness.fusermount_unmount(mountpoint)
        proc.kill()
        proc.communicate()
        raise AssertionError('h5mount %r did not exit' % (args,))
    if harness.is_mounted(mountpoint):
        harness.fusermount_unmount(mountpoint)
        raise AssertionError('h5mount %r mounted instead of failing' % (args,))
    return proc.returncode, err.decode('utf-8', 'replace')


class NewFile(unittest.TestCase):

    def assertOneLineError(self, args, mnt, *needles):
        status, err = run_h5mount(args, mnt)
        self.assertNotEqual(status, 0)
        lines = err.rstrip('\n').split('\n')
        self.assertEqual(len(lines), 1, 'expected one stderr line, got %r' % err)
        self.assertTrue(lines[0].startswith('h5mount: '), lines[0])
        for needle in needles:
            self.assertIn(needle, lines[0])

    def test_a_missing_file_is_created_empty_and_mounted_read_write(self):
        path = os.path.join(harness.workdir(), 'new.h5')
        with harness.Mount(path) as m:
            self.assertEqual(os.listdir(m.path), [])
            self.assertTrue(os.path.isdir(m.path))
            line = "created '%s', a new empty HDF5 file" % path
            self.assertTrue(harness.wait_until(lambda: line in m.stderr_text()), m.stderr_text())
            self.assertEqual(m.stderr_text().count('\n'), 1, m.stderr_text())
            opts = [ln.split()[3] for ln in open('/proc/mounts') if ln.split()[1] == m.path]
            self.assertEqual(len(opts), 1)
            self.assertIn('rw', opts[0].split(','))
            os.statvfs(m.path)
        size = os.path.getsize(path)
        print('\n# a new empty file is %d bytes after a mount and an unmount' % size)
        self.assertLess(size, 4096)
        with h5py.File(path, 'r') as f:
            self.assertEqual(list(f.keys()), [])
        with tables.open_file(path) as t:
            self.assertEqual(list(t.root._v_children), [])
        # Mounted again, it is an existing file: nothing is said about creating it.
        with harness.Mount(path) as m:
            self.assertEqual(os.listdir(m.path), [])
        self.assertNotIn('created', m.stderr_text())

    def test_a_new_file_survives_kill_9_after_a_commit_and_later_writers(self):
        # HDF5 1.10.8 persists free-space sections only at close: a file made with a
        # persistent free-space manager, restored to the commit (flush) before a kill -9, had
        # its end cut off by the next writer ("addr overflow"). New files must not be so.
        path = os.path.join(harness.workdir(), 'crash.h5')
        with harness.Mount(path):
            pass
        with h5py.File(path, 'a') as f:
            f.create_dataset('x', data=np.arange(10000.), maxshape=(None,), chunks=(1024,))
            f.create_dataset('y', data=np.ones(100000), maxshape=(None,), chunks=(1024,))
            f.create_dataset('z', data=np.ones(10), maxshape=(None,), chunks=(1024,))
        with h5py.File(path, 'a') as f:
            del f['y']  # free space inside the file, for the next writer to reuse
        m = harness.Mount(path).start()
        try:
            with open(m.p('z'), 'ab') as fp:
                fp.write(np.arange(50000.).tobytes())
                fp.flush()
                os.fsync(fp.fileno())
            m.proc.send_signal(signal.SIGKILL)
            m.proc.wait(timeout=harness.MOUNT_TIMEOUT)
        finally:
            m.cleanup()
        with harness.Mount(path):  # replays the journal
            pass
        with h5py.File(path, 'a') as f:
            self.assertEqual(f['z'].shape, (50010,))
            self.assertTrue((f['x'][:] == np.arange(10000.)).all())
            del f['z']
            f.create_dataset('z', data=np.ones(10), maxshape=(None,), chunks=(1024,))
        with h5py.File(path, 'r') as f:
            self.assertEqual(sorted(f.keys()), ['x', 'z'])
            self.assertTrue((f['x'][:] == np.arange(10000.)).all())
        with tables.open_file(path) as t:
            self.assertEqual(t.get_node('/x').shape, (10000,))

    def test_with_ro_a_missing_file_is_refused_and_not_created(self):
        path = os.path.join(harness.workdir(), 'ro-new.h5')
        mnt = harness.new_mountpoint()
        self.assertOneLineError(['-o', 'ro', path, mnt], mnt, "'%s' does not exist" % path, '-o ro')
        self.assertFalse(os.path.lexists(path))

    def test_a_missing_directory_is_refused_and_nothing_created(self):
        path = os.path.join(harness.workdir(), 'no-such-dir', 'new.h5')
        mnt = harness.new_mountpoint()
        self.assertOneLineError([path, mnt], mnt, 'No such file or directory', path)
        self.assertFalse(os.path.lexists(os.path.dirname(path)))

    def test_a_dangling_symlink_is_not_followed_to_create_its_target(self):
        target = os.path.join(harness.workdir(), 'target.h5')
        link = os.path.join(harness.workdir(), 'dangling.h5')
        os.symlink(target, link)
        mnt = harness.new_mountpoint()
        self.assertOneLineError([link, mnt], mnt, 'No such file or directory')
        self.assertFalse(os.path.lexists(target))

    def test_a_mount_that_fails_after_creating_the_file_leaves_no_file(self):
        # An -o option unknown to libfuse fails the FUSE session, after the file was made.
        path = os.path.join(harness.workdir(), 'failed.h5')
        mnt = harness.new_mountpoint()
        self.assertOneLineError(['-o', 'bogus_opt=1', path, mnt], mnt, 'unknown option')
        self.assertFalse(os.path.lexists(path))


if __name__ == '__main__':
    harness.run_tests()
