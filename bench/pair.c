/*
 * pair: single-thread malloc/free pair loop over small sizes.
 *
 * The fast path of an allocator: allocate a small block, use it, free it,
 * again and again. A short ring of recently allocated blocks is kept so that
 * the pattern is not a single block bouncing back and forth: each step frees
 * the block allocated RING steps ago (RING = 1 for half of the passes, i.e.
 * strict malloc/free pairs, and 8 for the other half).
 */
#include "common.h"

#define MAX_RING 8

int
main(int argc, char **argv) {
	struct bench_opts o;
	void *ring[MAX_RING];
	size_t rsize[MAX_RING];
	uint64_t rtag[MAX_RING];
	uint64_t rng, sum = 0, allocs = 0;

	bench_parse(&o, argc, argv, "pair", "malloc/free pairs of small blocks (8..519 bytes)", 1);
	uint64_t steps = bench_scaled(&o, 100e6, 10000);
	double t0 = bench_now();
	rng = o.seed;

	for (int pass = 0; pass < 4; pass++) {
		unsigned ringn = (pass & 1) ? MAX_RING : 1;
		memset(ring, 0, sizeof ring);
		for (uint64_t i = 0; i < steps / 4; i++) {
			unsigned slot = (unsigned)(i % ringn);
			if (ring[slot]) {
				if (!stamp_ok(ring[slot], rsize[slot], rtag[slot]))
					bench_fail(o.name, "block %p (size %zu) corrupted",
					           ring[slot], rsize[slot]);
				sum += get64(ring[slot]) & 0xff;
				free(ring[slot]);
			}
			/* sizes: mostly 8..128, sometimes up to 512 */
			uint64_t r = rng_next(&rng);
			size_t n =
			    (r & 7) ? 8 + (size_t)((r >> 8) & 127) : 8 + (size_t)((r >> 8) & 511);
			void *p = malloc(n);
			if (!p)
				bench_fail(o.name, "malloc(%zu) returned NULL", n);
			uint64_t tag = mix64(i ^ ((uint64_t)pass << 56));
			stamp(p, n, tag);
			ring[slot] = p;
			rsize[slot] = n;
			rtag[slot] = tag;
			allocs++;
		}
		for (unsigned s = 0; s < ringn; s++) {
			if (!ring[s])
				continue;
			if (!stamp_ok(ring[s], rsize[s], rtag[s]))
				bench_fail(o.name, "block %p corrupted", ring[s]);
			sum += get64(ring[s]) & 0xff;
			free(ring[s]);
		}
	}
	bench_ok(&o, t0, "allocs=%llu checksum=%llu", (unsigned long long)allocs,
	         (unsigned long long)sum);
	return 0;
}
