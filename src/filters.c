/* filters.c: the LZF (32000, h5py), LZO (305) and bzip2 (307, PyTables) HDF5 filters on Debian's libraries; no plugin loading, no state shared between threads. */
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
 *   set_local; files from h5py before set_local existed have fewer. h5py declines chunks that do
 *   not fit in their own size.
 * LZO (305): a chunk is one bare lzo1x stream from lzo1x_1_compress. cd_values {level, object
 *   version, object type} change nothing. PyTables 0.5 to 0.7 appended 8 bytes (adler32 of the
 *   decoded data, then its length, both little-endian), which decoding still accepts. PyTables
 *   declines chunks that do not shrink.
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

/* The size the last chunk this thread decoded had: the first guess for the next LZO or bzip2
 * chunk, whose streams do not say how long they decode (chunks of one dataset are alike). */
static _Thread_local size_t last_lzo, last_bz2;

/* Returns the first output size to try for a stream of srclen bytes with no stated length. */
static size_t first_guess(size_t last, size_t srclen)
{
	size_t n = srclen > H5M_FILTERS_MAX_CHUNK / 4 ? H5M_FILTERS_MAX_CHUNK : srclen * 4;

	if (n < FIRST_GUESS_MIN)
		n = FIRST_GUESS_MIN;
	if (last > n && last <= H5M_FILTERS_MAX_CHUNK)
		n = last;
	return n < H5M_FILTERS_MAX_CHUNK ? n : H5M_FILTERS_MAX_CHUNK;
}

/* Returns the next output size to try after `cur` was too small, or 0 past `limit`. */
static size_t next_guess(size_t cur, size_t limit)
{
	if (cur >= limit)
		return 0;
	return cur > limit / 2 ? limit : cur * 2;
}

/* ---- LZF ---- */

/* Decodes an LZF chunk. With a chunk size in cd_values the output must be exactly that size
 * (the size is checked against H5M_FILTERS_MAX_CHUNK before allocating); without one it may be
 * anything up to LZF_MAX_RATIO times the input. Returns the buffer (from m) and sets *outlen, or
 * returns NULL. */
