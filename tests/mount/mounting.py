"""Runs one h5mount daemon for one mount: start, wait for the mount, unmount, daemon stats.

What it does: `Daemon` starts a given h5mount command line in the background (its stdout and
stderr to a log file, SIGTERM when the parent dies), polls for the mount with a deadline (failing
early when the daemon exits), unmounts with `fusermount3 -u` (then `-uz`) and waits for the
daemon, and reads its /proc counters and memory; `cleanup_all()` (also run at exit) unmounts
whatever is still mounted. Shared by the mount tests (harness.py) and the benchmark
(contrib/bench/bench.py, which puts this directory on sys.path).
What it does not: build command lines, choose where logs go or decide what a failure means to its
caller (subclasses do); it imports only the standard library, so either user can load it.
"""

import atexit
import collections
import ctypes
import os
import re
import signal
import subprocess
import tempfile
import time

MOUNT_TIMEOUT = 10.0      # seconds to wait for a mount to appear (and, by default, for an exit)
POLL = 0.1                # poll interval, as STYLE.md asks

# Started and not yet cleaned up: anything with a cleanup() that must not raise (Daemons, and
# the test harness's tmpfs mounts). cleanup_all() empties it at exit.
ACTIVE = []


# ------------------------------------------------------------------ mount table

def unescape_mountinfo(field):
    """A path field of /proc/self/mountinfo with its octal escapes (\\040 ...) decoded."""
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), field)


def is_mounted(path):
    """True if path is a mount point per /proc/self/mountinfo. Unlike os.path.ismount it
    also sees a FUSE mount whose daemon died (stat gives ENOTCONN there)."""
    path = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))),
                        os.path.basename(path.rstrip('/')))
    with open('/proc/self/mountinfo', encoding='utf-8', errors='surrogateescape') as fp:
        return any(unescape_mountinfo(line.split()[4]) == path for line in fp)


def daemons_serving(mountpoints):
    """Pids of h5mount processes whose command line names one of `mountpoints` (paths as
    given on that command line)."""
    pids = []
    want = {m.encode() for m in mountpoints}
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as fp:
                argv = fp.read().split(b'\0')
        except OSError:
            continue
        if argv and argv[0].endswith(b'h5mount') and want & set(argv):
            pids.append(int(pid))
    return pids


def fusermount_unmount(mnt):
    """Unmounts mnt with `fusermount3 -u`, falling back to a lazy `-uz` while it is still
    mounted. Returns (first, last): the (returncode, stderr) of the `-u` and of the last
    attempt (the same pair when no fallback was needed)."""
    r = subprocess.run(['fusermount3', '-u', mnt], capture_output=True, text=True)
    first = last = (r.returncode, r.stderr)
    if r.returncode != 0 and is_mounted(mnt):
        r = subprocess.run(['fusermount3', '-uz', mnt], capture_output=True, text=True)
        last = (r.returncode, r.stderr)
    return first, last


