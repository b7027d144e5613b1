/* create.c: new HDF5 objects: .npy descr -> file type, chunk shape and filters, creating and
 * replacing datasets, creating empty files. It never touches the node table or commits. */
#include "h5mount/create.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5mount/blosc.h"
#include "h5mount/dtype.h"
#include "h5mount/npy.h"
#include "store_priv.h"

/* Deepest nesting of structured dtypes accepted (numpy has no limit; a header of 4 KiB could
 * nest a thousand levels, which the recursion below must not follow). */
#define MAX_DEPTH 16
/* The longest descr text handled: the header parser keeps 4 KiB. */
#define DESCR_MAX 8192
/* HDF5's limit on one chunk. */
#define CHUNK_LIMIT ((uint64_t)UINT32_MAX)

/* ---- errors ---- */

/* Writes "what: HDF5's innermost reason" into why and clears the thread's error stack. */
static void h5why(char *why, size_t cap, const char *what)
{
	char reason[256];

	h5m_hdf5_error(reason, sizeof(reason));
	snprintf(why, cap, "%s: %s", what, reason);
}

/* ---- compression option ---- */

int h5m_create_parse_compress(const char *text, struct h5m_layout *lay, char *why, size_t cap)
{
	const char *colon;
	size_t n;

	if (!text || !*text) {
		snprintf(why, cap, "empty compression (expected none, blosc[:LEVEL] or gzip[:LEVEL])");
		return -EINVAL;
	}
	colon = strchr(text, ':');
	n = colon ? (size_t)(colon - text) : strlen(text);
	if (n == 4 && !strncmp(text, "none", 4) && !colon) {
		lay->compress = H5M_COMPRESS_NONE;
		lay->level = 0;
		return 0;
	}
	if (n == 5 && !strncmp(text, "blosc", 5)) {
		lay->compress = H5M_COMPRESS_BLOSC;
		lay->level = H5M_CREATE_BLOSC_LEVEL;
	} else if (n == 4 && !strncmp(text, "gzip", 4)) {
		lay->compress = H5M_COMPRESS_GZIP;
		lay->level = H5M_CREATE_GZIP_LEVEL;
	} else {
		snprintf(why, cap, "unknown compression '%.*s' (expected none, blosc[:LEVEL] or gzip[:LEVEL])", (int)n,
		         text);
		return -EINVAL;
	}
	if (colon) {
		if (colon[1] < '0' || colon[1] > '9' || colon[2]) {
			snprintf(why, cap, "invalid level '%s' (expected 0 to 9)", colon + 1);
			return -EINVAL;
		}
		lay->level = (unsigned)(colon[1] - '0');
	}
	return 0;
}

/* ---- descr -> type ---- */

/* Parser state over a descr literal (whitespace allowed between tokens). `norm` collects the
 * descr as h5m_dtype_describe would write it (canonical form), to check the round trip. */
struct parser {
	const char *s;
	size_t pos;
	char norm[DESCR_MAX];
	size_t nlen;
	bool overflow;
	char *why;
	size_t cap;
};

static void emit(struct parser *p, const char *text, size_t n)
{
	if (p->overflow || p->nlen + n + 1 > sizeof(p->norm)) {
		p->overflow = true;
		return;
	}
	memcpy(p->norm + p->nlen, text, n);
	p->nlen += n;
	p->norm[p->nlen] = 0;
}

__attribute__((format(printf, 2, 3))) static void emitf(struct parser *p, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		p->overflow = true;
	else
		emit(p, tmp, (size_t)n);
}

/* Emits a name as dtype.c's sb_pystr writes it: single quotes, \' \\ and \xNN escapes. */
static void emit_pystr(struct parser *p, const char *s)
{
	emit(p, "'", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\'' || c == '\\')
			emitf(p, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			emitf(p, "\\x%02x", c);
		else
			emit(p, s, 1);
	}
	emit(p, "'", 1);
}

static int bad(struct parser *p, int rc, const char *msg)
{
	snprintf(p->why, p->cap, "%s", msg);
	return rc;
}

/* Skips whitespace and returns the next character (0 at the end). */
static char peek(struct parser *p)
{
	while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r')
		p->pos++;
	return p->s[p->pos];
}

