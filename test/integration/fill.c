/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The debugging options of the manual (opt.junk, opt.zero, opt.redzone,
 * opt.quarantine, opt.xmalloc, opt.abort), each in a child run with its own
 * MALLOC_CONF, observed through the API:
 *
 *  - opt.* and config.fill / config.xmalloc read back what MALLOC_CONF set;
 *    in a --disable-fill build the nodes are ENOENT and the options warn;
 *  - junk: fresh small, large and huge blocks read 0xa5, realloc's and
 *    xallocx's grown bytes too, calloc still zeroes; junk:free makes a
 *    freed block read 0x5a (held by the quarantine, so reading it is
 *    defined); junk:alloc and junk:free act on one side only;
 *  - zero: reused dirty blocks and grown bytes read 0;
 *  - redzone: usable sizes are at least the request, equal to nallocx and
 *    sallocx, malloc keeps 16-byte alignment and posix_memalign every
 *    alignment; contents survive realloc;
 *  - thread caches are off (thread.tcache.enabled false, EPERM to turn on)
 *    and an explicit cache does not bypass junk;
 *  - death tests, with the exact message on stderr and SIGABRT: a byte
 *    written after the end or before the start of a block (on free and on
 *    realloc's move), a write after free caught when the block leaves the
 *    quarantine (by later frees, or at thread exit), a second free of a
 *    block in the quarantine, xmalloc on an impossible size and on calloc
 *    overflow, abort:true on a bad option;
 *  - the quarantine is drained at thread exit (stats.allocated back to the
 *    baseline), a child forked with a full quarantine works, and
 *    arena.<i>.reset of an arenas.extend arena leaves it consistent.
 *
 * liballoc-specific: skipped (exit 77) when the process allocator does not
 * export mallctl, and in a build with built-in options (--with-malloc-conf).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "alloc.h"
#include "test_child.h"
#include "test_quantum.h"
#include "test_stats.h"

/* The death tests use blocks after free() on purpose. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

static bool have_fill;

/* Blocks stored here escape, so the compiler keeps malloc/free pairs. */
static void *volatile sink;

static void *
keep(void *p) {
	sink = p;
	return p;
}

/* Opaque to the compiler, so it cannot drop or fold the accesses. */
static unsigned char *
opaque_ptr(void *p) {
	unsigned char *volatile v = p;
	return v;
}

static size_t
opaque(size_t n) {
	volatile size_t v = n;
	return v;
}

/* Index of the first byte of [p, p + n) that is not b, or n. */
static size_t
first_not(const void *p, size_t n, unsigned char b) {
	const volatile unsigned char *q = p;
	for (size_t i = 0; i < n; i++) {
		if (q[i] != b) {
			return i;
		}
	}
	return n;
}

/* ---------------------------------------------------------------------- */
/* Children: each mode runs under the MALLOC_CONF its test gives, prints
 * what the parent checks, and exits 0 when its own checks pass. */

#define CHILD_CHECK(cond, ...)                                                          \
	do {                                                                            \
		if (!(cond)) {                                                          \
			printf("child check failed at line %d: %s: ", __LINE__, #cond); \
			printf(__VA_ARGS__);                                            \
			printf("\n");                                                   \
			return 1;                                                       \
		}                                                                       \
	} while (0)

static int
child_opts(void) {
	const char *junk = NULL;
	bool zero = false, redzone = false, xmalloc = false, fill = false, cx = false;
	size_t quarantine = 0, sz;
	int e[7];
	sz = sizeof(junk);
	e[0] = mallctl("opt.junk", &junk, &sz, NULL, 0);
	sz = sizeof(bool);
	e[1] = mallctl("opt.zero", &zero, &sz, NULL, 0);
	e[2] = mallctl("opt.redzone", &redzone, &sz, NULL, 0);
	e[3] = mallctl("opt.xmalloc", &xmalloc, &sz, NULL, 0);
	e[4] = mallctl("config.fill", &fill, &sz, NULL, 0);
	e[5] = mallctl("config.xmalloc", &cx, &sz, NULL, 0);
	sz = sizeof(quarantine);
	e[6] = mallctl("opt.quarantine", &quarantine, &sz, NULL, 0);
	printf("errors %d %d %d %d %d %d %d\n", e[0], e[1], e[2], e[3], e[4], e[5], e[6]);
	printf("junk=%s zero=%d redzone=%d xmalloc=%d quarantine=%zu fill=%d cx=%d\n",
	       junk != NULL ? junk : "-", zero, redzone, xmalloc, quarantine, fill, cx);
	return 0;
}

/* Sizes: small, the largest small, large, huge. */
static const size_t sizes[] = {1, 8, 24, 100, 1000, 3000, 14336, 20000, 100000, 3u << 20};

static int
child_junk(void) {
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		/* Dirty a block first, so a reuse is not fresh zeroed memory. */
		unsigned char *d = keep(malloc(opaque(n)));
		memset(d, 0x11, n);
		free(d);
		unsigned char *p = malloc(opaque(n));
		size_t u = malloc_usable_size(p);
		CHILD_CHECK(first_not(p, u, 0xa5) == u, "malloc(%zu): byte %zu is %#x", n,
		            first_not(p, u, 0xa5), p[first_not(p, u, 0xa5)]);
		memset(p, 0x33, u);
		unsigned char *c = calloc(1, opaque(n));
		CHILD_CHECK(first_not(c, n, 0) == n, "calloc(%zu) not zeroed", n);
		/* Growth by moving and in place: old bytes kept, new ones
		 * junk. */
		unsigned char *r = realloc(p, opaque(2 * u + 5000));
		size_t ru = malloc_usable_size(r);
		CHILD_CHECK(first_not(r, u, 0x33) == u, "realloc(%zu) lost contents", n);
		CHILD_CHECK(first_not(r + u, ru - u, 0xa5) == ru - u,
		            "realloc(%zu -> %zu): grown byte %zu is %#x", u, ru,
		            u + first_not(r + u, ru - u, 0xa5),
		            r[u + first_not(r + u, ru - u, 0xa5)]);
		free(r);
		free(c);
	}
	/* xallocx growth of a large block in place, in a fresh arena so the
	 * pages after it are free. */
	unsigned a;
	size_t sz = sizeof(a);
	CHILD_CHECK(mallctl("arenas.extend", &a, &sz, NULL, 0) == 0, "arenas.extend");
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	/* About 10 and 20 pages (40,000 and 80,000 bytes with 4 KiB pages):
	 * large whatever the page size. */
	size_t page;
	sz = sizeof(page);
	CHILD_CHECK(mallctl("arenas.page", &page, &sz, NULL, 0) == 0, "arenas.page");
	size_t from = 10 * page - page / 4, to = 20 * page - page / 2;
	unsigned char *big = mallocx(opaque(from), flags);
	size_t u = sallocx(big, 0);
	memset(big, 0x44, u);
	size_t got = xallocx(big, to, 0, flags);
	CHILD_CHECK(got >= to, "xallocx(%zu -> %zu) = %zu", from, to, got);
	CHILD_CHECK(first_not(big + u, got - u, 0xa5) == got - u, "xallocx grown byte %zu",
	            u + first_not(big + u, got - u, 0xa5));
	CHILD_CHECK(first_not(big, u, 0x44) == u, "xallocx lost contents");
	dallocx(big, flags);
	return 0;
}

/* junk:free with a quarantine: a freed block stays allocated to the
 * quarantine, so reading it shows the free pattern. */
static int
child_junk_free(void) {
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		unsigned char *p = malloc(opaque(n));
		size_t u = malloc_usable_size(p);
		memset(p, 0x77, u);
		free(p);
		CHILD_CHECK(first_not(p, u, 0x5a) == u, "freed block of %zu: byte %zu", n,
		            first_not(p, u, 0x5a));
	}
	return 0;
}

