/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mallctl, mallctlnametomib and mallctlbymib through lib/liballoc.so: the
 * error rules (ENOENT, EINVAL, EPERM, EFAULT), config/opt/arenas facts
 * checked against what the allocator does (nallocx), thread.* (arena
 * binding, exact byte counters, cache on/off and flush), explicit caches
 * (tcache.create/flush/destroy with MALLOCX_TCACHE), arenas.extend and
 * arena.<i>.reset/purge/dss/decay_time.
 *
 * liballoc-specific: skipped (exit 77) when the process allocator does not
 * export mallctl.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <setjmp.h>
#include <cmocka.h>

#include "alloc.h"
#include "alloc/internal/config_defs.h"
#include "test_fill.h"
#include "test_skip.h"

/* Blocks stored here escape, so the compiler cannot drop a malloc/free
 * pair whose block is never used. */
static void *volatile sink;

static void *
keep(void *p) {
	sink = p;
	return p;
}

/* config.tcache: without thread caches built in (configure
 * --disable-tcache) every thread-cache node answers ENOENT, as in jemalloc
 * built that way, and the tests of cache behaviour skip. */
static bool have_tcache;

static void
skip_without_tcache(void) {
	test_skip_unless(have_tcache, "thread caches");
	test_skip_if_fill();
}

/* config.stats: without statistics (configure --disable-stats) every
 * stats.* and thread.[de]allocated[p] node answers ENOENT, as in jemalloc;
 * the checks that read them skip, the rest of each test still runs. */
static bool have_stats;

static size_t
read_size(const char *name) {
	size_t v = 0;
	size_t sz = sizeof(v);
	int err = mallctl(name, &v, &sz, NULL, 0);
	if (err != 0) {
		fail_msg("mallctl(\"%s\") = %d", name, err);
	}
	return v;
}

static unsigned
read_unsigned(const char *name) {
	unsigned v = 0;
	size_t sz = sizeof(v);
	int err = mallctl(name, &v, &sz, NULL, 0);
	if (err != 0) {
		fail_msg("mallctl(\"%s\") = %d", name, err);
	}
	return v;
}

static uint64_t
read_u64(const char *name) {
	uint64_t v = 0;
	size_t sz = sizeof(v);
	int err = mallctl(name, &v, &sz, NULL, 0);
	if (err != 0) {
		fail_msg("mallctl(\"%s\") = %d", name, err);
	}
	return v;
}

static void
refresh(void) {
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);
	assert_int_equal(mallctl("epoch", &epoch, &sz, &epoch, sizeof(epoch)), 0);
}

static unsigned
new_arena(void) {
	unsigned a;
	size_t sz = sizeof(a);
	assert_int_equal(mallctl("arenas.extend", &a, &sz, NULL, 0), 0);
	return a;
}

