/* dtype.c: HDF5 element type -> npy descr and served element size; attribute values -> text.
 * It inspects types and formats memory buffers (resolving references to paths); it never
 * reads datasets or attributes. */
#include "h5mount/dtype.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable NUL-terminated string; `failed` sticks after the first allocation failure. */
struct sbuf {
	char *s;
	size_t len, cap;
	bool failed;
};

static void sb_add(struct sbuf *b, const char *data, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *s;

		while (cap < b->len + n + 1)
			cap *= 2;
		s = realloc(b->s, cap);
		if (!s) {
			b->failed = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, data, n);
	b->len += n;
	b->s[b->len] = 0;
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->failed = true;
		return;
	}
	sb_add(b, tmp, (size_t)n);
}

/* Appends a Python string literal for `s` (single quotes, escapes for quote, backslash and
 * control bytes; other bytes, UTF-8 included, as they are). */
static void sb_pystr(struct sbuf *b, const char *s)
{
	sb_puts(b, "'");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\'' || c == '\\')
			sb_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			sb_printf(b, "\\x%02x", c);
		else
			sb_add(b, s, 1);
	}
	sb_puts(b, "'");
}

static char order_char(hid_t t, size_t size)
{
	if (size == 1)
		return '|';
	return H5Tget_order(t) == H5T_ORDER_BE ? '>' : '<';
}

static bool float_layout(hid_t t, size_t spos, size_t epos, size_t esize, size_t mpos, size_t msize)
{
	size_t a, b, c, d, e;

	if (H5Tget_fields(t, &a, &b, &c, &d, &e) < 0)
		return false;
	return a == spos && b == epos && c == esize && d == mpos && e == msize && H5Tget_offset(t) == 0;
}

/* Is this an enum of a one-byte integer with exactly FALSE=0 and TRUE=1 (h5py's bool)? */
static bool is_bool_enum(hid_t t)
{
	char name[8];
	int nm = H5Tget_nmembers(t);

	if (H5Tget_size(t) != 1 || nm != 2)
		return false;
	for (unsigned i = 0; i < 2; i++) {
		signed char v;
		char *mn;
		bool ok;

		if (H5Tget_member_value(t, i, &v) < 0)
			return false;
		mn = H5Tget_member_name(t, i);
		if (!mn)
			return false;
		snprintf(name, sizeof(name), "%s", mn);
		H5free_memory(mn);
		ok = (v == 0 && !strcmp(name, "FALSE")) || (v == 1 && !strcmp(name, "TRUE"));
		if (!ok)
			return false;
	}
	return true;
}

/* Compound {r, i} of two identical IEEE floats with no padding: numpy complex. */
static bool is_complex(hid_t t, size_t *half)
{
	hid_t r, i;
	char *rn = NULL, *in = NULL;
	bool ok = false;
	size_t size = H5Tget_size(t);

	if (H5Tget_nmembers(t) != 2)
		return false;
	r = H5Tget_member_type(t, 0);
	i = H5Tget_member_type(t, 1);
	rn = H5Tget_member_name(t, 0);
	in = H5Tget_member_name(t, 1);
	if (r >= 0 && i >= 0 && rn && in && !strcmp(rn, "r") && !strcmp(in, "i") &&
	    H5Tget_class(r) == H5T_FLOAT && H5Tequal(r, i) > 0 && H5Tget_size(r) * 2 == size &&
	    H5Tget_member_offset(t, 0) == 0 && H5Tget_member_offset(t, 1) == size / 2 &&
	    (size == 8 || size == 16)) {
		ok = size == 8 ? float_layout(r, 31, 23, 8, 0, 23) : float_layout(r, 63, 52, 11, 0, 52);
		*half = size / 2;
	}
	if (rn)
		H5free_memory(rn);
	if (in)
		H5free_memory(in);
	if (r >= 0)
		H5Tclose(r);
	if (i >= 0)
		H5Tclose(i);
	return ok;
}

/* ---- served types ---- */

/* Whether integer or bitfield t stores a numpy integer as it is: 1, 2, 4 or 8 bytes, every bit
 * a value bit, none offset. */
static bool int_is_plain(hid_t t)
{
	size_t size = H5Tget_size(t);

	return (size == 1 || size == 2 || size == 4 || size == 8) && H5Tget_precision(t) == 8 * size &&
	       H5Tget_offset(t) == 0;
}

/* The standard integer (or bitfield) type of the smallest numpy width that holds t's
 * precision, with t's sign and byte order. Returns it (the caller closes it), or
 * H5I_INVALID_HID with the reason in why. */