static bool accept(struct parser *p, char c)
{
	if (peek(p) != c)
		return false;
	p->pos++;
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

/* Parses a Python string literal ('...' or "...", escapes \\ \' \" \n \r \t \xNN) into
 * out[cap]. Returns 0 or -EINVAL. */
static int parse_str(struct parser *p, char *out, size_t cap)
{
	char q = peek(p);
	size_t n = 0;

	if (q != '\'' && q != '"')
		return bad(p, -EINVAL, "a quoted string was expected in the descr");
	p->pos++;
	for (;;) {
		char c = p->s[p->pos++];

		if (!c)
			return bad(p, -EINVAL, "unterminated string in the descr");
		if (c == q)
			break;
		if (c == '\\') {
			char e = p->s[p->pos++];
			int h1, h2;

			switch (e) {
			case '\\': case '\'': case '"': c = e; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'x':
				h1 = hexval(p->s[p->pos]);
				h2 = h1 < 0 ? -1 : hexval(p->s[p->pos + 1]);
				if (h2 < 0)
					return bad(p, -EINVAL, "bad \\x escape in the descr");
				p->pos += 2;
				c = (char)(h1 * 16 + h2);
				break;
			default:
				return bad(p, -EINVAL, "unsupported escape in a descr string");
			}
			if (!c)
				return bad(p, -EINVAL, "a field name with a NUL byte");
		}
		if (n + 1 >= cap)
			return bad(p, -EINVAL, "a descr string is too long");
		out[n++] = c;
	}
	out[n] = 0;
	return 0;
}

/* Parses a decimal count of at most 2^32-1 (sizes and subarray dims). */
static int parse_count(const char *s, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = *pos;

	if (s[i] < '0' || s[i] > '9')
		return -EINVAL;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX)
			return -EINVAL;
	}
	*pos = i;
	*out = v;
	return 0;
}

static hid_t int_type(char kind, size_t size, bool be)
{
	static const hid_t *const le_i[] = { &H5T_STD_I8LE_g, &H5T_STD_I16LE_g, &H5T_STD_I32LE_g, &H5T_STD_I64LE_g };
	static const hid_t *const be_i[] = { &H5T_STD_I8BE_g, &H5T_STD_I16BE_g, &H5T_STD_I32BE_g, &H5T_STD_I64BE_g };
	static const hid_t *const le_u[] = { &H5T_STD_U8LE_g, &H5T_STD_U16LE_g, &H5T_STD_U32LE_g, &H5T_STD_U64LE_g };
	static const hid_t *const be_u[] = { &H5T_STD_U8BE_g, &H5T_STD_U16BE_g, &H5T_STD_U32BE_g, &H5T_STD_U64BE_g };
	unsigned k = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;

	(void)H5open(); /* the _g globals are set by the library's initialisation */
	if (kind == 'i')
		return H5Tcopy(*(be ? be_i : le_i)[k]);
	return H5Tcopy(*(be ? be_u : le_u)[k]);
}

static hid_t float_type(size_t size, bool be)
{
	hid_t t = H5I_INVALID_HID;

	if (size == 2) {
		/* IEEE half as h5py builds it */
		t = H5Tcopy(H5T_IEEE_F32LE);
		if (t >= 0 && (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0)) {
			H5Tclose(t);
			return H5I_INVALID_HID;
		}
	} else {
		t = H5Tcopy(size == 4 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE);
	}
	if (t >= 0 && be && H5Tset_order(t, H5T_ORDER_BE) < 0) {
		H5Tclose(t);
		return H5I_INVALID_HID;
	}
	return t;
}

/* numpy complex: compound {r, i} of two floats (h5py and PyTables). */
static hid_t complex_type(size_t size, bool be)
{
	hid_t f = float_type(size / 2, be), c = H5I_INVALID_HID;

	if (f < 0)
		return H5I_INVALID_HID;
	c = H5Tcreate(H5T_COMPOUND, size);
	if (c >= 0 && (H5Tinsert(c, "r", 0, f) < 0 || H5Tinsert(c, "i", size / 2, f) < 0)) {
		H5Tclose(c);
		c = H5I_INVALID_HID;
	}
	H5Tclose(f);
	return c;
}

/* numpy bool as h5py writes it: an int8 enum FALSE = 0, TRUE = 1. */
static hid_t bool_type(void)
{
	hid_t e = H5Tenum_create(H5T_NATIVE_SCHAR);
	signed char v0 = 0, v1 = 1;

	if (e >= 0 && (H5Tenum_insert(e, "FALSE", &v0) < 0 || H5Tenum_insert(e, "TRUE", &v1) < 0)) {
		H5Tclose(e);
		return H5I_INVALID_HID;
	}
	return e;
}

/* Parses a simple type string (e.g. '<f8') into *out and emits its canonical form. Sets
 * *vsize to its size when it is '|Vn' (a padding candidate). */
