/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The thread caches' footprint through lib/liballoc.so (doc/design.md,
 * "Footprint"): what a thread's cache holds beyond the program's live
 * objects, read as a fresh arena's stats.arenas.<i>.small.allocated (live
 * objects plus the objects cached for them) minus the usable size of what
 * the program holds. Each case runs in a new thread bound to a new arena
 * (arenas.create, thread.arena), so its cache starts empty and nothing else
 * allocates there.
 *
 *  - a small program's allocations (bench/tiny's pattern: 400 blocks of
 *    8-512 bytes, every other one freed, 100 more): the cache holds at most
 *    TINY_CACHED_MAX bytes beyond the live blocks (a cache that filled
 *    every class with half its full stack held about 200 KiB here);
 *  - a class used now and then among many other allocations keeps its
 *    first, small stack: at most 8 cached objects of it at any time;
 *  - a class used all the time grows its stack to full capacity: 20,000
 *    allocations of it take few fills (fills of the full stack's half),
 *    so sizing the stacks to use costs the busy classes nothing;
 *  - the 4-14 KiB classes, allocated now and then (one block in 64, as a
 *    producer thread of bench/prodcons does), are filled one object at a
 *    time: the cache takes none of them ahead of the program (fills of
 *    four took up to three 4-14 KiB objects per class ahead);
 *  - a new thread that allocates one of those classes often (one block in
 *    eight, as bench/mstress's short-lived threads do) fills it in batches
 *    after a few fills of one (at most one fill per four blocks), and its
 *    exit leaves nothing of its arena allocated;
 *  - a thread that frees 4-14 KiB blocks another thread allocated (bench/
 *    prodcons' consumer) holds at most one of them per class in its cache
 *    once it has freed a few dozen (it held up to two);
 *  - a thread's cache costs at most STACKS_FIRST_MAX bytes of stacks until
 *    its bins grow with use (one block of 56 KiB per thread before), and a
 *    flush (thread.tcache.flush) gives back the blocks they grew into.
 *
 * liballoc-specific: skipped (exit 77) when the process allocator does not
 * export mallctl; each case skips without statistics or thread caches, or
 * with a fill option on (no thread caches then).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
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

#include <cmocka.h>

#include "alloc.h"
#include "test_rng.h"
#include "test_skip.h"
#include "test_stats.h"

/* What bench/tiny's allocations may leave cached beyond the live blocks. */
#define TINY_CACHED_MAX ((size_t)48 << 10)

static bool have_tcache;
static bool have_stats;

static void
ctl_read(const char *name, void *v, size_t len) {
	size_t l = len;
	assert_int_equal(mallctl(name, v, &l, NULL, 0), 0);
	assert_int_equal(l, len);
}

/* Bytes of small objects arena a has handed out (live or cached). */
static size_t
small_allocated(unsigned a) {
	char name[64];
	snprintf(name, sizeof(name), "stats.arenas.%u.small.allocated", a);
	test_stats_refresh();
	size_t v;
	ctl_read(name, &v, sizeof(v));
	return v;
}

/* A counter of bin `bin` of arena a (curregs, nfills). */
static uint64_t
bin_stat(unsigned a, unsigned bin, const char *what) {
	char name[96];
	snprintf(name, sizeof(name), "stats.arenas.%u.bins.%u.%s", a, bin, what);
	test_stats_refresh();
	if (strcmp(what, "curregs") == 0) {
		size_t v;
		ctl_read(name, &v, sizeof(v));
		return v;
	}
	uint64_t v;
	ctl_read(name, &v, sizeof(v));
	return v;
}

/* The bin index (arenas.bin.<i>.size) of small size `size`. */
static unsigned
bin_of(size_t size) {
	unsigned nbins;
	ctl_read("arenas.nbins", &nbins, sizeof(nbins));
	for (unsigned i = 0; i < nbins; i++) {
		char name[64];
		snprintf(name, sizeof(name), "arenas.bin.%u.size", i);
		size_t s;
		ctl_read(name, &s, sizeof(s));
		if (s >= size) {
			return i;
		}
	}
	fail_msg("no small class for %zu bytes", size);
	return 0;
}

/* Binds the calling thread to a new arena and returns its index. */
static unsigned
bind_new_arena(void) {
	unsigned a;
	size_t sz = sizeof(a);
	assert_int_equal(mallctl("arenas.create", &a, &sz, NULL, 0), 0);
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &a, sizeof(a)), 0);
	return a;
}

static void
run_in_thread(void *(*fn)(void *)) {
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, fn, NULL), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
}

