/* attrtext.c: extended-attribute text -> values of an HDF5 attribute's type (the inverse of
 * dtype.c's formatter). It parses into memory only; store.c reads and writes attributes. */
#include "h5mount/attrtext.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes the values of one text may take in memory, variable-length data included: a stored
 * type is the file's, so a small text may not make the daemon allocate without bound. */
#define PARSE_BUDGET ((size_t)64 << 20)

struct parser {
	const char *start, *p, *end;
	hid_t loc;          /* object references are made against it */
	size_t budget;      /* bytes left to allocate */
	char *why;
	size_t cap;
	int rc;             /* 0 until the first failure: -EINVAL or -ENOMEM */
};

/* A token: a quoted literal (escapes resolved) or a bare word; malloc'd, NUL-terminated. */
struct tok {
	char *s;
	size_t n;
};

__attribute__((format(printf, 2, 3))) static void fail(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->rc)
		return;
	ps->rc = -EINVAL;
	va_start(ap, fmt);
	n = vsnprintf(ps->why, ps->cap, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < ps->cap)
		snprintf(ps->why + n, ps->cap - (size_t)n, " (at byte %zu)", (size_t)(ps->p - ps->start));
}

static void nomem(struct parser *ps)
{
	if (ps->rc)
		return;
	ps->rc = -ENOMEM;
	snprintf(ps->why, ps->cap, "out of memory");
}

/* calloc within the parse's budget. */
static void *alloc(struct parser *ps, size_t n, size_t size)
{
	size_t bytes;
	void *b;

	if (__builtin_mul_overflow(n, size, &bytes) || bytes > ps->budget) {
		fail(ps, "the values would take more than %zu MiB", PARSE_BUDGET >> 20);
		return NULL;
	}
	b = calloc(1, bytes ? bytes : 1);
	if (!b) {
		nomem(ps);
		return NULL;
	}
	ps->budget -= bytes;
	return b;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && is_ws(*ps->p))
		ps->p++;
}

static bool expect(struct parser *ps, char c)
{
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != c) {
		fail(ps, "expected '%c'", c);
		return false;
	}
	ps->p++;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads a quoted literal at ps->p (its opening quote). */
static bool read_quoted(struct parser *ps, struct tok *t)
{
	char q = *ps->p++;
	const char *s = ps->p;
	size_t n = 0;

	/* The literal is never longer than its text. */
	while (s < ps->end && *s != q)
		s += *s == '\\' ? 2 : 1;
	if (s >= ps->end) {
		fail(ps, "a string literal has no closing %c", q);
		return false;
	}
	t->s = malloc((size_t)(s - ps->p) + 1);
	if (!t->s) {
		nomem(ps);
		return false;
	}
	while (*ps->p != q) {
		char c = *ps->p++;

		if (c == '\\') {
			char e = *ps->p++;
			int hi, lo;

			switch (e) {
			case '\\': case '\'': case '"': c = e; break;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case '0': c = 0; break;
			case 'x':
				hi = ps->p + 1 < ps->end ? hexval(ps->p[0]) : -1;
				lo = hi >= 0 ? hexval(ps->p[1]) : -1;
				if (lo < 0) {
					fail(ps, "\\x needs two hex digits");
					goto bad;
				}
				c = (char)(hi * 16 + lo);
				ps->p += 2;
				break;
			default:
				fail(ps, "unknown escape \\%c", e);
				goto bad;
			}
		}
		t->s[n++] = c;
	}
	ps->p++;
	t->s[n] = 0;
	t->n = n;
	return true;
bad:
	free(t->s);
	t->s = NULL;
	return false;
}

/* Reads one token: a quoted literal, or a bare word that ends at whitespace (nested: also at
 * ',', ']' and '}'). */
