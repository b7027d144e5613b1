/* vlen.c: reads of variable-length datasets (strings and sequences) as their concatenated
 * values: the row offsets table, bounded reads (a damaged length fails the read instead of
 * making HDF5 allocate gigabytes) and a check of each raw descriptor against the global heap
 * before HDF5 follows it. Fixed-size data is chunkio.c's. */
#include "h5mount/vlen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5mount/iobuf.h"
#include "h5mount/log.h"

#include "store_priv.h"

#define VLEN_BATCH 16384u
/* Variable-length reads allocate through vlen_alloc: at most this much live per read call. */
#define VLEN_BUDGET ((size_t)256 << 20)

/* ---- bounded variable-length reads ---- */

/* Memory handed out for the variable-length values of one read (and given back by the
 * reclaim that uses the same transfer list): a damaged length makes HDF5 ask for gigabytes,
 * which vlen_alloc refuses, so the read fails cleanly. Owned by the caller's stack frame. */
struct vlen_budget {
	size_t used;        /* bytes handed out and not yet freed */
	size_t limit;
	bool refused;       /* an allocation was refused: the read failed for lack of budget */
};

/* Header in front of each allocation: its size, for vlen_free; 16 bytes keep the alignment. */
#define VLEN_HDR 16

static void *vlen_alloc(size_t size, void *info)
{
	struct vlen_budget *b = info;
	unsigned char *p;

	if (size > b->limit - b->used || !(p = malloc(VLEN_HDR + size))) {
		b->refused = true;
		return NULL;
	}
	memcpy(p, &size, sizeof(size));
	b->used += size;
	return p + VLEN_HDR;
}

static void vlen_free(void *mem, void *info)
{
	struct vlen_budget *b = info;
	unsigned char *p = mem;
	size_t size;

	if (!p)
		return;
	p -= VLEN_HDR;
	memcpy(&size, p, sizeof(size));
	b->used -= size;
	free(p);
}

/* A transfer property list allocating vlen values from budget b (reset here). Returns it (the
 * caller closes it) or H5I_INVALID_HID. HDF5 lock. */
static hid_t vlen_xfer(struct vlen_budget *b)
{
	hid_t x = H5Pcreate(H5P_DATASET_XFER);

	*b = (struct vlen_budget){ .limit = VLEN_BUDGET };
	if (x >= 0 && H5Pset_vlen_mem_manager(x, vlen_alloc, b, vlen_free, b) < 0) {
		H5Pclose(x);
		x = H5I_INVALID_HID;
	}
	return x;
}

/* Memory type for reading vlen rows: the stored type's own layout. Caller closes. HDF5 lock. */
static hid_t vlen_memtype(struct h5m_dataset *ds)
{
	if (ds->dt.kind == H5M_DT_VLEN_STR)
		return H5Tcopy(ds->ftype);
	return H5Tvlen_create(ds->dt.base_type);
}

/* Reads elements [r0, r0+n) in C order of a dataset of rank 2 or more as memory type mt into
 * buf (n elements back to back), selecting them one by one (a run of C-order elements is no
 * single hyperslab). Returns 0, -ENOMEM or -EIO (HDF5's error stack left for the caller).
 * HDF5 lock. */
static int flat_read(const struct h5m_dataset *ds, hid_t mt, hid_t xfer, uint64_t r0, uint64_t n, void *buf)
{
	struct h5m_iobuf cbuf = { 0 };
	hsize_t *coord, cnt = n, at[H5M_NPY_MAXDIMS];
	hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID, estack = H5I_INVALID_HID;
	uint64_t rest = r0;
	int rc = 0;

	if (n == 0)
		return 0;
	if (h5m_iobuf_get(&cbuf, (size_t)n * ds->rank * sizeof(*coord))) /* n <= VLEN_BATCH */
		return -ENOMEM;
	coord = cbuf.data;
	for (unsigned d = ds->rank; d-- > 0;) {
		at[d] = rest % ds->dims[d]; /* dims are not 0: r0 < the product */
		rest /= ds->dims[d];
	}
	for (uint64_t i = 0; i < n; i++) {
		memcpy(coord + i * ds->rank, at, ds->rank * sizeof(*at));
		for (unsigned d = ds->rank; d-- > 0;) {
			if (++at[d] < ds->dims[d])
				break;
			at[d] = 0;
		}
	}
	fs = H5Dget_space(ds->did);
	ms = H5Screate_simple(1, &cnt, NULL);
	if (fs < 0 || ms < 0 || H5Sselect_elements(fs, H5S_SELECT_SET, (size_t)n, coord) < 0 ||
	    H5Dread(ds->did, mt, ms, fs, xfer, buf) < 0)
		rc = -EIO;
	estack = rc ? H5Eget_current_stack() : H5I_INVALID_HID; /* H5Sclose would clear it */
	if (ms >= 0)
		H5Sclose(ms);
	if (fs >= 0)
		H5Sclose(fs);
	if (estack >= 0)
		H5Eset_current_stack(estack); /* and closes it */
	h5m_iobuf_put(&cbuf);
	return rc;
}

