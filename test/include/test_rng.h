/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helper: the seeded pseudo-random numbers the integration and stress
 * tests draw sizes, patterns and choices from. test_rng_next(&state) is
 * splitmix64: it advances *state and returns the next 64-bit value, so a
 * test that starts from the same seed makes the same run every time. Each
 * thread keeps its own state; nothing here allocates or is shared.
 * Header-only.
 */
#ifndef TEST_RNG_H
#define TEST_RNG_H

#include <stdint.h>

static inline uint64_t
test_rng_next(uint64_t *state) {
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif /* TEST_RNG_H */
