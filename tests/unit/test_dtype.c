/* test_dtype.c: HDF5 element types -> npy descr and served size; attribute values -> text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h5mount/dtype.h"

/* Describes t, checks kind/size/descr, closes t. */
static void expect(hid_t t, enum h5m_dtype_kind kind, size_t size, const char *descr)
{
	struct h5m_dtype dt;
	char why[128] = "";

	assert_true(t >= 0);
	assert_int_equal(h5m_dtype_describe(t, &dt, why, sizeof(why)), 0);
	assert_int_equal(dt.kind, kind);
	assert_int_equal(dt.elem_size, size);
	assert_string_equal(dt.descr, descr);
	h5m_dtype_destroy(&dt);
	H5Tclose(t);
}

static void test_numbers_keep_their_stored_byte_order(void **state)
{
	(void)state;
	expect(H5Tcopy(H5T_STD_I32BE), H5M_DT_FIXED, 4, "'>i4'");
	expect(H5Tcopy(H5T_STD_U16LE), H5M_DT_FIXED, 2, "'<u2'");
	expect(H5Tcopy(H5T_STD_U8BE), H5M_DT_FIXED, 1, "'|u1'");
	expect(H5Tcopy(H5T_STD_I64LE), H5M_DT_FIXED, 8, "'<i8'");
	expect(H5Tcopy(H5T_IEEE_F64BE), H5M_DT_FIXED, 8, "'>f8'");
	expect(H5Tcopy(H5T_IEEE_F32LE), H5M_DT_FIXED, 4, "'<f4'");
}

static void test_half_precision_float_is_f2(void **state)
{
	hid_t t = H5Tcopy(H5T_IEEE_F32LE);

	(void)state;
	/* The layout h5py uses for numpy float16. */
	H5Tset_fields(t, 15, 10, 5, 0, 10);
	H5Tset_size(t, 2);
	H5Tset_ebias(t, 15);
	expect(t, H5M_DT_FIXED, 2, "'<f2'");
}

static void test_bools_of_pytables_and_h5py_are_b1(void **state)
{
	hid_t e = H5Tenum_create(H5T_NATIVE_INT8);
	signed char f = 0, t = 1;

	(void)state;
	expect(H5Tcopy(H5T_STD_B8LE), H5M_DT_FIXED, 1, "'|b1'");
	H5Tenum_insert(e, "FALSE", &f);
	H5Tenum_insert(e, "TRUE", &t);
	expect(e, H5M_DT_FIXED, 1, "'|b1'");
}

static void test_other_enums_show_their_base_integer(void **state)
{
	hid_t e = H5Tenum_create(H5T_STD_I16BE);
	short v[3] = { 0, 1, 2 };

	(void)state;
	H5Tenum_insert(e, "RED", &v[0]);
	H5Tenum_insert(e, "GREEN", &v[1]);
	H5Tenum_insert(e, "BLUE", &v[2]);
	expect(e, H5M_DT_FIXED, 2, "'>i2'");
}

static hid_t complex_type(hid_t f, size_t half)
{
	hid_t c = H5Tcreate(H5T_COMPOUND, 2 * half);

	H5Tinsert(c, "r", 0, f);
	H5Tinsert(c, "i", half, f);
	return c;
}

static void test_complex_compounds_are_c8_and_c16(void **state)
{
	(void)state;
	expect(complex_type(H5T_IEEE_F64LE, 8), H5M_DT_FIXED, 16, "'<c16'");
	expect(complex_type(H5T_IEEE_F32BE, 4), H5M_DT_FIXED, 8, "'>c8'");
}

static void test_strings_and_opaque_are_S_and_V(void **state)
{
	hid_t s = H5Tcopy(H5T_C_S1), o = H5Tcreate(H5T_OPAQUE, 7);

	(void)state;
	H5Tset_size(s, 5);
	H5Tset_strpad(s, H5T_STR_NULLTERM);
	expect(s, H5M_DT_FIXED, 5, "'|S5'");
	H5Tset_tag(o, "blob");
	expect(o, H5M_DT_FIXED, 7, "'|V7'");
}

