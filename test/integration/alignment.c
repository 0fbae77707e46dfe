/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Alignment guarantees of every allocation entry point, run against the
 * process allocator (liballoc when linked with -lalloc or preloaded).
 *
 * malloc, calloc, realloc and reallocarray must return memory aligned for
 * max_align_t (16) when the size is 16 or more and to 8 below that.
 * posix_memalign, aligned_alloc and memalign are tried with every power of
 * two from sizeof(void *) up to 1 GiB, with sizes below, at and above the
 * alignment (small sizes only for the largest alignments), and the whole
 * requested size is written and read back so overlapping or short blocks
 * show up; so are large blocks with alignments whose slack exceeds the largest
 * run class. valloc must be page-aligned; pvalloc must round the size up to
 * whole pages (liballoc: pvalloc(0) gives one page; glibc gives a page-aligned
 * minimum block, which is all POSIX-ish callers may assume).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_check.h"
#include "test_quantum.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

static int
is_aligned(const void *p, size_t a) {
	return ((uintptr_t)p & (a - 1)) == 0;
}

/* The alignment malloc(size) must honour: max_align_t (16) for >= 16 bytes,
 * 8 below; under a smaller quantum (liballoc --with-lg-quantum=3) only
 * what the quantum gives (test_quantum.h). */
static size_t
min_align(size_t size) {
	static size_t quantum;
	if (quantum == 0) {
		quantum = test_quantum();
	}
	return test_quantum_min_align(size, quantum);
}

static int
allocator_is_glibc(void) {
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	if (sym == NULL || !dladdr(sym, &info) || info.dli_fname == NULL)
		return 0;
	const char *base = strrchr(info.dli_fname, '/');
	base = base ? base + 1 : info.dli_fname;
	return strncmp(base, "libc.so", 7) == 0 || strncmp(base, "libc-", 5) == 0;
}

static const size_t plain_sizes[] = {
    0,       1,           2,       3,           7,       8,      9,      15,      16,
    17,      24,          31,      32,          33,      47,     48,     49,      63,
    64,      65,          80,      96,          100,     112,    127,    128,     129,
    160,     192,         255,     256,         257,     320,    384,    448,     511,
    512,     513,         640,     1000,        1024,    1500,   2048,   3000,    4095,
    4096,    4097,        6000,    8192,        10000,   14336,  14337,  16383,   16384,
    16385,   20000,       32768,   65536,       100000,  262144, 524289, 1 * MiB, 2 * MiB - 1,
    2 * MiB, 2 * MiB + 1, 3 * MiB, 5 * MiB + 3, 8 * MiB,
};

#define NPLAIN (sizeof(plain_sizes) / sizeof(plain_sizes[0]))

static void
test_malloc_alignment(void **state) {
	(void)state;
	void *ptrs[NPLAIN];
	for (int round = 0; round < 4; round++) {
		for (size_t i = 0; i < NPLAIN; i++) {
			size_t n = plain_sizes[i];
			ptrs[i] = malloc(test_opaque(n));
			CHECK(ptrs[i] != NULL, "malloc(%zu) failed", n);
			CHECK(is_aligned(ptrs[i], min_align(n)), "malloc(%zu) = %p not %zu-aligned",
			      n, ptrs[i], min_align(n));
			test_pattern_fill(ptrs[i], n, (unsigned)i);
		}
		for (size_t i = 0; i < NPLAIN; i++) {
			size_t n = plain_sizes[i];
			CHECK(test_pattern_mismatch(ptrs[i], n, (unsigned)i) == n,
			      "malloc(%zu) block overwritten", n);
			free(ptrs[i]);
		}
	}
}

static void
test_calloc_alignment(void **state) {
	(void)state;
	for (size_t i = 0; i < NPLAIN; i++) {
		size_t n = plain_sizes[i];
		void *p = calloc(1, test_opaque(n));
		CHECK(p != NULL, "calloc(1, %zu) failed", n);
		CHECK(is_aligned(p, min_align(n)), "calloc(1, %zu) = %p misaligned", n, p);
		free(p);
		if (n % 4 == 0 && n > 0) {
			p = calloc(test_opaque(n / 4), 4);
			CHECK(p != NULL, "calloc(%zu, 4) failed", n / 4);
			CHECK(is_aligned(p, min_align(n)), "calloc(%zu, 4) = %p misaligned", n / 4,
			      p);
			free(p);
		}
	}
}

