/* npy.c: encodes fixed-length .npy headers and parses headers strictly; no HDF5, no I/O. */
#include "h5mount/npy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char npy_magic[6] = { '\x93', 'N', 'U', 'M', 'P', 'Y' };

#define DICT_FMT_HEAD "{'descr': %s, 'fortran_order': False, 'shape': "
#define DICT_TAIL ", }"
#define MAX_DIM_DIGITS 20 /* UINT64_MAX has 20 digits */

static bool is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* Length of the shape tuple's text: "()", "(n,)" or "(a, b, c)". */
static size_t shape_text(unsigned rank, const uint64_t *shape, char *out, size_t cap)
{
	size_t n = 0;
	int w;

	if (rank == 0)
		return (size_t)snprintf(out, cap, "()");
	w = snprintf(out, cap, "(");
	n += (size_t)w;
	for (unsigned i = 0; i < rank; i++) {
		w = snprintf(out + (n < cap ? n : cap), n < cap ? cap - n : 0, "%s%" PRIu64,
		             i ? ", " : "", shape[i]);
		n += (size_t)w;
	}
	w = snprintf(out + (n < cap ? n : cap), n < cap ? cap - n : 0, rank == 1 ? ",)" : ")");
	n += (size_t)w;
	return n;
}

int h5m_npy_header_size(const char *descr, unsigned rank, size_t *len, int *version)
{
	uint64_t widest[H5M_NPY_MAXDIMS];
	size_t dict, pre;

	if (rank > H5M_NPY_MAXDIMS)
		return -EINVAL;
	for (unsigned i = 0; i < rank; i++)
		widest[i] = UINT64_MAX;
	dict = (size_t)snprintf(NULL, 0, DICT_FMT_HEAD, descr) + shape_text(rank, widest, NULL, 0) +
	       strlen(DICT_TAIL) + 1 /* '\n' */;
	if (!is_ascii(descr)) {
		*version = 3;
		pre = 12;
	} else if (((dict + 10 + 63) / 64) * 64 - 10 > 65535) {
		*version = 2;
		pre = 12;
	} else {
		*version = 1;
		pre = 10;
	}
	*len = ((pre + dict + 63) / 64) * 64;
	return 0;
}

int h5m_npy_header_write(const char *descr, unsigned rank, const uint64_t *shape, char *buf, size_t len)
{
	size_t want, pre, n, dict_len;
	int version, w;

	if (h5m_npy_header_size(descr, rank, &want, &version) < 0 || want != len)
		return -EINVAL;
	pre = version == 1 ? 10 : 12;
	dict_len = len - pre;
	memcpy(buf, npy_magic, sizeof(npy_magic));
	buf[6] = (char)version;
	buf[7] = 0;
	if (version == 1) {
		buf[8] = (char)(dict_len & 0xff);
		buf[9] = (char)(dict_len >> 8);
	} else {
		for (int i = 0; i < 4; i++)
			buf[8 + i] = (char)((dict_len >> (8 * i)) & 0xff);
	}
	/* The whole dict fits by construction: the size was computed with 20-digit dims. */
	w = snprintf(buf + pre, len - pre, DICT_FMT_HEAD, descr);
	n = pre + (size_t)w;
	n += shape_text(rank, shape, buf + n, len - n);
	memcpy(buf + n, DICT_TAIL, strlen(DICT_TAIL));
	n += strlen(DICT_TAIL);
	memset(buf + n, ' ', len - n - 1);
	buf[len - 1] = '\n';
	return 0;
}

/* ---- parser ---- */

struct cursor {
	const char *p, *end;
};

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

/* Skips a quoted string literal; returns 0 or -EINVAL. */
static int skip_string(struct cursor *c)
{
	char q;

	if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
		return -EINVAL;
	q = *c->p++;
	while (c->p < c->end && *c->p != q) {
		if (*c->p == '\\')
			c->p++;
		if (*c->p == '\n')
			return -EINVAL;
		c->p++;
	}
	if (c->p >= c->end)
		return -EINVAL;
	c->p++;
	return 0;
}

/* Skips one descr value: a string, or a bracketed list/tuple of them (nested, with ints). */
static int skip_descr(struct cursor *c)
{
	int depth = 0;

	if (c->p < c->end && (*c->p == '\'' || *c->p == '"'))
		return skip_string(c);
	do {
		if (c->p >= c->end)
			return -EINVAL;
		switch (*c->p) {
		case '[': case '(':
			depth++;
			c->p++;
			break;
		case ']': case ')':
			if (--depth < 0)
				return -EINVAL;
			c->p++;
			break;
		case '\'': case '"':
			if (skip_string(c) < 0)
				return -EINVAL;
			break;
		case '{': case '}':
			return -EINVAL;
		default:
			if (depth == 0)
				return -EINVAL;
			c->p++;
		}
	} while (depth > 0);
	return 0;
}

static int parse_key(struct cursor *c, char *key, size_t cap)
{
	const char *start;
	size_t n;

	if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
		return -EINVAL;
	start = c->p + 1;
	if (skip_string(c) < 0)
		return -EINVAL;
	n = (size_t)(c->p - 1 - start);
	if (n >= cap)
		return -EINVAL;
	memcpy(key, start, n);
	key[n] = 0;
	return 0;
}

