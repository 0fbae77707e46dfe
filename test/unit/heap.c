/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Shared heaps' lock recovery (heap.c, heap_recover), made deterministic: a
 * child process takes the heap lock (heap_enter) and exits without
 * releasing it, once leaving the heap intact and once after damaging the
 * arena's counters. The next locker must recover the first heap and go on,
 * and must refuse the second one with ENOTRECOVERABLE (and a warning naming
 * the broken check), never hang.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/export.h"
#include "alloc/internal/heap.h"

#define SIZE ((size_t)8 << 20)

#if defined(__SANITIZE_THREAD__)
#define HEAP_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HEAP_TEST_TSAN 1
#endif
#endif

#ifdef HEAP_TEST_TSAN
/*
 * fork() runs liballoc's prefork handler, which holds every bin lock of
 * every automatic arena (SZ_NSMALL + 1 per arena) until the child starts.
 * ThreadSanitizer's deadlock detector tracks at most 64 locks held by one
 * thread and stops the process with a CHECK failure past that, which this
 * test reaches as soon as a second per-CPU arena exists (it did on one run
 * in two). That is a limit of the detector, not a fault: race detection
 * stays on, only lock-order tracking is off, and only in this test, whose
 * locks are the heap's process-shared one and the prefork set.
 */
const char *__tsan_default_options(void);
const char *
__tsan_default_options(void) {
	return "detect_deadlocks=0";
}
#endif

/* Runs `body` in a child that takes h's lock and exits holding it. */
static void
die_holding_lock(alloc_heap_t *h, void (*body)(arena_t *a)) {
	arena_t *a = ALLOC_NAME(alloc_heap_arena)(h) < ARENAS_MAX
	                 ? arenas[ALLOC_NAME(alloc_heap_arena)(h)]
	                 : NULL;
	assert_non_null(a);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (!heap_enter(a)) {
			_exit(2);
		}
		if (body != NULL) {
			body(a);
		}
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
damage(arena_t *a) {
	/* Pages counted active that no run holds. */
	a->nactive += 3;
}

static char *
shared_region(void) {
	char *r = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(r != MAP_FAILED);
	return r;
}

static void
test_owner_died_intact(void **state) {
	(void)state;
	char *r = shared_region();
	alloc_heap_t *h = ALLOC_NAME(alloc_heap_create)(r, SIZE, ALLOC_HEAP_SHARED);
	assert_non_null(h);
	void *keep = ALLOC_NAME(alloc_heap_malloc)(h, 100);
	assert_non_null(keep);
	die_holding_lock(h, NULL);
	/* Not wedged: recovered, checked, going on. */
	void *p = ALLOC_NAME(alloc_heap_malloc)(h, 100);
	assert_non_null(p);
	ALLOC_NAME(alloc_heap_free)(h, p);
	ALLOC_NAME(alloc_heap_free)(h, keep);
	assert_int_equal(ALLOC_NAME(alloc_heap_reset)(h), 0);
	assert_int_equal(ALLOC_NAME(alloc_heap_destroy)(h), 0);
	munmap(r, SIZE);
}

static void
test_owner_died_damaged(void **state) {
	(void)state;
	char *r = shared_region();
	alloc_heap_t *h = ALLOC_NAME(alloc_heap_create)(r, SIZE, ALLOC_HEAP_SHARED);
	assert_non_null(h);
	assert_non_null(ALLOC_NAME(alloc_heap_malloc)(h, 100));
	die_holding_lock(h, damage);
	errno = 0;
	assert_null(ALLOC_NAME(alloc_heap_malloc)(h, 100));
	assert_int_equal(errno, ENOTRECOVERABLE);
	assert_int_equal(ALLOC_NAME(alloc_heap_reset)(h), ENOTRECOVERABLE);
	alloc_heap_stats_t st;
	assert_int_equal(ALLOC_NAME(alloc_heap_stats)(h, &st), ENOTRECOVERABLE);
	/* A damaged heap can still be destroyed. */
	assert_int_equal(ALLOC_NAME(alloc_heap_destroy)(h), 0);
	munmap(r, SIZE);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_owner_died_intact),
	    cmocka_unit_test(test_owner_died_damaged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
