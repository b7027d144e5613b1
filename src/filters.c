/* filters.c: h5py's LZF (32000) and PyTables' LZO (305) and bzip2 (307) HDF5 filters on Debian's libraries; loads no plugins. */
#include "h5mount/filters.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <bzlib.h>
#include <hdf5.h>
#include <lzf.h>
#include <lzo/lzo1x.h>

/*
 * Formats, as the writers' sources define them (h5py lzf/lzf_filter.c, PyTables src/H5Zlzo.c and
 * src/H5Zbzip2.c). Every writer flags these filters optional, so a chunk a filter declines to
 * encode (it returns 0) is stored raw with bit 0 of its filter mask set and never reaches us.
 *
 * LZF (32000): a chunk is one bare LZF stream (liblzf's format, API version 0x0105, the one h5py
 *   bundles). cd_values are {filter revision 4, LZF_VERSION, uncompressed chunk bytes}, written by
 *   set_local; files from h5py before set_local existed have fewer. That size is only a first
 *   guess of the decoded length (a filter before LZF may change it). h5py declines chunks that
 *   do not fit in their own size.
 * LZO (305): a chunk is one bare lzo1x stream from lzo1x_1_compress. cd_values {level, object
 *   version, object type} change nothing. PyTables 0.5 to 0.7 appended 8 bytes (adler32 of the
 *   decoded data, then its length, in the writer's byte order; read as little-endian), which
 *   decoding still accepts. PyTables declines chunks that do not shrink.
 * bzip2 (307): a chunk is one bzip2 stream (BZ2_bzBuffToBuffCompress); cd_values[0] is the block
 *   size in 100 kB (1..9, default 9). PyTables stores every chunk encoded, even a larger one.
 */

enum {
	LZF_CD_REVISION,  /* h5py's filter revision */
	LZF_CD_API,       /* LZF_VERSION of the writer */
	LZF_CD_CHUNKSIZE, /* uncompressed chunk bytes, 0 or absent when unknown */
	LZF_CD_MIN,       /* set_local writes at least this many values */
	LZF_CD_MAX = 8,   /* the most it keeps (h5py's limit too) */
};

#define LZF_FILTER_REVISION 4 /* what h5py writes in LZF_CD_REVISION */
#define LZF_MAX_RATIO 88      /* an LZF back reference of 3 bytes yields at most 264 */
#define BZIP2_DEFAULT_BLOCK 9
#define LEGACY_LZO_TRAILER 8  /* adler32 and length after a PyTables 0.5-0.7 lzo stream */
#define FIRST_GUESS_MIN ((size_t)64 << 10)
#define MAX_CHUNK_RANK 32     /* H5S_MAX_RANK */

/* Where decoded buffers come from: HDF5's allocator inside the filter callbacks (HDF5 frees
 * what a filter returns), the C library's for h5m_filters_decode. */
struct mem {
	void *(*alloc)(size_t n);
	void *(*resize)(void *p, size_t n);
	void (*release)(void *p);
};

static void *h5_alloc(size_t n) { return H5allocate_memory(n, false); }
static void *h5_resize(void *p, size_t n) { return H5resize_memory(p, n); }
static void h5_release(void *p) { H5free_memory(p); }

static const struct mem h5mem = {h5_alloc, h5_resize, h5_release};
static const struct mem cmem = {malloc, realloc, free};

/* A decoded chunk: `len` bytes valid in a buffer of `cap` bytes. */
struct out {
	void *p;
	size_t len, cap;
};

/* Per thread, so no lock: the chunk bytes of the dataset this thread is reading or writing
 * through HDF5 (0: unknown; set by h5m_filters_expect), and the sizes the last LZO and bzip2
 * chunks decoded to (first guesses for the next one when no size is expected: their streams
 * do not say how long they decode, and chunks of one dataset are alike). */
static _Thread_local size_t expect, last_lzo, last_bz2;

void h5m_filters_expect(size_t chunk_bytes)
{
	expect = chunk_bytes;
}

