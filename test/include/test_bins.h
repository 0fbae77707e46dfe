/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helpers of the unit tests of the small bins (test/unit/remote_free,
 * test/unit/arena_bin), on the arenas of the unit-test objects:
 * test_bins_setup boots them and sets test_arena0/test_arena1 (arenas 0
 * and 1); test_bins_class gives a small size's class; test_bins_remote
 * counts the regions on a bin's remote list; test_bins_child_aborts runs a
 * body in a forked child (stderr silenced) and checks that it aborts, as a
 * reported bad free does. Header-only, every function static; include
 * <cmocka.h> and the alloc/internal headers first.
 */
#ifndef TEST_BINS_H
#define TEST_BINS_H

#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/pages.h"
#include "alloc/internal/sz.h"

static arena_t *test_arena0, *test_arena1;

/* A cmocka group setup: 0 when both arenas exist. */
static int
test_bins_setup(void **state) {
	(void)state;
	pages_boot();
	arena_boot();
	if (huge_boot()) {
		return -1;
	}
	test_arena0 = arena_get(0);
	test_arena1 = arena_get(1);
	return test_arena0 == NULL || test_arena1 == NULL ? -1 : 0;
}

static szind_t
test_bins_class(size_t size) {
	szind_t ind = sz_size2index(size);
	assert_true(ind < SZ_NSMALL);
	return ind;
}

/* Regions on bin's remote list (a caller holding the bin's lock sees the
 * list only grow meanwhile). The link is a region's second word, its first
 * in the 8-byte class (arena.h). */
static size_t
test_bins_remote(bin_t *bin, szind_t ind) {
	size_t word = bin_infos[ind].reg_size >= 2 * sizeof(void *);
	size_t n = 0;
	for (void *p = __atomic_load_n(&bin->remote, __ATOMIC_ACQUIRE); p != NULL;
	     p = ((void **)p)[word]) {
		n++;
	}
	return n;
}

/* Runs body(arg) in a forked child with its stderr silenced, and checks
 * that the child aborts (a bad free reported). */
static void
test_bins_child_aborts(void (*body)(int), int arg) {
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0) {
			dup2(devnull, 2);
		}
		body(arg);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

#endif
