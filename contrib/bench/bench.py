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
import traceback

import h5py
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
NUMEXPR_BLOCK_ROWS = 1024     # rows per numexpr block (8 MB) in the numexpr expression
APPEND96_BYTES = 96_000_000   # the fixed-size bulk append (12,000 rows), whatever --size is
GZIP_LEVEL = 1                # the gzip workload's deflate level (h5py, with shuffle)
RW_TARGET = 0.9               # a read workload on the default read-write mount vs -o ro
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

    def __init__(self, bench, h5, opts=(), tag='mnt', pin=None):
        path = tempfile.mkdtemp(prefix=tag + '-', dir=bench.tmp)
        super().__init__(path, path + '.log')
        self.bench = bench
        self.h5 = h5
        self.opts = list(opts)
        self.pin = pin           # None, or the CPU the daemon is pinned to (taskset -c)

    def placement(self):
        """`taskset -c CPU` when the daemon is pinned, else nothing."""
        return [] if self.pin is None else ['taskset', '-c', str(self.pin)]

    @property
    def argv(self):
        argv = self.placement() + [self.bench.exe, '-d' if self.bench.args.trace else '-f']
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
        if self.bench.args.trace and self.h5:
            self.bench.traces.append(fuse_trace_summary(self.logpath))
        if problems:
            raise Broken('; '.join(problems) + ' (%s)\n%s' % (self.h5, self.log_tail()))
        try:
            os.rmdir(self.path)
        except OSError:
            pass


class NullMount(Mount):
    """`with NullMount(bench, pin) as m:` runs contrib/bench/nullfs, the FUSE ceiling: one file
    m.p('null') that takes WRITEs without storing them and answers READs with a fixed pattern
    (byte o is o % 251), on the same libfuse loop and with the same read-ahead as h5mount."""

    def __init__(self, bench, pin=None):
        super().__init__(bench, None, (), 'null', pin)

    @property
    def argv(self):
        argv = self.placement() + [self.bench.nullfs, '-f']
        if self.bench.args.read_ahead_kb is not None:
            argv += ['-o', 'readahead_kb=%d' % self.bench.args.read_ahead_kb]
        return argv + [self.path]


class pinned:
    """`with pinned(cpu):` runs its body (and the children it starts, such as dd) on one CPU,
    then restores this process's affinity; `with pinned(None):` changes nothing."""

    def __init__(self, cpu):
        self.cpu = cpu

    def __enter__(self):
        if self.cpu is not None:
            self.saved = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {self.cpu})
        return self

    def __exit__(self, *exc):
        if self.cpu is not None:
            os.sched_setaffinity(0, self.saved)
        return False


def pattern_ok(fd, offset, n):
    """True if n bytes at offset of the null file system's file are its pattern."""
    got = os.pread(fd, n, offset)
    want = (np.arange(offset, offset + n, dtype=np.uint64) % 251).astype(np.uint8).tobytes()
    return got == want


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

# key: the --only name; title; unit of the values; target: the h5mount/direct ratio to reach;
# method of Bench and its arg (the data kind: plain, blosc or gzip); pinned: the client, the
# daemon and the direct side all run on one CPU; rw: a read workload, run on the default
# read-write mount too (reported as rw/ro against RW_TARGET); ceiling: also measure the null
# FUSE file system ('rows' or 'seq') in the same placement; param: the method's variant.
Workload = collections.namedtuple('Workload', 'key title unit target method arg pinned rw ceiling param',
                                  defaults=(False, False, None, None))

