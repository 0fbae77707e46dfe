/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * One pass over every allocation function a program can call, including
 * glibc's internal entry points that some programs and libraries call
 * directly (__libc_malloc, __libc_calloc, __libc_realloc, __libc_free,
 * __libc_memalign, __libc_valloc, __libc_pvalloc, __posix_memalign).
 *
 * Those aliases must resolve to the same object as malloc (liballoc's when
 * liballoc is the allocator; glibc's own otherwise, where __posix_memalign
 * does not exist and is skipped) and behave like the public functions:
 * blocks from one family can be resized and freed by the other. Each block,
 * whatever function made it, must be accepted by realloc, free and
 * malloc_usable_size. free(NULL) is a no-op; malloc(0) returns a unique
 * pointer (glibc behaviour that programs rely on).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
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

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* glibc's aliases; not declared by any header. Weak so the test links on any libc. */
extern void *__libc_malloc(size_t) __attribute__((weak));
extern void *__libc_calloc(size_t, size_t) __attribute__((weak));
extern void *__libc_realloc(void *, size_t) __attribute__((weak));
extern void __libc_free(void *) __attribute__((weak));
extern void *__libc_memalign(size_t, size_t) __attribute__((weak));
extern void *__libc_valloc(size_t) __attribute__((weak));
extern void *__libc_pvalloc(size_t) __attribute__((weak));
extern int __posix_memalign(void **, size_t, size_t) __attribute__((weak));

static int
all_zero(const void *p, size_t n) {
	const unsigned char *b = p;
	return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

static const char *
object_of(const char *name) {
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, name);
	if (sym == NULL || !dladdr(sym, &info) || info.dli_fname == NULL)
		return NULL;
	return info.dli_fname;
}

static int
allocator_is_glibc(void) {
	const char *obj = object_of("malloc");
	if (obj == NULL)
		return 0;
	const char *base = strrchr(obj, '/');
	base = base ? base + 1 : obj;
	return strncmp(base, "libc.so", 7) == 0 || strncmp(base, "libc-", 5) == 0;
}

static const size_t sizes[] = {0, 1, 8, 24, 100, 1000, 5000, 14337, 70000, 2 * MiB + 1, 3 * MiB};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void
test_which_allocator(void **state) {
	(void)state;
	const char *obj = object_of("malloc");
	CHECK(obj != NULL, "malloc not found by dlsym");
	print_message("# malloc comes from %s\n", obj);
	static const char *const names[] = {
	    "calloc",   "realloc", "free",    "posix_memalign",     "aligned_alloc",
	    "memalign", "valloc",  "pvalloc", "malloc_usable_size", "reallocarray"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *o = object_of(names[i]);
		CHECK(o != NULL && strcmp(o, obj) == 0,
		      "%s comes from %s but malloc from %s: mixing allocators", names[i],
		      o ? o : "(nowhere)", obj);
	}
}

static void
test_malloc_free(void **state) {
	(void)state;
	void *ptrs[NSIZES];
	for (size_t i = 0; i < NSIZES; i++) {
		ptrs[i] = malloc(test_opaque(sizes[i]));
		CHECK(ptrs[i] != NULL, "malloc(%zu) returned NULL", sizes[i]);
		test_pattern_fill(ptrs[i], sizes[i], (unsigned)i);
		for (size_t k = 0; k < i; k++)
			CHECK(ptrs[k] != ptrs[i], "malloc returned %p twice", ptrs[i]);
	}
	for (size_t i = 0; i < NSIZES; i++) {
		CHECK(test_pattern_intact(ptrs[i], sizes[i], (unsigned)i),
		      "malloc(%zu) block changed", sizes[i]);
		free(ptrs[i]);
	}
	/* malloc(0): distinct pointers that can be freed. */
	void *z[32];
	for (int i = 0; i < 32; i++) {
		z[i] = malloc(test_opaque(0));
		CHECK(z[i] != NULL, "malloc(0) returned NULL (glibc returns a unique pointer)");
		for (int k = 0; k < i; k++)
			CHECK(z[k] != z[i], "malloc(0) returned %p twice", z[i]);
	}
	for (int i = 0; i < 32; i++)
		free(z[i]);
}

