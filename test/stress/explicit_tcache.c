/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Explicit thread caches shared by threads: 4 caches from tcache.create,
 * each guarded by a pthread mutex (an explicit cache is not thread-safe;
 * the program serialises its use). 6 worker threads each run 200,000 steps:
 * lock a random cache and, through MALLOCX_TCACHE(id), allocate (mallocx,
 * sizes from 8 bytes to past the thread-cache limit, now and then huge),
 * free (dallocx, sdallocx) or resize (rallocx) a block the worker holds,
 * whichever cache it came from; now and then flush the cache
 * (tcache.flush) or free with MALLOCX_TCACHE_NONE. A seventh thread
 * destroys and re-creates caches while the workers run (under the same
 * mutex). Every block carries its owner, a sequence number and a pattern
 * over its first and last 64 bytes, checked before each free and after each
 * resize (a block handed out twice, or freed into a cache while still in
 * use, shows up as a foreign pattern).
 *
 * At the end the workers free what they hold, main flushes and destroys
 * every cache and flushes its own: stats.allocated (epoch first) must be
 * within 64 KiB of the baseline taken before. Prints one summary line;
 * exit 77 when the allocator has no mallctl or no thread caches
 * (tcache.create answers ENOENT in a build without them).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "test_rng.h"
#include "test_stats.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { NCACHES = 4, NWORKERS = 6, STEPS = 200000, MAXLIVE = 64, EDGE = 64 };
static const size_t slack = 64 * KiB;

typedef struct {
	pthread_mutex_t lock;
	/* The cache's current id (re-created by the rotator). */
	unsigned id;
	uint64_t uses;
} cache_t;

static cache_t caches[NCACHES];
static volatile bool stop_rotating;
static uint64_t rotations;

typedef struct {
	uint64_t tag;
	size_t size;
} hdr_t;

static size_t
pick_size(uint64_t *s) {
	uint64_t r = test_rng_next(s) % 10000;
	return r < 7000   ? sizeof(hdr_t) + test_rng_next(s) % 256
	       : r < 9000 ? 256 + test_rng_next(s) % (8 * KiB)
	       : r < 9900 ? 8 * KiB + test_rng_next(s) % (40 * KiB)
	       : r < 9995 ? 48 * KiB + test_rng_next(s) % (256 * KiB)
	                  : 2 * MiB + test_rng_next(s) % MiB;
}

static unsigned char
pat(uint64_t tag, size_t i) {
	return (unsigned char)(tag * 31 + i * 7 + (tag >> 17));
}

static void
mark(hdr_t *h, size_t size, uint64_t tag) {
	h->tag = tag;
	h->size = size;
	unsigned char *b = (unsigned char *)h;
	for (size_t i = sizeof(hdr_t); i < size && i < sizeof(hdr_t) + EDGE; i++) {
		b[i] = pat(tag, i);
	}
	for (size_t i = size > EDGE ? size - EDGE : 0; i < size; i++) {
		if (i >= sizeof(hdr_t)) {
			b[i] = pat(tag, i);
		}
	}
}

/* Checks the pattern over the first `size` bytes of a block marked with
 * (tag, size0), size <= size0. */
static bool
check(const hdr_t *h, uint64_t tag, size_t size0, size_t size) {
	if (h->tag != tag || h->size != size0) {
		return false;
	}
	const unsigned char *b = (const unsigned char *)h;
	for (size_t i = sizeof(hdr_t); i < size && i < sizeof(hdr_t) + EDGE; i++) {
		if (b[i] != pat(tag, i)) {
			return false;
		}
	}
	for (size_t i = size0 > EDGE ? size0 - EDGE : 0; i < size; i++) {
		if (i >= sizeof(hdr_t) && b[i] != pat(tag, i)) {
			return false;
		}
	}
	return true;
}

static void
die(const char *what, const void *p, size_t size) {
	fprintf(stderr, "explicit_tcache: FAIL: %s (block %p, size %zu)\n", what, p, size);
	abort();
}

typedef struct {
	hdr_t *p;
	size_t size;
	uint64_t tag;
} held_t;

