#!/usr/bin/python3
"""remote.py: h5mount on a remote (HTTP) file against h5py's ROS3 driver, in the same run.

What it does: writes a PyTables file with an uncompressed and a Blosc (lz4, level 5) EArray of
--size MiB each into a temporary directory, serves it with an nginx of its own on 127.0.0.1,
and puts a small TCP proxy of its own in front of nginx that holds every client->server
transfer back by --latency-ms (these kernels have no netem qdisc): each request pays that
latency once, as over a network. It then reads each dataset sequentially and --random-rows
random rows, through a fresh h5mount mount of the proxy URL and through h5py with
driver='ros3' on the same URL, and prints MB/s, HTTP requests per GB moved and the
h5mount/h5py ratio for each. Samples of the data read are compared with the local file.
What it does not: enforce the targets (>= 3x for sequential reads, >= 1x for random rows) or
repeat runs; the machine's load is in the figures. Exit status 1 when something is broken
(a mount failed, data differ), 2 for bad arguments, else 0.

Usage: /usr/bin/python3 contrib/bench/remote.py [--exe build/h5mount] [--size 64]
       [--latency-ms 5] [--random-rows 300]
"""

import argparse
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import tables   # noqa: F401  registers Blosc in libhdf5 for h5py's reads
import h5py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLS = 1000
ROW_BYTES = COLS * 8
MiB = 1 << 20
SEQ_READ = MiB              # read(2) size through the mount
SLICE_ROWS = 1000           # rows per h5py slice in the sequential read


class LatencyProxy:
    """127.0.0.1:port -> 127.0.0.1:target. Bytes from a client reach the server `latency`
    seconds after they were sent (one delay per request burst); replies pass at once.
    Counts requests (the "GET " or "HEAD " that start them). Runs in a process of its own:
    h5py holds Python's GIL during ROS3's blocking requests, which would stall a proxy thread
    of the same process."""

    def __init__(self, target, latency):
        self.target, self.latency = target, latency
        self.counter = multiprocessing.Value('q', 0)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.proc = multiprocessing.Process(target=self.accept, daemon=True)
        self.proc.start()
        self.sock.close()

    def stop(self):
        self.proc.terminate()
        self.proc.join()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            s = socket.create_connection(('127.0.0.1', self.target))
            for so in (c, s):
                so.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.pipe, args=(c, s, True), daemon=True).start()
            threading.Thread(target=self.pipe, args=(s, c, False), daemon=True).start()

    def pipe(self, a, b, delay):
        try:
            while True:
                data = a.recv(1 << 16)
                if not data:
                    break
                if delay:
                    n = data.count(b'GET ') + data.count(b'HEAD ')
                    with self.counter.get_lock():
                        self.counter.value += n
                    time.sleep(self.latency)
                b.sendall(data)
        except OSError:
            pass
        for so in (a, b):
            try:
                so.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def count(self):
        with self.counter.get_lock():
            return self.counter.value


