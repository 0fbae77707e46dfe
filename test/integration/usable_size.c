/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * malloc_usable_size against the process allocator.
 *
 * For every size up to a few KiB and for sizes around each power of two up
 * to 64 MiB, the usable size must be at least the request and every usable
 * byte must be writable without disturbing neighbouring blocks.
 * malloc_usable_size(NULL) is 0. When the allocator is jemalloc-style (it
 * exports mallctl, as liballoc does) the usable size must also follow the
 * jemalloc 4.x size classes with its quantum (arenas.quantum, 16 bytes by
 * default): 8, 16, 32, 48, ..., 128, 160, ... (four classes per doubling;
 * 8, 16, 24, 32, 40, ... under an 8-byte quantum), whole pages from 16 KiB
 * on, and
 * must agree with nallocx(size, 0) when that exists. liballoc is recognised
 * by mallctl or by the name of the object malloc comes from; on other
 * allocators (glibc) those checks are skipped.
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

#include "test_fill.h"
#include "test_quantum.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

typedef size_t (*nallocx_fn)(size_t, int);

static int jemalloc_style;
/* arenas.quantum (test_quantum.h). */
static size_t quantum;
static nallocx_fn nallocx_ptr;

/* True if malloc comes from an object whose file name starts with "liballoc". */
static int
allocator_is_liballoc(void) {
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	if (sym == NULL || !dladdr(sym, &info) || info.dli_fname == NULL)
		return 0;
	const char *base = strrchr(info.dli_fname, '/');
	base = base ? base + 1 : info.dli_fname;
	return strncmp(base, "liballoc", 8) == 0;
}

static int
setup(void **state) {
	(void)state;
	/* liballoc's redzones (MALLOC_CONF=redzone:true) take bytes off the
	 * small classes. */
	jemalloc_style = (dlsym(RTLD_DEFAULT, "mallctl") != NULL || allocator_is_liballoc()) &&
	                 !test_fill_redzone();
	nallocx_ptr = (nallocx_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "nallocx");
	quantum = test_quantum();
	if (!jemalloc_style)
		print_message("# not a jemalloc-style allocator: size-class checks skipped\n");
	return 0;
}

static size_t
lg_floor(size_t x) {
	return (size_t)(63 - __builtin_clzll((unsigned long long)x));
}

/*
 * jemalloc 4.x size class of n: 8 for n <= 8, then n rounded up to a
 * spacing of max(quantum, 2^(lg(n - 1) - 2)), which yields four classes
 * per doubling above 4 quanta.
 */
static size_t
size_class(size_t n) {
	if (n <= 8)
		return 8;
	size_t delta = (size_t)1 << (lg_floor(n - 1) >= 2 ? lg_floor(n - 1) - 2 : 0);
	if (delta < quantum)
		delta = quantum;
	return (n + delta - 1) & ~(delta - 1);
}

/* Checks one size: usable >= n, all usable bytes writable, class rules if jemalloc-style. */
static void
check_size(size_t n, size_t page) {
	unsigned char *p = malloc(test_opaque(n));
	CHECK(p != NULL, "malloc(%zu) failed", n);
	size_t usable = malloc_usable_size(p);
	CHECK(usable >= n, "malloc(%zu): usable size %zu is smaller", n, usable);
	CHECK(malloc_usable_size(p) == usable, "malloc_usable_size not stable for %zu", n);
	memset(p, 0xc3, usable);
	CHECK(p[0] == 0xc3 && p[usable - 1] == 0xc3, "usable bytes of malloc(%zu) not kept", n);

	if (jemalloc_style) {
		size_t cls = size_class(n == 0 ? 1 : n);
		if (cls < 14 * KiB + 1) {
			CHECK(usable == cls, "malloc(%zu): usable %zu, jemalloc small class %zu", n,
			      usable, cls);
		} else {
			CHECK(usable % page == 0, "malloc(%zu): usable %zu not whole pages", n,
			      usable);
			size_t bound = cls < ((n + page - 1) & ~(page - 1))
			                   ? ((n + page - 1) & ~(page - 1))
			                   : cls;
			CHECK(usable <= bound, "malloc(%zu): usable %zu wastes more than class %zu",
			      n, usable, bound);
		}
		if (nallocx_ptr != NULL && n != 0) {
			size_t nx = nallocx_ptr(n, 0);
			CHECK(nx == usable, "nallocx(%zu, 0) = %zu but malloc_usable_size = %zu", n,
			      nx, usable);
		}
	}
	free(p);
}

