/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the thread caches (tcache.h, tcache.c) on real caches set up
 * with tcache_boot/tcache_init against arenas 0 and 1 of the unit-test
 * objects, driven the way alloc.c drives them (the hit paths are repeated
 * here as cache_alloc/cache_free, the slow paths are the real ones).
 *
 * Checked: capacities and the size->bin offset table from tcache_boot, for
 * several opt.lg_tcache_max values; the state tcache_init leaves (small
 * first stacks packed at the start of the block); stacks that grow on a
 * refill and on a free into a full bin, by doubling up to the full
 * capacity, keeping their objects, their order and the low-water mark, in
 * the order bins grow, never overlapping, a bin that only takes frees
 * only to an eighth of its full capacity (the other tests run on caches
 * grown to full capacity first), and its limit down to an eighth too, to
 * one object in the classes of a page and more; a miss
 * fills ncached_max >> lg_fill_div regions in one arena fill (bin stats
 * nfills/nmalloc/curregs) and hands them out lowest address first; large
 * classes never fill; a push onto a full bin flushes the older half, each
 * object to the arena owning it (region bitmaps and curregs); GC flushes
 * three quarters of an idle bin's low-water mark and fills less next time,
 * and fills more after a bin ran empty, within the documented bounds;
 * tcache_flush returns everything; tcache_destroy leaves every bin missing
 * and the arena as before tcache_init; request counts reach the arena stats
 * either merged by a flush or through tcache_stats_add, never twice.
 *
 * Every test skips in a build configured with --disable-tcache, where
 * tcache_init leaves caches disabled.
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
#include "alloc/internal/arena_validate.h"
#include "alloc/internal/bitmap.h"
#include "alloc/internal/config.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/pages.h"
#include "alloc/internal/sz.h"
#include "alloc/internal/tcache.h"

static arena_t *arena0;
static arena_t *arena1;

/* ---------------------------------------------------------------------- */
/* Helpers. */

/* malloc's path through a cache (alloc.c, malloc_fast): pop on a hit, the
 * slow path when head meets the low-water mark or the tick runs out. */
static void *
cache_alloc(tcache_t *t, arena_t *a, szind_t ind) {
	unsigned pc = tcache_pc(ind);
	void **head = t->head[pc];
	if (head != t->low_water[pc] && --t->ticks[pc] >= 0) {
		t->head[pc] = head + 1;
		return *head;
	}
	assert_int_not_equal(t->ncached_max[pc], 0);
	return tcache_alloc(t, a, ind);
}

/* free's path through a cache (alloc.c, free_fast). */
static void
cache_free(tcache_t *t, void *p, szind_t ind) {
	unsigned pc = tcache_pc(ind);
	void **head = t->head[pc];
	if (head != t->full[pc] && *head != p) {
		t->head[pc] = head - 1;
		head[-1] = p;
		return;
	}
	assert_int_not_equal(t->ncached_max[pc], 0);
	tcache_dalloc(t, p, ind);
}

static arena_stats_snapshot_t snap;

static bin_stats_t
bin_stats(arena_t *a, szind_t ind) {
	arena_stats_read(a, &snap);
	return snap.bins[ind];
}

static large_stats_t
large_stats(arena_t *a, szind_t ind) {
	arena_stats_read(a, &snap);
	return snap.lstats[ind - SZ_NSMALL];
}

static size_t
allocated_large(arena_t *a) {
	arena_stats_read(a, &snap);
	return snap.allocated_large;
}

static size_t
allocated_small(arena_t *a) {
	arena_stats_read(a, &snap);
	return snap.allocated_small;
}

/* The cache's stack blocks of size class ind (its first block, then the
 * further ones through their first slot, tcache.c). */
static unsigned
stack_blocks_of(const tcache_t *t, szind_t ind) {
	unsigned n = arena_ptr_pclass(t->stacks) == ind + 1;
	for (void **b = t->more; b != NULL; b = b[0]) {
		n += arena_ptr_pclass(b) == ind + 1;
	}
	return n;
}

/* Whether p lies in one of the cache's further stack blocks. */
static bool
in_further_block(const tcache_t *t, const void *p) {
	for (void **b = t->more; b != NULL; b = b[0]) {
		size_t bytes = sz_index2size((szind_t)(uintptr_t)b[1]);
		if ((const char *)p >= (const char *)b &&
		    (const char *)p < (const char *)b + bytes) {
			return true;
		}
	}
	return false;
}

/* Whether the region at p is marked in use in its run's bitmap. */
static bool
region_in_use(const void *p, szind_t ind) {
	arena_chunk_t *c = arena_chunk_of(p);
	run_t *run = c->misc[arena_pageind(p)].run;
	size_t idx = (size_t)((const char *)p - run->base) / bin_infos[ind].reg_size;
	return bitmap_get(run->bitmap, idx);
}

/* A cache as tcache_init leaves it: every bin on its small first stack. */
static tcache_t *
cache_new_fresh(arena_t *a) {
	tcache_t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_false(tcache_init(t, a));
	assert_non_null(t->stacks);
	return t;
}

/* A cache whose bins are all grown to their full capacity, as a thread's
 * are after a while: the tests of fills, flushes and GC start from it. */
static tcache_t *
cache_new(arena_t *a) {
	tcache_t *t = cache_new_fresh(a);
	for (szind_t i = 0; i < tcache_nhbins; i++) {
		while (tcache_bin_grow(t, i)) {
		}
		assert_int_equal(t->ncached_max[tcache_pc(i)], tcache_cap_max(i));
	}
	return t;
}

static void
cache_delete(tcache_t *t) {
	tcache_destroy(t);
	free(t);
}

/* The end of a test that took bin ind's regions through cache t: a flush
 * gives every one back (arena0's curregs as in s0, taken before), then
 * the cache goes. */
static void
cache_finish(tcache_t *t, szind_t ind, bin_stats_t s0) {
	tcache_flush(t);
	if (config_stats) {
		assert_int_equal(bin_stats(arena0, ind).curregs, s0.curregs);
	}
	cache_delete(t);
}

static void
skip_without_tcache(void) {
	if (!config_tcache) {
		print_message("# built with --disable-tcache: no thread caches to test\n");
		skip();
	}
}

/* The small class of `size`. */
static szind_t
small_class(size_t size) {
	szind_t ind = sz_size2index(size);
	assert_true(ind < SZ_NSMALL);
	return ind;
}

/*
 * The opt.lg_tcache_max the tests run under: 8 pages, so the first large
 * classes (4 to 8 pages) are cached whatever the page size. With 4 KiB
 * pages that is the default, 32 KiB; with larger pages the default caches
 * no large class at all (they start at 4 pages, above 32 KiB from 16 KiB
 * pages on).
 */
#define TEST_LG_TCACHE_MAX (LG_PAGE + 3)

static int
group_setup(void **state) {
	(void)state;
	pages_boot();
	arena_boot();
	opt_lg_tcache_max = TEST_LG_TCACHE_MAX;
	tcache_boot();
	if (huge_boot()) {
		return -1;
	}
	arena0 = arena_get(0);
	arena1 = arena_get(1);
	return arena0 == NULL || arena1 == NULL ? -1 : 0;
}

/* ---------------------------------------------------------------------- */
/* Boot and init. */

static void
check_boot(size_t lg_max, size_t want_max) {
	opt_lg_tcache_max = lg_max;
	tcache_boot();
	assert_int_equal(tcache_maxclass, want_max);
	assert_int_equal(tcache_nhbins, sz_size2index(want_max) + 1);
	assert_int_equal(sz_index2size(tcache_nhbins - 1), want_max);
}