static bool read_token(struct parser *ps, bool nested, struct tok *t)
{
	const char *s;

	skip_ws(ps);
	t->s = NULL;
	t->n = 0;
	if (ps->p < ps->end && (*ps->p == '\'' || *ps->p == '"'))
		return read_quoted(ps, t);
	for (s = ps->p; s < ps->end && !is_ws(*s) && !(nested && strchr(",]}", *s)); s++)
		;
	if (s == ps->p) {
		fail(ps, ps->p < ps->end ? "a value is missing" : "the text ends where a value is expected");
		return false;
	}
	t->s = strndup(ps->p, (size_t)(s - ps->p));
	if (!t->s) {
		nomem(ps);
		return false;
	}
	t->n = (size_t)(s - ps->p);
	ps->p = s;
	return true;
}

/* The type whose range a value of memory type mt must keep: the stored one when it is of the
 * same class (a 12-bit integer served as 16 bits, a half float served as a float). */
static hid_t range_type(hid_t ft, hid_t mt)
{
	return ft >= 0 && H5Tget_class(ft) == H5Tget_class(mt) ? ft : mt;
}

/* An integer (or bitfield) token into dst, in mt's native layout, within rt's bits. */
static void parse_int(struct parser *ps, const char *s, hid_t ft, hid_t mt, unsigned char *dst)
{
	size_t size = H5Tget_size(mt), prec = H5Tget_precision(range_type(ft, mt));
	bool sign = H5Tget_class(mt) == H5T_INTEGER && H5Tget_sign(mt) == H5T_SGN_2;
	char *e = NULL;

	if (size > 8 || prec == 0 || prec > 64) {
		fail(ps, "integers of %zu bits cannot be written", prec);
		return;
	}
	errno = 0;
	if (sign) {
		long long v = strtoll(s, &e, 10);
		long long hi = prec == 64 ? INT64_MAX : (long long)((1ull << (prec - 1)) - 1);

		if (!*s || *e || errno || v > hi || v < -hi - 1) {
			fail(ps, "'%s' is not an integer of %zu bits", s, prec);
			return;
		}
		switch (size) {
		case 1: { int8_t x = (int8_t)v; memcpy(dst, &x, 1); break; }
		case 2: { int16_t x = (int16_t)v; memcpy(dst, &x, 2); break; }
		case 4: { int32_t x = (int32_t)v; memcpy(dst, &x, 4); break; }
		default: { int64_t x = v; memcpy(dst, &x, 8); break; }
		}
	} else {
		unsigned long long v = *s == '-' ? 1 : strtoull(s, &e, 10);
		unsigned long long hi = prec == 64 ? UINT64_MAX : (1ull << prec) - 1;

		if (!*s || *s == '-' || *e || errno || v > hi) {
			fail(ps, "'%s' is not an unsigned integer of %zu bits", s, prec);
			return;
		}
		switch (size) {
		case 1: { uint8_t x = (uint8_t)v; memcpy(dst, &x, 1); break; }
		case 2: { uint16_t x = (uint16_t)v; memcpy(dst, &x, 2); break; }
		case 4: { uint32_t x = (uint32_t)v; memcpy(dst, &x, 4); break; }
		default: { uint64_t x = v; memcpy(dst, &x, 8); break; }
		}
	}
}

/* Whether s spells an infinity (what strtod reads as one on purpose). */
static bool spells_inf(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	return !strncasecmp(s, "inf", 3);
}

