/* unmount.h: `h5mount -u MOUNTPOINT`: unmounts and waits until the daemon has written back,
 * fsync'ed, closed and unlocked the HDF5 file (runstate.h says how it learns that). */
#ifndef H5MOUNT_UNMOUNT_H
#define H5MOUNT_UNMOUNT_H

/* Unmounts `mountpoint` with fusermount3 -u and waits for its daemon to finish. Prints
 * progress on stderr when it is a terminal and the wait is longer than a second, and one
 * "h5mount: ..." line on failure. Returns the exit status: 0 when the daemon wrote everything
 * back and exited cleanly; 1 when `mountpoint` is not an h5mount mount (nothing is done), the
 * unmount was refused (busy), the final write-back or commit failed, or the daemon died. */
int h5m_unmount(const char *mountpoint);

#endif
