/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Integration test of the run-time options: MALLOC_CONF and the program's
 * own malloc_conf, seen from outside the library.
 *
 * Each case re-executes this program (/proc/self/exe) as a child with
 * MALLOC_CONF set, collects its stdout, stderr and exit status, and checks:
 * no options, no output; a bad pair prints exactly one warning and the
 * program goes on; abort_conf:true or abort:true with a bad pair aborts
 * (also when abort_conf comes after the bad pair); narenas and
 * percpu_arena change how many arenas threads are spread over (counted with
 * mallocx(MALLOCX_ARENA(i)), which fails for an arena that was never
 * created); tcache:false makes a block freed by one thread reusable by
 * another at once (always so in a build without thread caches, where
 * opt.tcache and opt.lg_tcache_max read ENOENT); the program's malloc_conf
 * below applies and MALLOC_CONF overrides it; and, when the library exports
 * mallctl, every value reads back through opt.*. A build with options built
 * in (configure --with-malloc-conf) skips, since they would change every
 * result.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
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
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "test_child.h"

/*
 * The program's options, read at start-up like MALLOC_CONF but before it.
 * (Linked with -lalloc, the executable exports this definition, so the
 * library sees it instead of its own weak NULL.)
 */
const char *ALLOC_API(malloc_conf) = "narenas:3,percpu_arena:disabled";

/* The standard functions under the build's names (alloc.h declares them
 * only when ALLOC_PREFIXED_BUILD is defined; the same declarations as
 * <stdlib.h>'s when there is no prefix). */
void *ALLOC_API(malloc)(size_t size);
void *ALLOC_API(calloc)(size_t num, size_t size);
void *ALLOC_API(realloc)(void *ptr, size_t size);
void ALLOC_API(free)(void *ptr);

#define STR2(x) #x
#define STR(x)  STR2(x)

/* ---------------------------------------------------------------------- */
/* The child side. */

#define CHILD_THREADS 5

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static void *
thread_alloc(void *arg) {
	(void)arg;
	void *p = ALLOC_API(malloc)(64);
	if (p == NULL) {
		abort();
	}
	ALLOC_API(free)(p);
	return NULL;
}

static void
run_thread(void *(*fn)(void *), void *arg) {
	pthread_t t;
	if (pthread_create(&t, NULL, fn, arg) != 0 || pthread_join(t, NULL) != 0) {
		abort();
	}
}

/* Allocates from a few threads in turn, then prints how many arenas exist
 * (0..n-1 all answer mallocx(MALLOCX_ARENA(i)), n does not). */
static int
child_arenas(void) {
	void *p = ALLOC_API(malloc)(64);
	for (int i = 0; i < CHILD_THREADS; i++) {
		run_thread(thread_alloc, NULL);
	}
	unsigned n = 0;
	while (n < 64) {
		void *q = ALLOC_API(mallocx)(64, MALLOCX_ARENA(n));
		if (q == NULL) {
			break;
		}
		ALLOC_API(dallocx)(q, 0);
		n++;
	}
	ALLOC_API(free)(p);
	printf("arenas %u\n", n);
	return 0;
}

#define TCACHE_SIZE  96
#define TCACHE_TRIES 512

static void *tcache_freed;

/* Allocates up to TCACHE_TRIES blocks; returns non-NULL if one of them is
 * the block main freed. */
static void *
thread_find_freed(void *arg) {
	(void)arg;
	static void *blocks[TCACHE_TRIES];
	void *found = NULL;
	int n = 0;
	for (; n < TCACHE_TRIES && found == NULL; n++) {
		blocks[n] = ALLOC_API(malloc)(TCACHE_SIZE);
		if (blocks[n] == tcache_freed) {
			found = blocks[n];
		}
	}
	while (n-- > 0) {
		ALLOC_API(free)(blocks[n]);
	}
	return found;
}

/*
 * main frees a block (keeping a neighbour alive so its run stays), then
 * another thread on the same arena allocates: without thread caches the
 * block is back in the arena and the thread gets it; with them it sits in
 * main's cache, out of the other thread's reach.
 */
static int
test_child_tcache(void) {
	void *keep = ALLOC_API(malloc)(TCACHE_SIZE);
	tcache_freed = ALLOC_API(malloc)(TCACHE_SIZE);
	ALLOC_API(free)(tcache_freed);
	pthread_t t;
	void *found;
	if (pthread_create(&t, NULL, thread_find_freed, NULL) != 0 ||
	    pthread_join(t, &found) != 0) {
		abort();
	}
	ALLOC_API(free)(keep);
	printf("reuse %s\n", found != NULL ? "yes" : "no");
	return 0;
}

