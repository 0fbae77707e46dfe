/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Which arena a thread allocates from, through lib/liballoc.so:
 *
 *  - thread.arena: reads the calling thread's arena; a write binds the
 *    thread to an automatic or an arenas.extend arena (allocations then come
 *    from it, seen in its bin counters), only that thread, and for good:
 *    the binding survives moving the thread to another CPU. An index at or
 *    past arenas.narenas is EFAULT, a wrong length EINVAL;
 *  - opt.percpu_arena (in children run with MALLOC_CONF): "percpu" by
 *    default, one arena per CPU of the affinity mask, and once threads are
 *    spread (below) a thread that moves from CPU to CPU follows with its
 *    arena (the k-th CPU of the mask uses arena k, after a few slow-path
 *    calls there); "phycpu": one arena
 *    per physical core, hyper-thread siblings share (cores read from
 *    sysfs); "disabled": 4 arenas per CPU, or opt.narenas, threads dealt
 *    round robin (with narenas:3, main and six threads started one after
 *    the other get 0 1 2 0 1 2 0); a bad value warns once and keeps the
 *    default; narenas:1 puts every CPU on arena 0;
 *  - opt.percpu_arena_waits: until threads wait for the arenas' locks that
 *    often, every thread uses arena 0 (main and six threads started one
 *    after the other, a thread visiting every CPU) and arenas.percpu_spread
 *    reads false; percpu_arena_waits:0 spreads from the start; with
 *    percpu_arena_waits:1, threads allocating large runs at the same time
 *    on two CPUs spread them (arenas.percpu_spread true, arenas.percpu_waits
 *    1), after which a thread follows its CPU.
 *
 * liballoc-specific: skipped (exit 77) when the process allocator does not
 * export mallctl. The MALLOC_CONF cases skip in a build with options built
 * in (configure --with-malloc-conf).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "alloc.h"
#include "test_child.h"
#include "test_fill.h"

/* At most this many CPUs of the affinity mask are visited. */
#define MAX_CPUS 16

static void *volatile sink;

static void *
keep(void *p) {
	sink = p;
	return p;
}

static const char *built_in_conf = "";

static int
ctl_get(const char *name, void *v, size_t len) {
	size_t l = len;
	int err = mallctl(name, v, &l, NULL, 0);
	return err == 0 && l != len ? EINVAL : err;
}

/* The calling thread's arena, after one allocation (so it is set up). */
static unsigned
my_arena(void) {
	free(keep(malloc(64)));
	unsigned a = UINT32_MAX;
	if (ctl_get("thread.arena", &a, sizeof(a)) != 0) {
		return UINT32_MAX;
	}
	return a;
}

/* The arena of a thread that just moved to another CPU: the move is
 * noticed on slow paths (a thread.arena read is one), possibly only after a
 * few of them, so that a thread bouncing between CPUs does not change
 * arenas on every call. */
#define SETTLE_CALLS 32

static unsigned
settled_arena(void) {
	unsigned a = UINT32_MAX;
	for (int i = 0; i < SETTLE_CALLS; i++) {
		a = my_arena();
	}
	return a;
}

/* The CPUs of the process's affinity mask, in order; returns how many (at
 * most MAX_CPUS). */
static int
mask_cpus(int *cpus, int *total) {
	cpu_set_t set;
	int n = 0;
	*total = 0;
	if (sched_getaffinity(0, sizeof(set), &set) != 0) {
		return 0;
	}
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &set)) {
			if (n < MAX_CPUS) {
				cpus[n++] = c;
			}
			(*total)++;
		}
	}
	return n;
}

static bool
move_to_cpu(int cpu) {
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return sched_setaffinity(0, sizeof(one), &one) == 0;
}

/* ---------------------------------------------------------------------- */
/* The child side. */

