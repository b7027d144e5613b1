/* test_attrtext.c: xattr text -> attribute values, the inverse of h5m_dtype_format_values:
 * what the formatter prints parses back to the same bytes, and what does not fit the type is
 * refused with a reason. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h5mount/attrtext.h"
#include "h5mount/dtype.h"

/* Parses text as n values of (ft, mt) in `rank` dims; returns the rc, the buffer in *out. */
static int parse(hid_t ft, hid_t mt, const char *text, size_t n, unsigned rank, void **out)
{
	char why[256] = "";
	int rc = h5m_attrtext_parse(H5I_INVALID_HID, ft, mt, text, strlen(text), n, rank, out, why, sizeof(why));

	if (rc == -EINVAL)
		assert_true(why[0] != 0); /* a refusal always says why */
	return rc;
}

/* Formats vals (n of mt, stored as ft), parses the text back, and checks that the values
 * are the same: the same bytes (`bytes`: types without padding or pointers) and the same
 * text when formatted again. */
static void roundtrip(hid_t ft, hid_t mt, const void *vals, size_t n, unsigned rank, const hsize_t *dims, bool bytes)
{
	char *text = NULL, *again = NULL, why[256] = "";
	size_t len = 0, len2 = 0;
	void *buf = NULL;
	int rc;

	assert_int_equal(h5m_dtype_format_values(H5I_INVALID_HID, ft, mt, vals, n, rank, dims, &text, &len), 0);
	rc = h5m_attrtext_parse(H5I_INVALID_HID, ft, mt, text, len, n, rank, &buf, why, sizeof(why));
	if (rc)
		fail_msg("'%s' did not parse back: %s", text, why);
	if (bytes)
		assert_memory_equal(buf, vals, n * H5Tget_size(mt));
	assert_int_equal(h5m_dtype_format_values(H5I_INVALID_HID, ft, mt, buf, n, rank, dims, &again, &len2), 0);
	assert_string_equal(again, text);
	h5m_attrtext_free(mt, buf, n);
	free(text);
	free(again);
}

static hid_t half_type(void)
{
	hid_t t = H5Tcopy(H5T_IEEE_F32LE);

	H5Tset_fields(t, 15, 10, 5, 0, 10);
	H5Tset_size(t, 2);
	H5Tset_ebias(t, 15);
	return t;
}

static void test_integers_of_every_width_and_order_read_back(void **state)
{
	int8_t i8[] = { -128, 0, 127 };
	uint64_t u64[] = { 0, 1, UINT64_MAX };
	int16_t i16[] = { -32768, 513, 32767 };
	int64_t i64[] = { INT64_MIN, -7, INT64_MAX };
	uint8_t b8[] = { 0, 1, 255 };
	hsize_t d3[] = { 3 };

	(void)state;
	roundtrip(H5T_STD_I8LE, H5T_NATIVE_INT8, i8, 3, 1, d3, true);
	roundtrip(H5T_STD_U64BE, H5T_NATIVE_UINT64, u64, 3, 1, d3, true);
	roundtrip(H5T_STD_I16BE, H5T_NATIVE_INT16, i16, 3, 1, d3, true);
	roundtrip(H5T_STD_I64LE, H5T_NATIVE_INT64, i64, 3, 1, d3, true);
	roundtrip(H5T_STD_B8LE, H5T_NATIVE_B8, b8, 3, 1, d3, true);
}

