/* chunkio.c: raw data I/O of fixed-size datasets: whole-block and partial-block reads (chunks
 * read raw under the HDF5 lock and decoded outside it where the layout allows), pread of raw
 * contiguous data and of unfiltered whole-row chunks, extent changes, block and whole-chunk
 * writes. Knows nothing of the cache or of FUSE; variable-length data is vlen.c's. */
#include "h5mount/chunkio.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5mount/blosc.h"
#include "h5mount/filters.h"
#include "h5mount/iobuf.h"
#include "h5mount/log.h"
#include "h5mount/remote.h"

#include "store_priv.h"

/* Chunk bytes of a fixed-size chunked dataset for h5m_filters_expect, else 0 (unknown). */
static size_t filter_chunk_bytes(const struct h5m_dataset *ds)
{
	return ds->chunked && ds->dt.kind == H5M_DT_FIXED && ds->chunk_bytes != SIZE_MAX ? ds->chunk_bytes : 0;
}

/* Whether an H5Dread of ds may leave bytes of its buffer untouched, so that the buffer must
 * hold the fill value first: storage never written with fill_skipped, and the gaps of a
 * compound that HDF5 converts (it writes only the members). */
static bool read_fills(const struct h5m_dataset *ds)
{
	return ds->fill_skipped || ds->dt.converted;
}

/* The hyperslab I/O of every fixed-size read and write: see store_priv.h. HDF5 lock. */
int h5m_chunkio_slab_io(const struct h5m_dataset *ds, hid_t mt, unsigned rank, const uint64_t *start,
                        const uint64_t *count, void *buf, bool write, hid_t xfer)
{
	hsize_t st[H5S_MAX_RANK], ct[H5S_MAX_RANK];
	hid_t did = ds->did, fs = H5S_ALL, ms = H5S_ALL, estack;
	int rc = 0;

	if (rank > 0) {
		for (unsigned i = 0; i < rank; i++) {
			st[i] = start[i];
			ct[i] = count[i];
		}
		fs = H5Dget_space(did);
		ms = H5Screate_simple((int)rank, ct, NULL);
		if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, ct, NULL) < 0)
			rc = -EIO;
	}
	h5m_filters_expect(filter_chunk_bytes(ds)); /* bounds LZF/LZO/bzip2 chunks */
	if (!rc && (write ? H5Dwrite(did, mt, ms, fs, xfer, buf) : H5Dread(did, mt, ms, fs, xfer, buf)) < 0)
		rc = -EIO;
	h5m_filters_expect(0);
	estack = rc ? H5Eget_current_stack() : H5I_INVALID_HID; /* H5Sclose would clear it */
	if (fs > 0 && fs != H5S_ALL)
		H5Sclose(fs);
	if (ms > 0 && ms != H5S_ALL)
		H5Sclose(ms);
	if (estack >= 0)
		H5Eset_current_stack(estack); /* and closes it */
	return rc;
}

/* h5m_chunkio_slab_io with the default transfer list. */
static int slab_io(const struct h5m_dataset *ds, hid_t mt, unsigned rank, const uint64_t *start, const uint64_t *count, void *buf,
                   bool write)
{
	return h5m_chunkio_slab_io(ds, mt, rank, start, count, buf, write, H5P_DEFAULT);
}

/* Points b at a buffer of at least n bytes, keeping it if it is big enough (a transient
 * buffer from the shared stash: h5m_iobuf_put it when done). Returns its data or NULL. */
static void *iobuf_fit(struct h5m_iobuf *b, size_t n)
{
	if (b->data && b->cap >= n)
		return b->data;
	h5m_iobuf_put(b);
	return h5m_iobuf_get(b, n) ? NULL : b->data;
}

/* Copies the part of a decoded chunk at chunk coords `origin` (elements) that lies inside the
 * block's rows [row0, row0 + rows) and the dataset's dims into the block buffer (C order,
 * full trailing dims). The chunk may begin before row0 (a block that does not start on a
 * chunk's edge) or end after the block. */
