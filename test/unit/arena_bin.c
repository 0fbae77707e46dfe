/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the small bins' batch paths (arena_bin.c): the fill that
 * takes a run's free regions a bitmap group at a time (run_regs_alloc), and
 * the one free path every small region goes through (bin_dalloc_batch:
 * flushes, remote lists, single frees), which looks a region's run up only
 * when it is not in the previous region's run and updates the run's lists
 * on the two edges of its free count.
 *
 * Checked, on the arenas of the unit-test objects:
 *   - a fill of more regions than a run holds, in classes whose bitmaps
 *     span one to eight groups (8, 16, 48, 112 and 1024 bytes): every
 *     region distinct, a region start of its class in the asked arena,
 *     marked in use; per run in ascending address order, lower than every
 *     region the run has left free, each run but the last left full; the
 *     bin's counters (nfills + 1, nmalloc and curregs + n);
 *   - a flush of two arenas' regions in an order that changes run at
 *     every region, then in runs of several regions, then in reverse:
 *     the other arena's regions stay in front, in order; exactly the
 *     freed regions are free in their bitmaps; a run whose regions all
 *     come back is given back (curruns), one that was full and got some
 *     back is reused (nonfull_runs, and the next fill hands out its lowest
 *     free regions first); curregs, ndalloc and the walker agree;
 *   - a remote list longer than a fill takes before its lock
 *     (BIN_TAKE_MAX) and than the drain's batches (BIN_CHAIN_BATCH): a
 *     drain by a fill and by a sweep free every region, none twice;
 *   - a region twice in one batch, an interior pointer, and a region of a
 *     run the same batch emptied before are reported (the process aborts).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/arena_validate.h"
#include "alloc/internal/bitmap.h"
#include "alloc/internal/config.h"
#include "alloc/internal/fill.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/pages.h"
#include "alloc/internal/sz.h"
#include "test_bins.h"

static run_t *
run_of(const void *p) {
	return arena_chunk_of(p)->misc[arena_pageind(p)].run;
}

static size_t
region_index(const run_t *run, const void *p) {
	return (size_t)((const char *)p - run->base) / bin_infos[run->binind].reg_size;
}

static bool
in_use(const void *p) {
	const run_t *run = run_of(p);
	return bitmap_get(run->bitmap, region_index(run, p));
}

/* The bin's counters (a stats read: it drains the remote lists too). */
static bin_stats_t
bin_stats(arena_t *a, szind_t ind) {
	arena_stats_snapshot_t *s = malloc(sizeof(*s));
	assert_non_null(s);
	arena_stats_read(a, s);
	bin_stats_t ret = s->bins[ind];
	free(s);
	return ret;
}

static int
ptr_cmp(const void *x, const void *y) {
	uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y;
	return a < b ? -1 : a > b;
}

/* Every pointer of ptrs[0..n) distinct. */
static void
assert_distinct(void *const *ptrs, unsigned n) {
	void **sorted = malloc(n * sizeof(void *));
	assert_non_null(sorted);
	memcpy(sorted, ptrs, n * sizeof(void *));
	qsort(sorted, n, sizeof(void *), ptr_cmp);
	for (unsigned i = 1; i < n; i++) {
		assert_ptr_not_equal(sorted[i - 1], sorted[i]);
	}
	free(sorted);
}

/* Frees ptrs[0..n) the way a thread cache does (tcache_bin_flush): one
 * call per arena, until none are left. */
static void
flush_all(void **ptrs, unsigned n, szind_t ind) {
	while (n != 0) {
		unsigned left = arena_bin_flush(ptrs, n, ind, 0);
		assert_true(left < n);
		n = left;
	}
}

/* ---------------------------------------------------------------------- */