static int
child_zero(void) {
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		unsigned char *d = keep(malloc(opaque(n)));
		memset(d, 0x11, malloc_usable_size(d));
		free(d);
		unsigned char *p = malloc(opaque(n));
		size_t u = malloc_usable_size(p);
		CHILD_CHECK(first_not(p, u, 0) == u, "malloc(%zu) not zero", n);
		memset(p, 0x22, u);
		unsigned char *r = realloc(p, opaque(u + 3000));
		size_t ru = malloc_usable_size(r);
		CHILD_CHECK(first_not(r, u, 0x22) == u, "realloc lost contents");
		CHILD_CHECK(first_not(r + u, ru - u, 0) == ru - u, "realloc(%zu): grown not zero",
		            u);
		free(r);
	}
	return 0;
}

static int
child_redzone(void) {
	for (size_t n = 0; n <= 20000; n += n < 600 ? 1 : 97) {
		unsigned char *p = malloc(opaque(n));
		size_t u = malloc_usable_size(p);
		CHILD_CHECK(u >= n, "usable %zu < %zu", u, n);
		CHILD_CHECK(u == nallocx(n, 0) && u == sallocx(p, 0), "malloc(%zu): usable %zu", n,
		            u);
		CHILD_CHECK(((uintptr_t)p & (test_quantum_min_align(n, test_quantum()) - 1)) == 0,
		            "malloc(%zu) = %p", n, (void *)p);
		memset(p, 0x5c, u);
		unsigned char *r = realloc(p, opaque(n + 40));
		CHILD_CHECK(first_not(r, u < n + 40 ? u : n + 40, 0x5c) ==
		                (u < n + 40 ? u : n + 40),
		            "realloc(%zu) lost contents", n);
		free(r);
	}
	for (size_t a = 8; a <= 8192; a *= 2) {
		for (size_t n = 1; n <= 3 * a; n += a / 2 + 1) {
			void *q = NULL;
			CHILD_CHECK(posix_memalign(&q, a, n) == 0, "posix_memalign(%zu, %zu)", a,
			            n);
			size_t u = malloc_usable_size(q);
			CHILD_CHECK(((uintptr_t)q & (a - 1)) == 0 && u >= n,
			            "posix_memalign(%zu, %zu) = %p, usable %zu", a, n, q, u);
			CHILD_CHECK(u == nallocx(n, MALLOCX_ALIGN(a)), "nallocx(%zu, align %zu)", n,
			            a);
			memset(q, 0x6d, u);
			sdallocx(q, n, MALLOCX_ALIGN(a));
		}
	}
	return 0;
}

