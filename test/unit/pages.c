/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the page mappings (pages.h, pages.c): alignment of
 * pages_map_aligned, and the huge-page alignment that opt.thp:always adds
 * for mappings of at least one huge page (--with-lg-hugepage); pages_map
 * and pages_map_aligned return multiples of PAGE even when PAGE is larger
 * than the kernel's page (a --with-lg-page=16 build on a 4 KiB kernel),
 * mapping after mapping, with the trimmed ends given back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "alloc/internal/config.h"
#include "alloc/internal/pages.h"

/* Maps size bytes aligned to alignment, checks the alignment asked for,
 * writes both ends; returns the mapping's address. */
static uintptr_t
test_map(size_t size, size_t alignment) {
	char *p = pages_map_aligned(size, alignment);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p & (alignment - 1), 0);
	p[0] = 1;
	p[size - 1] = 2;
	pages_unmap(p, size);
	return (uintptr_t)p;
}

static void
test_alignment(void **state) {
	(void)state;
	opt_thp = THP_NEVER;
	pages_boot();
	for (size_t lg = LG_PAGE; lg <= LG_CHUNK + 1; lg++) {
		test_map(3 * PAGE, (size_t)1 << lg);
		test_map(CHUNK, (size_t)1 << lg);
	}
}

/* mmap aligns to the kernel's page only: with a larger PAGE, mappings of
 * odd numbers of kernel pages in between leave the next ones misaligned
 * unless pages.c aligns them. */
static void
test_page_aligned(void **state) {
	(void)state;
	opt_thp = THP_NEVER;
	pages_boot();
	void *odd[16];
	for (int i = 0; i < 16; i++) {
		odd[i] = mmap(NULL, 4096 * (size_t)(2 * i + 1), PROT_READ | PROT_WRITE,
		              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(odd[i] != MAP_FAILED);
		char *p = pages_map(PAGE * (size_t)(i % 3 + 1));
		assert_non_null(p);
		assert_int_equal((uintptr_t)p & PAGE_MASK, 0);
		p[0] = 1;
		p[PAGE * (size_t)(i % 3 + 1) - 1] = 2;
		pages_unmap(p, PAGE * (size_t)(i % 3 + 1));
		test_map(3 * PAGE, 2 * PAGE);
	}
	for (int i = 0; i < 16; i++) {
		munmap(odd[i], 4096 * (size_t)(2 * i + 1));
	}
	opt_thp = THP_DEFAULT;
	pages_boot();
}

static void
test_thp_always_aligns_to_hugepage(void **state) {
	(void)state;
	opt_thp = THP_ALWAYS;
	pages_boot();
	/* A page-aligned request of a huge page and more: several tries, so a
	 * mapping that lands on a huge-page boundary by chance cannot pass the
	 * test on its own. */
	for (int i = 0; i < 8; i++) {
		uintptr_t p = test_map(HUGEPAGE + (size_t)(i + 1) * PAGE, PAGE);
		assert_int_equal(p & (HUGEPAGE - 1), 0);
	}
	/* Below a huge page the alignment asked for is enough. */
	test_map(HUGEPAGE / 2, PAGE);
	opt_thp = THP_DEFAULT;
	pages_boot();
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alignment),
	    cmocka_unit_test(test_page_aligned),
	    cmocka_unit_test(test_thp_always_aligns_to_hugepage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
