/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Reallocating huge blocks (liballoc): growing a block by realloc moves
 * its pages (mremap) instead of copying them, so the old copies do not stay
 * resident, and shrinking gives the tail back at once.
 *
 * What a program relies on: contents kept across growing and shrinking
 * huge reallocations, rallocx with MALLOCX_ZERO zeroes the grown bytes
 * (also over reused dirty memory), MALLOCX_ALIGN is kept, and growing a
 * block step by step to N MiB keeps stats.resident and stats.mapped near N
 * (copying kept every old copy: about 3N for 1.5x steps). An arena with
 * its own chunk hooks gets its memory only through them: its blocks are
 * copied, and the old copy is purged through the purge hook. Under
 * opt.max_bytes no reallocation maps past the cap, and one that would
 * leaves the block intact.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
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

#define MiB ((size_t)1 << 20)

static size_t
ctl_size(const char *name) {
	uint64_t epoch = 1;
	assert_int_equal(mallctl("epoch", NULL, NULL, &epoch, sizeof(epoch)), 0);
	size_t v = 0;
	size_t len = sizeof(v);
	assert_int_equal(mallctl(name, &v, &len, NULL, 0), 0);
	return v;
}

static bool
have_stats(void) {
	bool stats = false;
	size_t len = sizeof(stats);
	return mallctl("config.stats", &stats, &len, NULL, 0) == 0 && stats;
}

/* Contents survive growing 2 -> 48 MiB in uneven steps and shrinking by
 * halves back to 1 KiB; every usable byte is written each time. */
static void
test_contents(void **state) {
	(void)state;
	unsigned seed = 7;
	size_t n = 2 * MiB;
	char *p = malloc(test_opaque(n));
	assert_non_null(p);
	test_pattern_fill(p, n, seed);
	while (n < 48 * MiB) {
		size_t next = n + n / 2 + 4096 * (n % 7) + 13;
		char *q = realloc(p, test_opaque(next));
		CHECK(q != NULL, "realloc %zu -> %zu failed", n, next);
		CHECK(malloc_usable_size(q) >= next, "usable %zu < %zu", malloc_usable_size(q),
		      next);
		size_t bad = test_pattern_mismatch(q, n, seed);
		CHECK(bad == n, "grow %zu -> %zu lost byte %zu", n, next, bad);
		seed++;
		n = next;
		test_pattern_fill(q, n, seed);
		p = q;
	}
	while (n > 1024) {
		size_t next = n / 2;
		char *q = realloc(p, test_opaque(next));
		CHECK(q != NULL, "realloc %zu -> %zu failed", n, next);
		size_t bad = test_pattern_mismatch(q, next, seed);
		CHECK(bad == next, "shrink %zu -> %zu lost byte %zu", n, next, bad);
		n = next;
		p = q;
	}
	free(p);
}

/* rallocx(MALLOCX_ZERO) zeroes the grown bytes, also when the cache holds
 * dirty memory it may reuse; the prefix is kept. */
static void
test_zero_tail(void **state) {
	(void)state;
	/* Dirty memory for the cache. */
	for (int i = 0; i < 4; i++) {
		void *d[3];
		for (int j = 0; j < 3; j++) {
			d[j] = malloc(test_opaque((size_t)(4 + 4 * j) * MiB));
			assert_non_null(d[j]);
			memset(d[j], 0xee, (size_t)(4 + 4 * j) * MiB);
		}
		for (int j = 0; j < 3; j++) {
			free(d[j]);
		}
	}
	size_t n = 2 * MiB;
	char *p = mallocx(n, MALLOCX_ZERO);
	assert_non_null(p);
	test_pattern_fill(p, n, 3);
	for (size_t next = 3 * MiB; next <= 24 * MiB; next += next / 2) {
		char *q = rallocx(p, next, MALLOCX_ZERO);
		CHECK(q != NULL, "rallocx %zu -> %zu failed", n, next);
		CHECK(test_pattern_intact(q, n, 3), "rallocx %zu -> %zu lost the prefix", n, next);
		size_t usize = sallocx(q, 0);
		for (size_t i = n; i < usize; i += 512) {
			CHECK(q[i] == 0, "byte %zu of %zu not zero after growing from %zu", i,
			      usize, n);
		}
		CHECK(q[usize - 1] == 0, "last byte not zero");
		/* Every usable byte is the program's: dirty them all, so only
		 * the kept prefix may carry data into the next step. */
		n = usize;
		p = q;
		test_pattern_fill(p, n, 3);
	}
	free(p);
}