static void
skip_unless_measurable(void) {
	test_skip_unless(have_stats, "statistics");
	test_skip_unless(have_tcache, "thread caches");
	test_skip_if_fill();
	if (test_prof_on()) {
		print_message("# prof:true samples blocks whole: skipped\n");
		skip();
	}
}

/* ---------------------------------------------------------------------- */

enum { TINY_N1 = 400, TINY_N2 = 100 };

static void *
tiny_thread(void *arg) {
	(void)arg;
	unsigned a = bind_new_arena();
	assert_int_equal(small_allocated(a), 0);
	static void *p[TINY_N1 + TINY_N2];
	uint64_t rng = 16;
	for (unsigned i = 0; i < TINY_N1 + TINY_N2; i++) {
		if (i == TINY_N1) {
			for (unsigned k = 0; k < TINY_N1; k += 2) {
				free(p[k]);
				p[k] = NULL;
			}
		}
		size_t n = test_rng_next(&rng) % 8 == 0 ? 64 + test_rng_next(&rng) % 449
		                                        : 8 + test_rng_next(&rng) % 57;
		p[i] = malloc(n);
		assert_non_null(p[i]);
		memset(p[i], (int)i, n);
	}
	size_t live = 0;
	for (unsigned i = 0; i < TINY_N1 + TINY_N2; i++) {
		if (p[i] != NULL) {
			live += malloc_usable_size(p[i]);
		}
	}
	size_t allocated = small_allocated(a);
	assert_true(allocated >= live);
	print_message("# tiny: %zu bytes live, %zu more cached\n", live, allocated - live);
	assert_true(allocated - live <= TINY_CACHED_MAX);
	for (unsigned i = 0; i < TINY_N1 + TINY_N2; i++) {
		free(p[i]);
	}
	return NULL;
}

static void
test_small_program(void **state) {
	(void)state;
	skip_unless_measurable();
	run_in_thread(tiny_thread);
}

/* ---------------------------------------------------------------------- */

#define RARE_SIZE 3000
enum { RARE_EVERY = 500, RARE_ROUNDS = 60, RARE_LIVE = 64 };

static void *
rare_thread(void *arg) {
	(void)arg;
	unsigned a = bind_new_arena();
	unsigned bin = bin_of(RARE_SIZE);
	void *ring[RARE_LIVE] = {NULL};
	uint64_t rng = 7;
	uint64_t most = 0;
	for (unsigned r = 0; r < RARE_ROUNDS; r++) {
		/* The busy small classes, a ring of live blocks. */
		for (unsigned i = 0; i < RARE_EVERY; i++) {
			unsigned s = (unsigned)(test_rng_next(&rng) % RARE_LIVE);
			free(ring[s]);
			ring[s] = malloc(16 + test_rng_next(&rng) % 240);
			assert_non_null(ring[s]);
		}
		/* Now and then one block of the rare class, used and freed. */
		void *q = malloc(RARE_SIZE);
		assert_non_null(q);
		memset(q, 1, RARE_SIZE);
		free(q);
		uint64_t cached = bin_stat(a, bin, "curregs");
		most = cached > most ? cached : most;
	}
	print_message("# a class used once per %u allocations: at most %llu cached\n",
	              RARE_EVERY + 1, (unsigned long long)most);
	assert_true(most >= 1);
	assert_true(most <= 8);
	for (unsigned s = 0; s < RARE_LIVE; s++) {
		free(ring[s]);
	}
	return NULL;
}

static void
test_rare_class(void **state) {
	(void)state;
	skip_unless_measurable();
	run_in_thread(rare_thread);
}

/* ---------------------------------------------------------------------- */

#define BUSY_SIZE 32
enum { BUSY_N = 20000 };

static void *
busy_thread(void *arg) {
	(void)arg;
	unsigned a = bind_new_arena();
	unsigned bin = bin_of(BUSY_SIZE);
	void **p = calloc(BUSY_N, sizeof(void *));
	assert_non_null(p);
	uint64_t fills0 = bin_stat(a, bin, "nfills");
	for (unsigned i = 0; i < BUSY_N; i++) {
		p[i] = malloc(BUSY_SIZE);
		assert_non_null(p[i]);
	}
	uint64_t fills = bin_stat(a, bin, "nfills") - fills0;
	print_message("# %u allocations of %u bytes: %llu fills\n", BUSY_N, BUSY_SIZE,
	              (unsigned long long)fills);
	/* Full-size fills are 100 objects at this class (half a 200-slot
	 * stack); the few small ones while the stack grows add a handful. */
	assert_true(fills <= BUSY_N / 100 + 8);
	for (unsigned i = 0; i < BUSY_N; i++) {
		free(p[i]);
	}
	free(p);
	return NULL;
}

