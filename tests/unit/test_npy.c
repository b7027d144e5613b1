/* test_npy.c: the .npy header codec: fixed lengths, exact bytes, round trips, strict parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "h5mount/npy.h"

static void test_header_length_is_64_aligned_and_fixed_per_rank(void **state)
{
	uint64_t small[2] = { 0, 1000 }, big[2] = { UINT64_MAX, UINT64_MAX };
	char a[4096], b[4096];
	size_t len;
	int version;

	(void)state;
	assert_int_equal(h5m_npy_header_size("'<f8'", 2, &len, &version), 0);
	assert_int_equal(len % 64, 0);
	assert_int_equal(version, 1);
	assert_int_equal(len, 128);
	assert_int_equal(h5m_npy_header_write("'<f8'", 2, small, a, len), 0);
	assert_int_equal(h5m_npy_header_write("'<f8'", 2, big, b, len), 0);
	assert_int_equal(a[len - 1], '\n');
	assert_int_equal(b[len - 1], '\n');
	/* The widest shape fits exactly in the same length. */
	assert_non_null(memmem(b, len, "(18446744073709551615, 18446744073709551615), }", 47));
}

static void test_header_bytes_match_numpy_prefix(void **state)
{
	uint64_t shape[2] = { 3, 4 };
	char buf[128];
	static const char want[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }";
	size_t len;
	int version;

	(void)state;
	assert_int_equal(h5m_npy_header_size("'<f8'", 2, &len, &version), 0);
	assert_int_equal(len, sizeof(buf));
	assert_int_equal(h5m_npy_header_write("'<f8'", 2, shape, buf, len), 0);
	/* numpy writes the same dict, padded with spaces to the same 128 bytes. */
	assert_memory_equal(buf, want, sizeof(want) - 1);
	for (size_t i = sizeof(want) - 1; i < len - 1; i++)
		assert_int_equal(buf[i], ' ');
}

static void test_rank0_and_rank1_shapes_are_python_tuples(void **state)
{
	uint64_t one = 5;
	char buf[256];
	size_t len;
	int version;

	(void)state;
	assert_int_equal(h5m_npy_header_size("'|b1'", 0, &len, &version), 0);
	assert_int_equal(h5m_npy_header_write("'|b1'", 0, NULL, buf, len), 0);
	assert_non_null(memmem(buf, len, "'shape': (), }", 14));
	assert_int_equal(h5m_npy_header_size("'|S5'", 1, &len, &version), 0);
	assert_int_equal(h5m_npy_header_write("'|S5'", 1, &one, buf, len), 0);
	assert_non_null(memmem(buf, len, "'shape': (5,), }", 16));
}

static void roundtrip(const char *descr, unsigned rank, const uint64_t *shape)
{
	struct h5m_npy_header h;
	char canon[4096], buf[8192];
	size_t len;
	int version;

	assert_int_equal(h5m_npy_header_size(descr, rank, &len, &version), 0);
	assert_true(len <= sizeof(buf));
	assert_int_equal(h5m_npy_header_write(descr, rank, shape, buf, len), 0);
	assert_int_equal(h5m_npy_header_parse(buf, len, &h), 0);
	assert_int_equal(h.header_len, len);
	assert_int_equal(h.version, version);
	assert_false(h.fortran_order);
	assert_int_equal(h.rank, rank);
	for (unsigned i = 0; i < rank; i++)
		assert_int_equal(h.shape[i], shape[i]);
	assert_int_equal(h5m_npy_descr_canon(descr, canon, sizeof(canon)), 0);
	assert_string_equal(h.descr, canon);
}

static void test_every_dtype_kind_round_trips(void **state)
{
	static const char *const descrs[] = {
		"'<f8'", "'>f8'", "'>i4'", "'|u1'", "'|b1'", "'<c16'", "'>c8'", "'|S5'", "'<f2'", "'|V7'", "'<f16'",
		"[('a', '<i4'), ('b', '>f8'), ('s', '|S5')]",
		"[('a', '<i4'), ('', '|V4'), ('b', '<f8')]",
		"[('p', [('u', '|u1'), ('v', '<f4')]), ('q', '<i8')]",
		"[('arr', '<f4', (3,)), ('m', '>i2', (2, 2))]",
		"[('name', '|S16'), ('pressure', '<f4'), ('', '|V4')]",
	};
	uint64_t shape[3] = { 7, 1000, 3 };

	(void)state;
	for (size_t i = 0; i < sizeof(descrs) / sizeof(*descrs); i++)
		for (unsigned rank = 0; rank <= 3; rank++)
			roundtrip(descrs[i], rank, shape);
}