static int
child_plain(void) {
	char *p = ALLOC_API(malloc)(100);
	char *q = ALLOC_API(calloc)(10, 1000);
	if (p == NULL || q == NULL) {
		return 1;
	}
	memset(p, 1, 100);
	p = ALLOC_API(realloc)(p, 100000);
	void *r = ALLOC_API(mallocx)(5 << 20, MALLOCX_ZERO);
	if (p == NULL || r == NULL) {
		return 1;
	}
	ALLOC_API(free)(p);
	ALLOC_API(free)(q);
	ALLOC_API(dallocx)(r, 0);
	printf("ok\n");
	return 0;
}

/* Prints opt.* values through mallctl, or "no-mallctl". */
static int
child_mallctl(void) {
	mallctl_fn mallctl = (mallctl_fn)(uintptr_t)dlsym(RTLD_DEFAULT, STR(ALLOC_API(mallctl)));
	if (mallctl == NULL) {
		printf("no-mallctl\n");
		return 0;
	}
	unsigned u;
	bool b;
	size_t z;
	ssize_t s;
	const char *str;
	size_t len;
#define READ(name, var, fmt, cast)                                  \
	do {                                                        \
		len = sizeof(var);                                  \
		int err = mallctl(name, &var, &len, NULL, 0);       \
		if (err != 0) {                                     \
			printf("%s=error%d ", name + 4, err);       \
		} else {                                            \
			printf("%s=" fmt " ", name + 4, (cast)var); \
		}                                                   \
	} while (0)
	READ("opt.narenas", u, "%u", unsigned);
	READ("opt.percpu_arena", str, "%s", const char *);
	READ("opt.tcache", b, "%d", int);
	READ("opt.lg_tcache_max", z, "%zu", size_t);
	READ("opt.decay_time", s, "%zd", ssize_t);
	READ("opt.lg_dirty_mult", s, "%zd", ssize_t);
	READ("opt.purge", str, "%s", const char *);
	READ("opt.abort_conf", b, "%d", int);
	READ("opt.stats_print", b, "%d", int);
#undef READ
	printf("\n");
	return 0;
}

static int
child_main(const char *mode) {
	if (strcmp(mode, "plain") == 0) {
		return child_plain();
	}
	if (strcmp(mode, "arenas") == 0) {
		return child_arenas();
	}
	if (strcmp(mode, "tcache") == 0) {
		return test_child_tcache();
	}
	if (strcmp(mode, "mallctl") == 0) {
		return child_mallctl();
	}
	fprintf(stderr, "unknown child mode %s\n", mode);
	return 2;
}

/* ---------------------------------------------------------------------- */
/* The parent side. */

static void
expect_exit0(const test_child_t *c, const char *conf) {
	if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0) {
		fail_msg("MALLOC_CONF=%s: status 0x%x\nstdout:\n%s\nstderr:\n%s", conf, c->status,
		         c->out, c->err);
	}
}

static void
expect_abort(const test_child_t *c, const char *conf) {
	if (!WIFSIGNALED(c->status) || WTERMSIG(c->status) != SIGABRT) {
		fail_msg("MALLOC_CONF=%s: expected SIGABRT, status 0x%x\nstdout:\n%s\nstderr:\n%s",
		         conf, c->status, c->out, c->err);
	}
}

static unsigned
count_lines(const char *s) {
	unsigned n = 0;
	for (; *s != '\0'; s++) {
		n += *s == '\n';
	}
	return n;
}

static test_child_t child;

/* Options built in with configure --with-malloc-conf (read through
 * mallctl config.malloc_conf when exported) would change every result
 * below: the tests then skip. */
static const char *built_in_conf = "";

/* Whether thread caches are built in (mallctl config.tcache; true when
 * the library has no mallctl). */
static bool have_tcache = true;

static void
skip_if_built_in_conf(void) {
	if (built_in_conf[0] != '\0') {
		print_message("# built with --with-malloc-conf=\"%s\": skipped\n", built_in_conf);
		skip();
	}
}

