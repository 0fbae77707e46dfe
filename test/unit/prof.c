/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of heap profiling's arithmetic and writers (prof.c,
 * prof_dump.c), in every build (the functions are compiled in always):
 *  - prof_ln / prof_exp against known values (no libm in the test either);
 *  - the byte countdown: with a seeded generator, the mean of the drawn
 *    intervals is 2^lg_sample and their spread that of an exponential
 *    distribution; the per-bin allocation gaps sample each object with
 *    probability 1 - exp(-usize / 2^lg_sample);
 *  - the unbiasing factor: sampled objects times the factor estimate the
 *    true count within sampling error;
 *  - the heap_v2 writer on hand-built records, compared line by line;
 *  - the protobuf encoder against hand-decoded bytes, and a pprof profile
 *    walked field by field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc/internal/prof.h"
#include "alloc/internal/prof_dump.h"

#define ABS(x) ((x) < 0 ? -(x) : (x))

static void
test_ln_exp(void **state) {
	(void)state;
	/* ln and exp of values whose logarithms are known to 16 digits. */
	const struct {
		double x, ln;
	} known[] = {
	    {1, 0},
	    {2, 0.69314718055994531},
	    {10, 2.3025850929940457},
	    {0.5, -0.69314718055994531},
	    {2.7182818284590452, 1},
	    {0.36787944117144233, -1},
	    {1e-300, -690.77552789821371},
	    {1e300, 690.77552789821371},
	    {1.4142135623730951, 0.34657359027997265},
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		double got = prof_ln(known[i].x);
		assert_true(ABS(got - known[i].ln) <= 1e-13 * (ABS(known[i].ln) + 1));
		double back = prof_exp(known[i].ln);
		assert_true(ABS(back - known[i].x) <= 1e-13 * known[i].x);
	}
	/* exp(ln x) = x over a sweep. */
	for (double x = 1e-9; x < 1e9; x *= 1.37) {
		assert_true(ABS(prof_exp(prof_ln(x)) - x) <= 1e-12 * x);
	}
	assert_true(prof_exp(-800) == 0);
}

static void
test_prng_seeded(void **state) {
	(void)state;
	/* splitmix64 from seed 0: the published first outputs. */
	uint64_t s = 0;
	assert_true(prof_prng_next(&s) == 0xe220a8397b1dcdafULL);
	assert_true(prof_prng_next(&s) == 0x6e789e6aa1b965f4ULL);
	assert_true(prof_prng_next(&s) == 0x06c45d188009454fULL);
}

/* The countdown's intervals: mean 2^lg and variance 2^(2 lg), as an
 * exponential distribution has. */
static void
test_countdown_mean(void **state) {
	(void)state;
	enum { N = 200000 };
	const unsigned lgs[] = {4, 10, 19};
	for (size_t k = 0; k < sizeof(lgs) / sizeof(lgs[0]); k++) {
		uint64_t seed = 12345 + k;
		double mean = (double)((uint64_t)1 << lgs[k]);
		double sum = 0, sum2 = 0;
		for (int i = 0; i < N; i++) {
			double b = (double)prof_draw_bytes(&seed, lgs[k]);
			assert_true(b >= 1);
			sum += b;
			sum2 += b * b;
		}
		double m = sum / N;
		double var = sum2 / N - m * m;
		/* Standard error of the mean is mean / sqrt(N): 0.22 %; allow
		 * 1.5 % (and the rounding down to whole bytes at lg 4). */
		assert_true(ABS(m - mean) < 0.015 * mean + 0.5);
		/* An exponential's variance is its mean squared. */
		assert_true(ABS(var - mean * mean) < 0.06 * mean * mean + mean);
	}
}

/* Per-bin gaps: a fraction 1 - exp(-u/R) of a class's objects is
 * sampled, and the unbiasing factor turns the sample count back into the
 * object count. */