static int parse_simple(struct parser *p, hid_t *out, size_t *vsize)
{
	char str[64], kind, ord;
	size_t i = 1, size;
	uint64_t n;
	bool be;
	int rc = parse_str(p, str, sizeof(str));

	*vsize = 0;
	if (rc)
		return rc;
	ord = str[0];
	if (ord != '<' && ord != '>' && ord != '|' && ord != '=') {
		ord = '=';
		i = 0;
	}
	be = ord == '>';
	kind = str[i++];
	if (kind == 'O')
		return bad(p, -ENOTSUP, "object arrays (dtype 'O') cannot be stored as HDF5 data");
	if (kind == 'M' || kind == 'm')
		return bad(p, -ENOTSUP, "datetime64 and timedelta64 have no HDF5 type the read path serves");
	if (kind == 'U')
		return bad(p, -ENOTSUP, "unicode strings ('U') have no HDF5 type the read path serves; use 'S'");
	if (parse_count(str, &i, &n) < 0 || str[i])
		return bad(p, -EINVAL, "not a numpy type string in the descr");
	size = (size_t)n;
	if (size > 1 && ord == '|' && kind != 'S' && kind != 'V')
		return bad(p, -EINVAL, "'|' byte order on a multi-byte type");
	if (ord == '=')
		be = false; /* '=' is native: little-endian on every platform h5mount builds for */
	switch (kind) {
	case 'b':
		if (size != 1)
			return bad(p, -EINVAL, "bool must be 'b1'");
		*out = bool_type();
		emitf(p, "'|b1'");
		break;
	case 'i':
	case 'u':
		if (size != 1 && size != 2 && size != 4 && size != 8)
			return bad(p, -EINVAL, "integers are 1, 2, 4 or 8 bytes");
		*out = int_type(kind, size, be);
		emitf(p, "'%c%c%zu'", size == 1 ? '|' : be ? '>' : '<', kind, size);
		break;
	case 'f':
		if (size == sizeof(long double) && size > 8) {
			if (be)
				return bad(p, -ENOTSUP, "big-endian long double is not this platform's long double");
			*out = H5Tcopy(H5T_NATIVE_LDOUBLE);
		} else if (size == 2 || size == 4 || size == 8) {
			*out = float_type(size, be);
		} else {
			return bad(p, -ENOTSUP, "floats of this size have no HDF5 type here");
		}
		emitf(p, "'%cf%zu'", be ? '>' : '<', size);
		break;
	case 'c':
		if (size != 8 && size != 16)
			return bad(p, -ENOTSUP, "complex numbers of this size have no HDF5 type here");
		*out = complex_type(size, be);
		emitf(p, "'%cc%zu'", be ? '>' : '<', size);
		break;
	case 'S':
		if (size == 0)
			return bad(p, -EINVAL, "zero-sized strings ('S0')");
		*out = H5Tcopy(H5T_C_S1);
		if (*out >= 0 && (H5Tset_size(*out, size) < 0 || H5Tset_strpad(*out, H5T_STR_NULLPAD) < 0)) {
			H5Tclose(*out);
			*out = H5I_INVALID_HID;
		}
		emitf(p, "'|S%zu'", size);
		break;
	case 'V':
		if (size == 0)
			return bad(p, -EINVAL, "zero-sized void ('V0')");
		*out = H5Tcreate(H5T_OPAQUE, size);
		*vsize = size;
		emitf(p, "'|V%zu'", size);
		break;
	default:
		return bad(p, -EINVAL, "unknown numpy type kind in the descr");
	}
	if (*out < 0) {
		h5why(p->why, p->cap, "cannot make the HDF5 type");
		return -EIO;
	}
	return 0;
}

static int parse_type(struct parser *p, unsigned depth, hid_t *out, size_t *vsize);

/* A field's subarray shape: "(3,)", "(2,3)" or a bare count. Returns its rank (>= 1) or -EINVAL. */
static int parse_shape(struct parser *p, hsize_t *dims)
{
	int r = 0;
	uint64_t v;

	if (!accept(p, '(')) {
		peek(p);
		if (parse_count(p->s, &p->pos, &v) < 0)
			return bad(p, -EINVAL, "bad subarray shape in the descr");
		dims[0] = v;
		return v ? 1 : bad(p, -EINVAL, "a subarray dimension of 0");
	}
	while (!accept(p, ')')) {
		peek(p);
		if (r == H5M_NPY_MAXDIMS || parse_count(p->s, &p->pos, &v) < 0)
			return bad(p, -EINVAL, "bad subarray shape in the descr");
		if (!v)
			return bad(p, -EINVAL, "a subarray dimension of 0");
		dims[r++] = v;
		if (!accept(p, ',') && peek(p) != ')')
			return bad(p, -EINVAL, "bad subarray shape in the descr");
	}
	if (r == 0)
		return bad(p, -EINVAL, "an empty subarray shape");
	return r;
}

/* One member of a structured dtype being built. */
struct member {
	char name[1024];
	hid_t type;
	size_t off;
};

static void emit_gap(struct parser *p, size_t *gap, bool *first)
{
	if (*gap) {
		emitf(p, "%s('','|V%zu')", *first ? "" : ",", *gap);
		*first = false;
		*gap = 0;
	}
}

