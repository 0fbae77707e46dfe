/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the rule that spreads threads over the per-CPU arenas
 * (arena.h: arena_lock_for_alloc, arena_note_wait, arena_note_acqs,
 * opt.percpu_arena_waits).
 *
 * Checked: waits below the threshold within one window of
 * ARENA_SPREAD_WINDOW acquisitions do not spread, and a full window starts
 * the count again, so waits spread out thinner than that never spread;
 * reaching the threshold within a window spreads, for good, and counting
 * stops; arena_lock_for_alloc counts every acquisition of the calling
 * thread and, when the lock is held by another thread, one wait (and still
 * takes the lock). Threshold 0 (spread from the start) and the arena a
 * thread gets before and after are checked through the library by
 * test/integration/arena_choice.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/pages.h"

static int
group_setup(void **state) {
	(void)state;
	pages_boot();
	arena_boot();
	return 0;
}

/* Not spread, nothing counted, threshold `waits`. */
static void
start_over(unsigned waits) {
	opt_percpu_arena_waits = waits;
	arena_spread = false;
	arena_lock_waits = 0;
	/* Closes whatever window is open: the next fold starts a new one. */
	for (unsigned i = 0; i < ARENA_SPREAD_WINDOW / ARENA_ACQS_FOLD; i++) {
		arena_note_acqs();
	}
	arena_lock_waits = 0;
}

static void
test_default_not_spread(void **state) {
	(void)state;
	/* arena_boot ran with the default: one wait in 16 acquisitions. */
	assert_int_equal(opt_percpu_arena_waits, ARENA_SPREAD_WINDOW / 8);
	assert_false(arena_spread_now());
}

static void
test_threshold_in_window(void **state) {
	(void)state;
	start_over(4);
	for (int i = 0; i < 3; i++) {
		arena_note_wait();
	}
	assert_false(arena_spread_now());
	assert_int_equal(arena_lock_waits, 3);
	/* A window's acquisitions pass: the count starts again. */
	for (unsigned i = 0; i < ARENA_SPREAD_WINDOW / ARENA_ACQS_FOLD; i++) {
		arena_note_acqs();
	}
	assert_int_equal(arena_lock_waits, 0);
	for (int i = 0; i < 3; i++) {
		arena_note_wait();
	}
	assert_false(arena_spread_now());
	/* The fourth wait of this window. */
	arena_note_wait();
	assert_true(arena_spread_now());
	/* For good: later windows and waits change nothing. */
	for (unsigned i = 0; i < 2 * ARENA_SPREAD_WINDOW / ARENA_ACQS_FOLD; i++) {
		arena_note_acqs();
	}
	arena_note_wait();
	assert_true(arena_spread_now());
	assert_int_equal(arena_lock_waits, 4);
}

static mutex_t held = MUTEX_INITIALIZER;
static int holding;

static void *
hold_a_while(void *arg) {
	(void)arg;
	mutex_lock(&held);
	__atomic_store_n(&holding, 1, __ATOMIC_RELEASE);
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	mutex_unlock(&held);
	return NULL;
}

static void
test_lock_for_alloc_counts(void **state) {
	(void)state;
	start_over(1);
	mutex_t m = MUTEX_INITIALIZER;
	/* A free lock: counted as an acquisition, not as a wait. */
	unsigned acqs = arena_thread_acqs;
	for (unsigned i = 0; i < 2 * ARENA_ACQS_FOLD; i++) {
		arena_lock_for_alloc(&m);
		mutex_unlock(&m);
	}
	assert_int_equal(arena_thread_acqs, acqs + 2 * ARENA_ACQS_FOLD);
	assert_int_equal(arena_lock_waits, 0);
	assert_false(arena_spread_now());
	/* A lock another thread holds: one wait, then the lock. */
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, hold_a_while, NULL), 0);
	while (!__atomic_load_n(&holding, __ATOMIC_ACQUIRE)) {
		sched_yield();
	}
	arena_lock_for_alloc(&held);
	assert_int_equal(arena_lock_waits, 1);
	assert_true(arena_spread_now());
	mutex_unlock(&held);
	assert_int_equal(pthread_join(t, NULL), 0);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_not_spread),
	    cmocka_unit_test(test_threshold_in_window),
	    cmocka_unit_test(test_lock_for_alloc_counts),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