/* Thread caches off, explicit caches included. */
static int
child_no_tcache(void) {
	bool on = true, yes = true, have_tcache = false;
	size_t sz = sizeof(on);
	mallctl("config.tcache", &have_tcache, &sz, NULL, 0);
	if (!have_tcache) {
		return 0;
	}
	CHILD_CHECK(mallctl("thread.tcache.enabled", &on, &sz, NULL, 0) == 0 && !on,
	            "thread.tcache.enabled reads %d", on);
	CHILD_CHECK(mallctl("thread.tcache.enabled", NULL, NULL, &yes, sizeof(yes)) == EPERM,
	            "turning the cache on");
	unsigned tc;
	sz = sizeof(tc);
	CHILD_CHECK(mallctl("tcache.create", &tc, &sz, NULL, 0) == 0, "tcache.create");
	for (int i = 0; i < 100; i++) {
		unsigned char *p = mallocx(64, MALLOCX_TCACHE(tc));
		CHILD_CHECK(first_not(p, 64, 0xa5) == 64, "mallocx through a tcache: not junk");
		memset(p, 0x12, 64);
		dallocx(p, MALLOCX_TCACHE(tc));
	}
	CHILD_CHECK(mallctl("tcache.destroy", NULL, NULL, &tc, sizeof(tc)) == 0, "destroy");
	return 0;
}

