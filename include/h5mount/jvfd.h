/* jvfd.h: "h5m-journal", an HDF5 virtual file driver that makes every HDF5 flush atomic.
 *
 * Between commits, every write HDF5 makes (raw data and metadata) is held in memory; reads see
 * the held bytes over the file's. A commit (the driver's flush callback, i.e. H5Fflush) first
 * writes all held bytes and the new end of file to a journal file next to the HDF5 file
 * (FILE + ".h5mount-journal") ending with a checksummed trailer, then writes them into the HDF5
 * file, then empties the journal. A process killed at any moment therefore leaves either the
 * previous commit (journal incomplete: ignored) or a complete journal that the next open
 * replays, if the journal names the file in the state it left (h5m_jvfd_recover). A read-only
 * open through the driver shows such a journal's state from memory without replaying it. With durable commits, the journal and the file are fsync'ed at each step, which also
 * covers power loss. The driver knows nothing of datasets or FUSE. */
#ifndef H5MOUNT_JVFD_H
#define H5MOUNT_JVFD_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>

/* The journal's file name suffix, appended to the HDF5 file's path. */
#define H5M_JVFD_SUFFIX ".h5mount-journal"

/* Registers the driver (once; later calls return the same id). Returns the driver id or
 * H5I_INVALID_HID. Call under the caller's HDF5 lock. */
hid_t h5m_jvfd_register(void);

/* Makes `fapl` use the driver. Returns 0 or -EIO. */
int h5m_jvfd_set_fapl(hid_t fapl);

/* Before opening `path` for writing: replays a complete journal left by a crash into the file
 * (and fsyncs it), or deletes an incomplete one. A complete journal is replayed only if it
 * belongs to the file as it is (same st_dev/st_ino, and the superblock region as before or as
 * after that commit); otherwise, and for a version-1 journal (which names no file), returns
 * -ESTALE with a one-line refusal in err[cap] and touches neither the file nor the journal.
 * Returns 1 if a journal was replayed, 0 if there was none or it was incomplete (deleted), or
 * -errno (EACCES, ENOSPC, EIO, EBUSY, EPROTO for an unknown version...) with a one-line reason
 * in err[cap]. Must not be called while the file is open. */
int h5m_jvfd_recover(const char *path, char *err, size_t cap);

/* Before a read-only open of `path`: what a journal left by a crash means for it, changing no
 * file. Returns 1 if it is complete and belongs to the file (open the file with the driver,
 * H5F_ACC_RDONLY: it then reads in the state a replay gives it, from memory), 0 if there is
 * none or it is empty or incomplete (the file is in its last committed state), or -ESTALE with
 * the same one-line refusal as h5m_jvfd_recover, or -errno / -EPROTO with a one-line reason. */
int h5m_jvfd_inspect(const char *path, char *err, size_t cap);

/* For an open file `fid` using the driver: whether the next commits fsync the journal and the
 * file (durable, for fsync(2) and unmount) or only order the writes (enough for kill -9).
 * Returns 0 or -EINVAL if fid does not use the driver. */
int h5m_jvfd_set_durable(hid_t fid, bool durable);

/* The errno of the most recent failed write, commit or truncate of `fid` (e.g. ENOSPC), and
 * clears it; 0 if none. After a failed commit the held bytes stay in memory and the files stay
 * in their previous committed state; the next commit retries. */
int h5m_jvfd_take_error(hid_t fid);

/* Bytes currently held in memory (not yet committed) for `fid`; 0 when fid does not use the driver. */
size_t h5m_jvfd_held_bytes(hid_t fid);

/* Fault injection for tests: when set, the next commit of any file ends the process with
 * _exit(86) right after its journal is complete and before the HDF5 file is touched, exactly
 * like a daemon killed at that moment. */
void h5m_jvfd_crash_after_journal(bool on);

/* Fault injection for tests: when n > 0, the process ends with _exit(86) right after the nth
 * next write into an HDF5 file by a commit or a replay (an extent, or the superblock region
 * written last), like a daemon killed in the middle of applying a journal. 0 turns it off. */
void h5m_jvfd_crash_after_file_writes(unsigned n);

#endif
