/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The statistics are true: every family of numbers is checked against what
 * the test itself allocated from a fresh arena (arenas.extend, with
 * MALLOCX_ARENA | MALLOCX_TCACHE_NONE so no cache stands in between):
 * small bins (curregs, nmalloc, ndalloc, nrequests, small.allocated),
 * large runs, huge chunks, pactive; then the totals' invariants
 * (allocated <= active <= resident <= mapped, merged view = sum of the
 * arenas), the snapshot only moving on an epoch write, and the glibc
 * extensions (mallinfo2, malloc_trim, malloc_info, mallopt).
 *
 * liballoc-specific: skipped (exit 77) when the process allocator does not
 * export mallctl.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "alloc.h"
#include "test_fill.h"
#include "test_skip.h"

__attribute__((format(printf, 1, 2))) static uint64_t
stat_read(const char *fmt, ...) {
	char name[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	/* Every stats value is 8 bytes except nthreads/narenas (unsigned). */
	uint64_t v = 0;
	size_t sz = sizeof(v);
	int err = mallctl(name, &v, &sz, NULL, 0);
	if (err == EINVAL) {
		unsigned u = 0;
		sz = sizeof(u);
		err = mallctl(name, &u, &sz, NULL, 0);
		v = u;
	}
	if (err != 0) {
		fail_msg("mallctl(\"%s\") = %d", name, err);
	}
	return v;
}

static void
refresh(void) {
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);
	assert_int_equal(mallctl("epoch", &epoch, &sz, &epoch, sizeof(epoch)), 0);
}

static unsigned
new_arena(void) {
	unsigned a;
	size_t sz = sizeof(a);
	assert_int_equal(mallctl("arenas.extend", &a, &sz, NULL, 0), 0);
	return a;
}

#define NOBJ 200

static void
test_small(void **state) {
	(void)state;
	test_skip_if_redzone_or_quarantine();
	unsigned a = new_arena();
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	unsigned nbins = (unsigned)stat_read("arenas.nbins");
	unsigned bins[] = {0, 3, 9, nbins / 2, nbins - 1};
	for (size_t k = 0; k < sizeof(bins) / sizeof(bins[0]); k++) {
		unsigned j = bins[k];
		size_t size = stat_read("arenas.bin.%u.size", j);
		size_t nregs = stat_read("arenas.bin.%u.nregs", j);
		refresh();
		size_t alloc0 = stat_read("stats.arenas.%u.small.allocated", a);
		uint64_t nmalloc0 = stat_read("stats.arenas.%u.bins.%u.nmalloc", a, j);
		uint64_t ndalloc0 = stat_read("stats.arenas.%u.bins.%u.ndalloc", a, j);
		uint64_t nreq0 = stat_read("stats.arenas.%u.bins.%u.nrequests", a, j);
		uint64_t snmalloc0 = stat_read("stats.arenas.%u.small.nmalloc", a);
		assert_int_equal(stat_read("stats.arenas.%u.bins.%u.curregs", a, j), 0);
		void *ps[NOBJ];
		for (int i = 0; i < NOBJ; i++) {
			ps[i] = mallocx(size, flags);
			assert_non_null(ps[i]);
		}
		refresh();
		assert_int_equal(stat_read("stats.arenas.%u.bins.%u.curregs", a, j), NOBJ);
		assert_int_equal(stat_read("stats.arenas.%u.small.allocated", a),
		                 alloc0 + NOBJ * size);
		assert_int_equal(stat_read("stats.arenas.%u.bins.%u.nmalloc", a, j) - nmalloc0,
		                 NOBJ);
		assert_int_equal(stat_read("stats.arenas.%u.bins.%u.nrequests", a, j) - nreq0,
		                 NOBJ);
		assert_int_equal(stat_read("stats.arenas.%u.small.nmalloc", a) - snmalloc0, NOBJ);
		size_t curruns = stat_read("stats.arenas.%u.bins.%u.curruns", a, j);
		assert_int_equal(curruns, (NOBJ + nregs - 1) / nregs);
		for (int i = 0; i < NOBJ; i++) {
			dallocx(ps[i], MALLOCX_TCACHE_NONE);
		}
		refresh();
		assert_int_equal(stat_read("stats.arenas.%u.bins.%u.curregs", a, j), 0);
		assert_int_equal(stat_read("stats.arenas.%u.small.allocated", a), alloc0);
		assert_int_equal(stat_read("stats.arenas.%u.bins.%u.ndalloc", a, j) - ndalloc0,
		                 NOBJ);
	}
}

