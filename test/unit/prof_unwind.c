/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of heap profiling's cached unwinder (prof_unwind.c), in every
 * build on x86-64 (skipped elsewhere): each backtrace it takes is compared,
 * address by address, with the one libgcc's _Unwind_Backtrace takes at the
 * same point:
 *  - call chains of several depths, with frames whose CFA is rsp-based,
 *    rbp-based (a variable-length array) and far from rsp (a big array);
 *  - through the C library (qsort's comparator), through a dlopen'ed
 *    library (test/unit/lib/prof_unwind_dl.c), in a second thread (whose
 *    stack ends in clone), and through a signal handler (a signal frame:
 *    the unwinder must fall back, or agree);
 *  - the table: a second backtrace of the same chain decodes nothing new;
 *    dlclose empties it (the next backtrace decodes again and still
 *    agrees with libgcc after the library is loaded anew);
 *  - the decoded rule at a function's first instruction (CFA = rsp + 8,
 *    rbp untouched) and at addresses without unwind information.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unwind.h>

#include <cmocka.h>

#include "alloc/internal/prof_unwind.h"

#ifndef PROF_UNWIND_DL
#error "build with -DPROF_UNWIND_DL=path of libprof_unwind_dl.so"
#endif

#define NOINLINE __attribute__((noinline))
#define BT_MAX   256

typedef struct {
	uintptr_t mine[BT_MAX];
	int nmine;
	uintptr_t gcc[BT_MAX];
	int ngcc;
} bt_pair_t;

static _Unwind_Reason_Code
gcc_frame(struct _Unwind_Context *ctx, void *arg) {
	bt_pair_t *b = arg;
	uintptr_t pc = (uintptr_t)_Unwind_GetIP(ctx);
	if (pc == 0 || b->ngcc == BT_MAX) {
		return _URC_END_OF_STACK;
	}
	b->gcc[b->ngcc++] = pc;
	return _URC_NO_REASON;
}

/* Both backtraces from here. Each starts with a return address into this
 * function (a different call site each); from the next on they must be
 * the same. */
NOINLINE static int
take_both(void *arg) {
	bt_pair_t *b = arg;
	b->nmine = prof_unwind_backtrace(b->mine, BT_MAX);
	b->ngcc = 0;
	_Unwind_Backtrace(gcc_frame, b);
	__asm__ volatile("" ::: "memory");
	return 0;
}

static void
print_bt(const char *what, const uintptr_t *pcs, int n) {
	print_message("%s (%d frames):\n", what, n);
	for (int i = 0; i < n; i++) {
		Dl_info info;
		const char *name = "?";
		if (dladdr((void *)pcs[i], &info) != 0 && info.dli_sname != NULL) {
			name = info.dli_sname;
		}
		print_message("  %2d %#lx %s\n", i, (unsigned long)pcs[i], name);
	}
}

/* The two agree, and are at least min_depth deep. */
static void
expect_same(const bt_pair_t *b, int min_depth) {
	bool same = b->nmine == b->ngcc && b->nmine >= 1;
	for (int i = 1; same && i < b->nmine; i++) {
		same = b->mine[i] == b->gcc[i];
	}
	if (!same || b->nmine < min_depth) {
		print_bt("prof_unwind_backtrace", b->mine, b->nmine);
		print_bt("_Unwind_Backtrace", b->gcc, b->ngcc);
	}
	assert_int_not_equal(b->nmine, PROF_UNWIND_FALLBACK);
	assert_true(same);
	assert_true(b->nmine >= min_depth);
}

/* ---------------------------------------------------------------------- */
/* Call chains of different frame shapes. None is a tail call. */

typedef int (*leaf_t)(void *);

NOINLINE static int chain_plain(int depth, leaf_t leaf, void *arg);

/* rbp-based CFA: a variable-length array moves rsp by a run-time amount. */
NOINLINE static int
chain_vla(int depth, leaf_t leaf, void *arg) {
	volatile char vla[16 + (depth & 7) * 24];
	vla[0] = (char)depth;
	int r = chain_plain(depth - 1, leaf, arg);
	return r + vla[0] - (char)depth;
}

/* A frame far from rsp. */
NOINLINE static int
chain_big(int depth, leaf_t leaf, void *arg) {
	volatile char big[40000];
	big[depth] = 1;
	int r = chain_plain(depth - 1, leaf, arg);
	return r + big[depth] - 1;
}

NOINLINE static int
chain_plain(int depth, leaf_t leaf, void *arg) {
	if (depth <= 0) {
		return leaf(arg);
	}
	volatile int keep = depth;
	int r;
	switch (depth % 3) {
	case 0:
		r = chain_vla(depth, leaf, arg);
		break;
	case 1:
		r = chain_big(depth, leaf, arg);
		break;
	default:
		r = chain_plain(depth - 1, leaf, arg);
		break;
	}
	return r + keep - depth;
}

static void
test_chains(void **state) {
	(void)state;
	static bt_pair_t b;
	const int depths[] = {0, 1, 2, 3, 5, 8, 13, 40, 100};
	for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		memset(&b, 0, sizeof(b));
		chain_plain(depths[i], take_both, &b);
		expect_same(&b, depths[i] + 3);
	}
	/* Deeper than the buffer: both cut at BT_MAX. */
	memset(&b, 0, sizeof(b));
	chain_plain(BT_MAX + 10, take_both, &b);
	assert_int_equal(b.nmine, BT_MAX);
	expect_same(&b, BT_MAX);
}

