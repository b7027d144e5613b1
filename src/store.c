/* store.c: the HDF5 layer's object side: lazy node table of groups, datasets and links,
 * dataset descriptions, attributes, open/close and commit, the namespace operations (mkdir,
 * rmdir, unlink, symlink, rename) under the namespace lock; the HDF5 lock. Raw data I/O lives in
 * chunkio.c, variable-length reads in vlen.c. Every HDF5 call happens under h5m_hdf5_lock. It
 * never touches FUSE. */
#include "h5mount/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5mount/attrtext.h"
#include "h5mount/blosc.h"
#include "h5mount/create.h"
#include "h5mount/filters.h"
#include "h5mount/jvfd.h"
#include "h5mount/log.h"
#include "h5mount/remote.h"

#include "store_priv.h"

#define PAGE_NODES 4096u
#define MAX_PAGES 65536u
#define NAME_MAX_BYTES 255
/* Chunks up to this size may be decoded outside the HDF5 lock. */
#define DIRECT_MAX_CHUNK ((size_t)64 << 20)

/* Bounds on sizes read from the file, checked before anything of that size is allocated (a
 * damaged file must not make the daemon allocate gigabytes). Beyond them: EIO or "not
 * shown", and a log line. */
#define MAX_ELEM_BYTES ((size_t)64 << 20)      /* one element (HDF5 allows 4 GiB) */
#define MAX_CHUNK_BYTES ((size_t)1 << 30)      /* one chunk (HDF5 allows 4 GiB) */
#define MAX_ATTR_BYTES ((size_t)16 << 20)      /* an attribute's stored values; an xattr is 64 KiB */
/* A new attribute whose text is not UTF-8 is a fixed-length string stored in the object header,
 * where HDF5 1.10's default format keeps a message under 64 KiB. */
#define MAX_FIXED_TEXT ((size_t)60 << 10)
#define MAX_LINK_BYTES ((size_t)64 << 10)      /* a soft or external link's value */
/* A vlen dataset's rows: each written one is a 16-byte descriptor in the file, so more rows
 * than the file has bytes (or than this floor, for mostly unwritten chunked datasets) is a
 * damaged extent that would make the offsets table and its computation huge. */
#define VLEN_ROWS_FLOOR ((uint64_t)1 << 20)

/* The HDF5 lock (store_priv.h): the HDF5 library is thread-safe but has one global lock; ours
 * serializes sequences of calls (open + describe, select + read) and guards the node table's
 * growth and dataset state. Taken only through h5m_hdf5_lock(). */
static pthread_mutex_t h5m_hdf5_mutex = PTHREAD_MUTEX_INITIALIZER;

/* HDF5's automatic error printing is per thread in thread-safe builds: silence each thread once. */
static _Thread_local bool thread_quiet;

void h5m_hdf5_lock(void)
{
	pthread_mutex_lock(&h5m_hdf5_mutex);
	if (!thread_quiet) {
		H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
		thread_quiet = true;
	}
}

void h5m_hdf5_unlock(void)
{
	pthread_mutex_unlock(&h5m_hdf5_mutex);
}

struct addr_slot {
	haddr_t addr;
	int64_t node;       /* node index, or -1: an object that is not shown */
	bool used;
};

/* A group reached through several hard links and the path a breadth-first walk reaches it by
 * first: its one directory in the mount. */
struct first_path {
	haddr_t addr;
	char *path;
};

struct h5m_store {
	char *path;
	bool rw;                        /* opened for writing (through the journal driver) */
	hid_t fid;                      /* HDF5 lock */
	int fd;                         /* plain read-only descriptor for contiguous data; -1 for
	                                 * a remote file */
	struct h5m_remote *remote;      /* a remote file (borrowed: the opener frees it after
	                                 * h5m_store_close), read through ROS3 and its fetcher; or NULL */
	bool host_elinks;               /* external links show host paths (immutable) */
	bool journal_shown;             /* read-only through the journal driver, showing a crash's
	                                 * journal from memory: the file's bytes are not the data's,
	                                 * so nothing is read through fd */
	uint64_t fsize;                 /* file size at open */
	size_t chunk_cache_left;        /* bytes HDF5 chunk caches may still take (HDF5 lock) */
	bool chunk_cache_spent_logged;  /* HDF5 lock */
	uint64_t base;                  /* file offset of HDF5 address 0: the user block's size.
	                                 * Chunk addresses are relative to it; set at open */
	size_t block_target;
	struct h5m_node **pages[MAX_PAGES]; /* pages of node pointers; grown under the HDF5 lock */
	uint64_t nnodes;                /* written under the HDF5 lock, read with acquire */
	struct addr_slot *amap;         /* object address -> node (HDF5 lock) */
	size_t amap_cap, amap_used;
	/* First paths of the groups that have more than one hard link: sorted by address, made by
	 * one breadth-first walk when listing first meets such a group (HDF5 lock). */
	bool walked;
	struct first_path *firsts;
	size_t nfirsts;
	/* The namespace lock (store.h, lock.h): groups' entries, datasets' `shown`, `gone`, group
	 * paths and parents. Writer-preferring: no thread read-locks it twice. */
	pthread_rwlock_t ns;
	bool ns_ready;                  /* ns initialized (store_free destroys it) */
	/* Dataset path texts replaced by renames: readers of ds->path take no lock, so the old
	 * texts live until close (namespace write lock). */
	char **retired;
	size_t nretired, retired_cap;
	/* The file's times (at open, or as h5m_store_set_times set them), kept while no commit
	 * changes the file after them, and put back after the open and the close, whose commits
	 * of HDF5's open-for-write flags in the superblock would move them (HDF5 lock) */
	bool times_kept;
	struct timespec kept[2];
	struct h5m_layout layout;       /* of datasets created through the mount (set before serving) */
};

/* ---- errors ---- */

struct errcap {
	char *buf;
	size_t cap;
};

static herr_t err_walk(unsigned n, const H5E_error2_t *e, void *data)
{
	struct errcap *c = data;

	(void)n;
	/* Downward walk: the last one is the innermost, most specific description. */
	if (e->desc && *e->desc)
		snprintf(c->buf, c->cap, "%s", e->desc);
	return 0;
}

void h5m_hdf5_error(char *buf, size_t cap)
{
	struct errcap c = { buf, cap };

	snprintf(buf, cap, "unknown HDF5 error");
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, err_walk, &c);
	H5Eclear2(H5E_DEFAULT);
}

int h5m_store_global_init(void)
{
	unsigned maj, min, rel;

	/* No HDF5 cleanup at exit: it would close (and flush) files left open on purpose, see
	 * h5m_store_close. Must come before any other HDF5 call. */
	H5dont_atexit();
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	thread_quiet = true;
	if (H5open() < 0 || H5get_libversion(&maj, &min, &rel) < 0)
		return -EIO;
	return h5m_blosc_register() ? -EIO : h5m_filters_register();
}

/* Logs a read failure of ds once: see store_priv.h. */
void h5m_store_read_failed(struct h5m_dataset *ds, const char *why)
{
	char stack[256];
	hid_t dcpl;
	int nf;

	h5m_hdf5_error(stack, sizeof(stack)); /* before any other call clears it; clears it */
	if (!why)
		why = stack;
	if (ds->read_error_logged)
		return;
	ds->read_error_logged = true;
	dcpl = H5Dget_create_plist(ds->did);
	nf = dcpl >= 0 ? H5Pget_nfilters(dcpl) : 0;
	for (int i = 0; i < nf; i++) {
		unsigned flags, cd[32];
		size_t ncd = 32;
		char name[128] = "";
		H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof(name), name, NULL);

		if (id >= 0 && H5Zfilter_avail(id) <= 0) {
			h5m_log(H5M_LOG_ERR, "%s: reads fail with EIO: filter %d (%s) is not available", ds->path, (int)id,
			        name[0] ? name : "unnamed");
			H5Pclose(dcpl);
			H5Eclear2(H5E_DEFAULT);
			return;
		}
	}
	if (dcpl >= 0)
		H5Pclose(dcpl);
	H5Eclear2(H5E_DEFAULT);
	h5m_log(H5M_LOG_ERR, "%s: read failed (EIO): %s", ds->path, why);
}

/* ---- node table ---- */

struct h5m_node *h5m_store_node(struct h5m_store *s, uint64_t idx)
{
	uint64_t n = __atomic_load_n(&s->nnodes, __ATOMIC_ACQUIRE);

	if (idx >= n)
		return NULL;
	return s->pages[idx / PAGE_NODES][idx % PAGE_NODES];
}

/* Appends a node (takes ownership of n). Returns its index or -ENOMEM/-ENOSPC. HDF5 lock. */
static int64_t add_node(struct h5m_store *s, struct h5m_node *n)
{
	uint64_t idx = s->nnodes;
	uint64_t page = idx / PAGE_NODES;

	if (page >= MAX_PAGES)
		return -ENOSPC;
	if (!s->pages[page]) {
		s->pages[page] = calloc(PAGE_NODES, sizeof(struct h5m_node *));
		if (!s->pages[page])
			return -ENOMEM;
	}
	n->idx = (uint32_t)idx;
	s->pages[page][idx % PAGE_NODES] = n;
	__atomic_store_n(&s->nnodes, idx + 1, __ATOMIC_RELEASE);
	return (int64_t)idx;
}

static size_t addr_hash(haddr_t a, size_t cap)
{
	return (size_t)((a * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

/* Finds the slot of addr (existing or empty). HDF5 lock. */
static struct addr_slot *amap_slot(struct h5m_store *s, haddr_t addr)
{
	size_t i = addr_hash(addr, s->amap_cap);

	while (s->amap[i].used && s->amap[i].addr != addr)
		i = (i + 1) & (s->amap_cap - 1);
	return &s->amap[i];
}

static int amap_put(struct h5m_store *s, haddr_t addr, int64_t node)
{
	struct addr_slot *sl;

	if ((s->amap_used + 1) * 2 > s->amap_cap) {
		size_t cap = s->amap_cap ? s->amap_cap * 2 : 1024;
		struct addr_slot *old = s->amap, *nm = calloc(cap, sizeof(*nm));
		size_t oldcap = s->amap_cap;

		if (!nm)
			return -ENOMEM;
		s->amap = nm;
		s->amap_cap = cap;
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].used)
				*amap_slot(s, old[i].addr) = old[i];
		free(old);
	}
	sl = amap_slot(s, addr);
	if (!sl->used)
		s->amap_used++;
	*sl = (struct addr_slot){ .addr = addr, .node = node, .used = true };
	return 0;
}

/* ---- datasets ---- */

static void dataset_free(struct h5m_dataset *ds)
{
	if (!ds)
		return;
	if (ds->did >= 0)
		H5Dclose(ds->did);
	if (ds->ftype >= 0)
		H5Tclose(ds->ftype);
	h5m_dtype_destroy(&ds->dt);
	free(ds->fill);
	free(ds->offsets);
	free(ds->path);
	free(ds);
}

/* Reads the dataset's fill value in its served type into ds->fill (zeros when undefined).
 * Returns 0 or -EIO. HDF5 lock. */
static int fill_value(hid_t dcpl, struct h5m_dataset *ds)
{
	H5D_fill_value_t st;

	if (H5Pfill_value_defined(dcpl, &st) < 0) {
		H5Eclear2(H5E_DEFAULT);
		return -EIO;
	}
	if (st == H5D_FILL_VALUE_UNDEFINED)
		return 0;
	if (H5Pget_fill_value(dcpl, ds->dt.mem_type, ds->fill) < 0) {
		H5Eclear2(H5E_DEFAULT);
		memset(ds->fill, 0, ds->dt.elem_size);
		return -EIO;
	}
	return 0;
}

/* Whether HDF5 leaves a read's buffer untouched where storage was never written: fill time
 * "never", or "if set" without a fill value (1.10.8's H5D__chunk_read skips missing chunks
 * then). When unknown, yes: a needless fill costs less than a leak. HDF5 lock. */
static bool fill_skipped(hid_t dcpl)
{
	H5D_fill_time_t ft;
	H5D_fill_value_t st;
	bool skipped = H5Pget_fill_time(dcpl, &ft) < 0 || H5Pfill_value_defined(dcpl, &st) < 0 ||
	               ft == H5D_FILL_TIME_NEVER || (ft == H5D_FILL_TIME_IFSET && st == H5D_FILL_VALUE_UNDEFINED);

	H5Eclear2(H5E_DEFAULT);
	return skipped;
}

/* Reopens a dataset with an HDF5 chunk cache sized for how blocks cut it: none when blocks are
 * whole chunks along axis 0 (we cache decoded blocks ourselves), else enough for one stripe (at
 * most 64 MiB), taken from what the store's budget has left. HDF5 lock. */
static hid_t reopen_tuned(struct h5m_store *s, hid_t loc, const char *name, const struct h5m_dataset *ds)
{
	hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS), did;
	size_t bytes = 0, wanted;

	if (ds->chunked && ds->dt.kind == H5M_DT_FIXED && (ds->blocks.level > 0 || ds->blocks.len < ds->chunk[0])) {
		uint64_t stripe = ds->dt.elem_size;

		for (unsigned i = 0; i < ds->rank; i++) {
			uint64_t d = i < ds->blocks.level ? ds->chunk[i] : (ds->dims[i] ? ds->dims[i] : 1);

			if (__builtin_mul_overflow(stripe, d, &stripe))
				stripe = UINT64_MAX;
		}
		wanted = stripe > (64u << 20) ? (64u << 20) : (size_t)stripe;
		bytes = wanted < s->chunk_cache_left ? wanted : s->chunk_cache_left;
		if (bytes < wanted && !s->chunk_cache_spent_logged) {
			s->chunk_cache_spent_logged = true;
			h5m_log(H5M_LOG_INFO, "%s: HDF5 chunk caches have used up their budget (an eighth of cache_size): "
			        "this dataset gets %zu of the %zu bytes it wants, and its block reads decode chunks again",
			        ds->path, bytes, wanted);
		}
	}
	H5Pset_chunk_cache(dapl, 12421, bytes, 1.0);
	did = H5Dopen2(loc, name, dapl);
	H5Pclose(dapl);
	if (did >= 0)
		s->chunk_cache_left -= bytes;
	return did;
}

/* Opens and describes dataset `name` in `loc`. Returns the dataset or NULL; on -ENOTSUP the
 * reason is in why. HDF5 lock. */