static void
test_boot(void **state) {
	(void)state;
	skip_without_tcache();
	/* Every small class at least, at most every large one. */
	check_boot(0, SZ_SMALL_MAXCLASS);
	assert_int_equal(tcache_nhbins, SZ_NSMALL);
	check_boot(LG_PAGE, SZ_SMALL_MAXCLASS);
	check_boot(LG_PAGE + 4, PAGE << 4);
	check_boot(LG_CHUNK - 1, (size_t)1 << (LG_CHUNK - 1));
	/* Past the option's range (only configure could set it): clamped. */
	check_boot(LG_CHUNK, SZ_LARGE_MAXCLASS);
	assert_int_equal(tcache_nhbins, SZ_NPAGED);
	check_boot(sizeof(size_t) * 8 - 1, SZ_LARGE_MAXCLASS);
	/* Back to the setting of the other tests. */
	check_boot(TEST_LG_TCACHE_MAX, PAGE << 3);

	/* The hit path's size -> bin table. */
	for (size_t s = 0; s <= SZ_LOOKUP_MAXCLASS; s++) {
		assert_int_equal(tcache_size2pc_tab[s], sz_size2index(s) + 1);
	}

	tcache_t *t = cache_new_fresh(arena0);
	assert_ptr_equal(t->arena, arena0);
	assert_int_equal(t->gc_ticker, TCACHE_GC_INTERVAL);
	assert_int_equal(t->gc_bin, 0);
	/* Slot 0 (PCLASS_NONE) always misses. */
	assert_null(t->head[0]);
	assert_null(t->full[0]);
	assert_int_equal(t->ncached_max[0], 0);
	void **prev_empty = NULL;
	for (szind_t i = 0; i < SZ_NPAGED; i++) {
		unsigned pc = tcache_pc(i);
		if (i >= tcache_nhbins) {
			/* Not cached: both hit tests miss. */
			assert_int_equal(t->ncached_max[pc], 0);
			assert_ptr_equal(t->head[pc], t->low_water[pc]);
			assert_ptr_equal(t->head[pc], t->full[pc]);
			continue;
		}
		unsigned full = 20;
		if (i < SZ_NSMALL) {
			full = 2 * bin_infos[i].nregs;
			full = full < 20 ? 20 : full > 200 ? 200 : full;
		}
		assert_int_equal(tcache_cap_max(i), full);
		/* Every bin starts on a stack of 8 slots (its full one when
		 * smaller), whatever its size. */
		unsigned want = full < 8 ? full : 8;
		assert_int_equal(t->ncached_max[pc], want);
		assert_int_equal(t->empty[pc] - t->full[pc], want);
		assert_ptr_equal(t->head[pc], t->empty[pc]);
		assert_ptr_equal(t->low_water[pc], t->empty[pc]);
		assert_int_equal(tcache_ncached(t, i), 0);
		assert_int_equal(t->usize[pc], sz_index2size(i));
		if (i < SZ_NSMALL && sz_index2size(i) >= PAGE) {
			/* Fills of one (test_fill_one). */
			assert_int_equal(tcache_cap_max(i) >> t->lg_fill_div[pc], 0);
		} else {
			assert_int_equal(t->lg_fill_div[pc], 1);
		}
		assert_int_equal(tcache_nrequests(t, i), 0);
		assert_int_equal(t->ticks[pc], TCACHE_GC_INTERVAL);
		/* The first stacks lie one after the other at the start of
		 * the block, each followed by a NULL slot. */
		assert_null(*t->empty[pc]);
		if (prev_empty != NULL) {
			assert_ptr_equal(t->full[pc], prev_empty + 1);
		} else {
			assert_ptr_equal(t->full[pc], t->stacks);
		}
		prev_empty = t->empty[pc];
	}
	cache_delete(t);
}

/* ---------------------------------------------------------------------- */
/* Stacks sized to use. */

/* The highest first-stack slot of any bin: grown stacks lie above it. */
static void **
first_stacks_end(tcache_t *t) {
	void **end = t->stacks;
	for (szind_t i = 0; i < tcache_nhbins; i++) {
		unsigned pc = tcache_pc(i);
		if (t->empty[pc] > end) {
			end = t->empty[pc];
		}
	}
	return end;
}

static void
test_grow(void **state) {
	(void)state;
	skip_without_tcache();
	szind_t ind = small_class(64);
	szind_t other = small_class(128);
	tcache_t *t = cache_new_fresh(arena0);
	unsigned pc = tcache_pc(ind);
	void **first_end = first_stacks_end(t);
	unsigned full = tcache_cap_max(ind);
	assert_true(full > 16);
	assert_int_equal(t->ncached_max[pc], 8);
	bin_stats_t s0 = bin_stats(arena0, ind);

	/* The first fill takes half the first stack. */
	enum { N = 512 };
	void **objs = calloc(N, sizeof(void *));
	assert_non_null(objs);
	unsigned n = 0;
	objs[n++] = cache_alloc(t, arena0, ind);
	assert_int_equal(tcache_ncached(t, ind), 3);
	assert_int_equal(t->ncached_max[pc], 8);
	if (config_stats) {
		assert_int_equal(bin_stats(arena0, ind).nmalloc, s0.nmalloc + 4);
	}
	while (tcache_ncached(t, ind) != 0) {
		objs[n++] = cache_alloc(t, arena0, ind);
	}
	/* The refill grows the stack first: twice the capacity, above every
	 * first stack (in the first block's room, or in a further block),
	 * and a fill of half of it. */
	objs[n++] = cache_alloc(t, arena0, ind);
	assert_int_equal(t->ncached_max[pc], 16);
	assert_int_equal(t->empty[pc] - t->full[pc], 16);
	assert_true(t->full[pc] > first_end || in_further_block(t, t->full[pc]));
	assert_null(*t->empty[pc]);
	assert_int_equal(tcache_ncached(t, ind), 7);
	assert_ptr_equal(t->low_water[pc], t->empty[pc]);
	if (config_stats) {
		assert_int_equal(bin_stats(arena0, ind).nmalloc, s0.nmalloc + 4 + 8);
	}
	void **grown_at = t->empty[pc];
	/* The objects the test holds (popped), freed at the end. */
	unsigned npopped = n;

	/* Another bin growing takes the next stack in the block (or the
	 * start of a further one). */
	void *q = cache_alloc(t, arena0, other);
	assert_non_null(q);
	void **more = t->more;
	assert_true(tcache_bin_grow(t, other));
	if (t->more == more) {
		assert_ptr_equal(t->full[tcache_pc(other)], grown_at + 1);
	} else {
		assert_ptr_equal(t->full[tcache_pc(other)], t->more + 2);
	}
	assert_int_equal(tcache_ncached(t, other), 3);

	/* Frees into a full bin grow it instead of flushing, keeping the
	 * objects, their order and the low-water mark. */
	while (n < N - 1 && t->ncached_max[pc] < full) {
		unsigned cap = t->ncached_max[pc];
		while (t->head[pc] != t->full[pc]) {
			objs[n] = arena_malloc_small(arena0, ind, false);
			assert_non_null(objs[n]);
			cache_free(t, objs[n++], ind);
		}
		unsigned cached = tcache_ncached(t, ind);
		unsigned low = (unsigned)(t->empty[pc] - t->low_water[pc]);
		void **old_empty = t->empty[pc];
		objs[n] = arena_malloc_small(arena0, ind, false);
		assert_non_null(objs[n]);
		cache_free(t, objs[n++], ind);
		unsigned want = 2 * cap < full ? 2 * cap : full;
		assert_int_equal(t->ncached_max[pc], want);
		assert_int_equal(tcache_ncached(t, ind), cached + 1);
		assert_int_equal(t->empty[pc] - t->low_water[pc], low);
		assert_true(t->full[pc] > old_empty || in_further_block(t, t->full[pc]));
		assert_null(*t->empty[pc]);
		/* Newest on top, then the older ones in order (below them
		 * the rest of the second fill). */
		for (unsigned k = 0; k < n - npopped; k++) {
			assert_ptr_equal(t->head[pc][k], objs[n - 1 - k]);
		}
	}
	assert_int_equal(t->ncached_max[pc], full);
	assert_false(tcache_bin_grow(t, ind));
	/* At full capacity a free into the full bin flushes as before. */
	while (t->head[pc] != t->full[pc]) {
		objs[n] = arena_malloc_small(arena0, ind, false);
		cache_free(t, objs[n++], ind);
	}
	objs[n] = arena_malloc_small(arena0, ind, false);
	cache_free(t, objs[n++], ind);
	assert_int_equal(tcache_ncached(t, ind), full / 2 + 1);
	assert_true(n < N);

	/* Everything goes back: the cache keeps nothing of the arena's. */
	for (unsigned i = 0; i < npopped; i++) {
		cache_free(t, objs[i], ind);
	}
	cache_free(t, q, other);
	for (unsigned i = 0; i < tcache_ncached(t, ind); i++) {
		assert_true(region_in_use(t->head[pc][i], ind));
	}
	free(objs);
	cache_finish(t, ind, s0);
}