/* Parses "[field, ...]" into a compound type. */
static int parse_compound(struct parser *p, unsigned depth, hid_t *out)
{
	struct member *m = NULL;
	size_t nm = 0, am = 0, off = 0, gap = 0;
	hid_t c = H5I_INVALID_HID;
	bool first = true;
	int rc = 0;

	if (depth > MAX_DEPTH)
		return bad(p, -ENOTSUP, "structured dtypes nested too deeply");
	p->pos++; /* '[' */
	emit(p, "[", 1);
	while (!accept(p, ']')) {
		char name[1024];
		hsize_t dims[H5M_NPY_MAXDIMS];
		hid_t ft = H5I_INVALID_HID;
		size_t vsize = 0, fsize, mark;
		int r = 0;

		if (!accept(p, '(')) {
			rc = bad(p, -EINVAL, "a field tuple was expected in the descr");
			goto out;
		}
		if (peek(p) == '(') {
			rc = bad(p, -ENOTSUP, "fields with titles are not supported");
			goto out;
		}
		rc = parse_str(p, name, sizeof(name));
		if (rc == 0 && !accept(p, ','))
			rc = bad(p, -EINVAL, "a field type was expected in the descr");
		if (rc)
			goto out;
		if (*name) {
			emit_gap(p, &gap, &first);
			emitf(p, "%s(", first ? "" : ",");
			first = false;
			emit_pystr(p, name);
			emit(p, ",", 1);
		}
		mark = p->nlen;
		rc = parse_type(p, depth + 1, &ft, &vsize);
		if (rc)
			goto out;
		if (!*name) { /* padding is emitted merged, by emit_gap */
			p->nlen = mark;
			p->norm[mark] = 0;
		}
		if (accept(p, ',') && peek(p) != ')') {
			r = parse_shape(p, dims);
			if (r < 0) {
				H5Tclose(ft);
				rc = r;
				goto out;
			}
			accept(p, ',');
		}
		if (!accept(p, ')')) {
			H5Tclose(ft);
			rc = bad(p, -EINVAL, "a field tuple is not closed in the descr");
			goto out;
		}
		if (!*name) {
			/* numpy's padding: ('', '|Vn') */
			H5Tclose(ft);
			if (!vsize || r) {
				rc = bad(p, -EINVAL, "a field without a name");
				goto out;
			}
			gap += vsize;
			off += vsize;
			if (!accept(p, ',') && peek(p) != ']') {
				rc = bad(p, -EINVAL, "',' or ']' was expected in the descr");
				goto out;
			}
			continue;
		}
		if (r) {
			hid_t a = H5Tarray_create2(ft, (unsigned)r, dims);

			H5Tclose(ft);
			if (a < 0) {
				h5why(p->why, p->cap, "cannot make a subarray type");
				rc = -EINVAL;
				goto out;
			}
			ft = a;
			emit(p, ",(", 2);
			for (int d = 0; d < r; d++)
				emitf(p, "%s%llu", d ? "," : "", (unsigned long long)dims[d]);
			emit(p, r == 1 ? ",))" : "))", r == 1 ? 3 : 2);
		} else {
			emit(p, ")", 1);
		}
		if (nm == am) {
			struct member *n2;

			am = am ? am * 2 : 8;
			n2 = realloc(m, am * sizeof(*m));
			if (!n2) {
				H5Tclose(ft);
				rc = -ENOMEM;
				goto out;
			}
			m = n2;
		}
		for (size_t k = 0; k < nm; k++)
			if (!strcmp(m[k].name, name)) {
				H5Tclose(ft);
				rc = bad(p, -EINVAL, "a field name appears twice in the descr");
				goto out;
			}
		snprintf(m[nm].name, sizeof(m[nm].name), "%s", name);
		m[nm].type = ft;
		m[nm].off = off;
		nm++;
		fsize = H5Tget_size(ft);
		if (fsize == 0 || off + fsize < off) {
			rc = bad(p, -EINVAL, "a structured dtype too large");
			goto out;
		}
		off += fsize;
		if (!accept(p, ',') && peek(p) != ']') {
			rc = bad(p, -EINVAL, "',' or ']' was expected in the descr");
			goto out;
		}
	}
	emit_gap(p, &gap, &first);
	emit(p, "]", 1);
	if (nm == 0) {
		rc = bad(p, -ENOTSUP, "a structured dtype without named fields");
		goto out;
	}
	c = H5Tcreate(H5T_COMPOUND, off);
	if (c < 0) {
		h5why(p->why, p->cap, "cannot make the compound type");
		rc = -EINVAL;
		goto out;
	}
	for (size_t k = 0; k < nm; k++)
		if (H5Tinsert(c, m[k].name, m[k].off, m[k].type) < 0) {
			h5why(p->why, p->cap, "cannot add a field to the compound type");
			rc = -EINVAL;
			goto out;
		}
	*out = c;
	c = H5I_INVALID_HID;
out:
	if (c >= 0)
		H5Tclose(c);
	for (size_t k = 0; k < nm; k++)
		H5Tclose(m[k].type);
	free(m);
	return rc;
}