def start_nginx(root, workdir):
    nginx = shutil.which('nginx') or shutil.which('nginx', path='/usr/sbin:/sbin')
    if not nginx:
        sys.exit('remote.py: nginx is missing (contrib/deps installs nginx-light)')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    conf = os.path.join(workdir, 'nginx.conf')
    with open(conf, 'w') as f:
        f.write("""daemon off; master_process off; worker_processes 1; %s
pid %s/nginx.pid; error_log %s/error.log;
events { worker_connections 256; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path %s/cb; proxy_temp_path %s/px; fastcgi_temp_path %s/fc; uwsgi_temp_path %s/uw;
  scgi_temp_path %s/sc;
  server { listen 127.0.0.1:%d; root %s; } }
""" % ((('user root;' if os.geteuid() == 0 else ''),) + (workdir,) * 7 + (port, root)))
    proc = subprocess.Popen([nginx, '-c', conf, '-e', os.path.join(workdir, 'error.log')],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit('remote.py: nginx did not start')
            time.sleep(0.05)


def make_file(path, size_mib):
    rows = size_mib * MiB // ROW_BYTES
    rng = np.random.default_rng(15)
    with tables.open_file(path, 'w') as f:
        plain = f.create_earray('/', 'plain', tables.Float64Atom(), (0, COLS))
        blosc = f.create_earray('/', 'blosc', tables.Float64Atom(), (0, COLS),
                                filters=tables.Filters(5, 'blosc:lz4'))
        for r0 in range(0, rows, 1000):
            n = min(1000, rows - r0)
            # A signal with noise in its low bits: compresses about 2:1 like measured data.
            x = np.round(np.sin(np.arange(r0 * COLS, (r0 + n) * COLS) / 500.0)
                         + rng.normal(0, 0.01, n * COLS), 3).reshape(n, COLS)
            plain.append(x)
            blosc.append(x)
    return rows


class Mounted:
    def __init__(self, exe, url, workdir):
        self.path = tempfile.mkdtemp(prefix='mnt-', dir=workdir)
        self.proc = subprocess.Popen([exe, '-f', '-o', 'nocheck', url, self.path],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not os.path.ismount(self.path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('mount failed: %s' % self.proc.stderr.read().decode())
            time.sleep(0.05)

    def close(self):
        subprocess.run(['fusermount3', '-u', self.path], check=False)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def h5mount_seq(m, name, nbytes):
    got = 0
    with open(os.path.join(m.path, name), 'rb', buffering=0) as f:
        while True:
            b = f.read(SEQ_READ)
            if not b:
                break
            last = b
            got += len(b)
    assert got == nbytes, (got, nbytes)
    return last[-ROW_BYTES:]


def h5mount_random(m, name, rows_idx):
    out = []
    fd = os.open(os.path.join(m.path, name), os.O_RDONLY)
    try:
        for r in rows_idx:
            out.append(os.pread(fd, ROW_BYTES, int(r) * ROW_BYTES))
    finally:
        os.close(fd)
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--exe', default=os.path.join(ROOT, 'build', 'h5mount'))
    ap.add_argument('--size', type=int, default=64, help='MiB per dataset (the issue: 1024)')
    ap.add_argument('--latency-ms', type=float, default=5.0)
    ap.add_argument('--random-rows', type=int, default=300)
    a = ap.parse_args(argv)
    if a.size < 1 or a.random_rows < 1 or a.latency_ms < 0:
        ap.print_usage()
        return 2
    work = tempfile.mkdtemp(prefix='h5mount-remote-bench-')
    nginx = proxy = None
    status = 0
    try:
        www = os.path.join(work, 'www')
        os.makedirs(www)
        h5 = os.path.join(www, 'bench.h5')
        rows = make_file(h5, a.size)
        nbytes = rows * ROW_BYTES
        nginx, nport = start_nginx(www, work)
        proxy = LatencyProxy(nport, a.latency_ms / 1000.0)
        url = 'http://127.0.0.1:%d/bench.h5' % proxy.port
        rng = np.random.default_rng(1)
        idx = rng.integers(0, rows, a.random_rows)
        local = h5py.File(h5, 'r')
        print('remote bench: %d MiB per dataset, %.1f ms per request, %d random rows, %s'
              % (a.size, a.latency_ms, a.random_rows, url))
        print('%-7s %-7s %-8s %10s %10s %12s %7s' % ('dataset', 'access', 'client', 'MB/s', 'seconds',
                                                       'requests/GB', 'ratio'))
        for name in ('plain', 'blosc'):
            for access in ('seq', 'random'):
                res = {}
                moved = nbytes if access == 'seq' else a.random_rows * ROW_BYTES
                for client in ('h5mount', 'h5py'):
                    m = Mounted(a.exe, url, work) if client == 'h5mount' else None
                    f = h5py.File(url, 'r', driver='ros3') if client == 'h5py' else None
                    n0, t0 = proxy.count(), time.monotonic()
                    if client == 'h5mount' and access == 'seq':
                        got = [h5mount_seq(m, name, nbytes)]
                        want = [local[name][rows - 1].tobytes()]
                    elif client == 'h5mount':
                        got = h5mount_random(m, name, idx)
                        want = [local[name][int(r)].tobytes() for r in idx[:20]]
                        got = got[:20]
                    elif access == 'seq':
                        ds = f[name]
                        for r0 in range(0, rows, SLICE_ROWS):
                            last = ds[r0:r0 + SLICE_ROWS]
                        got = [last[-1].tobytes()]
                        want = [local[name][rows - 1].tobytes()]
                    else:
                        ds = f[name]
                        got = [ds[int(r)].tobytes() for r in idx][:20]
                        want = [local[name][int(r)].tobytes() for r in idx[:20]]
                    dt = time.monotonic() - t0
                    nreq = proxy.count() - n0
                    if m:
                        m.close()
                    if f:
                        f.close()
                    if got != want:
                        print('%s %s %s: DATA DIFFER' % (name, access, client))
                        status = 1
                    res[client] = (moved / dt / 1e6, dt, nreq / (moved / 1e9))
                for client in ('h5mount', 'h5py'):
                    mbs, dt, rpg = res[client]
                    ratio = '%.2fx' % (res['h5mount'][0] / res['h5py'][0]) if client == 'h5mount' else ''
                    print('%-7s %-7s %-8s %10.1f %10.2f %12.0f %7s' % (name, access, client, mbs, dt, rpg, ratio))
        local.close()
    except RuntimeError as e:
        print('remote.py: %s' % e, file=sys.stderr)
        status = 1
    finally:
        if proxy:
            proxy.stop()
        if nginx:
            nginx.terminate()
            nginx.wait()
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