/* Returns the most bytes a chunk may decode to on this thread: the expected chunk bytes plus
 * room for filters that ran before ours on write and grew the data (PyTables puts Fletcher32
 * first, which adds 4 bytes; scale-offset adds a header, deflate 0.03%), or
 * H5M_FILTERS_MAX_CHUNK when nothing is expected. */
static size_t bound(void)
{
	if (expect == 0 || expect > H5M_FILTERS_MAX_CHUNK)
		return H5M_FILTERS_MAX_CHUNK;
	return expect + expect / 16 + 256 < H5M_FILTERS_MAX_CHUNK ? expect + expect / 16 + 256 : H5M_FILTERS_MAX_CHUNK;
}

/* Returns the first output size to try for a stream of srclen bytes that decodes to at most
 * `limit`: the bound itself when the chunk size is expected (one pass), else a guess. */
static size_t first_guess(size_t last, size_t srclen, size_t limit)
{
	size_t n = srclen > limit / 4 ? limit : srclen * 4;

	if (expect)
		return limit;
	if (n < FIRST_GUESS_MIN)
		n = FIRST_GUESS_MIN;
	if (last > n)
		n = last;
	return n < limit ? n : limit;
}

/* Returns the next output size to try after `cur` was too small, or 0 past `limit`. */
static size_t next_guess(size_t cur, size_t limit)
{
	if (cur >= limit)
		return 0;
	return cur > limit / 2 ? limit : cur * 2;
}

/* Grows o->p to `cap` bytes (allocating it the first time). Returns 0 or -ENOMEM (o unchanged). */
static int out_grow(struct out *o, size_t cap, const struct mem *m)
{
	void *p = o->p ? m->resize(o->p, cap) : m->alloc(cap);

	if (p == NULL)
		return -ENOMEM;
	o->p = p;
	o->cap = cap;
	return 0;
}

static void out_drop(struct out *o, const struct mem *m)
{
	if (o->p)
		m->release(o->p);
	o->p = NULL;
	o->len = o->cap = 0;
}

/* ---- LZF ---- */

/* Decodes an LZF chunk into o, trying the chunk size of cd_values first (as h5py does; a
 * filter before LZF on write may have made the data longer or shorter) and growing up to the
 * bound, and up to LZF_MAX_RATIO times the input. Returns 0, or (o empty) -EIO for a corrupt
 * stream, -EFBIG for one that decodes to more, -ENOMEM. */
static int lzf_dec(size_t ncd, const unsigned *cd, const uint8_t *src, size_t srclen, struct out *o,
                   const struct mem *m)
{
	size_t stated = ncd > LZF_CD_CHUNKSIZE ? cd[LZF_CD_CHUNKSIZE] : 0;
	size_t limit = bound(), cap;
	unsigned n = 0;
	int rc = -EIO;

	if (srclen == 0 || srclen > UINT_MAX)
		return -EIO;
	if (srclen < limit / LZF_MAX_RATIO)
		limit = srclen * LZF_MAX_RATIO;
	cap = stated && stated <= limit && !expect ? stated : first_guess(0, srclen, limit);
	for (; cap; cap = next_guess(cap, limit)) {
		if (out_grow(o, cap, m) != 0) {
			rc = -ENOMEM;
			break;
		}
		errno = 0;
		n = lzf_decompress(src, (unsigned)srclen, o->p, (unsigned)cap);
		rc = errno == E2BIG ? -EFBIG : -EIO;
		if (n > 0 || errno != E2BIG)
			break;
	}
	if (n == 0) {
		out_drop(o, m);
		return rc;
	}
	o->len = n;
	return 0;
}

/* Encodes for the LZF filter into *dst (from h5mem). An optional filter declines output that
 * does not shrink; a mandatory one always succeeds (LZF adds 1 byte per 32 at worst). Returns
 * the encoded size or 0. */
