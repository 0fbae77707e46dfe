/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the bound on freed memory held resident while an arena grows
 * (arena.h: arena_grow_bound, opt.lg_dirty_bound).
 *
 * Checked, on arenas of the unit-test objects: an arena whose freed runs
 * are all too small for the next requests (every other 4-page object freed,
 * then 8-page objects asked for), at its high-water mark once the holes are
 * made. Under the default high-water bound it keeps every freed page dirty
 * while it grows by less than a chunk's worth, and past that purges a
 * chunk's worth of old dirty pages per chunk's worth of growth, so that its
 * footprint stays within a chunk of the mark, never keeping less than a
 * chunk's worth dirty; once below its mark it grows without trading; and
 * holes that add up to less than a sixteenth of the active pages (a heap
 * fragmented by a few frees) are kept while it grows past its mark, but
 * freed runs of 32 pages and more only up to a sixty-fourth (and a
 * chunk's worth). With
 * lg_dirty_bound set it purges as many old dirty pages as each new object
 * faults in, never going below the bound; requests that freed runs do fit
 * take them without any purge; a huge allocation that no cached span fits
 * trades too; and an arena that does not purge at all (decay_time -1) never
 * trades, under either bound.
 *
 * The sizes are in pages and the counts in chunks' pages, so the test
 * means the same for every page size (4 KiB: 16 and 32 KiB objects, 1,200
 * of them). The arenas' decay time is the longest there is: the test
 * counts dirty pages exactly, and with the default 10 s an epoch passes
 * every 50 ms, after which decay may purge a run of its own on a slow or
 * loaded machine (the bound under test purges regardless of decay).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/config.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/pages.h"
#include "alloc/internal/sz.h"

/* The smallest large class (4 pages), and one of twice its size. */
#define OBJ_SIZE SZ_LARGE_MINCLASS
#define BIG_SIZE (2 * SZ_LARGE_MINCLASS)

/* Enough objects that half of them is well above the bound's floor of one
 * chunk's pages (4.7 chunks' worth: 1,200 with 4 KiB pages); big objects
 * for 0.6 chunk's worth of trades (40 with 4 KiB pages), at least 4
 * (test_floor). */
enum {
	NOBJS = CHUNK_NPAGES * 75 / 64 * 2,
	NBIG = CHUNK_NPAGES * 5 / 64 < 4 ? 4 : CHUNK_NPAGES * 5 / 64,
};

static void *objs[NOBJS];
static void *bigs[NBIG];

static int
group_setup(void **state) {
	(void)state;
	pages_boot();
	arena_boot();
	return huge_boot() ? -1 : 0;
}

static int
teardown(void **state) {
	(void)state;
	opt_lg_dirty_bound = -1;
	return 0;
}

static size_t
dirty_pages(arena_t *a) {
	arena_stats_snapshot_t *s = malloc(sizeof(*s));
	assert_non_null(s);
	arena_stats_read(a, s);
	size_t d = s->pdirty;
	free(s);
	return d;
}

/* A fresh arena holding NOBJS objects, every other one freed: dirty holes
 * of four pages, none of which fits an eight-page object. Returns the
 * dirty pages. */
static size_t
holed_arena(arena_t **out) {
	arena_t *a = arena_extend();
	assert_non_null(a);
	/* No decay epoch passes while the test runs (see the top). */
	assert_false(arena_decay_ms_set(a, DECAY_STAGE_DIRTY, DECAY_MS_MAX));
	szind_t ind = sz_size2index(OBJ_SIZE);
	assert_true(ind >= SZ_NSMALL && ind < SZ_NPAGED);
	for (unsigned i = 0; i < NOBJS; i++) {
		objs[i] = arena_malloc_large(a, ind, PAGE, false);
		assert_non_null(objs[i]);
		memset(objs[i], 0x5a, OBJ_SIZE);
	}
	arena_purge_all(a);
	for (unsigned i = 0; i < NOBJS; i += 2) {
		arena_dalloc_large(objs[i], ind);
	}
	size_t dirty = dirty_pages(a);
	assert_int_equal(dirty, NOBJS / 2 * (OBJ_SIZE >> LG_PAGE));
	*out = a;
	return dirty;
}

static void
alloc_bigs(arena_t *a, unsigned n) {
	for (unsigned i = 0; i < n; i++) {
		bigs[i] = arena_malloc_large(a, sz_size2index(BIG_SIZE), PAGE, false);
		assert_non_null(bigs[i]);
		memset(bigs[i], 0xa5, BIG_SIZE);
	}
}

/* A request the holes fit takes one of them: nothing purged, one hole
 * fewer. */
static void
check_hole_taken(arena_t *a, size_t dirty) {
	void *p = arena_malloc_large(a, sz_size2index(OBJ_SIZE), PAGE, false);
	assert_non_null(p);
	assert_int_equal(dirty_pages(a), dirty - (OBJ_SIZE >> LG_PAGE));
}

static size_t
footprint(arena_t *a) {
	return a->nactive + a->nactive_huge + dirty_pages(a);
}

static void
test_high_water_within_chunk(void **state) {
	(void)state;
	assert_int_equal(opt_lg_dirty_bound, -1);
	arena_t *a;
	size_t dirty = holed_arena(&a);
	/* Eight-page objects, less than a chunk's worth of growth: 0.6 of it
	 * (NBIG) with 4 KiB pages, 0.75 with 64 KiB ones. */
	unsigned n = (CHUNK_NPAGES - 1) / (BIG_SIZE >> LG_PAGE);
	alloc_bigs(a, n < NBIG ? n : NBIG);
	assert_int_equal(dirty_pages(a), dirty);
}

static void
test_high_water_trades(void **state) {
	(void)state;
	assert_int_equal(opt_lg_dirty_bound, -1);
	arena_t *a;
	size_t dirty = holed_arena(&a);
	size_t mark = footprint(a);
	size_t big_pages = BIG_SIZE >> LG_PAGE;
	/* Four chunks' worth of growth, object by object. */
	unsigned n = 4 * CHUNK_NPAGES / big_pages;
	size_t purged = 0;
	for (unsigned i = 0; i < n; i++) {
		void *p = arena_malloc_large(a, sz_size2index(BIG_SIZE), PAGE, false);
		assert_non_null(p);
		memset(p, 0xa5, BIG_SIZE);
		size_t now = dirty_pages(a);
		assert_true(now <= dirty);
		purged += dirty - now;
		dirty = now;
		/* Within a chunk's worth of the mark, whole holes purged. */
		assert_true(footprint(a) < mark + CHUNK_NPAGES);
		assert_true(footprint(a) + CHUNK_NPAGES + big_pages >= mark);
		assert_true(now >= CHUNK_NPAGES);
	}
	/* A chunk's worth traded per chunk's worth grown: four trades. */
	assert_true(purged >= 3 * CHUNK_NPAGES);
	assert_true(purged <= 4 * CHUNK_NPAGES + big_pages);
	check_hole_taken(a, dirty);
}

static void
test_high_water_below_mark(void **state) {
	(void)state;
	arena_t *a;
	size_t holes = holed_arena(&a);
	/* The holes purged: the footprint is below its mark by all of
	 * them. New dirty holes, isolated (their neighbours are the purged
	 * ones, which they do not merge with): one and a half chunk's worth,
	 * more than the bound keeps. */
	arena_purge_all(a);
	szind_t ind = sz_size2index(OBJ_SIZE);
	unsigned k = 3 * CHUNK_NPAGES / 2 / (OBJ_SIZE >> LG_PAGE);
	assert_true(k <= NOBJS / 4);
	for (unsigned i = 0; i < k; i++) {
		arena_dalloc_large(objs[4 * i + 1], ind);
	}
	size_t dirty = dirty_pages(a);
	assert_int_equal(dirty, k * (OBJ_SIZE >> LG_PAGE));
	/* Growing back below the mark trades nothing: left to decay. */
	assert_true(NBIG * (BIG_SIZE >> LG_PAGE) < holes);
	alloc_bigs(a, NBIG);
	assert_int_equal(dirty_pages(a), dirty);
}

/* A fresh arena holding n objects of class ind, purged, every twentieth
 * then freed. Returns the objects (malloc'd array). */
static void **
sparse_arena(arena_t **out, szind_t ind, size_t n) {
	arena_t *a = arena_extend();
	assert_non_null(a);
	assert_false(arena_decay_ms_set(a, DECAY_STAGE_DIRTY, DECAY_MS_MAX));
	assert_true(ind >= SZ_NSMALL && ind < SZ_NPAGED);
	void **many = malloc(n * sizeof(*many));
	assert_non_null(many);
	for (size_t i = 0; i < n; i++) {
		many[i] = arena_malloc_large(a, ind, PAGE, false);
		assert_non_null(many[i]);
	}
	arena_purge_all(a);
	for (size_t i = 0; i < n; i += 20) {
		arena_dalloc_large(many[i], ind);
	}
	*out = a;
	return many;
}

/* Holes of 1.2 chunks' worth among 24 chunks' worth of objects (every
 * twentieth freed): more than the chunk's worth the bound always keeps,
 * less than the sixteenth of the active pages it keeps as well. Growing
 * three chunks' worth past the mark purges none of them; the mark
 * follows the growth. */
static void
test_high_water_keeps_holes(void **state) {
	(void)state;
	assert_int_equal(opt_lg_dirty_bound, -1);
	arena_t *a;
	size_t obj_pages = OBJ_SIZE >> LG_PAGE;
	size_t n = 6 * CHUNK_NPAGES;
	void **many = sparse_arena(&a, sz_size2index(OBJ_SIZE), n);
	size_t dirty = dirty_pages(a);
	assert_int_equal(dirty, (n + 19) / 20 * obj_pages);
	assert_true(dirty > CHUNK_NPAGES);
	assert_true(dirty <= a->nactive / 16);
	size_t mark = footprint(a);
	/* Three chunks' worth of eight-page objects, which no hole fits. */
	size_t big_pages = BIG_SIZE >> LG_PAGE;
	for (size_t i = 0; i < 3 * CHUNK_NPAGES / big_pages; i++) {
		assert_non_null(arena_malloc_large(a, sz_size2index(BIG_SIZE), PAGE, false));
	}
	assert_int_equal(dirty_pages(a), dirty);
	assert_true(footprint(a) >= mark + 3 * CHUNK_NPAGES - big_pages);
	assert_true(a->footprint_max + CHUNK_NPAGES >= footprint(a));
	check_hole_taken(a, dirty);
	free(many);
}

/* Runs of LARGE_KEEP_MIN_PAGES pages (kept apart when freed, and no holes
 * to the bound): 400 objects, every twentieth freed, 2.5 chunks' worth of
 * pages over 20 runs, under a sixteenth of the active pages but above a
 * sixty-fourth of them and above a chunk's worth. Growing three chunks'
 * worth past the mark trades them down to the chunk's worth. */
static void
test_high_water_trades_long_runs(void **state) {
	(void)state;
	assert_int_equal(opt_lg_dirty_bound, -1);
	arena_t *a;
	size_t run_pages = LARGE_KEEP_MIN_PAGES;
	if (sz_size2index(2 * run_pages << LG_PAGE) >= SZ_NPAGED) {
		/* 64 KiB pages: runs that long are huge blocks, never kept. */
		skip();
	}
	size_t n = 400;
	void **many = sparse_arena(&a, sz_size2index(run_pages << LG_PAGE), n);
	size_t dirty = dirty_pages(a);
	assert_int_equal(dirty, n / 20 * run_pages);
	assert_int_equal(a->nkeep, n / 20);
	assert_int_equal(a->ndirty_holes, 0);
	assert_true(dirty > CHUNK_NPAGES && dirty > a->nactive / 64);
	assert_true(dirty <= a->nactive / 16);
	/* Three chunks' worth of objects twice as long, which no run fits. */
	szind_t big = sz_size2index(2 * run_pages << LG_PAGE);
	for (size_t i = 0; i < 3 * CHUNK_NPAGES / (2 * run_pages); i++) {
		assert_non_null(arena_malloc_large(a, big, PAGE, false));
	}
	/* Whole runs purged, oldest first, down to the chunk's worth. */
	size_t now = dirty_pages(a);
	assert_true(now < dirty);
	assert_true(now >= CHUNK_NPAGES && now < CHUNK_NPAGES + run_pages);
	free(many);
}

static void
test_on_trades(void **state) {
	(void)state;
	arena_t *a;
	size_t dirty = holed_arena(&a);
	opt_lg_dirty_bound = 6;
	size_t big_pages = BIG_SIZE >> LG_PAGE;
	for (unsigned i = 0; i < NBIG; i++) {
		alloc_bigs(a, 1);
		size_t now = dirty_pages(a);
		/* As many pages as the new object, or a little more: runs are
		 * purged whole (two four-page holes here). */
		assert_true(now <= dirty - big_pages);
		assert_true(now + 2 * big_pages >= dirty);
		/* Never below the floor (a chunk's pages, above active / 64
		 * here). */
		assert_true(now >= CHUNK_NPAGES);
		dirty = now;
	}
	check_hole_taken(a, dirty);
}

static void
test_floor(void **state) {
	(void)state;
	arena_t *a;
	holed_arena(&a);
	opt_lg_dirty_bound = 0;
	/* Bound = active pages: the NOBJS / 2 holes' dirty pages are no
	 * more than the NOBJS / 2 objects' active ones, so nothing is
	 * traded. */
	size_t before = dirty_pages(a);
	alloc_bigs(a, 4);
	assert_int_equal(dirty_pages(a), before);
}

static void
test_huge_trades(void **state) {
	(void)state;
	arena_t *a;
	size_t dirty = holed_arena(&a);
	opt_lg_dirty_bound = 6;
	/* A huge span: no cached span exists, so it is new memory. */
	size_t usize = CHUNK * 2;
	void *h = huge_malloc(a, usize, CHUNK, false);
	assert_non_null(h);
	size_t now = dirty_pages(a);
	assert_true(now < dirty);
	assert_true(now >= CHUNK_NPAGES);
	huge_dalloc(h, false);
}

static void
test_no_purging_no_trade(void **state) {
	(void)state;
	arena_t *a;
	size_t dirty = holed_arena(&a);
	assert_false(arena_decay_ms_set(a, DECAY_STAGE_DIRTY, -1));
	opt_lg_dirty_bound = 6;
	alloc_bigs(a, NBIG);
	assert_int_equal(dirty_pages(a), dirty);
	/* Nor the high-water bound, past a chunk's worth of growth. */
	opt_lg_dirty_bound = -1;
	for (unsigned i = 0; i < 2 * CHUNK_NPAGES / (BIG_SIZE >> LG_PAGE); i++) {
		assert_non_null(arena_malloc_large(a, sz_size2index(BIG_SIZE), PAGE, false));
	}
	assert_int_equal(dirty_pages(a), dirty);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_high_water_within_chunk, teardown),
	    cmocka_unit_test_teardown(test_high_water_trades, teardown),
	    cmocka_unit_test_teardown(test_high_water_below_mark, teardown),
	    cmocka_unit_test_teardown(test_high_water_keeps_holes, teardown),
	    cmocka_unit_test_teardown(test_high_water_trades_long_runs, teardown),
	    cmocka_unit_test_teardown(test_on_trades, teardown),
	    cmocka_unit_test_teardown(test_floor, teardown),
	    cmocka_unit_test_teardown(test_huge_trades, teardown),
	    cmocka_unit_test_teardown(test_no_purging_no_trade, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