static void test_compound_gaps_and_tail_become_void_padding(void **state)
{
	hid_t c = H5Tcreate(H5T_COMPOUND, 24);

	(void)state;
	H5Tinsert(c, "b", 8, H5T_IEEE_F64BE);  /* inserted out of order on purpose */
	H5Tinsert(c, "a", 0, H5T_STD_I32LE);
	expect(c, H5M_DT_FIXED, 24, "[('a', '<i4'), ('', '|V4'), ('b', '>f8'), ('', '|V8')]");
}

static void test_nested_compounds_and_array_members(void **state)
{
	hid_t inner = H5Tcreate(H5T_COMPOUND, 5), outer = H5Tcreate(H5T_COMPOUND, 5 + 12 + 8);
	hsize_t d3 = 3, d22[2] = { 2, 2 };
	hid_t a3 = H5Tarray_create2(H5T_IEEE_F32LE, 1, &d3), a22 = H5Tarray_create2(H5T_STD_I16BE, 2, d22);

	(void)state;
	H5Tinsert(inner, "u", 0, H5T_STD_U8LE);
	H5Tinsert(inner, "v", 1, H5T_IEEE_F32LE);
	H5Tinsert(outer, "p", 0, inner);
	H5Tinsert(outer, "arr", 5, a3);
	H5Tinsert(outer, "m", 17, a22);
	expect(outer, H5M_DT_FIXED, 25,
	       "[('p', [('u', '|u1'), ('v', '<f4')]), ('arr', '<f4', (3,)), ('m', '>i2', (2, 2))]");
	H5Tclose(inner);
	H5Tclose(a3);
	H5Tclose(a22);
}

static void test_field_names_are_python_string_literals(void **state)
{
	hid_t c = H5Tcreate(H5T_COMPOUND, 2);

	(void)state;
	H5Tinsert(c, "it's", 0, H5T_STD_U8LE);
	H5Tinsert(c, "back\\slash", 1, H5T_STD_U8LE);
	expect(c, H5M_DT_FIXED, 2, "[('it\\'s', '|u1'), ('back\\\\slash', '|u1')]");
}

static void test_array_typed_dataset_folds_dims_into_the_shape(void **state)
{
	hsize_t dims[2] = { 4, 3 };
	hid_t a = H5Tarray_create2(H5T_IEEE_F64LE, 2, dims);
	struct h5m_dtype dt;
	char why[128];

	(void)state;
	assert_int_equal(h5m_dtype_describe(a, &dt, why, sizeof(why)), 0);
	assert_string_equal(dt.descr, "'<f8'");
	assert_int_equal(dt.elem_size, 96);
	assert_int_equal(dt.extra_rank, 2);
	assert_int_equal(dt.extra_dims[0], 4);
	assert_int_equal(dt.extra_dims[1], 3);
	h5m_dtype_destroy(&dt);
	H5Tclose(a);
}

static void test_variable_length_types_are_flat_values(void **state)
{
	hid_t s = H5Tcopy(H5T_C_S1), v = H5Tvlen_create(H5T_STD_I32LE);

	(void)state;
	H5Tset_size(s, H5T_VARIABLE);
	expect(s, H5M_DT_VLEN_STR, 1, "'|u1'");
	expect(v, H5M_DT_VLEN, 4, "'<i4'");
}

static void test_references_and_nested_vlen_are_refused_with_a_reason(void **state)
{
	hid_t c = H5Tcreate(H5T_COMPOUND, 4 + sizeof(hvl_t)), v = H5Tvlen_create(H5T_STD_I32LE);
	struct h5m_dtype dt;
	char why[128] = "";

	(void)state;
	assert_int_equal(h5m_dtype_describe(H5T_STD_REF_OBJ, &dt, why, sizeof(why)), -ENOTSUP);
	assert_string_equal(why, "object and region references have no byte form");
	H5Tinsert(c, "n", 0, H5T_STD_I32LE);
	H5Tinsert(c, "v", 4, v);
	assert_int_equal(h5m_dtype_describe(c, &dt, why, sizeof(why)), -ENOTSUP);
	assert_string_equal(why, "variable-length data inside another type");
	assert_null(dt.descr);
	H5Tclose(c);
	H5Tclose(v);
}

