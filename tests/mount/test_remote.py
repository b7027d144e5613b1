"""Mounts HDF5 files served over HTTP on 127.0.0.1 (h5mount URL MNT) and compares them with the local copies.

An nginx started by the test (temporary root and config, no system service) serves the
fixtures with Range support; a small Python server that answers 500 a given number of times
stands in for a failing store. Covers every view, listing and xattr of remote files, mmap,
EROFS, a 404 / a non-HDF5 object / bad URLs at mount, the server stopped mid-read (EIO, then
served again), 500s (retried, then EIO, then served again), and s3:// with keys: signed
requests, no key in ps, /proc/mounts or the log. Skips (77) when nginx is missing. Usage:

    /usr/bin/python3 tests/mount/test_remote.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import http.server
import mmap
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from unittest import mock

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402
import tables               # noqa: E402

import fixtures             # noqa: E402
import harness              # noqa: E402
from harness import read_file   # noqa: E402

NGINX = shutil.which('nginx') or shutil.which('nginx', path='/usr/sbin:/sbin')
FIX = {}
SERVER = None
KEY_ID = 'AKIDH5MOUNTTESTKEY01'
SECRET = 'h5mount-secret-never-shown-0123456789abcdef'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=0.5):
            return True
    except OSError:
        return False


class Nginx:
    """nginx on 127.0.0.1:port serving `root`, in the foreground as a child of the test. Its
    access log shows each request's Range and Authorization (the signature, never the key)."""

    def __init__(self, root, port=None):
        self.root = root
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix='nginx-', dir=harness.workdir())
        self.access_log = os.path.join(self.dir, 'access.log')
        self.proc = None
        with open(os.path.join(self.dir, 'nginx.conf'), 'w') as f:
            f.write("""daemon off;
master_process off;
worker_processes 1;
%(user)s
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
events { worker_connections 256; }
http {
  log_format h5m '$status "$http_range" "$http_authorization" $body_bytes_sent';
  access_log %(d)s/access.log h5m;
  client_body_temp_path %(d)s/cb; proxy_temp_path %(d)s/px; fastcgi_temp_path %(d)s/fc;
  uwsgi_temp_path %(d)s/uw; scgi_temp_path %(d)s/sc;
  server { listen 127.0.0.1:%(port)d; root %(root)s; keepalive_requests 100000; }
}
""" % {'d': self.dir, 'port': self.port, 'root': root,
                'user': 'user root;' if os.geteuid() == 0 else ''})

    def start(self):
        self.proc = subprocess.Popen([NGINX, '-c', os.path.join(self.dir, 'nginx.conf'),
                                      '-e', os.path.join(self.dir, 'error.log')],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=harness._term_when_parent_dies)
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('nginx did not start: %s' % self.error_text())
            time.sleep(0.05)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def error_text(self):
        try:
            with open(os.path.join(self.dir, 'error.log')) as f:
                return f.read()[-2000:]
        except OSError:
            return ''

    def log_lines(self):
        try:
            with open(self.access_log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def url(self, name):
        return 'http://127.0.0.1:%d/%s' % (self.port, name)


class FlakyServer(http.server.ThreadingHTTPServer):
    """Serves the files of `root` with Range support, answering 500 to the next `fail`
    requests; counts requests."""
    daemon_threads = True

    def __init__(self, root):
        self.root = root
        self.fail = 0
        self.requests = 0
        self.lock = threading.Lock()
        super().__init__(('127.0.0.1', 0), FlakyHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return 'http://127.0.0.1:%d/%s' % (self.server_address[1], name)

    def close(self):
        self.shutdown()
        self.server_close()


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle and delayed ACKs cost
        # 40 ms per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_HEAD(self):
        # ROS3 asks for the size first.
        self.do_GET(head=True)

    def do_GET(self, head=False):
        srv = self.server
        with srv.lock:
            srv.requests += 1
            failing = srv.fail > 0
            if failing:
                srv.fail -= 1
        if failing:
            body = b'failing on purpose\n'
            self.send_response(500)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        path = os.path.join(srv.root, os.path.basename(self.path))
        try:
            with open(path, 'rb') as f:
                data = f.read()
        except OSError:
            self.send_response(404)
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        rng = self.headers.get('Range', '')
        if not rng.startswith('bytes='):
            self.send_response(200)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)
            return
        a, b = rng[6:].split('-')
        a, b = int(a), min(int(b), len(data) - 1)
        self.send_response(206)
        self.send_header('Content-Range', 'bytes %d-%d/%d' % (a, b, len(data)))
        self.send_header('Content-Length', str(b - a + 1))
        self.end_headers()
        self.wfile.write(data[a:b + 1])


def make_remote_fixtures(d):
    """The local fixtures plus a user-block file and a bigger chunked pair (plain, Blosc)
    for the failure tests; all in d (nginx's root)."""
    out = fixtures.make_all(d)
    ub = os.path.join(d, 'userblock.h5')
    with h5py.File(ub, 'w', userblock_size=512) as f:
        f.create_dataset('chunked', data=np.arange(50000, dtype='<i8').reshape(-1, 5), chunks=(1000, 5))
        f['contig'] = np.arange(7000, dtype='<f4').reshape(-1, 7)
    out['userblock'] = ub
    big = os.path.join(d, 'big.h5')
    rng = np.random.default_rng(15)
    with tables.open_file(big, 'w') as f:
        # 8 MB each: reads far from the start are not in any cache when the server goes away.
        arr = rng.integers(0, 1000, size=(250000, 4)).astype('<i8')
        f.create_carray('/', 'plain', obj=arr, chunkshape=(4096, 4))
        f.create_carray('/', 'blosc', obj=arr, chunkshape=(4096, 4),
                        filters=tables.Filters(5, 'blosc:lz4'))
    out['big'] = big
    text = os.path.join(d, 'notes.txt')
    with open(text, 'w') as f:
        f.write('not an HDF5 file\n' * 100)
    out['text'] = text
    return out


def setUpModule():
    global SERVER
    d = os.path.join(harness.workdir(), 'www')
    os.makedirs(d)
    FIX.update(make_remote_fixtures(d))
    FIX['root'] = d
    SERVER = Nginx(d).start()


def tearDownModule():
    if SERVER:
        SERVER.stop()


def name_of(key):
    return os.path.basename(FIX[key])


def failed_mount(tc, url, *opts, env=None):
    """Runs h5mount on url expecting failure; returns its stderr (one line)."""
    mnt = harness.new_mountpoint()
    p = subprocess.run([harness.EXE, '-f'] + list(opts) + [url, mnt], capture_output=True,
                       text=True, timeout=60, env=env)
    tc.assertNotEqual(p.returncode, 0, p.stderr)
    tc.assertFalse(os.path.ismount(mnt))
    lines = p.stderr.strip().splitlines()
    tc.assertEqual(len(lines), 1, p.stderr)
    return lines[0]


class RemoteViews(unittest.TestCase):
    """Every view, listing and xattr of remote files equals the local file's."""

    def compare(self, key, pytables=False):
        h5 = FIX[key]
        with harness.Mount(SERVER.url(name_of(key))) as m:
            failures = harness.check_all(m, harness.compute_expectations(h5, pytables=pytables))
            failures += harness.check_listings(m, h5)
            failures += harness.check_xattrs(m, h5)
            self.assertEqual(failures, [], '\n'.join(failures[:20]))

    def test_types_fixture_matches_local_file(self):
        self.compare('types')

    def test_pytables_fixture_matches_local_file(self):
        self.compare('pytables', pytables=True)

    def test_user_block_offsets_are_applied(self):
        self.compare('userblock')

    def test_blosc_and_plain_chunks_match_h5py(self):
        with harness.Mount(SERVER.url(name_of('big'))) as m, h5py.File(FIX['big'], 'r') as f:
            for name in ('plain', 'blosc'):
                want = f[name][:].tobytes()
                self.assertEqual(read_file(m.p(name)), want, name)
                # Unaligned reads inside and across chunks.
                with open(m.p(name), 'rb') as fp:
                    for off in (12345, 4096 * 32 * 3 - 7, len(want) - 100):
                        fp.seek(off)
                        self.assertEqual(fp.read(5000), want[off:off + 5000], (name, off))

    def test_adjacent_chunks_come_in_few_requests(self):
        before = len(SERVER.log_lines())
        with harness.Mount(SERVER.url(name_of('big')), ['-o', 'nocheck']) as m:
            data = read_file(m.p('plain'))
        self.assertEqual(len(data), 250000 * 4 * 8)
        ranged = [ln for ln in SERVER.log_lines()[before:] if ln.startswith('206')]
        # 62 chunks of 128 KiB: one request per chunk would be 62 data requests alone.
        self.assertLess(len(ranged), 40, '%d requests for 8 MB' % len(ranged))

    def test_mmap_of_npy_matches(self):
        with harness.Mount(SERVER.url(name_of('big'))) as m, h5py.File(FIX['big'], 'r') as f:
            arr = np.load(m.p('blosc.npy'), mmap_mode='r')
            self.assertTrue(np.array_equal(arr, f['blosc'][:]))
            arr._mmap.close()  # unmapped before the unmount
            del arr
            with open(m.p('plain'), 'rb') as fp, mmap.mmap(fp.fileno(), 0, prot=mmap.PROT_READ) as mm:
                self.assertEqual(mm[8000:9000], f['plain'][:].tobytes()[8000:9000])

    def test_writes_fail_with_erofs(self):
        with harness.Mount(SERVER.url(name_of('big'))) as m:
            self.assertEqual(harness.errno_of(open, m.p('plain'), 'r+b'), errno.EROFS)
            self.assertEqual(harness.errno_of(os.truncate, m.p('plain'), 0), errno.EROFS)
            self.assertEqual(harness.errno_of(os.mkdir, m.p('d')), errno.EROFS)
            with open('/proc/mounts') as f:
                line = [ln for ln in f if m.path in ln][0]
            self.assertIn(' ro,', line)
            self.assertIn(SERVER.url(name_of('big')), line)


class MountFailures(unittest.TestCase):
    """A URL that cannot be mounted: one clear line, non-zero exit, nothing mounted."""

    def test_404_at_mount(self):
        line = failed_mount(self, SERVER.url('missing.h5'))
        self.assertEqual(line, "h5mount: cannot open '%s': HTTP 404 (no such object)" % SERVER.url('missing.h5'))

    def test_object_that_is_not_hdf5(self):
        line = failed_mount(self, SERVER.url('notes.txt'))
        self.assertEqual(line, "h5mount: '%s' is not an HDF5 file" % SERVER.url('notes.txt'))

    def test_no_server(self):
        url = 'http://127.0.0.1:%d/x.h5' % free_port()
        line = failed_mount(self, url)
        self.assertTrue(line.startswith("h5mount: cannot open '%s': " % url), line)
        self.assertIn("connect", line.lower())

    def test_credentials_in_url_are_refused(self):
        url = 'http://user:pw@127.0.0.1:%d/%s' % (SERVER.port, name_of('big'))
        line = failed_mount(self, url)
        self.assertIn('credentials in the URL are refused', line)

    def test_endpoint_needs_s3_url(self):
        line = failed_mount(self, SERVER.url(name_of('big')), '-o', 'endpoint=http://127.0.0.1:1')
        self.assertIn('-o endpoint= is for s3:// URLs only', line)

    def test_host_external_links_are_refused(self):
        line = failed_mount(self, SERVER.url(name_of('big')), '-o', 'external_links=host')
        self.assertEqual(line, 'h5mount: -o external_links=host is for local files only')

    def test_session_token_is_refused_with_keys(self):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN='tok')
        line = failed_mount(self, 's3://www/big.h5', '-o', 'endpoint=http://127.0.0.1:%d' % SERVER.port, env=env)
        self.assertIn('AWS_SESSION_TOKEN', line)
        self.assertNotIn(SECRET, line)