static void test_integers_out_of_the_stored_range_are_refused(void **state)
{
	hid_t t12 = H5Tcopy(H5T_STD_U16LE);
	void *buf = NULL;

	(void)state;
	assert_int_equal(parse(H5T_STD_I8LE, H5T_NATIVE_INT8, "128", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(H5T_STD_I8LE, H5T_NATIVE_INT8, "-129", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(H5T_STD_U32LE, H5T_NATIVE_UINT32, "-1", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(H5T_STD_U64LE, H5T_NATIVE_UINT64, "18446744073709551616", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(H5T_STD_I32LE, H5T_NATIVE_INT32, "4x3", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(H5T_STD_I32LE, H5T_NATIVE_INT32, "1.5", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(H5T_STD_I32LE, H5T_NATIVE_INT32, "", 1, 0, &buf), -EINVAL);
	/* A 12-bit integer (served as 16 bits) holds 0..4095. */
	H5Tset_precision(t12, 12);
	assert_int_equal(parse(t12, H5T_NATIVE_UINT16, "4096", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(t12, H5T_NATIVE_UINT16, "4095", 1, 0, &buf), 0);
	assert_int_equal(*(uint16_t *)buf, 4095);
	h5m_attrtext_free(H5T_NATIVE_UINT16, buf, 1);
	H5Tclose(t12);
}

static void test_floats_read_back_in_their_own_precision(void **state)
{
	double d[] = { 0.1, 1.0 / 3.0, -5e-324, 1.2345678901234567e300, -0.0, INFINITY, -INFINITY };
	float f[] = { 1.1f, 3.4028235e38f, 1e-45f };
	long double ld[] = { 1.0L / 3.0L, -2.5e-4000L };
	float h[] = { 0.099975586f, 65504.0f, 0.015625f }; /* values a half holds exactly */
	hsize_t d7[] = { 7 }, d3[] = { 3 }, d2[] = { 2 };
	hid_t ht = half_type();

	(void)state;
	roundtrip(H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d, 7, 1, d7, true);
	roundtrip(H5T_IEEE_F32BE, H5T_NATIVE_FLOAT, f, 3, 1, d3, true);
	roundtrip(H5T_NATIVE_LDOUBLE, H5T_NATIVE_LDOUBLE, ld, 2, 1, d2, false);
	roundtrip(ht, H5T_NATIVE_FLOAT, h, 3, 1, d3, false);
	H5Tclose(ht);
}

static void test_long_double_padding_written_is_zero(void **state)
{
	unsigned char zero[sizeof(long double)] = { 0 };
	size_t used = LDBL_MANT_DIG == 64 ? 10 : sizeof(long double); /* x86: 80 bits of 128 */
	void *buf = NULL;

	(void)state;
	assert_int_equal(parse(H5T_NATIVE_LDOUBLE, H5T_NATIVE_LDOUBLE, "-0.1 3", 2, 1, &buf), 0);
	for (size_t i = 0; i < 2; i++)
		assert_memory_equal((unsigned char *)buf + i * sizeof(long double) + used, zero,
		                    sizeof(long double) - used);
	assert_true(((long double *)buf)[1] == 3.0L);
	h5m_attrtext_free(H5T_NATIVE_LDOUBLE, buf, 2);
}

static void test_floats_the_type_cannot_hold_are_refused(void **state)
{
	hid_t ht = half_type();
	void *buf = NULL;

	(void)state;
	assert_int_equal(parse(H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, "1e39", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, "1e309", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(ht, H5T_NATIVE_FLOAT, "70000", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, "0.1.2", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, "inf", 1, 0, &buf), 0);
	assert_true(isinf(*(double *)buf));
	h5m_attrtext_free(H5T_NATIVE_DOUBLE, buf, 1);
	H5Tclose(ht);
}

static void test_values_separate_by_any_whitespace_and_count_must_match(void **state)
{
	int32_t want[] = { 0, 1, 2, 3, 4, 5 };
	void *buf = NULL;

	(void)state;
	assert_int_equal(parse(H5T_STD_I32LE, H5T_NATIVE_INT32, "0 1 2\n3 4 5", 6, 2, &buf), 0);
	assert_memory_equal(buf, want, sizeof(want));
	h5m_attrtext_free(H5T_NATIVE_INT32, buf, 6);
	assert_int_equal(parse(H5T_STD_I32LE, H5T_NATIVE_INT32, "  0\t1 2 3 4\n\n5\n", 6, 2, &buf), 0);
	assert_memory_equal(buf, want, sizeof(want));
	h5m_attrtext_free(H5T_NATIVE_INT32, buf, 6);
	assert_int_equal(parse(H5T_STD_I32LE, H5T_NATIVE_INT32, "0 1 2 3 4", 6, 2, &buf), -EINVAL);
	assert_int_equal(parse(H5T_STD_I32LE, H5T_NATIVE_INT32, "0 1 2 3 4 5 6", 6, 2, &buf), -EINVAL);
	assert_int_equal(parse(H5T_STD_I32LE, H5T_NATIVE_INT32, "0,1,2,3,4,5", 6, 2, &buf), -EINVAL);
	/* No values (a null dataspace or a zero dim): only whitespace. */
	assert_int_equal(parse(H5T_STD_I32LE, H5T_NATIVE_INT32, " ", 0, 0, &buf), 0);
	h5m_attrtext_free(H5T_NATIVE_INT32, buf, 0);
	assert_int_equal(parse(H5T_STD_I32LE, H5T_NATIVE_INT32, "1", 0, 0, &buf), -EINVAL);
}

static void test_enums_read_by_name_or_by_value(void **state)
{
	hid_t e = H5Tenum_create(H5T_NATIVE_INT16);
	int16_t red = 0, blue = 42, vals[] = { 42, 0, 7 };
	hsize_t d3[] = { 3 };
	void *buf = NULL;

	(void)state;
	H5Tenum_insert(e, "RED", &red);
	H5Tenum_insert(e, "BLUE", &blue);
	roundtrip(e, e, vals, 3, 1, d3, true); /* 7 names no member: printed and read as 7 */
	assert_int_equal(parse(e, e, "42", 1, 0, &buf), 0);
	assert_int_equal(*(int16_t *)buf, 42);
	h5m_attrtext_free(e, buf, 1);
	assert_int_equal(parse(e, e, "GREEN", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(e, e, "blue", 1, 0, &buf), -EINVAL);
	H5Tclose(e);
}

static void test_strings_fixed_and_variable_read_back(void **state)
{
	hid_t fixed = H5Tcopy(H5T_C_S1), spaced = H5Tcopy(H5T_C_S1), var = H5Tcopy(H5T_C_S1);
	char f[3][4] = { "ab", "cde", "" }, sp[2][4] = { "a   ", "b c " };
	const char *v[] = { "alpha", "it's \\ \"q\"", "", "tab\there", "grüße 温度" };
	hsize_t d3[] = { 3 }, d2[] = { 2 }, d5[] = { 5 };
	void *buf = NULL;

	(void)state;
	H5Tset_size(fixed, 4);
	H5Tset_strpad(fixed, H5T_STR_NULLPAD);
	H5Tset_size(spaced, 4);
	H5Tset_strpad(spaced, H5T_STR_SPACEPAD);
	H5Tset_size(var, H5T_VARIABLE);
	H5Tset_cset(var, H5T_CSET_UTF8);
	roundtrip(fixed, fixed, f, 3, 1, d3, true);
	roundtrip(spaced, spaced, sp, 2, 1, d2, true);
	roundtrip(var, var, v, 5, 1, d5, false);
	/* A scalar string is the whole text, spaces and newlines included. */
	assert_int_equal(parse(var, var, " m s-1\n", 1, 0, &buf), 0);
	assert_string_equal(*(char **)buf, " m s-1\n");
	h5m_attrtext_free(var, buf, 1);
	/* Bare words in arrays; quotes of either kind. */
	assert_int_equal(parse(var, var, "a \"b c\" 'd'", 3, 1, &buf), 0);
	assert_string_equal(((char **)buf)[1], "b c");
	h5m_attrtext_free(var, buf, 3);
	assert_int_equal(parse(fixed, fixed, "abcde", 1, 0, &buf), -EINVAL);      /* longer than 4 */
	assert_int_equal(parse(fixed, fixed, "'a\\x00b'", 1, 1, &buf), -EINVAL);  /* a NUL */
	assert_int_equal(parse(var, var, "\xff", 1, 0, &buf), -EINVAL);           /* not UTF-8 */
	assert_int_equal(parse(var, var, "'abc", 1, 1, &buf), -EINVAL);           /* unterminated */
	assert_int_equal(parse(var, var, "'a\\q'", 1, 1, &buf), -EINVAL);         /* bad escape */
	H5Tclose(fixed);
	H5Tclose(spaced);
	H5Tclose(var);
}

struct rec {
	int32_t k;
	double v[2][2];
	char *s;
};

static void test_compounds_arrays_and_sequences_read_back(void **state)
{
	hsize_t adims[] = { 2, 2 }, d2[] = { 2 };
	hid_t arr = H5Tarray_create2(H5T_NATIVE_DOUBLE, 2, adims), str = H5Tcopy(H5T_C_S1);
	hid_t c = H5Tcreate(H5T_COMPOUND, sizeof(struct rec)), cx = H5Tcreate(H5T_COMPOUND, 16);
	hid_t vl = H5Tvlen_create(H5T_NATIVE_INT32);
	struct rec r[2] = { { 7, { { 0.5, 1.0 }, { 2.0, -3.25 } }, "a, b}" }, { -1, { { 0 } }, "" } };
	double cplx[2][2] = { { 1.5, -2.0 }, { 0.1, 3.0 } };
	int32_t s0[] = { 1, 2, 3 };
	hvl_t seq[2] = { { 3, s0 }, { 0, NULL } };
	void *buf = NULL;

	(void)state;
	H5Tset_size(str, H5T_VARIABLE);
	H5Tinsert(c, "k", offsetof(struct rec, k), H5T_NATIVE_INT32);
	H5Tinsert(c, "m: x", offsetof(struct rec, v), arr);
	H5Tinsert(c, "s", offsetof(struct rec, s), str);
	H5Tinsert(cx, "r", 0, H5T_NATIVE_DOUBLE);
	H5Tinsert(cx, "i", 8, H5T_NATIVE_DOUBLE);
	roundtrip(c, c, r, 2, 1, d2, false);
	roundtrip(cx, cx, cplx, 2, 1, d2, true);
	roundtrip(vl, vl, seq, 2, 1, d2, false);
	/* The top-level array type adds its dims: a scalar of double[2][2] is four values. */
	roundtrip(arr, arr, cplx, 1, 0, NULL, true);
	assert_int_equal(parse(cx, cx, "{r: 1.0, j: 2.0}", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(cx, cx, "{r: 1.0}", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(cx, cx, "{r: 1.0, i: 2.0} x", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(c, c, "{k: 1, m: x: [[1 2] [3]], s: ''}", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(vl, vl, "[1 2", 1, 0, &buf), -EINVAL);
	H5Tclose(c);
	H5Tclose(cx);
	H5Tclose(arr);
	H5Tclose(str);
	H5Tclose(vl);
}

static void test_opaque_is_hex_and_region_references_are_refused(void **state)
{
	hid_t op = H5Tcreate(H5T_OPAQUE, 3);
	unsigned char o[] = { 0x00, 0xff, 0x61 };
	hsize_t d1[] = { 1 };
	void *buf = NULL;

	(void)state;
	roundtrip(op, op, o, 1, 1, d1, true);
	assert_int_equal(parse(op, op, "00ff", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(op, op, "00ffzz", 1, 0, &buf), -EINVAL);
	assert_int_equal(parse(H5T_STD_REF_DSETREG, H5T_STD_REF_DSETREG, "/x", 1, 0, &buf), -EINVAL);
	/* A null object reference is the empty text; a path needs a file to resolve in. */
	assert_int_equal(parse(H5T_STD_REF_OBJ, H5T_STD_REF_OBJ, "", 1, 0, &buf), 0);
	h5m_attrtext_free(H5T_STD_REF_OBJ, buf, 1);
	assert_int_equal(parse(H5T_STD_REF_OBJ, H5T_STD_REF_OBJ, "/x", 1, 0, &buf), -EINVAL);
	H5Tclose(op);
}

static void test_utf8_check(void **state)
{
	(void)state;
	assert_true(h5m_attrtext_is_utf8("grüße 温度 \xf0\x9f\x98\x80", strlen("grüße 温度 \xf0\x9f\x98\x80")));
	assert_true(h5m_attrtext_is_utf8("", 0));
	assert_false(h5m_attrtext_is_utf8("\xff", 1));
	assert_false(h5m_attrtext_is_utf8("\xc0\xaf", 2));         /* overlong '/' */
	assert_false(h5m_attrtext_is_utf8("\xed\xa0\x80", 3));     /* a surrogate */
	assert_false(h5m_attrtext_is_utf8("\xe4\xb8", 2));         /* cut short */
	assert_false(h5m_attrtext_is_utf8("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers_of_every_width_and_order_read_back),
		cmocka_unit_test(test_integers_out_of_the_stored_range_are_refused),
		cmocka_unit_test(test_floats_read_back_in_their_own_precision),
		cmocka_unit_test(test_long_double_padding_written_is_zero),
		cmocka_unit_test(test_floats_the_type_cannot_hold_are_refused),
		cmocka_unit_test(test_values_separate_by_any_whitespace_and_count_must_match),
		cmocka_unit_test(test_enums_read_by_name_or_by_value),
		cmocka_unit_test(test_strings_fixed_and_variable_read_back),
		cmocka_unit_test(test_compounds_arrays_and_sequences_read_back),
		cmocka_unit_test(test_opaque_is_hex_and_region_references_are_refused),
		cmocka_unit_test(test_utf8_check),
	};

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
