/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Failure modes of the allocation API: impossible sizes, overflowing
 * element counts and bad alignments must never crash and must report the
 * error the way glibc does, since programs written for glibc depend on it.
 *
 *  - malloc, calloc, realloc, reallocarray, valloc, pvalloc, memalign,
 *    aligned_alloc with sizes beyond PTRDIFF_MAX (including sizes whose
 *    rounding to a page, chunk or alignment would wrap around): NULL and
 *    errno ENOMEM; posix_memalign returns ENOMEM and leaves *memptr alone.
 *  - calloc / reallocarray whose nmemb * size overflows: NULL + ENOMEM; a
 *    failed realloc or reallocarray leaves the old block intact and valid.
 *  - posix_memalign with an alignment that is not a power of two or not a
 *    multiple of sizeof(void *): EINVAL returned, *memptr untouched.
 *  - aligned_alloc with a non-power-of-two alignment: NULL + EINVAL (C17 /
 *    glibc 2.38) or, as glibc 2.36 does, a block aligned to the next power
 *    of two; both are accepted.
 *  - memalign rounds a non-power-of-two alignment up (glibc), and treats 0
 *    and 1 like malloc.
 *  - absurd alignments (2^62, 2^63, SIZE_MAX): NULL with ENOMEM or EINVAL.
 *  - free(NULL) is a no-op, and free() preserves errno (glibc >= 2.33).
 */
#define _GNU_SOURCE
#include <errno.h>
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

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static void *
opaque_ptr(void *p) {
	void *volatile v = p;
	return v;
}

#define PD_MAX ((size_t)PTRDIFF_MAX)

/* Sizes no allocation can satisfy; several wrap around when rounded up. */
static const size_t impossible[] = {
    SIZE_MAX,           SIZE_MAX - 1,
    SIZE_MAX - 15,      SIZE_MAX - 4095,
    SIZE_MAX - 4096,    SIZE_MAX - 2 * MiB + 1,
    SIZE_MAX - 2 * MiB, SIZE_MAX / 2 + 1,
    PD_MAX + 1,         PD_MAX,
    PD_MAX - 4095,      PD_MAX - 2 * MiB + 1,
    (size_t)1 << 62,    ((size_t)1 << 62) + 1,
    (size_t)1 << 61,
};

#define NIMPOSSIBLE (sizeof(impossible) / sizeof(impossible[0]))

#define EXPECT_ENOMEM(call, what, n)                                                               \
	do {                                                                                       \
		errno = 0;                                                                         \
		void *r_ = (call);                                                                 \
		int e_ = errno;                                                                    \
		CHECK(r_ == NULL, "%s(%#zx) returned %p", what, (size_t)(n), r_);                  \
		CHECK(e_ == ENOMEM, "%s(%#zx): errno %d (%s), want ENOMEM", what, (size_t)(n), e_, \
		      strerror(e_));                                                               \
	} while (0)

static void
test_malloc_too_big(void **state) {
	(void)state;
	for (size_t i = 0; i < NIMPOSSIBLE; i++) {
		size_t n = impossible[i];
		EXPECT_ENOMEM(malloc(test_opaque(n)), "malloc", n);
		EXPECT_ENOMEM(calloc(1, test_opaque(n)), "calloc(1, n)", n);
		EXPECT_ENOMEM(calloc(test_opaque(n), 1), "calloc(n, 1)", n);
		EXPECT_ENOMEM(realloc(NULL, test_opaque(n)), "realloc(NULL, n)", n);
		EXPECT_ENOMEM(reallocarray(NULL, 1, test_opaque(n)), "reallocarray(NULL, 1, n)", n);
		EXPECT_ENOMEM(valloc(test_opaque(n)), "valloc", n);
		EXPECT_ENOMEM(pvalloc(test_opaque(n)), "pvalloc", n);
		EXPECT_ENOMEM(memalign(64, test_opaque(n)), "memalign(64, n)", n);
		EXPECT_ENOMEM(memalign(2 * MiB, test_opaque(n)), "memalign(2 MiB, n)", n);
		EXPECT_ENOMEM(aligned_alloc(64, test_opaque(n)), "aligned_alloc(64, n)", n);
		EXPECT_ENOMEM(aligned_alloc(4096, test_opaque(n)), "aligned_alloc(4096, n)", n);

		static const size_t aligns[] = {8, 16, 4096, 2 * MiB, 64 * MiB};
		for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
			void *sentinel = (void *)(uintptr_t)0x1234;
			void *p = sentinel;
			int err = posix_memalign(&p, test_opaque(aligns[a]), test_opaque(n));
			CHECK(err == ENOMEM, "posix_memalign(%zu, %#zx) = %d, want ENOMEM",
			      aligns[a], n, err);
			CHECK(p == sentinel, "posix_memalign changed *memptr on failure (%p)", p);
		}
	}
}