static void parse_float(struct parser *ps, const char *s, hid_t ft, hid_t mt, unsigned char *dst)
{
	size_t size = H5Tget_size(mt), spos, epos, esize, mpos, msize;
	hid_t rt = range_type(ft, mt);
	long double v;
	char *e = NULL;

	if (size == sizeof(float)) {
		float x = strtof(s, &e);

		memcpy(dst, &x, sizeof(x));
		v = x;
	} else if (size == sizeof(double)) {
		double x = strtod(s, &e);

		memcpy(dst, &x, sizeof(x));
		v = x;
	} else if (size == sizeof(long double)) {
		/* x86's long double has 6 padding bytes: zeroed, not stack bytes, go to the file. */
		union {
			long double x;
			unsigned char b[sizeof(long double)];
		} u;

		memset(&u, 0, sizeof(u));
		u.x = strtold(s, &e);
		memcpy(dst, u.b, sizeof(u.b));
		v = u.x;
	} else {
		fail(ps, "floats of %zu bytes cannot be written", size);
		return;
	}
	if (!*s || *e) {
		fail(ps, "'%s' is not a number", s);
		return;
	}
	if (isinf(v) && !spells_inf(s)) {
		fail(ps, "'%s' is out of the float's range", s);
		return;
	}
	/* A half float is served as a float: its own range ends at 65504 (65520 rounds up to inf). */
	if (H5Tget_fields(rt, &spos, &epos, &esize, &mpos, &msize) >= 0 && esize <= 5 && msize <= 10 &&
	    isfinite(v) && fabsl(v) >= 65520.0L) {
		fail(ps, "'%s' is out of the half float's range", s);
		return;
	}
	H5Eclear2(H5E_DEFAULT);
}

static void parse_string(struct parser *ps, const struct tok *t, hid_t mt, unsigned char *dst)
{
	if (memchr(t->s, 0, t->n)) {
		fail(ps, "a string cannot hold a NUL byte");
		return;
	}
	/* Readers decode a UTF-8 string (PyTables fails on the whole group otherwise). */
	if (H5Tget_cset(mt) == H5T_CSET_UTF8 && !h5m_attrtext_is_utf8(t->s, t->n)) {
		fail(ps, "the attribute's strings are UTF-8 and this text is not");
		return;
	}
	if (H5Tis_variable_str(mt) > 0) {
		char *c = alloc(ps, t->n + 1, 1);

		if (c)
			memcpy(c, t->s, t->n);
		memcpy(dst, &c, sizeof(c));
	} else {
		size_t size = H5Tget_size(mt);

		if (t->n > size) {
			fail(ps, "a string of %zu bytes is longer than the attribute's %zu", t->n, size);
			return;
		}
		memset(dst, H5Tget_strpad(mt) == H5T_STR_SPACEPAD ? ' ' : 0, size);
		memcpy(dst, t->s, t->n);
	}
}

static void parse_reference(struct parser *ps, const struct tok *t, hid_t mt, unsigned char *dst)
{
	if (H5Tequal(mt, H5T_STD_REF_OBJ) <= 0) {
		fail(ps, "region references cannot be written from text (their selection is not shown)");
		return;
	}
	if (t->n == 0) /* a null reference */
		return;
	if (memchr(t->s, 0, t->n) || ps->loc < 0 || H5Rcreate(dst, ps->loc, t->s, H5R_OBJECT, -1) < 0) {
		H5Eclear2(H5E_DEFAULT);
		fail(ps, "no object '%s' to refer to", t->s);
	}
}

static void parse_elem(struct parser *ps, hid_t ft, hid_t mt, unsigned char *dst, bool nested);

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

static void parse_enum(struct parser *ps, const char *s, hid_t ft, hid_t mt, unsigned char *dst)
{
	hid_t fs, ms;

	if (H5Tenum_valueof(mt, s, dst) >= 0)
		return;
	H5Eclear2(H5E_DEFAULT);
	/* A value that names no member prints as its integer, and reads back as one. */
	supers(ft, mt, &fs, &ms);
	if (ms >= 0)
		parse_int(ps, s, fs, ms, dst);
	close_types(fs, ms);
	if (ps->rc == -EINVAL)
		snprintf(ps->why, ps->cap, "'%s' is neither a member of the enum nor its integer", s);
}

