/*
 * xfree: cross-thread frees of random-sized blocks (the rptest pattern).
 *
 * Each of --threads threads (default 4) keeps a working set of 256 live
 * blocks and allocates blocks of random sizes, 16 bytes to 32 KiB with a
 * log-uniform distribution (most are small, some are large runs). Half of
 * the new blocks replace a random slot of the working set (the old block is
 * freed by the thread that made it); the other half are gathered into batches
 * of 32 and posted to the mailbox of another thread, picked at random, which
 * checks and frees them. So about half of all frees are remote frees, in
 * batches, of blocks of every small and large class. The batch message is
 * itself a malloc'd block. The number of batches in flight is bounded, so
 * memory stays bounded whatever the threads' relative speed.
 *
 * Each block carries a header (size, tag) and a stamp checked before it is
 * freed; the counts of blocks allocated and freed must balance at the end.
 */
#include "common.h"
#include <pthread.h>
#include <sched.h>

static const char *NAME = "xfree";

#define WORKSET 256
#define BATCH   32
#define MAXSIZE 32768
#define MAXTHR  64

struct batch {
	struct bench_msg msg;
	unsigned n;
	unsigned char *blocks[BATCH];
};

struct worker {
	pthread_t th;
	unsigned id;
	uint64_t ops, seed;
	uint64_t allocs, frees, remote;
	struct bench_mailbox box;
};

static struct worker *ws;
static int nthreads;
static _Atomic long inflight; /* batches posted and not yet freed */
static _Atomic int producing; /* threads still allocating */
static long inflight_max;

/* Log-uniform in [16, MAXSIZE]. */
static size_t
draw_size(uint64_t *rng) {
	uint64_t r = rng_next(rng);
	unsigned lg = 4 + (unsigned)((r & 0xffff) % 11); /* 16 .. 16 KiB */
	size_t lo = (size_t)1 << lg;
	return lo + (size_t)((r >> 16) % lo);
}

/* Frees everything in w's mailbox; returns the number of batches. */
static long
drain(struct worker *w) {
	long nb = 0;
	struct bench_msg *m = mailbox_take(&w->box);
	while (m) {
		struct batch *b = (struct batch *)m;
		m = m->next;
		if (b->n != BATCH)
			bench_fail(NAME, "batch %p holds %u blocks, not %d", (void *)b, b->n,
			           BATCH);
		for (unsigned i = 0; i < b->n; i++)
			hblock_free(NAME, b->blocks[i], 16, MAXSIZE);
		w->frees += b->n;
		w->remote += b->n;
		free(b);
		nb++;
	}
	if (nb)
		atomic_fetch_sub_explicit(&inflight, nb, memory_order_relaxed);
	return nb;
}

static void *
work(void *arg) {
	struct worker *w = arg;
	uint64_t rng = w->seed;
	unsigned char *set[WORKSET] = {0};
	struct batch *out = NULL;

	for (uint64_t i = 0; i < w->ops; i++) {
		unsigned char *p = hblock_new(NAME, draw_size(&rng), rng_next(&rng) & 0xffffffffff);
		w->allocs++;
		uint64_t r = rng_next(&rng);
		if (r & 1) {
			unsigned s = (unsigned)((r >> 1) % WORKSET);
			if (set[s]) {
				hblock_free(NAME, set[s], 16, MAXSIZE);
				w->frees++;
			}
			set[s] = p;
			continue;
		}
		if (!out) {
			out = malloc(sizeof *out);
			if (!out)
				bench_fail(NAME, "malloc(batch) returned NULL");
			out->n = 0;
		}
		out->blocks[out->n++] = p;
		if (out->n < BATCH)
			continue;
		unsigned to = (unsigned)((r >> 8) % (uint64_t)(nthreads - 1));
		if (to >= w->id)
			to++;
		while (atomic_load_explicit(&inflight, memory_order_relaxed) >= inflight_max) {
			if (!drain(w))
				sched_yield();
		}
		atomic_fetch_add_explicit(&inflight, 1, memory_order_relaxed);
		mailbox_post(&ws[to].box, &out->msg);
		out = NULL;
		if ((i & 255) == 0)
			drain(w);
	}
	/* the part-filled batch and the working set: freed locally */
	if (out) {
		for (unsigned i = 0; i < out->n; i++)
			hblock_free(NAME, out->blocks[i], 16, MAXSIZE);
		w->frees += out->n;
		free(out);
	}
	for (unsigned s = 0; s < WORKSET; s++) {
		if (set[s]) {
			hblock_free(NAME, set[s], 16, MAXSIZE);
			w->frees++;
		}
	}
	atomic_fetch_sub(&producing, 1);
	/* keep taking what others send until every producer is done and
	 * nothing is in flight */
	for (;;) {
		int busy = atomic_load(&producing) > 0 || atomic_load(&inflight) > 0;
		if (!drain(w)) {
			if (!busy)
				break;
			sched_yield();
		}
	}
	return NULL;
}

int
main(int argc, char **argv) {
	struct bench_opts o;

	bench_parse(&o, argc, argv, NAME,
	            "threads free random-sized blocks other threads allocated", 4);
	if (o.threads < 2 || o.threads > MAXTHR)
		bench_fail(NAME, "--threads must be 2..%d", MAXTHR);
	nthreads = o.threads;
	inflight_max = 16L * nthreads;
	uint64_t ops = bench_scaled(&o, 16e6, 20000) / (uint64_t)o.threads;
	ws = bench_map(NAME, sizeof *ws * (size_t)o.threads);
	double t0 = bench_now();

	atomic_store(&producing, o.threads);
	for (int t = 0; t < o.threads; t++) {
		ws[t].id = (unsigned)t;
		ws[t].ops = ops;
		ws[t].seed = o.seed + 104729u * (uint64_t)(t + 1);
		if (pthread_create(&ws[t].th, NULL, work, &ws[t]))
			bench_fail(NAME, "pthread_create failed");
	}
	uint64_t allocs = 0, frees = 0, remote = 0;
	for (int t = 0; t < o.threads; t++) {
		pthread_join(ws[t].th, NULL);
		allocs += ws[t].allocs;
		frees += ws[t].frees;
		remote += ws[t].remote;
	}
	if (allocs != frees || allocs != ops * (uint64_t)o.threads)
		bench_fail(NAME, "count mismatch: %llu allocated, %llu freed, %llu expected",
		           (unsigned long long)allocs, (unsigned long long)frees,
		           (unsigned long long)(ops * (uint64_t)o.threads));
	bench_ok(&o, t0, "ops=%llu remote_free_fraction=%.3f", (unsigned long long)allocs,
	         (double)remote / (double)frees);
	return 0;
}