#define CHILD_CHECK(cond)                                                       \
	do {                                                                    \
		if (!(cond)) {                                                  \
			printf("FAIL: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                \
		}                                                               \
	} while (0)

/* opt.percpu_arena, arenas.narenas and the CPU count. */
static int
child_show(void) {
	const char *mode = NULL;
	unsigned n = 0;
	int cpus[MAX_CPUS], total;
	mask_cpus(cpus, &total);
	CHILD_CHECK(ctl_get("opt.percpu_arena", &mode, sizeof(mode)) == 0);
	CHILD_CHECK(my_arena() != UINT32_MAX);
	CHILD_CHECK(ctl_get("arenas.narenas", &n, sizeof(n)) == 0);
	printf("mode=%s narenas=%u ncpus=%d\n", mode, n, total);
	return 0;
}

static void *
thread_arena(void *arg) {
	*(unsigned *)arg = my_arena();
	return NULL;
}

/* The arenas of main and of six threads started one after the other. */
static int
child_rr(void) {
	printf("rr %u", my_arena());
	for (int i = 0; i < 6; i++) {
		unsigned a = UINT32_MAX;
		pthread_t t;
		CHILD_CHECK(pthread_create(&t, NULL, thread_arena, &a) == 0);
		CHILD_CHECK(pthread_join(t, NULL) == 0);
		printf(" %u", a);
	}
	printf("\n");
	return 0;
}

/* One thread visits every CPU of the mask in turn and reads its arena on
 * each: "cpuC=A" per CPU. */
static void *
thread_hop(void *arg) {
	char *out = arg;
	int cpus[MAX_CPUS], total;
	int n = mask_cpus(cpus, &total);
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		if (!move_to_cpu(cpus[i])) {
			return (void *)1;
		}
		len +=
		    (size_t)snprintf(out + len, 512 - len, " cpu%d=%u", cpus[i], settled_arena());
	}
	return NULL;
}

static int
child_cpus(void) {
	static char out[512];
	pthread_t t;
	void *ret;
	CHILD_CHECK(pthread_create(&t, NULL, thread_hop, out) == 0);
	CHILD_CHECK(pthread_join(t, &ret) == 0);
	CHILD_CHECK(ret == NULL);
	printf("cpus%s\n", out);
	return 0;
}

static bool
spread_now(void) {
	bool v = false;
	CHILD_CHECK(ctl_get("arenas.percpu_spread", &v, sizeof(v)) == 0);
	return v;
}

/* The threshold, the arenas of main and of six threads started one after
 * the other (they never meet in a lock), and whether that spread. */
static int
child_spread(void) {
	unsigned waits = 0;
	CHILD_CHECK(ctl_get("opt.percpu_arena_waits", &waits, sizeof(waits)) == 0);
	if (spread_now()) {
		printf("waits=%u spread=1\n", waits);
		return 0;
	}
	printf("waits=%u spread=0 ", waits);
	child_rr();
	printf("spread=%d\n", spread_now());
	return 0;
}

#define CONTEND_THREADS 4
#define CONTEND_SECONDS 10

static volatile bool contend_stop;
/* Twice the largest cached size (arenas.tcache_max, which is at least the
 * largest small class): a large run that no thread cache holds. 64 KiB
 * with 4 KiB pages; with 64 KiB pages, where 64 KiB is a small class the
 * cache serves without a lock, 448 KiB. */
static size_t contend_size;

/* Large runs, not cached: every request takes the arena's lock. */
static void *
thread_contend(void *arg) {
	(void)arg;
	while (!contend_stop) {
		for (int i = 0; i < 64; i++) {
			free(keep(malloc(contend_size)));
		}
	}
	return NULL;
}

/* Threads that allocate at the same time until arenas.percpu_spread is set
 * (percpu_arena_waits:1: their first wait), then a thread visiting every
 * CPU as in "cpus". */
static int
child_contend(void) {
	pthread_t t[CONTEND_THREADS];
	CHILD_CHECK(!spread_now());
	size_t tcache_max = 0;
	CHILD_CHECK(ctl_get("arenas.tcache_max", &tcache_max, sizeof(tcache_max)) == 0);
	contend_size = 2 * tcache_max;
	for (int i = 0; i < CONTEND_THREADS; i++) {
		CHILD_CHECK(pthread_create(&t[i], NULL, thread_contend, NULL) == 0);
	}
	struct timespec ts = {0, 1000 * 1000};
	for (int i = 0; i < CONTEND_SECONDS * 1000 && !spread_now(); i++) {
		nanosleep(&ts, NULL);
	}
	contend_stop = true;
	for (int i = 0; i < CONTEND_THREADS; i++) {
		CHILD_CHECK(pthread_join(t[i], NULL) == 0);
	}
	unsigned waits = 0;
	CHILD_CHECK(ctl_get("arenas.percpu_waits", &waits, sizeof(waits)) == 0);
	/* Threads that waited at the same moment may both count. */
	printf("spread=%d waits=%s\n", spread_now(), waits >= 1 ? "1+" : "0");
	return child_cpus();
}

static int
child_main(const char *mode) {
	static const test_child_mode_t modes[] = {
	    {"show", child_show},     {"rr", child_rr},           {"cpus", child_cpus},
	    {"spread", child_spread}, {"contend", child_contend},
	};
	return test_child_dispatch(mode, modes, sizeof(modes) / sizeof(modes[0]));
}

/* ---------------------------------------------------------------------- */
/* The parent side. */

static test_child_t child;

static void
run(const char *conf, const char *mode, bool quiet) {
	test_child_expect(conf, mode, quiet, &child);
}

static void
expect_out(const char *conf, const char *want) {
	if (strcmp(child.out, want) != 0) {
		fail_msg("MALLOC_CONF=%s: output\n%sexpected\n%s", conf, child.out, want);
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
refresh(void) {
	uint64_t e = 1;
	size_t sz = sizeof(e);
	assert_int_equal(mallctl("epoch", &e, &sz, &e, sizeof(e)), 0);
}

static size_t
curregs(unsigned a, unsigned j) {
	char name[96];
	snprintf(name, sizeof(name), "stats.arenas.%u.bins.%u.curregs", a, j);
	size_t v = 0;
	assert_int_equal(ctl_get(name, &v, sizeof(v)), 0);
	return v;
}

static unsigned
read_unsigned(const char *name) {
	unsigned v = 0;
	int err = ctl_get(name, &v, sizeof(v));
	if (err != 0) {
		fail_msg("mallctl(\"%s\") = %d", name, err);
	}
	return v;
}

static void
set_arena(unsigned a) {
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &a, sizeof(a)), 0);
}

typedef struct {
	unsigned bind;
	unsigned before, after;
	int cpus[2];
	bool moved;
} pin_arg_t;

/* Binds itself to arg->bind on one CPU, moves to another, reads again. */
static void *
thread_pinned(void *arg) {
	pin_arg_t *p = arg;
	p->moved = move_to_cpu(p->cpus[0]);
	if (mallctl("thread.arena", NULL, NULL, &p->bind, sizeof(p->bind)) != 0) {
		return (void *)1;
	}
	p->before = my_arena();
	p->moved = p->moved && move_to_cpu(p->cpus[1]);
	p->after = settled_arena();
	return NULL;
}

static void
test_thread_arena(void **state) {
	(void)state;
	unsigned n0 = read_unsigned("arenas.narenas");
	unsigned old = my_arena();
	assert_true(old < n0);
	bool have_stats = false;
	assert_int_equal(ctl_get("config.stats", &have_stats, sizeof(have_stats)), 0);

	/* An automatic arena: the write returns the old binding, and
	 * requests that bypass the cache land in the new one. Until the first
	 * write the thread follows its CPU, and the scheduler may have moved it
	 * since `old` was read: the first old binding is only an automatic
	 * arena; once bound, the binding holds and is returned exactly. */
	unsigned last = n0 - 1;
	unsigned first = 0;
	unsigned prev = UINT32_MAX;
	size_t sz = sizeof(prev);
	assert_int_equal(mallctl("thread.arena", &prev, &sz, &first, sizeof(first)), 0);
	assert_true(prev < n0);
	assert_int_equal(mallctl("thread.arena", &prev, &sz, &last, sizeof(last)), 0);
	assert_int_equal(prev, first);
	assert_int_equal(my_arena(), last);
	/* (Redzones would put the block in a larger bin.) */
	if (have_stats && !test_fill_redzone()) {
		refresh();
		size_t c0 = curregs(last, 3);
		size_t size;
		sz = sizeof(size);
		assert_int_equal(mallctl("arenas.bin.3.size", &size, &sz, NULL, 0), 0);
		void *p = mallocx(size, MALLOCX_TCACHE_NONE);
		assert_non_null(p);
		refresh();
		assert_int_equal(curregs(last, 3), c0 + 1);
		dallocx(p, MALLOCX_TCACHE_NONE);
	}

	/* An arenas.extend arena; other threads keep choosing their own
	 * among the automatic ones. */
	unsigned a;
	sz = sizeof(a);
	assert_int_equal(mallctl("arenas.extend", &a, &sz, NULL, 0), 0);
	assert_true(a >= n0);
	set_arena(a);
	assert_int_equal(my_arena(), a);
	unsigned other = UINT32_MAX;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, thread_arena, &other), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(other < n0);
	assert_int_equal(my_arena(), a);

	/* Errors leave the binding alone. */
	unsigned n = read_unsigned("arenas.narenas");
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &n, sizeof(n)), EFAULT);
	size_t wide = 0;
	assert_int_equal(mallctl("thread.arena", NULL, NULL, &wide, sizeof(wide)), EINVAL);
	assert_int_equal(ctl_get("thread.arena", &wide, sizeof(wide)), EINVAL);
	assert_int_equal(my_arena(), a);

	/* The binding survives a move to another CPU. */
	int cpus[MAX_CPUS], total;
	if (mask_cpus(cpus, &total) >= 2) {
		pin_arg_t p = {.bind = a, .cpus = {cpus[0], cpus[1]}};
		void *ret;
		assert_int_equal(pthread_create(&t, NULL, thread_pinned, &p), 0);
		assert_int_equal(pthread_join(t, &ret), 0);
		assert_null(ret);
		assert_int_equal(p.before, a);
		assert_int_equal(p.after, a);
		if (!p.moved) {
			print_message("# sched_setaffinity failed: the move was not checked\n");
		}
	} else {
		print_message("# one CPU: binding across CPUs not checked\n");
	}
	set_arena(old);
	assert_int_equal(my_arena(), old);
}

