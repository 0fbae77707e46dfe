/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The tail of a large class past the request (liballoc): a large run that
 * malloc carves from reused dirty pages gets the whole pages of its class
 * past the request purged, when there are at least LARGE_TAIL_PURGE_MIN (8)
 * of them, so the rounding up to the size class does not stay resident.
 *
 * Each case uses an arena of its own (arenas.create, decay_time 10 s)
 * without a thread cache, so the freed run is the only dirty one and the
 * next request reuses it. It fills a 768 KiB block, frees it, and asks again:
 *
 *   purged    513 KiB (class 640 KiB, 31 tail pages): same address, the
 *             request's pages resident (reused), the tail's not (mincore),
 *             readable as zeros and writable up to the usable size; the
 *             purge counted (stats npurge/purged), active and dirty exact
 *             (160 and 32 pages)
 *   kept      632 KiB (2 tail pages): nothing purged, the tail resident
 *   zeroed    MALLOCX_ZERO of 513 KiB: every usable byte zero, nothing
 *             purged (the memset would fault the tail in again)
 *   junk      in a child with junk:true: every usable byte of 513 KiB
 *             junk (0xa5): the fill options keep the whole class
 *
 * and how freed runs of 128 KiB and more are reused by their resident
 * length (doc/design.md, "Reuse by resident length"), each in an arena of
 * its own too:
 *
 *   resident  two 512 KiB-class blocks filled to 450 and 510 KiB and freed
 *             (kept apart, not merged): a request of 500 KiB takes the
 *             510 KiB one, 449 KiB the 450 KiB one, nothing purged, no
 *             dirty page left; the 500 KiB block freed and 449 KiB asked
 *             for again: the same run, its 15 pages resident past the
 *             request (to 510 KiB) purged (counted, not resident)
 *   merged    three adjacent 128 KiB blocks freed (three kept runs): a
 *             384 KiB request, which none of them fits alone, takes the
 *             three merged (the first one's address, no dirty page left)
 *             rather than the chunk's clean pages
 *
 * Skipped without statistics (the counts); purged needs 4 KiB pages (with
 * 64 KiB ones, --with-lg-page=16, no tail of a class below a chunk has 8
 * pages past a request), and is skipped when the process runs with a fill
 * option (junk, zero, redzone, quarantine: they write the whole class) or
 * with prof:true (a sampled block is allocated whole, prof.c). Under
 * purge_madvise:free the tail stays resident, with its old bytes, until the
 * kernel takes it: there purged checks the counts only.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <alloc.h>

#include "test_check.h"
#include "test_child.h"
#include "test_fill.h"
#include "test_skip.h"
#include "test_stats.h"

#define KiB       ((size_t)1 << 10)
#define OLD_SIZE  (768 * KiB)
#define TAIL_SIZE (513 * KiB)

/* Whether purges under this process's MALLOC_CONF are MADV_FREE only
 * (purge_madvise:free): the purged pages stay resident, with their old
 * bytes, until the kernel takes them. */
static bool
purge_lazy(void) {
	const char *madv = NULL;
	size_t len = sizeof(madv);
	return mallctl("opt.purge_madvise", &madv, &len, NULL, 0) == 0 && strcmp(madv, "free") == 0;
}

/* liballoc's page (arenas.page) and the kernel's (mincore's unit). */
static size_t page, kpage;

static unsigned
arena_new(void) {
	unsigned a = 0;
	size_t len = sizeof(a);
	assert_int_equal(mallctl("arenas.create", &a, &len, NULL, 0), 0);
	/* Freed runs stay dirty for reuse whatever MALLOC_CONF says
	 * (decay_time:0 would purge them at once). */
	char name[64];
	ssize_t decay = 10;
	snprintf(name, sizeof(name), "arena.%u.decay_time", a);
	assert_int_equal(mallctl(name, NULL, NULL, &decay, sizeof(decay)), 0);
	return a;
}

/*
 * In arena a: fills a 768 KiB block, frees it (the arena's only dirty run),
 * reads the arena's counters (when `before` is not NULL, with statistics),
 * and asks for n bytes with `flags`. Returns the new block, NULL when an
 * allocation fails; *old says where the freed one was.
 */
static char *
reuse_in(unsigned a, size_t n, int flags, char **old, size_t before[2]) {
	char *o = mallocx(OLD_SIZE, MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE);
	if (o == NULL) {
		return NULL;
	}
	memset(o, 0x5a, OLD_SIZE);
	dallocx(o, MALLOCX_TCACHE_NONE);
	*old = o;
	if (before != NULL) {
		before[0] = test_stats_arena("large_tail", a, "npurge");
		before[1] = test_stats_arena("large_tail", a, "purged");
	}
	return mallocx(n, MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE | flags);
}

/* reuse_in for a cmocka case, in an arena of its own: skips without
 * statistics, checks that the freed run was reused. */
static char *
reuse(size_t n, int flags, unsigned *a, size_t before[2]) {
	if (!test_stats_enabled()) {
		print_message("# built without statistics: skipped\n");
		skip();
	}
	*a = arena_new();
	char *old = NULL;
	char *p = reuse_in(*a, n, flags, &old, before);
	assert_non_null(p);
	CHECK(p == old, "the dirty run was not reused: %p, freed %p", (void *)p, (void *)old);
	return p;
}

static void
test_purged(void **state) {
	(void)state;
	if (page != 4096) {
		print_message("# pages of %zu bytes: no tail of 8 pages below a chunk: skipped\n",
		              page);
		skip();
	}
	if (test_fill_active() || test_prof_on()) {
		print_message("# fill options or prof:true keep the whole class: skipped\n");
		skip();
	}
	unsigned a;
	size_t before[2];
	char *p = reuse(TAIL_SIZE, 0, &a, before);
	size_t usize = sallocx(p, 0);
	assert_int_equal(usize, 640 * KiB);
	size_t used = (TAIL_SIZE + page - 1) / page * page;
	size_t tail = usize - used;
	CHECK(test_resident_pages("large_tail", p, used) == used / kpage,
	      "request pages resident: %zu of %zu", test_resident_pages("large_tail", p, used),
	      used / kpage);
	/* purge_madvise:free leaves the tail's pages resident, and their old
	 * bytes readable, until the kernel takes them: only the counts hold. */
	bool lazy = purge_lazy();
	CHECK(lazy || test_resident_pages("large_tail", p + used, tail) == 0,
	      "tail pages resident: %zu of %zu", test_resident_pages("large_tail", p + used, tail),
	      tail / kpage);
	CHECK(test_stats_arena("large_tail", a, "npurge") == before[0] + 1, "npurge %zu, was %zu",
	      test_stats_arena("large_tail", a, "npurge"), before[0]);
	CHECK(test_stats_arena("large_tail", a, "purged") == before[1] + tail / page,
	      "purged %zu, was %zu", test_stats_arena("large_tail", a, "purged"), before[1]);
	CHECK(test_stats_arena("large_tail", a, "pactive") == usize / page, "pactive %zu",
	      test_stats_arena("large_tail", a, "pactive"));
	CHECK(test_stats_arena("large_tail", a, "pdirty") == (OLD_SIZE - usize) / page,
	      "pdirty %zu", test_stats_arena("large_tail", a, "pdirty"));
	for (size_t i = used; i < usize && !lazy; i++) {
		CHECK(p[i] == 0, "tail byte %zu is %#x", i, (unsigned char)p[i]);
	}
	memset(p, 0x33, usize);
	for (size_t i = 0; i < usize; i += 4093) {
		CHECK(p[i] == 0x33, "byte %zu lost", i);
	}
	dallocx(p, MALLOCX_TCACHE_NONE);
}

static void
test_kept(void **state) {
	(void)state;
	unsigned a;
	size_t before[2];
	size_t n = 632 * KiB;
	char *p = reuse(n, 0, &a, before);
	size_t usize = sallocx(p, 0);
	CHECK(test_stats_arena("large_tail", a, "npurge") == before[0],
	      "a tail of %zu pages was purged", (usize - n) / page);
	CHECK(test_resident_pages("large_tail", p, usize) == usize / kpage,
	      "resident %zu of %zu pages", test_resident_pages("large_tail", p, usize),
	      usize / kpage);
	dallocx(p, MALLOCX_TCACHE_NONE);
}

static void
test_zeroed(void **state) {
	(void)state;
	unsigned a;
	size_t before[2];
	char *p = reuse(TAIL_SIZE, MALLOCX_ZERO, &a, before);
	size_t usize = sallocx(p, 0);
	for (size_t i = 0; i < usize; i++) {
		CHECK(p[i] == 0, "byte %zu of %zu is %#x", i, usize, (unsigned char)p[i]);
	}
	CHECK(test_stats_arena("large_tail", a, "npurge") == before[0],
	      "calloc'd run's tail purged");
	dallocx(p, MALLOCX_TCACHE_NONE);
}

/* Skips a case that counts pages of 4 KiB classes, when the pages are
 * not 4 KiB or something writes or allocates the whole class. */
static void
skip_unless_tails(void) {
	if (!test_stats_enabled()) {
		print_message("# built without statistics: skipped\n");
		skip();
	}
	if (page != 4096) {
		print_message("# pages of %zu bytes: skipped\n", page);
		skip();
	}
	if (test_fill_active() || test_prof_on()) {
		print_message("# fill options or prof:true keep the whole class: skipped\n");
		skip();
	}
}

static char *
filled(unsigned a, size_t n) {
	char *p = mallocx(n, MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE);
	assert_non_null(p);
	memset(p, 0x6b, n);
	return p;
}

static void
test_resident(void **state) {
	(void)state;
	skip_unless_tails();
	unsigned a = arena_new();
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	char *x = filled(a, 450 * KiB);
	char *guard1 = filled(a, 64 * KiB);
	char *y = filled(a, 510 * KiB);
	char *guard2 = filled(a, 64 * KiB);
	assert_int_equal(sallocx(x, 0), 512 * KiB);
	assert_int_equal(sallocx(y, 0), 512 * KiB);
	dallocx(x, MALLOCX_TCACHE_NONE);
	dallocx(y, MALLOCX_TCACHE_NONE);
	size_t purged = test_stats_arena("large_tail", a, "purged");
	CHECK(test_stats_arena("large_tail", a, "pdirty") == 2 * 128, "pdirty %zu",
	      test_stats_arena("large_tail", a, "pdirty"));

	/* Each request takes the run whose resident length is nearest. */
	char *p = mallocx(500 * KiB, flags);
	CHECK(p == y, "500 KiB at %p, not the 510 KiB block's run %p", (void *)p, (void *)y);
	char *q = mallocx(449 * KiB, flags);
	CHECK(q == x, "449 KiB at %p, not the 450 KiB block's run %p", (void *)q, (void *)x);
	CHECK(test_stats_arena("large_tail", a, "purged") == purged, "purged %zu pages",
	      test_stats_arena("large_tail", a, "purged") - purged);
	CHECK(test_stats_arena("large_tail", a, "pdirty") == 0, "pdirty %zu",
	      test_stats_arena("large_tail", a, "pdirty"));

	/* The run was resident to 510 KiB (128 pages: the 3 past the 500 KiB
	 * request were too few to purge), 449 KiB asked for (113 pages): the
	 * 15 resident pages past the request are purged. */
	memset(p, 0x6c, 500 * KiB);
	dallocx(p, MALLOCX_TCACHE_NONE);
	char *r = mallocx(449 * KiB, flags);
	CHECK(r == y, "449 KiB at %p, not the freed run %p", (void *)r, (void *)y);
	CHECK(test_stats_arena("large_tail", a, "purged") == purged + 15, "purged %zu pages",
	      test_stats_arena("large_tail", a, "purged") - purged);
	size_t used = 113 * page;
	CHECK(purge_lazy() || test_resident_pages("large_tail", r + used, 512 * KiB - used) == 0,
	      "tail pages resident: %zu",
	      test_resident_pages("large_tail", r + used, 512 * KiB - used));
	size_t usize = sallocx(r, 0);
	memset(r, 0x6d, usize);
	dallocx(r, MALLOCX_TCACHE_NONE);
	dallocx(q, MALLOCX_TCACHE_NONE);
	dallocx(guard1, MALLOCX_TCACHE_NONE);
	dallocx(guard2, MALLOCX_TCACHE_NONE);
}

static void
test_merged(void **state) {
	(void)state;
	skip_unless_tails();
	unsigned a = arena_new();
	char *b[3];
	for (int i = 0; i < 3; i++) {
		b[i] = filled(a, 128 * KiB);
	}
	char *guard = filled(a, 64 * KiB);
	CHECK(b[1] == b[0] + 128 * KiB && b[2] == b[1] + 128 * KiB, "blocks not adjacent: %p %p %p",
	      (void *)b[0], (void *)b[1], (void *)b[2]);
	for (int i = 0; i < 3; i++) {
		dallocx(b[i], MALLOCX_TCACHE_NONE);
	}
	CHECK(test_stats_arena("large_tail", a, "pdirty") == 3 * 32, "pdirty %zu",
	      test_stats_arena("large_tail", a, "pdirty"));
	char *p = mallocx(384 * KiB, MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE);
	CHECK(p == b[0], "384 KiB at %p, not the merged runs at %p", (void *)p, (void *)b[0]);
	CHECK(test_stats_arena("large_tail", a, "pdirty") == 0, "pdirty %zu",
	      test_stats_arena("large_tail", a, "pdirty"));
	memset(p, 0x6e, 384 * KiB);
	dallocx(p, MALLOCX_TCACHE_NONE);
	dallocx(guard, MALLOCX_TCACHE_NONE);
}

static int
child_junk(void) {
	unsigned a = 0;
	size_t len = sizeof(a);
	if (mallctl("arenas.create", &a, &len, NULL, 0) != 0) {
		return 2;
	}
	char *old = NULL;
	unsigned char *p = (unsigned char *)reuse_in(a, TAIL_SIZE, 0, &old, NULL);
	if (p == NULL) {
		return 3;
	}
	size_t usize = sallocx(p, 0);
	for (size_t i = 0; i < usize; i++) {
		if (p[i] != 0xa5) {
			fprintf(stderr, "byte %zu of %zu is %#x\n", i, usize, p[i]);
			return 5;
		}
	}
	dallocx(p, MALLOCX_TCACHE_NONE);
	return 0;
}

static void
test_junk(void **state) {
	(void)state;
	bool fill = false;
	size_t len = sizeof(fill);
	if (mallctl("config.fill", &fill, &len, NULL, 0) != 0 || !fill ||
	    test_child_under_valgrind()) {
		print_message("# needs config.fill and a child process: skipped\n");
		skip();
	}
	test_child_t c;
	assert_true(test_child_run("junk:true", "junk", &c));
	CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
	      "child status %#x (exit %d), stderr: %s", c.status, WEXITSTATUS(c.status), c.err);
}

int
main(int argc, char **argv) {
	size_t len;
	kpage = (size_t)sysconf(_SC_PAGESIZE);
	len = sizeof(page);
	if (mallctl("arenas.page", &page, &len, NULL, 0) != 0) {
		return 1;
	}
	if (argc == 3 && strcmp(argv[1], "child") == 0) {
		return strcmp(argv[2], "junk") == 0 ? child_junk() : 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_purged),   cmocka_unit_test(test_kept),
	    cmocka_unit_test(test_zeroed),   cmocka_unit_test(test_junk),
	    cmocka_unit_test(test_resident), cmocka_unit_test(test_merged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
