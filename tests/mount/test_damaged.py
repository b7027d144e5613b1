"""Damaged files never crash, hang or balloon the daemon. Usage:

    /usr/bin/python3 tests/mount/test_damaged.py build/h5mount [TestClass[.test_name] ...]

A corpus of mutated copies of small real files (damaged_corpus.py, fixed seed: byte flips,
random runs, truncations, copied blocks, odd integers, damaged global heaps and vlen
descriptors) is mounted variant by variant with `h5mount -f`. Each variant must either be
refused (non-zero status, exactly one stderr line `h5mount: ...`, within a deadline) or
mount; a mounted one is walked (recursive listdir, lstat, listxattr and getxattr of every
entry, every file read up to READ_CAP bytes, readlink), which must finish within a
deadline without ENOTCONN (the daemon alive) and with its peak RSS under a bound, and after
`fusermount3 -u` the daemon must exit with status 0, or a non-zero status and a log line -
never by a signal, never with a sanitizer report. What it does not cover: data errors are
allowed (EIO on a read is a fine answer to a damaged chunk), and the bytes read are not
compared with anything - the other mount tests check contents. Under AddressSanitizer
(detected from the binary) the peak RSS bound is 3x larger, ASAN_COUNT variants are mounted,
and LeakSanitizer is told to ignore allocations made inside libhdf5: HDF5 1.10.8 itself leaks
the image of a metadata block whose checksum fails (424 bytes a time); leaks of h5mount's own
allocations are still reported.
"""

import errno
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import damaged_corpus       # noqa: E402
import harness              # noqa: E402

COUNT = 300                 # variants in a plain run
ASAN_COUNT = 300            # variants under AddressSanitizer (measured: 300 in ~20 s)
START_DEADLINE = 20.0       # s for a variant to mount or be refused
WALK_DEADLINE = 20.0        # s for the walk of one mounted variant
EXIT_DEADLINE = 10.0        # s for the daemon to exit after the unmount
READ_CAP = 4 << 20          # bytes read of each file at most
MAX_ENTRIES = 5000          # entries walked per mount at most
RSS_BOUND = 1 << 30         # peak RSS of a plain daemon (cache_size=16M); 3x under ASan
SANITIZER_MARKS = ('AddressSanitizer', 'LeakSanitizer', 'runtime error:', 'UndefinedBehaviorSanitizer')


def sanitized(exe):
    """Whether exe was built with AddressSanitizer (it then holds __asan_init)."""
    with open(exe, 'rb') as fp:
        return b'__asan_init' in fp.read()


def walk(root, stats):
    """Walks the mount: listdir, lstat, xattrs, reads, readlink. Records errnos in stats;
    returns 'ENOTCONN' as soon as the daemon is gone, else None."""
    todo = [root]
    seen = 0
    while todo:
        d = todo.pop()
        try:
            names = sorted(os.listdir(d))
        except OSError as e:
            if e.errno == errno.ENOTCONN:
                return 'ENOTCONN on listdir %s' % d
            stats['errors'] += 1
            continue
        for name in names:
            seen += 1
            if seen > MAX_ENTRIES:
                return None
            p = os.path.join(d, name)
            try:
                st = os.lstat(p)
                if os.path.islink(p):
                    os.readlink(p)
                else:
                    for x in os.listxattr(p, follow_symlinks=False):
                        try:
                            os.getxattr(p, x, follow_symlinks=False)
                        except OSError as e:
                            if e.errno == errno.ENOTCONN:
                                raise
                            stats['errors'] += 1
                if os.path.isdir(p) and not os.path.islink(p):
                    todo.append(p)
                elif st.st_mode & 0o170000 == 0o100000:
                    with open(p, 'rb', buffering=0) as fp:
                        got = 0
                        while got < READ_CAP:
                            try:
                                b = fp.read(min(1 << 20, READ_CAP - got))
                            except OSError as e:
                                if e.errno == errno.ENOTCONN:
                                    raise
                                stats['errors'] += 1
                                break
                            if not b:
                                break
                            got += len(b)
            except OSError as e:
                if e.errno == errno.ENOTCONN:
                    return 'ENOTCONN at %s' % p
                stats['errors'] += 1
    return None


def kill_quietly(proc):
    try:
        proc.kill()
    except OSError:
        pass


def lsan_env():
    """The environment for the daemon: LeakSanitizer ignores leaks from inside libhdf5."""
    supp = os.path.join(harness.workdir(), 'lsan-hdf5.supp')
    if not os.path.exists(supp):
        with open(supp, 'w') as fp:
            fp.write('leak:libhdf5_serial.so\nleak:libhdf5.so\n')
    env = dict(os.environ)
    env['LSAN_OPTIONS'] = (env.get('LSAN_OPTIONS', '') + ':print_suppressions=0:suppressions=' + supp).lstrip(':')
    return env