def log_has(m, text, timeout=5.0):
    return harness.wait_until(lambda: text in m.stderr_text(), timeout)


class ServerGoesAway(unittest.TestCase):
    """A server that stops mid-read gives EIO and one log line; reads work again once it is
    back, without remounting."""

    def test_server_stopped_mid_read_then_back(self):
        srv = Nginx(FIX['root']).start()
        try:
            with harness.Mount(srv.url(name_of('big')), ['-o', 'nocheck']) as m, \
                    h5py.File(FIX['big'], 'r') as f:
                want = f['blosc'][:].tobytes()
                with open(m.p('blosc'), 'rb') as fp:
                    self.assertEqual(fp.read(100000), want[:100000])
                srv.stop()
                far = len(want) - 3 * 1024 * 1024
                with open(m.p('blosc'), 'rb') as fp:
                    fp.seek(far)
                    with self.assertRaises(OSError) as cm:
                        fp.read(100000)
                self.assertEqual(cm.exception.errno, errno.EIO)
                self.assertTrue(log_has(m, 'read failed (EIO)'), m.stderr_text())
                self.assertTrue(m.alive())
                srv.start()
                with open(m.p('blosc'), 'rb') as fp:
                    fp.seek(far)
                    self.assertEqual(fp.read(100000), want[far:far + 100000])
                self.assertTrue(log_has(m, 'the server answers again'), m.stderr_text())
                # One line for the outage, however many reads failed.
                self.assertEqual(m.stderr_text().count('read failed (EIO)'), 1, m.stderr_text())
        finally:
            srv.stop()