static size_t lzf_enc(bool optional, const void *src, size_t srclen, void **dst, size_t *dstcap)
{
	size_t cap = optional ? srclen - 1 : srclen + srclen / 32 + 16;
	unsigned n;

	if (srclen == 0 || srclen > UINT_MAX / 2 || (optional && srclen < 2))
		return 0;
	*dst = H5allocate_memory(cap, false);
	if (*dst == NULL)
		return 0;
	n = lzf_compress(src, (unsigned)srclen, *dst, (unsigned)cap);
	*dstcap = cap;
	return n;
}

/* ---- LZO ---- */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Decodes exactly `want` bytes (at most `limit`) into o from a PyTables 0.5-0.7 chunk (stream,
 * adler32, length) and checks the adler32. Returns 0, or (o empty) -EIO, -EFBIG past the
 * limit, -ENOMEM. */
static int lzo_legacy(const uint8_t *src, size_t srclen, size_t want, size_t limit, struct out *o,
                      const struct mem *m)
{
	size_t body = srclen - LEGACY_LZO_TRAILER;
	lzo_uint n = want;

	if (want == 0)
		return -EIO;
	if (want > limit)
		return -EFBIG;
	if (out_grow(o, want, m) != 0)
		return -ENOMEM;
	if (lzo1x_decompress_safe(src, body, o->p, &n, NULL) != LZO_E_OK || n != want ||
	    lzo_adler32(lzo_adler32(0, NULL, 0), o->p, n) != le32(src + body)) {
		out_drop(o, m);
		return -EIO;
	}
	o->len = n;
	return 0;
}

/* Decodes an LZO chunk into o, growing the output up to the bound. Returns 0, or (o empty) -EIO
 * for a corrupt stream, -EFBIG for one that decodes to more, -ENOMEM. */
static int lzo_dec(const uint8_t *src, size_t srclen, struct out *o, const struct mem *m)
{
	size_t limit = bound();
	lzo_uint n = 0;
	int rc = LZO_E_ERROR;

	if (srclen == 0)
		return -EIO;
	for (size_t cap = first_guess(last_lzo, srclen, limit); cap; cap = next_guess(cap, limit)) {
		if (out_grow(o, cap, m) != 0) {
			out_drop(o, m);
			return -ENOMEM;
		}
		n = cap;
		rc = lzo1x_decompress_safe(src, srclen, o->p, &n, NULL);
		if (rc != LZO_E_OUTPUT_OVERRUN)
			break;
	}
	if (rc == LZO_E_INPUT_NOT_CONSUMED && srclen > LEGACY_LZO_TRAILER) {
		/* bytes after the end of the stream: the 8-byte trailer of PyTables 0.5-0.7? */
		out_drop(o, m);
		return lzo_legacy(src, srclen, le32(src + srclen - 4), limit, o, m);
	}
	if (rc != LZO_E_OK || n == 0) {
		out_drop(o, m);
		return rc == LZO_E_OUTPUT_OVERRUN ? -EFBIG : -EIO;
	}
	last_lzo = n;
	o->len = n;
	return 0;
}

/* Encodes for the LZO filter into *dst (from h5mem) with lzo1x_1, as PyTables does. An optional
 * filter declines output that does not shrink. Returns the encoded size or 0. */
static size_t lzo_enc(bool optional, const void *src, size_t srclen, void **dst, size_t *dstcap)
{
	size_t cap;
	lzo_uint n;
	void *work;
	int rc;

	if (srclen == 0 || srclen > SIZE_MAX / 2)
		return 0;
	cap = srclen + srclen / 16 + 64 + 3; /* lzo1x's worst case */
	work = malloc(LZO1X_1_MEM_COMPRESS);
	*dst = H5allocate_memory(cap, false);
	if (work == NULL || *dst == NULL) {
		free(work);
		return 0;
	}
	n = cap;
	rc = lzo1x_1_compress(src, srclen, *dst, &n, work);
	free(work);
	*dstcap = cap;
	if (rc != LZO_E_OK || (optional && n >= srclen))
		return 0;
	return n;
}

/* ---- bzip2 ---- */

