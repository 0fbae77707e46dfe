/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Invalid and double frees. The contract: they are detected where that is
 * cheap and reported with one line on stderr, then abort(); never silent
 * corruption of the allocator's metadata.
 *
 * Each case runs in a forked child with stderr captured. After the bad call
 * the child probes the heap: it allocates blocks of the affected size and
 * checks that none is handed out twice and none lies inside a block that is
 * still live; it exits 3 if the heap is corrupted, 0 if it is consistent.
 * Whatever happens is printed, one line per case.
 *
 * On liballoc every strict case below must end in SIGABRT with one line on
 * stderr that says what went wrong ("double free", "invalid pointer",
 * "size") and names the pointer: double frees of small, large and huge
 * blocks, immediate or with other frees in between (the thread cache's key,
 * doc/design.md "Bad frees"), also once the first copy left the cache;
 * free/realloc of pointers that never came from malloc (stack, static
 * data, an mmap'ed chunk, an unmapped address: the chunk registry says
 * they are in no arena chunk) and of pointers into the middle of small,
 * large and huge blocks (the region index), and sdallocx with the size of
 * another class. On other allocators (glibc, jemalloc) the child may also
 * die of SIGSEGV or carry on, but must never leave the heap corrupted;
 * cases marked "only reported" print what happened without failing there
 * (glibc and jemalloc miss some of them).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_check.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { EXIT_CONSISTENT = 0, EXIT_CORRUPTED = 3 };

static int
allocator_is_liballoc(void) {
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	if (sym == NULL || !dladdr(sym, &info) || info.dli_fname == NULL)
		return 0;
	const char *base = strrchr(info.dli_fname, '/');
	base = base ? base + 1 : info.dli_fname;
	return strncmp(base, "liballoc", 8) == 0;
}

static void *
opaque_ptr(void *p) {
	void *volatile v = p;
	return v;
}

/* Shared with the parent (mapped before the fork): the pointer the case
 * passes wrongly, which liballoc's message must name. */
static volatile uintptr_t *bad_ptr;

static void *
bad(void *p) {
	*bad_ptr = (uintptr_t)p;
	return opaque_ptr(p);
}

/*
 * Allocates 256 blocks of each given size and checks that no pointer comes
 * twice and none falls in [live, live + live_size). Returns the exit code.
 */
static int
probe_heap(const size_t *sizes, int nsizes, const void *live, size_t live_size) {
	enum { N = 256 };
	static void *got[8][N];
	for (int s = 0; s < nsizes; s++) {
		for (int i = 0; i < N; i++) {
			got[s][i] = malloc(sizes[s]);
			if (got[s][i] == NULL)
				return EXIT_CORRUPTED;
			const char *g = got[s][i];
			if (live != NULL && g >= (const char *)live &&
			    g < (const char *)live + live_size)
				return EXIT_CORRUPTED;
			for (int t = 0; t <= s; t++) {
				for (int j = 0; j < (t == s ? i : N); j++) {
					if (got[t][j] == got[s][i])
						return EXIT_CORRUPTED;
				}
			}
		}
	}
	return EXIT_CONSISTENT;
}

static int
case_double_free_small(void) {
	char *p = malloc(100);
	memset(p, 1, 100);
	void *again = bad(p);
	free(p);
	free(again);
	static const size_t sizes[] = {100};
	return probe_heap(sizes, 1, NULL, 0);
}

static int
case_double_free_small_later(void) {
	/* Another free in between: not cheap to catch, but must not corrupt silently. */
	char *p = malloc(100), *q = malloc(100);
	void *again = bad(p);
	free(p);
	free(q);
	free(again);
	static const size_t sizes[] = {100};
	return probe_heap(sizes, 1, NULL, 0);
}

static int
case_double_free_large(void) {
	char *p = malloc(40 * KiB);
	memset(p, 1, 40 * KiB);
	void *again = bad(p);
	free(p);
	free(again);
	static const size_t sizes[] = {40 * KiB};
	return probe_heap(sizes, 1, NULL, 0);
}

static int
case_double_free_huge(void) {
	char *p = malloc(3 * MiB);
	memset(p, 1, 3 * MiB);
	void *again = bad(p);
	free(p);
	free(again);
	static const size_t sizes[] = {3 * MiB};
	return probe_heap(sizes, 1, NULL, 0);
}

static int
case_free_stack(void) {
	char buf[64];
	memset(buf, 0, sizeof(buf));
	free(bad(buf + 16));
	static const size_t sizes[] = {8, 16, 48};
	return probe_heap(sizes, 3, buf, sizeof(buf));
}

static char static_area[64 * KiB];

static int
case_free_static(void) {
	free(bad(static_area + 4096 + 64));
	static const size_t sizes[] = {8, 16, 48};
	return probe_heap(sizes, 3, static_area, sizeof(static_area));
}

