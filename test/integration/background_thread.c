/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The background_thread mallctl and stats.background_thread.*, as jemalloc
 * 5 defines them: background_thread (bool, rw) starts and stops the purging
 * threads at run time; stats.background_thread.num_threads (size_t),
 * num_runs and run_interval (uint64_t, ns) are read-only. Checked: types and
 * errno rules, the value starting as opt.background_thread, threads present
 * at once after a write of true and gone (joined) after a write of false,
 * wake-ups counted, lookups by MIB, and purging actually done by threads
 * started through the mallctl while the program makes no allocator call
 * (32 MiB freed with arena decay times of 1 s, RSS less the pages marked
 * MADV_FREE, test_rss.h).
 *
 * liballoc-specific: skipped (exit 77) when the process allocator does not
 * export mallctl.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "alloc.h"
#include "test_skip.h"
#include "test_rss.h"

#define MiB ((size_t)1 << 20)

static bool
bg_get(void) {
	bool v = false;
	size_t sz = sizeof(v);
	assert_int_equal(mallctl("background_thread", &v, &sz, NULL, 0), 0);
	assert_int_equal(sz, sizeof(v));
	return v;
}

/* Writes v; returns the old value. */
static bool
bg_set(bool v) {
	bool old = !v;
	size_t sz = sizeof(old);
	assert_int_equal(mallctl("background_thread", &old, &sz, &v, sizeof(v)), 0);
	return old;
}

/* config.stats: stats.background_thread.* are statistics, so a
 * --disable-stats build answers ENOENT for them (as jemalloc 5 does) and
 * the checks that need them skip. */
static bool have_stats;

static size_t
num_threads(void) {
	size_t v = 0;
	size_t sz = sizeof(v);
	assert_int_equal(mallctl("stats.background_thread.num_threads", &v, &sz, NULL, 0), 0);
	return v;
}

static uint64_t
read_u64(const char *name) {
	uint64_t v = 0;
	size_t sz = sizeof(v);
	assert_int_equal(mallctl(name, &v, &sz, NULL, 0), 0);
	return v;
}

static void
sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static void
test_names_and_errors(void **state) {
	(void)state;
	bool opt = false;
	size_t sz = sizeof(opt);
	assert_int_equal(mallctl("opt.background_thread", &opt, &sz, NULL, 0), 0);
	/* Nothing changed it yet in this process. */
	assert_int_equal(bg_get(), opt);

	/* Wrong sizes. */
	int small = 0;
	sz = sizeof(small);
	assert_int_equal(mallctl("background_thread", &small, &sz, NULL, 0), EINVAL);
	int big = 1;
	assert_int_equal(mallctl("background_thread", NULL, NULL, &big, sizeof(big)), EINVAL);
	assert_int_equal(bg_get(), opt);

	/* The statistics are read-only, with jemalloc's types. */
	size_t n = 0;
	sz = sizeof(n);
	if (!have_stats) {
		assert_int_equal(mallctl("stats.background_thread.num_threads", &n, &sz, NULL, 0),
		                 ENOENT);
	}
	test_skip_unless(have_stats, "statistics");
	assert_int_equal(mallctl("stats.background_thread.num_threads", &n, &sz, &n, sizeof(n)),
	                 EPERM);
	uint64_t u = 0;
	sz = sizeof(u);
	assert_int_equal(mallctl("stats.background_thread.num_runs", &u, &sz, &u, sizeof(u)),
	                 EPERM);
	assert_int_equal(mallctl("stats.background_thread.run_interval", &u, &sz, &u, sizeof(u)),
	                 EPERM);
	unsigned un = 0;
	sz = sizeof(un);
	assert_int_equal(mallctl("stats.background_thread.num_threads", &un, &sz, NULL, 0), EINVAL);
	assert_int_equal(mallctl("stats.background_thread", &u, &sz, NULL, 0), ENOENT);
	assert_int_equal(mallctl("stats.background_thread.nope", &u, &sz, NULL, 0), ENOENT);
	assert_int_equal(mallctl("background_thread.x", &u, &sz, NULL, 0), ENOENT);

	/* By MIB. */
	size_t mib[4];
	size_t miblen = 4;
	assert_int_equal(mallctlnametomib("stats.background_thread.num_threads", mib, &miblen), 0);
	assert_int_equal(miblen, 3);
	sz = sizeof(n);
	assert_int_equal(mallctlbymib(mib, miblen, &n, &sz, NULL, 0), 0);
	assert_int_equal(n, num_threads());
	miblen = 4;
	assert_int_equal(mallctlnametomib("background_thread", mib, &miblen), 0);
	assert_int_equal(miblen, 1);
	bool v = !opt;
	sz = sizeof(v);
	assert_int_equal(mallctlbymib(mib, miblen, &v, &sz, NULL, 0), 0);
	assert_int_equal(v, opt);
}

