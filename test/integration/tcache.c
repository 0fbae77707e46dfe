/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The thread-cache controls through lib/liballoc.so, checked against what
 * the caches do (a block is "cached" when freeing it leaves its arena's
 * allocated bytes unchanged, read with epoch + stats.arenas.<i>.*):
 *
 *  - the nodes: opt.tcache, opt.lg_tcache_max, arenas.tcache_max,
 *    arenas.nhbins, thread.tcache.enabled/flush, tcache.create/flush/destroy
 *    exist with their types and directions (EPERM, EINVAL, EFAULT), or all
 *    answer ENOENT in a build without thread caches (--disable-tcache);
 *  - opt.lg_tcache_max (in children run with MALLOC_CONF): arenas.tcache_max
 *    is the largest class not above 2^lg (at least every small class, at
 *    most every large one), arenas.nhbins counts the classes up to it, a
 *    block of tcache_max bytes is cached and one of the next class is not;
 *    with lg_tcache_max:16 a freed 40 KiB block comes back at once;
 *    tcache_max:65536 is jemalloc 5's spelling of lg_tcache_max:16;
 *  - opt.tcache / tcache:false: no thread is cached, thread.tcache.enabled
 *    reads false everywhere, every malloc and free reaches the arena;
 *  - thread.tcache.enabled: per thread; turning it off flushes the cache,
 *    on again fills in batches; thread.tcache.flush empties only the
 *    calling thread's cache, small and large classes;
 *  - explicit caches: a block freed through MALLOCX_TCACHE(tc) (dallocx,
 *    sdallocx, rallocx) comes back from tc and from no other cache;
 *    MALLOCX_TCACHE_NONE goes straight to the arena; tcache.flush returns
 *    what tc holds; destroyed ids are recycled (5,000 create/destroy pairs,
 *    more than the 4,096 ids).
 *
 * liballoc-specific: skipped (exit 77) when the process allocator does not
 * export mallctl. The MALLOC_CONF cases skip in a build with options built
 * in (configure --with-malloc-conf).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "test_fill.h"
#include "test_child.h"
#include "test_skip.h"

/* Blocks stored here escape, so the compiler keeps malloc/free pairs. */
static void *volatile sink;

static void *
keep(void *p) {
	sink = p;
	return p;
}

static bool have_tcache;
static bool have_stats;
static const char *built_in_conf = "";

/* ---------------------------------------------------------------------- */
/* mallctl helpers shared by the parent and the children. They return the
 * error instead of asserting, so a child can report it. */

static int
ctl_get(const char *name, void *v, size_t len) {
	size_t l = len;
	int err = mallctl(name, v, &l, NULL, 0);
	return err == 0 && l != len ? EINVAL : err;
}