static hid_t widened_int(hid_t t, char *why, size_t cap)
{
	size_t prec = H5Tget_precision(t), n;
	bool bits = H5Tget_class(t) == H5T_BITFIELD, sign = !bits && H5Tget_sign(t) == H5T_SGN_2;
	hid_t base, w;

	if (prec == 0 || prec > 64) {
		snprintf(why, cap, "integers of %zu bits", prec);
		return H5I_INVALID_HID;
	}
	n = prec <= 8 ? 1 : prec <= 16 ? 2 : prec <= 32 ? 4 : 8;
	if (bits)
		base = n == 1 ? H5T_STD_B8LE : n == 2 ? H5T_STD_B16LE : n == 4 ? H5T_STD_B32LE : H5T_STD_B64LE;
	else if (sign)
		base = n == 1 ? H5T_STD_I8LE : n == 2 ? H5T_STD_I16LE : n == 4 ? H5T_STD_I32LE : H5T_STD_I64LE;
	else
		base = n == 1 ? H5T_STD_U8LE : n == 2 ? H5T_STD_U16LE : n == 4 ? H5T_STD_U32LE : H5T_STD_U64LE;
	w = H5Tcopy(base);
	if (w >= 0 && n > 1 && H5Tget_order(t) == H5T_ORDER_BE && H5Tset_order(w, H5T_ORDER_BE) < 0) {
		H5Tclose(w);
		w = H5I_INVALID_HID;
	}
	if (w < 0)
		snprintf(why, cap, "cannot make the served integer type");
	return w;
}

static int served_type(hid_t t, hid_t *out, bool *conv, char *why, size_t cap);

/* An enum whose base integer is served wider: the same names over the served base, each
 * value converted. HDF5 converts enums by member name. */
static int served_enum(hid_t t, hid_t base, hid_t nbase, hid_t *out, char *why, size_t cap)
{
	int nm = H5Tget_nmembers(t), rc = 0;
	hid_t e = H5Tenum_create(nbase);

	if (nm < 0 || e < 0) {
		snprintf(why, cap, "unreadable enum type");
		rc = -ENOTSUP;
	}
	for (unsigned i = 0; rc == 0 && i < (unsigned)nm; i++) {
		_Alignas(16) unsigned char val[32] = { 0 };
		char *name = H5Tget_member_name(t, i);

		if (!name || H5Tget_member_value(t, i, val) < 0 || H5Tconvert(base, nbase, 1, val, NULL, H5P_DEFAULT) < 0 ||
		    H5Tenum_insert(e, name, val) < 0) {
			snprintf(why, cap, "enum member values do not fit the served integer");
			rc = -ENOTSUP;
		}
		if (name)
			H5free_memory(name);
	}
	if (rc) {
		if (e >= 0)
			H5Tclose(e);
		return rc;
	}
	*out = e;
	return 0;
}

/* A compound with some members served in another width: members keep their order and the
 * gaps between them, each moved by how much the members before it grew (or shrank: a 12-bit
 * integer in 32 bits is served in 16; `grow` then wraps, and size_t arithmetic modulo 2^64
 * still gives the right offsets); the trailing padding stays too. */
static int served_compound(hid_t t, hid_t *out, bool *conv, char *why, size_t cap)
{
	int nm = H5Tget_nmembers(t), rc = 0;
	hid_t *mt = NULL, c = H5I_INVALID_HID;
	unsigned *order = NULL;
	bool any = false;
	size_t grow = 0;

	if (nm <= 0) /* refused with its reason by compound_descr */
		goto copy;
	mt = calloc((size_t)nm, sizeof(*mt));
	order = calloc((size_t)nm, sizeof(*order));
	if (!mt || !order) {
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < (unsigned)nm; i++) {
		hid_t m = H5Tget_member_type(t, i);

		mt[i] = H5I_INVALID_HID;
		order[i] = i;
		if (m < 0) {
			snprintf(why, cap, "unreadable compound member");
			rc = -ENOTSUP;
		} else {
			rc = served_type(m, &mt[i], &any, why, cap);
			H5Tclose(m);
		}
		if (rc)
			goto out;
	}
	if (!any)
		goto copy;
	for (unsigned i = 1; i < (unsigned)nm; i++)
		for (unsigned j = i; j > 0 && H5Tget_member_offset(t, order[j]) < H5Tget_member_offset(t, order[j - 1]); j--) {
			unsigned x = order[j];

			order[j] = order[j - 1];
			order[j - 1] = x;
		}
	for (unsigned i = 0; i < (unsigned)nm; i++) {
		hid_t m = H5Tget_member_type(t, i);

		grow += H5Tget_size(mt[i]) - (m >= 0 ? H5Tget_size(m) : 0);
		if (m >= 0)
			H5Tclose(m);
	}
	c = H5Tcreate(H5T_COMPOUND, H5Tget_size(t) + grow);
	grow = 0;
	for (unsigned k = 0; c >= 0 && rc == 0 && k < (unsigned)nm; k++) {
		unsigned i = order[k];
		char *name = H5Tget_member_name(t, i);
		hid_t m = H5Tget_member_type(t, i);

		if (!name || m < 0 || H5Tinsert(c, name, H5Tget_member_offset(t, i) + grow, mt[i]) < 0) {
			snprintf(why, cap, "cannot make the served compound type");
			rc = -ENOTSUP;
		} else {
			grow += H5Tget_size(mt[i]) - H5Tget_size(m);
		}
		if (name)
			H5free_memory(name);
		if (m >= 0)
			H5Tclose(m);
	}
	if (c < 0) {
		snprintf(why, cap, "cannot make the served compound type");
		rc = -ENOTSUP;
	}
	if (rc == 0) {
		*out = c;
		c = H5I_INVALID_HID;
		*conv = true;
	}
	goto out;
copy:
	*out = H5Tcopy(t);
	if (*out < 0)
		rc = -ENOMEM;
out:
	if (c >= 0)
		H5Tclose(c);
	for (int i = 0; mt && i < nm; i++)
		if (mt[i] >= 0)
			H5Tclose(mt[i]);
	free(mt);
	free(order);
	return rc;
}

