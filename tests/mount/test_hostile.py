"""A hostile HTTP server against remote mounts: what it sends must never hang the daemon.

A small Python server on 127.0.0.1 serves an HDF5 file with Range support and, on request,
answers the fetcher's large ranged GETs with an endless body (no Content-Length, bytes until
the connection closes), as a 200 or a 500. The read must end within seconds: with EIO or with
the bytes read another way, the cause logged once, and the daemon still serving. Usage:

    /usr/bin/python3 tests/mount/test_hostile.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import http.server
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402

import harness              # noqa: E402

ENDLESS_FROM = 512 * 1024   # ranges at least this long get the endless body (the fetcher's
                            # coalesced 1 MiB blocks; ROS3's metadata and chunk reads are smaller)
READ_DEADLINE = 30          # seconds a read may take before the test calls it a hang


class HostileServer(http.server.ThreadingHTTPServer):
    """Serves the files of `root`; while `endless` is 200 or 500, long ranged GETs get that
    status and an endless body."""
    daemon_threads = True

    def __init__(self, root):
        self.root = root
        self.endless = 0
        self.stopping = False
        self.endless_answers = 0
        super().__init__(('127.0.0.1', 0), HostileHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return 'http://127.0.0.1:%d/%s' % (self.server_address[1], name)

    def close(self):
        self.stopping = True
        self.shutdown()
        self.server_close()


class HostileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        srv = self.server
        with open(os.path.join(srv.root, os.path.basename(self.path)), 'rb') as f:
            data = f.read()
        rng = self.headers.get('Range', '')
        if not rng.startswith('bytes='):
            self.send_response(200)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)
            return
        a, b = (int(x) for x in rng[6:].split('-'))
        b = min(b, len(data) - 1)
        if srv.endless and b - a + 1 >= ENDLESS_FROM:
            srv.endless_answers += 1
            self.send_response(srv.endless)
            self.send_header('Connection', 'close')
            self.end_headers()
            junk = b'<html>no</html>\n' * 4096
            try:
                while not srv.stopping:
                    self.wfile.write(junk)
            except OSError:
                pass
            self.close_connection = True
            return
        self.send_response(206)
        self.send_header('Content-Range', 'bytes %d-%d/%d' % (a, b, len(data)))
        self.send_header('Content-Length', str(b - a + 1))
        self.end_headers()
        if not head:
            self.wfile.write(data[a:b + 1])


def timed_read(path, off, n):
    """Reads n bytes of path at off in a child process (a hung FUSE read cannot be abandoned
    from a thread). Returns (bytes or None, errno or None); fails the test after READ_DEADLINE."""
    code = ('import os, sys\n'
            'fd = os.open(sys.argv[1], os.O_RDONLY)\n'
            'try:\n'
            '    sys.stdout.buffer.write(os.pread(fd, int(sys.argv[3]), int(sys.argv[2])))\n'
            'except OSError as e:\n'
            '    sys.stderr.write(str(e.errno)); sys.exit(3)\n')
    p = subprocess.Popen([sys.executable, '-c', code, path, str(off), str(n)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=READ_DEADLINE)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError('a read of %s at %d hung for %d s' % (path, off, READ_DEADLINE))
    if p.returncode == 3:
        return None, int(err)
    if p.returncode != 0:
        raise AssertionError('reader failed: %s' % err.decode(errors='replace'))
    return out, None


class EndlessBodies(unittest.TestCase):
    """An endless answer to a data GET is cut: the read ends, the daemon keeps serving."""

    @classmethod
    def setUpClass(cls):
        cls.dir = os.path.join(harness.workdir(), 'www')
        os.makedirs(cls.dir, exist_ok=True)
        cls.h5 = os.path.join(cls.dir, 'chunked.h5')
        cls.arr = np.arange(1 << 20, dtype='<i8').reshape(-1, 4)   # 8 MiB
        with h5py.File(cls.h5, 'w') as f:
            f.create_dataset('plain', data=cls.arr, chunks=(4096, 4))
        cls.want = cls.arr.tobytes()

    def check_endless(self, status, cause):
        srv = HostileServer(self.dir)
        self.addCleanup(srv.close)
        with harness.Mount(srv.url('chunked.h5'), ['-o', 'nocheck']) as m:
            step = 1024 * 1024
            got, err = timed_read(m.p('plain'), step, 1000)
            self.assertEqual(got, self.want[step:step + 1000])
            srv.endless = status
            got, err = timed_read(m.p('plain'), 4 * step, 1000)
            self.assertGreater(srv.endless_answers, 0)
            # Either EIO or the bytes through HDF5's own (smaller) reads; never a hang.
            if err is None:
                self.assertEqual(got, self.want[4 * step:4 * step + 1000])
            self.assertTrue(harness.wait_until(lambda: cause in m.stderr_text(), 5.0), m.stderr_text())
            srv.endless = 0
            got, err = timed_read(m.p('plain'), 6 * step, 1000)
            self.assertEqual(got, self.want[6 * step:6 * step + 1000])
            self.assertTrue(m.alive())

    def test_endless_200_body_is_cut(self):
        self.check_endless(200, 'the server ignores Range requests (HTTP 200)')

    def test_endless_500_body_is_cut_and_retried(self):
        self.check_endless(500, 'HTTP 500 (after 4 tries)')


class ForgedLogLines(unittest.TestCase):
    """A name or value quoted in a log line cannot start a line of its own: a user who may
    write to the mount cannot forge the daemon's log (control bytes become '?')."""

    FORGED = 'h5mount: error: FORGED'

    def test_newline_in_refused_rename_and_xattr_stays_in_one_line(self):
        d = tempfile.mkdtemp(prefix='forged-', dir=harness.workdir())
        h5 = os.path.join(d, 'f.h5')
        log = os.path.join(d, 'h5mount.log')
        with h5py.File(h5, 'w') as f:
            f['e'] = np.arange(10, dtype='<i4')
            f['e'].attrs.create('n', 1, dtype='<i1')
        with harness.Mount(h5, ['-o', 'log=' + log]) as m:
            # Refused (a .npy name keeps its suffix) and logged with the new name quoted.
            self.assertEqual(harness.errno_of(os.rename, m.p('e.npy'), m.p('e\n' + self.FORGED)),
                             errno.EINVAL)
            # Refused (not an 8-bit integer) and logged with the text quoted: an escape
            # sequence (clear the screen) reaches the log as '?[2J'.
            self.assertEqual(harness.errno_of(os.setxattr, m.p('e'), 'user.n', b'FORGED\x1b[2J'),
                             errno.EINVAL)
            self.assertTrue(harness.wait_until(lambda: open(log).read().count('FORGED') >= 2, 5.0),
                            open(log).read())
        lines = open(log, 'rb').read().decode(errors='replace').splitlines()
        stamp = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d h5mount\[%d\]: ' % m.pid)
        for line in lines:
            self.assertRegex(line, stamp)
            self.assertNotIn('\x1b', line)
        forged = [line for line in lines if 'FORGED' in line]
        self.assertEqual(len(forged), 2, lines)
        self.assertIn("rename to 'e?h5mount: error: FORGED' refused", forged[0])
        self.assertIn("'FORGED?[2J' is not an integer", forged[1])

    def test_a_flood_of_refused_operations_is_cut_to_a_rate(self):
        d = tempfile.mkdtemp(prefix='flood-', dir=harness.workdir())
        h5 = os.path.join(d, 'f.h5')
        log = os.path.join(d, 'h5mount.log')
        with h5py.File(h5, 'w') as f:
            f['e'] = np.arange(10, dtype='<i4')
        with harness.Mount(h5, ['-o', 'log=' + log]) as m:
            for i in range(3000):  # each is refused with a log line (a NUL byte in a string)
                self.assertEqual(harness.errno_of(os.setxattr, m.p('e'), 'user.q%d' % i, b'\0'),
                                 errno.EINVAL)

            def summary():
                harness.errno_of(os.setxattr, m.p('e'), 'user.last', b'\0')
                return 'log lines were dropped' in open(log).read()
            self.assertTrue(harness.wait_until(summary, 5.0), open(log).read()[-500:])
        text = open(log).read()
        self.assertLessEqual(text.count('not written'), 600)
        dropped = re.search(r'warning: (\d+) log lines were dropped: more than 10 a second\n', text)
        self.assertIsNotNone(dropped, text[-500:])
        self.assertGreaterEqual(int(dropped.group(1)), 2400)


