"""The "done when" check: 1000-column float64 EArrays (plain and Blosc level 5) read
through the mount are byte-identical to PyTables, sequentially through `x`, by random
rows through `x.npy` mmap, and again on a second full read.

Rows come from H5M_TEST_ROWS (default fixtures.DEFAULT_BIG_ROWS; 20000 = 160 MB each).
    /usr/bin/python3 tests/mount/test_big.py build/h5mount
"""

import hashlib
import mmap
import os
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h5py                 # noqa: E402
import numpy as np          # noqa: E402
import tables               # noqa: E402

import fixtures             # noqa: E402
import harness              # noqa: E402

ROWS = int(os.environ.get('H5M_TEST_ROWS', fixtures.DEFAULT_BIG_ROWS))
COLS = 1000
BLOCK_ROWS = 1024
RANDOM_ROWS = 2000
FIX = {}


def setUpModule():
    t0 = time.monotonic()
    FIX['big'] = fixtures.make_big(os.path.join(harness.workdir(), 'big.h5'), ROWS)
    print('big.h5: %d rows x %d cols, %.0f MB file, written in %.1f s'
          % (ROWS, COLS, os.path.getsize(FIX['big']) / 1e6, time.monotonic() - t0), flush=True)


READ_DIRECT_SIZE = 128 * 1024   # at most the smallest FUSE request limit (32 pages)


