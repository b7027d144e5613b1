/* iobuf.c: the stash of transient request buffers; one process-wide mutex guards it. It never
 * decides what a buffer holds, and keeps no buffer for a thread. */
#include "h5mount/iobuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

/* Buffers of at least MAP_MIN bytes are mappings: one freed goes back to the system at once,
 * instead of leaving a hole in malloc's heaps that long-lived allocations then pin. Sizes are
 * rounded up to GRAIN so that requests of nearby sizes reuse each other's buffers. */
#define MAP_MIN ((size_t)64 << 10)
#define GRAIN ((size_t)64 << 10)
#define KEEP_MAX 64u /* kept buffers at most, so a get scans a short list */

struct kept {
	void *data;
	size_t cap;
};

/* The one stash of the process. */
static struct {
	pthread_mutex_t lock;
	struct kept k[KEEP_MAX]; /* kept buffers; lock */
	unsigned n;              /* lock */
	size_t bytes;            /* sum of k[].cap; lock */
} stash = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void release(void *data, size_t cap)
{
	if (cap >= MAP_MIN)
		munmap(data, cap);
	else
		free(data);
}

int h5m_iobuf_get(struct h5m_iobuf *b, size_t len)
{
	unsigned best = KEEP_MAX;
	size_t cap;

	b->data = NULL;
	b->cap = 0;
	pthread_mutex_lock(&stash.lock);
	for (unsigned i = 0; i < stash.n; i++)
		if (stash.k[i].cap >= len && (best == KEEP_MAX || stash.k[i].cap < stash.k[best].cap))
			best = i;
	if (best != KEEP_MAX) {
		b->data = stash.k[best].data;
		b->cap = stash.k[best].cap;
		stash.bytes -= b->cap;
		stash.k[best] = stash.k[--stash.n];
	}
	pthread_mutex_unlock(&stash.lock);
	if (b->data)
		return 0;
	if (len > SIZE_MAX - GRAIN)
		return -ENOMEM;
	cap = len < MAP_MIN ? (len ? len : 1) : (len + GRAIN - 1) / GRAIN * GRAIN;
	if (cap >= MAP_MIN) {
		void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		b->data = p == MAP_FAILED ? NULL : p;
	} else {
		b->data = malloc(cap);
	}
	if (!b->data)
		return -ENOMEM;
	b->cap = cap;
	return 0;
}

void h5m_iobuf_put(struct h5m_iobuf *b)
{
	void *data = b->data;
	size_t cap = b->cap;
	bool kept = false;

	b->data = NULL;
	b->cap = 0;
	if (!data)
		return;
	pthread_mutex_lock(&stash.lock);
	/* Make room by freeing bigger kept buffers first: small ones are the common case. */
	while (stash.bytes + cap > H5M_IOBUF_STASH || stash.n == KEEP_MAX) {
		unsigned big = 0;

		if (!stash.n)
			break;
		for (unsigned i = 1; i < stash.n; i++)
			if (stash.k[i].cap > stash.k[big].cap)
				big = i;
		if (stash.k[big].cap <= cap)
			break;
		release(stash.k[big].data, stash.k[big].cap);
		stash.bytes -= stash.k[big].cap;
		stash.k[big] = stash.k[--stash.n];
	}
	if (stash.bytes + cap <= H5M_IOBUF_STASH && stash.n < KEEP_MAX) {
		stash.k[stash.n++] = (struct kept){ .data = data, .cap = cap };
		stash.bytes += cap;
		kept = true;
	}
	pthread_mutex_unlock(&stash.lock);
	if (!kept)
		release(data, cap);
}

size_t h5m_iobuf_stashed(void)
{
	size_t n;

	pthread_mutex_lock(&stash.lock);
	n = stash.bytes;
	pthread_mutex_unlock(&stash.lock);
	return n;
}

void h5m_iobuf_drain(void)
{
	pthread_mutex_lock(&stash.lock);
	while (stash.n) {
		stash.n--;
		release(stash.k[stash.n].data, stash.k[stash.n].cap);
	}
	stash.bytes = 0;
	pthread_mutex_unlock(&stash.lock);
}
