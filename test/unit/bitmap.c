/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the region bitmaps (bitmap.h).
 *
 * For every size from 1 to 600 bits and a few large ones: initialisation
 * and padding, sfu filling in ascending order, frees followed by sfu
 * returning the lowest freed bit, the hint invariant, and a random mix of
 * operations checked against a plain bool array.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc/internal/bitmap.h"

#define TEST_MAXBITS 65536

static bitmap_t test_bm[BITMAP_NGROUPS(TEST_MAXBITS) + 1];
static bool test_model[TEST_MAXBITS];

static const size_t test_large_sizes[] = {1023, 1024, 1025, 4095,  4096,
                                          8191, 8192, 8193, 65535, 65536};

/* Deterministic xorshift, so a failure reproduces. */
static uint64_t test_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
test_rand(void) {
	test_rng ^= test_rng << 13;
	test_rng ^= test_rng >> 7;
	test_rng ^= test_rng << 17;
	return test_rng;
}

/* Every group below the hint is full (the documented invariant). */
static void
check_hint(size_t ngroups, size_t hint) {
	assert_true(hint <= ngroups);
	for (size_t g = 0; g < hint; g++) {
		assert_true(test_bm[g] == BITMAP_GROUP_FULL);
	}
}

static void
check_init(size_t nbits) {
	size_t ngroups = BITMAP_NGROUPS(nbits);
	assert_int_equal(ngroups, (nbits + 63) / 64);
	/* A sentinel past the end must survive init. */
	test_bm[ngroups] = 0x5a5a5a5a5a5a5a5aULL;
	memset(test_bm, 0xff, ngroups * sizeof(bitmap_t));
	bitmap_init(test_bm, nbits);
	assert_true(test_bm[ngroups] == 0x5a5a5a5a5a5a5a5aULL);
	for (size_t i = 0; i < nbits; i++) {
		assert_false(bitmap_get(test_bm, i));
	}
	for (size_t i = nbits; i < ngroups * 64; i++) {
		assert_true(bitmap_get(test_bm, i));
	}
	assert_false(bitmap_full(test_bm, ngroups));
}

static void
check_fill_and_free(size_t nbits) {
	size_t ngroups = BITMAP_NGROUPS(nbits);
	size_t hint = 0;
	bitmap_init(test_bm, nbits);
	for (size_t i = 0; i < nbits; i++) {
		size_t bit = bitmap_sfu(test_bm, ngroups, &hint);
		assert_int_equal(bit, i);
		assert_true(bitmap_get(test_bm, i));
		/* The hint moves past a group exactly when it fills. */
		size_t want = (i + 1) / 64;
		if (i + 1 == nbits) {
			want = ngroups;
		}
		assert_int_equal(hint, want);
	}
	assert_true(bitmap_full(test_bm, ngroups));

	/* Free every third bit from the top down; sfu gives them back lowest first. */
	for (size_t i = (nbits - 1) / 3 * 3 + 1; i-- > 0;) {
		if (i % 3 == 0) {
			bitmap_unset_hint(test_bm, i, &hint);
			assert_false(bitmap_get(test_bm, i));
			assert_int_equal(hint, i / 64);
		}
	}
	assert_false(bitmap_full(test_bm, ngroups));
	for (size_t i = 0; i < nbits; i += 3) {
		assert_int_equal(bitmap_sfu(test_bm, ngroups, &hint), i);
		check_hint(ngroups, hint);
	}
	assert_true(bitmap_full(test_bm, ngroups));

	/* Free the last bit alone, then the first: each comes back. */
	bitmap_unset_hint(test_bm, nbits - 1, &hint);
	assert_int_equal(bitmap_sfu(test_bm, ngroups, &hint), nbits - 1);
	bitmap_unset_hint(test_bm, 0, &hint);
	assert_int_equal(hint, 0);
	assert_int_equal(bitmap_sfu(test_bm, ngroups, &hint), 0);
	assert_true(bitmap_full(test_bm, ngroups));

	/* Plain unset leaves the hint alone; sfu from hint 0 still finds the bit. */
	bitmap_unset(test_bm, nbits / 2);
	hint = 0;
	assert_int_equal(bitmap_sfu(test_bm, ngroups, &hint), nbits / 2);
}

