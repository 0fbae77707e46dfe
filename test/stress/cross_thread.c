/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Four threads allocate blocks and swap them into a shared array of slots
 * with an atomic exchange; whatever block comes out of a slot, made by any
 * thread, is verified and freed (or resized and put back) by the thread that
 * took it. So most frees are remote: the block goes back to an arena or
 * thread cache of another thread. Each block carries a header (magic, owner,
 * size, seed) and a pattern derived from the seed over its whole length.
 * Sizes are mostly small, some large, occasionally huge. Runs for
 * STRESS_SECONDS (default 6) and prints a one-line summary; exits non-zero
 * on the first corrupted block.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_rng.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { NTHREADS = 4, NSLOTS = 4096, MAGIC = 0xb10cb10c };

struct block {
	uint32_t magic;
	uint32_t owner;
	size_t size; /* whole block, header included */
	uint64_t seed;
	uint64_t data[];
};

static _Atomic(struct block *) slots[NSLOTS];
static atomic_bool stop;

struct stats {
	uint64_t ops, remote_frees, huge, reallocs;
};

static void
die(const char *what, const struct block *b, size_t where) {
	fprintf(stderr, "cross_thread: FAIL: %s (block %p size %zu owner %u, offset %zu)\n", what,
	        (const void *)b, b ? b->size : 0, b ? b->owner : 0, where);
	abort();
}

static uint64_t
word(uint64_t seed, size_t i) {
	return seed ^ (i * 0x9e3779b97f4a7c15ull);
}

static void
block_fill(struct block *b, uint32_t owner, size_t size, uint64_t seed) {
	b->magic = MAGIC;
	b->owner = owner;
	b->size = size;
	b->seed = seed;
	size_t words = (size - sizeof(*b)) / 8;
	for (size_t i = 0; i < words; i++)
		b->data[i] = word(seed, i);
}

static void
block_verify(const struct block *b) {
	if (b->magic != MAGIC)
		die("bad magic", b, 0);
	size_t words = (b->size - sizeof(*b)) / 8;
	for (size_t i = 0; i < words; i++) {
		if (b->data[i] != word(b->seed, i))
			die("pattern damaged", b, sizeof(*b) + i * 8);
	}
}

static size_t
random_size(uint64_t *s) {
	uint64_t r = test_rng_next(s) % 10000;
	if (r < 8500)
		return sizeof(struct block) + test_rng_next(s) % 512;
	if (r < 9500)
		return 512 + test_rng_next(s) % (14 * KiB);
	if (r < 9995)
		return 14 * KiB + test_rng_next(s) % (500 * KiB);
	return 2 * MiB + test_rng_next(s) % (4 * MiB);
}

static struct block *
block_new(uint32_t owner, uint64_t *s, struct stats *st) {
	size_t n = random_size(s);
	struct block *b;
	uint64_t how = test_rng_next(s) % 16;
	if (how == 0) {
		b = calloc(1, n);
		if (b != NULL && (b->magic != 0 || b->size != 0))
			die("calloc block not zero", b, 0);
	} else if (how == 1) {
		void *p = NULL;
		b = posix_memalign(&p, (size_t)64 << (test_rng_next(s) % 6), n) == 0 ? p : NULL;
	} else {
		b = malloc(n);
	}
	if (b == NULL)
		die("allocation failed", NULL, n);
	if (n >= 2 * MiB)
		st->huge++;
	block_fill(b, owner, n, test_rng_next(s));
	return b;
}

static double
now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *
worker(void *arg) {
	uint32_t self = (uint32_t)(uintptr_t)arg;
	uint64_t s = 0x1234567ull * (self + 1);
	struct stats *st = calloc(1, sizeof(*st));
	if (st == NULL)
		die("calloc stats", NULL, 0);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		size_t i = (size_t)(test_rng_next(&s) % NSLOTS);
		uint64_t action = test_rng_next(&s) % 100;
		if (action < 90) {
			/* Put a new block in, free whatever was there. */
			struct block *nb = block_new(self, &s, st);
			struct block *old = atomic_exchange(&slots[i], nb);
			if (old != NULL) {
				block_verify(old);
				if (old->owner != self)
					st->remote_frees++;
				free(old);
			}
		} else {
			/* Take a block out, resize it (often someone else's), put it back. */
			struct block *old = atomic_exchange(&slots[i], NULL);
			if (old != NULL) {
				block_verify(old);
				size_t n = random_size(&s);
				struct block *nb = realloc(old, n);
				if (nb == NULL)
					die("realloc failed", old, n);
				size_t keep = (nb->size < n ? nb->size : n) - sizeof(*nb);
				for (size_t w = 0; w < keep / 8; w++) {
					if (nb->data[w] != word(nb->seed, w))
						die("realloc lost contents", nb, w * 8);
				}
				block_fill(nb, self, n, test_rng_next(&s));
				st->reallocs++;
				nb = atomic_exchange(&slots[i], nb);
				if (nb != NULL) {
					block_verify(nb);
					free(nb);
				}
			}
		}
		st->ops++;
	}
	return st;
}

int
main(void) {
	const char *env = getenv("STRESS_SECONDS");
	double seconds = env ? atof(env) : 6.0;
	pthread_t threads[NTHREADS];
	double start = now();
	for (uintptr_t t = 0; t < NTHREADS; t++) {
		if (pthread_create(&threads[t], NULL, worker, (void *)t) != 0)
			die("pthread_create", NULL, 0);
	}
	while (now() - start < seconds) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop, 1);
	struct stats total = {0};
	for (int t = 0; t < NTHREADS; t++) {
		struct stats *st;
		pthread_join(threads[t], (void **)&st);
		total.ops += st->ops;
		total.remote_frees += st->remote_frees;
		total.huge += st->huge;
		total.reallocs += st->reallocs;
		free(st);
	}
	for (size_t i = 0; i < NSLOTS; i++) {
		struct block *b = atomic_exchange(&slots[i], NULL);
		if (b != NULL) {
			block_verify(b);
			free(b);
		}
	}
	printf("cross_thread: OK: %d threads, %llu ops, %llu remote frees, %llu reallocs, "
	       "%llu huge, %.1f s\n",
	       NTHREADS, (unsigned long long)total.ops, (unsigned long long)total.remote_frees,
	       (unsigned long long)total.reallocs, (unsigned long long)total.huge, now() - start);
	return 0;
}
