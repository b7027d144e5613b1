/* blosc.c: the Blosc HDF5 filter (id 32001, PyTables layout) on c-blosc's _ctx calls; no plugin loading, no global blosc state. */
#include "h5mount/blosc.h"
#include "h5mount/filters.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <blosc.h>
#include <hdf5.h>

/* cd_values layout shared with PyTables and hdf5-blosc. Slots 0..3 are written by set_local,
 * slots 4..6 come from the user and may be absent (PyTables writes 6 values for blosclz). */
enum {
	CD_REVISION,  /* filter revision, always FILTER_REVISION */
	CD_FORMAT,    /* BLOSC_VERSION_FORMAT of the writer */
	CD_TYPESIZE,  /* element (or array base) size, 1 when over 255 */
	CD_CHUNKSIZE, /* uncompressed chunk bytes */
	CD_CLEVEL,    /* 0..9, default DEFAULT_CLEVEL */
	CD_SHUFFLE,   /* 0 none, 1 byte, 2 bit; default DEFAULT_SHUFFLE */
	CD_COMPCODE,  /* index into compnames[]; default 0 (blosclz) */
	CD_MAX = H5M_BLOSC_CD_MAX, /* the most parameters set_local accepts */
};

_Static_assert(H5M_BLOSC_OVERHEAD == BLOSC_MAX_OVERHEAD, "blosc.h's overhead is c-blosc's");

#define FILTER_REVISION 2
#define DEFAULT_CLEVEL 5
#define DEFAULT_SHUFFLE BLOSC_SHUFFLE
#define DEFAULT_COMPCODE 0
#define MAX_CHUNK_RANK 32 /* H5S_MAX_RANK */

/* Compressor codes as PyTables stores them in cd_values[CD_COMPCODE]. */
static const char *const compnames[] = {"blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"};
#define NCOMPNAMES (sizeof compnames / sizeof compnames[0])

/* Reads the uncompressed size of the frame `src` of exactly `srclen` bytes into *nbytes.
 * Returns 0, or -EIO when the header is not that of a blosc frame of this length. Never
 * allocates; touches no global state (cbuffer_sizes/validate only parse the header). */
static int frame_nbytes(const void *src, size_t srclen, size_t *nbytes)
{
	size_t hdr_nbytes = 0, hdr_cbytes = 0, blocksize = 0;

	if (src == NULL || srclen < BLOSC_MIN_HEADER_LENGTH)
		return -EIO;
	blosc_cbuffer_sizes(src, &hdr_nbytes, &hdr_cbytes, &blocksize);
	if (hdr_cbytes == 0)
		return -EIO; /* a format version this c-blosc does not know */
	/* validate wants the header's cbytes to be exactly srclen (a stored chunk is exactly
	 * one frame, so a mismatch is corruption) and nbytes within BLOSC_MAX_BUFFERSIZE */
	if (blosc_cbuffer_validate(src, srclen, nbytes) != 0 || *nbytes != hdr_nbytes)
		return -EIO;
	return 0;
}

/* Returns the number of decoded bytes written to `dst`, or -EIO when the frame is corrupt or
 * larger than `dstlen`. Owns nothing; never allocates. nthreads below 1 counts as 1. */
long h5m_blosc_decode(const void *src, size_t srclen, void *dst, size_t dstlen, int nthreads)
{
	size_t nbytes;
	int n;

	if (frame_nbytes(src, srclen, &nbytes) != 0 || nbytes > dstlen)
		return -EIO;
	if (nbytes == 0)
		return 0; /* a valid empty frame; blosc would report 0 as an error */
	if (dst == NULL)
		return -EIO;
	n = blosc_decompress_ctx(src, dst, dstlen, nthreads < 1 ? 1 : nthreads);
	if (n <= 0 || (size_t)n != nbytes)
		return -EIO;
	return n;
}