/* Makes *out (the caller closes it) the served type of fixed-size type t, setting *conv when it
 * differs from t. Returns 0, -ENOTSUP (reason in why) or -ENOMEM. */
static int served_type(hid_t t, hid_t *out, bool *conv, char *why, size_t cap)
{
	hid_t base = H5I_INVALID_HID, nbase = H5I_INVALID_HID;
	bool changed = false;
	int rc = 0;

	*out = H5I_INVALID_HID;
	switch (H5Tget_class(t)) {
	case H5T_INTEGER:
	case H5T_BITFIELD:
		if (int_is_plain(t))
			break;
		*out = widened_int(t, why, cap);
		if (*out < 0)
			return -ENOTSUP;
		*conv = true;
		return 0;
	case H5T_ENUM:
	case H5T_ARRAY:
		base = H5Tget_super(t);
		if (base < 0) {
			snprintf(why, cap, "unreadable base type");
			return -ENOTSUP;
		}
		rc = served_type(base, &nbase, &changed, why, cap);
		if (rc == 0 && changed) {
			if (H5Tget_class(t) == H5T_ENUM) {
				rc = served_enum(t, base, nbase, out, why, cap);
			} else {
				hsize_t dims[H5S_MAX_RANK];
				int r = H5Tget_array_ndims(t);

				if (r < 0 || r > H5S_MAX_RANK || H5Tget_array_dims2(t, dims) < 0 ||
				    (*out = H5Tarray_create2(nbase, (unsigned)r, dims)) < 0) {
					snprintf(why, cap, "unreadable array type");
					rc = -ENOTSUP;
				}
			}
			*conv |= rc == 0;
		}
		H5Tclose(base);
		if (nbase >= 0)
			H5Tclose(nbase);
		if (rc || changed)
			return rc;
		break;
	case H5T_COMPOUND:
		return served_compound(t, out, conv, why, cap);
	default:
		break;
	}
	*out = H5Tcopy(t);
	return *out < 0 ? -ENOMEM : 0;
}

static int descr_of(hid_t t, struct sbuf *b, char *why, size_t cap);

/* Appends "(d0, d1,)"-style subarray dims of an H5T_ARRAY. Returns its rank or -ENOTSUP. */
static int array_dims(hid_t t, hsize_t *dims)
{
	int rank = H5Tget_array_ndims(t);

	if (rank < 0 || rank > H5M_NPY_MAXDIMS || H5Tget_array_dims2(t, dims) < 0)
		return -ENOTSUP;
	return rank;
}

