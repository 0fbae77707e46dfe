/*
 * larson: a server simulation in the style of the Larson & Krishnan benchmark.
 *
 * A shared array of slots holds live blocks. Each worker thread repeatedly
 * picks a random slot, allocates a new block of random size, and swaps it into
 * the slot (atomic exchange); the block it took out, usually allocated by some
 * other thread, is checked and freed. With T threads about (T-1)/T of the frees
 * are remote frees; the workload counts them and reports the fraction.
 *
 * Each block starts with a header word (size, allocating thread) and carries a
 * stamp derived from its address and header, checked before it is freed.
 */
#include "common.h"
#include <pthread.h>
#include <stdatomic.h>

static const char *NAME = "larson";

#define NSLOTS 20000
static _Atomic(unsigned char *) slots[NSLOTS];

struct worker {
	pthread_t th;
	unsigned id;
	uint64_t ops, seed;
	uint64_t remote, frees, bytes;
	char pad[64];
};

static uint64_t
block_tag(const unsigned char *p, uint64_t meta) {
	return mix64((uint64_t)(uintptr_t)p ^ meta);
}

static unsigned char *
block_new(size_t n, unsigned tid) {
	unsigned char *p = malloc(n);
	if (!p)
		bench_fail(NAME, "malloc(%zu) returned NULL", n);
	uint64_t meta = ((uint64_t)n << 32) | tid;
	put64(p, meta);
	stamp(p + 8, n - 8, block_tag(p, meta));
	return p;
}

/* Check and free; returns the id of the allocating thread. */
static unsigned
block_free(unsigned char *p) {
	uint64_t meta = get64(p);
	size_t n = (size_t)(meta >> 32);
	unsigned tid = (unsigned)(meta & 0xffffffffu);
	if (n < 16 || n > 4096 || !stamp_ok(p + 8, n - 8, block_tag(p, meta)))
		bench_fail(NAME, "block %p corrupted (header %016llx)", (void *)p,
		           (unsigned long long)meta);
	free(p);
	return tid;
}

static void *
work(void *arg) {
	struct worker *w = arg;
	uint64_t rng = w->seed;

	for (uint64_t i = 0; i < w->ops; i++) {
		uint64_t r = rng_next(&rng);
		size_t n = 16 + (size_t)((r >> 20) % 1009);
		unsigned char *b = block_new(n, w->id);
		w->bytes += n;
		unsigned char *old =
		    atomic_exchange_explicit(&slots[r % NSLOTS], b, memory_order_acq_rel);
		if (old) {
			if (block_free(old) != w->id)
				w->remote++;
			w->frees++;
		}
	}
	return NULL;
}

int
main(int argc, char **argv) {
	struct bench_opts o;

	bench_parse(&o, argc, argv, NAME, "threads replace random slots of a shared array", 4);
	uint64_t ops = bench_scaled(&o, 24e6, 40000) / (uint64_t)o.threads;
	struct worker *ws = bench_map(NAME, sizeof *ws * (size_t)o.threads);
	double t0 = bench_now();

	/* the main thread fills the array first (id = threads) */
	uint64_t rng = o.seed;
	for (unsigned i = 0; i < NSLOTS; i++)
		slots[i] = block_new(16 + (size_t)(rng_next(&rng) % 1009), (unsigned)o.threads);

	for (int t = 0; t < o.threads; t++) {
		ws[t].id = (unsigned)t;
		ws[t].ops = ops;
		ws[t].seed = o.seed + 7919u * (uint64_t)(t + 1);
		if (pthread_create(&ws[t].th, NULL, work, &ws[t]))
			bench_fail(NAME, "pthread_create failed");
	}
	uint64_t remote = 0, frees = 0;
	for (int t = 0; t < o.threads; t++) {
		pthread_join(ws[t].th, NULL);
		remote += ws[t].remote;
		frees += ws[t].frees;
	}
	uint64_t left = 0;
	for (unsigned i = 0; i < NSLOTS; i++) {
		unsigned char *p = atomic_load(&slots[i]);
		if (p) {
			block_free(p);
			left++;
		}
	}
	/* every allocation was freed exactly once: by a worker or in the final sweep */
	if (frees + left != ops * (uint64_t)o.threads + NSLOTS)
		bench_fail(NAME, "count mismatch: %llu frees + %llu left != %llu allocations",
		           (unsigned long long)frees, (unsigned long long)left,
		           (unsigned long long)(ops * (uint64_t)o.threads + NSLOTS));
	bench_ok(&o, t0, "ops=%llu remote_free_fraction=%.3f",
	         (unsigned long long)(ops * (uint64_t)o.threads),
	         frees ? (double)remote / (double)frees : 0.0);
	return 0;
}