/* Physical-core key of a CPU from sysfs, -1 when unknown. */
static long
core_key(int cpu) {
	long v[2] = {-1, -1};
	const char *files[2] = {"core_id", "physical_package_id"};
	for (int i = 0; i < 2; i++) {
		char path[128];
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/topology/%s", cpu,
		         files[i]);
		FILE *f = fopen(path, "r");
		if (f == NULL) {
			return -1;
		}
		if (fscanf(f, "%ld", &v[i]) != 1) {
			v[i] = -1;
		}
		fclose(f);
	}
	return v[0] < 0 || v[1] < 0 ? -1 : (v[1] << 20) | v[0];
}

static void
test_percpu_modes(void **state) {
	(void)state;
	skip_if_built_in_conf();
	int cpus[MAX_CPUS], total;
	int ncpus = mask_cpus(cpus, &total);
	assert_true(ncpus >= 1);
	char want[1024];

	/* Default: per CPU. */
	run("", "show", true);
	snprintf(want, sizeof(want), "mode=percpu narenas=%d ncpus=%d\n", total, total);
	expect_out("", want);
	run("percpu_arena:percpu", "show", true);
	expect_out("percpu_arena:percpu", want);
	/* Until threads meet in the arenas' locks, every thread uses arena
	 * 0, wherever it runs. */
	run("", "spread", true);
	snprintf(want, sizeof(want), "waits=8192 spread=0 rr 0 0 0 0 0 0 0\nspread=0\n");
	expect_out("", want);
	run("", "cpus", true);
	size_t len = (size_t)snprintf(want, sizeof(want), "cpus");
	for (int i = 0; i < ncpus; i++) {
		len += (size_t)snprintf(want + len, sizeof(want) - len, " cpu%d=0", cpus[i]);
	}
	snprintf(want + len, sizeof(want) - len, "\n");
	expect_out("", want);
	/* Spread from the start: the k-th CPU of the mask uses arena k, also
	 * for a thread moving from one to the next. */
	run("percpu_arena_waits:0", "spread", true);
	expect_out("percpu_arena_waits:0", "waits=0 spread=1\n");
	run("percpu_arena_waits:0", "cpus", true);
	char spread_cpus[512];
	len = (size_t)snprintf(spread_cpus, sizeof(spread_cpus), "cpus");
	for (int i = 0; i < ncpus; i++) {
		len += (size_t)snprintf(spread_cpus + len, sizeof(spread_cpus) - len, " cpu%d=%d",
		                        cpus[i], i);
	}
	snprintf(spread_cpus + len, sizeof(spread_cpus) - len, "\n");
	expect_out("percpu_arena_waits:0", spread_cpus);
	/* Spread by threads that wait for the same lock (two CPUs at least:
	 * on one, a wait needs a lock holder preempted). */
	if (total >= 2) {
		run("percpu_arena_waits:1", "contend", true);
		snprintf(want, sizeof(want), "spread=1 waits=1+\n%s", spread_cpus);
		expect_out("percpu_arena_waits:1", want);
	} else {
		print_message("# one CPU: spreading by lock waits not checked\n");
	}
	/* One arena for all. */
	run("narenas:1", "cpus", true);
	len = (size_t)snprintf(want, sizeof(want), "cpus");
	for (int i = 0; i < ncpus; i++) {
		len += (size_t)snprintf(want + len, sizeof(want) - len, " cpu%d=0", cpus[i]);
	}
	snprintf(want + len, sizeof(want) - len, "\n");
	expect_out("narenas:1", want);

	/* phycpu: CPUs of one physical core share an arena, cores are
	 * numbered in mask order. */
	if (total == ncpus) {
		long keys[MAX_CPUS];
		int arena_of[MAX_CPUS];
		int ncores = 0;
		for (int i = 0; i < ncpus; i++) {
			keys[i] = core_key(cpus[i]);
			arena_of[i] = ncores;
			for (int k = 0; keys[i] >= 0 && k < i; k++) {
				if (keys[k] == keys[i]) {
					arena_of[i] = arena_of[k];
					break;
				}
			}
			if (arena_of[i] == ncores) {
				ncores++;
			}
		}
		run("percpu_arena:phycpu", "show", true);
		snprintf(want, sizeof(want), "mode=phycpu narenas=%d ncpus=%d\n", ncores, total);
		expect_out("percpu_arena:phycpu", want);
		run("percpu_arena:phycpu,percpu_arena_waits:0", "cpus", true);
		len = (size_t)snprintf(want, sizeof(want), "cpus");
		for (int i = 0; i < ncpus; i++) {
			len += (size_t)snprintf(want + len, sizeof(want) - len, " cpu%d=%d",
			                        cpus[i], arena_of[i]);
		}
		snprintf(want + len, sizeof(want) - len, "\n");
		expect_out("percpu_arena:phycpu,percpu_arena_waits:0", want);
	} else {
		print_message("# more than %d CPUs: phycpu numbering not checked\n", MAX_CPUS);
	}

	/* disabled: 4 arenas per CPU, or narenas, dealt round robin. */
	run("percpu_arena:disabled", "show", true);
	snprintf(want, sizeof(want), "mode=disabled narenas=%d ncpus=%d\n", 4 * total, total);
	expect_out("percpu_arena:disabled", want);
	run("percpu_arena:disabled,narenas:3", "show", true);
	snprintf(want, sizeof(want), "mode=disabled narenas=3 ncpus=%d\n", total);
	expect_out("percpu_arena:disabled,narenas:3", want);
	run("percpu_arena:disabled,narenas:3", "rr", true);
	expect_out("percpu_arena:disabled,narenas:3", "rr 0 1 2 0 1 2 0\n");

	/* A bad value: one warning naming the option; the default stays. */
	run("percpu_arena:bogus", "show", false);
	snprintf(want, sizeof(want), "mode=percpu narenas=%d ncpus=%d\n", total, total);
	expect_out("percpu_arena:bogus", want);
	assert_non_null(strstr(child.err, "percpu_arena"));
	assert_non_null(strstr(child.err, "bogus"));
	assert_int_equal(strchr(child.err, '\n') - child.err + 1, strlen(child.err));
}

int
main(int argc, char **argv) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("the process allocator has no mallctl\n");
		return 77;
	}
	if (ctl_get("config.malloc_conf", &built_in_conf, sizeof(built_in_conf)) != 0) {
		printf("mallctl config.malloc_conf failed\n");
		return 1;
	}
	if (argc == 3 && strcmp(argv[1], "child") == 0) {
		return child_main(argv[2]);
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_thread_arena),
	    cmocka_unit_test(test_percpu_modes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