static void
test_errors(void **state) {
	(void)state;
	size_t v;
	size_t sz = sizeof(v);
	assert_int_equal(mallctl("no.such.name", &v, &sz, NULL, 0), ENOENT);
	assert_int_equal(mallctl("arenas.bin.100000.size", &v, &sz, NULL, 0), ENOENT);
	assert_int_equal(mallctl("arena.100000.purge", NULL, NULL, NULL, 0), ENOENT);
	assert_int_equal(mallctl("stats", &v, &sz, NULL, 0), ENOENT);
	/* Wrong lengths. */
	uint32_t small;
	sz = sizeof(small);
	assert_int_equal(mallctl("stats.allocated", &small, &sz, NULL, 0),
	                 have_stats ? EINVAL : ENOENT);
	uint64_t epoch = 1;
	assert_int_equal(mallctl("epoch", NULL, NULL, &epoch, 4), EINVAL);
	/* Read-only and void nodes. */
	sz = sizeof(v);
	assert_int_equal(mallctl("stats.allocated", NULL, NULL, &v, sizeof(v)),
	                 have_stats ? EPERM : ENOENT);
	const char *s = "x";
	assert_int_equal(mallctl("version", NULL, NULL, &s, sizeof(s)), EPERM);
	assert_int_equal(mallctl("opt.narenas", NULL, NULL, &v, sizeof(unsigned)), EPERM);
	assert_int_equal(mallctl("thread.tcache.flush", &v, &sz, NULL, 0),
	                 have_tcache ? EPERM : ENOENT);
	assert_int_equal(mallctl("arena.0.purge", NULL, NULL, &v, sizeof(v)), EPERM);
	/* Actions that fail. */
	assert_int_equal(mallctl("arena.0.reset", NULL, NULL, NULL, 0), EFAULT);
	const char *dss = "primary";
	assert_int_equal(mallctl("arena.0.dss", NULL, NULL, &dss, sizeof(dss)), EFAULT);
	dss = "bogus";
	assert_int_equal(mallctl("arena.0.dss", NULL, NULL, &dss, sizeof(dss)), EINVAL);
	dss = "disabled";
	const char *old = NULL;
	sz = sizeof(old);
	assert_int_equal(mallctl("arena.0.dss", &old, &sz, &dss, sizeof(dss)), 0);
	assert_string_equal(old, "disabled");
	unsigned id = 4095;
	assert_int_equal(mallctl("tcache.destroy", NULL, NULL, &id, sizeof(id)),
	                 have_tcache ? EFAULT : ENOENT);
	assert_int_equal(mallctl("tcache.flush", NULL, NULL, NULL, 0),
	                 have_tcache ? EFAULT : ENOENT);
}

static void
test_config_opt(void **state) {
	(void)state;
	bool b;
	size_t sz = sizeof(b);
	assert_int_equal(mallctl("config.stats", &b, &sz, NULL, 0), 0);
	size_t allocated;
	size_t alen = sizeof(allocated);
	/* The statistics are there exactly when config.stats says so. */
	assert_int_equal(mallctl("stats.allocated", &allocated, &alen, NULL, 0), b ? 0 : ENOENT);
	/* Heap profiling (configure --enable-prof): without it its options
	 * and controls answer ENOENT, as in jemalloc. */
	assert_int_equal(mallctl("config.prof", &b, &sz, NULL, 0), 0);
	bool prof_on;
	assert_int_equal(mallctl("opt.prof", &prof_on, &sz, NULL, 0), b ? 0 : ENOENT);
	assert_int_equal(mallctl("prof.active", &prof_on, &sz, NULL, 0), b ? 0 : ENOENT);
	assert_int_equal(mallctl("thread.prof.active", &prof_on, &sz, NULL, 0), b ? 0 : ENOENT);
	if (!b) {
		assert_int_equal(mallctl("prof.dump", NULL, NULL, NULL, 0), ENOENT);
	}
	const char *s;
	sz = sizeof(s);
	assert_int_equal(mallctl("config.malloc_conf", &s, &sz, NULL, 0), 0);
	assert_non_null(s);
	assert_int_equal(mallctl("opt.percpu_arena", &s, &sz, NULL, 0), 0);
	assert_non_null(s);
	ssize_t decay, ms;
	sz = sizeof(decay);
	assert_int_equal(mallctl("opt.decay_time", &decay, &sz, NULL, 0), 0);
	assert_int_equal(mallctl("opt.dirty_decay_ms", &ms, &sz, NULL, 0), 0);
	assert_int_equal(ms, decay < 0 ? -1 : decay * 1000);
	sz = sizeof(b);
	assert_int_equal(mallctl("opt.tcache", &b, &sz, NULL, 0), have_tcache ? 0 : ENOENT);
	sz = sizeof(size_t);
	size_t lg;
	assert_int_equal(mallctl("opt.lg_tcache_max", &lg, &sz, NULL, 0), have_tcache ? 0 : ENOENT);
}