static int parse_shape(struct cursor *c, struct h5m_npy_header *h)
{
	bool need_comma_for_one = true;

	if (c->p >= c->end || *c->p != '(')
		return -EINVAL;
	c->p++;
	h->rank = 0;
	for (;;) {
		uint64_t v = 0;
		bool digits = false;

		skip_ws(c);
		if (c->p < c->end && *c->p == ')')
			break;
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
			if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*c->p - '0'), &v))
				return -EINVAL;
			digits = true;
			c->p++;
		}
		if (c->p < c->end && *c->p == 'L')
			c->p++;
		if (!digits || h->rank >= H5M_NPY_MAXDIMS)
			return -EINVAL;
		h->shape[h->rank++] = v;
		skip_ws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			need_comma_for_one = false;
			continue;
		}
		need_comma_for_one = h->rank != 1 ? false : true;
		if (c->p < c->end && *c->p == ')')
			break;
		return -EINVAL;
	}
	/* "(5)" is an int, not a tuple. */
	if (h->rank == 1 && need_comma_for_one)
		return -EINVAL;
	c->p++;
	return 0;
}


static int canon(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	char q = 0;

	for (size_t i = 0; i < n && s[i]; i++) {
		char ch = s[i];

		if (q) {
			if (ch == '\\' && i + 1 < n) {
				if (o + 2 >= cap)
					return -ENAMETOOLONG;
				out[o++] = ch;
				out[o++] = s[++i];
				continue;
			}
			if (ch == q)
				q = 0;
		} else if (ch == '\'' || ch == '"') {
			q = ch;
		} else if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
			continue;
		}
		if (o + 1 >= cap)
			return -ENAMETOOLONG;
		/* Normalize double-quoted strings to single quotes (numpy's repr uses single). */
		out[o++] = (ch == '"' && !(q && q == '\'')) ? '\'' : ch;
	}
	out[o] = 0;
	return 0;
}

int h5m_npy_descr_canon(const char *descr, char *out, size_t cap)
{
	return canon(descr, strlen(descr), out, cap);
}

int h5m_npy_header_parse(const void *buf, size_t len, struct h5m_npy_header *h)
{
	const unsigned char *b = buf;
	struct cursor c;
	size_t pre, dict_len;
	bool seen_descr = false, seen_fortran = false, seen_shape = false;

	memset(h, 0, sizeof(*h));
	if (len < 8)
		return memcmp(b, npy_magic, len < 6 ? len : 6) ? -EINVAL : -EAGAIN;
	if (memcmp(b, npy_magic, 6) || b[7] != 0 || b[6] < 1 || b[6] > 3)
		return -EINVAL;
	h->version = b[6];
	pre = h->version == 1 ? 10 : 12;
	if (len < pre)
		return -EAGAIN;
	dict_len = h->version == 1 ? (size_t)b[8] | (size_t)b[9] << 8
	                           : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
	h->header_len = pre + dict_len;
	if (len < h->header_len)
		return -EAGAIN;
	c.p = (const char *)b + pre;
	c.end = c.p + dict_len;
	skip_ws(&c);
	if (c.p >= c.end || *c.p++ != '{')
		return -EINVAL;
	for (;;) {
		char key[32];
		const char *vstart;

		skip_ws(&c);
		if (c.p < c.end && *c.p == '}')
			break;
		if (parse_key(&c, key, sizeof(key)) < 0)
			return -EINVAL;
		skip_ws(&c);
		if (c.p >= c.end || *c.p++ != ':')
			return -EINVAL;
		skip_ws(&c);
		vstart = c.p;
		if (!strcmp(key, "descr") && !seen_descr) {
			if (skip_descr(&c) < 0 || canon(vstart, (size_t)(c.p - vstart), h->descr, sizeof(h->descr)) < 0)
				return -EINVAL;
			seen_descr = true;
		} else if (!strcmp(key, "fortran_order") && !seen_fortran) {
			if ((size_t)(c.end - c.p) >= 4 && !memcmp(c.p, "True", 4)) {
				h->fortran_order = true;
				c.p += 4;
			} else if ((size_t)(c.end - c.p) >= 5 && !memcmp(c.p, "False", 5)) {
				c.p += 5;
			} else {
				return -EINVAL;
			}
			seen_fortran = true;
		} else if (!strcmp(key, "shape") && !seen_shape) {
			if (parse_shape(&c, h) < 0)
				return -EINVAL;
			seen_shape = true;
		} else {
			return -EINVAL; /* unknown or repeated key */
		}
		skip_ws(&c);
		if (c.p < c.end && *c.p == ',') {
			c.p++;
			continue;
		}
		skip_ws(&c);
		if (c.p < c.end && *c.p == '}')
			break;
		return -EINVAL;
	}
	c.p++;
	skip_ws(&c);
	if (c.p != c.end || !seen_descr || !seen_fortran || !seen_shape)
		return -EINVAL;
	return 0;
}