static int compound_descr(hid_t t, struct sbuf *b, char *why, size_t cap)
{
	int nm = H5Tget_nmembers(t);
	size_t size = H5Tget_size(t), pos = 0;
	unsigned *order = NULL;
	int rc = 0;

	if (nm <= 0) {
		snprintf(why, cap, "compound type without members");
		return -ENOTSUP;
	}
	order = calloc((size_t)nm, sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (unsigned i = 0; i < (unsigned)nm; i++)
		order[i] = i;
	/* Insertion sort by offset: numpy's list form needs fields in memory order. */
	for (unsigned i = 1; i < (unsigned)nm; i++)
		for (unsigned j = i; j > 0 && H5Tget_member_offset(t, order[j]) < H5Tget_member_offset(t, order[j - 1]); j--) {
			unsigned x = order[j];

			order[j] = order[j - 1];
			order[j - 1] = x;
		}
	sb_puts(b, "[");
	for (unsigned k = 0; k < (unsigned)nm && rc == 0; k++) {
		unsigned i = order[k];
		size_t off = H5Tget_member_offset(t, i);
		hid_t mt = H5Tget_member_type(t, i);
		char *name = H5Tget_member_name(t, i);
		size_t msize = mt >= 0 ? H5Tget_size(mt) : 0;

		if (mt < 0 || !name) {
			snprintf(why, cap, "unreadable compound member");
			rc = -ENOTSUP;
		} else if (off < pos) {
			snprintf(why, cap, "compound members overlap");
			rc = -ENOTSUP;
		} else if (!*name) {
			snprintf(why, cap, "compound member with an empty name");
			rc = -ENOTSUP;
		} else {
			if (k)
				sb_puts(b, ", ");
			if (off > pos)
				sb_printf(b, "('', '|V%zu'), ", off - pos);
			sb_puts(b, "(");
			sb_pystr(b, name);
			sb_puts(b, ", ");
			if (H5Tget_class(mt) == H5T_ARRAY) {
				hsize_t dims[H5M_NPY_MAXDIMS];
				int r = array_dims(mt, dims);
				hid_t base = H5Tget_super(mt);

				if (r < 0 || base < 0) {
					snprintf(why, cap, "unreadable array member");
					rc = -ENOTSUP;
				} else {
					rc = descr_of(base, b, why, cap);
					sb_puts(b, ", (");
					for (int d = 0; d < r; d++)
						sb_printf(b, "%s%llu", d ? ", " : "", (unsigned long long)dims[d]);
					sb_puts(b, r == 1 ? ",))" : "))");
				}
				if (base >= 0)
					H5Tclose(base);
			} else {
				rc = descr_of(mt, b, why, cap);
				sb_puts(b, ")");
			}
			pos = off + msize;
		}
		if (name)
			H5free_memory(name);
		if (mt >= 0)
			H5Tclose(mt);
	}
	if (rc == 0 && pos > size) {
		snprintf(why, cap, "compound member beyond the type's size");
		rc = -ENOTSUP;
	}
	if (rc == 0 && pos < size)
		sb_printf(b, ", ('', '|V%zu')", size - pos);
	sb_puts(b, "]");
	free(order);
	return rc;
}

/* Appends the descr literal of fixed-size type t (no top-level array folding). */
static int descr_of(hid_t t, struct sbuf *b, char *why, size_t cap)
{
	size_t size = H5Tget_size(t);
	H5T_class_t cls = H5Tget_class(t);
	size_t half;

	if (size == 0) {
		snprintf(why, cap, "zero-sized element type");
		return -ENOTSUP;
	}
	switch (cls) {
	case H5T_INTEGER:
		sb_printf(b, "'%c%c%zu'", order_char(t, size), H5Tget_sign(t) == H5T_SGN_2 ? 'i' : 'u', size);
		return 0;
	case H5T_BITFIELD:
		if (size == 1)
			sb_puts(b, "'|b1'");
		else
			sb_printf(b, "'%cu%zu'", order_char(t, size), size);
		return 0;
	case H5T_FLOAT:
		if ((size == 2 && float_layout(t, 15, 10, 5, 0, 10)) || (size == 4 && float_layout(t, 31, 23, 8, 0, 23)) ||
		    (size == 8 && float_layout(t, 63, 52, 11, 0, 52)))
			sb_printf(b, "'%cf%zu'", order_char(t, size), size);
		else if (size == sizeof(long double) && H5Tequal(t, H5T_NATIVE_LDOUBLE) > 0)
			sb_printf(b, "'<f%zu'", size);
		else
			sb_printf(b, "'|V%zu'", size); /* an unusual float layout: raw bytes */
		return 0;
	case H5T_ENUM:
		if (is_bool_enum(t)) {
			sb_puts(b, "'|b1'");
		} else {
			hid_t base = H5Tget_super(t);
			int rc;

			if (base < 0)
				return -ENOTSUP;
			rc = descr_of(base, b, why, cap);
			H5Tclose(base);
			return rc;
		}
		return 0;
	case H5T_STRING:
		if (H5Tis_variable_str(t) > 0) {
			snprintf(why, cap, "variable-length strings inside another type");
			return -ENOTSUP;
		}
		sb_printf(b, "'|S%zu'", size);
		return 0;
	case H5T_OPAQUE:
	case H5T_TIME: /* HDF5 1.10 converts it to nothing (h5py has no dtype for it, h5dump prints
	                * "not yet implemented"), but reads it as itself: raw bytes */
		sb_printf(b, "'|V%zu'", size);
		return 0;
	case H5T_COMPOUND:
		if (is_complex(t, &half)) {
			hid_t r = H5Tget_member_type(t, 0);

			sb_printf(b, "'%cc%zu'", order_char(r, half), size);
			H5Tclose(r);
			return 0;
		}
		return compound_descr(t, b, why, cap);
	case H5T_ARRAY: {
		/* Only reached for arrays nested in arrays: fold into one subarray is not expressible
		 * as a plain descr, so refuse. */
		snprintf(why, cap, "nested array types");
		return -ENOTSUP;
	}
	case H5T_REFERENCE:
		snprintf(why, cap, "object and region references have no byte form");
		return -ENOTSUP;
	case H5T_VLEN:
		snprintf(why, cap, "variable-length data inside another type");
		return -ENOTSUP;
	default:
		snprintf(why, cap, "unknown type class %d", (int)cls);
		return -ENOTSUP;
	}
}

int h5m_dtype_describe(hid_t type, struct h5m_dtype *dt, char *why, size_t cap)
{
	struct sbuf b = { 0 };
	hid_t base = H5I_INVALID_HID, served = H5I_INVALID_HID;
	int rc = 0;

	memset(dt, 0, sizeof(*dt));
	dt->base_type = dt->mem_type = H5I_INVALID_HID;
	dt->kind = H5M_DT_FIXED;
	if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0) {
		dt->kind = H5M_DT_VLEN_STR;
		dt->elem_size = 1;
		sb_puts(&b, "'|u1'");
		goto out;
	}
	if (H5Tget_class(type) == H5T_VLEN) {
		base = H5Tget_super(type);
		if (base < 0 || H5Tget_class(base) == H5T_ARRAY) {
			snprintf(why, cap, "variable-length arrays of array types");
			rc = -ENOTSUP;
			goto out;
		}
		rc = served_type(base, &served, &dt->converted, why, cap);
		if (rc == 0)
			rc = descr_of(served, &b, why, cap);
		if (rc)
			goto out;
		dt->kind = H5M_DT_VLEN;
		dt->elem_size = H5Tget_size(served);
		dt->base_type = served;
		served = H5I_INVALID_HID;
		goto out;
	}
	rc = served_type(type, &served, &dt->converted, why, cap);
	if (rc)
		goto out;
	if (H5Tget_class(served) == H5T_ARRAY) {
		hsize_t dims[H5M_NPY_MAXDIMS];
		int r = array_dims(served, dims);

		base = H5Tget_super(served);
		if (r < 0 || base < 0) {
			snprintf(why, cap, "unreadable array type");
			rc = -ENOTSUP;
			goto out;
		}
		dt->extra_rank = (unsigned)r;
		for (int i = 0; i < r; i++)
			dt->extra_dims[i] = dims[i];
		rc = descr_of(base, &b, why, cap);
	} else {
		rc = descr_of(served, &b, why, cap);
	}
	dt->elem_size = H5Tget_size(served);
	dt->mem_type = served;
	served = H5I_INVALID_HID;
out:
	if (served >= 0)
		H5Tclose(served);
	if (base >= 0)
		H5Tclose(base);
	if (rc == 0 && b.failed)
		rc = -ENOMEM;
	if (rc) {
		free(b.s);
		h5m_dtype_destroy(dt);
		return rc;
	}
	dt->descr = b.s;
	return 0;
}

