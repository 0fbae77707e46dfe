/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Memory must not pile up when threads come and go. 1,000 threads (16 alive
 * at a time) each allocate 1 MiB in total, in blocks of mixed sizes that are
 * all touched and kept until the thread has allocated its megabyte, then
 * free them and exit. Whatever a thread caches must be returned or reused
 * when it exits: if per-thread caches or per-thread metadata leaked, RSS
 * would reach about 1 GiB. Resident memory, read from /proc/self/statm after
 * every join, must stay within 512 MiB of the starting point (generous: the
 * live data at any time is ~16 MiB). Prints the peak growth.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_rng.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { NTHREADS = 1000, ALIVE = 16, MAX_BLOCKS = 4096 };
static const size_t bound = 512 * MiB;

static size_t
rss_bytes(void) {
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, resident = 0;
	if (f == NULL || fscanf(f, "%lu %lu", &size, &resident) != 2) {
		fprintf(stderr, "thread_rss: FAIL: cannot read /proc/self/statm\n");
		exit(1);
	}
	fclose(f);
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void *
worker(void *arg) {
	uint64_t s = (uint64_t)(uintptr_t)arg;
	unsigned char *blocks[MAX_BLOCKS];
	size_t total = 0;
	int n = 0;
	while (total < 1 * MiB && n < MAX_BLOCKS) {
		uint64_t r = test_rng_next(&s) % 100;
		size_t size = r < 80   ? 8 + test_rng_next(&s) % 512
		              : r < 98 ? 1 + test_rng_next(&s) % (16 * KiB)
		                       : 16 * KiB + test_rng_next(&s) % (128 * KiB);
		blocks[n] = malloc(size);
		if (blocks[n] == NULL)
			return (void *)1;
		memset(blocks[n], (int)(n & 0xff), size);
		total += size;
		n++;
	}
	/* Free in an order that is neither LIFO nor FIFO. */
	for (int k = 0; k < n; k += 2)
		free(blocks[k]);
	for (int k = n - 1 - (n % 2 == 0 ? 0 : 1); k >= 1; k -= 2)
		free(blocks[k]);
	return NULL;
}

int
main(void) {
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Warm up: allocator initialised, a thread created once (stacks, TLS). */
	pthread_t warm;
	pthread_create(&warm, NULL, worker, (void *)(uintptr_t)7);
	pthread_join(warm, NULL);
	size_t base = rss_bytes(), peak = base;

	pthread_t threads[ALIVE];
	for (int k = 0; k < NTHREADS; k++) {
		if (k >= ALIVE) {
			void *ret;
			pthread_join(threads[k % ALIVE], &ret);
			if (ret != NULL) {
				fprintf(stderr, "thread_rss: FAIL: malloc failed in a thread\n");
				return 1;
			}
			size_t rss = rss_bytes();
			if (rss > peak)
				peak = rss;
			if (rss > base + bound) {
				fprintf(stderr,
				        "thread_rss: FAIL: RSS grew by %zu MiB after %d threads "
				        "(bound %zu MiB): memory of exited threads not reused\n",
				        (rss - base) >> 20, k - ALIVE + 1, bound >> 20);
				return 1;
			}
		}
		int err =
		    pthread_create(&threads[k % ALIVE], NULL, worker, (void *)(uintptr_t)(k + 100));
		if (err != 0) {
			fprintf(stderr, "thread_rss: FAIL: pthread_create: %s\n", strerror(err));
			return 1;
		}
	}
	for (int k = NTHREADS - ALIVE; k < NTHREADS; k++)
		pthread_join(threads[k % ALIVE], NULL);
	size_t end = rss_bytes();
	if (end > peak)
		peak = end;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (peak > base + bound) {
		fprintf(stderr, "thread_rss: FAIL: RSS grew by %zu MiB (bound %zu MiB)\n",
		        (peak - base) >> 20, bound >> 20);
		return 1;
	}
	printf("thread_rss: OK: %d threads x 1 MiB, RSS %zu MiB at start, peak +%zu MiB, end "
	       "+%ld MiB, %.1f s\n",
	       NTHREADS, base >> 20, (peak - base) >> 20,
	       (long)((long long)end - (long long)base) / (long)MiB,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
	return 0;
}
