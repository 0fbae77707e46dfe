/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the radix tree (rtree.h, rtree.c).
 *
 * Set/get/clear over keys at both ends of the key space and across many
 * leaves, out-of-range and misaligned keys, a leaf allocator that fails,
 * readers racing a writer, and the fork handlers across a real fork().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc/internal/config.h"
#include "alloc/internal/rtree.h"

#define TEST_MAX_LEAVES 256
#define TEST_KEY_LIMIT  ((uintptr_t)1 << LG_VADDR)
#define TEST_KEY_MAX    (TEST_KEY_LIMIT - CHUNK)

static rtree_t test_tree;
/* Never initialised: must read as empty. */
static rtree_t test_tree_zero;

static void *test_leaves[TEST_MAX_LEAVES];
static size_t test_nleaves;
static bool test_alloc_fails;

static void *
test_alloc(size_t size) {
	assert_int_equal(size, RTREE_LEAF_SIZE);
	if (test_alloc_fails || test_nleaves == TEST_MAX_LEAVES) {
		return NULL;
	}
	void *p = aligned_alloc(PAGE, size);
	assert_non_null(p);
	memset(p, 0, size);
	test_leaves[test_nleaves++] = p;
	return p;
}

static int
setup(void **state) {
	(void)state;
	test_alloc_fails = false;
	rtree_init(&test_tree, test_alloc);
	return 0;
}

static int
teardown(void **state) {
	(void)state;
	for (size_t i = 0; i < test_nleaves; i++) {
		free(test_leaves[i]);
	}
	test_nleaves = 0;
	return 0;
}

/* A distinct, recognisable value for each key. */
static void *
test_val(uintptr_t key) {
	return (void *)(key ^ 0x5a5a5a5a5a5a5a50ULL ^ 1);
}

static void
test_empty(void **state) {
	(void)state;
	static const uintptr_t keys[] = {0,
	                                 1,
	                                 CHUNK,
	                                 CHUNK + 1,
	                                 TEST_KEY_MAX,
	                                 TEST_KEY_LIMIT - 1,
	                                 TEST_KEY_LIMIT,
	                                 (uintptr_t)1 << 63,
	                                 UINTPTR_MAX};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		assert_null(rtree_get(&test_tree, keys[i]));
		assert_null(rtree_get(&test_tree_zero, keys[i]));
	}
	assert_int_equal(test_nleaves, 0);
}

static void
test_set_get_clear(void **state) {
	(void)state;
	/* Key 0 is an ordinary key. */
	assert_false(rtree_set(&test_tree, 0, test_val(0)));
	assert_ptr_equal(rtree_get(&test_tree, 0), test_val(0));
	/* The highest key, in the last slot of the last leaf. */
	assert_false(rtree_set(&test_tree, TEST_KEY_MAX, test_val(TEST_KEY_MAX)));
	assert_ptr_equal(rtree_get(&test_tree, TEST_KEY_MAX), test_val(TEST_KEY_MAX));
	assert_ptr_equal(rtree_get(&test_tree, TEST_KEY_LIMIT - 1), test_val(TEST_KEY_MAX));
	assert_null(rtree_get(&test_tree, TEST_KEY_LIMIT));
	assert_null(rtree_get(&test_tree, TEST_KEY_MAX - CHUNK));
	assert_int_equal(test_nleaves, 2);

	/* Every chunk of two whole leaves, plus neighbours. */
	uintptr_t leaf_span = (uintptr_t)RTREE_LEAF_NENTRIES << LG_CHUNK;
	uintptr_t base = leaf_span * 3;
	for (uintptr_t k = base; k < base + 2 * leaf_span; k += CHUNK) {
		assert_false(rtree_set(&test_tree, k, test_val(k)));
	}
	assert_int_equal(test_nleaves, 4);
	assert_null(rtree_get(&test_tree, base - CHUNK));
	assert_null(rtree_get(&test_tree, base + 2 * leaf_span));
	for (uintptr_t k = base; k < base + 2 * leaf_span; k += CHUNK) {
		assert_ptr_equal(rtree_get(&test_tree, k), test_val(k));
		/* Any address in the chunk finds it. */
		assert_ptr_equal(rtree_get(&test_tree, k + CHUNK / 2), test_val(k));
		assert_ptr_equal(rtree_get(&test_tree, k + CHUNK - 1), test_val(k));
	}
	/* Overwrite, clear by interior address, clear twice. */
	assert_false(rtree_set(&test_tree, base, test_val(1)));
	assert_ptr_equal(rtree_get(&test_tree, base), test_val(1));
	for (uintptr_t k = base; k < base + 2 * leaf_span; k += 2 * CHUNK) {
		rtree_clear(&test_tree, k + 12345);
		rtree_clear(&test_tree, k);
	}
	for (uintptr_t k = base; k < base + 2 * leaf_span; k += CHUNK) {
		void *want = ((k - base) / CHUNK) % 2 == 0 ? NULL : test_val(k);
		assert_ptr_equal(rtree_get(&test_tree, k), want);
	}
	/* Setting NULL is clearing. */
	assert_false(rtree_set(&test_tree, 0, NULL));
	assert_null(rtree_get(&test_tree, 0));
	assert_ptr_equal(rtree_get(&test_tree, TEST_KEY_MAX), test_val(TEST_KEY_MAX));
	assert_int_equal(test_nleaves, 4);
}

