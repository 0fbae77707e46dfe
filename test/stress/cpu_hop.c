/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Per-CPU arenas under migration. liballoc picks a thread's arena by the CPU
 * it runs on, so several threads on one CPU, and a thread that moves between
 * CPUs in the middle of an operation, must still be safe. Here 2 * ncpu + 2
 * threads (at least 6) allocate, realloc and free mixed sizes, hand blocks
 * to each other through a shared array of slots, and every few hundred
 * operations pin themselves to another CPU with sched_setaffinity (or yield,
 * where that is not allowed). Every block carries a header and a pattern
 * checked by whichever thread frees it. Runs for STRESS_SECONDS (default 5)
 * and prints a one-line summary; exits non-zero on the first damaged block.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "test_rng.h"

/* Per-CPU arenas from the start: threads that do not contend would
 * otherwise all share arena 0 (opt.percpu_arena_waits), and this test is
 * about threads moving between per-CPU arenas. */
const char *ALLOC_API(malloc_conf) = "percpu_arena_waits:0";

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { NSLOTS = 1024, MAXTHREADS = 64, MAGIC = 0x4e0b };

struct block {
	uint32_t magic;
	uint32_t owner;
	size_t size;
	uint64_t seed;
	uint64_t data[];
};

static _Atomic(struct block *) slots[NSLOTS];
static atomic_bool stop;
static atomic_ulong total_ops, total_hops, total_remote;
static cpu_set_t allowed;
static int ncpus_allowed;

static void
die(const char *what, const struct block *b) {
	fprintf(stderr, "cpu_hop: FAIL: %s (block %p, size %zu, owner %u)\n", what, (const void *)b,
	        b ? b->size : 0, b ? b->owner : 0);
	abort();
}

static uint64_t
word(uint64_t seed, size_t i) {
	return seed ^ (i * 0x9e3779b97f4a7c15ull);
}

static size_t
words_of(size_t size) {
	return (size - sizeof(struct block)) / 8;
}

static struct block *
block_new(uint32_t owner, uint64_t *s) {
	uint64_t r = test_rng_next(s) % 1000;
	size_t n = sizeof(struct block) + (r < 850   ? test_rng_next(s) % 256
	                                   : r < 990 ? test_rng_next(s) % (14 * KiB)
	                                   : r < 999 ? 14 * KiB + test_rng_next(s) % (200 * KiB)
	                                             : 2 * MiB + test_rng_next(s) % MiB);
	struct block *b = malloc(n);
	if (b == NULL)
		die("malloc failed", NULL);
	b->magic = MAGIC;
	b->owner = owner;
	b->size = n;
	b->seed = test_rng_next(s);
	for (size_t i = 0; i < words_of(n); i++)
		b->data[i] = word(b->seed, i);
	return b;
}

static void
block_check(const struct block *b) {
	if (b->magic != MAGIC)
		die("bad magic", b);
	for (size_t i = 0; i < words_of(b->size); i++) {
		if (b->data[i] != word(b->seed, i))
			die("pattern damaged", b);
	}
}

/* Pins the calling thread to the k-th allowed CPU. */
static void
hop(uint64_t k) {
	int target = (int)(k % (uint64_t)ncpus_allowed);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (CPU_ISSET(cpu, &allowed) && target-- == 0) {
			cpu_set_t one;
			CPU_ZERO(&one);
			CPU_SET(cpu, &one);
			if (sched_setaffinity(0, sizeof(one), &one) != 0)
				sched_yield();
			return;
		}
	}
}

static void *
worker(void *arg) {
	uint32_t self = (uint32_t)(uintptr_t)arg;
	uint64_t s = 0xabcdefull * (self + 1);
	unsigned long ops = 0, hops = 0, remote = 0;
	struct block *mine[8] = {0};
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if (test_rng_next(&s) % 256 == 0) {
			hop(test_rng_next(&s));
			hops++;
		}
		uint64_t r = test_rng_next(&s) % 100;
		if (r < 60) {
			struct block *old = atomic_exchange(&slots[test_rng_next(&s) % NSLOTS],
			                                    block_new(self, &s));
			if (old != NULL) {
				block_check(old);
				remote += old->owner != self;
				free(old);
			}
		} else if (r < 90) {
			int i = (int)(test_rng_next(&s) % 8);
			if (mine[i] != NULL) {
				block_check(mine[i]);
				free(mine[i]);
			}
			mine[i] = block_new(self, &s);
		} else {
			int i = (int)(test_rng_next(&s) % 8);
			if (mine[i] == NULL)
				continue;
			size_t keep = words_of(mine[i]->size);
			size_t n = sizeof(struct block) +
			           test_rng_next(&s) % (r < 98 ? 4 * KiB : 300 * KiB);
			struct block *b = realloc(mine[i], n);
			if (b == NULL)
				die("realloc failed", mine[i]);
			if (words_of(n) < keep)
				keep = words_of(n);
			for (size_t w = 0; w < keep; w++) {
				if (b->data[w] != word(b->seed, w))
					die("realloc lost contents", b);
			}
			b->size = n;
			b->owner = self;
			b->seed = test_rng_next(&s);
			for (size_t w = 0; w < words_of(n); w++)
				b->data[w] = word(b->seed, w);
			mine[i] = b;
		}
		ops++;
	}
	for (int i = 0; i < 8; i++) {
		if (mine[i] != NULL) {
			block_check(mine[i]);
			free(mine[i]);
		}
	}
	atomic_fetch_add(&total_ops, ops);
	atomic_fetch_add(&total_hops, hops);
	atomic_fetch_add(&total_remote, remote);
	return NULL;
}

int
main(void) {
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		CPU_ZERO(&allowed);
	ncpus_allowed = CPU_COUNT(&allowed);
	if (ncpus_allowed < 1) {
		ncpus_allowed = 1;
		CPU_SET(0, &allowed);
	}
	int nthreads = 2 * ncpus_allowed + 2;
	if (nthreads < 6)
		nthreads = 6;
	if (nthreads > MAXTHREADS)
		nthreads = MAXTHREADS;
	const char *env = getenv("STRESS_SECONDS");
	double seconds = env && atof(env) > 0 ? atof(env) : 5.0;

	pthread_t t[MAXTHREADS];
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) != 0)
			die("pthread_create", NULL);
	}
	struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	for (size_t i = 0; i < NSLOTS; i++) {
		struct block *b = atomic_exchange(&slots[i], NULL);
		if (b != NULL) {
			block_check(b);
			free(b);
		}
	}
	printf("cpu_hop: OK: %d threads on %d CPUs, %lu ops, %lu CPU hops, %lu remote frees, "
	       "%.1f s\n",
	       nthreads, ncpus_allowed, atomic_load(&total_ops), atomic_load(&total_hops),
	       atomic_load(&total_remote), seconds);
	return 0;
}
