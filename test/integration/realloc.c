/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * realloc and reallocarray against the process allocator.
 *
 * A block is moved up through small, large and huge sizes and back down,
 * step by step and in single jumps (small <-> huge), with its contents
 * filled with a fresh pattern after every step and the preserved prefix
 * checked after the next. A seeded random walk does the same with many
 * live blocks so that in-place growth and shrinking meet neighbours.
 * realloc(NULL, n) must behave like malloc(n). realloc(p, 0) must not
 * crash and must release p: glibc frees p and returns NULL; liballoc (like
 * jemalloc) may return a unique minimum-size block instead, which the test
 * then frees. Growing in place and moving are both allowed.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_check.h"

#include "test_rng.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void) {
	return test_rng_next(&rng_state);
}

/* Reallocates *pp from old to n bytes, checks the kept prefix and refills. */
static void
step(void **pp, size_t old, size_t n, unsigned *seed) {
	void *q = realloc(*pp, test_opaque(n));
	CHECK(q != NULL, "realloc(%zu -> %zu) failed", old, n);
	CHECK(malloc_usable_size(q) >= n, "realloc(%zu -> %zu): usable %zu", old, n,
	      malloc_usable_size(q));
	size_t keep = old < n ? old : n;
	size_t bad = test_pattern_mismatch(q, keep, *seed);
	CHECK(bad == keep, "realloc(%zu -> %zu) lost byte %zu of the kept %zu", old, n, bad, keep);
	*seed += 1;
	test_pattern_fill(q, n, *seed);
	*pp = q;
}

static const size_t ladder[] = {
    1,           7,
    8,           9,
    16,          17,
    48,          100,
    128,         129,
    1000,        4096,
    8000,        14336,
    14337,       16384,
    16385,       50000,
    100000,      500000,
    1 * MiB,     2 * MiB - 4096,
    2 * MiB - 1, 2 * MiB,
    2 * MiB + 1, 3 * MiB,
    4 * MiB,     5 * MiB + 7,
    10 * MiB,    33 * MiB,
    64 * MiB,
};

#define NLADDER (sizeof(ladder) / sizeof(ladder[0]))

static void
test_ladder_up_and_down(void **state) {
	(void)state;
	unsigned seed = 1;
	void *p = malloc(test_opaque(ladder[0]));
	CHECK(p != NULL, "malloc failed");
	test_pattern_fill(p, ladder[0], seed);
	size_t old = ladder[0];
	for (size_t i = 1; i < NLADDER; i++) {
		step(&p, old, ladder[i], &seed);
		old = ladder[i];
	}
	for (size_t i = NLADDER - 1; i-- > 0;) {
		step(&p, old, ladder[i], &seed);
		old = ladder[i];
	}
	free(p);
}

/* Every pair of ladder sizes in one jump, both ways: small <-> large <-> huge. */
static void
test_jumps(void **state) {
	(void)state;
	unsigned seed = 100;
	for (size_t i = 0; i < NLADDER; i += 2) {
		for (size_t j = 0; j < NLADDER; j += 3) {
			size_t a = ladder[i], b = ladder[j];
			if (a > 8 * MiB || b > 8 * MiB)
				continue;
			void *p = malloc(test_opaque(a));
			CHECK(p != NULL, "malloc(%zu)", a);
			test_pattern_fill(p, a, seed);
			step(&p, a, b, &seed);
			step(&p, b, a, &seed);
			free(p);
		}
	}
}

/* Grow and shrink by small amounts inside one size class and across page boundaries. */
static void
test_small_steps(void **state) {
	(void)state;
	unsigned seed = 7;
	static const size_t bases[] = {64, 4096, 14336, 65536, 2 * MiB, 6 * MiB};
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		size_t n = bases[i];
		void *p = malloc(test_opaque(n));
		CHECK(p != NULL, "malloc(%zu)", n);
		test_pattern_fill(p, n, seed);
		size_t delta = n / 16 > 0 ? n / 16 : 1;
		for (int k = 0; k < 24; k++) {
			step(&p, n, n + delta, &seed);
			n += delta;
		}
		for (int k = 0; k < 36; k++) {
			size_t m = n > delta + 1 ? n - delta : 1;
			step(&p, n, m, &seed);
			n = m;
		}
		free(p);
	}
}