/*
 * Stack blocks taken as the bins grow: a fresh cache holds one small block
 * (its first stacks: a small region where they fit one); bins growing take
 * further blocks, each twice the one before (the newest may be smaller: no
 * more than the bins can still grow by), in all at most twice what the
 * grown stacks use; destroying the cache gives every block back.
 */
static void
test_stack_blocks(void **state) {
	(void)state;
	skip_without_tcache();
	size_t as0 = allocated_small(arena0);
	size_t al0 = allocated_large(arena0);
	tcache_t *t = cache_new_fresh(arena0);
	assert_null(t->more);
	size_t first = sz_index2size(arena_ptr_pclass(t->stacks) - 1);
	size_t start = (size_t)((first_stacks_end(t) + 1) - (void **)t->stacks) * sizeof(void *);
	assert_true(first >= start && first < 2 * start);
	if (start <= SZ_SMALL_MAXCLASS) {
		assert_true(arena_ptr_pclass(t->stacks) <= SZ_NSMALL);
		if (config_stats) {
			assert_int_equal(allocated_small(arena0), as0 + first);
			assert_int_equal(allocated_large(arena0), al0);
		}
	}

	/* Every bin to its full capacity. */
	for (szind_t i = 0; i < tcache_nhbins; i++) {
		while (tcache_bin_grow(t, i)) {
		}
		assert_int_equal(t->ncached_max[tcache_pc(i)], tcache_cap_max(i));
	}
	assert_non_null(t->more);
	size_t used = t->grown_slots * sizeof(void *);
	size_t blocks = 0;
	void **newer = NULL;
	for (void **b = t->more; b != NULL; b = b[0]) {
		size_t bytes = sz_index2size((szind_t)(uintptr_t)b[1]);
		assert_int_equal(arena_ptr_pclass(b), (szind_t)(uintptr_t)b[1] + 1);
		if (newer != NULL && newer != t->more) {
			assert_true(sz_index2size((szind_t)(uintptr_t)newer[1]) >= 2 * bytes);
		}
		newer = b;
		blocks += bytes;
	}
	assert_true(blocks >= used);
	assert_true(blocks <= 2 * used + 2 * first);

	/* A flush gives the further blocks back: the cache is as fresh. */
	tcache_flush(t);
	assert_null(t->more);
	assert_int_equal(t->grown_slots, 0);
	for (szind_t i = 0; i < tcache_nhbins; i++) {
		unsigned cap = tcache_cap_max(i) < 8 ? tcache_cap_max(i) : 8;
		assert_int_equal(t->ncached_max[tcache_pc(i)], cap);
		assert_true(t->full[tcache_pc(i)] >= (void **)t->stacks &&
		            t->empty[tcache_pc(i)] < first_stacks_end(t) + 1);
	}
	if (config_stats && start <= SZ_SMALL_MAXCLASS) {
		assert_int_equal(allocated_small(arena0), as0 + first);
		assert_int_equal(allocated_large(arena0), al0);
	}
	/* And it grows again with use. */
	szind_t ind = small_class(64);
	assert_true(tcache_bin_grow(t, ind));
	assert_int_equal(t->ncached_max[tcache_pc(ind)], 16);

	tcache_destroy(t);
	assert_null(t->more);
	if (config_stats) {
		assert_int_equal(allocated_small(arena0), as0);
		assert_int_equal(allocated_large(arena0), al0);
	}
	cache_delete(t);
}

/* A bin that only takes frees (a consumer's) grows only to an eighth of
 * its full capacity, the least its limit goes down to: it never holds more
 * than that, where a full stack would hold up to 200 objects the producer
 * cannot reuse. */
static void
test_grow_free_only(void **state) {
	(void)state;
	skip_without_tcache();
	szind_t ind = small_class(64);
	tcache_t *t = cache_new_fresh(arena0);
	unsigned pc = tcache_pc(ind);
	unsigned eighth = tcache_cap_max(ind) / 8;
	assert_true(eighth > 8);
	enum { N = 1000 };
	void **objs = calloc(N, sizeof(void *));
	assert_non_null(objs);
	bin_stats_t s0 = bin_stats(arena0, ind);
	unsigned most = 0;
	for (unsigned i = 0; i < N; i++) {
		objs[i] = arena_malloc_small(arena0, ind, false);
		assert_non_null(objs[i]);
		cache_free(t, objs[i], ind);
		unsigned n = tcache_ncached(t, ind);
		most = n > most ? n : most;
		assert_true(t->ncached_max[pc] < 2 * eighth);
	}
	/* Grown past its first stack, to the eighth (8 doubles until it is
	 * at least that), and its limit at the eighth once flushing. */
	assert_true(t->ncached_max[pc] >= eighth);
	assert_int_equal(t->empty[pc] - t->full[pc], eighth);
	assert_true(most <= t->ncached_max[pc]);
	free(objs);
	cache_finish(t, ind, s0);
}

/* ---------------------------------------------------------------------- */
/* Fill. */

static void
test_fill(void **state) {
	(void)state;
	skip_without_tcache();
	szind_t ind = small_class(64);
	tcache_t *t = cache_new(arena0);
	unsigned pc = tcache_pc(ind);
	unsigned n = t->ncached_max[pc] >> t->lg_fill_div[pc];
	assert_true(n >= 1 && n <= bin_infos[ind].nregs);
	bin_stats_t s0 = bin_stats(arena0, ind);

	/* The miss fills n regions in one go and returns the lowest. */
	void **objs = calloc(2 * n, sizeof(void *));
	objs[0] = cache_alloc(t, arena0, ind);
	assert_non_null(objs[0]);
	assert_int_equal(tcache_ncached(t, ind), n - 1);
	assert_ptr_equal(t->low_water[pc], t->empty[pc]);
	if (config_stats) {
		bin_stats_t s1 = bin_stats(arena0, ind);
		assert_int_equal(s1.nfills, s0.nfills + 1);
		assert_int_equal(s1.nmalloc, s0.nmalloc + n);
		assert_int_equal(s1.curregs, s0.curregs + n);
	}
	/* The rest are hits, in ascending address order, each a region of
	 * this class. */
	for (unsigned i = 1; i < n; i++) {
		objs[i] = cache_alloc(t, arena0, ind);
		assert_true((uintptr_t)objs[i] > (uintptr_t)objs[i - 1]);
		assert_int_equal(arena_ptr_pclass(objs[i]), ind + 1);
		assert_true(region_in_use(objs[i], ind));
	}
	assert_int_equal(tcache_ncached(t, ind), 0);
	if (config_stats) {
		bin_stats_t s2 = bin_stats(arena0, ind);
		assert_int_equal(s2.nfills, s0.nfills + 1);
		assert_int_equal(s2.nmalloc, s0.nmalloc + n);
	}
	/* Empty again: the next miss fills again. */
	objs[n] = cache_alloc(t, arena0, ind);
	assert_non_null(objs[n]);
	assert_int_equal(tcache_ncached(t, ind), n - 1);
	for (unsigned i = 0; i < n; i++) {
		assert_ptr_not_equal(objs[n], objs[i]);
	}
	if (config_stats) {
		bin_stats_t s3 = bin_stats(arena0, ind);
		assert_int_equal(s3.nfills, s0.nfills + 2);
		assert_int_equal(s3.nmalloc, s0.nmalloc + 2 * n);
	}
	assert_int_equal(tcache_nrequests(t, ind), n + 1);

	/* Back into the cache, then all of it to the arena. */
	for (unsigned i = 0; i <= n; i++) {
		cache_free(t, objs[i], ind);
	}
	tcache_flush(t);
	assert_int_equal(tcache_ncached(t, ind), 0);
	if (config_stats) {
		bin_stats_t s4 = bin_stats(arena0, ind);
		assert_int_equal(s4.curregs, s0.curregs);
		assert_int_equal(s4.ndalloc, s0.ndalloc + 2 * n);
		assert_int_equal(s4.nrequests, s0.nrequests + n + 1);
	}
	free(objs);
	cache_delete(t);
}

