/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helper: the quantum of the process allocator's size classes, and the
 * alignment malloc(n) guarantees with it. liballoc reports its quantum in
 * arenas.quantum (16 bytes by default, 8 in a --with-lg-quantum=3 build);
 * for an allocator without mallctl (glibc) it is _Alignof(max_align_t).
 * Classes are multiples of the quantum from the quantum up, and an
 * object of n bytes is aligned to the largest power of two up to the
 * quantum that is at most n (at least 8): with a quantum of 8 a 24-byte
 * class is only 8-byte aligned. Header-only.
 */
#ifndef TEST_QUANTUM_H
#define TEST_QUANTUM_H

#include <dlfcn.h>
#include <stddef.h>

typedef int (*test_quantum_mallctl_t)(const char *, void *, size_t *, void *, size_t);

static inline size_t
test_quantum(void) {
	test_quantum_mallctl_t ctl = (test_quantum_mallctl_t)dlsym(RTLD_DEFAULT, "mallctl");
	size_t q = 0, l = sizeof(q);
	if (ctl != NULL && ctl("arenas.quantum", &q, &l, NULL, 0) == 0 && l == sizeof(q) &&
	    q >= 8 && (q & (q - 1)) == 0) {
		return q;
	}
	return _Alignof(max_align_t);
}

/* The alignment malloc(n) guarantees under quantum q. */
static inline size_t
test_quantum_min_align(size_t n, size_t q) {
	size_t a = q;
	while (a > 8 && a > n) {
		a >>= 1;
	}
	return a;
}

#endif