typedef struct {
	unsigned index;
	uint64_t steps;
	held_t live[MAXLIVE];
	int n;
	uint64_t ops;
} worker_t;

static void
free_one(worker_t *w, int i, int flags, uint64_t *s) {
	held_t *h = &w->live[i];
	if (!check(h->p, h->tag, h->size, h->size)) {
		die("corrupted block before free", h->p, h->size);
	}
	if (test_rng_next(s) % 2 == 0) {
		sdallocx(h->p, h->size, flags);
	} else {
		dallocx(h->p, flags);
	}
	w->live[i] = w->live[--w->n];
}

static void
step(worker_t *w, cache_t *c, uint64_t *s, uint64_t seq) {
	int flags = MALLOCX_TCACHE(c->id);
	uint64_t r = test_rng_next(s) % 100;
	if (w->n > 0 && (w->n == MAXLIVE || r < 40)) {
		free_one(w, (int)(test_rng_next(s) % (uint64_t)w->n), flags, s);
	} else if (w->n > 0 && r < 50) {
		/* Resize; the old block goes into this cache. */
		held_t *h = &w->live[test_rng_next(s) % (uint64_t)w->n];
		size_t size = pick_size(s);
		hdr_t *q = rallocx(h->p, size, flags);
		if (q == NULL) {
			die("rallocx failed", h->p, size);
		}
		size_t kept = size < h->size ? size : h->size;
		if (!check(q, h->tag, h->size, kept)) {
			die("contents lost by rallocx", q, size);
		}
		uint64_t tag = ((uint64_t)w->index << 48) | seq;
		mark(q, size, tag);
		*h = (held_t){q, size, tag};
	} else {
		size_t size = pick_size(s);
		hdr_t *p = mallocx(size, flags);
		if (p == NULL) {
			die("mallocx failed", NULL, size);
		}
		uint64_t tag = ((uint64_t)w->index << 48) | seq;
		mark(p, size, tag);
		w->live[w->n++] = (held_t){p, size, tag};
	}
	if (seq % 997 == 0) {
		if (mallctl("tcache.flush", NULL, NULL, &c->id, sizeof(c->id)) != 0) {
			die("tcache.flush failed", NULL, c->id);
		}
	}
}