#define TEST_NSPARSE 200

/* Key i of TEST_NSPARSE spread over the whole key space, one per leaf. */
static uintptr_t
test_sparse_key(size_t i) {
	uintptr_t stride = TEST_KEY_LIMIT / TEST_NSPARSE;
	uintptr_t k = ALIGN_DOWN(i * stride, (uintptr_t)CHUNK);
	return k + (uintptr_t)(i * 37 % RTREE_LEAF_NENTRIES) * CHUNK;
}

static void
test_sparse_keys(void **state) {
	(void)state;
	for (size_t i = 0; i < TEST_NSPARSE; i++) {
		uintptr_t k = test_sparse_key(i);
		assert_false(rtree_set(&test_tree, k, test_val(k)));
	}
	assert_int_equal(test_nleaves, TEST_NSPARSE);
	for (size_t i = 0; i < TEST_NSPARSE; i++) {
		uintptr_t k = test_sparse_key(i);
		assert_ptr_equal(rtree_get(&test_tree, k), test_val(k));
		assert_null(rtree_get(&test_tree, k + CHUNK));
	}
}

static void
test_bad_keys(void **state) {
	(void)state;
	static const uintptr_t out[] = {TEST_KEY_LIMIT, TEST_KEY_LIMIT + CHUNK, (uintptr_t)1 << 63,
	                                UINTPTR_MAX & ~(uintptr_t)CHUNK_MASK};
	for (size_t i = 0; i < ARRAY_SIZE(out); i++) {
		if (LG_VADDR == 64) {
			break;
		}
		assert_true(rtree_set(&test_tree, out[i], test_val(out[i])));
		assert_null(rtree_get(&test_tree, out[i]));
		rtree_clear(&test_tree, out[i]);
	}
	/* Misaligned keys are refused and leave the chunk alone. */
	assert_true(rtree_set(&test_tree, CHUNK + 8, test_val(CHUNK)));
	assert_true(rtree_set(&test_tree, 1, test_val(0)));
	assert_null(rtree_get(&test_tree, CHUNK));
	assert_null(rtree_get(&test_tree, 0));
	assert_int_equal(test_nleaves, 0);
}

static void
test_alloc_failure(void **state) {
	(void)state;
	test_alloc_fails = true;
	assert_true(rtree_set(&test_tree, 5 * CHUNK, test_val(5 * CHUNK)));
	assert_null(rtree_get(&test_tree, 5 * CHUNK));
	/* Clearing needs no leaf. */
	rtree_clear(&test_tree, 5 * CHUNK);
	assert_false(rtree_set(&test_tree, 5 * CHUNK, NULL));
	assert_int_equal(test_nleaves, 0);

	test_alloc_fails = false;
	assert_false(rtree_set(&test_tree, 5 * CHUNK, test_val(5 * CHUNK)));
	assert_ptr_equal(rtree_get(&test_tree, 5 * CHUNK), test_val(5 * CHUNK));
	/* An existing leaf needs no allocation. */
	test_alloc_fails = true;
	assert_false(rtree_set(&test_tree, 6 * CHUNK, test_val(6 * CHUNK)));
	assert_ptr_equal(rtree_get(&test_tree, 6 * CHUNK), test_val(6 * CHUNK));
	assert_int_equal(test_nleaves, 1);
	test_alloc_fails = false;
}

