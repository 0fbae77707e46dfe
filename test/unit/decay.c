/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the decay curve (decay.h, decay.c), with the clock passed in
 * so every figure is exact and repeatable.
 *
 * The property users rely on: after a burst of frees, the number of dirty
 * pages an arena may keep falls smoothly from all of them to none over
 * decay time (half of them at half the time, by the curve's symmetry),
 * never rises without new frees, and reaches zero at the decay time; a
 * decay time of 0 keeps nothing and -1 keeps everything. Decay times are in
 * milliseconds.
 *
 * The two stages of jemalloc 5 are two decay_t chained the way the arena
 * chains them (arena_purge.c): the pages the dirty curve no longer allows
 * become muzzy and feed the muzzy curve, whose excess is purged for good.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "alloc/internal/decay.h"

#define NS_PER_S ((uint64_t)1000000000)
#define T0       ((uint64_t)1000 * NS_PER_S)

static void
test_weights(void **state) {
	(void)state;
	assert_int_equal(decay_weight(0), 1u << DECAY_WEIGHT_BITS);
	for (unsigned s = 1; s < DECAY_NSTEPS; s++) {
		assert_true(decay_weight(s) <= decay_weight(s - 1));
	}
	/* Smootherstep is symmetric around its midpoint. */
	uint32_t half = decay_weight(DECAY_NSTEPS / 2);
	assert_true(half == 1u << (DECAY_WEIGHT_BITS - 1));
	/* Nearly nothing survives the last epoch, nothing beyond it. */
	assert_true(decay_weight(DECAY_NSTEPS - 1) < (1u << DECAY_WEIGHT_BITS) / 100000);
	assert_int_equal(decay_weight(DECAY_NSTEPS), 0);
	assert_int_equal(decay_weight(10 * DECAY_NSTEPS), 0);
}

static void
test_burst_decays_along_the_curve(void **state) {
	(void)state;
	decay_t d;
	decay_init(&d, 10000, T0);
	const size_t burst = 100000;
	/* The burst: everything may stay for now. */
	assert_int_equal(decay_update(&d, T0, burst), burst);
	size_t prev = burst;
	size_t at_1s = 0, at_5s = 0, at_9s = 0;
	for (uint64_t ms = 50; ms <= 12000; ms += 50) {
		size_t limit = decay_update(&d, T0 + ms * 1000000, burst);
		/* Never rises without new dirty pages. */
		assert_true(limit <= prev);
		prev = limit;
		if (ms == 1000) {
			at_1s = limit;
		} else if (ms == 5000) {
			at_5s = limit;
		} else if (ms == 9000) {
			at_9s = limit;
		}
	}
	/* A sigmoid: slow start, half at half time, slow end, none at 10 s. */
	assert_true(at_1s > burst * 97 / 100);
	assert_true(at_5s >= burst * 49 / 100 && at_5s <= burst * 51 / 100);
	assert_true(at_9s < burst * 3 / 100);
	assert_int_equal(prev, 0);
	assert_int_equal(decay_update(&d, T0 + 10 * NS_PER_S, burst), 0);
}

static void
test_purge_then_new_pages(void **state) {
	(void)state;
	decay_t d;
	decay_init(&d, 10000, T0);
	decay_update(&d, T0, 1000);
	/* Five seconds later about half may stay; the arena purges down. */
	size_t limit = decay_update(&d, T0 + 5 * NS_PER_S, 1000);
	assert_true(limit >= 490 && limit <= 510);
	decay_purged(&d, limit);
	/* 300 fresh pages join at full weight. */
	size_t limit2 = decay_update(&d, T0 + 5 * NS_PER_S, limit + 300);
	assert_int_equal(limit2, limit + 300);
	/* By 15 s the first burst is gone; the second one (dirtied at 5 s)
	 * is at its own half-life. */
	size_t limit3 = decay_update(&d, T0 + 10 * NS_PER_S, limit + 300);
	assert_true(limit3 >= 145 && limit3 <= 155);
	size_t limit4 = decay_update(&d, T0 + 15 * NS_PER_S, limit + 300);
	assert_int_equal(limit4, 0);
}

static void
test_reuse_lowers_dirty_count(void **state) {
	(void)state;
	decay_t d;
	decay_init(&d, 10000, T0);
	decay_update(&d, T0, 1000);
	/* The program reuses 800 dirty pages: the limit never exceeds the
	 * pages that are actually dirty. */
	assert_int_equal(decay_update(&d, T0 + NS_PER_S / 10, 200), 200);
}

static void
test_zero_and_never(void **state) {
	(void)state;
	decay_t d;
	decay_init(&d, 0, T0);
	assert_int_equal(decay_update(&d, T0, 1234), 0);
	assert_int_equal(decay_ns_until_next(&d, T0), 0);
	decay_init(&d, -1, T0);
	assert_true(decay_update(&d, T0 + 1000 * NS_PER_S, 1234) == SIZE_MAX);
	assert_true(decay_ns_until_next(&d, T0) == UINT64_MAX);
}

static void
test_next_epoch(void **state) {
	(void)state;
	decay_t d;
	decay_init(&d, 10000, T0);
	uint64_t interval = 10 * NS_PER_S / DECAY_NSTEPS;
	assert_true(decay_ns_until_next(&d, T0) == interval);
	assert_true(decay_ns_until_next(&d, T0 + interval / 2) == interval - interval / 2);
	decay_update(&d, T0 + interval + 1, 10);
	assert_true(decay_ns_until_next(&d, T0 + interval + 1) == interval - 1);
}

static void
test_clock_going_back(void **state) {
	(void)state;
	decay_t d;
	decay_init(&d, 10000, T0);
	decay_update(&d, T0, 500);
	/* A clock that jumps back restarts the epoch instead of wrapping. */
	size_t limit = decay_update(&d, T0 - NS_PER_S, 500);
	assert_int_equal(limit, 500);
	assert_true(decay_update(&d, T0 - NS_PER_S + 11 * NS_PER_S, 500) == 0);
}

static void
test_long_decay_time(void **state) {
	(void)state;
	decay_t d;
	decay_init(&d, DECAY_MS_MAX, T0);
	assert_int_equal(decay_update(&d, T0, 77), 77);
	assert_int_equal(decay_update(&d, T0 + 3600 * NS_PER_S, 77), 77);
}

/*
 * Drives a dirty and a muzzy decay the way an arena does: every `step_ms`
 * the dirty stage turns what its curve no longer allows into muzzy pages,
 * and the muzzy stage purges what its own curve no longer allows. Records
 * the muzzy count at each whole second in muzzy_at[] (0..nsec).
 */
static void
two_stage_run(ssize_t dirty_ms, ssize_t muzzy_ms, size_t burst, unsigned nsec, size_t *dirty_at,
              size_t *muzzy_at) {
	decay_t dirty, muzzy;
	decay_init(&dirty, dirty_ms, T0);
	decay_init(&muzzy, muzzy_ms, T0);
	size_t ndirty = burst, nmuzzy = 0;
	decay_update(&dirty, T0, ndirty);
	decay_update(&muzzy, T0, nmuzzy);
	dirty_at[0] = ndirty;
	muzzy_at[0] = nmuzzy;
	const uint64_t step_ms = 10;
	for (uint64_t ms = step_ms; ms <= (uint64_t)nsec * 1000; ms += step_ms) {
		uint64_t now = T0 + ms * 1000000;
		size_t limit = decay_update(&dirty, now, ndirty);
		if (ndirty > limit) {
			nmuzzy += ndirty - limit;
			ndirty = limit;
			decay_purged(&dirty, ndirty);
		}
		size_t mlimit = decay_update(&muzzy, now, nmuzzy);
		if (nmuzzy > mlimit) {
			nmuzzy = mlimit;
			decay_purged(&muzzy, nmuzzy);
		}
		if (ms % 1000 == 0) {
			dirty_at[ms / 1000] = ndirty;
			muzzy_at[ms / 1000] = nmuzzy;
		}
	}
}

static void
test_muzzy_stage_follows_dirty(void **state) {
	(void)state;
	const size_t burst = 100000;
	size_t dirty_at[31], muzzy_at[31];
	two_stage_run(10000, 10000, burst, 30, dirty_at, muzzy_at);
	/* The dirty stage is its own curve: half at 5 s, none at 10 s. */
	assert_true(dirty_at[5] >= burst * 49 / 100 && dirty_at[5] <= burst * 51 / 100);
	assert_int_equal(dirty_at[10], 0);
	/* Pages become muzzy as they leave the dirty stage and stay a while:
	 * at 10 s the muzzy stage still holds most of the burst (pages that
	 * went muzzy at 5 s are at their own half-life, later ones hardly
	 * started), and it holds none once its curve has run out after the
	 * last of them arrived. */
	assert_true(muzzy_at[1] > 0);
	assert_true(muzzy_at[10] > burst / 2 && muzzy_at[10] < burst);
	assert_true(muzzy_at[15] < muzzy_at[10]);
	assert_int_equal(muzzy_at[20], 0);
	/* Nothing leaves the muzzy stage faster than it came in: every page
	 * is dirty or muzzy or purged, and what is purged never exceeds what
	 * the dirty stage let go. */
	for (unsigned t = 0; t <= 30; t++) {
		assert_true(dirty_at[t] + muzzy_at[t] <= burst);
	}
}

static void
test_muzzy_stage_zero_and_never(void **state) {
	(void)state;
	const size_t burst = 5000;
	size_t dirty_at[21], muzzy_at[21];
	/* 0: what becomes muzzy is purged at once. */
	two_stage_run(10000, 0, burst, 20, dirty_at, muzzy_at);
	for (unsigned t = 0; t <= 20; t++) {
		assert_int_equal(muzzy_at[t], 0);
	}
	assert_int_equal(dirty_at[10], 0);
	/* -1: muzzy pages are never purged; they add up to the burst. */
	two_stage_run(10000, -1, burst, 20, dirty_at, muzzy_at);
	assert_int_equal(dirty_at[10], 0);
	assert_int_equal(muzzy_at[10], burst);
	assert_int_equal(muzzy_at[20], burst);
	/* A dirty stage of 0 makes everything muzzy at once; the muzzy
	 * curve alone decides from there (half at half its time). */
	two_stage_run(0, 4000, burst, 20, dirty_at, muzzy_at);
	assert_int_equal(dirty_at[1], 0);
	assert_true(muzzy_at[2] >= burst * 49 / 100 && muzzy_at[2] <= burst * 51 / 100);
	assert_int_equal(muzzy_at[4], 0);
}

static void
test_sub_second_decay(void **state) {
	(void)state;
	/* Milliseconds are honoured: 500 ms halves a burst at 250 ms. */
	decay_t d;
	decay_init(&d, 500, T0);
	decay_update(&d, T0, 1000);
	size_t limit = decay_update(&d, T0 + 250 * 1000000, 1000);
	assert_true(limit >= 490 && limit <= 510);
	assert_int_equal(decay_update(&d, T0 + 500 * 1000000, 1000), 0);
	assert_true(decay_ms_to_seconds(500) == 1);
	assert_true(decay_ms_to_seconds(1000) == 1);
	assert_true(decay_ms_to_seconds(1001) == 2);
	assert_true(decay_ms_to_seconds(0) == 0);
	assert_true(decay_ms_to_seconds(-1) == -1);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_weights),
	    cmocka_unit_test(test_burst_decays_along_the_curve),
	    cmocka_unit_test(test_purge_then_new_pages),
	    cmocka_unit_test(test_reuse_lowers_dirty_count),
	    cmocka_unit_test(test_zero_and_never),
	    cmocka_unit_test(test_next_epoch),
	    cmocka_unit_test(test_clock_going_back),
	    cmocka_unit_test(test_long_decay_time),
	    cmocka_unit_test(test_muzzy_stage_follows_dirty),
	    cmocka_unit_test(test_muzzy_stage_zero_and_never),
	    cmocka_unit_test(test_sub_second_decay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