static void parse_compound(struct parser *ps, hid_t ft, hid_t mt, unsigned char *dst)
{
	int nm = H5Tget_nmembers(mt);

	if (!expect(ps, '{'))
		return;
	for (int i = 0; i < nm && !ps->rc; i++) {
		hid_t mm = H5Tget_member_type(mt, (unsigned)i), fm = H5I_INVALID_HID;
		char *name = H5Tget_member_name(mt, (unsigned)i);
		int fi = ft >= 0 && name ? H5Tget_member_index(ft, name) : -1;
		size_t nl = name ? strlen(name) : 0;

		if (fi >= 0)
			fm = H5Tget_member_type(ft, (unsigned)fi);
		H5Eclear2(H5E_DEFAULT);
		if (i > 0)
			expect(ps, ',');
		skip_ws(ps);
		if (!ps->rc && (mm < 0 || !name)) {
			fail(ps, "unreadable compound member");
		} else if (!ps->rc && ((size_t)(ps->end - ps->p) <= nl || memcmp(ps->p, name, nl) || ps->p[nl] != ':')) {
			fail(ps, "expected member '%s:'", name);
		} else if (!ps->rc) {
			ps->p += nl + 1;
			parse_elem(ps, fm, mm, dst + H5Tget_member_offset(mt, (unsigned)i), true);
		}
		if (name)
			H5free_memory(name);
		close_types(fm, mm);
	}
	if (!ps->rc)
		expect(ps, '}');
}

/* One dimension of a nested array: "[" dims[d] items "]"; *idx counts base elements. */
static void parse_dim(struct parser *ps, hid_t fs, hid_t ms, const hsize_t *dims, int rank, int d, unsigned char *dst,
                      size_t bs, size_t *idx)
{
	if (!expect(ps, '['))
		return;
	for (hsize_t k = 0; k < dims[d] && !ps->rc; k++) {
		if (d + 1 < rank) {
			parse_dim(ps, fs, ms, dims, rank, d + 1, dst, bs, idx);
		} else {
			parse_elem(ps, fs, ms, dst + *idx * bs, true);
			(*idx)++;
		}
	}
	if (!ps->rc)
		expect(ps, ']');
}

static void parse_nested_array(struct parser *ps, hid_t ft, hid_t mt, unsigned char *dst)
{
	hsize_t dims[H5S_MAX_RANK];
	int rank = H5Tget_array_ndims(mt);
	size_t total = 1, idx = 0;
	hid_t fs, ms;

	supers(ft, mt, &fs, &ms);
	if (rank <= 0 || rank > H5S_MAX_RANK || H5Tget_array_dims2(mt, dims) < 0 || ms < 0) {
		fail(ps, "unreadable array type");
		goto out;
	}
	for (int d = 0; d < rank; d++)
		total *= (size_t)dims[d];
	if (total == 0) { /* printed as "[]" whatever the dims */
		if (expect(ps, '['))
			expect(ps, ']');
		goto out;
	}
	parse_dim(ps, fs, ms, dims, rank, 0, dst, H5Tget_size(ms), &idx);
out:
	close_types(fs, ms);
}

static void parse_vlen(struct parser *ps, hid_t ft, hid_t mt, unsigned char *dst)
{
	hid_t fs, ms;
	size_t bs, n = 0, cap = 0;
	hvl_t v = { 0, NULL };

	supers(ft, mt, &fs, &ms);
	bs = ms >= 0 ? H5Tget_size(ms) : 0;
	if (!bs) {
		fail(ps, "unreadable sequence type");
		goto out;
	}
	if (!expect(ps, '['))
		goto out;
	for (skip_ws(ps); !ps->rc && ps->p < ps->end && *ps->p != ']'; skip_ws(ps)) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			unsigned char *nb = alloc(ps, ncap, bs);

			if (!nb)
				break;
			if (v.p)
				memcpy(nb, v.p, n * bs);
			free(v.p);
			v.p = nb;
			cap = ncap;
		}
		v.len = n + 1; /* the element being parsed is zeroed: freeing it is safe */
		memcpy(dst, &v, sizeof(v));
		parse_elem(ps, fs, ms, (unsigned char *)v.p + n * bs, true);
		n++;
	}
	v.len = n;
	memcpy(dst, &v, sizeof(v));
	if (!ps->rc)
		expect(ps, ']');