static void
test_calloc_overflow(void **state) {
	(void)state;
	static const size_t pairs[][2] = {
	    {SIZE_MAX / 2, 3},
	    {3, SIZE_MAX / 2},
	    {(size_t)1 << 32, (size_t)1 << 32}, /* wraps to exactly 0 */
	    {((size_t)1 << 32) + 1, (size_t)1 << 32},
	    {SIZE_MAX, SIZE_MAX},
	    {2, SIZE_MAX / 2 + 1}, /* wraps to 0 */
	    {SIZE_MAX, 2},
	    {(size_t)1 << 62, 2}, /* 2^63: no wrap, but > PTRDIFF_MAX */
	    {PD_MAX / 16 + 1, 16},
	    {(size_t)1 << 33, (size_t)1 << 31}, /* 2^64 wraps to 0 */
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		size_t a = pairs[i][0], b = pairs[i][1];
		errno = 0;
		void *p = calloc(test_opaque(a), test_opaque(b));
		int e = errno;
		CHECK(p == NULL, "calloc(%#zx, %#zx) returned %p", a, b, p);
		CHECK(e == ENOMEM, "calloc(%#zx, %#zx): errno %d, want ENOMEM", a, b, e);

		errno = 0;
		p = reallocarray(NULL, test_opaque(a), test_opaque(b));
		e = errno;
		CHECK(p == NULL, "reallocarray(NULL, %#zx, %#zx) returned %p", a, b, p);
		CHECK(e == ENOMEM, "reallocarray(NULL, %#zx, %#zx): errno %d", a, b, e);
	}
	/* Zero-element requests are fine, whatever the other factor. */
	void *p = calloc(0, test_opaque(SIZE_MAX));
	CHECK(p != NULL, "calloc(0, SIZE_MAX) failed");
	free(p);
	p = calloc(test_opaque(SIZE_MAX), 0);
	CHECK(p != NULL, "calloc(SIZE_MAX, 0) failed");
	free(p);
}

/* A failed resize leaves the old block exactly as it was. */
static void
test_failed_resize_keeps_block(void **state) {
	(void)state;
	static const size_t sizes[] = {1, 40, 3000, 20000, 300 * KiB, 3 * MiB};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		void *p = malloc(test_opaque(n));
		CHECK(p != NULL, "malloc(%zu)", n);
		test_pattern_fill(p, n, (unsigned)i);

		for (size_t k = 0; k < NIMPOSSIBLE; k++) {
			errno = 0;
			void *q = realloc(opaque_ptr(p), test_opaque(impossible[k]));
			int e = errno;
			CHECK(q == NULL, "realloc(%zu-byte block, %#zx) returned %p", n,
			      impossible[k], q);
			CHECK(e == ENOMEM, "realloc(%zu-byte block, %#zx): errno %d, want ENOMEM",
			      n, impossible[k], e);
			CHECK(test_pattern_intact(p, n, (unsigned)i),
			      "failed realloc changed the old block");
		}

		errno = 0;
		void *q = reallocarray(opaque_ptr(p), test_opaque(SIZE_MAX / 2), 3);
		int e = errno;
		CHECK(q == NULL && e == ENOMEM, "reallocarray overflow: %p errno %d", q, e);
		CHECK(test_pattern_intact(p, n, (unsigned)i),
		      "failed reallocarray changed the old block");
		errno = 0;
		q = reallocarray(opaque_ptr(p), test_opaque((size_t)1 << 32), (size_t)1 << 32);
		e = errno;
		CHECK(q == NULL && e == ENOMEM, "reallocarray 2^32*2^32: %p errno %d", q, e);
		CHECK(test_pattern_intact(p, n, (unsigned)i),
		      "failed reallocarray changed the old block");

		/* Still a valid, resizable block. */
		q = realloc(p, test_opaque(n * 2 + 1));
		CHECK(q != NULL && test_pattern_intact(q, n, (unsigned)i),
		      "block unusable after failures");
		free(q);
	}
}

static void
test_posix_memalign_einval(void **state) {
	(void)state;
	static const size_t bad[] = {0,  1,  2,  3,    4,    sizeof(void *) / 2, 12,
	                             24, 48, 96, 4095, 4097, 3 * 4096,           SIZE_MAX};
	static const size_t sizes[] = {0, 1, 100, 5000, 3 * MiB};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bad[i] >= sizeof(void *) && (bad[i] & (bad[i] - 1)) == 0)
			continue; /* a valid alignment on this platform */
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			void *sentinel = (void *)(uintptr_t)0x5678;
			void *p = sentinel;
			int err = posix_memalign(&p, test_opaque(bad[i]), test_opaque(sizes[k]));
			CHECK(err == EINVAL, "posix_memalign(%zu, %zu) = %d, want EINVAL", bad[i],
			      sizes[k], err);
			CHECK(p == sentinel, "posix_memalign(%zu, ..) changed *memptr", bad[i]);
		}
	}
}

