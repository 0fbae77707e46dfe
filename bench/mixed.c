/*
 * mixed: a realistic mix of sizes and lifetimes, single thread.
 *
 * Sizes follow a skewed distribution resembling what general-purpose programs
 * request (most blocks are small, a few are large):
 *     50%   8 ..    64 bytes      7%   1 KiB ..   8 KiB
 *     25%  65 ..   256 bytes    2.5%   8 KiB .. 64 KiB
 *     15% 257 ..  1024 bytes    0.5%  64 KiB .. 256 KiB
 * Lifetimes come from three populations:
 *     temporaries  freed 16 allocations later (every step allocates one),
 *     medium       a random slot of 4096 replaced with probability 1/2 per step,
 *     long-lived   a random slot of 16384 replaced with probability 1/16 per step,
 * so lifetimes range from a few steps to about a million, with random order of
 * frees among the medium and long-lived blocks.
 * Every block is stamped and checked before it is freed.
 */
#include "common.h"

static const char *NAME = "mixed";

struct obj {
	void *p;
	size_t n;
	uint64_t tag;
};

static size_t
draw_size(uint64_t *rng) {
	uint64_t r = rng_below(rng, 1000);

	if (r < 500)
		return rng_range(rng, 8, 64);
	if (r < 750)
		return rng_range(rng, 65, 256);
	if (r < 900)
		return rng_range(rng, 257, 1024);
	if (r < 970)
		return rng_range(rng, 1025, 8192);
	if (r < 995)
		return rng_range(rng, 8193, 65536);
	return rng_range(rng, 65537, 262144);
}

static uint64_t seq, freed_sum, alloc_sum;

static void
obj_new(struct obj *o, uint64_t *rng) {
	o->n = draw_size(rng);
	o->p = malloc(o->n);
	if (!o->p)
		bench_fail(NAME, "malloc(%zu) returned NULL", o->n);
	o->tag = mix64(++seq);
	stamp(o->p, o->n, o->tag);
	alloc_sum += o->tag;
}

static void
obj_free(struct obj *o) {
	if (!o->p)
		return;
	if (!stamp_ok(o->p, o->n, o->tag))
		bench_fail(NAME, "block %p of %zu bytes corrupted", o->p, o->n);
	freed_sum += o->tag;
	free(o->p);
	o->p = NULL;
}

#define NTEMP 16
#define NMED  4096
#define NLONG 16384

int
main(int argc, char **argv) {
	struct bench_opts o;
	static struct obj temp[NTEMP], med[NMED], lng[NLONG];

	bench_parse(&o, argc, argv, NAME, "mixed sizes and lifetimes, single thread", 1);
	uint64_t steps = bench_scaled(&o, 12e6, 20000);
	uint64_t rng = o.seed;
	double t0 = bench_now();

	for (uint64_t i = 0; i < steps; i++) {
		struct obj *t = &temp[i % NTEMP];
		obj_free(t);
		obj_new(t, &rng);
		uint64_t r = rng_next(&rng);
		if (r & 1) {
			struct obj *m = &med[(r >> 8) % NMED];
			obj_free(m);
			obj_new(m, &rng);
		}
		if (((r >> 1) & 15) == 0) {
			struct obj *l = &lng[(r >> 32) % NLONG];
			obj_free(l);
			obj_new(l, &rng);
		}
	}
	long live_rss = bench_status_kb("VmRSS");
	for (int i = 0; i < NTEMP; i++)
		obj_free(&temp[i]);
	for (int i = 0; i < NMED; i++)
		obj_free(&med[i]);
	for (int i = 0; i < NLONG; i++)
		obj_free(&lng[i]);
	if (freed_sum != alloc_sum)
		bench_fail(NAME, "tag sums differ: some block was lost or freed twice");
	bench_ok(&o, t0, "steps=%llu allocs=%llu rss_live_kb=%ld checksum=%016llx",
	         (unsigned long long)steps, (unsigned long long)seq, live_rss,
	         (unsigned long long)alloc_sum);
	return 0;
}