WORKLOADS = [
    Workload('seq_plain', 'sequential read, uncompressed, cold', 'MB/s', 0.6, 'seq_read', 'plain',
             rw=True, ceiling='seq'),
    Workload('seq_blosc', 'sequential read, Blosc 5, cold', 'MB/s', 1.0, 'seq_read', 'blosc',
             rw=True, ceiling='seq'),
    Workload('seq_plain_pinned', 'sequential read, uncompressed, pinned', 'MB/s', 0.6, 'seq_read',
             'plain', pinned=True, ceiling='seq'),
    Workload('seq_blosc_pinned', 'sequential read, Blosc 5, pinned', 'MB/s', 1.0, 'seq_read', 'blosc',
             pinned=True, ceiling='seq'),
    Workload('seq_gzip', 'sequential read, gzip 1 (h5py), cold', 'MB/s', 1.6, 'seq_read', 'gzip',
             rw=True, ceiling='seq'),
    Workload('warm_plain', 'warm re-read, uncompressed', 'MB/s', 1.0, 'warm_read', 'plain', rw=True),
    Workload('warm_blosc', 'warm re-read, Blosc 5', 'MB/s', 1.0, 'warm_read', 'blosc', rw=True),
    Workload('append_plain', 'bulk append, uncompressed', 'MB/s', 1.0, 'bulk_append', 'plain'),
    Workload('append_blosc', 'bulk append, Blosc 5', 'MB/s', 1.0, 'bulk_append', 'blosc'),
    Workload('append96_plain', 'bulk append 96 MB, uncompressed', 'MB/s', 1.0, 'bulk_append', 'plain',
             param=APPEND96_BYTES),
    Workload('append96_blosc', 'bulk append 96 MB, Blosc 5', 'MB/s', 1.0, 'bulk_append', 'blosc',
             param=APPEND96_BYTES),
    Workload('rows_plain', 'row-by-row append, uncompressed', 'rows/s', 1.0, 'row_append', 'plain',
             ceiling='rows'),
    Workload('rows_blosc', 'row-by-row append, Blosc 5', 'rows/s', 1.0, 'row_append', 'blosc',
             ceiling='rows'),
    Workload('rows_plain_pinned', 'row-by-row append, uncompr., pinned', 'rows/s', 1.0, 'row_append',
             'plain', pinned=True, ceiling='rows'),
    Workload('rows_blosc_pinned', 'row-by-row append, Blosc 5, pinned', 'rows/s', 1.0, 'row_append',
             'blosc', pinned=True, ceiling='rows'),
    Workload('random_blosc', 'random rows, Blosc 5, cold', 'rows/s', 2.0, 'random_rows', 'blosc', rw=True),
    Workload('expr_plain', 'expression, uncompressed', 'MB/s', 1.0, 'expression', 'plain',
             param='numpy'),
    Workload('expr_numexpr_plain', 'expression with numexpr, uncompressed', 'MB/s', 1.0, 'expression',
             'plain', param='numexpr'),
    Workload('create_plain', 'create and fill, uncompressed', 'MB/s', 1.0, 'create_fill', 'plain'),
    Workload('create_blosc', 'create and fill, Blosc 5', 'MB/s', 1.0, 'create_fill', 'blosc'),
]
BY_KEY = {w.key: w for w in WORKLOADS}


def direct_name(w):
    """The library of w's direct side: h5py for gzip (it wrote that file) and for create and
    fill (h5py.create_dataset + write; PyTables' create_carray is its third side)."""
    return 'h5py' if w.arg == 'gzip' or w.method == 'create_fill' else 'PyTables'