static void
test_absurd_alignments(void **state) {
	(void)state;
	static const size_t aligns[] = {(size_t)1 << 62, (size_t)1 << 63, SIZE_MAX,
	                                ((size_t)1 << 62) + 1};
	for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		size_t a = aligns[i];
		int pow2 = (a & (a - 1)) == 0;
		for (size_t n = 1; n <= 4096; n *= 64) {
			void *p = (void *)(uintptr_t)0x9abc;
			int err = posix_memalign(&p, test_opaque(a), test_opaque(n));
			if (pow2)
				CHECK(err == ENOMEM || err == EINVAL,
				      "posix_memalign(%#zx, %zu) = %d", a, n, err);
			else
				CHECK(err == EINVAL, "posix_memalign(%#zx, %zu) = %d", a, n, err);
			CHECK(p == (void *)(uintptr_t)0x9abc, "*memptr changed");

			errno = 0;
			p = memalign(test_opaque(a), test_opaque(n));
			int e = errno;
			CHECK(p == NULL && (e == ENOMEM || e == EINVAL),
			      "memalign(%#zx, %zu) = %p errno %d", a, n, p, e);

			errno = 0;
			p = aligned_alloc(test_opaque(a), test_opaque(n));
			e = errno;
			CHECK(p == NULL && (e == ENOMEM || e == EINVAL),
			      "aligned_alloc(%#zx, %zu) = %p errno %d", a, n, p, e);
		}
	}
}

static size_t
next_pow2(size_t x) {
	size_t p = 1;
	while (p < x)
		p <<= 1;
	return p;
}

static void
test_aligned_alloc_non_power_of_two(void **state) {
	(void)state;
	static const size_t bad[] = {0, 3, 12, 24, 48, 100, 4095, 4097, 24576};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		void *p = aligned_alloc(test_opaque(bad[i]), test_opaque(64));
		int e = errno;
		if (p == NULL) {
			CHECK(e == EINVAL,
			      "aligned_alloc(%zu, 64) = NULL with errno %d, want EINVAL", bad[i],
			      e);
		} else {
			/* glibc <= 2.37 behaviour: treated like memalign. */
			size_t want = next_pow2(bad[i]);
			CHECK(((uintptr_t)p & (want - 1)) == 0,
			      "aligned_alloc(%zu, 64) = %p is not even %zu-aligned", bad[i], p,
			      want);
			memset(p, 1, 64);
			free(p);
		}
	}
}

static void
test_memalign_rounds_up(void **state) {
	(void)state;
	static const size_t odd[] = {3, 12, 24, 48, 100, 1000, 4095, 4097, 100000, 3 * MiB};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		size_t want = next_pow2(odd[i]);
		for (size_t n = 1; n <= 8192; n *= 32) {
			errno = 0;
			void *p = memalign(test_opaque(odd[i]), test_opaque(n));
			CHECK(p != NULL,
			      "memalign(%zu, %zu) failed (errno %d); glibc rounds the "
			      "alignment up to %zu",
			      odd[i], n, errno, want);
			CHECK(((uintptr_t)p & (want - 1)) == 0,
			      "memalign(%zu, %zu) = %p not %zu-aligned", odd[i], n, p, want);
			memset(p, 2, n);
			free(p);
		}
	}
	for (size_t a = 0; a <= 2; a++) {
		void *p = memalign(test_opaque(a), test_opaque(100));
		CHECK(p != NULL, "memalign(%zu, 100) failed; glibc treats it as malloc", a);
		CHECK(((uintptr_t)p & 15) == 0, "memalign(%zu, 100) = %p", a, p);
		memset(p, 3, 100);
		free(p);
	}
}

static void
test_free_null_and_errno(void **state) {
	(void)state;
	for (int i = 0; i < 1000; i++)
		free(opaque_ptr(NULL));

	static const size_t sizes[] = {8, 5000, 100 * KiB, 3 * MiB, 40 * MiB};
	for (int round = 0; round < 20; round++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			void *p = malloc(test_opaque(sizes[i]));
			CHECK(p != NULL, "malloc(%zu)", sizes[i]);
			memset(p, 1, sizes[i]);
			errno = 4242;
			free(p);
			CHECK(errno == 4242, "free() of a %zu-byte block changed errno to %d",
			      sizes[i], errno);
		}
	}
	errno = 77;
	free(NULL);
	CHECK(errno == 77, "free(NULL) changed errno");
}

/* After every failure above the allocator still works. */
static void
test_still_works(void **state) {
	(void)state;
	void *p = malloc(100), *q = calloc(10, 10), *r = malloc(3 * MiB);
	CHECK(p && q && r, "allocator broken after error paths");
	free(p);
	free(q);
	free(r);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_malloc_too_big),
	    cmocka_unit_test(test_calloc_overflow),
	    cmocka_unit_test(test_failed_resize_keeps_block),
	    cmocka_unit_test(test_posix_memalign_einval),
	    cmocka_unit_test(test_absurd_alignments),
	    cmocka_unit_test(test_aligned_alloc_non_power_of_two),
	    cmocka_unit_test(test_memalign_rounds_up),
	    cmocka_unit_test(test_free_null_and_errno),
	    cmocka_unit_test(test_still_works),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