static int
case_free_foreign_chunk(void) {
	/* A chunk-aligned address in memory the program mapped itself. */
	size_t len = 8 * MiB;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return EXIT_CONSISTENT;
	char *aligned = (char *)(((uintptr_t)m + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	free(bad(aligned));
	static const size_t sizes[] = {8, 3 * MiB};
	return probe_heap(sizes, 2, m, len);
}

static int
case_free_foreign_inside_chunk(void) {
	/* Not chunk-aligned, in memory the allocator never owned (zeroed and 0xff-filled). */
	size_t len = 8 * MiB;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return EXIT_CONSISTENT;
	char *aligned = (char *)(((uintptr_t)m + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	memset(aligned, 0xff, 2 * MiB);
	free(bad(aligned + 5 * 4096 + 64));
	static const size_t sizes[] = {8, 16, 48, 4096};
	return probe_heap(sizes, 4, m, len);
}

static int
case_free_large_interior(void) {
	char *p = malloc(40 * KiB);
	memset(p, 1, 40 * KiB);
	free(bad(p + 8 * KiB));
	static const size_t sizes[] = {8, 40 * KiB, 8 * KiB};
	return probe_heap(sizes, 3, p, 40 * KiB);
}

static int
case_free_huge_interior(void) {
	char *p = malloc(3 * MiB);
	memset(p, 0, 3 * MiB);
	free(bad(p + 2 * 4096 + 16));
	static const size_t sizes[] = {8, 16, 112};
	return probe_heap(sizes, 3, p, 3 * MiB);
}

static int
case_free_huge_interior_dirty(void) {
	char *p = malloc(3 * MiB);
	memset(p, 0xff, 3 * MiB);
	free(bad(p + 2 * 4096 + 16));
	static const size_t sizes[] = {8, 16, 112};
	return probe_heap(sizes, 3, p, 3 * MiB);
}

static int
case_realloc_stack(void) {
	char buf[64];
	memset(buf, 0, sizeof(buf));
	void *q = realloc(bad(buf + 16), 200);
	(void)q;
	static const size_t sizes[] = {8, 16, 48};
	return probe_heap(sizes, 3, buf, sizeof(buf));
}

static int
case_free_small_interior(void) {
	char *p = malloc(100);
	memset(p, 0, 100);
	free(bad(p + 16));
	static const size_t sizes[] = {100, 112};
	return probe_heap(sizes, 2, p, 100);
}

/* sdallocx of malloc(100) with the size `wrong`, of another class: freeing
 * with it would corrupt the bin of that class. Only on an allocator that
 * has sdallocx. */
static int
sdallocx_wrong_size(size_t wrong) {
	void (*sdallocx_fn)(void *, size_t, int) =
	    (void (*)(void *, size_t, int))dlsym(RTLD_DEFAULT, "sdallocx");
	if (sdallocx_fn == NULL)
		return EXIT_CONSISTENT;
	char *p = malloc(100);
	memset(p, 1, 100);
	sdallocx_fn(bad(p), wrong, 0);
	const size_t sizes[] = {100, wrong};
	return probe_heap(sizes, 2, NULL, 0);
}

static int
case_sdallocx_wrong_size(void) {
	return sdallocx_wrong_size(5000);
}

/* A size whose class free's hit path serves: sdallocx checks it there too,
 * before the cache takes the block. */
static int
case_sdallocx_wrong_small_size(void) {
	return sdallocx_wrong_size(200);
}

/* The sequence of issue #14: p = malloc(32); q = malloc(32); free(p);
 * free(q); free(p). */
static int
case_double_free_small_32_later(void) {
	char *p = malloc(32), *q = malloc(32);
	void *again = bad(p);
	free(p);
	free(q);
	free(again);
	static const size_t sizes[] = {32};
	return probe_heap(sizes, 1, NULL, 0);
}

/* The first copy left the thread cache (pushed out by 400 other frees of
 * the class) before the second free; its neighbour q stays live, so its
 * run does too, and only the run's bitmap knows it is free. */
static int
case_double_free_small_flushed(void) {
	enum { N = 400 };
	static void *others[N];
	char *p = malloc(48), *q = malloc(48);
	memset(q, 1, 48);
	for (int i = 0; i < N; i++)
		others[i] = malloc(48);
	void *again = bad(p);
	free(p);
	for (int i = 0; i < N; i++)
		free(others[i]);
	free(again);
	static const size_t sizes[] = {48};
	return probe_heap(sizes, 1, NULL, 0);
}

/* A large block the thread cache holds (8 KiB), freed twice with another
 * free in between. */
static int
case_double_free_large_later(void) {
	char *p = malloc(8 * KiB), *q = malloc(8 * KiB);
	memset(p, 1, 8 * KiB);
	void *again = bad(p);
	free(p);
	free(q);
	free(again);
	static const size_t sizes[] = {8 * KiB};
	return probe_heap(sizes, 1, NULL, 0);
}

static int
case_double_free_large_40k_later(void) {
	char *p = malloc(40 * KiB), *q = malloc(40 * KiB);
	void *again = bad(p);
	free(p);
	free(q);
	free(again);
	static const size_t sizes[] = {40 * KiB};
	return probe_heap(sizes, 1, NULL, 0);
}

/* The expression of issue #14: free((char *)malloc(64) + 16). */
static int
case_free_small_64_interior(void) {
	char *p = malloc(64);
	memset(p, 0, 64);
	free(bad(p + 16));
	static const size_t sizes[] = {64};
	return probe_heap(sizes, 1, p, 64);
}

static int
case_free_small_48_interior(void) {
	char *p = malloc(48);
	memset(p, 0, 48);
	free(bad(p + 32));
	static const size_t sizes[] = {48};
	return probe_heap(sizes, 1, p, 48);
}

/* Inside the first page of a large block, cached (8 KiB) or not (40 KiB). */
static int
case_free_large_cached_interior(void) {
	char *p = malloc(8 * KiB);
	memset(p, 0, 8 * KiB);
	free(bad(p + 16));
	static const size_t sizes[] = {8 * KiB, 16};
	return probe_heap(sizes, 2, p, 8 * KiB);
}

static int
case_free_large_first_page_interior(void) {
	char *p = malloc(40 * KiB);
	memset(p, 0, 40 * KiB);
	free(bad(p + 64));
	static const size_t sizes[] = {40 * KiB, 64};
	return probe_heap(sizes, 2, p, 40 * KiB);
}

/* An address whose pages were unmapped. */
static int
case_free_unmapped(void) {
	size_t len = 64 * KiB;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return EXIT_CONSISTENT;
	munmap(m, len);
	free(bad(m + 4096 + 16));
	static const size_t sizes[] = {8, 16, 48};
	return probe_heap(sizes, 3, NULL, 0);
}

struct outcome {
	int status;
	char err[512];
};

/* Runs fn in a child with stderr captured; no core files. */
static void
run_child(int (*fn)(void), struct outcome *out) {
	int fds[2];
	CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Default actions: cmocka's handlers would resume the test runner here. */
		static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM};
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		close(fds[0]);
		dup2(fds[1], 2);
		*bad_ptr = 0;
		alarm(20);
		_exit(fn());
	}
	close(fds[1]);
	size_t len = 0;
	ssize_t n;
	while ((n = read(fds[0], out->err + len, sizeof(out->err) - 1 - len)) > 0)
		len += (size_t)n;
	out->err[len] = '\0';
	close(fds[0]);
	while (waitpid(pid, &out->status, 0) < 0 && errno == EINTR) {
	}
}

static const char *
describe(const struct outcome *o, char *buf, size_t len) {
	if (WIFEXITED(o->status))
		snprintf(buf, len, "exited with %d%s", WEXITSTATUS(o->status),
		         WEXITSTATUS(o->status) == EXIT_CORRUPTED
		             ? " after malloc returned a duplicate or overlapping block"
		             : " without reporting anything");
	else
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(o->status),
		         strsignal(WTERMSIG(o->status)));
	return buf;
}

/* Whether text contains one of the '|'-separated alternatives of what. */
static int
says(const char *text, const char *what) {
	char alt[64];
	while (*what != '\0') {
		size_t n = strcspn(what, "|");
		snprintf(alt, sizeof(alt), "%.*s", (int)n, what);
		if (strstr(text, alt) != NULL)
			return 1;
		what += n + (what[n] == '|');
	}
	return 0;
}

/*
 * strict (STRICT): the heap must not be left corrupted (any allocator), and
 * on liballoc the child must abort with a message. LIBALLOC: the same on
 * liballoc, only reported on other allocators (glibc or jemalloc miss some
 * of these).
 */
enum { REPORTED = 0, STRICT = 1, LIBALLOC = 2 };

static void
expect_abort(const char *name, int (*fn)(void), int strict, const char *what_msg) {
	struct outcome o;
	char what[160];
	run_child(fn, &o);
	describe(&o, what, sizeof(what));
	size_t l = strlen(o.err);
	while (l > 0 && o.err[l - 1] == '\n')
		o.err[--l] = '\0';
	if (strict == LIBALLOC && !allocator_is_liballoc())
		strict = REPORTED;
	print_message("# %-30s %s%s%s%s\n", name, what, l ? ": " : "", o.err,
	              strict ? "" : " (only reported)");
	if (!strict)
		return;
	CHECK(!(WIFEXITED(o.status) && WEXITSTATUS(o.status) == EXIT_CORRUPTED),
	      "%s: silent heap corruption: %s", name, what);
	if (allocator_is_liballoc()) {
		CHECK(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT,
		      "%s: liballoc must report and abort(), but the child %s", name, what);
		CHECK(l > 0, "%s: aborted without a message on stderr", name);
		CHECK(strchr(o.err, '\n') == NULL, "%s: the report is more than one line: %s", name,
		      o.err);
		CHECK(says(o.err, what_msg), "%s: the report does not say \"%s\": %s", name,
		      what_msg, o.err);
		char ptr_text[32];
		snprintf(ptr_text, sizeof(ptr_text), "%p", (void *)*bad_ptr);
		CHECK(*bad_ptr != 0 && strstr(o.err, ptr_text) != NULL,
		      "%s: the report does not name the pointer %s: %s", name, ptr_text, o.err);
	}
}

struct invalid_case {
	const char *name;
	int (*fn)(void);
	int strict;
	/* What liballoc's report must say. */
	const char *what;
};

/* Without a thread cache (tcache:false) a small double free reaches its
 * run, whose pages may be gone already: "or already freed". (With
 * MALLOC_CONF=quarantine:N, the quarantine reports a double free.) */
static const char DOUBLE[] = "double free|already freed";
static const char INVALID[] = "invalid pointer";
/* Under opt.redzone an interior pointer of a small or large block finds
 * the redzone it points past written over: reported as redzone corruption
 * at that pointer. */
static const char INTERIOR[] = "invalid pointer|redzone corruption";

static struct invalid_case cases[] = {
    {"double free, small", case_double_free_small, STRICT, DOUBLE},
    {"double free, small, later", case_double_free_small_later, LIBALLOC, DOUBLE},
    {"double free, 32 B, later", case_double_free_small_32_later, LIBALLOC, DOUBLE},
    {"double free, small, flushed", case_double_free_small_flushed, LIBALLOC, DOUBLE},
    /* A freed large or huge block leaves no trace to tell a double free
     * from a wild pointer: the report says it is one or the other. */
    {"double free, large", case_double_free_large, STRICT, "freed|double free"},
    {"double free, 8 KiB, later", case_double_free_large_later, LIBALLOC, "freed|double free"},
    {"double free, 40 KiB, later", case_double_free_large_40k_later, LIBALLOC, "freed|double free"},
    {"double free, huge", case_double_free_huge, STRICT, "freed|double free"},
    {"free(stack)", case_free_stack, STRICT, INVALID},
    {"free(static data)", case_free_static, STRICT, INVALID},
    {"free(unmapped)", case_free_unmapped, LIBALLOC, INVALID},
    {"free(foreign chunk)", case_free_foreign_chunk, STRICT, INVALID},
    {"free(inside foreign chunk)", case_free_foreign_inside_chunk, STRICT, INVALID},
    {"realloc(stack)", case_realloc_stack, STRICT, INVALID},
    {"free(large + 8 KiB)", case_free_large_interior, STRICT, INVALID},
    {"free(8 KiB block + 16)", case_free_large_cached_interior, LIBALLOC, INTERIOR},
    {"free(40 KiB block + 64)", case_free_large_first_page_interior, LIBALLOC, INTERIOR},
    {"free(huge + 8 KiB + 16)", case_free_huge_interior, STRICT, INVALID},
    {"free(dirty huge + 8 KiB + 16)", case_free_huge_interior_dirty, STRICT, INVALID},
    {"free(small + 16)", case_free_small_interior, LIBALLOC, INTERIOR},
    {"free(malloc(64) + 16)", case_free_small_64_interior, LIBALLOC, INTERIOR},
    {"free(malloc(48) + 32)", case_free_small_48_interior, LIBALLOC, INTERIOR},
    {"sdallocx(wrong size)", case_sdallocx_wrong_size, STRICT, "size"},
    {"sdallocx(wrong small size)", case_sdallocx_wrong_small_size, LIBALLOC, "size"},
};

static void
test_case(void **state) {
	const struct invalid_case *c = *state;
	expect_abort(c->name, c->fn, c->strict, c->what);
}

#define CASE(i) cmocka_unit_test_prestate(test_case, &cases[i])

int
main(void) {
	const struct CMUnitTest tests[] = {
	    CASE(0),  CASE(1),  CASE(2),  CASE(3),  CASE(4),  CASE(5),  CASE(6),  CASE(7),
	    CASE(8),  CASE(9),  CASE(10), CASE(11), CASE(12), CASE(13), CASE(14), CASE(15),
	    CASE(16), CASE(17), CASE(18), CASE(19), CASE(20), CASE(21), CASE(22), CASE(23),
	};
	bad_ptr =
	    mmap(NULL, sizeof(*bad_ptr), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (bad_ptr == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	_Static_assert(sizeof(tests) / sizeof(tests[0]) == sizeof(cases) / sizeof(cases[0]),
	               "one test per case");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
