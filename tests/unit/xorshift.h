/* xorshift.h: the deterministic pseudo-random numbers and bytes (xorshift64*) that the unit
 * tests seed their data with. Test support only; nothing of the daemon uses it. */
#ifndef H5MOUNT_TESTS_XORSHIFT_H
#define H5MOUNT_TESTS_XORSHIFT_H

#include <stddef.h>
#include <stdint.h>

/* The next number of the sequence whose state is *s (never 0). */
static inline uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* Fills buf with n incompressible bytes, the same for the same seed (0 counts as 1). */
static inline void fill_random(void *buf, size_t n, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t x = seed ? seed : 1;

	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(rnd(&x) >> 56);
}

#endif