static void
test_static_initializer(void **state) {
	(void)state;
	static rtree_t t = RTREE_INITIALIZER(test_alloc);
	assert_null(rtree_get(&t, 7 * CHUNK));
	assert_false(rtree_set(&t, 7 * CHUNK, test_val(7)));
	assert_ptr_equal(rtree_get(&t, 7 * CHUNK), test_val(7));
	rtree_clear(&t, 7 * CHUNK);
	assert_null(rtree_get(&t, 7 * CHUNK));
}

#define TEST_NREADERS 4
#define TEST_NKEYS    20000
/* Keys spread over about 32 leaves, created while the readers run. */
#define TEST_KEY(i) (((uintptr_t)(i)*13) << LG_CHUNK)

static int test_done;
static int test_nstarted;

static void *
test_reader(void *arg) {
	(void)arg;
	unsigned long rounds = 0;
	__atomic_fetch_add(&test_nstarted, 1, __ATOMIC_ACQ_REL);
	while (!__atomic_load_n(&test_done, __ATOMIC_ACQUIRE) || rounds < 2) {
		for (size_t i = 0; i < TEST_NKEYS; i += 7) {
			uintptr_t k = TEST_KEY(i) % TEST_KEY_LIMIT;
			void *v = rtree_get(&test_tree, k);
			/* Either not yet set or exactly the published value. */
			if (v != NULL && v != test_val(k)) {
				return (void *)1;
			}
		}
		rounds++;
		if (rounds > 1000000) {
			break;
		}
	}
	return NULL;
}

static void
test_concurrent_readers(void **state) {
	(void)state;
	pthread_t th[TEST_NREADERS];
	__atomic_store_n(&test_done, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&test_nstarted, 0, __ATOMIC_RELEASE);
	for (int i = 0; i < TEST_NREADERS; i++) {
		assert_int_equal(pthread_create(&th[i], NULL, test_reader, NULL), 0);
	}
	/* Write only once every reader is reading. */
	while (__atomic_load_n(&test_nstarted, __ATOMIC_ACQUIRE) < TEST_NREADERS) {
		sched_yield();
	}
	for (size_t i = 0; i < TEST_NKEYS; i++) {
		uintptr_t k = TEST_KEY(i) % TEST_KEY_LIMIT;
		assert_false(rtree_set(&test_tree, k, test_val(k)));
	}
	__atomic_store_n(&test_done, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < TEST_NREADERS; i++) {
		void *ret;
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	for (size_t i = 0; i < TEST_NKEYS; i++) {
		uintptr_t k = TEST_KEY(i) % TEST_KEY_LIMIT;
		assert_ptr_equal(rtree_get(&test_tree, k), test_val(k));
	}
}

static void
test_fork(void **state) {
	(void)state;
	assert_false(rtree_set(&test_tree, CHUNK, test_val(CHUNK)));
	rtree_prefork(&test_tree);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		rtree_postfork_child(&test_tree);
		bool ok = rtree_get(&test_tree, CHUNK) == test_val(CHUNK) &&
		          !rtree_set(&test_tree, 2 * CHUNK, test_val(2 * CHUNK)) &&
		          rtree_get(&test_tree, 2 * CHUNK) == test_val(2 * CHUNK);
		_exit(ok ? 0 : 1);
	}
	rtree_postfork_parent(&test_tree);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The child's write stays in the child; the parent's lock works. */
	assert_null(rtree_get(&test_tree, 2 * CHUNK));
	assert_false(rtree_set(&test_tree, 3 * CHUNK, test_val(3 * CHUNK)));
	assert_ptr_equal(rtree_get(&test_tree, 3 * CHUNK), test_val(3 * CHUNK));
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_get_clear, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sparse_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_static_initializer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_readers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