/* Decodes a bzip2 chunk (one stream) into o, growing the output up to the bound. Returns 0, or
 * (o empty) -EIO for a bad or truncated stream, -EFBIG for one that decodes to more, -ENOMEM. */
static int bz2_dec(const uint8_t *src, size_t srclen, struct out *o, const struct mem *m)
{
	size_t limit = bound(), cap = first_guess(last_bz2, srclen, limit), done = 0;
	bz_stream bz;
	int rc = BZ_DATA_ERROR;

	if (srclen == 0 || srclen > UINT_MAX)
		return -EIO;
	memset(&bz, 0, sizeof(bz));
	if (BZ2_bzDecompressInit(&bz, 0, 0) != BZ_OK)
		return -ENOMEM; /* its only failure with valid arguments */
	bz.next_in = (char *)src;
	bz.avail_in = (unsigned)srclen;
	while (cap) {
		char *at;

		if (cap != o->cap && out_grow(o, cap, m) != 0) {
			rc = BZ_MEM_ERROR;
			break;
		}
		at = (char *)o->p + done;
		bz.next_out = at;
		bz.avail_out = (unsigned)(cap - done); /* cap <= H5M_FILTERS_MAX_CHUNK < UINT_MAX */
		rc = BZ2_bzDecompress(&bz);
		done += (size_t)(bz.next_out - at);
		if (rc != BZ_OK)
			break; /* BZ_STREAM_END or an error */
		if (done < cap && bz.avail_in == 0) {
			rc = BZ_UNEXPECTED_EOF; /* output room left, input used up: truncated */
			break;
		}
		if (done == cap)
			cap = next_guess(cap, limit); /* 0 past the bound: rc stays BZ_OK, a failure */
	}
	BZ2_bzDecompressEnd(&bz);
	if (rc != BZ_STREAM_END || done == 0) {
		out_drop(o, m);
		return rc == BZ_OK ? -EFBIG : rc == BZ_MEM_ERROR ? -ENOMEM : -EIO;
	}
	last_bz2 = done;
	o->len = done;
	return 0;
}

/* Encodes for the bzip2 filter into *dst (from h5mem) with the cd_values' block size, always
 * (as PyTables does). Returns the encoded size, or 0 for a block size outside 1..9. */
static size_t bz2_enc(size_t ncd, const unsigned *cd, const void *src, size_t srclen, void **dst,
                      size_t *dstcap)
{
	unsigned block = ncd > 0 ? cd[0] : BZIP2_DEFAULT_BLOCK;
	size_t cap;
	unsigned n;

	if (block < 1 || block > 9 || srclen == 0 || srclen > UINT_MAX / 2)
		return 0;
	cap = srclen + srclen / 100 + 600; /* bzip2's documented worst case */
	*dst = H5allocate_memory(cap, false);
	if (*dst == NULL)
		return 0;
	n = (unsigned)cap;
	if (BZ2_bzBuffToBuffCompress(*dst, &n, (char *)src, (unsigned)srclen, (int)block, 0, 0) != BZ_OK)
		return 0;
	*dstcap = cap;
	return n;
}

/* ---- decoding, HDF5 callbacks ---- */

static int decode(int id, size_t ncd, const unsigned *cd, const void *src, size_t srclen, struct out *o,
                  const struct mem *m)
{
	switch (id) {
	case H5M_LZF_FILTER_ID:
		return lzf_dec(ncd, cd, src, srclen, o, m);
	case H5M_LZO_FILTER_ID:
		return lzo_dec(src, srclen, o, m);
	case H5M_BZIP2_FILTER_ID:
		return bz2_dec(src, srclen, o, m);
	default:
		return -EIO;
	}
}

void *h5m_filters_decode(int id, size_t ncd, const unsigned *cd, const void *src, size_t srclen, size_t *outlen)
{
	struct out o = {NULL, 0, 0};

	*outlen = 0;
	if (src == NULL || decode(id, ncd, cd, src, srclen, &o, &cmem) != 0)
		return NULL;
	*outlen = o.len;
	return o.p;
}

