/* runstate.h: a mount's status file in a per-user runtime directory, through which `h5mount -u`
 * learns when the daemon is done and how it ended. Plain files and flock; nothing of FUSE.
 *
 * Protocol. The daemon creates DIR/mount-MAJ:MIN (the mount's device number, as in
 * /proc/self/mountinfo) once it is mounted: it writes the file under another name, takes
 * flock(LOCK_EX) on it and renames it into place, so nobody ever opens the file unlocked while
 * the daemon lives. It holds the lock until it exits. The file holds "key value" lines:
 *
 *     h5mount 1            format
 *     pid 1234
 *     file /data/x.h5      the HDF5 file (real path)
 *     mountpoint /mnt/x    the mount point (real path)
 *     dirty 209715200      bytes left to write back when the final write-back began
 *     exit 0               last line, after the HDF5 file is written back, fsync'ed, closed
 *     exit 1 REASON        and unlocked; REASON says why the daemon failed
 *
 * At exit the daemon unlinks the file (if the name is still its own: a new mount of the same
 * device may have put its file there; both steps hold a flock on the directory), appends the
 * exit line and closes it (the lock goes). An
 * unmounter opens the file while the mount is still there, unmounts, then waits for a shared
 * lock: it reads the exit line from the inode it opened, so a new mount that gets the same
 * device number (a new file under the same name) never answers for the old one. No exit line
 * after the lock came means the daemon died (kill -9, a crash).
 *
 * Directories, tried in this order for user `uid` (the first usable one is the daemon's; an
 * unmounter tries all): uid 0: /run/h5mount, otherwise /run/user/UID/h5mount; then
 * $XDG_RUNTIME_DIR/h5mount (only for the process's own uid); then /tmp/h5mount-UID. A directory
 * is usable when it is a real directory owned by uid that only uid may write to. */
#ifndef H5MOUNT_RUNSTATE_H
#define H5MOUNT_RUNSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define H5M_RUNSTATE_DIRS 3

struct h5m_runstate;

/* Writes the candidate runtime directories of `uid` to dirs[] (each `cap` bytes), in the order
 * above; returns how many (at most H5M_RUNSTATE_DIRS). Creates none. */
int h5m_runstate_dirs(uid_t uid, char dirs[][256], size_t cap);

/* The runtime directory of the process's effective uid: the first usable candidate, created
 * (0700) if needed. Writes it to out[cap] and returns 0, or returns -EACCES with the reason in
 * out. Also the home of the log file of a daemon that has no syslog (main.c). */
int h5m_runstate_dir(char *out, size_t cap);

/* Daemon: creates and locks the status file of the mount `dev` ("major:minor") of `file` at
 * `mountpoint` (real paths) in the first usable directory of the process's effective uid,
 * creating that directory (0700) if needed. The file and its lock live until
 * h5m_runstate_finish. Its descriptor is close-on-exec, and inherited by fork (the lock
 * follows it). Returns 0 and *out (owned by the caller), or -errno with a reason in err[cap]. */
int h5m_runstate_create(const char *dev, const char *file, const char *mountpoint, struct h5m_runstate **out,
                        char *err, size_t cap);

/* Daemon: appends "key value" to the status file (e.g. the pid after daemonizing). Returns 0
 * or -errno; does nothing and returns 0 when rs is NULL. Not thread-safe: the main thread only. */
int h5m_runstate_note(struct h5m_runstate *rs, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Daemon, last thing before exiting: unlinks the status file, appends "exit STATUS[ REASON]",
 * closes it (which releases the lock) and frees rs. NULL rs: nothing. */
void h5m_runstate_finish(struct h5m_runstate *rs, int status, const char *reason);

/* Unmounter: opens the status file of mount `dev` of user `uid` whose mountpoint line is
 * `mountpoint`, read-only and close-on-exec. Returns the descriptor, or -ENOENT (none found:
 * not mounted by this h5mount, or its directory is not readable to us) or another -errno. */
int h5m_runstate_open(uid_t uid, const char *dev, const char *mountpoint);

/* Unmounter: reads the value of the last line with `key` of the status file `fd` into
 * out[cap] ("" for a key with no value). Returns 0, -ENOENT (no such line) or -errno. */
int h5m_runstate_get(int fd, const char *key, char *out, size_t cap);

#endif