static void
test_no_options(void **state) {
	(void)state;
	skip_if_built_in_conf();
	assert_true(test_child_run(NULL, "plain", &child));
	expect_exit0(&child, "(unset)");
	assert_string_equal(child.out, "ok\n");
	assert_string_equal(child.err, "");
	assert_true(test_child_run("", "plain", &child));
	expect_exit0(&child, "");
	assert_string_equal(child.err, "");
	assert_true(test_child_run("narenas:2,tcache:false,decay_time:0", "plain", &child));
	expect_exit0(&child, "narenas:2,tcache:false,decay_time:0");
	assert_string_equal(child.out, "ok\n");
	assert_string_equal(child.err, "");
}

static void
test_bad_pair_warns_once(void **state) {
	(void)state;
	skip_if_built_in_conf();
	assert_true(test_child_run("narenas:abc", "plain", &child));
	expect_exit0(&child, "narenas:abc");
	assert_string_equal(child.out, "ok\n");
	assert_string_equal(child.err, "<liballoc>: MALLOC_CONF: invalid value \"abc\" for option "
	                               "narenas (expected an unsigned integer in [1, 4096])\n");

	/* Two bad pairs, two lines; the good one in between applies. */
	const char *conf = "foo:1,narenas:2,tcache:maybe";
	assert_true(test_child_run(conf, "arenas", &child));
	expect_exit0(&child, conf);
	assert_string_equal(child.out, "arenas 2\n");
	assert_int_equal(count_lines(child.err), 2);
	assert_non_null(strstr(child.err, "<liballoc>: MALLOC_CONF: unknown option \"foo\""));
	assert_non_null(strstr(child.err, "invalid value \"maybe\" for option tcache"));

	/* Malformed strings: one line per bad piece. */
	assert_true(test_child_run("narenas,,x", "plain", &child));
	expect_exit0(&child, "narenas,,x");
	assert_int_equal(count_lines(child.err), 3);
	assert_true(test_child_run("narenas:2,", "plain", &child));
	expect_exit0(&child, "narenas:2,");
	assert_string_equal(child.err, "<liballoc>: MALLOC_CONF: options end with a comma\n");
}

static void
test_abort_conf(void **state) {
	(void)state;
	skip_if_built_in_conf();
	const char *conf = "abort_conf:true,narenas:abc";
	assert_true(test_child_run(conf, "plain", &child));
	expect_abort(&child, conf);
	assert_string_equal(child.out, "");
	assert_string_equal(child.err, "<liballoc>: MALLOC_CONF: invalid value \"abc\" for option "
	                               "narenas (expected an unsigned integer in [1, 4096])\n");

	conf = "narenas:abc,abort_conf:true";
	assert_true(test_child_run(conf, "plain", &child));
	expect_abort(&child, conf);
	assert_int_equal(count_lines(child.err), 2);
	assert_non_null(strstr(child.err, "aborting: 1 invalid option (see above)"));

	conf = "abort:true,bogus:1";
	assert_true(test_child_run(conf, "plain", &child));
	expect_abort(&child, conf);
	assert_string_equal(child.err,
	                    "<liballoc>: MALLOC_CONF: unknown option \"bogus\" (value \"1\")\n");

	conf = "abort_conf:true,narenas:2";
	assert_true(test_child_run(conf, "plain", &child));
	expect_exit0(&child, conf);
	assert_string_equal(child.err, "");
}