static void scatter(const struct h5m_dataset *ds, const struct h5m_blocks *b, const uint64_t *origin, uint64_t row0,
                    uint64_t rows, const unsigned char *chunk, unsigned char *block)
{
	unsigned rank = b->rank;
	uint64_t ext[H5M_NPY_MAXDIMS], idx[H5M_NPY_MAXDIMS] = { 0 };
	size_t es = b->elem;

	for (unsigned i = 0; i < rank; i++) {
		uint64_t lim = i == 0 ? row0 + rows : b->dims[i];

		ext[i] = origin[i] + ds->chunk[i] <= lim ? ds->chunk[i] : lim - origin[i];
	}
	idx[0] = origin[0] < row0 ? row0 - origin[0] : 0; /* the chunk's rows before the block's */
	/* One contiguous run per index of the dims before the last. */
	for (;;) {
		uint64_t coff = 0, boff = 0;

		for (unsigned i = 0; i < rank; i++) {
			uint64_t c = idx[i], d = origin[i] + idx[i] - (i == 0 ? row0 : 0);

			coff = coff * ds->chunk[i] + c;
			boff = boff * (i == 0 ? rows : b->dims[i]) + d;
		}
		memcpy(block + boff * es, chunk + coff * es, (size_t)(ext[rank - 1] - (rank == 1 ? idx[0] : 0)) * es);
		if (rank == 1)
			return;
		for (int i = (int)rank - 2;; i--) {
			if (++idx[i] < ext[i])
				break;
			idx[i] = 0;
			if (i == 0)
				return;
		}
	}
}

/* Whether a chunk at `origin` is one contiguous run of whole rows of the block: it spans the
 * full trailing dims and all its rows lie in [row0, row0 + rows). Then it can be read or
 * decoded straight into place. */
static bool chunk_in_place(const struct h5m_dataset *ds, const struct h5m_blocks *b, const uint64_t *origin,
                           uint64_t row0, uint64_t rows)
{
	for (unsigned i = 1; i < b->rank; i++)
		if (ds->chunk[i] != b->dims[i])
			return false;
	return origin[0] >= row0 && origin[0] + ds->chunk[0] <= row0 + rows;
}

/* Chunks of one remote batch: their addresses are looked up under the HDF5 lock together,
 * their bytes fetched together. Bounds the batch's memory whatever the chunks' size. */
#define REMOTE_BATCH 256

/* read_rows_direct for a remote file: in batches of REMOTE_BATCH chunks, every chunk's address
 * and size under the HDF5 lock (ROS3 may fetch index nodes then), all their bytes in one
 * h5m_remote_readv outside it (adjacent chunks in one request, several requests at once), then
 * each decoded as the local path does. Returns 0, -EIO (logged) or -ENOMEM. */
