/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the decay curve (decay.h, decay.c), with the clock passed in
 * so every figure is exact and repeatable.
 *
 * The property users rely on: after a burst of frees, the number of dirty
 * pages an arena may keep falls smoothly from all of them to none over
 * decay_time seconds (half of them at half the time, by the curve's
 * symmetry), never rises without new frees, and reaches zero at the decay
 * time; decay_time 0 keeps nothing and -1 keeps everything.
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
	decay_init(&d, 10, T0);
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
	decay_init(&d, 10, T0);
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
	decay_init(&d, 10, T0);
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
	decay_init(&d, 10, T0);
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
	decay_init(&d, 10, T0);
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
	decay_init(&d, DECAY_TIME_MAX, T0);
	assert_int_equal(decay_update(&d, T0, 77), 77);
	assert_int_equal(decay_update(&d, T0 + 3600 * NS_PER_S, 77), 77);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