/* An integer type of `base` with the given size, precision and bit offset (0: unchanged). */
static hid_t int_type(hid_t base, size_t size, size_t prec, size_t off)
{
	hid_t t = H5Tcopy(base);

	if (size)
		H5Tset_size(t, size);
	if (off || prec) {
		H5Tset_precision(t, 1);
		H5Tset_offset(t, off);
	}
	if (prec)
		H5Tset_precision(t, prec);
	return t;
}

/* Describes t, checks descr, served size and whether HDF5 must convert; closes t. */
static void expect_served(hid_t t, size_t size, const char *descr, bool converted)
{
	struct h5m_dtype dt;
	char why[128] = "";

	assert_true(t >= 0);
	assert_int_equal(h5m_dtype_describe(t, &dt, why, sizeof(why)), 0);
	assert_string_equal(dt.descr, descr);
	assert_int_equal(dt.elem_size, size);
	assert_int_equal(dt.converted, converted);
	assert_true(dt.mem_type >= 0);
	assert_int_equal(H5Tget_size(dt.mem_type), size);
	h5m_dtype_destroy(&dt);
	H5Tclose(t);
}

static void test_precision_and_offset_integers_are_served_as_values(void **state)
{
	(void)state;
	expect_served(H5Tcopy(H5T_STD_I32BE), 4, "'>i4'", false);
	expect_served(int_type(H5T_STD_U16LE, 0, 12, 2), 2, "'<u2'", true);
	expect_served(int_type(H5T_STD_I16LE, 0, 12, 0), 2, "'<i2'", true);
	/* The smallest numpy integer that holds every value, in the stored byte order. */
	expect_served(int_type(H5T_STD_U32BE, 0, 12, 0), 2, "'>u2'", true);
	expect_served(int_type(H5T_STD_U32LE, 0, 20, 5), 4, "'<u4'", true);
	expect_served(int_type(H5T_STD_I64LE, 0, 7, 3), 1, "'|i1'", true);
	expect_served(int_type(H5T_STD_B16LE, 0, 9, 1), 2, "'<u2'", true);
}

static void test_integers_of_widths_numpy_lacks_are_widened(void **state)
{
	(void)state;
	expect_served(int_type(H5T_STD_I32LE, 3, 0, 0), 4, "'<i4'", true);
	expect_served(int_type(H5T_STD_U32BE, 3, 0, 0), 4, "'>u4'", true);
	expect_served(int_type(H5T_STD_I64LE, 5, 0, 0), 8, "'<i8'", true);
	expect_served(int_type(H5T_STD_U64BE, 6, 0, 0), 8, "'>u8'", true);
	expect_served(int_type(H5T_STD_I64LE, 7, 0, 0), 8, "'<i8'", true);
	expect_served(int_type(H5T_STD_B32LE, 3, 0, 0), 4, "'<u4'", true);
	/* Nine bytes of which 64 bits hold the value: that fits numpy's widest integer. */
	expect_served(int_type(H5T_STD_I64LE, 9, 0, 0), 8, "'<i8'", true);
}

static void test_integers_wider_than_64_bits_are_refused(void **state)
{
	hid_t t = int_type(H5T_STD_I64LE, 9, 72, 0);
	struct h5m_dtype dt;
	char why[128] = "";

	(void)state;
	assert_int_equal(h5m_dtype_describe(t, &dt, why, sizeof(why)), -ENOTSUP);
	assert_string_equal(why, "integers of 72 bits");
	H5Tclose(t);
}

