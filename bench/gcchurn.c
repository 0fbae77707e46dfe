/*
 * gcchurn: a garbage-collected program's churn of huge, large and small blocks.
 *
 * Modelled on a Node.js script (issue #16): each round builds 60,000 small
 * objects (16..256 bytes), 300 buffers of 64 KiB..1 MiB, twenty 8 MiB
 * buffers and one 32 MiB buffer, interleaved, and every block is written (a
 * word in each page), as a program filling its buffers would. The objects of
 * a round become garbage when the round ends; the "collector" runs a quarter
 * of the way into the next round and frees them all, small objects in
 * batches of 1,000 between the buffers. So each round asks again for the
 * sizes the previous round just gave back, and about 1.25 rounds' worth of
 * memory (some 450 MiB) is live at the peak: an allocator that neither
 * reuses the freed 8 and 32 MiB blocks for the next ones nor gives them back
 * holds several rounds' worth resident.
 *
 * --tiny shrinks the counts too (at least one buffer of each kind), so the
 * smoke test stays small. Each block is checked before it is freed.
 */
#include "common.h"

static const char *NAME = "gcchurn";

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

struct obj {
	unsigned char *p;
	size_t n;
	uint64_t tag;
};

struct gen {
	struct obj *objs;
	size_t n;
};

static uint64_t nalloc, nfree;

static void
obj_new(struct gen *g, size_t n, uint64_t *rng) {
	struct obj *o = &g->objs[g->n++];
	o->p = malloc(n);
	if (!o->p)
		bench_fail(NAME, "malloc(%zu) returned NULL", n);
	o->n = n;
	o->tag = rng_next(rng);
	stamp(o->p, n, o->tag);
	nalloc++;
}

static void
obj_free(struct obj *o) {
	if (!stamp_ok(o->p, o->n, o->tag))
		bench_fail(NAME, "block %p (%zu bytes) corrupted", (void *)o->p, o->n);
	free(o->p);
	o->p = NULL;
	nfree++;
}

/* The collector: every object of generation g, small ones in batches of
 * 1,000, each batch followed by one buffer. */
static void
collect(struct gen *g) {
	size_t small = 0, next_buf = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct obj *o = &g->objs[i];
		if (!o->p || o->n > 256)
			continue;
		obj_free(o);
		if (++small % 1000 == 0) {
			while (next_buf < g->n &&
			       (!g->objs[next_buf].p || g->objs[next_buf].n <= 256))
				next_buf++;
			if (next_buf < g->n)
				obj_free(&g->objs[next_buf]);
		}
	}
	for (size_t i = 0; i < g->n; i++)
		if (g->objs[i].p)
			obj_free(&g->objs[i]);
	g->n = 0;
}

int
main(int argc, char **argv) {
	struct bench_opts o;

	bench_parse(&o, argc, argv, NAME,
	            "rounds of 8/32 MiB, 64 KiB-1 MiB and small blocks freed by a collector", 1);
	uint64_t rounds = bench_scaled(&o, 20, 2);
	/* below quick size, fewer objects per round as well */
	double f = o.scale * 5 < 1 ? o.scale * 5 : 1;
	size_t nsmall = (size_t)(60000 * f), nmed = (size_t)(300 * f), nbig = (size_t)(20 * f);
	if (nsmall < 1000)
		nsmall = 1000;
	if (nmed < 1)
		nmed = 1;
	if (nbig < 1)
		nbig = 1;
	size_t per = nsmall + nmed + nbig + 1;
	struct gen gens[2];
	for (int i = 0; i < 2; i++) {
		gens[i].objs = bench_map(NAME, per * sizeof(struct obj));
		gens[i].n = 0;
	}
	uint64_t rng = o.seed;
	double t0 = bench_now();

	for (uint64_t r = 0; r < rounds; r++) {
		struct gen *cur = &gens[r & 1], *prev = &gens[(r + 1) & 1];
		size_t gc_at = nsmall / 4;
		obj_new(cur, 32 * MiB, &rng);
		for (size_t i = 0; i < nsmall; i++) {
			if (i == gc_at && prev->n)
				collect(prev);
			obj_new(cur, (size_t)rng_range(&rng, 16, 256), &rng);
			if (i % (nsmall / nmed) == 0 && i / (nsmall / nmed) < nmed)
				obj_new(cur, (size_t)rng_range(&rng, 64 * KiB, MiB), &rng);
			if (i % (nsmall / nbig) == 0 && i / (nsmall / nbig) < nbig)
				obj_new(cur, 8 * MiB, &rng);
		}
		if (cur->n != per)
			bench_fail(NAME, "round %llu made %zu objects, not %zu",
			           (unsigned long long)r, cur->n, per);
	}
	collect(&gens[0]);
	collect(&gens[1]);
	if (nalloc != nfree || nalloc != rounds * per)
		bench_fail(NAME, "count mismatch: %llu allocated, %llu freed, %llu expected",
		           (unsigned long long)nalloc, (unsigned long long)nfree,
		           (unsigned long long)(rounds * per));
	bench_ok(&o, t0, "rounds=%llu objects_per_round=%zu", (unsigned long long)rounds, per);
	return 0;
}