/* One GC look at every bin. */
static void
gc_rotation(tcache_t *t) {
	for (szind_t i = 0; i < tcache_nhbins; i++) {
		tcache_gc_step(t);
	}
}

/*
 * The small classes of a page and more (4-14 KiB, in runs of four
 * regions) are filled one object at a time while the thread allocates them
 * now and then: a cache does not take most of a run ahead of the program.
 * A bin that made TCACHE_FILL_ONE_RUN fills of one in a row, each after
 * the first in the same GC step as the one before (a thread that has just
 * started and allocates the class often), fills in batches from the next
 * miss on; so does a bin that served TCACHE_FILL_ONE_BUSY requests or more
 * between two GC looks. Idle for a rotation, it goes back to fills of one.
 * Freed objects are cached and reused either way.
 */
static void
test_fill_one(void **state) {
	(void)state;
	skip_without_tcache();
	if (PAGE > SZ_SMALL_MAXCLASS) {
		skip();
	}
	enum { N = 80 };
	_Static_assert(N > TCACHE_FILL_ONE_BUSY && N > TCACHE_FILL_ONE_RUN,
	               "N requests make a bin busy both ways");
	for (szind_t ind = small_class(PAGE); ind < SZ_NSMALL; ind++) {
		assert_true(bin_infos[ind].nregs <= 4);
		unsigned pc = tcache_pc(ind);
		bin_stats_t s0 = bin_stats(arena0, ind);
		tcache_t *t = cache_new_fresh(arena0);
		void *objs[N];
		/* Now and then: one request per GC step (a class used about
		 * once in TCACHE_GC_INTERVAL allocations, or less). */
		for (unsigned i = 0; i < N; i++) {
			tcache_gc_step(t);
			objs[i] = cache_alloc(t, arena0, ind);
			assert_non_null(objs[i]);
			/* Nothing taken ahead, however often it fills. */
			assert_int_equal(tcache_ncached(t, ind), 0);
		}
		if (config_stats) {
			bin_stats_t s1 = bin_stats(arena0, ind);
			assert_int_equal(s1.nfills, s0.nfills + N);
			/* The cache's own stack blocks may be regions of
			 * the class. */
			assert_int_equal(s1.curregs, s0.curregs + stack_blocks_of(t, ind) + N);
		}
		/* Freed objects are cached and handed out again. */
		cache_free(t, objs[0], ind);
		assert_int_equal(tcache_ncached(t, ind), 1);
		assert_ptr_equal(cache_alloc(t, arena0, ind), objs[0]);
		for (unsigned i = 0; i < N; i++) {
			cache_free(t, objs[i], ind);
		}
		tcache_flush(t);
		cache_delete(t);

		/* A new cache asked for the class again and again within one
		 * GC step: TCACHE_FILL_ONE_RUN fills take one object each,
		 * the next one a batch. */
		t = cache_new_fresh(arena0);
		unsigned blocks = stack_blocks_of(t, ind);
		bin_stats_t s1 = bin_stats(arena0, ind);
		for (unsigned i = 0; i < TCACHE_FILL_ONE_RUN; i++) {
			objs[i] = cache_alloc(t, arena0, ind);
			assert_non_null(objs[i]);
			assert_int_equal(tcache_ncached(t, ind), 0);
		}
		objs[TCACHE_FILL_ONE_RUN] = cache_alloc(t, arena0, ind);
		assert_int_equal(tcache_ncached(t, ind), (t->ncached_max[pc] >> 1) - 1);
		for (unsigned i = TCACHE_FILL_ONE_RUN + 1; i < N; i++) {
			objs[i] = cache_alloc(t, arena0, ind);
			assert_non_null(objs[i]);
		}
		if (config_stats) {
			/* Far fewer fills than requests; the cache holds
			 * what it took ahead (and any stack block of the
			 * class its bins grew into). */
			bin_stats_t s2 = bin_stats(arena0, ind);
			assert_true(s2.nfills - s1.nfills <= N / 2);
			assert_int_equal(s2.curregs, s1.curregs + N + tcache_ncached(t, ind) +
			                                 stack_blocks_of(t, ind) - blocks);
		}
		for (unsigned i = 0; i < N; i++) {
			cache_free(t, objs[i], ind);
		}
		/* Busy (N requests since the last look): batches. */
		tcache_flush(t);
		gc_rotation(t);
		objs[0] = cache_alloc(t, arena0, ind);
		assert_true(tcache_ncached(t, ind) >= 1);
		cache_free(t, objs[0], ind);
		/* Idle for a whole rotation: fills of one again, and a run of
		 * them spread over GC steps stays one at a time. */
		tcache_flush(t);
		gc_rotation(t);
		for (unsigned i = 0; i <= TCACHE_FILL_ONE_RUN + 1; i++) {
			objs[i] = cache_alloc(t, arena0, ind);
			assert_int_equal(tcache_ncached(t, ind), 0);
			tcache_gc_step(t);
		}
		for (unsigned i = 0; i <= TCACHE_FILL_ONE_RUN + 1; i++) {
			cache_free(t, objs[i], ind);
		}
		tcache_flush(t);
		if (config_stats) {
			assert_int_equal(bin_stats(arena0, ind).curregs,
			                 s0.curregs + stack_blocks_of(t, ind));
		}
		cache_delete(t);
	}
}

/* What a bin at its limit should do (tcache_full), modelled free by free:
 * the expected limit and object count, the objects flushed on a full
 * stack since the bin's last allocation, and the flushes. */
typedef struct {
	unsigned cap, limit, cached, flushed, floor;
	uint64_t nrequests, nflushes;
	bool first;
} full_model_t;

static full_model_t
full_model(const tcache_t *t, szind_t ind) {
	unsigned pc = tcache_pc(ind);
	full_model_t m = {.cap = t->ncached_max[pc],
	                  .limit = t->ncached_max[pc],
	                  .cached = tcache_ncached(t, ind),
	                  .nrequests = tcache_nrequests(t, ind),
	                  .first = true};
	/* The least a consumer's limit goes down to: an eighth of the full
	 * capacity (of the current one, if smaller), one object from
	 * TCACHE_FREE_ONLY_MIN up. */
	m.floor = tcache_cap_max(ind) / 8 < m.cap ? tcache_cap_max(ind) / 8 : m.cap;
	if (m.floor == 0 || sz_index2size(ind) >= TCACHE_FREE_ONLY_MIN) {
		m.floor = 1;
	}
	return m;
}

/* Frees p into bin ind of t and checks the bin against the model. */
static void
free_modelled(tcache_t *t, szind_t ind, void *p, full_model_t *m) {
	bool pushed = true;
	if (m->cached == m->limit) {
		m->nflushes++;
		if (m->first || (m->limit == m->cap && m->flushed + m->limit <= m->nrequests)) {
			/* Keeps its newer half. */
			m->first = false;
			m->cached = m->cap / 2;
			m->flushed += m->cap - m->cap / 2;
		} else {
			/* A consumer's: everything back, the limit halves. Below
			 * the whole stack the freed object goes back with the
			 * others, and the bin is left empty. */
			pushed = m->limit == m->cap;
			m->cached = 0;
			m->limit = m->limit / 2 > m->floor ? m->limit / 2 : m->floor;
		}
	}
	cache_free(t, p, ind);
	unsigned pc = tcache_pc(ind);
	if (pushed) {
		m->cached++;
		/* The newest object is on top. */
		assert_ptr_equal(*t->head[pc], p);
	} else {
		/* Flushed with the others, holding the key as they do: a
		 * second free of it leaves the hit path for the double-free
		 * check. */
		assert_true(*(const uintptr_t *)p == tcache_key);
	}
	assert_int_equal(tcache_ncached(t, ind), m->cached);
	assert_int_equal(t->empty[pc] - t->full[pc], m->limit);
}