void h5m_dtype_destroy(struct h5m_dtype *dt)
{
	free(dt->descr);
	dt->descr = NULL;
	if (dt->base_type > 0)
		H5Tclose(dt->base_type);
	if (dt->mem_type > 0)
		H5Tclose(dt->mem_type);
	dt->base_type = dt->mem_type = H5I_INVALID_HID;
}

/* ---- attribute values as text ---- */

/* The precision a float attribute is printed in: the smallest of IEEE half, single, double
 * and the native long double whose exponent and mantissa hold the stored type's. */
enum fprec { P_HALF, P_FLOAT, P_DOUBLE, P_LDOUBLE };

/* Half-precision rounding (to nearest, ties to even) of a finite double, as a double: what
 * numpy's float16(x) holds. */
static double round_half(double x)
{
	double ax = fabs(x), q;
	int e;

	if (ax >= 65520.0)
		return x < 0 ? -INFINITY : INFINITY;
	if (ax < 0x1p-14) {
		q = 0x1p-24;
	} else {
		frexp(ax, &e); /* ax = m * 2^e, m in [0.5, 1): the leading bit is 2^(e-1) */
		q = ldexp(1.0, e - 1 - 10);
	}
	return nearbyint(x / q) * q;
}

static bool same_half(const char *text, long double v)
{
	return round_half(strtod(text, NULL)) == (double)v;
}

static bool same_float(const char *text, long double v)
{
	return strtof(text, NULL) == (float)v;
}

static bool same_double(const char *text, long double v)
{
	return strtod(text, NULL) == (double)v;
}

static bool same_ldouble(const char *text, long double v)
{
	return strtold(text, NULL) == v;
}

/* A float in decimal: sign, significant digits d[0..nd) (d[0] nonzero unless the value is 0)
 * and the exponent of d[0]. */
struct dec {
	bool neg;
	char d[40];
	int nd, exp;
};

/* Parses the "%.*Le" text [-]d[.ddd]e(+|-)XX into *x. */
static void dec_parse(const char *t, struct dec *x)
{
	const char *s;

	x->neg = t[0] == '-';
	x->nd = 0;
	for (s = t + x->neg; *s && *s != 'e'; s++)
		if (*s != '.' && x->nd < (int)sizeof(x->d) - 1)
			x->d[x->nd++] = *s;
	x->d[x->nd] = 0;
	x->exp = *s ? atoi(s + 1) : 0;
}

static void dec_text(const struct dec *x, char *out, size_t cap)
{
	snprintf(out, cap, "%s%c%s%se%d", x->neg ? "-" : "", x->d[0], x->nd > 1 ? "." : "", x->d + 1, x->exp);
}

/* The nd-digit decimal next to x in magnitude: one unit in the last digit up (dir > 0) or
 * down. x is not 0. */
