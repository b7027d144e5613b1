/* lock.h: the whole daemon's lock order (the LOCKING section below), and a mutex that knows its
 * owner in debug builds, so that functions whose comment says "caller holds X" can assert it.
 * It takes no lock itself.
 *
 * LOCKING. Every lock of the daemon, in the order they are taken: a thread holding one may take
 * only locks further down the list. Locks marked (leaf) are never held while taking another.
 *
 *  0. The kernel's page locks (not ours). A READ from an mmap fault or readahead, and a buffered
 *     WRITE, arrive holding page locks of their file until they are answered.
 *     fuse_lowlevel_notify_store / _inval_inode of a file take its page locks, so they wait for
 *     the READs and WRITEs in flight on it: fs.c never stores into or invalidates inline the
 *     file a request in flight is writing (notify(): inline_ok, the writers count), and moves
 *     the rest to the notifier thread.
 *  1. fs.c size locks (H5M_FS_STRIPES stripes, by node index): held across a store of changed
 *     bytes (which takes page locks of *other* files: 0 above it for those) and across a
 *     GETATTR/LOOKUP reply that carries a size. A WRITE takes one while holding its own file's
 *     page locks, so every taker waits at most 50 ms (pthread_mutex_timedlock in size_lock())
 *     and goes on without it: a cycle through the kernel's page locks can only delay.
 *  2. writeback.c flush_lock: one write-back of all datasets at a time. Taken with no dataset
 *     lock held (a writer's back-pressure flush runs after it released its wlock). The
 *     observer (fs.c h5m_fs_flushed) runs under it and queues invalidations (3), never inline
 *     and never under a size lock.
 *  3. fs.c handles_lock (leaf: the list of open files), times_lock (leaf: the times set
 *     through the mount) and the notifier's queue lock (leaf, with its cond; released around
 *     each invalidation the thread sends).
 *  4. A dataset's wlock (vdataset.h): one writer, truncate, reshape or write-back of it.
 *  5. A dataset's resize rwlock (vdataset.h): read-held by each read of the file, write-held by
 *     a reshape or truncate (inside wlock). Writer-preferring: no thread read-locks it twice
 *     (read-ahead's task only try-locks it; h5m_pool_for runs only its own batch's items on
 *     the caller, never a queued task).
 *  6. A dataset's meta (vdataset.h): its logical state; brief: under it no other lock is taken,
 *     and the only wait is a read's (holding 5) on the read-ahead registry's `loaded` cond
 *     (readahead.c), which gives meta up while it waits. The only call out of the views under
 *     it is h5m_store_fill (a plain copy).
 *  7. readahead.c readaheads lock (leaf): creates a dataset's read-ahead state; taken holding a
 *     read (5), never meta.
 * 7a. store.c's namespace lock (a writer-preferring rwlock, store.h "the namespace"): groups'
 *     entries, datasets' shown names, gone flags, group paths. Taken holding none of the
 *     locks above: read-held inside h5m_store_find / h5m_store_list_each (lookup, readdir;
 *     released before a reply takes a size lock), write-held by each namespace operation
 *     (mkdir, rmdir, unlink, symlink, rename, create, retype) across its HDF5 calls and
 *     durable commit. Under it only the HDF5 lock (8) is taken; no thread read-locks it twice.
 *     fs.c calls the views (h5m_view_forget, the copy of a retyped dataset's bytes) only
 *     after it is released.
 *     Retyping (a .npy header or shape text giving a dataset another type: h5m_store_retype)
 *     changes no struct h5m_dataset, which many paths read holding none of these locks: it
 *     makes a new node with a new dataset and moves the directory entries to it (namespace
 *     write + HDF5 lock); the old node turns gone with `successor` set (release), fs.c follows
 *     successors for every request by inode (acquire), and the old struct lives unchanged
 *     until the store closes. Only its HDF5 handle is closed (h5m_store_drop_replaced, HDF5
 *     lock) after fs.c copied what it keeps: a request still in flight on it gets -EIO.
 *  8. The HDF5 lock (store.c's h5m_hdf5_mutex, taken through h5m_hdf5_lock() of store_priv.h by
 *     store.c, chunkio.c and vlen.c): every HDF5 call. Never held with meta. Inside it:
 *     HDF5's own global lock (its thread-safe build) and everything HDF5 calls back: jvfd.c
 *     (the journaling driver, no pthread lock of its own: it relies on these two and flock(2)
 *     on the file) and the filters.
 *  9. The block cache's lock (cache.c, leaf): taken with a read (5), a wlock (4) or none of
 *     them held, never with meta or the HDF5 lock held.
 * 10. The pool's lock (pool.c, with its work/done conds): items and tasks run without it.
 * 11. The iobuf stash lock (iobuf.c, leaf).
 * 12. writeback.c timer_lock (leaf, with its cond): released around each periodic flush.
 * 13. log.c limit_lock (leaf): h5m_log_limited's memory of recent lines; released before it
 *     logs. Taken under any of the above (a refused write logs holding the dataset's wlock).
 *
 * Fields shared between threads carry a tag in the style "W: wlock + meta; R: either": the
 * locks a writer of the field holds, and those of which a reader holds at least one. */