/* Death tests: print the block's address (flushed: abort loses stdio
 * buffers), then do the bad thing. */
static int
child_overflow(int where) {
	unsigned char *p = malloc(opaque(20));
	printf("%p\n", (void *)p);
	fflush(stdout);
	size_t u = malloc_usable_size(p);
	if (where > 0) {
		opaque_ptr(p)[u + 3] = 0x01;
	} else {
		opaque_ptr(p)[-2] = 0x02;
	}
	if (where == 2) {
		p = realloc(p, opaque(5000));
	}
	free(p);
	return 0;
}

/* Allocates 64 bytes, prints the address, frees them and writes `byte`
 * at offset `off` of the freed object. */
static void
write_after_free(size_t off, unsigned char byte) {
	unsigned char *p = malloc(opaque(64));
	printf("%p\n", (void *)p);
	fflush(stdout);
	free(p);
	opaque_ptr(p)[off] = byte;
}

static int
child_uaf(void) {
	write_after_free(5, 0x01);
	/* 4 KiB of quarantine: later frees push the object out. */
	for (int i = 0; i < 1000; i++) {
		free(keep(malloc(opaque(64))));
	}
	printf("not caught\n");
	return 0;
}

/* A write after free just before exit(): only the exit-time check of
 * the main thread's quarantine can see it. */
static int
child_uaf_exit(void) {
	write_after_free(63, 0x04);
	return 0;
}

static void *
uaf_thread(void *arg) {
	unsigned char *p = malloc(opaque(300));
	*(unsigned char **)arg = p;
	free(p);
	opaque_ptr(p)[299] = 0x03;
	return NULL;
}

static int
child_uaf_thread_exit(void) {
	unsigned char *p;
	pthread_t t;
	pthread_create(&t, NULL, uaf_thread, &p);
	pthread_join(t, NULL);
	printf("not caught\n");
	return 0;
}

static int
child_double_free(void) {
	unsigned char *p = malloc(opaque(48));
	printf("%p\n", (void *)p);
	fflush(stdout);
	free(p);
	free(opaque_ptr(p));
	printf("not caught\n");
	return 0;
}

static int
child_xmalloc(int how) {
	void *p = NULL;
	if (how == 0) {
		p = malloc(opaque(SIZE_MAX / 2));
	} else {
		p = calloc(opaque(SIZE_MAX / 2), opaque(4));
	}
	printf("returned %p\n", p);
	return 0;
}

static void *
drain_thread(void *arg) {
	(void)arg;
	for (int i = 0; i < 1000; i++) {
		free(keep(malloc(opaque(100 + (size_t)i))));
	}
	return NULL;
}

/* A thread's quarantine holds ~350 KB when it exits; all of it must be
 * freed then. */
static int
child_drain(void) {
	bool stats = test_stats_enabled();
	size_t before = stats ? test_stats_allocated("fill") : 0;
	pthread_t t;
	pthread_create(&t, NULL, drain_thread, NULL);
	pthread_join(t, NULL);
	size_t after = stats ? test_stats_allocated("fill") : 0;
	/* A 1 MiB quarantine would otherwise keep ~600 KB. */
	CHILD_CHECK(!stats || after <= before + 64 * 1024,
	            "allocated %zu before the thread, %zu after", before, after);
	return 0;
}

static int
child_fork(void) {
	for (int i = 0; i < 2000; i++) {
		free(keep(malloc(opaque(64 + (size_t)i % 500))));
	}
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 2000; i++) {
			unsigned char *p = malloc(opaque(64 + (size_t)i % 500));
			memset(p, 1, 64);
			free(p);
		}
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	CHILD_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "forked child status %#x", st);
	return 0;
}

/* Objects of an arena made by arenas.extend are not held back: resetting
 * the arena must not leave the quarantine with freed memory. */
