/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * configure --enable-private-heap (with --with-prefix=PFX): the prefixed
 * malloc family allocates only from the one private heap that
 * PFXconfig_private_heap(start, size) sets, and PFXmalloc_reset() empties
 * it. Skipped in other builds (scripts/check builds the variant).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <setjmp.h>
#include <cmocka.h>

#include "alloc.h"

#define MiB ((size_t)1 << 20)

#ifdef ALLOC_PRIVATE_HEAP_BUILD
size_t ALLOC_API(malloc_usable_size)(const void *ptr);

static bool
inside(const void *p, const char *r, size_t size) {
	return (const char *)p >= r && (const char *)p < r + size;
}

static void
test_private_heap(void **state) {
	(void)state;
	size_t size = 16 * MiB;
	char *r = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(r != MAP_FAILED);
	/* Before the heap is set: nothing, and never the C library's. */
	errno = 0;
	assert_null(ALLOC_API(malloc)(10));
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(ALLOC_API(config_private_heap)(r, size), 0);
	/* Again with the same region: accepted; another region: EBUSY. */
	assert_int_equal(ALLOC_API(config_private_heap)(r, size), 0);
	assert_int_equal(ALLOC_API(config_private_heap)(r + 4096, size - 4096), EBUSY);
	char *first = ALLOC_API(malloc)(100);
	assert_true(inside(first, r, size));
	char *z = ALLOC_API(calloc)(1000, 10);
	assert_true(inside(z, r, size));
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(z[i], 0);
	}
	memset(first, 7, 100);
	first = ALLOC_API(realloc)(first, 50000);
	assert_true(inside(first, r, size));
	assert_int_equal(first[99], 7);
	void *a = ALLOC_API(aligned_alloc)(65536, 1000);
	assert_true(inside(a, r, size) && ((uintptr_t)a & 65535) == 0);
	void *big = ALLOC_API(malloc)(3 * MiB);
	assert_true(inside(big, r, size));
	ALLOC_API(free)(big);
	ALLOC_API(free)(a);
	ALLOC_API(free)(z);
	/* Fill it: ENOMEM, all of it inside. */
	size_t n = 0;
	void *p;
	errno = 0;
	while ((p = ALLOC_API(malloc)(4000)) != NULL) {
		assert_true(inside(p, r, size));
		n++;
	}
	assert_int_equal(errno, ENOMEM);
	assert_true(n > 2000);
	/* Reset: everything is free again, without a single free(). */
	ALLOC_API(malloc_reset)();
	size_t m = 0;
	while ((p = ALLOC_API(malloc)(4000)) != NULL) {
		m++;
	}
	assert_true(m >= n);
	ALLOC_API(malloc_reset)();
	assert_true(inside(ALLOC_API(malloc)(8), r, size));
}

int
main(void) {
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_private_heap)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
static void
test_private_heap(void **state) {
	(void)state;
	print_message("# built without --enable-private-heap: skipped\n");
	skip();
}

int
main(void) {
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_private_heap)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