static struct h5m_dataset *dataset_open(struct h5m_store *s, hid_t loc, const char *name, const char *path,
                                        char *why, size_t cap)
{
	struct h5m_dataset *ds = calloc(1, sizeof(*ds));
	hid_t did = H5I_INVALID_HID, space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
	hsize_t dims[H5S_MAX_RANK], maxdims[H5S_MAX_RANK], chunk[H5S_MAX_RANK];
	unsigned npy_rank;
	int rank, version, rc;
	bool ok = false;

	if (!ds) {
		snprintf(why, cap, "out of memory");
		return NULL;
	}
	ds->did = ds->ftype = H5I_INVALID_HID;
	ds->contig_offset = -1;
	ds->remote = s->remote;
	ds->path = strdup(path);
	did = H5Dopen2(loc, name, H5P_DEFAULT);
	if (did < 0 || !ds->path) {
		h5m_hdf5_error(why, cap);
		goto out;
	}
	ds->ftype = H5Dget_type(did);
	space = H5Dget_space(did);
	dcpl = H5Dget_create_plist(did);
	if (ds->ftype < 0 || space < 0 || dcpl < 0) {
		h5m_hdf5_error(why, cap);
		goto out;
	}
	if (H5Sget_simple_extent_type(space) == H5S_NULL) {
		/* No elements: one axis of none, which no read or write ever selects. */
		ds->null_space = true;
		rank = 1;
		dims[0] = maxdims[0] = 0;
	} else {
		rank = H5Sget_simple_extent_dims(space, dims, maxdims);
	}
	if (rank < 0 || rank > H5M_NPY_MAXDIMS) {
		snprintf(why, cap, "rank %d is more than numpy's %d", rank, H5M_NPY_MAXDIMS);
		goto out;
	}
	ds->rank = (unsigned)rank;
	for (int i = 0; i < rank; i++) {
		ds->dims[i] = dims[i];
		ds->maxdims[i] = maxdims[i] == H5S_UNLIMITED ? UINT64_MAX : maxdims[i];
	}
	ds->h5rows = rank ? dims[0] : 1;
	rc = h5m_dtype_describe(ds->ftype, &ds->dt, why, cap);
	if (rc)
		goto out;
	if (ds->dt.elem_size > MAX_ELEM_BYTES) {
		snprintf(why, cap, "elements of %zu bytes (more than %zu MiB)", ds->dt.elem_size, MAX_ELEM_BYTES >> 20);
		goto out;
	}
	if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
		ds->chunked = true;
		if (H5Pget_chunk(dcpl, rank, chunk) != rank) {
			h5m_hdf5_error(why, cap);
			goto out;
		}
		for (int i = 0; i < rank; i++)
			ds->chunk[i] = chunk[i];
		ds->chunk_bytes = H5Tget_size(ds->ftype);
		for (int i = 0; i < rank; i++)
			if (__builtin_mul_overflow(ds->chunk_bytes, (size_t)chunk[i], &ds->chunk_bytes))
				ds->chunk_bytes = SIZE_MAX;
		/* HDF5 allocates whole chunks when it reads one: refuse absurd ones up front. */
		if (ds->chunk_bytes > MAX_CHUNK_BYTES) {
			snprintf(why, cap, "chunks of more than %zu MiB", MAX_CHUNK_BYTES >> 20);
			goto out;
		}
		if (ds->dt.converted) {
			/* The stored bytes are not the served values: only HDF5's conversion reads them. */
		} else if (H5Pget_nfilters(dcpl) == 1 && ds->chunk_bytes <= DIRECT_MAX_CHUNK) {
			unsigned flags;
			size_t ncd = H5M_BLOSC_CD_MAX;

			ds->blosc = H5Pget_filter2(dcpl, 0, &flags, &ncd, ds->blosc_cd, 0, NULL, NULL) == H5M_BLOSC_FILTER_ID;
			ds->blosc_ncd = ncd < H5M_BLOSC_CD_MAX ? ncd : H5M_BLOSC_CD_MAX;
			ds->direct = ds->blosc;
			H5Eclear2(H5E_DEFAULT);
		} else if (H5Pget_nfilters(dcpl) == 0 && ds->chunk_bytes <= DIRECT_MAX_CHUNK) {
			ds->direct = true;
		}
	} else if (H5Pget_layout(dcpl) == H5D_CONTIGUOUS && H5Pget_external_count(dcpl) == 0 &&
	           H5Pget_nfilters(dcpl) == 0 && !ds->dt.converted) {
		H5D_space_status_t alloc = H5D_SPACE_STATUS_ERROR;
		haddr_t off;

		/* H5Dget_offset gives the file offset, user block included (unlike chunk addresses).
		 * For storage never allocated it returns HADDR_UNDEF plus that base: with a user block
		 * a small number, not HADDR_UNDEF. So trust it only for allocated storage. */
		if (H5Dget_space_status(did, &alloc) >= 0 && alloc == H5D_SPACE_STATUS_ALLOCATED) {
			off = H5Dget_offset(did);
			if (off != HADDR_UNDEF && off >= s->base && off < (haddr_t)INT64_MAX && !s->journal_shown)
				ds->contig_offset = (int64_t)off;
		}
		H5Eclear2(H5E_DEFAULT);
	}
	if (ds->dt.kind == H5M_DT_FIXED) {
		npy_rank = ds->rank + ds->dt.extra_rank;
		if (npy_rank > H5M_NPY_MAXDIMS) {
			snprintf(why, cap, "rank with array dims is more than numpy's %d", H5M_NPY_MAXDIMS);
			goto out;
		}
		rc = h5m_blocks_init(&ds->blocks, ds->rank, ds->dims, ds->chunked ? ds->chunk : NULL, ds->dt.elem_size,
		                     s->block_target);
		if (rc) {
			snprintf(why, cap, "size in bytes does not fit in 64 bits");
			goto out;
		}
		ds->fill = calloc(1, ds->dt.elem_size);
		if (!ds->fill) {
			snprintf(why, cap, "out of memory");
			goto out;
		}
		if (fill_value(dcpl, ds) < 0)
			h5m_log(H5M_LOG_WARN, "%s: unreadable fill value; zeros are used", path);
		ds->fill_skipped = fill_skipped(dcpl);
		ds->zero_fill = true;
		for (size_t i = 0; i < ds->dt.elem_size; i++)
			ds->zero_fill &= ds->fill[i] == 0;
		/* Writes would go through HDF5's conversion too, which clips values the stored bits
		 * cannot hold, while the cache kept what was written: keep such views read-only. */
		ds->writable = s->rw && !ds->dt.converted && !ds->null_space;
		if (s->rw && ds->dt.converted)
			h5m_log(H5M_LOG_INFO, "%s: read-only: its integers are stored in other widths or bits than "
			        "they are served in (%s)", path, ds->dt.descr);
		/* Read-only, unfiltered chunks of whole rows: every byte range is a file range. */
		ds->raw_rows = !s->rw && !s->journal_shown && ds->direct && !ds->blosc && ds->rank > 0;
		/* Remote: through the blocks, whose reads fetch many chunks in one batch, rather than
		 * one request per chunk a read(2) touches. */
		ds->raw_rows &= !s->remote;
		for (unsigned i = 1; i < ds->rank; i++)
			ds->raw_rows &= ds->chunk[i] == ds->dims[i];
	} else {
		/* Rows are the elements in C order: all of them, whatever the rank. */
		npy_rank = 1;
		ds->nrows = 1;
		for (unsigned i = 0; i < ds->rank; i++)
			if (__builtin_mul_overflow(ds->nrows, ds->dims[i], &ds->nrows)) {
				snprintf(why, cap, "more than 2^64 variable-length elements");
				goto out;
			}
		if (ds->nrows > VLEN_ROWS_FLOOR && ds->nrows > s->fsize) {
			snprintf(why, cap, "%llu variable-length rows in a file of %llu bytes", (unsigned long long)ds->nrows,
			         (unsigned long long)s->fsize);
			goto out;
		}
	}
	if (ds->null_space)
		h5m_log(H5M_LOG_INFO, "%s: null dataspace: shown as an empty file and an empty .shape, without "
		        ".npy (numpy has no array without a shape)", path);
	if (h5m_npy_header_size(ds->dt.descr, npy_rank, &ds->npy_header_len, &version) < 0) {
		snprintf(why, cap, "cannot make a .npy header");
		goto out;
	}
	if (ds->npy_header_len > H5M_NPY_LOAD_LIMIT)
		h5m_log(H5M_LOG_WARN, "%s: .npy header is %zu bytes; numpy.load needs max_header_size", path,
		        ds->npy_header_len);
	H5Dclose(did);
	did = reopen_tuned(s, loc, name, ds);
	if (did < 0) {
		h5m_hdf5_error(why, cap);
		goto out;
	}
	ds->did = did;
	did = H5I_INVALID_HID;
	ok = true;
out:
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (space >= 0)
		H5Sclose(space);
	if (did >= 0)
		H5Dclose(did);
	if (!ok) {
		dataset_free(ds);
		return NULL;
	}
	return ds;
}

/* ---- links ---- */

/* Every symlink text made here is "../" k times (k at most the depth of the link's group below
 * the root, on every path that reaches the group) followed by components none of which is
 * empty, "." or "..", or a single component (a dangling link). Resolving such texts, one after
 * another, can climb at most to the mount's root and then only descends through its entries:
 * no file from elsewhere can point a symlink outside the mount. External links with
 * H5M_STORE_HOST_ELINKS are the one exception the user asks for. */

#define DANGLING_PREFIX "h5mount-dangling:"
#define DEPTH_UNKNOWN 2 /* depth_is_fixed not asked yet */

/* A dangling symlink text: "h5mount-dangling:KIND:WHAT" with '%' and '/' of WHAT percent-
 * encoded, so it is a single path component naming no host path, cut to NAME_MAX_BYTES.
 * Returns malloc'd text or NULL (out of memory). */
static char *dangling_text(const char *kind, const char *what)
{
	char *out = malloc(NAME_MAX_BYTES + 1);
	size_t n;

	if (!out)
		return NULL;
	n = (size_t)snprintf(out, NAME_MAX_BYTES + 1, "%s%s:", DANGLING_PREFIX, kind);
	for (const char *c = what; *c && n < NAME_MAX_BYTES; c++) {
		if (*c == '/' || *c == '%') {
			if (n + 3 > NAME_MAX_BYTES)
				break;
			n += (size_t)sprintf(out + n, "%%%02X", (unsigned char)*c);
		} else {
			out[n++] = *c;
		}
	}
	out[n] = 0;
	return out;
}

/* Whether HDF5 path `t` has a ".." component (HDF5 takes it as an ordinary link name, which
 * h5mount never shows, so such a link cannot resolve inside the mount). */
static bool has_dotdot(const char *t)
{
	for (const char *c = t; *c; c++)
		if ((c == t || c[-1] == '/') && c[0] == '.' && c[1] == '.' && (c[2] == '/' || !c[2]))
			return true;
	return false;
}

/* Number of components of group path `dirpath` ("/" is 0). */
static size_t path_depth(const char *dirpath)
{
	size_t depth = 0;

	for (const char *c = dirpath; *c; c++)
		if (*c != '/' && (c == dirpath || c[-1] == '/'))
			depth++;
	return depth;
}

/* "../" `up` times, then the components of `t` other than empty and "." joined by '/'
 * ("." when there is nothing at all, "../.." rather than "../../" when only the climb).
 * `t` has no ".." component. Returns malloc'd text or NULL (out of memory). */
static char *climb_then(size_t up, const char *t)
{
	char *out = malloc(up * 3 + strlen(t) + 2), *p = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < up; i++) {
		memcpy(p, "../", 3);
		p += 3;
	}
	while (*t) {
		size_t len = strcspn(t, "/");

		if (len && !(len == 1 && *t == '.')) {
			memcpy(p, t, len);
			p += len;
			*p++ = '/';
		}
		t += len;
		if (*t == '/')
			t++;
	}
	if (p == out)
		*p++ = '.';
	else
		p--; /* the last '/' */
	*p = 0;
	return out;
}

/* Whether group `dirpath` (a path of hard links, as group nodes keep) is at that depth on every
 * path from the root: it and each group above it but the root have one hard link, so any other
 * path to it passes the root again and is only longer. A group linked twice may sit higher
 * elsewhere, where climbing to the root from it would leave the mount. Returns 1, 0 (also when
 * HDF5 cannot tell) or -ENOMEM. HDF5 lock. */
static int depth_is_fixed(struct h5m_store *s, const char *dirpath)
{
	char *p = strdup(dirpath);
	int fixed = 1;

	if (!p)
		return -ENOMEM;
	for (size_t i = 1; fixed == 1 && p[i - 1]; i++) {
		H5O_info_t oi;
		char c = p[i];

		/* Ends of components only: the root ("/") and doubled '/' are skipped. */
		if ((c != '/' && c != 0) || p[i - 1] == '/')
			continue;
		p[i] = 0;
		fixed = H5Oget_info_by_name2(s->fid, p, &oi, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 && oi.rc == 1;
		p[i] = c;
	}
	H5Eclear2(H5E_DEFAULT);
	free(p);
	return fixed;
}

/* Symlink text for soft link `path` (in group `dirpath`) with HDF5 target `t`: absolute targets
 * climb to the mount's root, relative ones are kept (without empty and "." components); a ".."
 * component, or an absolute target in a group whose depth is not fixed, gives a dangling text
 * (logged). *fixed caches depth_is_fixed for the group (DEPTH_UNKNOWN until asked). Returns
 * malloc'd text or NULL (out of memory). HDF5 lock. */
static char *soft_text(struct h5m_store *s, const char *dirpath, const char *path, const char *t, int *fixed)
{
	if (has_dotdot(t)) {
		h5m_log(H5M_LOG_WARN, "%s: soft link to '%s' shown dangling: a '..' component resolves in no HDF5 "
		        "reader and would leave the mount", path, t);
		return dangling_text("soft", t);
	}
	if (t[0] != '/')
		return climb_then(0, t);
	if (*fixed == DEPTH_UNKNOWN)
		*fixed = depth_is_fixed(s, dirpath);
	if (*fixed < 0)
		return NULL;
	if (!*fixed) {
		h5m_log(H5M_LOG_WARN, "%s: soft link to '%s' shown dangling: its group is linked under more than one "
		        "name, so no relative symlink reaches the root from all of them", path, t);
		return dangling_text("soft", t);
	}
	return climb_then(path_depth(dirpath), t);
}

/* Symlink text for external link `path` to object `obj` of file `file`: dangling unless the
 * store shows host paths; then FILE//PATH with a relative FILE taken from the directory of
 * the mounted file. Returns malloc'd text or NULL (out of memory). */
static char *external_text(struct h5m_store *s, const char *path, const char *file, const char *obj)
{
	const char *slash = strrchr(s->path, '/');
	int dirlen = file[0] == '/' || !slash ? 0 : (int)(slash - s->path) + 1;
	size_t n = (size_t)dirlen + strlen(file) + strlen(obj) + 3;
	char *text = malloc(n), *out;

	if (!text)
		return NULL;
	/* h5ls notation: FILE//PATH for an absolute PATH. */
	snprintf(text, n, "%.*s%s/%s%s", dirlen, s->path, file, obj[0] == '/' ? "" : "/", obj);
	if (s->host_elinks)
		return text;
	out = dangling_text("external", text + dirlen);
	if (out)
		h5m_log(H5M_LOG_INFO, "%s: external link to '%s' shown dangling (mount with -o external_links=host "
		        "to show it as a symlink to the host path)", path, text + dirlen);
	free(text);
	return out;
}

/* ---- listing ---- */

struct name_list {
	char **names;
	size_t n, cap;
	bool failed;
};

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
	struct name_list *l = data;

	(void)g;
	(void)info;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		char **nn = realloc(l->names, cap * sizeof(*nn));

		if (!nn) {
			l->failed = true;
			return -1;
		}
		l->names = nn;
		l->cap = cap;
	}
	l->names[l->n] = strdup(name);
	if (!l->names[l->n]) {
		l->failed = true;
		return -1;
	}
	l->n++;
	return 0;
}

static int dirent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct h5m_dirent *)a)->name, ((const struct h5m_dirent *)b)->name);
}

struct ent_list {
	struct h5m_dirent *e;
	size_t n, cap;
};

static int ent_add(struct ent_list *l, char *name, uint32_t node, enum h5m_view view)
{
	if (!name)
		return -ENOMEM;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct h5m_dirent *ne = realloc(l->e, cap * sizeof(*ne));

		if (!ne) {
			free(name);
			return -ENOMEM;
		}
		l->e = ne;
		l->cap = cap;
	}
	l->e[l->n++] = (struct h5m_dirent){ .name = name, .node = node, .view = view };
	return 0;
}

static char *join_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
	return p;
}

/* Whether listing shows a member of this name (file names: not empty, "." or "..", at most
 * NAME_MAX_BYTES; HDF5 names contain no '/'). */
static bool name_shown(const char *name)
{
	return *name && strlen(name) <= NAME_MAX_BYTES && strcmp(name, ".") && strcmp(name, "..");
}

static int first_path_cmp(const void *a, const void *b)
{
	haddr_t x = ((const struct first_path *)a)->addr, y = ((const struct first_path *)b)->addr;

	return x < y ? -1 : x > y;
}

/* Appends (addr, path) to s->firsts (takes path). Returns 0 or -ENOMEM. HDF5 lock. */
static int first_add(struct h5m_store *s, size_t *cap, haddr_t addr, char *path)
{
	if (!path)
		return -ENOMEM;
	if (s->nfirsts == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct first_path *nf = realloc(s->firsts, nc * sizeof(*nf));

		if (!nf) {
			free(path);
			return -ENOMEM;
		}
		s->firsts = nf;
		*cap = nc;
	}
	s->firsts[s->nfirsts++] = (struct first_path){ .addr = addr, .path = path };
	return 0;
}

