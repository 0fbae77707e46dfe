/*
 * realloc: growing and shrinking blocks with realloc, single thread.
 *
 * Strings: 64 strings are built at once, round robin, each by appending
 * chunks of 1..40 characters with realloc(s, len + chunk + 1), the way naive
 * string building code does. When a string reaches its target length
 * (1..64 KiB, one in 32 up to 1 MiB) its content is checked, then it goes
 * through a shrinking pass (realloc to half its size, repeatedly, checking the
 * surviving prefix each time) and is freed.
 * Vectors: arrays of 64-bit integers grown by a factor of 1.5 with realloc up
 * to 4..2M elements, filled, checked, shrunk by halves, checked, freed.
 */
#include "common.h"

static const char *NAME = "realloc";

#define NSTR 64

struct str {
	char *s;
	size_t len, target;
	uint64_t id;
};

static inline char
str_char(uint64_t id, size_t pos) {
	return (char)('a' + (id * 31 + pos * 7 + (pos >> 5)) % 26);
}

static void
str_check(const struct str *x, size_t len, const char *when) {
	for (size_t i = 0; i < len; i++)
		if (x->s[i] != str_char(x->id, i))
			bench_fail(NAME, "string %llu corrupted at %zu of %zu (%s)",
			           (unsigned long long)x->id, i, len, when);
	if (x->s[len] != '\0')
		bench_fail(NAME, "string %llu lost its terminator (%s)", (unsigned long long)x->id,
		           when);
}

static uint64_t reallocs, next_id;

static void *
xrealloc(void *p, size_t n) {
	void *q = realloc(p, n);
	if (!q)
		bench_fail(NAME, "realloc(%p, %zu) returned NULL", p, n);
	reallocs++;
	return q;
}

static void
str_start(struct str *x, uint64_t *rng) {
	x->id = next_id++;
	x->len = 0;
	x->target = (rng_below(rng, 32) == 0) ? rng_range(rng, 65536, 1 << 20)
	                                      : rng_range(rng, 1024, 65536);
	x->s = xrealloc(NULL, 1);
	x->s[0] = '\0';
}

/* Shrink by halves, checking the prefix; then free. Returns a checksum. */
static uint64_t
str_finish(struct str *x) {
	uint64_t sum = x->len;

	str_check(x, x->len, "grown");
	size_t len = x->len;
	while (len > 16) {
		len /= 2;
		x->s[len] = '\0';
		x->s = xrealloc(x->s, len + 1);
		str_check(x, len, "shrunk");
		sum += (unsigned char)x->s[len - 1];
	}
	free(x->s);
	x->s = NULL;
	return sum;
}

static uint64_t
vector_round(uint64_t *rng) {
	size_t target = (size_t)rng_range(rng, 4, rng_below(rng, 8) ? 65536 : 2u << 20);
	size_t cap = 4, n = 0;
	uint64_t *v = xrealloc(NULL, cap * sizeof *v);
	uint64_t base = rng_next(rng), sum = 0;

	while (n < target) {
		if (n == cap) {
			cap += cap / 2;
			v = xrealloc(v, cap * sizeof *v);
		}
		v[n] = base + n * n;
		n++;
	}
	for (size_t len = n; len > 2; len /= 2) {
		v = xrealloc(v, len * sizeof *v);
		for (size_t i = 0; i < len; i++)
			if (v[i] != base + i * i)
				bench_fail(NAME, "vector element %zu of %zu corrupted", i, len);
		sum += v[len - 1];
	}
	free(v);
	return sum;
}

int
main(int argc, char **argv) {
	struct bench_opts o;
	static struct str strs[NSTR];

	bench_parse(&o, argc, argv, NAME, "string and vector building with realloc, then shrinking",
	            1);
	uint64_t strings = bench_scaled(&o, 3000, 80);
	uint64_t vectors = bench_scaled(&o, 450, 12);
	uint64_t rng = o.seed, sum = 0, done = 0;
	double t0 = bench_now();

	for (int i = 0; i < NSTR; i++)
		str_start(&strs[i], &rng);
	while (done < strings) {
		for (int i = 0; i < NSTR; i++) {
			struct str *x = &strs[i];
			size_t chunk = (size_t)rng_range(&rng, 1, 40);
			x->s = xrealloc(x->s, x->len + chunk + 1);
			for (size_t k = 0; k < chunk; k++)
				x->s[x->len + k] = str_char(x->id, x->len + k);
			x->len += chunk;
			x->s[x->len] = '\0';
			if (x->len >= x->target) {
				sum += str_finish(x);
				done++;
				str_start(x, &rng);
			}
		}
	}
	for (int i = 0; i < NSTR; i++)
		sum += str_finish(&strs[i]);
	for (uint64_t i = 0; i < vectors; i++)
		sum += vector_round(&rng);
	bench_ok(&o, t0, "strings=%llu vectors=%llu reallocs=%llu checksum=%016llx",
	         (unsigned long long)done, (unsigned long long)vectors,
	         (unsigned long long)reallocs, (unsigned long long)sum);
	return 0;
}