static void
check_fill(arena_t *a, size_t size) {
	szind_t ind = test_bins_class(size);
	const bin_info_t *info = &bin_infos[ind];
	unsigned n = info->nregs + info->nregs / 2 + 3;
	void **ptrs = malloc(n * sizeof(void *));
	assert_non_null(ptrs);
	bin_stats_t before = bin_stats(a, ind);
	assert_int_equal(arena_bin_fill(a, ind, ptrs, n), n);
	bin_stats_t after = bin_stats(a, ind);
	if (config_stats) {
		assert_int_equal(after.nfills, before.nfills + 1);
		assert_int_equal(after.nmalloc, before.nmalloc + n);
		assert_int_equal(after.curregs, before.curregs + n);
	}
	assert_distinct(ptrs, n);
	for (unsigned i = 0; i < n; i++) {
		assert_ptr_equal(arena_chunk_of(ptrs[i])->arena, a);
		assert_int_equal(arena_ptr_pclass(ptrs[i]), ind + 1);
		assert_ptr_equal(arena_small_region_base(ptrs[i], ind), ptrs[i]);
		assert_true(in_use(ptrs[i]));
	}
	/* Per run: ascending, and below every region the run has left free;
	 * a run the fill moved on from is full. */
	unsigned i = 0;
	while (i < n) {
		run_t *run = run_of(ptrs[i]);
		unsigned j = i + 1;
		while (j < n && run_of(ptrs[j]) == run) {
			assert_true((uintptr_t)ptrs[j - 1] < (uintptr_t)ptrs[j]);
			j++;
		}
		size_t top = region_index(run, ptrs[j - 1]);
		for (size_t r = 0; r < top; r++) {
			/* Every region below the last one handed out from this
			 * run is in use (by this fill or from before). */
			assert_true(bitmap_get(run->bitmap, r));
		}
		if (j < n) {
			assert_int_equal(run->nfree, 0);
		}
		for (unsigned k = j; k < n; k++) {
			/* A run is taken from once per fill. */
			assert_ptr_not_equal(run_of(ptrs[k]), run);
		}
		i = j;
	}
	assert_null(arena_validate(a));
	flush_all(ptrs, n, ind);
	if (config_stats) {
		bin_stats_t end = bin_stats(a, ind);
		assert_int_equal(end.curregs, before.curregs);
		assert_int_equal(end.ndalloc, after.ndalloc + n);
	}
	assert_null(arena_validate(a));
	free(ptrs);
}

static void
test_fill_groups(void **state) {
	(void)state;
	/* 512, 256, 256, ~36 and 4+ regions a run: bitmaps of 8, 4, 4, 1
	 * and 1 groups. */
	static const size_t sizes[] = {8, 16, 48, 112, 1024};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		check_fill(test_arena0, sizes[i]);
		check_fill(test_arena1, sizes[i]);
	}
}

/* ---------------------------------------------------------------------- */

/* Whether every region below p's in p's run is in use. */
static bool
lowest_free_taken(const void *p) {
	const run_t *run = run_of(p);
	for (size_t r = 0; r < region_index(run, p); r++) {
		if (!bitmap_get(run->bitmap, r)) {
			return false;
		}
	}
	return true;
}