/* MALLOCX_ALIGN: a growing huge block stays aligned as asked. */
static void
test_alignment(void **state) {
	(void)state;
	for (unsigned lg = 21; lg <= 24; lg++) {
		size_t align = (size_t)1 << lg;
		size_t n = 3 * MiB;
		char *p = mallocx(n, MALLOCX_LG_ALIGN(lg));
		assert_non_null(p);
		CHECK(((uintptr_t)p & (align - 1)) == 0, "%p not aligned to %zu", (void *)p, align);
		test_pattern_fill(p, n, lg);
		for (size_t next = 5 * MiB; next <= 40 * MiB; next *= 2) {
			char *q = rallocx(p, next, MALLOCX_LG_ALIGN(lg));
			CHECK(q != NULL, "rallocx %zu -> %zu failed", n, next);
			CHECK(((uintptr_t)q & (align - 1)) == 0, "%p not aligned to %zu", (void *)q,
			      align);
			CHECK(test_pattern_intact(q, n, lg), "lost contents %zu -> %zu", n, next);
			test_pattern_fill(q, next, lg);
			n = next;
			p = q;
		}
		dallocx(p, 0);
	}
}

/*
 * Growing by 1.5x from 1 KiB to N MiB (writing every byte, as a vector
 * does): stats.resident and stats.mapped stay within N + 8 MiB of where
 * they started (copying made them about 3N). Shrinking back by halves to
 * 2 MiB then gives the tails back at once: resident falls to within
 * 16 MiB of the start.
 */
static void
test_growth_bounded(void **state) {
	(void)state;
	if (!have_stats()) {
		print_message("# built without statistics: skipped\n");
		skip();
	}
	const size_t N = 48 * MiB;
	/* The quarantine holds freed blocks up to its size. */
	size_t slack = 8 * MiB + (test_fill_quarantine() ? 2 * MiB : 0);
	size_t base_res = ctl_size("stats.resident");
	size_t base_map = ctl_size("stats.mapped");
	size_t max_res = base_res;
	size_t max_map = base_map;
	size_t cap = 1024;
	char *p = malloc(cap);
	assert_non_null(p);
	memset(p, 1, cap);
	while (cap < N) {
		size_t next = cap + cap / 2;
		if (next > N) {
			next = N;
		}
		char *q = realloc(p, next);
		CHECK(q != NULL, "realloc %zu -> %zu failed", cap, next);
		CHECK(q[0] == 1 && q[cap - 1] == 1, "contents lost at %zu", cap);
		memset(q + cap, 1, next - cap);
		cap = next;
		p = q;
		size_t r = ctl_size("stats.resident");
		size_t m = ctl_size("stats.mapped");
		max_res = r > max_res ? r : max_res;
		max_map = m > max_map ? m : max_map;
	}
	CHECK(max_res <= base_res + N + slack,
	      "stats.resident grew by %zu MiB for a %zu MiB block (bound %zu MiB)",
	      (max_res - base_res) / MiB, N / MiB, (N + slack) / MiB);
	CHECK(max_map <= base_map + N + slack,
	      "stats.mapped grew by %zu MiB for a %zu MiB block (bound %zu MiB)",
	      (max_map - base_map) / MiB, N / MiB, (N + slack) / MiB);
	while (cap > 2 * MiB) {
		cap /= 2;
		p = realloc(p, cap);
		assert_non_null(p);
		CHECK(p[0] == 1 && p[cap - 1] == 1, "contents lost shrinking to %zu", cap);
	}
	size_t res = ctl_size("stats.resident");
	CHECK(res <= base_res + 2 * MiB + slack,
	      "stats.resident still %zu MiB above the start after shrinking to 2 MiB",
	      (res - base_res) / MiB);
	free(p);
}

/* Whether this kernel moves a range of several mappings in one same-size
 * mremap (Linux 6.17 on), as liballoc's pages_can_move_parts asks. */
