/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * calloc must return zeroed memory even when it reuses a block that the
 * program dirtied and freed.
 *
 * For small, large and huge sizes a block is allocated, filled with 0xff,
 * freed, and the same size is calloc'ed again many times; every byte of the
 * requested size must be zero. Variants: many blocks freed at once then
 * calloc'ed back (thread-cache and bin reuse), a huge block shrunk in place
 * with realloc before being freed (dirty tail inside a reused chunk),
 * calloc of a size that reuses part of a bigger freed region, and a seeded
 * random mix of sizes.
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

/* Index of the first non-zero byte of p[0..n), or n. */
static size_t
first_nonzero(const void *p, size_t n) {
	const unsigned char *b = p;
	size_t i = 0;
	for (; i < n && ((uintptr_t)(b + i) & 7) != 0; i++) {
		if (b[i] != 0)
			return i;
	}
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		if (w != 0)
			break;
	}
	for (; i < n; i++) {
		if (b[i] != 0)
			return i;
	}
	return n;
}

static void
calloc_checked(void **out, size_t nmemb, size_t size) {
	void *p = calloc(test_opaque(nmemb), test_opaque(size));
	CHECK(p != NULL, "calloc(%zu, %zu) failed", nmemb, size);
	size_t n = nmemb * size;
	size_t bad = first_nonzero(p, n);
	CHECK(bad == n, "calloc(%zu, %zu) = %p: byte %zu of %zu is 0x%02x", nmemb, size, p, bad, n,
	      ((unsigned char *)p)[bad]);
	*out = p;
}

static void
dirty_free_calloc(size_t size, int rounds) {
	for (int r = 0; r < rounds; r++) {
		void *p = malloc(test_opaque(size));
		CHECK(p != NULL, "malloc(%zu)", size);
		memset(p, 0xff, malloc_usable_size(p));
		free(p);
		void *q;
		calloc_checked(&q, 1, size);
		memset(q, 0xff, malloc_usable_size(q));
		free(q);
		/* The same bytes as an array of elements. */
		if (size >= 16 && size % 16 == 0) {
			calloc_checked(&q, size / 16, 16);
			memset(q, 0xff, size);
			free(q);
		}
	}
}

static void
test_small(void **state) {
	(void)state;
	for (size_t n = 1; n <= 1024; n += (n < 128 ? 1 : 7))
		dirty_free_calloc(n, 20);
	for (size_t n = 1024; n <= 14 * KiB; n += 1000)
		dirty_free_calloc(n, 20);
	dirty_free_calloc(14 * KiB, 50);
}

static void
test_large(void **state) {
	(void)state;
	static const size_t sizes[] = {14 * KiB + 1,   16 * KiB,   20 * KiB,  33 * KiB,
	                               100 * KiB,      128 * KiB,  200 * KiB, 1 * MiB,
	                               2 * MiB - 4096, 2 * MiB - 1};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		dirty_free_calloc(sizes[i], 20);
}

static void
test_huge(void **state) {
	(void)state;
	static const size_t sizes[] = {2 * MiB, 2 * MiB + 1, 3 * MiB, 4 * MiB, 9 * MiB + 5};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		dirty_free_calloc(sizes[i], 6);
}

/* Fill a whole bin or cache: many dirty blocks freed, then as many calloc'ed. */
static void
test_many_at_once(void **state) {
	(void)state;
	enum { N = 2000 };
	static void *ptrs[N];
	static const size_t sizes[] = {8, 48, 160, 1024, 3000, 20 * KiB, 100 * KiB};
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		int count = n > 16 * KiB ? 200 : N;
		for (int round = 0; round < 3; round++) {
			for (int i = 0; i < count; i++) {
				ptrs[i] = malloc(test_opaque(n));
				CHECK(ptrs[i] != NULL, "malloc(%zu)", n);
				memset(ptrs[i], 0xff, n);
			}
			for (int i = 0; i < count; i++)
				free(ptrs[i]);
			for (int i = 0; i < count; i++)
				calloc_checked(&ptrs[i], 1, n);
			for (int i = count; i-- > 0;) {
				memset(ptrs[i], 0xee, n);
				free(ptrs[i]);
			}
		}
	}
}

/* A huge block shrunk in place leaves a dirty tail; later calloc must not see it. */
static void
test_after_shrink(void **state) {
	(void)state;
	for (int r = 0; r < 8; r++) {
		size_t big = (size_t)(8 + r) * MiB;
		void *p = malloc(test_opaque(big));
		CHECK(p != NULL, "malloc(%zu)", big);
		memset(p, 0xff, big);
		p = realloc(p, test_opaque(2 * MiB + 4096));
		CHECK(p != NULL, "realloc shrink");
		void *q;
		calloc_checked(&q, 1, 5 * MiB);
		void *s;
		calloc_checked(&s, 1, 3 * MiB);
		free(p);
		free(q);
		free(s);
		/* Regrow a shrunk block with realloc and check calloc'ed neighbours again. */
		calloc_checked(&p, 1, 3 * MiB);
		p = realloc(p, test_opaque(2 * MiB + 1));
		CHECK(p != NULL, "realloc shrink 2");
		memset(p, 0xff, 2 * MiB + 1);
		free(p);
		calloc_checked(&p, 1, 3 * MiB);
		free(p);
	}
}

/* Parts of a freed dirty large/huge region come back through calloc of other sizes. */
static void
test_split_reuse(void **state) {
	(void)state;
	for (int r = 0; r < 10; r++) {
		void *p = malloc(test_opaque(1 * MiB + 300 * KiB));
		CHECK(p != NULL, "malloc");
		memset(p, 0xff, malloc_usable_size(p));
		free(p);
		void *a, *b, *c;
		calloc_checked(&a, 1, 300 * KiB);
		calloc_checked(&b, 5, 40 * KiB);
		calloc_checked(&c, 1, 600 * KiB);
		memset(a, 0xff, 300 * KiB);
		memset(b, 0xff, 200 * KiB);
		memset(c, 0xff, 600 * KiB);
		free(b);
		free(a);
		free(c);
		calloc_checked(&a, 1, 1 * MiB + 300 * KiB);
		free(a);
	}
}

static uint64_t rng_state = 42;

static uint64_t
rng(void) {
	return test_rng_next(&rng_state);
}

static void
test_random_mix(void **state) {
	(void)state;
	enum { SLOTS = 512, STEPS = 40000 };
	static void *ptrs[SLOTS];
	static size_t sizes[SLOTS];
	for (int s = 0; s < STEPS; s++) {
		int i = (int)(rng() % SLOTS);
		if (ptrs[i] != NULL) {
			memset(ptrs[i], 0xff, sizes[i]);
			free(ptrs[i]);
		}
		uint64_t r = rng() % 1000;
		size_t n = r < 900   ? 1 + rng() % 2048
		           : r < 998 ? 1 + rng() % (512 * KiB)
		                     : 2 * MiB + rng() % (2 * MiB);
		size_t m = 1 + rng() % 4;
		calloc_checked(&ptrs[i], m, n);
		sizes[i] = m * n;
	}
	for (int i = 0; i < SLOTS; i++)
		free(ptrs[i]);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small),        cmocka_unit_test(test_large),
	    cmocka_unit_test(test_huge),         cmocka_unit_test(test_many_at_once),
	    cmocka_unit_test(test_after_shrink), cmocka_unit_test(test_split_reuse),
	    cmocka_unit_test(test_random_mix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