static int
child_reset(void) {
	unsigned a;
	size_t sz = sizeof(a);
	CHILD_CHECK(mallctl("arenas.extend", &a, &sz, NULL, 0) == 0, "arenas.extend");
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	for (int i = 0; i < 100; i++) {
		dallocx(mallocx(opaque(64 + (size_t)i * 300), flags), flags);
	}
	char name[64];
	snprintf(name, sizeof(name), "arena.%u.reset", a);
	CHILD_CHECK(mallctl(name, NULL, NULL, NULL, 0) == 0, "%s", name);
	/* The arena's memory is handed out again, then everything the
	 * quarantine holds is pushed out and checked: nothing of the reset
	 * arena may be among it. */
	unsigned char *again[100];
	for (int i = 0; i < 100; i++) {
		size_t n = 64 + (size_t)i * 300;
		again[i] = mallocx(opaque(n), flags);
		memset(again[i], i + 1, n);
	}
	for (int i = 0; i < 1000; i++) {
		free(keep(malloc(opaque(1000))));
	}
	for (int i = 0; i < 100; i++) {
		size_t n = 64 + (size_t)i * 300;
		CHILD_CHECK(first_not(again[i], n, (unsigned char)(i + 1)) == n, "block %d changed",
		            i);
	}
	return 0;
}

static int
child_overflow_after(void) {
	return child_overflow(1);
}

static int
child_overflow_before(void) {
	return child_overflow(-1);
}

static int
child_overflow_realloc(void) {
	return child_overflow(2);
}

static int
child_xmalloc_malloc(void) {
	return child_xmalloc(0);
}

static int
child_xmalloc_calloc(void) {
	return child_xmalloc(1);
}

static int
child_main(const char *mode) {
	static const test_child_mode_t modes[] = {
	    {"opts", child_opts},
	    {"junk", child_junk},
	    {"junk_free", child_junk_free},
	    {"zero", child_zero},
	    {"redzone", child_redzone},
	    {"no_tcache", child_no_tcache},
	    {"uaf", child_uaf},
	    {"uaf_exit", child_uaf_exit},
	    {"uaf_thread_exit", child_uaf_thread_exit},
	    {"double_free", child_double_free},
	    {"drain", child_drain},
	    {"fork", child_fork},
	    {"reset", child_reset},
	    {"overflow", child_overflow_after},
	    {"underflow", child_overflow_before},
	    {"overflow_realloc", child_overflow_realloc},
	    {"xmalloc", child_xmalloc_malloc},
	    {"xmalloc_calloc", child_xmalloc_calloc},
	};
	return test_child_dispatch(mode, modes, sizeof(modes) / sizeof(modes[0]));
}

/* ---------------------------------------------------------------------- */
/* Parent. */

static void
skip_without_fill(void) {
	if (!have_fill) {
		print_message("# built with --disable-fill: skipped\n");
		skip();
	}
}

static void
run_ok(const char *conf, const char *mode) {
	test_child_t c;
	test_child_expect(conf, mode, true, &c);
}

/* Runs a death test: the child must die of SIGABRT after printing the
 * block's address, and stderr must be exactly the message built from it. */
static void
run_dies(const char *conf, const char *mode, const char *fmt_with_ptr) {
	test_child_t c;
	assert_true(test_child_run(conf, mode, &c));
	if (!(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT)) {
		fail_msg(
		    "child %s (MALLOC_CONF=%s): status %#x, not SIGABRT\nstdout: %s\nstderr: %s",
		    mode, conf, c.status, c.out, c.err);
	}
	void *p = NULL;
	char expect[512];
	if (strstr(fmt_with_ptr, "%p") != NULL) {
		assert_int_equal(sscanf(c.out, "%p", &p), 1);
		snprintf(expect, sizeof(expect), fmt_with_ptr, p);
	} else {
		snprintf(expect, sizeof(expect), "%s", fmt_with_ptr);
	}
	if (strcmp(c.err, expect) != 0) {
		fail_msg("child %s (MALLOC_CONF=%s): stderr\n  %s\nexpected\n  %s", mode, conf,
		         c.err, expect);
	}
}