static void
test_realloc_alignment(void **state) {
	(void)state;
	void *p = NULL;
	size_t old = 0;
	/* Up through every size, then back down. */
	for (int dir = 0; dir < 2; dir++) {
		for (size_t k = 0; k < NPLAIN; k++) {
			size_t i = dir == 0 ? k : NPLAIN - 1 - k;
			size_t n = plain_sizes[i];
			if (n == 0)
				continue;
			void *q = realloc(p, test_opaque(n));
			CHECK(q != NULL, "realloc(%p, %zu) failed", p, n);
			CHECK(is_aligned(q, min_align(n)), "realloc(.., %zu) = %p misaligned", n,
			      q);
			size_t keep = old < n ? old : n;
			CHECK(test_pattern_mismatch(q, keep, 0x5a) == keep,
			      "realloc(%zu -> %zu) lost contents", old, n);
			test_pattern_fill(q, n, 0x5a);
			p = q;
			old = n;
		}
	}
	free(p);

	p = reallocarray(NULL, test_opaque(3), 33);
	CHECK(p != NULL && is_aligned(p, 16), "reallocarray(NULL, 3, 33) = %p", p);
	p = reallocarray(p, test_opaque(1000), 3);
	CHECK(p != NULL && is_aligned(p, 16), "reallocarray(p, 1000, 3) = %p", p);
	free(p);
}

/* Sizes to try for a given alignment: around the alignment while that is cheap. */
static size_t
aligned_sizes(size_t align, size_t *out) {
	size_t n = 0;
	out[n++] = 1;
	out[n++] = 8;
	out[n++] = 24;
	out[n++] = 100;
	out[n++] = 4096;
	out[n++] = 20000;
	if (align <= 4 * MiB) {
		out[n++] = align / 2 + 1;
		out[n++] = align - 1;
		out[n++] = align;
		out[n++] = align + 1;
		out[n++] = 2 * align + 8;
	} else {
		out[n++] = 2 * MiB + 1;
	}
	return n;
}

enum { USE_POSIX_MEMALIGN, USE_ALIGNED_ALLOC, USE_MEMALIGN, NFUNCS };
static const char *const func_names[] = {"posix_memalign", "aligned_alloc", "memalign"};

static void *
aligned_call(int func, size_t align, size_t size) {
	void *p = NULL;
	switch (func) {
	case USE_POSIX_MEMALIGN: {
		int err = posix_memalign(&p, test_opaque(align), test_opaque(size));
		if (err != 0) {
			print_error("posix_memalign(%zu, %zu) returned %d\n", align, size, err);
			return NULL;
		}
		return p;
	}
	case USE_ALIGNED_ALLOC:
		return aligned_alloc(test_opaque(align), test_opaque(size));
	default:
		return memalign(test_opaque(align), test_opaque(size));
	}
}

static void
aligned_family(int func) {
	for (size_t align = sizeof(void *); align <= 1 * GiB; align <<= 1) {
		size_t sizes[16];
		void *ptrs[16];
		size_t n = aligned_sizes(align, sizes);
		for (size_t i = 0; i < n; i++) {
			ptrs[i] = aligned_call(func, align, sizes[i]);
			CHECK(ptrs[i] != NULL, "%s(%zu, %zu) failed", func_names[func], align,
			      sizes[i]);
			CHECK(is_aligned(ptrs[i], align), "%s(%zu, %zu) = %p misaligned",
			      func_names[func], align, sizes[i], ptrs[i]);
			CHECK(malloc_usable_size(ptrs[i]) >= sizes[i],
			      "%s(%zu, %zu): usable size %zu too small", func_names[func], align,
			      sizes[i], malloc_usable_size(ptrs[i]));
			test_pattern_fill(ptrs[i], sizes[i], (unsigned)(align + i));
		}
		for (size_t i = 0; i < n; i++) {
			CHECK(test_pattern_mismatch(ptrs[i], sizes[i], (unsigned)(align + i)) ==
			          sizes[i],
			      "%s(%zu, %zu) block overwritten", func_names[func], align, sizes[i]);
			free(ptrs[i]);
		}
	}
}

static void
test_posix_memalign(void **state) {
	(void)state;
	aligned_family(USE_POSIX_MEMALIGN);
}

static void
test_aligned_alloc(void **state) {
	(void)state;
	aligned_family(USE_ALIGNED_ALLOC);
}

static void
test_memalign(void **state) {
	(void)state;
	aligned_family(USE_MEMALIGN);
}

/*
 * Blocks whose size equals their (chunk-sized or larger) alignment, written in full;
 * for 1 GiB a 64 MiB block keeps the test fast while still spanning many chunks.
 */
