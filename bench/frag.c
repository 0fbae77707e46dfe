/*
 * frag: fragmentation, 1 GiB of small blocks, 90% freed, refilled in other sizes.
 *
 * Allocate 1 GiB in small blocks (16..256 bytes), free a random 90% of them,
 * then allocate the same number of bytes again in other, larger sizes
 * (272..2048 bytes), which cannot simply reuse the small holes.
 *
 * Reports (KiB, from /proc/self/status):
 *   rss_full_kb       after the first 1 GiB
 *   rss_holes_kb      after freeing 90% (what was given back)
 *   rss_final_kb      after the refill (the fragmentation cost: ideal is ~1 GiB)
 *   rss_empty_kb      after everything is freed
 *   peak_rss_kb       VmHWM
 * Every block is checked (header with size and tag, stamped body) before it
 * is freed, and the number of live bytes is tracked exactly.
 */
#include "common.h"

static const char *NAME = "frag";

static unsigned char *
blk_new(size_t n, uint64_t idx) {
	unsigned char *p = malloc(n);
	if (!p)
		bench_fail(NAME, "malloc(%zu) returned NULL", n);
	uint64_t tag = mix64(idx);
	put64(p, (tag & ~0xffffULL) | n);
	stamp(p + 8, n - 8, tag);
	return p;
}

static size_t
blk_free(unsigned char *p, uint64_t idx) {
	uint64_t tag = mix64(idx), w = get64(p);
	size_t n = (size_t)(w & 0xffff);
	if (((w ^ tag) & ~0xffffULL) || n < 16 || !stamp_ok(p + 8, n - 8, tag))
		bench_fail(NAME, "block #%llu at %p corrupted", (unsigned long long)idx, (void *)p);
	free(p);
	return n;
}

int
main(int argc, char **argv) {
	struct bench_opts o;

	bench_parse(&o, argc, argv, NAME, "allocate 1 GiB small, free 90%, refill with other sizes",
	            1);
	uint64_t target = bench_scaled(&o, 1024.0 * 1024 * 1024, 1 << 20);
	size_t cap1 = target / 16 + 1, cap2 = target / 272 + 1;
	unsigned char **a = bench_map(NAME, cap1 * sizeof *a);
	unsigned char **b = bench_map(NAME, cap2 * sizeof *b);
	uint64_t rng = o.seed, live = 0, n1 = 0, n2 = 0, freed = 0;
	double t0 = bench_now();

	/* phase 1: fill */
	while (live < target) {
		size_t n = (size_t)rng_range(&rng, 16, 256);
		a[n1] = blk_new(n, n1);
		n1++;
		live += n;
	}
	long rss_full = bench_status_kb("VmRSS");
	double t1 = bench_now();

	/* phase 2: free 90% at random */
	for (uint64_t i = 0; i < n1; i++) {
		if (rng_below(&rng, 10) != 0) {
			freed += blk_free(a[i], i);
			a[i] = NULL;
		}
	}
	live -= freed;
	long rss_holes = bench_status_kb("VmRSS");
	double t2 = bench_now();

	/* phase 3: allocate as many bytes again, in other sizes */
	uint64_t again = 0;
	while (again < freed) {
		size_t n = (size_t)rng_range(&rng, 272, 2048);
		b[n2] = blk_new(n, n1 + n2);
		n2++;
		again += n;
	}
	live += again;
	long rss_final = bench_status_kb("VmRSS");
	double t3 = bench_now();

	/* teardown: check and free everything, counting bytes */
	uint64_t seen = 0;
	for (uint64_t i = 0; i < n1; i++)
		if (a[i])
			seen += blk_free(a[i], i);
	for (uint64_t i = 0; i < n2; i++)
		seen += blk_free(b[i], n1 + i);
	if (seen != live)
		bench_fail(NAME, "live byte count mismatch: %llu != %llu", (unsigned long long)seen,
		           (unsigned long long)live);
	long rss_empty = bench_status_kb("VmRSS");
	double t4 = bench_now();
	bench_unmap(a, cap1 * sizeof *a);
	bench_unmap(b, cap2 * sizeof *b);
	bench_ok(&o, t0,
	         "small_blocks=%llu refill_blocks=%llu target_mib=%llu rss_full_kb=%ld "
	         "rss_holes_kb=%ld rss_final_kb=%ld rss_empty_kb=%ld phase_s=%.2f/%.2f/%.2f/%.2f",
	         (unsigned long long)n1, (unsigned long long)n2, (unsigned long long)(target >> 20),
	         rss_full, rss_holes, rss_final, rss_empty, t1 - t0, t2 - t1, t3 - t2, t4 - t3);
	return 0;
}