static int parse_type(struct parser *p, unsigned depth, hid_t *out, size_t *vsize)
{
	*vsize = 0;
	*out = H5I_INVALID_HID;
	if (peek(p) == '[')
		return parse_compound(p, depth, out);
	return parse_simple(p, out, vsize);
}

int h5m_create_type(const char *descr, hid_t *type, char *why, size_t cap)
{
	struct parser *p = NULL;
	struct h5m_dtype dt = { 0 };
	char back[DESCR_MAX];
	char dwhy[160];
	hid_t t = H5I_INVALID_HID;
	size_t vsize;
	int rc;

	*type = H5I_INVALID_HID;
	p = calloc(1, sizeof(*p));
	if (!p) {
		rc = -ENOMEM;
		goto out;
	}
	/* Not h5m_npy_descr_canon: it turns "a'b" into 'a'b'. The parser skips whitespace. */
	p->s = descr;
	p->why = why;
	p->cap = cap;
	rc = parse_type(p, 0, &t, &vsize);
	if (rc)
		goto out;
	if (peek(p)) {
		snprintf(why, cap, "trailing text after the descr");
		rc = -EINVAL;
		goto out;
	}
	if (p->overflow) {
		snprintf(why, cap, "the descr is too long");
		rc = -EINVAL;
		goto out;
	}
	/* The contract: the read path must show this type as the same descr. */
	rc = h5m_dtype_describe(t, &dt, dwhy, sizeof(dwhy));
	if (rc == -ENOMEM)
		goto out;
	if (rc) {
		snprintf(why, cap, "the type would not be readable back: %s", dwhy);
		rc = -ENOTSUP;
		goto out;
	}
	if (h5m_npy_descr_canon(dt.descr, back, sizeof(back)) < 0 || dt.converted || dt.extra_rank ||
	    strcmp(back, p->norm)) {
		snprintf(why, cap, "descr %.60s would read back as %.60s", p->norm, dt.descr);
		rc = -ENOTSUP;
		goto out;
	}
	*type = t;
	t = H5I_INVALID_HID;
out:
	h5m_dtype_destroy(&dt);
	if (t >= 0)
		H5Tclose(t);
	free(p);
	return rc;
}

/* ---- chunk shape ---- */

int h5m_create_chunk_dims(size_t elem_size, unsigned trank, const uint64_t *tdims, uint64_t expected_rows,
                          const struct h5m_layout *lay, hsize_t *chunk, char *why, size_t cap)
{
	uint64_t row = elem_size, target, bytes;

	if (elem_size == 0 || trank >= H5M_NPY_MAXDIMS) {
		snprintf(why, cap, elem_size ? "too many dimensions" : "zero-sized elements");
		return -EINVAL;
	}
	for (unsigned i = 0; i < trank; i++) {
		if (tdims[i] == 0) {
			snprintf(why, cap, "a trailing dimension of 0 cannot be chunked");
			return -EINVAL;
		}
		if (__builtin_mul_overflow(row, tdims[i], &row)) {
			snprintf(why, cap, "rows too large");
			return -EINVAL;
		}
	}
	if (lay && lay->chunk_bytes) {
		target = lay->chunk_bytes;
	} else {
		/* PyTables' calc_chunksize: 64 KiB * 2^floor(log10(expected MiB)), the MiB at least 1;
		 * capped at 1 MiB here (HDF5's default chunk cache, h5py's CHUNK_MAX). */
		uint64_t mib, zone = 0;

		if (!expected_rows)
			expected_rows = H5M_CREATE_EXPECTED_ROWS;
		if (__builtin_mul_overflow(expected_rows, row, &bytes))
			bytes = UINT64_MAX;
		for (mib = bytes >> 20; mib >= 10 && zone < 4; mib /= 10)
			zone++;
		target = ((uint64_t)64 << 10) << zone;
	}
	chunk[0] = 1;
	for (unsigned i = 0; i < trank; i++)
		chunk[i + 1] = tdims[i];
	if (row <= target) {
		chunk[0] = target / row;
		bytes = row * chunk[0];
	} else {
		/* One row, cut along its outermost trailing dims until it fits. */
		bytes = row;
		for (unsigned i = 1; i <= trank && bytes > target; i++) {
			uint64_t inner = bytes / chunk[i]; /* bytes of one step along axis i */
			uint64_t n = target / inner;

			chunk[i] = n ? n : 1;
			bytes = inner * chunk[i];
		}
	}
	if (bytes >= CHUNK_LIMIT) {
		snprintf(why, cap, "one element is too large for an HDF5 chunk");
		return -EINVAL;
	}
	return 0;
}