/* ---------------------------------------------------------------------- */
/* Other objects, threads, signals. */

static bt_pair_t *qsort_pair;

static int
qsort_cmp(const void *a, const void *b) {
	if (qsort_pair != NULL) {
		take_both(qsort_pair);
		qsort_pair = NULL;
	}
	return *(const int *)a - *(const int *)b;
}

NOINLINE static int
qsort_leaf(void *arg) {
	int v[] = {5, 3, 9, 1, 7, 2, 8};
	qsort_pair = arg;
	qsort(v, sizeof(v) / sizeof(v[0]), sizeof(v[0]), qsort_cmp);
	return v[0] - 1;
}

static void
test_through_libc(void **state) {
	(void)state;
	static bt_pair_t b;
	chain_plain(4, qsort_leaf, &b);
	expect_same(&b, 8);
}

typedef int (*dl_call_t)(leaf_t, void *, int);

typedef struct {
	dl_call_t call;
	bt_pair_t *b;
} dl_arg_t;

NOINLINE static int
dl_leaf(void *arg) {
	dl_arg_t *a = arg;
	return a->call(take_both, a->b, 3);
}

static void
dl_compare(void *lib) {
	static bt_pair_t b;
	dl_arg_t a = {(dl_call_t)(uintptr_t)dlsym(lib, "prof_unwind_dl_call"), &b};
	assert_non_null(a.call);
	memset(&b, 0, sizeof(b));
	chain_plain(3, dl_leaf, &a);
	expect_same(&b, 10);
	/* Some frames are the library's. */
	Dl_info info;
	assert_true(dladdr((void *)b.mine[1], &info) != 0);
	assert_non_null(strstr(info.dli_fname, "prof_unwind_dl"));
}

static void
test_dlopen_dlclose(void **state) {
	(void)state;
	void *lib = dlopen(PROF_UNWIND_DL, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		fail_msg("dlopen %s: %s", PROF_UNWIND_DL, dlerror());
	}
	/* The same chain twice from one call site (a loop the compiler
	 * cannot unroll), so with the same return addresses: the second time
	 * every rule comes from the table. */
	prof_unwind_stats_t s1, s2;
	for (volatile int i = 0; i < 2; i++) {
		s1 = prof_unwind_stats_get();
		dl_compare(lib);
		s2 = prof_unwind_stats_get();
	}
	assert_true(s2.decoded == s1.decoded);
	assert_true(s2.hits > s1.hits);
	assert_true(s2.fallbacks == s1.fallbacks);
	assert_true(s2.flushes == s1.flushes);
	/* Unloaded: the next backtrace empties the table and decodes anew
	 * (the library may come back at the same address). */
	assert_int_equal(dlclose(lib), 0);
	lib = dlopen(PROF_UNWIND_DL, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(lib);
	dl_compare(lib);
	prof_unwind_stats_t s3 = prof_unwind_stats_get();
	assert_true(s3.flushes == s2.flushes + 1);
	assert_true(s3.decoded >= s2.decoded + 10);
	assert_int_equal(dlclose(lib), 0);
}

static void *
thread_main(void *arg) {
	chain_plain(6, take_both, arg);
	return NULL;
}

static void
test_thread(void **state) {
	(void)state;
	static bt_pair_t b;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, thread_main, &b), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	expect_same(&b, 8);
}

static bt_pair_t signal_pair;

static void
on_signal(int sig) {
	(void)sig;
	chain_plain(2, take_both, &signal_pair);
}

NOINLINE static int
raise_leaf(void *arg) {
	(void)arg;
	return raise(SIGUSR1);
}

static void
test_signal_frame(void **state) {
	(void)state;
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	chain_plain(3, raise_leaf, NULL);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
	/* The signal frame is not the simple kind: libgcc takes it, unless
	 * the handler ran from an ordinary stack (a sanitizer's deferred
	 * delivery); then both agree. */
	assert_true(signal_pair.ngcc >= 4);
	if (signal_pair.nmine != PROF_UNWIND_FALLBACK) {
		expect_same(&signal_pair, 4);
	}
}

/* ---------------------------------------------------------------------- */
/* The decoder alone. */

NOINLINE static int
plain_function(int x) {
	return x * 3 + 1;
}

static void
test_rule_decode(void **state) {
	(void)state;
	/* At a function's first instruction the call has just pushed the
	 * return address. */
	prof_unwind_rule_t r = prof_unwind_rule_decode((uintptr_t)&plain_function);
	assert_int_equal(r.kind, PROF_UNWIND_RSP);
	assert_int_equal(r.cfa_off, 8);
	assert_int_equal(r.rbp_off, 0);
	assert_int_equal(plain_function(1), 4);
	/* No code there: no rule. */
	static const char data[64] = "not code";
	assert_int_equal(prof_unwind_rule_decode((uintptr_t)data).kind, PROF_UNWIND_COMPLEX);
	assert_int_equal(prof_unwind_rule_decode(16).kind, PROF_UNWIND_COMPLEX);
}

static int
setup(void **state) {
	(void)state;
	return prof_unwind_boot() ? 0 : -1;
}

int
main(void) {
#if !defined(__x86_64__)
	print_message("skip: the cached unwinder is x86-64 only\n");
	return 77;
#endif
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rule_decode),  cmocka_unit_test(test_chains),
	    cmocka_unit_test(test_through_libc), cmocka_unit_test(test_dlopen_dlclose),
	    cmocka_unit_test(test_thread),       cmocka_unit_test(test_signal_frame),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