static void dec_step(const struct dec *x, int dir, struct dec *y)
{
	int i = x->nd - 1;

	*y = *x;
	if (dir > 0) {
		while (i >= 0 && y->d[i] == '9')
			y->d[i--] = '0';
		if (i < 0) { /* 999 -> 1000: one decade up, still nd digits */
			y->d[0] = '1';
			y->exp++;
		} else {
			y->d[i]++;
		}
	} else {
		while (i >= 0 && y->d[i] == '0')
			y->d[i--] = '9';
		y->d[i]--;
		if (y->d[0] == '0') { /* 100 -> 099: the nd-digit value below is 999 a decade down */
			memset(y->d, '9', (size_t)y->nd);
			y->exp--;
		}
	}
}

/* Python's repr of a float, in precision `prec`: the fewest significant digits that read back
 * as the same value in that precision (of those, the closest to it), in fixed notation for
 * decimal exponents in [-4, 16) ("0.1", "65500.0", "1000.0"), else "1e+20", "-2.5e-07". */
static void repr_float(long double v, enum fprec prec, char *out, size_t cap)
{
	static const int maxp[] = { 5, 9, 17, LDBL_DECIMAL_DIG };
	static bool (*const same[])(const char *, long double) = { same_half, same_float, same_double,
		                                                        same_ldouble };
	char tmp[96];
	struct dec x, best;
	int p, n = 0;
	bool found = false;

	if (isnan(v)) {
		snprintf(out, cap, "nan");
		return;
	}
	if (isinf(v)) {
		snprintf(out, cap, v < 0 ? "-inf" : "inf");
		return;
	}
	for (p = 1; !found && p <= maxp[prec]; p++) {
		snprintf(tmp, sizeof(tmp), "%.*Le", p - 1, v);
		dec_parse(tmp, &x);
		best = x;
		found = p == maxp[prec] || same[prec](tmp, v);
		/* Next to a power of two the correctly rounded p digits may miss while a neighbour
		 * (the interval there is lopsided) reads back: 2^-6 in half is "0.01563". */
		for (int dir = -1; !found && v != 0 && dir <= 1; dir += 2) {
			struct dec y;

			dec_step(&x, dir, &y);
			dec_text(&y, tmp, sizeof(tmp));
			if (same[prec](tmp, v)) {
				best = y;
				found = true;
			}
		}
	}
	x = best;
	while (x.nd > 1 && x.d[x.nd - 1] == '0')
		x.nd--;
	x.d[x.nd] = 0;
	if (x.neg)
		n += snprintf(out + n, cap - (size_t)n, "-");
	if (x.exp >= 16 || x.exp < -4) {
		n += snprintf(out + n, cap - (size_t)n, "%c%s%s", x.d[0], x.nd > 1 ? "." : "", x.d + 1);
		snprintf(out + n, cap - (size_t)n, "e%c%02d", x.exp < 0 ? '-' : '+', x.exp < 0 ? -x.exp : x.exp);
	} else if (x.exp < 0) {
		snprintf(out + n, cap - (size_t)n, "0.%.*s%s", -x.exp - 1, "0000", x.d);
	} else if (x.exp + 1 >= x.nd) {
		snprintf(out + n, cap - (size_t)n, "%s%.*s.0", x.d, x.exp + 1 - x.nd, "0000000000000000");
	} else {
		snprintf(out + n, cap - (size_t)n, "%.*s.%s", x.exp + 1, x.d, x.d + x.exp + 1);
	}
}

void h5m_dtype_format_double(double v, char *out, size_t cap)
{
	repr_float(v, P_DOUBLE, out, cap);
}

/* Precision of float type t (the stored type when known, else the memory type). */
static enum fprec float_prec(hid_t t)
{
	size_t spos, epos, esize, mpos, msize;

	if (H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) < 0)
		msize = esize = 64;
	if (esize <= 5 && msize <= 10)
		return P_HALF;
	if (esize <= 8 && msize <= 23)
		return P_FLOAT;
	if (esize <= 11 && msize <= 52)
		return P_DOUBLE;
	return P_LDOUBLE;
}

/* What every formatter of one attribute shares. The formatters also take the memory type of
 * a value (mt) and its stored type (ft, H5I_INVALID_HID when unknown: the floats' precision
 * then comes from mt). */
struct fmt {
	hid_t loc;      /* the object references resolve against; H5I_INVALID_HID: print empty */
	struct sbuf *b; /* the text so far; b->failed set on allocation failure (or an
	                 * unreadable array type) */
};

static void format_elem(const struct fmt *f, hid_t ft, hid_t mt, const unsigned char *p, bool quote);