/* ---- datasets ---- */

static int check_name(const char *name, char *why, size_t cap)
{
	if (!*name || strchr(name, '/') || !strcmp(name, ".")) {
		snprintf(why, cap, "'%s' is not a link name", name);
		return -EINVAL;
	}
	return 0;
}

int h5m_create_dataset(hid_t loc, const char *name, hid_t type, unsigned trank, const uint64_t *tdims,
                       uint64_t expected_rows, const struct h5m_layout *lay, hid_t *out, char *why, size_t cap)
{
	static const struct h5m_layout none = { 0 };
	hsize_t dims[H5M_NPY_MAXDIMS], maxdims[H5M_NPY_MAXDIMS], chunk[H5M_NPY_MAXDIMS];
	hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, lcpl = H5I_INVALID_HID, d = H5I_INVALID_HID;
	size_t esize = H5Tget_size(type);
	void *fill = NULL;
	htri_t ex;
	int rc;

	*out = H5I_INVALID_HID;
	if (!lay)
		lay = &none;
	rc = check_name(name, why, cap);
	if (rc)
		return rc;
	rc = h5m_create_chunk_dims(esize, trank, tdims, expected_rows, lay, chunk, why, cap);
	if (rc)
		return rc;
	ex = H5Lexists(loc, name, H5P_DEFAULT);
	if (ex != 0) {
		if (ex > 0)
			snprintf(why, cap, "'%s' exists", name);
		else
			h5why(why, cap, "cannot look the name up");
		return ex > 0 ? -EEXIST : -EIO;
	}
	if (lay->compress == H5M_COMPRESS_BLOSC && H5Zfilter_avail(H5M_BLOSC_FILTER_ID) <= 0) {
		snprintf(why, cap, "the Blosc filter (32001) is not registered");
		return -ENOTSUP;
	}
	dims[0] = 0;
	maxdims[0] = H5S_UNLIMITED;
	for (unsigned i = 0; i < trank; i++)
		dims[i + 1] = maxdims[i + 1] = tdims[i];
	fill = calloc(1, esize);
	if (!fill) {
		rc = -ENOMEM;
		goto out;
	}
	rc = -EIO;
	space = H5Screate_simple((int)trank + 1, dims, maxdims);
	dcpl = H5Pcreate(H5P_DATASET_CREATE);
	lcpl = H5Pcreate(H5P_LINK_CREATE);
	if (space < 0 || dcpl < 0 || lcpl < 0 || H5Pset_chunk(dcpl, (int)trank + 1, chunk) < 0 ||
	    H5Pset_fill_value(dcpl, type, fill) < 0 || H5Pset_fill_time(dcpl, H5D_FILL_TIME_IFSET) < 0 ||
	    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_INCR) < 0 || H5Pset_char_encoding(lcpl, H5T_CSET_UTF8) < 0) {
		h5why(why, cap, "cannot prepare the dataset's properties");
		goto out;
	}
	if (lay->compress == H5M_COMPRESS_BLOSC) {
		/* PyTables' 'blosc' (blosclz): six values, slots 0..3 filled by set_local. */
		const unsigned cd[6] = { 0, 0, 0, 0, lay->level, 1 };

		if (H5Pset_filter(dcpl, H5M_BLOSC_FILTER_ID, H5Z_FLAG_OPTIONAL, 6, cd) < 0) {
			h5why(why, cap, "cannot add the Blosc filter");
			goto out;
		}
	} else if (lay->compress == H5M_COMPRESS_GZIP) {
		if (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, lay->level) < 0) {
			h5why(why, cap, "cannot add the gzip filter");
			goto out;
		}
	}
	d = H5Dcreate2(loc, name, type, space, lcpl, dcpl, H5P_DEFAULT);
	if (d < 0) {
		h5why(why, cap, "cannot create the dataset");
		goto out;
	}
	*out = d;
	rc = 0;
out:
	if (lcpl >= 0)
		H5Pclose(lcpl);
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (space >= 0)
		H5Sclose(space);
	free(fill);
	return rc;
}

/* Whether t holds a dataset region reference anywhere (they live in the global heap and do not
 * survive a byte copy). */