static void
test_arenas_facts(void **state) {
	(void)state;
	/* The configured quantum (--with-lg-quantum, 16 bytes by default). */
	assert_int_equal(read_size("arenas.quantum"), (size_t)1 << ALLOC_LG_QUANTUM);
	size_t page = read_size("arenas.page");
	assert_true(page >= 4096 && (page & (page - 1)) == 0);
	unsigned nbins = read_unsigned("arenas.nbins");
	assert_true(nbins > 0);
	size_t mib[4];
	size_t miblen = 4;
	assert_int_equal(mallctlnametomib("arenas.bin.0.size", mib, &miblen), 0);
	size_t prev = 0;
	for (unsigned j = 0; j < nbins; j++) {
		mib[2] = j;
		size_t size;
		size_t sz = sizeof(size);
		assert_int_equal(mallctlbymib(mib, 4, &size, &sz, NULL, 0), 0);
		assert_true(size > prev);
		if (!test_fill_redzone()) {
			/* Redzones take bytes off every small class. */
			assert_int_equal(nallocx(size, 0), size);
		}
		prev = size;
		char name[64];
		snprintf(name, sizeof(name), "arenas.bin.%u.nregs", j);
		uint32_t nregs;
		sz = sizeof(nregs);
		assert_int_equal(mallctl(name, &nregs, &sz, NULL, 0), 0);
		snprintf(name, sizeof(name), "arenas.bin.%u.run_size", j);
		assert_int_equal(read_size(name), nregs * size);
	}
	unsigned nlruns = read_unsigned("arenas.nlruns");
	assert_int_equal(read_size("arenas.lrun.0.size"), 4 * page);
	char name[64];
	snprintf(name, sizeof(name), "arenas.lrun.%u.size", nlruns - 1);
	size_t lmax = read_size(name);
	assert_int_equal(nallocx(lmax, 0), lmax);
	assert_true(read_unsigned("arenas.nhchunks") > 0);
	size_t h0 = read_size("arenas.hchunk.0.size");
	assert_true(h0 > lmax);
	assert_int_equal(nallocx(lmax + 1, 0), h0);
	if (have_tcache) {
		assert_true(read_unsigned("arenas.nhbins") >= nbins);
		assert_true(read_size("arenas.tcache_max") >= prev);
	} else {
		unsigned u;
		size_t ulen = sizeof(u);
		assert_int_equal(mallctl("arenas.nhbins", &u, &ulen, NULL, 0), ENOENT);
		size_t tmax;
		size_t tlen = sizeof(tmax);
		assert_int_equal(mallctl("arenas.tcache_max", &tmax, &tlen, NULL, 0), ENOENT);
	}

	unsigned n = read_unsigned("arenas.narenas");
	bool *init = calloc(n, sizeof(bool));
	size_t sz = n * sizeof(bool);
	assert_int_equal(mallctl("arenas.initialized", init, &sz, NULL, 0), 0);
	assert_true(init[0]);
	free(init);

	ssize_t d;
	sz = sizeof(d);
	assert_int_equal(mallctl("arenas.decay_time", &d, &sz, NULL, 0), 0);
	assert_int_equal(mallctl("arenas.lg_dirty_mult", &d, &sz, NULL, 0), 0);
}

static void
test_extend(void **state) {
	(void)state;
	unsigned a = new_arena();
	unsigned b;
	size_t sz = sizeof(b);
	assert_int_equal(mallctl("arenas.create", &b, &sz, NULL, 0), 0);
	assert_int_equal(b, a + 1);
	assert_int_equal(read_unsigned("arenas.narenas"), b + 1);
	void *p = mallocx(100, MALLOCX_ARENA(b) | MALLOCX_TCACHE_NONE);
	assert_non_null(p);
	dallocx(p, MALLOCX_TCACHE_NONE);
	/* An arena index past the last one is rejected by mallocx. */
	assert_null(mallocx(100, MALLOCX_ARENA(b + 1000) | MALLOCX_TCACHE_NONE));
}