/* Puts why a stored chunk of `nbytes` did not decode (rc from decode) on HDF5's error stack,
 * where the store finds it for its log line. */
static void push_decode_error(int id, int rc, size_t nbytes)
{
	const char *name = id == H5M_LZF_FILTER_ID ? "LZF" : id == H5M_LZO_FILTER_ID ? "LZO" : "bzip2";

	if (rc == -EFBIG)
		H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_PLINE, H5E_CALLBACK,
		         "%s chunk of %zu bytes decodes to more than %zu bytes (the chunk size and some room)",
		         name, nbytes, bound());
	else if (rc == -ENOMEM)
		H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_PLINE, H5E_CANTALLOC,
		         "out of memory decoding a %s chunk of %zu bytes", name, nbytes);
	else
		H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_PLINE, H5E_CALLBACK,
		         "%s chunk of %zu bytes is corrupt", name, nbytes);
}

/* The body of the three HDF5 filter callbacks. On read (H5Z_FLAG_REVERSE) decodes `nbytes` of
 * *buf; on write encodes them. Returns the new size and replaces *buf (the old one freed with
 * H5free_memory, the new one from H5allocate_memory) and *buf_size; returns 0 and leaves *buf
 * alone on corrupt input, a refused encoding (HDF5 then stores an optional filter's chunk raw
 * and fails a mandatory one's write) or no memory. A decoded chunk shorter than expected is
 * zero-padded to the expected size and returned at that size, because HDF5 1.10 checks no
 * size a filter returns and copies a whole chunk out of the last filter's buffer (the filters
 * HDF5 runs after ours, such as shuffle, keep the size they are given; N-bit and scale-offset,
 * whose output LZF legitimately decodes shorter, ignore trailing bytes). Runs under HDF5's
 * global lock. */
static size_t run(int id, unsigned flags, size_t ncd, const unsigned cd[], size_t nbytes, size_t *buf_size,
                  void **buf)
{
	bool optional = flags & H5Z_FLAG_OPTIONAL;
	struct out o = {NULL, 0, 0};

	if (flags & H5Z_FLAG_REVERSE) {
		int rc = decode(id, ncd, cd, *buf, nbytes, &o, &h5mem);

		if (rc != 0) {
			push_decode_error(id, rc, nbytes);
			return 0;
		}
		if (o.len < expect && o.cap >= expect) { /* cap >= expect whenever expect is set */
			memset((char *)o.p + o.len, 0, expect - o.len);
			o.len = expect;
		}
	} else if (id == H5M_LZF_FILTER_ID) {
		o.len = lzf_enc(optional, *buf, nbytes, &o.p, &o.cap);
	} else if (id == H5M_LZO_FILTER_ID) {
		o.len = lzo_enc(optional, *buf, nbytes, &o.p, &o.cap);
	} else {
		o.len = bz2_enc(ncd, cd, *buf, nbytes, &o.p, &o.cap);
	}
	if (o.p == NULL || o.len == 0) {
		if (o.p)
			H5free_memory(o.p);
		return 0;
	}
	H5free_memory(*buf);
	*buf = o.p;
	*buf_size = o.cap;
	return o.len;
}

static size_t lzf_filter(unsigned flags, size_t ncd, const unsigned cd[], size_t nbytes, size_t *buf_size,
                         void **buf)
{
	return run(H5M_LZF_FILTER_ID, flags, ncd, cd, nbytes, buf_size, buf);
}

static size_t lzo_filter(unsigned flags, size_t ncd, const unsigned cd[], size_t nbytes, size_t *buf_size,
                         void **buf)
{
	return run(H5M_LZO_FILTER_ID, flags, ncd, cd, nbytes, buf_size, buf);
}

static size_t bz2_filter(unsigned flags, size_t ncd, const unsigned cd[], size_t nbytes, size_t *buf_size,
                         void **buf)
{
	return run(H5M_BZIP2_FILTER_ID, flags, ncd, cd, nbytes, buf_size, buf);
}

