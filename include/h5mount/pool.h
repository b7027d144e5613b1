/* pool.h: a fixed set of worker threads that help a caller run the independent items of a
 * "parallel for" (decoding the chunks one read needs, say), and run submitted background tasks
 * when no such items wait. The caller always works on its own items too, so a busy or empty
 * pool only makes it slower, never stuck. Knows nothing of HDF5, FUSE or what the items do. */
#ifndef H5MOUNT_POOL_H
#define H5MOUNT_POOL_H

#include <stdbool.h>
#include <stddef.h>

struct h5m_pool;

/* Starts `workers` threads (0 is allowed: every item then runs on its caller). Returns the
 * pool, or NULL when memory or a thread could not be had (nothing is left running). Create
 * it after fork()/daemon(): threads do not survive them. */
struct h5m_pool *h5m_pool_new(unsigned workers);

/* Stops and joins the workers (waiting for a task that is running to return; queued ones are
 * dropped) and frees the pool. No h5m_pool_for may be running. NULL is a no-op. */
void h5m_pool_free(struct h5m_pool *p);

/* The number of worker threads (0 for NULL). */
unsigned h5m_pool_workers(const struct h5m_pool *p);

/* Calls fn(arg, i) exactly once for every i in [0, n), on the calling thread and on idle
 * workers, and returns when all calls have returned. Items may run in any order and at the
 * same time, so fn must be safe for that. Any number of threads may call this at once; a NULL
 * pool runs everything on the caller. Never fails and never allocates. */
void h5m_pool_for(struct h5m_pool *p, size_t n, void (*fn)(void *arg, size_t i), void *arg);

/* A job for a worker, owned by whoever submits it (embed it in your own struct). */
struct h5m_pool_task {
	void (*fn)(struct h5m_pool_task *t);
	struct h5m_pool_task *link; /* the pool's queue while queued */
};

/* Queues t to run once on a worker, after the items of any h5m_pool_for waiting then (a
 * caller waits for those; nobody waits for a task). t must stay valid until fn has been called;
 * fn may submit t again. Returns false, queuing nothing, when the pool has no workers (or is
 * NULL). Tasks still queued when the pool is freed are dropped, never run. Never allocates. */
bool h5m_pool_submit(struct h5m_pool *p, struct h5m_pool_task *t);

#endif