static void
test_start_stop(void **state) {
	(void)state;
	bg_set(false);
	assert_false(bg_get());
	if (!have_stats) {
		/* The switch still works; the threads cannot be counted. */
		assert_false(bg_set(true));
		assert_true(bg_get());
		assert_true(bg_set(false));
		assert_false(bg_get());
	}
	test_skip_unless(have_stats, "statistics");
	assert_int_equal(num_threads(), 0);

	/* true: the threads exist when the call returns. */
	assert_false(bg_set(true));
	assert_true(bg_get());
	size_t n = num_threads();
	assert_true(n >= 1);
	/* Writing the value it has changes nothing. */
	assert_true(bg_set(true));
	assert_int_equal(num_threads(), n);

	/* An idle thread still wakes at least once a second. */
	uint64_t runs = 0;
	for (int i = 0; i < 30 && runs == 0; i++) {
		sleep_ms(100);
		runs = read_u64("stats.background_thread.num_runs");
	}
	assert_true(runs >= 1);
	uint64_t interval = read_u64("stats.background_thread.run_interval");
	assert_true(interval > 0);
	print_message("  %zu thread(s), %llu run(s), run interval %.1f ms\n", n,
	              (unsigned long long)runs, (double)interval / 1e6);

	/* false: stopped and joined when the call returns. */
	assert_true(bg_set(false));
	assert_false(bg_get());
	assert_int_equal(num_threads(), 0);
	assert_int_equal(read_u64("stats.background_thread.num_runs"), 0);
	assert_int_equal(read_u64("stats.background_thread.run_interval"), 0);

	/* And again. */
	for (int i = 0; i < 3; i++) {
		assert_false(bg_set(true));
		assert_true(num_threads() >= 1);
		assert_true(bg_set(false));
		assert_int_equal(num_threads(), 0);
	}
}

static double
now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sets every existing arena's decay time, and the default of arenas made
 * later (a thread moved to another CPU may start using a new arena);
 * returns how many existing arenas took it. */
static unsigned
set_decay_times(ssize_t t) {
	assert_int_equal(mallctl("arenas.decay_time", NULL, NULL, &t, sizeof(t)), 0);
	unsigned n = 0;
	size_t sz = sizeof(n);
	assert_int_equal(mallctl("arenas.narenas", &n, &sz, NULL, 0), 0);
	unsigned set = 0;
	for (unsigned i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "arena.%u.decay_time", i);
		int err = mallctl(name, NULL, NULL, &t, sizeof(t));
		assert_true(err == 0 || err == EFAULT);
		set += err == 0;
	}
	return set;
}

static void
test_purges_while_idle(void **state) {
	(void)state;
	assert_true(set_decay_times(1) >= 1);
	bg_set(true);
	enum { NBLOCKS = 16 };
	void *blocks[NBLOCKS];
	size_t base = test_rss_held();
	assert_true(base > 0);
	for (int i = 0; i < NBLOCKS; i++) {
		/* Large and huge blocks: 32 MiB in all. */
		size_t size = i % 2 ? 3 * MiB : 1 * MiB;
		blocks[i] = malloc(size);
		assert_non_null(blocks[i]);
		memset(blocks[i], 0x3c, size);
	}
	size_t full = test_rss_held();
	for (int i = 0; i < NBLOCKS; i++) {
		free(blocks[i]);
	}
	double t0 = now_s();
	/* From here to the end of the loop: no allocator call. */
	size_t rss = test_rss_held();
	double t = 0;
	while (rss > base + 8 * MiB && (t = now_s() - t0) < 2.5) {
		sleep_ms(10);
		rss = test_rss_held();
	}
	print_message("  RSS %.1f MiB over the start with 32 MiB live, %.1f MiB %.2f s after the "
	              "frees\n",
	              (double)(full - base) / MiB, (double)(rss > base ? rss - base : 0) / MiB, t);
	assert_true(rss <= base + 8 * MiB);
	bg_set(false);
	set_decay_times(10);
}

int
main(void) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("the process allocator has no mallctl\n");
		return 77;
	}
	size_t len = sizeof(have_stats);
	if (mallctl("config.stats", &have_stats, &len, NULL, 0) != 0) {
		printf("mallctl(\"config.stats\") failed\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_and_errors),
	    cmocka_unit_test(test_start_stop),
	    cmocka_unit_test(test_purges_while_idle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
