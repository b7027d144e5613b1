/* dtype.h: maps HDF5 element types to what the views show (.npy descr, element size, vlen
 * handling) and formats attribute values as text. Reads no file data itself (references in
 * attribute text are resolved to paths through HDF5). */
#ifndef H5MOUNT_DTYPE_H
#define H5MOUNT_DTYPE_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h5mount/npy.h"

enum h5m_dtype_kind {
	H5M_DT_FIXED,    /* fixed-size elements served as stored */
	H5M_DT_VLEN,     /* H5T_VLEN of a fixed type: rows of base elements */
	H5M_DT_VLEN_STR, /* variable-length strings: rows of bytes */
};

/* Served types: what HDF5 converts the stored elements to on every read and write. Integers
 * whose stored bits are not a numpy integer (a precision below the width, a bit offset, e.g.
 * N-bit data; or a width of 3, 5, 6 or 7 bytes) are served as the smallest numpy integer
 * that holds every value (same signedness and byte order: a 12-bit u16 -> '<u2' holding
 * 0..4095, a 3-byte integer -> '<i4'), also inside compounds, arrays and enums; the served
 * compound keeps its members' order and the gaps between them. Every other type is served
 * as stored. */
struct h5m_dtype {
	enum h5m_dtype_kind kind;
	size_t elem_size;     /* bytes of one served element (vlen: of one base element) */
	char *descr;          /* npy descr literal, owned (malloc) */
	hid_t mem_type;       /* fixed: the served element type, the memory type of every read and
	                       * write (owned); else H5I_INVALID_HID */
	bool converted;       /* the served type differs from the stored one: the file's bytes are
	                       * not the served bytes, so no path may copy them raw */
	unsigned extra_rank;  /* dims of a top-level H5T_ARRAY type, appended to the npy shape */
	uint64_t extra_dims[H5M_NPY_MAXDIMS];
	hid_t base_type;      /* vlen: served type of one base element (owned); else H5I_INVALID_HID */
};

/* Describes the element type `type` (a dataset's file type). On success fills *dt (release it
 * with h5m_dtype_destroy) and returns 0. Returns -ENOTSUP when the type cannot be shown as
 * bytes, with a short reason in why[cap] (e.g. "object references have no byte form");
 * -ENOMEM on allocation failure. Calls HDF5: the caller holds the HDF5 lock. */
int h5m_dtype_describe(hid_t type, struct h5m_dtype *dt, char *why, size_t cap);

/* Releases what h5m_dtype_describe() allocated; safe on a zeroed struct. Caller holds the HDF5 lock. */
void h5m_dtype_destroy(struct h5m_dtype *dt);

/* Formats `nelem` values of memory type `memtype` at `buf` (shape rank/dims, C order) as the text
 * of an extended attribute (README "Attributes as xattrs"): values separated by spaces within
 * the last dimension and by newlines between rows, no trailing newline; an array type adds its
 * dims to the shape; floats in the fewest digits that read back in the precision of `filetype`
 * (the stored type; H5I_INVALID_HID: memtype's); strings as they are when the attribute is a
 * scalar, else (and inside compounds) as quoted literals; object and region references as the
 * path of their object, resolved against `loc` (H5I_INVALID_HID: empty). Returns a malloc'd
 * NUL-terminated string in *out and its length in *len; 0, -EIO (unreadable array type) or
 * -ENOMEM. Caller holds the HDF5 lock. */
int h5m_dtype_format_values(hid_t loc, hid_t filetype, hid_t memtype, const void *buf, size_t nelem,
                            unsigned rank, const hsize_t *dims, char **out, size_t *len);

/* Formats a double as Python's repr does: the fewest significant digits that read back as the
 * same value, fixed notation between 1e-4 and 1e16 ("1000.0", "0.1"), else "1e+20". Writes into
 * out[cap] (cap >= 40). Never allocates. */
void h5m_dtype_format_double(double v, char *out, size_t cap);

#endif