static void
test_null(void **state) {
	(void)state;
	CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu",
	      malloc_usable_size(NULL));
}

static void
test_small_sizes(void **state) {
	(void)state;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (size_t n = 0; n <= 5000; n++)
		check_size(n, page);
	for (size_t n = 5000; n <= 17 * KiB; n += 13)
		check_size(n, page);
}

static void
test_powers_of_two(void **state) {
	(void)state;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (size_t b = 4 * KiB; b <= 64 * MiB; b <<= 1) {
		static const int offsets[] = {-17, -1, 0, 1, 17};
		for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++)
			check_size(b + (size_t)(ptrdiff_t)offsets[i], page);
		check_size(b + b / 4 + 1, page);
		check_size(b + b / 2 + 3, page);
		if (b < 64 * MiB)
			check_size(b + 3 * b / 4 + 5, page);
	}
}

/* Whole usable areas of neighbouring blocks do not overlap. */
static void
test_no_overlap(void **state) {
	(void)state;
	enum { N = 512 };
	static unsigned char *ptrs[N];
	static size_t usable[N];
	for (int i = 0; i < N; i++) {
		size_t n = (size_t)(i % 64) * 24 + (size_t)(i / 64) * 3000 + 1;
		ptrs[i] = malloc(test_opaque(n));
		CHECK(ptrs[i] != NULL, "malloc(%zu) failed", n);
		usable[i] = malloc_usable_size(ptrs[i]);
		CHECK(usable[i] >= n, "usable %zu < %zu", usable[i], n);
		memset(ptrs[i], i & 0xff, usable[i]);
	}
	for (int i = 0; i < N; i++) {
		for (size_t j = 0; j < usable[i]; j++) {
			CHECK(ptrs[i][j] == (unsigned char)(i & 0xff),
			      "block %d byte %zu of %zu overwritten by a neighbour", i, j,
			      usable[i]);
		}
		free(ptrs[i]);
	}
}

/* Same request size, same usable size, across many live blocks (class determinism). */
static void
test_stable_classes(void **state) {
	(void)state;
	static const size_t sizes[] = {1, 24, 100, 1000, 5000, 20000, 300000, 3 * MiB};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *ptrs[64];
		size_t first = 0;
		for (int k = 0; k < 64; k++) {
			ptrs[k] = malloc(test_opaque(sizes[i]));
			CHECK(ptrs[k] != NULL, "malloc(%zu) failed", sizes[i]);
			size_t u = malloc_usable_size(ptrs[k]);
			if (k == 0)
				first = u;
			if (jemalloc_style)
				CHECK(u == first, "malloc(%zu): usable %zu then %zu", sizes[i],
				      first, u);
			else
				CHECK(u >= sizes[i], "usable %zu < %zu", u, sizes[i]);
		}
		for (int k = 0; k < 64; k++)
			free(ptrs[k]);
	}
}

/* Usable size of the other allocation functions is at least what was asked. */
static void
test_other_functions(void **state) {
	(void)state;
	static const size_t sizes[] = {1, 17, 1000, 16385, 2 * MiB + 1};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		void *p = calloc(1, test_opaque(n));
		CHECK(p && malloc_usable_size(p) >= n, "calloc(1, %zu)", n);
		p = realloc(p, test_opaque(n * 2));
		CHECK(p && malloc_usable_size(p) >= n * 2, "realloc(.., %zu)", n * 2);
		free(p);
		p = memalign(64, test_opaque(n));
		CHECK(p && malloc_usable_size(p) >= n, "memalign(64, %zu)", n);
		free(p);
		p = aligned_alloc(4096, test_opaque(n));
		CHECK(p && malloc_usable_size(p) >= n, "aligned_alloc(4096, %zu)", n);
		free(p);
		CHECK(posix_memalign(&p, 256, test_opaque(n)) == 0 && malloc_usable_size(p) >= n,
		      "posix_memalign(256, %zu)", n);
		free(p);
		p = valloc(test_opaque(n));
		CHECK(p && malloc_usable_size(p) >= n, "valloc(%zu)", n);
		free(p);
		p = reallocarray(NULL, test_opaque(n), 3);
		CHECK(p && malloc_usable_size(p) >= 3 * n, "reallocarray(NULL, %zu, 3)", n);
		free(p);
	}
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_null),           cmocka_unit_test(test_small_sizes),
	    cmocka_unit_test(test_powers_of_two),  cmocka_unit_test(test_no_overlap),
	    cmocka_unit_test(test_stable_classes), cmocka_unit_test(test_other_functions),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