#ifndef H5MOUNT_LOCK_H
#define H5MOUNT_LOCK_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>

/* A pthread mutex that, in builds without NDEBUG, records the thread holding it. */
struct h5m_mutex {
	pthread_mutex_t m;
#ifndef NDEBUG
	pthread_t owner;   /* valid while `held` (both atomic) */
	bool held;
#endif
};

static inline void h5m_mutex_init(struct h5m_mutex *l)
{
	pthread_mutex_init(&l->m, NULL);
#ifndef NDEBUG
	l->held = false;
#endif
}

static inline void h5m_mutex_destroy(struct h5m_mutex *l)
{
	pthread_mutex_destroy(&l->m);
}

#ifndef NDEBUG
static inline void h5m_mutex_taken(struct h5m_mutex *l)
{
	__atomic_store_n(&l->owner, pthread_self(), __ATOMIC_RELAXED);
	__atomic_store_n(&l->held, true, __ATOMIC_RELAXED);
}

static inline void h5m_mutex_leaving(struct h5m_mutex *l)
{
	assert(__atomic_load_n(&l->held, __ATOMIC_RELAXED) &&
	       pthread_equal(__atomic_load_n(&l->owner, __ATOMIC_RELAXED), pthread_self()));
	__atomic_store_n(&l->held, false, __ATOMIC_RELAXED);
}
#endif

static inline void h5m_mutex_lock(struct h5m_mutex *l)
{
	pthread_mutex_lock(&l->m);
#ifndef NDEBUG
	h5m_mutex_taken(l);
#endif
}

static inline void h5m_mutex_unlock(struct h5m_mutex *l)
{
#ifndef NDEBUG
	h5m_mutex_leaving(l);
#endif
	pthread_mutex_unlock(&l->m);
}

/* pthread_cond_wait on l, which the caller holds. */
static inline void h5m_mutex_wait(pthread_cond_t *cv, struct h5m_mutex *l)
{
#ifndef NDEBUG
	h5m_mutex_leaving(l);
#endif
	pthread_cond_wait(cv, &l->m);
#ifndef NDEBUG
	h5m_mutex_taken(l);
#endif
}

/* Whether the calling thread holds l (always true in NDEBUG builds, where nothing is recorded).
 * Only meaningful for asserting "caller holds l". */
static inline bool h5m_mutex_held(struct h5m_mutex *l)
{
#ifndef NDEBUG
	return __atomic_load_n(&l->held, __ATOMIC_RELAXED) &&
	       pthread_equal(__atomic_load_n(&l->owner, __ATOMIC_RELAXED), pthread_self());
#else
	(void)l;
	return true;
#endif
}

#endif
