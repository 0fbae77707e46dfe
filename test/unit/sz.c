/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the size classes (sz.h, sz.c).
 *
 * Checks the tables sz_boot() builds against the scheme described in sz.h
 * and against the arithmetic forms, for every size up to 16 MiB, every
 * class boundary beyond, and the sizes past the largest class; then the
 * rules of sz_sa2u() for every power-of-two alignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc/internal/config.h"
#include "alloc/internal/sz.h"

/* What the allocator would pass: a chunk less a 4-page header. */
#define TEST_LARGE_RUN_MAX (CHUNK - 4 * PAGE)

static int
setup(void **state) {
	(void)state;
	sz_boot(TEST_LARGE_RUN_MAX);
	return 0;
}

/* Reference: smallest class >= size by binary search over the table. */
static szind_t
ref_size2index(size_t size) {
	szind_t lo = 0, hi = SZ_NSIZES;
	while (lo < hi) {
		szind_t mid = lo + (hi - lo) / 2;
		if (sz_index2size_tab[mid] < size) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo;
}

static void
test_boot_idempotent(void **state) {
	(void)state;
	static size_t sizes[SZ_NSIZES];
	static uint8_t lookup[SZ_LOOKUP_NENTRIES];
	memcpy(sizes, sz_index2size_tab, sizeof(sizes));
	memcpy(lookup, sz_size2index_tab, sizeof(lookup));
	sz_boot(TEST_LARGE_RUN_MAX);
	assert_memory_equal(sizes, sz_index2size_tab, sizeof(sizes));
	assert_memory_equal(lookup, sz_size2index_tab, sizeof(lookup));
	assert_int_equal(sz_large_run_max, TEST_LARGE_RUN_MAX);
}

static void
test_counts(void **state) {
	(void)state;
	assert_int_equal(SZ_NTINY, LG_QUANTUM - 3);
	assert_int_equal(SZ_NPAGED, SZ_NSMALL + SZ_NLARGE);
	assert_int_equal(SZ_NSIZES, SZ_NSMALL + SZ_NLARGE + SZ_NHUGE);
	assert_true(SZ_NPAGED < 255);

	unsigned ntiny = 0, nsmall = 0, nlarge = 0, nhuge = 0;
	for (szind_t i = 0; i < SZ_NSIZES; i++) {
		size_t s = sz_index2size(i);
		if (s < QUANTUM) {
			ntiny++;
		}
		if (s < SZ_LARGE_MINCLASS) {
			nsmall++;
			assert_true(sz_is_small(i));
			assert_false(sz_is_large(i) || sz_is_huge(i));
		} else if (s < CHUNK) {
			nlarge++;
			assert_true(sz_is_large(i));
			assert_false(sz_is_small(i) || sz_is_huge(i));
		} else {
			nhuge++;
			assert_true(sz_is_huge(i));
			assert_false(sz_is_small(i) || sz_is_large(i));
		}
	}
	assert_int_equal(ntiny, SZ_NTINY);
	assert_int_equal(nsmall, SZ_NSMALL);
	assert_int_equal(nlarge, SZ_NLARGE);
	assert_int_equal(nhuge, SZ_NHUGE);
	assert_false(sz_is_small(SZ_NSIZES) || sz_is_large(SZ_NSIZES) || sz_is_huge(SZ_NSIZES));

	assert_int_equal(sz_index2size(0), SZ_TINY_MIN);
	assert_int_equal(sz_index2size(SZ_NSMALL - 1), SZ_SMALL_MAXCLASS);
	assert_int_equal(sz_index2size(SZ_NSMALL), SZ_LARGE_MINCLASS);
	assert_int_equal(sz_index2size(SZ_NPAGED - 1), SZ_LARGE_MAXCLASS);
	assert_int_equal(sz_index2size(SZ_NPAGED), CHUNK);
	assert_int_equal(sz_index2size(SZ_NSIZES - 1), SZ_HUGE_MAXCLASS);
	assert_int_equal(sz_index2size(sz_size2index(SZ_LOOKUP_MAXCLASS)), SZ_LOOKUP_MAXCLASS);
	assert_true(sz_size2index(SZ_LOOKUP_MAXCLASS) < SZ_NSMALL);
}

static void
test_class_form(void **state) {
	(void)state;
	szind_t i = 0;
	for (size_t s = SZ_TINY_MIN; s < QUANTUM; s <<= 1, i++) {
		assert_int_equal(sz_index2size(i), s);
	}
	for (size_t j = 1; j <= 4; j++, i++) {
		assert_int_equal(sz_index2size(i), j * QUANTUM);
	}
	for (unsigned k = LG_QUANTUM + 3; i < SZ_NSIZES; k++) {
		for (size_t j = 1; j <= 4 && i < SZ_NSIZES; j++, i++) {
			size_t want = ((size_t)1 << (k - 1)) + j * ((size_t)1 << (k - 3));
			assert_int_equal(sz_index2size(i), want);
		}
	}
	for (i = 0; i < SZ_NSIZES; i++) {
		size_t s = sz_index2size(i);
		if (i > 0) {
			assert_true(sz_index2size(i - 1) < s);
		}
		assert_int_equal(sz_index2size_compute(i), s);
		assert_int_equal(sz_size2index(s), i);
		assert_int_equal(sz_size2index_compute(s), i);
		assert_int_equal(sz_s2u(s), s);
		assert_int_equal(s % SZ_TINY_MIN, 0);
		if (sz_is_large(i)) {
			assert_int_equal(s % PAGE, 0);
		}
		if (sz_is_huge(i)) {
			assert_int_equal(s % (CHUNK >> 2), 0);
		}
	}
}

static void
test_lookup_table(void **state) {
	(void)state;
	assert_int_equal(sz_size2index_tab[0], 0);
	for (size_t s = 0; s <= SZ_LOOKUP_MAXCLASS; s++) {
		assert_int_equal(sz_size2index_lookup(s), sz_size2index_compute(s));
		assert_int_equal(sz_size2index_lookup(s), ref_size2index(s));
	}
}

static void
check_size(size_t s) {
	szind_t want = ref_size2index(s);
	szind_t got = sz_size2index(s);
	if (got != want) {
		fail_msg("size %zu: index %u, want %u", s, got, want);
	}
	assert_int_equal(sz_size2index_compute(s), want);
	if (s > SZ_LOOKUP_MAXCLASS && s <= SZ_HUGE_MAXCLASS) {
		/* malloc's hit-path form, over its whole range. */
		assert_int_equal(sz_size2index_big(s), want);
	}
	if (want == SZ_NSIZES) {
		assert_int_equal(sz_s2u(s), 0);
		assert_int_equal(sz_s2u_compute(s), 0);
		return;
	}
	size_t usize = sz_index2size(got);
	assert_true(usize >= s);
	assert_true(got == 0 || sz_index2size(got - 1) < s);
	assert_int_equal(sz_s2u(s), usize);
	assert_int_equal(sz_s2u_compute(s), usize);
}

static void
test_size2index_all(void **state) {
	(void)state;
	/* Every size up to 64 KiB. */
	for (size_t s = 0; s <= ((size_t)64 << 10); s++) {
		check_size(s);
	}
	/* Up to 16 MiB: a prime stride, plus every class boundary. */
	for (size_t s = ((size_t)64 << 10); s <= ((size_t)16 << 20); s += 251) {
		check_size(s);
	}
	/* Every class boundary, all the way to the largest class. */
	for (szind_t i = 0; i < SZ_NSIZES; i++) {
		size_t c = sz_index2size(i);
		for (size_t d = 0; d <= 3; d++) {
			check_size(c - d);
			check_size(c + d);
		}
		check_size(c - c / 16);
	}
	/* Beyond the largest class. */
	check_size(SZ_HUGE_MAXCLASS + 1);
	check_size(((size_t)1 << SZ_LG_TOP));
	check_size(SIZE_MAX - 1);
	check_size(SIZE_MAX);
	assert_int_equal(sz_size2index(SIZE_MAX), SZ_NSIZES);
	assert_int_equal(sz_size2index(SZ_HUGE_MAXCLASS + 1), SZ_NSIZES);
	assert_int_equal(sz_s2u(SIZE_MAX), 0);
	assert_int_equal(sz_s2u(0), SZ_TINY_MIN);
	assert_int_equal(sz_size2index(0), 0);
}

/* Expected sz_sa2u() by a direct reading of the rules in sz.h. */
static size_t
ref_sa2u(size_t size, size_t alignment) {
	if (size > SZ_HUGE_MAXCLASS) {
		return 0;
	}
	if (alignment <= PAGE) {
		/* Smallest class >= size that is a multiple of alignment. */
		for (szind_t i = 0; i < SZ_NSIZES; i++) {
			size_t c = sz_index2size(i);
			if (c >= size && c % alignment == 0) {
				return c;
			}
		}
		return 0;
	}
	for (szind_t i = SZ_NSMALL; i < SZ_NPAGED; i++) {
		size_t c = sz_index2size(i);
		if (c >= size) {
			if (c + alignment - PAGE <= sz_large_run_max) {
				return c;
			}
			break;
		}
	}
	for (szind_t i = SZ_NPAGED; i < SZ_NSIZES; i++) {
		size_t c = sz_index2size(i);
		if (c >= size) {
			/* The mapping the chunk layer needs must not exceed the largest class. */
			if (alignment > CHUNK && alignment - CHUNK > SZ_HUGE_MAXCLASS - c) {
				return 0;
			}
			return c;
		}
	}
	return 0;
}

static void
check_sa2u(size_t size, size_t alignment) {
	size_t usize = sz_sa2u(size, alignment);
	size_t want = ref_sa2u(size, alignment);
	if (usize != want) {
		fail_msg("sa2u(%zu, %zu) = %zu, want %zu", size, alignment, usize, want);
	}
	if (usize == 0) {
		return;
	}
	assert_true(usize >= size);
	assert_int_equal(sz_s2u(usize), usize);
	if (usize <= SZ_LARGE_MAXCLASS) {
		if (alignment <= PAGE) {
			assert_int_equal(usize % alignment, 0);
		} else {
			assert_true(usize >= SZ_LARGE_MINCLASS);
			assert_true(usize + alignment - PAGE <= sz_large_run_max);
		}
	} else {
		assert_true(usize >= CHUNK || alignment <= PAGE);
	}
	if (alignment == 1) {
		assert_int_equal(usize, sz_s2u(size));
	}
}

static void
test_sa2u(void **state) {
	(void)state;
	for (unsigned lg = 0; lg <= SZ_LG_TOP; lg++) {
		size_t alignment = (size_t)1 << lg;
		for (size_t s = 0; s <= 3 * PAGE; s += (s < 1024 ? 1 : 61)) {
			check_sa2u(s, alignment);
		}
		for (szind_t i = 0; i < SZ_NSIZES; i++) {
			size_t c = sz_index2size(i);
			check_sa2u(c - 1, alignment);
			check_sa2u(c, alignment);
			check_sa2u(c + 1, alignment);
		}
		check_sa2u(SIZE_MAX, alignment);
		check_sa2u(SIZE_MAX - alignment, alignment);
		assert_int_equal(sz_sa2u(SIZE_MAX, alignment), 0);
		assert_int_equal(sz_sa2u(SZ_HUGE_MAXCLASS + 1, alignment), 0);
	}
	/* Huge alignments: the mapping usize + alignment - CHUNK must be a possible size. */
	size_t top = (size_t)1 << SZ_LG_TOP;
	assert_int_equal(sz_sa2u(SZ_HUGE_MAXCLASS, top), 0);
	assert_int_equal(sz_sa2u(SZ_HUGE_MAXCLASS, top >> 1), 0);
	assert_int_equal(sz_sa2u(1, top), 0);
	assert_int_equal(sz_sa2u(1, top >> 1), CHUNK);
	/* 3 * 2^60 + 2^62 - CHUNK fits under 7 * 2^60; the next class up does not. */
	size_t big = (top >> 2) + (top >> 3);
	assert_int_equal(sz_sa2u(big, top >> 1), big);
	assert_int_equal(sz_sa2u(big + 1, top >> 1), 0);
	assert_int_equal(sz_sa2u(SZ_HUGE_MAXCLASS, CHUNK), SZ_HUGE_MAXCLASS);
	assert_int_equal(sz_sa2u(SZ_HUGE_MAXCLASS, 1), SZ_HUGE_MAXCLASS);
	/* Page alignment keeps small sizes small; more than a page makes them large. */
	assert_int_equal(sz_sa2u(1, PAGE), PAGE);
	assert_true(sz_is_small(sz_size2index(sz_sa2u(1, PAGE))));
	assert_int_equal(sz_sa2u(1, 2 * PAGE), SZ_LARGE_MINCLASS);
	/* The largest large class needs alignment - PAGE of slack in the chunk. */
	size_t slack = TEST_LARGE_RUN_MAX - SZ_LARGE_MAXCLASS;
	for (size_t a = 2 * PAGE; a <= CHUNK; a <<= 1) {
		size_t want = a - PAGE <= slack ? SZ_LARGE_MAXCLASS : CHUNK;
		assert_int_equal(sz_sa2u(SZ_LARGE_MAXCLASS, a), want);
	}
}

/* The large/huge decision for aligned requests follows large_run_max exactly. */
static void
test_sa2u_run_max(void **state) {
	(void)state;
	for (size_t a = 2 * PAGE; a <= CHUNK / 4; a <<= 1) {
		size_t exact = SZ_LARGE_MAXCLASS + a - PAGE;
		sz_boot(exact);
		assert_int_equal(sz_sa2u(SZ_LARGE_MAXCLASS, a), SZ_LARGE_MAXCLASS);
		assert_int_equal(sz_sa2u(SZ_LARGE_MAXCLASS, 2 * a), CHUNK);
		for (size_t s = SZ_LARGE_MAXCLASS / 2; s <= CHUNK; s += PAGE) {
			check_sa2u(s, a);
			check_sa2u(s, 2 * a);
		}
		sz_boot(exact - 1);
		assert_int_equal(sz_sa2u(SZ_LARGE_MAXCLASS, a), CHUNK);
		assert_int_equal(sz_sa2u(SZ_LARGE_MAXCLASS - 1, a), CHUNK);
		size_t below = sz_index2size(SZ_NPAGED - 2);
		assert_int_equal(sz_sa2u(below, a), below);
	}
	sz_boot(TEST_LARGE_RUN_MAX);
}

static void
test_default_config(void **state) {
	(void)state;
	if (!(LG_PAGE == 12 && LG_QUANTUM == 4 && LG_CHUNK == 21)) {
		skip();
	}
	assert_int_equal(SZ_NTINY, 1);
	assert_int_equal(SZ_NSMALL, 36);
	assert_int_equal(SZ_NLARGE, 28);
	assert_int_equal(SZ_NHUGE, 168);
	assert_int_equal(SZ_NSIZES, 232);
	assert_int_equal(SZ_SMALL_MAXCLASS, 14336);
	assert_int_equal(SZ_LARGE_MINCLASS, 16384);
	assert_int_equal(SZ_LARGE_MAXCLASS, 1835008);
	assert_int_equal(SZ_HUGE_MAXCLASS, 0x7000000000000000ULL);
	static const size_t first[] = {8,   16,  32,  48,  64,  80,  96,  112, 128, 160,
	                               192, 224, 256, 320, 384, 448, 512, 640, 768};
	for (szind_t i = 0; i < ARRAY_SIZE(first); i++) {
		assert_int_equal(sz_index2size(i), first[i]);
	}
	assert_int_equal(sz_size2index(1), 0);
	assert_int_equal(sz_size2index(9), 1);
	assert_int_equal(sz_size2index(17), 2);
	assert_int_equal(sz_s2u(100), 112);
	assert_int_equal(sz_s2u(4097), 5120);
	assert_int_equal(sz_s2u(14337), 16384);
	assert_int_equal(sz_s2u(1835009), 2097152);
	assert_int_equal(sz_s2u(2097153), 2621440);
	assert_int_equal(sz_sa2u(100, 64), 128);
	assert_int_equal(sz_sa2u(49, 32), 64);
	assert_int_equal(sz_sa2u(5000, 4096), 8192);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_boot_idempotent), cmocka_unit_test(test_counts),
	    cmocka_unit_test(test_class_form),      cmocka_unit_test(test_lookup_table),
	    cmocka_unit_test(test_size2index_all),  cmocka_unit_test(test_sa2u),
	    cmocka_unit_test(test_sa2u_run_max),    cmocka_unit_test(test_default_config),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