/* Returns the frame size written to `dst`, -EINVAL when a parameter is out of range
 * (clevel 0..9, shuffle 0..2, compcode 0..5 and compiled into c-blosc, typesize >= 1,
 * dstlen >= srclen + BLOSC_MAX_OVERHEAD, srclen <= BLOSC_MAX_BUFFERSIZE), or -EIO if blosc
 * fails anyway (it should not with that much room). A typesize over 255 is treated as 1, as
 * set_local does. Owns nothing; never allocates; nthreads below 1 counts as 1. Parameters
 * are checked here because c-blosc prints to stderr on bad ones. */
long h5m_blosc_encode(const void *src, size_t srclen, void *dst, size_t dstlen,
                      unsigned typesize, int clevel, int shuffle, int compcode, int nthreads)
{
	const char *compname;
	int n;

	if (clevel < 0 || clevel > 9 || shuffle < BLOSC_NOSHUFFLE || shuffle > BLOSC_BITSHUFFLE)
		return -EINVAL;
	if (compcode < 0 || (size_t)compcode >= NCOMPNAMES)
		return -EINVAL;
	compname = compnames[compcode];
	if (blosc_compname_to_compcode(compname) < 0)
		return -EINVAL; /* not compiled into this c-blosc */
	if (typesize == 0 || (src == NULL && srclen > 0) || dst == NULL)
		return -EINVAL;
	if (typesize > BLOSC_MAX_TYPESIZE)
		typesize = 1;
	if (srclen > BLOSC_MAX_BUFFERSIZE || dstlen < srclen + BLOSC_MAX_OVERHEAD)
		return -EINVAL;

	n = blosc_compress_ctx(clevel, shuffle, typesize, srclen, src, dst, dstlen, compname, 0,
	                       nthreads < 1 ? 1 : nthreads);
	if (n <= 0)
		return -EIO;
	return n;
}

/* HDF5 "set_local" callback, run when a dataset is created with this filter. Rewrites slots
 * 0..3 of the dcpl's cd_values (revision, format, typesize, chunk bytes) and keeps the
 * user's slots 4.. untouched; pads to 4 values when the user gave fewer. Returns 0, or -1
 * (HDF5 then fails the H5Dcreate) when the dcpl has no chunk layout, the type size is
 * unknown, the chunk exceeds 4 GiB or more than CD_MAX parameters were given. Owns only the
 * super type handle it opens. */
static herr_t set_local(hid_t dcpl, hid_t type, hid_t space)
{
	unsigned cd[CD_MAX] = {0};
	size_t ncd = CD_MAX;
	unsigned flags = 0;
	hsize_t dims[MAX_CHUNK_RANK];
	size_t typesize, basesize, chunkbytes;
	hid_t super = H5I_INVALID_HID;
	herr_t ret = -1;
	int rank;

	(void)space;
	if (H5Pget_filter_by_id2(dcpl, H5M_BLOSC_FILTER_ID, &flags, &ncd, cd, 0, NULL, NULL) < 0)
		goto out;
	if (ncd > CD_MAX)
		goto out; /* cd[] would be truncated; no known writer does this */
	if (ncd < CD_CLEVEL)
		ncd = CD_CLEVEL;

	typesize = H5Tget_size(type);
	if (typesize == 0)
		goto out;
	basesize = typesize;
	if (H5Tget_class(type) == H5T_ARRAY) {
		super = H5Tget_super(type);
		if (super < 0)
			goto out;
		basesize = H5Tget_size(super);
		if (basesize == 0)
			goto out;
	}
	if (basesize > BLOSC_MAX_TYPESIZE)
		basesize = 1;

	rank = H5Pget_chunk(dcpl, MAX_CHUNK_RANK, dims);
	if (rank <= 0)
		goto out;
	chunkbytes = typesize;
	for (int i = 0; i < rank; i++) {
		if (dims[i] > SIZE_MAX ||
		    __builtin_mul_overflow(chunkbytes, (size_t)dims[i], &chunkbytes))
			goto out;
	}
	if (chunkbytes > UINT_MAX)
		goto out;

	cd[CD_REVISION] = FILTER_REVISION;
	cd[CD_FORMAT] = BLOSC_VERSION_FORMAT;
	cd[CD_TYPESIZE] = (unsigned)basesize;
	cd[CD_CHUNKSIZE] = (unsigned)chunkbytes;
	if (H5Pmodify_filter(dcpl, H5M_BLOSC_FILTER_ID, flags, ncd, cd) < 0)
		goto out;
	ret = 0;
out:
	if (super >= 0)
		H5Tclose(super);
	return ret;
}