/*
 * A bin that only takes frees (a consumer thread) gives everything back
 * each time it reaches its limit and halves the limit, down to an eighth
 * of the stack, so it does not hold a whole stack of objects its producer
 * cannot reuse. The first full bin is treated as any other (it keeps
 * half); the next fill gives the whole stack back.
 */
static void
test_free_only(void **state) {
	(void)state;
	skip_without_tcache();
	szind_t ind = small_class(64);
	tcache_t *t = cache_new(arena0);
	unsigned pc = tcache_pc(ind);
	unsigned cap = t->ncached_max[pc];
	assert_true(cap >= 16);
	unsigned n = 4 * cap;
	void **objs = calloc(n, sizeof(void *));
	assert_non_null(objs);
	bin_stats_t s0 = bin_stats(arena0, ind);
	for (unsigned i = 0; i < n; i++) {
		objs[i] = arena_malloc_small(arena0, ind, false);
		assert_non_null(objs[i]);
	}
	full_model_t m = full_model(t, ind);
	assert_int_equal(m.cached, 0);
	assert_int_equal(m.nrequests, 0);
	for (unsigned i = 0; i < n; i++) {
		free_modelled(t, ind, objs[i], &m);
	}
	assert_int_equal(m.limit, cap / 8);
	if (config_stats) {
		/* Everything not cached went back to the arena. */
		assert_int_equal(bin_stats(arena0, ind).curregs, s0.curregs + m.cached);
	}
	/* Allocating empties the bin; the fill that follows restores the
	 * whole stack. */
	while (tcache_ncached(t, ind) != 0) {
		assert_non_null(cache_alloc(t, arena0, ind));
	}
	void *p = cache_alloc(t, arena0, ind);
	assert_non_null(p);
	assert_int_equal(t->empty[pc] - t->full[pc], cap);
	/* A bin that allocated since its last full flush keeps half again. */
	for (unsigned i = tcache_ncached(t, ind); i < cap; i++) {
		cache_free(t, arena_malloc_small(arena0, ind, false), ind);
	}
	cache_free(t, p, ind);
	assert_int_equal(tcache_ncached(t, ind), cap / 2 + 1);
	tcache_flush(t);
	free(objs);
	cache_delete(t);
}

/*
 * The classes of a page and more (TCACHE_FREE_ONLY_MIN: the 4-14 KiB small
 * classes and the cached large ones with 4 KiB pages), freed by a thread
 * that never allocates them (a consumer): the bin's limit goes down to one
 * object, not to an eighth of the stack (two), so it holds at most one
 * object of several KiB that only the producer can use; everything else
 * goes back to the arena (small: the bin's curregs; large: curruns). The
 * model (free_modelled) also checks that a free into a consumer's full bin
 * below its whole stack goes back with the others, leaving the bin empty.
 */
static void
test_free_only_big(void **state) {
	(void)state;
	skip_without_tcache();
	if (PAGE > SZ_SMALL_MAXCLASS) {
		skip();
	}
	for (szind_t ind = sz_size2index(TCACHE_FREE_ONLY_MIN); ind < tcache_nhbins; ind++) {
		tcache_t *t = cache_new_fresh(arena0);
		unsigned cap = t->ncached_max[tcache_pc(ind)];
		assert_true(tcache_cap_max(ind) / 8 >= 2);
		unsigned n = 4 * cap;
		void **objs = calloc(n, sizeof(void *));
		assert_non_null(objs);
		bool small = ind < SZ_NSMALL;
		bin_stats_t s0 = small ? bin_stats(arena0, ind) : (bin_stats_t){0};
		large_stats_t l0 = small ? (large_stats_t){0} : large_stats(arena0, ind);
		for (unsigned i = 0; i < n; i++) {
			objs[i] = small ? arena_malloc_small(arena0, ind, false)
			                : arena_malloc_large(arena0, ind, PAGE, false);
			assert_non_null(objs[i]);
		}
		full_model_t m = full_model(t, ind);
		assert_int_equal(m.floor, 1);
		for (unsigned i = 0; i < n; i++) {
			free_modelled(t, ind, objs[i], &m);
			assert_true(tcache_ncached(t, ind) <= cap);
		}
		/* From the first stack (8) down to one by halves; from then
		 * on a free into the full bin takes the cached object back
		 * with it, so the bin holds one object or none. */
		assert_int_equal(m.limit, 1);
		assert_true(m.cached <= 1);
		if (config_stats && small) {
			assert_int_equal(bin_stats(arena0, ind).curregs, s0.curregs + m.cached);
		} else if (config_stats) {
			assert_int_equal(large_stats(arena0, ind).curruns, l0.curruns + m.cached);
		}
		tcache_flush(t);
		free(objs);
		cache_delete(t);
	}
}

/*
 * A thread that frees a burst of objects it allocated (a short-lived
 * thread before it exits) is no consumer: while the objects its bin
 * flushed since its last allocation are fewer than the requests the bin
 * ever served, a full bin keeps its newer half and its whole limit, so it
 * flushes once per half stack, not once per eighth. Frees beyond that
 * (objects of other threads) are a consumer's: everything goes back and
 * the limit halves, as in test_free_only.
 */
static void
test_free_burst(void **state) {
	(void)state;
	skip_without_tcache();
	/* n of its own objects, then n the cache never handed out. */
	szind_t ind = small_class(64);
	unsigned n = 4 * tcache_cap_max(ind);
	enum { OBJS_MAX = 8 * 200 }; /* the largest full capacity is 200 */
	static void *objs[OBJS_MAX];
	assert_true(2 * n <= OBJS_MAX);
	tcache_t *t = cache_new(arena0);
	unsigned cap = t->ncached_max[tcache_pc(ind)];
	assert_true(cap >= 16);
	bin_stats_t s0 = bin_stats(arena0, ind);
	for (unsigned i = 0; i < n; i++) {
		objs[i] = cache_alloc(t, arena0, ind);
		assert_non_null(objs[i]);
	}
	for (unsigned i = n; i < 2 * n; i++) {
		objs[i] = arena_malloc_small(arena0, ind, false);
		assert_non_null(objs[i]);
	}
	full_model_t m = full_model(t, ind);
	assert_int_equal(m.nrequests, n);
	for (unsigned i = 0; i < 2 * n; i++) {
		free_modelled(t, ind, objs[i], &m);
		if (i < n - cap) {
			/* Its own objects: the whole stack all along. */
			assert_int_equal(m.limit, cap);
		}
	}
	/* A consumer at the end. */
	assert_int_equal(m.limit, cap / 8);
	if (config_stats) {
		bin_stats_t s1 = bin_stats(arena0, ind);
		assert_int_equal(s1.nflushes, s0.nflushes + m.nflushes);
		/* All 2n went back but what the bin holds. */
		assert_int_equal(s1.curregs, s0.curregs + m.cached);
	}
	tcache_flush(t);
	cache_delete(t);
}

/* Large classes fill only through frees: a miss takes one object from the
 * arena, a freed object comes back from the cache. */
