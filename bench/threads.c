/*
 * threads: thread churn. Many short-lived threads that allocate and free.
 *
 * Threads are started in waves of --threads (default 4) and joined. Each one
 * performs 400 allocations of 16..2048 bytes with a small working set (a ring
 * of 32 live blocks), then takes up to 32 blocks left behind by earlier
 * (already exited) threads from a shared stash and frees them, and leaves 32
 * of its own blocks in the stash before exiting. This exercises per-thread
 * cache creation and teardown and frees of memory whose owner thread is gone.
 * Each block carries a header (size, tag) and a stamp checked before it is
 * freed; allocation and free counts must balance at the end.
 */
#include "common.h"
#include <pthread.h>
#include <stdatomic.h>

static const char *NAME = "threads";

#define OPS     400
#define RINGN   32
#define HANDOFF 32
#define STASH   8192

static pthread_mutex_t stash_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *stash[STASH];
static size_t stash_n;
static _Atomic uint64_t allocs, frees;

static unsigned char *
blk_new(size_t n, uint64_t seed) {
	unsigned char *p = malloc(n);
	if (!p)
		bench_fail(NAME, "malloc(%zu) returned NULL", n);
	uint64_t meta = (mix64(seed) & ~0xffffULL) | n;
	put64(p, meta);
	stamp(p + 8, n - 8, mix64(meta ^ (uintptr_t)p));
	return p;
}

static void
blk_free(unsigned char *p) {
	uint64_t meta = get64(p);
	size_t n = (size_t)(meta & 0xffff);
	if (n < 16 || n > 2048 || !stamp_ok(p + 8, n - 8, mix64(meta ^ (uintptr_t)p)))
		bench_fail(NAME, "block %p corrupted (header %016llx)", (void *)p,
		           (unsigned long long)meta);
	free(p);
}

static void *
work(void *arg) {
	uint64_t rng = (uint64_t)(uintptr_t)arg;
	unsigned char *ring[RINGN] = {0};
	uint64_t na = 0, nf = 0;

	for (unsigned i = 0; i < OPS; i++) {
		unsigned s = i % RINGN;
		if (ring[s]) {
			blk_free(ring[s]);
			nf++;
		}
		ring[s] = blk_new((size_t)rng_range(&rng, 16, 2048), rng_next(&rng));
		na++;
	}
	/* free up to HANDOFF orphans from earlier threads, leave HANDOFF of ours */
	unsigned char *taken[HANDOFF];
	size_t nt = 0;
	pthread_mutex_lock(&stash_lock);
	while (nt < HANDOFF && stash_n > 0)
		taken[nt++] = stash[--stash_n];
	for (unsigned s = 0; s < RINGN && stash_n < STASH; s++) {
		stash[stash_n++] = ring[s];
		ring[s] = NULL;
	}
	pthread_mutex_unlock(&stash_lock);
	for (size_t i = 0; i < nt; i++) {
		blk_free(taken[i]);
		nf++;
	}
	for (unsigned s = 0; s < RINGN; s++) {
		if (ring[s]) {
			blk_free(ring[s]);
			nf++;
		}
	}
	atomic_fetch_add(&allocs, na);
	atomic_fetch_add(&frees, nf);
	return NULL;
}

int
main(int argc, char **argv) {
	struct bench_opts o;

	bench_parse(&o, argc, argv, NAME, "many short-lived threads that allocate and free", 4);
	uint64_t total = bench_scaled(&o, 15000, 64);
	pthread_t *th = bench_map(NAME, sizeof *th * (size_t)o.threads);
	uint64_t started = 0, rng = o.seed;
	double t0 = bench_now();

	while (started < total) {
		int w = 0;
		for (; w < o.threads && started < total; w++, started++) {
			if (pthread_create(&th[w], NULL, work, (void *)(uintptr_t)rng_next(&rng)))
				bench_fail(NAME, "pthread_create failed");
		}
		for (int i = 0; i < w; i++)
			pthread_join(th[i], NULL);
	}
	for (size_t i = 0; i < stash_n; i++) {
		blk_free(stash[i]);
		frees++;
	}
	if (allocs != frees || allocs != total * OPS)
		bench_fail(NAME, "count mismatch: %llu allocations, %llu frees",
		           (unsigned long long)allocs, (unsigned long long)frees);
	bench_ok(&o, t0, "threads_started=%llu allocs=%llu", (unsigned long long)started,
	         (unsigned long long)allocs);
	return 0;
}
