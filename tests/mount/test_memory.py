"""Memory bound under load (README "Memory"): with cache_size=16M,dirty_limit=4M, two row
appenders, two sequential readers and two random-row readers (pread and mmap) on a plain and
a Blosc EArray keep the daemon's peak resident size (VmHWM) within
cache_size + dirty_limit + 56 MiB, and every appended row reaches the file.

The bound is not checked under AddressSanitizer (its shadow memory and quarantine are not
the daemon's). Usage:
    /usr/bin/python3 tests/mount/test_memory.py build/h5mount
"""

import os
import random
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h5py                 # noqa: E402
import numpy as np          # noqa: E402
import tables               # noqa: E402

import harness              # noqa: E402

MiB = 1 << 20
COLS = 1000
ROWS = 4000                 # 32 MB per array: twice the cache
SECONDS = float(os.environ.get('H5M_SOAK_SECONDS', '8'))
CACHE, DIRTY, SLACK = 16 * MiB, 4 * MiB, 56 * MiB
FIX = {}


def make_fixture(path):
    rng = np.random.default_rng(7)
    with tables.open_file(path, 'w') as f:
        for name, flt in (('plain', None), ('blosc', tables.Filters(5, 'blosc'))):
            a = f.create_earray('/', name, tables.Float64Atom(), (0, COLS), filters=flt,
                                expectedrows=100000)
            a.append(rng.random((ROWS, COLS)))
    return path


def sanitized(exe):
    with open(exe, 'rb') as fp:
        return b'__asan_init' in fp.read()


def status(pid):
    with open('/proc/%d/status' % pid) as fp:
        return dict(line.split(':', 1) for line in fp)


def setUpModule():
    # meson test sets MALLOC_PERTURB_ (glibc then fills every allocation and every freed
    # chunk, which makes all of malloc's free space resident): measure the daemon as users run it.
    os.environ.pop('MALLOC_PERTURB_', None)
    FIX['h5'] = make_fixture(os.path.join(harness.workdir(), 'soak.h5'))


class MemoryBound(unittest.TestCase):
    def test_appends_and_reads_stay_within_cache_dirty_and_slack(self):
        opts = ['-o', 'cache_size=%dM,dirty_limit=%dM' % (CACHE // MiB, DIRTY // MiB)]
        appended = {'plain': 0, 'blosc': 0}
        errors = []
        with harness.Mount(FIX['h5'], opts) as m:
            stop = time.monotonic() + SECONDS
            row = np.full(COLS, 2.5).tobytes()

            def guarded(fn):
                def run(*args):
                    try:
                        fn(*args)
                    except Exception as e:      # noqa: BLE001 - reported below
                        errors.append('%s%r: %r' % (fn.__name__, args, e))
                return run

            @guarded
            def appender(name):
                fd = os.open(m.p(name), os.O_WRONLY | os.O_APPEND)
                try:
                    while time.monotonic() < stop:
                        for _ in range(50):
                            os.write(fd, row)
                            appended[name] += 1
                finally:
                    os.close(fd)

            @guarded
            def sequential(name):
                while time.monotonic() < stop:
                    with open(m.p(name), 'rb') as fp:
                        while fp.read(MiB) and time.monotonic() < stop:
                            pass

            @guarded
            def random_rows(name):
                # The rows present at the start, through the mapping and through pread (rows
                # appended meanwhile: the sequential readers read them).
                a = np.load(m.p(name + '.npy'), mmap_mode='r')
                rng = random.Random(name)
                fd = os.open(m.p(name + '.npy'), os.O_RDONLY)
                hl = harness.npy_data_offset(m.p(name + '.npy'))
                try:
                    while time.monotonic() < stop:
                        for _ in range(50):
                            i = rng.randrange(ROWS)
                            if float(a[i].sum()) == 0.0:
                                raise AssertionError('row %d reads as zeros' % i)
                        for _ in range(50):
                            i = rng.randrange(ROWS)
                            got = os.pread(fd, COLS * 8, hl + i * COLS * 8)
                            if len(got) != COLS * 8 or not any(got):
                                raise AssertionError('row %d: %d bytes, all zero %s'
                                                     % (i, len(got), not any(got)))
                finally:
                    os.close(fd)

            threads = [threading.Thread(target=f, args=(n,))
                       for f in (appender, sequential, random_rows) for n in ('plain', 'blosc')]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            hwm = int(status(m.proc.pid)['VmHWM'].split()[0]) * 1024
        self.assertEqual(errors, [])
        with h5py.File(FIX['h5'], 'r') as f:
            for name, n in appended.items():
                self.assertGreater(n, 0)
                self.assertEqual(f[name].shape, (ROWS + n, COLS), name)
                tail = f[name][ROWS:]
                self.assertTrue(np.all(tail == 2.5), '%s: appended rows differ' % name)
        if sanitized(harness.EXE):
            print('VmHWM %.0f MiB (not checked under AddressSanitizer)' % (hwm / MiB))
            return
        bound = CACHE + DIRTY + SLACK
        print('VmHWM %.0f MiB, bound %.0f MiB' % (hwm / MiB, bound / MiB))
        self.assertLessEqual(hwm, bound, 'daemon peak %.0f MiB over the bound %.0f MiB'
                             % (hwm / MiB, bound / MiB))


if __name__ == '__main__':
    harness.run_tests()