static bool
kernel_moves_parts(void) {
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	char *src = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *dest = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(src != MAP_FAILED && dest != MAP_FAILED);
	assert_int_equal(mprotect(src + pg, pg, PROT_READ), 0);
	bool yes = mremap(src, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, dest) == dest;
	if (!yes) {
		munmap(src, 2 * pg);
	}
	munmap(dest, 2 * pg);
	return yes;
}

/*
 * A huge block that no freed span holds alone is made of freed (dirty)
 * spans, their pages moved rather than new ones faulted in: with 6 and
 * 10 MiB freed apart, a 14 MiB block makes the resident set grow by far
 * less than 14 MiB (by the 14 MiB without it). Then it behaves as any block:
 * every byte writable, contents kept and the grown bytes zero when
 * rallocx(MALLOCX_ZERO) grows it to 30 MiB (a block of several mappings),
 * and kept when shrinking. The resident check needs statistics, the freed
 * spans still dirty (not under decay_time:0 or a quarantine holding them)
 * and a kernel that moves ranges of several mappings (on others the block
 * is fresh).
 */
static void
test_reuse_dirty(void **state) {
	(void)state;
	unsigned ind;
	size_t len = sizeof(ind);
	assert_int_equal(mallctl("arenas.extend", &ind, &len, NULL, 0), 0);
	int flags = MALLOCX_ARENA(ind) | MALLOCX_TCACHE_NONE;
	char *a = mallocx(6 * MiB, flags);
	char *sep = mallocx(2 * MiB, flags);
	char *b = mallocx(10 * MiB, flags);
	assert_true(a != NULL && sep != NULL && b != NULL);
	memset(a, 0xaa, 6 * MiB);
	memset(b, 0xbb, 10 * MiB);
	memset(sep, 0x55, 2 * MiB);
	dallocx(a, flags);
	dallocx(b, flags);
	/* The freed spans are held dirty unless the arena purged them at once
	 * (decay_time:0) or the quarantine holds them. */
	size_t held = 0;
	size_t before = 0;
	if (have_stats()) {
		char name[64];
		snprintf(name, sizeof(name), "stats.arenas.%u.pdirty", ind);
		size_t page = 0;
		size_t plen = sizeof(page);
		assert_int_equal(mallctl("arenas.page", &page, &plen, NULL, 0), 0);
		held = ctl_size(name) * page;
		before = ctl_size("stats.resident");
	}
	size_t n = 14 * MiB;
	char *p = mallocx(n, flags);
	assert_non_null(p);
	test_pattern_fill(p, n, 11);
	if (held >= 16 * MiB && kernel_moves_parts()) {
		size_t after = ctl_size("stats.resident");
		CHECK(after <= before + 4 * MiB,
		      "stats.resident grew by %zu MiB for a 14 MiB block over 16 MiB freed",
		      (after - before) / MiB);
	}
	CHECK(test_pattern_intact(p, n, 11), "14 MiB block lost its contents");
	char *q = rallocx(p, 30 * MiB, flags | MALLOCX_ZERO);
	CHECK(q != NULL, "rallocx 14 -> 30 MiB failed");
	CHECK(test_pattern_intact(q, n, 11), "growing to 30 MiB lost the prefix");
	size_t usize = sallocx(q, 0);
	for (size_t i = n; i < usize; i += 512) {
		CHECK(q[i] == 0, "byte %zu of %zu not zero after growing from 14 MiB", i, usize);
	}
	q = rallocx(q, 8 * MiB, flags);
	CHECK(q != NULL && test_pattern_intact(q, 8 * MiB, 11),
	      "shrinking to 8 MiB lost the prefix");
	for (size_t i = 0; i < 2 * MiB; i += 4096) {
		CHECK(sep[i] == 0x55, "the block between was changed at %zu", i);
	}
	dallocx(q, flags);
	dallocx(sep, flags);
}

/* ---- an arena whose chunk hooks wrap the defaults ---- */

static chunk_hooks_t dflt;
static unsigned n_alloc, n_purge;

static void *
wrap_alloc(void *chunk, size_t size, size_t alignment, bool *zero, bool *commit, unsigned ind) {
	n_alloc++;
	return dflt.alloc(chunk, size, alignment, zero, commit, ind);
}

