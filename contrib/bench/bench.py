#!/usr/bin/python3
"""bench.py: h5mount against PyTables on the same data, measured in the same run.

What it does: writes 1000-column float64 EArrays (uncompressed and Blosc level 5) with PyTables
into a temporary directory, then runs each workload once through an h5mount mount and once
through PyTables directly, alternating (mount, direct, mount, direct, ...) for --runs rounds.
It prints the medians, the h5mount/PyTables ratio against each target and the daemon's peak
memory against its bound, and writes all raw timings as JSON and the ratios as a PNG chart.
Every run checks a sample of the data it moved, so broken data fails the run.
What it does not: enforce the targets. A MISS is reported and the exit status is still 0; the
status is 1 only when something is broken (a mount failed, data differ, the daemon died or
exited non-zero), 2 for bad arguments. It changes no system setting unless --read-ahead-kb
is given.

Run it through contrib/bench/run, which installs the dependencies and builds h5mount first.
"""

import argparse
import collections
import datetime
import gc
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import tables

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The mount helper (start, wait, unmount, daemon statistics) is the one the mount tests use.
sys.path.insert(0, os.path.join(ROOT, 'tests', 'mount'))
import mounting                                        # noqa: E402
from mounting import PROC_COUNTERS, proc_counters     # noqa: E402

COLS = 1000                   # columns of every EArray, as in the PyTables EArray tutorial
ROW_BYTES = COLS * 8          # one float64 row
MiB = 1 << 20
MB = 1e6                      # throughput is reported in decimal MB/s, like dd
SLICE_ROWS = 1000             # rows per PyTables read slice and per bulk EArray.append
GEN_ROWS = 1024               # the data generator works in aligned blocks of this many rows
SOURCE_ROWS = 16384           # rows kept in memory for the appends: 125 MiB, a whole number of MiB
WRITE_SIZE = MiB              # bytes per write() in the bulk appends through the mount
RANDOM_OPS = 10000            # random rows read in the random-access workload
EXPR = '3*sin(x) + sqrt(abs(x))'
EXPR_BLOCK_ROWS = 10000       # rows per numpy block in the expression through the mount
ROWWISE_PER_GIB = 20000       # rows appended one by one, per GiB of --size
SEED = 61007

EXIT_TIMEOUT = 120.0          # seconds for the daemon to write back and exit after an unmount

DEFAULT_CACHE = 256 * MiB     # h5mount's defaults, for the memory bound
DEFAULT_DIRTY = 64 * MiB
RSS_SLACK = 56 * MiB          # the bound is cache_size + dirty_limit + this (README "Memory")


class Broken(Exception):
    """Something that must fail the benchmark: a mount, the daemon or the data."""


def log(msg):
    print('bench: ' + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- sizes and data

def parse_size(text):
    """Bytes for '50M', '4G', '1.5G', '123456' (binary suffixes K, M, G, T, like h5mount's
    options); raises ValueError for anything else."""
    m = re.fullmatch(r'\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*', text, re.I)
    if not m:
        raise ValueError('bad size %r (use e.g. 50M, 1G, 4G)' % text)
    return int(float(m.group(1)) * (1 << (10 * ' KMGT'.index(m.group(2).upper() or ' '))))


def size_arg(text):
    """--size: parse_size() of at least 100 rows."""
    try:
        value = parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))
    if value < 100 * ROW_BYTES:
        raise argparse.ArgumentTypeError('size %r is below 100 rows (%d bytes)' % (text, 100 * ROW_BYTES))
    return value


def fmt_size(n):
    for unit, scale in (('G', 1 << 30), ('M', MiB), ('K', 1 << 10)):
        if n >= scale and n % scale == 0:
            return '%d%s' % (n // scale, unit)
    return '%.1fM' % (n / MiB) if n >= MiB else str(n)


def _signal_block(row0):
    """Rows [row0, row0 + GEN_ROWS) of the benchmark signal (row0 a multiple of GEN_ROWS).

    Each column is a sine of its own period and phase, plus 1% Gaussian noise, quantized to
    2**-14 V as a 16-bit ADC with a +-2 V range would deliver it: smooth, noisy data that Blosc
    compresses about 3x, not random bytes."""
    rng = np.random.default_rng([SEED, row0])
    t = np.arange(row0, row0 + GEN_ROWS, dtype=np.float64)[:, None]
    c = np.arange(COLS, dtype=np.float64)[None, :]
    period = 200.0 + 13.0 * (c % 61.0)
    volts = np.sin(2.0 * np.pi * t / period + 0.1 * c) * (1.0 + c / COLS)
    volts += 0.01 * rng.standard_normal((GEN_ROWS, COLS))
    return np.round(volts * 16384.0) / 16384.0


def signal_rows(row0, n):
    """Rows [row0, row0 + n) of the benchmark signal; the same rows whatever the slicing."""
    first = row0 - row0 % GEN_ROWS
    blocks = [_signal_block(b) for b in range(first, row0 + n, GEN_ROWS)]
    whole = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return whole[row0 - first:row0 - first + n]


def blosc_filters():
    return tables.Filters(complevel=5, complib='blosc')


def create_earray(path, name='x', filters=None, expectedrows=0):
    """Creates (or truncates) path with an empty float64 EArray /name of (0, COLS)."""
    with tables.open_file(path, 'w') as f:
        f.create_earray(f.root, name, tables.Float64Atom(), (0, COLS), 'h5mount benchmark',
                        filters=filters, expectedrows=expectedrows)


# ---------------------------------------------------------------------------- system helpers

def drop_cache(*paths):
    """Evicts the page cache of each existing path (fsync first, then POSIX_FADV_DONTNEED)."""
    for path in paths:
        if not os.path.exists(path):
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path):
    """Reads path to the end in 1 MiB reads (to fill the page cache); returns the byte count."""
    n = 0
    with open(path, 'rb', buffering=0) as fp:
        while True:
            piece = fp.read(MiB)
            if not piece:
                return n
            n += len(piece)


def write_all(fd, buf):
    """os.write until all of buf is written; raises Broken on a short write that makes no progress."""
    view = memoryview(buf).cast('B')
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise Broken('write() returned %d' % n)
        view = view[n:]


