/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * 100,000 live objects of seeded random sizes (mostly small, some large, a
 * few huge), each filled with its own pattern and checked before it is
 * freed. The objects are freed in a random order; in between, half of them
 * are replaced by new objects of new sizes, then random slots are freed or
 * refilled, so freed regions are reused while their neighbours are live. The
 * allocation function is varied too (malloc, calloc, aligned variants,
 * realloc of a fresh block), since all of them share the same heap.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_check.h"

#include "test_quantum.h"
#include "test_rng.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { NOBJ = 100000 };

struct obj {
	unsigned char *p;
	size_t size;
	uint32_t seed;
};

static struct obj objs[NOBJ];
static uint32_t order[NOBJ];
static uint64_t rng_state;
/* The allocator's quantum (test_quantum.h), read once in main. */
static size_t quantum;

static uint64_t
rng(void) {
	return test_rng_next(&rng_state);
}

/* Mostly small (as in real programs), some large, very few huge: ~250 MiB. */
static size_t
random_size(void) {
	uint64_t r = rng() % 100000;
	if (r < 60000)
		return 1 + rng() % 128;
	if (r < 90000)
		return 1 + rng() % 1024;
	if (r < 98000)
		return 1 + rng() % (14 * KiB);
	if (r < 99980)
		return 14 * KiB + rng() % (100 * KiB);
	return 2 * MiB + rng() % (3 * MiB);
}

/* Pattern derived from the seed; the first bytes of each object encode its index. */
static void
fill(unsigned char *p, size_t n, uint32_t seed) {
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 13 + (i >> 8));
}

static size_t
check(const unsigned char *p, size_t n, uint32_t seed) {
	for (size_t i = 0; i < n; i++) {
		if (p[i] != (unsigned char)(seed + i * 13 + (i >> 8)))
			return i;
	}
	return n;
}

static void
make(struct obj *o, uint32_t index) {
	size_t n = random_size();
	unsigned char *p = NULL;
	switch (rng() % 8) {
	case 0:
		p = calloc(1, n);
		if (p != NULL) {
			for (size_t i = 0; i < n; i++)
				CHECK(p[i] == 0, "calloc(1, %zu) byte %zu not zero", n, i);
		}
		break;
	case 1:
		p = aligned_alloc(64, n);
		CHECK(p == NULL || ((uintptr_t)p & 63) == 0, "aligned_alloc(64) misaligned");
		break;
	case 2: {
		void *q = NULL;
		size_t a = (size_t)1 << (3 + rng() % 10);
		CHECK(posix_memalign(&q, a, n) == 0, "posix_memalign(%zu, %zu)", a, n);
		CHECK(((uintptr_t)q & (a - 1)) == 0, "posix_memalign(%zu) misaligned", a);
		p = q;
		break;
	}
	case 3:
		p = realloc(NULL, n);
		break;
	case 4:
		p = malloc(1 + n / 2);
		CHECK(p != NULL, "malloc");
		p = realloc(p, n);
		break;
	default:
		p = malloc(n);
		break;
	}
	CHECK(p != NULL, "allocation of %zu bytes failed", n);
	CHECK(((uintptr_t)p & (test_quantum_min_align(n, quantum) - 1)) == 0,
	      "%zu-byte object %p misaligned", n, p);
	o->p = p;
	o->size = n;
	o->seed = (uint32_t)rng() ^ index;
	fill(p, n, o->seed);
}

static void
destroy(struct obj *o, uint32_t index) {
	size_t bad = check(o->p, o->size, o->seed);
	CHECK(bad == o->size, "object %u (%zu bytes at %p) corrupted at byte %zu", index, o->size,
	      (void *)o->p, bad);
	free(o->p);
	o->p = NULL;
}

static void
shuffle(uint32_t *a, uint32_t n) {
	for (uint32_t i = 0; i < n; i++)
		a[i] = i;
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(rng() % (i + 1));
		uint32_t t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
}

static void
run(uint64_t seed) {
	rng_state = seed;
	size_t total = 0;
	for (uint32_t i = 0; i < NOBJ; i++) {
		make(&objs[i], i);
		total += objs[i].size;
	}
	/* Replace a random half: each freed region is reused next to live objects. */
	shuffle(order, NOBJ);
	for (uint32_t k = 0; k < NOBJ / 2; k++) {
		uint32_t i = order[k];
		destroy(&objs[i], i);
		make(&objs[i], i);
	}
	/* Random churn: free a random live object or refill an empty slot. */
	for (uint32_t k = 0; k < NOBJ; k++) {
		uint32_t i = (uint32_t)(rng() % NOBJ);
		if (objs[i].p != NULL)
			destroy(&objs[i], i);
		else
			make(&objs[i], i);
	}
	/* Free everything in a fresh random order. */
	shuffle(order, NOBJ);
	for (uint32_t k = 0; k < NOBJ; k++) {
		uint32_t i = order[k];
		if (objs[i].p != NULL)
			destroy(&objs[i], i);
	}
	print_message("# seed %#llx: %d objects, %zu MiB in the first generation\n",
	              (unsigned long long)seed, NOBJ, total >> 20);
}

static void
test_seed_1(void **state) {
	(void)state;
	run(1);
}

static void
test_seed_2(void **state) {
	(void)state;
	run(0xdeadbeef);
}

int
main(void) {
	quantum = test_quantum();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seed_1),
	    cmocka_unit_test(test_seed_2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
