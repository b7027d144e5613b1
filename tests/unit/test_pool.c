/* test_pool.c: the worker pool's parallel for (every item once, on idle workers too, with
 * concurrent callers) and its submitted tasks; no HDF5, no FUSE. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "h5mount/pool.h"

struct counts {
	unsigned hits[1000];
	pthread_t who[1000];
};

static void count_item(void *arg, size_t i)
{
	struct counts *c = arg;

	__atomic_fetch_add(&c->hits[i], 1, __ATOMIC_RELAXED);
	c->who[i] = pthread_self();
}

static void test_every_item_runs_exactly_once(void **state)
{
	static struct counts c;
	struct h5m_pool *p = h5m_pool_new(3);

	(void)state;
	assert_non_null(p);
	assert_int_equal(h5m_pool_workers(p), 3);
	for (int round = 0; round < 20; round++) {
		memset(&c, 0, sizeof c);
		h5m_pool_for(p, 1000, count_item, &c);
		for (int i = 0; i < 1000; i++)
			assert_int_equal(c.hits[i], 1);
	}
	memset(&c, 0, sizeof c);
	h5m_pool_for(p, 0, count_item, &c); /* nothing to run */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(c.hits[i], 0);
	h5m_pool_free(p);
}

static void test_without_workers_items_run_on_the_caller(void **state)
{
	static struct counts c;
	struct h5m_pool *p = h5m_pool_new(0);

	(void)state;
	assert_non_null(p);
	assert_int_equal(h5m_pool_workers(p), 0);
	assert_int_equal(h5m_pool_workers(NULL), 0);
	memset(&c, 0, sizeof c);
	h5m_pool_for(p, 50, count_item, &c);
	h5m_pool_for(NULL, 50, count_item, &c);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(c.hits[i], 2);
		assert_true(pthread_equal(c.who[i], pthread_self()));
	}
	h5m_pool_free(p);
	h5m_pool_free(NULL);
}

/* Two items that each wait (up to 10 s) for the other to start: they only both see the other
 * if they run at the same time, on two threads. */
struct meet {
	int started;
	bool saw_other[2];
	pthread_t who[2];
};

static void meet_item(void *arg, size_t i)
{
	struct meet *m = arg;
	struct timespec t0, now;

	m->who[i] = pthread_self();
	__atomic_fetch_add(&m->started, 1, __ATOMIC_SEQ_CST);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (__atomic_load_n(&m->started, __ATOMIC_SEQ_CST) == 2) {
			m->saw_other[i] = true;
			return;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - t0.tv_sec < 10);
}

static void test_an_idle_worker_runs_items_beside_the_caller(void **state)
{
	struct meet m = { 0 };
	struct h5m_pool *p = h5m_pool_new(1);

	(void)state;
	assert_non_null(p);
	h5m_pool_for(p, 2, meet_item, &m);
	assert_true(m.saw_other[0]);
	assert_true(m.saw_other[1]);
	assert_false(pthread_equal(m.who[0], m.who[1]));
	h5m_pool_free(p);
}

struct caller {
	struct h5m_pool *pool;
	unsigned hits[200];
	bool ok;
};

static void caller_item(void *arg, size_t i)
{
	struct caller *c = arg;

	__atomic_fetch_add(&c->hits[i], 1, __ATOMIC_RELAXED);
}

static void *caller_thread(void *arg)
{
	struct caller *c = arg;

	c->ok = true;
	for (int round = 0; round < 200; round++) {
		memset(c->hits, 0, sizeof c->hits);
		h5m_pool_for(c->pool, 1 + (size_t)round % 200, caller_item, c);
		for (int i = 0; i < 200; i++)
			if (c->hits[i] != (i < 1 + round % 200 ? 1u : 0u))
				c->ok = false;
	}
	return NULL;
}

static void test_concurrent_callers_each_get_exactly_their_items(void **state)
{
	static struct caller c[4];
	pthread_t t[4];
	struct h5m_pool *p = h5m_pool_new(2);

	(void)state;
	assert_non_null(p);
	for (int k = 0; k < 4; k++) {
		c[k].pool = p;
		assert_int_equal(pthread_create(&t[k], NULL, caller_thread, &c[k]), 0);
	}
	for (int k = 0; k < 4; k++) {
		assert_int_equal(pthread_join(t[k], NULL), 0);
		assert_true(c[k].ok);
	}
	h5m_pool_free(p);
}

/* A task that submits itself again until it has run `left` more times. */
struct again {
	struct h5m_pool_task t;
	struct h5m_pool *p;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned runs, left;
	bool on_caller;
	pthread_t caller;
};

static void again_fn(struct h5m_pool_task *t)
{
	struct again *a = (struct again *)t;

	pthread_mutex_lock(&a->lock);
	a->runs++;
	a->on_caller |= pthread_equal(pthread_self(), a->caller);
	if (a->left > 0) {
		a->left--;
		assert_true(h5m_pool_submit(a->p, &a->t));
	}
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static void test_a_submitted_task_runs_once_per_submission_on_a_worker(void **state)
{
	struct again a = { .t.fn = again_fn, .left = 9, .caller = pthread_self() };
	struct timespec until;

	(void)state;
	pthread_mutex_init(&a.lock, NULL);
	pthread_cond_init(&a.cond, NULL);
	a.p = h5m_pool_new(1);
	assert_non_null(a.p);
	assert_true(h5m_pool_submit(a.p, &a.t));
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&a.lock);
	while (a.runs < 10 && pthread_cond_timedwait(&a.cond, &a.lock, &until) == 0)
		;
	assert_int_equal(a.runs, 10);
	assert_false(a.on_caller);
	pthread_mutex_unlock(&a.lock);
	h5m_pool_free(a.p);
	assert_int_equal(a.runs, 10); /* nothing ran after the last submission's run */
	/* Without workers nothing is queued, and nothing runs. */
	a.p = h5m_pool_new(0);
	a.runs = 0;
	assert_false(h5m_pool_submit(a.p, &a.t));
	assert_false(h5m_pool_submit(NULL, &a.t));
	h5m_pool_free(a.p);
	assert_int_equal(a.runs, 0);
	pthread_cond_destroy(&a.cond);
	pthread_mutex_destroy(&a.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_item_runs_exactly_once),
		cmocka_unit_test(test_without_workers_items_run_on_the_caller),
		cmocka_unit_test(test_an_idle_worker_runs_items_beside_the_caller),
		cmocka_unit_test(test_concurrent_callers_each_get_exactly_their_items),
		cmocka_unit_test(test_a_submitted_task_runs_once_per_submission_on_a_worker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