class ServerErrors(unittest.TestCase):
    """500s are retried with backoff: a few are absorbed, a lasting run gives EIO and one log
    line, and reads work again when the server recovers."""

    def test_500s_retried_then_eio_then_recovery(self):
        srv = FlakyServer(FIX['root'])
        try:
            with harness.Mount(srv.url(name_of('big')), ['-o', 'nocheck']) as m, \
                    h5py.File(FIX['big'], 'r') as f:
                want = f['plain'][:].tobytes()
                step = 1024 * 1024
                with open(m.p('plain'), 'rb') as fp:
                    # The first read loads the chunk index through ROS3, which does not retry:
                    # the failures below then meet the fetcher's data requests only.
                    fp.seek(step)
                    self.assertEqual(fp.read(1000), want[step:step + 1000])
                    fp.seek(2 * step)
                    srv.fail = 2  # absorbed by the retries
                    n0 = srv.requests
                    self.assertEqual(fp.read(1000), want[2 * step:2 * step + 1000])
                    self.assertGreaterEqual(srv.requests - n0, 3)
                self.assertNotIn('read failed', m.stderr_text())
                srv.fail = 1000  # lasting
                with open(m.p('plain'), 'rb') as fp:
                    fp.seek(4 * step)
                    with self.assertRaises(OSError) as cm:
                        fp.read(1000)
                    self.assertEqual(cm.exception.errno, errno.EIO)
                self.assertTrue(log_has(m, 'HTTP 500'), m.stderr_text())
                srv.fail = 0
                with open(m.p('plain'), 'rb') as fp:
                    fp.seek(4 * step)
                    self.assertEqual(fp.read(1000), want[4 * step:4 * step + 1000])
                self.assertEqual(m.stderr_text().count('HTTP 500'), 1, m.stderr_text())
                self.assertTrue(m.alive())
        finally:
            srv.close()


