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
 * test_stats_arena(prog, i, name)
 *                             stats.arenas.<i>.<name> after a refresh, for
 *                             the size_t pactive/pdirty and the uint64_t
 *                             counters (npurge, nmadvise, purged, ...)
 * test_resident_pages(prog, p, n)
 *                             how many kernel pages of [p, p + n) are
 *                             resident (mincore; p page-aligned, n at most
 *                             1,024 kernel pages)
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
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

static inline size_t
test_stats_arena(const char *prog, unsigned arena, const char *name) {
	test_stats_refresh();
	char path[96];
	snprintf(path, sizeof(path), "stats.arenas.%u.%s", arena, name);
	int err;
	size_t v = 0;
	if (strcmp(name, "pactive") == 0 || strcmp(name, "pdirty") == 0) {
		size_t sz = sizeof(v);
		err = mallctl(path, &v, &sz, NULL, 0);
	} else {
		uint64_t v64 = 0;
		size_t sz = sizeof(v64);
		err = mallctl(path, &v64, &sz, NULL, 0);
		v = (size_t)v64;
	}
	if (err != 0) {
		fprintf(stderr, "%s: FAIL: %s unreadable\n", prog, path);
		exit(1);
	}
	return v;
}

static inline size_t
test_resident_pages(const char *prog, const void *p, size_t n) {
	unsigned char vec[1024];
	size_t kpage = (size_t)sysconf(_SC_PAGESIZE);
	size_t np = n / kpage;
	if (np > sizeof(vec) || mincore((void *)p, n, vec) != 0) {
		fprintf(stderr, "%s: FAIL: mincore of %zu bytes at %p\n", prog, n, p);
		exit(1);
	}
	size_t r = 0;
	for (size_t i = 0; i < np; i++) {
		r += vec[i] & 1;
	}
	return r;
}

#endif /* TEST_STATS_H */