static void *lzf_dec(size_t ncd, const unsigned *cd, const uint8_t *src, size_t srclen, size_t *outlen,
                     const struct mem *m)
{
	size_t want = ncd > LZF_CD_CHUNKSIZE ? cd[LZF_CD_CHUNKSIZE] : 0;
	size_t cap, limit, n = 0;
	void *out = NULL;

	if (srclen == 0 || srclen > UINT_MAX)
		return NULL;
	if (want > H5M_FILTERS_MAX_CHUNK)
		return NULL;
	if (want) {
		cap = limit = want;
	} else {
		limit = srclen > H5M_FILTERS_MAX_CHUNK / LZF_MAX_RATIO ? H5M_FILTERS_MAX_CHUNK
		                                                        : srclen * LZF_MAX_RATIO;
		cap = first_guess(0, srclen) < limit ? first_guess(0, srclen) : limit;
	}
	for (; cap; cap = next_guess(cap, limit)) {
		void *p = out ? m->resize(out, cap) : m->alloc(cap);

		if (p == NULL)
			break;
		out = p;
		errno = 0;
		n = lzf_decompress(src, (unsigned)srclen, out, (unsigned)cap);
		if (n > 0 || errno != E2BIG || want)
			break;
	}
	if (n == 0 || (want && n != want)) {
		if (out)
			m->release(out);
		return NULL;
	}
	*outlen = n;
	return out;
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

/* Decodes exactly `want` bytes from a PyTables 0.5-0.7 chunk (stream, adler32, length) and
 * checks the adler32. Returns the buffer or NULL. */
static void *lzo_legacy(const uint8_t *src, size_t srclen, size_t want, const struct mem *m)
{
	size_t body = srclen - LEGACY_LZO_TRAILER;
	lzo_uint n = want;
	void *out;

	if (want == 0 || want > H5M_FILTERS_MAX_CHUNK)
		return NULL;
	out = m->alloc(want);
	if (out == NULL)
		return NULL;
	if (lzo1x_decompress_safe(src, body, out, &n, NULL) != LZO_E_OK || n != want ||
	    lzo_adler32(lzo_adler32(0, NULL, 0), out, n) != le32(src + body)) {
		m->release(out);
		return NULL;
	}
	return out;
}

/* Decodes an LZO chunk, growing the output up to H5M_FILTERS_MAX_CHUNK. Returns the buffer
 * (from m) and sets *outlen, or returns NULL. */
static void *lzo_dec(const uint8_t *src, size_t srclen, size_t *outlen, const struct mem *m)
{
	void *out = NULL;
	lzo_uint n = 0;
	int rc = LZO_E_ERROR;

	if (srclen == 0)
		return NULL;
	for (size_t cap = first_guess(last_lzo, srclen); cap; cap = next_guess(cap, H5M_FILTERS_MAX_CHUNK)) {
		void *p = out ? m->resize(out, cap) : m->alloc(cap);

		if (p == NULL)
			break;
		out = p;
		n = cap;
		rc = lzo1x_decompress_safe(src, srclen, out, &n, NULL);
		if (rc != LZO_E_OUTPUT_OVERRUN)
			break;
	}
	if (rc == LZO_E_INPUT_NOT_CONSUMED && srclen > LEGACY_LZO_TRAILER) {
		/* Bytes after the end of the stream: the 8-byte trailer of PyTables 0.5-0.7? */
		size_t want = le32(src + srclen - 4);

		if (out)
			m->release(out);
		out = lzo_legacy(src, srclen, want, m);
		if (out == NULL)
			return NULL;
		n = want;
		rc = LZO_E_OK;
	}
	if (rc != LZO_E_OK || n == 0) {
		if (out)
			m->release(out);
		return NULL;
	}
	last_lzo = n;
	*outlen = n;
	return out;
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

/* Decodes a bzip2 chunk (one stream), growing the output up to H5M_FILTERS_MAX_CHUNK. Returns
 * the buffer (from m) and sets *outlen, or returns NULL: on a bad or truncated stream, or one
 * that decodes to more. */
static void *bz2_dec(const uint8_t *src, size_t srclen, size_t *outlen, const struct mem *m)
{
	bz_stream bz;
	size_t cap = first_guess(last_bz2, srclen), done = 0;
	char *out = NULL;
	int rc = BZ_DATA_ERROR;

	if (srclen == 0 || srclen > UINT_MAX)
		return NULL;
	memset(&bz, 0, sizeof(bz));
	if (BZ2_bzDecompressInit(&bz, 0, 0) != BZ_OK)
		return NULL;
	out = m->alloc(cap);
	if (out == NULL)
		goto out;
	bz.next_in = (char *)src;
	bz.avail_in = (unsigned)srclen;
	for (;;) {
		size_t room = cap - done;

		bz.next_out = out + done;
		bz.avail_out = room > UINT_MAX ? UINT_MAX : (unsigned)room;
		rc = BZ2_bzDecompress(&bz);
		done += (size_t)(bz.next_out - (out + done));
		if (rc != BZ_OK)
			break; /* BZ_STREAM_END or an error */
		if (done < cap) {
			if (bz.avail_in == 0) {
				rc = BZ_UNEXPECTED_EOF; /* output room left, input used up: truncated */
				break;
			}
			continue;
		}
		size_t next = next_guess(cap, H5M_FILTERS_MAX_CHUNK);
		char *p = next ? m->resize(out, next) : NULL;

		if (p == NULL) {
			rc = BZ_MEM_ERROR;
			break;
		}
		out = p;
		cap = next;
	}
out:
	BZ2_bzDecompressEnd(&bz);
	if (rc != BZ_STREAM_END || done == 0) {
		if (out)
			m->release(out);
		return NULL;
	}
	last_bz2 = done;
	*outlen = done;
	return out;
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

static void *decode(int id, size_t ncd, const unsigned *cd, const void *src, size_t srclen, size_t *outlen,
                    const struct mem *m)
{
	switch (id) {
	case H5M_LZF_FILTER_ID:
		return lzf_dec(ncd, cd, src, srclen, outlen, m);
	case H5M_LZO_FILTER_ID:
		return lzo_dec(src, srclen, outlen, m);
	case H5M_BZIP2_FILTER_ID:
		return bz2_dec(src, srclen, outlen, m);
	default:
		return NULL;
	}
}

void *h5m_filters_decode(int id, size_t ncd, const unsigned *cd, const void *src, size_t srclen, size_t *outlen)
{
	void *out = NULL;

	*outlen = 0;
	if (src != NULL)
		out = decode(id, ncd, cd, src, srclen, outlen, &cmem);
	if (out == NULL)
		*outlen = 0;
	return out;
}

/* The body of the three HDF5 filter callbacks. On read (H5Z_FLAG_REVERSE) decodes `nbytes` of
 * *buf; on write encodes them. Returns the new size and replaces *buf (the old one freed with
 * H5free_memory, the new one from H5allocate_memory) and *buf_size; returns 0 and leaves *buf
 * alone on corrupt input, a refused encoding (HDF5 then stores an optional filter's chunk raw
 * and fails a mandatory one's write) or no memory. Runs under HDF5's global lock. */
static size_t run(int id, unsigned flags, size_t ncd, const unsigned cd[], size_t nbytes, size_t *buf_size,
                  void **buf)
{
	bool optional = flags & H5Z_FLAG_OPTIONAL;
	void *out = NULL;
	size_t cap = 0, n = 0;

	if (flags & H5Z_FLAG_REVERSE) {
		out = decode(id, ncd, cd, *buf, nbytes, &n, &h5mem);
		cap = n;
	} else if (id == H5M_LZF_FILTER_ID) {
		n = lzf_enc(optional, *buf, nbytes, &out, &cap);
	} else if (id == H5M_LZO_FILTER_ID) {
		n = lzo_enc(optional, *buf, nbytes, &out, &cap);
	} else {
		n = bz2_enc(ncd, cd, *buf, nbytes, &out, &cap);
	}
	if (out == NULL || n == 0) {
		if (out)
			H5free_memory(out);
		return 0;
	}
	H5free_memory(*buf);
	*buf = out;
	*buf_size = cap;
	return n;
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

/* Returns 0 when all three filters are available afterwards, or -EIO. Filter plugin loading
 * is off around the H5Zfilter_avail checks and restored after, because those calls would load
 * a plugin of that id (Debian's LZF one fails to load; a bzip2 one would take our place).
 * Owns nothing. */
int h5m_filters_register(void)
{
	unsigned state = 0;
	bool restore = false;
	int ret = -EIO;

	if (lzo_init() != LZO_E_OK)
		return -EIO;
	if (H5PLget_loading_state(&state) >= 0 && (state & H5PL_FILTER_PLUGIN)) {
		if (H5PLset_loading_state(state & ~(unsigned)H5PL_FILTER_PLUGIN) < 0)
			goto out;
		restore = true;
	}
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
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