static void
test_busy_class(void **state) {
	(void)state;
	skip_unless_measurable();
	run_in_thread(busy_thread);
}

/* ---------------------------------------------------------------------- */

enum { PAGECLASS_N = 4096, PAGECLASS_EVERY = 64 };

static void *
page_class_thread(void *arg) {
	(void)arg;
	unsigned a = bind_new_arena();
	static void *p[PAGECLASS_N];
	static size_t size[PAGECLASS_N];
	uint64_t rng = 11;
	for (unsigned i = 0; i < PAGECLASS_N; i++) {
		size[i] = i % PAGECLASS_EVERY == 0 ? 4096 + test_rng_next(&rng) % 10241
		                                   : 16 + test_rng_next(&rng) % 497;
		p[i] = malloc(size[i]);
		assert_non_null(p[i]);
		memset(p[i], (int)i, size[i]);
	}
	/* Per class of 4 KiB and more: regions handed out against blocks the
	 * program holds. */
	unsigned first = bin_of(4096);
	unsigned last = bin_of(14336);
	uint64_t ahead = 0;
	for (unsigned bin = first; bin <= last; bin++) {
		char name[64];
		snprintf(name, sizeof(name), "arenas.bin.%u.size", bin);
		size_t bsize;
		ctl_read(name, &bsize, sizeof(bsize));
		uint64_t live = 0;
		for (unsigned i = 0; i < PAGECLASS_N; i += PAGECLASS_EVERY) {
			live += bin_of(size[i]) == bin;
		}
		uint64_t regs = bin_stat(a, bin, "curregs");
		assert_true(regs >= live);
		ahead += regs - live;
	}
	print_message("# 4-14 KiB blocks now and then: %llu taken ahead\n",
	              (unsigned long long)ahead);
	assert_int_equal(ahead, 0);
	for (unsigned i = 0; i < PAGECLASS_N; i++) {
		free(p[i]);
	}
	return NULL;
}

/* The cases of the classes from a page up to the largest small one, 4-14
 * KiB with 4 KiB pages: skipped with other pages. */
static void
skip_unless_page_classes(void) {
	skip_unless_measurable();
	size_t page;
	ctl_read("arenas.page", &page, sizeof(page));
	test_skip_unless(page == 4096, "4 KiB pages");
}

static void
test_page_classes_fill_one(void **state) {
	(void)state;
	skip_unless_page_classes();
	run_in_thread(page_class_thread);
}

/* ---------------------------------------------------------------------- */

enum { CONSUMER_N = 800 };
static void *consumer_blocks[CONSUMER_N];
static unsigned consumer_arena;

static void *
consumer_producer_thread(void *arg) {
	(void)arg;
	consumer_arena = bind_new_arena();
	uint64_t rng = 23;
	for (unsigned i = 0; i < CONSUMER_N; i++) {
		size_t n = 4096 + test_rng_next(&rng) % 10241;
		consumer_blocks[i] = malloc(n);
		assert_non_null(consumer_blocks[i]);
		memset(consumer_blocks[i], (int)i, n);
	}
	/* Its exit gives back what its cache holds: only the blocks are
	 * allocated from then on. */
	return NULL;
}

static void *
consumer_thread(void *arg) {
	(void)arg;
	unsigned first = bin_of(4096);
	unsigned last = bin_of(14336);
	for (unsigned i = 0; i < CONSUMER_N; i++) {
		free(consumer_blocks[i]);
	}
	/* Still alive: what its bins hold is still allocated in the
	 * producer's arena. */
	uint64_t held = 0;
	for (unsigned bin = first; bin <= last; bin++) {
		uint64_t regs = bin_stat(consumer_arena, bin, "curregs");
		assert_true(regs <= 1);
		held += regs;
	}
	print_message("# a consumer of 4-14 KiB blocks holds %llu of them\n",
	              (unsigned long long)held);
	return NULL;
}

static void
test_consumer_holds_little(void **state) {
	(void)state;
	skip_unless_page_classes();
	run_in_thread(consumer_producer_thread);
	unsigned first = bin_of(4096);
	unsigned last = bin_of(14336);
	uint64_t live = 0;
	for (unsigned bin = first; bin <= last; bin++) {
		live += bin_stat(consumer_arena, bin, "curregs");
	}
	assert_int_equal(live, CONSUMER_N);
	run_in_thread(consumer_thread);
}

/* ---------------------------------------------------------------------- */

enum { BURST_N = 2400, BURST_EVERY = 8 };
static unsigned burst_arena;

