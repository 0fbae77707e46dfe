/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The redzone layout of fill.h, for every small request size and every
 * alignment up to 16 KiB: fill_redzone_class() picks a small class only
 * when both guards fit (at least FILL_REDZONE_SIZE bytes each side), the
 * lead keeps the alignment asked for (given that a region of a class that
 * is a multiple of an alignment is aligned to it), the usable size covers
 * the request, and fill_redzone_usize() agrees; requests that do not fit
 * a small class with guards take a large class, never a small one.
 * Also the derived flags of fill_boot() for each opt.junk value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc/internal/config.h"
#include "alloc/internal/fill.h"
#include "alloc/internal/sz.h"

static int
setup(void **state) {
	(void)state;
	sz_boot(CHUNK - 4 * PAGE);
	return 0;
}

static void
check_layout(size_t size, size_t alignment) {
	size_t lead = 99;
	size_t csize = fill_redzone_class(size, alignment, &lead);
	size_t usize = fill_redzone_usize(size, alignment);
	assert_true(csize != 0);
	if (lead == 0) {
		/* No guards: a large class, as without redzones. */
		assert_true(csize >= SZ_LARGE_MINCLASS);
		assert_true(usize == csize && usize >= size);
		if (alignment > 1) {
			assert_true(csize ==
			            sz_sa2u(size < SZ_LARGE_MINCLASS ? SZ_LARGE_MINCLASS : size,
			                    alignment));
		}
		/* Only when the guards really do not fit a small class. */
		size_t need = (size == 0 ? 1 : size) +
		              (alignment > FILL_REDZONE_SIZE ? alignment : FILL_REDZONE_SIZE) +
		              FILL_REDZONE_SIZE;
		size_t small = alignment <= 1 ? sz_s2u(need) : sz_sa2u(need, alignment);
		assert_true(small == 0 || small > SZ_SMALL_MAXCLASS);
		return;
	}
	assert_true(csize <= SZ_SMALL_MAXCLASS);
	assert_true(sz_s2u(csize) == csize);
	assert_true(is_pow2(lead) && lead >= FILL_REDZONE_SIZE);
	assert_true(lead >= alignment);
	if (alignment > 1) {
		/* The region is aligned to the alignment, so is region + lead. */
		assert_true(csize % alignment == 0);
	}
	assert_true(csize >= lead + FILL_REDZONE_SIZE + 1);
	assert_true(usize == csize - lead - FILL_REDZONE_SIZE);
	assert_true(usize >= size);
	/* The class is the smallest that holds the request with guards. */
	size_t need = (size == 0 ? 1 : size) + lead + FILL_REDZONE_SIZE;
	assert_true(csize == (alignment <= 1 ? sz_s2u(need) : sz_sa2u(need, alignment)));
}

static void
test_layout_unaligned(void **state) {
	(void)state;
	for (size_t size = 0; size <= SZ_LARGE_MINCLASS + 100; size++) {
		check_layout(size, 0);
	}
}

static void
test_layout_aligned(void **state) {
	(void)state;
	for (size_t a = 8; a <= 16384; a *= 2) {
		for (size_t size = 0; size <= SZ_SMALL_MAXCLASS + 64; size += 1 + size / 64) {
			check_layout(size, a);
		}
	}
}

static void
test_boot_flags(void **state) {
	(void)state;
	if (!config_fill) {
		skip();
	}
	static const struct {
		fill_junk_t junk;
		bool alloc, free;
	} cases[] = {
	    {FILL_JUNK_FALSE, false, false},
	    {FILL_JUNK_TRUE, true, true},
	    {FILL_JUNK_ALLOC, true, false},
	    {FILL_JUNK_FREE, false, true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		opt_junk = cases[i].junk;
		fill_boot();
		assert_int_equal(fill_junk_alloc, cases[i].alloc);
		assert_int_equal(fill_junk_free, cases[i].free);
		assert_int_equal(fill_slow_paths, cases[i].alloc || cases[i].free);
	}
	opt_junk = FILL_JUNK_FALSE;
	opt_quarantine = 4096;
	fill_boot();
	assert_true(fill_slow_paths);
	opt_quarantine = 0;
	opt_xmalloc = true;
	fill_boot();
	/* xmalloc needs no slow paths. */
	assert_false(fill_slow_paths);
	opt_xmalloc = false;
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout_unaligned),
	    cmocka_unit_test(test_layout_aligned),
	    cmocka_unit_test(test_boot_flags),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
