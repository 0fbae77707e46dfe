/*
 * Shared helpers for the liballoc benchmark workloads (the bench/ C files).
 *
 * Every workload:
 *   - takes the same options: [--tiny | --quick | --scale F] [--threads N] [--seed S];
 *   - writes a pattern into each block it allocates and checks it before the
 *     block is freed, so an allocator that hands out overlapping or corrupted
 *     memory fails instead of looking fast;
 *   - prints one line beginning with "OK <name>" on success and exits 0, or
 *     prints "FAIL <name>: reason" on stderr and exits 1.
 *
 * Bookkeeping arrays that are not part of the measured allocation pattern are
 * obtained with mmap() (bench_map), so that they do not go through malloc.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define BENCH_UNUSED __attribute__((unused))

struct bench_opts {
	const char *name;
	const char *mode; /* "tiny", "quick", "full" or "custom" */
	double scale;     /* 1.0 = full size */
	int threads;
	uint64_t seed;
};

static BENCH_UNUSED __attribute__((noreturn, format(printf, 2, 3))) void
bench_fail(const char *name, const char *fmt, ...) {
	va_list ap;

	fprintf(stderr, "FAIL %s: ", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stdout);
	exit(1);
}

static BENCH_UNUSED void
bench_usage(const struct bench_opts *o, const char *what) {
	printf("usage: %s [--tiny | --quick | --scale F] [--threads N] [--seed S]\n"
	       "  %s\n"
	       "  --tiny     minimal size (seconds fraction; used by scripts/check)\n"
	       "  --quick    about 5x smaller than the default\n"
	       "  --scale F  multiply the default amount of work by F\n"
	       "  --threads N  worker threads (where the workload is multi-threaded)\n",
	       o->name, what);
}

/* Parse the common options; default_threads is used when --threads is absent. */
static BENCH_UNUSED void
bench_parse(struct bench_opts *o, int argc, char **argv, const char *name, const char *what,
            int default_threads) {
	o->name = name;
	o->mode = "full";
	o->scale = 1.0;
	o->threads = default_threads;
	o->seed = 0x243f6a8885a308d3ULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--tiny") || !strcmp(a, "tiny")) {
			o->mode = "tiny";
			o->scale = 0.005;
		} else if (!strcmp(a, "--quick") || !strcmp(a, "quick")) {
			o->mode = "quick";
			o->scale = 0.2;
		} else if (!strcmp(a, "--full") || !strcmp(a, "full")) {
			o->mode = "full";
			o->scale = 1.0;
		} else if (!strcmp(a, "--scale") && i + 1 < argc) {
			o->mode = "custom";
			o->scale = strtod(argv[++i], NULL);
			if (!(o->scale > 0))
				bench_fail(name, "bad --scale %s", argv[i]);
		} else if (!strcmp(a, "--threads") && i + 1 < argc) {
			o->threads = atoi(argv[++i]);
			if (o->threads < 1 || o->threads > 1024)
				bench_fail(name, "bad --threads %s", argv[i]);
		} else if (!strcmp(a, "--seed") && i + 1 < argc) {
			o->seed = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			bench_usage(o, what);
			exit(0);
		} else {
			bench_usage(o, what);
			exit(2);
		}
	}
}

/* base * scale, at least min. */
static BENCH_UNUSED uint64_t
bench_scaled(const struct bench_opts *o, double base, uint64_t min) {
	double v = base * o->scale;
	return v < (double)min ? min : (uint64_t)v;
}