static void
test_bin_gaps_unbiased(void **state) {
	(void)state;
	const unsigned lg = 12;
	const size_t sizes[] = {16, 256, 4096, 20480, 1 << 20};
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint64_t seed = 99 + k;
		size_t u = sizes[k];
		double p = 1 - prof_exp(-(double)u / (double)(1 << lg));
		/* Enough objects for ~20000 samples. */
		uint64_t nobjs = (uint64_t)(20000 / p);
		uint64_t nsampled = 0;
		int64_t left = prof_draw_allocs(&seed, lg, u);
		for (uint64_t i = 0; i < nobjs; i++) {
			assert_true(left >= 1);
			if (--left == 0) {
				nsampled++;
				left = prof_draw_allocs(&seed, lg, u);
			}
		}
		double factor = prof_unbias_factor(u, lg);
		assert_true(ABS(factor - 1 / p) < 1e-9 * factor);
		double est = (double)nsampled * factor;
		/* 20000 samples: relative standard error < 0.71 %. */
		assert_true(ABS(est - (double)nobjs) < 0.03 * (double)nobjs);
	}
	/* Objects much larger than the period are always sampled. */
	assert_true(ABS(prof_unbias_factor((size_t)1 << 30, 12) - 1) < 1e-12);
	/* Tiny objects: the factor is about R / u. */
	double f = prof_unbias_factor(8, 19);
	assert_true(ABS(f - 65536.5) < 0.01);
}

/* ---------------------------------------------------------------------- */
/* Writers. */

static char *
buf_string(prof_buf_t *b) {
	char *s = malloc(b->len + 1);
	memcpy(s, b->p, b->len);
	s[b->len] = '\0';
	return s;
}

static void
test_heap_v2(void **state) {
	(void)state;
	prof_tdata_t t0, t1;
	memset(&t0, 0, sizeof(t0));
	memset(&t1, 0, sizeof(t1));
	t0.uid = 0;
	t1.uid = 7;
	snprintf(t1.name, sizeof(t1.name), "worker one");
	t0.cnt = (prof_cnt_t){3, 300, 5, 500};
	t1.cnt = (prof_cnt_t){1, 4096, 1, 4096};
	t0.next = &t1;
	/* Two backtraces: bt_a with both threads, bt_b empty (left out). */
	prof_bt_t *a = calloc(1, sizeof(prof_bt_t) + 3 * sizeof(uintptr_t));
	prof_bt_t *b = calloc(1, sizeof(prof_bt_t) + 1 * sizeof(uintptr_t));
	a->nframes = 3;
	a->pcs[0] = 0x401001;
	a->pcs[1] = 0x402000;
	a->pcs[2] = 0x7f0000001234;
	b->nframes = 1;
	b->pcs[0] = 0x500001;
	prof_tctx_t ta0 = {a, &t0, {3, 300, 5, 500}, {0, 0, 0, 0}, NULL, NULL};
	prof_tctx_t ta1 = {a, &t1, {1, 4096, 1, 4096}, {0, 0, 0, 0}, NULL, NULL};
	ta0.next = &ta1;
	a->tctxs = &ta0;
	prof_tctx_t tb0 = {b, &t0, {0, 0, 0, 0}, {0, 0, 0, 0}, NULL, NULL};
	b->tctxs = &tb0;
	a->next = b;
	const char maps[] = "00400000-00401000 r-xp 00000000 08:01 42 /bin/prog\n";
	prof_dump_src_t src = {a, &t0, 19, false, maps, sizeof(maps) - 1};
	prof_buf_t out = {0};
	prof_dump_heap_v2(&out, &src);
	assert_false(out.failed);
	char *s = buf_string(&out);
	const char *want = "heap_v2/524288\n"
	                   "  t*: 4: 4396 [0: 0]\n"
	                   "  t0: 3: 300 [0: 0]\n"
	                   "  t7: 1: 4096 [0: 0] worker one\n"
	                   "@ 0x401000 0x402000 0x7f0000001234\n"
	                   "  t*: 4: 4396 [0: 0]\n"
	                   "  t0: 3: 300 [0: 0]\n"
	                   "  t7: 1: 4096 [0: 0]\n"
	                   "\n"
	                   "MAPPED_LIBRARIES:\n"
	                   "00400000-00401000 r-xp 00000000 08:01 42 /bin/prog\n";
	assert_string_equal(s, want);
	free(s);
	prof_buf_free(&out);
	/* With prof_accum the cumulative counts appear, and a backtrace
	 * with only cumulative counts is written. */
	tb0.cnt = (prof_cnt_t){0, 0, 2, 64};
	src.accum = true;
	src.lg_sample = 4;
	prof_dump_heap_v2(&out, &src);
	s = buf_string(&out);
	assert_non_null(strstr(s, "heap_v2/16\n  t*: 4: 4396 [6: 4596]\n"));
	assert_non_null(strstr(s, "@ 0x500000\n  t*: 0: 0 [2: 64]\n  t0: 0: 0 [2: 64]\n"));
	free(s);
	prof_buf_free(&out);
	free(a);
	free(b);
}

