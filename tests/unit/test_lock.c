/* test_lock.c: the debug owner tracking of struct h5m_mutex that "caller holds X" asserts use. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "h5mount/lock.h"

struct probe {
	struct h5m_mutex *l;
	bool held;
};

static void *held_elsewhere(void *arg)
{
	struct probe *p = arg;

	p->held = h5m_mutex_held(p->l);
	return NULL;
}

/* Only the thread that holds the mutex is told it holds it; after unlock (or while waiting on a
 * cond) nobody is. */
static void test_only_the_holder_holds_the_mutex(void **state)
{
	struct h5m_mutex l;
	struct probe p = { &l, true };
	pthread_t t;

	(void)state;
#ifdef NDEBUG
	skip();
#endif
	h5m_mutex_init(&l);
	assert_false(h5m_mutex_held(&l));
	h5m_mutex_lock(&l);
	assert_true(h5m_mutex_held(&l));
	assert_int_equal(pthread_create(&t, NULL, held_elsewhere, &p), 0);
	pthread_join(t, NULL);
	assert_false(p.held);
	h5m_mutex_unlock(&l);
	assert_false(h5m_mutex_held(&l));
	h5m_mutex_destroy(&l);
}

struct waiter {
	struct h5m_mutex *l;
	pthread_cond_t *cv;
	bool signalled;   /* l */
	bool held_by_me;  /* what the signalling thread was told while holding l */
};

static void *signal_when_locked(void *arg)
{
	struct waiter *w = arg;

	h5m_mutex_lock(w->l);
	w->held_by_me = h5m_mutex_held(w->l);
	w->signalled = true;
	pthread_cond_signal(w->cv);
	h5m_mutex_unlock(w->l);
	return NULL;
}

/* A cond wait gives the mutex up (another thread takes it and holds it) and takes it back. */
static void test_a_cond_wait_gives_the_mutex_up_and_takes_it_back(void **state)
{
	struct h5m_mutex l;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	struct waiter w = { &l, &cv, false, false };
	pthread_t t;

	(void)state;
#ifdef NDEBUG
	skip();
#endif
	h5m_mutex_init(&l);
	h5m_mutex_lock(&l);
	assert_int_equal(pthread_create(&t, NULL, signal_when_locked, &w), 0);
	while (!w.signalled)
		h5m_mutex_wait(&cv, &l);
	assert_true(w.held_by_me);
	assert_true(h5m_mutex_held(&l));
	h5m_mutex_unlock(&l);
	pthread_join(t, NULL);
	pthread_cond_destroy(&cv);
	h5m_mutex_destroy(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_only_the_holder_holds_the_mutex),
		cmocka_unit_test(test_a_cond_wait_gives_the_mutex_up_and_takes_it_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