static int ctl_getf(void *v, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
ctl_getf(void *v, size_t len, const char *fmt, ...) {
	char name[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	return ctl_get(name, v, len);
}

static void
refresh(void) {
	uint64_t e = 1;
	size_t sz = sizeof(e);
	mallctl("epoch", &e, &sz, &e, sizeof(e));
}

/* Small and large bytes arena a has handed out (thread caches included). */
static size_t
arena_allocated(unsigned a) {
	size_t small = 0, large = 0;
	ctl_getf(&small, sizeof(small), "stats.arenas.%u.small.allocated", a);
	ctl_getf(&large, sizeof(large), "stats.arenas.%u.large.allocated", a);
	return small + large;
}

static size_t
arena_large_allocated(unsigned a) {
	size_t large = 0;
	ctl_getf(&large, sizeof(large), "stats.arenas.%u.large.allocated", a);
	return large;
}

static size_t
bin_curregs(unsigned a, unsigned j) {
	size_t v = 0;
	ctl_getf(&v, sizeof(v), "stats.arenas.%u.bins.%u.curregs", a, j);
	return v;
}

/* The small bin of size class `size`; UINT32_MAX if size is no small
 * class. */
static unsigned
bin_of(size_t size) {
	unsigned nbins = 0;
	ctl_get("arenas.nbins", &nbins, sizeof(nbins));
	size_t usize = nallocx(size, 0);
	for (unsigned j = 0; j < nbins; j++) {
		size_t s = 0;
		ctl_getf(&s, sizeof(s), "arenas.bin.%u.size", j);
		if (s == usize) {
			return j;
		}
	}
	return UINT32_MAX;
}

/* Creates an arena and binds the calling thread to it; returns it, and
 * the previous binding in *old. */
static unsigned
bind_new_arena(unsigned *old) {
	unsigned a = UINT32_MAX;
	size_t sz = sizeof(a);
	if (mallctl("arenas.extend", &a, &sz, NULL, 0) != 0) {
		return UINT32_MAX;
	}
	sz = sizeof(*old);
	if (mallctl("thread.arena", old, &sz, &a, sizeof(a)) != 0) {
		return UINT32_MAX;
	}
	return a;
}

static int
thread_flush(void) {
	return mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
}

/* ---------------------------------------------------------------------- */
/* The child side (run with a MALLOC_CONF). */

#define CHILD_CHECK(cond)                                                       \
	do {                                                                    \
		if (!(cond)) {                                                  \
			printf("FAIL: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                \
		}                                                               \
	} while (0)

static unsigned child_arena;

/* 1 when freeing a block of `size` leaves it in the thread's cache, 0 when
 * it reaches the arena, -1 when there are no stats to tell. */
static int
child_is_cached(size_t size) {
	if (!have_stats) {
		return -1;
	}
	void *p = keep(malloc(size));
	CHILD_CHECK(p != NULL);
	refresh();
	size_t before = arena_allocated(child_arena);
	free(p);
	refresh();
	size_t after = arena_allocated(child_arena);
	int err = thread_flush();
	CHILD_CHECK(err == 0 || (!have_tcache && err == ENOENT));
	return after == before;
}

/* Checks arenas.tcache_max and arenas.nhbins against opt.lg_tcache_max and
 * the class list, and caching at the boundary; prints what it found. */
static int
child_facts(void) {
	unsigned old;
	child_arena = bind_new_arena(&old);
	CHILD_CHECK(child_arena != UINT32_MAX);
	/* Nothing left in the cache from before the binding. */
	int err = thread_flush();
	CHILD_CHECK(err == 0 || (!have_tcache && err == ENOENT));
	bool on;
	if (!have_tcache) {
		size_t z;
		unsigned u;
		CHILD_CHECK(ctl_get("opt.tcache", &on, sizeof(on)) == ENOENT);
		CHILD_CHECK(ctl_get("opt.lg_tcache_max", &z, sizeof(z)) == ENOENT);
		CHILD_CHECK(ctl_get("arenas.tcache_max", &z, sizeof(z)) == ENOENT);
		CHILD_CHECK(ctl_get("arenas.nhbins", &u, sizeof(u)) == ENOENT);
		printf("tcache=none cached_small=%d\n", child_is_cached(64));
		return 0;
	}
	size_t lg, max;
	unsigned nhbins, nbins, nlruns;
	CHILD_CHECK(ctl_get("opt.tcache", &on, sizeof(on)) == 0);
	CHILD_CHECK(ctl_get("opt.lg_tcache_max", &lg, sizeof(lg)) == 0);
	CHILD_CHECK(ctl_get("arenas.tcache_max", &max, sizeof(max)) == 0);
	CHILD_CHECK(ctl_get("arenas.nhbins", &nhbins, sizeof(nhbins)) == 0);
	CHILD_CHECK(ctl_get("arenas.nbins", &nbins, sizeof(nbins)) == 0);
	CHILD_CHECK(ctl_get("arenas.nlruns", &nlruns, sizeof(nlruns)) == 0);
	size_t small_max, large_max;
	CHILD_CHECK(ctl_getf(&small_max, sizeof(small_max), "arenas.bin.%u.size", nbins - 1) == 0);
	CHILD_CHECK(ctl_getf(&large_max, sizeof(large_max), "arenas.lrun.%u.size", nlruns - 1) ==
	            0);
	/* The largest class not above 2^lg, within [small_max, large_max]. */
	size_t limit = lg >= sizeof(size_t) * 8 - 1 ? SIZE_MAX : (size_t)1 << lg;
	limit = limit < small_max ? small_max : limit > large_max ? large_max : limit;
	size_t want_max = small_max;
	unsigned want_nhbins = nbins;
	for (unsigned j = 0; j < nlruns; j++) {
		size_t s;
		CHILD_CHECK(ctl_getf(&s, sizeof(s), "arenas.lrun.%u.size", j) == 0);
		if (s <= limit) {
			want_max = s;
			want_nhbins = nbins + j + 1;
		}
	}
	CHILD_CHECK(max == want_max);
	CHILD_CHECK(nhbins == want_nhbins);
	int cached_max = child_is_cached(max);
	int cached_next = max < large_max ? child_is_cached(nallocx(max + 1, 0)) : 0;
	/* Every small class is cached when caching is on. */
	int cached_small = child_is_cached(small_max);
	printf("tcache=%d lg=%zu max=%zu nhbins=%u cached_max=%d cached_next=%d "
	       "cached_small=%d\n",
	       on, lg, max, nhbins, cached_max, cached_next, cached_small);
	return 0;
}

/* A 40 KiB block freed and asked for again. */
static int
child_reuse(void) {
	size_t size = 40 << 10;
	unsigned char *p = keep(malloc(size));
	CHILD_CHECK(p != NULL);
	memset(p, 0x5a, size);
	uintptr_t was = (uintptr_t)p;
	free(p);
	unsigned char *q = keep(malloc(size));
	CHILD_CHECK(q != NULL);
	printf("same=%d\n", (uintptr_t)q == was);
	free(q);
	return 0;
}

static void *
thread_enabled(void *arg) {
	(void)arg;
	bool on = true;
	free(keep(malloc(64)));
	if (ctl_get("thread.tcache.enabled", &on, sizeof(on)) != 0) {
		return (void *)2;
	}
	return on ? (void *)1 : NULL;
}

/* tcache:false: nothing is cached, in any thread. */
static int
child_off(void) {
	bool on = true;
	CHILD_CHECK(ctl_get("opt.tcache", &on, sizeof(on)) == 0 && !on);
	CHILD_CHECK(ctl_get("thread.tcache.enabled", &on, sizeof(on)) == 0 && !on);
	pthread_t t;
	void *ret;
	CHILD_CHECK(pthread_create(&t, NULL, thread_enabled, NULL) == 0);
	CHILD_CHECK(pthread_join(t, &ret) == 0);
	CHILD_CHECK(ret == NULL);
	unsigned old;
	child_arena = bind_new_arena(&old);
	CHILD_CHECK(child_arena != UINT32_MAX);
	if (have_stats) {
		/* Each malloc and free reaches the arena, one region each. */
		unsigned j = bin_of(96);
		void *ps[8];
		for (int i = 0; i < 8; i++) {
			ps[i] = keep(malloc(96));
			refresh();
			CHILD_CHECK(bin_curregs(child_arena, j) == (size_t)i + 1);
		}
		for (int i = 0; i < 8; i++) {
			free(ps[i]);
		}
		refresh();
		CHILD_CHECK(bin_curregs(child_arena, j) == 0);
		void *l = keep(malloc(20000));
		free(l);
		refresh();
		CHILD_CHECK(arena_large_allocated(child_arena) == 0);
	}
	CHILD_CHECK(thread_flush() == 0);
	printf("ok\n");
	return 0;
}

static int
child_main(const char *mode) {
	static const test_child_mode_t modes[] = {
	    {"facts", child_facts},
	    {"reuse", child_reuse},
	    {"off", child_off},
	};
	return test_child_dispatch(mode, modes, sizeof(modes) / sizeof(modes[0]));
}

/* ---------------------------------------------------------------------- */
/* The parent side. */

static test_child_t child;

static void
run(const char *conf, const char *mode) {
	test_child_expect(conf, mode, true, &child);
}

static void
expect_out(const char *conf, const char *want) {
	if (strstr(child.out, want) == NULL) {
		fail_msg("MALLOC_CONF=%s: output\n%s\nlacks \"%s\"", conf, child.out, want);
	}
}

static void
skip_if_built_in_conf(void) {
	if (built_in_conf[0] != '\0') {
		print_message("# built with --with-malloc-conf=\"%s\": skipped\n", built_in_conf);
		skip();
	}
}

static void
skip_without_tcache(void) {
	test_skip_unless(have_tcache, "thread caches");
	test_skip_if_fill();
}

static size_t
read_size(const char *name) {
	size_t v = 0;
	int err = ctl_get(name, &v, sizeof(v));
	if (err != 0) {
		fail_msg("mallctl(\"%s\") = %d", name, err);
	}
	return v;
}

static void
test_nodes(void **state) {
	(void)state;
	bool b;
	size_t z;
	unsigned u;
	size_t sz;
	if (!have_tcache) {
		/* Like jemalloc built with --disable-tcache. */
		assert_int_equal(ctl_get("opt.tcache", &b, sizeof(b)), ENOENT);
		assert_int_equal(ctl_get("opt.lg_tcache_max", &z, sizeof(z)), ENOENT);
		assert_int_equal(ctl_get("arenas.tcache_max", &z, sizeof(z)), ENOENT);
		assert_int_equal(ctl_get("arenas.nhbins", &u, sizeof(u)), ENOENT);
		assert_int_equal(ctl_get("thread.tcache.enabled", &b, sizeof(b)), ENOENT);
		b = true;
		assert_int_equal(mallctl("thread.tcache.enabled", NULL, NULL, &b, sizeof(b)),
		                 ENOENT);
		assert_int_equal(thread_flush(), ENOENT);
		assert_int_equal(ctl_get("tcache.create", &u, sizeof(u)), ENOENT);
		u = 0;
		assert_int_equal(mallctl("tcache.flush", NULL, NULL, &u, sizeof(u)), ENOENT);
		assert_int_equal(mallctl("tcache.destroy", NULL, NULL, &u, sizeof(u)), ENOENT);
		/* Nothing to name: MALLOCX_TCACHE(0) fails, TCACHE_NONE works. */
		assert_null(mallocx(64, MALLOCX_TCACHE(0)));
		void *p = mallocx(64, MALLOCX_TCACHE_NONE);
		assert_non_null(p);
		dallocx(p, MALLOCX_TCACHE_NONE);
		return;
	}
	/* Read-only values, with their types. */
	assert_int_equal(ctl_get("opt.tcache", &b, sizeof(b)), 0);
	assert_int_equal(ctl_get("opt.lg_tcache_max", &z, sizeof(z)), 0);
	assert_int_equal(ctl_get("arenas.tcache_max", &z, sizeof(z)), 0);
	assert_int_equal(ctl_get("arenas.nhbins", &u, sizeof(u)), 0);
	assert_int_equal(mallctl("opt.tcache", NULL, NULL, &b, sizeof(b)), EPERM);
	assert_int_equal(mallctl("opt.lg_tcache_max", NULL, NULL, &z, sizeof(z)), EPERM);
	assert_int_equal(mallctl("arenas.tcache_max", NULL, NULL, &z, sizeof(z)), EPERM);
	assert_int_equal(mallctl("arenas.nhbins", NULL, NULL, &u, sizeof(u)), EPERM);
	int wide;
	assert_int_equal(ctl_get("opt.tcache", &wide, sizeof(wide)), EINVAL);
	assert_int_equal(ctl_get("arenas.nhbins", &z, sizeof(z)), EINVAL);
	/* thread.tcache.enabled: bool, both ways. */
	wide = 1;
	assert_int_equal(mallctl("thread.tcache.enabled", NULL, NULL, &wide, sizeof(wide)), EINVAL);
	assert_int_equal(ctl_get("thread.tcache.enabled", &wide, sizeof(wide)), EINVAL);
	/* thread.tcache.flush: void. */
	sz = sizeof(z);
	assert_int_equal(mallctl("thread.tcache.flush", &z, &sz, NULL, 0), EPERM);
	assert_int_equal(mallctl("thread.tcache.flush", NULL, NULL, &z, sizeof(z)), EPERM);
	/* tcache.create: read-only unsigned. */
	u = 0;
	assert_int_equal(mallctl("tcache.create", NULL, NULL, &u, sizeof(u)), EPERM);
	/* Without a buffer the id would be lost: refused, nothing made. */
	assert_int_equal(mallctl("tcache.create", NULL, NULL, NULL, 0), EINVAL);
	/* tcache.flush / tcache.destroy: write-only unsigned. */
	unsigned id;
	assert_int_equal(ctl_get("tcache.create", &id, sizeof(id)), 0);
	sz = sizeof(u);
	assert_int_equal(mallctl("tcache.flush", &u, &sz, &id, sizeof(id)), EPERM);
	assert_int_equal(mallctl("tcache.destroy", &u, &sz, &id, sizeof(id)), EPERM);
	z = id;
	assert_int_equal(mallctl("tcache.flush", NULL, NULL, &z, sizeof(z)), EINVAL);
	assert_int_equal(mallctl("tcache.destroy", NULL, NULL, &z, sizeof(z)), EINVAL);
	assert_int_equal(mallctl("tcache.flush", NULL, NULL, NULL, 0), EFAULT);
	assert_int_equal(mallctl("tcache.destroy", NULL, NULL, NULL, 0), EFAULT);
	assert_int_equal(mallctl("tcache.flush", NULL, NULL, &id, sizeof(id)), 0);
	assert_int_equal(mallctl("tcache.destroy", NULL, NULL, &id, sizeof(id)), 0);
	/* Ids beyond any cache. */
	u = 1u << 30;
	assert_int_equal(mallctl("tcache.flush", NULL, NULL, &u, sizeof(u)), EFAULT);
	assert_int_equal(mallctl("tcache.destroy", NULL, NULL, &u, sizeof(u)), EFAULT);
}

static void
test_lg_tcache_max(void **state) {
	(void)state;
	skip_if_built_in_conf();
	if (!have_tcache) {
		run("", "facts");
		expect_out("", "tcache=none cached_small=0");
		run("lg_tcache_max:16", "facts");
		expect_out("lg_tcache_max:16", "tcache=none cached_small=0");
		return;
	}
	unsigned nbins;
	assert_int_equal(ctl_get("arenas.nbins", &nbins, sizeof(nbins)), 0);
	char name[64], want[128];
	snprintf(name, sizeof(name), "arenas.bin.%u.size", nbins - 1);
	size_t small_max = read_size(name);
	const char *cached = have_stats ? " cached_max=1 cached_next=0 cached_small=1" : "";

	/* Default: 32 KiB. */
	run("", "facts");
	expect_out("", "tcache=1 lg=15 max=32768 ");
	expect_out("", cached);
	/* Up and down. */
	run("lg_tcache_max:16", "facts");
	expect_out("lg_tcache_max:16", "tcache=1 lg=16 max=65536 ");
	expect_out("lg_tcache_max:16", cached);
	run("lg_tcache_max:20", "facts");
	expect_out("lg_tcache_max:20", "tcache=1 lg=20 max=1048576 ");
	expect_out("lg_tcache_max:20", cached);
	/* Every small class at least, and no large one. */
	run("lg_tcache_max:0", "facts");
	snprintf(want, sizeof(want), "tcache=1 lg=0 max=%zu nhbins=%u ", small_max, nbins);
	expect_out("lg_tcache_max:0", want);
	expect_out("lg_tcache_max:0", cached);
	run("lg_tcache_max:13", "facts");
	expect_out("lg_tcache_max:13", want + strlen("tcache=1 lg=0"));
	/* jemalloc 5's spelling. */
	run("tcache_max:65536", "facts");
	expect_out("tcache_max:65536", "tcache=1 lg=16 max=65536 ");
	/* With caching off the limits still read back, nothing is cached. */
	run("tcache:false,lg_tcache_max:16", "facts");
	expect_out("tcache:false,lg_tcache_max:16", "tcache=0 lg=16 max=65536 ");
	if (have_stats) {
		expect_out("tcache:false,lg_tcache_max:16",
		           " cached_max=0 cached_next=0 cached_small=0");
	}

	/* A 40 KiB block is cached with lg_tcache_max:16: freed and asked for
	 * again, the same block comes back. */
	run("lg_tcache_max:16", "reuse");
	expect_out("lg_tcache_max:16", "same=1\n");
}

static void
test_tcache_off(void **state) {
	(void)state;
	skip_if_built_in_conf();
	skip_without_tcache();
	run("tcache:false", "off");
	expect_out("tcache:false", "ok\n");
}

static void *
thread_read_enabled(void *arg) {
	(void)arg;
	free(keep(malloc(64)));
	bool on = false;
	if (ctl_get("thread.tcache.enabled", &on, sizeof(on)) != 0) {
		return (void *)2;
	}
	return on ? (void *)1 : NULL;
}

static void
test_thread_enabled(void **state) {
	(void)state;
	skip_without_tcache();
	if (!have_stats) {
		print_message("# no stats: skipped\n");
		skip();
	}
	unsigned old;
	unsigned a = bind_new_arena(&old);
	assert_int_not_equal(a, UINT32_MAX);
	unsigned j = bin_of(96);
	/* A thread starts with its cache as opt.tcache says (false under
	 * MALLOC_CONF=tcache:false); the test turns it on first then. */
	bool opt_on = false;
	assert_int_equal(ctl_get("opt.tcache", &opt_on, sizeof(opt_on)), 0);
	bool on = !opt_on;
	assert_int_equal(ctl_get("thread.tcache.enabled", &on, sizeof(on)), 0);
	assert_int_equal(on, opt_on);
	if (!on) {
		on = true;
		assert_int_equal(mallctl("thread.tcache.enabled", NULL, NULL, &on, sizeof(on)), 0);
	}
	void *ps[20];
	for (int i = 0; i < 20; i++) {
		ps[i] = keep(malloc(96));
	}
	for (int i = 0; i < 20; i++) {
		free(ps[i]);
	}
	refresh();
	assert_true(bin_curregs(a, j) >= 20);

	/* Off: the cache is flushed, and every request reaches the arena. */
	bool off = false, was = false;
	size_t sz = sizeof(was);
	assert_int_equal(mallctl("thread.tcache.enabled", &was, &sz, &off, sizeof(off)), 0);
	assert_true(was);
	refresh();
	assert_int_equal(bin_curregs(a, j), 0);
	void *p = keep(malloc(96));
	refresh();
	assert_int_equal(bin_curregs(a, j), 1);
	free(p);
	refresh();
	assert_int_equal(bin_curregs(a, j), 0);
	/* Off again: no change; flushing a disabled cache is fine. */
	assert_int_equal(mallctl("thread.tcache.enabled", &was, &sz, &off, sizeof(off)), 0);
	assert_false(was);
	assert_int_equal(thread_flush(), 0);

	/* Per thread: a new thread has its own cache, as opt.tcache says. */
	pthread_t t;
	void *ret;
	assert_int_equal(pthread_create(&t, NULL, thread_read_enabled, NULL), 0);
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_ptr_equal(ret, opt_on ? (void *)1 : NULL);
	assert_int_equal(ctl_get("thread.tcache.enabled", &on, sizeof(on)), 0);
	assert_false(on);

	/* On again: a miss fills a batch. */
	bool yes = true;
	assert_int_equal(mallctl("thread.tcache.enabled", &was, &sz, &yes, sizeof(yes)), 0);
	assert_false(was);
	assert_int_equal(ctl_get("thread.tcache.enabled", &on, sizeof(on)), 0);
	assert_true(on);
	p = keep(malloc(96));
	refresh();
	assert_true(bin_curregs(a, j) > 1);
	free(p);
	assert_int_equal(thread_flush(), 0);
	refresh();
	assert_int_equal(bin_curregs(a, j), 0);
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &old, sizeof(old)), 0);
}

static void *
thread_flush_main(void *arg) {
	(void)arg;
	free(keep(malloc(192)));
	return (void *)(intptr_t)thread_flush();
}

static void
test_thread_flush(void **state) {
	(void)state;
	skip_without_tcache();
	if (!have_stats) {
		print_message("# no stats: skipped\n");
		skip();
	}
	unsigned old;
	unsigned a = bind_new_arena(&old);
	assert_int_not_equal(a, UINT32_MAX);
	unsigned j = bin_of(192);
	/* Under MALLOC_CONF=tcache:false this thread turns its cache on. */
	bool on = true;
	assert_int_equal(mallctl("thread.tcache.enabled", NULL, NULL, &on, sizeof(on)), 0);
	size_t tmax = read_size("arenas.tcache_max");
	size_t lsize = 20000 <= tmax ? 20000 : 0;
	void *ps[10], *ls[2] = {NULL, NULL};
	for (int i = 0; i < 10; i++) {
		ps[i] = keep(malloc(192));
	}
	for (int i = 0; lsize != 0 && i < 2; i++) {
		ls[i] = keep(malloc(lsize));
	}
	for (int i = 0; i < 10; i++) {
		free(ps[i]);
	}
	for (int i = 0; i < 2; i++) {
		free(ls[i]);
	}
	refresh();
	size_t cached = bin_curregs(a, j);
	assert_true(cached >= 10);
	if (lsize != 0) {
		assert_int_equal(arena_large_allocated(a), 2 * nallocx(lsize, 0));
	}
	/* Another thread's flush leaves this thread's cache alone. */
	pthread_t t;
	void *ret;
	assert_int_equal(pthread_create(&t, NULL, thread_flush_main, NULL), 0);
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_null(ret);
	refresh();
	assert_int_equal(bin_curregs(a, j), cached);
	/* This thread's flush empties it, small and large. */
	assert_int_equal(thread_flush(), 0);
	refresh();
	assert_int_equal(bin_curregs(a, j), 0);
	assert_int_equal(arena_large_allocated(a), 0);
	assert_int_equal(thread_flush(), 0);
	/* The cache is still on and works. */
	void *p = keep(malloc(192));
	free(p);
	refresh();
	assert_true(bin_curregs(a, j) > 0);
	assert_int_equal(thread_flush(), 0);
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &old, sizeof(old)), 0);
}

static unsigned
tc_create(void) {
	unsigned id = UINT32_MAX;
	assert_int_equal(ctl_get("tcache.create", &id, sizeof(id)), 0);
	return id;
}

static void
tc_ctl(const char *name, unsigned id) {
	assert_int_equal(mallctl(name, NULL, NULL, &id, sizeof(id)), 0);
}

static void
test_explicit(void **state) {
	(void)state;
	skip_without_tcache();
	unsigned old;
	unsigned a = bind_new_arena(&old);
	assert_int_not_equal(a, UINT32_MAX);
	assert_int_equal(thread_flush(), 0);
	unsigned tc1 = tc_create(), tc2 = tc_create();
	assert_int_not_equal(tc1, tc2);
	/* The caches' stacks come from the arena they fill from. */
	refresh();
	size_t stacks = arena_allocated(a);
	int f1 = MALLOCX_TCACHE(tc1), f2 = MALLOCX_TCACHE(tc2);

	/* Freed to tc1, back from tc1; not from tc2, the thread's cache or
	 * the arena. */
	void *p = mallocx(96, f1);
	assert_non_null(p);
	memset(p, 0x11, 96);
	dallocx(p, f1);
	void *q = mallocx(96, f1);
	assert_ptr_equal(q, p);
	dallocx(q, f1);
	void *r = mallocx(96, f2);
	void *s = keep(malloc(96));
	void *n = mallocx(96, MALLOCX_TCACHE_NONE);
	assert_ptr_not_equal(r, p);
	assert_ptr_not_equal(s, p);
	assert_ptr_not_equal(n, p);
	dallocx(r, f2);
	free(s);
	dallocx(n, MALLOCX_TCACHE_NONE);

	/* Large classes (when cached), sdallocx, and rallocx's old block. */
	size_t lsize = 20000 <= read_size("arenas.tcache_max") ? 20000 : 0;
	if (lsize != 0) {
		void *l = mallocx(lsize, f1);
		assert_non_null(l);
		sdallocx(l, lsize, f1);
		void *l2 = mallocx(lsize, f1);
		assert_ptr_equal(l2, l);
		dallocx(l2, f1);
	}
	void *small = mallocx(64, f1);
	assert_non_null(small);
	memset(small, 0x22, 64);
	void *grown = rallocx(small, 1000, f1);
	assert_non_null(grown);
	assert_ptr_not_equal(grown, small);
	assert_int_equal(((unsigned char *)grown)[63], 0x22);
	assert_ptr_equal(mallocx(64, f1), small);
	dallocx(small, f1);
	dallocx(grown, f1);

	if (have_stats) {
		/* MALLOCX_TCACHE_NONE: one region from and back to the arena. */
		unsigned j = bin_of(320);
		refresh();
		size_t c0 = bin_curregs(a, j);
		void *x = mallocx(320, MALLOCX_TCACHE_NONE);
		refresh();
		assert_int_equal(bin_curregs(a, j), c0 + 1);
		dallocx(x, MALLOCX_TCACHE_NONE);
		refresh();
		assert_int_equal(bin_curregs(a, j), c0);

		/* Flushing tc1, tc2 and the thread's cache returns every block
		 * to the arena they came from: what is left are the two
		 * caches' stacks, which destroy releases. */
		refresh();
		assert_true(arena_allocated(a) > stacks);
		tc_ctl("tcache.flush", tc1);
		tc_ctl("tcache.flush", tc2);
		assert_int_equal(thread_flush(), 0);
		refresh();
		assert_int_equal(arena_allocated(a), stacks);
	}
	tc_ctl("tcache.destroy", tc1);
	tc_ctl("tcache.destroy", tc2);
	if (have_stats) {
		refresh();
		assert_int_equal(arena_allocated(a), 0);
	}
	assert_int_equal(mallctl("tcache.destroy", NULL, NULL, &tc1, sizeof(tc1)), EFAULT);
	assert_null(mallocx(96, f1));

	/* Many at once, all distinct; destroyed ids are recycled. */
	enum { MANY = 64 };
	unsigned ids[MANY];
	for (int i = 0; i < MANY; i++) {
		ids[i] = tc_create();
		for (int k = 0; k < i; k++) {
			assert_int_not_equal(ids[k], ids[i]);
		}
	}
	for (int i = 0; i < MANY; i++) {
		tc_ctl("tcache.destroy", ids[i]);
	}
	for (int i = 0; i < 5000; i++) {
		unsigned id = tc_create();
		void *b = mallocx(48, MALLOCX_TCACHE(id));
		assert_non_null(b);
		dallocx(b, MALLOCX_TCACHE(id));
		tc_ctl("tcache.destroy", id);
	}
	if (have_stats) {
		refresh();
		assert_int_equal(arena_allocated(a), 0);
	}
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &old, sizeof(old)), 0);
}

int
main(int argc, char **argv) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("the process allocator has no mallctl\n");
		return 77;
	}
	if (ctl_get("config.tcache", &have_tcache, sizeof(have_tcache)) != 0 ||
	    ctl_get("config.stats", &have_stats, sizeof(have_stats)) != 0 ||
	    ctl_get("config.malloc_conf", &built_in_conf, sizeof(built_in_conf)) != 0) {
		printf("mallctl config.* failed\n");
		return 1;
	}
	if (argc == 3 && strcmp(argv[1], "child") == 0) {
		return child_main(argv[2]);
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nodes),        cmocka_unit_test(test_lg_tcache_max),
	    cmocka_unit_test(test_tcache_off),   cmocka_unit_test(test_thread_enabled),
	    cmocka_unit_test(test_thread_flush), cmocka_unit_test(test_explicit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