static void *
worker(void *arg) {
	worker_t *w = arg;
	uint64_t s = 1000 + w->index;
	for (uint64_t k = 1; k <= w->steps; k++) {
		if (w->n > 0 && k % 101 == 0) {
			/* Straight to the arena, no cache, no lock. */
			free_one(w, (int)(test_rng_next(&s) % (uint64_t)w->n), MALLOCX_TCACHE_NONE,
			         &s);
			continue;
		}
		cache_t *c = &caches[test_rng_next(&s) % NCACHES];
		pthread_mutex_lock(&c->lock);
		c->uses++;
		int nsteps = 1 + (int)(test_rng_next(&s) % 4);
		for (int i = 0; i < nsteps; i++) {
			step(w, c, &s, k * 4 + (uint64_t)i);
		}
		pthread_mutex_unlock(&c->lock);
		w->ops += (uint64_t)nsteps;
	}
	cache_t *c = &caches[w->index % NCACHES];
	pthread_mutex_lock(&c->lock);
	while (w->n > 0) {
		free_one(w, w->n - 1, MALLOCX_TCACHE(c->id), &s);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static unsigned
create_cache(void) {
	unsigned id;
	size_t sz = sizeof(id);
	int err = mallctl("tcache.create", &id, &sz, NULL, 0);
	if (err != 0) {
		fprintf(stderr, "explicit_tcache: FAIL: tcache.create = %d\n", err);
		exit(1);
	}
	return id;
}

/* Destroys and re-creates the caches in turn while the workers run. */
static void *
rotator(void *arg) {
	(void)arg;
	struct timespec pause = {0, 2 * 1000 * 1000};
	for (unsigned k = 0; !__atomic_load_n(&stop_rotating, __ATOMIC_ACQUIRE); k++) {
		cache_t *c = &caches[k % NCACHES];
		pthread_mutex_lock(&c->lock);
		if (mallctl("tcache.destroy", NULL, NULL, &c->id, sizeof(c->id)) != 0) {
			die("tcache.destroy failed", NULL, c->id);
		}
		c->id = create_cache();
		pthread_mutex_unlock(&c->lock);
		rotations++;
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/* Creates the caches, runs the workers and the rotator, then flushes and
 * destroys the caches; returns the number of calls made. */
static uint64_t
run_phase(uint64_t steps) {
	static worker_t workers[NWORKERS];
	pthread_t threads[NWORKERS], rot;
	for (int i = 0; i < NCACHES; i++) {
		caches[i].id = create_cache();
	}
	__atomic_store_n(&stop_rotating, false, __ATOMIC_RELEASE);
	for (int i = 0; i < NWORKERS; i++) {
		workers[i] = (worker_t){.index = (unsigned)i, .steps = steps};
		if (pthread_create(&threads[i], NULL, worker, &workers[i]) != 0) {
			fprintf(stderr, "explicit_tcache: FAIL: pthread_create\n");
			exit(1);
		}
	}
	if (pthread_create(&rot, NULL, rotator, NULL) != 0) {
		fprintf(stderr, "explicit_tcache: FAIL: pthread_create\n");
		exit(1);
	}
	uint64_t ops = 0;
	for (int i = 0; i < NWORKERS; i++) {
		pthread_join(threads[i], NULL);
		ops += workers[i].ops;
	}
	__atomic_store_n(&stop_rotating, true, __ATOMIC_RELEASE);
	pthread_join(rot, NULL);
	for (int i = 0; i < NCACHES; i++) {
		if (mallctl("tcache.flush", NULL, NULL, &caches[i].id, sizeof(caches[i].id)) != 0 ||
		    mallctl("tcache.destroy", NULL, NULL, &caches[i].id, sizeof(caches[i].id)) !=
		        0) {
			fprintf(stderr, "explicit_tcache: FAIL: tcache.flush/destroy of cache %u\n",
			        caches[i].id);
			exit(1);
		}
	}
	return ops;
}

static size_t
allocated_now(void) {
	mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
	return test_stats_allocated("explicit_tcache");
}

int
main(void) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("explicit_tcache: the process allocator has no mallctl\n");
		return 77;
	}
	if (!test_stats_enabled()) {
		printf("explicit_tcache: built without statistics (the check is stats.allocated "
		       "back to the baseline); skipped\n");
		return 77;
	}
	unsigned probe;
	size_t sz = sizeof(probe);
	if (mallctl("tcache.create", &probe, &sz, NULL, 0) == ENOENT) {
		printf("explicit_tcache: built without thread caches (tcache.create is ENOENT)\n");
		return 77;
	}
	if (mallctl("tcache.destroy", NULL, NULL, &probe, sizeof(probe)) != 0) {
		fprintf(stderr, "explicit_tcache: FAIL: tcache.destroy of a new cache\n");
		return 1;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Warm-up: a short run of the same shape (thread stacks and the C
	 * library's per-thread blocks, first runs), then the baseline. */
	for (int i = 0; i < NCACHES; i++) {
		pthread_mutex_init(&caches[i].lock, NULL);
	}
	run_phase(STEPS / 30);
	size_t base = allocated_now();
	rotations = 0;
	uint64_t ops = run_phase(STEPS);
	size_t end = allocated_now();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	long long diff = (long long)end - (long long)base;
	if (diff > (long long)slack || diff < -(long long)slack) {
		fprintf(stderr,
		        "explicit_tcache: FAIL: stats.allocated %zu at the end, %zu before "
		        "(%+lld bytes; bound %zu): blocks lost in explicit caches\n",
		        end, base, diff, slack);
		return 1;
	}
	printf("explicit_tcache: OK: %d threads, %llu calls through %d shared caches, %llu "
	       "caches re-created; stats.allocated %+lld bytes from the baseline; %.1f s\n",
	       NWORKERS, (unsigned long long)ops, NCACHES, (unsigned long long)rotations, diff,
	       secs);
	return 0;
}
