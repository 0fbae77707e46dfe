/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The locking code under contention, through the prefixed entry points of
 * the unit-test objects (unittest_malloc, unittest_mallctl, ...), so the
 * test program keeps the C library's malloc and can run under
 * ThreadSanitizer (make check-tsan builds it with -fsanitize=thread; make
 * check with AddressSanitizer like every unit test).
 *
 * Four threads at once, each for a fixed number of rounds:
 *   - small, large and huge blocks through their thread caches, so caches
 *     fill from and flush to the arena bins and runs under their locks;
 *   - half the blocks are handed to another thread through a shared array
 *     of slots and freed there: remote frees into other arenas and bins;
 *   - a shared explicit cache (tcache.create, MALLOCX_TCACHE, tcache.flush)
 *     used under the test's own mutex, as the manual requires, and private
 *     explicit caches created and destroyed while the others run;
 *   - thread.tcache.flush and thread.tcache.enabled off and on;
 *   - mallctl: epoch refreshes and stats.* reads, arena.<i>.decay and
 *     arena.<i>.purge, arena.<i>.decay_time writes, arenas.extend and
 *     allocations from the new arenas (MALLOCX_ARENA), background purging
 *     threads started and stopped.
 * Every block carries a pattern checked when it is freed. At the end, with
 * every thread gone and every cache flushed or destroyed, stats.allocated
 * is back to what it was before the threads started (with statistics
 * built in).
 */
#define ALLOC_PREFIX         unittest_
#define ALLOC_PREFIXED_BUILD 1

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "alloc/internal/config.h"

#define NTHREADS 4
#define NROUNDS  3000
#define NSLOTS   256

/* Blocks passed between threads; NULL is an empty slot. */
static void *slots[NSLOTS];

/* The shared explicit cache and the mutex its users hold. */
static pthread_mutex_t shared_tc_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned shared_tc;

/* Arenas made by arenas.extend while the test runs, read by every thread. */
static unsigned extended[NTHREADS];

static bool have_tcache;

/* xorshift: each thread its own sequence. */
static uint32_t
rnd(uint32_t *s) {
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

static size_t
pick_size(uint32_t *s) {
	uint32_t r = rnd(s) % 1000;
	if (r < 850) {
		return 1 + rnd(s) % 2048; /* small */
	}
	if (r < 995) {
		return 16384 + rnd(s) % (200 << 10); /* large */
	}
	return (2 << 20) + rnd(s) % (1 << 20); /* huge */
}

/* The block's first and last bytes hold a value derived from its size. */
static void
mark(void *p, size_t size) {
	unsigned char v = (unsigned char)(size * 31 + 7);
	((unsigned char *)p)[0] = v;
	((unsigned char *)p)[size - 1] = v;
}

static bool
marked_ok(const void *p, size_t size) {
	unsigned char v = (unsigned char)(size * 31 + 7);
	return ((const unsigned char *)p)[0] == v && ((const unsigned char *)p)[size - 1] == v;
}

/* A block in a slot (at least 16 bytes) also stores its size right after
 * its first byte. */
static void
mark_slot_block(void *p, size_t size) {
	mark(p, size);
	memcpy((unsigned char *)p + 1, &size, sizeof(size));
}

/* Frees a slot block, after checking its mark; false when it was bad. */
static bool
release_slot_block(void *p) {
	size_t size;
	memcpy(&size, (unsigned char *)p + 1, sizeof(size));
	bool ok = size >= 2 * sizeof(size) && marked_ok(p, size) &&
	          ALLOC_API(malloc_usable_size)(p) >= size;
	ALLOC_API(free)(p);
	return ok;
}

static void
ctl_refresh(void) {
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);
	ALLOC_API(mallctl)("epoch", &epoch, &sz, &epoch, sizeof(epoch));
}

typedef struct {
	unsigned id;
	uint32_t seed;
	/* Failures seen by the thread: bad marks, failed calls. */
	unsigned bad;
} worker_t;

