/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Helper library of test/unit/prof_unwind.c, loaded with dlopen: calls the
 * test's function back from a few frames inside this library, so the
 * backtraces compared there cross a dlopen'ed object.
 */
#define NOINLINE __attribute__((noinline))

typedef int (*prof_unwind_dl_cb_t)(void *);

/* depth frames of recursion, then cb(arg); never a tail call, so every
 * frame stays on the stack. */
NOINLINE static int
dl_recurse(prof_unwind_dl_cb_t cb, void *arg, int depth) {
	volatile int keep = depth;
	int r = depth > 0 ? dl_recurse(cb, arg, depth - 1) : cb(arg);
	return r + keep - depth;
}

__attribute__((visibility("default"))) int
prof_unwind_dl_call(prof_unwind_dl_cb_t cb, void *arg, int depth) {
	int r = dl_recurse(cb, arg, depth);
	__asm__ volatile("" ::: "memory");
	return r;
}
