/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the arena walker, arena_validate() (arena_validate.h), in
 * every build (debug builds also run it by themselves every
 * ARENA_VALIDATE_INTERVAL slow paths; here it is called directly).
 *
 * Checked: a seeded random mix of every arena operation (small and large
 * allocation and free, aligned large runs, in-place large resizes, fills
 * and flushes, huge blocks, purges, reset) leaves an arena the walker finds
 * consistent after each step, also with the two-stage decay making freed
 * runs muzzy (MAP_MUZZY) and purging them; and each kind of damage the walker is meant
 * to catch is caught, with the failed check named: a region bit set behind
 * nfree's back, a free-page counter, the dirty counter, a run's end marker,
 * the page class of a large run's inner page, the free-run mask, a bin's
 * region count (with stats), the chunk cache's byte count, and a huge
 * extent's arena. Each damage is undone and the arena is valid again.
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

static arena_t *arena;

static void
assert_valid(void) {
	const char *why = arena_validate(arena);
	if (why != NULL) {
		fail_msg("arena_validate: %s", why);
	}
}

/* The walker reports damage, naming the check that caught it. */
static void
assert_invalid(const char *expect) {
	const char *why = arena_validate(arena);
	if (why == NULL) {
		fail_msg("arena_validate missed damage (expected \"%s\")", expect);
	}
	if (strstr(why, expect) == NULL) {
		fail_msg("arena_validate: \"%s\", expected \"%s\"", why, expect);
	}
}

static int
group_setup(void **state) {
	(void)state;
	pages_boot();
	arena_boot();
	if (huge_boot()) {
		return -1;
	}
	/* An arena of its own, untouched by anything else in the process. */
	arena = arena_get(3);
	return arena == NULL ? -1 : 0;
}

/* A small deterministic generator (xorshift64*). */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t
rng(void) {
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1du;
}

typedef struct {
	void *p;
	/* Size class; >= SZ_NPAGED: huge, usize in `usize`. */
	szind_t ind;
	size_t usize;
} live_t;

#define NLIVE 600

static void
release(live_t *l) {
	if (l->ind < SZ_NSMALL) {
		arena_dalloc_small(l->p, l->ind);
	} else if (l->ind < SZ_NPAGED) {
		arena_dalloc_large(l->p, l->ind);
	} else {
		huge_dalloc(l->p, false);
	}
	l->p = NULL;
}

/* `nsteps` random operations on live[], the arena checked after each. */
static void
run_operations(live_t *live, int nsteps) {
	for (int step = 0; step < nsteps; step++) {
		live_t *l = &live[rng() % NLIVE];
		if (l->p != NULL) {
			uint64_t r = rng() % 8;
			if (r == 0 && l->ind >= SZ_NSMALL && l->ind < SZ_NPAGED) {
				/* Resize a large run in place, either way. */
				szind_t to = (szind_t)(SZ_NSMALL + rng() % 8);
				if (arena_ralloc_large_in_place(l->p, l->ind, to, false)) {
					l->ind = to;
				}
			} else {
				release(l);
			}
		} else {
			uint64_t r = rng() % 100;
			if (r < 70) {
				l->ind = (szind_t)(rng() % SZ_NSMALL);
				l->p = arena_malloc_small(arena, l->ind, r < 5);
			} else if (r < 95) {
				l->ind = (szind_t)(SZ_NSMALL + rng() % 12);
				size_t align = r < 80 ? PAGE << (rng() % 5) : PAGE;
				/* The run plus its alignment slack must fit in a
				 * chunk: with 64 KiB pages the last of these
				 * classes do not at the larger alignments. */
				if (sz_index2size(l->ind) + align - PAGE > sz_large_run_max) {
					align = PAGE;
				}
				l->p = arena_malloc_large(arena, l->ind, align, false);
				if (l->p != NULL) {
					assert_int_equal((uintptr_t)l->p & (align - 1), 0);
				}
			} else {
				l->usize = sz_index2size(SZ_NPAGED + (szind_t)(rng() % 4));
				l->ind = SZ_NPAGED;
				l->p = huge_malloc(arena, l->usize, CHUNK, false);
			}
			assert_non_null(l->p);
		}
		if (step % 1000 == 999) {
			arena_purge_all(arena);
		}
		if (step % 50 == 0) {
			/* A fill and a flush, as a thread cache does. */
			void *ptrs[32];
			szind_t ind = (szind_t)(rng() % SZ_NSMALL);
			unsigned got = arena_bin_fill(arena, ind, ptrs, 32);
			assert_int_equal(got, 32);
			assert_valid();
			while (got != 0) {
				got = arena_bin_flush(ptrs, got, ind, 0);
			}
		}
		assert_valid();
	}
}

static void
release_all(live_t *live) {
	for (size_t i = 0; i < NLIVE; i++) {
		if (live[i].p != NULL) {
			release(&live[i]);
		}
	}
	assert_valid();
}

static void
test_valid_through_operations(void **state) {
	(void)state;
	static live_t live[NLIVE];
	assert_valid();
	run_operations(live, 6000);
	release_all(live);
	/* Reset discards everything at once. */
	for (size_t i = 0; i < 100; i++) {
		arena_malloc_small(arena, (szind_t)(i % SZ_NSMALL), false);
		arena_malloc_large(arena, SZ_NSMALL, PAGE, false);
	}
	huge_malloc(arena, CHUNK, CHUNK, false);
	assert_valid();
	huge_reset(arena);
	arena_reset(arena);
	assert_valid();
}

