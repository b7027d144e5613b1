/* create.h: what making new HDF5 objects needs and the node table does not: a .npy descr as an
 * HDF5 file type, the chunk shape and filters of new datasets, creating and atomically replacing
 * a dataset, creating an empty file. Knows nothing of FUSE or of the store's node table. */
#ifndef H5MOUNT_CREATE_H
#define H5MOUNT_CREATE_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

/* Compression of new datasets (-o compress=). */
enum h5m_compress {
	H5M_COMPRESS_NONE,
	H5M_COMPRESS_BLOSC, /* filter 32001, blosclz + byte shuffle, PyTables' cd_values */
	H5M_COMPRESS_GZIP,  /* shuffle + deflate, as h5py's compression="gzip" */
};

/* Default levels: Blosc's filter default (PyTables' complevel 5), h5py's gzip default. */
#define H5M_CREATE_BLOSC_LEVEL 5u
#define H5M_CREATE_GZIP_LEVEL 4u

/* Bounds of -o chunk_size (bytes). */
#define H5M_CREATE_CHUNK_MIN ((size_t)1 << 10)
#define H5M_CREATE_CHUNK_MAX ((size_t)64 << 20)

/* Rows a new dataset is sized for when nothing says (PyTables' default expectedrows). */
#define H5M_CREATE_EXPECTED_ROWS 10000u

/* How new datasets are laid out: plain values, no resources. Zeroed = heuristic, no compression. */
struct h5m_layout {
	size_t chunk_bytes;        /* target bytes of one chunk (-o chunk_size); 0: the heuristic */
	enum h5m_compress compress;
	unsigned level;            /* 0..9; meaningful for BLOSC and GZIP */
};

/* Parses `none`, `blosc`, `blosc:L`, `gzip`, `gzip:L` (L a digit 0..9) into lay->compress and
 * lay->level (the default level when none is given). Returns 0, or -EINVAL with a short reason
 * in why[cap]. Pure: no HDF5, never allocates. */
int h5m_create_parse_compress(const char *text, struct h5m_layout *lay, char *why, size_t cap);

/* Builds the HDF5 file type that stores elements of the .npy descr literal `descr` (as
 * h5m_npy_header_parse gives it: quoted, whitespace outside quotes allowed), such that
 * h5m_dtype_describe() of it gives the same descr back (checked before returning). Bool is
 * h5py's int8 enum FALSE/TRUE; complex h5py's and PyTables' compound {r, i}; '|Sn' a NULLPAD
 * string; '|Vn' an opaque type; '<f16' the platform's long double; structured dtypes compounds
 * with their offsets and padding, subarray fields H5T_ARRAY, nesting as given. On success the
 * caller owns *type (H5Tclose) and 0 is returned. -ENOTSUP (a type the read path does not
 * serve as stored: object, unicode, datetime, titles, or one that would read back differently,
 * e.g. a struct of fields r and i reads back as complex) or -EINVAL (not a descr) with a
 * one-line reason in why[cap]; -ENOMEM. Caller holds the HDF5 lock. */
int h5m_create_type(const char *descr, hid_t *type, char *why, size_t cap);

/* Chooses the chunk dims chunk[0..trank] of a dataset of elements of `elem_size` bytes and
 * trailing dims tdims[0..trank), extendable along axis 0. The target chunk bytes are
 * lay->chunk_bytes when set, else PyTables' expectedrows model: 64 KiB for up to 10 MB of
 * expected data (expected_rows rows; 0 means H5M_CREATE_EXPECTED_ROWS), doubling per decade,
 * at most 1 MiB. Whole rows (all trailing dims) make a chunk when a row fits the target; else a
 * chunk is one row cut along its outermost trailing dims (the innermost stay whole where they
 * fit). Returns 0, or -EINVAL (a trailing dim of 0, trank > 31, sizes overflowing, a chunk of
 * 4 GiB or more) with a reason in why[cap]. Pure: no HDF5, never allocates. */
int h5m_create_chunk_dims(size_t elem_size, unsigned trank, const uint64_t *tdims, uint64_t expected_rows,
                          const struct h5m_layout *lay, hsize_t *chunk, char *why, size_t cap);

/* Creates dataset `name` (one link name, no '/') in group `loc`: element type `type`, shape
 * (0, tdims...), maxshape (None, tdims...), chunked per h5m_create_chunk_dims, fill value 0,
 * fill time IFSET (h5py's default), allocation incremental, filters per lay; the link name is
 * UTF-8. On success *out is the open dataset (the caller closes it) and 0 is returned; else
 * -EEXIST (the name exists), -ENOTSUP (Blosc requested but filter 32001 not registered),
 * -EINVAL (see h5m_create_chunk_dims) or -EIO, with a reason in why[cap]; nothing is left
 * behind. Writes HDF5 metadata: the caller holds the HDF5 lock and commits through the
 * journal afterwards. */
int h5m_create_dataset(hid_t loc, const char *name, hid_t type, unsigned trank, const uint64_t *tdims,
                       uint64_t expected_rows, const struct h5m_layout *lay, hid_t *out, char *why, size_t cap);

/* Replaces dataset `name` of group `loc` by a new, empty one made as h5m_create_dataset does:
 * creates it under a temporary link name in the same group, copies every attribute of the old
 * dataset (type, shape, value, name encoding), moves the old link aside, the new one into its
 * place (a UTF-8 name) and deletes the old one, undoing the earlier steps if a later one
 * fails. Nothing is committed here: the caller's one journal commit makes the whole
 * replacement atomic (ns-model rule 5); handles open on the old dataset stay valid on the
 * now-unlinked object. On success *out is the new dataset (caller closes it), 0 returned. On
 * error the temporary link is removed and the old dataset keeps its name: -ENOENT (no such
 * link), -EINVAL (not a dataset), -ENOTSUP (an attribute holding region references, which do not
 * copy), or as h5m_create_dataset, with a reason in why[cap]. Caller holds the HDF5 lock. */
int h5m_create_replace(hid_t loc, const char *name, hid_t type, unsigned trank, const uint64_t *tdims,
                       uint64_t expected_rows, const struct h5m_layout *lay, hid_t *out, char *why, size_t cap);

/* Creates the empty HDF5 file `path` (O_EXCL: fails if it exists) with HDF5's default
 * properties (superblock version 0, as h5py and PyTables make files), then fsyncs it and its
 * directory. Deliberately not a persistent free-space manager: in HDF5 1.10.8 it is consistent
 * only after H5Fclose, and a crash restored to a flush point corrupts the file at the next
 * write session (create.c says how). Returns 0, -EEXIST, or -EIO with HDF5's reason in
 * why[cap]; nothing is left behind on error. Takes no lock: call it before the store exists,
 * from the only thread. */
int h5m_create_file(const char *path, char *why, size_t cap);

#endif