/* The exact per-thread byte counters, for a known sequence. */
static void
test_thread_counters(void **state) {
	(void)state;
	/* volatile: the compiler knows malloc and friends as builtins that
	 * write no memory of the program's, and would reuse earlier loads. */
	volatile uint64_t *ap, *dp;
	size_t sz = sizeof(ap);
	if (!have_stats) {
		const char *names[] = {"thread.allocated", "thread.allocatedp",
		                       "thread.deallocated", "thread.deallocatedp"};
		for (int i = 0; i < 4; i++) {
			uint64_t v;
			size_t vlen = sizeof(v);
			assert_int_equal(mallctl(names[i], &v, &vlen, NULL, 0), ENOENT);
		}
	}
	test_skip_unless(have_stats, "statistics");
	assert_int_equal(mallctl("thread.allocatedp", &ap, &sz, NULL, 0), 0);
	assert_int_equal(mallctl("thread.deallocatedp", &dp, &sz, NULL, 0), 0);
	uint64_t a0 = *ap, d0 = *dp;
	assert_int_equal(read_u64("thread.allocated"), a0);
	assert_int_equal(read_u64("thread.deallocated"), d0);

	void *p = keep(malloc(100));
	void *q = keep(calloc(1, 5000));
	void *r = keep(mallocx(40000, 0));
	void *h = keep(malloc(3 << 20));
	uint64_t a1 = *ap;
	size_t want = nallocx(100, 0) + nallocx(5000, 0) + nallocx(40000, 0) + nallocx(3 << 20, 0);
	p = keep(realloc(p, 1000));
	uint64_t a2 = *ap, d2 = *dp;
	free(p);
	free(q);
	sdallocx(r, 40000, 0);
	free(h);
	uint64_t d3 = *dp;
	assert_int_equal(a1 - a0, want);
	assert_int_equal(a2 - a1, nallocx(1000, 0));
	assert_int_equal(d2 - d0, nallocx(100, 0));
	assert_int_equal(d3 - d2, want - nallocx(100, 0) + nallocx(1000, 0));

	/* realloc within the class keeps the block and counts nothing;
	 * sdallocx of a small block counts its class. */
	p = keep(malloc(100));
	uint64_t a4 = *ap, d4 = *dp;
	void *same = keep(realloc(p, nallocx(100, 0)));
	assert_ptr_equal(same, p);
	assert_int_equal(*ap, a4);
	assert_int_equal(*dp, d4);
	sdallocx(same, 100, 0);
	assert_int_equal(*dp - d4, nallocx(100, 0));
}

static void *
thread_counters_main(void *arg) {
	(void)arg;
	volatile uint64_t *ap;
	size_t sz = sizeof(ap);
	if (mallctl("thread.allocatedp", &ap, &sz, NULL, 0) != 0) {
		return (void *)1;
	}
	uint64_t a0 = *ap;
	void *p = keep(malloc(64));
	bool ok = *ap - a0 == nallocx(64, 0);
	free(p);
	return ok ? NULL : (void *)arg;
}

static void
test_thread_counters_per_thread(void **state) {
	(void)state;
	test_skip_unless(have_stats, "statistics");
	uint64_t a0 = read_u64("thread.allocated");
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, thread_counters_main, state), 0);
	void *ret;
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_null(ret);
	/* The counter is per thread: it did not go back, whatever
	 * pthread_create allocated here. */
	assert_true(read_u64("thread.allocated") >= a0);
}

static void
test_thread_arena(void **state) {
	(void)state;
	unsigned old = read_unsigned("thread.arena");
	unsigned a = new_arena();
	unsigned prev;
	size_t sz = sizeof(prev);
	assert_int_equal(mallctl("thread.arena", &prev, &sz, &a, sizeof(a)), 0);
	assert_int_equal(prev, old);
	assert_int_equal(read_unsigned("thread.arena"), a);
	/* Allocations now come from arena a. */
	if (have_stats) {
		refresh();
		char name[96];
		snprintf(name, sizeof(name), "stats.arenas.%u.small.nrequests", a);
		uint64_t before = read_u64(name);
		void *ps[10];
		for (int i = 0; i < 10; i++) {
			ps[i] = keep(malloc(48));
		}
		refresh();
		assert_int_equal(read_u64(name) - before, 10);
		for (int i = 0; i < 10; i++) {
			free(ps[i]);
		}
	}
	unsigned bad = 1u << 30;
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &bad, sizeof(bad)), EFAULT);
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &old, sizeof(old)), 0);
	assert_int_equal(read_unsigned("thread.arena"), old);
}