static void
test_large(void **state) {
	(void)state;
	skip_without_tcache();
	/* 5 pages (20 KiB with 4 KiB pages), the second large class. */
	szind_t ind = sz_size2index(SZ_LARGE_MINCLASS + PAGE);
	assert_true(ind >= SZ_NSMALL && ind < tcache_nhbins);
	tcache_t *t = cache_new(arena0);
	unsigned pc = tcache_pc(ind);
	unsigned cap = t->ncached_max[pc];
	large_stats_t l0 = large_stats(arena0, ind);
	/* The cache's grown stack blocks may be runs of this class; the flush
	 * below gives them back. */
	unsigned blocks = stack_blocks_of(t, ind);

	void *p = cache_alloc(t, arena0, ind);
	assert_non_null(p);
	assert_int_equal(tcache_ncached(t, ind), 0);
	if (config_stats) {
		large_stats_t l1 = large_stats(arena0, ind);
		assert_int_equal(l1.nmalloc, l0.nmalloc + 1);
		assert_int_equal(l1.nrequests, l0.nrequests + 1);
		assert_int_equal(l1.curruns, l0.curruns + 1);
	}
	cache_free(t, p, ind);
	assert_int_equal(tcache_ncached(t, ind), 1);
	assert_ptr_equal(cache_alloc(t, arena0, ind), p);
	cache_free(t, p, ind);

	/* cap + 1 objects pushed: the push onto the full bin flushes the
	 * older half. */
	void **objs = calloc(cap + 1, sizeof(void *));
	objs[0] = p;
	for (unsigned i = 1; i <= cap; i++) {
		objs[i] = arena_malloc_large(arena0, ind, PAGE, false);
		assert_non_null(objs[i]);
		cache_free(t, objs[i], ind);
	}
	assert_int_equal(tcache_ncached(t, ind), cap / 2 + 1);
	if (config_stats) {
		large_stats_t l2 = large_stats(arena0, ind);
		assert_int_equal(l2.curruns, l0.curruns + cap / 2 + 1);
		assert_int_equal(l2.ndalloc, l0.ndalloc + (cap - cap / 2));
	}
	tcache_flush(t);
	assert_int_equal(tcache_ncached(t, ind), 0);
	unsigned freed = blocks - stack_blocks_of(t, ind);
	if (config_stats) {
		large_stats_t l3 = large_stats(arena0, ind);
		assert_int_equal(l3.curruns, l0.curruns - freed);
		assert_int_equal(l3.ndalloc, l0.ndalloc + cap + 1 + freed);
		/* The miss and the direct allocations were counted by the
		 * arena, the one hit by the cache until the flush. */
		assert_int_equal(l3.nrequests, l0.nrequests + 1 + cap + 1);
	}
	free(objs);
	cache_delete(t);
}

/* ---------------------------------------------------------------------- */
/* Flush on a full bin. */

static void
test_full_flush(void **state) {
	(void)state;
	skip_without_tcache();
	/* All cap + 1 objects in one run, which the kept ones keep alive
	 * (the bitmap of a released run must not be read). */
	szind_t ind = small_class(8);
	tcache_t *t = cache_new(arena0);
	unsigned pc = tcache_pc(ind);
	unsigned cap = t->ncached_max[pc];
	assert_true(bin_infos[ind].nregs > cap);
	unsigned nflush = cap - cap / 2;
	bin_stats_t s0 = bin_stats(arena0, ind);
	void **objs = calloc(cap + 1, sizeof(void *));
	for (unsigned i = 0; i <= cap; i++) {
		objs[i] = arena_malloc_small(arena0, ind, false);
		assert_non_null(objs[i]);
	}
	/* cap pushes fit. */
	for (unsigned i = 0; i < cap; i++) {
		cache_free(t, objs[i], ind);
	}
	assert_ptr_equal(t->head[pc], t->full[pc]);
	if (config_stats) {
		bin_stats_t s1 = bin_stats(arena0, ind);
		assert_int_equal(s1.curregs, s0.curregs + cap + 1);
		assert_int_equal(s1.nflushes, s0.nflushes);
	}
	/* One more: the cap - cap/2 oldest go back, the rest stay, the new
	 * one on top. */
	cache_free(t, objs[cap], ind);
	assert_int_equal(tcache_ncached(t, ind), cap / 2 + 1);
	for (unsigned i = 0; i <= cap / 2; i++) {
		assert_ptr_equal(t->head[pc][i], objs[cap - i]);
	}
	for (unsigned i = 0; i <= cap; i++) {
		assert_int_equal(region_in_use(objs[i], ind), i >= nflush);
	}
	if (config_stats) {
		bin_stats_t s2 = bin_stats(arena0, ind);
		assert_int_equal(s2.curregs, s0.curregs + cap + 1 - nflush);
		assert_int_equal(s2.ndalloc, s0.ndalloc + nflush);
		assert_int_equal(s2.nflushes, s0.nflushes + 1);
	}
	/* Popped most recent first. */
	for (unsigned i = 0; i <= cap / 2; i++) {
		assert_ptr_equal(cache_alloc(t, arena0, ind), objs[cap - i]);
	}
	for (unsigned i = nflush; i <= cap; i++) {
		cache_free(t, objs[i], ind);
	}
	free(objs);
	cache_finish(t, ind, s0);
}

/* Frees n objects of class ind into t, even ones from arena0, odd ones
 * from arena1. */
static void
cache_both_arenas(tcache_t *t, szind_t ind, void **objs, int n) {
	for (int i = 0; i < n; i++) {
		objs[i] = arena_malloc_small(i % 2 == 0 ? arena0 : arena1, ind, false);
		assert_non_null(objs[i]);
		cache_free(t, objs[i], ind);
	}
}

/* Objects of another arena cached here go back to that arena. */
static void
test_flush_owner_arena(void **state) {
	(void)state;
	skip_without_tcache();
	szind_t ind = small_class(160);
	tcache_t *t = cache_new(arena0);
	bin_stats_t a0 = bin_stats(arena0, ind);
	bin_stats_t a1 = bin_stats(arena1, ind);
	enum { N = 16 };
	void *objs[N];
	cache_both_arenas(t, ind, objs, N);
	tcache_flush(t);
	if (config_stats) {
		assert_int_equal(bin_stats(arena0, ind).curregs, a0.curregs);
		assert_int_equal(bin_stats(arena1, ind).curregs, a1.curregs);
		assert_int_equal(bin_stats(arena0, ind).ndalloc, a0.ndalloc + N / 2);
		assert_int_equal(bin_stats(arena1, ind).ndalloc, a1.ndalloc + N / 2);
	}
	cache_delete(t);
}

/* Objects of an arena other than the cache's (the thread's) are handed over
 * to their arena's remote list: the flush never takes that arena's bin
 * lock (held here, so a flush that took it would never return), and the
 * regions stay counted in use until a lock holder of their arena drains
 * them. The cache's own arena's objects are freed under its lock. */
static void
test_flush_other_arena_hands_over(void **state) {
	(void)state;
	skip_without_tcache();
	szind_t ind = small_class(160);
	tcache_t *t = cache_new(arena0);
	bin_t *bin1 = &arena1->bins[ind];
	bin_stats_t a0 = bin_stats(arena0, ind);
	bin_stats_t a1 = bin_stats(arena1, ind);
	enum { N = 16 };
	void *objs[N];
	cache_both_arenas(t, ind, objs, N);
	mutex_lock(&bin1->lock);
	tcache_flush(t);
	assert_int_equal(tcache_ncached(t, ind), 0);
	/* arena1's are still in use in their run (arena0's went back to
	 * theirs, which may have gone back to the arena: see the counters). */
	for (int i = 1; i < N; i += 2) {
		assert_true(region_in_use(objs[i], ind));
	}
	if (config_stats) {
		assert_int_equal(bin_stats(arena0, ind).curregs, a0.curregs);
	}
	assert_non_null(__atomic_load_n(&bin1->remote, __ATOMIC_RELAXED));
	mutex_unlock(&bin1->lock);
	/* A drain of the arena's bins (what sweeps and purges do). */
	arena_bins_remote_drain(arena1, false);
	assert_null(__atomic_load_n(&bin1->remote, __ATOMIC_RELAXED));
	/* (Their run may have gone back to the arena: only the counters
	 * say they are free now.) */
	assert_null(arena_validate(arena1));
	if (config_stats) {
		assert_int_equal(bin_stats(arena0, ind).curregs, a0.curregs);
		assert_int_equal(bin_stats(arena1, ind).curregs, a1.curregs);
		assert_int_equal(bin_stats(arena1, ind).ndalloc, a1.ndalloc + N / 2);
		assert_int_equal(bin_stats(arena1, ind).nflushes, a1.nflushes + 1);
	}
	cache_delete(t);
}

