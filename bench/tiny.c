/*
 * tiny: a small program's fixed footprint: a few hundred small allocations.
 *
 * Makes 400 allocations of 8..512 bytes (a few strings, nodes and buffers, as
 * a command-line tool would), frees every other one, makes 100 more, checks
 * them all, frees everything and exits. The work is negligible: what the
 * report shows for it is start-up time and, above all, peak RSS, that is
 * the memory the allocator touches before and besides the program's own
 * few tens of KiB (its metadata, thread cache, first chunk, tables). The
 * scale options change nothing but are accepted like everywhere else.
 */
#include "common.h"

static const char *NAME = "tiny";

#define N1 400
#define N2 100

int
main(int argc, char **argv) {
	struct bench_opts o;
	unsigned char *p[N1 + N2];
	size_t n[N1 + N2];
	uint64_t tag[N1 + N2];

	bench_parse(&o, argc, argv, NAME, "a few hundred small allocations, then exit", 1);
	uint64_t rng = o.seed;
	double t0 = bench_now();
	size_t bytes = 0;
	for (unsigned i = 0; i < N1 + N2; i++) {
		if (i == N1) {
			for (unsigned k = 0; k < N1; k += 2) {
				if (!stamp_ok(p[k], n[k], tag[k]))
					bench_fail(NAME, "block %u corrupted", k);
				free(p[k]);
				p[k] = NULL;
			}
		}
		n[i] = (size_t)(rng_next(&rng) % 8 == 0 ? rng_range(&rng, 64, 512)
		                                        : rng_range(&rng, 8, 64));
		p[i] = malloc(n[i]);
		if (!p[i])
			bench_fail(NAME, "malloc(%zu) returned NULL", n[i]);
		tag[i] = rng_next(&rng);
		stamp(p[i], n[i], tag[i]);
		bytes += n[i];
	}
	for (unsigned i = 0; i < N1 + N2; i++) {
		if (!p[i])
			continue;
		if (!stamp_ok(p[i], n[i], tag[i]))
			bench_fail(NAME, "block %u corrupted", i);
		free(p[i]);
	}
	bench_ok(&o, t0, "allocations=%d bytes=%zu", N1 + N2, bytes);
	return 0;
}
