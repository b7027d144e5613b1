/* test_remote.c: remote URLs refused before any request (credentials, queries, endpoints, keys)
 * and a server that is not there, without a network: the fetcher's bytes are test_remote.py's. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "h5mount/remote.h"

static int setup(void **state)
{
	(void)state;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_REGION");
	return h5m_remote_global_init();
}

/* Opens url (endpoint may be NULL) expecting failure `want`; returns the message. */
static const char *refused(const char *url, const char *endpoint, int want)
{
	static char err[512];
	struct h5m_remote *r = (struct h5m_remote *)1;

	err[0] = 0;
	assert_int_equal(h5m_remote_open(url, endpoint, &r, err, sizeof(err)), want);
	assert_null(r);
	assert_non_null(strchr(err, 0));
	assert_null(strchr(err, '\n'));
	return err;
}

static void test_urls_are_told_from_paths(void **state)
{
	(void)state;
	assert_true(h5m_remote_is_url("http://h/f.h5"));
	assert_true(h5m_remote_is_url("https://h/f.h5"));
	assert_true(h5m_remote_is_url("s3://b/k"));
	assert_false(h5m_remote_is_url("/data/f.h5"));
	assert_false(h5m_remote_is_url("ftp://h/f.h5"));
	assert_false(h5m_remote_is_url("http:/h/f.h5"));
}

static void test_credentials_in_the_url_are_refused(void **state)
{
	(void)state;
	assert_non_null(strstr(refused("https://u:secret@h/f.h5", NULL, -EINVAL), "credentials in the URL are refused"));
	assert_null(strstr(refused("https://u:secret@h/f.h5", NULL, -EINVAL), "secret"));
}

static void test_queries_and_missing_names_are_refused(void **state)
{
	(void)state;
	assert_non_null(strstr(refused("https://h/f.h5?X-Amz-Signature=abc", NULL, -EINVAL), "query"));
	assert_non_null(strstr(refused("https://h/", NULL, -EINVAL), "names no file"));
	assert_non_null(strstr(refused("s3://bucket", NULL, -EINVAL), "names no bucket and key"));
}

static void test_endpoint_is_for_s3_urls_and_must_be_http(void **state)
{
	(void)state;
	assert_non_null(strstr(refused("http://h/f.h5", "http://e", -EINVAL), "for s3:// URLs only"));
	assert_non_null(strstr(refused("s3://b/k", "ftp://e", -EINVAL), "not an http:// or https:// URL"));
}

static void test_half_a_key_pair_and_session_tokens_are_refused(void **state)
{
	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
	assert_non_null(strstr(refused("s3://b/k", "http://127.0.0.1:1", -EINVAL), "only one of"));
	setenv("AWS_SECRET_ACCESS_KEY", "topsecret", 1);
	setenv("AWS_SESSION_TOKEN", "tok", 1);
	assert_non_null(strstr(refused("s3://b/k", "http://127.0.0.1:1", -EINVAL), "AWS_SESSION_TOKEN"));
	unsetenv("AWS_SESSION_TOKEN");
	setenv("AWS_SECRET_ACCESS_KEY", "x", 1);
	{
		char longkey[200];

		memset(longkey, 'k', sizeof(longkey) - 1);
		longkey[sizeof(longkey) - 1] = 0;
		setenv("AWS_SECRET_ACCESS_KEY", longkey, 1);
		assert_non_null(strstr(refused("s3://b/k", "http://127.0.0.1:1", -EINVAL), "longer than 128 bytes"));
	}
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
}

/* A port nothing listens on: connections are refused, retried, then -EIO with curl's reason. */
static void test_no_server_is_eio_with_the_reason(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char url[64];

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd); /* bound once, so free now and almost surely still free below */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/f.h5", ntohs(a.sin_port));
	assert_non_null(strstr(refused(url, NULL, -EIO), "onnect"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urls_are_told_from_paths),
		cmocka_unit_test(test_credentials_in_the_url_are_refused),
		cmocka_unit_test(test_queries_and_missing_names_are_refused),
		cmocka_unit_test(test_endpoint_is_for_s3_urls_and_must_be_http),
		cmocka_unit_test(test_half_a_key_pair_and_session_tokens_are_refused),
		cmocka_unit_test(test_no_server_is_eio_with_the_reason),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