static int read_rows_remote(struct h5m_dataset *ds, const struct h5m_blocks *b, uint64_t row0, uint64_t rows,
                            unsigned char *buf, const uint64_t *grid)
{
	struct chunk_at {
		uint64_t origin[H5M_NPY_MAXDIMS];
		haddr_t addr;           /* relative to the user block; HADDR_UNDEF: never written */
		hsize_t size;
		unsigned mask;
		unsigned char *raw;     /* its stored bytes, in rawb */
	} *c = NULL;
	struct h5m_remote_range *rg = NULL;
	struct h5m_iobuf rawb = { 0 }, chunk = { 0 };
	uint64_t pos[H5M_NPY_MAXDIMS] = { 0 }, base = 0;
	hid_t fid = H5I_INVALID_HID, fcpl = H5I_INVALID_HID;
	hsize_t ub = 0;
	unsigned rank = b->rank;
	bool more = true;
	int rc = 0;

	c = calloc(REMOTE_BATCH, sizeof(*c));
	rg = calloc(REMOTE_BATCH, sizeof(*rg));
	if (!c || !rg) {
		rc = -ENOMEM;
		goto out;
	}
	/* Chunk addresses are relative to the user block. */
	h5m_hdf5_lock();
	fid = H5Iget_file_id(ds->did);
	fcpl = fid >= 0 ? H5Fget_create_plist(fid) : H5I_INVALID_HID;
	if (fcpl < 0 || H5Pget_userblock(fcpl, &ub) < 0) {
		h5m_store_read_failed(ds, NULL);
		rc = -EIO;
	}
	if (fcpl >= 0)
		H5Pclose(fcpl);
	if (fid >= 0)
		H5Fclose(fid); /* the id H5Iget_file_id added, not the store's file */
	h5m_hdf5_unlock();
	base = ub;
	while (!rc && more) {
		size_t n = 0, nr = 0, rawlen = 0, at = 0;

		h5m_hdf5_lock();
		for (; more && n < REMOTE_BATCH; n++) {
			hsize_t off[H5S_MAX_RANK];
			struct chunk_at *k = &c[n];

			for (unsigned i = 0; i < rank; i++) {
				k->origin[i] = ((i == 0 ? row0 / ds->chunk[0] : 0) + pos[i]) * ds->chunk[i];
				off[i] = k->origin[i];
			}
			k->addr = HADDR_UNDEF;
			k->size = 0;
			k->mask = 0;
			if (H5Dget_chunk_info_by_coord(ds->did, off, &k->mask, &k->addr, &k->size) < 0) {
				h5m_store_read_failed(ds, NULL);
				rc = -EIO;
				break;
			}
			/* The stored size comes from the chunk index: checked before allocating. */
			if (k->addr != HADDR_UNDEF &&
			    (k->size == 0 || k->size > ds->chunk_bytes + (ds->blosc ? H5M_BLOSC_OVERHEAD : 0) ||
			     k->addr > UINT64_MAX - base - k->size)) {
				h5m_store_read_failed(ds, "a chunk's stored size or address is out of range");
				rc = -EIO;
				break;
			}
			if (k->addr != HADDR_UNDEF)
				rawlen += (size_t)k->size;
			more = false;
			for (int i = (int)rank - 1; i >= 0; i--) {
				if (++pos[i] < grid[i]) {
					more = true;
					break;
				}
				pos[i] = 0;
			}
		}
		h5m_hdf5_unlock();
		if (rc)
			break;
		if (rawlen && !iobuf_fit(&rawb, rawlen)) {
			rc = -ENOMEM;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (c[i].addr == HADDR_UNDEF)
				continue;
			c[i].raw = (unsigned char *)rawb.data + at;
			at += (size_t)c[i].size;
			rg[nr++] = (struct h5m_remote_range){ .off = base + c[i].addr, .len = (size_t)c[i].size, .buf = c[i].raw };
		}
		if ((rc = h5m_remote_readv(ds->remote, rg, nr)) != 0) /* logged there */
			break;
		for (size_t i = 0; i < n && !rc; i++) {
			const unsigned char *src = c[i].raw;

			if (c[i].addr == HADDR_UNDEF || (ds->blosc && !(c[i].mask & 1))) {
				if (!iobuf_fit(&chunk, ds->chunk_bytes)) {
					rc = -ENOMEM;
					break;
				}
				src = chunk.data;
			}
			if (c[i].addr == HADDR_UNDEF) {
				h5m_store_fill(ds, chunk.data, ds->chunk_bytes, 0); /* never written */
			} else if (!ds->blosc || (c[i].mask & 1)) {
				if (c[i].size != ds->chunk_bytes) { /* unfiltered or stored raw: must be whole */
					h5m_hdf5_lock();
					h5m_store_read_failed(ds, "an unfiltered chunk's stored size differs from its data size");
					h5m_hdf5_unlock();
					rc = -EIO;
				}
			} else if (h5m_blosc_decode(c[i].raw, (size_t)c[i].size, chunk.data, ds->chunk_bytes, 1) !=
			           (long)ds->chunk_bytes) {
				h5m_hdf5_lock();
				h5m_store_read_failed(ds, "corrupt Blosc chunk");
				h5m_hdf5_unlock();
				rc = -EIO;
			}
			if (!rc)
				scatter(ds, b, c[i].origin, row0, rows, src, buf);
		}
	}
out:
	h5m_iobuf_put(&chunk);
	h5m_iobuf_put(&rawb);
	free(rg);
	free(c);
	return rc;
}

