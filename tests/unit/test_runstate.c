/* test_runstate.c: a mount's status file: created locked, found by device and mount point,
 * its exit line read only after the lock goes; and h5m_log_limited's one line per key a minute. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmocka.h>

#include "h5mount/log.h"
#include "h5mount/runstate.h"

/* A device name no real mount has, so the test never meets a daemon's file. */
static void test_dev(char *out, size_t cap)
{
	snprintf(out, cap, "test-%ld", (long)getpid());
}

static void test_status_file_is_locked_until_finish_and_then_says_how_it_ended(void **state)
{
	struct h5m_runstate *rs;
	char dev[64], err[256], val[256];
	int fd;

	(void)state;
	test_dev(dev, sizeof(dev));
	assert_int_equal(h5m_runstate_create(dev, "/data/x.h5", "/mnt/x", &rs, err, sizeof(err)), 0);
	fd = h5m_runstate_open(geteuid(), dev, "/mnt/x");
	assert_true(fd >= 0);
	assert_int_equal(h5m_runstate_get(fd, "file", val, sizeof(val)), 0);
	assert_string_equal(val, "/data/x.h5");
	assert_int_equal(h5m_runstate_get(fd, "exit", val, sizeof(val)), -ENOENT);
	/* The daemon holds the lock: an unmounter waits. */
	assert_int_equal(flock(fd, LOCK_SH | LOCK_NB), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	assert_int_equal(h5m_runstate_note(rs, "dirty", "%d", 4096), 0);
	h5m_runstate_finish(rs, 1, "the final write-back failed");
	assert_int_equal(flock(fd, LOCK_SH | LOCK_NB), 0);
	assert_int_equal(h5m_runstate_get(fd, "dirty", val, sizeof(val)), 0);
	assert_string_equal(val, "4096");
	assert_int_equal(h5m_runstate_get(fd, "exit", val, sizeof(val)), 0);
	assert_string_equal(val, "1 the final write-back failed");
	close(fd);
	/* Gone from the directory once finished. */
	assert_int_equal(h5m_runstate_open(geteuid(), dev, "/mnt/x"), -ENOENT);
}

static void test_another_mount_point_or_a_new_mount_of_the_device_does_not_answer(void **state)
{
	struct h5m_runstate *old, *new;
	char dev[64], err[256], val[256];
	int fd;

	(void)state;
	test_dev(dev, sizeof(dev));
	assert_int_equal(h5m_runstate_create(dev, "/data/a.h5", "/mnt/a", &old, err, sizeof(err)), 0);
	assert_int_equal(h5m_runstate_open(geteuid(), dev, "/mnt/b"), -ENOENT);
	fd = h5m_runstate_open(geteuid(), dev, "/mnt/a");
	assert_true(fd >= 0);
	/* The device number is reused by a new mount before the old daemon is done: the unmounter
	 * holding the old file still waits for the old daemon and reads its exit. */
	assert_int_equal(h5m_runstate_create(dev, "/data/b.h5", "/mnt/a", &new, err, sizeof(err)), 0);
	h5m_runstate_finish(old, 0, NULL);
	assert_int_equal(flock(fd, LOCK_SH | LOCK_NB), 0);
	assert_int_equal(h5m_runstate_get(fd, "exit", val, sizeof(val)), 0);
	assert_string_equal(val, "0");
	assert_int_equal(h5m_runstate_get(fd, "file", val, sizeof(val)), 0);
	assert_string_equal(val, "/data/a.h5");
	close(fd);
	fd = h5m_runstate_open(geteuid(), dev, "/mnt/a");
	assert_true(fd >= 0);
	assert_int_equal(h5m_runstate_get(fd, "file", val, sizeof(val)), 0);
	assert_string_equal(val, "/data/b.h5");
	close(fd);
	h5m_runstate_finish(new, 0, NULL);
}

static void test_log_limited_logs_one_line_per_key_and_kind_then_counts_the_rest(void **state)
{
	char path[] = "/tmp/h5m-test-log-XXXXXX", buf[4096];
	int key1, key2, fd = mkstemp(path);
	ssize_t n;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(h5m_log_open_file(path), 0);
	h5m_log_to_file();
	for (int i = 0; i < 100; i++)
		h5m_log_limited(&key1, 0, H5M_LOG_WARN, "refused %d", i);
	h5m_log_limited(&key1, 1, H5M_LOG_WARN, "other rule");
	h5m_log_limited(&key2, 0, H5M_LOG_WARN, "other key");
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = 0;
	assert_non_null(strstr(buf, ": warning: refused 0\n"));
	assert_null(strstr(buf, "refused 1\n"));
	assert_non_null(strstr(buf, ": warning: other rule\n"));
	assert_non_null(strstr(buf, ": warning: other key\n"));
	assert_non_null(strstr(buf, " h5mount["));
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_file_is_locked_until_finish_and_then_says_how_it_ended),
		cmocka_unit_test(test_another_mount_point_or_a_new_mount_of_the_device_does_not_answer),
		cmocka_unit_test(test_log_limited_logs_one_line_per_key_and_kind_then_counts_the_rest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