static void
test_thread_tcache(void **state) {
	(void)state;
	bool on;
	size_t sz = sizeof(on);
	if (!have_tcache) {
		assert_int_equal(mallctl("thread.tcache.enabled", &on, &sz, NULL, 0), ENOENT);
		assert_int_equal(mallctl("thread.tcache.flush", NULL, NULL, NULL, 0), ENOENT);
	}
	skip_without_tcache();
	/* A thread starts with its cache as opt.tcache says (false under
	 * MALLOC_CONF=tcache:false); then the test turns it on first. */
	bool opt_on;
	assert_int_equal(mallctl("opt.tcache", &opt_on, &sz, NULL, 0), 0);
	assert_int_equal(mallctl("thread.tcache.enabled", &on, &sz, NULL, 0), 0);
	assert_int_equal(on, opt_on);
	if (!on) {
		on = true;
		assert_int_equal(mallctl("thread.tcache.enabled", NULL, NULL, &on, sizeof(on)), 0);
	}
	bool off = false;
	bool old;
	assert_int_equal(mallctl("thread.tcache.enabled", &old, &sz, &off, sizeof(off)), 0);
	assert_true(old);
	assert_int_equal(mallctl("thread.tcache.enabled", &on, &sz, NULL, 0), 0);
	assert_false(on);
	/* Without a cache every small request goes to the arena. */
	void *p;
	if (have_stats) {
		unsigned a = read_unsigned("thread.arena");
		char name[96];
		snprintf(name, sizeof(name), "stats.arenas.%u.bins.2.curregs", a);
		refresh();
		size_t before = read_size(name);
		p = keep(malloc(read_size("arenas.bin.2.size")));
		refresh();
		assert_int_equal(read_size(name), before + 1);
		free(p);
		refresh();
		assert_int_equal(read_size(name), before);
	}
	/* Flushing a disabled cache is fine. */
	assert_int_equal(mallctl("thread.tcache.flush", NULL, NULL, NULL, 0), 0);
	bool yes = true;
	assert_int_equal(mallctl("thread.tcache.enabled", NULL, NULL, &yes, sizeof(yes)), 0);
	assert_int_equal(mallctl("thread.tcache.enabled", &on, &sz, NULL, 0), 0);
	assert_true(on);
	p = malloc(64);
	free(p);
	assert_int_equal(mallctl("thread.tcache.flush", NULL, NULL, NULL, 0), 0);
}

/* The explicit cache fills from the arena the thread uses while allocating
 * through it (here the new arena a, to which it stays bound). */
static void
test_explicit_tcache(void **state) {
	(void)state;
	unsigned id;
	size_t sz = sizeof(id);
	if (!have_tcache) {
		assert_int_equal(mallctl("tcache.create", &id, &sz, NULL, 0), ENOENT);
	}
	skip_without_tcache();
	unsigned a = new_arena();
	unsigned old = read_unsigned("thread.arena");
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &a, sizeof(a)), 0);
	assert_int_equal(mallctl("tcache.create", &id, &sz, NULL, 0), 0);
	size_t size = read_size("arenas.bin.4.size");
	char name[96];
	snprintf(name, sizeof(name), "stats.arenas.%u.bins.4.curregs", a);
	void *ps[8];
	for (int i = 0; i < 8; i++) {
		ps[i] = mallocx(size, MALLOCX_TCACHE(id));
		assert_non_null(ps[i]);
	}
	refresh();
	/* The cache filled a batch from arena a. */
	if (have_stats) {
		assert_true(read_size(name) >= 8);
	}
	for (int i = 0; i < 8; i++) {
		dallocx(ps[i], MALLOCX_TCACHE(id));
	}
	assert_int_equal(mallctl("tcache.flush", NULL, NULL, &id, sizeof(id)), 0);
	refresh();
	if (have_stats) {
		assert_int_equal(read_size(name), 0);
	}
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &old, sizeof(old)), 0);
	assert_int_equal(mallctl("tcache.destroy", NULL, NULL, &id, sizeof(id)), 0);
	assert_int_equal(mallctl("tcache.destroy", NULL, NULL, &id, sizeof(id)), EFAULT);
	assert_int_equal(mallctl("tcache.flush", NULL, NULL, &id, sizeof(id)), EFAULT);
	assert_null(mallocx(size, MALLOCX_TCACHE(id)));
}

