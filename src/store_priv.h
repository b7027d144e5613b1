/* store_priv.h: what the HDF5 layer's files (store.c, chunkio.c, vlen.c, create.c) share and nothing
 * else may use: the HDF5 lock, the store's file facts, read and write failure logging.
 *
 * Private header (under src/, not include/h5mount/): the views, fs.c and the tests never see it.
 * struct h5m_store stays opaque even here: chunkio.c and vlen.c need four facts of the file,
 * fixed at open, which h5m_store_file() copies out, and nothing of the node table, address map
 * or first paths, which store.c alone owns. */
#ifndef H5MOUNT_STORE_PRIV_H
#define H5MOUNT_STORE_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <hdf5.h>

#include "h5mount/remote.h"
#include "h5mount/store.h"

/* The HDF5 lock: one process-wide mutex (defined in store.c) around every sequence of HDF5
 * calls (open + describe, select + read, set extent, write chunk, flush) and the store state
 * tagged "HDF5 lock". HDF5 1.10.8 has a global lock of its own, so holding ours costs no
 * parallelism; what must run in parallel (Blosc encode and decode, pread of raw data) runs
 * outside it. Taken after a dataset's wlock or a read of it, never with its meta (the order
 * in lock.h); never held across a call out of the HDF5 layer. h5m_hdf5_lock() also turns HDF5's automatic error printing
 * off for the calling thread, once. Not recursive. */
void h5m_hdf5_lock(void);
void h5m_hdf5_unlock(void);

/* Copies the innermost description of the thread's HDF5 error stack into buf ("unknown HDF5
 * error" when it is empty) and clears the stack. Caller holds the HDF5 lock. */
void h5m_hdf5_error(char *buf, size_t cap);

/* The file facts of a store that the data path needs. All are fixed at open, so they are read
 * without a lock. */
struct h5m_store_file {
	hid_t fid;      /* the HDF5 file: for HDF5 calls under the HDF5 lock only */
	int fd;         /* a plain read-only descriptor of the same file, for pread outside the lock;
	                 * -1 for a remote file */
	struct h5m_remote *remote; /* a remote file's fetcher (bytes outside the lock), or NULL */
	uint64_t size;  /* the file's size at open */
	uint64_t base;  /* file offset of HDF5 address 0, the user block's size: chunk addresses
	                 * (H5Dget_chunk_info) are relative to it */
	bool rw;        /* opened for writing (through the journal driver) */
};

/* Copies the file facts of s into *f. Takes no lock; never fails. */
void h5m_store_file(const struct h5m_store *s, struct h5m_store_file *f);

/* Logs a read failure of ds once per dataset: names a missing filter when that is the cause,
 * else says `why`, or, when why is NULL, the innermost description on the thread's HDF5 error
 * stack. Clears that stack either way. Caller holds the HDF5 lock (ds->read_error_logged). */
void h5m_store_read_failed(struct h5m_dataset *ds, const char *why);

/* Logs the failure of write step `what` on ds (NULL: the file as a whole) with the journal
 * driver's errno or HDF5's reason, and clears HDF5's error stack. Returns -ENOSPC when the file
 * system was full (ENOSPC, EDQUOT), else -EIO. Caller holds the HDF5 lock. Defined in store.c. */
int h5m_store_write_failure(struct h5m_store *s, struct h5m_dataset *ds, const char *what);

/* Reads (write: writes) the hyperslab start/count of ds, as memory type mt, from (into) buf,
 * which holds exactly that slab in C order; rank 0 means the whole (scalar) dataset; xfer is
 * the transfer list (H5P_DEFAULT or vlen's budgeted one). Returns 0 or -EIO, HDF5's error stack
 * left for the caller. Caller holds the HDF5 lock. Defined in chunkio.c. */
int h5m_chunkio_slab_io(const struct h5m_dataset *ds, hid_t mt, unsigned rank, const uint64_t *start,
                        const uint64_t *count, void *buf, bool write, hid_t xfer);

/* Reads len bytes of ds's data at file offset `at` (user block included) from the store's
 * plain descriptor, retrying short reads. Returns 0, or -EIO after a log line naming `what`.
 * No lock. Defined in chunkio.c. */
int h5m_chunkio_pread_file(struct h5m_store *s, struct h5m_dataset *ds, void *buf, size_t len, uint64_t at,
                           const char *what);

/* Computes ds->offsets of a vlen dataset if not yet done (descriptors checked against the
 * global heap first where they can be read raw). Returns 0, -EIO (logged) or -ENOMEM. Caller
 * holds the HDF5 lock. Defined in vlen.c. */
int h5m_vlen_offsets_locked(struct h5m_store *s, struct h5m_dataset *ds);

#endif