/* ---------------------------------------------------------------------- */
/* Garbage collection. */

/* One GC look at bin ind. */
static void
gc_look(tcache_t *t, szind_t ind) {
	t->gc_bin = ind;
	t->gc_ticker = 0;
	tcache_gc_step(t);
	assert_int_equal(t->gc_ticker, TCACHE_GC_INTERVAL);
	assert_int_equal(t->gc_bin, ind + 1 < tcache_nhbins ? ind + 1 : 0);
	unsigned pc = tcache_pc(ind);
	/* The look restarts the low-water mark. */
	assert_ptr_equal(t->low_water[pc], t->head[pc]);
}

static void
test_gc(void **state) {
	(void)state;
	skip_without_tcache();
	/* A class whose capacity is the 200 cap, for round numbers. */
	szind_t ind = small_class(16);
	tcache_t *t = cache_new(arena0);
	unsigned pc = tcache_pc(ind);
	unsigned cap = t->ncached_max[pc];
	assert_int_equal(cap, 200);
	bin_stats_t s0 = bin_stats(arena0, ind);

	/* Fill (100), take one: 99 cached; it ran empty at the fill, so the
	 * first look flushes nothing and leaves lg_fill_div at its floor. */
	void *held[64];
	unsigned nheld = 0;
	held[nheld++] = cache_alloc(t, arena0, ind);
	unsigned cached = cap / 2 - 1;
	assert_int_equal(tcache_ncached(t, ind), cached);
	gc_look(t, ind);
	assert_int_equal(tcache_ncached(t, ind), cached);
	assert_int_equal(t->lg_fill_div[pc], 1);

	/* Untouched until the next look: its low-water mark is all 99; three
	 * quarters (rounded up) go, the most recent quarter stays. */
	void *before[200];
	memcpy(before, t->head[pc], cached * sizeof(void *));
	gc_look(t, ind);
	unsigned low = cached;
	unsigned kept = low / 4;
	assert_int_equal(tcache_ncached(t, ind), kept);
	assert_memory_equal(t->head[pc], before, kept * sizeof(void *));
	for (unsigned i = kept; i < cached; i++) {
		assert_false(region_in_use(before[i], ind));
	}
	assert_int_equal(t->lg_fill_div[pc], 2);
	if (config_stats) {
		bin_stats_t s1 = bin_stats(arena0, ind);
		assert_int_equal(s1.curregs, s0.curregs + cap / 2 - (low - low / 4));
	}

	/* One taken since: the low-water mark is kept - 1. */
	held[nheld++] = cache_alloc(t, arena0, ind);
	cached = kept - 1;
	low = cached;
	gc_look(t, ind);
	assert_int_equal(tcache_ncached(t, ind), low / 4);
	assert_int_equal(t->lg_fill_div[pc], 3);

	/* Emptied and refilled: the fill takes cap >> 3 now, and the next
	 * look, seeing the bin ran empty, fills more again. */
	cached = tcache_ncached(t, ind);
	for (unsigned i = 0; i < cached; i++) {
		held[nheld++] = cache_alloc(t, arena0, ind);
	}
	assert_int_equal(tcache_ncached(t, ind), 0);
	bin_stats_t s2 = bin_stats(arena0, ind);
	held[nheld++] = cache_alloc(t, arena0, ind);
	assert_int_equal(tcache_ncached(t, ind), (cap >> 3) - 1);
	if (config_stats) {
		bin_stats_t s3 = bin_stats(arena0, ind);
		assert_int_equal(s3.nmalloc, s2.nmalloc + (cap >> 3));
		assert_int_equal(s3.nfills, s2.nfills + 1);
	}
	gc_look(t, ind);
	assert_int_equal(t->lg_fill_div[pc], 2);
	assert_int_equal(tcache_ncached(t, ind), (cap >> 3) - 1);

	/* A bin used below its low-water mark between looks but never
	 * emptied: only what stayed unused counts. */
	unsigned c0 = tcache_ncached(t, ind);
	held[nheld++] = cache_alloc(t, arena0, ind);
	held[nheld++] = cache_alloc(t, arena0, ind);
	cache_free(t, held[--nheld], ind);
	low = c0 - 2;
	gc_look(t, ind);
	assert_int_equal(tcache_ncached(t, ind), (c0 - 1) - (low - low / 4));
	assert_int_equal(t->lg_fill_div[pc], 3);

	/* The ceiling: lg_fill_div grows only while a fill takes one object
	 * or more. */
	unsigned top = 0;
	while ((cap >> (top + 1)) >= 1) {
		top++;
	}
	t->lg_fill_div[pc] = (uint16_t)top;
	while (tcache_ncached(t, ind) < 8) {
		cache_free(t, held[--nheld], ind);
	}
	gc_look(t, ind);
	gc_look(t, ind);
	assert_int_equal(t->lg_fill_div[pc], top);
	/* Even so a fill takes one object. */
	while (tcache_ncached(t, ind) > 0) {
		held[nheld++] = cache_alloc(t, arena0, ind);
	}
	held[nheld++] = cache_alloc(t, arena0, ind);
	assert_int_equal(tcache_ncached(t, ind), 0);

	while (nheld > 0) {
		cache_free(t, held[--nheld], ind);
	}
	cache_finish(t, ind, s0);
}

/* GC walks the cached classes round robin, each step one bin. */
static void
test_gc_rotation(void **state) {
	(void)state;
	skip_without_tcache();
	tcache_t *t = cache_new(arena0);
	for (unsigned i = 0; i < 2 * tcache_nhbins; i++) {
		assert_int_equal(t->gc_bin, i % tcache_nhbins);
		tcache_gc_step(t);
	}
	assert_int_equal(t->gc_bin, 0);
	cache_delete(t);
}

/* ---------------------------------------------------------------------- */
/* Flush everything, destroy. */

static void
test_flush_destroy(void **state) {
	(void)state;
	skip_without_tcache();
	szind_t small[] = {small_class(8), small_class(48), small_class(1024),
	                   small_class(SZ_SMALL_MAXCLASS)};
	szind_t large = tcache_nhbins - 1;
	enum { NS = sizeof(small) / sizeof(small[0]) };
	bin_stats_t s0[NS];
	for (int k = 0; k < NS; k++) {
		s0[k] = bin_stats(arena0, small[k]);
	}
	large_stats_t l0 = large_stats(arena0, large);
	size_t la0 = allocated_large(arena0);

	tcache_t *t = cache_new(arena0);
	assert_non_null(t->more);
	void *keep[NS];
	for (int k = 0; k < NS; k++) {
		keep[k] = cache_alloc(t, arena0, small[k]);
		assert_true(tcache_ncached(t, small[k]) > 0 ||
		            t->ncached_max[tcache_pc(small[k])] >> 1 == 1 ||
		            sz_index2size(small[k]) >= PAGE);
	}
	void *lp = cache_alloc(t, arena0, large);
	cache_free(t, lp, large);

	tcache_flush(t);
	for (szind_t i = 0; i < tcache_nhbins; i++) {
		assert_int_equal(tcache_ncached(t, i), 0);
		/* Back on its first stack. */
		assert_int_equal(t->ncached_max[tcache_pc(i)],
		                 tcache_cap_max(i) < 8 ? tcache_cap_max(i) : 8);
	}
	assert_non_null(t->stacks);
	/* The stacks are blocks of the arena: the flush gave back those the
	 * bins grew into, and the first may be of a class counted here (a
	 * region or run of it until the cache is destroyed). */
	assert_null(t->more);
	unsigned stacks_regs[NS];
	for (int k = 0; k < NS; k++) {
		stacks_regs[k] = stack_blocks_of(t, small[k]);
	}
	size_t stacks_runs = stack_blocks_of(t, large);
	if (config_stats) {
		for (int k = 0; k < NS; k++) {
			assert_int_equal(bin_stats(arena0, small[k]).curregs,
			                 s0[k].curregs + 1 + stacks_regs[k]);
		}
		assert_int_equal(large_stats(arena0, large).curruns, l0.curruns + stacks_runs);
	}
	/* Still usable after a flush. */
	for (int k = 0; k < NS; k++) {
		cache_free(t, keep[k], small[k]);
		keep[k] = cache_alloc(t, arena0, small[k]);
		cache_free(t, keep[k], small[k]);
	}

	tcache_destroy(t);
	assert_null(t->stacks);
	for (unsigned pc = 0; pc < TCACHE_NBINS_MAX; pc++) {
		assert_ptr_equal(t->head[pc], t->low_water[pc]);
		assert_ptr_equal(t->head[pc], t->full[pc]);
		assert_int_equal(t->ncached_max[pc], 0);
	}
	if (config_stats) {
		for (int k = 0; k < NS; k++) {
			assert_int_equal(bin_stats(arena0, small[k]).curregs, s0[k].curregs);
		}
		assert_int_equal(large_stats(arena0, large).curruns, l0.curruns);
		assert_int_equal(allocated_large(arena0), la0);
	}
	/* Destroying a destroyed cache does nothing; set up again, it works. */
	tcache_destroy(t);
	assert_false(tcache_init(t, arena0));
	void *p = cache_alloc(t, arena0, small[0]);
	assert_non_null(p);
	cache_free(t, p, small[0]);
	cache_delete(t);
}

