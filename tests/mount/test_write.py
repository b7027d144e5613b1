"""Writes through real read-write mounts and checks the views, then the file with h5py/PyTables.

One test method per behaviour of the write contract: appends (shell `>>`, Python 'ab',
through x.npy, O_APPEND at the real end), incomplete rows (held, completed by later bytes
or with the fill value at close/SIGTERM), gaps, overwrites, truncation of every view,
.npy headers (np.save, cp, refused headers), writable mmaps, the .shape sidecar, datasets
that cannot grow (EFBIG) or are read-only by type (EACCES), read-only mounts (EROFS),
file creation and hard links (refused), coherence of the three views and of existing mmaps,
write-back (fsync + kill -9, SIGTERM/SIGINT, flush_interval, dirty_limit, ENOSPC on a
full tmpfs, memory bound), the HDF5 file lock, and PyTables EArrays end to end. Usage:

    /usr/bin/python3 tests/mount/test_write.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import io
import json
import mmap
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np          # noqa: E402
import h5py                 # noqa: E402
import tables               # noqa: E402

import fixtures             # noqa: E402
import harness              # noqa: E402
from harness import read_file, MiB   # noqa: E402

FIX = {}
ORIG = {}       # dataset name -> numpy array of its stored bytes in the writable fixture
FILL = {}       # dataset name -> its fill value as a numpy scalar of the stored dtype
COLS = fixtures.WRITE_COLS
ROWB = COLS * 8                 # bytes of one row of /grow
GROW_ROWS = fixtures.WRITE_ROWS
REFUSED = (errno.EPERM, errno.EACCES, errno.EROFS)
FIXED = ('grow', 'grow_1d', 'grow_3d', 'grow_any', 'limited', 'contiguous', 'compact',
         'fixed_chunked', 'g/inner')


def setUpModule():
    d = harness.workdir()
    FIX['write'] = fixtures.make_writable(os.path.join(d, 'writable.h5'))
    FIX['earrays'] = fixtures.make_growable_earrays(os.path.join(d, 'earrays.h5'))
    with h5py.File(FIX['write'], 'r') as f:
        for name in FIXED:
            shape, dt, raw = harness.stored_dataset(FIX['write'], name)
            ORIG[name] = np.frombuffer(raw, dtype=dt).reshape(shape).copy()
            FILL[name] = np.array(f[name].fillvalue).astype(dt)[()]


# ------------------------------------------------------------------ small helpers

def rows(n, seed, cols=COLS):
    """n rows of float64 noise for /grow (distinct from the fixture and the fill value)."""
    return np.random.default_rng(1000 + seed).standard_normal((n, cols))


def fill_rows(name, n):
    """n rows of dataset `name`'s fill value, in its stored dtype and trailing shape."""
    a = ORIG[name]
    return np.full((n,) + a.shape[1:], FILL[name], dtype=a.dtype)


def cat(*parts):
    """Rows of parts one after the other, in the first part's dtype (numpy's concatenate
    would turn a big-endian result native)."""
    parts = [np.asarray(p) for p in parts]
    return np.concatenate(parts).astype(parts[0].dtype, copy=False)


def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True)


def errname(err):
    return errno.errorcode.get(err, repr(err))


def write_shape(path, text):
    """Opens a .shape file with O_TRUNC, writes `text` in one write and closes it. Raises the
    OSError of the write, or of the close if the write succeeded (the contract lets either
    report a bad line)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        n = os.write(fd, text)
    except OSError:
        harness.close_quietly(fd)
        raise
    os.close(fd)
    if n != len(text):
        raise AssertionError('short write of %r to %s: %d' % (text, path, n))


def write_or_close_errno(path, data, off):
    """Opens path O_WRONLY, pwrites data at off and closes it: the errno of the pwrite, else
    of the close, else None."""
    fd = os.open(path, os.O_WRONLY)
    try:
        n = os.pwrite(fd, data, off)
    except OSError as e:
        harness.close_quietly(fd)
        return e.errno
    try:
        os.close(fd)
    except OSError as e:
        return e.errno
    if n != len(data):
        raise AssertionError('short pwrite of %d bytes at %d to %s: %d' % (len(data), off, path, n))
    return None


def open_errno(path, flags):
    """errno of os.open(path, flags), or 0 if it opened (the fd is closed again)."""
    try:
        fd = os.open(path, flags)
    except OSError as e:
        return e.errno
    harness.close_quietly(fd)
    return 0


def raw_header(text, total):
    """A v1.0 .npy preamble followed by `text` padded with spaces and a newline to `total`
    bytes, whatever text says (for headers that must be refused)."""
    body = text.encode('latin1').ljust(total - 11) + b'\n'
    return b'\x93NUMPY\x01\x00' + len(body).to_bytes(2, 'little') + body


def pread_path(path, n, off):
    """A fresh open + pread: what a new reader of the file sees now."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


def pattern_rows(start, n):
    """Rows start..start+n of the streaming tests: row i holds i + col/1024 (exact in f8)."""
    return (np.arange(start, start + n, dtype=np.float64)[:, None]
            + np.arange(COLS, dtype=np.float64)[None, :] / 1024.0)


