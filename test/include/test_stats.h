/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helper: reading liballoc's statistics through mallctl, for the
 * stress tests that link against liballoc (they include "alloc.h" and have
 * checked that the process allocator exports mallctl before calling these).
 *
 * test_stats_enabled()        config.stats readable and true
 * test_stats_refresh()        "epoch" written, so stats.* are current
 * test_stats_allocated(prog)  stats.allocated after a refresh
 * test_stats_bound_threads(prog)
 *                             threads bound to any arena, from the merged
 *                             stats.arenas.<narenas>.nthreads as of the
 *                             last refresh
 *
 * The functions taking `prog` exit(1) with "prog: FAIL: ... unreadable"
 * on stderr when the node cannot be read. Header-only.
 */
#ifndef TEST_STATS_H
#define TEST_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"

static inline bool
test_stats_enabled(void) {
	bool on = false;
	size_t sz = sizeof(on);
	return mallctl("config.stats", &on, &sz, NULL, 0) == 0 && on;
}

static inline void
test_stats_refresh(void) {
	uint64_t e = 1;
	size_t sz = sizeof(e);
	mallctl("epoch", &e, &sz, &e, sizeof(e));
}

static inline size_t
test_stats_allocated(const char *prog) {
	test_stats_refresh();
	size_t v = 0;
	size_t sz = sizeof(v);
	if (mallctl("stats.allocated", &v, &sz, NULL, 0) != 0) {
		fprintf(stderr, "%s: FAIL: stats.allocated unreadable\n", prog);
		exit(1);
	}
	return v;
}

static inline unsigned
test_stats_bound_threads(const char *prog) {
	unsigned n = 0, nthreads = 0;
	size_t sz = sizeof(n);
	mallctl("arenas.narenas", &n, &sz, NULL, 0);
	char name[64];
	snprintf(name, sizeof(name), "stats.arenas.%u.nthreads", n);
	sz = sizeof(nthreads);
	if (mallctl(name, &nthreads, &sz, NULL, 0) != 0) {
		fprintf(stderr, "%s: FAIL: %s unreadable\n", prog, name);
		exit(1);
	}
	return nthreads;
}

#endif /* TEST_STATS_H */
