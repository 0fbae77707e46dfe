/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of abandoned arenas (arena.h: arena_abandon, arena_note_alloc),
 * the arena a thread leaves when it moves to another CPU's arena.
 *
 * Checked, on arenas of the unit-test objects with large runs (so every
 * free reaches the arena): once abandoned, an arena keeps at most an eighth
 * of its active pages dirty after every free, and abandoning purges what it
 * held dirty beyond that at once, while an arena that was not abandoned
 * keeps what the decay curve allows (here, everything freed); the first
 * allocation from an abandoned arena clears the mark, after which frees
 * stay dirty again; with purging off (decay_time -1) the mark purges
 * nothing.
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

/* 200 objects with 4 KiB pages, in general about 1.5 chunks' worth: when
 * three quarters are freed, one chunk is left entirely free and becomes
 * the arena's spare, whose dirty pages count one by one (a second free
 * chunk would go to the chunk cache, which counts it whole). */
enum { NOBJS = CHUNK_NPAGES * 25 / 64 };

/* The smallest large class, four pages each (16 KiB with 4 KiB pages). */
#define OBJ_SIZE SZ_LARGE_MINCLASS

static void *objs[NOBJS];

static int
group_setup(void **state) {
	(void)state;
	pages_boot();
	arena_boot();
	return huge_boot() ? -1 : 0;
}

static szind_t
obj_class(void) {
	szind_t ind = sz_size2index(OBJ_SIZE);
	assert_true(ind >= SZ_NSMALL && ind < SZ_NPAGED);
	return ind;
}

static void
fill(arena_t *a) {
	for (unsigned i = 0; i < NOBJS; i++) {
		objs[i] = arena_malloc_large(a, obj_class(), PAGE, false);
		assert_non_null(objs[i]);
		/* Touch every page: dirty means "holds data". */
		memset(objs[i], 0xa5, OBJ_SIZE);
	}
}

static void
read_pages(arena_t *a, size_t *active, size_t *dirty) {
	arena_stats_snapshot_t s;
	arena_stats_read(a, &s);
	*active = s.pactive;
	*dirty = s.pdirty;
}

/* A fresh arena with its objects allocated and nothing dirty. */
static arena_t *
fresh_arena(void) {
	arena_t *a = arena_extend();
	assert_non_null(a);
	/* The longest decay time: the counts below are exact, and with the
	 * default 10 s a decay epoch passes every 50 ms, after which the
	 * curve may purge a run of its own on a loaded machine. */
	assert_false(arena_decay_ms_set(a, DECAY_STAGE_DIRTY, DECAY_MS_MAX));
	fill(a);
	arena_purge_all(a);
	size_t active, dirty;
	read_pages(a, &active, &dirty);
	assert_int_equal(dirty, 0);
	assert_true(active >= NOBJS * (OBJ_SIZE >> LG_PAGE));
	return a;
}

static void
test_abandoned_purges(void **state) {
	(void)state;
	arena_t *left = fresh_arena();
	arena_abandon(left);
	assert_true(left->abandoned);
	size_t active, dirty;
	/* Free three quarters, one at a time. */
	for (unsigned i = 0; i < NOBJS * 3 / 4; i++) {
		arena_dalloc_large(objs[i], obj_class());
		read_pages(left, &active, &dirty);
		assert_true(dirty <= active / 8);
	}
	assert_true(left->abandoned);
	/* The same frees into an arena nobody left: all still dirty. */
	arena_t *kept = fresh_arena();
	for (unsigned i = 0; i < NOBJS * 3 / 4; i++) {
		arena_dalloc_large(objs[i], obj_class());
	}
	read_pages(kept, &active, &dirty);
	assert_int_equal(dirty, NOBJS * 3 / 4 * (OBJ_SIZE >> LG_PAGE));
}

static void
test_abandon_purges_at_once(void **state) {
	(void)state;
	arena_t *a = fresh_arena();
	for (unsigned i = 0; i < NOBJS / 2; i++) {
		arena_dalloc_large(objs[i], obj_class());
	}
	size_t active, dirty;
	read_pages(a, &active, &dirty);
	assert_int_equal(dirty, NOBJS / 2 * (OBJ_SIZE >> LG_PAGE));
	arena_abandon(a);
	read_pages(a, &active, &dirty);
	assert_true(dirty <= active / 8);
}

static void
test_alloc_clears(void **state) {
	(void)state;
	arena_t *a = fresh_arena();
	arena_abandon(a);
	void *p = arena_malloc_large(a, obj_class(), PAGE, false);
	assert_non_null(p);
	assert_false(a->abandoned);
	/* A small allocation clears it too. */
	arena_abandon(a);
	void *q = arena_malloc_small(a, sz_size2index(64), false);
	assert_non_null(q);
	assert_false(a->abandoned);
	arena_dalloc_small(q, sz_size2index(64));
	/* In use again: frees stay dirty as the decay curve allows. */
	for (unsigned i = 0; i < NOBJS / 2; i++) {
		arena_dalloc_large(objs[i], obj_class());
	}
	size_t active, dirty;
	read_pages(a, &active, &dirty);
	assert_true(dirty >= NOBJS / 2 * (OBJ_SIZE >> LG_PAGE));
	arena_dalloc_large(p, obj_class());
}

static void
test_purging_off(void **state) {
	(void)state;
	arena_t *a = fresh_arena();
	assert_false(arena_decay_ms_set(a, DECAY_STAGE_DIRTY, -1));
	arena_abandon(a);
	for (unsigned i = 0; i < NOBJS / 2; i++) {
		arena_dalloc_large(objs[i], obj_class());
	}
	size_t active, dirty;
	read_pages(a, &active, &dirty);
	assert_int_equal(dirty, NOBJS / 2 * (OBJ_SIZE >> LG_PAGE));
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_abandoned_purges),
	    cmocka_unit_test(test_abandon_purges_at_once),
	    cmocka_unit_test(test_alloc_clears),
	    cmocka_unit_test(test_purging_off),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