/* Reads a parameter slot, or `dflt` when the dataset has fewer parameters. */
static int cd_get(size_t ncd, const unsigned cd[], size_t slot, int dflt)
{
	if (slot >= ncd)
		return dflt;
	return cd[slot] > INT_MAX ? -1 : (int)cd[slot]; /* -1: rejected by h5m_blosc_encode */
}

long h5m_blosc_encode_cd(size_t ncd, const unsigned *cd, const void *src, size_t srclen, void *dst, size_t dstlen)
{
	unsigned typesize = ncd > CD_TYPESIZE ? cd[CD_TYPESIZE] : 1;

	return h5m_blosc_encode(src, srclen, dst, dstlen, typesize == 0 ? 1 : typesize,
	                        cd_get(ncd, cd, CD_CLEVEL, DEFAULT_CLEVEL), cd_get(ncd, cd, CD_SHUFFLE, DEFAULT_SHUFFLE),
	                        cd_get(ncd, cd, CD_COMPCODE, DEFAULT_COMPCODE), 1);
}

/* HDF5 filter callback. On read (H5Z_FLAG_REVERSE) decodes the frame in *buf (`nbytes`
 * valid bytes); on write encodes `nbytes` from *buf with the cd_values' level, shuffle and
 * compressor, using an output of nbytes + BLOSC_MAX_OVERHEAD so an incompressible chunk is
 * still stored as a (memcpy'd) frame rather than raw. Runs with one blosc thread: HDF5 calls
 * it under its global lock. Returns the new size and replaces *buf (freed with H5free_memory,
 * the new one from H5allocate_memory, *buf_size updated); returns 0 and leaves *buf alone on
 * a corrupt frame, unknown parameters or no memory. */
static size_t filter(unsigned flags, size_t ncd, const unsigned cd[], size_t nbytes,
                     size_t *buf_size, void **buf)
{
	void *out = NULL;
	size_t outlen;
	long n;

	if (flags & H5Z_FLAG_REVERSE) {
		if (frame_nbytes(*buf, nbytes, &outlen) != 0 || outlen == 0)
			return 0;
		out = H5allocate_memory(outlen, false);
		if (out == NULL)
			return 0;
		n = h5m_blosc_decode(*buf, nbytes, out, outlen, 1);
	} else {
		if (nbytes > BLOSC_MAX_BUFFERSIZE)
			return 0;
		outlen = nbytes + BLOSC_MAX_OVERHEAD;
		out = H5allocate_memory(outlen, false);
		if (out == NULL)
			return 0;
		n = h5m_blosc_encode_cd(ncd, cd, *buf, nbytes, out, outlen);
	}
	if (n <= 0) {
		H5free_memory(out);
		return 0;
	}
	H5free_memory(*buf);
	*buf = out;
	*buf_size = outlen;
	return (size_t)n;
}

static const H5Z_class2_t blosc_class = {
	H5Z_CLASS_T_VERS,    /* version of this struct */
	H5M_BLOSC_FILTER_ID, /* filter id */
	1,                   /* encoder present */
	1,                   /* decoder present */
	"blosc",             /* name, as PyTables and hdf5-blosc report it */
	NULL,                /* can_apply: every type and shape is accepted */
	set_local,
	filter,
};

/* Returns 0 when a 32001 filter is available afterwards, or -EIO. Filter plugin loading is
 * switched off around the H5Zfilter_avail check and restored after, because that call
 * would otherwise load a libH5Zblosc.so plugin (built on the global, locking blosc calls)
 * and register it in our place. Not thread-safe with other HDF5 users changing the plugin
 * loading state; call once at startup. Owns nothing. */
int h5m_blosc_register(void)
{
	return h5m_filters_register_classes(&blosc_class, 1);
}