static void
test_narenas(void **state) {
	(void)state;
	skip_if_built_in_conf();
	/* malloc_conf above: narenas:3, percpu_arena:disabled. */
	assert_true(test_child_run(NULL, "arenas", &child));
	expect_exit0(&child, "(unset)");
	assert_string_equal(child.out, "arenas 3\n");

	static const struct {
		const char *conf;
		const char *out;
	} cases[] = {
	    {"narenas:1", "arenas 1\n"},
	    {"narenas:2", "arenas 2\n"},
	    {"narenas:4", "arenas 4\n"},
	    {"narenas:2,narenas:5", "arenas 5\n"},
	    {"percpu_arena:percpu,narenas:1", "arenas 1\n"},
	    {"narenas:1,percpu_arena:phycpu", "arenas 1\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_true(test_child_run(cases[i].conf, "arenas", &child));
		expect_exit0(&child, cases[i].conf);
		assert_string_equal(child.err, "");
		if (strcmp(child.out, cases[i].out) != 0) {
			fail_msg("MALLOC_CONF=%s: %s, expected %s", cases[i].conf, child.out,
			         cases[i].out);
		}
	}
}

static void
test_tcache(void **state) {
	(void)state;
	skip_if_built_in_conf();
	/* Without thread caches built in (configure --disable-tcache) the
	 * option is accepted but every free goes straight to the arena. */
	const char *cached = have_tcache ? "reuse no\n" : "reuse yes\n";
	assert_true(test_child_run("narenas:1", "tcache", &child));
	expect_exit0(&child, "narenas:1");
	assert_string_equal(child.out, cached);
	assert_true(test_child_run("narenas:1,tcache:true", "tcache", &child));
	expect_exit0(&child, "narenas:1,tcache:true");
	assert_string_equal(child.out, cached);
	assert_string_equal(child.err, "");
	assert_true(test_child_run("narenas:1,tcache:false", "tcache", &child));
	expect_exit0(&child, "narenas:1,tcache:false");
	assert_string_equal(child.out, "reuse yes\n");
	assert_string_equal(child.err, "");
}

static void
test_mallctl_reads_back(void **state) {
	(void)state;
	skip_if_built_in_conf();
	assert_true(test_child_run(NULL, "mallctl", &child));
	expect_exit0(&child, "(unset)");
	if (strcmp(child.out, "no-mallctl\n") == 0) {
		print_message("# the library does not export mallctl: skipped\n");
		skip();
	}
	/* The program's malloc_conf and the documented defaults. Without
	 * thread caches built in, opt.tcache and opt.lg_tcache_max do not
	 * exist (ENOENT, 2), as in jemalloc. */
	if (have_tcache) {
		assert_string_equal(child.out, "narenas=3 percpu_arena=disabled tcache=1 "
		                               "lg_tcache_max=15 decay_time=10 lg_dirty_mult=3 "
		                               "purge=decay abort_conf=0 stats_print=0 \n");
	} else {
		assert_string_equal(child.out, "narenas=3 percpu_arena=disabled tcache=error2 "
		                               "lg_tcache_max=error2 decay_time=10 lg_dirty_mult=3 "
		                               "purge=decay abort_conf=0 stats_print=0 \n");
	}

	const char *conf = "narenas:2,percpu_arena:phycpu,tcache:false,lg_tcache_max:12,"
	                   "decay_time:7,lg_dirty_mult:5,purge:ratio,abort_conf:true";
	assert_true(test_child_run(conf, "mallctl", &child));
	expect_exit0(&child, conf);
	assert_string_equal(child.err, "");
	if (have_tcache) {
		assert_string_equal(child.out, "narenas=2 percpu_arena=phycpu tcache=0 "
		                               "lg_tcache_max=12 decay_time=7 lg_dirty_mult=5 "
		                               "purge=ratio abort_conf=1 stats_print=0 \n");
	} else {
		assert_string_equal(child.out, "narenas=2 percpu_arena=phycpu tcache=error2 "
		                               "lg_tcache_max=error2 decay_time=7 lg_dirty_mult=5 "
		                               "purge=ratio abort_conf=1 stats_print=0 \n");
	}

	/* jemalloc 5 aliases. */
	conf = "dirty_decay_ms:3000,tcache_max:65536";
	assert_true(test_child_run(conf, "mallctl", &child));
	expect_exit0(&child, conf);
	assert_string_equal(child.err, "");
	assert_non_null(strstr(child.out, " decay_time=3 "));
	if (have_tcache) {
		assert_non_null(strstr(child.out, " lg_tcache_max=16 "));
	}
}

int
main(int argc, char **argv) {
	if (argc == 3 && strcmp(argv[1], "child") == 0) {
		return child_main(argv[2]);
	}
	mallctl_fn mallctl = (mallctl_fn)(uintptr_t)dlsym(RTLD_DEFAULT, STR(ALLOC_API(mallctl)));
	size_t len = sizeof(built_in_conf);
	if (mallctl != NULL && mallctl("config.malloc_conf", &built_in_conf, &len, NULL, 0) != 0) {
		built_in_conf = "";
	}
	len = sizeof(have_tcache);
	if (mallctl != NULL && mallctl("config.tcache", &have_tcache, &len, NULL, 0) != 0) {
		have_tcache = true;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_options), cmocka_unit_test(test_bad_pair_warns_once),
	    cmocka_unit_test(test_abort_conf), cmocka_unit_test(test_narenas),
	    cmocka_unit_test(test_tcache),     cmocka_unit_test(test_mallctl_reads_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
