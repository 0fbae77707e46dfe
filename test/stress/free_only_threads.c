/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Threads whose only allocator calls are free(): main allocates 2,000
 * batches of 160 blocks (small, large, above the thread-cache limit, a
 * few huge; 320,000 blocks in all) with a pattern, and hands each batch
 * to a new thread (16 alive at a time) that checks the pattern and frees
 * the blocks. Such a thread's allocator state is first touched by free, so
 * its cache is set up there and must be flushed when it exits, or the
 * blocks it cached would stay allocated for good.
 *
 * Checked against a baseline taken after a warm-up (epoch + stats.allocated
 * with main's cache flushed): after all threads are joined and main's cache
 * is flushed, stats.allocated is back within 64 KiB of it (room for the C
 * library's own per-thread blocks, such as DTVs kept with cached stacks),
 * and the arenas count one bound thread (main) in stats.arenas.<all>.nthreads.
 * Works with and without thread caches. Prints one summary line; exit 77 when
 * the allocator has no mallctl.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "test_fill.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { NBATCHES = 2000, BATCH = 160, ALIVE = 16 };

typedef struct {
	size_t size;
	uint64_t tag;
} hdr_t;

typedef struct {
	hdr_t *blocks[BATCH];
	int bad;
} batch_t;

static batch_t batches[ALIVE];

static uint64_t
rng(uint64_t *s) {
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t
pick_size(uint64_t *s, unsigned k) {
	if (k % 4096 == 4095) {
		return 3 * MiB + rng(s) % MiB;
	}
	uint64_t r = rng(s) % 100;
	return r < 70   ? sizeof(hdr_t) + 2 + rng(s) % 1024
	       : r < 95 ? 1 * KiB + rng(s) % (31 * KiB)
	                : 33 * KiB + rng(s) % (200 * KiB);
}

/* The header, the first byte after it and the last byte carry the tag. */
static void
mark(hdr_t *h, size_t size, uint64_t tag) {
	h->size = size;
	h->tag = tag;
	((unsigned char *)h)[sizeof(hdr_t)] = (unsigned char)(tag >> 8);
	((unsigned char *)h)[size - 1] = (unsigned char)tag;
}

static bool
marked(const hdr_t *h, uint64_t tag) {
	return h->tag == tag &&
	       ((const unsigned char *)h)[sizeof(hdr_t)] == (unsigned char)(tag >> 8) &&
	       ((const unsigned char *)h)[h->size - 1] == (unsigned char)tag;
}

/* Checks and frees its batch: free() is its only allocator call. */
static void *
worker(void *arg) {
	batch_t *b = arg;
	for (int i = 0; i < BATCH; i++) {
		hdr_t *h = b->blocks[i];
		if (!marked(h, (uint64_t)(uintptr_t)h ^ 0x5a5a)) {
			b->bad++;
		}
		free(h);
	}
	return NULL;
}

static void
fill_batch(batch_t *b, uint64_t *s, unsigned *k) {
	b->bad = 0;
	for (int i = 0; i < BATCH; i++, (*k)++) {
		size_t size = pick_size(s, *k);
		hdr_t *h = malloc(size);
		if (h == NULL) {
			fprintf(stderr, "free_only_threads: FAIL: malloc(%zu) failed\n", size);
			exit(1);
		}
		mark(h, size, (uint64_t)(uintptr_t)h ^ 0x5a5a);
		b->blocks[i] = h;
	}
}

static void
refresh(void) {
	uint64_t e = 1;
	size_t sz = sizeof(e);
	mallctl("epoch", &e, &sz, &e, sizeof(e));
}

static size_t
allocated_now(void) {
	/* ENOENT without thread caches: nothing to flush. */
	mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
	refresh();
	size_t v = 0;
	size_t sz = sizeof(v);
	if (mallctl("stats.allocated", &v, &sz, NULL, 0) != 0) {
		fprintf(stderr, "free_only_threads: FAIL: stats.allocated unreadable\n");
		exit(1);
	}
	return v;
}

static unsigned
bound_threads(void) {
	unsigned n = 0, nthreads = 0;
	size_t sz = sizeof(n);
	mallctl("arenas.narenas", &n, &sz, NULL, 0);
	char name[64];
	snprintf(name, sizeof(name), "stats.arenas.%u.nthreads", n);
	sz = sizeof(nthreads);
	if (mallctl(name, &nthreads, &sz, NULL, 0) != 0) {
		fprintf(stderr, "free_only_threads: FAIL: %s unreadable\n", name);
		exit(1);
	}
	return nthreads;
}

/* Runs `n` batches, ALIVE threads at a time. */
static int
run_batches(unsigned n, uint64_t *s, unsigned *k) {
	pthread_t threads[ALIVE];
	int bad = 0;
	for (unsigned done = 0; done < n; done += ALIVE) {
		unsigned m = n - done < ALIVE ? n - done : ALIVE;
		for (unsigned i = 0; i < m; i++) {
			fill_batch(&batches[i], s, k);
		}
		for (unsigned i = 0; i < m; i++) {
			if (pthread_create(&threads[i], NULL, worker, &batches[i]) != 0) {
				fprintf(stderr, "free_only_threads: FAIL: pthread_create\n");
				exit(1);
			}
		}
		for (unsigned i = 0; i < m; i++) {
			pthread_join(threads[i], NULL);
			bad += batches[i].bad;
		}
	}
	return bad;
}

int
main(void) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("free_only_threads: the process allocator has no mallctl\n");
		return 77;
	}
	bool have_stats = false;
	size_t have_stats_len = sizeof(have_stats);
	if (mallctl("config.stats", &have_stats, &have_stats_len, NULL, 0) != 0 || !have_stats) {
		printf("free_only_threads: built without statistics (the check is stats.allocated "
		       "back to the baseline); skipped\n");
		return 77;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t s = 42;
	unsigned k = 0;
	/* Warm-up: as many threads as will be alive at once, so the C
	 * library's stack cache and its per-thread blocks are in place. */
	int bad = run_batches(ALIVE, &s, &k);
	size_t base = allocated_now();
	bad += run_batches(NBATCHES, &s, &k);
	size_t end = allocated_now();
	unsigned nthreads = bound_threads();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	long long diff = (long long)end - (long long)base;
	/* What main frees (the C library's per-thread data at joins) may sit
	 * in its quarantine (MALLOC_CONF=quarantine:N). */
	size_t slack = test_fill_quarantine_bytes() + 64 * KiB;
	if (bad != 0) {
		fprintf(stderr, "free_only_threads: FAIL: %d corrupted blocks\n", bad);
		return 1;
	}
	if (diff > (long long)slack || diff < -(long long)slack) {
		fprintf(stderr,
		        "free_only_threads: FAIL: stats.allocated %zu after the threads, %zu "
		        "before (%+lld bytes; bound %zu): blocks freed by exited threads "
		        "stayed cached\n",
		        end, base, diff, slack);
		return 1;
	}
	if (nthreads != 1) {
		fprintf(stderr,
		        "free_only_threads: FAIL: %u threads still bound to arenas after "
		        "the workers exited (expected 1, main)\n",
		        nthreads);
		return 1;
	}
	printf("free_only_threads: OK: %d threads freed %d blocks made by main; "
	       "stats.allocated %+lld bytes from the baseline, %.1f s\n",
	       NBATCHES, NBATCHES * BATCH, diff, secs);
	return 0;
}