/* The path of a multiply-linked group already in s->firsts, or NULL. HDF5 lock. */
static const char *first_find(struct h5m_store *s, haddr_t addr)
{
	struct first_path key = { .addr = addr }, *hit;

	if (!s->nfirsts)
		return NULL;
	hit = bsearch(&key, s->firsts, s->nfirsts, sizeof(key), first_path_cmp);
	return hit ? hit->path : NULL;
}

/* A set of object addresses, open addressing, HADDR_UNDEF marking empty slots. */
struct addr_set {
	haddr_t *a;
	size_t cap, used;
};

/* Adds addr. Returns 1 if it was new, 0 if already there, -ENOMEM. */
static int addr_set_add(struct addr_set *set, haddr_t addr)
{
	size_t i;

	if ((set->used + 1) * 2 > set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 64;
		haddr_t *na = malloc(cap * sizeof(*na)), *old = set->a;

		if (!na)
			return -ENOMEM;
		memset(na, 0xff, cap * sizeof(*na)); /* HADDR_UNDEF */
		set->a = na;
		set->cap = cap;
		set->used = 0;
		for (size_t k = 0; old && k < cap / 2; k++)
			if (old[k] != HADDR_UNDEF)
				addr_set_add(set, old[k]);
		free(old);
	}
	for (i = addr_hash(addr, set->cap); set->a[i] != HADDR_UNDEF; i = (i + 1) & (set->cap - 1))
		if (set->a[i] == addr)
			return 0;
	set->a[i] = addr;
	set->used++;
	return 1;
}

/* Walks every group breadth-first from the root, members in name order (listing's order),
 * through hard links with names listing shows, and records in s->firsts the path by which it
 * first reaches each group of more than one hard link (the root is "/"); a group already
 * reached is not entered again, so cycles end. Groups HDF5 cannot list are skipped, as listing
 * shows nothing in them either. The same file so gives the same first paths whatever order
 * its directories are visited in. Runs once; afterwards s->firsts is sorted. Returns 0 or
 * -ENOMEM (then the walk may be retried). HDF5 lock. */
static int walk_first_paths(struct h5m_store *s, haddr_t root)
{
	struct addr_set seen = { 0 };
	char **queue = NULL;
	size_t head = 0, tail = 0, qcap = 0, fcap = 0, ngroups = 0;
	int rc;

	rc = addr_set_add(&seen, root) < 0 ? -ENOMEM : first_add(s, &fcap, root, strdup("/"));
	if (!rc) {
		queue = malloc(16 * sizeof(*queue));
		qcap = 16;
		rc = queue && (queue[tail++] = strdup("/")) ? 0 : -ENOMEM;
	}
	while (!rc && head < tail) {
		char *dir = queue[head];
		struct name_list names = { 0 };
		hid_t g = H5Gopen2(s->fid, dir, H5P_DEFAULT);

		queue[head++] = NULL;
		ngroups++;
		if (g >= 0 && H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_name, &names) >= 0 && !names.failed) {
			for (size_t i = 0; i < names.n && !rc; i++) {
				H5L_info_t li;
				H5O_info_t oi;
				char *path;

				if (!name_shown(names.names[i]) || H5Lget_info(g, names.names[i], &li, H5P_DEFAULT) < 0 ||
				    li.type != H5L_TYPE_HARD ||
				    H5Oget_info_by_name2(g, names.names[i], &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 ||
				    oi.type != H5O_TYPE_GROUP)
					continue;
				/* A group of one hard link is reached once; the root may be linked again. */
				if (oi.rc > 1 || oi.addr == root) {
					int fresh = addr_set_add(&seen, oi.addr);

					if (fresh <= 0) {
						rc = fresh;
						continue;
					}
				}
				path = join_path(dir, names.names[i]);
				if (!path || (oi.rc > 1 && oi.addr != root && first_add(s, &fcap, oi.addr, strdup(path)))) {
					free(path);
					rc = -ENOMEM;
					break;
				}
				if (tail == qcap) {
					char **nq = realloc(queue, qcap * 2 * sizeof(*nq));

					if (!nq) {
						free(path);
						rc = -ENOMEM;
						break;
					}
					queue = nq;
					qcap *= 2;
				}
				queue[tail++] = path;
			}
		} else if (names.failed) {
			rc = -ENOMEM;
		}
		H5Eclear2(H5E_DEFAULT);
		if (g >= 0)
			H5Gclose(g);
		for (size_t i = 0; i < names.n; i++)
			free(names.names[i]);
		free(names.names);
		free(dir);
	}
	for (size_t i = head; i < tail; i++)
		free(queue[i]);
	free(queue);
	free(seen.a);
	if (rc) {
		for (size_t i = 0; i < s->nfirsts; i++)
			free(s->firsts[i].path);
		free(s->firsts);
		s->firsts = NULL;
		s->nfirsts = 0;
		return rc;
	}
	qsort(s->firsts, s->nfirsts, sizeof(*s->firsts), first_path_cmp);
	s->walked = true;
	h5m_log(H5M_LOG_INFO, "%s: groups linked under several names: walked %zu groups to find each one's first "
	        "path, its directory (the others are symlinks to it)", s->path, ngroups);
	return 0;
}

/* Returns the node index for hard link `name` in group g, creating the node on first sight;
 * -ENOENT for objects that are not shown (logged once), other -errno on failure. HDF5 lock. */
static int64_t object_node(struct h5m_store *s, hid_t g, const char *name, const char *path)
{
	H5O_info_t oi;
	struct addr_slot *sl;
	struct h5m_node *n;
	int64_t idx;
	char why[256];

	if (H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
		h5m_hdf5_error(why, sizeof(why));
		h5m_log(H5M_LOG_WARN, "%s: not shown: %s", path, why);
		return -ENOENT;
	}
	sl = amap_slot(s, oi.addr);
	if (sl->used)
		return sl->node < 0 ? -ENOENT : sl->node;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->addr = oi.addr;
	switch (oi.type) {
	case H5O_TYPE_GROUP: {
		const char *first = NULL;

		/* A group of several hard links gets its first path, wherever it is met first. A
		 * failed walk (out of memory) is retried next time; meanwhile this path serves. */
		if (oi.rc > 1 && (s->walked || walk_first_paths(s, h5m_store_node(s, 0)->addr) == 0))
			first = first_find(s, oi.addr);
		n->type = H5M_NODE_GROUP;
		n->path = strdup(first ? first : path);
		if (!n->path) {
			free(n);
			return -ENOMEM;
		}
		break;
	}
	case H5O_TYPE_DATASET:
		n->type = H5M_NODE_DATASET;
		n->shown = 1u << H5M_VIEW_OBJ; /* listing adds the views it shows */
		n->ds = dataset_open(s, g, name, path, why, sizeof(why));
		if (!n->ds) {
			h5m_log(H5M_LOG_WARN, "%s: not shown: %s", path, why);
			free(n);
			return amap_put(s, oi.addr, -1) ? -ENOMEM : -ENOENT;
		}
		break;
	default:
		h5m_log(H5M_LOG_INFO, "%s: not shown: named datatypes have no file form", path);
		free(n);
		return amap_put(s, oi.addr, -1) ? -ENOMEM : -ENOENT;
	}
	idx = add_node(s, n);
	if (idx < 0 || amap_put(s, oi.addr, idx)) {
		if (idx < 0) {
			dataset_free(n->ds);
			free(n->path);
			free(n);
		}
		return -ENOMEM;
	}
	return idx;
}

/* Creates a symlink node for soft/external link `name` of group `dirpath` (its text made by
 * soft_text, with the group's *fixed, or external_text). Returns its index or -errno. HDF5 lock. */
static int64_t link_node(struct h5m_store *s, hid_t g, const char *dirpath, const char *name, const H5L_info_t *li,
                         int *fixed)
{
	char *val = NULL, *text = NULL, *path = NULL;
	struct h5m_node *n = NULL;
	int64_t idx = -ENOMEM;

	if (li->u.val_size > MAX_LINK_BYTES) {
		h5m_log(H5M_LOG_WARN, "%s/%s: not shown: a link value of %zu bytes", dirpath, name, li->u.val_size);
		return -ENOENT;
	}
	val = malloc(li->u.val_size + 1);
	if (!val)
		goto out;
	if (H5Lget_val(g, name, val, li->u.val_size, H5P_DEFAULT) < 0) {
		h5m_log(H5M_LOG_WARN, "%s/%s: not shown: the link value cannot be read", dirpath, name);
		idx = -ENOENT;
		goto out;
	}
	val[li->u.val_size] = 0;
	path = join_path(dirpath, name);
	if (!path)
		goto out;
	if (li->type == H5L_TYPE_SOFT) {
		text = soft_text(s, dirpath, path, val, fixed);
	} else {
		const char *file, *obj;
		unsigned flags;

		if (H5Lunpack_elink_val(val, li->u.val_size, &flags, &file, &obj) < 0) {
			h5m_log(H5M_LOG_WARN, "%s/%s: not shown: a damaged external link", dirpath, name);
			idx = -ENOENT;
			goto out;
		}
		text = external_text(s, path, file, obj);
	}
	n = calloc(1, sizeof(*n));
	if (!text || !n)
		goto out;
	n->type = H5M_NODE_SOFTLINK;
	n->target = text;
	text = NULL;
	idx = add_node(s, n);
	if (idx >= 0)
		n = NULL;
out:
	H5Eclear2(H5E_DEFAULT);
	if (n)
		free(n->target);
	free(n);
	free(text);
	free(path);
	free(val);
	return idx;
}

/* Longest symlink text the kernel takes from readlink (PATH_MAX with its NUL). */
#define LINK_TEXT_MAX 4095

/* The entry for hard link `path` (in group `dirpath`) to node `idx`: the node itself, or, for a
 * group whose first path (object_node, walk_first_paths) is another (a second hard link, or a
 * cycle back to a group above), a new symlink node whose text climbs from `dirpath` to the
 * mount's root and descends along that first path. A group so has one directory in the mount
 * and its other names are symlinks: the kernel cannot alias directories. Texts too long for a
 * symlink are dangling (logged). Returns the node index to
 * show or -ENOMEM/-ENOSPC. HDF5 lock. */
static int64_t group_alias(struct h5m_store *s, const char *dirpath, const char *path, int64_t idx)
{
	struct h5m_node *g = h5m_store_node(s, (uint64_t)idx), *n;
	char *text;

	if (g->type != H5M_NODE_GROUP || !strcmp(g->path, path))
		return idx;
	/* g->path is built from names that listing shows (not empty, "." or ".."), and dirpath is
	 * the only directory of its group, at depth path_depth(dirpath) below the root. */
	text = climb_then(path_depth(dirpath), g->path);
	if (text && strlen(text) > LINK_TEXT_MAX) {
		h5m_log(H5M_LOG_WARN, "%s: hard link to group '%s' shown dangling: the symlink text would be "
		        "%zu bytes", path, g->path, strlen(text));
		free(text);
		text = dangling_text("group", g->path);
	}
	n = text ? calloc(1, sizeof(*n)) : NULL;
	if (!n) {
		free(text);
		return -ENOMEM;
	}
	n->type = H5M_NODE_SOFTLINK;
	n->target = text;
	idx = add_node(s, n);
	if (idx < 0) {
		free(text);
		free(n);
	}
	return idx;
}

/* Fills dir's entries. HDF5 lock held. */
static int list_locked(struct h5m_store *s, struct h5m_node *dir)
{
	struct name_list names = { 0 };
	struct ent_list ents = { 0 };
	hid_t g = H5I_INVALID_HID;
	size_t nreal;
	int rc = 0, depth_fixed = DEPTH_UNKNOWN;
	char why[256];

	/* By path, kept right by renames: HDF5 1.10.8 crashes in H5Lmove (H5G_build_fullpath) on
	 * a group opened by address, which has no path. */
	g = H5Gopen2(s->fid, dir->path, H5P_DEFAULT);
	if (g < 0) {
		h5m_hdf5_error(why, sizeof(why));
		h5m_log(H5M_LOG_ERR, "%s: cannot open group: %s", dir->path, why);
		return -EIO;
	}
	if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_name, &names) < 0 || names.failed) {
		h5m_hdf5_error(why, sizeof(why));
		h5m_log(H5M_LOG_ERR, "%s: cannot list group: %s", dir->path, names.failed ? "out of memory" : why);
		rc = names.failed ? -ENOMEM : -EIO;
		goto out;
	}
	for (size_t i = 0; i < names.n && rc == 0; i++) {
		const char *name = names.names[i];
		char *path = join_path(dir->path, name);
		H5L_info_t li;
		int64_t idx = -ENOENT;

		if (!path) {
			rc = -ENOMEM;
			break;
		}
		if (!name_shown(name)) {
			h5m_log(H5M_LOG_WARN, "%s: not shown: the name is not a valid file name", path);
		} else if (H5Lget_info(g, name, &li, H5P_DEFAULT) < 0) {
			h5m_hdf5_error(why, sizeof(why));
			h5m_log(H5M_LOG_WARN, "%s: not shown: %s", path, why);
		} else if (li.type == H5L_TYPE_HARD) {
			idx = object_node(s, g, name, path);
			if (idx >= 0) {
				struct h5m_node *o = h5m_store_node(s, (uint64_t)idx);

				if (o->type == H5M_NODE_GROUP && !strcmp(o->path, path))
					o->parent = dir->idx;
				idx = group_alias(s, dir->path, path, idx);
			}
		} else if (li.type == H5L_TYPE_SOFT || li.type == H5L_TYPE_EXTERNAL) {
			idx = link_node(s, g, dir->path, name, &li, &depth_fixed);
		} else {
			h5m_log(H5M_LOG_WARN, "%s: not shown: user-defined link type %d", path, (int)li.type);
		}
		free(path);
		if (idx >= 0)
			rc = ent_add(&ents, strdup(name), (uint32_t)idx, H5M_VIEW_OBJ);
		else if (idx != -ENOENT)
			rc = (int)idx;
	}
	if (rc)
		goto out;
	/* Views of datasets, unless a real object already has that name (the object wins). */
	nreal = ents.n;
	if (nreal) /* an empty group has no array: qsort's pointer must not be NULL */
		qsort(ents.e, nreal, sizeof(*ents.e), dirent_cmp);
	for (size_t i = 0; i < nreal && rc == 0; i++) {
		static const char *const suffix[H5M_NVIEWS] = { "", ".npy", ".shape", ".offsets" };
		struct h5m_node *n = h5m_store_node(s, ents.e[i].node);

		if (n->type != H5M_NODE_DATASET)
			continue;
		for (unsigned v = H5M_VIEW_NPY; v < H5M_NVIEWS && rc == 0; v++) {
			char *vn;
			struct h5m_dirent key;

			if (!h5m_store_has_view(n, (enum h5m_view)v))
				continue;
			vn = malloc(strlen(ents.e[i].name) + strlen(suffix[v]) + 1);
			if (!vn) {
				rc = -ENOMEM;
				break;
			}
			sprintf(vn, "%s%s", ents.e[i].name, suffix[v]);
			key.name = vn;
			if (strlen(vn) > NAME_MAX_BYTES) {
				h5m_log(H5M_LOG_WARN, "%s/%s: view not shown: name longer than %d bytes", dir->path, vn,
				        NAME_MAX_BYTES);
				free(vn);
			} else if (bsearch(&key, ents.e, nreal, sizeof(*ents.e), dirent_cmp)) {
				h5m_log(H5M_LOG_INFO, "%s/%s: a real object has this name; the view is hidden", dir->path, vn);
				free(vn);
			} else {
				rc = ent_add(&ents, vn, ents.e[i].node, (enum h5m_view)v);
				if (!rc)
					__atomic_fetch_or(&n->shown, (uint8_t)(1u << v), __ATOMIC_RELEASE);
			}
		}
	}
	if (rc)
		goto out;
	if (ents.n)
		qsort(ents.e, ents.n, sizeof(*ents.e), dirent_cmp);
	dir->ents = ents.e;
	dir->nents = ents.n;
	ents.e = NULL;
	ents.n = 0;
	__atomic_store_n(&dir->listed, true, __ATOMIC_RELEASE);
