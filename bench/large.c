/*
 * large: large and huge blocks, 64 KiB to 64 MiB, single thread.
 *
 * Eight slots hold live blocks; each step replaces a random slot with a new
 * block whose size is log-uniform between 64 KiB and 64 MiB. Every page of a
 * new block is written (one word per 4 KiB page plus both ends), and checked
 * before the block is freed. This measures how an allocator obtains and
 * returns big regions (mmap/munmap, retained extents, page faults, zeroing).
 * A final phase allocates, touches and frees 64 MiB blocks back to back.
 */
#include "common.h"
#include <math.h>

static const char *NAME = "large";

#define NSLOT 8

struct blk {
	unsigned char *p;
	size_t n;
	uint64_t tag;
};

static uint64_t bytes_total;

static void
blk_new(struct blk *b, size_t n, uint64_t tag) {
	b->n = n;
	b->tag = tag;
	b->p = malloc(n);
	if (!b->p)
		bench_fail(NAME, "malloc(%zu) returned NULL", n);
	stamp(b->p, n, tag);
	bytes_total += n;
}

static void
blk_free(struct blk *b) {
	if (!b->p)
		return;
	if (!stamp_ok(b->p, b->n, b->tag))
		bench_fail(NAME, "block %p of %zu bytes corrupted", (void *)b->p, b->n);
	free(b->p);
	b->p = NULL;
}

int
main(int argc, char **argv) {
	struct bench_opts o;
	struct blk slot[NSLOT] = {{0}};

	bench_parse(&o, argc, argv, NAME, "large blocks, 64 KiB .. 64 MiB, touched and freed", 1);
	uint64_t steps = bench_scaled(&o, 600, 12);
	uint64_t huge = bench_scaled(&o, 10, 1);
	uint64_t rng = o.seed;
	double t0 = bench_now();
	const double lo = log(64.0 * 1024), hi = log(64.0 * 1024 * 1024);

	for (uint64_t i = 0; i < steps; i++) {
		double u = (double)rng_below(&rng, 1u << 30) / (double)(1u << 30);
		size_t n = (size_t)exp(lo + u * (hi - lo));
		n += (size_t)rng_below(&rng, 4096); /* not always page-aligned sizes */
		struct blk *b = &slot[rng_below(&rng, NSLOT)];
		blk_free(b);
		blk_new(b, n, mix64(i));
	}
	for (int s = 0; s < NSLOT; s++)
		blk_free(&slot[s]);
	for (uint64_t i = 0; i < huge; i++) {
		blk_new(&slot[0], (size_t)64 << 20, mix64(~i));
		blk_free(&slot[0]);
	}
	bench_ok(&o, t0, "blocks=%llu huge=%llu bytes_mib=%llu", (unsigned long long)steps,
	         (unsigned long long)huge, (unsigned long long)(bytes_total >> 20));
	return 0;
}