static void
test_large(void **state) {
	(void)state;
	test_skip_if_redzone_or_quarantine();
	unsigned a = new_arena();
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	unsigned nlruns = (unsigned)stat_read("arenas.nlruns");
	size_t page = stat_read("arenas.page");
	unsigned classes[] = {0, 5, nlruns - 1};
	for (size_t k = 0; k < 3; k++) {
		unsigned j = classes[k];
		size_t size = stat_read("arenas.lrun.%u.size", j);
		int n = 6;
		refresh();
		size_t alloc0 = stat_read("stats.arenas.%u.large.allocated", a);
		size_t pactive0 = stat_read("stats.arenas.%u.pactive", a);
		uint64_t nmalloc0 = stat_read("stats.arenas.%u.lruns.%u.nmalloc", a, j);
		uint64_t nreq0 = stat_read("stats.arenas.%u.large.nrequests", a);
		void *ps[6];
		for (int i = 0; i < n; i++) {
			ps[i] = mallocx(size, flags);
			assert_non_null(ps[i]);
		}
		refresh();
		assert_int_equal(stat_read("stats.arenas.%u.lruns.%u.curruns", a, j), n);
		assert_int_equal(stat_read("stats.arenas.%u.lruns.%u.nmalloc", a, j) - nmalloc0, n);
		assert_int_equal(stat_read("stats.arenas.%u.large.nrequests", a) - nreq0, n);
		assert_int_equal(stat_read("stats.arenas.%u.large.allocated", a),
		                 alloc0 + n * size);
		assert_int_equal(stat_read("stats.arenas.%u.pactive", a),
		                 pactive0 + n * size / page);
		for (int i = 0; i < n; i++) {
			dallocx(ps[i], MALLOCX_TCACHE_NONE);
		}
		refresh();
		assert_int_equal(stat_read("stats.arenas.%u.lruns.%u.curruns", a, j), 0);
		assert_int_equal(stat_read("stats.arenas.%u.large.allocated", a), alloc0);
		assert_int_equal(stat_read("stats.arenas.%u.lruns.%u.ndalloc", a, j), nmalloc0 + n);
		assert_int_equal(stat_read("stats.arenas.%u.pactive", a), pactive0);
	}
}

static void
test_huge(void **state) {
	(void)state;
	unsigned a = new_arena();
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	size_t page = stat_read("arenas.page");
	for (unsigned j = 0; j < 5; j += 2) {
		size_t size = stat_read("arenas.hchunk.%u.size", j);
		int n = 3;
		refresh();
		assert_int_equal(stat_read("stats.arenas.%u.hchunks.%u.curhchunks", a, j), 0);
		size_t pactive0 = stat_read("stats.arenas.%u.pactive", a);
		uint64_t nmalloc0 = stat_read("stats.arenas.%u.huge.nmalloc", a);
		void *ps[3];
		for (int i = 0; i < n; i++) {
			ps[i] = mallocx(size, flags);
			assert_non_null(ps[i]);
		}
		refresh();
		assert_int_equal(stat_read("stats.arenas.%u.hchunks.%u.curhchunks", a, j), n);
		assert_int_equal(stat_read("stats.arenas.%u.hchunks.%u.nrequests", a, j), n);
		assert_int_equal(stat_read("stats.arenas.%u.huge.allocated", a), n * size);
		assert_int_equal(stat_read("stats.arenas.%u.huge.nmalloc", a) - nmalloc0, n);
		assert_int_equal(stat_read("stats.arenas.%u.pactive", a),
		                 pactive0 + n * size / page);
		assert_true(stat_read("stats.arenas.%u.mapped", a) >= n * size);
		for (int i = 0; i < n; i++) {
			dallocx(ps[i], MALLOCX_TCACHE_NONE);
		}
		refresh();
		assert_int_equal(stat_read("stats.arenas.%u.hchunks.%u.curhchunks", a, j), 0);
		assert_int_equal(stat_read("stats.arenas.%u.hchunks.%u.ndalloc", a, j), n);
		assert_int_equal(stat_read("stats.arenas.%u.huge.allocated", a), 0);
	}
}