out:
	close_types(fs, ms);
}

static void parse_opaque(struct parser *ps, const struct tok *t, hid_t mt, unsigned char *dst)
{
	size_t size = H5Tget_size(mt);

	if (t->n != 2 * size) {
		fail(ps, "opaque values are %zu hex digits", 2 * size);
		return;
	}
	for (size_t i = 0; i < size; i++) {
		int hi = hexval(t->s[2 * i]), lo = hexval(t->s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			fail(ps, "'%s' is not hex", t->s);
			return;
		}
		dst[i] = (unsigned char)(hi * 16 + lo);
	}
}

/* One element at ps->p into dst (zeroed). nested: inside a compound, array or sequence. */
static void parse_elem(struct parser *ps, hid_t ft, hid_t mt, unsigned char *dst, bool nested)
{
	H5T_class_t cls = H5Tget_class(mt);
	struct tok t = { NULL, 0 };

	switch (cls) {
	case H5T_COMPOUND:
		parse_compound(ps, ft, mt, dst);
		return;
	case H5T_ARRAY:
		parse_nested_array(ps, ft, mt, dst);
		return;
	case H5T_VLEN:
		parse_vlen(ps, ft, mt, dst);
		return;
	default:
		break;
	}
	if (!read_token(ps, nested, &t))
		return;
	switch (cls) {
	case H5T_INTEGER:
	case H5T_BITFIELD:
		parse_int(ps, t.s, ft, mt, dst);
		break;
	case H5T_FLOAT:
		parse_float(ps, t.s, ft, mt, dst);
		break;
	case H5T_STRING:
		parse_string(ps, &t, mt, dst);
		break;
	case H5T_ENUM:
		parse_enum(ps, t.s, ft, mt, dst);
		break;
	case H5T_OPAQUE:
		parse_opaque(ps, &t, mt, dst);
		break;
	case H5T_REFERENCE:
		parse_reference(ps, &t, mt, dst);
		break;
	default:
		fail(ps, "values of this type (HDF5 class %d) cannot be written from text", (int)cls);
		break;
	}
	free(t.s);
}

int h5m_attrtext_parse(hid_t loc, hid_t filetype, hid_t memtype, const char *text, size_t len, size_t nelem,
                       unsigned rank, void **out, char *why, size_t cap)
{
	struct parser ps = { text, text, text + len, loc, PARSE_BUDGET, why, cap, 0 };
	hid_t ft = filetype >= 0 ? H5Tcopy(filetype) : H5I_INVALID_HID, mt = H5Tcopy(memtype);
	bool whole = rank == 0 && nelem == 1;
	size_t total = nelem, size, i;
	unsigned char *buf = NULL;
	H5T_class_t cls;

	*out = NULL;
	/* An array type adds its dims to the attribute's, as the formatter prints it. */
	while (mt >= 0 && H5Tget_class(mt) == H5T_ARRAY) {
		hsize_t adims[H5S_MAX_RANK];
		int ar = H5Tget_array_ndims(mt);
		hid_t fs, ms;

		if (ar <= 0 || ar > H5S_MAX_RANK || H5Tget_array_dims2(mt, adims) < 0) {
			fail(&ps, "unreadable array type");
			goto out;
		}
		for (int d = 0; d < ar; d++)
			if (__builtin_mul_overflow(total, (size_t)adims[d], &total)) {
				fail(&ps, "array type too large");
				goto out;
			}
		whole = false;
		supers(ft, mt, &fs, &ms);
		close_types(ft, mt);
		ft = fs;
		mt = ms;
	}
	if (mt < 0) {
		nomem(&ps);
		goto out;
	}
	size = H5Tget_size(mt);
	buf = alloc(&ps, total, size);
	if (!buf)
		goto out;
	cls = H5Tget_class(mt);
	if (whole && (cls == H5T_STRING || cls == H5T_REFERENCE)) {
		/* A scalar string is the whole text, as it is. */
		struct tok t = { strndup(text, len), len };

		if (!t.s)
			nomem(&ps);
		else if (cls == H5T_STRING)
			parse_string(&ps, &t, mt, buf);
		else
			parse_reference(&ps, &t, mt, buf);
		free(t.s);
		goto out;
	}
	for (i = 0; i < total && !ps.rc; i++) {
		skip_ws(&ps);
		if (ps.p >= ps.end) {
			fail(&ps, "%zu value%s where the attribute has %zu", i, i == 1 ? "" : "s", total);
			break;
		}
		parse_elem(&ps, ft, mt, buf + i * size, false);
		if (!ps.rc && ps.p < ps.end && !is_ws(*ps.p))
			fail(&ps, "values must be separated by whitespace");
	}
	skip_ws(&ps);
	if (!ps.rc && ps.p < ps.end)
		fail(&ps, "more values than the attribute's %zu", total);
out:
	close_types(ft, mt);
	if (ps.rc) {
		h5m_attrtext_free(memtype, buf, nelem);
		return ps.rc;
	}
	*out = buf;
	return 0;
}