static void *
burst_thread(void *arg) {
	(void)arg;
	unsigned a = bind_new_arena();
	burst_arena = a;
	unsigned bin = bin_of(4096);
	static void *p[BURST_N];
	uint64_t rng = 5;
	uint64_t fills0 = bin_stat(a, bin, "nfills");
	for (unsigned i = 0; i < BURST_N; i++) {
		size_t size = i % BURST_EVERY == 0 ? 4096 : 16 + test_rng_next(&rng) % 2033;
		p[i] = malloc(size);
		assert_non_null(p[i]);
		memset(p[i], (int)i, 16);
	}
	uint64_t fills = bin_stat(a, bin, "nfills") - fills0;
	print_message("# a new thread's burst, %u blocks of 4096 bytes: %llu fills\n",
	              BURST_N / BURST_EVERY, (unsigned long long)fills);
	/* A few fills of one, then batches of half the stack (4 to 10
	 * objects): about 45 fills, where fills of one all along made 300. */
	assert_true(fills <= BURST_N / BURST_EVERY / 4);
	for (unsigned i = 0; i < BURST_N; i++) {
		free(p[i]);
	}
	return NULL;
}

static void
test_thread_burst(void **state) {
	(void)state;
	skip_unless_measurable();
	run_in_thread(burst_thread);
	/* The thread's exit gave back everything its cache held. */
	assert_int_equal(small_allocated(burst_arena), 0);
}

/* ---------------------------------------------------------------------- */

/* What a thread's cache may take for its stacks before its bins grow. */
#define STACKS_FIRST_MAX ((size_t)4 << 10)
enum { STACKS_BUSY_N = 50000 };

static size_t
stats_allocated(void) {
	test_stats_refresh();
	size_t v;
	ctl_read("stats.allocated", &v, sizeof(v));
	return v;
}

static size_t stacks_before;

static void *
stacks_thread(void *arg) {
	(void)arg;
	/* The first allocation sets the cache up; flushed, it holds its first
	 * stack block only. */
	free(malloc(16));
	assert_int_equal(mallctl("thread.tcache.flush", NULL, NULL, NULL, 0), 0);
	size_t fresh = stats_allocated();
	print_message("# a fresh thread cache: %zu bytes of stacks\n", fresh - stacks_before);
	assert_true(fresh >= stacks_before);
	assert_true(fresh - stacks_before <= STACKS_FIRST_MAX);
	/* Busy in many classes: the bins grow, into further blocks. */
	static void *p[256];
	uint64_t rng = 3;
	for (unsigned i = 0; i < STACKS_BUSY_N; i++) {
		unsigned s = (unsigned)(test_rng_next(&rng) % 256);
		free(p[s]);
		p[s] = malloc(8 + test_rng_next(&rng) % 3000);
		assert_non_null(p[s]);
	}
	for (unsigned s = 0; s < 256; s++) {
		free(p[s]);
		p[s] = NULL;
	}
	size_t busy = stats_allocated();
	assert_true(busy > fresh);
	/* A flush gives back the cached objects and the grown stacks. */
	assert_int_equal(mallctl("thread.tcache.flush", NULL, NULL, NULL, 0), 0);
	size_t flushed = stats_allocated();
	print_message("# busy: %zu bytes cached and stacks; flushed: %zu\n", busy - stacks_before,
	              flushed - stacks_before);
	assert_int_equal(flushed, fresh);
	return NULL;
}

static void
test_stacks_sized_to_use(void **state) {
	(void)state;
	skip_unless_measurable();
	/* The main thread's cache is set up and flushed: the thread's are
	 * the only changes. */
	free(malloc(16));
	assert_int_equal(mallctl("thread.tcache.flush", NULL, NULL, NULL, 0), 0);
	stacks_before = stats_allocated();
	run_in_thread(stacks_thread);
}

int
main(void) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("# the process allocator has no mallctl: skipped\n");
		return 77;
	}
	size_t sz = sizeof(bool);
	have_tcache = mallctl("config.tcache", &have_tcache, &sz, NULL, 0) == 0 && have_tcache;
	have_stats = test_stats_enabled();
	bool enabled = false;
	sz = sizeof(enabled);
	if (have_tcache && (mallctl("opt.tcache", &enabled, &sz, NULL, 0) != 0 || !enabled)) {
		/* tcache:false in MALLOC_CONF: threads get no cache. */
		have_tcache = false;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small_program),
	    cmocka_unit_test(test_rare_class),
	    cmocka_unit_test(test_busy_class),
	    cmocka_unit_test(test_page_classes_fill_one),
	    cmocka_unit_test(test_thread_burst),
	    cmocka_unit_test(test_stacks_sized_to_use),
	    cmocka_unit_test(test_consumer_holds_little),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