/* Per-arena metadata: a new arena's own struct is counted at once; its
 * first chunk adds the chunk header to metadata.mapped, and small runs add
 * run descriptors. */
static void
test_arena_metadata(void **state) {
	(void)state;
	unsigned a = new_arena();
	refresh();
	size_t alloc0 = stat_read("stats.arenas.%u.metadata.allocated", a);
	assert_true(alloc0 > 0);
	assert_int_equal(stat_read("stats.arenas.%u.metadata.mapped", a), 0);
	void *p = mallocx(64, MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE);
	assert_non_null(p);
	refresh();
	size_t page = stat_read("arenas.page");
	size_t hdr = stat_read("stats.arenas.%u.metadata.mapped", a);
	assert_true(hdr > 0 && hdr % page == 0);
	assert_true(stat_read("stats.arenas.%u.metadata.allocated", a) > alloc0);
	/* The merged view sums the arenas. */
	size_t narenas = stat_read("arenas.narenas");
	size_t sum = 0;
	for (unsigned i = 0; i < narenas; i++) {
		char name[64];
		snprintf(name, sizeof(name), "stats.arenas.%u.metadata.mapped", i);
		size_t v, len = sizeof(v);
		if (mallctl(name, &v, &len, NULL, 0) == 0) {
			sum += v;
		}
	}
	assert_int_equal(stat_read("stats.arenas.%u.metadata.mapped", (unsigned)narenas), sum);
	dallocx(p, MALLOCX_TCACHE_NONE);
}

/* stats.cactive is a live counter: it moves with every allocation of whole
 * pages, without an epoch refresh, and agrees with stats.active after one. */
static void
test_cactive(void **state) {
	(void)state;
	size_t *cactive;
	size_t len = sizeof(cactive);
	assert_int_equal(mallctl("stats.cactive", &cactive, &len, NULL, 0), 0);
	assert_non_null(cactive);
	size_t huge = stat_read("arenas.hchunk.%u.size", 0);
	size_t before = *cactive;
	void *p = mallocx(huge, MALLOCX_TCACHE_NONE);
	assert_non_null(p);
	/* Other threads of this test program are idle: the delta is ours. */
	assert_int_equal(*cactive - before, huge);
	refresh();
	assert_int_equal(stat_read("stats.active"), *cactive);
	dallocx(p, MALLOCX_TCACHE_NONE);
	assert_int_equal(*cactive, before);
}

static void
test_totals(void **state) {
	(void)state;
	void *keep = malloc(5 << 20);
	assert_non_null(keep);
	refresh();
	size_t allocated = stat_read("stats.allocated");
	size_t active = stat_read("stats.active");
	size_t resident = stat_read("stats.resident");
	size_t mapped = stat_read("stats.mapped");
	size_t metadata = stat_read("stats.metadata");
	assert_true(metadata > 0);
	assert_true(allocated >= (5u << 20));
	assert_true(allocated <= active);
	assert_true(active <= resident);
	assert_true(resident <= mapped);
	stat_read("stats.retained");

	/* The merged view is the sum of the arenas. */
	unsigned n = (unsigned)stat_read("arenas.narenas");
	static const char *const fields[] = {
	    "small.allocated",
	    "small.nmalloc",
	    "large.allocated",
	    "large.nrequests",
	    "huge.allocated",
	    "pactive",
	    "pdirty",
	    "mapped",
	    "bins.0.curregs",
	    "lruns.0.nmalloc",
	    "hchunks.0.nmalloc",
	    "nthreads",
	};
	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
		uint64_t sum = 0;
		for (unsigned i = 0; i < n; i++) {
			char name[96];
			snprintf(name, sizeof(name), "stats.arenas.%u.nthreads", i);
			unsigned u;
			size_t sz = sizeof(u);
			if (mallctl(name, &u, &sz, NULL, 0) == ENOENT) {
				continue;
			}
			sum += stat_read("stats.arenas.%u.%s", i, fields[f]);
		}
		assert_int_equal(stat_read("stats.arenas.%u.%s", n, fields[f]), sum);
	}
	uint64_t small = stat_read("stats.arenas.%u.small.allocated", n);
	uint64_t large = stat_read("stats.arenas.%u.large.allocated", n);
	uint64_t huge = stat_read("stats.arenas.%u.huge.allocated", n);
	assert_int_equal(allocated, small + large + huge);
	assert_int_equal(active,
	                 stat_read("stats.arenas.%u.pactive", n) * stat_read("arenas.page"));
	assert_int_equal(mapped, stat_read("stats.arenas.%u.mapped", n) + metadata);

	/* Reads do not move without an epoch write. */
	void *more = malloc(7 << 20);
	assert_non_null(more);
	assert_int_equal(stat_read("stats.allocated"), allocated);
	refresh();
	assert_true(stat_read("stats.allocated") >= allocated + (7u << 20));
	free(more);
	free(keep);
}