static void
test_free_null(void **state) {
	(void)state;
	void *volatile null = NULL;
	for (int i = 0; i < 100; i++)
		free(null);
	if (__libc_free != NULL)
		__libc_free(null);
	void *p = malloc(10);
	CHECK(p != NULL, "malloc after free(NULL)");
	free(p);
}

static void
test_calloc_zeroes(void **state) {
	(void)state;
	for (size_t i = 0; i < NSIZES; i++) {
		unsigned char *p = calloc(test_opaque(sizes[i]), 1);
		CHECK(p != NULL && all_zero(p, sizes[i]), "calloc(%zu, 1)", sizes[i]);
		free(p);
		p = calloc(1, test_opaque(sizes[i]));
		CHECK(p != NULL && all_zero(p, sizes[i]), "calloc(1, %zu)", sizes[i]);
		free(p);
	}
	unsigned char *p = calloc(test_opaque(1000), 1000);
	CHECK(p != NULL && all_zero(p, 1000000), "calloc(1000, 1000)");
	free(p);
}

static void
test_realloc_reallocarray(void **state) {
	(void)state;
	void *p = realloc(NULL, test_opaque(10));
	CHECK(p != NULL, "realloc(NULL, 10)");
	test_pattern_fill(p, 10, 1);
	size_t old = 10;
	for (size_t i = 0; i < NSIZES; i++) {
		if (sizes[i] == 0)
			continue;
		p = realloc(p, test_opaque(sizes[i]));
		size_t keep = old < sizes[i] ? old : sizes[i];
		CHECK(p != NULL && test_pattern_intact(p, keep, 1), "realloc(.., %zu)", sizes[i]);
		test_pattern_fill(p, sizes[i], 1);
		old = sizes[i];
	}
	p = reallocarray(p, test_opaque(10), 100);
	CHECK(p != NULL && test_pattern_intact(p, 1000, 1), "reallocarray(p, 10, 100)");
	free(p);
}

static void
test_aligned_functions(void **state) {
	(void)state;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (size_t i = 0; i < NSIZES; i++) {
		size_t n = sizes[i];
		void *p = NULL;
		CHECK(posix_memalign(&p, 64, test_opaque(n)) == 0 && ((uintptr_t)p & 63) == 0,
		      "posix_memalign(64, %zu) = %p", n, p);
		test_pattern_fill(p, n, 2);
		free(p);
		p = aligned_alloc(128, test_opaque(n));
		CHECK(p != NULL && ((uintptr_t)p & 127) == 0, "aligned_alloc(128, %zu)", n);
		test_pattern_fill(p, n, 2);
		free(p);
		p = memalign(256, test_opaque(n));
		CHECK(p != NULL && ((uintptr_t)p & 255) == 0, "memalign(256, %zu)", n);
		test_pattern_fill(p, n, 2);
		free(p);
		p = valloc(test_opaque(n));
		CHECK(p != NULL && ((uintptr_t)p & (page - 1)) == 0, "valloc(%zu)", n);
		test_pattern_fill(p, n, 2);
		free(p);
		p = pvalloc(test_opaque(n));
		CHECK(p != NULL && ((uintptr_t)p & (page - 1)) == 0, "pvalloc(%zu)", n);
		size_t rounded = (n + page - 1) & ~(page - 1);
		CHECK(malloc_usable_size(p) >= rounded, "pvalloc(%zu) usable %zu", n,
		      malloc_usable_size(p));
		test_pattern_fill(p, rounded, 2);
		free(p);
	}
}

static void
test_usable_size(void **state) {
	(void)state;
	CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) != 0");
	for (size_t i = 0; i < NSIZES; i++) {
		void *p = malloc(test_opaque(sizes[i]));
		CHECK(p != NULL, "malloc");
		size_t u = malloc_usable_size(p);
		CHECK(u >= sizes[i], "malloc_usable_size %zu < %zu", u, sizes[i]);
		memset(p, 0xab, u);
		free(p);
	}
}

