/* test_shape.c: .shape sidecar text: exact formatting and strict parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "h5mount/shape.h"

static void test_format_separates_dims_by_one_space_and_ends_with_newline(void **state)
{
	uint64_t dims[3] = { 750000, 1000, 3 };
	char out[H5M_SHAPE_TEXT_MAX(3)];

	(void)state;
	assert_int_equal(h5m_shape_format(2, dims, out, sizeof(out)), 12);
	assert_string_equal(out, "750000 1000\n");
	assert_int_equal(h5m_shape_format(3, dims, out, sizeof(out)), 14);
	assert_string_equal(out, "750000 1000 3\n");
}

static void test_format_scalar_is_an_empty_line(void **state)
{
	char out[4];

	(void)state;
	assert_int_equal(h5m_shape_format(0, NULL, out, sizeof(out)), 1);
	assert_string_equal(out, "\n");
}

static void test_format_widest_dims_fit_the_max_size(void **state)
{
	uint64_t dims[2] = { UINT64_MAX, UINT64_MAX };
	char out[H5M_SHAPE_TEXT_MAX(2)];

	(void)state;
	assert_int_equal(h5m_shape_format(2, dims, out, sizeof(out)), 42);
	assert_string_equal(out, "18446744073709551615 18446744073709551615\n");
	assert_int_equal(h5m_shape_format(2, dims, out, 10), -ENOSPC);
}

static void test_parse_accepts_spaces_tabs_and_optional_newline(void **state)
{
	uint64_t dims[4];
	unsigned rank;

	(void)state;
	assert_int_equal(h5m_shape_parse("200 1000\n", 9, dims, 4, &rank), 0);
	assert_int_equal(rank, 2);
	assert_int_equal(dims[0], 200);
	assert_int_equal(dims[1], 1000);
	assert_int_equal(h5m_shape_parse(" 7\t8 ", 5, dims, 4, &rank), 0);
	assert_int_equal(rank, 2);
	assert_int_equal(dims[1], 8);
	assert_int_equal(h5m_shape_parse("\n", 1, dims, 4, &rank), 0);
	assert_int_equal(rank, 0);
}

static void test_parse_rejects_malformed_text(void **state)
{
	static const char *const bad[] = { "1 x\n", "-1\n", "1,2\n", "1 2 3 4 5\n", "99999999999999999999999\n",
	                                   "1\n2\n", "0x10\n" };
	uint64_t dims[4];
	unsigned rank;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_int_equal(h5m_shape_parse(bad[i], strlen(bad[i]), dims, 4, &rank), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_separates_dims_by_one_space_and_ends_with_newline),
		cmocka_unit_test(test_format_scalar_is_an_empty_line),
		cmocka_unit_test(test_format_widest_dims_fit_the_max_size),
		cmocka_unit_test(test_parse_accepts_spaces_tabs_and_optional_newline),
		cmocka_unit_test(test_parse_rejects_malformed_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