static void test_odd_integers_inside_compounds_arrays_enums_and_vlen(void **state)
{
	hid_t c = H5Tcreate(H5T_COMPOUND, 16), i3 = int_type(H5T_STD_I32LE, 3, 0, 0);
	hid_t u12 = int_type(H5T_STD_U16LE, 0, 12, 2), e = H5Tenum_create(u12);
	hid_t u12in32 = int_type(H5T_STD_U32LE, 0, 12, 0), arr;
	hsize_t d3 = 3;
	unsigned short lo = 1, hi = 1000;
	struct h5m_dtype dt;
	char why[128] = "";

	(void)state;
	/* Members keep their order and the gap before b: b moves by the byte c grew. */
	H5Tinsert(c, "b", 8, H5T_IEEE_F64LE);
	H5Tinsert(c, "a", 0, u12);
	H5Tinsert(c, "c", 2, i3);
	expect_served(c, 17, "[('a', '<u2'), ('c', '<i4'), ('', '|V3'), ('b', '<f8')]", true);
	/* A member served narrower moves the ones after it back. */
	c = H5Tcreate(H5T_COMPOUND, 13);
	H5Tinsert(c, "x", 0, u12in32);
	H5Tinsert(c, "y", 4, H5T_IEEE_F64LE);
	expect_served(c, 11, "[('x', '<u2'), ('y', '<f8'), ('', '|V1')]", true);
	c = H5Tcreate(H5T_COMPOUND, 12);
	H5Tinsert(c, "x", 0, H5T_STD_I32LE);
	H5Tinsert(c, "y", 4, H5T_IEEE_F64BE);
	expect_served(c, 12, "[('x', '<i4'), ('y', '>f8')]", false);
	arr = H5Tarray_create2(i3, 1, &d3);
	assert_int_equal(h5m_dtype_describe(arr, &dt, why, sizeof(why)), 0);
	assert_string_equal(dt.descr, "'<i4'");
	assert_int_equal(dt.elem_size, 12);
	assert_int_equal(dt.extra_rank, 1);
	assert_true(dt.converted);
	h5m_dtype_destroy(&dt);
	H5Tclose(arr);
	H5Tenum_insert(e, "LOW", &lo);
	H5Tenum_insert(e, "HIGH", &hi);
	expect_served(e, 2, "'<u2'", true);
	arr = H5Tvlen_create(i3);
	assert_int_equal(h5m_dtype_describe(arr, &dt, why, sizeof(why)), 0);
	assert_int_equal(dt.kind, H5M_DT_VLEN);
	assert_string_equal(dt.descr, "'<i4'");
	assert_int_equal(dt.elem_size, 4);
	assert_int_equal(H5Tget_size(dt.base_type), 4);
	h5m_dtype_destroy(&dt);
	H5Tclose(arr);
	H5Tclose(i3);
	H5Tclose(u12);
	H5Tclose(u12in32);
}

static void format(hid_t t, const void *buf, size_t n, unsigned rank, const hsize_t *dims, const char *want)
{
	char *out = NULL;
	size_t len = 0;

	assert_int_equal(h5m_dtype_format_values(H5I_INVALID_HID, H5I_INVALID_HID, t, buf, n, rank, dims, &out, &len), 0);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
	free(out);
}

static void format_as(hid_t ft, hid_t mt, const void *buf, size_t n, unsigned rank, const hsize_t *dims,
                      const char *want)
{
	char *out = NULL;
	size_t len = 0;

	assert_int_equal(h5m_dtype_format_values(H5I_INVALID_HID, ft, mt, buf, n, rank, dims, &out, &len), 0);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
	free(out);
}