static bool has_region_ref(hid_t t)
{
	H5T_class_t cls = H5Tget_class(t);
	bool found = false;

	if (cls == H5T_REFERENCE)
		return H5Tequal(t, H5T_STD_REF_DSETREG) > 0;
	if (cls == H5T_COMPOUND) {
		int n = H5Tget_nmembers(t);

		for (int i = 0; i < n && !found; i++) {
			hid_t m = H5Tget_member_type(t, (unsigned)i);

			found = m < 0 || has_region_ref(m);
			if (m >= 0)
				H5Tclose(m);
		}
		return found;
	}
	if (cls == H5T_ARRAY || cls == H5T_VLEN) {
		hid_t b = H5Tget_super(t);

		found = b < 0 || has_region_ref(b);
		if (b >= 0)
			H5Tclose(b);
	}
	return found;
}

struct attr_copy {
	hid_t dst;
	char *why;
	size_t cap;
	int rc;
};

/* H5Aiterate2 callback: copies attribute `name` of loc to c->dst (same type, shape, name
 * encoding and value; variable-length parts read into memory and reclaimed). */
static herr_t copy_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
	struct attr_copy *c = data;
	hid_t a = H5I_INVALID_HID, t = H5I_INVALID_HID, s = H5I_INVALID_HID, acpl = H5I_INVALID_HID;
	hid_t na = H5I_INVALID_HID;
	hssize_t np;
	size_t bytes = 0;
	void *buf = NULL;
	bool read = false;

	(void)info;
	c->rc = -EIO;
	a = H5Aopen(loc, name, H5P_DEFAULT);
	t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
	s = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
	acpl = a >= 0 ? H5Aget_create_plist(a) : H5I_INVALID_HID;
	if (a < 0 || t < 0 || s < 0 || acpl < 0) {
		h5why(c->why, c->cap, "cannot open an attribute");
		goto out;
	}
	if (has_region_ref(t)) {
		snprintf(c->why, c->cap, "attribute '%s' holds region references, which cannot be copied", name);
		c->rc = -ENOTSUP;
		goto out;
	}
	np = H5Sget_simple_extent_npoints(s);
	if (np < 0 || __builtin_mul_overflow((size_t)np, H5Tget_size(t), &bytes)) {
		snprintf(c->why, c->cap, "attribute '%s' is too large", name);
		goto out;
	}
	na = H5Acreate2(c->dst, name, t, s, acpl, H5P_DEFAULT);
	if (na < 0) {
		h5why(c->why, c->cap, "cannot create the copy of an attribute");
		goto out;
	}
	if (bytes) {
		buf = calloc(1, bytes);
		if (!buf) {
			c->rc = -ENOMEM;
			goto out;
		}
		if (H5Aread(a, t, buf) < 0) {
			h5why(c->why, c->cap, "cannot read an attribute");
			goto out;
		}
		read = true;
		if (H5Awrite(na, t, buf) < 0) {
			h5why(c->why, c->cap, "cannot write the copy of an attribute");
			goto out;
		}
	}
	c->rc = 0;
out:
	if (read)
		H5Dvlen_reclaim(t, s, H5P_DEFAULT, buf);
	free(buf);
	if (na >= 0)
		H5Aclose(na);
	if (acpl >= 0)
		H5Pclose(acpl);
	if (s >= 0)
		H5Sclose(s);
	if (t >= 0)
		H5Tclose(t);
	if (a >= 0)
		H5Aclose(a);
	return c->rc ? -1 : 0;
}

/* Returns a malloc'd link name ".h5mount-WHAT-N.NAME" that no link of loc has, or NULL with
 * *rc (-ENOMEM, -EIO) and a reason in why. */
static char *temp_name(hid_t loc, const char *what, const char *name, char *why, size_t cap, int *rc)
{
	size_t len = strlen(name) + 48;
	char *t = malloc(len);

	*rc = -ENOMEM;
	for (unsigned n = 0; t; n++) {
		htri_t ex;

		snprintf(t, len, ".h5mount-%s-%u.%s", what, n, name);
		ex = H5Lexists(loc, t, H5P_DEFAULT);
		if (ex == 0)
			return t;
		if (ex < 0 || n == 1000) {
			h5why(why, cap, "cannot find a temporary name");
			*rc = -EIO;
			free(t);
			return NULL;
		}
	}
	return NULL;
}