static void test_non_ascii_field_names_use_version_3(void **state)
{
	uint64_t shape = 2;
	char buf[256];
	size_t len;
	int version;
	struct h5m_npy_header h;

	(void)state;
	assert_int_equal(h5m_npy_header_size("[('temp\xc3\xa9rature', '<f4')]", 1, &len, &version), 0);
	assert_int_equal(version, 3);
	assert_int_equal(len % 64, 0);
	assert_int_equal(h5m_npy_header_write("[('temp\xc3\xa9rature', '<f4')]", 1, &shape, buf, len), 0);
	assert_int_equal(buf[6], 3);
	assert_int_equal((unsigned char)buf[8] | (unsigned char)buf[9] << 8, len - 12);
	assert_int_equal(h5m_npy_header_parse(buf, len, &h), 0);
	assert_int_equal(h.version, 3);
}

static void test_parses_headers_numpy_wrote(void **state)
{
	static const char simple[] =
		"\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }"
		"                                                          \n";
	static const char structured[] =
		"\x93NUMPY\x01\x00\x76\x00{'descr': [('a', '<i4'), ('b', '>f8', (2,))], 'fortran_order': False, "
		"'shape': (5,), }                               \n";
	struct h5m_npy_header h;

	(void)state;
	assert_int_equal(sizeof(simple) - 1, 128);
	assert_int_equal(h5m_npy_header_parse(simple, 128, &h), 0);
	assert_string_equal(h.descr, "'<f8'");
	assert_int_equal(h.rank, 2);
	assert_int_equal(h.shape[0], 3);
	assert_int_equal(h.shape[1], 4);
	assert_int_equal(h5m_npy_header_parse(structured, sizeof(structured) - 1, &h), 0);
	assert_string_equal(h.descr, "[('a','<i4'),('b','>f8',(2,))]");
	assert_int_equal(h.rank, 1);
	assert_int_equal(h.shape[0], 5);
}

/* Builds a v1 header around `dict` (no padding rules enforced by the parser). */
static size_t make(char *buf, const char *dict)
{
	size_t n = strlen(dict);

	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	buf[8] = (char)(n & 0xff);
	buf[9] = (char)(n >> 8);
	memcpy(buf + 10, dict, n);
	return 10 + n;
}

static void test_parser_rejects_bad_headers(void **state)
{
	static const char *const bad[] = {
		"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), 'extra': 1, }\n",
		"{'descr': '<f8', 'fortran_order': False, }\n",
		"{'descr': '<f8', 'fortran_order': False, 'shape': (5), }\n",
		"{'descr': '<f8', 'fortran_order': Maybe, 'shape': (5,), }\n",
		"{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }\n",
		"{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (5,), }\n",
		"{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }\n",
		"['descr', '<f8']\n",
		"{'descr': '<f8, 'fortran_order': False, 'shape': (5,), }\n",
	};
	struct h5m_npy_header h;
	char buf[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		size_t n = make(buf, bad[i]);

		assert_int_equal(h5m_npy_header_parse(buf, n, &h), -EINVAL);
	}
	memcpy(buf, "\x93NUMPZ\x01\x00\x10\x00", 10);
	assert_int_equal(h5m_npy_header_parse(buf, 10, &h), -EINVAL);
	memcpy(buf, "\x93NUMPY\x04\x00\x10\x00", 10);
	assert_int_equal(h5m_npy_header_parse(buf, 10, &h), -EINVAL);
}

static void test_parser_asks_for_more_bytes_when_truncated(void **state)
{
	uint64_t shape[2] = { 3, 4 };
	struct h5m_npy_header h;
	char buf[128];
	size_t len;
	int version;

	(void)state;
	assert_int_equal(h5m_npy_header_size("'<f8'", 2, &len, &version), 0);
	assert_int_equal(h5m_npy_header_write("'<f8'", 2, shape, buf, len), 0);
	assert_int_equal(h5m_npy_header_parse(buf, 3, &h), -EAGAIN);
	assert_int_equal(h5m_npy_header_parse(buf, 9, &h), -EAGAIN);
	assert_int_equal(h5m_npy_header_parse(buf, 100, &h), -EAGAIN);
	assert_int_equal(h5m_npy_header_parse("\x93NUMPQ", 6, &h), -EINVAL);
}

static void test_rank_above_numpy_limit_is_refused(void **state)
{
	size_t len;
	int version;

	(void)state;
	assert_int_equal(h5m_npy_header_size("'<f8'", H5M_NPY_MAXDIMS + 1, &len, &version), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_length_is_64_aligned_and_fixed_per_rank),
		cmocka_unit_test(test_header_bytes_match_numpy_prefix),
		cmocka_unit_test(test_rank0_and_rank1_shapes_are_python_tuples),
		cmocka_unit_test(test_every_dtype_kind_round_trips),
		cmocka_unit_test(test_non_ascii_field_names_use_version_3),
		cmocka_unit_test(test_parses_headers_numpy_wrote),
		cmocka_unit_test(test_parser_rejects_bad_headers),
		cmocka_unit_test(test_parser_asks_for_more_bytes_when_truncated),
		cmocka_unit_test(test_rank_above_numpy_limit_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