/* A block from any function can be grown, shrunk and freed by the generic ones. */
static void
test_mixed_families(void **state) {
	(void)state;
	for (size_t i = 0; i < NSIZES; i++) {
		size_t n = sizes[i] ? sizes[i] : 1;
		void *blocks[6];
		blocks[0] = malloc(n);
		blocks[1] = calloc(1, n);
		CHECK(posix_memalign(&blocks[2], 4096, n) == 0, "posix_memalign");
		blocks[3] = aligned_alloc(2 * MiB, n);
		blocks[4] = memalign(32, n);
		blocks[5] = valloc(n);
		for (int k = 0; k < 6; k++) {
			CHECK(blocks[k] != NULL, "allocation %d of %zu failed", k, n);
			test_pattern_fill(blocks[k], n, (unsigned)k);
			void *q = realloc(blocks[k], n * 3 + 5);
			CHECK(q != NULL && test_pattern_intact(q, n, (unsigned)k),
			      "realloc of family %d", k);
			q = realloc(q, n / 2 + 1);
			CHECK(q != NULL && test_pattern_intact(q, n / 2 + 1, (unsigned)k),
			      "shrink of family %d", k);
			blocks[k] = q;
		}
		for (int k = 0; k < 6; k++)
			free(blocks[k]);
	}
}

struct alias {
	const char *name;
	void *addr;
};

static void
test_libc_aliases_resolve(void **state) {
	(void)state;
	const struct alias aliases[] = {
	    {"__libc_malloc", (void *)(uintptr_t)__libc_malloc},
	    {"__libc_calloc", (void *)(uintptr_t)__libc_calloc},
	    {"__libc_realloc", (void *)(uintptr_t)__libc_realloc},
	    {"__libc_free", (void *)(uintptr_t)__libc_free},
	    {"__libc_memalign", (void *)(uintptr_t)__libc_memalign},
	    {"__libc_valloc", (void *)(uintptr_t)__libc_valloc},
	    {"__libc_pvalloc", (void *)(uintptr_t)__libc_pvalloc},
	    {"__posix_memalign", (void *)(uintptr_t)__posix_memalign},
	};
	const char *malloc_obj = object_of("malloc");
	int glibc = allocator_is_glibc();
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
		const char *obj = object_of(aliases[i].name);
		if (obj == NULL && glibc) {
			print_message("# %s: not provided by glibc, skipped\n", aliases[i].name);
			continue;
		}
		CHECK(obj != NULL, "%s is not defined anywhere; the allocator in %s must export it",
		      aliases[i].name, malloc_obj);
		CHECK(strcmp(obj, malloc_obj) == 0,
		      "%s resolves to %s but malloc to %s: a caller of %s would use a "
		      "different heap",
		      aliases[i].name, obj, malloc_obj, aliases[i].name);
		CHECK(aliases[i].addr == dlsym(RTLD_DEFAULT, aliases[i].name),
		      "%s: link-time and run-time addresses differ", aliases[i].name);
	}
}

