/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The high-water bound on freed memory held while an arena grows
 * (liballoc's default, opt.lg_dirty_bound -1; doc/design.md, "The
 * high-water bound"): after a batch of frees, growth past the arena's
 * highest footprint is paid for by purging its oldest dirty pages, so the
 * freed memory no request fits does not add to the peak; memory that
 * requests fit is still reused as before.
 *
 * In an arena of its own (arenas.create, no thread cache, the longest decay
 * time there is, so that the counts are exact: no decay epoch passes while
 * the test runs), with C = a chunk's pages:
 *
 *   grow      2C objects of 4 pages, written; every other one freed: C*4
 *             dirty pages in holes of 4 pages, the arena at its peak
 *   regrow    3C/8 objects of 8 pages (three chunks' worth; no hole fits
 *             them): at least 2C dirty pages purged (stats purged, pdirty),
 *             at least C kept dirty, active + dirty pages within a chunk's
 *             worth of the peak, and as many hole pages no longer resident
 *             (mincore)
 *   reuse     a 4-page object takes a hole: same address as a freed one,
 *             nothing purged, pdirty down by 4 exactly
 *   again     the 8-page objects freed and asked for again: they take their
 *             own freed runs back, nothing purged (the arena is not past
 *             its peak)
 *
 * and, in a second arena, what the bound keeps (doc/design.md, "What the
 * high-water bound keeps"):
 *
 *   holes     6C objects of 4 pages, written; every twentieth freed: 1.2C
 *             dirty pages, more than a chunk's worth but less than a
 *             sixteenth of the active pages
 *   regrow    3C/8 objects of 8 pages past the peak: nothing purged, every
 *             hole page still resident (mincore), and a 4-page object then
 *             takes a hole
 *
 * Skipped without statistics, under the fill options (the quarantine
 * keeps freed blocks), purge:ratio (its rule purges the holes as they are
 * made) and lg_dirty_bound >= 0 (the other bound). Under
 * purge_madvise:free the purged pages may stay resident until the kernel
 * needs them: the mincore check is left out there.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <alloc.h>

#include "test_check.h"
#include "test_fill.h"
#include "test_stats.h"

/* liballoc's page (arenas.page), the kernel's (mincore's unit), and a
 * chunk's pages (opt.lg_chunk). */
static size_t page, kpage, chunk_pages;

static bool
opt_is(const char *name, const char *value) {
	const char *v = NULL;
	size_t len = sizeof(v);
	return mallctl(name, &v, &len, NULL, 0) == 0 && strcmp(v, value) == 0;
}

/* Skips the test where the bound under test is not the one in force (see
 * the top); otherwise reads the sizes and makes an arena of the test's
 * own, with the longest decay time there is. Returns the arena. */
static unsigned
arena_for_test(void) {
	if (!test_stats_enabled()) {
		print_message("# built without statistics: skipped\n");
		skip();
	}
	ssize_t bound = 0;
	size_t len = sizeof(bound);
	assert_int_equal(mallctl("opt.lg_dirty_bound", &bound, &len, NULL, 0), 0);
	if (test_fill_active() || !opt_is("opt.purge", "decay") || bound != -1) {
		print_message("# fill options, purge:ratio or lg_dirty_bound set: skipped\n");
		skip();
	}
	size_t lg_chunk = 0;
	len = sizeof(lg_chunk);
	assert_int_equal(mallctl("opt.lg_chunk", &lg_chunk, &len, NULL, 0), 0);
	len = sizeof(page);
	assert_int_equal(mallctl("arenas.page", &page, &len, NULL, 0), 0);
	kpage = (size_t)sysconf(_SC_PAGESIZE);
	chunk_pages = ((size_t)1 << lg_chunk) / page;

	unsigned a = 0;
	len = sizeof(a);
	assert_int_equal(mallctl("arenas.create", &a, &len, NULL, 0), 0);
	char name[64];
	ssize_t decay = INT32_MAX;
	snprintf(name, sizeof(name), "arena.%u.decay_time", a);
	assert_int_equal(mallctl(name, NULL, NULL, &decay, sizeof(decay)), 0);
	return a;
}

/* n blocks of `size` bytes from the arena of `flags`, each written with
 * `byte`; the array is the caller's to free. */
static char **
blocks_made(size_t n, size_t size, int flags, int byte) {
	char **b = calloc(n, sizeof(*b));
	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		b[i] = mallocx(size, flags);
		assert_non_null(b[i]);
		memset(b[i], byte, size);
	}
	return b;
}

/* Frees the blocks whose index is a multiple of `stride` (holes: true), or
 * the others (holes: false). */
static void
blocks_freed(char **b, size_t n, size_t stride, bool holes) {
	for (size_t i = 0; i < n; i++) {
		if ((i % stride == 0) == holes) {
			dallocx(b[i], MALLOCX_TCACHE_NONE);
		}
	}
}

/* Resident kernel pages of the holes (every stride-th block, freed). */
static size_t
holes_resident(char **b, size_t n, size_t stride, size_t size) {
	size_t res = 0;
	for (size_t i = 0; i < n; i += stride) {
		res += test_resident_pages("high_water", b[i], size);
	}
	return res;
}

/* Whether p is the address of a hole (every stride-th block, freed). */
static bool
is_hole(char **b, size_t n, size_t stride, const void *p) {
	for (size_t i = 0; i < n; i += stride) {
		if (p == b[i]) {
			return true;
		}
	}
	return false;
}

static void
test_high_water(void **state) {
	(void)state;
	unsigned a = arena_for_test();
	bool lazy = opt_is("opt.purge_madvise", "free");
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;

	/* grow */
	size_t small = 4 * page, big = 8 * page;
	size_t nsmall = 2 * chunk_pages, nbig = 3 * chunk_pages / 8;
	char **objs = blocks_made(nsmall, small, flags, 0x5a);
	blocks_freed(objs, nsmall, 2, true);
	size_t holes = nsmall / 2 * 4;
	size_t dirty = test_stats_arena("high_water", a, "pdirty");
	CHECK(dirty == holes, "pdirty %zu, holes %zu", dirty, holes);
	size_t peak = test_stats_arena("high_water", a, "pactive") + dirty;
	size_t purged = test_stats_arena("high_water", a, "purged");

	/* regrow */
	char **bigs = blocks_made(nbig, big, flags, 0xa5);
	size_t now = test_stats_arena("high_water", a, "pdirty");
	size_t traded = test_stats_arena("high_water", a, "purged") - purged;
	CHECK(traded >= 2 * chunk_pages && dirty - now == traded,
	      "purged %zu pages, pdirty %zu -> %zu (chunk: %zu pages)", traded, dirty, now,
	      chunk_pages);
	CHECK(now >= chunk_pages, "pdirty %zu, below a chunk's worth", now);
	size_t footprint = test_stats_arena("high_water", a, "pactive") + now;
	CHECK(footprint < peak + chunk_pages, "active + dirty %zu pages, peak %zu", footprint,
	      peak);
	if (!lazy) {
		size_t res = holes_resident(objs, nsmall, 2, small);
		CHECK(res * kpage <= (holes - traded) * page, "%zu hole pages resident, %zu dirty",
		      res * kpage / page, holes - traded);
	}

	/* reuse */
	char *p = mallocx(small, flags);
	assert_non_null(p);
	CHECK(is_hole(objs, nsmall, 2, p), "%p is not a freed block's address", (void *)p);
	CHECK(test_stats_arena("high_water", a, "pdirty") == now - 4, "pdirty %zu, was %zu",
	      test_stats_arena("high_water", a, "pdirty"), now);
	CHECK(test_stats_arena("high_water", a, "purged") - purged == traded, "purged on reuse");
	dallocx(p, MALLOCX_TCACHE_NONE);

	/* again */
	blocks_freed(bigs, nbig, 1, true);
	free(bigs);
	bigs = blocks_made(nbig, big, flags, 0xa5);
	CHECK(test_stats_arena("high_water", a, "purged") - purged == traded,
	      "purged %zu more pages on reuse",
	      test_stats_arena("high_water", a, "purged") - purged - traded);

	blocks_freed(bigs, nbig, 1, true);
	blocks_freed(objs, nsmall, 2, false);
	free(objs);
	free(bigs);
}

static void
test_high_water_keeps_holes(void **state) {
	(void)state;
	unsigned a = arena_for_test();
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;

	/* holes */
	size_t small = 4 * page, big = 8 * page;
	size_t nsmall = 6 * chunk_pages, nbig = 3 * chunk_pages / 8;
	char **objs = blocks_made(nsmall, small, flags, 0x5a);
	blocks_freed(objs, nsmall, 20, true);
	size_t holes = (nsmall + 19) / 20 * 4;
	size_t dirty = test_stats_arena("high_water", a, "pdirty");
	size_t active = test_stats_arena("high_water", a, "pactive");
	CHECK(dirty == holes, "pdirty %zu, holes %zu", dirty, holes);
	CHECK(dirty > chunk_pages && dirty <= active / 16,
	      "pdirty %zu, not between a chunk's pages (%zu) and active / 16 (%zu)", dirty,
	      chunk_pages, active / 16);
	size_t purged = test_stats_arena("high_water", a, "purged");

	/* regrow */
	char **bigs = blocks_made(nbig, big, flags, 0xa5);
	CHECK(test_stats_arena("high_water", a, "purged") == purged, "purged %zu pages",
	      test_stats_arena("high_water", a, "purged") - purged);
	CHECK(test_stats_arena("high_water", a, "pdirty") == dirty, "pdirty %zu -> %zu", dirty,
	      test_stats_arena("high_water", a, "pdirty"));
	size_t res = holes_resident(objs, nsmall, 20, small);
	CHECK(res * kpage == holes * page, "%zu of %zu hole pages resident", res * kpage / page,
	      holes);
	char *p = mallocx(small, flags);
	assert_non_null(p);
	CHECK(is_hole(objs, nsmall, 20, p), "%p is not a freed block's address", (void *)p);
	dallocx(p, MALLOCX_TCACHE_NONE);

	blocks_freed(bigs, nbig, 1, true);
	blocks_freed(objs, nsmall, 20, false);
	free(objs);
	free(bigs);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_high_water),
	    cmocka_unit_test(test_high_water_keeps_holes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
