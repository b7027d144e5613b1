/* attrtext.h: reads the text of an extended attribute back into values of an HDF5 attribute's
 * type and shape: the inverse of h5m_dtype_format_values (README "Attributes as xattrs").
 * Pure parsing into memory; it reads and writes no attribute itself.
 *
 * The text of n values is n elements separated by any whitespace (the formatter's spaces and
 * newlines, or others: only the count must be the attribute's). An element is what the
 * formatter prints for it: decimal integers (range-checked against the stored type's bits),
 * floats as strtod reads them (nan, inf, -inf too; a finite value the stored precision cannot
 * hold is refused, not made infinite), enum members by name or by integer value, strings as
 * Python-style literals ('...' or "..." with \\ \' \" \n \t \r \xNN escapes) or, outside
 * compounds, arrays and sequences, as bare words; compounds as {name: value, ...} with every
 * member in its order, nested arrays in brackets per dimension, variable-length sequences in
 * brackets, opaque bytes in hex, object references as the path of their object ('' for a null
 * reference). A scalar string or object reference is the whole text, as it is. Not writable
 * from text: region references (their selection is not shown) and H5T_TIME; strings holding
 * a NUL byte (HDF5 strings end there). */
#ifndef H5MOUNT_ATTRTEXT_H
#define H5MOUNT_ATTRTEXT_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>

/* Parses text[0, len) as the values of an attribute of `nelem` elements (its dataspace's
 * count; `rank` its rank: 0 is a scalar) of memory type `memtype` (native numbers; strings in
 * the stored string type), whose stored type is `filetype` (ranges and precision; may be
 * H5I_INVALID_HID: memtype's then). Object references are made against `loc`. On success
 * returns 0 and sets *out to a malloc'd buffer of nelem * H5Tget_size(memtype) bytes for
 * H5Awrite, which owns any variable-length data in it: release it with h5m_attrtext_free().
 * Returns -EINVAL with a one-line reason in why[cap] (what did not parse, and where) or
 * -ENOMEM. Calls HDF5: the caller holds the HDF5 lock. */
int h5m_attrtext_parse(hid_t loc, hid_t filetype, hid_t memtype, const char *text, size_t len, size_t nelem,
                       unsigned rank, void **out, char *why, size_t cap);

/* Frees a buffer made by h5m_attrtext_parse() for the same memtype and nelem, with the
 * variable-length strings and sequences it owns. NULL is a no-op. Caller holds the HDF5 lock. */
void h5m_attrtext_free(hid_t memtype, void *buf, size_t nelem);

/* Whether text[0, len) is valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
 * Pure; never allocates. */
bool h5m_attrtext_is_utf8(const char *text, size_t len);

#endif