static void test_attribute_values_format_as_text(void **state)
{
	int ints[6] = { 1, 2, 3, -4, 5, 6 };
	double ds[3] = { 0.1, 1e20, 2.5 };
	float f = 0.1f;
	hsize_t d1 = 3, d23[2] = { 2, 3 };
	char fixed[2][4] = { "ab", "cde" };
	const char *vs[2] = { "hello", "wörld" };
	hid_t s4 = H5Tcopy(H5T_C_S1), vs_t = H5Tcopy(H5T_C_S1), e = H5Tenum_create(H5T_NATIVE_INT);
	int green = 1, red = 0;

	(void)state;
	format(H5T_NATIVE_INT, ints, 1, 0, NULL, "1");
	format(H5T_NATIVE_INT, ints, 3, 1, &d1, "1 2 3");
	format(H5T_NATIVE_INT, ints, 6, 2, d23, "1 2 3\n-4 5 6");
	format(H5T_NATIVE_DOUBLE, ds, 3, 1, &d1, "0.1 1e+20 2.5");
	ds[2] = 1000.0;
	format(H5T_NATIVE_DOUBLE, ds, 3, 1, &d1, "0.1 1e+20 1000.0");
	format(H5T_NATIVE_FLOAT, &f, 1, 0, NULL, "0.1");
	H5Tset_size(s4, 4);
	format(s4, fixed, 2, 1, d23, "'ab' 'cde'");
	H5Tset_size(vs_t, H5T_VARIABLE);
	format(vs_t, vs, 1, 0, NULL, "hello");
	format(vs_t, vs, 2, 1, d23, "'hello' 'wörld'");
	H5Tenum_insert(e, "RED", &red);
	H5Tenum_insert(e, "GREEN", &green);
	format(e, &green, 1, 0, NULL, "GREEN");
	H5Tclose(s4);
	H5Tclose(vs_t);
	H5Tclose(e);
}

/* A half-precision float type in the host's byte order. */
static hid_t half_type(void)
{
	hid_t t = H5Tcopy(H5T_NATIVE_FLOAT);

	H5Tset_fields(t, 15, 10, 5, 0, 10);
	H5Tset_size(t, 2);
	H5Tset_ebias(t, 15);
	return t;
}

static void test_floats_print_fewest_digits_of_their_own_precision(void **state)
{
	float halfs[5] = { 0.0999755859375f, 65504.0f, 0.000060975551605224609375f, -2.0f, 0.015625f };
	long double ld[2] = { 0.1L, 1.0L / 3.0L };
	hsize_t d4 = 4, d2 = 2;
	hid_t h = half_type();
	char want[128];

	(void)state;
	/* The stored type decides the digits; the memory type (float) only carries the value. */
	format_as(h, H5T_NATIVE_FLOAT, halfs, 4, 1, &d4, "0.1 65500.0 6.1e-05 -2.0");
	/* 2^-6: the correctly rounded 0.01562 misses (the interval below a power of two is
	 * half as wide), its neighbour 0.01563 reads back. */
	format_as(h, H5T_NATIVE_FLOAT, halfs + 4, 1, 0, NULL, "0.01563");
	format_as(H5T_NATIVE_LDOUBLE, H5T_NATIVE_LDOUBLE, ld, 1, 0, NULL, "0.1");
	snprintf(want, sizeof(want), "%.*Lg", 20, ld[1]);
	assert_true(strtold(want, NULL) == ld[1]);
	format_as(H5T_NATIVE_LDOUBLE, H5T_NATIVE_LDOUBLE, ld + 1, 1, 0, NULL, want);
	format_as(H5T_NATIVE_LDOUBLE, H5T_NATIVE_LDOUBLE, ld, 2, 1, &d2, "0.1 0.33333333333333333334");
	H5Tclose(h);
}