static void
test_flush_orders(void **state) {
	(void)state;
	szind_t ind = test_bins_class(48);
	unsigned nregs = bin_infos[ind].nregs;
	/* Three runs' worth of test_arena0's regions and one of test_arena1's. */
	bin_stats_t start0 = bin_stats(test_arena0, ind);
	unsigned n0 = 3 * nregs;
	unsigned n1 = nregs;
	void **a0 = malloc(n0 * sizeof(void *));
	void **a1 = malloc(n1 * sizeof(void *));
	void **batch = malloc((n0 + n1) * sizeof(void *));
	assert_non_null(a0);
	assert_non_null(a1);
	assert_non_null(batch);
	assert_int_equal(arena_bin_fill(test_arena0, ind, a0, n0), n0);
	assert_int_equal(arena_bin_fill(test_arena1, ind, a1, n1), n1);
	bin_stats_t filled0 = bin_stats(test_arena0, ind);
	/* The runs all of whose regions are in a0 (a fill takes the runs in
	 * turn: at least two): given back when a0 is. */
	unsigned whole = 0;
	for (unsigned i = 0; i < n0;) {
		unsigned j = i;
		while (j < n0 && run_of(a0[j]) == run_of(a0[i])) {
			j++;
		}
		whole += j - i == nregs;
		i = j;
	}
	assert_true(whole >= 2);

	/* Every other region of a0, each followed by one of a1: a run
	 * switch at every region. */
	unsigned m = 0;
	for (unsigned i = 0; i < n0; i += 2) {
		batch[m++] = a0[i];
		if (i / 2 < n1) {
			batch[m++] = a1[i / 2];
		}
	}
	unsigned freed = m - n1;
	unsigned left = arena_bin_flush(batch, m, ind, 5);
	assert_int_equal(left, n1);
	for (unsigned i = 0; i < n1; i++) {
		assert_ptr_equal(batch[i], a1[i]);
	}
	for (unsigned i = 0; i < n0; i++) {
		assert_int_equal(in_use(a0[i]), i % 2 == 1);
	}
	bin_stats_t half0 = bin_stats(test_arena0, ind);
	if (config_stats) {
		assert_int_equal(half0.curregs, filled0.curregs - freed);
		assert_int_equal(half0.ndalloc, filled0.ndalloc + freed);
		assert_int_equal(half0.nflushes, filled0.nflushes + 1);
		assert_int_equal(half0.nrequests, filled0.nrequests + 5);
		/* No run emptied; the whole ones the fill left full have free
		 * regions again. */
		assert_int_equal(half0.curruns, filled0.curruns);
		assert_true(half0.nonfull_runs >= whole);
	}
	assert_null(arena_validate(test_arena0));

	/* A refill takes the lowest free regions of a run first: ones just
	 * freed, ascending, from one run. */
	void *again[8];
	assert_int_equal(arena_bin_fill(test_arena0, ind, again, 8), 8);
	for (unsigned i = 0; i < 8; i++) {
		assert_ptr_equal(run_of(again[i]), run_of(again[0]));
		assert_true(lowest_free_taken(again[i]));
		if (i > 0) {
			assert_true((uintptr_t)again[i - 1] < (uintptr_t)again[i]);
		}
		bool was_freed = false;
		for (unsigned k = 0; k < n0; k += 2) {
			was_freed |= a0[k] == again[i];
		}
		assert_true(was_freed);
	}
	flush_all(again, 8, ind);

	/* The odd ones in reverse: stretches of one run, and every whole
	 * run of a0 is given back. */
	m = 0;
	for (unsigned i = n0; i-- > 0;) {
		if (i % 2 == 1) {
			batch[m++] = a0[i];
		}
	}
	assert_int_equal(arena_bin_flush(batch, m, ind, 0), 0);
	bin_stats_t end0 = bin_stats(test_arena0, ind);
	if (config_stats) {
		assert_int_equal(end0.curregs, start0.curregs);
		assert_int_equal(end0.curruns, filled0.curruns - whole);
	}
	assert_null(arena_validate(test_arena0));

	/* test_arena1's regions in stretches of seven, every other stretch
	 * reversed. */
	m = 0;
	for (unsigned i = 0; i < n1; i += 7) {
		unsigned end = i + 7 < n1 ? i + 7 : n1;
		for (unsigned k = i; k < end; k++) {
			batch[m++] = (i / 7) % 2 == 0 ? a1[k] : a1[end - 1 - (k - i)];
		}
	}
	assert_int_equal(m, n1);
	assert_distinct(batch, m);
	bin_stats_t before1 = bin_stats(test_arena1, ind);
	assert_int_equal(arena_bin_flush(batch, m, ind, 0), 0);
	if (config_stats) {
		assert_int_equal(bin_stats(test_arena1, ind).curregs, before1.curregs - n1);
	}
	assert_null(arena_validate(test_arena1));
	free(a0);
	free(a1);
	free(batch);
}

/* ---------------------------------------------------------------------- */

