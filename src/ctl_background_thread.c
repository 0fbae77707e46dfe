/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mallctl background_thread and stats.background_thread.*: background
 * purging (background_thread.h) seen from the mallctl tree, with jemalloc
 * 5's names and types.
 *
 *   background_thread (bool, rw)   whether background purging is on.
 *       Writing true starts the threads now; writing false stops and joins
 *       them. The old value is returned. A thread that cannot be created
 *       makes the write answer EFAULT (purging stays enabled, and the next
 *       allocation slow path tries again). ENOENT in a build configured
 *       with --disable-background-thread-support.
 *   max_background_threads (size_t, rw)   the most threads background
 *       purging may use, in [1, opt.max_background_threads] (EINVAL
 *       otherwise). Changing it while purging is on stops the threads and
 *       starts the new number, as jemalloc 5 does. ENOENT without
 *       background thread support, like background_thread.
 *   stats.background_thread.num_threads  (size_t)   threads running
 *   stats.background_thread.num_runs     (uint64_t) wake-ups, all threads
 *   stats.background_thread.run_interval (uint64_t) average time between
 *       wake-ups of a thread, in ns (0 before the first)
 *
 * Unlike the rest of stats.*, the background-thread figures are read live
 * (background_thread_stats_read), not from the epoch snapshot: bg_lock comes
 * before ctl_lock in the lock order, so the snapshot refresh, which runs
 * under ctl_lock, cannot read them; and a thread count that waits for an
 * epoch write would only mislead a program checking that the threads run.
 * In a forked child they read 0 threads until the first allocation slow
 * path re-creates them. Like every stats.* node they answer ENOENT in a
 * --disable-stats build (jemalloc 5 does the same).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/internal/background_thread.h"
#include "alloc/internal/config.h"
#include "alloc/internal/ctl.h"

int
ctl_background_thread_handler(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                              void *newp, size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_background_thread_support) {
		return ENOENT;
	}
	bool old = background_thread_enabled();
	bool v = old;
	int err = ctl_write(newp, newlen, &v, sizeof(v));
	if (err != 0) {
		return err;
	}
	err = ctl_read(oldp, oldlenp, &old, sizeof(old));
	if (err != 0) {
		return err;
	}
	if (newp != NULL && v != old && background_thread_set(v)) {
		return EFAULT;
	}
	return 0;
}

int
ctl_max_background_threads_handler(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                   void *newp, size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_background_thread_support) {
		return ENOENT;
	}
	size_t old = background_thread_max_get();
	size_t v = old;
	int err = ctl_write(newp, newlen, &v, sizeof(v));
	if (err != 0) {
		return err;
	}
	if (newp != NULL && (v == 0 || v > opt_max_background_threads)) {
		return EINVAL;
	}
	err = ctl_read(oldp, oldlenp, &old, sizeof(old));
	if (err != 0) {
		return err;
	}
	if (newp != NULL && v != old && background_thread_max_set(v)) {
		return EINVAL;
	}
	return 0;
}

static int
stats_background_thread_num_threads_ctl(const size_t *mib, size_t miblen, void *oldp,
                                        size_t *oldlenp, void *newp, size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	background_thread_stats_t s;
	background_thread_stats_read(&s);
	size_t v = s.num_threads;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
stats_background_thread_num_runs_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                     void *newp, size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	background_thread_stats_t s;
	background_thread_stats_read(&s);
	uint64_t v = s.num_runs;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

static int
stats_background_thread_run_interval_ctl(const size_t *mib, size_t miblen, void *oldp,
                                         size_t *oldlenp, void *newp, size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_stats) {
		return ENOENT;
	}
	background_thread_stats_t s;
	background_thread_stats_read(&s);
	uint64_t v = s.run_interval_ns;
	return ctl_read_only_value(oldp, oldlenp, newp, newlen, &v, sizeof(v));
}

const ctl_node_t ctl_stats_background_thread_children[] = {
    {.name = "num_threads", .handler = stats_background_thread_num_threads_ctl},
    {.name = "num_runs", .handler = stats_background_thread_num_runs_ctl},
    {.name = "run_interval", .handler = stats_background_thread_run_interval_ctl},
    {.name = NULL},
};
