/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the page mappings (pages.h, pages.c): alignment of
 * pages_map_aligned, and the huge-page alignment that opt.thp:always adds
 * for mappings of at least one huge page (--with-lg-hugepage).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
	    cmocka_unit_test(test_thp_always_aligns_to_hugepage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