static void
test_arena_reset(void **state) {
	(void)state;
	test_skip_if_redzone_or_quarantine();
	unsigned a = new_arena();
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	for (int i = 0; i < 100; i++) {
		assert_non_null(mallocx(32, flags));
	}
	/* Large: about 24 pages (100,000 bytes with 4 KiB pages). */
	size_t large = 24 * read_size("arenas.page") + read_size("arenas.page") / 2;
	for (int i = 0; i < 5; i++) {
		assert_non_null(mallocx(large, flags));
	}
	assert_non_null(mallocx(4 << 20, flags));
	char name[96];
	refresh();
	snprintf(name, sizeof(name), "stats.arenas.%u.small.allocated", a);
	if (have_stats) {
		assert_int_equal(read_size(name), 100 * nallocx(32, 0));
	}
	snprintf(name, sizeof(name), "arena.%u.reset", a);
	size_t v;
	size_t sz = sizeof(v);
	assert_int_equal(mallctl(name, &v, &sz, NULL, 0), EPERM);
	assert_int_equal(mallctl(name, NULL, NULL, NULL, 0), 0);
	refresh();
	const char *zero[] = {"small.allocated", "large.allocated", "huge.allocated", "pactive"};
	for (int i = 0; have_stats && i < 4; i++) {
		snprintf(name, sizeof(name), "stats.arenas.%u.%s", a, zero[i]);
		assert_int_equal(read_size(name), 0);
	}
	/* jemalloc 5's spelling; the arena is usable afterwards. */
	snprintf(name, sizeof(name), "arena.%u.destroy", a);
	assert_int_equal(mallctl(name, NULL, NULL, NULL, 0), 0);
	void *p = mallocx(32, flags);
	assert_non_null(p);
	dallocx(p, MALLOCX_TCACHE_NONE);
	/* Not on automatic arenas, nor on "all". */
	unsigned n = read_unsigned("arenas.narenas");
	snprintf(name, sizeof(name), "arena.%u.reset", n);
	assert_int_equal(mallctl(name, NULL, NULL, NULL, 0), EFAULT);
}

static void
test_arena_purge_decay(void **state) {
	(void)state;
	test_skip_if_redzone_or_quarantine();
	unsigned a = new_arena();
	char name[96];
	/* Keep dirty pages until purged by hand. */
	ssize_t never = -1, old;
	size_t sz = sizeof(old);
	snprintf(name, sizeof(name), "arena.%u.decay_time", a);
	assert_int_equal(mallctl(name, &old, &sz, &never, sizeof(never)), 0);
	ssize_t now;
	assert_int_equal(mallctl(name, &now, &sz, NULL, 0), 0);
	assert_int_equal(now, -1);
	ssize_t bad = -2;
	assert_int_equal(mallctl(name, NULL, NULL, &bad, sizeof(bad)), EFAULT);
	assert_int_equal(mallctl(name, NULL, NULL, &bad, sizeof(int)), EINVAL);

	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	void *ps[16];
	for (int i = 0; i < 16; i++) {
		ps[i] = mallocx(64 << 10, flags);
		memset(ps[i], 1, 64 << 10);
	}
	for (int i = 0; i < 16; i++) {
		dallocx(ps[i], MALLOCX_TCACHE_NONE);
	}
	if (!have_stats) {
		/* The actions still work; what they did cannot be seen. */
		snprintf(name, sizeof(name), "arena.%u.decay", a);
		assert_int_equal(mallctl(name, NULL, NULL, NULL, 0), 0);
		snprintf(name, sizeof(name), "arena.%u.purge", a);
		assert_int_equal(mallctl(name, NULL, NULL, NULL, 0), 0);
	}
	test_skip_unless(have_stats, "statistics");
	refresh();
	snprintf(name, sizeof(name), "stats.arenas.%u.pdirty", a);
	size_t dirty = read_size(name);
	assert_true(dirty > 0);
	snprintf(name, sizeof(name), "stats.arenas.%u.npurge", a);
	uint64_t npurge = read_u64(name);
	snprintf(name, sizeof(name), "arena.%u.decay", a);
	assert_int_equal(mallctl(name, NULL, NULL, NULL, 0), 0);
	snprintf(name, sizeof(name), "arena.%u.purge", a);
	assert_int_equal(mallctl(name, NULL, NULL, NULL, 0), 0);
	refresh();
	snprintf(name, sizeof(name), "stats.arenas.%u.pdirty", a);
	assert_true(read_size(name) < dirty);
	snprintf(name, sizeof(name), "stats.arenas.%u.npurge", a);
	assert_true(read_u64(name) > npurge);
	snprintf(name, sizeof(name), "stats.arenas.%u.purged", a);
	assert_true(read_u64(name) > 0);
	/* Purging everything at once also works. */
	snprintf(name, sizeof(name), "arena.%u.purge", read_unsigned("arenas.narenas"));
	assert_int_equal(mallctl(name, NULL, NULL, NULL, 0), 0);
}