class LogFileTraps(unittest.TestCase):
    """-o log=FILE in a shared directory: a name another user planted there (a symlink to a
    file of the daemon's user, another user's file, a hard link, a FIFO) is refused before
    mounting with one line, and what it points at is not written to."""

    def setUp(self):
        self.d = tempfile.mkdtemp(prefix='traps-', dir=harness.workdir())
        os.chmod(self.d, 0o1777)
        self.h5 = os.path.join(self.d, 'f.h5')
        with h5py.File(self.h5, 'w') as f:
            f['e'] = np.arange(10, dtype='<i4')
        self.victim = os.path.join(self.d, 'victim')
        with open(self.victim, 'w') as f:
            f.write('precious\n')

    def refused(self, log, why):
        mnt = harness.new_mountpoint()
        try:
            # In the background: a daemon that accepts the file mounts and its launcher returns.
            r = subprocess.run([harness.EXE, '-o', 'log=' + log, self.h5, mnt],
                               capture_output=True, text=True, timeout=READ_DEADLINE)
        except subprocess.TimeoutExpired:
            harness.fusermount_unmount(mnt)
            raise AssertionError('h5mount hung opening the log file %s' % log)
        mounted = harness.is_mounted(mnt)
        if mounted:
            harness.fusermount_unmount(mnt)
        self.assertFalse(mounted)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "h5mount: the log file '%s' is %s: refused (it must be a regular "
                         "file of the daemon's user with one link)\n" % (log, why))
        with open(self.victim) as f:
            self.assertEqual(f.read(), 'precious\n')

    def test_symlink_is_refused(self):
        log = os.path.join(self.d, 'sym.log')
        os.symlink(self.victim, log)
        self.refused(log, 'a symlink')

    def test_hard_link_is_refused(self):
        log = os.path.join(self.d, 'hard.log')
        os.link(self.victim, log)
        self.refused(log, 'not a file of ours')

    def test_other_users_file_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest('needs root to make a file of another user')
        log = os.path.join(self.d, 'theirs.log')
        with open(log, 'w'):
            pass
        os.chown(log, harness.NOBODY, harness.NOBODY)
        self.refused(log, 'not a file of ours')
        self.assertEqual(os.path.getsize(log), 0)

    def test_fifo_is_refused_without_hanging(self):
        log = os.path.join(self.d, 'fifo.log')
        os.mkfifo(log)
        mnt = harness.new_mountpoint()
        try:
            r = subprocess.run([harness.EXE, '-f', '-o', 'log=' + log, self.h5, mnt],
                               capture_output=True, text=True, timeout=READ_DEADLINE)
        except subprocess.TimeoutExpired:
            harness.fusermount_unmount(mnt)
            raise AssertionError('h5mount hung opening the FIFO %s as its log file' % log)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertFalse(harness.is_mounted(mnt))
        self.assertIn("log file '%s'" % log, r.stderr)


if __name__ == '__main__':
    harness.run_tests()