static void format_int(hid_t t, const unsigned char *p, struct sbuf *b)
{
	size_t size = H5Tget_size(t);
	bool sign = H5Tget_class(t) == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_2;

	/* Memory types are native: read with the host's byte order. */
	if (sign) {
		int64_t v = 0;

		switch (size) {
		case 1: { int8_t x; memcpy(&x, p, 1); v = x; break; }
		case 2: { int16_t x; memcpy(&x, p, 2); v = x; break; }
		case 4: { int32_t x; memcpy(&x, p, 4); v = x; break; }
		default: memcpy(&v, p, size < 8 ? size : 8); break;
		}
		sb_printf(b, "%" PRId64, v);
	} else {
		uint64_t v = 0;

		memcpy(&v, p, size < 8 ? size : 8);
		sb_printf(b, "%" PRIu64, v);
	}
}

/* A string's bytes: as they are, or (quote) as a Python literal so that arrays and
 * compounds stay readable whatever the strings hold. */
static void format_text(const char *s, size_t n, bool quote, struct sbuf *b)
{
	char *z;

	if (!quote) {
		sb_add(b, s, n);
		return;
	}
	z = strndup(s, n);
	if (!z) {
		b->failed = true;
		return;
	}
	sb_pystr(b, z);
	free(z);
}

/* The super types of ft (may be invalid) and mt; the caller closes both. */
static void supers(hid_t ft, hid_t mt, hid_t *fs, hid_t *ms)
{
	*ms = H5Tget_super(mt);
	*fs = ft >= 0 ? H5Tget_super(ft) : H5I_INVALID_HID;
}

static void close_types(hid_t a, hid_t b)
{
	if (a >= 0)
		H5Tclose(a);
	if (b >= 0)
		H5Tclose(b);
}

/* An array member (inside a compound or vlen): nested brackets per dimension, "[[1 2] [3 4]]". */
static void format_nested_array(const struct fmt *f, hid_t ft, hid_t mt, const unsigned char *p)
{
	hsize_t dims[H5S_MAX_RANK];
	int rank = H5Tget_array_ndims(mt);
	hid_t fs, ms;
	size_t bs, total = 1;

	supers(ft, mt, &fs, &ms);
	if (rank <= 0 || rank > H5S_MAX_RANK || H5Tget_array_dims2(mt, dims) < 0 || ms < 0) {
		f->b->failed = true;
		goto out;
	}
	bs = H5Tget_size(ms);
	for (int d = 0; d < rank; d++)
		total *= (size_t)dims[d];
	for (size_t i = 0; i < total; i++) {
		size_t stride = 1;
		int open = 0, close = 0;

		/* Brackets open where an index runs from 0 and close where one reaches its end. */
		for (int d = rank - 1; d >= 0; d--) {
			if (i % (stride * (size_t)dims[d]) == 0)
				open++;
			if ((i + 1) % (stride * (size_t)dims[d]) == 0)
				close++;
			stride *= (size_t)dims[d];
		}
		if (i)
			sb_puts(f->b, " ");
		for (int k = 0; k < open; k++)
			sb_puts(f->b, "[");
		format_elem(f, fs, ms, p + i * bs, true);
		for (int k = 0; k < close; k++)
			sb_puts(f->b, "]");
	}
	if (total == 0)
		sb_puts(f->b, "[]");
out:
	close_types(fs, ms);
}

static void format_reference(const struct fmt *f, hid_t mt, const unsigned char *p, bool quote)
{
	char path[1024];
	ssize_t n = -1;
	H5R_type_t rt = H5Tequal(mt, H5T_STD_REF_OBJ) > 0 ? H5R_OBJECT : H5R_DATASET_REGION;

	if (f->loc >= 0)
		n = H5Rget_name(f->loc, rt, p, path, sizeof(path));
	if (n < 0 || (size_t)n >= sizeof(path))
		n = 0; /* a null reference, or one that points nowhere */
	H5Eclear2(H5E_DEFAULT);
	format_text(path, (size_t)n, quote, f->b);
}