/* Reads the rows [row0, row0 + rows) (all in the file) of an unfiltered or Blosc dataset chunk
 * by chunk: raw bytes under the HDF5 lock, decoding outside it, so threads decode in parallel.
 * Fills buf (rows x full trailing dims). Returns 0 or -EIO. */
static int read_rows_direct(struct h5m_dataset *ds, const struct h5m_blocks *b, uint64_t row0, uint64_t rows,
                            unsigned char *buf)
{
	struct h5m_iobuf chunk = { 0 }, rawb = { 0 };
	uint64_t grid[H5M_NPY_MAXDIMS], pos[H5M_NPY_MAXDIMS] = { 0 };
	unsigned rank = b->rank;
	int rc = 0;

	for (unsigned i = 0; i < rank; i++)
		grid[i] = i == 0 ? (row0 + rows - 1) / ds->chunk[0] - row0 / ds->chunk[0] + 1
		                 : (b->dims[i] + ds->chunk[i] - 1) / ds->chunk[i];
	for (unsigned i = 1; i < rank; i++)
		if (grid[i] == 0)
			return 0;
	if (ds->remote)
		return read_rows_remote(ds, b, row0, rows, buf, grid);
	for (;;) {
		hsize_t off[H5S_MAX_RANK], nbytes = 0;
		uint64_t origin[H5M_NPY_MAXDIMS];
		uint32_t mask = 0;
		unsigned char *place = NULL, *raw;
		bool have;
		const unsigned char *src;

		for (unsigned i = 0; i < rank; i++) {
			origin[i] = ((i == 0 ? row0 / ds->chunk[0] : 0) + pos[i]) * ds->chunk[i];
			off[i] = origin[i];
		}
		if (chunk_in_place(ds, b, origin, row0, rows))
			place = buf + (origin[0] - row0) * b->inner * b->elem;
		h5m_hdf5_lock();
		have = H5Dget_chunk_storage_size(ds->did, off, &nbytes) >= 0 && nbytes > 0;
		H5Eclear2(H5E_DEFAULT);
		/* The stored size comes from the chunk index: a Blosc frame is never larger than its
		 * data plus the header, a raw chunk is exactly its data. Checked before allocating. */
		if (have && nbytes > ds->chunk_bytes + (ds->blosc ? H5M_BLOSC_OVERHEAD : 0)) {
			if (!ds->read_error_logged) {
				ds->read_error_logged = true;
				h5m_log(H5M_LOG_ERR, "%s: read failed (EIO): a chunk at row %llu is stored in %llu bytes, more than its data",
				        ds->path, (unsigned long long)origin[0], (unsigned long long)nbytes);
			}
			h5m_hdf5_unlock();
			rc = -EIO;
			goto out;
		}
		/* An unfiltered chunk that is a run of whole rows is read into place. */
		raw = !have ? NULL : !ds->blosc && place && nbytes == ds->chunk_bytes ? place : iobuf_fit(&rawb, (size_t)nbytes);
		if (have && (!raw || H5Dread_chunk(ds->did, H5P_DEFAULT, off, &mask, raw) < 0)) {
			h5m_store_read_failed(ds, raw ? NULL : "out of memory for a chunk");
			h5m_hdf5_unlock();
			rc = raw ? -EIO : -ENOMEM;
			goto out;
		}
		h5m_hdf5_unlock();
		if (!have) {
			if (!iobuf_fit(&chunk, ds->chunk_bytes)) {
				rc = -ENOMEM;
				goto out;
			}
			h5m_store_fill(ds, chunk.data, ds->chunk_bytes, 0); /* never written */
			src = chunk.data;
		} else if (!ds->blosc || (mask & 1)) {
			if (nbytes != ds->chunk_bytes) { /* unfiltered or stored raw: must be whole */
				rc = -EIO;
				goto out;
			}
			src = raw;
		} else {
			unsigned char *dst = place ? place : iobuf_fit(&chunk, ds->chunk_bytes);

			if (!dst) {
				rc = -ENOMEM;
				goto out;
			}
			if (h5m_blosc_decode(raw, (size_t)nbytes, dst, ds->chunk_bytes, 1) != (long)ds->chunk_bytes) {
				h5m_hdf5_lock();
				if (!ds->read_error_logged) {
					ds->read_error_logged = true;
					h5m_log(H5M_LOG_ERR, "%s: read failed (EIO): corrupt Blosc chunk at row %llu", ds->path,
					        (unsigned long long)origin[0]);
				}
				h5m_hdf5_unlock();
				rc = -EIO;
				goto out;
			}
			src = dst;
		}
		if (src != place)
			scatter(ds, b, origin, row0, rows, src, buf);
		for (int i = (int)rank - 1;; i--) {
			if (++pos[i] < grid[i])
				break;
			pos[i] = 0;
			if (i == 0)
				goto out;
		}
	}
out:
	h5m_iobuf_put(&rawb);
	h5m_iobuf_put(&chunk);
	return rc;
}

