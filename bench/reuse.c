/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * reuse: 5-25 MiB blocks allocated, filled and freed one after the other.
 *
 * A program that handles one big buffer at a time (a file read whole, an
 * image, a request body) frees each block just before it asks for the next.
 * An allocator that hands such a block straight back to the kernel
 * (munmap, or an immediate purge) pays a page fault and the zeroing of
 * every page on every iteration; one that keeps the freed memory a little
 * while reuses the pages as they are. glibc's dynamic mmap threshold does
 * the latter after the first free; jemalloc 5 and mimalloc do the former.
 *
 * Each step allocates a block of 5-25 MiB (uniform), fills all of it with a
 * byte that changes every step, stamps one word per page and both ends
 * (common.h), checks the stamp and a sample of the fill, and frees it.
 * Reports the steps, the bytes written and the time per step.
 */
#include "common.h"

static const char *NAME = "reuse";

#define MiB ((size_t)1 << 20)

int
main(int argc, char **argv) {
	struct bench_opts o;

	bench_parse(&o, argc, argv, NAME, "allocate, fill, check and free 5-25 MiB blocks in turn",
	            1);
	uint64_t steps = bench_scaled(&o, 1500, 4);
	uint64_t rng = o.seed, bytes = 0;
	double t0 = bench_now();

	for (uint64_t i = 0; i < steps; i++) {
		size_t n = (size_t)rng_range(&rng, 5 * MiB, 25 * MiB);
		unsigned char *p = malloc(n);
		if (!p)
			bench_fail(NAME, "malloc(%zu) returned NULL at step %llu", n,
			           (unsigned long long)i);
		unsigned char fill = (unsigned char)(0x11 + i * 7);
		memset(p, fill, n);
		uint64_t tag = mix64(i);
		stamp(p, n, tag);
		if (!stamp_ok(p, n, tag))
			bench_fail(NAME, "block of step %llu (%zu bytes at %p) corrupted",
			           (unsigned long long)i, n, (void *)p);
		/* The fill between the stamped words (the first 8 bytes of each
		 * page and the last 8 of the block): bytes at a stride. */
		for (size_t off = 2048; off < n - 16; off += 4096 * 7 + 1) {
			if ((off & 4095) < 8)
				continue;
			if (p[off] != fill)
				bench_fail(NAME, "block of step %llu: byte %zu is %#x, not %#x",
				           (unsigned long long)i, off, p[off], fill);
		}
		free(p);
		bytes += n;
	}
	double t1 = bench_now();
	bench_ok(&o, t0, "steps=%llu written_mib=%llu us_per_step=%.1f", (unsigned long long)steps,
	         (unsigned long long)(bytes / MiB), (t1 - t0) * 1e6 / (double)steps);
	return 0;
}