/* One element. quote: strings and references as literals (inside arrays and compounds). */
static void format_elem(const struct fmt *f, hid_t ft, hid_t mt, const unsigned char *p, bool quote)
{
	struct sbuf *b = f->b;
	size_t size = H5Tget_size(mt);
	char tmp[96];
	hid_t fs, ms;

	switch (H5Tget_class(mt)) {
	case H5T_INTEGER:
	case H5T_BITFIELD:
		format_int(mt, p, b);
		break;
	case H5T_FLOAT: {
		long double v;

		if (size == sizeof(float)) {
			float x;

			memcpy(&x, p, sizeof(x));
			v = x;
		} else if (size == sizeof(double)) {
			double x;

			memcpy(&x, p, sizeof(x));
			v = x;
		} else {
			memset(&v, 0, sizeof(v));
			memcpy(&v, p, sizeof(v) < size ? sizeof(v) : size);
		}
		repr_float(v, float_prec(ft >= 0 && H5Tget_class(ft) == H5T_FLOAT ? ft : mt), tmp, sizeof(tmp));
		sb_puts(b, tmp);
		break;
	}
	case H5T_STRING:
		if (H5Tis_variable_str(mt) > 0) {
			const char *s;

			memcpy(&s, p, sizeof(s));
			format_text(s ? s : "", s ? strlen(s) : 0, quote, b);
		} else {
			size_t n = strnlen((const char *)p, size);

			if (H5Tget_strpad(mt) == H5T_STR_SPACEPAD)
				while (n > 0 && p[n - 1] == ' ')
					n--;
			format_text((const char *)p, n, quote, b);
		}
		break;
	case H5T_ENUM: {
		char name[256];

		if (H5Tenum_nameof(mt, p, name, sizeof(name)) >= 0) {
			sb_puts(b, name);
		} else {
			/* A value that names no member prints as its integer. */
			H5Eclear2(H5E_DEFAULT);
			ms = H5Tget_super(mt);
			if (ms >= 0)
				format_int(ms, p, b);
			close_types(ms, H5I_INVALID_HID);
		}
		break;
	}
	case H5T_COMPOUND: {
		int nm = H5Tget_nmembers(mt);

		sb_puts(b, "{");
		for (int i = 0; i < nm; i++) {
			hid_t mm = H5Tget_member_type(mt, (unsigned)i), fm = H5I_INVALID_HID;
			char *name = H5Tget_member_name(mt, (unsigned)i);
			int fi = ft >= 0 && name ? H5Tget_member_index(ft, name) : -1;

			if (fi >= 0)
				fm = H5Tget_member_type(ft, (unsigned)fi);
			H5Eclear2(H5E_DEFAULT);
			sb_printf(b, "%s%s: ", i ? ", " : "", name ? name : "");
			if (mm >= 0)
				format_elem(f, fm, mm, p + H5Tget_member_offset(mt, (unsigned)i), true);
			if (name)
				H5free_memory(name);
			close_types(fm, mm);
		}
		sb_puts(b, "}");
		break;
	}
	case H5T_ARRAY:
		format_nested_array(f, ft, mt, p);
		break;
	case H5T_VLEN: {
		hvl_t v;
		size_t bs;

		supers(ft, mt, &fs, &ms);
		bs = ms >= 0 ? H5Tget_size(ms) : 0;
		memcpy(&v, p, sizeof(v));
		sb_puts(b, "[");
		for (size_t i = 0; bs && i < v.len; i++) {
			if (i)
				sb_puts(b, " ");
			format_elem(f, fs, ms, (const unsigned char *)v.p + i * bs, true);
		}
		sb_puts(b, "]");
		close_types(fs, ms);
		break;
	}
	case H5T_OPAQUE:
		for (size_t i = 0; i < size; i++)
			sb_printf(b, "%02x", p[i]);
		break;
	case H5T_REFERENCE:
		format_reference(f, mt, p, quote);
		break;
	default:
		/* H5T_TIME: HDF5 cannot read it; the attribute is listed but its text is empty. */
		break;
	}
}

int h5m_dtype_format_values(hid_t loc, hid_t filetype, hid_t memtype, const void *buf, size_t nelem,
                            unsigned rank, const hsize_t *dims, char **out, size_t *len)
{
	struct sbuf b = { 0 };
	struct fmt f = { .loc = loc, .b = &b };
	hid_t ft = filetype >= 0 ? H5Tcopy(filetype) : H5I_INVALID_HID, mt = H5Tcopy(memtype);
	hsize_t last = rank ? dims[rank - 1] : 1;
	bool quote = rank > 0;
	size_t size;
	int rc = 0;

	/* An array type adds its dims to the attribute's: a scalar of float[3] prints as a
	 * vector "0.0 1.0 2.0", as the .npy shape of an array-typed dataset grows. */
	while (mt >= 0 && H5Tget_class(mt) == H5T_ARRAY) {
		hsize_t adims[H5S_MAX_RANK];
		int ar = H5Tget_array_ndims(mt);
		hid_t fs, ms;

		if (ar <= 0 || ar > H5S_MAX_RANK || H5Tget_array_dims2(mt, adims) < 0) {
			rc = -EIO;
			goto out;
		}
		for (int d = 0; d < ar; d++)
			if (__builtin_mul_overflow(nelem, (size_t)adims[d], &nelem)) {
				rc = -EIO;
				goto out;
			}
		last = adims[ar - 1];
		quote = true;
		supers(ft, mt, &fs, &ms);
		close_types(ft, mt);
		ft = fs;
		mt = ms;
	}
	if (mt < 0) {
		rc = -ENOMEM;
		goto out;
	}
	size = H5Tget_size(mt);
	sb_add(&b, "", 0);
	for (size_t i = 0; i < nelem && !b.failed; i++) {
		if (i)
			sb_puts(&b, last && i % last == 0 ? "\n" : " ");
		format_elem(&f, ft, mt, (const unsigned char *)buf + i * size, quote);
	}
	if (b.failed)
		rc = -ENOMEM;
out:
	close_types(ft, mt);
	if (rc) {
		free(b.s);
		return rc;
	}
	*out = b.s;
	*len = b.len;
	return 0;
}