int h5m_chunkio_read_block(struct h5m_dataset *ds, const struct h5m_blocks *b, uint64_t block, void *buf, size_t len,
                           bool zeroed)
{
	uint64_t start[H5M_NPY_MAXDIMS], count[H5M_NPY_MAXDIMS], bstart, blen, got = 0;
	int rc = 0;

	h5m_hdf5_lock();
	if (block >= b->nblocks) {
		rc = -EIO;
		goto out;
	}
	h5m_blocks_extent(b, block, &bstart, &blen);
	if (blen > len) {
		rc = -EIO;
		goto out;
	}
	if (b->rank == 0) {
		if (read_fills(ds) && !(zeroed && ds->zero_fill))
			h5m_store_fill(ds, buf, blen, 0);
		rc = slab_io(ds, ds->dt.mem_type, 0, NULL, NULL, buf, false);
		got = blen;
	} else {
		h5m_blocks_slab(b, block, start, count);
		/* Every row of the block that is in the file, as far as buf holds them, not only
		 * those within b: a reader whose b predates an append and write-back must not cache
		 * fill values for rows that are there. Appended rows not in the file yet are not read. */
		if (b->level == 0 && b->inner * b->elem > 0) {
			uint64_t room = len / (b->inner * b->elem);

			count[0] = room < b->len ? room : b->len;
		}
		if (start[0] >= ds->h5rows)
			count[0] = 0;
		else if (b->level == 0 && start[0] + count[0] > ds->h5rows)
			count[0] = ds->h5rows - start[0];
		if (count[0] > 0 && ds->direct && b->level == 0) {
			uint64_t rows = count[0];

			got = rows * b->inner * b->elem;
			h5m_hdf5_unlock();
			rc = read_rows_direct(ds, b, start[0], rows, buf);
			h5m_hdf5_lock();
			if (rc)
				goto out;
		} else if (count[0] > 0) {
			got = count[0] * (b->level == 0 ? b->inner * b->elem : blen);
			/* buf may be reused memory (another dataset's bytes): see read_fills. */
			if (read_fills(ds) && !(zeroed && ds->zero_fill))
				h5m_store_fill(ds, buf, (size_t)got, 0);
			rc = slab_io(ds, ds->dt.mem_type, b->rank, start, count, buf, false);
		}
	}
	if (rc) {
		h5m_store_read_failed(ds, NULL);
	} else if (got < len && !(zeroed && ds->zero_fill)) {
		h5m_store_fill(ds, (char *)buf + got, len - got, 0);
	}
out:
	h5m_hdf5_unlock();
	return rc;
}

