/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the bins' remote-free lists (arena.h, bin_t.remote;
 * arena_bin.c, "Remote frees"): a flush that finds its bin's lock busy
 * pushes its regions onto the bin's lock-free list instead of waiting, and
 * whoever takes the lock next frees them into their runs.
 *
 * Checked, on the arenas of the unit-test objects:
 *   - a flush into a bin whose lock is held returns at once, with every
 *     region of that arena on the remote list (none of another arena's),
 *     the regions still counted in use; the next lock holder (a stats
 *     read, a fill, a flush) frees them all, with the flushes' counters,
 *     and the arena's metadata walks clean;
 *   - a region pushed twice (a double free) is reported when drained
 *     (by a flush, or by a fill, which takes the list before its lock),
 *     in the 8-byte class too and when the list comes back to it after
 *     the regions a fill hands out or among them, instead of making the
 *     list loop or a region go to a cache twice;
 *   - a fill hands the regions at the head of the list out as they are
 *     (in list order, still in use in their runs), up to what it was
 *     asked for, frees the rest into the runs, and counts them (freed
 *     and allocated again);
 *   - a hand-over (arena_bin_hand_over, a thread cache flushing objects
 *     of another arena) pushes the owner's regions without the lock even
 *     when it is free, leaves the other arena's in front, and a drain of
 *     every bin (arena_bins_remote_drain: sweeps skip a busy bin, explicit
 *     purges wait for it) frees them;
 *   - large objects (arena_t.large_remote): a hand-over of two arenas'
 *     large objects (arena_large_hand_over) pushes the owner's without
 *     its lock, still allocated to every reader (curruns, allocated
 *     bytes, counters unchanged), and the next holder of the arena's lock
 *     (a stats read, a large allocation, the decay sweep) frees them with
 *     the flush's counters; an object pushed twice is reported when
 *     drained;
 *   - stress: threads that fill from and flush into the same bins of two
 *     arenas at once, each freeing regions the others allocated (each
 *     worker has a home arena: regions of the other are handed over, its
 *     own flushed, and now and then it drains the other arena's bins as a
 *     sweep does), while a holder thread keeps taking the bins' locks so
 *     that many flushes take the lock-free path; one of the classes is
 *     large, whose objects of the other arena are handed over to its
 *     large list while that arena's workers allocate from it and a
 *     worker now and then runs its decay (the sweep's drain). Each
 *     region carries a pattern checked before it is freed; at the end
 *     every region is back in its run (curregs, curruns and the walker
 *     agree) and the lists are empty. Run under ThreadSanitizer by make
 *     check-tsan (test/tsan/remote_free).
 */
#include <pthread.h>
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
#include "alloc/internal/config.h"
#include "alloc/internal/fill.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/pages.h"
#include "alloc/internal/sz.h"
#include "test_bins.h"

/* A stats snapshot of a (a read: it drains the remote lists), to free. */
static arena_stats_snapshot_t *
stats_of(arena_t *a) {
	arena_stats_snapshot_t *s = malloc(sizeof(*s));
	assert_non_null(s);
	arena_stats_read(a, s);
	return s;
}

static size_t
curregs(arena_t *a, szind_t ind) {
	arena_stats_snapshot_t *s = stats_of(a);
	size_t n = s->bins[ind].curregs;
	free(s);
	return n;
}

/* Fills n regions of class ind from test_arena0 into ptrs[0..n) and n from
 * test_arena1 into ptrs[n..2n), and interleaves them into mixed[0..2n), test_arena0's
 * first. */
static void
fill_both_arenas(szind_t ind, unsigned n, void **ptrs, void **mixed) {
	assert_int_equal(arena_bin_fill(test_arena0, ind, ptrs, n), n);
	assert_int_equal(arena_bin_fill(test_arena1, ind, ptrs + n, n), n);
	for (unsigned i = 0; i < n; i++) {
		mixed[2 * i] = ptrs[i];
		mixed[2 * i + 1] = ptrs[n + i];
	}
}

/* ---------------------------------------------------------------------- */

static void
test_busy_flush_pushes(void **state) {
	(void)state;
	enum { N = 40 };
	szind_t ind = test_bins_class(48);
	bin_t *bin0 = &test_arena0->bins[ind];
	/* The two arenas' regions interleaved: the flush must take test_arena0's
	 * (ptrs[0]'s arena) and leave test_arena1's, in order, at the front. */
	void *ptrs[2 * N];
	void *mixed[2 * N];
	fill_both_arenas(ind, N, ptrs, mixed);
	size_t base0 = curregs(test_arena0, ind);
	arena_stats_snapshot_t *before = stats_of(test_arena0);
	mutex_lock(&bin0->lock);
	unsigned left = arena_bin_flush(mixed, 2 * N, ind, 7);
	assert_int_equal(left, N);
	for (unsigned i = 0; i < N; i++) {
		assert_ptr_equal(mixed[i], ptrs[N + i]);
	}
	assert_int_equal(test_bins_remote(bin0, ind), N);
	/* Still in use to every reader of the bin. */
	if (config_stats) {
		assert_int_equal(bin0->stats.curregs, base0);
	}
	mutex_unlock(&bin0->lock);

	/* The next lock holder, here a stats read, frees them. */
	arena_stats_snapshot_t *after = stats_of(test_arena0);
	assert_null(__atomic_load_n(&bin0->remote, __ATOMIC_RELAXED));
	if (config_stats) {
		assert_int_equal(after->bins[ind].curregs, base0 - N);
		assert_int_equal(after->bins[ind].ndalloc, before->bins[ind].ndalloc + N);
		assert_int_equal(after->bins[ind].nflushes, before->bins[ind].nflushes + 1);
		assert_int_equal(after->bins[ind].nrequests, before->bins[ind].nrequests + 7);
	}
	assert_null(arena_validate(test_arena0));

	/* test_arena1's regions, flushed with its lock free: no list involved. */
	assert_int_equal(arena_bin_flush(mixed, N, ind, 0), 0);
	assert_null(__atomic_load_n(&test_arena1->bins[ind].remote, __ATOMIC_RELAXED));
	assert_null(arena_validate(test_arena1));
	free(before);
	free(after);
}

static void
test_fill_drains(void **state) {
	(void)state;
	enum { N = 16 };
	szind_t ind = test_bins_class(160);
	bin_t *bin = &test_arena0->bins[ind];
	void *ptrs[N];
	assert_int_equal(arena_bin_fill(test_arena0, ind, ptrs, N), N);
	size_t base = curregs(test_arena0, ind);
	mutex_lock(&bin->lock);
	assert_int_equal(arena_bin_flush(ptrs, N, ind, 0), 0);
	mutex_unlock(&bin->lock);
	/* A fill takes the lock: the pushed regions go back first, and the
	 * fill can hand the very same regions out again. */
	void *again[N];
	assert_int_equal(arena_bin_fill(test_arena0, ind, again, N), N);
	assert_null(__atomic_load_n(&bin->remote, __ATOMIC_RELAXED));
	if (config_stats) {
		assert_int_equal(curregs(test_arena0, ind), base);
	}
	assert_int_equal(arena_bin_flush(again, N, ind, 0), 0);
	if (config_stats) {
		assert_int_equal(curregs(test_arena0, ind), base - N);
	}
	assert_null(arena_validate(test_arena0));
}

/* Pushes one region twice; the drain of a flush (by_fill 0) or a fill,
 * which takes the list before its lock (arena_bin_remote_take) and hands
 * its first regions out as they are, must report it; by_fill 2 does the
 * latter in the 8-byte class, whose link is the region's only word. */
static void
push_region_twice(int by_fill) {
	szind_t ind = test_bins_class(by_fill == 2 ? 8 : 96);
	void *p[2];
	if (arena_bin_fill(test_arena0, ind, p, 2) != 2) {
		_exit(3);
	}
	bin_t *bin = &test_arena0->bins[ind];
	mutex_lock(&bin->lock);
	void *twice[2] = {p[0], p[0]};
	arena_bin_flush(twice, 1, ind, 0);
	arena_bin_flush(twice + 1, 1, ind, 0);
	mutex_unlock(&bin->lock);
	/* Drained here: the second copy is a double free. */
	if (by_fill) {
		void *q[4];
		arena_bin_fill(test_arena0, ind, q, 4);
	} else {
		arena_bin_flush(p + 1, 1, ind, 0);
	}
}

/* A region pushed twice with nine others between the two pushes: the
 * list comes back to it after ten regions. A fill of n takes the first n
 * as they are and frees the rest into the runs; with n 4 the second visit
 * is in the rest, with n 16 among the regions it would hand out. Both
 * report it before anything is handed out twice. */
static void
push_region_around(int n) {
	szind_t ind = test_bins_class(64);
	void *p[10];
	if (arena_bin_fill(test_arena0, ind, p, 10) != 10) {
		_exit(3);
	}
	bin_t *bin = &test_arena0->bins[ind];
	mutex_lock(&bin->lock);
	arena_bin_flush(p, 1, ind, 0);
	arena_bin_flush(p + 1, 9, ind, 0);
	arena_bin_flush(p, 1, ind, 0);
	mutex_unlock(&bin->lock);
	void *q[16];
	arena_bin_fill(test_arena0, ind, q, (unsigned)n);
}

static void
test_double_push_reported(void **state) {
	(void)state;
	test_bins_child_aborts(push_region_twice, 0);
	test_bins_child_aborts(push_region_twice, 1);
	test_bins_child_aborts(push_region_twice, 2);
	test_bins_child_aborts(push_region_around, 4);
	test_bins_child_aborts(push_region_around, 16);
}

/* A fill hands the regions at the head of the remote list out as they are
 * (still in use in their runs: what a cached region is), up to what it
 * was asked for, and frees the others into their runs; the counters count
 * a region taken as it is as freed and allocated again. */
static void
test_fill_takes_as_they_are(void **state) {
	(void)state;
	enum { N = 24 };
	szind_t ind = test_bins_class(112);
	bin_t *bin = &test_arena0->bins[ind];
	void *ptrs[N];
	assert_int_equal(arena_bin_fill(test_arena0, ind, ptrs, N), N);
	if (config_fill && fill_slow_paths) {
		/* No remote lists in those builds (arena.h). */
		assert_int_equal(arena_bin_flush(ptrs, N, ind, 0), 0);
		return;
	}
	arena_stats_snapshot_t *before = stats_of(test_arena0);
	/* Two hand-overs: the list is the second batch, newest first, then
	 * the first. */
	assert_int_equal(arena_bin_hand_over(ptrs, N / 2, ind, 5), 0);
	assert_int_equal(arena_bin_hand_over(ptrs + N / 2, N / 2, ind, 5), 0);
	assert_int_equal(test_bins_remote(bin, ind), N);
	/* A fill of more than the list: all of it, in list order, then
	 * regions from the runs. */
	void *got[N + 8];
	assert_int_equal(arena_bin_fill(test_arena0, ind, got, N + 8), N + 8);
	assert_null(__atomic_load_n(&bin->remote, __ATOMIC_RELAXED));
	for (unsigned i = 0; i < N / 2; i++) {
		assert_ptr_equal(got[i], ptrs[N - 1 - i]);
		assert_ptr_equal(got[N / 2 + i], ptrs[N / 2 - 1 - i]);
	}
	if (config_stats) {
		arena_stats_snapshot_t *after = stats_of(test_arena0);
		assert_int_equal(after->bins[ind].curregs, before->bins[ind].curregs + 8);
		assert_int_equal(after->bins[ind].ndalloc, before->bins[ind].ndalloc + N);
		assert_int_equal(after->bins[ind].nmalloc, before->bins[ind].nmalloc + N + 8);
		assert_int_equal(after->bins[ind].nflushes, before->bins[ind].nflushes + 2);
		assert_int_equal(after->bins[ind].nrequests, before->bins[ind].nrequests + 10);
		free(after);
	}
	assert_null(arena_validate(test_arena0));

	/* A fill of fewer than the list: the first ones as they are, the
	 * others back in their runs. */
	assert_int_equal(arena_bin_hand_over(got, N + 8, ind, 0), 0);
	void *few[4];
	assert_int_equal(arena_bin_fill(test_arena0, ind, few, 4), 4);
	assert_null(__atomic_load_n(&bin->remote, __ATOMIC_RELAXED));
	for (unsigned i = 0; i < 4; i++) {
		assert_ptr_equal(few[i], got[N + 7 - i]);
	}
	if (config_stats) {
		arena_stats_snapshot_t *after = stats_of(test_arena0);
		assert_int_equal(after->bins[ind].curregs, before->bins[ind].curregs - N + 4);
		free(after);
	}
	assert_null(arena_validate(test_arena0));
	assert_int_equal(arena_bin_flush(few, 4, ind, 0), 0);
	free(before);
}

static void
test_hand_over(void **state) {
	(void)state;
	enum { N = 24 };
	szind_t ind = test_bins_class(80);
	bin_t *bin0 = &test_arena0->bins[ind];
	void *ptrs[2 * N];
	void *mixed[2 * N];
	fill_both_arenas(ind, N, ptrs, mixed);
	size_t base0 = curregs(test_arena0, ind);
	/* The lock is free, and still not taken. */
	unsigned left = arena_bin_hand_over(mixed, 2 * N, ind, 3);
	if (config_fill && fill_slow_paths) {
		/* Those builds free under the lock (arena.h). */
		assert_int_equal(left, N);
		assert_null(__atomic_load_n(&bin0->remote, __ATOMIC_RELAXED));
	} else {
		assert_int_equal(left, N);
		for (unsigned i = 0; i < N; i++) {
			assert_ptr_equal(mixed[i], ptrs[N + i]);
		}
		assert_int_equal(test_bins_remote(bin0, ind), N);
		/* A sweep's drain skips a bin whose lock is busy... */
		mutex_lock(&bin0->lock);
		arena_bins_remote_drain(test_arena0, false);
		assert_int_equal(test_bins_remote(bin0, ind), N);
		if (config_stats) {
			assert_int_equal(bin0->stats.curregs, base0);
		}
		mutex_unlock(&bin0->lock);
		/* ...an explicit purge drains before it purges. */
		arena_purge_all(test_arena0);
		assert_null(__atomic_load_n(&bin0->remote, __ATOMIC_RELAXED));
	}
	if (config_stats) {
		assert_int_equal(curregs(test_arena0, ind), base0 - N);
	}
	assert_int_equal(arena_bin_flush(mixed, N, ind, 0), 0);
	assert_null(arena_validate(test_arena0));
	assert_null(arena_validate(test_arena1));
}

/* ---------------------------------------------------------------------- */
/* Large objects handed over (arena_t.large_remote). */

static szind_t
large_class(size_t size) {
	szind_t ind = sz_size2index(size);
	assert_true(ind >= SZ_NSMALL && ind < SZ_NPAGED);
	return ind;
}

static size_t
large_remote_count(arena_t *a) {
	size_t n = 0;
	for (void *p = __atomic_load_n(&a->large_remote, __ATOMIC_ACQUIRE); p != NULL;
	     p = ((void **)p)[1]) {
		n++;
	}
	return n;
}

static void
test_large_hand_over(void **state) {
	(void)state;
	enum { N = 6 };
	szind_t ind = large_class(SZ_LARGE_MINCLASS);
	size_t li = ind - SZ_NSMALL;
	void *mixed[2 * N];
	for (unsigned i = 0; i < 2 * N; i++) {
		mixed[i] = arena_malloc_large(i % 2 ? test_arena1 : test_arena0, ind, PAGE, false);
		assert_non_null(mixed[i]);
		memset(mixed[i], 0x5a, SZ_LARGE_MINCLASS);
	}
	void *arena1_objs[N];
	for (unsigned i = 0; i < N; i++) {
		arena1_objs[i] = mixed[2 * i + 1];
	}
	arena_stats_snapshot_t *before = stats_of(test_arena0);
	/* Holding test_arena0's lock shows that the push does not take it. */
	mutex_lock(&test_arena0->lock);
	unsigned left = arena_large_hand_over(mixed, 2 * N, ind, 5);
	assert_int_equal(left, N);
	for (unsigned i = 0; i < N; i++) {
		assert_ptr_equal(mixed[i], arena1_objs[i]);
	}
	if (config_fill && fill_slow_paths) {
		/* Those builds free under the lock: not reached with it held
		 * (they are not built with fill options on by default). */
		fail();
	}
	assert_int_equal(large_remote_count(test_arena0), N);
	/* Still allocated to every reader. */
	if (config_stats) {
		assert_int_equal(test_arena0->stats.lstats[li].curruns, before->lstats[li].curruns);
		assert_int_equal(test_arena0->stats.allocated_large, before->allocated_large);
		assert_int_equal(test_arena0->stats.lstats[li].nflushes,
		                 before->lstats[li].nflushes);
	}
	mutex_unlock(&test_arena0->lock);
	assert_null(arena_validate(test_arena0));

	/* The next lock holder, a stats read, frees them with the counters. */
	arena_stats_snapshot_t *after = stats_of(test_arena0);
	assert_null(__atomic_load_n(&test_arena0->large_remote, __ATOMIC_RELAXED));
	if (config_stats) {
		assert_int_equal(after->lstats[li].curruns, before->lstats[li].curruns - N);
		assert_int_equal(after->lstats[li].ndalloc, before->lstats[li].ndalloc + N);
		assert_int_equal(after->lstats[li].nflushes, before->lstats[li].nflushes + 1);
		assert_int_equal(after->lstats[li].nrequests, before->lstats[li].nrequests + 5);
		assert_int_equal(after->allocated_large,
		                 before->allocated_large - N * SZ_LARGE_MINCLASS);
	}
	assert_null(arena_validate(test_arena0));

	/* test_arena1's, drained by its next large allocation, which may reuse
	 * one of their runs. */
	assert_int_equal(arena_large_hand_over(mixed, N, ind, 0), 0);
	assert_int_equal(large_remote_count(test_arena1), N);
	void *again = arena_malloc_large(test_arena1, ind, PAGE, false);
	assert_non_null(again);
	assert_null(__atomic_load_n(&test_arena1->large_remote, __ATOMIC_RELAXED));
	/* And a sweep's decay drains what nobody allocates after. */
	assert_int_equal(arena_large_hand_over(&again, 1, ind, 0), 0);
	arena_decay(test_arena1);
	assert_null(__atomic_load_n(&test_arena1->large_remote, __ATOMIC_RELAXED));
	assert_null(arena_validate(test_arena1));
	free(before);
	free(after);
}

/* Hands one large object over twice; the drain of a purge must report
 * it. */
static void
push_large_twice(int unused) {
	(void)unused;
	szind_t ind = large_class(SZ_LARGE_MINCLASS);
	void *p = arena_malloc_large(test_arena0, ind, PAGE, false);
	if (p == NULL) {
		_exit(3);
	}
	void *twice[2] = {p, p};
	arena_large_hand_over(twice, 1, ind, 0);
	arena_large_hand_over(twice + 1, 1, ind, 0);
	arena_purge_all(test_arena0);
}

static void
test_large_double_push_reported(void **state) {
	(void)state;
	test_bins_child_aborts(push_large_twice, 0);
}

/* ---------------------------------------------------------------------- */
/* Stress. */

enum { NWORKERS = 4, NROUNDS = 400, BATCH = 24, NCLASSES = 4, NSMALLCLASSES = 3 };

/* The last is the smallest large class (set by test_stress). */
static size_t class_sizes[NCLASSES] = {32, 112, 640, 0};

/* Batches handed from thread to thread: slot i holds a batch or NULL. */
#define NSLOTS 64
static void *slots[NSLOTS][BATCH + 1];
static int slot_full[NSLOTS];
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static int stop_holder;
/* Times the holder found regions pushed onto a bin it held. */
static unsigned pushes_seen;

static unsigned char
pattern(const void *p) {
	return (unsigned char)(((uintptr_t)p >> 4) * 131 + 17);
}

/* The first KiB at most: enough to see a region handed out twice. */
#define STAMP_MAX 1024

static void
stamp(void *p, size_t size) {
	memset(p, pattern(p), size < STAMP_MAX ? size : STAMP_MAX);
}

static int
stamp_ok(const void *p, size_t size) {
	const unsigned char *b = p;
	for (size_t i = 0; i < size && i < STAMP_MAX; i++) {
		if (b[i] != pattern(p)) {
			return 0;
		}
	}
	return 1;
}

typedef struct {
	unsigned id;
	unsigned bad;
	uint32_t seed;
} worker_t;

static uint32_t
rnd(uint32_t *s) {
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

/* Checks and frees a batch of one class (its regions may belong to either
 * arena): flushes until every region went back. */
static void
release(worker_t *w, void **batch) {
	szind_t ind = (szind_t)(uintptr_t)batch[BATCH];
	size_t size = sz_index2size(ind);
	void *ptrs[BATCH];
	for (unsigned i = 0; i < BATCH; i++) {
		w->bad += !stamp_ok(batch[i], size);
		ptrs[i] = batch[i];
	}
	/* As a thread cache does: regions of the worker's home arena under
	 * its lock (or pushed when busy), the other arena's handed over. */
	arena_t *home = w->id % 2 ? test_arena1 : test_arena0;
	unsigned left = BATCH;
	while (left != 0) {
		bool own = arena_chunk_of(ptrs[0])->arena == home;
		if (ind >= SZ_NSMALL) {
			left = own ? arena_large_flush(ptrs, left, ind, 1)
			           : arena_large_hand_over(ptrs, left, ind, 1);
		} else {
			left = own ? arena_bin_flush(ptrs, left, ind, 1)
			           : arena_bin_hand_over(ptrs, left, ind, 1);
		}
	}
	/* Now and then, as the decay sweep does for every arena. */
	unsigned r = rnd(&w->seed) % 16;
	if (r < 2) {
		arena_bins_remote_drain(home == test_arena0 ? test_arena1 : test_arena0, false);
	} else if (r == 2) {
		arena_decay(home == test_arena0 ? test_arena1 : test_arena0);
	}
}

/* Allocates a batch of class ind from a, as a fill does (large objects
 * one by one). */
static bool
alloc_batch(arena_t *a, szind_t ind, void **batch) {
	if (ind < SZ_NSMALL) {
		return arena_bin_fill(a, ind, batch, BATCH) == BATCH;
	}
	for (unsigned i = 0; i < BATCH; i++) {
		batch[i] = arena_malloc_large(a, ind, PAGE, false);
		if (batch[i] == NULL) {
			return false;
		}
	}
	return true;
}

static szind_t
stress_class(unsigned k) {
	return k < NSMALLCLASSES ? test_bins_class(class_sizes[k]) : large_class(class_sizes[k]);
}

/* Objects of class ind the arena counts in use (regions, or runs). */
static size_t
in_use(arena_t *a, szind_t ind) {
	if (ind < SZ_NSMALL) {
		return curregs(a, ind);
	}
	arena_stats_snapshot_t *s = stats_of(a);
	size_t n = s->lstats[ind - SZ_NSMALL].curruns;
	free(s);
	return n;
}

static void *
worker(void *arg) {
	worker_t *w = arg;
	/* At least NROUNDS rounds, more until the lock-free path was taken a
	 * few times (a loaded machine may schedule the holder rarely). */
	for (unsigned r = 0; r < NROUNDS || (__atomic_load_n(&pushes_seen, __ATOMIC_RELAXED) < 8 &&
	                                     r < 100 * NROUNDS);
	     r++) {
		unsigned k = rnd(&w->seed) % NCLASSES;
		szind_t ind = stress_class(k);
		arena_t *a = (w->id + r) % 2 ? test_arena1 : test_arena0;
		void *batch[BATCH + 1];
		if (!alloc_batch(a, ind, batch)) {
			w->bad++;
			continue;
		}
		for (unsigned i = 0; i < BATCH; i++) {
			stamp(batch[i], sz_index2size(ind));
		}
		batch[BATCH] = (void *)(uintptr_t)ind;
		/* Swap it for whatever another thread left in a random slot. */
		unsigned s = rnd(&w->seed) % NSLOTS;
		void *taken[BATCH + 1];
		int have = 0;
		pthread_mutex_lock(&slot_lock);
		if (slot_full[s]) {
			memcpy(taken, slots[s], sizeof(taken));
			have = 1;
		}
		memcpy(slots[s], batch, sizeof(batch));
		slot_full[s] = 1;
		pthread_mutex_unlock(&slot_lock);
		if (have) {
			release(w, taken);
		}
	}
	return NULL;
}

/* Keeps taking the stress classes' bin locks, so flushes find them busy. */
static void *
holder(void *arg) {
	(void)arg;
	unsigned i = 0;
	while (!__atomic_load_n(&stop_holder, __ATOMIC_ACQUIRE)) {
		arena_t *a = i % 2 ? test_arena1 : test_arena0;
		bin_t *bin = &a->bins[test_bins_class(class_sizes[i % NSMALLCLASSES])];
		mutex_lock(&bin->lock);
		for (volatile unsigned spin = 0; spin < 200; spin++) {
		}
		if (__atomic_load_n(&bin->remote, __ATOMIC_ACQUIRE) != NULL) {
			__atomic_fetch_add(&pushes_seen, 1, __ATOMIC_RELAXED);
			/* As every lock holder does. */
			arena_bin_remote_drain(a, bin);
		}
		mutex_unlock(&bin->lock);
		i++;
	}
	return NULL;
}

static void
test_stress(void **state) {
	(void)state;
	class_sizes[NSMALLCLASSES] = SZ_LARGE_MINCLASS;
	size_t base[2][NCLASSES];
	for (unsigned k = 0; k < NCLASSES; k++) {
		base[0][k] = in_use(test_arena0, stress_class(k));
		base[1][k] = in_use(test_arena1, stress_class(k));
	}
	pthread_t th[NWORKERS], hold;
	worker_t ws[NWORKERS];
	__atomic_store_n(&stop_holder, 0, __ATOMIC_RELEASE);
	assert_int_equal(pthread_create(&hold, NULL, holder, NULL), 0);
	for (unsigned i = 0; i < NWORKERS; i++) {
		ws[i] = (worker_t){i, 0, 0x9e3779b9u * (i + 1)};
		assert_int_equal(pthread_create(&th[i], NULL, worker, &ws[i]), 0);
	}
	unsigned bad = 0;
	for (unsigned i = 0; i < NWORKERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		bad += ws[i].bad;
	}
	__atomic_store_n(&stop_holder, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(hold, NULL), 0);
	assert_int_equal(bad, 0);
	print_message("# the holder found pushed regions %u times\n", pushes_seen);
	assert_true(pushes_seen > 0);
	/* What is still in the slots goes back too. */
	worker_t w = {0, 0, 1};
	for (unsigned s = 0; s < NSLOTS; s++) {
		if (slot_full[s]) {
			release(&w, slots[s]);
			slot_full[s] = 0;
		}
	}
	assert_int_equal(w.bad, 0);
	for (unsigned k = 0; k < NCLASSES; k++) {
		szind_t ind = stress_class(k);
		/* Stats reads drain: every region is back in its run (the
		 * walker below checks the runs against curregs too). */
		size_t now0 = in_use(test_arena0, ind);
		size_t now1 = in_use(test_arena1, ind);
		if (config_stats) {
			assert_int_equal(now0, base[0][k]);
			assert_int_equal(now1, base[1][k]);
		}
		if (ind < SZ_NSMALL) {
			assert_null(
			    __atomic_load_n(&test_arena0->bins[ind].remote, __ATOMIC_RELAXED));
			assert_null(
			    __atomic_load_n(&test_arena1->bins[ind].remote, __ATOMIC_RELAXED));
		}
	}
	assert_null(__atomic_load_n(&test_arena0->large_remote, __ATOMIC_RELAXED));
	assert_null(__atomic_load_n(&test_arena1->large_remote, __ATOMIC_RELAXED));
	assert_null(arena_validate(test_arena0));
	assert_null(arena_validate(test_arena1));
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_busy_flush_pushes),
	    cmocka_unit_test(test_fill_drains),
	    cmocka_unit_test(test_double_push_reported),
	    cmocka_unit_test(test_fill_takes_as_they_are),
	    cmocka_unit_test(test_hand_over),
	    cmocka_unit_test(test_large_hand_over),
	    cmocka_unit_test(test_large_double_push_reported),
	    cmocka_unit_test(test_stress),
	};
	return cmocka_run_group_tests(tests, test_bins_setup, NULL);
}