static void
test_opts(void **state) {
	(void)state;
	test_child_t c;
	if (!have_fill) {
		/* The options parse but warn, and their nodes do not exist. */
		assert_true(test_child_run("junk:true", "opts", &c));
		assert_true(test_child_ok(&c));
		assert_string_equal(c.err,
		                    "<liballoc>: MALLOC_CONF: option junk is not compiled in "
		                    "(configure --disable-fill), ignored\n");
		assert_non_null(strstr(c.out, "errors 2 2 2 2 0 0 2\n"));
		assert_non_null(strstr(c.out, "fill=0 cx=0"));
		return;
	}
	static const struct {
		const char *conf;
		const char *out;
	} cases[] = {
	    {NULL, "junk=false zero=0 redzone=0 xmalloc=0 quarantine=0 fill=1 cx=1\n"},
	    {"junk:true,zero:true,redzone:true,xmalloc:true,quarantine:65536",
	     "junk=true zero=1 redzone=1 xmalloc=1 quarantine=65536 fill=1 cx=1\n"},
	    {"junk:alloc", "junk=alloc zero=0 redzone=0 xmalloc=0 quarantine=0 fill=1 cx=1\n"},
	    {"junk:free", "junk=free zero=0 redzone=0 xmalloc=0 quarantine=0 fill=1 cx=1\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_true(test_child_run(cases[i].conf, "opts", &c));
		assert_true(test_child_ok(&c));
		assert_string_equal(c.err, "");
		assert_non_null(strstr(c.out, "errors 0 0 0 0 0 0 0\n"));
		assert_non_null(strstr(c.out, cases[i].out));
	}
	/* A bad value warns and leaves the default. */
	assert_true(test_child_run("junk:maybe", "opts", &c));
	assert_true(test_child_ok(&c));
	assert_string_equal(c.err, "<liballoc>: MALLOC_CONF: invalid value \"maybe\" for option "
	                           "junk (expected one of false, true, alloc, free)\n");
	assert_non_null(strstr(c.out, "junk=false "));
}

static void
test_junk(void **state) {
	(void)state;
	skip_without_fill();
	run_ok("junk:true", "junk");
	run_ok("junk:alloc", "junk");
	run_ok("junk:free,quarantine:16777216", "junk_free");
	run_ok("junk:true,quarantine:16777216", "junk_free");
}

static void
test_zero(void **state) {
	(void)state;
	skip_without_fill();
	run_ok("zero:true", "zero");
	run_ok("zero:true,redzone:true", "zero");
}

static void
test_redzone(void **state) {
	(void)state;
	skip_without_fill();
	run_ok("redzone:true", "redzone");
	run_ok("redzone:true,junk:true,quarantine:1048576", "redzone");
}

static void
test_no_tcache(void **state) {
	(void)state;
	skip_without_fill();
	run_ok("junk:true", "no_tcache");
}

static void
test_redzone_corruption(void **state) {
	(void)state;
	skip_without_fill();
	/* malloc(20) has 20 rounded up to the quantum usable bytes (32, or
	 * 24 under an 8-byte quantum): 3 past them is in the trailing guard,
	 * -2 in the leading one. */
	size_t q = test_quantum(), usable = (20 + q - 1) & ~(q - 1);
	char after[160], before[160];
	snprintf(after, sizeof(after),
	         "<liballoc>: redzone corruption: object %%p of size %zu, byte at "
	         "offset %zu is 0x01 (expected 0xa5)\n",
	         usable, usable + 3);
	snprintf(before, sizeof(before),
	         "<liballoc>: redzone corruption: object %%p of size %zu, byte at "
	         "offset -2 is 0x02 (expected 0xa5)\n",
	         usable);
	run_dies("redzone:true", "overflow", after);
	run_dies("redzone:true", "underflow", before);
	run_dies("redzone:true", "overflow_realloc", after);
	run_dies("redzone:true,junk:true,quarantine:4096", "overflow", after);
}

static void
test_use_after_free(void **state) {
	(void)state;
	skip_without_fill();
	run_dies("junk:true,quarantine:4096", "uaf",
	         "<liballoc>: use after free: object %p of size 64 was written after free(): "
	         "byte at offset 5 is 0x01 (expected 0x5a)\n");
	run_dies("junk:true,redzone:true,quarantine:4096", "uaf",
	         "<liballoc>: use after free: object %p of size 64 was written after free(): "
	         "byte at offset 5 is 0x01 (expected 0x5a)\n");
	/* Held when the program exits: the atexit check finds it. */
	run_dies("junk:true,quarantine:4096", "uaf_exit",
	         "<liballoc>: use after free: object %p of size 64 was written after free(): "
	         "byte at offset 63 is 0x04 (expected 0x5a)\n");
	/* Held at thread exit: the drain finds it. The address is not
	 * printed; only the message's shape is checked. */
	test_child_t c;
	assert_true(test_child_run("quarantine:65536", "uaf_thread_exit", &c));
	assert_true(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT);
	assert_non_null(strstr(c.err, "<liballoc>: use after free: object 0x"));
	assert_non_null(strstr(c.err, "of size 320 was written after free(): byte at offset 299 "
	                              "is 0x03 (expected 0x5a)\n"));
	run_dies("quarantine:65536", "double_free",
	         "<liballoc>: free(): double free of %p (the object is in the quarantine)\n");
}

static void
test_quarantine_threads_fork(void **state) {
	(void)state;
	skip_without_fill();
	run_ok("quarantine:1048576", "drain");
	run_ok("junk:true,redzone:true,quarantine:1048576", "fork");
	run_ok("junk:true,redzone:true,quarantine:65536", "reset");
}

static void
test_xmalloc(void **state) {
	(void)state;
	skip_without_fill();
	char expect[256];
	snprintf(expect, sizeof(expect),
	         "<liballoc>: out of memory: allocation of %zu bytes failed (xmalloc:true)\n",
	         SIZE_MAX / 2);
	run_dies("xmalloc:true", "xmalloc", expect);
	snprintf(expect, sizeof(expect),
	         "<liballoc>: out of memory: allocation of %zu bytes failed (xmalloc:true)\n",
	         SIZE_MAX);
	run_dies("xmalloc:true", "xmalloc_calloc", expect);
	/* Without it, NULL. */
	test_child_t c;
	assert_true(test_child_run("xmalloc:false", "xmalloc", &c));
	assert_true(test_child_ok(&c));
	assert_string_equal(c.out, "returned (nil)\n");
}

static void
test_abort(void **state) {
	(void)state;
	run_dies("abort:true,junk:maybe", "opts",
	         "<liballoc>: MALLOC_CONF: invalid value \"maybe\" for option junk (expected one "
	         "of false, true, alloc, free)\n");
}

int
main(int argc, char **argv) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("the process allocator has no mallctl\n");
		return 77;
	}
	const char *built_in = "";
	size_t sz = sizeof(have_fill);
	if (mallctl("config.fill", &have_fill, &sz, NULL, 0) != 0) {
		printf("mallctl config.fill failed\n");
		return 1;
	}
	sz = sizeof(built_in);
	if (mallctl("config.malloc_conf", &built_in, &sz, NULL, 0) != 0 || built_in[0] != '\0') {
		printf("built with options built in: skipped\n");
		return 77;
	}
	if (argc == 3 && strcmp(argv[1], "child") == 0) {
		return child_main(argv[2]);
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_opts),           cmocka_unit_test(test_junk),
	    cmocka_unit_test(test_zero),           cmocka_unit_test(test_redzone),
	    cmocka_unit_test(test_no_tcache),      cmocka_unit_test(test_redzone_corruption),
	    cmocka_unit_test(test_use_after_free), cmocka_unit_test(test_quarantine_threads_fork),
	    cmocka_unit_test(test_xmalloc),        cmocka_unit_test(test_abort),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