static bool
wrap_purge(void *chunk, size_t size, size_t offset, size_t length, unsigned ind) {
	n_purge++;
	return dflt.purge(chunk, size, offset, length, ind);
}

/* Blocks of an arena with hooks are copied: contents and stats right,
 * new memory through the alloc hook, the old copies purged through the
 * purge hook. */
static void
test_hooks_copy(void **state) {
	(void)state;
	unsigned a;
	size_t len = sizeof(a);
	assert_int_equal(mallctl("arenas.extend", &a, &len, NULL, 0), 0);
	char name[64];
	snprintf(name, sizeof(name), "arena.%u.chunk_hooks", a);
	len = sizeof(dflt);
	assert_int_equal(mallctl(name, &dflt, &len, NULL, 0), 0);
	chunk_hooks_t mine = dflt;
	mine.alloc = wrap_alloc;
	mine.purge = wrap_purge;
	assert_int_equal(mallctl(name, NULL, NULL, &mine, sizeof(mine)), 0);

	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	size_t n = 2 * MiB;
	char *p = mallocx(n, flags);
	assert_non_null(p);
	test_pattern_fill(p, n, 11);
	unsigned allocs = n_alloc;
	unsigned purges = n_purge;
	for (size_t next = 3 * MiB; next <= 32 * MiB; next += next / 2) {
		char *q = rallocx(p, next, flags);
		CHECK(q != NULL, "rallocx %zu -> %zu failed", n, next);
		CHECK(test_pattern_intact(q, n, 11), "lost contents %zu -> %zu", n, next);
		test_pattern_fill(q, next, 11);
		n = next;
		p = q;
	}
	CHECK(n_alloc > allocs, "no memory came through the alloc hook");
	/* A moving realloc purges the old copy at once, except under the fill
	 * options, whose frees take the ordinary path (alloc.c): there the old
	 * copies wait for decay, and some growth happens in place anyway. */
	if (!test_fill_active()) {
		CHECK(n_purge > purges, "old copies were not purged through the hook");
	}
	if (have_stats()) {
		snprintf(name, sizeof(name), "stats.arenas.%u.huge.allocated", a);
		size_t huge = ctl_size(name);
		CHECK(huge == sallocx(p, 0), "huge.allocated %zu, block %zu", huge, sallocx(p, 0));
	}
	dallocx(p, flags);
	snprintf(name, sizeof(name), "arena.%u.chunk_hooks", a);
	assert_int_equal(mallctl(name, NULL, NULL, &dflt, sizeof(dflt)), 0);
}

/* ---- opt.max_bytes (in a child) ---- */

#define CAP (64 * MiB)

static int
child_max_bytes(void) {
	size_t n = 2 * MiB;
	char *p = malloc(n);
	if (p == NULL) {
		return 2;
	}
	test_pattern_fill(p, n, 5);
	size_t reached = n;
	for (size_t next = 3 * MiB; next <= 256 * MiB; next += next / 2) {
		char *q = realloc(p, next);
		if (ctl_size("stats.mapped") > CAP) {
			return 3;
		}
		if (q == NULL) {
			if (errno != ENOMEM || !test_pattern_intact(p, n, 5)) {
				return 4;
			}
			break;
		}
		if (!test_pattern_intact(q, n, 5)) {
			return 5;
		}
		p = q;
		n = next;
		test_pattern_fill(p, n, 5);
		reached = n;
	}
	free(p);
	/* Growing in place or by moving pages needs the new span and the old
	 * one at once at most: at least a third of the cap. */
	if (reached < 20 * MiB || reached > CAP) {
		return 6;
	}
	return 0;
}

static void
test_max_bytes(void **state) {
	(void)state;
	if (!have_stats() || test_child_under_valgrind()) {
		print_message("# needs statistics and a child process: skipped\n");
		skip();
	}
	test_child_t c;
	assert_true(test_child_run("max_bytes:67108864", "max_bytes", &c));
	CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
	      "child status %#x (exit %d), stderr: %s", c.status, WEXITSTATUS(c.status), c.err);
}

