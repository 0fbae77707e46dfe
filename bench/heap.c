/*
 * heap: the private-heap measurements of scripts/bench-heap.
 *
 *   heap pair SIZE N [shared]
 *
 * creates a heap in a 64 MiB anonymous mapping (ALLOC_HEAP_SHARED when
 * asked), keeps one block of SIZE live (so its run stays), warms up with
 * 1000 pairs, then calls run_loop(SIZE, N): N pairs of
 * p = alloc_heap_malloc(h, SIZE); sink = p; alloc_heap_free(h, p). The
 * runner counts the instructions inside run_loop with callgrind for N and
 * 2N pairs; per pair = (I(2N) - I(N)) / N, the loop's own included, as for
 * bench/instr.c.
 *
 *   heap reset ROUNDS
 *
 * fills a heap in a 64 MiB mapping with 1,000,000 blocks of 16 bytes, times
 * alloc_heap_reset (CLOCK_MONOTONIC), refills, ROUNDS times, and prints the
 * median and the smallest time in milliseconds.
 *
 * Linked against lib/liballoc.so (the heap API is liballoc's own).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "alloc.h"

#define REGION ((size_t)64 << 20)

void *volatile sink;
static alloc_heap_t *heap;

__attribute__((noinline)) void
run_loop(size_t size, long n) {
	for (long i = 0; i < n; i++) {
		void *p = alloc_heap_malloc(heap, size);
		sink = p;
		alloc_heap_free(heap, p);
	}
}

static alloc_heap_t *
heap_new(unsigned flags) {
	void *r = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	alloc_heap_t *h = r == MAP_FAILED ? NULL : alloc_heap_create(r, REGION, flags);
	if (h == NULL) {
		perror("alloc_heap_create");
		exit(1);
	}
	return h;
}

static int
cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv) {
	if (argc >= 4 && strcmp(argv[1], "pair") == 0) {
		size_t size = (size_t)strtoul(argv[2], NULL, 10);
		long n = strtol(argv[3], NULL, 10);
		heap = heap_new(argc > 4 && strcmp(argv[4], "shared") == 0 ? ALLOC_HEAP_SHARED : 0);
		void *keep = alloc_heap_malloc(heap, size);
		for (int i = 0; i < 1000; i++) {
			void *p = alloc_heap_malloc(heap, size);
			if (p == NULL) {
				return 1;
			}
			sink = p;
			alloc_heap_free(heap, p);
		}
		run_loop(size, n);
		alloc_heap_free(heap, keep);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "reset") == 0) {
		int rounds = atoi(argv[2]);
		if (rounds < 1 || rounds > 100) {
			return 2;
		}
		heap = heap_new(0);
		double ms[100];
		for (int r = 0; r < rounds; r++) {
			for (int i = 0; i < 1000000; i++) {
				if (alloc_heap_malloc(heap, 16) == NULL) {
					fprintf(stderr, "heap full after %d blocks\n", i);
					return 1;
				}
			}
			struct timespec a, b;
			clock_gettime(CLOCK_MONOTONIC, &a);
			alloc_heap_reset(heap);
			clock_gettime(CLOCK_MONOTONIC, &b);
			ms[r] = (double)(b.tv_sec - a.tv_sec) * 1e3 +
			        (double)(b.tv_nsec - a.tv_nsec) / 1e6;
		}
		qsort(ms, (size_t)rounds, sizeof(ms[0]), cmp_double);
		printf("%.4f %.4f\n", ms[rounds / 2], ms[0]);
		return 0;
	}
	fprintf(stderr, "usage: heap pair SIZE N [shared] | heap reset ROUNDS\n");
	return 2;
}
