/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Start-up and re-entrancy: the first allocations of a process happening
 * in unusual places, each checked for content and usable size.
 *   - a constructor of this program (before main);
 *   - the constructor of a shared library linked into the program
 *     (libstartup_linked.so: runs before the program's own constructors);
 *   - the constructor of a library loaded with dlopen (libstartup_dlopen.so),
 *     in a process already running, and in one whose first allocator call
 *     is that dlopen (child "dlopen-first");
 *   - the first call of a process made inside pthread_create and then in
 *     the new thread (child "thread-first": the library constructors are
 *     told to stay quiet, and main makes no allocator call before);
 *   - a thread that only ever frees blocks another thread allocated
 *     (small, large, huge): the memory comes back (stats.allocated back to
 *     its value before, with liballoc), and the blocks are reused.
 * Passes on glibc's malloc too; the stats check needs liballoc (mallctl).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_child.h"

/* From libstartup_linked.so (lib/startup_lib.c). */
void *const *startup_lib_blocks_linked(const size_t **sizes);

static const size_t sizes[3] = {24, 70000, 3u << 20};

/* Allocated by this program's constructor. */
static void *ctor_blocks[3];

/* Set in children that must make no allocator call before main. */
static bool
quiet_start(void) {
	const char *v = getenv("STARTUP_QUIET");
	return v != NULL && v[0] == '1';
}

__attribute__((constructor)) static void
program_ctor(void) {
	if (quiet_start()) {
		return;
	}
	for (int i = 0; i < 3; i++) {
		ctor_blocks[i] = malloc(sizes[i]);
		if (ctor_blocks[i] != NULL) {
			memset(ctor_blocks[i], 'A' + i, sizes[i]);
		}
	}
}

/* Every block non-NULL, at least as large as asked, aligned for any
 * object, and still holding the bytes written into it; then freed. */
static bool
blocks_check_free(void *const *blocks, const size_t *want, char first, char *why, size_t len) {
	for (int i = 0; i < 3; i++) {
		unsigned char *p = blocks[i];
		if (p == NULL) {
			snprintf(why, len, "block %d is NULL", i);
			return false;
		}
		if (malloc_usable_size(p) < want[i]) {
			snprintf(why, len, "block %d: usable size %zu < %zu", i,
			         malloc_usable_size(p), want[i]);
			return false;
		}
		if (((uintptr_t)p & 15) != 0) {
			snprintf(why, len, "block %d misaligned: %p", i, (void *)p);
			return false;
		}
		for (size_t j = 0; j < want[i]; j++) {
			if (p[j] != (unsigned char)(first + i)) {
				snprintf(why, len, "block %d: byte %zu is %#x", i, j, p[j]);
				return false;
			}
		}
	}
	for (int i = 0; i < 3; i++) {
		free(blocks[i]);
	}
	return true;
}

static void
check_blocks(void *const *blocks, const size_t *want, char first) {
	char why[128];
	if (!blocks_check_free(blocks, want, first, why, sizeof(why))) {
		fail_msg("%s", why);
	}
}

static void
test_program_constructor(void **state) {
	(void)state;
	check_blocks(ctor_blocks, sizes, 'A');
}

static void
test_linked_library_constructor(void **state) {
	(void)state;
	const size_t *want;
	void *const *blocks = startup_lib_blocks_linked(&want);
	check_blocks(blocks, want, 'a');
}

/* dlopen()s libstartup_dlopen.so next to this program and checks what its
 * constructor allocated; false with a reason on failure. */
static bool
dlopen_check(char *why, size_t len) {
	char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 64);
	if (n <= 0) {
		snprintf(why, len, "readlink /proc/self/exe");
		return false;
	}
	path[n] = '\0';
	char *slash = strrchr(path, '/');
	strcpy(slash + 1, "libstartup_dlopen.so");
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(why, len, "dlopen: %s", dlerror());
		return false;
	}
	void *const *(*get)(const size_t **) =
	    (void *const *(*)(const size_t **))dlsym(h, "startup_lib_blocks_dlopen");
	if (get == NULL) {
		snprintf(why, len, "dlsym failed");
		return false;
	}
	const size_t *want;
	void *const *blocks = get(&want);
	bool ok = blocks_check_free(blocks, want, 'a', why, len);
	dlclose(h);
	return ok;
}

static void
test_dlopen_constructor(void **state) {
	(void)state;
	char why[128];
	if (!dlopen_check(why, sizeof(why))) {
		fail_msg("%s", why);
	}
}