out:
	for (size_t i = 0; i < ents.n; i++)
		free(ents.e[i].name);
	free(ents.e);
	for (size_t i = 0; i < names.n; i++)
		free(names.names[i]);
	free(names.names);
	H5Gclose(g);
	return rc;
}

bool h5m_store_has_view(const struct h5m_node *n, enum h5m_view view)
{
	if (view == H5M_VIEW_OBJ)
		return true;
	if (n->type != H5M_NODE_DATASET)
		return false;
	if (view == H5M_VIEW_OFFSETS)
		return n->ds->dt.kind != H5M_DT_FIXED;
	return view != H5M_VIEW_NPY || !n->ds->null_space;
}

/* Lists dir if it is not yet. Caller holds the namespace lock (read or write), not the HDF5
 * lock. Returns 0 or list_locked's -errno. */
static int ensure_listed(struct h5m_store *s, struct h5m_node *dir)
{
	int rc = 0;

	if (!__atomic_load_n(&dir->listed, __ATOMIC_ACQUIRE)) {
		h5m_hdf5_lock();
		if (!dir->listed)
			rc = list_locked(s, dir);
		h5m_hdf5_unlock();
	}
	return rc;
}

int h5m_store_list(struct h5m_store *s, struct h5m_node *dir, const struct h5m_dirent **ents, size_t *n)
{
	int rc = 0;

	if (dir->type != H5M_NODE_GROUP)
		return -ENOTDIR;
	pthread_rwlock_rdlock(&s->ns);
	rc = ensure_listed(s, dir);
	pthread_rwlock_unlock(&s->ns);
	if (rc)
		return rc;
	*ents = dir->ents;
	*n = dir->nents;
	return 0;
}

const struct h5m_dirent *h5m_store_lookup(struct h5m_store *s, struct h5m_node *dir, const char *name, int *err)
{
	const struct h5m_dirent *ents, *hit;
	struct h5m_dirent key = { .name = (char *)name };
	size_t n;

	*err = h5m_store_list(s, dir, &ents, &n);
	if (*err)
		return NULL;
	hit = n ? bsearch(&key, ents, n, sizeof(*ents), dirent_cmp) : NULL;
	if (!hit)
		*err = -ENOENT;
	return hit;
}

/* ---- open / close ---- */

/* Opens the HDF5 file; for writing through the journal driver, clearing the "already open for
 * write" flag that a crashed writer leaves in superblock-v3 files; read-only through it too
 * when `journal` (it then shows a crash's journal from memory). HDF5 lock held. */
static hid_t open_file(const char *path, bool rw, bool journal, char *why, size_t cap)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fid;

	H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
	if ((rw || journal) && h5m_jvfd_set_fapl(fapl) < 0) {
		snprintf(why, cap, "cannot set up the journal driver");
		H5Pclose(fapl);
		return H5I_INVALID_HID;
	}
	fid = H5Fopen(path, rw ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
	if (fid < 0) {
		h5m_hdf5_error(why, cap); /* before any other call clears the stack */
		if (rw && strstr(why, "already open for write")) {
			hbool_t clear = true;

			/* The property h5clear sets; it exists in every file access list of 1.10. */
			if (H5Pset(fapl, "clear_status_flags", &clear) >= 0) {
				fid = H5Fopen(path, H5F_ACC_RDWR, fapl);
				if (fid >= 0)
					h5m_log(H5M_LOG_WARN, "%s: cleared the open-for-write flag a crashed writer left", path);
				else
					h5m_hdf5_error(why, cap);
			}
			H5Eclear2(H5E_DEFAULT);
		}
	}
	H5Pclose(fapl);
	return fid;
}

/* Opens the remote file r read-only through HDF5's ROS3 driver (signed when r has keys).
 * Returns the file or H5I_INVALID_HID with why[cap]. HDF5 lock held. */
static hid_t open_remote_file(struct h5m_remote *r, char *why, size_t cap)
{
	H5FD_ros3_fapl_t fa = { .version = H5FD_CURR_ROS3_FAPL_T_VERSION };
	const char *region, *id, *key;
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fid = H5I_INVALID_HID;

	if (h5m_remote_auth(r, &region, &id, &key)) {
		fa.authenticate = true;
		snprintf(fa.aws_region, sizeof(fa.aws_region), "%s", region);
		snprintf(fa.secret_id, sizeof(fa.secret_id), "%s", id);
		snprintf(fa.secret_key, sizeof(fa.secret_key), "%s", key);
	}
	if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 || H5Pset_fapl_ros3(fapl, &fa) < 0) {
		h5m_hdf5_error(why, cap);
		goto out;
	}
	fid = H5Fopen(h5m_remote_http_url(r), H5F_ACC_RDONLY, fapl);
	if (fid < 0)
		h5m_hdf5_error(why, cap);
out:
	explicit_bzero(&fa, sizeof(fa));
	if (fapl >= 0)
		H5Pclose(fapl); /* HDF5 keeps its own copy of the keys in the file's driver */
	return fid;
}

/* Whether the remote file r has HDF5's signature where HDF5 looks for it (offset 0, 512, 1024,
 * 2048, ...): one batch of ranged GETs, so that any other object is refused with "is not an
 * HDF5 file" rather than a driver error. Returns 1, 0, or -EIO/-ENOMEM (the fetcher logged why). */