static void
test_glibc_ext(void **state) {
	(void)state;
	void *p = malloc(6 << 20);
	assert_non_null(p);
	struct mallinfo2 mi = mallinfo2();
	assert_true(mi.hblks >= 1);
	assert_true(mi.hblkhd >= (6u << 20));
	assert_true(mi.uordblks + mi.fordblks == mi.arena);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	struct mallinfo m = mallinfo();
#pragma GCC diagnostic pop
	assert_true(m.hblkhd >= (6 << 20));
	free(p);

	/* Dirty pages of a freed large run are released by malloc_trim. */
	void *big[8];
	for (int i = 0; i < 8; i++) {
		big[i] = malloc(256 << 10);
		memset(big[i], 7, 256 << 10);
	}
	for (int i = 0; i < 8; i++) {
		free(big[i]);
	}
	/* No cache to flush in a build without thread caches (ENOENT). */
	bool have_tcache = true;
	size_t blen = sizeof(have_tcache);
	assert_int_equal(mallctl("config.tcache", &have_tcache, &blen, NULL, 0), 0);
	assert_int_equal(mallctl("thread.tcache.flush", NULL, NULL, NULL, 0),
	                 have_tcache ? 0 : ENOENT);
	refresh();
	unsigned n = (unsigned)stat_read("arenas.narenas");
	if (stat_read("stats.arenas.%u.pdirty", n) > 0) {
		assert_int_equal(malloc_trim(0), 1);
	}
	refresh();
	assert_int_equal(stat_read("stats.arenas.%u.pdirty", n), 0);
	assert_int_equal(malloc_trim(0), 0);

	assert_int_equal(mallopt(M_ARENA_MAX, 2), 1);
	assert_int_equal(mallopt(M_MMAP_THRESHOLD, 1 << 20), 1);
	assert_int_equal(mallopt(12345, 1), 0);

	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	assert_int_equal(malloc_info(1, fp), EINVAL);
	assert_int_equal(malloc_info(0, fp), 0);
	fclose(fp);
	assert_non_null(strstr(buf, "<malloc version=\"1\">"));
	assert_non_null(strstr(buf, "</malloc>"));
	assert_non_null(strstr(buf, "<heap nr=\"0\">"));
	free(buf);
}

int
main(void) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("the process allocator has no mallctl\n");
		return 77;
	}
	bool have_stats = false;
	size_t len = sizeof(have_stats);
	if (mallctl("config.stats", &have_stats, &len, NULL, 0) != 0 || !have_stats) {
		/* Every case reads stats.*, which such a build does not have. */
		printf("built without statistics (configure --disable-stats)\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small),          cmocka_unit_test(test_large),
	    cmocka_unit_test(test_huge),           cmocka_unit_test(test_cactive),
	    cmocka_unit_test(test_totals),         cmocka_unit_test(test_glibc_ext),
	    cmocka_unit_test(test_arena_metadata),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