/* ---------------------------------------------------------------------- */
/* Request counts. */

static uint64_t counts[SZ_NPAGED];

static uint64_t
unmerged(arena_t *a, szind_t ind) {
	memset(counts, 0, sizeof(counts));
	tcache_stats_add(a, counts);
	return counts[ind];
}

static void
test_nrequests(void **state) {
	(void)state;
	skip_without_tcache();
	szind_t ind = small_class(256);
	szind_t lind = sz_size2index(SZ_LARGE_MINCLASS + 2 * PAGE);
	assert_true(lind >= SZ_NSMALL);
	assert_true(lind < tcache_nhbins);
	tcache_t *t1 = cache_new(arena0);
	tcache_t *t2 = cache_new(arena0);
	tcache_t *t3 = cache_new(arena1);
	uint64_t r0 = bin_stats(arena0, ind).nrequests;
	uint64_t r1 = bin_stats(arena1, ind).nrequests;
	assert_int_equal(unmerged(arena0, ind), 0);

	enum { K1 = 10, K2 = 7, K3 = 5 };
	void *p1[K1], *p2[K2], *p3[K3];
	for (int i = 0; i < K1; i++) {
		p1[i] = cache_alloc(t1, arena0, ind);
	}
	for (int i = 0; i < K2; i++) {
		p2[i] = cache_alloc(t2, arena0, ind);
	}
	for (int i = 0; i < K3; i++) {
		p3[i] = cache_alloc(t3, arena1, ind);
	}
	/* Fills do not count requests in the arena; the caches hold them. */
	assert_int_equal(unmerged(arena0, ind), K1 + K2);
	assert_int_equal(unmerged(arena1, ind), K3);
	for (szind_t i = 0; i < SZ_NPAGED; i++) {
		assert_int_equal(counts[i], i == ind ? K3 : 0);
	}
	if (config_stats) {
		assert_int_equal(bin_stats(arena0, ind).nrequests, r0);
	}
	/* A flush merges a bin's count into the arena it flushes to. */
	for (int i = 0; i < K1; i++) {
		cache_free(t1, p1[i], ind);
	}
	tcache_flush(t1);
	assert_int_equal(tcache_nrequests(t1, ind), K1);
	assert_int_equal(t1->nrequests_merged[tcache_pc(ind)], K1);
	assert_int_equal(unmerged(arena0, ind), K2);
	if (config_stats) {
		assert_int_equal(bin_stats(arena0, ind).nrequests, r0 + K1);
	}
	/* Destroying merges too, and the cache leaves the list. */
	for (int i = 0; i < K2; i++) {
		cache_free(t2, p2[i], ind);
	}
	cache_delete(t2);
	assert_int_equal(unmerged(arena0, ind), 0);
	if (config_stats) {
		assert_int_equal(bin_stats(arena0, ind).nrequests, r0 + K1 + K2);
	}
	for (int i = 0; i < K3; i++) {
		cache_free(t3, p3[i], ind);
	}
	cache_delete(t3);
	if (config_stats) {
		assert_int_equal(bin_stats(arena1, ind).nrequests, r1 + K3);
	}

	/* Large: a miss is counted by the arena, a hit by the cache; the sum
	 * is the number of requests. */
	uint64_t lr0 = large_stats(arena0, lind).nrequests;
	void *lp = cache_alloc(t1, arena0, lind);
	cache_free(t1, lp, lind);
	for (int i = 0; i < 3; i++) {
		lp = cache_alloc(t1, arena0, lind);
		cache_free(t1, lp, lind);
	}
	assert_int_equal(unmerged(arena0, lind), 3);
	if (config_stats) {
		assert_int_equal(large_stats(arena0, lind).nrequests, lr0 + 1);
	}
	tcache_flush(t1);
	assert_int_equal(unmerged(arena0, lind), 0);
	if (config_stats) {
		assert_int_equal(large_stats(arena0, lind).nrequests, lr0 + 4);
	}
	cache_delete(t1);
}

/* The tick counts every request served through the cache (hit or slow
 * path) and, when a period of TCACHE_GC_INTERVAL ends, runs one GC step
 * and starts the next period with the count carried over. */
static void
test_ticks(void **state) {
	(void)state;
	skip_without_tcache();
	szind_t ind = small_class(48);
	unsigned pc = tcache_pc(ind);
	tcache_t *t = cache_new(arena0);
	enum { N = 3 * TCACHE_GC_INTERVAL + 5 };
	void **objs = calloc(N, sizeof(void *));
	unsigned gc_bin = t->gc_bin;
	unsigned steps = 0;
	for (unsigned i = 0; i < N; i++) {
		objs[i] = cache_alloc(t, arena0, ind);
		assert_non_null(objs[i]);
		assert_int_equal(tcache_nrequests(t, ind), i + 1);
		assert_true(t->ticks[pc] >= 0 && t->ticks[pc] <= TCACHE_GC_INTERVAL);
		if (t->gc_bin != gc_bin) {
			/* A GC step ran: only when a period ended. */
			assert_int_equal((i + 1) % (TCACHE_GC_INTERVAL + 1), 0);
			gc_bin = t->gc_bin;
			steps++;
		}
	}
	/* A period is TCACHE_GC_INTERVAL + 1 requests: the one that takes the
	 * tick below zero is the one served by the slow path. */
	assert_int_equal(steps, N / (TCACHE_GC_INTERVAL + 1));
	for (unsigned i = 0; i < N; i++) {
		cache_free(t, objs[i], ind);
	}
	/* Every request reaches the arena's stats once. */
	bin_stats_t s0 = bin_stats(arena0, ind);
	uint64_t pending = unmerged(arena0, ind);
	tcache_flush(t);
	assert_int_equal(unmerged(arena0, ind), 0);
	if (config_stats) {
		assert_int_equal(bin_stats(arena0, ind).nrequests, s0.nrequests + pending);
	}
	assert_int_equal(t->nrequests_merged[pc], N);
	free(objs);
	cache_delete(t);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_boot),
	    cmocka_unit_test(test_grow),
	    cmocka_unit_test(test_stack_blocks),
	    cmocka_unit_test(test_grow_free_only),
	    cmocka_unit_test(test_fill),
	    cmocka_unit_test(test_fill_one),
	    cmocka_unit_test(test_large),
	    cmocka_unit_test(test_full_flush),
	    cmocka_unit_test(test_free_only),
	    cmocka_unit_test(test_free_only_big),
	    cmocka_unit_test(test_free_burst),
	    cmocka_unit_test(test_flush_owner_arena),
	    cmocka_unit_test(test_flush_other_arena_hands_over),
	    cmocka_unit_test(test_gc),
	    cmocka_unit_test(test_gc_rotation),
	    cmocka_unit_test(test_flush_destroy),
	    cmocka_unit_test(test_nrequests),
	    cmocka_unit_test(test_ticks),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
