/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Thread churn: 1,000 threads are created and joined, so the allocator sets
 * up and tears down per-thread state (thread caches, arena bindings) over and
 * over, and blocks outlive the threads that made them.
 *
 *  - 875 threads with at most 8 alive at a time (a sliding window);
 *  - a burst of 100 threads that are all alive at once (they meet at a
 *    barrier before working);
 *  - 25 threads whose only allocator call is free() of a block that main
 *    allocated (so a thread's allocator state may first be touched by free).
 *
 * Each worker allocates and frees a few hundred blocks of mixed sizes, and
 * swaps a few blocks with a shared pool, freeing blocks made by threads that
 * have already exited. Every block carries a pattern checked before free.
 * Prints a one-line summary; exits non-zero on the first corrupted block.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_rng.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { WINDOW = 8, NWINDOW = 875, NBURST = 100, NFREEONLY = 25, POOL = 512, PER_THREAD = 300 };

struct blk {
	size_t size;
	uint64_t seed;
	uint64_t data[]; /* size / 8 pattern words */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct blk *pool[POOL];
static pthread_barrier_t burst_barrier;
static uint64_t remote_frees; /* under pool_lock */

static void
die(const char *what, const struct blk *b) {
	fprintf(stderr, "thread_churn: FAIL: %s (block %p, size %zu)\n", what, (const void *)b,
	        b ? b->size : 0);
	abort();
}

static unsigned char
pattern(uint64_t seed, size_t i) {
	return (unsigned char)(seed + i * 11 + (i >> 9));
}

static struct blk *
blk_new(uint64_t *s) {
	uint64_t r = test_rng_next(s) % 1000;
	size_t n = r < 940   ? test_rng_next(s) % 512
	           : r < 999 ? test_rng_next(s) % (64 * KiB)
	                     : 2 * MiB + test_rng_next(s) % MiB;
	struct blk *b = malloc(sizeof(*b) + n);
	if (b == NULL)
		die("malloc failed", NULL);
	b->size = n;
	b->seed = test_rng_next(s);
	for (size_t i = 0; i < n / 8; i++)
		b->data[i] = pattern(b->seed, i);
	return b;
}

static void
blk_free(struct blk *b) {
	for (size_t i = 0; i < b->size / 8; i++) {
		if (b->data[i] != pattern(b->seed, i))
			die("pattern damaged", b);
	}
	free(b);
}

static void
work(uint64_t seed) {
	uint64_t s = seed;
	struct blk *mine[64] = {0};
	for (int k = 0; k < PER_THREAD; k++) {
		int i = (int)(test_rng_next(&s) % 64);
		if (mine[i] != NULL)
			blk_free(mine[i]);
		mine[i] = blk_new(&s);
	}
	/* Leave a few blocks to later threads, take what earlier threads left. */
	for (int k = 0; k < 8; k++) {
		int i = (int)(test_rng_next(&s) % 64);
		if (mine[i] == NULL)
			continue;
		size_t slot = (size_t)(test_rng_next(&s) % POOL);
		pthread_mutex_lock(&pool_lock);
		struct blk *old = pool[slot];
		pool[slot] = mine[i];
		if (old != NULL)
			remote_frees++;
		pthread_mutex_unlock(&pool_lock);
		mine[i] = old;
	}
	for (int i = 0; i < 64; i++) {
		if (mine[i] != NULL)
			blk_free(mine[i]);
	}
}

static void *
window_thread(void *arg) {
	work((uint64_t)(uintptr_t)arg);
	return NULL;
}

static void *
burst_thread(void *arg) {
	int r = pthread_barrier_wait(&burst_barrier);
	if (r != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD)
		die("barrier", NULL);
	work((uint64_t)(uintptr_t)arg);
	return NULL;
}

/* The only allocator call in this thread is free(). */
static void *
free_only_thread(void *arg) {
	struct blk *b = arg;
	for (size_t i = 0; i < b->size / 8; i++) {
		if (b->data[i] != pattern(b->seed, i))
			die("pattern damaged before free-only thread", b);
	}
	free(b);
	return NULL;
}

static void
start(pthread_t *t, void *(*fn)(void *), void *arg) {
	int err = pthread_create(t, NULL, fn, arg);
	if (err != 0) {
		fprintf(stderr, "thread_churn: FAIL: pthread_create: %s\n", strerror(err));
		exit(1);
	}
}

int
main(void) {
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int created = 0;

	/* 875 threads, never more than WINDOW alive. */
	pthread_t win[WINDOW];
	for (int k = 0; k < NWINDOW; k++) {
		if (k >= WINDOW)
			pthread_join(win[k % WINDOW], NULL);
		start(&win[k % WINDOW], window_thread, (void *)(uintptr_t)(k + 1));
		created++;
	}
	for (int k = NWINDOW - WINDOW; k < NWINDOW; k++)
		pthread_join(win[k % WINDOW], NULL);

	/* 100 threads alive at the same time. */
	static pthread_t burst[NBURST];
	pthread_barrier_init(&burst_barrier, NULL, NBURST);
	for (int k = 0; k < NBURST; k++) {
		start(&burst[k], burst_thread, (void *)(uintptr_t)(10000 + k));
		created++;
	}
	for (int k = 0; k < NBURST; k++)
		pthread_join(burst[k], NULL);
	pthread_barrier_destroy(&burst_barrier);

	/* Threads that only free a block main made (small, large and huge). */
	uint64_t s = 99;
	for (int k = 0; k < NFREEONLY; k++) {
		size_t n = k % 5 == 4 ? 3 * MiB : k % 5 == 3 ? 40 * KiB : (size_t)k * 24;
		struct blk *b = malloc(sizeof(*b) + n);
		if (b == NULL)
			die("malloc failed", NULL);
		b->size = n;
		b->seed = test_rng_next(&s);
		for (size_t i = 0; i < n / 8; i++)
			b->data[i] = pattern(b->seed, i);
		pthread_t t;
		start(&t, free_only_thread, b);
		created++;
		pthread_join(t, NULL);
	}

	/* Blocks left in the pool were made by threads that are gone. */
	size_t left = 0;
	for (size_t i = 0; i < POOL; i++) {
		if (pool[i] != NULL) {
			blk_free(pool[i]);
			pool[i] = NULL;
			left++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("thread_churn: OK: %d threads, %llu blocks freed by a later thread, %zu freed "
	       "by main, %.1f s\n",
	       created, (unsigned long long)remote_frees, left,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
	return created == 1000 ? 0 : 1;
}
