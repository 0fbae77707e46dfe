/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of free's interior-pointer arithmetic (arena.h:
 * arena_region_offset, arena_region_magic, arena_region_start; the hit
 * path in alloc.c uses them through tsd_fs_region_start8).
 *
 * Exhaustively, for every small class: every run fits the 16-bit offsets,
 * and for every byte of a run placed at several pages of a chunk (so the
 * 16-bit sum wraps in some), the offset is exact and the pointer passes the
 * test iff it starts a region. With 4 KiB pages the test is free's only one,
 * for every cached class: a large class's magic is the page's, and passes
 * exactly the page-aligned pointers whatever bias a page was left with.
 * With larger pages the alignment mask (tcache_align_mask) decides first,
 * and the magic is 0 wherever it is exact, which no offset passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "alloc/internal/config.h"
#include "alloc/internal/export.h"
#define ALLOC_PREFIXED_BUILD 1
#include "alloc.h"

#include "alloc/internal/arena.h"
#include "alloc/internal/sz.h"
#include "alloc/internal/tcache.h"

/* The size classes and bin_infos are set up at the library's start-up. */
static void
boot(void) {
	ALLOC_API(free)(ALLOC_API(malloc)(1));
}

/* A chunk address as the registry would give it (nothing is read there: the
 * test computes offsets of fake pointers against a header in the heap). */
#define FAKE_CHUNK ((uintptr_t)0x7f3a5c000000u)

static void
test_runs_fit(void **state) {
	(void)state;
	boot();
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		/* A one-byte bias is the second byte of a 16-bit one. */
		size_t bias_bits = sizeof(arena_pbias_t) == 1 ? 16 : sizeof(arena_pbias_t) * 8;
		assert_true(bin_infos[i].run_size <= (size_t)1 << bias_bits);
		size_t d = bin_infos[i].reg_size;
		bool pow2 = (d & (d - 1)) == 0;
		uintptr_t mask = tcache_align_mask(i);
		assert_true(pow2 ? mask == d - 1 : mask == UINTPTR_MAX);
		if (sizeof(arena_pbias_t) == 1) {
			/* The one test, for every class. */
			assert_int_equal(tcache_region_magic(i), bin_infos[i].div_magic);
		} else {
			/* The mask decides alone exactly where it is exact. */
			assert_int_equal(tcache_region_magic(i), pow2 ? 0 : bin_infos[i].div_magic);
		}
	}
}

static void
test_small_every_offset(void **state) {
	(void)state;
	boot();
	arena_chunk_t *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		const bin_info_t *info = &bin_infos[i];
		size_t npages = info->run_size >> LG_PAGE;
		/* The arithmetic holds for every class, powers of two too (where
		 * free uses it: 4 KiB pages). */
		uint32_t magic = arena_region_magic(info->reg_size);
		assert_int_equal(magic, info->div_magic);
		/* First run page, last possible one, and pages whose base
		 * makes the 16-bit sum wrap at different points. */
		size_t pis[] = {CHUNK_HEADER_PAGES, CHUNK_HEADER_PAGES + 3, CHUNK_HEADER_PAGES + 17,
		                CHUNK_NPAGES - npages};
		for (size_t k = 0; k < sizeof(pis) / sizeof(pis[0]); k++) {
			size_t pi = pis[k];
			if (pi < CHUNK_HEADER_PAGES || pi + npages > CHUNK_NPAGES) {
				continue;
			}
			uintptr_t base = FAKE_CHUNK + (pi << LG_PAGE);
			arena_pbias_set(c, pi, npages, (const void *)base);
			for (size_t x = 0; x < info->run_size; x++) {
				uintptr_t ptr = base + x;
				size_t pageind = (ptr >> LG_PAGE) & (CHUNK_NPAGES - 1);
				uint32_t off = arena_region_offset(c, pageind, (const void *)ptr);
				assert_int_equal(off, x);
				bool start = x % info->reg_size == 0;
				if (sizeof(arena_pbias_t) == 1 &&
				    arena_region_start(off, magic) != start) {
					fail_msg("class %u (%zu B), offset %zu: test says %d", i,
					         info->reg_size, x, !start);
				}
			}
		}
	}
	free(c);
}

static void
test_exact_masks(void **state) {
	(void)state;
	boot();
	for (szind_t i = SZ_NSMALL; i < SZ_NPAGED; i++) {
		assert_true(tcache_align_mask(i) == PAGE_MASK);
		if (sizeof(arena_pbias_t) == 1) {
			/* Large classes: the page's magic. */
			assert_int_equal(tcache_region_magic(i), arena_region_magic(PAGE));
		} else {
			/* Large classes: the mask (a page) decides alone. */
			assert_int_equal(tcache_region_magic(i), 0);
		}
	}
	if (sizeof(arena_pbias_t) == 1) {
		/* A page of a large object (or any page) keeps whatever bias a
		 * small run left there, minus a page-aligned base; with every
		 * such bias, the page's magic passes exactly the pointers on a
		 * page boundary. */
		arena_chunk_t *c = calloc(1, sizeof(*c));
		assert_non_null(c);
		uint32_t magic = arena_region_magic(PAGE);
		for (uintptr_t base = 0; base < ((uintptr_t)1 << 16); base += PAGE) {
			arena_pbias_set(c, CHUNK_HEADER_PAGES, 1,
			                (const void *)(FAKE_CHUNK + base));
			for (uintptr_t x = 0; x < ((uintptr_t)1 << 16); x++) {
				uint32_t off = arena_region_offset(c, CHUNK_HEADER_PAGES,
				                                   (const void *)(FAKE_CHUNK + x));
				if (arena_region_start(off, magic) != (x % PAGE == 0)) {
					fail_msg("bias of base %#lx, pointer %#lx: test says %d",
					         (unsigned long)base, (unsigned long)x,
					         x % PAGE != 0);
				}
			}
		}
		free(c);
	}
	/* Magic 0 lets no offset through. */
	for (uint32_t x = 0; x < (1u << 16); x++) {
		assert_false(arena_region_start(x, 0));
	}
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_runs_fit),
	    cmocka_unit_test(test_small_every_offset),
	    cmocka_unit_test(test_exact_masks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