/*
 * A read-write call whose old-value buffer has the wrong size fails with
 * EINVAL (copying the part of the old value that fits) and changes
 * nothing: the value written is not applied. (Found by the ctl_write fuzz
 * target: the write used to be applied before the read failed.)
 */
static void
test_failed_write_changes_nothing(void **state) {
	(void)state;
	uint32_t short_buf;
	size_t sz;
	/* ssize_t settings. */
	static const char *const settings[] = {"arenas.decay_time", "arenas.lg_dirty_mult",
	                                       "arena.0.decay_time", "arena.0.lg_dirty_mult"};
	for (unsigned i = 0; i < 4; i++) {
		ssize_t before, after, v = 7;
		sz = sizeof(before);
		assert_int_equal(mallctl(settings[i], &before, &sz, NULL, 0), 0);
		if (before == 7) {
			v = 8;
		}
		sz = sizeof(short_buf);
		assert_int_equal(mallctl(settings[i], &short_buf, &sz, &v, sizeof(v)), EINVAL);
		sz = sizeof(after);
		assert_int_equal(mallctl(settings[i], &after, &sz, NULL, 0), 0);
		if (after != before) {
			fail_msg("%s: a failed write changed %zd to %zd", settings[i], before,
			         after);
		}
	}
	/* thread.arena: the thread stays where it was. */
	unsigned home = read_unsigned("thread.arena");
	unsigned a = new_arena();
	uint16_t tiny;
	sz = sizeof(tiny);
	assert_int_equal(mallctl("thread.arena", &tiny, &sz, &a, sizeof(a)), EINVAL);
	assert_int_equal(read_unsigned("thread.arena"), home);
	/* thread.tcache.enabled. */
	if (have_tcache && !test_fill_active()) {
		bool on, off = false;
		uint64_t big;
		sz = sizeof(big);
		assert_int_equal(mallctl("thread.tcache.enabled", &big, &sz, &off, sizeof(off)),
		                 EINVAL);
		sz = sizeof(on);
		assert_int_equal(mallctl("thread.tcache.enabled", &on, &sz, NULL, 0), 0);
		assert_true(on);
	}
	/* background_thread. */
	bool bg, on = true;
	uint64_t big;
	sz = sizeof(bg);
	assert_int_equal(mallctl("background_thread", &bg, &sz, NULL, 0), 0);
	if (!bg) {
		sz = sizeof(big);
		assert_int_equal(mallctl("background_thread", &big, &sz, &on, sizeof(on)), EINVAL);
		sz = sizeof(bg);
		assert_int_equal(mallctl("background_thread", &bg, &sz, NULL, 0), 0);
		assert_false(bg);
	}
	/* epoch: no refresh. */
	uint64_t e0, e1 = 1;
	sz = sizeof(e0);
	assert_int_equal(mallctl("epoch", &e0, &sz, NULL, 0), 0);
	sz = sizeof(short_buf);
	assert_int_equal(mallctl("epoch", &short_buf, &sz, &e1, sizeof(e1)), EINVAL);
	sz = sizeof(e1);
	assert_int_equal(mallctl("epoch", &e1, &sz, NULL, 0), 0);
	assert_int_equal(e1, e0);
}