def run_variant(exe, path, mnt, rss_bound):
    """Mounts path at mnt and walks it. Returns ('refused', None), ('mounted', None) or
    ('failed', description)."""
    errf = tempfile.TemporaryFile()
    proc = subprocess.Popen([exe, '-f', '-o', 'ro,cache_size=16M', path, mnt], stdin=subprocess.DEVNULL,
                            stdout=errf, stderr=errf, preexec_fn=harness._term_when_parent_dies,
                            env=lsan_env())

    def err_text():
        errf.seek(0)
        return errf.read().decode('utf-8', 'replace')

    try:
        deadline = time.monotonic() + START_DEADLINE
        while not harness.is_mounted(mnt):
            rc = proc.poll()
            if rc is not None:
                text = err_text()
                lines = text.splitlines()
                if rc < 0:
                    return 'failed', 'killed by signal %d at start-up: %r' % (-rc, text[-2000:])
                if rc == 0:
                    return 'failed', 'exited 0 without mounting: %r' % text
                if len(lines) != 1 or not lines[0].startswith('h5mount: '):
                    return 'failed', 'refused with %d stderr lines, not one: %r' % (len(lines), text[-2000:])
                return 'refused', lines[0]
            if time.monotonic() > deadline:
                return 'failed', 'neither mounted nor refused within %.0f s' % START_DEADLINE
            time.sleep(0.02)
        stats = {'errors': 0}
        result = []
        t = threading.Thread(target=lambda: result.append(walk(mnt, stats)), daemon=True)
        t.start()
        t.join(WALK_DEADLINE)
        if t.is_alive():
            kill_quietly(proc)      # aborts the hung requests (ENOTCONN) so the thread ends
            t.join(5)
            return 'failed', 'the walk did not finish within %.0f s' % WALK_DEADLINE
        if result and result[0]:
            return 'failed', 'daemon died during the walk (%s); rc=%r stderr: %r' % (
                result[0], proc.poll(), err_text()[-2000:])
        try:
            rss = harness.vm_hwm(proc.pid)
        except (OSError, AssertionError):
            rss = 0
        if rss > rss_bound:
            return 'failed', 'daemon peak RSS %d MiB > %d MiB' % (rss >> 20, rss_bound >> 20)
        rc, err = harness.fusermount_unmount(mnt)
        try:
            rc = proc.wait(timeout=EXIT_DEADLINE)
        except subprocess.TimeoutExpired:
            return 'failed', 'daemon did not exit within %.0f s of the unmount' % EXIT_DEADLINE
        text = err_text()
        if rc < 0:
            return 'failed', 'daemon killed by signal %d at unmount: %r' % (-rc, text[-2000:])
        if rc != 0 and 'h5mount: error:' not in text:
            return 'failed', 'daemon exit status %d without a log line' % rc
        if any(m in text for m in SANITIZER_MARKS):
            return 'failed', 'sanitizer report: %r' % text[-3000:]
        return 'mounted', None
    finally:
        if proc.poll() is None and not harness.is_mounted(mnt):
            kill_quietly(proc)
        if harness.is_mounted(mnt):
            harness.fusermount_unmount(mnt)
        if proc.poll() is None:
            try:
                proc.wait(timeout=EXIT_DEADLINE)
            except subprocess.TimeoutExpired:
                kill_quietly(proc)
                proc.wait()
        errf.close()


class Corpus(unittest.TestCase):
    def test_every_damaged_variant_is_refused_in_one_line_or_served_without_dying(self):
        asan = sanitized(harness.EXE)
        count = int(os.environ.get('H5M_DAMAGED_COUNT', ASAN_COUNT if asan else COUNT))
        d = tempfile.mkdtemp(prefix='corpus-', dir=harness.workdir())
        mnt = harness.new_mountpoint()
        variants = damaged_corpus.make_corpus(d, count)
        t0 = time.monotonic()
        # The unmutated bases mount and walk cleanly: the walk itself is sound.
        for base in damaged_corpus.make_bases(tempfile.mkdtemp(prefix='bases-', dir=harness.workdir())):
            outcome, why = run_variant(harness.EXE, base, mnt, RSS_BOUND * (3 if asan else 1))
            self.assertEqual(outcome, 'mounted', '%s: %s' % (base, why))
        counts = {'refused': 0, 'mounted': 0, 'failed': 0}
        failures = []
        for path, desc in variants:
            outcome, why = run_variant(harness.EXE, path, mnt, RSS_BOUND * (3 if asan else 1))
            counts[outcome] += 1
            if outcome == 'failed':
                failures.append('%s (%s): %s' % (os.path.basename(path), desc, why))
        print('\n%d variants%s in %.1f s: %d refused, %d mounted and walked, %d failed'
              % (count, ' (ASan)' if asan else '', time.monotonic() - t0, counts['refused'],
                 counts['mounted'], counts['failed']), flush=True)
        for f in failures:
            print('  FAILED ' + f[:600], flush=True)
        self.assertEqual(failures, [], '%d of %d damaged variants failed' % (len(failures), count))


if __name__ == '__main__':
    harness.run_tests()