def die_with_parent():
    """preexec_fn for a daemon: ask for SIGTERM if the parent dies without cleaning up (killed,
    say, by SIGBUS on a failing mmap read), so the daemon writes back, unmounts and exits
    instead of leaving a dead mount."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)   # PR_SET_PDEATHSIG


# ------------------------------------------------------------------ /proc statistics

PROC_COUNTERS = ('cpu', 'minflt', 'rchar', 'wchar')
Counters = collections.namedtuple('Counters', PROC_COUNTERS)


def proc_counters(pid):
    """Counters of process pid so far: CPU seconds (user + system), minor page faults, and
    bytes passed to read-like and write-like system calls (rchar and wchar of /proc/pid/io).
    Zeros once the process is gone."""
    try:
        with open('/proc/%d/stat' % pid) as fp:
            fields = fp.read().rsplit(')', 1)[1].split()
        with open('/proc/%d/io' % pid) as fp:
            io = dict(line.split(': ') for line in fp.read().splitlines())
    except OSError:
        return Counters(0.0, 0, 0, 0)
    return Counters((int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK'),
                    int(fields[7]), int(io['rchar']), int(io['wchar']))


def proc_memory(pid):
    """The memory lines of /proc/pid/status (VmHWM, VmRSS, RssAnon, RssFile, ...) in bytes,
    plus Threads. Raises OSError when the process is gone or has no VmHWM line."""
    out = {}
    with open('/proc/%d/status' % pid) as fp:
        for line in fp:
            key, _, value = line.partition(':')
            if key.startswith(('Vm', 'Rss')) and value.strip().endswith('kB'):
                out[key] = int(value.split()[0]) * 1024
            elif key == 'Threads':
                out[key] = int(value)
    if 'VmHWM' not in out:
        raise OSError('no VmHWM in /proc/%d/status' % pid)
    return out


def vm_hwm(pid):
    """Peak resident set size (VmHWM) of process pid, in bytes; raises OSError when it is gone."""
    return proc_memory(pid)['VmHWM']


# ------------------------------------------------------------------ one daemon

class DaemonError(AssertionError):
    """The daemon did not mount, died, or did not unmount and exit cleanly."""


class Daemon:
    """One h5mount process serving a mount at `path`.

    Subclasses give `argv` (a list) and may change the class attributes below. start() raises
    `error` with the daemon's log when it exits before mounting or the mount does not appear
    within MOUNT_TIMEOUT s (cleaning up first); unmount() returns what went wrong while
    stopping it. Not thread-safe; every method may be called after a failed start()."""

    error = DaemonError          # exception class start() raises
    exit_timeout = MOUNT_TIMEOUT  # seconds the daemon gets to exit after the unmount
    busy_is_problem = False      # report a failed `-u` even when the lazy `-uz` worked
    pdeathsig = True             # SIGTERM the daemon when this process dies
    check_status = True          # a non-zero exit status after the unmount is a problem

    def __init__(self, path, logpath=None):
        self.path = path
        self.logpath = logpath   # None: a new temporary file next to the mount point
        self.proc = None
        self.returncode = None
        self.unmount_seconds = None   # unmount + daemon exit, set by unmount()
        self._mounted = False
        self._stopped = False

    argv = None                  # the command line, set by subclasses

    @property
    def pid(self):
        return self.proc.pid

    def mounted(self):
        """Readiness test polled by start(); subclasses may ask for more than the mount table."""
        return is_mounted(self.path)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        """Everything the daemon wrote to stdout and stderr so far ('' before start)."""
        if self.logpath is None:
            return ''
        try:
            with open(self.logpath, 'rb') as fp:
                return fp.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def failure_log(self):
        """The log text quoted in start()'s and unmount()'s errors (subclasses may trim it)."""
        return self.log_text()

    def start(self):
        """Starts the daemon and waits for the mount; returns self."""
        argv = list(self.argv)
        if self.logpath is None:
            fd, self.logpath = tempfile.mkstemp(prefix='h5mount-stderr-',
                                                dir=os.path.dirname(self.path.rstrip('/')))
            os.close(fd)
        with open(self.logpath, 'wb') as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=die_with_parent if self.pdeathsig else None)
        ACTIVE.append(self)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while True:
            if self.mounted():
                self._mounted = True
                return self
            rc = self.proc.poll()
            if rc is not None:
                self.cleanup()
                raise self.error('%s exited with status %d before mounting:\n%s'
                                 % (' '.join(argv), rc, self.failure_log()))
            if time.monotonic() > deadline:
                self.cleanup()
                raise self.error('%s did not appear as a mount within %.0f s; log:\n%s'
                                 % (self.path, MOUNT_TIMEOUT, self.failure_log()))
            time.sleep(POLL)

    def forget_mount(self):
        """The caller unmounted (`h5mount -u`): unmount() then only waits for the daemon, and
        a daemon that has exited already is no problem."""
        self._mounted = False

    def unmount(self):
        """Unmounts (fusermount3 -u, then -uz), waits up to exit_timeout s for the daemon
        (killing it after that) and returns the problems found as a list of strings ([] when
        all went well). Only the first call does anything; later ones return []."""
        if self.proc is None or self._stopped:
            return []
        self._stopped = True
        problems = []
        if self._mounted and self.proc.poll() is not None:
            problems.append('h5mount died (status %d) while mounted' % self.proc.returncode)
        t0 = time.perf_counter()
        if is_mounted(self.path):
            (rc, err), (last_rc, last_err) = fusermount_unmount(self.path)
            if rc != 0 and self.busy_is_problem:
                problems.append('fusermount3 -u failed: ' + err.strip())
            elif last_rc != 0:
                problems.append('fusermount3 -u failed: ' + last_err.strip())
        try:
            self.returncode = self.proc.wait(timeout=self.exit_timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait()
            problems.append('h5mount did not exit within %.0f s of the unmount; killed'
                            % self.exit_timeout)
        self.unmount_seconds = time.perf_counter() - t0
        if not problems and self.returncode != 0 and self.check_status:
            problems.append('h5mount exited with status %d after the unmount' % self.returncode)
        if self in ACTIVE:
            ACTIVE.remove(self)
        return problems

    def cleanup(self):
        """unmount() for callers that only report: the problems joined by '; ', or None.
        Never raises; safe to call more than once."""
        return '; '.join(self.unmount()) or None

    # /proc statistics of the running daemon
    def counters(self):
        """proc_counters() of the daemon (zeros once it is gone)."""
        return proc_counters(self.pid)

    def memory(self):
        """proc_memory() of the daemon; raises OSError when it is gone."""
        return proc_memory(self.pid)


def cleanup_all():
    """Cleans up everything still in ACTIVE (registered to run at exit)."""
    for m in list(ACTIVE):
        m.cleanup()


atexit.register(cleanup_all)