/* realloc to the same size (and within the usable size) keeps the block intact. */
static void
test_same_size(void **state) {
	(void)state;
	static const size_t sizes[] = {1, 100, 5000, 20000, 3 * MiB};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		void *p = malloc(test_opaque(n));
		CHECK(p != NULL, "malloc(%zu)", n);
		test_pattern_fill(p, n, 3);
		void *q = realloc(p, test_opaque(n));
		CHECK(q != NULL && test_pattern_mismatch(q, n, 3) == n, "realloc(p, same size %zu)",
		      n);
		size_t u = malloc_usable_size(q);
		void *r = realloc(q, test_opaque(u));
		CHECK(r != NULL && test_pattern_mismatch(r, n, 3) == n,
		      "realloc(p, usable size %zu)", u);
		free(r);
	}
}

/* Many live blocks, random new sizes, seeded: in-place resizing meets neighbours. */
static void
test_random_walk(void **state) {
	(void)state;
	enum { NBLOCKS = 256, STEPS = 20000 };
	static void *ptrs[NBLOCKS];
	static size_t sizes[NBLOCKS];
	static unsigned seeds[NBLOCKS];
	rng_state = 12345;
	for (int i = 0; i < NBLOCKS; i++) {
		sizes[i] = 1 + rng() % 256;
		ptrs[i] = malloc(test_opaque(sizes[i]));
		CHECK(ptrs[i] != NULL, "malloc");
		seeds[i] = (unsigned)i * 1000;
		test_pattern_fill(ptrs[i], sizes[i], seeds[i]);
	}
	for (int s = 0; s < STEPS; s++) {
		int i = (int)(rng() % NBLOCKS);
		uint64_t r = rng() % 1000;
		size_t n;
		if (r < 700)
			n = 1 + rng() % 1024; /* small */
		else if (r < 950)
			n = 1 + rng() % (256 * KiB); /* small or large */
		else if (r < 995)
			n = sizes[i] + 1 + rng() % 4096; /* grow a little */
		else
			n = 2 * MiB + rng() % (4 * MiB); /* huge */
		step(&ptrs[i], sizes[i], n, &seeds[i]);
		sizes[i] = n;
	}
	for (int i = 0; i < NBLOCKS; i++) {
		CHECK(test_pattern_mismatch(ptrs[i], sizes[i], seeds[i]) == sizes[i],
		      "block %d corrupted", i);
		free(ptrs[i]);
	}
}

static void
test_realloc_null(void **state) {
	(void)state;
	static const size_t sizes[] = {0, 1, 100, 20000, 3 * MiB};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		void *p = realloc(NULL, test_opaque(n));
		CHECK(p != NULL, "realloc(NULL, %zu) returned NULL", n);
		CHECK(malloc_usable_size(p) >= n, "realloc(NULL, %zu): usable %zu", n,
		      malloc_usable_size(p));
		memset(p, 0x77, n);
		void *q = reallocarray(NULL, test_opaque(n), 1);
		CHECK(q != NULL && q != p, "reallocarray(NULL, %zu, 1) = %p", n, q);
		free(q);
		free(p);
	}
}

static void
test_realloc_zero(void **state) {
	(void)state;
	static const size_t sizes[] = {1, 100, 20000, 3 * MiB};
	for (int round = 0; round < 100; round++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			void *p = malloc(test_opaque(sizes[i]));
			CHECK(p != NULL, "malloc(%zu)", sizes[i]);
			memset(p, 0x33, sizes[i]);
			/* glibc: frees p, returns NULL. Either way p is gone now. */
			void *q = realloc(p, test_opaque(0));
			if (q != NULL) {
				memset(q, 0, malloc_usable_size(q));
				free(q);
			}
		}
	}
	/* Nothing leaked into a broken state: the allocator still works. */
	void *p = malloc(100);
	CHECK(p != NULL, "malloc after realloc(p, 0)");
	free(p);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ladder_up_and_down), cmocka_unit_test(test_jumps),
	    cmocka_unit_test(test_small_steps),        cmocka_unit_test(test_same_size),
	    cmocka_unit_test(test_random_walk),        cmocka_unit_test(test_realloc_null),
	    cmocka_unit_test(test_realloc_zero),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