static void test_array_types_add_dims_and_nest_in_compounds(void **state)
{
	float v[6] = { 0, 1, 2, 3, 4, 5 };
	hsize_t d3 = 3, d23[2] = { 2, 3 }, d2 = 2;
	hid_t a3 = H5Tarray_create2(H5T_NATIVE_FLOAT, 1, &d3), a23 = H5Tarray_create2(H5T_NATIVE_FLOAT, 2, d23);
	hid_t c = H5Tcreate(H5T_COMPOUND, 4 + sizeof(v));
	struct {
		int32_t k;
		float m[2][3];
	} rec = { 7, { { 0, 1, 2 }, { 3, 4, 5 } } };
	const char *strs[2] = { "a b", "" };
	hid_t vs = H5Tcopy(H5T_C_S1);

	(void)state;
	format(a3, v, 1, 0, NULL, "0.0 1.0 2.0");
	format(a3, v, 2, 1, &d2, "0.0 1.0 2.0\n3.0 4.0 5.0");
	format(a23, v, 1, 0, NULL, "0.0 1.0 2.0\n3.0 4.0 5.0");
	H5Tinsert(c, "k", 0, H5T_NATIVE_INT32);
	H5Tinsert(c, "m", 4, a23);
	format(c, &rec, 1, 0, NULL, "{k: 7, m: [[0.0 1.0 2.0] [3.0 4.0 5.0]]}");
	/* Strings of an array are literals: spaces inside and an empty last one stay visible. */
	H5Tset_size(vs, H5T_VARIABLE);
	format(vs, strs, 2, 1, &d2, "'a b' ''");
	format(vs, strs + 1, 1, 0, NULL, "");
	H5Tclose(vs);
	H5Tclose(c);
	H5Tclose(a23);
	H5Tclose(a3);
}

static void test_doubles_print_shortest_round_trip_text(void **state)
{
	static const double v[] = { 0.1, 1.0 / 3.0, 123456789.0, 5e-324, -0.0, 1.7976931348623157e308 };
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
		h5m_dtype_format_double(v[i], out, sizeof(out));
		assert_true(strtod(out, NULL) == v[i]);
	}
	h5m_dtype_format_double(0.1, out, sizeof(out));
	assert_string_equal(out, "0.1");
	h5m_dtype_format_double(1000.0, out, sizeof(out));
	assert_string_equal(out, "1000.0");
	h5m_dtype_format_double(-2.5e-7, out, sizeof(out));
	assert_string_equal(out, "-2.5e-07");
	h5m_dtype_format_double(123456789.125, out, sizeof(out));
	assert_string_equal(out, "123456789.125");
	h5m_dtype_format_double(1e16, out, sizeof(out));
	assert_string_equal(out, "1e+16");
	h5m_dtype_format_double(1.5e15, out, sizeof(out));
	assert_string_equal(out, "1500000000000000.0");
	h5m_dtype_format_double(-0.0, out, sizeof(out));
	assert_string_equal(out, "-0.0");
	h5m_dtype_format_double(0.00012, out, sizeof(out));
	assert_string_equal(out, "0.00012");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbers_keep_their_stored_byte_order),
		cmocka_unit_test(test_floats_print_fewest_digits_of_their_own_precision),
		cmocka_unit_test(test_array_types_add_dims_and_nest_in_compounds),
		cmocka_unit_test(test_half_precision_float_is_f2),
		cmocka_unit_test(test_bools_of_pytables_and_h5py_are_b1),
		cmocka_unit_test(test_other_enums_show_their_base_integer),
		cmocka_unit_test(test_complex_compounds_are_c8_and_c16),
		cmocka_unit_test(test_strings_and_opaque_are_S_and_V),
		cmocka_unit_test(test_compound_gaps_and_tail_become_void_padding),
		cmocka_unit_test(test_nested_compounds_and_array_members),
		cmocka_unit_test(test_field_names_are_python_string_literals),
		cmocka_unit_test(test_array_typed_dataset_folds_dims_into_the_shape),
		cmocka_unit_test(test_variable_length_types_are_flat_values),
		cmocka_unit_test(test_references_and_nested_vlen_are_refused_with_a_reason),
		cmocka_unit_test(test_precision_and_offset_integers_are_served_as_values),
		cmocka_unit_test(test_integers_of_widths_numpy_lacks_are_widened),
		cmocka_unit_test(test_integers_wider_than_64_bits_are_refused),
		cmocka_unit_test(test_odd_integers_inside_compounds_arrays_enums_and_vlen),
		cmocka_unit_test(test_attribute_values_format_as_text),
		cmocka_unit_test(test_doubles_print_shortest_round_trip_text),
	};

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