static void
worker_ctl(worker_t *w) {
	uint32_t r = rnd(&w->seed) % 9;
	char name[64];
	unsigned narenas = 0;
	size_t sz = sizeof(narenas);
	if (ALLOC_API(mallctl)("arenas.narenas", &narenas, &sz, NULL, 0) != 0 || narenas == 0) {
		w->bad++;
		return;
	}
	unsigned a = rnd(&w->seed) % narenas;
	switch (r) {
	case 0:
		ctl_refresh();
		break;
	case 1: {
		size_t v;
		sz = sizeof(v);
		int err = ALLOC_API(mallctl)("stats.allocated", &v, &sz, NULL, 0);
		w->bad += err != (config_stats ? 0 : ENOENT);
		break;
	}
	case 2: {
		uint64_t v;
		sz = sizeof(v);
		snprintf(name, sizeof(name), "stats.arenas.%u.small.nmalloc", narenas);
		int err = ALLOC_API(mallctl)(name, &v, &sz, NULL, 0);
		/* The merged view is stats.arenas.<narenas> as of the last
		 * refresh: an arenas.extend since then moves it (ENOENT). */
		w->bad += config_stats ? err != 0 && err != ENOENT : err != ENOENT;
		break;
	}
	case 3:
		snprintf(name, sizeof(name), "arena.%u.decay", a);
		w->bad += ALLOC_API(mallctl)(name, NULL, NULL, NULL, 0) != 0;
		break;
	case 4:
		snprintf(name, sizeof(name), "arena.%u.purge", a);
		w->bad += ALLOC_API(mallctl)(name, NULL, NULL, NULL, 0) != 0;
		break;
	case 5: {
		/* 0 (purge at once) or the default; arenas not yet used
		 * answer EFAULT. */
		ssize_t t = rnd(&w->seed) % 2 ? 0 : 10;
		snprintf(name, sizeof(name), "arena.%u.decay_time", a);
		int err = ALLOC_API(mallctl)(name, NULL, NULL, &t, sizeof(t));
		w->bad += err != 0 && err != EFAULT;
		break;
	}
	case 6:
		if (have_tcache) {
			w->bad +=
			    ALLOC_API(mallctl)("thread.tcache.flush", NULL, NULL, NULL, 0) != 0;
		}
		break;
	case 7: {
		/* Background purging threads started and stopped while the
		 * others allocate and purge. */
		bool v = rnd(&w->seed) % 2;
		w->bad += ALLOC_API(mallctl)("background_thread", NULL, NULL, &v, sizeof(v)) != 0;
		break;
	}
	default:
		if (have_tcache) {
			bool off = false, on = true;
			w->bad += ALLOC_API(mallctl)("thread.tcache.enabled", NULL, NULL, &off,
			                             sizeof(off)) != 0;
			void *p = ALLOC_API(malloc)(100);
			w->bad += p == NULL;
			ALLOC_API(free)(p);
			w->bad += ALLOC_API(mallctl)("thread.tcache.enabled", NULL, NULL, &on,
			                             sizeof(on)) != 0;
		}
		break;
	}
}

/* A private explicit cache, made, used and destroyed here. */
static void
worker_private_tcache(worker_t *w) {
	unsigned tc;
	size_t sz = sizeof(tc);
	if (ALLOC_API(mallctl)("tcache.create", &tc, &sz, NULL, 0) != 0) {
		w->bad++;
		return;
	}
	void *ps[16];
	for (int i = 0; i < 16; i++) {
		ps[i] = ALLOC_API(mallocx)(32 + 48 * (size_t)i, MALLOCX_TCACHE(tc));
		w->bad += ps[i] == NULL;
	}
	for (int i = 0; i < 16; i++) {
		if (ps[i] != NULL) {
			ALLOC_API(dallocx)(ps[i], MALLOCX_TCACHE(tc));
		}
	}
	w->bad += ALLOC_API(mallctl)("tcache.destroy", NULL, NULL, &tc, sizeof(tc)) != 0;
}

static void
worker_shared_tcache(worker_t *w) {
	pthread_mutex_lock(&shared_tc_lock);
	size_t size = 1 + rnd(&w->seed) % 4000;
	void *p = ALLOC_API(mallocx)(size, MALLOCX_TCACHE(shared_tc));
	if (p == NULL) {
		w->bad++;
	} else {
		mark(p, size);
		w->bad += !marked_ok(p, size);
		ALLOC_API(dallocx)(p, MALLOCX_TCACHE(shared_tc));
	}
	if (rnd(&w->seed) % 16 == 0) {
		w->bad += ALLOC_API(mallctl)("tcache.flush", NULL, NULL, &shared_tc,
		                             sizeof(shared_tc)) != 0;
	}
	pthread_mutex_unlock(&shared_tc_lock);
}