/* Frees what one element of type mt at p owns. */
static void free_elem(hid_t mt, unsigned char *p)
{
	hsize_t dims[H5S_MAX_RANK];
	size_t total = 1, bs;
	hid_t ms;
	int nm, rank;
	hvl_t v;

	switch (H5Tget_class(mt)) {
	case H5T_STRING:
		if (H5Tis_variable_str(mt) > 0) {
			char *s;

			memcpy(&s, p, sizeof(s));
			free(s);
		}
		break;
	case H5T_COMPOUND:
		nm = H5Tget_nmembers(mt);
		for (int i = 0; i < nm; i++) {
			hid_t mm = H5Tget_member_type(mt, (unsigned)i);

			if (mm >= 0) {
				free_elem(mm, p + H5Tget_member_offset(mt, (unsigned)i));
				H5Tclose(mm);
			}
		}
		break;
	case H5T_ARRAY:
		ms = H5Tget_super(mt);
		rank = H5Tget_array_ndims(mt);
		if (ms >= 0 && rank > 0 && rank <= H5S_MAX_RANK && H5Tget_array_dims2(mt, dims) >= 0) {
			for (int d = 0; d < rank; d++)
				total *= (size_t)dims[d];
			bs = H5Tget_size(ms);
			for (size_t i = 0; i < total; i++)
				free_elem(ms, p + i * bs);
		}
		close_types(ms, H5I_INVALID_HID);
		break;
	case H5T_VLEN:
		memcpy(&v, p, sizeof(v));
		ms = H5Tget_super(mt);
		if (ms >= 0) {
			bs = H5Tget_size(ms);
			for (size_t i = 0; i < v.len && v.p; i++)
				free_elem(ms, (unsigned char *)v.p + i * bs);
			H5Tclose(ms);
		}
		free(v.p);
		break;
	default:
		break;
	}
}

void h5m_attrtext_free(hid_t memtype, void *buf, size_t nelem)
{
	size_t size;

	if (!buf)
		return;
	size = H5Tget_size(memtype);
	/* Only strings, compounds, arrays and sequences can own memory. */
	if (H5Tdetect_class(memtype, H5T_VLEN) > 0 || H5Tdetect_class(memtype, H5T_STRING) > 0)
		for (size_t i = 0; i < nelem; i++)
			free_elem(memtype, (unsigned char *)buf + i * size);
	H5Eclear2(H5E_DEFAULT);
	free(buf);
}

bool h5m_attrtext_is_utf8(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text, *end = s + len;

	while (s < end) {
		unsigned c = *s++, need, cp;

		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - s) < need)
			return false;
		for (unsigned k = 0; k < need; k++, s++) {
			if ((*s & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*s & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}