static int remote_signature(struct h5m_remote *r)
{
	static const unsigned char sig[8] = { 0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n' };
	struct h5m_remote_range rg[64];
	unsigned char got[64][8];
	uint64_t size = h5m_remote_size(r);
	size_t n = 0;
	int rc;

	for (uint64_t at = 0; n < 64 && at + 8 <= size; at = at ? at * 2 : 512, n++)
		rg[n] = (struct h5m_remote_range){ .off = at, .len = 8, .buf = got[n] };
	if ((rc = h5m_remote_readv(r, rg, n)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (!memcmp(got[i], sig, 8))
			return 1;
	return 0;
}

/* The size of fid's user block (h5py's userblock_size, h5jam's -u): where HDF5 address 0 is
 * in the file. Returns 0 or -EIO. HDF5 lock held. */
static int user_block(hid_t fid, uint64_t *base)
{
	hid_t fcpl = H5Fget_create_plist(fid);
	hsize_t size = 0;
	int rc = 0;

	if (fcpl < 0 || H5Pget_userblock(fcpl, &size) < 0)
		rc = -EIO;
	if (fcpl >= 0)
		H5Pclose(fcpl);
	*base = size;
	return rc;
}

/* h5m_store_open and h5m_store_open_remote: `remote` NULL opens the host file `path`. */
static int store_open(const char *path, struct h5m_remote *remote, bool rw, size_t block_target,
                      size_t chunk_cache_budget, unsigned flags, struct h5m_store **out, char *err, size_t cap)
{
	struct h5m_store *s = calloc(1, sizeof(*s));
	struct h5m_node *root = NULL;
	H5O_info_t oi;
	struct stat st;
	htri_t is;
	int rc;
	char why[512];

	*out = NULL;
	if (!s) {
		snprintf(err, cap, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	s->fid = H5I_INVALID_HID;
	{
		pthread_rwlockattr_t ra;

		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&s->ns, &ra);
		pthread_rwlockattr_destroy(&ra);
		s->ns_ready = true;
	}
	s->block_target = block_target;
	s->chunk_cache_left = chunk_cache_budget;
	s->chunk_cache_spent_logged = chunk_cache_budget == 0; /* nothing to say without a budget */
	s->rw = rw;
	s->host_elinks = flags & H5M_STORE_HOST_ELINKS;
	s->fd = -1;
	if (remote) {
		if (rw) {
			rc = -EROFS;
			snprintf(err, cap, "remote files are read-only");
			goto fail;
		}
		s->remote = remote;
		goto opened;
	}
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &st) < 0) {
		rc = -errno;
		snprintf(err, cap, "%s", strerror(errno));
		goto fail;
	}
	s->fsize = (uint64_t)st.st_size;
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		snprintf(err, cap, "%s", strerror(EISDIR));
		goto fail;
	}
	if (rw && access(path, W_OK) < 0) {
		rc = -errno;
		snprintf(err, cap, "%s", strerror(errno));
		goto fail;
	}
opened:
	s->fsize = remote ? h5m_remote_size(remote) : s->fsize;
	s->path = strdup(path);
	if (!s->path) {
		rc = -ENOMEM;
		snprintf(err, cap, "%s", strerror(ENOMEM));
		goto fail;
	}
	if (remote && (rc = remote_signature(remote)) <= 0) {
		rc = rc ? rc : -EINVAL;
		snprintf(err, cap, rc == -EINVAL ? "is not an HDF5 file" : "cannot read the file's first bytes");
		goto fail;
	}
	h5m_hdf5_lock();
	if (remote) {
		/* No journal: nothing was ever written through a remote mount. */
		s->fid = open_remote_file(remote, why, sizeof(why));
		if (s->fid < 0 && strstr(why, "signature")) {
			h5m_hdf5_unlock();
			rc = -EINVAL;
			snprintf(err, cap, "is not an HDF5 file");
			goto fail;
		}
		goto described;
	}
	is = H5Fis_hdf5(path);
	if (is <= 0) {
		H5Eclear2(H5E_DEFAULT);
		h5m_hdf5_unlock();
		rc = -EINVAL;
		snprintf(err, cap, "is not an HDF5 file");
		goto fail;
	}
	/* A crash's journal: replayed when writing; shown from memory, changing nothing, when
	 * read-only; refused (-ESTALE, file and journal untouched) when it is another state's. */
	rc = rw ? h5m_jvfd_recover(path, why, sizeof(why)) : h5m_jvfd_inspect(path, why, sizeof(why));
	if (rc < 0) {
		h5m_hdf5_unlock();
		if (rc == -ESTALE)
			snprintf(err, cap, "%s", why);
		else
			snprintf(err, cap, "cannot %s the journal: %s", rw ? "replay" : "read", why);
		goto fail;
	}
	if (rc == 1 && rw)
		h5m_log(H5M_LOG_WARN, "%s: replayed the journal of an interrupted write-back", path);
	/* Opening for writing makes HDF5 commit its open-for-write flags into the superblock, and
	 * closing clears them: no change of the data, so the file keeps its times (unless a
	 * journal was replayed into it, which is one) until a commit changes something. */
	if (rw && rc == 0) {
		s->kept[0] = st.st_atim;
		s->kept[1] = st.st_mtim;
		s->times_kept = true;
	}
	if (rc == 1 && !rw) {
		s->journal_shown = true;
		h5m_log(H5M_LOG_WARN, "%s: showing the state of the journal left by an interrupted write-back; "
		        "mount read-write once to replay it into the file", path);
	}
	s->fid = open_file(path, rw, s->journal_shown, why, sizeof(why));
described:
	if (s->fid < 0 || H5Oget_info_by_name2(s->fid, "/", &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 ||
	    user_block(s->fid, &s->base) < 0) {
		if (s->fid >= 0)
			h5m_hdf5_error(why, sizeof(why));
		h5m_hdf5_unlock();
		rc = -EIO;
		snprintf(err, cap, "%s", why);
		goto fail;
	}
	if (s->times_kept && futimens(s->fd, s->kept) < 0)
		s->times_kept = false;
	root = calloc(1, sizeof(*root));
	if (!root || !(root->path = strdup("/"))) {
		h5m_hdf5_unlock();
		free(root);
		rc = -ENOMEM;
		snprintf(err, cap, "%s", strerror(ENOMEM));
		goto fail;
	}
	root->type = H5M_NODE_GROUP;
	root->addr = oi.addr;
	if (add_node(s, root) < 0 || amap_put(s, oi.addr, 0) < 0) {
		h5m_hdf5_unlock();
		rc = -ENOMEM;
		snprintf(err, cap, "%s", strerror(ENOMEM));
		goto fail;
	}
	rc = list_locked(s, root);
	h5m_hdf5_unlock();
	if (rc) {
		snprintf(err, cap, "the root group cannot be listed");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	h5m_store_close(s);
	return rc;
}

static void times_check(struct h5m_store *s);
int h5m_store_open(const char *path, bool rw, size_t block_target, size_t chunk_cache_budget, unsigned flags,
                   struct h5m_store **out, char *err, size_t cap)
{
	return store_open(path, NULL, rw, block_target, chunk_cache_budget, flags, out, err, cap);
}

int h5m_store_open_remote(struct h5m_remote *r, size_t block_target, size_t chunk_cache_budget,
                          struct h5m_store **out, char *err, size_t cap)
{
	return store_open(h5m_remote_name(r), r, false, block_target, chunk_cache_budget, 0, out, err, cap);
}

/* Frees s; closes the HDF5 file unless `keep_ro_file` and it is read-only. */
static void store_free(struct h5m_store *s, bool keep_ro_file)
{
	if (!s)
		return;
	h5m_hdf5_lock();
	for (uint64_t i = 0; i < s->nnodes; i++) {
		struct h5m_node *n = s->pages[i / PAGE_NODES][i % PAGE_NODES];

		for (size_t k = 0; k < n->nents; k++)
			free(n->ents[k].name);
		free(n->ents);
		free(n->path);
		free(n->target);
		dataset_free(n->ds);
		free(n);
	}
	for (size_t p = 0; p < MAX_PAGES && s->pages[p]; p++)
		free(s->pages[p]);
	/* HDF5 1.10.8 crashes at exit after a close that failed (HDFGroup/hdf5#2257): commit first,
	 * so the close has nothing left to fail on; the journal driver never fails a close. */
	if (s->fid >= 0 && s->rw && (H5Fflush(s->fid, H5F_SCOPE_GLOBAL) < 0 || h5m_jvfd_take_error(s->fid) > 0)) {
		H5Eclear2(H5E_DEFAULT);
		h5m_log(H5M_LOG_ERR, "%s: the last commit failed; the file keeps its previous committed state", s->path);
	}
	if (s->fid >= 0 && s->rw)
		times_check(s);
	/* A read-only file has nothing to write back, but HDF5 1.10.8's close still walks and
	 * evicts its metadata cache, and crashed there (SIGSEGV, SIGABRT) on damaged files after
	 * the mount was used: at exit the file is left open for the process's end to release
	 * (h5m_store_global_init turned HDF5's own cleanup at exit off). */
	if (s->fid >= 0 && !(keep_ro_file && !s->rw))
		H5Fclose(s->fid);
	/* The close's own commit is no change of the user's: the times set stay. */
	if (s->times_kept && s->fd >= 0 && futimens(s->fd, s->kept) < 0)
		h5m_log(H5M_LOG_WARN, "%s: cannot put back the times set through the mount: %s", s->path, strerror(errno));
	h5m_hdf5_unlock();
	if (s->fd >= 0)
		close(s->fd);
	free(s->amap);
	for (size_t i = 0; i < s->nfirsts; i++)
		free(s->firsts[i].path);
	free(s->firsts);
	for (size_t i = 0; i < s->nretired; i++)
		free(s->retired[i]);
	free(s->retired);
	if (s->ns_ready)
		pthread_rwlock_destroy(&s->ns);
	free(s->path);
	free(s);
}

void h5m_store_close(struct h5m_store *s)
{
	store_free(s, false);
}

void h5m_store_close_at_exit(struct h5m_store *s)
{
	store_free(s, true);
}

int64_t h5m_store_mtime(struct h5m_store *s)
{
	struct stat st;

	if (s->remote)
		return h5m_remote_mtime(s->remote);
	return fstat(s->fd, &st) ? 0 : (int64_t)st.st_mtime;
}

int h5m_store_stat(struct h5m_store *s, struct stat *st)
{
	if (s->remote) {
		/* An object has no owner here: the mounting user's, readable by all. */
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFREG | 0444;
		st->st_uid = getuid();
		st->st_gid = getgid();
		st->st_size = (off_t)s->fsize;
		st->st_mtime = h5m_remote_mtime(s->remote);
		return 0;
	}
	return fstat(s->fd, st) ? -errno : 0;
}

int h5m_store_set_owner_mode(struct h5m_store *s, mode_t mode, uid_t uid, gid_t gid)
{
	if (!s->rw)
		return -EROFS;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(s->fd, uid, gid) < 0)
		return -errno;
	if (mode != (mode_t)-1 && fchmod(s->fd, mode & 0777) < 0)
		return -errno;
	return 0;
}

int h5m_store_set_times(struct h5m_store *s, const struct timespec ts[2])
{
	struct stat st;
	int rc = 0;

	if (!s->rw)
		return -EROFS;
	h5m_hdf5_lock(); /* times_kept, and no commit between the change and its record */
	if (futimens(s->fd, ts) < 0 || fstat(s->fd, &st) < 0) {
		rc = -errno;
		s->times_kept = false;
	} else {
		s->kept[0] = st.st_atim;
		s->kept[1] = st.st_mtim;
		s->times_kept = true;
	}
	h5m_hdf5_unlock();
	return rc;
}

void h5m_store_file(const struct h5m_store *s, struct h5m_store_file *f)
{
	*f = (struct h5m_store_file){ .fid = s->fid, .fd = s->fd, .size = s->fsize, .base = s->base, .rw = s->rw,
	                              .remote = s->remote };
}

bool h5m_store_writable(struct h5m_store *s)
{
	return s->rw;
}

size_t h5m_store_block_target(struct h5m_store *s)
{
	return s->block_target;
}

void h5m_store_fill(const struct h5m_dataset *ds, void *buf, size_t len, uint64_t phase)
{
	size_t es = ds->dt.elem_size;
	unsigned char *p = buf;
	bool zero = true;

	for (size_t i = 0; i < es; i++)
		zero &= ds->fill[i] == 0;
	if (zero) {
		memset(buf, 0, len);
		return;
	}
	for (size_t i = 0; i < len; i++)
		p[i] = ds->fill[(phase + i) % es];
}


int h5m_store_data_size(struct h5m_store *s, struct h5m_dataset *ds, uint64_t *bytes)
{
	int rc = 0;

	if (ds->dt.kind == H5M_DT_FIXED)
		return -EINVAL;
	h5m_hdf5_lock();
	rc = h5m_vlen_offsets_locked(s, ds);
	*bytes = rc ? 0 : ds->offsets[ds->nrows] * ds->dt.elem_size;
	h5m_hdf5_unlock();
	return rc;
}

/* A key of the file's state: its size and mtime (every commit changes one of them). Never 0. */
static uint64_t file_state_key(const struct h5m_store *s)
{
	struct stat st;

	if (fstat(s->fd, &st) < 0)
		return 0;
	return ((uint64_t)st.st_size * 0x9E3779B97F4A7C15ull ^ (uint64_t)st.st_mtim.tv_sec * 1000000007ull ^
	        (uint64_t)st.st_mtim.tv_nsec) | 1;
}

int h5m_store_storage_size(struct h5m_store *s, struct h5m_dataset *ds, uint64_t *bytes)
{
	uint64_t key = file_state_key(s);
	hsize_t n;

	if (key && __atomic_load_n(&ds->storage_key, __ATOMIC_ACQUIRE) == key) {
		*bytes = __atomic_load_n(&ds->storage_bytes, __ATOMIC_RELAXED);
		return 0;
	}
	h5m_hdf5_lock();
	n = H5Dget_storage_size(ds->did); /* 0 both for "none allocated" and for an error */
	h5m_hdf5_unlock();
	*bytes = n;
	__atomic_store_n(&ds->storage_bytes, (uint64_t)n, __ATOMIC_RELAXED);
	__atomic_store_n(&ds->storage_key, key, __ATOMIC_RELEASE);
	return 0;
}

/* ---- attributes ---- */

static int commit_locked(struct h5m_store *s, bool durable);

/* Opens the object of node n by its address, or returns H5I_INVALID_HID: also for a node
 * whose object was deleted through the mount (its address may hold another object by now;
 * `gone` is set under the HDF5 lock, which the caller holds). */
static hid_t open_object(struct h5m_store *s, struct h5m_node *n)
{
	if (n->type != H5M_NODE_GROUP && n->type != H5M_NODE_DATASET)
		return H5I_INVALID_HID;
	if (__atomic_load_n(&n->gone, __ATOMIC_ACQUIRE))
		return H5I_INVALID_HID;
	return H5Oopen_by_addr(s->fid, n->addr);
}

struct xlist {
	char *buf;
	size_t len, cap;
	bool failed;
};

static herr_t xattr_name(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
	struct xlist *l = data;
	size_t need = strlen(name) + 6;

	(void)loc;
	(void)info;
	if (need - 1 > NAME_MAX_BYTES)
		return 0;
	if (l->len + need > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		char *nb;

		while (cap < l->len + need)
			cap *= 2;
		nb = realloc(l->buf, cap);
		if (!nb) {
			l->failed = true;
			return -1;
		}
		l->buf = nb;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, "user.", 5);
	memcpy(l->buf + l->len + 5, name, need - 5);
	l->len += need;
	return 0;
}

int h5m_store_xattr_list(struct h5m_store *s, struct h5m_node *n, char **list, size_t *len)
{
	struct xlist l = { 0 };
	hid_t obj;
	int rc = 0;

	if (n->type != H5M_NODE_GROUP && n->type != H5M_NODE_DATASET) {
		*list = NULL;
		*len = 0;
		return 0;
	}
	h5m_hdf5_lock();
	if (__atomic_load_n(&n->gone, __ATOMIC_ACQUIRE)) {
		h5m_hdf5_unlock();
		*list = NULL;
		*len = 0;
		return 0; /* deleted through the mount while open: no attributes left */
	}
	obj = open_object(s, n);
	if (obj < 0 || H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, NULL, xattr_name, &l) < 0)
		rc = l.failed ? -ENOMEM : -EIO;
	H5Eclear2(H5E_DEFAULT);
	if (obj >= 0)
		H5Oclose(obj);
	h5m_hdf5_unlock();
	if (rc) {
		free(l.buf);
		return rc;
	}
	*list = l.buf;
	*len = l.len;
	return 0;
}

/* The text of attribute `attr` of obj (see h5m_store_xattr_get): *val malloc'd. Returns 0,
 * -EIO (logged), -ENOMEM or -E2BIG (logged). HDF5 lock. */
static int attr_text(hid_t obj, hid_t attr, const char *name, char **val, size_t *len)
{
	hid_t ft = H5I_INVALID_HID, mt = H5I_INVALID_HID, space = H5I_INVALID_HID;
	hsize_t dims[H5S_MAX_RANK];
	hssize_t np;
	size_t bytes;
	void *buf = NULL;
	int rank, rc = 0;

	ft = H5Aget_type(attr);
	space = H5Aget_space(attr);
	if (ft < 0 || space < 0) {
		rc = -EIO;
		goto out;
	}
	mt = H5Tget_class(ft) == H5T_STRING ? H5Tcopy(ft) : H5Tget_native_type(ft, H5T_DIR_DEFAULT);
	np = H5Sget_select_npoints(space);
	rank = H5Sget_simple_extent_dims(space, dims, NULL);
	if (mt < 0 || np < 0 || rank < 0 || __builtin_mul_overflow((size_t)np, H5Tget_size(mt), &bytes)) {
		rc = -EIO;
		goto out;
	}
	if (H5Sget_simple_extent_type(space) == H5S_NULL)
		np = 0;
	/* The sizes come from the file: bound them before allocating (an xattr holds 64 KiB). */
	if (bytes > MAX_ATTR_BYTES) {
		h5m_log(H5M_LOG_WARN, "attribute '%s': not read: %zu bytes of values (more than %zu MiB)", name, bytes,
		        MAX_ATTR_BYTES >> 20);
		rc = -E2BIG;
		goto out;
	}
	buf = calloc(1, bytes ? bytes : 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	/* H5Aread takes no transfer list, so variable-length values cannot be budgeted as dataset
	 * reads are: damaged lengths here are caught by the check before mounting (check.c). */
	if (np > 0 && H5Aread(attr, mt, buf) < 0) {
		rc = -EIO;
		goto out;
	}
	rc = h5m_dtype_format_values(obj, ft, mt, buf, (size_t)np, (unsigned)rank, dims, val, len);
	if (np > 0)
		H5Dvlen_reclaim(mt, space, H5P_DEFAULT, buf);
out:
	if (rc == -EIO) {
		char why[256];

		h5m_hdf5_error(why, sizeof(why));
		h5m_log(H5M_LOG_WARN, "attribute '%s': cannot read: %s", name, why);
	}
	H5Eclear2(H5E_DEFAULT);
	free(buf);
	if (mt >= 0)
		H5Tclose(mt);
	if (ft >= 0)
		H5Tclose(ft);
	if (space >= 0)
		H5Sclose(space);
	return rc;
}

int h5m_store_xattr_get(struct h5m_store *s, struct h5m_node *n, const char *name, char **val, size_t *len)
{
	hid_t obj = H5I_INVALID_HID, attr = H5I_INVALID_HID;
	int rc = 0;

	if (n->type != H5M_NODE_GROUP && n->type != H5M_NODE_DATASET)
		return -ENODATA;
	h5m_hdf5_lock();
	obj = open_object(s, n);
	if (obj < 0) {
		rc = __atomic_load_n(&n->gone, __ATOMIC_ACQUIRE) ? -ENODATA : -EIO;
		goto out;
	}
	if (H5Aexists(obj, name) <= 0) {
		rc = -ENODATA;
		goto out;
	}
	attr = H5Aopen(obj, name, H5P_DEFAULT);
	rc = attr < 0 ? -EIO : attr_text(obj, attr, name, val, len);
out:
	if (rc == -EIO && attr < 0) {
		char why[256];

		h5m_hdf5_error(why, sizeof(why));
		h5m_log(H5M_LOG_WARN, "attribute '%s': cannot read: %s", name, why);
	}
	H5Eclear2(H5E_DEFAULT);
	if (attr >= 0)
		H5Aclose(attr);
	if (obj >= 0)
		H5Oclose(obj);
	h5m_hdf5_unlock();
	return rc;
}

/* The HDF5 path of a group or dataset node, for log lines. */
static const char *node_path(const struct h5m_node *n)
{
	return n->type == H5M_NODE_DATASET ? n->ds->path : n->path ? n->path : "?";
}

/* Creates scalar string attribute `name` of obj holding text[0, len): variable-length UTF-8
 * (what h5py makes of a str) when the text is UTF-8, else a fixed-length ASCII string of its
 * bytes (what h5py makes of numpy.bytes_). Returns 0, -EINVAL (a NUL byte), -E2BIG or -EIO
 * with the reason in why. HDF5 lock. */
static int create_text_attr(hid_t obj, const char *name, const char *text, size_t len, char *why, size_t cap)
{
	bool utf8 = h5m_attrtext_is_utf8(text, len);
	hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID, attr = H5I_INVALID_HID;
	char *z = NULL;
	int rc = 0;

	if (memchr(text, 0, len)) {
		snprintf(why, cap, "the text holds a NUL byte, where an HDF5 string ends");
		return -EINVAL;
	}
	if (!utf8 && len > MAX_FIXED_TEXT) {
		snprintf(why, cap, "%zu bytes that are not UTF-8 (a fixed-length string in the object header "
		         "holds at most %zu KiB)", len, MAX_FIXED_TEXT >> 10);
		return -E2BIG;
	}
	z = strndup(text, len);
	type = H5Tcopy(H5T_C_S1);
	space = H5Screate(H5S_SCALAR);
	if (!z || type < 0 || space < 0 ||
	    H5Tset_size(type, utf8 ? H5T_VARIABLE : len) < 0 ||
	    H5Tset_cset(type, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII) < 0 ||
	    H5Tset_strpad(type, utf8 ? H5T_STR_NULLTERM : H5T_STR_NULLPAD) < 0) {
		rc = z ? -EIO : -ENOMEM;
		goto out;
	}
	attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
	if (attr < 0) {
		rc = -EIO;
		goto out;
	}
	if (H5Awrite(attr, type, utf8 ? (const void *)&z : (const void *)z) < 0) {
		rc = -EIO;
		H5Aclose(attr);
		attr = H5I_INVALID_HID;
		H5Adelete(obj, name); /* nothing half-made */
	}
out:
	if (rc == -EIO)
		h5m_hdf5_error(why, cap);
	if (attr >= 0)
		H5Aclose(attr);
	if (space >= 0)
		H5Sclose(space);
	if (type >= 0)
		H5Tclose(type);
	free(z);
	return rc;
}

/* Writes text[0, len) into existing attribute `attr` of obj, parsed as its type and shape.
 * *changed: whether anything was written (text equal to the attribute's own text writes
 * nothing, whatever the type). Returns 0, -EINVAL, -ENOMEM or -EIO with the reason in why.
 * HDF5 lock. */
static int write_text_attr(hid_t obj, hid_t attr, const char *name, const char *text, size_t len, bool *changed,
                           char *why, size_t cap)
{
	hid_t ft = H5I_INVALID_HID, mt = H5I_INVALID_HID, space = H5I_INVALID_HID;
	char *cur = NULL;
	size_t curlen = 0;
	hssize_t np = 0;
	void *buf = NULL;
	int rank, rc;

	*changed = false;
	if (attr_text(obj, attr, name, &cur, &curlen) == 0 && curlen == len && !memcmp(cur, text, len)) {
		rc = 0;
		goto out;
	}
	ft = H5Aget_type(attr);
	space = H5Aget_space(attr);
	mt = ft < 0 ? H5I_INVALID_HID : H5Tget_class(ft) == H5T_STRING ? H5Tcopy(ft) : H5Tget_native_type(ft, H5T_DIR_DEFAULT);
	np = space < 0 ? -1 : H5Sget_simple_extent_type(space) == H5S_NULL ? 0 : H5Sget_select_npoints(space);
	rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
	if (mt < 0 || np < 0 || rank < 0) {
		rc = -EIO;
		h5m_hdf5_error(why, cap);
		goto out;
	}
	rc = h5m_attrtext_parse(obj, ft, mt, text, len, (size_t)np, (unsigned)rank, &buf, why, cap);
	if (rc)
		goto out;
	if (np > 0) {
		if (H5Awrite(attr, mt, buf) < 0) {
			rc = -EIO;
			h5m_hdf5_error(why, cap);
			goto out;
		}
		*changed = true;
	}
out:
	if (buf)
		h5m_attrtext_free(mt, buf, (size_t)np);
	free(cur);
	if (mt >= 0)
		H5Tclose(mt);
	if (ft >= 0)
		H5Tclose(ft);
	if (space >= 0)
		H5Sclose(space);
	H5Eclear2(H5E_DEFAULT);
	return rc;
}

int h5m_store_xattr_set(struct h5m_store *s, struct h5m_node *n, const char *name, const char *val, size_t len,
                        unsigned flags)
{
	hid_t obj = H5I_INVALID_HID, attr = H5I_INVALID_HID;
	bool changed = false;
	char why[256] = "";
	int rc = 0, exists;

	if (n->type != H5M_NODE_GROUP && n->type != H5M_NODE_DATASET)
		return -ENOTSUP;
	if (!*name) {
		h5m_log(H5M_LOG_WARN, "%s: attribute not written: 'user.' names no attribute", node_path(n));
		return -EINVAL;
	}
	/* h5py decodes attribute names as UTF-8, and PyTables 3.7 crashed on one that was not. */
	if (!h5m_attrtext_is_utf8(name, strlen(name))) {
		h5m_log(H5M_LOG_WARN, "%s: attribute not written: its name is not UTF-8", node_path(n));
		return -EINVAL;
	}
	if (len > H5M_XATTR_MAX) {
		h5m_log(H5M_LOG_WARN, "%s: attribute '%s' not written: %zu bytes of text (at most %zu)", node_path(n), name,
		        len, (size_t)H5M_XATTR_MAX);
		return -E2BIG;
	}
	h5m_hdf5_lock();
	if (!s->rw) {
		rc = -EROFS;
		goto out;
	}
	if (__atomic_load_n(&n->gone, __ATOMIC_ACQUIRE)) {
		rc = -ENOENT; /* deleted through the mount while open: nothing to write into */
		goto out;
	}
	obj = open_object(s, n);
	exists = obj < 0 ? -1 : H5Aexists(obj, name);
	if (exists < 0) {
		rc = -EIO;
		h5m_hdf5_error(why, sizeof(why));
	} else if (exists && (flags & H5M_XATTR_CREATE)) {
		rc = -EEXIST;
	} else if (!exists && (flags & H5M_XATTR_REPLACE)) {
		rc = -ENODATA;
	} else if (!exists) {
		rc = create_text_attr(obj, name, val, len, why, sizeof(why));
		changed = rc == 0;
	} else {
		attr = H5Aopen(obj, name, H5P_DEFAULT);
		if (attr < 0) {
			rc = -EIO;
			h5m_hdf5_error(why, sizeof(why));
		} else {
			rc = write_text_attr(obj, attr, name, val, len, &changed, why, sizeof(why));
		}
	}
	if (rc == -EINVAL || rc == -E2BIG || rc == -EIO)
		h5m_log(H5M_LOG_WARN, "%s: attribute '%s' not written (%s): %s", node_path(n), name, strerror(-rc), why);
	if (attr >= 0)
		H5Aclose(attr);
	attr = H5I_INVALID_HID;
	if (!rc && changed)
		rc = commit_locked(s, true);
out:
	H5Eclear2(H5E_DEFAULT);
	if (obj >= 0)
		H5Oclose(obj);
	h5m_hdf5_unlock();
	return rc;
}

int h5m_store_xattr_remove(struct h5m_store *s, struct h5m_node *n, const char *name)
{
	hid_t obj = H5I_INVALID_HID;
	char why[256];
	int rc = 0, exists;

	if (n->type != H5M_NODE_GROUP && n->type != H5M_NODE_DATASET)
		return -ENODATA;
	h5m_hdf5_lock();
	if (!s->rw) {
		rc = -EROFS;
		goto out;
	}
	obj = open_object(s, n);
	exists = obj < 0 || !*name ? -1 : H5Aexists(obj, name);
	if (exists == 0 || !*name || __atomic_load_n(&n->gone, __ATOMIC_ACQUIRE)) {
		rc = -ENODATA;
	} else if (exists < 0 || H5Adelete(obj, name) < 0) {
		h5m_hdf5_error(why, sizeof(why));
		h5m_log(H5M_LOG_WARN, "%s: attribute '%s' not removed: %s", node_path(n), name, why);
		rc = -EIO;
	} else {
		rc = commit_locked(s, true);
	}
out:
	H5Eclear2(H5E_DEFAULT);
	if (obj >= 0)
		H5Oclose(obj);
	h5m_hdf5_unlock();
	return rc;
}

/* ---- writes ---- */

/* Logs and maps the failure of `what` on ds (may be NULL): ENOSPC when the file system said so. */
int h5m_store_write_failure(struct h5m_store *s, struct h5m_dataset *ds, const char *what)
{
	char why[256];
	int e = h5m_jvfd_take_error(s->fid);

	h5m_hdf5_error(why, sizeof(why));
	if (e == ENOSPC || e == EDQUOT) {
		h5m_log(H5M_LOG_ERR, "%s%s%s failed: %s", ds ? ds->path : "", ds ? ": " : "", what, strerror(e));
		return -ENOSPC;
	}
	h5m_log(H5M_LOG_ERR, "%s%s%s failed: %s", ds ? ds->path : "", ds ? ": " : "", what, e ? strerror(e) : why);
	return -EIO;
}

size_t h5m_store_uncommitted(struct h5m_store *s)
{
	size_t n;

	if (!s->rw)
		return 0;
	h5m_hdf5_lock();
	n = h5m_jvfd_held_bytes(s->fid);
	h5m_hdf5_unlock();
	return n;
}

/* After a commit: times set through the mount stay kept only if the commit wrote nothing
 * (the file's mtime did not move). HDF5 lock. */
static void times_check(struct h5m_store *s)
{
	struct stat st;

	if (s->times_kept && (fstat(s->fd, &st) < 0 || st.st_mtim.tv_sec != s->kept[1].tv_sec ||
	                      st.st_mtim.tv_nsec != s->kept[1].tv_nsec))
		s->times_kept = false;
}

/* Commits (see h5m_store_commit). Caller holds the HDF5 lock. */
static int commit_locked(struct h5m_store *s, bool durable)
{
	int rc = 0;

	h5m_jvfd_set_durable(s->fid, durable);
	if (H5Fflush(s->fid, H5F_SCOPE_GLOBAL) < 0)
		rc = h5m_store_write_failure(s, NULL, "committing to the HDF5 file");
	times_check(s);
	return rc;
}

int h5m_store_commit(struct h5m_store *s, bool durable)
{
	int rc;

	if (!s->rw)
		return 0;
	h5m_hdf5_lock();
	rc = commit_locked(s, durable);
	h5m_hdf5_unlock();
	return rc;
}


/* ---- the namespace: find, list, mkdir, rmdir, unlink, symlink, rename ---- */

static const char *const view_suffix[H5M_NVIEWS] = { "", ".npy", ".shape", ".offsets" };

const char *h5m_store_view_suffix(enum h5m_view view)
{
	return (unsigned)view < H5M_NVIEWS ? view_suffix[view] : "";
}

bool h5m_store_shows(const struct h5m_node *n, enum h5m_view view)
{
	if (!h5m_store_has_view(n, view) || __atomic_load_n(&n->gone, __ATOMIC_ACQUIRE))
		return false;
	return n->type != H5M_NODE_DATASET || (__atomic_load_n(&n->shown, __ATOMIC_ACQUIRE) & (1u << view));
}

unsigned h5m_store_nlink(const struct h5m_node *n)
{
	switch (n->type) {
	case H5M_NODE_GROUP:
		return 2;
	case H5M_NODE_SOFTLINK:
		return 1;
	case H5M_NODE_DATASET:
		if (__atomic_load_n(&n->gone, __ATOMIC_ACQUIRE))
			return 0;
		return (unsigned)__builtin_popcount(__atomic_load_n(&n->shown, __ATOMIC_ACQUIRE));
	}
	return 1;
}

/* Index of entry `name` in dir's entries, or -1. Namespace lock held. */
static ssize_t ent_index(const struct h5m_node *dir, const char *name)
{
	struct h5m_dirent key = { .name = (char *)name };
	const struct h5m_dirent *hit;

	if (!dir->nents)
		return -1;
	hit = bsearch(&key, dir->ents, dir->nents, sizeof(key), dirent_cmp);
	return hit ? hit - dir->ents : -1;
}

/* Entry `name` of dir: its index (returned), node and view; -ENOENT when there is none.
 * Namespace lock held. */
static ssize_t ent_get(struct h5m_store *s, const struct h5m_node *dir, const char *name, struct h5m_node **n,
                       enum h5m_view *view)
{
	ssize_t i = ent_index(dir, name);

	if (i < 0)
		return -ENOENT;
	*n = h5m_store_node(s, dir->ents[i].node);
	*view = dir->ents[i].view;
	return i;
}

int h5m_store_find(struct h5m_store *s, struct h5m_node *dir, const char *name, uint32_t *node,
                   enum h5m_view *view)
{
	ssize_t i;
	int rc;

	if (dir->type != H5M_NODE_GROUP)
		return -ENOTDIR;
	pthread_rwlock_rdlock(&s->ns);
	rc = ensure_listed(s, dir);
	if (!rc) {
		i = ent_index(dir, name);
		if (i < 0) {
			rc = -ENOENT;
		} else {
			*node = dir->ents[i].node;
			*view = dir->ents[i].view;
		}
	}
	pthread_rwlock_unlock(&s->ns);
	return rc;
}

int h5m_store_list_each(struct h5m_store *s, struct h5m_node *dir, size_t from, h5m_store_list_fn fn, void *ctx)
{
	int rc;

	if (dir->type != H5M_NODE_GROUP)
		return -ENOTDIR;
	pthread_rwlock_rdlock(&s->ns);
	rc = ensure_listed(s, dir);
	for (size_t i = from; !rc && fn && i < dir->nents; i++) {
		const struct h5m_dirent *d = &dir->ents[i];

		if (fn(ctx, i, d->name, h5m_store_node(s, d->node), d->view))
			break;
	}
	pthread_rwlock_unlock(&s->ns);
	return rc;
}

/* Removes entry i of dir (namespace write lock). */
static void ent_remove(struct h5m_node *dir, size_t i)
{
	free(dir->ents[i].name);
	memmove(&dir->ents[i], &dir->ents[i + 1], (dir->nents - i - 1) * sizeof(*dir->ents));
	dir->nents--;
}

/* Removes every entry of node `idx` from dir (namespace write lock). */
static void ent_remove_node(struct h5m_node *dir, uint32_t idx)
{
	for (size_t i = dir->nents; i-- > 0;)
		if (dir->ents[i].node == idx)
			ent_remove(dir, i);
}

/* Inserts (name, node, view) into dir's sorted entries; takes name. Returns 0 or -ENOMEM
 * (name freed). Namespace write lock. */
static int ent_insert(struct h5m_node *dir, char *name, uint32_t node, enum h5m_view view)
{
	struct h5m_dirent *ne;
	size_t at = 0;

	if (!name)
		return -ENOMEM;
	ne = realloc(dir->ents, (dir->nents + 1) * sizeof(*ne));
	if (!ne) {
		free(name);
		return -ENOMEM;
	}
	dir->ents = ne;
	while (at < dir->nents && strcmp(ne[at].name, name) < 0)
		at++;
	memmove(&ne[at + 1], &ne[at], (dir->nents - at) * sizeof(*ne));
	ne[at] = (struct h5m_dirent){ .name = name, .node = node, .view = view };
	dir->nents++;
	return 0;
}

/* name + suffix, malloc'd, or NULL. */
static char *with_suffix(const char *name, size_t len, const char *suffix)
{
	char *p = malloc(len + strlen(suffix) + 1);

	if (p) {
		memcpy(p, name, len);
		strcpy(p + len, suffix);
	}
	return p;
}

/* The dataset node whose HDF5 link in dir is named base[0..len), found through any name of it
 * shown there, or NULL. Namespace lock held. */
static struct h5m_node *dataset_named(struct h5m_store *s, const struct h5m_node *dir, const char *base, size_t len)
{
	for (unsigned v = 0; v < H5M_NVIEWS; v++) {
		char *vn = with_suffix(base, len, view_suffix[v]);
		ssize_t i = vn ? ent_index(dir, vn) : -1;

		free(vn);
		if (i >= 0 && dir->ents[i].view == v) {
			struct h5m_node *n = h5m_store_node(s, dir->ents[i].node);

			if (n->type == H5M_NODE_DATASET)
				return n;
		}
	}
	return NULL;
}

/* The view whose suffix ends `name` (after a non-empty base), OBJ when none; *baselen: the
 * length without it. */
static enum h5m_view suffix_view(const char *name, size_t *baselen)
{
	size_t len = strlen(name);

	for (unsigned v = H5M_VIEW_NPY; v < H5M_NVIEWS; v++) {
		size_t sl = strlen(view_suffix[v]);

		if (len > sl && !strcmp(name + len - sl, view_suffix[v])) {
			*baselen = len - sl;
			return (enum h5m_view)v;
		}
	}
	*baselen = len;
	return H5M_VIEW_OBJ;
}

/* Checks that `name` can be a new name in a directory of the mount and in HDF5. Returns 0,
 * -ENAMETOOLONG, -EINVAL or -EPERM (the text of a dangling link; logged). */
static int check_new_name(const struct h5m_node *dir, const char *name)
{
	if (strlen(name) > NAME_MAX_BYTES) {
		h5m_log(H5M_LOG_WARN, "%s: a new name of %zu bytes refused: names hold at most %d", dir->path,
		        strlen(name), NAME_MAX_BYTES);
		return -ENAMETOOLONG;
	}
	if (!strncmp(name, DANGLING_PREFIX, strlen(DANGLING_PREFIX))) {
		/* Where a dangling symlink's text leads: O_CREAT through the link must make nothing. */
		h5m_log(H5M_LOG_WARN, "%s: new name '%.80s...' refused (EPERM): names starting '%s' are the texts of "
		        "dangling links", dir->path, name, DANGLING_PREFIX);
		return -EPERM;
	}
	if (!name_shown(name) || strchr(name, '/')) {
		h5m_log(H5M_LOG_WARN, "%s: new name '%s' refused: not a name HDF5 and a directory can both hold",
		        dir->path, name);
		return -EINVAL;
	}
	return 0;
}

/* Whether a new object (not a dataset) named `name` in dir would take a name that is, or may
 * become, a view of a dataset there (NAME.npy next to dataset NAME), or the HDF5 link of an
 * object not shown under it. Logs why. Namespace write lock and HDF5 lock held; g is dir's
 * open group. */
static bool name_taken(struct h5m_store *s, const struct h5m_node *dir, hid_t g, const char *name)
{
	size_t bl;
	enum h5m_view v = suffix_view(name, &bl);
	htri_t ex;

	if (v != H5M_VIEW_OBJ && dataset_named(s, dir, name, bl)) {
		h5m_log(H5M_LOG_WARN, "%s/%s: refused (EEXIST): the name is a view of dataset '%.*s'", dir->path, name,
		        (int)bl, name);
		return true;
	}
	ex = H5Lexists(g, name, H5P_DEFAULT);
	H5Eclear2(H5E_DEFAULT);
	if (ex != 0) {
		h5m_log(H5M_LOG_WARN, "%s/%s: refused (EEXIST): the group has a link of this name that is not shown "
		        "(a dataset whose other names are hidden, or an object h5mount cannot show)", dir->path, name);
		return true;
	}
	return false;
}

/* Link creation properties of names made through the mount: UTF-8 names, as h5py makes them.
 * HDF5 lock. */
static hid_t new_lcpl(void)
{
	hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);

	if (lcpl >= 0)
		H5Pset_char_encoding(lcpl, H5T_CSET_UTF8);
	return lcpl;
}

/* Hard links of object `name` in g (H5Oget_info rc), 0 when unknown. HDF5 lock. */
static unsigned hard_links(hid_t g, const char *name)
{
	H5O_info_t oi;

	if (H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
		H5Eclear2(H5E_DEFAULT);
		return 0;
	}
	return oi.rc;
}

/* Starts a namespace operation: write-locks the namespace, checks the store is writable and
 * dir a group, lists it, takes the HDF5 lock and opens dir's group into *g. Returns 0 (then
 * op_end must follow) or -errno (nothing held). */
static int op_begin(struct h5m_store *s, struct h5m_node *dir, hid_t *g)
{
	char why[256];
	int rc;

	*g = H5I_INVALID_HID;
	if (!s->rw)
		return -EROFS;
	if (dir->type != H5M_NODE_GROUP)
		return -ENOTDIR;
	pthread_rwlock_wrlock(&s->ns);
	rc = ensure_listed(s, dir);
	if (rc) {
		pthread_rwlock_unlock(&s->ns);
		return rc;
	}
	h5m_hdf5_lock();
	*g = H5Gopen2(s->fid, dir->path, H5P_DEFAULT); /* by path: see list_locked */
	if (*g < 0) {
		h5m_hdf5_error(why, sizeof(why));
		h5m_log(H5M_LOG_ERR, "%s: cannot open group: %s", dir->path, why);
		h5m_hdf5_unlock();
		pthread_rwlock_unlock(&s->ns);
		return -EIO;
	}
	return 0;
}

/* Ends a namespace operation begun by op_begin (g2: a second group or invalid). */
static void op_end(struct h5m_store *s, hid_t g, hid_t g2)
{
	if (g2 >= 0)
		H5Oclose(g2);
	if (g >= 0)
		H5Oclose(g);
	H5Eclear2(H5E_DEFAULT);
	h5m_hdf5_unlock();
	pthread_rwlock_unlock(&s->ns);
}

/* Logs the failure of HDF5 step `what` on `path` and returns -EIO. HDF5 lock. */
static int op_failed(const char *what, const char *dirpath, const char *name)
{
	char why[256];

	h5m_hdf5_error(why, sizeof(why));
	h5m_log(H5M_LOG_ERR, "%s%s%s: %s failed: %s", dirpath, strcmp(dirpath, "/") ? "/" : "", name, what, why);
	return -EIO;
}

/* Lists group n with the HDF5 lock already held (namespace write lock held). */
static int listed_locked(struct h5m_store *s, struct h5m_node *n)
{
	return n->listed ? 0 : list_locked(s, n);
}

int h5m_store_mkdir(struct h5m_store *s, struct h5m_node *dir, const char *name, uint32_t *node)
{
	hid_t g, lcpl = H5I_INVALID_HID, gid = H5I_INVALID_HID;
	struct h5m_node *n = NULL;
	H5O_info_t oi;
	int64_t idx;
	int rc = op_begin(s, dir, &g);

	if (rc)
		return rc;
	rc = check_new_name(dir, name);
	if (!rc && ent_index(dir, name) >= 0)
		rc = -EEXIST;
	if (!rc && name_taken(s, dir, g, name))
		rc = -EEXIST;
	if (rc)
		goto out;
	lcpl = new_lcpl();
	gid = H5Gcreate2(g, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
	if (gid < 0 || H5Oget_info2(gid, &oi, H5O_INFO_BASIC) < 0) {
		rc = op_failed("creating the group", dir->path, name);
		goto out;
	}
	rc = commit_locked(s, true);
	if (rc)
		goto out;
	n = calloc(1, sizeof(*n));
	if (!n || !(n->path = join_path(dir->path, name))) {
		rc = -ENOMEM;
		goto out;
	}
	n->type = H5M_NODE_GROUP;
	n->addr = oi.addr;
	n->parent = dir->idx;
	n->listed = true; /* new and empty */
	idx = add_node(s, n);
	if (idx < 0) {
		rc = (int)idx;
		goto out;
	}
	*node = n->idx;
	n = NULL;
	if (amap_put(s, oi.addr, idx) || ent_insert(dir, strdup(name), (uint32_t)idx, H5M_VIEW_OBJ))
		rc = -ENOMEM;
out:
	if (n)
		free(n->path);
	free(n);
	if (gid >= 0)
		H5Gclose(gid);
	if (lcpl >= 0)
		H5Pclose(lcpl);
	op_end(s, g, H5I_INVALID_HID);
	return rc;
}

int h5m_store_rmdir(struct h5m_store *s, struct h5m_node *dir, const char *name)
{
	struct h5m_node *n;
	enum h5m_view view;
	H5G_info_t gi;
	hid_t g, cg = H5I_INVALID_HID;
	ssize_t i;
	int rc = op_begin(s, dir, &g);

	if (rc)
		return rc;
	i = ent_get(s, dir, name, &n, &view);
	if (i < 0) {
		rc = (int)i;
		goto out;
	}
	if (n->type != H5M_NODE_GROUP) {
		rc = -ENOTDIR;
		goto out;
	}
	rc = listed_locked(s, n);
	if (rc)
		goto out;
	if (n->nents) {
		rc = -ENOTEMPTY;
		goto out;
	}
	cg = H5Gopen2(s->fid, n->path, H5P_DEFAULT);
	if (cg < 0 || H5Gget_info(cg, &gi) < 0) {
		rc = op_failed("reading the group", dir->path, name);
		goto out;
	}
	if (gi.nlinks) {
		h5m_log(H5M_LOG_WARN, "%s: rmdir refused (ENOTEMPTY): it holds %llu links h5mount does not show", n->path,
		        (unsigned long long)gi.nlinks);
		rc = -ENOTEMPTY;
		goto out;
	}
	if (hard_links(g, name) > 1) {
		h5m_log(H5M_LOG_WARN, "%s: rmdir refused (EPERM): the group has several hard links", n->path);
		rc = -EPERM;
		goto out;
	}
	if (H5Ldelete(g, name, H5P_DEFAULT) < 0) {
		rc = op_failed("deleting the group", dir->path, name);
		goto out;
	}
	ent_remove(dir, (size_t)i);
	__atomic_store_n(&n->gone, true, __ATOMIC_RELEASE);
	rc = commit_locked(s, true);
out:
	op_end(s, g, cg);
	return rc;
}

int h5m_store_unlink(struct h5m_store *s, struct h5m_node *dir, const char *name, struct h5m_unlinked *out)
{
	struct h5m_node *n;
	enum h5m_view view;
	uint8_t rest;
	hid_t g;
	ssize_t i;
	char *base = NULL;
	int rc = op_begin(s, dir, &g);

	if (rc)
		return rc;
	*out = (struct h5m_unlinked){ 0 };
	i = ent_get(s, dir, name, &n, &view);
	if (i < 0) {
		rc = (int)i;
		goto out;
	}
	out->node = n->idx;
	out->view = view;
	if (n->type == H5M_NODE_GROUP) {
		rc = -EISDIR;
		goto out;
	}
	if (n->type == H5M_NODE_SOFTLINK) {
		if (H5Ldelete(g, name, H5P_DEFAULT) < 0) {
			rc = op_failed("deleting the link", dir->path, name);
			goto out;
		}
		ent_remove(dir, (size_t)i);
		__atomic_store_n(&n->gone, true, __ATOMIC_RELEASE);
		out->deleted = true;
		rc = commit_locked(s, true);
		goto out;
	}
	base = with_suffix(name, strlen(name) - strlen(view_suffix[view]), "");
	if (!base) {
		rc = -ENOMEM;
		goto out;
	}
	if (hard_links(g, base) > 1) {
		h5m_log(H5M_LOG_WARN, "%s: unlink refused (EPERM): the dataset has several hard links", n->ds->path);
		rc = -EPERM;
		goto out;
	}
	rest = (uint8_t)(n->shown & ~(1u << view));
	if (!rest) {
		if (H5Ldelete(g, base, H5P_DEFAULT) < 0) {
			rc = op_failed("deleting the dataset", dir->path, base);
			goto out;
		}
		out->deleted = true;
		h5m_log(H5M_LOG_INFO, "%s: deleted (its last name was removed)", n->ds->path);
	}
	ent_remove(dir, (size_t)i);
	__atomic_store_n(&n->shown, rest, __ATOMIC_RELEASE);
	if (out->deleted) {
		__atomic_store_n(&n->gone, true, __ATOMIC_RELEASE);
		rc = commit_locked(s, true);
	}
out:
	free(base);
	op_end(s, g, H5I_INVALID_HID);
	return rc;
}

void h5m_store_set_layout(struct h5m_store *s, const struct h5m_layout *lay)
{
	s->layout = *lay;
}

void h5m_store_drop_replaced(struct h5m_store *s, struct h5m_node *n)
{
	(void)s;
	if (n->type != H5M_NODE_DATASET || !__atomic_load_n(&n->successor, __ATOMIC_ACQUIRE))
		return;
	h5m_hdf5_lock();
	if (n->ds->did >= 0) {
		H5Dclose(n->ds->did);
		n->ds->did = H5I_INVALID_HID;
	}
	h5m_hdf5_unlock();
}

struct h5m_node *h5m_store_current(struct h5m_store *s, struct h5m_node *n)
{
	uint32_t next;

	/* Successors only ever point at nodes made later: the walk ends. */
	while (n && n->type == H5M_NODE_DATASET && (next = __atomic_load_n(&n->successor, __ATOMIC_ACQUIRE)) != 0)
		n = h5m_store_node(s, next);
	return n;
}

/* Adds a node for dataset `base` of group g (path `path`) just made through the mount,
 * showing names `shown`. Returns its index or -errno (logged). Namespace write + HDF5 lock. */
static int64_t new_dataset_node(struct h5m_store *s, hid_t g, const char *base, const char *path, uint8_t shown,
                                bool untyped)
{
	struct h5m_node *n = calloc(1, sizeof(*n));
	H5O_info_t oi;
	char why[256];
	int64_t idx;

	if (!n)
		return -ENOMEM;
	if (H5Oget_info_by_name2(g, base, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
		free(n);
		return op_failed("reading the new dataset", path, "");
	}
	n->type = H5M_NODE_DATASET;
	n->addr = oi.addr;
	n->shown = shown;
	n->untyped = untyped;
	n->ds = dataset_open(s, g, base, path, why, sizeof(why));
	if (!n->ds) {
		h5m_log(H5M_LOG_ERR, "%s: the new dataset cannot be opened: %s", path, why);
		free(n);
		return -EIO;
	}
	idx = add_node(s, n);
	if (idx < 0) {
		dataset_free(n->ds);
		free(n);
		return idx;
	}
	if (amap_put(s, oi.addr, idx))
		return -ENOMEM;
	return idx;
}

int h5m_store_create(struct h5m_store *s, struct h5m_node *dir, const char *name, bool excl,
                     struct h5m_created *out)
{
	hid_t g, type = H5I_INVALID_HID, did = H5I_INVALID_HID;
	struct h5m_node *d;
	enum h5m_view view;
	char why[256], *base = NULL, *path = NULL;
	size_t bl;
	ssize_t i;
	int64_t idx;
	int rc = op_begin(s, dir, &g);

	if (rc)
		return rc;
	*out = (struct h5m_created){ 0 };
	rc = check_new_name(dir, name);
	if (rc)
		goto out;
	view = suffix_view(name, &bl);
	out->view = view;
	i = ent_index(dir, name);
	if (i >= 0) {
		d = h5m_store_node(s, dir->ents[i].node);
		if (excl || d->type != H5M_NODE_DATASET || dir->ents[i].view != view) {
			rc = -EEXIST;
			goto out;
		}
		out->node = d->idx;
		out->existed = true;
		goto out;
	}
	if (view == H5M_VIEW_OFFSETS) {
		h5m_log(H5M_LOG_WARN, "%s/%s: refused (EINVAL): .offsets names are views of variable-length datasets, "
		        "which are not made through the mount", dir->path, name);
		rc = -EINVAL;
		goto out;
	}
	base = with_suffix(name, bl, "");
	if (!base) {
		rc = -ENOMEM;
		goto out;
	}
	d = dataset_named(s, dir, base, bl);
	if (d) {
		/* A hidden name of a dataset shown under another: show it again. */
		if (!h5m_store_has_view(d, view)) {
			h5m_log(H5M_LOG_WARN, "%s/%s: refused (EINVAL): dataset '%s' has no such view", dir->path, name,
			        base);
			rc = -EINVAL;
			goto out;
		}
		rc = ent_insert(dir, strdup(name), d->idx, view);
		if (rc)
			goto out;
		__atomic_store_n(&d->shown, (uint8_t)(d->shown | 1u << view), __ATOMIC_RELEASE);
		out->node = d->idx;
		out->reshown = true;
		goto out;
	}
	/* A new dataset NAME: none of its names may be another object's. */
	for (unsigned v = 0; v < H5M_NVIEWS; v++) {
		char *vn = with_suffix(base, bl, view_suffix[v]);

		if (!vn) {
			rc = -ENOMEM;
			goto out;
		}
		if (ent_index(dir, vn) >= 0) {
			h5m_log(H5M_LOG_WARN, "%s/%s: refused (EEXIST): a dataset '%s' would show '%s', which another object "
			        "of the group is named", dir->path, name, base, vn);
			rc = -EEXIST;
		}
		free(vn);
		if (rc)
			goto out;
	}
	if (name_taken(s, dir, g, base)) {
		rc = -EEXIST;
		goto out;
	}
	path = join_path(dir->path, base);
	type = H5Tcopy(H5T_STD_U8LE);
	if (!path || type < 0) {
		rc = path ? op_failed("making the type", dir->path, base) : -ENOMEM;
		goto out;
	}
	rc = h5m_create_dataset(g, base, type, 0, NULL, 0, &s->layout, &did, why, sizeof(why));
	if (rc) {
		h5m_log(H5M_LOG_ERR, "%s: creating the dataset failed (%s): %s", path, strerror(-rc), why);
		goto out;
	}
	H5Dclose(did);
	did = H5I_INVALID_HID;
	idx = new_dataset_node(s, g, base, path, (uint8_t)(1u << view), true);
	if (idx < 0) {
		rc = (int)idx;
		H5Ldelete(g, base, H5P_DEFAULT);
		goto out;
	}
	rc = ent_insert(dir, strdup(name), (uint32_t)idx, view);
	if (rc) {
		__atomic_store_n(&h5m_store_node(s, (uint64_t)idx)->gone, true, __ATOMIC_RELEASE);
		H5Ldelete(g, base, H5P_DEFAULT);
		goto out;
	}
	out->node = (uint32_t)idx;
	h5m_log(H5M_LOG_INFO, "%s: created through '%s' (untyped: uint8 until a .npy header types it)", path, name);
	rc = commit_locked(s, true);
out:
	if (did >= 0)
		H5Dclose(did);
	if (type >= 0)
		H5Tclose(type);
	free(path);
	free(base);
	op_end(s, g, H5I_INVALID_HID);
	return rc;
}

/* The group node whose directory holds the HDF5 path `path` (of an object below the root),
 * walking the listed entries from the root. NULL when a component is not a shown group.
 * Namespace write lock and HDF5 lock held. */
static struct h5m_node *dir_of(struct h5m_store *s, const char *path)
{
	struct h5m_node *d = h5m_store_node(s, 0);
	const char *p = path, *slash;
	char comp[NAME_MAX_BYTES + 1];

	while (*p == '/')
		p++;
	while ((slash = strchr(p, '/')) != NULL) {
		size_t len = (size_t)(slash - p);
		ssize_t i;

		if (len > NAME_MAX_BYTES || listed_locked(s, d))
			return NULL;
		memcpy(comp, p, len);
		comp[len] = 0;
		i = ent_index(d, comp);
		if (i < 0)
			return NULL;
		d = h5m_store_node(s, d->ents[i].node);
		if (d->type != H5M_NODE_GROUP)
			return NULL;
		p = slash + 1;
	}
	return listed_locked(s, d) ? NULL : d;
}

int h5m_store_retype(struct h5m_store *s, struct h5m_node *n, const char *descr, unsigned trank,
                     const uint64_t *tdims, bool untyped, struct h5m_retyped *out)
{
	hid_t g = H5I_INVALID_HID, type = H5I_INVALID_HID, did = H5I_INVALID_HID;
	struct h5m_node *dir, *nn;
	const char *path, *slash;
	char why[256];
	int64_t idx;
	int rc;

	*out = (struct h5m_retyped){ 0 };
	if (!s->rw)
		return -EROFS;
	pthread_rwlock_wrlock(&s->ns);
	h5m_hdf5_lock();
	if (n->type != H5M_NODE_DATASET || __atomic_load_n(&n->gone, __ATOMIC_ACQUIRE)) {
		rc = -ENOENT;
		goto out;
	}
	path = n->ds->path;
	slash = strrchr(path, '/');
	dir = slash ? dir_of(s, path) : NULL;
	if (!dir) {
		h5m_log(H5M_LOG_ERR, "%s: cannot find the group that shows it", path);
		rc = -EIO;
		goto out;
	}
	out->dir = dir->idx;
	out->base = strdup(slash + 1);
	if (!out->base) {
		rc = -ENOMEM;
		goto out;
	}
	g = H5Gopen2(s->fid, dir->path, H5P_DEFAULT);
	if (g < 0) {
		rc = op_failed("opening the group", dir->path, "");
		goto out;
	}
	if (hard_links(g, out->base) > 1) {
		h5m_log(H5M_LOG_WARN, "%s: a new type refused (EPERM): the dataset has several hard links", path);
		rc = -EPERM;
		goto out;
	}
	rc = h5m_create_type(descr, &type, why, sizeof(why));
	if (rc) {
		h5m_log(H5M_LOG_WARN, "%s: a .npy header of dtype %s refused (%s): %s", path, descr, strerror(-rc), why);
		goto out;
	}
	rc = h5m_create_replace(g, out->base, type, trank, tdims, 0, &s->layout, &did, why, sizeof(why));
	if (rc) {
		h5m_log(H5M_LOG_ERR, "%s: replacing the dataset by one of dtype %s failed (%s): %s", path, descr,
		        strerror(-rc), why);
		goto out;
	}
	H5Dclose(did);
	did = H5I_INVALID_HID;
	idx = new_dataset_node(s, g, out->base, path, __atomic_load_n(&n->shown, __ATOMIC_ACQUIRE), untyped);
	if (idx < 0) {
		rc = (int)idx;
		goto out; /* the file has the new dataset; the next commit keeps it, the old node shows it */
	}
	nn = h5m_store_node(s, (uint64_t)idx);
	for (size_t i = 0; i < dir->nents; i++)
		if (dir->ents[i].node == n->idx)
			dir->ents[i].node = nn->idx;
	__atomic_store_n(&n->successor, nn->idx, __ATOMIC_RELEASE);
	__atomic_store_n(&n->gone, true, __ATOMIC_RELEASE);
	out->node = nn->idx;
	h5m_log(H5M_LOG_INFO, "%s: replaced by a new dataset of dtype %s (attributes kept)", path, descr);
	rc = commit_locked(s, true);
out:
	if (did >= 0)
		H5Dclose(did);
	if (type >= 0)
		H5Tclose(type);
	if (g >= 0)
		H5Gclose(g);
	if (rc) {
		free(out->base);
		out->base = NULL;
	}
	H5Eclear2(H5E_DEFAULT);
	h5m_hdf5_unlock();
	pthread_rwlock_unlock(&s->ns);
	return rc;
}

/* The HDF5 soft link value for symlink text `text` in group `dirpath`: the text's components
 * (without empty and "." ones) relative to the group when it never climbs, else the absolute
 * path it names. Returns malloc'd text, NULL with *err -EPERM (absolute, or climbing above the
 * root: logged) or -ENOMEM. */
static char *soft_value(const char *dirpath, const char *name, const char *text, int *err)
{
	size_t cap = strlen(dirpath) + strlen(text) + 3, len = 0;
	char *out = malloc(cap);
	bool climbs = false;
	const char *t;

	*err = -ENOMEM;
	if (!out)
		return NULL;
	if (text[0] == '/') {
		h5m_log(H5M_LOG_WARN, "%s%s%s: symlink to absolute path '%s' refused (EPERM): an HDF5 soft link names an "
		        "object of the file; use a relative path", dirpath, strcmp(dirpath, "/") ? "/" : "", name, text);
		*err = -EPERM;
		free(out);
		return NULL;
	}
	for (t = text; *t; t += strcspn(t, "/"), t += *t == '/')
		if (!strncmp(t, "..", 2) && (t[2] == '/' || !t[2]))
			climbs = true;
	if (climbs) {
		strcpy(out, dirpath);
		len = strlen(out);
		if (len == 1)
			len = 0; /* the root: "" + "/a" */
	}
	for (t = text; *t; t += *t == '/') {
		size_t cl = strcspn(t, "/");

		if (cl == 2 && !strncmp(t, "..", 2)) {
			if (!len) {
				h5m_log(H5M_LOG_WARN, "%s%s%s: symlink to '%s' refused (EPERM): it climbs above the mount's "
				        "root", dirpath, strcmp(dirpath, "/") ? "/" : "", name, text);
				*err = -EPERM;
				free(out);
				return NULL;
			}
			while (len && out[len - 1] != '/')
				len--;
			if (len)
				len--; /* the '/' before the last component */
		} else if (cl && !(cl == 1 && *t == '.')) {
			if (len || climbs)
				out[len++] = '/';
			memcpy(out + len, t, cl);
			len += cl;
		}
		t += cl;
	}
	if (!len)
		out[len++] = climbs ? '/' : '.';
	out[len] = 0;
	*err = 0;
	return out;
}

int h5m_store_symlink(struct h5m_store *s, struct h5m_node *dir, const char *name, const char *text,
                      uint32_t *node)
{
	struct h5m_node *n = NULL;
	hid_t g, lcpl = H5I_INVALID_HID;
	char *val = NULL;
	int64_t idx;
	int rc = op_begin(s, dir, &g);

	if (rc)
		return rc;
	rc = check_new_name(dir, name);
	if (!rc && ent_index(dir, name) >= 0)
		rc = -EEXIST;
	if (!rc && name_taken(s, dir, g, name))
		rc = -EEXIST;
	if (!rc && strlen(text) > LINK_TEXT_MAX)
		rc = -ENAMETOOLONG;
	if (!rc && !(val = soft_value(dir->path, name, text, &rc)))
		goto out;
	if (rc)
		goto out;
	lcpl = new_lcpl();
	if (H5Lcreate_soft(val, g, name, lcpl, H5P_DEFAULT) < 0) {
		rc = op_failed("creating the soft link", dir->path, name);
		goto out;
	}
	rc = commit_locked(s, true);
	if (rc)
		goto out;
	n = calloc(1, sizeof(*n));
	if (!n || !(n->target = strdup(text))) {
		rc = -ENOMEM;
		goto out;
	}
	n->type = H5M_NODE_SOFTLINK;
	idx = add_node(s, n);
	if (idx < 0) {
		rc = (int)idx;
		goto out;
	}
	n = NULL;
	*node = (uint32_t)idx;
	rc = ent_insert(dir, strdup(name), (uint32_t)idx, H5M_VIEW_OBJ);
out:
	if (n)
		free(n->target);
	free(n);
	free(val);
	if (lcpl >= 0)
		H5Pclose(lcpl);
	op_end(s, g, H5I_INVALID_HID);
	return rc;
}

/* Keeps `old` (a dataset path text a reader may be using) until close. Returns 0 or -ENOMEM
 * (then old is leaked, which is still safe). Namespace write lock. */
static int retire(struct h5m_store *s, char *old)
{
	if (s->nretired == s->retired_cap) {
		size_t cap = s->retired_cap ? s->retired_cap * 2 : 16;
		char **nr = realloc(s->retired, cap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		s->retired = nr;
		s->retired_cap = cap;
	}
	s->retired[s->nretired++] = old;
	return 0;
}

/* `path` with prefix `from` (a whole component path) replaced by `to`, malloc'd; NULL when
 * path is not `from` or below it, or out of memory. */
static char *repath_one(const char *path, const char *from, const char *to)
{
	size_t fl = strlen(from);

	if (!path || strncmp(path, from, fl) || (path[fl] && path[fl] != '/'))
		return NULL;
	return with_suffix(to, strlen(to), path + fl);
}

/* After group or dataset `from` became `to`: every group path, first path and dataset path at
 * or below it follows. Namespace write lock + HDF5 lock. */
static void repath(struct h5m_store *s, const char *from, const char *to)
{
	struct h5m_node *n;
	char *np;

	for (uint64_t i = 0; (n = h5m_store_node(s, i)); i++) {
		if (n->type == H5M_NODE_GROUP && (np = repath_one(n->path, from, to))) {
			free(n->path);
			n->path = np;
		} else if (n->type == H5M_NODE_DATASET && (np = repath_one(n->ds->path, from, to))) {
			char *old = n->ds->path;

			__atomic_store_n(&n->ds->path, np, __ATOMIC_RELEASE);
			retire(s, old);
		}
	}
	for (size_t i = 0; i < s->nfirsts; i++)
		if ((np = repath_one(s->firsts[i].path, from, to))) {
			free(s->firsts[i].path);
			s->firsts[i].path = np;
		}
}

/* Whether group node `g` is `top` or lies below it. Namespace lock. */
static bool below(struct h5m_store *s, const struct h5m_node *g, const struct h5m_node *top)
{
	for (unsigned hops = 0; hops < 1u << 20; hops++) {
		if (g == top)
			return true;
		if (g->idx == 0)
			return false;
		g = h5m_store_node(s, g->parent);
	}
	return true; /* a cycle: refuse */
}

int h5m_store_rename(struct h5m_store *s, struct h5m_node *dir, const char *name, struct h5m_node *newdir,
                     const char *newname, unsigned flags, struct h5m_renamed *out)
{
	struct h5m_node *n, *t = NULL;
	enum h5m_view view, nv;
	hid_t g, g2 = H5I_INVALID_HID, lcpl = H5I_INVALID_HID;
	size_t obl, nbl;
	ssize_t i;
	char *obase = NULL, *nbase = NULL, *oldpath = NULL, *newpath = NULL;
	htri_t ex;
	int rc = op_begin(s, dir, &g);

	if (rc)
		return rc;
	*out = (struct h5m_renamed){ .replaced = -1 };
	if (newdir->type != H5M_NODE_GROUP) {
		rc = -ENOTDIR;
		goto out;
	}
	rc = listed_locked(s, newdir);
	if (rc)
		goto out;
	i = ent_get(s, dir, name, &n, &view);
	if (i < 0) {
		rc = (int)i;
		goto out;
	}
	out->node = n->idx;
	out->view = view;
	rc = check_new_name(newdir, newname);
	if (rc)
		goto out;
	/* A dataset's name keeps its view's suffix; other objects take the name whole. */
	obl = strlen(name) - strlen(view_suffix[view]);
	nv = suffix_view(newname, &nbl);
	if (n->type == H5M_NODE_DATASET && nv != view) {
		h5m_log(H5M_LOG_WARN, "%s: rename to '%s' refused (EINVAL): a %s name keeps its suffix", n->ds->path,
		        newname, view == H5M_VIEW_OBJ ? "raw" : view_suffix[view]);
		rc = -EINVAL;
		goto out;
	}
	if (n->type != H5M_NODE_DATASET)
		nbl = strlen(newname);
	obase = with_suffix(name, obl, "");
	nbase = with_suffix(newname, nbl, "");
	if (!obase || !nbase) {
		rc = -ENOMEM;
		goto out;
	}
	if (n->type == H5M_NODE_SOFTLINK && newdir != dir) {
		h5m_log(H5M_LOG_INFO, "%s/%s: a symlink moves to another directory as a copy (EXDEV): its text is "
		        "relative to its directory", dir->path, name);
		rc = -EXDEV;
		goto out;
	}
	if (n->type == H5M_NODE_GROUP && below(s, newdir, n)) {
		rc = -EINVAL;
		goto out;
	}
	/* What the new name names now. */
	if (n->type == H5M_NODE_DATASET)
		t = dataset_named(s, newdir, nbase, nbl);
	if (!t) {
		ssize_t k = ent_index(newdir, nbase);

		if (k >= 0 && newdir->ents[k].view == H5M_VIEW_OBJ)
			t = h5m_store_node(s, newdir->ents[k].node);
		else if (k >= 0 || (n->type != H5M_NODE_DATASET && dataset_named(s, newdir, nbase, nbl))) {
			h5m_log(H5M_LOG_WARN, "%s/%s: rename onto it refused (EEXIST): the name is a view of a dataset",
			        newdir->path, newname);
			rc = -EEXIST;
			goto out;
		}
	}
	if (t == n && !strcmp(obase, nbase) && dir == newdir)
		goto out; /* another name of the same object: nothing to do */
	g2 = newdir == dir ? H5I_INVALID_HID : H5Gopen2(s->fid, newdir->path, H5P_DEFAULT);
	if (newdir != dir && g2 < 0) {
		rc = op_failed("opening the group", newdir->path, "");
		goto out;
	}
	if (!t) {
		ex = H5Lexists(g2 >= 0 ? g2 : g, nbase, H5P_DEFAULT);
		H5Eclear2(H5E_DEFAULT);
		if (ex != 0) {
			h5m_log(H5M_LOG_WARN, "%s/%s: rename onto it refused (EEXIST): the group has a link of this name "
			        "that is not shown", newdir->path, nbase);
			rc = -EEXIST;
			goto out;
		}
	} else {
		if (flags & H5M_RENAME_NOREPLACE)
			rc = -EEXIST;
		else if (n->type == H5M_NODE_GROUP && t->type != H5M_NODE_GROUP)
			rc = -ENOTDIR;
		else if (n->type != H5M_NODE_GROUP && t->type == H5M_NODE_GROUP)
			rc = -EISDIR;
		else if (t == n)
			rc = -EPERM; /* two hard links of one object: refused below anyway */
		else if (t->type == H5M_NODE_GROUP && (rc = listed_locked(s, t)) == 0 && t->nents)
			rc = -ENOTEMPTY;
		if (!rc && t->type != H5M_NODE_SOFTLINK && hard_links(g2 >= 0 ? g2 : g, nbase) > 1) {
			h5m_log(H5M_LOG_WARN, "%s/%s: rename onto it refused (EPERM): the object has several hard links",
			        newdir->path, nbase);
			rc = -EPERM;
		}
		if (rc)
			goto out;
	}
	if (n->type != H5M_NODE_SOFTLINK && hard_links(g, obase) > 1) {
		h5m_log(H5M_LOG_WARN, "%s/%s: rename refused (EPERM): the object has several hard links", dir->path, obase);
		rc = -EPERM;
		goto out;
	}
	/* The moved dataset's other names must not land on names other objects show. */
	if (n->type == H5M_NODE_DATASET) {
		for (unsigned v = 0; v < H5M_NVIEWS && !rc; v++) {
			char *vn;
			ssize_t k;

			if (!(n->shown & (1u << v)))
				continue;
			vn = with_suffix(nbase, nbl, view_suffix[v]);
			if (!vn) {
				rc = -ENOMEM;
				break;
			}
			if (strlen(vn) > NAME_MAX_BYTES) {
				rc = -ENAMETOOLONG;
			} else if ((k = ent_index(newdir, vn)) >= 0 && newdir->ents[k].node != n->idx &&
			           (!t || newdir->ents[k].node != t->idx)) {
				h5m_log(H5M_LOG_WARN, "%s/%s: rename refused (EEXIST): another object has this name",
				        newdir->path, vn);
				rc = -EEXIST;
			}
			free(vn);
		}
		if (rc)
			goto out;
	}
	oldpath = join_path(dir->path, obase);
	newpath = join_path(newdir->path, nbase);
	lcpl = new_lcpl();
	if (!oldpath || !newpath) {
		rc = -ENOMEM;
		goto out;
	}
	/* One commit: the replaced link deleted and the moved one in its place, or neither. */
	if (t && H5Ldelete(g2 >= 0 ? g2 : g, nbase, H5P_DEFAULT) < 0) {
		rc = op_failed("deleting the replaced object", newdir->path, nbase);
		goto out;
	}
	if (H5Lmove(g, obase, g2 >= 0 ? g2 : g, nbase, lcpl, H5P_DEFAULT) < 0) {
		rc = op_failed("moving the link", dir->path, obase);
		goto out;
	}
	if (t) {
		ent_remove_node(newdir, t->idx);
		__atomic_store_n(&t->gone, true, __ATOMIC_RELEASE);
		out->replaced = t->idx;
		out->replaced_deleted = true;
	}
	ent_remove_node(dir, n->idx);
	if (n->type == H5M_NODE_DATASET) {
		for (unsigned v = 0; v < H5M_NVIEWS && !rc; v++)
			if (n->shown & (1u << v))
				rc = ent_insert(newdir, with_suffix(nbase, nbl, view_suffix[v]), n->idx, (enum h5m_view)v);
	} else {
		rc = ent_insert(newdir, strdup(nbase), n->idx, H5M_VIEW_OBJ);
	}
	if (n->type == H5M_NODE_GROUP)
		n->parent = newdir->idx;
	if (n->type != H5M_NODE_SOFTLINK)
		repath(s, oldpath, newpath);
	{
		int crc = commit_locked(s, true);

		if (!rc)
			rc = crc;
	}
out:
	free(oldpath);
	free(newpath);
	free(obase);
	free(nbase);
	if (lcpl >= 0)
		H5Pclose(lcpl);
	op_end(s, g, g2);
	return rc;
}
