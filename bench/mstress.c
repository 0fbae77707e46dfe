/*
 * mstress: short-lived threads allocating in bursts (the mstress pattern).
 *
 * The main thread runs waves: each wave starts --threads threads (default 8)
 * at once and joins them. A thread allocates a burst of 2,000 blocks (16 bytes
 * to 4 KiB, some of 16..64 KiB), frees most of them in random order, frees the
 * blocks a thread of the previous wave left in its slot, leaves 100 of its own
 * there for the next wave, and exits. So every wave pays for thread set-up
 * and teardown (cache creation, flush, arena choice), a burst of allocation,
 * and frees of blocks whose owner thread has exited.
 *
 * Each block carries a header (size, tag) and a stamp checked before it is
 * freed; the counts must balance at the end.
 */
#include "common.h"
#include <pthread.h>
#include <stdatomic.h>

static const char *NAME = "mstress";

#define BURST  2000
#define KEEP   100
#define MAXTHR 256

struct slot {
	unsigned char *kept[KEEP];
	pthread_t th;
	uint64_t seed;
};

static struct slot *slots;
static _Atomic uint64_t allocs, frees;

static void *
work(void *arg) {
	struct slot *s = arg;
	uint64_t rng = s->seed;
	unsigned char *b[BURST];

	for (unsigned i = 0; i < BURST; i++) {
		uint64_t r = rng_next(&rng);
		size_t n = (r & 31) == 0 ? (size_t)rng_range(&rng, 16384, 65536)
		                         : (size_t)rng_range(&rng, 16, 4096);
		b[i] = hblock_new(NAME, n, rng_next(&rng) & 0xffffffffff);
	}
	/* shuffle, free all but KEEP */
	for (unsigned i = BURST - 1; i > 0; i--) {
		unsigned j = (unsigned)rng_below(&rng, i + 1);
		unsigned char *t = b[i];
		b[i] = b[j];
		b[j] = t;
	}
	for (unsigned i = KEEP; i < BURST; i++)
		hblock_free(NAME, b[i], 16, 65536);
	unsigned nf = BURST - KEEP;
	for (unsigned i = 0; i < KEEP; i++) {
		if (s->kept[i]) {
			hblock_free(NAME, s->kept[i], 16, 65536);
			nf++;
		}
		s->kept[i] = b[i];
	}
	atomic_fetch_add(&allocs, BURST);
	atomic_fetch_add(&frees, nf);
	return NULL;
}

int
main(int argc, char **argv) {
	struct bench_opts o;

	bench_parse(&o, argc, argv, NAME, "waves of short-lived threads allocating in bursts", 8);
	if (o.threads > MAXTHR)
		bench_fail(NAME, "--threads must be at most %d", MAXTHR);
	uint64_t waves = bench_scaled(&o, 1500, 4);
	slots = bench_map(NAME, sizeof *slots * (size_t)o.threads);
	double t0 = bench_now();

	for (uint64_t w = 0; w < waves; w++) {
		for (int t = 0; t < o.threads; t++) {
			slots[t].seed = mix64(o.seed ^ (w * 1000003u + (uint64_t)t));
			if (pthread_create(&slots[t].th, NULL, work, &slots[t]))
				bench_fail(NAME, "pthread_create failed");
		}
		for (int t = 0; t < o.threads; t++)
			pthread_join(slots[t].th, NULL);
	}
	uint64_t left = 0;
	for (int t = 0; t < o.threads; t++)
		for (unsigned i = 0; i < KEEP; i++)
			if (slots[t].kept[i]) {
				hblock_free(NAME, slots[t].kept[i], 16, 65536);
				left++;
			}
	if (atomic_load(&frees) + left != atomic_load(&allocs))
		bench_fail(NAME, "count mismatch: %llu allocated, %llu freed",
		           (unsigned long long)atomic_load(&allocs),
		           (unsigned long long)(atomic_load(&frees) + left));
	bench_ok(&o, t0, "waves=%llu threads_started=%llu", (unsigned long long)waves,
	         (unsigned long long)(waves * (uint64_t)o.threads));
	return 0;
}
