/* shape.c: formats and parses `.shape` sidecar text; no HDF5, no I/O. */
#include "h5mount/shape.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

int h5m_shape_format(unsigned rank, const uint64_t *dims, char *out, size_t cap)
{
	size_t n = 0;

	for (unsigned i = 0; i < rank; i++) {
		int w = snprintf(out + n, cap - n, "%s%" PRIu64, i ? " " : "", dims[i]);

		if (w < 0 || (size_t)w >= cap - n)
			return -ENOSPC;
		n += (size_t)w;
	}
	if (n + 2 > cap)
		return -ENOSPC;
	out[n++] = '\n';
	out[n] = 0;
	return (int)n;
}

int h5m_shape_parse(const char *text, size_t len, uint64_t *dims, unsigned max_rank, unsigned *rank)
{
	size_t i = 0;
	unsigned r = 0;

	if (len > 0 && text[len - 1] == '\n')
		len--;
	for (;;) {
		uint64_t v = 0;
		bool digits = false;

		while (i < len && (text[i] == ' ' || text[i] == '\t'))
			i++;
		if (i == len)
			break;
		while (i < len && text[i] >= '0' && text[i] <= '9') {
			if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(text[i] - '0'), &v))
				return -EINVAL;
			digits = true;
			i++;
		}
		if (!digits || r >= max_rank)
			return -EINVAL;
		if (i < len && text[i] != ' ' && text[i] != '\t')
			return -EINVAL;
		dims[r++] = v;
	}
	*rank = r;
	return 0;
}