/* A random mix of sfu and frees against a bool array. */
static void
check_random(size_t nbits, size_t nops) {
	size_t ngroups = BITMAP_NGROUPS(nbits);
	size_t hint = 0, nset = 0, lowest_clear = 0;
	bitmap_init(test_bm, nbits);
	memset(test_model, 0, nbits);
	for (size_t op = 0; op < nops; op++) {
		bool alloc = nset == 0 || (nset < nbits && (test_rand() % 8) < 5);
		if (alloc) {
			size_t bit = bitmap_sfu(test_bm, ngroups, &hint);
			assert_true(bit < nbits);
			assert_int_equal(bit, lowest_clear);
			test_model[bit] = true;
			nset++;
			while (lowest_clear < nbits && test_model[lowest_clear]) {
				lowest_clear++;
			}
		} else {
			size_t bit = test_rand() % nbits;
			while (!test_model[bit]) {
				bit = bit + 1 == nbits ? 0 : bit + 1;
			}
			bitmap_unset_hint(test_bm, bit, &hint);
			test_model[bit] = false;
			nset--;
			if (bit < lowest_clear) {
				lowest_clear = bit;
			}
		}
		check_hint(ngroups, hint);
		assert_true(bitmap_full(test_bm, ngroups) == (nset == nbits));
	}
	for (size_t i = 0; i < nbits; i++) {
		assert_true(bitmap_get(test_bm, i) == test_model[i]);
	}
}

static void
test_ngroups(void **state) {
	(void)state;
	assert_int_equal(BITMAP_NGROUPS(1), 1);
	assert_int_equal(BITMAP_NGROUPS(64), 1);
	assert_int_equal(BITMAP_NGROUPS(65), 2);
	assert_int_equal(BITMAP_NGROUPS(8192), 128);
	/* Usable as an array size. */
	bitmap_t a[BITMAP_NGROUPS(100)];
	assert_int_equal(ARRAY_SIZE(a), 2);
}

static void
test_init_all_sizes(void **state) {
	(void)state;
	for (size_t nbits = 1; nbits <= 600; nbits++) {
		check_init(nbits);
	}
	for (size_t i = 0; i < ARRAY_SIZE(test_large_sizes); i++) {
		check_init(test_large_sizes[i]);
	}
}

static void
test_fill_all_sizes(void **state) {
	(void)state;
	for (size_t nbits = 1; nbits <= 600; nbits++) {
		check_fill_and_free(nbits);
	}
	for (size_t i = 0; i < ARRAY_SIZE(test_large_sizes); i++) {
		check_fill_and_free(test_large_sizes[i]);
	}
}

static void
test_random_all_sizes(void **state) {
	(void)state;
	for (size_t nbits = 1; nbits <= 600; nbits++) {
		check_random(nbits, 4 * nbits + 64);
	}
	for (size_t i = 0; i < ARRAY_SIZE(test_large_sizes); i++) {
		check_random(test_large_sizes[i], 20000);
	}
}

static void
test_set_get(void **state) {
	(void)state;
	size_t nbits = 200;
	bitmap_init(test_bm, nbits);
	for (size_t i = 0; i < nbits; i += 7) {
		bitmap_set(test_bm, i);
	}
	for (size_t i = 0; i < nbits; i++) {
		assert_true(bitmap_get(test_bm, i) == (i % 7 == 0));
	}
	/* sfu skips the bits set by hand. */
	size_t hint = 0;
	assert_int_equal(bitmap_sfu(test_bm, BITMAP_NGROUPS(nbits), &hint), 1);
	/* set and unset are idempotent. */
	bitmap_set(test_bm, 7);
	assert_true(bitmap_get(test_bm, 7));
	for (size_t i = 0; i < nbits; i += 7) {
		bitmap_unset(test_bm, i);
	}
	bitmap_unset(test_bm, 0);
	assert_false(bitmap_get(test_bm, 0));
	assert_false(bitmap_get(test_bm, 7));
	assert_true(bitmap_get(test_bm, 1));
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ngroups),        cmocka_unit_test(test_init_all_sizes),
	    cmocka_unit_test(test_fill_all_sizes), cmocka_unit_test(test_random_all_sizes),
	    cmocka_unit_test(test_set_get),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