/*
 * Threads growing huge blocks by moving their pages while others map new
 * ones: a moved block's old range is a hole at once, which the kernel
 * hands to the next mapping, maybe another thread's new huge block at
 * that very address. Its entry in the block lookup must survive the move
 * (the mover used to clear the old address after the move, erasing the
 * new block's entry: its free or realloc then aborted as an invalid
 * pointer). Each thread keeps a few blocks of 1-16 MiB and grows, frees
 * or replaces them at random, checking one byte a page.
 */
#define RACE_THREADS 4
#define RACE_SLOTS   6
#define RACE_ITERS   1500

static void
race_fill(unsigned char *p, size_t n, unsigned seed) {
	for (size_t i = 0; i < n; i += 4096) {
		p[i] = (unsigned char)(seed + i / 4096);
	}
}

static bool
race_intact(const unsigned char *p, size_t n, unsigned seed) {
	for (size_t i = 0; i < n; i += 4096) {
		if (p[i] != (unsigned char)(seed + i / 4096)) {
			return false;
		}
	}
	return true;
}

static void *
race_thread(void *arg) {
	unsigned s = (unsigned)(uintptr_t)arg;
	unsigned char *p[RACE_SLOTS] = {0};
	size_t size[RACE_SLOTS] = {0};
	unsigned seed[RACE_SLOTS] = {0};
	for (int it = 0; it < RACE_ITERS; it++) {
		s = s * 1103515245u + 12345u;
		unsigned k = (s >> 8) % RACE_SLOTS;
		size_t n = ((s >> 20) % 16 + 1) * MiB + ((s >> 4) % 3) * 7 * 4096;
		if (p[k] != NULL && !race_intact(p[k], size[k], seed[k])) {
			return (void *)"contents changed";
		}
		switch ((s >> 16) % 3) {
		case 0:
			free(p[k]);
			p[k] = malloc(n);
			break;
		case 1: {
			size_t keep = n < size[k] ? n : size[k];
			unsigned char *q = realloc(p[k], n);
			if (q != NULL && p[k] != NULL && !race_intact(q, keep, seed[k])) {
				return (void *)"contents lost by realloc";
			}
			p[k] = q;
			break;
		}
		default:
			free(p[k]);
			p[k] = NULL;
			continue;
		}
		if (p[k] == NULL) {
			return (void *)"out of memory";
		}
		size[k] = n;
		seed[k] = s;
		race_fill(p[k], n, s);
	}
	for (unsigned k = 0; k < RACE_SLOTS; k++) {
		free(p[k]);
	}
	return NULL;
}

static int
child_remap_race(void) {
	pthread_t t[RACE_THREADS];
	for (uintptr_t i = 0; i < RACE_THREADS; i++) {
		if (pthread_create(&t[i], NULL, race_thread, (void *)(i * 7919 + 1)) != 0) {
			return 2;
		}
	}
	int ret = 0;
	for (unsigned i = 0; i < RACE_THREADS; i++) {
		void *err;
		pthread_join(t[i], &err);
		if (err != NULL) {
			fprintf(stderr, "%s\n", (const char *)err);
			ret = 3;
		}
	}
	return ret;
}

static void
test_remap_race(void **state) {
	(void)state;
	if (test_child_under_valgrind()) {
		print_message("# four threads moving 16 MiB blocks: skipped under valgrind\n");
		skip();
	}
	test_child_t c;
	/* retain:false unmaps purged spans too: more holes, sooner reused. */
	test_child_expect("retain:false", "remap_race", true, &c);
	test_child_expect(NULL, "remap_race", true, &c);
}

int
main(int argc, char **argv) {
	if (argc == 3 && strcmp(argv[1], "child") == 0) {
		if (strcmp(argv[2], "remap_race") == 0) {
			return child_remap_race();
		}
		return strcmp(argv[2], "max_bytes") == 0 ? child_max_bytes() : 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_growth_bounded), cmocka_unit_test(test_contents),
	    cmocka_unit_test(test_zero_tail),      cmocka_unit_test(test_alignment),
	    cmocka_unit_test(test_hooks_copy),     cmocka_unit_test(test_max_bytes),
	    cmocka_unit_test(test_reuse_dirty),    cmocka_unit_test(test_remap_race),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
