/*
 * xmalloc: a few threads allocate, many threads free (the xmalloc-test pattern).
 *
 * A quarter of --threads (default 8, so 2) are producers, the rest consumers.
 * Producers allocate small blocks (8..1024 bytes, most under 256), stamp them,
 * gather them in batches of 64 and post each batch to the next consumer in
 * turn; consumers check and free every block they receive. Every free is a
 * remote free, and the consumers never allocate (the batch message aside,
 * which the producer allocates and the consumer frees). The batches in flight
 * are bounded, so a slow consumer throttles the producers instead of letting
 * memory grow.
 *
 * Each block carries a header (size, tag) and a stamp checked before it is
 * freed; the counts must balance at the end.
 */
#include "common.h"
#include <pthread.h>
#include <sched.h>

static const char *NAME = "xmalloc";

#define BATCH  64
#define MAXTHR 64

struct batch {
	struct bench_msg msg;
	unsigned n;
	unsigned char *blocks[BATCH];
};

struct worker {
	pthread_t th;
	unsigned id;
	uint64_t ops, seed, count;
	struct bench_mailbox box;
};

static struct worker *ws;
static int nprod, ncons;
static _Atomic long inflight;
static _Atomic int producing;
static long inflight_max;

static size_t
draw_size(uint64_t *rng) {
	uint64_t r = rng_next(rng);
	if ((r & 7) == 0)
		return 8 + (size_t)((r >> 3) % 1017);
	return 8 + (size_t)((r >> 3) % 249);
}

static void *
produce(void *arg) {
	struct worker *w = arg;
	uint64_t rng = w->seed;
	unsigned next = w->id; /* consumers taken in turn, producers staggered */

	for (uint64_t i = 0; i < w->ops; i += BATCH) {
		struct batch *b = malloc(sizeof *b);
		if (!b)
			bench_fail(NAME, "malloc(batch) returned NULL");
		b->n = BATCH;
		for (unsigned k = 0; k < BATCH; k++)
			b->blocks[k] =
			    hblock_new(NAME, draw_size(&rng), rng_next(&rng) & 0xfffffffffff);
		w->count += BATCH;
		while (atomic_load_explicit(&inflight, memory_order_relaxed) >= inflight_max)
			sched_yield();
		atomic_fetch_add_explicit(&inflight, 1, memory_order_relaxed);
		mailbox_post(&ws[nprod + (int)(next++ % (unsigned)ncons)].box, &b->msg);
	}
	atomic_fetch_sub(&producing, 1);
	return NULL;
}

static void *
consume(void *arg) {
	struct worker *w = arg;

	for (;;) {
		int busy = atomic_load(&producing) > 0;
		struct bench_msg *m = mailbox_take(&w->box);
		if (!m) {
			if (!busy)
				break;
			sched_yield();
			continue;
		}
		long nb = 0;
		while (m) {
			struct batch *b = (struct batch *)m;
			m = m->next;
			if (b->n != BATCH)
				bench_fail(NAME, "batch %p holds %u blocks", (void *)b, b->n);
			for (unsigned k = 0; k < b->n; k++)
				hblock_free(NAME, b->blocks[k], 8, 1024);
			w->count += b->n;
			free(b);
			nb++;
		}
		atomic_fetch_sub_explicit(&inflight, nb, memory_order_relaxed);
	}
	return NULL;
}

int
main(int argc, char **argv) {
	struct bench_opts o;

	bench_parse(&o, argc, argv, NAME, "a few threads allocate, the others free everything", 8);
	if (o.threads < 2 || o.threads > MAXTHR)
		bench_fail(NAME, "--threads must be 2..%d", MAXTHR);
	nprod = o.threads / 4 > 0 ? o.threads / 4 : 1;
	ncons = o.threads - nprod;
	inflight_max = 8L * ncons;
	uint64_t per = bench_scaled(&o, 24e6, 20000) / (uint64_t)nprod;
	per = (per + BATCH - 1) / BATCH * BATCH;
	ws = bench_map(NAME, sizeof *ws * (size_t)o.threads);
	double t0 = bench_now();

	atomic_store(&producing, nprod);
	for (int t = 0; t < o.threads; t++) {
		ws[t].id = (unsigned)t;
		ws[t].ops = per;
		ws[t].seed = o.seed + 15485863u * (uint64_t)(t + 1);
		if (pthread_create(&ws[t].th, NULL, t < nprod ? produce : consume, &ws[t]))
			bench_fail(NAME, "pthread_create failed");
	}
	uint64_t made = 0, freed = 0;
	for (int t = 0; t < o.threads; t++) {
		pthread_join(ws[t].th, NULL);
		if (t < nprod)
			made += ws[t].count;
		else
			freed += ws[t].count;
	}
	if (made != freed || made != per * (uint64_t)nprod)
		bench_fail(NAME, "count mismatch: %llu allocated, %llu freed, %llu expected",
		           (unsigned long long)made, (unsigned long long)freed,
		           (unsigned long long)(per * (uint64_t)nprod));
	bench_ok(&o, t0, "blocks=%llu producers=%d consumers=%d", (unsigned long long)made, nprod,
	         ncons);
	return 0;
}