/* The same with the two-stage decay: every freed run goes muzzy at once
 * (dirty decay 0) and stays so (muzzy decay -1), then the muzzy stage
 * purges them all (0), then half a second's curve. Muzzy runs merge only
 * with muzzy runs, and the counters match the runs. */
static void
test_valid_with_muzzy_runs(void **state) {
	(void)state;
	static live_t live[NLIVE];
	assert_false(arena_decay_ms_set(arena, DECAY_STAGE_MUZZY, -1));
	assert_false(arena_decay_ms_set(arena, DECAY_STAGE_DIRTY, 0));
	/* Not a multiple of 1000: run_operations purges everything then. */
	run_operations(live, 2990);
	assert_true(arena->nmuzzy > 0);
	assert_int_equal(arena->ndirty, 0);
	assert_false(arena_decay_ms_set(arena, DECAY_STAGE_MUZZY, 0));
	assert_int_equal(arena->nmuzzy, 0);
	assert_valid();
	assert_false(arena_decay_ms_set(arena, DECAY_STAGE_MUZZY, 500));
	run_operations(live, 2000);
	release_all(live);
	arena_purge_all(arena);
	assert_int_equal(arena->nmuzzy, 0);
	assert_int_equal(arena->ndirty, 0);
	assert_valid();
	assert_false(arena_decay_ms_set(arena, DECAY_STAGE_DIRTY, 10000));
	assert_false(arena_decay_ms_set(arena, DECAY_STAGE_MUZZY, 0));
}

static void
test_detects_damage(void **state) {
	(void)state;
	void *small = arena_malloc_small(arena, 2, false);
	void *large = arena_malloc_large(arena, SZ_NSMALL + 3, PAGE, false);
	void *freed = arena_malloc_large(arena, SZ_NSMALL + 1, PAGE, false);
	void *huge = huge_malloc(arena, CHUNK, CHUNK, false);
	assert_non_null(small);
	assert_non_null(large);
	assert_non_null(freed);
	assert_non_null(huge);
	/* A dirty free run in the middle of the chunk. */
	arena_dalloc_large(freed, SZ_NSMALL + 1);
	assert_valid();

	/* A region marked in use without nfree knowing. */
	arena_chunk_t *c = arena_chunk_of(small);
	run_t *run = c->misc[arena_pageind(small)].run;
	size_t bit = bin_infos[2].nregs - 1;
	assert_false(bitmap_get(run->bitmap, bit));
	bitmap_set(run->bitmap, bit);
	assert_invalid("run->nfree == info->nregs");
	bitmap_unset(run->bitmap, bit);
	assert_valid();

	/* Counters of free and dirty pages. */
	c->nfree_pages++;
	assert_invalid("nfree == c->nfree_pages");
	c->nfree_pages--;
	arena->ndirty++;
	assert_invalid("w->ndirty == a->ndirty");
	arena->ndirty--;
	assert_valid();

	/* The last page of a free run no longer repeats its first. */
	size_t fpi = arena_pageind(freed);
	arena_chunk_t *fc = arena_chunk_of(freed);
	uint32_t bits = fc->map[fpi];
	assert_true(bits & MAP_FREE);
	size_t last = fpi + (bits >> MAP_NPAGES_SHIFT) - 1;
	fc->map[last] ^= MAP_DIRTY;
	assert_invalid("map[pi + npages - 1] == bits");
	fc->map[last] ^= MAP_DIRTY;
	assert_valid();

	/* A large run's inner page claims to start an object. */
	arena_chunk_t *lc = arena_chunk_of(large);
	size_t lpi = arena_pageind(large);
	arena_pclass_set(lc, lpi + 1, arena_pclass_get(lc, lpi));
	assert_invalid("arena_pclass_get(c, pi + i) == PCLASS_NONE");
	arena_pclass_set(lc, lpi + 1, PCLASS_NONE);
	assert_valid();

	/* The free-run mask out of step with the lists. */
	bitmap_t saved_mask[2][BITMAP_NGROUPS(PSZ_MAX)];
	memcpy(saved_mask, arena->avail_mask, sizeof(saved_mask));
	bitmap_set(arena->avail_mask[0], 0);
	bitmap_set(arena->avail_mask[1], 0);
	if (arena->avail[0][0] == NULL || arena->avail[1][0] == NULL) {
		assert_invalid("bitmap_get(a->avail_mask[d], cls)");
	}
	memcpy(arena->avail_mask, saved_mask, sizeof(saved_mask));
	assert_valid();

	if (config_stats) {
		arena->bins[2].stats.curregs++;
		assert_invalid("bin->stats.curregs == w->small_regs[i]");
		arena->bins[2].stats.curregs--;
		assert_valid();
	}

	/* The chunk cache's byte count. */
	arena->chunks.cached_bytes += PAGE;
	assert_invalid("cached == cache->cached_bytes");
	arena->chunks.cached_bytes -= PAGE;
	assert_valid();

	/* A huge extent that names another arena. */
	extent_t *e = huge_lookup(huge);
	assert_non_null(e);
	e->arena = arena_get(0);
	assert_invalid("e->arena == a");
	e->arena = arena;
	assert_valid();

	arena_dalloc_small(small, 2);
	arena_dalloc_large(large, SZ_NSMALL + 3);
	huge_dalloc(huge, false);
	assert_valid();
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_through_operations),
	    cmocka_unit_test(test_valid_with_muzzy_runs),
	    cmocka_unit_test(test_detects_damage),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