static void *
first_thread(void *arg) {
	(void)arg;
	void *blocks[3];
	for (int i = 0; i < 3; i++) {
		blocks[i] = malloc(sizes[i]);
		if (blocks[i] != NULL) {
			memset(blocks[i], 'T' + i, sizes[i]);
		}
	}
	char why[128];
	if (!blocks_check_free(blocks, sizes, 'T', why, sizeof(why))) {
		fprintf(stderr, "first thread: %s\n", why);
		return (void *)1;
	}
	return NULL;
}

/* Children: print "ok" and exit 0, or say what went wrong. */
static int
child(const char *mode) {
	if (strcmp(mode, "thread-first") == 0) {
		pthread_t t;
		void *ret = (void *)1;
		if (pthread_create(&t, NULL, first_thread, NULL) != 0 ||
		    pthread_join(t, &ret) != 0 || ret != NULL) {
			fprintf(stderr, "the first thread failed\n");
			return 1;
		}
	} else if (strcmp(mode, "dlopen-first") == 0) {
		/* The library to load must allocate. */
		unsetenv("STARTUP_QUIET");
		char why[128];
		if (!dlopen_check(why, sizeof(why))) {
			fprintf(stderr, "%s\n", why);
			return 1;
		}
	} else {
		return 2;
	}
	printf("ok\n");
	return 0;
}

static void
run_quiet_child(const char *mode) {
	setenv("STARTUP_QUIET", "1", 1);
	test_child_t c;
	bool started = test_child_run(NULL, mode, &c);
	unsetenv("STARTUP_QUIET");
	assert_true(started);
	if (!test_child_ok(&c) || strcmp(c.out, "ok\n") != 0) {
		fail_msg("child %s (status 0x%x): %s%s", mode, c.status, c.out, c.err);
	}
}

static void
test_first_call_in_pthread_create(void **state) {
	(void)state;
	run_quiet_child("thread-first");
}

static void
test_first_call_in_dlopen(void **state) {
	(void)state;
	run_quiet_child("dlopen-first");
}

/* stats.allocated with this thread's cache flushed; 0 without mallctl. */
static size_t
allocated_now(void) {
	int (*ctl)(const char *, void *, size_t *, void *, size_t) =
	    (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(RTLD_DEFAULT, "mallctl");
	if (ctl == NULL) {
		return 0;
	}
	ctl("thread.tcache.flush", NULL, NULL, NULL, 0);
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);
	assert_int_equal(ctl("epoch", &epoch, &sz, &epoch, sz), 0);
	size_t v;
	sz = sizeof(v);
	assert_int_equal(ctl("stats.allocated", &v, &sz, NULL, 0), 0);
	return v;
}

#define NFREE 300

static void *
free_only_thread(void *arg) {
	void **blocks = arg;
	for (int i = 0; blocks != NULL && i < NFREE; i++) {
		free(blocks[i]);
	}
	return NULL;
}

static void
test_thread_that_only_frees(void **state) {
	(void)state;
	static void *blocks[NFREE];
	/* glibc keeps an exited thread's stack, with its TLS vector (a
	 * malloc'ed block), for the next thread: start and join one first so
	 * that block is there before the baseline. */
	int (*ctl)(const char *, void *, size_t *, void *, size_t) =
	    (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(RTLD_DEFAULT, "mallctl");
	bool stats = false;
	size_t len = sizeof(stats);
	if (ctl != NULL && (ctl("config.stats", &stats, &len, NULL, 0) != 0 || !stats)) {
		print_message("# built without statistics: nothing to measure the memory by\n");
		skip();
	}
	pthread_t warm;
	assert_int_equal(pthread_create(&warm, NULL, free_only_thread, NULL), 0);
	assert_int_equal(pthread_join(warm, NULL), 0);
	size_t before = allocated_now();
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < NFREE; i++) {
			size_t size = i % 30 == 0 ? (2u << 20) + 4096 : i % 3 == 0 ? 20000 : 48;
			blocks[i] = malloc(size);
			assert_non_null(blocks[i]);
			memset(blocks[i], i, size);
		}
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, free_only_thread, blocks), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		/* After the thread exits its cache is flushed: everything it
		 * freed is back in the arenas. */
		size_t after = allocated_now();
		if (after != before) {
			fail_msg("round %d: stats.allocated %zu before, %zu after", round, before,
			         after);
		}
	}
}

int
main(int argc, char **argv) {
	if (argc == 3 && strcmp(argv[1], "child") == 0) {
		return child(argv[2]);
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_program_constructor),
	    cmocka_unit_test(test_linked_library_constructor),
	    cmocka_unit_test(test_dlopen_constructor),
	    cmocka_unit_test(test_first_call_in_pthread_create),
	    cmocka_unit_test(test_first_call_in_dlopen),
	    cmocka_unit_test(test_thread_that_only_frees),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