def read_direct(path, keep=True):
    """Reads path to the end with O_DIRECT in reads of READ_DIRECT_SIZE into a page-aligned
    buffer, so that each read(2) is one READ request, sent by the kernel and answered before
    the next one, with no kernel read-ahead beside it. Returns the bytes, or when not `keep`
    only their count: then each read goes to the same buffer and the next request follows
    as fast as the daemon answers."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        size = os.fstat(fd).st_size if keep else 0
        with mmap.mmap(-1, size + READ_DIRECT_SIZE) as buf, memoryview(buf) as view:
            at = 0
            while True:
                to = at if keep else 0
                n = os.readv(fd, [view[to:to + READ_DIRECT_SIZE]])
                if n == 0:
                    return bytes(view[:at]) if keep else at
                at += n
    finally:
        os.close(fd)


def pytables_blocks(node):
    for r0 in range(0, node.nrows, BLOCK_ROWS):
        yield r0, node[r0:min(r0 + BLOCK_ROWS, node.nrows)].astype('<f8').tobytes()


def read_exactly(fp, n):
    parts = []
    while n > 0:
        piece = fp.read(min(n, harness.MiB))
        if not piece:
            break
        parts.append(piece)
        n -= len(piece)
    return b''.join(parts)


class BigEArrays(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.mnt = harness.mount_for_class(cls, FIX['big'])
        cls.pt = tables.open_file(FIX['big'], 'r')
        cls.addClassCleanup(cls.pt.close)

    def sequential_compare(self, name):
        """Reads mnt/name in 1 MiB reads and compares with PyTables block by block;
        returns (sha256 hex of the bytes read, MB/s)."""
        node = self.pt.get_node('/' + name)
        self.assertEqual(node.shape, (ROWS, COLS))
        h = hashlib.sha256()
        t0 = time.monotonic()
        with open(self.mnt.p(name), 'rb', buffering=0) as fp:
            for r0, want in pytables_blocks(node):
                got = read_exactly(fp, len(want))
                harness.assert_bytes_equal(got, want, '%s rows from %d' % (name, r0))
                h.update(got)
            self.assertEqual(fp.read(1), b'', '%s: data past the last row' % name)
        return h.hexdigest(), ROWS * COLS * 8 / 1e6 / max(time.monotonic() - t0, 1e-9)

    def random_rows_compare(self, name, seed):
        want = self.pt.get_node('/' + name).read()
        a = np.load(self.mnt.p(name + '.npy'), mmap_mode='r')
        self.assertEqual((a.shape, a.dtype), ((ROWS, COLS), np.dtype('<f8')))
        rng = np.random.default_rng(seed)
        rows = rng.integers(0, ROWS, RANDOM_ROWS)
        for i in rows:
            if a[i].tobytes() != want[i].tobytes():
                self.fail('%s.npy row %d differs from PyTables' % (name, i))
        for i in rows[:200]:
            j0 = int(rng.integers(0, COLS))
            j1 = int(rng.integers(j0, COLS + 1))
            np.testing.assert_array_equal(a[i, j0:j1], want[i, j0:j1])
        np.testing.assert_array_equal(a[-1], want[-1])
        np.testing.assert_array_equal(a[:, 999][::53], want[:, 999][::53])

    def test_plain_earray_sequential_read_is_byte_identical_to_pytables(self):
        _, rate = self.sequential_compare('plain')
        print(' [plain %.0f MB/s] ' % rate, end='', flush=True)

    def test_blosc5_earray_sequential_read_is_byte_identical_to_pytables(self):
        _, rate = self.sequential_compare('blosc5')
        print(' [blosc5 %.0f MB/s] ' % rate, end='', flush=True)

    def test_a_cold_sequential_read_of_the_blosc_array_reads_each_stored_chunk_once(self):
        # Read-ahead and the reader must not decode a chunk twice: blocks being loaded are
        # registered, and a reader that needs one waits for it. Measured with rchar (bytes
        # the daemon read with system calls: the .h5 file and the requests from /dev/fuse),
        # against a baseline that cannot decode anything twice: the same reads through a
        # `-s` mount (no worker threads, so no read-ahead: each chunk is decoded once, by
        # the request that needs it). The reads are O_DIRECT (read_direct), so the kernel
        # sends one request at a time and every mount gets the same requests in the same
        # order whatever the load: HDF5 metadata and request bytes are the same (within a
        # few bytes) and any difference is chunks read again. The bound is one chunk. The
        # reads with read-ahead run on three cold mounts, back to back, which is where
        # read-ahead and reader meet on the same chunk. (Buffered reads keep two requests
        # in flight, and which one loads a chunk depends on scheduling: a bound on their
        # rchar either let a missing registration pass or failed on a loaded machine.)
        with h5py.File(FIX['big'], 'r') as f:
            d = f['blosc5']
            sizes = [d.id.get_chunk_info(i).size for i in range(d.id.get_num_chunks())]
            want = harness.read_as_stored(d)
        stored = sum(sizes)
        with harness.Mount(FIX['big'], ['-s', '-o', 'ro']) as m:
            before = m.counters().rchar
            got = read_direct(m.p('blosc5'))
            baseline = m.counters().rchar - before
        harness.assert_bytes_equal(got, want, 'blosc5 read with O_DIRECT through a -s mount')
        self.assertGreaterEqual(baseline, stored, 'the -s mount read less than the stored chunks')
        for attempt in range(3):
            with harness.Mount(FIX['big'], ['-o', 'ro']) as m:
                before = m.counters().rchar
                self.assertEqual(read_direct(m.p('blosc5'), keep=False), len(want))
                read = m.counters().rchar - before
            self.assertLess(read - baseline, min(sizes),
                            'cold read %d: with read-ahead the daemon read %d bytes, without it '
                            '%d (stored chunks: %d bytes, the smallest %d): chunks were decoded '
                            'twice' % (attempt + 1, read, baseline, stored, min(sizes)))

    def test_plain_npy_random_rows_through_mmap_match_pytables(self):
        self.random_rows_compare('plain', seed=1)

    def test_blosc5_npy_random_rows_through_mmap_match_pytables(self):
        self.random_rows_compare('blosc5', seed=2)

    def test_second_full_read_returns_the_same_bytes(self):
        for name in ('plain', 'blosc5'):
            with self.subTest(name):
                first, _ = self.sequential_compare(name)
                second, _ = self.sequential_compare(name)
                self.assertEqual(first, second)
                h = hashlib.sha256()
                with open(self.mnt.p(name + '.npy'), 'rb') as fp:
                    off = harness.parse_npy_header(fp.read(4096))[2]
                    fp.seek(off)
                    for piece in iter(lambda: fp.read(harness.MiB), b''):
                        h.update(piece)
                self.assertEqual(h.hexdigest(), first, '%s.npy data differs from %s' % (name, name))

    def test_shape_files_and_npy_headers_describe_the_earrays(self):
        for name in ('plain', 'blosc5'):
            with self.subTest(name):
                self.assertEqual(harness.read_file(self.mnt.p(name + '.shape')),
                                 b'%d %d\n' % (ROWS, COLS))
                with open(self.mnt.p(name + '.npy'), 'rb') as fp:
                    _, _, off, _, d = harness.parse_npy_header(fp.read(4096))
                self.assertEqual(off % 64, 0)
                self.assertEqual(d['shape'], (ROWS, COLS))
                self.assertEqual(d['descr'], '<f8')
                self.assertEqual(os.stat(self.mnt.p(name + '.npy')).st_size, off + ROWS * COLS * 8)


class SmallCacheConcurrentRandomRows(unittest.TestCase):
    """With a 1 MiB chunk cache, 4 threads reading random rows keep evicting each
    other's chunks; every row must still equal PyTables."""

    @classmethod
    def setUpClass(cls):
        cls.mnt = harness.mount_for_class(cls, FIX['big'], ['-o', 'ro,cache_size=1M'])

    def test_threads_reading_random_blosc_rows_through_a_small_cache_get_pytables_rows(self):
        with tables.open_file(FIX['big'], 'r') as pt:
            want = pt.root.blosc5.read()
        errors = []

        def worker(seed):
            try:
                rng = np.random.default_rng(seed)
                with open(self.mnt.p('blosc5'), 'rb', buffering=0) as fp:
                    for i in rng.integers(0, ROWS, RANDOM_ROWS // 4):
                        fp.seek(int(i) * COLS * 8)
                        if fp.read(COLS * 8) != want[i].tobytes():
                            errors.append('row %d differs' % i)
            except Exception as e:      # noqa: BLE001 - reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors[:20], [])


    def test_threads_reading_the_blosc_array_sequentially_at_once_get_pytables_bytes(self):
        with tables.open_file(FIX['big'], 'r') as pt:
            want = pt.root.blosc5.read().tobytes()
        errors = []

        def worker(start, size):
            try:
                with open(self.mnt.p('blosc5'), 'rb', buffering=0) as fp:
                    os.posix_fadvise(fp.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                    fp.seek(start)
                    at = start
                    for piece in iter(lambda: fp.read(size), b''):
                        if piece != want[at:at + len(piece)]:
                            errors.append('%d bytes at %d (reads of %d) differ' % (len(piece), at, size))
                        at += len(piece)
                    if at != len(want):
                        errors.append('reads of %d from %d ended at %d' % (size, start, at))
            except Exception as e:      # noqa: BLE001 - reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=worker, args=a)
                   for a in ((0, harness.MiB), (3 * harness.MiB + 8, 777 * 1024 + 3),
                             (len(want) // 2, 65536), (0, 300001))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors[:20], [])

if __name__ == '__main__':
    harness.run_tests()