static void
test_pb_encoder(void **state) {
	(void)state;
	prof_buf_t b = {0}, scratch = {0};
	/* Varints: 1 -> 01; 300 -> ac 02; 2^63 -> 80 x9 01. */
	pb_varint(&b, 1);
	pb_varint(&b, 300);
	pb_varint(&b, (uint64_t)1 << 63);
	const uint8_t v[] = {0x01, 0xac, 0x02, 0x80, 0x80, 0x80, 0x80,
	                     0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
	assert_int_equal(b.len, sizeof(v));
	assert_memory_equal(b.p, v, sizeof(v));
	b.len = 0;
	/* Field 1 = 150 (the protobuf guide's example: 08 96 01); field 2 =
	 * "testing" (12 07 74 65 73 74 69 6e 67); field 4 packed {3, 270,
	 * 86942} (22 06 03 8e 02 9e a7 05). */
	pb_uint(&b, 1, 150);
	pb_bytes(&b, 2, "testing", 7);
	const uint64_t packed[] = {3, 270, 86942};
	pb_packed(&b, &scratch, 4, packed, 3);
	const uint8_t w[] = {0x08, 0x96, 0x01, 0x12, 0x07, 't',  'e',  's',  't',  'i',
	                     'n',  'g',  0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05};
	assert_int_equal(b.len, sizeof(w));
	assert_memory_equal(b.p, w, sizeof(w));
	/* Field numbers above 15 take a two-byte tag: field 16, varint 1. */
	b.len = 0;
	pb_uint(&b, 16, 1);
	const uint8_t x[] = {0x80, 0x01, 0x01};
	assert_memory_equal(b.p, x, sizeof(x));
	prof_buf_free(&b);
	prof_buf_free(&scratch);
}

/* A minimal protobuf reader for the test: the next field of [*p, end). */
static bool
pb_next(const uint8_t **p, const uint8_t *end, unsigned *field, uint64_t *v, const uint8_t **data) {
	if (*p >= end) {
		return false;
	}
	uint64_t key = 0;
	for (unsigned shift = 0;; shift += 7) {
		key |= (uint64_t)(**p & 0x7f) << shift;
		if ((*(*p)++ & 0x80) == 0) {
			break;
		}
	}
	*field = (unsigned)(key >> 3);
	uint64_t n = 0;
	for (unsigned shift = 0;; shift += 7) {
		n |= (uint64_t)(**p & 0x7f) << shift;
		if ((*(*p)++ & 0x80) == 0) {
			break;
		}
	}
	*v = n;
	if ((key & 7) == PB_LEN) {
		*data = *p;
		*p += n;
	} else {
		assert_int_equal(key & 7, PB_VARINT);
		*data = NULL;
	}
	return true;
}

static void
test_pprof_profile(void **state) {
	(void)state;
	prof_tdata_t t0;
	memset(&t0, 0, sizeof(t0));
	prof_bt_t *a = calloc(1, sizeof(prof_bt_t) + 2 * sizeof(uintptr_t));
	a->nframes = 2;
	a->pcs[0] = 0x400101;
	a->pcs[1] = 0x400201;
	prof_tctx_t ta = {a, &t0, {2, 128, 0, 0}, {10.4, 665.6, 0, 0}, NULL, NULL};
	a->tctxs = &ta;
	const char maps[] = "00400000-00401000 r-xp 00001000 08:01 42   /bin/prog\n"
	                    "00601000-00602000 rw-p 00001000 08:01 42   /bin/prog\n"
	                    "7f0000000000-7f0000001000 r-xp 00000000 00:00 0 \n";
	prof_dump_src_t src = {a, &t0, 10, false, maps, sizeof(maps) - 1};
	prof_buf_t out = {0};
	prof_dump_pprof(&out, &src);
	assert_false(out.failed);
	const uint8_t *p = (const uint8_t *)out.p, *end = p + out.len;
	unsigned field;
	uint64_t v;
	const uint8_t *data;
	unsigned nsample_types = 0, nsamples = 0, nmappings = 0, nlocations = 0, nstrings = 0;
	uint64_t period = 0, default_type = 0;
	char strings[16][32];
	while (pb_next(&p, end, &field, &v, &data)) {
		const uint8_t *q = data, *qend = data + (data != NULL ? v : 0);
		unsigned f2;
		uint64_t v2;
		const uint8_t *d2;
		switch (field) {
		case 1:
			nsample_types++;
			break;
		case 2: {
			/* location ids {1, 2}, values {10, 666, 0, 0}. */
			nsamples++;
			while (pb_next(&q, qend, &f2, &v2, &d2)) {
				if (f2 == 1) {
					assert_int_equal(v2, 2);
					assert_int_equal(d2[0], 1);
					assert_int_equal(d2[1], 2);
				} else if (f2 == 2) {
					assert_int_equal(v2, 5);
					const uint8_t want[] = {10, 0x9a, 0x05, 0, 0};
					assert_memory_equal(d2, want, 5);
				}
			}
			break;
		}
		case 3:
			/* Only the executable, file-backed mapping. */
			nmappings++;
			while (pb_next(&q, qend, &f2, &v2, &d2)) {
				const uint64_t want[] = {0, 1, 0x400000, 0x401000, 0x1000, 8};
				assert_true(f2 >= 1 && f2 <= 5);
				assert_true(v2 == want[f2]);
			}
			break;
		case 4:
			/* Addresses one below the return addresses, in the
			 * mapping. */
			nlocations++;
			while (pb_next(&q, qend, &f2, &v2, &d2)) {
				if (f2 == 1) {
					assert_int_equal(v2, nlocations);
				} else if (f2 == 2) {
					assert_int_equal(v2, 1);
				} else if (f2 == 3) {
					assert_true(v2 == (nlocations == 1 ? 0x400100 : 0x400200));
				}
			}
			break;
		case 6:
			assert_true(nstrings < 16 && v < 32);
			memcpy(strings[nstrings], data, v);
			strings[nstrings][v] = '\0';
			nstrings++;
			break;
		case 12:
			period = v;
			break;
		case 14:
			default_type = v;
			break;
		}
	}
	assert_int_equal(nsample_types, 4);
	assert_int_equal(nsamples, 1);
	assert_int_equal(nmappings, 1);
	assert_int_equal(nlocations, 2);
	assert_int_equal(nstrings, 9);
	assert_string_equal(strings[0], "");
	assert_string_equal(strings[1], "inuse_objects");
	assert_string_equal(strings[3], "inuse_space");
	assert_string_equal(strings[default_type], "inuse_space");
	assert_string_equal(strings[8], "/bin/prog");
	assert_int_equal(period, 1024);
	prof_buf_free(&out);
	free(a);
}

static void
test_buf_grows(void **state) {
	(void)state;
	prof_buf_t b = {0};
	char chunk[1000];
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 1000; i++) {
		prof_buf_append(&b, chunk, sizeof(chunk));
	}
	prof_buf_printf(&b, "%d-%s", 42, "end");
	assert_false(b.failed);
	assert_int_equal(b.len, 1000 * 1000 + 6);
	assert_memory_equal(b.p + b.len - 6, "42-end", 6);
	prof_buf_free(&b);
	assert_null(b.p);
	assert_false(prof_buf_read_file(&b, "/proc/self/maps"));
	assert_true(b.len > 0);
	prof_buf_free(&b);
	assert_true(prof_buf_read_file(&b, "/nonexistent/liballoc/prof"));
	prof_buf_free(&b);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ln_exp),         cmocka_unit_test(test_prng_seeded),
	    cmocka_unit_test(test_countdown_mean), cmocka_unit_test(test_bin_gaps_unbiased),
	    cmocka_unit_test(test_heap_v2),        cmocka_unit_test(test_pb_encoder),
	    cmocka_unit_test(test_pprof_profile),  cmocka_unit_test(test_buf_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
