/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * decay_rss: resident memory over time after a program frees 1 GiB.
 *
 * Not a timed workload: the measurement behind the "giving memory back"
 * figures (scripts/bench --decay). Allocates 1 GiB in mixed sizes (a
 * quarter in small blocks of 16 B - 4 KiB, three eighths in blocks of
 * 16 KiB - 1.5 MiB, three eighths in blocks of 2 - 16 MiB, interleaved),
 * writes every byte, checks and frees everything in random order, then
 * makes no allocator call at all: it samples the resident set
 * (/proc/self/statm, read with open/read into a stack buffer) every
 * --interval ms for --seconds. With --poke, it then makes one allocation
 * call (malloc of 100 KiB, bigger than every thread cache's largest class)
 * and samples once more right after it, and again 100 ms later.
 *
 * Options (besides common.h's --tiny/--quick/--scale/--seed, which scale the
 * 1 GiB): --seconds S (default 12), --interval MS (default 100), --poke,
 * --trace (print every sample as "t_s rss_mib").
 *
 * Output, one line: OK decay_rss ... followed by key=value figures, RSS in
 * MiB above the resident set measured just before the first allocation:
 *   full            with everything allocated
 *   at0             right after the last free
 *   at100ms         100 ms after the last free
 *   at1s, at5s, at10s, at11s, end   at those times (end: after --seconds;
 *                   -1 for a time past the end)
 *   back32_s        seconds after the last free when RSS was first within
 *                   32 MiB of the start (-1: never while sampling)
 *   poke            right after the --poke allocation; poke100ms 100 ms later
 * Bookkeeping arrays come from mmap (bench_map), outside the allocator.
 */
#include "common.h"
#include <fcntl.h>

static const char *NAME = "decay_rss";

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static long page_size;

/* Resident set in bytes, without calling the allocator (no stdio). */
static size_t
rss_bytes(void) {
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		bench_fail(NAME, "cannot read /proc/self/statm");
	buf[n] = '\0';
	char *end;
	strtoul(buf, &end, 10);
	return (size_t)strtoul(end, NULL, 10) * (size_t)page_size;
}

static void
sleep_until(double t) {
	for (;;) {
		double left = t - bench_now();
		if (left <= 0)
			return;
		struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
		nanosleep(&ts, NULL);
	}
}

static double
above_mib(size_t rss, size_t base) {
	return rss > base ? (double)(rss - base) / (double)MiB : 0.0;
}

static void *volatile sink;

int
main(int argc, char **argv) {
	struct bench_opts o;
	double seconds = 12, interval_ms = 100;
	int poke = 0, trace = 0;
	/* Our own options first; the rest go to bench_parse. */
	char *rest[16];
	int nrest = 0;
	rest[nrest++] = argv[0];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--interval") && i + 1 < argc)
			interval_ms = atof(argv[++i]);
		else if (!strcmp(argv[i], "--poke"))
			poke = 1;
		else if (!strcmp(argv[i], "--trace"))
			trace = 1;
		else if (nrest < 15)
			rest[nrest++] = argv[i];
	}
	rest[nrest] = NULL;
	bench_parse(&o, nrest, rest, NAME,
	            "free 1 GiB of mixed sizes, then sample RSS while idle "
	            "[--seconds S] [--interval MS] [--poke] [--trace]",
	            1);
	if (!(seconds > 0) || !(interval_ms > 0))
		bench_fail(NAME, "bad --seconds or --interval");
	page_size = sysconf(_SC_PAGESIZE);

	uint64_t total = bench_scaled(&o, 1024.0 * 1024 * 1024, 4 * MiB);
	/* Four times the expected number of blocks (small ones average 2 KiB);
	 * the fill stops early, and says so in blocks=, if that is reached. */
	size_t cap = (size_t)(total / 4 / 512) + 8192;
	unsigned char **blk = bench_map(NAME, cap * sizeof *blk);
	size_t *len = bench_map(NAME, cap * sizeof *len);
	size_t nsamples = (size_t)(seconds * 1000 / interval_ms) + 2;
	double *st = bench_map(NAME, nsamples * sizeof *st);
	double *sr = bench_map(NAME, nsamples * sizeof *sr);
	/* Touched now, so that they count in the baseline. */
	memset(blk, 0, cap * sizeof *blk);
	memset(len, 0, cap * sizeof *len);
	memset(st, 0, nsamples * sizeof *st);
	memset(sr, 0, nsamples * sizeof *sr);

	/* Start the allocator, then the baseline. */
	sink = malloc(1);
	free(sink);
	size_t base = rss_bytes();
	uint64_t rng = o.seed;
	double t0 = bench_now();

	size_t budget[3] = {total / 4, total * 3 / 8, total * 3 / 8};
	size_t done[3] = {0, 0, 0};
	size_t n = 0;
	for (;;) {
		int k = -1;
		double best = 1.0;
		for (int i = 0; i < 3; i++) {
			double f = (double)done[i] / (double)budget[i];
			if (f < best) {
				best = f;
				k = i;
			}
		}
		if (k < 0 || n == cap)
			break;
		size_t size = k == 0   ? (size_t)rng_range(&rng, 16, 4 * KiB)
		              : k == 1 ? (size_t)rng_range(&rng, 16 * KiB, 1536 * KiB)
		                       : (size_t)rng_range(&rng, 2 * MiB, 16 * MiB);
		unsigned char *p = malloc(size);
		if (!p)
			bench_fail(NAME, "malloc(%zu) returned NULL", size);
		memset(p, (int)(n & 0xff) | 1, size);
		stamp(p, size, mix64(n));
		blk[n] = p;
		len[n] = size;
		n++;
		done[k] += size;
	}
	size_t full = rss_bytes();
	double t1 = bench_now();
	/* Free in random order, each block checked. */
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rng_below(&rng, i);
		unsigned char *p = blk[i - 1];
		size_t s = len[i - 1];
		blk[i - 1] = blk[j];
		len[i - 1] = len[j];
		blk[j] = p;
		len[j] = s;
	}
	for (size_t i = 0; i < n; i++) {
		/* Which block this was is lost in the shuffle: check the parts
		 * of the stamp that do not depend on the tag's value. */
		unsigned char *p = blk[i];
		uint64_t tag = get64(p);
		if (len[i] >= 16 && !stamp_ok(p, len[i], tag))
			bench_fail(NAME, "block %zu (%zu bytes) corrupted", i, len[i]);
		free(p);
	}
	double tf = bench_now();

	/* Idle: sampling only. */
	size_t ns = 0;
	double back32 = -1;
	for (;;) {
		double t = bench_now() - tf;
		size_t rss = rss_bytes();
		if (ns < nsamples) {
			st[ns] = t;
			sr[ns] = above_mib(rss, base);
			ns++;
		}
		if (back32 < 0 && rss <= base + 32 * MiB)
			back32 = t;
		double next = (double)ns * interval_ms / 1000;
		if (next > seconds || ns >= nsamples)
			break;
		sleep_until(tf + next);
	}
	double poke_rss = -1, poke100 = -1, poke_ms = -1;
	if (poke) {
		double a = bench_now();
		sink = malloc(100 * KiB);
		poke_ms = (bench_now() - a) * 1e3;
		poke_rss = above_mib(rss_bytes(), base);
		free(sink);
		sleep_until(bench_now() + 0.1);
		poke100 = above_mib(rss_bytes(), base);
	}

	/* The sample nearest to each time of interest. */
	double marks[] = {0, 0.1, 1, 5, 10, 11, 1e9};
	double at[7];
	for (int m = 0; m < 7; m++) {
		at[m] = -1;
		if (m < 6 && ns > 0 && marks[m] > st[ns - 1] + interval_ms / 1000)
			continue; /* not sampled that long */
		for (size_t i = 0; i < ns; i++)
			if (st[i] <= marks[m] + interval_ms / 2000)
				at[m] = sr[i];
	}
	if (trace)
		for (size_t i = 0; i < ns; i++)
			printf("%.3f %.1f\n", st[i], sr[i]);
	bench_ok(
	    &o, t0,
	    "blocks=%zu total_mib=%llu base_mib=%.1f full=%.1f at0=%.1f at100ms=%.1f at1s=%.1f "
	    "at5s=%.1f at10s=%.1f at11s=%.1f end=%.1f back32_s=%.2f poke=%.1f poke100ms=%.1f "
	    "poke_ms=%.1f fill_s=%.2f free_s=%.2f",
	    n, (unsigned long long)(total / MiB), (double)base / MiB, above_mib(full, base), at[0],
	    at[1], at[2], at[3], at[4], at[5], at[6], back32, poke_rss, poke100, poke_ms, t1 - t0,
	    tf - t1);
	return 0;
}