static void
test_libc_aliases_behave(void **state) {
	(void)state;
	if (__libc_malloc == NULL || __libc_free == NULL || __libc_calloc == NULL ||
	    __libc_realloc == NULL || __libc_memalign == NULL) {
		CHECK(allocator_is_glibc(), "allocator lacks one of the __libc_* aliases");
		skip();
	}
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (size_t i = 0; i < NSIZES; i++) {
		size_t n = sizes[i];
		/* __libc_malloc'ed block freed by free, and the other way round. */
		void *a = __libc_malloc(test_opaque(n));
		void *b = malloc(test_opaque(n));
		CHECK(a != NULL && b != NULL, "__libc_malloc(%zu) / malloc", n);
		CHECK(malloc_usable_size(a) >= n, "usable size of __libc_malloc(%zu)", n);
		if (!allocator_is_glibc() || n < 128 * KiB)
			CHECK(malloc_usable_size(a) == malloc_usable_size(b),
			      "__libc_malloc(%zu) usable %zu, malloc usable %zu", n,
			      malloc_usable_size(a), malloc_usable_size(b));
		test_pattern_fill(a, n, 5);
		test_pattern_fill(b, n, 6);
		a = __libc_realloc(a, test_opaque(n * 2 + 1));
		CHECK(a != NULL && test_pattern_intact(a, n, 5), "__libc_realloc(.., %zu)",
		      n * 2 + 1);
		b = realloc(b, test_opaque(n * 2 + 1));
		CHECK(b != NULL && test_pattern_intact(b, n, 6), "realloc");
		free(a);
		__libc_free(b);

		/* __libc_calloc zeroes even a dirtied, reused block. */
		void *d = malloc(test_opaque(n));
		CHECK(d != NULL, "malloc");
		memset(d, 0xff, n);
		__libc_free(d);
		unsigned char *c = __libc_calloc(test_opaque(n), 1);
		CHECK(c != NULL && all_zero(c, n), "__libc_calloc(%zu, 1)", n);
		free(c);

		void *m = __libc_memalign(4096, test_opaque(n));
		CHECK(m != NULL && ((uintptr_t)m & 4095) == 0, "__libc_memalign(4096, %zu)", n);
		test_pattern_fill(m, n, 7);
		m = realloc(m, test_opaque(n + 100));
		CHECK(m != NULL && test_pattern_intact(m, n, 7),
		      "realloc of __libc_memalign block");
		__libc_free(m);

		if (__libc_valloc != NULL) {
			void *v = __libc_valloc(test_opaque(n));
			CHECK(v != NULL && ((uintptr_t)v & (page - 1)) == 0, "__libc_valloc(%zu)",
			      n);
			test_pattern_fill(v, n, 8);
			free(v);
		}
		if (__libc_pvalloc != NULL) {
			void *v = __libc_pvalloc(test_opaque(n));
			size_t rounded = (n + page - 1) & ~(page - 1);
			CHECK(v != NULL && ((uintptr_t)v & (page - 1)) == 0 &&
			          malloc_usable_size(v) >= rounded,
			      "__libc_pvalloc(%zu)", n);
			test_pattern_fill(v, rounded, 8);
			__libc_free(v);
		}
		if (__posix_memalign != NULL) {
			void *pm = NULL;
			CHECK(__posix_memalign(&pm, 512, test_opaque(n)) == 0 &&
			          ((uintptr_t)pm & 511) == 0,
			      "__posix_memalign(512, %zu)", n);
			test_pattern_fill(pm, n, 9);
			__libc_free(pm);
		}
	}

	/* Error reporting is shared too. */
	errno = 0;
	CHECK(__libc_malloc(test_opaque(SIZE_MAX)) == NULL && errno == ENOMEM,
	      "__libc_malloc(SIZE_MAX): errno %d", errno);
	errno = 0;
	CHECK(__libc_calloc(test_opaque(SIZE_MAX / 2), 3) == NULL && errno == ENOMEM,
	      "__libc_calloc overflow: errno %d", errno);
	void *p = __libc_malloc(16);
	errno = 0;
	CHECK(__libc_realloc(p, test_opaque(SIZE_MAX)) == NULL && errno == ENOMEM,
	      "__libc_realloc(p, SIZE_MAX): errno %d", errno);
	__libc_free(p);
	if (__posix_memalign != NULL) {
		void *q = (void *)(uintptr_t)1;
		CHECK(__posix_memalign(&q, 24, 10) == EINVAL && q == (void *)(uintptr_t)1,
		      "__posix_memalign(24, 10) should be EINVAL");
	}
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_which_allocator),
	    cmocka_unit_test(test_malloc_free),
	    cmocka_unit_test(test_free_null),
	    cmocka_unit_test(test_calloc_zeroes),
	    cmocka_unit_test(test_realloc_reallocarray),
	    cmocka_unit_test(test_aligned_functions),
	    cmocka_unit_test(test_usable_size),
	    cmocka_unit_test(test_mixed_families),
	    cmocka_unit_test(test_libc_aliases_resolve),
	    cmocka_unit_test(test_libc_aliases_behave),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
