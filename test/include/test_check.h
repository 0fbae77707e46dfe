/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Helpers shared by the cmocka integration tests:
 *   CHECK(cond, fmt, ...)   fails the test with the condition, file, line
 *                           and a formatted explanation;
 *   test_opaque(x)          x laundered through memory, so the compiler can
 *                           neither fold a call on it nor warn about it;
 *   test_pattern_fill / test_pattern_mismatch / test_pattern_intact
 *                           a byte pattern that depends on the seed and on
 *                           the offset, written into a block and checked.
 */
#ifndef TEST_CHECK_H
#define TEST_CHECK_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define CHECK(cond, ...)                                                                       \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			print_error("%s:%d: check failed: %s\n  ", __FILE__, __LINE__, #cond); \
			print_error(__VA_ARGS__);                                              \
			print_error("\n");                                                     \
			fail();                                                                \
		}                                                                              \
	} while (0)

static inline size_t
test_opaque(size_t x) {
	volatile size_t v = x;
	return v;
}

static inline unsigned char
test_pattern_byte(size_t i, unsigned seed) {
	return (unsigned char)(seed + i * 7 + (i >> 10));
}

static inline void
test_pattern_fill(void *p, size_t n, unsigned seed) {
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		b[i] = test_pattern_byte(i, seed);
	}
}

/* The offset of the first byte that differs from the pattern, or n. */
static inline size_t
test_pattern_mismatch(const void *p, size_t n, unsigned seed) {
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		if (b[i] != test_pattern_byte(i, seed)) {
			return i;
		}
	}
	return n;
}

static inline int
test_pattern_intact(const void *p, size_t n, unsigned seed) {
	return test_pattern_mismatch(p, n, seed) == n;
}

#endif