class Bench:
    """The data files, the options and the results of one benchmark run."""

    def __init__(self, args, exe, tmp):
        self.args = args
        self.exe = exe
        self.nullfs = os.path.abspath(args.nullfs)
        self.tmp = tmp
        self.rows = args.size // ROW_BYTES
        self.nbytes = self.rows * ROW_BYTES
        self.rowwise = max(500, round(ROWWISE_PER_GIB * args.size / (1 << 30)))
        # A chunk cache well below the Blosc dataset, so random rows mostly miss it.
        self.random_cache = max(4, min(64, args.size // (8 * MiB))) * MiB
        self.files = {kind: os.path.join(tmp, kind + '.h5') for kind in ('plain', 'blosc', 'gzip')}
        self.filters = {'plain': None, 'blosc': blosc_filters()}
        # The CPU of the pinned workloads: the client, the daemon and PyTables all run there.
        self.pin_cpu = min(os.sched_getaffinity(0))
        self.source = None
        self.traces = []
        self.read_ahead = set()

    def selected(self):
        """The workloads this run measures (all, or those of --only), in table order."""
        return [w for w in WORKLOADS if not self.args.only or w.key in self.args.only]

    # ---------------------------------------------------------------- setup

    def setup(self):
        """Writes plain.h5 and blosc.h5 (/x: rows x COLS float64, appended GEN_ROWS at a time
        with PyTables) and, when a gzip workload runs, gzip.h5 (the same /x written by h5py,
        deflate level GZIP_LEVEL with shuffle, in plain.h5's chunks); keeps the first
        SOURCE_ROWS rows in memory for the appends. Returns a description."""
        t0 = time.perf_counter()
        kinds = ['plain', 'blosc'] + (['gzip'] if any(w.arg == 'gzip' for w in self.selected()) else [])
        for kind in ('plain', 'blosc'):
            create_earray(self.files[kind], filters=self.filters[kind], expectedrows=self.rows)
        with tables.open_file(self.files['plain'], 'a') as fp, \
                tables.open_file(self.files['blosc'], 'a') as fb:
            chunks = {'plain': fp.root.x.chunkshape, 'blosc': fb.root.x.chunkshape}
            fg = gz = None
            if 'gzip' in kinds:
                fg = h5py.File(self.files['gzip'], 'w')
                gz = fg.create_dataset('x', shape=(self.rows, COLS), maxshape=(None, COLS),
                                       dtype='<f8', chunks=tuple(chunks['plain']), compression='gzip',
                                       compression_opts=GZIP_LEVEL, shuffle=True)
                chunks['gzip'] = gz.chunks
            try:
                for row0 in range(0, self.rows, GEN_ROWS):
                    block = signal_rows(row0, min(GEN_ROWS, self.rows - row0))
                    fp.root.x.append(block)
                    fb.root.x.append(block)
                    if gz is not None:
                        gz[row0:row0 + len(block)] = block
            finally:
                if fg is not None:
                    fg.close()
        self.source = np.ascontiguousarray(signal_rows(0, min(self.rows, SOURCE_ROWS)))
        info = {'seconds': round(time.perf_counter() - t0, 2), 'rows': self.rows, 'cols': COLS,
                'dataset_bytes': self.nbytes, 'rowwise_rows': self.rowwise, 'pin_cpu': self.pin_cpu,
                'files': {}}
        for kind in kinds:
            size = os.path.getsize(self.files[kind])
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

    def source_row_views(self, n):
        """n rows of the repeated source as 8000-byte memoryviews (the row appends' writes)."""
        src = memoryview(self.source).cast('B')
        per = len(self.source)
        return [src[(i % per) * ROW_BYTES:(i % per + 1) * ROW_BYTES] for i in range(n)]

    def sample(self, rows, seed):
        """A few row numbers to check: the ends, the middle and five random ones."""
        rng = np.random.default_rng([SEED, seed])
        pick = {0, rows - 1, rows // 2} | set(rng.integers(0, rows, 5).tolist())
        return sorted(pick)

    def pin(self, w):
        """The CPU workload w runs on, or None when it is not pinned."""
        return self.pin_cpu if w.pinned else None

    def mount(self, h5, opts=(), tag='mnt', pin=None):
        return Mount(self, h5, opts, tag, pin)

    def mount_record(self, m, rec):
        """Adds what the mount itself says to a run record: options, peak memory (and what is
        resident now, anonymous or file-backed), read-ahead, the daemon's CPU if pinned."""
        mem = m.memory()
        rec['mount_opts'] = ','.join(m.opts)
        rec['peak_rss'] = mem['VmHWM']
        rec['memory_at_end'] = {k: mem.get(k) for k in ('VmRSS', 'RssAnon', 'RssFile', 'Threads')}
        ra = m.read_ahead_kb()
        rec['read_ahead_kb'] = ra
        if m.pin is not None:
            rec['pinned_cpu'] = m.pin
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

    def direct_read_all(self, kind):
        """Reads all of kind's /x in SLICE_ROWS slices: with h5py for gzip (the library that
        wrote it), with PyTables otherwise."""
        h5 = self.files[kind]
        if kind == 'gzip':
            with h5py.File(h5, 'r') as f:
                x = f['x']
                for i in range(0, x.shape[0], SLICE_ROWS):
                    x[i:i + SLICE_ROWS]
            return
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

    def null_ceiling(self, w):
        """What FUSE allows for w's pattern, in w's placement, on the null file system (a fresh
        mount): 'seq', `dd bs=1M` of a file of the array's size; 'rows', w's row count of
        8000-byte os.write()s to the file opened O_WRONLY|O_APPEND (direct_io), then fsync.
        Checks the bytes read and the size written; returns the run record."""
        pin = self.pin(w)
        with NullMount(self, pin) as m, pinned(pin):
            path = m.p('null')
            if w.ceiling == 'seq':
                os.truncate(path, self.nbytes)
                with Meter([m], children=True) as t:
                    dd(path, self.nbytes)
                fd = os.open(path, os.O_RDONLY)
                try:
                    for off in (0, self.nbytes // 2 + 13, self.nbytes - 4096):
                        if not pattern_ok(fd, off, 4096):
                            raise Broken('null file system: bytes at %d are not its pattern' % off)
                finally:
                    os.close(fd)
                rec = t.result(self.nbytes / MB)
            else:
                rows = self.source_row_views(self.rowwise)
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                try:
                    with Meter([m]) as t:
                        for r in rows:
                            if os.write(fd, r) != ROW_BYTES:
                                raise Broken('short write of a row to %s' % path)
                        os.fsync(fd)
                        os.close(fd)
                        fd = None
                finally:
                    if fd is not None:
                        os.close(fd)
                size = os.stat(path).st_size
                if size != self.rowwise * ROW_BYTES:
                    raise Broken('null file system: %d bytes after %d rows' % (size, self.rowwise))
                rec = t.result(self.rowwise)
            rec['peak_rss'] = m.memory()['VmHWM']
            rec['read_ahead_kb'] = m.read_ahead_kb()
            if pin is not None:
                rec['pinned_cpu'] = pin
        return rec

    # ---------------------------------------------------------------- workloads: one run each
    # Each takes the Workload and the run number and returns the run's records by side: 'mount'
    # (h5mount, mounted -o ro for the read workloads), 'direct' (PyTables, or h5py for gzip)
    # and, for read workloads, 'rw' (the same through the default read-write mount).

    def _read_mounts(self, w):
        """(side, mount options) of a read workload: -o ro first, then the default read-write
        mount when w.rw."""
        return [('mount', ['ro'])] + ([('rw', [])] if w.rw else [])

    def seq_read(self, w, run):
        """Cold sequential read: `dd bs=1M` of mnt/x on a fresh read-only (then read-write)
        mount vs PyTables (h5py for gzip) reading 1000-row slices, each after evicting the .h5
        file from the page cache. Pinned: dd, the daemon and PyTables all on one CPU."""
        kind, pin = w.arg, self.pin(w)
        h5 = self.files[kind]
        rows = self.sample(self.rows, run)
        rec = {}
        for side, opts in self._read_mounts(w):
            drop_cache(h5)
            with self.mount(h5, opts, pin=pin) as m:
                with pinned(pin), Meter([m], children=True) as t:
                    dd(m.p('x'), self.nbytes)
                got = self.pread_rows(m.p('x'), rows)
                rec[side] = self.mount_record(m, t.result(self.nbytes / MB))
            rec[side]['unmount_seconds'] = m.unmount_seconds
            self.check_rows('sequential read of %s (%s)' % (kind, side), got, h5, rows)
        drop_cache(h5)
        with pinned(pin), Meter() as t:
            self.direct_read_all(kind)
        rec['direct'] = t.result(self.nbytes / MB)
        return rec

    def warm_read(self, w, run):
        """Second read of the same view on the same mount (the kernel keeps its page cache
        across opens) vs a second PyTables read with the .h5 file in the page cache."""
        kind = w.arg
        h5 = self.files[kind]
        rows = self.sample(self.rows, run)
        rec = {}
        for side, opts in self._read_mounts(w):
            with self.mount(h5, opts) as m:
                with Meter([m], children=True) as first:
                    dd(m.p('x'), self.nbytes)
                with Meter([m], children=True) as t:
                    dd(m.p('x'), self.nbytes)
                got = self.pread_rows(m.p('x'), rows)
                rec[side] = self.mount_record(m, t.result(self.nbytes / MB, first_seconds=first.seconds,
                                                          first_daemon_cpu=round(first.daemon['cpu'], 3)))
            rec[side]['unmount_seconds'] = m.unmount_seconds
            self.check_rows('warm re-read of %s (%s)' % (kind, side), got, h5, rows)
        t0 = time.perf_counter()
        self.direct_read_all(kind)
        first = time.perf_counter() - t0
        with Meter() as t:
            self.direct_read_all(kind)
        rec['direct'] = t.result(self.nbytes / MB, first_seconds=first)
        return rec

    def _append_files(self, kind, rows):
        paths = [os.path.join(self.tmp, 'append-%s.h5' % side) for side in ('mount', 'direct')]
        for p in paths:
            create_earray(p, filters=self.filters[kind], expectedrows=rows)
        return paths

    def _finish_append(self, what, paths, nrows):
        for side, p in zip(('mount', 'direct'), paths):
            self.check_appended('%s (%s)' % (what, side), p, nrows)
            os.unlink(p)

    def bulk_append(self, w, run):
        """Appending rows to an empty EArray (all of --size, or w.param bytes): 1 MiB
        os.write()s to mnt/x opened O_APPEND, then fsync and close, vs EArray.append of
        1000-row blocks, flush, close and fsync. Both clocks stop when the data is durable."""
        kind = w.arg
        nrows = (w.param or self.nbytes) // ROW_BYTES
        nbytes = nrows * ROW_BYTES
        pm, pd = self._append_files(kind, nrows)
        pieces = self.source_pieces(nbytes, WRITE_SIZE)
        blocks = [self.source_rows(i, min(SLICE_ROWS, nrows - i)) for i in range(0, nrows, SLICE_ROWS)]
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
            mnt = self.mount_record(m, t.result(nbytes / MB, write_seconds=t_data))
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
        direct = t.result(nbytes / MB, write_seconds=t_data)
        self._finish_append('bulk append %s' % kind, (pm, pd), nrows)
        return {'mount': mnt, 'direct': direct}

    def row_append(self, w, run):
        """Appending rows one at a time: one os.write() of 8000 bytes per row to mnt/x vs
        EArray.append(row[None]) per row as in the tutorials; then fsync/flush as above.
        Pinned: the writer, the daemon and PyTables all on one CPU."""
        kind, pin = w.arg, self.pin(w)
        n = self.rowwise
        pm, pd = self._append_files(kind, self.rows)
        rows_b = self.source_row_views(n)
        per = len(self.source)
        rows_a = [self.source[i % per] for i in range(n)]
        with self.mount(pm, pin=pin) as m:
            fd = os.open(m.p('x'), os.O_WRONLY | os.O_APPEND)
            try:
                with pinned(pin), Meter([m]) as t:
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
        with pinned(pin), Meter() as t:
            with tables.open_file(pd, 'a') as f:
                x = f.root.x
                for r in rows_a:
                    x.append(r[None])
                t_data = time.perf_counter() - t.t0
                f.flush()
            fsync_path(pd)
        direct = t.result(n, write_seconds=t_data)
        self._finish_append('row-by-row append %s' % kind, (pm, pd), n)
        return {'mount': mnt, 'direct': direct}

    def random_rows(self, w, run):
        """RANDOM_OPS random rows, cold: through np.load(x.npy, mmap_mode='r') on a fresh
        read-only (then read-write) mount with a chunk cache far below the dataset, vs
        PyTables x[i]."""
        kind = w.arg
        h5 = self.files[kind]
        idx = np.random.default_rng([SEED, 100 + run]).integers(0, self.rows, RANDOM_OPS).tolist()
        want = np.empty((RANDOM_OPS, COLS))
        cache = 'cache_size=%dM' % (self.random_cache // MiB)
        rec, got = {}, {}
        for side, opts in self._read_mounts(w):
            got[side] = np.empty((RANDOM_OPS, COLS))
            drop_cache(h5)
            with self.mount(h5, opts + [cache]) as m:
                with Meter([m]) as t:
                    a = np.load(m.p('x.npy'), mmap_mode='r')
                    for k, i in enumerate(idx):
                        got[side][k] = a[i]
                    del a
                gc.collect()
                rec[side] = self.mount_record(m, t.result(RANDOM_OPS))
            rec[side]['unmount_seconds'] = m.unmount_seconds
        drop_cache(h5)
        with Meter() as t:
            with tables.open_file(h5, 'r') as f:
                x = f.root.x
                for k, i in enumerate(idx):
                    want[k] = x[i]
        rec['direct'] = t.result(RANDOM_OPS)
        for side, g in got.items():
            if g.tobytes() != want.tobytes():
                bad = int(np.nonzero((g != want).any(axis=1))[0][0])
                raise Broken('random rows (%s): row %d read through x.npy differs from PyTables'
                             % (side, idx[bad]))
        return rec

    @staticmethod
    def _expr_numpy(a, rows, fd, parts):
        """EXPR in numpy over a (the mapped x.npy), EXPR_BLOCK_ROWS rows at a time: copy the
        block out of the map, compute, append it to fd."""
        for s in range(0, rows, EXPR_BLOCK_ROWS):
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

    @staticmethod
    def _expr_numexpr(a, rows, fd, parts):
        """EXPR with numexpr straight over a (the mapped x.npy; its page faults are the read),
        NUMEXPR_BLOCK_ROWS rows at a time into one reused buffer, each block appended to fd."""
        import numexpr
        out = np.empty((min(NUMEXPR_BLOCK_ROWS, rows), COLS))
        for s in range(0, rows, NUMEXPR_BLOCK_ROWS):
            t0 = time.perf_counter()
            x = a[s:s + NUMEXPR_BLOCK_ROWS]
            y = out[:len(x)]
            numexpr.evaluate(EXPR, local_dict={'x': x}, out=y)
            t1 = time.perf_counter()
            write_all(fd, y)
            t2 = time.perf_counter()
            parts['read+compute'] += t1 - t0
            parts['write'] += t2 - t1

    def expression(self, w, run):
        """EXPR over all of /x, cold, into an empty EArray: over the mmap'ed x.npy of a
        read-only mount, in numpy (w.param 'numpy': EXPR_BLOCK_ROWS rows at a time) or numexpr
        ('numexpr': NUMEXPR_BLOCK_ROWS rows), each block appended with os.write to y on a
        read-write mount of the output file (then fsync), vs tables.Expr with
        set_output(y, append_mode=True), flush, close and fsync. The outputs must match."""
        kind = w.arg
        h5 = self.files[kind]
        outs = [os.path.join(self.tmp, 'expr-%s.h5' % side) for side in ('mount', 'direct')]
        for p in outs:
            create_earray(p, 'y', self.filters[kind], self.rows)
        drop_cache(h5)
        if w.param == 'numexpr':
            evaluate, parts = self._expr_numexpr, {'read+compute': 0.0, 'write': 0.0}
        else:
            evaluate, parts = self._expr_numpy, {'read': 0.0, 'compute': 0.0, 'write': 0.0}
        with self.mount(h5, ['ro'], 'in') as mi, self.mount(outs[0], [], 'out') as mo:
            fd = os.open(mo.p('y'), os.O_WRONLY | os.O_APPEND)
            try:
                with Meter([mi, mo]) as t:
                    a = np.load(mi.p('x.npy'), mmap_mode='r')
                    try:
                        evaluate(a, self.rows, fd, parts)
                    except BaseException as e:
                        # The traceback's frames would keep the map (and the mount busy:
                        # a lazy unmount, then a daemon killed after EXIT_TIMEOUT s).
                        traceback.clear_frames(e.__traceback__)
                        raise
                    finally:
                        a = None
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
        return {'mount': mnt, 'direct': direct}

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


    # ---------------------------------------------------------------- create and fill

    def create_source(self):
        """The whole --size array (rows x COLS float64, the repeated source) in memory, made
        once, before any timing."""
        if getattr(self, '_create_source', None) is None:
            a = np.empty((self.rows, COLS))
            for i in range(0, self.rows, SOURCE_ROWS):
                n = min(SOURCE_ROWS, self.rows - i)
                a[i:i + n] = self.source_rows(i, n)
            self._create_source = a
        return self._create_source

    def create_fill(self, w, run):
        """A new dataset holding the whole --size array, durable: np.save of it to x.npy in
        a new file mounted read-write (-o compress=blosc for Blosc: blosclz level 5 with
        shuffle), then fsync and close, vs h5py create_dataset(data=...) of an extendable
        chunked dataset (chunks=True, maxshape (None, COLS); Blosc filter 32001 with the same
        parameters), and PyTables create_carray(obj=...) (its own chunks; Blosc 5), each
        closed and fsync'ed. The files start absent. Checks shape, dtype, filter and a sample of
        rows of all three files."""
        kind = w.arg
        arr = self.create_source()
        paths = {side: os.path.join(self.tmp, 'create-%s.h5' % side)
                 for side in ('mount', 'direct', 'pytables')}
        for p in paths.values():
            if os.path.exists(p):
                os.unlink(p)
        opts = ['compress=blosc'] if kind == 'blosc' else []
        with self.mount(paths['mount'], opts) as m:
            with open(m.p('x.npy'), 'wb') as fp:
                with Meter([m]) as t:
                    np.save(fp, arr)
                    fp.flush()
                    os.fsync(fp.fileno())
            mnt = self.mount_record(m, t.result(self.nbytes / MB))
        mnt['unmount_seconds'] = m.unmount_seconds
        h5opts = {}
        if kind == 'blosc':
            # PyTables (imported) registered the filter in libhdf5; cd_values as PyTables
            # writes them, slots 0-3 filled in when the dataset is created.
            h5opts = {'compression': 32001, 'compression_opts': (2, 2, 8, 0, 5, 1, 0)}
        with Meter() as t:
            with h5py.File(paths['direct'], 'w') as f:
                f.create_dataset('x', data=arr, chunks=True, maxshape=(None, COLS), **h5opts)
            fsync_path(paths['direct'])
        direct = t.result(self.nbytes / MB)
        with Meter() as t:
            with tables.open_file(paths['pytables'], 'w') as f:
                f.create_carray(f.root, 'x', obj=arr, filters=self.filters[kind])
            fsync_path(paths['pytables'])
        pyt = t.result(self.nbytes / MB)
        self.check_created(kind, paths, run)
        for side, rec in (('mount', mnt), ('direct', direct), ('pytables', pyt)):
            rec['file_bytes'] = os.path.getsize(paths[side])
            os.unlink(paths[side])
        return {'mount': mnt, 'direct': direct, 'pytables': pyt}

    def check_created(self, kind, paths, run):
        """Raises Broken unless each created file holds /x of the array's shape and dtype, with
        the Blosc filter when kind is blosc, and a sample of its rows equals the array."""
        arr = self.create_source()
        for side, p in paths.items():
            with h5py.File(p, 'r') as f:
                if 'x' not in f:
                    raise Broken('create and fill (%s): %s has no /x' % (side, os.path.basename(p)))
                x = f['x']
                if x.shape != arr.shape or x.dtype != arr.dtype:
                    raise Broken('create and fill (%s): /x is %s %s, expected %s %s'
                                 % (side, x.dtype, x.shape, arr.dtype, arr.shape))
                filters = [x.id.get_create_plist().get_filter(i)[0]
                           for i in range(x.id.get_create_plist().get_nfilters())]
                if (32001 in filters) != (kind == 'blosc'):
                    raise Broken('create and fill (%s): filters %s for %s data' % (side, filters, kind))
                for i in self.sample(self.rows, 20 + run):
                    if x[i].tobytes() != arr[i].tobytes():
                        raise Broken('create and fill (%s): row %d differs from the array' % (side, i))


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
                'numpy': np.__version__, 'h5py': h5py.__version__, 'blosc': tables.which_lib_version('blosc')[1]}
    try:
        import numexpr
        versions['numexpr'] = numexpr.__version__
        versions['numexpr_threads'] = numexpr.nthreads
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
    # The read-write mount of a read workload has the same memory bound as its -o ro mount.
    peak = max(r[side]['peak_rss'] for r in runs for side in ('mount', 'rw') if side in r)
    bound = rss_bound(runs[0]['mount']['mount_opts'])
    ratio = mv / dv
    s = {'title': w.title, 'unit': w.unit, 'target': w.target,
         'mount_opts': runs[0]['mount']['mount_opts'] or '(defaults)',
         'direct_name': direct_name(w),
         'median': {'mount': mv, 'direct': dv, 'mount_seconds': ms, 'direct_seconds': ds},
         'median_cpu': {name: statistics.median(r[side][field] for r in runs)
                        for name, side, field in MEDIAN_COUNTERS},
         'ratio': ratio, 'pass': ratio >= w.target,
         'peak_rss': peak, 'rss_bound': bound, 'rss_pass': peak <= bound, 'runs': runs}
    if w.pinned:
        s['pinned_cpu'] = runs[0]['mount'].get('pinned_cpu')
    if 'rw' in runs[0]:
        rv = statistics.median(r['rw']['value'] for r in runs)
        s['rw'] = {'median': rv, 'ratio_ro': rv / mv, 'target': RW_TARGET, 'pass': rv / mv >= RW_TARGET,
                   'peak_rss': max(r['rw']['peak_rss'] for r in runs)}
    if 'pytables' in runs[0]:
        pv = statistics.median(r['pytables']['value'] for r in runs)
        s['pytables'] = {'median': pv, 'ratio': mv / pv}
    if 'null' in runs[0]:
        nv = statistics.median(r['null']['value'] for r in runs)
        s['null'] = {'median': nv, 'ratio': mv / nv, 'ceiling': w.ceiling,
                     'placement': 'pinned' if w.pinned else 'unpinned'}
    return s


def print_table(res, out=sys.stdout):
    wl = res['workloads']
    print(file=out)
    print('h5mount vs PyTables, %s per array (%d rows x %d float64), %d run(s), medians'
          % (fmt_size(res['size']), res['setup']['rows'], COLS, res['runs']), file=out)
    print('direct: PyTables in the same process (h5py for the gzip workload, which h5py wrote, and '
          'for create and fill)', file=out)
    head = '%-38s %10s %10s %-6s %7s %7s %-6s %17s %s' % (
        'workload', 'h5mount', 'direct', 'unit', 'ratio', 'target', 'result',
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
    ceil = [(k, s) for k, s in wl.items() if 'null' in s or 'rw' in s]
    if ceil:
        print(file=out)
        print('Against the FUSE ceiling and the read-write mount. null fs: contrib/bench/nullfs (WRITEs '
              'answered at once, READs from a static buffer)', file=out)
        print('in the same placement, unpinned or all on one CPU; h5m/null: h5mount / null fs. rw: the '
              'default read-write mount; rw/ro: it against -o ro (target %.1fx)' % RW_TARGET, file=out)
        head = '%-38s %10s %10s %-6s %8s %10s %7s %-6s' % (
            'workload', 'h5mount', 'null fs', 'unit', 'h5m/null', 'rw mount', 'rw/ro', 'result')
        print(head, file=out)
        print('-' * len(head), file=out)
        for key, s in ceil:
            n, rw = s.get('null'), s.get('rw')
            print('%-38s %10.1f %10s %-6s %8s %10s %7s %-6s' % (
                s['title'], s['median']['mount'], '%.1f' % n['median'] if n else '-', s['unit'],
                '%.2fx' % n['ratio'] if n else '-', '%.1f' % rw['median'] if rw else '-',
                '%.2fx' % rw['ratio_ro'] if rw else '-',
                ('PASS' if rw['pass'] else 'MISS') if rw else ''), file=out)
    third = [(k, s) for k, s in wl.items() if 'pytables' in s]
    if third:
        print(file=out)
        print('Create and fill against both libraries: direct is h5py.create_dataset + write; '
              'PyTables is create_carray', file=out)
        head = '%-38s %10s %10s %10s %-6s %9s %9s' % ('workload', 'h5mount', 'h5py', 'PyTables',
                                                      'unit', 'vs h5py', 'vs PyT')
        print(head, file=out)
        print('-' * len(head), file=out)
        for key, s in third:
            print('%-38s %10.1f %10.1f %10.1f %-6s %8.2fx %8.2fx' % (
                s['title'], s['median']['mount'], s['median']['direct'], s['pytables']['median'],
                s['unit'], s['ratio'], s['pytables']['ratio']), file=out)
    misses = [key for key, s in wl.items() if not s['pass']]
    misses += [key + ' (rw/ro)' for key, s in wl.items() if 'rw' in s and not s['rw']['pass']]
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
        more = ''.join('  %s %s -> %.2fx' % (label, '%.2fx' % o[part][field] if part in o else '-',
                                             s[part][field])
                       for part, field, label in (('null', 'ratio', 'h5m/null'), ('rw', 'ratio_ro', 'rw/ro'))
                       if part in s)
        print('%-38s %10.1f %10.1f %+7.1f%% %7.2fx %7.2fx%s' % (
            s['title'], ov, nv, 100.0 * (nv / ov - 1.0), o['ratio'], s['ratio'], more), file=out)
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
    p.add_argument('--nullfs', metavar='PATH',
                   default=os.path.join(ROOT, 'build', 'contrib', 'bench', 'nullfs'),
                   help='the null FUSE file system measured as the ceiling (default '
                        'build/contrib/bench/nullfs, built with the project)')
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
    only = args.only or [w.key for w in WORKLOADS]
    if any(BY_KEY[k].ceiling for k in only) and not os.access(args.nullfs, os.X_OK):
        raise Broken('%s (the FUSE ceiling) is not an executable; build it with ninja -C build'
                     % args.nullfs)
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
        for w in b.selected():
            runs = []
            for r in range(args.runs):
                first_trace = len(b.traces)
                rec = getattr(b, w.method)(w, r)
                if w.ceiling:
                    rec['null'] = b.null_ceiling(w)
                if args.trace:
                    rec['fuse'] = b.traces[first_trace:]
                runs.append(rec)
                mnt = rec['mount']
                extra = ''.join(', %s %.1f' % (label, rec[side]['value'])
                                for side, label in (('rw', 'read-write mount'), ('null', 'null fs'),
                                                    ('pytables', 'PyTables'))
                                if side in rec)
                log('%-18s run %d/%d: h5mount %9.1f %s, %s %9.1f%s, daemon peak %.0f MiB'
                    % (w.key, r + 1, args.runs, mnt['value'], w.unit,
                       direct_name(w), rec['direct']['value'], extra,
                       max(mnt['peak_rss'], rec.get('rw', mnt)['peak_rss']) / MiB))
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