class SignedS3(unittest.TestCase):
    """s3:// with -o endpoint= and keys from the environment: ROS3 and the fetcher both sign
    (AWS4-HMAC-SHA256; nginx does not check signatures, so only that they are sent is
    tested), and the secret shows in no argv, /proc/mounts or log line."""

    def test_signed_requests_and_no_key_anywhere(self):
        # nginx's root is the fixtures directory: bucket "www", key = the file name.
        parent = os.path.dirname(FIX['root'])
        srv = Nginx(parent).start()
        env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION='eu-west-3')
        env.pop('AWS_SESSION_TOKEN', None)
        url = 's3://www/%s' % name_of('big')
        try:
            with mock.patch.dict(os.environ, env, clear=True), \
                    harness.Mount(url, ['-o', 'endpoint=http://127.0.0.1:%d' % srv.port]) as m, \
                    h5py.File(FIX['big'], 'r') as f:
                self.assertEqual(read_file(m.p('blosc')), f['blosc'][:].tobytes())
                with open('/proc/%d/cmdline' % m.proc.pid, 'rb') as c:
                    self.assertNotIn(SECRET.encode(), c.read())
                with open('/proc/mounts') as pm:
                    self.assertNotIn(SECRET, pm.read())
                lines = srv.log_lines()
                self.assertTrue(lines)
                for ln in lines:
                    self.assertIn('AWS4-HMAC-SHA256 Credential=%s/' % KEY_ID, ln)
                    self.assertIn('/eu-west-3/s3/aws4_request', ln)
                self.assertNotIn(SECRET, m.stderr_text())
        finally:
            srv.stop()


if __name__ == '__main__':
    if not NGINX:
        print('SKIP: nginx is not installed (contrib/deps installs nginx-light)')
        sys.exit(77)
    harness.run_tests()