static void
test_big_alignments(void **state) {
	(void)state;
	static const size_t aligns[] = {2 * MiB, 4 * MiB, 64 * MiB, 1 * GiB};
	for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		size_t a = aligns[i];
		size_t size = a > 64 * MiB ? 64 * MiB + 1 : a;
		for (int func = 0; func < NFUNCS; func++) {
			void *p = aligned_call(func, a, size);
			CHECK(p != NULL, "%s(%zu, %zu) failed", func_names[func], a, size);
			CHECK(is_aligned(p, a), "%s(%zu, %zu) = %p misaligned", func_names[func], a,
			      size, p);
			memset(p, 0xa5, size);
			CHECK(((unsigned char *)p)[size - 1] == 0xa5, "last byte not written");
			free(p);
			/* And a small object with the same alignment, next to it. */
			void *s = aligned_call(func, a, 64);
			CHECK(s != NULL && is_aligned(s, a), "%s(%zu, 64) = %p", func_names[func],
			      a, s);
			memset(s, 0x5a, 64);
			free(s);
		}
	}
}

/*
 * Large blocks (just under a chunk) with alignments of 8 KiB to 1 MiB: the
 * block plus the slack the alignment needs can exceed the largest run size
 * class, which once made liballoc dereference a missing free run (found
 * by test/fuzz/api). Two live at once, so the second needs fresh memory.
 */
static void
test_large_aligned(void **state) {
	(void)state;
	static const size_t sizes[] = {1536 * KiB, 1792 * KiB - 1, 1792 * KiB};
	for (size_t align = 8 * KiB; align <= 1 * MiB; align <<= 1) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			for (int func = 0; func < NFUNCS; func++) {
				void *p[2];
				for (int k = 0; k < 2; k++) {
					p[k] = aligned_call(func, align, sizes[i]);
					CHECK(p[k] != NULL && is_aligned(p[k], align),
					      "%s(%zu, %zu) = %p", func_names[func], align,
					      sizes[i], p[k]);
					test_pattern_fill(p[k], sizes[i],
					                  (unsigned)(align + i + k));
				}
				for (int k = 0; k < 2; k++) {
					CHECK(test_pattern_mismatch(p[k], sizes[i],
					                            (unsigned)(align + i + k)) ==
					          sizes[i],
					      "%s(%zu, %zu) block overwritten", func_names[func],
					      align, sizes[i]);
					free(p[k]);
				}
			}
		}
	}
}

static void
test_valloc(void **state) {
	(void)state;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 20000, 2 * MiB + 5, 3 * MiB};
	void *ptrs[sizeof(sizes) / sizeof(sizes[0])];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ptrs[i] = valloc(test_opaque(sizes[i]));
		CHECK(ptrs[i] != NULL, "valloc(%zu) failed", sizes[i]);
		CHECK(is_aligned(ptrs[i], page), "valloc(%zu) = %p not page-aligned", sizes[i],
		      ptrs[i]);
		test_pattern_fill(ptrs[i], sizes[i], (unsigned)i);
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CHECK(test_pattern_mismatch(ptrs[i], sizes[i], (unsigned)i) == sizes[i],
		      "valloc(%zu) overwritten", sizes[i]);
		free(ptrs[i]);
	}
}

static void
test_pvalloc(void **state) {
	(void)state;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	static const size_t sizes[] = {1, 100, 4095, 4096, 4097, 8191, 20000, 2 * MiB + 5};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		size_t rounded = (n + page - 1) & ~(page - 1);
		void *p = pvalloc(test_opaque(n));
		CHECK(p != NULL, "pvalloc(%zu) failed", n);
		CHECK(is_aligned(p, page), "pvalloc(%zu) = %p not page-aligned", n, p);
		CHECK(malloc_usable_size(p) >= rounded, "pvalloc(%zu): usable %zu < %zu", n,
		      malloc_usable_size(p), rounded);
		/* The rounded-up size belongs to the caller. */
		test_pattern_fill(p, rounded, (unsigned)n);
		CHECK(test_pattern_mismatch(p, rounded, (unsigned)n) == rounded,
		      "pvalloc(%zu) overwritten", n);
		free(p);
	}

	void *p = pvalloc(test_opaque(0));
	CHECK(p != NULL, "pvalloc(0) failed");
	CHECK(is_aligned(p, page), "pvalloc(0) = %p not page-aligned", p);
	if (!allocator_is_glibc()) {
		/* glibc hands out a minimum chunk here; liballoc documents one page. */
		CHECK(malloc_usable_size(p) >= page, "pvalloc(0): usable %zu < one page",
		      malloc_usable_size(p));
		memset(p, 0x11, page);
	}
	free(p);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_malloc_alignment),
	    cmocka_unit_test(test_calloc_alignment),
	    cmocka_unit_test(test_realloc_alignment),
	    cmocka_unit_test(test_posix_memalign),
	    cmocka_unit_test(test_aligned_alloc),
	    cmocka_unit_test(test_memalign),
	    cmocka_unit_test(test_big_alignments),
	    cmocka_unit_test(test_large_aligned),
	    cmocka_unit_test(test_valloc),
	    cmocka_unit_test(test_pvalloc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