static BENCH_UNUSED double
bench_now(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64: tiny, fast, good enough; one state per thread. */
static inline uint64_t
rng_next(uint64_t *s) {
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static inline uint64_t
rng_below(uint64_t *s, uint64_t n) {
	return (uint64_t)(((unsigned __int128)rng_next(s) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static inline uint64_t
rng_range(uint64_t *s, uint64_t lo, uint64_t hi) {
	return lo + rng_below(s, hi - lo + 1);
}

/* A 64-bit mix of x, used to derive per-block tags. */
static inline uint64_t
mix64(uint64_t x) {
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static inline void
put64(unsigned char *p, uint64_t v) {
	memcpy(p, &v, 8);
}

static inline uint64_t
get64(const unsigned char *p) {
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/*
 * Stamp a block of n bytes with a pattern derived from tag: the first and last
 * 8 bytes and one word in every 4 KiB page (so large blocks are really
 * touched). Blocks shorter than 16 bytes are filled byte by byte.
 */
static inline void
stamp(void *block, size_t n, uint64_t tag) {
	unsigned char *p = block;

	if (n < 16) {
		for (size_t i = 0; i < n; i++)
			p[i] = (unsigned char)(tag >> ((i & 7) * 8)) ^ (unsigned char)i;
		return;
	}
	put64(p, tag);
	put64(p + n - 8, ~tag ^ n);
	for (size_t off = 4096; off + 16 <= n; off += 4096)
		put64(p + off, tag + off);
}

/* 1 if the pattern written by stamp(block, n, tag) is intact. */
static inline int
stamp_ok(const void *block, size_t n, uint64_t tag) {
	const unsigned char *p = block;

	if (n < 16) {
		for (size_t i = 0; i < n; i++)
			if (p[i] != ((unsigned char)(tag >> ((i & 7) * 8)) ^ (unsigned char)i))
				return 0;
		return 1;
	}
	if (get64(p) != tag || get64(p + n - 8) != (~tag ^ n))
		return 0;
	for (size_t off = 4096; off + 16 <= n; off += 4096)
		if (get64(p + off) != tag + off)
			return 0;
	return 1;
}

/* Zeroed memory for bookkeeping, straight from the kernel (not malloc). */
static BENCH_UNUSED void *
bench_map(const char *name, size_t bytes) {
	void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	               -1, 0);

	if (p == MAP_FAILED)
		bench_fail(name, "mmap(%zu) for bookkeeping failed: %s", bytes, strerror(errno));
	return p;
}

static BENCH_UNUSED void
bench_unmap(void *p, size_t bytes) {
	munmap(p, bytes ? bytes : 1);
}

/*
 * Blocks that carry their own size: the first word holds the size (low 20
 * bits, so below 1 MiB) and a tag, the rest a stamp derived from both and
 * the address. hblock_free checks it and that the size is in [min, max]
 * before freeing. For workloads whose blocks are freed by code that does
 * not know their size (another thread, a later wave).
 */
static BENCH_UNUSED unsigned char *
hblock_new(const char *name, size_t n, uint64_t tag) {
	unsigned char *p = malloc(n);
	if (!p)
		bench_fail(name, "malloc(%zu) returned NULL", n);
	uint64_t meta = (tag << 20) | n;
	put64(p, meta);
	stamp(p + 8, n - 8, mix64(meta ^ (uintptr_t)p));
	return p;
}

static BENCH_UNUSED void
hblock_free(const char *name, unsigned char *p, size_t min, size_t max) {
	uint64_t meta = get64(p);
	size_t n = (size_t)(meta & 0xfffff);
	if (n < min || n > max || !stamp_ok(p + 8, n - 8, mix64(meta ^ (uintptr_t)p)))
		bench_fail(name, "block %p corrupted (header %016llx)", (void *)p,
		           (unsigned long long)meta);
	free(p);
}

/*
 * A mailbox between threads: any thread posts (a lock-free push of one
 * message), one thread takes everything posted so far at once (an atomic
 * exchange of the list head, so there is no ABA problem). Messages are
 * caller-owned structs that begin with a struct bench_msg. Used by the
 * cross-thread workloads (xfree, xmalloc) to hand blocks to other threads
 * without a lock of the benchmark's own.
 */
struct bench_msg {
	struct bench_msg *next;
};

struct bench_mailbox {
	_Alignas(64) struct bench_msg *_Atomic head;
	char pad[64 - sizeof(void *)];
};

static BENCH_UNUSED void
mailbox_post(struct bench_mailbox *mb, struct bench_msg *m) {
	struct bench_msg *old = atomic_load_explicit(&mb->head, memory_order_relaxed);
	do {
		m->next = old;
	} while (!atomic_compare_exchange_weak_explicit(&mb->head, &old, m, memory_order_release,
	                                                memory_order_relaxed));
}

/* Everything posted so far, newest first; NULL when empty. */
static BENCH_UNUSED struct bench_msg *
mailbox_take(struct bench_mailbox *mb) {
	if (atomic_load_explicit(&mb->head, memory_order_relaxed) == NULL)
		return NULL;
	return atomic_exchange_explicit(&mb->head, NULL, memory_order_acquire);
}

/* Read a "VmXXX:  N kB" field of /proc/self/status; -1 if unavailable. */
static BENCH_UNUSED long
bench_status_kb(const char *field) {
	char line[256];
	size_t flen = strlen(field);
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, field, flen) && line[flen] == ':') {
			v = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* Print the common success line. */
static BENCH_UNUSED __attribute__((format(printf, 3, 4))) void
bench_ok(const struct bench_opts *o, double t0, const char *fmt, ...) {
	va_list ap;

	printf("OK %s mode=%s scale=%g threads=%d elapsed=%.3fs ", o->name, o->mode, o->scale,
	       o->threads, bench_now() - t0);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" peak_rss_kb=%ld\n", bench_status_kb("VmHWM"));
	fflush(stdout);
}

#endif
