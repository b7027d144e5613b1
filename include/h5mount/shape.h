/* shape.h: the text of a `.shape` sidecar ("750000 1000\n"): formatting and strict parsing.
 * Knows nothing of HDF5 or files. */
#ifndef H5MOUNT_SHAPE_H
#define H5MOUNT_SHAPE_H

#include <stddef.h>
#include <stdint.h>

/* Longest text for `rank` dims: 20 digits and a separator each, plus the newline. */
#define H5M_SHAPE_TEXT_MAX(rank) ((size_t)(rank) * 21 + 2)

/* Writes the dims separated by single spaces and a final '\n' (rank 0: just "\n") into out
 * (capacity cap, NUL-terminated). Returns the text length (without NUL) or -ENOSPC. */
int h5m_shape_format(unsigned rank, const uint64_t *dims, char *out, size_t cap);

/* Parses `len` bytes of sidecar text: decimal dims separated by spaces or tabs, an optional
 * final newline, nothing else. Stores up to max_rank dims and the count in *rank.
 * Returns 0 or -EINVAL (malformed, overflow, too many dims). */
int h5m_shape_parse(const char *text, size_t len, uint64_t *dims, unsigned max_rank, unsigned *rank);

#endif