static void
check_long_chain(bool by_fill) {
	enum { N = 700 };
	szind_t ind = test_bins_class(32);
	bin_t *bin = &test_arena1->bins[ind];
	void **ptrs = malloc(N * sizeof(void *));
	assert_non_null(ptrs);
	bin_stats_t before = bin_stats(test_arena1, ind);
	assert_int_equal(arena_bin_fill(test_arena1, ind, ptrs, N), N);
	/* Handed over in batches of 100, in the order a cache flushes. */
	for (unsigned i = 0; i < N; i += 100) {
		assert_int_equal(arena_bin_hand_over(ptrs + i, 100, ind, 1), 0);
	}
	if (config_fill && fill_slow_paths) {
		/* Those builds free under the lock (arena.h). */
		assert_null(__atomic_load_n(&bin->remote, __ATOMIC_RELAXED));
	} else {
		assert_int_equal(test_bins_remote(bin, ind), N);
		for (unsigned i = 0; i < N; i++) {
			assert_true(in_use(ptrs[i]));
		}
		if (by_fill) {
			void *one;
			assert_int_equal(arena_bin_fill(test_arena1, ind, &one, 1), 1);
			assert_null(__atomic_load_n(&bin->remote, __ATOMIC_RELAXED));
			flush_all(&one, 1, ind);
		} else {
			arena_bins_remote_drain(test_arena1, false);
			assert_null(__atomic_load_n(&bin->remote, __ATOMIC_RELAXED));
		}
	}
	/* Every region back in its run once (a second time would abort):
	 * the counters and the walker agree. */
	if (config_stats) {
		bin_stats_t after = bin_stats(test_arena1, ind);
		assert_int_equal(after.curregs, before.curregs);
		assert_int_equal(after.ndalloc, before.ndalloc + N + by_fill);
		assert_int_equal(after.nflushes, before.nflushes + N / 100 + by_fill);
		assert_int_equal(after.nrequests, before.nrequests + N / 100);
	}
	assert_null(arena_validate(test_arena1));
	free(ptrs);
}

static void
test_long_remote_chain(void **state) {
	(void)state;
	check_long_chain(false);
	check_long_chain(true);
}

/* ---------------------------------------------------------------------- */

enum { BAD_TWICE, BAD_INTERIOR, BAD_EMPTIED };

static void
flush_bad_batch(int kind) {
	szind_t ind = test_bins_class(64);
	unsigned nregs = bin_infos[ind].nregs;
	void **p = malloc((2 * nregs + 1) * sizeof(void *));
	if (p == NULL || arena_bin_fill(test_arena0, ind, p, 2 * nregs) != 2 * nregs) {
		_exit(3);
	}
	switch (kind) {
	case BAD_TWICE:
		/* p[1] again, three regions later. */
		p[4] = p[1];
		arena_bin_flush(p, 5, ind, 0);
		break;
	case BAD_INTERIOR:
		p[2] = (char *)p[2] + 16;
		arena_bin_flush(p, 3, ind, 0);
		break;
	case BAD_EMPTIED: {
		/* The whole run of p[nregs] (a run of the fill's second part
		 * is whole), then one of its regions again. */
		run_t *run = run_of(p[nregs]);
		unsigned m = 0;
		for (unsigned i = 0; i < 2 * nregs; i++) {
			if (run_of(p[i]) == run) {
				p[m++] = p[i];
			}
		}
		if (m != nregs) {
			_exit(4);
		}
		p[m] = p[0];
		arena_bin_flush(p, m + 1, ind, 0);
		break;
	}
	}
}

static void
test_bad_batch_reported(void **state) {
	(void)state;
	test_bins_child_aborts(flush_bad_batch, BAD_TWICE);
	test_bins_child_aborts(flush_bad_batch, BAD_INTERIOR);
	test_bins_child_aborts(flush_bad_batch, BAD_EMPTIED);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fill_groups),
	    cmocka_unit_test(test_flush_orders),
	    cmocka_unit_test(test_long_remote_chain),
	    cmocka_unit_test(test_bad_batch_reported),
	};
	return cmocka_run_group_tests(tests, test_bins_setup, NULL);
}
