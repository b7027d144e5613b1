"""A journal left by a crash, mounted: refused next to a file that replaced its own, shown by read-only mounts.

The journal is a real crash's: the helper jvfd_crash (tests/mount/jvfd_crash.c, path in
H5M_JVFD_CRASH) writes through h5mount's journal driver and dies in the commit, right after
the journal is complete or after some of its writes into the file. Then:
- the file is replaced (renamed over, copied over): h5mount exits non-zero with one line
  saying the journal belongs to another state of the file, and neither file changes;
- `-o ro` (and the automatic read-only mount of a file the user cannot write) shows the state
  a replay gives, changing neither the file nor the journal, and a read-write mount then
  replays it and shows the same bytes.
Usage:

    H5M_JVFD_CRASH=build/tests/mount/jvfd_crash /usr/bin/python3 tests/mount/test_journal.py build/h5mount
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402

import harness              # noqa: E402
from harness import read_file   # noqa: E402

SUFFIX = '.h5mount-journal'
RUN_TIMEOUT = 30.0

# What jvfd_crash writes (see jvfd_crash.c).
OLD_D = np.arange(1000, dtype='<i4')
OLD_C = np.arange(2000, dtype='<f8') / 2
NEW_D = (3 * np.arange(1500) + 7).astype('<i4')
NEW_C = -np.arange(2000, dtype='<f8')


def helper():
    path = os.environ.get('H5M_JVFD_CRASH')
    if not path or not os.access(path, os.X_OK):
        raise unittest.SkipTest('H5M_JVFD_CRASH does not name the jvfd_crash helper')
    return path


def make_fixture(path):
    """/d: int32, chunks of 100 whole rows, extendable; /c: contiguous float64."""
    with h5py.File(path, 'w') as f:
        f.create_dataset('d', data=OLD_D, chunks=(100,), maxshape=(None,))
        f.create_dataset('c', data=OLD_C)


def make_other(path):
    """An unrelated HDF5 file."""
    with h5py.File(path, 'w') as f:
        f.create_dataset('e', data=np.full(50, 0x5a, dtype='u1'))
        f.create_dataset('d', data=np.full(10, -1, dtype='<i4'))


def crash(path, writes=0):
    """Leaves the journal of a commit killed after the journal (writes=0) or after `writes`
    writes into the file."""
    r = subprocess.run([helper(), path, str(writes)], capture_output=True, timeout=RUN_TIMEOUT)
    if r.returncode != 86:
        raise AssertionError('jvfd_crash exited %d, not 86: %r' % (r.returncode, r.stderr))
    assert os.path.getsize(path + SUFFIX) > 0


def run_h5mount(args, mountpoint):
    """Runs h5mount, which must fail before mounting: (status, stderr). Polls every 0.1 s; a
    mount that appears is taken down at once and fails the test."""
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen([harness.EXE] + list(args), stdin=subprocess.DEVNULL,
                                stdout=errf, stderr=errf)
        deadline = time.monotonic() + RUN_TIMEOUT
        while proc.poll() is None and not harness.is_mounted(mountpoint) \
                and time.monotonic() < deadline:
            time.sleep(harness.POLL)
        mounted = harness.is_mounted(mountpoint)
        if mounted:
            harness.fusermount_unmount(mountpoint)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        errf.seek(0)
        err = errf.read().decode('utf-8', 'replace')
    if mounted:
        raise AssertionError('h5mount %r mounted instead of refusing the journal; stderr: %r'
                             % (args, err))
    if proc.returncode is None or time.monotonic() >= deadline:
        raise AssertionError('h5mount %r did not exit within %.0f s' % (args, RUN_TIMEOUT))
    return proc.returncode, err


def shown(m):
    """What a mount shows of the fixture: raw bytes of d and c, and d.npy as an array."""
    return {'d': read_file(m.p('d')), 'c': read_file(m.p('c')),
            'd.npy': np.load(m.p('d.npy')), 'd.shape': read_file(m.p('d.shape'))}


class JournalCase(unittest.TestCase):
    def setUp(self):
        helper()
        self.dir = tempfile.mkdtemp(prefix='journal-', dir=harness.workdir())
        self.h5 = os.path.join(self.dir, 'data.h5')
        self.journal = self.h5 + SUFFIX
        make_fixture(self.h5)

    def assertRefused(self, opts):
        """h5mount exits non-zero with one line naming the journal; the file and the journal
        keep their bytes."""
        before = (read_file(self.h5), read_file(self.journal))
        mnt = harness.new_mountpoint()
        status, err = run_h5mount(['-f'] + list(opts) + [self.h5, mnt], mnt)
        self.assertNotEqual(status, 0, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, 'not one line: %r' % err)
        self.assertTrue(lines[0].startswith('h5mount: '), lines[0])
        self.assertIn("belongs to another state of '%s'" % self.h5, lines[0])
        self.assertIn('move the journal away', lines[0])
        self.assertEqual(read_file(self.h5), before[0], 'the replacement file was changed')
        self.assertEqual(read_file(self.journal), before[1], 'the journal was changed')

    def assertNew(self, got):
        self.assertEqual(got['d'], NEW_D.tobytes())
        self.assertEqual(got['c'], NEW_C.tobytes())
        np.testing.assert_array_equal(got['d.npy'], NEW_D)
        self.assertEqual(got['d.shape'], b'1500\n')


class ReplacedFile(JournalCase):
    """A journal next to a file that replaced the one it belongs to is refused."""

    def replace(self, how):
        crash(self.h5)
        other = os.path.join(self.dir, 'other.h5')
        make_other(other)
        ino = os.stat(self.h5).st_ino
        if how == 'rename':
            os.rename(other, self.h5)
            self.assertNotEqual(os.stat(self.h5).st_ino, ino)
        else:
            shutil.copyfile(other, self.h5)     # cp other.h5 data.h5: the same inode
            self.assertEqual(os.stat(self.h5).st_ino, ino)

    def test_renamed_over_file_is_refused_read_write_and_read_only(self):
        self.replace('rename')
        self.assertRefused([])
        self.assertRefused(['-o', 'ro'])

    def test_copied_over_file_is_refused_until_the_journal_is_moved_away(self):
        self.replace('copy')
        self.assertRefused([])
        self.assertRefused(['-o', 'ro'])
        os.rename(self.journal, self.journal + '.saved')   # as the message says
        with harness.Mount(self.h5) as m:
            self.assertEqual(read_file(m.p('d')), np.full(10, -1, dtype='<i4').tobytes())


class ReadOnly(JournalCase):
    """`-o ro` shows a complete journal's state from memory and changes nothing."""

    def check_ro_then_rw(self, writes):
        crash(self.h5, writes)
        before = (read_file(self.h5), read_file(self.journal))
        with harness.Mount(self.h5, ['-o', 'ro']) as m:
            ro = shown(m)
        self.assertNew(ro)
        self.assertIn('showing the state of the journal', m.stderr_text())
        self.assertEqual(read_file(self.h5), before[0], 'the read-only mount changed the file')
        self.assertEqual(read_file(self.journal), before[1], 'the read-only mount changed the journal')
        with harness.Mount(self.h5) as m:        # replays, then shows the same
            rw = shown(m)
        self.assertIn('replayed the journal', m.stderr_text())
        self.assertFalse(os.path.exists(self.journal))
        self.assertNew(rw)
        with h5py.File(self.h5, 'r') as f:
            np.testing.assert_array_equal(f['d'][...], NEW_D)
            np.testing.assert_array_equal(f['c'][...], NEW_C)

    def test_ro_mount_after_a_crash_halfway_into_the_file_shows_the_journal(self):
        self.check_ro_then_rw(2)

    def test_ro_mount_ignores_an_incomplete_journal_and_shows_a_complete_one(self):
        # The half of a journal (a commit that never reached the file): ignored and kept.
        crash(self.h5)
        j = read_file(self.journal)
        with open(self.journal, 'wb') as fp:
            fp.write(j[:len(j) // 2])
        before = read_file(self.h5)
        with harness.Mount(self.h5, ['-o', 'ro']) as m:
            self.assertEqual(read_file(m.p('d')), OLD_D.tobytes())
            self.assertEqual(read_file(m.p('c')), OLD_C.tobytes())
        self.assertEqual(read_file(self.h5), before)
        self.assertEqual(read_file(self.journal), j[:len(j) // 2])
        # The same commit's whole journal, the file still untouched: shown, then replayed.
        make_fixture(self.h5)
        os.unlink(self.journal)
        self.check_ro_then_rw(0)

    def test_file_the_user_cannot_write_is_mounted_read_only_showing_the_journal(self):
        d = harness.nobody_dir(self)
        h5 = os.path.join(d, 'data.h5')
        make_fixture(h5)
        crash(h5)
        os.chmod(h5, 0o444)
        os.chmod(h5 + SUFFIX, 0o444)
        before = (read_file(h5), read_file(h5 + SUFFIX))
        m = harness.mount_as_nobody(self, d, h5)
        r = subprocess.run(harness.AS_NOBODY + ['/usr/bin/python3', '-c',
                                                'import sys; sys.stdout.write(open(sys.argv[1], "rb").read().hex())',
                                                m.p('d')],
                           capture_output=True, text=True, timeout=RUN_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(bytes.fromhex(r.stdout), NEW_D.tobytes())
        problem = m.cleanup()
        self.assertIsNone(problem, m.stderr_text())
        self.assertIn('showing the state of the journal', m.stderr_text())
        self.assertEqual((read_file(h5), read_file(h5 + SUFFIX)), before)


if __name__ == '__main__':
    harness.run_tests()