class WriteCase(unittest.TestCase):
    """Each test gets its own copy of a fixture (self.h5) and mounts it itself, so it can
    unmount and then read the file with h5py/PyTables."""
    fixture = 'write'

    def setUp(self):
        self.h5 = harness.fresh_copy(FIX[self.fixture], self._testMethodName + '.h5')
        self._fds = []

    # mounting
    def mount(self, opts=(), h5=None):
        m = harness.Mount(h5 or self.h5, list(opts))
        self.addCleanup(m.cleanup)
        self.addCleanup(self._close_fds)        # runs before the unmount above
        m.start()
        return m

    def unmount(self, m):
        """Unmounts m, asserting a clean exit with status 0; returns the daemon's stderr."""
        self._close_fds()
        problem = m.cleanup()
        if problem:
            self.fail('%s\ndaemon stderr:\n%s' % (problem, m.stderr_text()[-4000:]))
        return m.stderr_text()

    def stop_with(self, m, sig):
        """Sends sig to the daemon, waits for it to exit, closes our fds and removes what is
        left of the mount. Returns the daemon's exit status (-sig if killed)."""
        m.proc.send_signal(sig)
        try:
            rc = m.proc.wait(timeout=harness.MOUNT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._close_fds()
            m.cleanup()
            self.fail('h5mount did not exit within %.0f s of signal %d; stderr:\n%s'
                      % (harness.MOUNT_TIMEOUT, sig, m.stderr_text()[-4000:]))
        self._close_fds()
        m.cleanup()
        return rc

    # file descriptors on the mount, closed before any unmount
    def open_fd(self, path, flags):
        fd = os.open(path, flags)
        self._fds.append(fd)
        return fd

    def close_fd(self, fd):
        """Closes fd, raising the close's OSError (close reports deferred write errors)."""
        self._fds.remove(fd)
        os.close(fd)

    def _close_fds(self):
        while self._fds:
            harness.close_quietly(self._fds.pop())

    # assertions
    def assertViews(self, m, name, arr):
        """x, x.npy and x.shape of dataset `name` show exactly arr (sizes, bytes, header)."""
        try:
            harness.check_dataset(m, harness.expected_from_array('/' + name, arr))
        except AssertionError as e:
            raise self.failureException('%s views: %s' % (name, e)) from None

    def assertHeld(self, m, name, complete, tail):
        """The views of `name` while the incomplete row `tail` (bytes) is held after the
        complete rows `complete`: x's size and bytes include tail, x.shape and the .npy
        header count only complete rows, and x.npy's size is its header plus x's size."""
        x, npy = m.p(name), m.p(name + '.npy')
        want = complete.tobytes() + tail
        self.assertEqual(os.stat(x).st_size, len(want), '%s: st_size with a held row' % name)
        harness.assert_bytes_equal(read_file(x), want, '%s with a held row' % name)
        self.assertEqual(read_file(x + '.shape'), harness.shape_text(complete.shape),
                         '%s.shape must count complete rows only' % name)
        _, _, off, _, d = harness.parse_npy_header(read_file(npy)[:16384])
        self.assertEqual(tuple(d['shape']), complete.shape,
                         '%s.npy header must count complete rows only' % name)
        self.assertEqual(os.stat(npy).st_size, off + len(want),
                         '%s.npy size must be header + size of x' % name)
        harness.assert_bytes_equal(read_file(npy)[off:], want, '%s.npy data with a held row'
                                   % name)

    def assertStored(self, name, arr, h5=None):
        """After unmounting: h5py reads exactly arr (shape, dtype, bytes) from the file."""
        shape, dt, raw = harness.stored_dataset(h5 or self.h5, name)
        self.assertEqual(shape, arr.shape, 'stored shape of %s' % name)
        self.assertEqual(dt, arr.dtype, 'stored dtype of %s' % name)
        harness.assert_bytes_equal(raw, arr.tobytes(), 'stored bytes of %s' % name)

    def assertErrno(self, want, fn, *args):
        err = harness.errno_of(fn, *args)
        self.assertEqual(err, want, '%s%r: errno %s, expected %s'
                         % (getattr(fn, '__name__', fn), args, errname(err) if err else 'none '
                            '(it succeeded)', errname(want)))

    def write_all(self, fd, data, piece=MiB):
        """Writes data through fd in `piece`-byte writes, asserting each is complete. A write
        may be short only where the file system ran out of room (POSIX): the write of the rest
        must then fail, and its OSError is raised."""
        view = memoryview(data)
        for o in range(0, len(view), piece):
            want = len(view[o:o + piece])
            n = os.write(fd, view[o:o + piece])
            if n < want:
                n += os.write(fd, view[o + n:o + piece])
            self.assertEqual(n, want, 'short write at %d, and writing the rest did not fail' % o)


# ====================================================================== appends

class Append(WriteCase):

    def test_shell_cat_append_redirection_grows_the_dataset_by_whole_rows(self):
        m = self.mount()
        more = rows(25, seed=1)
        src = os.path.join(os.path.dirname(self.h5), 'more_rows.bin')
        more.tofile(src)
        r = sh('cat %s >> %s' % (shlex.quote(src), shlex.quote(m.p('grow'))))
        self.assertEqual(r.returncode, 0, 'cat >> failed: ' + r.stderr)
        want = cat(ORIG['grow'], more)
        self.assertViews(m, 'grow', want)
        self.unmount(m)
        self.assertStored('grow', want)

    def test_python_append_mode_write_of_ten_rows_appends_them(self):
        m = self.mount()
        more = rows(10, seed=2)
        with open(m.p('grow'), 'ab') as fp:
            fp.write(more.tobytes())
        want = cat(ORIG['grow'], more)
        self.assertViews(m, 'grow', want)
        self.unmount(m)
        self.assertStored('grow', want)

    def test_write_at_end_of_npy_data_region_appends_rows(self):
        m = self.mount()
        npy = m.p('grow.npy')
        off = harness.npy_data_offset(npy)
        more = rows(4, seed=3)
        fd = self.open_fd(npy, os.O_WRONLY)
        self.assertEqual(os.pwrite(fd, more.tobytes(), off + ORIG['grow'].nbytes), more.nbytes)
        want = cat(ORIG['grow'], more)
        self.assertViews(m, 'grow', want)
        self.unmount(m)
        self.assertStored('grow', want)

    def test_one_dimensional_append_grows_by_elements(self):
        m = self.mount()
        more = np.array([7, -8, 9, 2**31 - 1, -2**31], dtype='<i4')
        with open(m.p('grow_1d'), 'ab') as fp:
            fp.write(more.tobytes())
        want = cat(ORIG['grow_1d'], more)
        self.assertViews(m, 'grow_1d', want)
        self.assertEqual(read_file(m.p('grow_1d.shape')), b'55\n')
        self.unmount(m)
        self.assertStored('grow_1d', want)

    def test_big_endian_dataset_in_a_group_appends_bytes_in_file_order(self):
        m = self.mount()
        more = ((np.arange(9).reshape(3, 3) + 1) * -70001).astype('>i4')
        with open(m.p('g/inner'), 'ab') as fp:
            fp.write(more.tobytes())
        want = cat(ORIG['g/inner'], more)
        self.assertViews(m, 'g/inner', want)
        self.unmount(m)
        self.assertStored('g/inner', want)

    def test_o_append_write_lands_at_the_real_end_after_other_views_grew_it(self):
        m = self.mount()
        x, npy = m.p('grow'), m.p('grow.npy')
        off = harness.npy_data_offset(npy)
        afd = self.open_fd(x, os.O_WRONLY | os.O_APPEND)
        # Another fd grows the dataset through the .npy view...
        nfd = self.open_fd(npy, os.O_WRONLY)
        three = rows(3, seed=4)
        self.assertEqual(os.pwrite(nfd, three.tobytes(), off + ORIG['grow'].nbytes), three.nbytes)
        # ...then the O_APPEND fd writes: its row must follow the three.
        one = rows(1, seed=5)
        self.assertEqual(os.write(afd, one.tobytes()), ROWB)
        want = cat(ORIG['grow'], three, one)
        self.assertViews(m, 'grow', want)
        # Another process appends; the O_APPEND fd's next row follows its rows too.
        two = rows(2, seed=6)
        src = os.path.join(os.path.dirname(self.h5), 'two.bin')
        two.tofile(src)
        r = sh('cat %s >> %s' % (shlex.quote(src), shlex.quote(x)))
        self.assertEqual(r.returncode, 0, r.stderr)
        last = rows(1, seed=7)
        self.assertEqual(os.write(afd, last.tobytes()), ROWB)
        want = cat(want, two, last)
        self.assertViews(m, 'grow', want)
        self.unmount(m)
        self.assertStored('grow', want)


# ====================================================================== incomplete rows, gaps

class IncompleteRows(WriteCase):

    def test_incomplete_row_is_held_in_size_and_reads_but_not_in_shape_until_completed(self):
        m = self.mount()
        fd = self.open_fd(m.p('grow'), os.O_WRONLY | os.O_APPEND)
        two = rows(2, seed=10)
        self.assertEqual(os.write(fd, two[0].tobytes() + two[1].tobytes()[:1000]), ROWB + 1000)
        self.assertHeld(m, 'grow', cat(ORIG['grow'], two[:1]), two[1].tobytes()[:1000])
        self.assertEqual(os.write(fd, two[1].tobytes()[1000:]), ROWB - 1000)
        want = cat(ORIG['grow'], two)
        self.assertViews(m, 'grow', want)
        self.close_fd(fd)
        self.assertViews(m, 'grow', want)
        self.assertNotIn('incomplete row', m.stderr_text())
        self.unmount(m)
        self.assertStored('grow', want)

    def test_incomplete_row_is_completed_with_the_fill_value_at_close_and_logged(self):
        m = self.mount()
        x = m.p('grow')
        fd = self.open_fd(x, os.O_WRONLY | os.O_APPEND)
        two = rows(2, seed=11)
        self.assertEqual(os.write(fd, two[0].tobytes() + two[1].tobytes()[:3000]), ROWB + 3000)
        self.close_fd(fd)
        last = np.full(COLS, FILL['grow'])
        last[:375] = two[1][:375]                        # 3000 bytes = 375 float64
        want = cat(ORIG['grow'], two[:1], last[None])
        # FUSE's release is asynchronous to close(2): allow it the contract's 2 s.
        harness.wait_until(lambda: os.stat(x).st_size == want.nbytes)
        self.assertViews(m, 'grow', want)
        self.assertTrue(harness.wait_until(lambda: 'incomplete row' in m.stderr_text()),
                        'no "incomplete row" line on stderr:\n' + m.stderr_text()[-2000:])
        self.unmount(m)
        self.assertStored('grow', want)

    def test_fsync_of_another_dataset_that_completes_a_held_row_updates_its_size_at_once(self):
        m = self.mount()
        x = m.p('grow')
        fd = self.open_fd(x, os.O_WRONLY | os.O_APPEND)
        row = rows(1, seed=12)
        self.assertEqual(os.write(fd, row.tobytes()[:3000]), 3000)
        # The kernel caches this size (attribute timeout 1 s on read-write mounts).
        self.assertEqual(os.stat(x).st_size, ORIG['grow'].nbytes + 3000)
        other = self.open_fd(m.p('grow_1d'), os.O_RDWR)
        os.fsync(other)                                  # completes every held row
        self.assertEqual(os.stat(x).st_size, ORIG['grow'].nbytes + ROWB,
                         'st_size of grow right after an fsync of grow_1d completed its row')
        self.assertEqual(read_file(x + '.shape'), harness.shape_text((GROW_ROWS + 1, COLS)))
        self.assertEqual(os.stat(m.p('grow.npy')).st_size,
                         harness.npy_data_offset(m.p('grow.npy')) + ORIG['grow'].nbytes + ROWB)
        self.close_fd(other)
        self.close_fd(fd)
        self.unmount(m)

    def test_incomplete_row_through_npy_is_held_and_completed_at_close(self):
        m = self.mount()
        npy = m.p('grow_3d.npy')
        off = harness.npy_data_offset(npy)
        self.assertEqual(off, 192, 'the 3-D view header must be 192 bytes (20-digit dims)')
        fd = self.open_fd(npy, os.O_WRONLY)
        row = (np.arange(30, dtype='<f4').reshape(1, 5, 6) - 100) * 3
        tail = row.tobytes()[:48]                        # 12 of the row's 30 float32
        self.assertEqual(os.pwrite(fd, row.tobytes() + tail, off + ORIG['grow_3d'].nbytes),
                         row.nbytes + 48)
        self.assertHeld(m, 'grow_3d', cat(ORIG['grow_3d'], row), tail)
        self.close_fd(fd)
        last = fill_rows('grow_3d', 1)
        last.reshape(-1)[:12] = row.reshape(-1)[:12]
        want = cat(ORIG['grow_3d'], row, last)
        harness.wait_until(lambda: os.stat(m.p('grow_3d')).st_size == want.nbytes)
        self.assertViews(m, 'grow_3d', want)
        self.unmount(m)
        self.assertStored('grow_3d', want)

    def test_incomplete_element_of_a_1d_dataset_is_completed_with_fill_bytes(self):
        m = self.mount()
        x = m.p('grow_1d')
        fd = self.open_fd(x, os.O_WRONLY | os.O_APPEND)
        self.assertEqual(os.write(fd, b'\x78\x56'), 2)
        self.assertHeld(m, 'grow_1d', ORIG['grow_1d'], b'\x78\x56')
        self.close_fd(fd)
        fill = np.array([FILL['grow_1d']], dtype='<i4').tobytes()
        last = np.frombuffer(b'\x78\x56' + fill[2:], dtype='<i4')
        want = cat(ORIG['grow_1d'], last)
        harness.wait_until(lambda: os.stat(x).st_size == want.nbytes)
        self.assertViews(m, 'grow_1d', want)
        self.unmount(m)
        self.assertStored('grow_1d', want)

    def test_write_past_the_end_leaves_a_gap_of_fill_value(self):
        m = self.mount()
        fd = self.open_fd(m.p('grow'), os.O_WRONLY)
        row = rows(1, seed=12)
        self.assertEqual(os.pwrite(fd, row.tobytes(), (GROW_ROWS + 5) * ROWB), ROWB)
        want = cat(ORIG['grow'], fill_rows('grow', 5), row)
        self.assertViews(m, 'grow', want)
        # The same through the 3-D .npy view, whose header is longer than numpy's.
        npy = m.p('grow_3d.npy')
        off = harness.npy_data_offset(npy)
        nfd = self.open_fd(npy, os.O_WRONLY)
        r3 = np.full((1, 5, 6), 42.25, dtype='<f4')
        self.assertEqual(os.pwrite(nfd, r3.tobytes(), off + 7 * 120), 120)
        want3 = cat(ORIG['grow_3d'], fill_rows('grow_3d', 3), r3)
        self.assertViews(m, 'grow_3d', want3)
        self.unmount(m)
        self.assertStored('grow', want)
        self.assertStored('grow_3d', want3)


# ====================================================================== overwrites

class Overwrite(WriteCase):

    def test_dd_notrunc_seek_replaces_bytes_in_place_across_a_chunk_boundary(self):
        m = self.mount()
        patch = np.random.default_rng(20).bytes(5000)
        src = os.path.join(os.path.dirname(self.h5), 'patch.bin')
        with open(src, 'wb') as fp:
            fp.write(patch)
        at = 16 * ROWB - 2543                            # crosses the first chunk boundary
        r = subprocess.run(['dd', 'if=' + src, 'of=' + m.p('grow'), 'bs=5000', 'count=1',
                            'seek=%d' % at, 'oflag=seek_bytes', 'conv=notrunc', 'status=none'],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        raw = bytearray(ORIG['grow'].tobytes())
        raw[at:at + 5000] = patch
        want = np.frombuffer(bytes(raw), dtype='<f8').reshape(ORIG['grow'].shape)
        self.assertViews(m, 'grow', want)
        self.unmount(m)
        self.assertStored('grow', want)

    def test_unaligned_pwrites_through_x_and_npy_replace_exactly_their_bytes(self):
        m = self.mount()
        x, npy = m.p('grow'), m.p('grow.npy')
        off = harness.npy_data_offset(npy)
        raw = bytearray(ORIG['grow'].tobytes())
        size = len(raw)
        fds = {'x': self.open_fd(x, os.O_RDWR), 'npy': self.open_fd(npy, os.O_RDWR)}
        rng = np.random.default_rng(21)
        writes = [(int(rng.integers(0, size - 1)), int(rng.integers(1, 20000)))
                  for _ in range(30)]
        writes += [(16 * ROWB - 3, 16 * ROWB + 7), (0, 1), (size - 1, 1), (size - 12345, 12345)]
        for i, (o, n) in enumerate(writes):
            n = min(n, size - o)
            data = rng.bytes(n)
            via = 'x' if i % 2 == 0 else 'npy'
            self.assertEqual(os.pwrite(fds[via], data, o + (off if via == 'npy' else 0)), n)
            raw[o:o + n] = data
            other = npy if via == 'x' else x
            got = pread_path(other, n, o + (off if other == npy else 0))
            harness.assert_bytes_equal(got, data, 'write %d (%d bytes at %d via %s) read back '
                                       'through the other view' % (i, n, o, via))
        self.assertEqual(os.stat(x).st_size, size)
        want = np.frombuffer(bytes(raw), dtype='<f8').reshape(ORIG['grow'].shape)
        self.assertViews(m, 'grow', want)
        self.unmount(m)
        self.assertStored('grow', want)


# ====================================================================== truncation

class Truncate(WriteCase):

    def test_truncate_command_shrinks_then_regrows_with_fill_never_old_rows(self):
        m = self.mount()
        x = m.p('grow')
        r = subprocess.run(['truncate', '-s', str(10 * ROWB), x], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertViews(m, 'grow', ORIG['grow'][:10])
        r = subprocess.run(['truncate', '-s', str(100 * ROWB), x], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        want = cat(ORIG['grow'][:10], fill_rows('grow', 90))
        self.assertViews(m, 'grow', want)
        self.unmount(m)
        self.assertStored('grow', want)

    def test_truncate_to_a_partial_row_fails_with_einval_and_changes_nothing(self):
        m = self.mount()
        x = m.p('grow')
        r = subprocess.run(['truncate', '-s', str(10 * ROWB + 5), x], capture_output=True,
                           text=True)
        self.assertNotEqual(r.returncode, 0, 'truncate -s to a partial row succeeded')
        self.assertIn('Invalid argument', r.stderr)
        self.assertErrno(errno.EINVAL, os.truncate, x, 10 * ROWB + 5)
        self.assertErrno(errno.EINVAL, os.truncate, x, GROW_ROWS * ROWB + 1)
        fd = self.open_fd(x, os.O_WRONLY)
        self.assertErrno(errno.EINVAL, os.ftruncate, fd, 1)
        self.assertViews(m, 'grow', ORIG['grow'])
        self.unmount(m)
        self.assertStored('grow', ORIG['grow'])

    def test_ftruncate_and_o_trunc_set_whole_row_extents(self):
        m = self.mount()
        x = m.p('grow')
        fd = self.open_fd(x, os.O_WRONLY)
        os.ftruncate(fd, 42 * ROWB)
        self.assertViews(m, 'grow', ORIG['grow'][:42])
        os.ftruncate(fd, 45 * ROWB)
        self.assertViews(m, 'grow', cat(ORIG['grow'][:42], fill_rows('grow', 3)))
        self.close_fd(fd)
        tfd = self.open_fd(x, os.O_WRONLY | os.O_TRUNC)
        self.assertEqual(os.stat(x).st_size, 0)
        self.assertEqual(read_file(m.p('grow.shape')), b'0 1000\n')
        three = rows(3, seed=30)
        self.assertEqual(os.write(tfd, three.tobytes()), three.nbytes)
        self.close_fd(tfd)
        self.assertViews(m, 'grow', three)
        self.unmount(m)
        self.assertStored('grow', three)

    def test_npy_truncation_counts_whole_rows_after_the_view_header(self):
        m = self.mount()
        npy = m.p('grow.npy')
        off = harness.npy_data_offset(npy)
        os.truncate(npy, off + 5 * ROWB)
        self.assertViews(m, 'grow', ORIG['grow'][:5])
        self.assertErrno(errno.EINVAL, os.truncate, npy, off + 7 * ROWB + 1)
        self.assertErrno(errno.EINVAL, os.truncate, npy, off - 1)
        self.assertErrno(errno.EINVAL, os.truncate, npy, 1)
        self.assertViews(m, 'grow', ORIG['grow'][:5])
        os.truncate(npy, 0)
        self.assertViews(m, 'grow', ORIG['grow'][:0])
        os.truncate(npy, off + 3 * ROWB)
        self.assertViews(m, 'grow', fill_rows('grow', 3))
        # 3-D: a 192-byte view header.
        npy3 = m.p('grow_3d.npy')
        off3 = harness.npy_data_offset(npy3)
        os.truncate(npy3, off3 + 6 * 120)
        want3 = cat(ORIG['grow_3d'], fill_rows('grow_3d', 2))
        self.assertViews(m, 'grow_3d', want3)
        # O_TRUNC alone empties the dataset.
        harness.close_quietly(os.open(m.p('grow_1d.npy'), os.O_WRONLY | os.O_TRUNC))
        self.assertViews(m, 'grow_1d', ORIG['grow_1d'][:0])
        self.unmount(m)
        self.assertStored('grow', fill_rows('grow', 3))
        self.assertStored('grow_3d', want3)
        self.assertStored('grow_1d', ORIG['grow_1d'][:0])

    def test_truncating_the_shape_sidecar_changes_nothing(self):
        m = self.mount()
        shp = m.p('grow.shape')
        os.truncate(shp, 0)
        self.assertEqual(read_file(shp), b'100 1000\n')
        harness.close_quietly(os.open(shp, os.O_WRONLY | os.O_TRUNC))
        r = sh(': > %s' % shlex.quote(shp))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertViews(m, 'grow', ORIG['grow'])
        self.unmount(m)
        self.assertStored('grow', ORIG['grow'])


# ====================================================================== .npy headers

class NpyHeaderWrites(WriteCase):

    def test_np_save_over_the_view_replaces_the_dataset_shrinking_or_growing(self):
        m = self.mount()
        npy = m.p('grow.npy')
        small = rows(37, seed=40)
        np.save(npy, small)
        self.assertViews(m, 'grow', small)
        np.testing.assert_array_equal(np.load(npy), small)
        big = rows(150, seed=41)
        np.save(npy, big)
        self.assertViews(m, 'grow', big)
        self.unmount(m)
        self.assertStored('grow', big)

    def test_np_save_with_numpys_shorter_header_replaces_a_3d_dataset(self):
        m = self.mount()
        npy = m.p('grow_3d.npy')
        self.assertEqual(harness.npy_data_offset(npy), 192)
        arr = (np.arange(9 * 30, dtype='<f4').reshape(9, 5, 6) - 7) / 3
        np.save(npy, arr)       # numpy writes a 128-byte header: data at 128 for this open
        self.assertViews(m, 'grow_3d', arr)
        self.assertEqual(harness.npy_data_offset(npy), 192, 'view header length changed')
        self.unmount(m)
        self.assertStored('grow_3d', arr)

    def test_cp_of_a_matching_npy_file_replaces_the_dataset(self):
        m = self.mount()
        arr = rows(61, seed=42)
        src = os.path.join(os.path.dirname(self.h5), 'src.npy')
        np.save(src, arr)
        r = subprocess.run(['cp', src, m.p('grow.npy')], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertViews(m, 'grow', arr)
        arr1 = np.array([5, 4, 3, 2, 1], dtype='<i4')
        src1 = os.path.join(os.path.dirname(self.h5), 'src1.npy')
        np.save(src1, arr1)
        r = subprocess.run(['cp', src1, m.p('grow_1d.npy')], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertViews(m, 'grow_1d', arr1)
        self.unmount(m)
        self.assertStored('grow', arr)
        self.assertStored('grow_1d', arr1)

    def test_header_and_data_in_one_large_write_keep_every_data_byte(self):
        m = self.mount()
        npy = m.p('grow.npy')
        arr = rows(61, seed=44)
        src = os.path.join(os.path.dirname(self.h5), 'src.npy')
        np.save(src, arr)
        blob = read_file(src)
        for step in (len(blob), 200000, 131072):
            with self.subTest(write_size=step):
                fd = self.open_fd(npy, os.O_WRONLY | os.O_TRUNC)
                self.write_all(fd, blob, step)
                self.close_fd(fd)
                self.assertViews(m, 'grow', arr)
        self.unmount(m)
        self.assertStored('grow', arr)

    def test_rewriting_a_matching_header_in_place_is_accepted_and_keeps_the_rows(self):
        m = self.mount()
        npy = m.p('grow.npy')
        off = harness.npy_data_offset(npy)
        own = read_file(npy)[:off]
        fd = self.open_fd(npy, os.O_WRONLY)
        self.assertEqual(os.pwrite(fd, own, 0), off)
        self.assertViews(m, 'grow', ORIG['grow'])
        # Its leading dimension is only a declaration: the data decides the length.
        declared = harness.npy_header_bytes('<f8', False, (5, COLS), off)
        self.assertEqual(os.pwrite(fd, declared, 0), off)
        self.assertViews(m, 'grow', ORIG['grow'])
        self.unmount(m)
        self.assertStored('grow', ORIG['grow'])

    def test_mismatching_headers_are_refused_with_einval_and_change_nothing(self):
        m = self.mount()
        npy = m.p('grow.npy')
        off = harness.npy_data_offset(npy)
        bad = {
            'dtype <f4': harness.npy_header_bytes('<f4', False, (100, COLS), off),
            'dtype >f8': harness.npy_header_bytes('>f8', False, (100, COLS), off),
            'dtype <i8': harness.npy_header_bytes('<i8', False, (100, COLS), off),
            'trailing 999': harness.npy_header_bytes('<f8', False, (100, 999), off),
            'rank 3': harness.npy_header_bytes('<f8', False, (100, COLS, 1), off),
            'rank 1': harness.npy_header_bytes('<f8', False, (100 * COLS,), off),
            'fortran_order': harness.npy_header_bytes('<f8', True, (100, COLS), off),
            'extra key': raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': "
                                    "(100, 1000), 'x': 1, }", off),
            'garbage': bytes(range(off)),
            'not a dict': raw_header('[1, 2, 3]', off),
            'unparsable': raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': (100, ",
                                     off),
            'short garbage': b'hello',
            'magic only': harness.npy_header_bytes('<f8', False, (100, COLS), off)[:8],
            'start of a <f4 header': harness.npy_header_bytes('<f4', False, (100, COLS),
                                                              off)[:30],
        }
        # A header may arrive in pieces, so an incomplete one may be refused at the close.
        for what, header in bad.items():
            with self.subTest(what):
                err = write_or_close_errno(npy, header, 0)
                self.assertEqual(err, errno.EINVAL, 'header %r: %s, expected EINVAL at the '
                                 'write or the close' % (header[:40], errname(err) if err
                                                         else 'accepted'))
                err = write_or_close_errno(npy, header + rows(2, seed=43).tobytes(), 0)
                self.assertEqual(err, errno.EINVAL, 'header %r + 2 rows: %s, expected EINVAL'
                                 % (header[:40], errname(err) if err else 'accepted'))
                self.assertEqual(read_file(m.p('grow.shape')), b'100 1000\n')
        with self.subTest('write inside the header region'):
            err = write_or_close_errno(npy, b'X', 20)
            self.assertEqual(err, errno.EINVAL, 'one byte at offset 20: %s, expected EINVAL'
                             % (errname(err) if err else 'accepted'))
        self.assertViews(m, 'grow', ORIG['grow'])
        # A header of another dtype without O_TRUNC is EINVAL (with O_TRUNC it replaces the
        # dataset: test_create.py).
        buf = io.BytesIO()
        np.save(buf, np.zeros((2, 5, 6), dtype='<f8'))
        with self.assertRaises(OSError) as cm:
            with open(m.p('grow_3d.npy'), 'r+b') as fh:
                fh.write(buf.getvalue())
        self.assertEqual(cm.exception.errno, errno.EINVAL, str(cm.exception))
        self.unmount(m)
        self.assertStored('grow', ORIG['grow'])


# ====================================================================== writable mmaps

class MmapWrites(WriteCase):

    def test_np_load_r_plus_edits_are_written_back(self):
        m = self.mount()
        want = ORIG['grow'].copy()
        a = np.load(m.p('grow.npy'), mmap_mode='r+')
        try:
            self.assertEqual(a.shape, want.shape)
            a[3] = 7
            a[50, 17] = -1.25
            a[99, 999] = 1e300
            a.flush()
        finally:
            del a
        want[3] = 7
        want[50, 17] = -1.25
        want[99, 999] = 1e300
        self.assertViews(m, 'grow', want)
        self.unmount(m)
        self.assertStored('grow', want)

    def test_np_memmap_of_raw_views_writes_back(self):
        m = self.mount()
        want3 = ORIG['grow_3d'].copy()
        wanti = ORIG['g/inner'].copy()
        a = np.memmap(m.p('grow_3d'), dtype='<f4', mode='r+', shape=want3.shape)
        b = np.memmap(m.p('g/inner'), dtype='>i4', mode='r+', shape=wanti.shape)
        try:
            a[1, 2, :] = -3.5
            a[3, 4, 5] = 1e30
            b[9] = [1, -2, 3]
            a.flush()
            b.flush()
        finally:
            del a, b
        want3[1, 2, :] = -3.5
        want3[3, 4, 5] = 1e30
        wanti[9] = [1, -2, 3]
        self.assertViews(m, 'grow_3d', want3)
        self.assertViews(m, 'g/inner', wanti)
        self.unmount(m)
        self.assertStored('grow_3d', want3)
        self.assertStored('g/inner', wanti)


# ====================================================================== .shape sidecar

class ShapeSidecar(WriteCase):

    def test_echo_into_shape_file_grows_with_fill_and_shrinks(self):
        m = self.mount()
        shp = m.p('grow.shape')
        r = sh('echo "200 1000" > %s' % shlex.quote(shp))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read_file(shp), b'200 1000\n')
        self.assertViews(m, 'grow', cat(ORIG['grow'], fill_rows('grow', 100)))
        r = sh('echo "50 1000" > %s' % shlex.quote(shp))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertViews(m, 'grow', ORIG['grow'][:50])
        r = sh('echo 60 > %s' % shlex.quote(m.p('grow_1d.shape')))
        self.assertEqual(r.returncode, 0, r.stderr)
        want1 = cat(ORIG['grow_1d'], fill_rows('grow_1d', 10))
        self.assertViews(m, 'grow_1d', want1)
        self.unmount(m)
        self.assertStored('grow', ORIG['grow'][:50])
        self.assertStored('grow_1d', want1)

    def test_shape_file_resizes_other_dimensions_when_maxshape_allows(self):
        m = self.mount()
        shp = m.p('grow_any.shape')
        write_shape(shp, b'5 9\n')
        want = np.full((5, 9), FILL['grow_any'], dtype='<i2')
        want[:, :6] = ORIG['grow_any'][:5]
        self.assertViews(m, 'grow_any', want)
        write_shape(shp, b'10 4\n')
        want2 = np.full((10, 4), FILL['grow_any'], dtype='<i2')
        want2[:5] = want[:, :4]
        self.assertViews(m, 'grow_any', want2)
        self.unmount(m)
        self.assertStored('grow_any', want2)

    def test_malformed_lines_other_ranks_and_dims_beyond_maxshape_fail_with_einval(self):
        m = self.mount()
        lines = [b'abc\n', b'200\n', b'200 1000 1\n', b'200 1001\n',
                 b'-1 1000\n', b'1e3 1000\n', b'200 1000 junk\n', b'200,1000\n',
                 b'99999999999999999999999 1000\n', b'\n', b' \n']
        for line in lines:
            with self.subTest(line=line):
                self.assertErrno(errno.EINVAL, write_shape, m.p('grow.shape'), line)
                self.assertEqual(read_file(m.p('grow.shape')), b'100 1000\n')
        with self.subTest('limited beyond its maxshape'):
            self.assertErrno(errno.EINVAL, write_shape, m.p('limited.shape'), b'51 10\n')
        self.assertViews(m, 'grow', ORIG['grow'])
        self.assertViews(m, 'limited', ORIG['limited'])
        self.unmount(m)
        self.assertStored('grow', ORIG['grow'])
        self.assertStored('limited', ORIG['limited'])


# ====================================================================== growth refused

class CannotGrow(WriteCase):

    def test_contiguous_compact_and_fixed_chunked_overwrite_but_refuse_growth_with_efbig(self):
        m = self.mount()
        wants = {}
        for name in ('contiguous', 'compact', 'fixed_chunked'):
            with self.subTest(name):
                a = ORIG[name]
                rowb, size = a[0].nbytes, a.nbytes
                x, npy = m.p(name), m.p(name + '.npy')
                off = harness.npy_data_offset(npy)
                fd = self.open_fd(x, os.O_RDWR)
                patch = b'\x11\x22\x33'
                self.assertEqual(os.pwrite(fd, patch, 5), 3)
                raw = bytearray(a.tobytes())
                raw[5:8] = patch
                wants[name] = np.frombuffer(bytes(raw), dtype=a.dtype).reshape(a.shape)
                self.assertEqual(pread_path(npy, 3, off + 5), patch)
                self.assertErrno(errno.EFBIG, os.pwrite, fd, bytes(rowb), size)
                self.assertErrno(errno.EFBIG, os.pwrite, fd, bytes(rowb), size + 3 * rowb)
                self.assertErrno(errno.EFBIG, os.truncate, x, size + rowb)
                afd = self.open_fd(x, os.O_WRONLY | os.O_APPEND)
                self.assertErrno(errno.EFBIG, os.write, afd, bytes(rowb))
                nfd = self.open_fd(npy, os.O_WRONLY)
                self.assertErrno(errno.EFBIG, os.pwrite, nfd, bytes(rowb), off + size)
                dims = list(a.shape)
                dims[0] += 1
                self.assertErrno(errno.EFBIG, write_shape, m.p(name + '.shape'),
                                 (' '.join(map(str, dims)) + '\n').encode())
                self.assertViews(m, name, wants[name])
        self.unmount(m)
        for name, want in wants.items():
            self.assertStored(name, want)

    def test_limited_maxshape_grows_to_its_maximum_then_refuses_with_efbig(self):
        m = self.mount()
        x = m.p('limited')
        more = np.arange(300, dtype='<i8').reshape(30, 10) + 1000
        fd = self.open_fd(x, os.O_WRONLY | os.O_APPEND)
        self.assertEqual(os.write(fd, more.tobytes()), more.nbytes)
        full = cat(ORIG['limited'], more)
        self.assertViews(m, 'limited', full)
        self.assertErrno(errno.EFBIG, os.write, fd, bytes(80))
        self.assertErrno(errno.EFBIG, os.truncate, x, 51 * 80)
        self.assertViews(m, 'limited', full)
        os.truncate(x, 45 * 80)
        write_shape(m.p('limited.shape'), b'50 10\n')
        want = cat(full[:45], fill_rows('limited', 5))
        self.assertViews(m, 'limited', want)
        self.unmount(m)
        self.assertStored('limited', want)

    def test_variable_length_views_refuse_open_for_write_with_eacces(self):
        m = self.mount()
        before = {v: read_file(m.p(v)) for v in ('vlen', 'vlen.npy', 'vlen.offsets')}
        for view in before:
            for fname, flags in (('O_WRONLY', os.O_WRONLY), ('O_RDWR', os.O_RDWR),
                                 ('O_TRUNC', os.O_WRONLY | os.O_TRUNC),
                                 ('O_APPEND', os.O_WRONLY | os.O_APPEND)):
                with self.subTest(view=view, flags=fname):
                    err = open_errno(m.p(view), flags)
                    self.assertEqual(err, errno.EACCES, 'open(%s, %s): %s, expected EACCES'
                                     % (view, fname, errname(err) if err else 'opened'))
        for view, data in before.items():
            self.assertEqual(read_file(m.p(view)), data, view + ' changed')
        self.unmount(m)


# ====================================================================== read-only mounts

class ReadOnly(WriteCase):

    def assertEveryWriteRefused(self, m):
        for view in ('grow', 'grow.npy', 'grow.shape'):
            p = m.p(view)
            for fname, flags in (('O_WRONLY', os.O_WRONLY), ('O_RDWR', os.O_RDWR),
                                 ('O_TRUNC', os.O_WRONLY | os.O_TRUNC),
                                 ('O_APPEND', os.O_WRONLY | os.O_APPEND)):
                with self.subTest(view=view, flags=fname):
                    err = open_errno(p, flags)
                    self.assertEqual(err, errno.EROFS, 'open(%s, %s): %s, expected EROFS'
                                     % (view, fname, errname(err) if err else 'opened'))
            with self.subTest(view=view, op='truncate'):
                self.assertErrno(errno.EROFS, os.truncate, p, 0)
        with self.assertRaises(OSError) as cm:
            np.load(m.p('grow.npy'), mmap_mode='r+')
        self.assertEqual(cm.exception.errno, errno.EROFS)
        self.assertViews(m, 'grow', ORIG['grow'])

    def test_o_ro_refuses_every_write_open_and_truncate_with_erofs(self):
        m = self.mount(['-o', 'ro'])
        self.assertEveryWriteRefused(m)
        self.unmount(m)
        self.assertStored('grow', ORIG['grow'])

    def test_file_on_a_read_only_filesystem_is_mounted_read_only_with_a_log_line(self):
        # Root ignores file modes, but not a read-only filesystem: the daemon cannot open
        # the file for writing either way.
        try:
            t = harness.Tmpfs('16m').start()
        except OSError as e:
            self.skipTest(str(e))
        self.addCleanup(t.cleanup)
        h5 = os.path.join(t.path, 'ro.h5')
        shutil.copyfile(self.h5, h5)
        t.remount_ro()
        m = self.mount(h5=h5)
        self.assertEveryWriteRefused(m)
        err = self.unmount(m)
        self.assertIn('read-only', err)
        self.assertStored('grow', ORIG['grow'], h5=h5)

    def test_file_mode_0444_as_non_root_is_mounted_read_only_with_a_log_line(self):
        d = harness.nobody_dir(self)
        h5 = os.path.join(d, 'ro.h5')
        shutil.copyfile(self.h5, h5)
        os.chmod(h5, 0o444)
        m = harness.mount_as_nobody(self, d, h5)
        probe = r'''
import errno, json, os, sys
mnt, out = sys.argv[1], {}
for view in ('grow', 'grow.npy', 'grow.shape'):
    p = os.path.join(mnt, view)
    for name, flags in (('O_WRONLY', os.O_WRONLY), ('O_RDWR', os.O_RDWR),
                        ('O_TRUNC', os.O_WRONLY | os.O_TRUNC)):
        try:
            os.close(os.open(p, flags))
            out[view + ' ' + name] = 0
        except OSError as e:
            out[view + ' ' + name] = e.errno
    try:
        os.truncate(p, 0)
        out[view + ' truncate'] = 0
    except OSError as e:
        out[view + ' truncate'] = e.errno
with open(os.path.join(mnt, 'grow'), 'rb') as fp:
    out['head'] = fp.read(64).hex()
print(json.dumps(out))
'''
        r = subprocess.run(harness.AS_NOBODY + ['/usr/bin/python3', '-c', probe, m.path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out.pop('head'), ORIG['grow'].tobytes()[:64].hex())
        wrong = {k: errname(v) if v else 'succeeded' for k, v in out.items()
                 if v != errno.EROFS}
        self.assertEqual(wrong, {}, 'these writes did not fail with EROFS')
        self.assertIn('read-only', m.stderr_text())
        problem = m.cleanup()
        self.assertIsNone(problem, m.stderr_text())
        self.assertStored('grow', ORIG['grow'], h5=h5)


# ====================================================================== namespace

class Namespace(WriteCase):

    def test_fifos_and_hard_links_are_refused_and_change_nothing(self):
        # mkdir, rmdir, unlink, rename and symlink are test_namespace.py's; creating
        # datasets test_create.py's.
        m = self.mount()
        p = m.p
        top, grp = sorted(os.listdir(m.path)), sorted(os.listdir(p('g')))
        ops = [
            ('mkfifo', os.mkfifo, p('fifo')),
            ('hard link', os.link, p('grow'), p('hard')),
        ]
        for what, fn, *args in ops:
            with self.subTest(what):
                err = harness.errno_of(fn, *args)
                self.assertIn(err, REFUSED, '%s: %s, expected EPERM/EACCES/EROFS'
                              % (what, errname(err) if err else 'succeeded'))
        self.assertEqual(sorted(os.listdir(m.path)), top)
        self.assertEqual(sorted(os.listdir(p('g'))), grp)
        self.assertViews(m, 'grow', ORIG['grow'])
        self.unmount(m)
        with h5py.File(FIX['write'], 'r') as f:
            names = sorted(f.keys())
        with h5py.File(self.h5, 'r') as f:
            self.assertEqual(sorted(f.keys()), names)
            self.assertEqual(sorted(f['g'].keys()), ['inner'])


# ====================================================================== coherence

class Coherence(WriteCase):

    def test_all_views_and_existing_mmaps_reflect_each_write_once_it_returns(self):
        m = self.mount()
        x, npy, shp = m.p('grow'), m.p('grow.npy'), m.p('grow.shape')
        off = harness.npy_data_offset(npy)
        want = ORIG['grow'].copy()
        old_npy = np.load(npy, mmap_mode='r')
        raw_fp = open(x, 'rb')
        old_raw = mmap.mmap(raw_fp.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            xfd = self.open_fd(x, os.O_WRONLY)
            nfd = self.open_fd(npy, os.O_WRONLY)
            # 1. Overwrite through x: a fresh read of x.npy is exact at once; the x.npy
            #    mapping made before the write follows within 2 s.
            r2 = rows(1, seed=50)[0]
            self.assertEqual(os.pwrite(xfd, r2.tobytes(), 2 * ROWB), ROWB)
            want[2] = r2
            self.assertEqual(pread_path(npy, ROWB, off + 2 * ROWB), r2.tobytes())
            self.assertTrue(harness.wait_until(lambda: old_npy[2].tobytes() == r2.tobytes()),
                            'x.npy mmap made before the write still shows the old row 2')
            # 2. Overwrite through x.npy: fresh reads of x exact; the old x mapping follows.
            r4 = rows(1, seed=51)[0]
            self.assertEqual(os.pwrite(nfd, r4.tobytes(), off + 4 * ROWB), ROWB)
            want[4] = r4
            self.assertEqual(pread_path(x, ROWB, 4 * ROWB), r4.tobytes())
            self.assertTrue(harness.wait_until(
                lambda: old_raw[4 * ROWB:5 * ROWB] == r4.tobytes()),
                'mmap of x made before the write still shows the old row 4')
            self.assertViews(m, 'grow', want)
            # 3. Append through x.npy: sizes, header, shape text and x agree at once.
            five = rows(5, seed=52)
            self.assertEqual(os.pwrite(nfd, five.tobytes(), off + want.nbytes), five.nbytes)
            want = cat(want, five)
            self.assertEqual(os.stat(x).st_size, want.nbytes)
            self.assertEqual(os.stat(npy).st_size, off + want.nbytes)
            self.assertEqual(read_file(shp), b'105 1000\n')
            self.assertViews(m, 'grow', want)
            # ...and old mappings still follow rows that existed when they were made.
            r99 = rows(1, seed=53)[0]
            self.assertEqual(os.pwrite(xfd, r99.tobytes(), 99 * ROWB), ROWB)
            want[99] = r99
            self.assertTrue(harness.wait_until(lambda: old_npy[99].tobytes() == r99.tobytes()),
                            'x.npy mmap made before the append misses a write to row 99')
            # 4. Grow through the .shape sidecar: x and x.npy sizes follow at once.
            write_shape(shp, b'120 1000\n')
            want = cat(want, fill_rows('grow', 15))
            self.assertEqual(os.stat(x).st_size, want.nbytes)
            self.assertEqual(os.stat(npy).st_size, off + want.nbytes)
            self.assertViews(m, 'grow', want)
            # 5. Shrink through x.npy: x and x.shape follow at once.
            os.ftruncate(nfd, off + 60 * ROWB)
            want = want[:60]
            self.assertEqual(os.stat(x).st_size, want.nbytes)
            self.assertEqual(read_file(shp), b'60 1000\n')
            self.assertViews(m, 'grow', want)
        finally:
            old_npy = None          # drops the mapping before the unmount
            old_raw.close()
            raw_fp.close()
        self.unmount(m)
        self.assertStored('grow', want)

    def test_write_only_writes_leave_no_stale_page_of_the_written_file(self):
        # A write-only file is written directly (no page cache on the writer's side), so the
        # pages other opens of the same file cached must be dropped: the last page of the old
        # end (zeros past it) and the overwritten rows. (Kernels from 6.6 drop them before a
        # direct write; the daemon does it for older ones.)
        m = self.mount()
        x = m.p('grow')
        want = ORIG['grow'].copy()
        fp = open(x, 'rb')
        mapped = mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self.assertEqual(pread_path(x, 4096, want.nbytes - 100), want.tobytes()[-100:])
            self.assertEqual(mapped[3 * ROWB:4 * ROWB], want[3].tobytes())
            fd = self.open_fd(x, os.O_WRONLY | os.O_APPEND)
            one = rows(1, seed=54)
            self.assertEqual(os.write(fd, one.tobytes()), ROWB)
            want = cat(want, one)
            self.assertEqual(os.fstat(fd).st_size, want.nbytes)
            harness.assert_bytes_equal(pread_path(x, 2 * ROWB, want.nbytes - 2 * ROWB),
                                       want[-2:].tobytes(), 'the old last rows and the appended one')
            r3 = rows(1, seed=55)[0]
            wfd = self.open_fd(x, os.O_WRONLY)
            self.assertEqual(os.pwrite(wfd, r3.tobytes(), 3 * ROWB), ROWB)
            want[3] = r3
            self.assertEqual(mapped[3 * ROWB:4 * ROWB], r3.tobytes(),
                             'a mapping made before the write-only write shows the old row 3')
            self.assertEqual(fp.read(), want.tobytes())
        finally:
            mapped.close()
            fp.close()
        self._close_fds()
        self.unmount(m)
        self.assertStored('grow', want)


# ====================================================================== write-back

class WriteBack(WriteCase):

    def test_fsynced_rows_survive_kill_9_and_are_there_after_a_remount(self):
        m = self.mount(['-o', 'flush_interval=0'])
        fd = self.open_fd(m.p('grow'), os.O_WRONLY | os.O_APPEND)
        synced = rows(20, seed=60)
        self.write_all(fd, synced.tobytes())
        os.fsync(fd)
        unsynced = rows(5, seed=61)
        self.write_all(fd, unsynced.tobytes())
        rc = self.stop_with(m, signal.SIGKILL)
        self.assertEqual(rc, -signal.SIGKILL)
        # The next mount replays the journal, if the crash left one.
        m2 = self.mount()
        n = int(read_file(m2.p('grow.shape')).split()[0])
        self.assertIn(n, (GROW_ROWS + 20, GROW_ROWS + 25),
                      'rows after kill -9 and remount (20 were fsynced, 5 more written)')
        want = cat(ORIG['grow'], synced, unsynced)[:n]
        self.assertViews(m2, 'grow', want)
        self.unmount(m2)
        self.assertStored('grow', want)

    def test_kill_9_during_write_back_leaves_a_file_that_remounts_with_a_prefix_of_rows(self):
        m = self.mount(['-o', 'dirty_limit=1M,flush_interval=0'])
        fd = self.open_fd(m.p('grow'), os.O_WRONLY | os.O_APPEND)
        total, synced = 3000, 500
        stream = pattern_rows(0, total).tobytes()
        self.write_all(fd, stream[:synced * ROWB])
        os.fsync(fd)
        written = [synced * ROWB]
        errors = []

        def writer():                       # 1 MiB writes until done or the daemon is gone
            try:
                for o in range(synced * ROWB, len(stream), MiB):
                    os.write(fd, stream[o:o + MiB])
                    written[0] = o + len(stream[o:o + MiB])
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=writer)
        t.start()
        # Kill it in the middle: 12 MiB on, write-back at the 1 MiB limit keeps committing.
        harness.wait_until(lambda: written[0] >= 1500 * ROWB or not t.is_alive(),
                           timeout=30.0, step=0.005)
        m.proc.kill()
        t.join(timeout=harness.MOUNT_TIMEOUT)
        self.assertEqual(self.stop_with(m, signal.SIGKILL), -signal.SIGKILL)
        self.assertGreaterEqual(written[0], 1500 * ROWB, 'writer failed early: %r' % errors)
        m2 = self.mount()                   # replays the journal, if the kill left one
        n = int(read_file(m2.p('grow.shape')).split()[0]) - GROW_ROWS
        self.assertGreaterEqual(n, synced, 'fsynced rows lost by kill -9 during write-back')
        self.assertLessEqual(n, total)
        want = cat(ORIG['grow'], pattern_rows(0, n))
        self.assertViews(m2, 'grow', want)
        self.unmount(m2)
        self.assertStored('grow', want)

    def test_sigterm_flushes_completes_the_incomplete_row_and_exits_0(self):
        m = self.mount(['-o', 'flush_interval=0'])
        fd = self.open_fd(m.p('grow'), os.O_WRONLY | os.O_APPEND)
        whole = rows(7, seed=62)
        part = rows(1, seed=63)[0]
        self.write_all(fd, whole.tobytes() + part[:250].tobytes())
        rc = self.stop_with(m, signal.SIGTERM)
        last = np.full(COLS, FILL['grow'])
        last[:250] = part[:250]
        with self.subTest('data flushed'):
            self.assertStored('grow', cat(ORIG['grow'], whole, last[None]))
        with self.subTest('incomplete row logged'):
            self.assertIn('incomplete row', m.stderr_text())
        with self.subTest('exit status'):
            self.assertEqual(rc, 0, 'exit status after SIGTERM; stderr:\n'
                             + m.stderr_text()[-3000:])

    def test_sigint_flushes_and_exits_0(self):
        m = self.mount(['-o', 'flush_interval=0'])
        fd = self.open_fd(m.p('grow'), os.O_WRONLY | os.O_APPEND)
        whole = rows(9, seed=64)
        self.write_all(fd, whole.tobytes())
        rc = self.stop_with(m, signal.SIGINT)
        with self.subTest('data flushed'):
            self.assertStored('grow', cat(ORIG['grow'], whole))
        with self.subTest('exit status'):
            self.assertEqual(rc, 0, 'exit status after SIGINT; stderr:\n'
                             + m.stderr_text()[-3000:])

    def test_flush_interval_writes_back_without_fsync_or_close(self):
        m = self.mount(['-o', 'flush_interval=1'])
        fd = self.open_fd(m.p('grow'), os.O_WRONLY | os.O_APPEND)
        ten = rows(10, seed=65)
        self.write_all(fd, ten.tobytes())
        # Look at the file itself, without HDF5's lock, while the fd stays open.
        want_shape = (GROW_ROWS + 10, COLS)
        self.assertTrue(harness.wait_until(
            lambda: harness.stored_shape_unlocked(self.h5, 'grow') == want_shape,
            timeout=5.0, step=0.25),
            'the file on disk has shape %r, not %r, 5 s after the write with flush_interval=1'
            % (harness.stored_shape_unlocked(self.h5, 'grow'), want_shape))
        # What was written back is a consistent file holding the rows.
        with h5py.File(self.h5, 'r', locking=False) as f:
            np.testing.assert_array_equal(f['grow'][GROW_ROWS:], ten)
        self.unmount(m)
        self.assertStored('grow', cat(ORIG['grow'], ten))

    def test_reaching_dirty_limit_writes_back_without_fsync_or_close(self):
        m = self.mount(['-o', 'dirty_limit=1M,flush_interval=0'])
        fd = self.open_fd(m.p('grow'), os.O_WRONLY | os.O_APPEND)
        n = 4 * MiB // ROWB
        more = rows(n, seed=66)
        self.write_all(fd, more.tobytes())
        at_least = GROW_ROWS + (4 * MiB - 2 * MiB) // ROWB

        def on_disk():
            s = harness.stored_shape_unlocked(self.h5, 'grow')
            return s[0] if s else 0
        self.assertTrue(harness.wait_until(lambda: on_disk() >= at_least),
                        'after 4 MiB of rows with dirty_limit=1M the file on disk has %d rows, '
                        'expected at least %d' % (on_disk(), at_least))
        self.unmount(m)
        self.assertStored('grow', cat(ORIG['grow'], more))

    def test_hdf5_file_is_locked_while_mounted_read_write(self):
        m = self.mount()
        env = {k: v for k, v in os.environ.items() if k != 'HDF5_USE_FILE_LOCKING'}
        probe = ('import sys, h5py\n'
                 'try:\n'
                 '    h5py.File(sys.argv[1], "r").close()\n'
                 'except OSError as e:\n'
                 '    print(e)\n'
                 '    sys.exit(3)\n')
        r = subprocess.run(['/usr/bin/python3', '-c', probe, self.h5], capture_output=True,
                           text=True, env=env, timeout=60)
        self.assertEqual(r.returncode, 3, 'h5py.File(FILE, "r") while mounted read-write did not '
                         'raise OSError: status %d, %s' % (r.returncode, r.stderr[-2000:]))
        self.assertIn('lock', r.stdout.lower())
        self.unmount(m)
        r = subprocess.run(['/usr/bin/python3', '-c', probe, self.h5], capture_output=True,
                           text=True, env=env, timeout=60)
        self.assertEqual(r.returncode, 0, 'h5py cannot open the file after unmount: ' + r.stderr)

    def test_disk_full_during_write_back_reports_enospc_and_keeps_fsynced_rows(self):
        try:
            t = harness.Tmpfs('8m').start()
        except OSError as e:
            self.skipTest(str(e))
        self.addCleanup(t.cleanup)
        h5 = os.path.join(t.path, 'full.h5')
        shutil.copyfile(self.h5, h5)
        m = self.mount(['-o', 'dirty_limit=1M,flush_interval=0'], h5=h5)
        x = m.p('grow')
        fd = self.open_fd(x, os.O_WRONLY | os.O_APPEND)
        synced = rows(50, seed=67)
        self.write_all(fd, synced.tobytes())
        os.fsync(fd)
        kept = cat(ORIG['grow'], synced)
        block = rows(131, seed=68).tobytes()            # 1048000 bytes
        failure = None
        op = None
        try:
            for i in range(40):                         # 40 MB into 8 MB
                op = 'write of block %d' % i
                self.write_all(fd, block)
                if i % 4 == 3:
                    op = 'fsync after block %d' % i
                    os.fsync(fd)
        except OSError as e:
            failure = (op, e)
        if failure is None:
            try:
                self.close_fd(fd)
            except OSError as e:
                failure = ('close', e)
        self.assertIsNotNone(failure, 'no error after writing 40 MB to a file on an 8 MB tmpfs')
        self.assertEqual(failure[1].errno, errno.ENOSPC, '%s failed with %s, expected ENOSPC'
                         % (failure[0], failure[1]))
        # The daemon keeps serving reads.
        self.assertTrue(m.alive(), 'h5mount died after ENOSPC:\n' + m.stderr_text()[-3000:])
        harness.assert_bytes_equal(pread_path(x, kept.nbytes, 0), kept.tobytes(),
                                   'fsynced rows read through the mount after ENOSPC')
        self._close_fds()
        problem = m.cleanup()
        self.assertFalse(problem and 'did not exit' in problem, problem)
        shape, dt, raw = harness.stored_dataset(h5, 'grow')
        self.assertGreaterEqual(shape[0], kept.shape[0], 'rows in the file after ENOSPC')
        harness.assert_bytes_equal(raw[:kept.nbytes], kept.tobytes(),
                                   'fsynced rows in the file after ENOSPC')

    def test_streaming_ten_times_dirty_limit_keeps_the_daemons_peak_memory_bounded(self):
        if os.environ.get('ASAN_OPTIONS'):
            self.skipTest('AddressSanitizer inflates resident memory; the bound is checked in the plain run')
        m = self.mount(['-o', 'dirty_limit=16M,cache_size=16M'])
        fd = self.open_fd(m.p('grow'), os.O_WRONLY | os.O_APPEND)
        total = 21000                                    # 168 MB of rows, 1 MiB writes
        buf = bytearray()
        for start in range(0, total, 1024):
            buf += pattern_rows(start, min(1024, total - start)).tobytes()
            cut = len(buf) - len(buf) % MiB
            self.write_all(fd, bytes(buf[:cut]))
            del buf[:cut]
        self.write_all(fd, bytes(buf))
        os.fsync(fd)
        self.close_fd(fd)
        hwm = harness.vm_hwm(m.proc.pid)
        bound = (16 + 16 + 64) * MiB
        print(' [VmHWM %.0f MiB] ' % (hwm / MiB), end='', flush=True)
        self.assertLess(hwm, bound, 'daemon VmHWM %.1f MiB after streaming 168 MB, bound %d MiB'
                        % (hwm / MiB, bound // MiB))
        self.unmount(m)
        with h5py.File(self.h5, 'r') as f:
            ds = f['grow']
            self.assertEqual(ds.shape, (GROW_ROWS + total, COLS))
            for i in (0, 1, 1023, 1024, 7777, total // 2, total - 2, total - 1):
                np.testing.assert_array_equal(ds[GROW_ROWS + i], pattern_rows(i, 1)[0],
                                              'streamed row %d' % i)
            np.testing.assert_array_equal(ds[:GROW_ROWS], ORIG['grow'])


# ====================================================================== PyTables end to end

class PyTablesEndToEnd(WriteCase):
    fixture = 'earrays'
    APPEND = 2000
    NATIVE = 50

    def append_through_mount_then_natively(self, node, complib):
        with tables.open_file(FIX['earrays'], 'r') as pt:
            base = pt.get_node('/' + node).read()
        m = self.mount()
        new = fixtures.signal_block(len(base), self.APPEND, COLS, seed=8)
        fd = self.open_fd(m.p(node), os.O_WRONLY | os.O_APPEND)
        self.write_all(fd, new.tobytes(), MiB)           # 1 MiB writes: rows split across them
        self.close_fd(fd)
        want = cat(base, new)
        self.assertViews(m, node, want)
        self.unmount(m)
        with tables.open_file(self.h5, 'r') as pt:
            ea = pt.get_node('/' + node)
            self.assertEqual(ea.nrows, len(want))
            self.assertEqual(ea.shape, want.shape)
            self.assertEqual(ea.attrs.CLASS, 'EARRAY')
            self.assertEqual(ea.attrs.EXTDIM, 0)
            self.assertEqual(ea.filters.complib, complib)
            for i, row in enumerate(ea.iterrows()):
                if row.tobytes() != want[i].tobytes():
                    self.fail('%s row %d read by PyTables differs from the bytes appended'
                              % (node, i))
            chunk_rows = ea.chunkshape[0]
            chunk_bytes = int(np.prod(ea.chunkshape)) * ea.atom.itemsize
        with h5py.File(self.h5, 'r') as f:
            dsid = f[node].id
            infos = [dsid.get_chunk_info(i) for i in range(dsid.get_num_chunks())]
        self.assertEqual(len(infos), -(-len(want) // chunk_rows))
        for info in infos:
            # Written whole, with the filter applied (mask 0): Blosc frames are smaller.
            self.assertEqual(info.filter_mask, 0, 'chunk at %r' % (info.chunk_offset,))
            if complib:
                self.assertLess(info.size, chunk_bytes, 'chunk at %r' % (info.chunk_offset,))
            else:
                self.assertEqual(info.size, chunk_bytes, 'chunk at %r' % (info.chunk_offset,))
        native = fixtures.signal_block(len(want), self.NATIVE, COLS, seed=9)
        with tables.open_file(self.h5, 'a') as pt:
            pt.get_node('/' + node).append(native)
        with tables.open_file(self.h5, 'r') as pt:
            ea = pt.get_node('/' + node)
            self.assertEqual(ea.nrows, len(want) + self.NATIVE)
            self.assertEqual(ea.attrs.CLASS, 'EARRAY')
            np.testing.assert_array_equal(ea.read(), cat(want, native))

    def test_plain_earray_appended_through_the_mount_reads_back_in_pytables_and_grows(self):
        self.append_through_mount_then_natively('plain', None)

    def test_blosc_earray_appended_through_the_mount_reads_back_in_pytables_and_grows(self):
        self.append_through_mount_then_natively('blosc5', 'blosc')


if __name__ == '__main__':
    harness.run_tests()