/* Reads rows [r0, r0+n) of a vlen dataset into rows (hvl_t or char*, zeroed first so that a
 * failed read leaves nothing to free), their values allocated through xfer's budget. Returns 0
 * or -EIO (HDF5's error stack left for the caller). HDF5 lock. */
static int vlen_read_rows(struct h5m_dataset *ds, hid_t mt, hid_t xfer, uint64_t r0, uint64_t n, void *rows)
{
	/* HDF5 refuses fill time "never" for variable-length types, so it should write every
	 * row; should a row be left untouched all the same, zeros read as an empty row where a
	 * stale pointer would be followed (and a failed read leaves nothing to free). */
	memset(rows, 0, (size_t)n * (ds->dt.kind == H5M_DT_VLEN_STR ? sizeof(char *) : sizeof(hvl_t)));
	if (ds->rank <= 1)
		return h5m_chunkio_slab_io(ds, mt, ds->rank, &r0, &n, rows, false, xfer);
	return flat_read(ds, mt, xfer, r0, n, rows);
}

/* Length in base elements of row i of a read batch. */
static uint64_t vlen_row_len(const struct h5m_dataset *ds, const void *rows, size_t i)
{
	if (ds->dt.kind == H5M_DT_VLEN_STR) {
		const char *p = ((char *const *)rows)[i];

		return p ? strlen(p) : 0;
	}
	return ((const hvl_t *)rows)[i].len;
}

static const void *vlen_row_ptr(const struct h5m_dataset *ds, const void *rows, size_t i)
{
	if (ds->dt.kind == H5M_DT_VLEN_STR)
		return ((char *const *)rows)[i];
	return ((const hvl_t *)rows)[i].p;
}

static void vlen_reclaim(hid_t mt, hid_t xfer, void *rows, uint64_t n)
{
	hsize_t d = n;
	hid_t sp = H5Screate_simple(1, &d, NULL);

	H5Dvlen_reclaim(mt, sp, xfer, rows);
	H5Sclose(sp);
}

/* What a batched vlen read holds: the memory type, a transfer list allocating from `budget`, and
 * room for VLEN_BATCH rows. Lives in the caller's frame (the transfer list points at budget). */
struct vlen_batch {
	struct vlen_budget budget;
	hid_t mt, xfer;
	struct h5m_iobuf rowbuf; /* holds rows */
	void *rows;
};

/* Sets b up for reading rows of ds. Returns 0 or -ENOMEM; either way vlen_batch_close(b) undoes
 * it. HDF5 lock. */
static int vlen_batch_open(struct vlen_batch *b, struct h5m_dataset *ds)
{
	b->mt = vlen_memtype(ds);
	b->xfer = vlen_xfer(&b->budget);
	b->rows = h5m_iobuf_get(&b->rowbuf, VLEN_BATCH * sizeof(hvl_t)) ? NULL : b->rowbuf.data;
	return b->mt < 0 || b->xfer < 0 || !b->rows ? -ENOMEM : 0;
}

/* Releases what vlen_batch_open made (b may be all H5I_INVALID_HID and empty). HDF5 lock. */
static void vlen_batch_close(struct vlen_batch *b)
{
	if (b->xfer >= 0)
		H5Pclose(b->xfer);
	if (b->mt >= 0)
		H5Tclose(b->mt);
	h5m_iobuf_put(&b->rowbuf);
}

/* Logs a vlen read of ds that failed (why from HDF5's stack), naming the budget when it was the
 * cause. HDF5 lock. */
static void vlen_read_failed(struct h5m_dataset *ds, const struct vlen_budget *b)
{
	char why[256];

	if (b->refused)
		snprintf(why, sizeof(why), "variable-length values of more than %zu MiB in one read (damaged lengths?)",
		         VLEN_BUDGET >> 20);
	h5m_store_read_failed(ds, b->refused ? why : NULL);
}