int h5m_chunkio_read_block_part(struct h5m_dataset *ds, const struct h5m_blocks *b, uint64_t block,
                                uint64_t first, uint64_t count, void *buf)
{
	uint64_t start[H5M_NPY_MAXDIMS], cnt[H5M_NPY_MAXDIMS];
	unsigned lv = b->level;
	int rc = 0;

	h5m_hdf5_lock();
	if (b->rank == 0 || block >= b->nblocks) {
		rc = -EIO;
		goto out;
	}
	h5m_blocks_slab(b, block, start, cnt);
	if (first + count > cnt[lv]) {
		rc = -EIO;
		goto out;
	}
	start[lv] += first;
	cnt[lv] = count;
	if (start[0] + (lv == 0 ? cnt[0] : 1) > ds->h5rows) {
		rc = -EIO; /* only reached after a failed full read, for rows in the file */
		goto out;
	}
	if (read_fills(ds)) {
		uint64_t n = 1;

		for (unsigned i = 0; i < b->rank; i++)
			n *= cnt[i]; /* within the block's extent: cannot overflow */
		h5m_store_fill(ds, buf, (size_t)(n * b->elem), 0);
	}
	rc = slab_io(ds, ds->dt.mem_type, b->rank, start, cnt, buf, false);
	H5Eclear2(H5E_DEFAULT);
out:
	h5m_hdf5_unlock();
	return rc;
}