int h5m_create_replace(hid_t loc, const char *name, hid_t type, unsigned trank, const uint64_t *tdims,
                       uint64_t expected_rows, const struct h5m_layout *lay, hid_t *out, char *why, size_t cap)
{
	struct attr_copy ac = { .why = why, .cap = cap, .rc = 0 };
	hid_t old = H5I_INVALID_HID, d = H5I_INVALID_HID, lcpl = H5I_INVALID_HID;
	H5O_info_t oi;
	char *tmp = NULL, *otmp = NULL;
	bool made = false;
	hsize_t idx = 0;
	htri_t ex;
	int rc;

	*out = H5I_INVALID_HID;
	rc = check_name(name, why, cap);
	if (rc)
		return rc;
	ex = H5Lexists(loc, name, H5P_DEFAULT);
	if (ex <= 0) {
		if (ex == 0)
			snprintf(why, cap, "'%s' does not exist", name);
		else
			h5why(why, cap, "cannot look the name up");
		return ex == 0 ? -ENOENT : -EIO;
	}
	old = H5Oopen(loc, name, H5P_DEFAULT);
	if (old < 0 || H5Oget_info2(old, &oi, H5O_INFO_BASIC) < 0) {
		h5why(why, cap, "cannot open the old dataset");
		rc = -EIO;
		goto out;
	}
	if (oi.type != H5O_TYPE_DATASET) {
		snprintf(why, cap, "'%s' is not a dataset", name);
		rc = -EINVAL;
		goto out;
	}
	tmp = temp_name(loc, "new", name, why, cap, &rc);
	otmp = tmp ? temp_name(loc, "old", name, why, cap, &rc) : NULL;
	if (!otmp)
		goto out;
	lcpl = H5Pcreate(H5P_LINK_CREATE);
	if (lcpl < 0 || H5Pset_char_encoding(lcpl, H5T_CSET_UTF8) < 0) {
		h5why(why, cap, "cannot prepare the link properties");
		rc = -EIO;
		goto out;
	}
	rc = h5m_create_dataset(loc, tmp, type, trank, tdims, expected_rows, lay, &d, why, cap);
	if (rc)
		goto out;
	made = true;
	ac.dst = d;
	if (H5Aiterate2(old, H5_INDEX_NAME, H5_ITER_INC, &idx, copy_attr, &ac) < 0) {
		rc = ac.rc ? ac.rc : -EIO;
		if (!ac.rc)
			h5why(why, cap, "cannot list the old dataset's attributes");
		goto out;
	}
	/* Three link steps, each undone if a later one fails: the caller holds the HDF5 lock
	 * throughout, so no commit sees the steps between, but a failure must leave the names as
	 * they were, since the next commit (of anything) would make them durable. */
	rc = -EIO;
	if (H5Lmove(loc, name, loc, otmp, lcpl, H5P_DEFAULT) < 0) {
		h5why(why, cap, "cannot move the old dataset aside");
		goto out;
	}
	if (H5Lmove(loc, tmp, loc, name, lcpl, H5P_DEFAULT) < 0) {
		h5why(why, cap, "cannot move the new dataset into place");
		if (H5Lmove(loc, otmp, loc, name, lcpl, H5P_DEFAULT) < 0)
			H5Eclear2(H5E_DEFAULT);
		goto out;
	}
	if (H5Ldelete(loc, otmp, H5P_DEFAULT) < 0) {
		h5why(why, cap, "cannot unlink the old dataset");
		if (H5Lmove(loc, name, loc, tmp, lcpl, H5P_DEFAULT) < 0 || H5Lmove(loc, otmp, loc, name, lcpl, H5P_DEFAULT) < 0)
			H5Eclear2(H5E_DEFAULT);
		goto out;
	}
	made = false;
	*out = d;
	d = H5I_INVALID_HID;
	rc = 0;
out:
	if (d >= 0)
		H5Dclose(d);
	if (made && H5Ldelete(loc, tmp, H5P_DEFAULT) < 0)
		H5Eclear2(H5E_DEFAULT);
	if (lcpl >= 0)
		H5Pclose(lcpl);
	free(otmp);
	free(tmp);
	if (old >= 0)
		H5Oclose(old);
	return rc;
}

/* ---- files ---- */

/* fsyncs the file at path and its directory, so that the new file survives a crash. */
static void sync_new(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	if (!dir)
		return;
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = 0;
	else if (slash)
		*slash = 0;
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

int h5m_create_file(const char *path, char *why, size_t cap)
{
	hid_t f = H5I_INVALID_HID;
	struct stat st;
	int e;

	if (lstat(path, &st) == 0) {
		snprintf(why, cap, "it exists");
		return -EEXIST;
	}
	/* Default properties, as h5py and PyTables create files. Not a persistent free-space
	 * manager (H5Pset_file_space_strategy(FSM_AGGR, persist = 1)): HDF5 1.10.8 writes its
	 * free-space sections only at H5Fclose, so a writer that dies after an H5Fflush, which is
	 * what every journal commit and every crash recovery of h5mount restores, leaves sections
	 * that name space in use; the next writer truncates live objects ("addr overflow"). */
	f = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
	if (f < 0) {
		e = errno;
		h5why(why, cap, "cannot create the file");
		return lstat(path, &st) == 0 && e == EEXIST ? -EEXIST : -EIO;
	}
	if (H5Fclose(f) < 0) {
		h5why(why, cap, "cannot write the new file");
		unlink(path);
		return -EIO;
	}
	sync_new(path);
	return 0;
}
