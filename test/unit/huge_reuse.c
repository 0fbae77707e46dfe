/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of huge allocations made of dirty cached spans (huge.c,
 * huge_alloc_from_dirty; chunk.c, chunk_cache_take_dirty_piece).
 *
 * Checked, on arenas of the unit-test objects, with spans of 3 and 5 chunks
 * freed apart (a live chunk between them) and 7 chunks asked for: the block
 * is the 5-chunk span's pages followed by the first 2 chunks of the 3-chunk
 * one (their contents say so: moved, not copied or faulted in fresh), the
 * arena's dirty bytes fall by those 7 chunks, its mapped bytes stay (a
 * fresh 7-chunk destination, the pieces' old ranges unmapped: holes), and
 * 1 chunk stays cached dirty.
 * A request that one dirty span holds alone takes that span (no move); a
 * zeroed request (calloc) moves nothing and leaves the dirty spans cached.
 * Skipped where the kernel does not move ranges of several mappings (before
 * Linux 6.17), where the path is off.
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
#include "alloc/internal/chunk.h"
#include "alloc/internal/config.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/pages.h"

static int
group_setup(void **state) {
	(void)state;
	pages_boot();
	arena_boot();
	return huge_boot() ? -1 : 0;
}

/* A fresh arena that does not purge while the test runs. */
static arena_t *
quiet_arena(void) {
	arena_t *a = arena_extend();
	assert_non_null(a);
	assert_false(arena_decay_ms_set(a, DECAY_STAGE_DIRTY, -1));
	return a;
}

static void *
filled(arena_t *a, size_t size, int byte) {
	void *p = huge_malloc(a, size, CHUNK, false);
	assert_non_null(p);
	memset(p, byte, size);
	return p;
}

static bool
all_bytes(const char *p, size_t size, int byte) {
	for (size_t i = 0; i < size; i += 512) {
		if (p[i] != (char)byte) {
			return false;
		}
	}
	return p[size - 1] == (char)byte;
}

static void
skip_unless_parts(void) {
	if (!pages_can_move_parts()) {
		print_message("# the kernel moves no range of several mappings: skipped\n");
		skip();
	}
}

/*
 * Huge blocks of `first` and `second` chunks, each byte 0x11 times its
 * chunk count, freed apart: a live chunk (0x11) made between them, which
 * is returned, keeps them two dirty spans of the cache rather than one.
 * *first_addr is where the first one was.
 */
static void *
freed_apart(arena_t *a, size_t first, size_t second, void **first_addr) {
	*first_addr = filled(a, first * CHUNK, (int)(0x11 * first));
	void *sep = filled(a, CHUNK, 0x11);
	void *other = filled(a, second * CHUNK, (int)(0x11 * second));
	huge_dalloc(*first_addr, false);
	huge_dalloc(other, false);
	mutex_lock(&a->lock);
	unsigned nspans = 0;
	for (extent_t *e = a->chunks.head; e != NULL; e = e->next) {
		nspans++;
	}
	assert_int_equal(a->chunks.dirty_bytes, (first + second) * CHUNK);
	mutex_unlock(&a->lock);
	assert_int_equal(nspans, 2);
	return sep;
}

static void
test_made_of_pieces(void **state) {
	(void)state;
	skip_unless_parts();
	arena_t *a = quiet_arena();
	void *three;
	void *sep = freed_apart(a, 3, 5, &three);
	mutex_lock(&a->lock);
	size_t mapped = a->chunks.mapped_bytes;
	mutex_unlock(&a->lock);

	char *p = huge_malloc(a, 7 * CHUNK, CHUNK, false);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p & CHUNK_MASK, 0);
	/* Largest piece first, then the first part of the other. */
	assert_true(all_bytes(p, 5 * CHUNK, 0x55));
	assert_true(all_bytes(p + 5 * CHUNK, 2 * CHUNK, 0x33));
	mutex_lock(&a->lock);
	assert_int_equal(a->chunks.dirty_bytes, CHUNK);
	/* A fresh 7-chunk destination mapped, 7 chunks of pieces unmapped. */
	assert_int_equal(a->chunks.mapped_bytes, mapped);
	mutex_unlock(&a->lock);
	memset(p, 0x77, 7 * CHUNK);
	assert_true(all_bytes(sep, CHUNK, 0x11));
	huge_dalloc(p, false);
	huge_dalloc(sep, false);
}

static void
test_one_span_fits(void **state) {
	(void)state;
	skip_unless_parts();
	arena_t *a = quiet_arena();
	void *four;
	void *sep = freed_apart(a, 4, 2, &four);
	char *p = huge_malloc(a, 3 * CHUNK, CHUNK, false);
	/* Best fit: the start of the 4-chunk span, where it lies. */
	assert_ptr_equal(p, four);
	assert_true(all_bytes(p, 3 * CHUNK, 0x44));
	huge_dalloc(p, false);
	huge_dalloc(sep, false);
}

static void
test_zero_wanted(void **state) {
	(void)state;
	skip_unless_parts();
	arena_t *a = quiet_arena();
	void *two;
	void *sep = freed_apart(a, 2, 3, &two);
	/* Zeroed memory wanted: fresh memory, the dirty spans stay. */
	char *z = huge_malloc(a, 6 * CHUNK, CHUNK, true);
	assert_non_null(z);
	assert_true(all_bytes(z, 6 * CHUNK, 0));
	mutex_lock(&a->lock);
	assert_int_equal(a->chunks.dirty_bytes, 5 * CHUNK);
	mutex_unlock(&a->lock);
	huge_dalloc(z, false);
	huge_dalloc(sep, false);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_made_of_pieces),
	    cmocka_unit_test(test_one_span_fits),
	    cmocka_unit_test(test_zero_wanted),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