/* Reads from the plain descriptor: see store_priv.h. No HDF5 lock. */
int h5m_chunkio_pread_file(struct h5m_store *s, struct h5m_dataset *ds, void *buf, size_t len, uint64_t at,
                           const char *what)
{
	struct h5m_store_file f;
	size_t done = 0;

	h5m_store_file(s, &f);
	if (f.remote)
		return h5m_remote_read(f.remote, buf, len, at) ? -EIO : 0; /* logged by the fetcher */
	while (done < len) {
		ssize_t n = pread(f.fd, (char *)buf + done, len - done, (off_t)(at + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			h5m_log(H5M_LOG_ERR, "%s: read of %s failed: %s", ds->path, what,
			        n < 0 ? strerror(errno) : "the file ends inside it");
			return -EIO;
		}
		done += (size_t)n;
	}
	return 0;
}

ssize_t h5m_chunkio_pread(struct h5m_store *s, struct h5m_dataset *ds, void *buf, size_t len, uint64_t off)
{
	int rc = h5m_chunkio_pread_file(s, ds, buf, len, (uint64_t)ds->contig_offset + off, "the contiguous data");

	return rc ? rc : (ssize_t)len;
}

ssize_t h5m_chunkio_pread_rows(struct h5m_store *s, struct h5m_dataset *ds, void *buf, size_t len, uint64_t off)
{
	struct h5m_store_file f;
	size_t done = 0;

	h5m_store_file(s, &f);

	while (done < len) {
		uint64_t pos = off + done, within = pos % ds->chunk_bytes;
		size_t take = ds->chunk_bytes - within < len - done ? (size_t)(ds->chunk_bytes - within) : len - done;
		hsize_t coord[H5S_MAX_RANK] = { 0 }, size = 0;
		haddr_t addr = HADDR_UNDEF;
		unsigned mask = 0;
		herr_t rc;

		coord[0] = pos / ds->chunk_bytes * ds->chunk[0];
		h5m_hdf5_lock();
		rc = H5Dget_chunk_info_by_coord(ds->did, coord, &mask, &addr, &size);
		if (rc < 0)
			h5m_store_read_failed(ds, NULL);
		h5m_hdf5_unlock();
		if (rc < 0)
			return -EIO;
		if (addr == HADDR_UNDEF) {
			h5m_store_fill(ds, (char *)buf + done, take, within);   /* never written */
		} else if (size != ds->chunk_bytes || addr > (haddr_t)INT64_MAX - ds->chunk_bytes - f.base) {
			h5m_hdf5_lock();
			h5m_store_read_failed(ds, "a chunk's stored size differs from its data size");
			h5m_hdf5_unlock();
			return -EIO;
		} else if (h5m_chunkio_pread_file(s, ds, (char *)buf + done, take, f.base + addr + within, "a chunk")) {
			return -EIO;
		}
		done += take;
	}
	return (ssize_t)done;
}

/* ---- writes ---- */

int h5m_chunkio_set_extent(struct h5m_store *s, struct h5m_dataset *ds, const uint64_t *dims)
{
	hsize_t hd[H5S_MAX_RANK];
	bool same = true, grow = false;
	int rc = 0;

	if (!h5m_store_writable(s))
		return -EROFS;
	for (unsigned i = 0; i < ds->rank; i++) {
		uint64_t cur = i == 0 ? ds->h5rows : ds->dims[i];

		same &= dims[i] == cur;
		grow |= dims[i] > cur;
		if (dims[i] > ds->maxdims[i])
			return -EFBIG;
		hd[i] = dims[i];
	}
	if (same)
		return 0;
	if (!ds->chunked)
		return grow ? -EFBIG : -EINVAL;
	h5m_hdf5_lock();
	h5m_filters_expect(filter_chunk_bytes(ds)); /* a shrink rewrites the edge chunk */
	if (H5Dset_extent(ds->did, hd) < 0) {
		rc = h5m_store_write_failure(s, ds, "changing the extent");
	} else {
		ds->h5rows = dims[0];
		memcpy(ds->dims, dims, ds->rank * sizeof(*dims));
	}
	h5m_filters_expect(0);
	h5m_hdf5_unlock();
	return rc;
}

int h5m_chunkio_write_block(struct h5m_store *s, struct h5m_dataset *ds, const struct h5m_blocks *b, uint64_t block,
                            const void *buf)
{
	uint64_t start[H5M_NPY_MAXDIMS], count[H5M_NPY_MAXDIMS];
	int rc = 0;

	if (!h5m_store_writable(s))
		return -EROFS;
	h5m_hdf5_lock();
	if (b->rank > 0)
		h5m_blocks_slab(b, block, start, count);
	if (b->rank > 0 && start[0] + (b->level == 0 ? count[0] : 1) > ds->h5rows) {
		h5m_log(H5M_LOG_ERR, "%s: write-back of rows beyond the file's extent", ds->path);
		rc = -EIO;
	} else if (slab_io(ds, ds->dt.mem_type, b->rank, start, count, (void *)buf, true) < 0) {
		rc = h5m_store_write_failure(s, ds, "writing");
	}
	h5m_hdf5_unlock();
	return rc;
}

bool h5m_chunkio_chunk_rows(const struct h5m_dataset *ds, const struct h5m_blocks *b)
{
	if (!ds->chunked || !ds->direct || b->rank == 0 || b->level != 0 || b->len % ds->chunk[0] != 0)
		return false;
	for (unsigned i = 1; i < b->rank; i++)
		if (ds->chunk[i] != b->dims[i])
			return false;
	return true;
}

int h5m_chunkio_put_chunk(struct h5m_store *s, struct h5m_dataset *ds, uint64_t row0, const void *src)
{
	struct h5m_iobuf enc = { 0 };
	hsize_t off[H5S_MAX_RANK] = { 0 };
	uint32_t mask = 0;
	const void *stored = src;
	size_t n = ds->chunk_bytes;
	int rc = 0;

	if (!h5m_store_writable(s))
		return -EROFS;
	if (ds->blosc) {
		size_t cap = ds->chunk_bytes + H5M_BLOSC_OVERHEAD;
		long m;

		if (h5m_iobuf_get(&enc, cap))
			return -ENOMEM;
		m = h5m_blosc_encode_cd(ds->blosc_ncd, ds->blosc_cd, src, ds->chunk_bytes, enc.data, cap);
		if (m > 0) {
			stored = enc.data;
			n = (size_t)m;
		} else {
			mask = 1; /* the optional filter refused: stored raw, as HDF5 does */
		}
	}
	off[0] = row0;
	h5m_hdf5_lock();
	if (!ds->chunked || row0 % ds->chunk[0] != 0 || row0 + ds->chunk[0] > ds->h5rows) {
		h5m_log(H5M_LOG_ERR, "%s: write-back of a chunk beyond the file's extent", ds->path);
		rc = -EIO;
	} else if (H5Dwrite_chunk(ds->did, H5P_DEFAULT, mask, off, n, stored) < 0) {
		rc = h5m_store_write_failure(s, ds, "writing a chunk");
	}
	h5m_hdf5_unlock();
	h5m_iobuf_put(&enc);
	return rc;
}
