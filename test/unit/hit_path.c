/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the malloc/free hit paths (alloc.c malloc_fast/free_fast,
 * TSD_FS in tsd.h) as the sanitizer-built copy of the sources runs them.
 *
 * For every small and cached large class: a freed block is the next one
 * malloc of the same class returns (the thread cache is a stack), its
 * usable size is the class size, and thread.allocated / thread.deallocated
 * move by exactly that size per call. Under GCC's AddressSanitizer the
 * %fs-relative cache access once faulted on the first hit (tsd.h).
 *
 * Frees into a full bin (free_full in alloc.c: the flush straight from the
 * hit path's tests), by free and by sdallocx: each moves
 * thread.deallocated by the class size, and the blocks can be allocated
 * again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc/internal/config.h"
#include "alloc/internal/export.h"
#include "alloc/internal/sz.h"
#define ALLOC_PREFIXED_BUILD 1
#include "alloc.h"

#define A(name) ALLOC_API(name)

/* The biggest class thread caches hold (arenas.tcache_max). */
static size_t
tcache_max_get(void) {
	size_t tcache_max;
	size_t len = sizeof(tcache_max);
	assert_int_equal(A(mallctl)("arenas.tcache_max", &tcache_max, &len, NULL, 0), 0);
	return tcache_max;
}

static void
test_hit_path(void **state) {
	(void)state;
	bool tcache;
	size_t len = sizeof(tcache);
	assert_int_equal(A(mallctl)("config.tcache", &tcache, &len, NULL, 0), 0);
	if (!tcache) {
		skip();
	}
	/* Without statistics (configure --disable-stats) the nodes answer
	 * ENOENT and only the pointers are checked. */
	uint64_t zero = 0;
	uint64_t *allocated = &zero, *deallocated = &zero;
	bool stats = false;
	len = sizeof(stats);
	assert_int_equal(A(mallctl)("config.stats", &stats, &len, NULL, 0), 0);
	if (stats) {
		len = sizeof(allocated);
		assert_int_equal(A(mallctl)("thread.allocatedp", &allocated, &len, NULL, 0), 0);
		assert_int_equal(A(mallctl)("thread.deallocatedp", &deallocated, &len, NULL, 0), 0);
	}
	size_t tcache_max = tcache_max_get();
	for (szind_t ind = 0; ind < SZ_NPAGED && sz_index2size(ind) <= tcache_max; ind++) {
		size_t usize = sz_index2size(ind);
		/* The first call may fill the cache; the rest hit it. */
		void *warm = A(malloc)(usize);
		assert_non_null(warm);
		A(free)(warm);
		for (int round = 0; round < 4; round++) {
			uint64_t a0 = *allocated, d0 = *deallocated;
			unsigned char *p = A(malloc)(usize);
			assert_ptr_equal(p, warm);
			assert_int_equal(A(malloc_usable_size)(p), usize);
			memset(p, 0xa5, usize);
			A(free)(p);
			if (stats) {
				assert_int_equal(*allocated - a0, usize);
				assert_int_equal(*deallocated - d0, usize);
			}
		}
	}
}

/* More blocks than any bin holds (tcache_cap in tcache.c), so that the
 * frees find their bin full again and again. */
#define FULL_NBLOCKS 600

static void
test_full_bins(void **state) {
	(void)state;
	static void *blocks[FULL_NBLOCKS];
	uint64_t zero = 0;
	uint64_t *deallocated = &zero;
	bool stats = false;
	size_t len = sizeof(stats);
	assert_int_equal(A(mallctl)("config.stats", &stats, &len, NULL, 0), 0);
	if (stats) {
		len = sizeof(deallocated);
		assert_int_equal(A(mallctl)("thread.deallocatedp", &deallocated, &len, NULL, 0), 0);
	}
	size_t tcache_max = tcache_max_get();
	for (szind_t ind = 0; ind < SZ_NPAGED && sz_index2size(ind) <= tcache_max; ind++) {
		size_t usize = sz_index2size(ind);
		for (int round = 0; round < 2; round++) {
			for (int i = 0; i < FULL_NBLOCKS; i++) {
				blocks[i] = A(malloc)(usize);
				assert_non_null(blocks[i]);
				memset(blocks[i], i, usize);
			}
			for (int i = 0; i < FULL_NBLOCKS; i++) {
				uint64_t d0 = *deallocated;
				/* Half by free, half by sdallocx (the size asked
				 * for may be below the class size). */
				if (i % 2 == 0) {
					A(free)(blocks[i]);
				} else {
					A(sdallocx)(blocks[i], usize - (usize > 8 ? 1 : 0), 0);
				}
				if (stats) {
					assert_int_equal(*deallocated - d0, usize);
				}
			}
		}
	}
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hit_path),
	    cmocka_unit_test(test_full_bins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