static void *
worker_main(void *arg) {
	worker_t *w = arg;
	enum { NLOCAL = 32 };
	void *local[NLOCAL] = {NULL};
	size_t local_size[NLOCAL] = {0};

	/* Each thread extends the arenas once; the others use what exists. */
	unsigned a;
	size_t sz = sizeof(a);
	if (ALLOC_API(mallctl)("arenas.extend", &a, &sz, NULL, 0) != 0) {
		w->bad++;
		return NULL;
	}
	__atomic_store_n(&extended[w->id], a, __ATOMIC_RELEASE);

	for (unsigned round = 0; round < NROUNDS; round++) {
		/* A local block replaced: allocate, check, free. */
		unsigned k = rnd(&w->seed) % NLOCAL;
		if (local[k] != NULL) {
			w->bad += !marked_ok(local[k], local_size[k]);
			ALLOC_API(free)(local[k]);
		}
		size_t size = pick_size(&w->seed);
		int flags = 0;
		if (rnd(&w->seed) % 8 == 0) {
			unsigned e =
			    __atomic_load_n(&extended[rnd(&w->seed) % NTHREADS], __ATOMIC_ACQUIRE);
			if (e != 0) {
				flags = MALLOCX_ARENA(e) | MALLOCX_TCACHE_NONE;
			}
		}
		local[k] = flags != 0 ? ALLOC_API(mallocx)(size, flags) : ALLOC_API(malloc)(size);
		local_size[k] = size;
		if (local[k] == NULL) {
			w->bad++;
		} else {
			mark(local[k], size);
		}

		/* A block handed over: put one in a slot, free what was
		 * there (most likely another thread's). */
		size_t ssize = 2 * sizeof(size_t) + rnd(&w->seed) % 30000;
		void *p = ALLOC_API(malloc)(ssize);
		if (p == NULL) {
			w->bad++;
		} else {
			mark_slot_block(p, ssize);
			void *old = __atomic_exchange_n(&slots[rnd(&w->seed) % NSLOTS], p,
			                                __ATOMIC_ACQ_REL);
			if (old != NULL && !release_slot_block(old)) {
				w->bad++;
			}
		}

		uint32_t r = rnd(&w->seed) % 64;
		if (r < 4) {
			worker_ctl(w);
		} else if (r < 6 && have_tcache) {
			worker_shared_tcache(w);
		} else if (r == 6 && have_tcache) {
			worker_private_tcache(w);
		}
	}
	for (unsigned k = 0; k < NLOCAL; k++) {
		if (local[k] != NULL) {
			w->bad += !marked_ok(local[k], local_size[k]);
			ALLOC_API(free)(local[k]);
		}
	}
	return NULL;
}

static size_t
stats_allocated(void) {
	ctl_refresh();
	size_t v = 0;
	size_t sz = sizeof(v);
	assert_int_equal(ALLOC_API(mallctl)("stats.allocated", &v, &sz, NULL, 0), 0);
	return v;
}

static void
test_threads(void **state) {
	(void)state;
	size_t sz = sizeof(have_tcache);
	assert_int_equal(ALLOC_API(mallctl)("config.tcache", &have_tcache, &sz, NULL, 0), 0);
	/* Start-up (and this thread's cache) before the baseline. */
	ALLOC_API(free)(ALLOC_API(malloc)(1));
	if (have_tcache) {
		assert_int_equal(ALLOC_API(mallctl)("thread.tcache.flush", NULL, NULL, NULL, 0), 0);
	}
	size_t before = config_stats ? stats_allocated() : 0;
	/* Made after the baseline: its stacks count as allocated until it is
	 * destroyed. */
	if (have_tcache) {
		sz = sizeof(shared_tc);
		assert_int_equal(ALLOC_API(mallctl)("tcache.create", &shared_tc, &sz, NULL, 0), 0);
	}

	pthread_t threads[NTHREADS];
	worker_t workers[NTHREADS];
	for (unsigned i = 0; i < NTHREADS; i++) {
		workers[i] = (worker_t){.id = i, .seed = 0x9e3779b9u * (i + 1), .bad = 0};
		assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
	}
	unsigned bad = 0;
	for (unsigned i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		bad += workers[i].bad;
	}
	for (unsigned i = 0; i < NSLOTS; i++) {
		if (slots[i] != NULL) {
			bad += !release_slot_block(slots[i]);
			slots[i] = NULL;
		}
	}
	assert_int_equal(bad, 0);
	bool off = false;
	assert_int_equal(ALLOC_API(mallctl)("background_thread", NULL, NULL, &off, sizeof(off)), 0);

	if (have_tcache) {
		assert_int_equal(
		    ALLOC_API(mallctl)("tcache.destroy", NULL, NULL, &shared_tc, sizeof(shared_tc)),
		    0);
		assert_int_equal(ALLOC_API(mallctl)("thread.tcache.flush", NULL, NULL, NULL, 0), 0);
	}
	if (config_stats) {
		/* The exited threads flushed and released their caches. */
		assert_int_equal(stats_allocated(), before);
	}
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