def dd(path, expect):
    """`dd if=path of=/dev/null bs=1M`; returns the seconds it took. Raises Broken when dd
    fails or copies other than `expect` bytes."""
    t0 = time.perf_counter()
    p = subprocess.run(['dd', 'if=' + path, 'of=/dev/null', 'bs=1M'],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        raise Broken('dd of %s failed: %s' % (path, p.stderr.strip()))
    m = re.search(r'^(\d+) bytes', p.stderr, re.M)
    if not m or int(m.group(1)) != expect:
        raise Broken('dd of %s copied %s bytes, expected %d' % (path, m and m.group(1), expect))
    return seconds


class Meter:
    """`with Meter(daemons, children) as m:` times its body: wall seconds, the CPU seconds and
    minor page faults of the client (this process, or its waited-for children such as dd when
    children=True), and proc_counters() of the daemons (Mounts), summed over them. Read
    m.result(amount) afterwards."""

    def __init__(self, daemons=(), children=False):
        self.daemons = list(daemons)
        self.who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF

    def __enter__(self):
        self.before = [proc_counters(d.pid) for d in self.daemons]
        self.ru0 = resource.getrusage(self.who)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        ru = resource.getrusage(self.who)
        self.client_cpu = (ru.ru_utime - self.ru0.ru_utime) + (ru.ru_stime - self.ru0.ru_stime)
        self.client_minflt = ru.ru_minflt - self.ru0.ru_minflt
        now = [proc_counters(d.pid) for d in self.daemons]
        self.daemon = {name: sum(n[i] - b[i] for n, b in zip(now, self.before))
                       for i, name in enumerate(PROC_COUNTERS)}
        return False

    def result(self, amount, **extra):
        """The run's record: seconds, amount (MB or operations), value (amount per second),
        the client's CPU seconds and minor faults, the daemons' counters, and `extra`."""
        r = {'seconds': self.seconds, 'amount': amount, 'value': amount / self.seconds,
             'client_cpu': round(self.client_cpu, 3), 'client_minflt': self.client_minflt}
        if self.daemons:
            r['daemon_cpu'] = round(self.daemon['cpu'], 3)
            r['daemon_minflt'] = self.daemon['minflt']
            r['daemon_rchar'] = self.daemon['rchar']
            r['daemon_wchar'] = self.daemon['wchar']
        r.update(extra)
        return r


# ---------------------------------------------------------------------------- mounts

class Mount(mounting.Daemon):
    """`with Mount(...) as m:` runs `h5mount -f` (or `-d` when tracing) for h5 on a fresh mount
    point and waits for the mount: polls every POLL s for MOUNT_TIMEOUT s, failing early when the
    daemon exits. Leaving the block always unmounts with `fusermount3 -u` and waits for the
    daemon; stop() raises Broken if the daemon had died or exited non-zero. Starting, waiting,
    unmounting and the /proc statistics are tests/mount/mounting.py's, shared with the tests."""

    error = Broken
    exit_timeout = EXIT_TIMEOUT
    busy_is_problem = True       # a benchmark never holds files open at the unmount

    def __init__(self, bench, h5, opts=(), tag='mnt'):
        path = tempfile.mkdtemp(prefix=tag + '-', dir=bench.tmp)
        super().__init__(path, path + '.log')
        self.bench = bench
        self.h5 = h5
        self.opts = list(opts)

    @property
    def argv(self):
        argv = [self.bench.exe, '-d' if self.bench.args.trace else '-f']
        if self.opts:
            argv += ['-o', ','.join(self.opts)]
        return argv + [self.h5, self.path]

    def p(self, name):
        return os.path.join(self.path, name)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            try:
                self.stop()
            except Broken:
                pass                           # start()'s error says more
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop()
        except Broken as e:
            if exc_type is None:
                raise
            if issubclass(exc_type, Broken) or not issubclass(exc_type, Exception):
                return False                   # the body's own failure, or an interrupt
            # The daemon's fate explains the body's error (ENOTCONN after a crash, say).
            raise Broken('%s\nthe workload got: %s: %s' % (e, exc_type.__name__, exc)) from exc
        return False

    def log_tail(self, n=3000):
        text = self.log_text()
        if self.bench.args.trace:
            text = '\n'.join(l for l in text.splitlines() if 'debug:' not in l)
        return text[-n:]

    def failure_log(self):
        return self.log_tail()

    def start(self):
        super().start()
        if self.bench.args.read_ahead_kb is not None:
            with open(self.bdi('read_ahead_kb'), 'w') as fp:
                fp.write('%d\n' % self.bench.args.read_ahead_kb)
        return self

    def bdi(self, name):
        dev = os.stat(self.path).st_dev
        return '/sys/class/bdi/%d:%d/%s' % (os.major(dev), os.minor(dev), name)

    def read_ahead_kb(self):
        with open(self.bdi('read_ahead_kb')) as fp:
            return int(fp.read())

    def check_alive(self):
        if self.proc.poll() is not None:
            raise Broken('h5mount died (status %d) while mounted:\n%s'
                         % (self.proc.returncode, self.log_tail()))

    def memory(self):
        """mounting.proc_memory() of the daemon; raises Broken if it died."""
        self.check_alive()
        try:
            return super().memory()
        except OSError as e:
            raise Broken('cannot read the memory of h5mount (pid %d): %s' % (self.pid, e))

    def stop(self):
        """Unmounts and waits for the daemon; idempotent. Sets unmount_seconds (the time the
        daemon took to write back and exit). Raises Broken if the daemon died before, could not
        be unmounted cleanly, did not exit in EXIT_TIMEOUT s, or exited non-zero."""
        if self.proc is None or self not in mounting.ACTIVE:
            return
        problems = self.unmount()
        if self.bench.args.trace:
            self.bench.traces.append(fuse_trace_summary(self.logpath))
        if problems:
            raise Broken('; '.join(problems) + ' (%s)\n%s' % (self.h5, self.log_tail()))
        try:
            os.rmdir(self.path)
        except OSError:
            pass


def fuse_trace_summary(logpath):
    """What the kernel asked of the daemon, from an `h5mount -d` log: request counts per opcode,
    the data sizes of READ replies and WRITE requests (most common first), NOTIFY counts."""
    opcodes = {}
    counts = collections.Counter()
    reads = collections.Counter()
    writes = collections.Counter()
    notify = collections.Counter()
    req = re.compile(r'unique: (\d+), opcode: (\w+) \(\d+\), nodeid: \d+, insize: (\d+)')
    rep = re.compile(r'unique: (\d+), (?:success|error)[^\n]*outsize: (\d+)')
    with open(logpath, encoding='utf-8', errors='replace') as fp:
        for line in fp:
            m = req.search(line)
            if m:
                opcodes[m.group(1)] = m.group(2)
                counts[m.group(2)] += 1
                if m.group(2) == 'WRITE':
                    writes[int(m.group(3)) - 80] += 1          # in header + fuse_write_in
                continue
            m = rep.search(line)
            if m:
                if opcodes.pop(m.group(1), None) == 'READ':
                    reads[int(m.group(2)) - 16] += 1            # out header
                continue
            m = re.search(r'NOTIFY: code=(\d+)', line)
            if m:
                notify['code %s' % m.group(1)] += 1

    def top(c):
        return {str(size): n for size, n in c.most_common(6)}
    return {'log': logpath, 'requests': dict(counts.most_common()), 'notify': dict(notify),
            'read_sizes': top(reads), 'write_sizes': top(writes),
            'read_bytes': sum(s * n for s, n in reads.items()),
            'write_bytes': sum(s * n for s, n in writes.items())}


# ---------------------------------------------------------------------------- the workloads

Workload = collections.namedtuple('Workload', 'key title unit target method arg')

WORKLOADS = [
    Workload('seq_plain', 'sequential read, uncompressed, cold', 'MB/s', 0.6, 'seq_read', 'plain'),
    Workload('seq_blosc', 'sequential read, Blosc 5, cold', 'MB/s', 1.0, 'seq_read', 'blosc'),
    Workload('warm_plain', 'warm re-read, uncompressed', 'MB/s', 1.0, 'warm_read', 'plain'),
    Workload('warm_blosc', 'warm re-read, Blosc 5', 'MB/s', 1.0, 'warm_read', 'blosc'),
    Workload('append_plain', 'bulk append, uncompressed', 'MB/s', 1.0, 'bulk_append', 'plain'),
    Workload('append_blosc', 'bulk append, Blosc 5', 'MB/s', 1.0, 'bulk_append', 'blosc'),
    Workload('rows_plain', 'row-by-row append, uncompressed', 'rows/s', 1.0, 'row_append', 'plain'),
    Workload('rows_blosc', 'row-by-row append, Blosc 5', 'rows/s', 1.0, 'row_append', 'blosc'),
    Workload('random_blosc', 'random rows, Blosc 5, cold', 'rows/s', 2.0, 'random_rows', 'blosc'),
    Workload('expr_plain', 'expression, uncompressed', 'MB/s', 1.0, 'expression', 'plain'),
]
BY_KEY = {w.key: w for w in WORKLOADS}


class Bench:
    """The data files, the options and the results of one benchmark run."""

    def __init__(self, args, exe, tmp):
        self.args = args
        self.exe = exe
        self.tmp = tmp
        self.rows = args.size // ROW_BYTES
        self.nbytes = self.rows * ROW_BYTES
        self.rowwise = max(500, round(ROWWISE_PER_GIB * args.size / (1 << 30)))
        # A chunk cache well below the Blosc dataset, so random rows mostly miss it.
        self.random_cache = max(4, min(64, args.size // (8 * MiB))) * MiB
        self.files = {'plain': os.path.join(tmp, 'plain.h5'), 'blosc': os.path.join(tmp, 'blosc.h5')}
        self.filters = {'plain': None, 'blosc': blosc_filters()}
        self.source = None
        self.traces = []
        self.read_ahead = set()

    # ---------------------------------------------------------------- setup

    def setup(self):
        """Writes plain.h5 and blosc.h5 (/x: rows x COLS float64, appended GEN_ROWS at a time)
        and keeps the first SOURCE_ROWS rows in memory for the appends. Returns a description."""
        t0 = time.perf_counter()
        for kind, path in self.files.items():
            create_earray(path, filters=self.filters[kind], expectedrows=self.rows)
        with tables.open_file(self.files['plain'], 'a') as fp, \
                tables.open_file(self.files['blosc'], 'a') as fb:
            for row0 in range(0, self.rows, GEN_ROWS):
                block = signal_rows(row0, min(GEN_ROWS, self.rows - row0))
                fp.root.x.append(block)
                fb.root.x.append(block)
            chunks = {'plain': fp.root.x.chunkshape, 'blosc': fb.root.x.chunkshape}
        self.source = np.ascontiguousarray(signal_rows(0, min(self.rows, SOURCE_ROWS)))
        info = {'seconds': round(time.perf_counter() - t0, 2), 'rows': self.rows, 'cols': COLS,
                'dataset_bytes': self.nbytes, 'rowwise_rows': self.rowwise, 'files': {}}
        for kind, path in self.files.items():
            size = os.path.getsize(path)
            info['files'][kind] = {'bytes': size, 'chunkshape': [int(c) for c in chunks[kind]],
                                   'compression_ratio': round(self.nbytes / size, 3)}
        return info

    def source_rows(self, row0, n):
        """Rows [row0, row0+n) of the endless repetition of self.source."""
        s = len(self.source)
        i = row0 % s
        if i + n <= s:
            return self.source[i:i + n]
        return np.concatenate([self.source[i:]] + [self.source] * ((i + n) // s - 1) +
                              [self.source[:(i + n) % s]])

    def source_pieces(self, nbytes, size):
        """nbytes of the repeated source as a list of buffers of `size` bytes (the last may be
        shorter): views where possible, built before any timing starts."""
        src = memoryview(self.source).cast('B')
        pieces, pos, done = [], 0, 0
        while done < nbytes:
            want = min(size, nbytes - done)
            if pos + want <= len(src):
                pieces.append(src[pos:pos + want])
            else:
                pieces.append(bytes(src[pos:]) + bytes(src[:want - (len(src) - pos)]))
            pos = (pos + want) % len(src)
            done += want
        return pieces

    def sample(self, rows, seed):
        """A few row numbers to check: the ends, the middle and five random ones."""
        rng = np.random.default_rng([SEED, seed])
        pick = {0, rows - 1, rows // 2} | set(rng.integers(0, rows, 5).tolist())
        return sorted(pick)

    def mount(self, h5, opts=(), tag='mnt'):
        return Mount(self, h5, opts, tag)

    def mount_record(self, m, rec):
        """Adds what the mount itself says to a run record: options, peak memory (and what is
        resident now, anonymous or file-backed), read-ahead."""
        mem = m.memory()
        rec['mount_opts'] = ','.join(m.opts)
        rec['peak_rss'] = mem['VmHWM']
        rec['memory_at_end'] = {k: mem.get(k) for k in ('VmRSS', 'RssAnon', 'RssFile', 'Threads')}
        ra = m.read_ahead_kb()
        rec['read_ahead_kb'] = ra
        self.read_ahead.add(ra)
        return rec

    def check_rows(self, what, got, h5, rows):
        """Raises Broken unless rows `rows` of h5:/x (read with PyTables) equal `got`."""
        with tables.open_file(h5, 'r') as f:
            for i, row in zip(rows, got):
                want = f.root.x[i]
                if row.tobytes() != want.tobytes():
                    raise Broken('%s: row %d read through the mount differs from PyTables' % (what, i))

    def check_appended(self, what, h5, nrows):
        """Raises Broken unless h5:/x has nrows rows and a sample of them equals the source."""
        with tables.open_file(h5, 'r') as f:
            x = f.root.x
            if x.shape != (nrows, COLS):
                raise Broken('%s: %s has shape %s after the append, expected %s'
                             % (what, os.path.basename(h5), x.shape, (nrows, COLS)))
            for i in self.sample(nrows, 3):
                if x[i].tobytes() != self.source_rows(i, 1)[0].tobytes():
                    raise Broken('%s: appended row %d differs from what was written' % (what, i))

    @staticmethod
    def pread_rows(path, rows):
        fd = os.open(path, os.O_RDONLY)
        try:
            out = []
            for i in rows:
                b = os.pread(fd, ROW_BYTES, i * ROW_BYTES)
                if len(b) != ROW_BYTES:
                    raise Broken('short read of row %d of %s: %d bytes' % (i, path, len(b)))
                out.append(np.frombuffer(b, dtype='<f8'))
            return out
        finally:
            os.close(fd)

    def pytables_read_all(self, h5):
        with tables.open_file(h5, 'r') as f:
            x = f.root.x
            for i in range(0, x.nrows, SLICE_ROWS):
                x[i:i + SLICE_ROWS]

    # ---------------------------------------------------------------- reference points

    def references(self, run):
        """dd of plain.h5 itself: cold (from the disk) and from the page cache (the ceiling)."""
        h5 = self.files['plain']
        size = os.path.getsize(h5)
        drop_cache(h5)
        with Meter(children=True) as cold:
            dd(h5, size)
        read_file(h5)
        with Meter(children=True) as warm:
            dd(h5, size)
        return {'disk': cold.result(size / MB), 'page_cache': warm.result(size / MB)}

    # ---------------------------------------------------------------- workloads: one run each
    # Each returns (mount record, direct record) of one run, mount first.

    def seq_read(self, kind, run):
        """Cold sequential read: `dd bs=1M` of mnt/x on a fresh read-only mount vs PyTables
        reading 1000-row slices, each after evicting the .h5 file from the page cache."""
        h5 = self.files[kind]
        rows = self.sample(self.rows, run)
        drop_cache(h5)
        with self.mount(h5, ['ro']) as m:
            with Meter([m], children=True) as t:
                dd(m.p('x'), self.nbytes)
            got = self.pread_rows(m.p('x'), rows)
            mnt = self.mount_record(m, t.result(self.nbytes / MB))
        mnt['unmount_seconds'] = m.unmount_seconds
        drop_cache(h5)
        with Meter() as t:
            self.pytables_read_all(h5)
        direct = t.result(self.nbytes / MB)
        self.check_rows('sequential read of %s' % kind, got, h5, rows)
        return mnt, direct

    def warm_read(self, kind, run):
        """Second read of the same view on the same mount (the kernel keeps its page cache
        across opens) vs a second PyTables read with the .h5 file in the page cache."""
        h5 = self.files[kind]
        rows = self.sample(self.rows, run)
        with self.mount(h5, ['ro']) as m:
            with Meter([m], children=True) as first:
                dd(m.p('x'), self.nbytes)
            with Meter([m], children=True) as t:
                dd(m.p('x'), self.nbytes)
            got = self.pread_rows(m.p('x'), rows)
            mnt = self.mount_record(m, t.result(self.nbytes / MB, first_seconds=first.seconds,
                                                first_daemon_cpu=round(first.daemon['cpu'], 3)))
        mnt['unmount_seconds'] = m.unmount_seconds
        t0 = time.perf_counter()
        self.pytables_read_all(h5)
        first = time.perf_counter() - t0
        with Meter() as t:
            self.pytables_read_all(h5)
        direct = t.result(self.nbytes / MB, first_seconds=first)
        self.check_rows('warm re-read of %s' % kind, got, h5, rows)
        return mnt, direct

    def _append_files(self, kind):
        paths = [os.path.join(self.tmp, 'append-%s.h5' % side) for side in ('mount', 'direct')]
        for p in paths:
            create_earray(p, filters=self.filters[kind], expectedrows=self.rows)
        return paths

    def _finish_append(self, what, paths, nrows):
        for side, p in zip(('mount', 'direct'), paths):
            self.check_appended('%s (%s)' % (what, side), p, nrows)
            os.unlink(p)

    def bulk_append(self, kind, run):
        """Appending all rows to an empty EArray: 1 MiB os.write()s to mnt/x opened O_APPEND,
        then fsync and close, vs EArray.append of 1000-row blocks, flush, close and fsync.
        Both clocks stop when the data is durable."""
        pm, pd = self._append_files(kind)
        pieces = self.source_pieces(self.nbytes, WRITE_SIZE)
        blocks = [self.source_rows(i, min(SLICE_ROWS, self.rows - i))
                  for i in range(0, self.rows, SLICE_ROWS)]
        with self.mount(pm) as m:
            fd = os.open(m.p('x'), os.O_WRONLY | os.O_APPEND)
            try:
                with Meter([m]) as t:
                    for piece in pieces:
                        write_all(fd, piece)
                    t_data = time.perf_counter() - t.t0
                    os.fsync(fd)
                    os.close(fd)
                    fd = None
            finally:
                if fd is not None:
                    os.close(fd)
            mnt = self.mount_record(m, t.result(self.nbytes / MB, write_seconds=t_data))
        mnt['unmount_seconds'] = m.unmount_seconds
        del pieces
        with Meter() as t:
            with tables.open_file(pd, 'a') as f:
                x = f.root.x
                for b in blocks:
                    x.append(b)
                t_data = time.perf_counter() - t.t0
                f.flush()
            fsync_path(pd)
        direct = t.result(self.nbytes / MB, write_seconds=t_data)
        self._finish_append('bulk append %s' % kind, (pm, pd), self.rows)
        return mnt, direct

    def row_append(self, kind, run):
        """Appending rows one at a time: one os.write() of 8000 bytes per row to mnt/x vs
        EArray.append(row[None]) per row as in the tutorials; then fsync/flush as above."""
        n = self.rowwise
        pm, pd = self._append_files(kind)
        src = memoryview(self.source).cast('B')
        per = len(self.source)
        rows_b = [src[(i % per) * ROW_BYTES:(i % per + 1) * ROW_BYTES] for i in range(n)]
        rows_a = [self.source[i % per] for i in range(n)]
        with self.mount(pm) as m:
            fd = os.open(m.p('x'), os.O_WRONLY | os.O_APPEND)
            try:
                with Meter([m]) as t:
                    for r in rows_b:
                        if os.write(fd, r) != ROW_BYTES:
                            raise Broken('short write of a row to %s' % m.p('x'))
                    t_data = time.perf_counter() - t.t0
                    os.fsync(fd)
                    os.close(fd)
                    fd = None
            finally:
                if fd is not None:
                    os.close(fd)
            mnt = self.mount_record(m, t.result(n, write_seconds=t_data))
        mnt['unmount_seconds'] = m.unmount_seconds
        with Meter() as t:
            with tables.open_file(pd, 'a') as f:
                x = f.root.x
                for r in rows_a:
                    x.append(r[None])
                t_data = time.perf_counter() - t.t0
                f.flush()
            fsync_path(pd)
        direct = t.result(n, write_seconds=t_data)
        self._finish_append('row-by-row append %s' % kind, (pm, pd), n)
        return mnt, direct

    def random_rows(self, kind, run):
        """RANDOM_OPS random rows, cold: through np.load(x.npy, mmap_mode='r') on a fresh
        read-only mount with a chunk cache far below the dataset, vs PyTables x[i]."""
        h5 = self.files[kind]
        idx = np.random.default_rng([SEED, 100 + run]).integers(0, self.rows, RANDOM_OPS).tolist()
        got = np.empty((RANDOM_OPS, COLS))
        want = np.empty((RANDOM_OPS, COLS))
        drop_cache(h5)
        with self.mount(h5, ['ro', 'cache_size=%dM' % (self.random_cache // MiB)]) as m:
            with Meter([m]) as t:
                a = np.load(m.p('x.npy'), mmap_mode='r')
                for k, i in enumerate(idx):
                    got[k] = a[i]
                del a
            gc.collect()
            mnt = self.mount_record(m, t.result(RANDOM_OPS))
        mnt['unmount_seconds'] = m.unmount_seconds
        drop_cache(h5)
        with Meter() as t:
            with tables.open_file(h5, 'r') as f:
                x = f.root.x
                for k, i in enumerate(idx):
                    want[k] = x[i]
        direct = t.result(RANDOM_OPS)
        if got.tobytes() != want.tobytes():
            bad = int(np.nonzero((got != want).any(axis=1))[0][0])
            raise Broken('random rows: row %d read through x.npy differs from PyTables' % idx[bad])
        return mnt, direct

    def expression(self, kind, run):
        """EXPR over all of /x, cold, into an empty EArray: numpy over the mmap'ed x.npy of a
        read-only mount, EXPR_BLOCK_ROWS rows at a time, each block appended with os.write to
        y on a read-write mount of the output file (then fsync), vs tables.Expr with
        set_output(y, append_mode=True), flush, close and fsync. The outputs must match."""
        h5 = self.files[kind]
        outs = [os.path.join(self.tmp, 'expr-%s.h5' % side) for side in ('mount', 'direct')]
        for p in outs:
            create_earray(p, 'y', self.filters[kind], self.rows)
        drop_cache(h5)
        parts = {'read': 0.0, 'compute': 0.0, 'write': 0.0}
        with self.mount(h5, ['ro'], 'in') as mi, self.mount(outs[0], [], 'out') as mo:
            fd = os.open(mo.p('y'), os.O_WRONLY | os.O_APPEND)
            try:
                with Meter([mi, mo]) as t:
                    a = np.load(mi.p('x.npy'), mmap_mode='r')
                    for s in range(0, self.rows, EXPR_BLOCK_ROWS):
                        t0 = time.perf_counter()
                        x = np.array(a[s:s + EXPR_BLOCK_ROWS])
                        t1 = time.perf_counter()
                        y = 3 * np.sin(x) + np.sqrt(np.abs(x))
                        t2 = time.perf_counter()
                        write_all(fd, y)
                        t3 = time.perf_counter()
                        parts['read'] += t1 - t0
                        parts['compute'] += t2 - t1
                        parts['write'] += t3 - t2
                    del a
                    os.fsync(fd)
                    os.close(fd)
                    fd = None
            finally:
                if fd is not None:
                    os.close(fd)
            gc.collect()
            mnt = t.result(self.nbytes / MB, parts={k: round(v, 3) for k, v in parts.items()})
            recs = [self.mount_record(m, {}) for m in (mi, mo)]
            mnt.update(mount_opts='in: ro; out: (defaults)',
                       peak_rss=max(r['peak_rss'] for r in recs),
                       peak_rss_in=recs[0]['peak_rss'], peak_rss_out=recs[1]['peak_rss'],
                       memory_at_end={'in': recs[0]['memory_at_end'], 'out': recs[1]['memory_at_end']},
                       read_ahead_kb=recs[0]['read_ahead_kb'])
        mnt['unmount_seconds'] = max(mi.unmount_seconds, mo.unmount_seconds)
        drop_cache(h5)
        with Meter() as t:
            with tables.open_file(h5, 'r') as fi, tables.open_file(outs[1], 'a') as fo:
                e = tables.Expr(EXPR, uservars={'x': fi.root.x})
                e.set_output(fo.root.y, append_mode=True)
                e.eval()
                fo.flush()
            fsync_path(outs[1])
        direct = t.result(self.nbytes / MB)
        self.check_expression(h5, outs, full=(run == 0))
        for p in outs:
            os.unlink(p)
        return mnt, direct

    def check_expression(self, h5, outs, full):
        """Raises Broken unless both outputs have all rows and agree (allclose) with each other,
        entirely when full, else on a sample, and with numpy on the input on a sample."""
        with tables.open_file(h5, 'r') as fi, tables.open_file(outs[0], 'r') as fm, \
                tables.open_file(outs[1], 'r') as fd:
            ym, yd, x = fm.root.y, fd.root.y, fi.root.x
            for name, y in (('h5mount', ym), ('PyTables', yd)):
                if y.shape != x.shape:
                    raise Broken('expression: %s output has shape %s, expected %s' % (name, y.shape, x.shape))
            step = EXPR_BLOCK_ROWS if full else 1
            starts = range(0, x.nrows, step) if full else self.sample(x.nrows, 7)
            for s in starts:
                a, b = ym[s:s + step], yd[s:s + step]
                if not np.allclose(a, b, rtol=1e-12, atol=1e-12):
                    raise Broken('expression: rows from %d differ between h5mount and PyTables' % s)
            for i in self.sample(x.nrows, 8):
                v = x[i]
                if not np.allclose(ym[i], 3 * np.sin(v) + np.sqrt(np.abs(v)), rtol=1e-12, atol=1e-12):
                    raise Broken('expression: output row %d is not %s of the input row' % (i, EXPR))


# ---------------------------------------------------------------------------- results

def machine_info(exe):
    info = {'nproc': os.cpu_count(), 'kernel': platform.release(), 'python': platform.python_version()}
    with open('/proc/meminfo') as fp:
        for line in fp:
            if line.startswith('MemTotal:'):
                info['memory_bytes'] = int(line.split()[1]) * 1024
    try:
        with open('/proc/cpuinfo') as fp:
            m = re.search(r'^model name\s*:\s*(.*)$', fp.read(), re.M)
            info['cpu'] = m.group(1).strip() if m else platform.processor()
    except OSError:
        info['cpu'] = platform.processor()
    v = subprocess.run([exe, '-V'], capture_output=True, text=True)
    # The checkout the binary was built in (its build dir is inside it).
    git = subprocess.run(['git', '-C', os.path.dirname(exe), 'describe', '--always', '--dirty'],
                         capture_output=True, text=True)
    versions = {'h5mount': (v.stdout or v.stderr).strip(), 'h5mount_binary': exe,
                'h5mount_git': git.stdout.strip() if git.returncode == 0 else None,
                'hdf5': tables.hdf5_version, 'pytables': tables.__version__,
                'numpy': np.__version__, 'blosc': tables.which_lib_version('blosc')[1]}
    try:
        import numexpr
        versions['numexpr'] = numexpr.__version__
    except ImportError:
        pass
    params = tables.parameters
    versions['pytables_params'] = {'MAX_BLOSC_THREADS': params.MAX_BLOSC_THREADS,
                                   'MAX_NUMEXPR_THREADS': params.MAX_NUMEXPR_THREADS,
                                   'CHUNK_CACHE_SIZE': params.CHUNK_CACHE_SIZE}
    return info, versions


def rss_bound(opts):
    """cache_size + dirty_limit + RSS_SLACK for a mount option string (h5mount's defaults)."""
    cache, dirty = DEFAULT_CACHE, DEFAULT_DIRTY
    for o in re.split(r'[,;]\s*', opts or ''):
        if '=' in o:
            k, v = o.split(':')[-1].strip().split('=', 1)
            if k == 'cache_size':
                cache = parse_size(v)
            elif k == 'dirty_limit':
                dirty = parse_size(v)
    return cache + dirty + RSS_SLACK


# (name in the summary, side, field of the run record) of the counters whose medians are kept.
MEDIAN_COUNTERS = [
    ('mount_client', 'mount', 'client_cpu'), ('mount_daemon', 'mount', 'daemon_cpu'),
    ('direct', 'direct', 'client_cpu'), ('mount_daemon_minflt', 'mount', 'daemon_minflt'),
    ('direct_minflt', 'direct', 'client_minflt'), ('mount_daemon_rchar', 'mount', 'daemon_rchar'),
    ('mount_daemon_wchar', 'mount', 'daemon_wchar'),
]


def summarize(w, runs):
    """Medians, ratio and PASS/MISS of one workload from its runs."""
    mv = statistics.median(r['mount']['value'] for r in runs)
    dv = statistics.median(r['direct']['value'] for r in runs)
    ms = statistics.median(r['mount']['seconds'] for r in runs)
    ds = statistics.median(r['direct']['seconds'] for r in runs)
    peak = max(r['mount']['peak_rss'] for r in runs)
    bound = rss_bound(runs[0]['mount']['mount_opts'])
    ratio = mv / dv
    return {'title': w.title, 'unit': w.unit, 'target': w.target,
            'mount_opts': runs[0]['mount']['mount_opts'] or '(defaults)',
            'median': {'mount': mv, 'direct': dv, 'mount_seconds': ms, 'direct_seconds': ds},
            'median_cpu': {name: statistics.median(r[side][field] for r in runs)
                           for name, side, field in MEDIAN_COUNTERS},
            'ratio': ratio, 'pass': ratio >= w.target,
            'peak_rss': peak, 'rss_bound': bound, 'rss_pass': peak <= bound, 'runs': runs}


def print_table(res, out=sys.stdout):
    wl = res['workloads']
    print(file=out)
    print('h5mount vs PyTables, %s per array (%d rows x %d float64), %d run(s), medians'
          % (fmt_size(res['size']), res['setup']['rows'], COLS, res['runs']), file=out)
    head = '%-38s %10s %10s %-6s %7s %7s %-6s %17s %s' % (
        'workload', 'h5mount', 'PyTables', 'unit', 'ratio', 'target', 'result',
        'daemon peak/bound', 'memory')
    print(head, file=out)
    print('-' * len(head), file=out)
    for key, s in wl.items():
        print('%-38s %10.1f %10.1f %-6s %6.2fx %6.1fx %-6s %8.0f/%4.0f MiB %s' % (
            s['title'], s['median']['mount'], s['median']['direct'], s['unit'], s['ratio'],
            s['target'], 'PASS' if s['pass'] else 'MISS', s['peak_rss'] / MiB,
            s['rss_bound'] / MiB, 'PASS' if s['rss_pass'] else 'MISS'), file=out)
    refs = res.get('references')
    if refs:
        print('%-38s %10.1f %10s %s' % ('ceiling: dd of plain.h5, page cache',
                                        refs['median']['page_cache'], '', 'MB/s'), file=out)
        print('%-38s %10.1f %10s %s' % ('reference: dd of plain.h5, cold',
                                        refs['median']['disk'], '', 'MB/s'), file=out)
    print(file=out)
    print('Where the time goes (medians per run). wall: seconds; CPU: seconds of the h5mount client '
          '+ the daemon, and of PyTables;', file=out)
    print('faults: minor page faults of the daemon and of PyTables; daemon I/O: MB the daemon '
          'read and wrote with system calls (rchar, wchar: the .h5 file and /dev/fuse)', file=out)
    head = '%-38s %15s %22s %19s %17s' % ('workload', 'wall h5m|PyT', 'CPU client+daemon|PyT',
                                          'faults daemon|PyT', 'daemon I/O r|w')
    print(head, file=out)
    print('-' * len(head), file=out)
    for key, s in wl.items():
        c, m = s['median_cpu'], s['median']
        print('%-38s %7.2f|%7.2f %6.2f+%6.2f|%6.2f %9d|%9d %8.0f|%8.0f' % (
            s['title'], m['mount_seconds'], m['direct_seconds'], c['mount_client'],
            c['mount_daemon'], c['direct'], c.get('mount_daemon_minflt', -1),
            c.get('direct_minflt', -1), c.get('mount_daemon_rchar', 0) / MB,
            c.get('mount_daemon_wchar', 0) / MB), file=out)
    misses = [key for key, s in wl.items() if not s['pass']]
    mem = [key for key, s in wl.items() if not s['rss_pass']]
    print(file=out)
    print('targets missed: %s' % (', '.join(misses) or 'none'), file=out)
    print('memory bound exceeded: %s' % (', '.join(mem) or 'none'), file=out)


def print_compare(old, new, out=sys.stdout):
    print(file=out)
    print('change against %s (%s, %s per array):' % (old.get('_path', 'old result'), old.get('date', '?'),
                                                       fmt_size(old.get('size', 0))), file=out)
    head = '%-38s %10s %10s %8s %8s %8s' % ('workload', 'old', 'new', 'change', 'old x', 'new x')
    print(head, file=out)
    print('-' * len(head), file=out)
    for key, s in new['workloads'].items():
        o = old.get('workloads', {}).get(key)
        if not o:
            print('%-38s %10s %10.1f' % (s['title'], '-', s['median']['mount']), file=out)
            continue
        ov, nv = o['median']['mount'], s['median']['mount']
        print('%-38s %10.1f %10.1f %+7.1f%% %7.2fx %7.2fx' % (
            s['title'], ov, nv, 100.0 * (nv / ov - 1.0), o['ratio'], s['ratio']), file=out)
    if old.get('size') != new.get('size'):
        print('(sizes differ: %s then, %s now)'
              % (fmt_size(old.get('size', 0)), fmt_size(new['size'])), file=out)


def chart(res, path):
    """Bar charts of the ratios (with each workload's target) and of the daemon's peak memory
    (with its bound), written to path as PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    wl = list(res['workloads'].values())
    labels = [s['title'].replace(', ', '\n', 1) for s in wl]
    xs = np.arange(len(wl))
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(max(8, 1.25 * len(wl)), 9),
                                 gridspec_kw={'height_ratios': [3, 2]})
    colors = ['#4c9a2a' if s['pass'] else '#c0392b' for s in wl]
    ax.bar(xs, [s['ratio'] for s in wl], color=colors, width=0.6)
    for x, s in zip(xs, wl):
        ax.hlines(s['target'], x - 0.4, x + 0.4, colors='black', linestyles='dashed')
        ax.text(x, s['ratio'], '%.2fx' % s['ratio'], ha='center', va='bottom', fontsize=8)
    ax.axhline(1.0, color='grey', linewidth=0.8)
    # Ratios span from a few hundredths to several times: a log scale shows both ends.
    ax.set_yscale('log')
    lo = min([s['ratio'] for s in wl] + [s['target'] for s in wl])
    hi = max([s['ratio'] for s in wl] + [s['target'] for s in wl])
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
             if lo / 2 <= t <= hi * 2]
    ax.set_yticks(ticks)
    ax.set_yticklabels(['%gx' % t for t in ticks])
    ax.minorticks_off()
    ax.set_ylim(lo / 1.6, hi * 1.6)
    ax.set_ylabel('h5mount / PyTables (higher is better)')
    ax.set_title('h5mount vs PyTables, %s per array, median of %d; dashed: target'
                 % (fmt_size(res['size']), res['runs']))
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, fontsize=7)
    peak = [s['peak_rss'] / MiB for s in wl]
    bx.bar(xs, peak, color=['#4c9a2a' if s['rss_pass'] else '#c0392b' for s in wl], width=0.6)
    for x, s in zip(xs, wl):
        bx.hlines(s['rss_bound'] / MiB, x - 0.4, x + 0.4, colors='black', linestyles='dashed')
    bx.set_ylabel('daemon peak RSS, MiB')
    bx.set_title('dashed: cache_size + dirty_limit + 32 MiB')
    bx.set_xticks(xs)
    bx.set_xticklabels(labels, fontsize=7)
    m = res['machine']
    v = res['versions']
    fig.text(0.01, 0.005, '%s, %d CPUs, %.0f GiB, Linux %s; %s%s; PyTables %s; %s' % (
        m.get('cpu', '?'), m['nproc'], m['memory_bytes'] / (1 << 30), m['kernel'], v['h5mount'],
        ' at ' + v['h5mount_git'] if v.get('h5mount_git') else '', v['pytables'], res['date']),
        fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog='contrib/bench/run',
        description='Benchmark h5mount against PyTables on the same data, in the same run. '
                    'Exits 0 whether or not targets are met; 1 when something is broken.')
    p.add_argument('--size', type=size_arg, default=parse_size('1G'),
                   help='bytes per array, suffix K/M/G (default 1G; CI uses 50M)')
    p.add_argument('--runs', type=int, default=3, metavar='N', help='runs per workload; medians reported (default 3)')
    p.add_argument('--dir', metavar='DIR', help='where to make the temporary directory (default /var/tmp)')
    p.add_argument('--out', metavar='DIR', default=os.path.join(ROOT, 'build', 'bench'),
                   help='directory for the JSON and PNG results (default build/bench)')
    p.add_argument('--keep', action='store_true', help='keep the temporary data')
    p.add_argument('--compare', metavar='OLD.json', help='also print the change against a previous result')
    p.add_argument('--show', metavar='RESULT.json',
                   help='print the table of a saved result (and --compare) without running')
    p.add_argument('--only', metavar='KEYS',
                   help='comma-separated workloads to run: ' + ','.join(BY_KEY))
    p.add_argument('--h5mount', metavar='PATH', default=os.path.join(ROOT, 'build', 'h5mount'),
                   help='the h5mount binary (default build/h5mount)')
    p.add_argument('--read-ahead-kb', type=int, metavar='N',
                   help='set each mount\'s read_ahead_kb after mounting (root; default: leave it '
                        'as the kernel and h5mount set it, which is recorded)')
    p.add_argument('--trace', action='store_true',
                   help='mount with -d and record FUSE request counts and sizes (slows everything; '
                        'timings are not comparable)')
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error('--runs must be at least 1')
    if args.only:
        keys = [k.strip() for k in args.only.split(',') if k.strip()]
        bad = [k for k in keys if k not in BY_KEY]
        if bad:
            p.error('unknown workload(s) %s; choose from %s' % (', '.join(bad), ', '.join(BY_KEY)))
        args.only = keys
    return args


def _json_default(o):
    """numpy scalars as Python numbers, anything else as its text."""
    return o.item() if isinstance(o, np.generic) else str(o)


def load_json(path):
    with open(path) as fp:
        res = json.load(fp)
    res['_path'] = path
    return res


def run(args):
    """Runs the benchmark; returns the result dict (also written to args.out)."""
    exe = os.path.abspath(args.h5mount)
    if not os.access(exe, os.X_OK):
        raise Broken('%s is not an executable; build it with ninja -C build' % exe)
    started = time.perf_counter()
    date = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    tmp = tempfile.mkdtemp(prefix='h5mount-bench-', dir=args.dir or '/var/tmp')
    b = Bench(args, exe, tmp)
    machine, versions = machine_info(exe)
    res = {'schema': 1, 'date': date.isoformat(), 'size': args.size, 'runs': args.runs,
           'argv': sys.argv[1:], 'machine': machine, 'versions': versions, 'tmp': tmp,
           'trace': bool(args.trace), 'workloads': {}}
    try:
        log('writing %s per array (%d rows) in %s' % (fmt_size(args.size), b.rows, tmp))
        res['setup'] = b.setup()
        log('setup took %.1f s; Blosc ratio %.2f' % (res['setup']['seconds'],
                                                     res['setup']['files']['blosc']['compression_ratio']))
        refs = [b.references(r) for r in range(args.runs)]
        res['references'] = {'runs': refs, 'median': {
            k: statistics.median(r[k]['value'] for r in refs) for k in ('disk', 'page_cache')}}
        for w in WORKLOADS:
            if args.only and w.key not in args.only:
                continue
            runs = []
            for r in range(args.runs):
                first_trace = len(b.traces)
                mnt, direct = getattr(b, w.method)(w.arg, r)
                rec = {'mount': mnt, 'direct': direct}
                if args.trace:
                    rec['fuse'] = b.traces[first_trace:]
                runs.append(rec)
                log('%-13s run %d/%d: h5mount %9.1f %s, PyTables %9.1f %s, daemon peak %.0f MiB'
                    % (w.key, r + 1, args.runs, mnt['value'], w.unit, direct['value'], w.unit,
                       mnt['peak_rss'] / MiB))
            res['workloads'][w.key] = summarize(w, runs)
        res['read_ahead_kb'] = sorted(b.read_ahead)
    finally:
        if args.keep:
            log('kept the data in %s' % tmp)
        elif not mounting.ACTIVE:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log('left %s in place: something is still mounted there' % tmp)
    res['total_seconds'] = round(time.perf_counter() - started, 1)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, 'bench-%s-%s' % (date.strftime('%Y%m%dT%H%M%SZ'), fmt_size(args.size)))
    with open(stem + '.json', 'w') as fp:
        json.dump(res, fp, indent=1, default=_json_default)
        fp.write('\n')
    res['_files'] = [stem + '.json']
    if res['workloads']:
        chart(res, stem + '.png')
        res['_files'].append(stem + '.png')
    return res


def main(argv):
    args = parse_args(argv)
    if args.show:
        res = load_json(args.show)
    else:
        if not os.path.exists('/dev/fuse'):
            log('/dev/fuse is missing; FUSE is not available here, so there is nothing to measure')
            return 0
        # SIGTERM and SIGINT unwind through the finally blocks, which unmount.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            res = run(args)
        except Broken as e:
            log('BROKEN: %s' % e)
            return 1
        except OSError as e:
            # A failing read, write or fsync through the mount is a broken mount too.
            import traceback
            traceback.print_exc()
            log('BROKEN: %s' % e)
            return 1
        except KeyboardInterrupt:
            return 130
    print_table(res)
    if args.compare:
        print_compare(load_json(args.compare), res)
    if not args.show:
        print()
        print('took %.0f s; results: %s' % (res['total_seconds'], ' '.join(res['_files'])))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