/* HDF5 "set_local" callback of LZF, run when a dataset is created with it: as h5py's, fills
 * slots 0 and 1 (revision, LZF API version) when they are 0, writes the chunk bytes in slot 2
 * and keeps slots 3.. as given. Returns 0, or -1 (HDF5 then fails the H5Dcreate) when the dcpl
 * has no chunk layout, the type size is unknown, more than LZF_CD_MAX values were given or the
 * chunk is larger than H5M_FILTERS_MAX_CHUNK (it could not be read back). Owns nothing. */
static herr_t lzf_set_local(hid_t dcpl, hid_t type, hid_t space)
{
	unsigned cd[LZF_CD_MAX] = {0};
	size_t ncd = LZF_CD_MAX, bytes;
	unsigned flags = 0;
	hsize_t dims[MAX_CHUNK_RANK];
	int rank;

	(void)space;
	if (H5Pget_filter_by_id2(dcpl, H5M_LZF_FILTER_ID, &flags, &ncd, cd, 0, NULL, NULL) < 0 || ncd > LZF_CD_MAX)
		return -1;
	if (ncd < LZF_CD_MIN)
		ncd = LZF_CD_MIN;
	bytes = H5Tget_size(type);
	rank = H5Pget_chunk(dcpl, MAX_CHUNK_RANK, dims);
	if (bytes == 0 || rank <= 0)
		return -1;
	for (int i = 0; i < rank; i++)
		if (dims[i] > SIZE_MAX || __builtin_mul_overflow(bytes, (size_t)dims[i], &bytes))
			return -1;
	if (bytes > H5M_FILTERS_MAX_CHUNK)
		return -1;
	if (cd[LZF_CD_REVISION] == 0)
		cd[LZF_CD_REVISION] = LZF_FILTER_REVISION;
	if (cd[LZF_CD_API] == 0)
		cd[LZF_CD_API] = LZF_VERSION;
	cd[LZF_CD_CHUNKSIZE] = (unsigned)bytes;
	return H5Pmodify_filter(dcpl, H5M_LZF_FILTER_ID, flags, ncd, cd) < 0 ? -1 : 0;
}

static const H5Z_class2_t classes[] = {
	{H5Z_CLASS_T_VERS, H5M_LZF_FILTER_ID, 1, 1, "lzf", NULL, lzf_set_local, lzf_filter},
	{H5Z_CLASS_T_VERS, H5M_LZO_FILTER_ID, 1, 1, "lzo", NULL, NULL, lzo_filter},
	{H5Z_CLASS_T_VERS, H5M_BZIP2_FILTER_ID, 1, 1, "bzip2", NULL, NULL, bz2_filter},
};

int h5m_filters_register_classes(const H5Z_class2_t *classes, size_t n)
{
	unsigned state = 0;
	bool restore = false;
	int ret = -EIO;

	if (H5PLget_loading_state(&state) >= 0 && (state & H5PL_FILTER_PLUGIN)) {
		if (H5PLset_loading_state(state & ~(unsigned)H5PL_FILTER_PLUGIN) < 0)
			goto out;
		restore = true;
	}
	for (size_t i = 0; i < n; i++) {
		htri_t avail = H5Zfilter_avail(classes[i].id);

		if (avail < 0 || (avail == 0 && H5Zregister(&classes[i]) < 0))
			goto out;
	}
	ret = 0;
out:
	if (restore && H5PLset_loading_state(state) < 0)
		ret = -EIO;
	return ret;
}

/* Returns 0 when all three filters are available afterwards, or -EIO. Plugin loading is off
 * around the checks (h5m_filters_register_classes): Debian's LZF plugin fails to load, and a
 * bzip2 one would take our place. Owns nothing. */
int h5m_filters_register(void)
{
	if (lzo_init() != LZO_E_OK)
		return -EIO;
	return h5m_filters_register_classes(classes, sizeof(classes) / sizeof(classes[0]));
}
