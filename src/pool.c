/* pool.c: worker threads for h5m_pool_for and submitted tasks; one mutex guards the list of
 * running batches and the task queue. It does not know what the items do, and it never lets a
 * caller wait for an item nobody runs. */
#include "h5mount/pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* One h5m_pool_for call: lives on its caller's stack until every item has returned. */
struct batch {
	void (*fn)(void *arg, size_t i);
	void *arg;
	size_t n;
	size_t next;        /* the next unclaimed item; pool lock */
	size_t done;        /* items returned; pool lock */
	struct batch *link; /* the next batch with unclaimed items; pool lock */
};

struct h5m_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;   /* a batch with unclaimed items or a task was queued, or stop */
	pthread_cond_t done;   /* some batch completed */
	struct batch *head;    /* batches with unclaimed items, oldest first; lock */
	struct batch **tail;   /* lock */
	struct h5m_pool_task *tasks, **tasks_tail; /* queued tasks, oldest first; lock */
	bool stop;             /* lock */
	unsigned workers;      /* threads started */
	pthread_t *threads;
};

/* Claims the next item of b (which has one) into *i, and unlinks b from the queue once all its
 * items are claimed. Caller holds p->lock. */
static void take(struct h5m_pool *p, struct batch *b, size_t *i)
{
	struct batch **at;

	*i = b->next++;
	if (b->next < b->n)
		return;
	for (at = &p->head; *at != b; at = &(*at)->link)
		;
	*at = b->link;
	if (!*at)
		p->tail = at;
}

/* Runs item i of b outside the lock and counts it done. Caller holds p->lock; holds it again
 * on return. */
static void run(struct h5m_pool *p, struct batch *b, size_t i)
{
	pthread_mutex_unlock(&p->lock);
	b->fn(b->arg, i);
	pthread_mutex_lock(&p->lock);
	if (++b->done == b->n)
		pthread_cond_broadcast(&p->done);
}

static void *worker(void *arg)
{
	struct h5m_pool *p = arg;
	struct batch *b;
	size_t i;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		b = p->head; /* the oldest batch with unclaimed items */
		if (b) {
			take(p, b, &i);
			run(p, b, i);
		} else if (p->tasks) {
			struct h5m_pool_task *t = p->tasks;

			p->tasks = t->link;
			if (!p->tasks)
				p->tasks_tail = &p->tasks;
			pthread_mutex_unlock(&p->lock);
			t->fn(t);
			pthread_mutex_lock(&p->lock);
		} else {
			pthread_cond_wait(&p->work, &p->lock);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct h5m_pool *h5m_pool_new(unsigned workers)
{
	struct h5m_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->tail = &p->head;
	p->tasks_tail = &p->tasks;
	p->threads = calloc(workers ? workers : 1, sizeof(*p->threads));
	if (!p->threads) {
		h5m_pool_free(p);
		return NULL;
	}
	for (; p->workers < workers; p->workers++) {
		if (pthread_create(&p->threads[p->workers], NULL, worker, p) != 0) {
			h5m_pool_free(p);
			return NULL;
		}
	}
	return p;
}

void h5m_pool_free(struct h5m_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned k = 0; k < p->workers; k++)
		pthread_join(p->threads[k], NULL);
	free(p->threads);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

unsigned h5m_pool_workers(const struct h5m_pool *p)
{
	return p ? p->workers : 0;
}

void h5m_pool_for(struct h5m_pool *p, size_t n, void (*fn)(void *arg, size_t i), void *arg)
{
	struct batch b = { .fn = fn, .arg = arg, .n = n };
	size_t i;

	if (!p || p->workers == 0 || n < 2) {
		for (i = 0; i < n; i++)
			fn(arg, i);
		return;
	}
	pthread_mutex_lock(&p->lock);
	*p->tail = &b;
	p->tail = &b.link;
	if (n - 1 < p->workers) {
		for (i = 1; i < n; i++)
			pthread_cond_signal(&p->work);
	} else {
		pthread_cond_broadcast(&p->work);
	}
	/* Work on this batch's items (never another's: the caller's latency is its own). */
	while (b.next < b.n) {
		take(p, &b, &i);
		run(p, &b, i);
	}
	while (b.done < b.n)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

bool h5m_pool_submit(struct h5m_pool *p, struct h5m_pool_task *t)
{
	if (!p || p->workers == 0)
		return false;
	pthread_mutex_lock(&p->lock);
	t->link = NULL;
	*p->tasks_tail = t;
	p->tasks_tail = &t->link;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
	return true;
}
