"""A refused write says why in the daemon's log, once: one line with the dataset's path, the
errno and the rule it broke, for a truncate to part of a row, .shape text of the wrong rank or
not parsing, a .npy header of another dtype, a grow beyond the maximum shape, a write to a
variable-length dataset or to .offsets; repeating the same refusal in a loop adds no line.
Usage:

    /usr/bin/python3 tests/mount/test_refused.py build/h5mount [TestClass[.test_name] ...]
"""

import errno
import io
import os
import re
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h5py                 # noqa: E402
import numpy as np          # noqa: E402

import harness              # noqa: E402
from harness import Mount, errno_of   # noqa: E402


def make_file(path):
    with h5py.File(path, 'w') as f:
        f.create_dataset('x', data=np.zeros((10, 1000)), maxshape=(None, 1000), chunks=(16, 1000))
        f.create_dataset('small', data=np.zeros((5, 4)), maxshape=(20, 4), chunks=(5, 4))
        v = f.create_dataset('ragged', (2,), dtype=h5py.vlen_dtype(np.dtype('<f8')))
        v[0] = np.arange(3.0)
        v[1] = np.arange(2.0)
    return path


def write_text(path, text):
    with open(path, 'w') as fp:
        fp.write(text)


def write_bytes(path, data, mode='wb'):
    with open(path, mode) as fp:
        fp.write(data)


class RefusedWritesAreLogged(unittest.TestCase):

    def setUp(self):
        self.h5 = make_file(os.path.join(harness.workdir(), 'refused-%s.h5' % self._testMethodName))
        self.m = Mount(self.h5).start()
        self.addCleanup(self.unmount)

    def unmount(self):
        problem = self.m.cleanup()
        self.assertIsNone(problem, self.m.stderr_text())

    def lines(self, pattern):
        """The daemon's log lines matching pattern (a regex)."""
        return [ln for ln in self.m.stderr_text().splitlines() if re.search(pattern, ln)]

    def assert_logged_once(self, pattern):
        self.assertEqual(len(self.lines(pattern)), 1,
                         'want one line matching %r in:\n%s' % (pattern, self.m.stderr_text()))

    def test_truncate_to_part_of_a_row_is_logged_once_with_path_and_rule(self):
        for _ in range(5):
            self.assertEqual(errno_of(os.truncate, self.m.p('x'), 123), errno.EINVAL)
        self.assert_logged_once(re.escape(
            'h5mount: warning: /x: refused (EINVAL): truncating its data to 123 bytes, 0 rows and '
            '123 bytes of a row: a size must be whole rows of 8000 bytes'))
        self.assertEqual(os.path.getsize(self.m.p('x')), 80000)

    def test_shape_text_of_the_wrong_rank_is_logged_once(self):
        for _ in range(5):
            self.assertEqual(errno_of(write_text, self.m.p('x.shape'), '1 2 3\n'), errno.EINVAL)
        self.assert_logged_once(re.escape(
            '/x: refused (EINVAL): .shape text of 3 dimensions for a dataset of 2'))
        with open(self.m.p('x.shape')) as fp:
            self.assertEqual(fp.read(), '10 1000\n')

    def test_shape_text_that_does_not_parse_is_logged_with_the_text(self):
        self.assertEqual(errno_of(write_text, self.m.p('x.shape'), 'ten rows\n'), errno.EINVAL)
        self.assert_logged_once(re.escape(
            "/x: refused (EINVAL): .shape text 'ten rows' does not parse"))

    def test_a_npy_header_of_another_dtype_is_logged_with_both_dtypes(self):
        buf = io.BytesIO()
        np.save(buf, np.zeros((3, 1000), dtype='<i4'))
        for _ in range(3):
            # Without O_TRUNC (which replaces the dataset: ns-model rule 5).
            self.assertEqual(errno_of(write_bytes, self.m.p('x.npy'), buf.getvalue(), 'r+b'), errno.EINVAL)
        self.assert_logged_once(re.escape(
            "/x: refused (EINVAL): a .npy header of dtype '<i4'; the dataset's is '<f8'"))

    def test_an_append_beyond_the_maximum_shape_is_logged(self):
        self.assertEqual(errno_of(write_bytes, self.m.p('small'), np.ones((16, 4)).tobytes(), 'ab'),
                         errno.EFBIG)
        self.assert_logged_once(re.escape(
            '/small: refused (EFBIG): growing to 21 rows: its maximum shape allows 20'))

    def test_shape_text_beyond_the_maximum_shape_is_logged_and_counts_as_the_same_rule(self):
        self.assertEqual(errno_of(write_text, self.m.p('small.shape'), '21 4\n'), errno.EINVAL)
        self.assert_logged_once(re.escape(
            '/small: refused (EINVAL): 21 rows: its maximum shape allows 20'))
        # The same rule for the same dataset within a minute: not logged again.
        self.assertEqual(errno_of(write_bytes, self.m.p('small'), np.ones((16, 4)).tobytes(), 'ab'),
                         errno.EFBIG)
        self.assertEqual(self.lines('growing to'), [])

    def test_writes_to_a_variable_length_dataset_and_its_offsets_are_logged(self):
        self.assertEqual(errno_of(write_bytes, self.m.p('ragged'), b'x', 'ab'), errno.EACCES)
        self.assertEqual(errno_of(write_bytes, self.m.p('ragged.offsets'), b'\0' * 8, 'ab'),
                         errno.EACCES)
        self.assert_logged_once(re.escape(
            '/ragged: refused (EACCES): a variable-length dataset takes no writes'))
        self.assert_logged_once(re.escape(
            '/ragged: refused (EACCES): its .offsets view is derived from the data and takes no '
            'writes'))

    def test_accepted_writes_log_no_refusal(self):
        write_text(self.m.p('x.shape'), '12 1000\n')
        os.truncate(self.m.p('x'), 8000 * 11)
        self.assertEqual(self.lines('refused'), [])


if __name__ == '__main__':
    harness.run_tests()