/* ---- checking variable-length descriptors before HDF5 follows them ---- */

/* HDF5 1.10.8 trusts a vlen descriptor (length, global heap collection address, object index):
 * H5HG_read indexes the collection's object table with the index unchecked and copies the
 * object's stored size into a buffer sized by the length, and the conversion allocates length x
 * element bytes first. A damaged descriptor thus crashes the daemon or makes it allocate
 * gigabytes. Where the descriptors can be read raw (contiguous or unfiltered chunked storage),
 * each one is checked against its collection first: the object must exist and hold exactly
 * length x element bytes. */
struct gheap_check {
	struct h5m_store_file f;    /* the file's descriptor and size */
	struct h5m_dataset *ds;
	uint64_t base;              /* the file's base address (user block size): heap addresses and
	                             * chunk addresses are relative to it, H5Dget_offset is not */
	size_t sa, sl;              /* sizeof_addr, sizeof_size of the file */
	uint64_t coll_addr;         /* the collection held in coll, or 0 */
	struct h5m_iobuf collbuf;   /* holds coll: up to VLEN_BUDGET bytes, from the iobuf stash */
	unsigned char *coll;
	uint64_t coll_len;
};

static uint64_t get_le(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

/* Loads the collection at addr into g->coll. Returns 0 or -EIO. */
static int gheap_load(struct gheap_check *g, uint64_t addr)
{
	unsigned char head[32];
	uint64_t size;

	if (g->coll_addr == addr)
		return 0;
	if (addr > g->f.size || g->f.size - addr < 8 + g->sl || g->base > g->f.size - addr - 8 - g->sl ||
	    pread(g->f.fd, head, 8 + g->sl, (off_t)(g->base + addr)) != (ssize_t)(8 + g->sl) ||
	    memcmp(head, "GCOL", 4) != 0 || head[4] != 1)
		return -EIO;
	size = get_le(head + 8, g->sl);
	if (size < 8 + g->sl || size > VLEN_BUDGET || size > g->f.size - g->base - addr)
		return -EIO;
	g->coll_addr = 0;
	if (g->collbuf.cap < size) {
		h5m_iobuf_put(&g->collbuf);
		if (h5m_iobuf_get(&g->collbuf, (size_t)size))
			return -ENOMEM;
	}
	g->coll = g->collbuf.data;
	if (pread(g->f.fd, g->coll, (size_t)size, (off_t)(g->base + addr)) != (ssize_t)size)
		return -EIO;
	g->coll_addr = addr;
	g->coll_len = size;
	return 0;
}

/* Checks one raw descriptor. Returns 0, -EIO (damaged) or -ENOMEM. */
static int gheap_check_one(struct gheap_check *g, const unsigned char *d)
{
	uint64_t len = get_le(d, 4), addr = get_le(d + 4, g->sa), idx = get_le(d + 4 + g->sa, 4), want, at;
	int rc;

	if (len == 0)
		return 0; /* an empty or never written row: HDF5 reads nothing */
	if (__builtin_mul_overflow(len, (uint64_t)g->ds->dt.elem_size, &want) || want > VLEN_BUDGET || idx == 0)
		return -EIO;
	if ((rc = gheap_load(g, addr)) != 0)
		return rc;
	/* Objects: index (2), refcount (2), reserved (4), size (sizeof_size), data padded to 8. */
	for (at = 8 + g->sl; at + 8 + g->sl <= g->coll_len;) {
		uint64_t oidx = get_le(g->coll + at, 2), osize = get_le(g->coll + at + 8, g->sl);

		if (oidx == 0)
			break; /* the free space: the last object */
		if (osize > g->coll_len)
			return -EIO;
		if (oidx == idx)
			return osize == want && osize <= g->coll_len - at - 8 - g->sl ? 0 : -EIO;
		at += 8 + g->sl + ((osize + 7) & ~(uint64_t)7);
	}
	return -EIO;
}

/* Checks the descriptors of rows [r0, r0 + n) held raw in buf. Logs the first bad one. */
static int gheap_check_rows(struct gheap_check *g, const unsigned char *buf, uint64_t r0, uint64_t n)
{
	size_t dsz = 4 + g->sa + 4;

	for (uint64_t i = 0; i < n; i++) {
		int rc = gheap_check_one(g, buf + i * dsz);

		if (rc) {
			char why[160];

			snprintf(why, sizeof(why), "row %llu: a damaged variable-length descriptor (its length or heap object "
			         "does not match the global heap)", (unsigned long long)(r0 + i));
			if (rc == -EIO)
				h5m_store_read_failed(g->ds, why);
			return rc;
		}
	}
	return 0;
}

/* Checks every descriptor of vlen dataset ds when its storage can be read raw; other layouts
 * (compact, filtered chunks) are left to HDF5. Returns 0, -EIO (logged) or -ENOMEM. HDF5 lock. */
static int vlen_check_descriptors(struct h5m_store *s, struct h5m_dataset *ds)
{
	struct gheap_check g = { .ds = ds };
	hid_t fcpl, dcpl = H5Dget_create_plist(ds->did), space = H5I_INVALID_HID;
	hsize_t ub = 0, nchunks = 0;
	struct h5m_iobuf dbuf = { 0 };
	unsigned char *buf;
	size_t dsz, sa = 0, sl = 0;
	int rc = 0;

	h5m_store_file(s, &g.f);
	if (g.f.fd < 0)
		return 0; /* a remote file: no raw reads under the HDF5 lock, left to HDF5 */
	fcpl = H5Fget_create_plist(g.f.fid);
	if (fcpl < 0 || dcpl < 0 || H5Pget_sizes(fcpl, &sa, &sl) < 0 || H5Pget_userblock(fcpl, &ub) < 0 || sa < 1 ||
	    sa > 8 || sl < 1 || sl > 8)
		goto out; /* unknown: left to HDF5 */
	g.sa = sa;
	g.sl = sl;
	g.base = ub;
	dsz = 4 + sa + 4;
	if (ds->contig_offset >= 0 && ds->rank >= 1) { /* descriptors in C order, one per row */
		uint64_t r;

		if (h5m_iobuf_get(&dbuf, VLEN_BATCH * dsz)) {
			rc = -ENOMEM;
			goto out;
		}
		buf = dbuf.data;
		for (r = 0; r < ds->nrows && rc == 0; r += VLEN_BATCH) {
			uint64_t n = ds->nrows - r < VLEN_BATCH ? ds->nrows - r : VLEN_BATCH;

			if (h5m_chunkio_pread_file(s, ds, buf, n * dsz, (uint64_t)ds->contig_offset + r * dsz,
			                           "variable-length descriptors"))
				rc = -EIO;
			else
				rc = gheap_check_rows(&g, buf, r, n);
		}
	} else if (ds->chunked && ds->rank == 1 && H5Pget_nfilters(dcpl) == 0 && ds->chunk[0] > 0 &&
	           ds->chunk[0] <= VLEN_BUDGET / dsz) {
		space = H5Dget_space(ds->did);
		if (space < 0 || H5Dget_num_chunks(ds->did, space, &nchunks) < 0)
			goto out;
		if (h5m_iobuf_get(&dbuf, (size_t)ds->chunk[0] * dsz)) { /* one chunk of descriptors */
			rc = -ENOMEM;
			goto out;
		}
		buf = dbuf.data;
		for (hsize_t i = 0; i < nchunks && rc == 0; i++) {
			hsize_t off[H5S_MAX_RANK] = { 0 }, size = 0;
			haddr_t addr = HADDR_UNDEF;
			unsigned mask = 0;
			uint64_t n;

			if (H5Dget_chunk_info(ds->did, space, i, off, &mask, &addr, &size) < 0 || addr == HADDR_UNDEF ||
			    size != ds->chunk[0] * dsz || off[0] >= ds->nrows) {
				h5m_store_read_failed(ds, "a damaged chunk index of variable-length descriptors");
				rc = -EIO;
				break;
			}
			n = ds->nrows - off[0] < ds->chunk[0] ? ds->nrows - off[0] : ds->chunk[0];
			if (h5m_chunkio_pread_file(s, ds, buf, (size_t)size, ub + addr, "variable-length descriptors"))
				rc = -EIO;
			else
				rc = gheap_check_rows(&g, buf, off[0], n);
		}
	}
out:
	H5Eclear2(H5E_DEFAULT);
	h5m_iobuf_put(&dbuf);
	h5m_iobuf_put(&g.collbuf);
	if (space >= 0)
		H5Sclose(space);
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (fcpl >= 0)
		H5Pclose(fcpl);
	return rc;
}

/* Computes ds->offsets: see store_priv.h. HDF5 lock. */
int h5m_vlen_offsets_locked(struct h5m_store *s, struct h5m_dataset *ds)
{
	struct vlen_batch vb;
	uint64_t *off = NULL, batch = VLEN_BATCH;
	int rc = 0;

	if (ds->offsets)
		return 0;
	rc = vlen_check_descriptors(s, ds);
	if (rc)
		return rc;
	rc = vlen_batch_open(&vb, ds);
	off = malloc((ds->nrows + 1) * sizeof(*off)); /* nrows bounded by dataset_open */
	if (rc || !off) {
		rc = -ENOMEM;
		goto out;
	}
	off[0] = 0;
	for (uint64_t r = 0; r < ds->nrows;) {
		uint64_t n = ds->nrows - r < batch ? ds->nrows - r : batch;

		rc = vlen_read_rows(ds, vb.mt, vb.xfer, r, n, vb.rows);
		if (rc && vb.budget.refused && n > 1) {
			/* Large rows: fewer at a time. */
			vlen_reclaim(vb.mt, vb.xfer, vb.rows, n);
			H5Eclear2(H5E_DEFAULT);
			vb.budget.refused = false;
			batch = n / 2;
			continue;
		}
		if (rc) {
			vlen_read_failed(ds, &vb.budget);
			vlen_reclaim(vb.mt, vb.xfer, vb.rows, n);
			break;
		}
		for (uint64_t i = 0; i < n; i++)
			off[r + i + 1] = off[r + i] + vlen_row_len(ds, vb.rows, i);
		vlen_reclaim(vb.mt, vb.xfer, vb.rows, n);
		r += n;
	}
	if (rc == 0) {
		ds->offsets = off;
		off = NULL;
	}
out:
	vlen_batch_close(&vb);
	free(off);
	return rc;
}

int h5m_vlen_offsets(struct h5m_store *s, struct h5m_dataset *ds, const uint64_t **offsets, uint64_t *nrows)
{
	int rc;

	h5m_hdf5_lock();
	rc = h5m_vlen_offsets_locked(s, ds);
	h5m_hdf5_unlock();
	*offsets = ds->offsets;
	*nrows = ds->nrows;
	return rc;
}

ssize_t h5m_vlen_read(struct h5m_store *s, struct h5m_dataset *ds, void *buf, size_t len, uint64_t off)
{
	size_t done = 0, es = ds->dt.elem_size;
	uint64_t total, lo, hi, r;
	struct vlen_batch vb = { .mt = H5I_INVALID_HID, .xfer = H5I_INVALID_HID };
	ssize_t rc = 0;

	h5m_hdf5_lock();
	if (h5m_vlen_offsets_locked(s, ds) < 0) {
		rc = -EIO;
		goto out;
	}
	total = ds->offsets[ds->nrows] * es;
	if (off >= total)
		goto out;
	if (len > total - off)
		len = (size_t)(total - off);
	/* First row whose data reaches past byte `off`: largest r with offsets[r]*es <= off. */
	lo = 0;
	hi = ds->nrows;
	while (lo + 1 < hi) {
		uint64_t mid = (lo + hi) / 2;

		if (ds->offsets[mid] * es <= off)
			lo = mid;
		else
			hi = mid;
	}
	r = lo;
	if (vlen_batch_open(&vb, ds)) {
		rc = -ENOMEM;
		goto out;
	}
	while (done < len && r < ds->nrows) {
		uint64_t n = ds->nrows - r < VLEN_BATCH ? ds->nrows - r : VLEN_BATCH;

		/* Read no more rows than the request can use. */
		for (uint64_t k = 1; k < n; k++)
			if (ds->offsets[r + k] * es >= off + len) {
				n = k;
				break;
			}
		if (vlen_read_rows(ds, vb.mt, vb.xfer, r, n, vb.rows) < 0) {
			vlen_read_failed(ds, &vb.budget);
			vlen_reclaim(vb.mt, vb.xfer, vb.rows, n);
			rc = -EIO;
			goto out;
		}
		for (uint64_t i = 0; i < n && done < len; i++) {
			uint64_t rstart = ds->offsets[r + i] * es, rlen = vlen_row_len(ds, vb.rows, i) * es;
			uint64_t from = off + done;

			if (from < rstart + rlen) {
				uint64_t skip = from - rstart, take = rlen - skip;

				if (take > len - done)
					take = len - done;
				memcpy((char *)buf + done, (const char *)vlen_row_ptr(ds, vb.rows, i) + skip, take);
				done += take;
			}
		}
		vlen_reclaim(vb.mt, vb.xfer, vb.rows, n);
		r += n;
	}
	rc = (ssize_t)done;
out:
	vlen_batch_close(&vb);
	h5m_hdf5_unlock();
	return rc;
}