/*
 * A cache made while the thread uses an arena from arenas.extend keeps
 * working after arena.<i>.reset of that arena: the reset must not discard
 * the cache's own memory, which blocks allocated from the arena afterwards
 * would then share. (Found by the ctl_write fuzz target.)
 */
static void
test_cache_survives_arena_reset(void **state) {
	(void)state;
	skip_without_tcache();
	unsigned home = read_unsigned("thread.arena");
	unsigned a = new_arena();
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &a, sizeof(a)), 0);
	unsigned id;
	size_t sz = sizeof(id);
	assert_int_equal(mallctl("tcache.create", &id, &sz, NULL, 0), 0);
	/* The thread's own cache, set up again while bound to a. */
	bool off = false, on = true;
	assert_int_equal(mallctl("thread.tcache.enabled", NULL, NULL, &off, sizeof(off)), 0);
	assert_int_equal(mallctl("thread.tcache.enabled", NULL, NULL, &on, sizeof(on)), 0);
	char name[64];
	snprintf(name, sizeof(name), "arena.%u.reset", a);
	assert_int_equal(mallctl(name, NULL, NULL, NULL, 0), 0);
	enum { NBIG = 8, BIG = 32768, NSMALL = 200 };
	unsigned char *big[NBIG];
	for (int i = 0; i < NBIG; i++) {
		big[i] = mallocx(BIG, MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE);
		assert_non_null(big[i]);
		memset(big[i], 0xee, BIG);
	}
	void *p[NSMALL];
	for (int i = 0; i < NSMALL; i++) {
		p[i] = keep(mallocx(64, MALLOCX_TCACHE(id)));
		assert_non_null(p[i]);
	}
	for (int i = 0; i < NSMALL; i++) {
		dallocx(p[i], MALLOCX_TCACHE(id));
	}
	for (int i = 0; i < NSMALL; i++) {
		p[i] = keep(malloc(64 + (size_t)(i % 4) * 16));
	}
	for (int i = 0; i < NSMALL; i++) {
		free(p[i]);
	}
	for (int i = 0; i < NBIG; i++) {
		for (size_t k = 0; k < BIG; k++) {
			if (big[i][k] != 0xee) {
				fail_msg("block %d byte %zu changed: a cache used memory the reset "
				         "gave away",
				         i, k);
			}
		}
		dallocx(big[i], MALLOCX_TCACHE_NONE);
	}
	assert_int_equal(mallctl("tcache.destroy", NULL, NULL, &id, sizeof(id)), 0);
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &home, sizeof(home)), 0);
}

int
main(void) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("the process allocator has no mallctl\n");
		return 77;
	}
	size_t len = sizeof(have_tcache);
	if (mallctl("config.tcache", &have_tcache, &len, NULL, 0) != 0 ||
	    mallctl("config.stats", &have_stats, &len, NULL, 0) != 0) {
		printf("mallctl(\"config.tcache\" or \"config.stats\") failed\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_config_opt),
	    cmocka_unit_test(test_arenas_facts),
	    cmocka_unit_test(test_extend),
	    cmocka_unit_test(test_thread_counters),
	    cmocka_unit_test(test_thread_counters_per_thread),
	    cmocka_unit_test(test_thread_arena),
	    cmocka_unit_test(test_thread_tcache),
	    cmocka_unit_test(test_explicit_tcache),
	    cmocka_unit_test(test_arena_reset),
	    cmocka_unit_test(test_arena_purge_decay),
	    cmocka_unit_test(test_failed_write_changes_nothing),
	    cmocka_unit_test(test_cache_survives_arena_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
