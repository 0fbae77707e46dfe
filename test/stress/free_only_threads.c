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
#include "test_rng.h"
#include "test_stats.h"

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

static size_t
pick_size(uint64_t *s, unsigned k) {
	if (k % 4096 == 4095) {
		return 3 * MiB + test_rng_next(s) % MiB;
	}
	uint64_t r = test_rng_next(s) % 100;
	return r < 70   ? sizeof(hdr_t) + 2 + test_rng_next(s) % 1024
	       : r < 95 ? 1 * KiB + test_rng_next(s) % (31 * KiB)
	                : 33 * KiB + test_rng_next(s) % (200 * KiB);
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

static size_t
allocated_now(void) {
	/* ENOENT without thread caches: nothing to flush. */
	mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
	return test_stats_allocated("free_only_threads");
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
	if (!test_stats_enabled()) {
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
	unsigned nthreads = test_stats_bound_threads("free_only_threads");
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
