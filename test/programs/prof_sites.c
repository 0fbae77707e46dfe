/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Helper of prof.sh: allocation patterns whose heap profiles the script
 * reads with jeprof, go tool pprof and liballoc-prof. Built on the C
 * library and run with LD_PRELOAD=$LIBALLOC; mallctl comes from dlsym.
 * Exit 77 when the allocator has no heap profiling (config.prof false).
 *
 *   prof_sites sites FILE [N]   three sites holding 60/30/10 % of the live
 *                               bytes (N objects each, default 6000), dumped
 *                               to FILE with prof.dump; for a heap_v2 dump
 *                               it checks each site's unbiased estimate
 *                               within 10 % of the truth itself
 *   prof_sites leak            keeps 2000 blocks of 1000 bytes, exits
 *   prof_sites noleak          frees everything, exits
 *   prof_sites threads DIR     prof.dump 20 times into DIR while 4 threads
 *                               allocate; a thread exits holding samples,
 *                               main frees them; a last dump counts none
 *   prof_sites fork            forks; parent and child each dump with the
 *                               default name; prints both pids
 *   prof_sites dlopen LIB FILE  allocates through LIB's lib_alloc_site()
 *                               and dumps to FILE
 *   prof_sites controls DIR     the prof.* and thread.prof.* nodes: types,
 *                               errors, and what each does to the dumps
 *   prof_sites method           prints the backtrace method: libgcc,
 *                               libunwind or frame-pointers
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int mallctl_fn(const char *, void *, size_t *, void *, size_t);
static mallctl_fn *mallctl_p;

static int
dump(const char *file) {
	return mallctl_p("prof.dump", NULL, NULL, file == NULL ? NULL : &file,
	                 file == NULL ? 0 : sizeof(file));
}

/* ---------------------------------------------------------------------- */
/* Three sites. */

static void **keep[3];

/* Keeps the compiler from turning a site's call to malloc into a jump, so
 * the site has a frame of its own in the backtrace. */
static inline void *
no_tail(void *p) {
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

__attribute__((noinline, noclone)) static void *
site_sixty(void) {
	return no_tail(malloc(384));
}

__attribute__((noinline, noclone)) static void *
site_thirty(void) {
	return no_tail(malloc(192));
}

__attribute__((noinline, noclone)) static void *
site_ten(void) {
	return no_tail(malloc(64));
}

/* Which site a return address (one below it, as written) lies in: the
 * nearest site function starting at or below it, within 256 bytes. */
static int
site_of(unsigned long pc) {
	unsigned long starts[3] = {(unsigned long)site_sixty, (unsigned long)site_thirty,
	                           (unsigned long)site_ten};
	int best = -1;
	for (int i = 0; i < 3; i++) {
		if (starts[i] <= pc && pc - starts[i] < 256 &&
		    (best < 0 || starts[i] > starts[best])) {
			best = i;
		}
	}
	return best;
}

/* jeprof's unbiasing of one backtrace's counts (heap_v2). */
static double
unbias(double objs, double bytes, double period, double *est_objs) {
	if (objs == 0) {
		*est_objs = 0;
		return 0;
	}
	double ratio = bytes / objs / period;
	/* 1 - exp(-ratio) by its series, no libm. */
	double term = 1, e = 1;
	for (int i = 1; i < 30; i++) {
		term *= -ratio / i;
		e += term;
	}
	double scale = 1 / (1 - e);
	*est_objs = objs * scale;
	return bytes * scale;
}

static int
check_estimates(const char *file, size_t n) {
	FILE *f = fopen(file, "r");
	if (f == NULL) {
		perror(file);
		return 1;
	}
	char line[4096];
	double period = 0;
	double est[3] = {0, 0, 0};
	int cur = -2;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long p;
		if (sscanf(line, "heap_v2/%llu", &p) == 1) {
			period = (double)p;
		} else if (line[0] == '@') {
			cur = site_of(strtoul(line + 2, NULL, 16));
		} else if (cur >= 0 && strncmp(line, "  t*: ", 6) == 0) {
			unsigned long long objs, bytes;
			if (sscanf(line + 6, "%llu: %llu", &objs, &bytes) == 2) {
				double o;
				est[cur] += unbias((double)objs, (double)bytes, period, &o);
			}
			cur = -2;
		} else if (strncmp(line, "MAPPED_LIBRARIES:", 17) == 0) {
			break;
		}
	}
	fclose(f);
	if (period == 0) {
		fprintf(stderr, "%s: not a heap_v2 profile\n", file);
		return 1;
	}
	const char *names[3] = {"site_sixty", "site_thirty", "site_ten"};
	int status = 0;
	for (int s = 0; s < 3; s++) {
		double truth = 0;
		for (size_t i = 0; i < n; i++) {
			truth += (double)malloc_usable_size(keep[s][i]);
		}
		double err = (est[s] - truth) / truth;
		printf("%s: estimated %.0f bytes, true %.0f (%+.1f %%)\n", names[s], est[s], truth,
		       100 * err);
		if (err > 0.10 || err < -0.10) {
			status = 1;
		}
	}
	return status;
}

static int
run_sites(const char *file, size_t n) {
	for (int s = 0; s < 3; s++) {
		keep[s] = calloc(n, sizeof(void *));
	}
	for (size_t i = 0; i < n; i++) {
		keep[0][i] = site_sixty();
		keep[1][i] = site_thirty();
		keep[2][i] = site_ten();
		memset(keep[0][i], 1, 384);
	}
	if (dump(file) != 0) {
		fprintf(stderr, "prof.dump to %s failed\n", file);
		return 1;
	}
	const char *format = NULL;
	size_t len = sizeof(format);
	mallctl_p("opt.prof_format", &format, &len, NULL, 0);
	int status = strcmp(format, "jeprof") == 0 ? check_estimates(file, n) : 0;
	for (int s = 0; s < 3; s++) {
		for (size_t i = 0; i < n; i++) {
			free(keep[s][i]);
		}
		free(keep[s]);
	}
	return status;
}

/* ---------------------------------------------------------------------- */
/* Leaks. */

__attribute__((noinline, noclone)) static void *
leaky_site(size_t n) {
	return no_tail(malloc(n));
}

static int
run_leak(bool leak) {
	static void *blocks[2000];
	for (int i = 0; i < 2000; i++) {
		blocks[i] = leaky_site(1000);
		memset(blocks[i], 2, 1000);
	}
	if (!leak) {
		for (int i = 0; i < 2000; i++) {
			free(blocks[i]);
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Threads. */

static volatile bool stop;

static void *
churn(void *arg) {
	(void)arg;
	void *held[64] = {0};
	unsigned k = 0;
	while (!stop) {
		for (int i = 0; i < 64; i++) {
			free(held[i]);
			held[i] = malloc((size_t)(16 + (k++ % 40) * 100));
		}
	}
	for (int i = 0; i < 64; i++) {
		free(held[i]);
	}
	return NULL;
}

static void **orphans;

/* Exits holding blocks (sampled with the small period): main frees them. */
static void *
hoarder(void *arg) {
	(void)arg;
	const char *name = "hoarder";
	mallctl_p("thread.prof.name", NULL, NULL, &name, sizeof(name));
	orphans = malloc(1000 * sizeof(void *));
	for (int i = 0; i < 1000; i++) {
		orphans[i] = malloc(512);
	}
	return NULL;
}

static int
run_threads(const char *dir) {
	pthread_t t[4], h;
	for (int i = 0; i < 4; i++) {
		pthread_create(&t[i], NULL, churn, NULL);
	}
	char file[4096];
	for (int i = 0; i < 20; i++) {
		snprintf(file, sizeof(file), "%s/threads.%d.heap", dir, i);
		if (dump(file) != 0) {
			fprintf(stderr, "prof.dump %d failed\n", i);
			return 1;
		}
		usleep(10000);
	}
	stop = true;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
	}
	pthread_create(&h, NULL, hoarder, NULL);
	pthread_join(h, NULL);
	snprintf(file, sizeof(file), "%s/hoarded.heap", dir);
	dump(file);
	for (int i = 0; i < 1000; i++) {
		free(orphans[i]);
	}
	free(orphans);
	snprintf(file, sizeof(file), "%s/freed.heap", dir);
	return dump(file) != 0;
}

/* ---------------------------------------------------------------------- */
/* Fork and dlopen. */

static int
run_fork(void) {
	void *mine = malloc(100000);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		void *child = malloc(200000);
		int r = dump(NULL);
		free(child);
		printf("child %d %d\n", (int)getpid(), r);
		fflush(stdout);
		_exit(r != 0);
	}
	int st;
	waitpid(pid, &st, 0);
	int r = dump(NULL);
	printf("parent %d %d\n", (int)getpid(), r);
	free(mine);
	return r != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}

static int
run_dlopen(const char *lib, const char *file) {
	void *h = dlopen(lib, RTLD_NOW);
	if (h == NULL) {
		fprintf(stderr, "dlopen %s: %s\n", lib, dlerror());
		return 1;
	}
	void *(*site)(size_t) = (void *(*)(size_t))dlsym(h, "lib_alloc_site");
	if (site == NULL) {
		fprintf(stderr, "lib_alloc_site not found\n");
		return 1;
	}
	void **blocks = malloc(3000 * sizeof(void *));
	for (int i = 0; i < 3000; i++) {
		blocks[i] = site(700);
	}
	int r = dump(file);
	for (int i = 0; i < 3000; i++) {
		free(blocks[i]);
	}
	free(blocks);
	return r != 0;
}

/* ---------------------------------------------------------------------- */
/* Controls. */

static int ctl_failures;

#define CTL_EXPECT(cond)                                                                     \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "controls: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			ctl_failures++;                                                      \
		}                                                                            \
	} while (0)

/* Sampled live objects in a heap_v2 dump (the t* line of the header). */
static long
dump_curobjs(const char *file) {
	if (dump(file) != 0) {
		return -1;
	}
	FILE *f = fopen(file, "r");
	char line[256];
	long objs = -1;
	if (f != NULL && fgets(line, sizeof(line), f) != NULL &&
	    fgets(line, sizeof(line), f) != NULL) {
		sscanf(line, "  t*: %ld:", &objs);
	}
	if (f != NULL) {
		fclose(f);
	}
	return objs;
}

static void
alloc_some(void **blocks, int n) {
	for (int i = 0; i < n; i++) {
		blocks[i] = no_tail(malloc(4000));
	}
}

static void
free_some(void **blocks, int n) {
	for (int i = 0; i < n; i++) {
		free(blocks[i]);
	}
}

static int
run_controls(const char *dir) {
	char file[4096];
	snprintf(file, sizeof(file), "%s/controls.heap", dir);
	static void *blocks[2000];
	bool b, old;
	size_t len = sizeof(bool);

	/* prof.active false: nothing new is sampled; true again: sampled. */
	CTL_EXPECT(mallctl_p("prof.active", &old, &len, NULL, 0) == 0 && old);
	b = false;
	CTL_EXPECT(mallctl_p("prof.active", NULL, NULL, &b, sizeof(b)) == 0);
	long base = dump_curobjs(file);
	alloc_some(blocks, 2000);
	long off = dump_curobjs(file);
	free_some(blocks, 2000);
	b = true;
	CTL_EXPECT(mallctl_p("prof.active", NULL, NULL, &b, sizeof(b)) == 0);
	alloc_some(blocks, 2000);
	long on = dump_curobjs(file);
	free_some(blocks, 2000);
	/* 2000 objects of 4000 bytes at lg_prof_sample:12: ~1250 samples;
	 * a bin notices prof.active at its next event (<= 257 allocations). */
	CTL_EXPECT(base >= 0 && off >= 0 && off - base < 300);
	CTL_EXPECT(on - base > 600);

	/* thread.prof.active false: this thread's allocations not sampled. */
	CTL_EXPECT(mallctl_p("thread.prof.active", &old, &len, NULL, 0) == 0 && old);
	b = false;
	CTL_EXPECT(mallctl_p("thread.prof.active", NULL, NULL, &b, sizeof(b)) == 0);
	base = dump_curobjs(file);
	alloc_some(blocks, 2000);
	off = dump_curobjs(file);
	free_some(blocks, 2000);
	b = true;
	CTL_EXPECT(mallctl_p("thread.prof.active", NULL, NULL, &b, sizeof(b)) == 0);
	CTL_EXPECT(off - base < 300);

	/* prof.reset: live samples no longer count; a new period. */
	alloc_some(blocks, 2000);
	CTL_EXPECT(dump_curobjs(file) > 600);
	size_t lg = 14;
	CTL_EXPECT(mallctl_p("prof.reset", NULL, NULL, &lg, sizeof(lg)) == 0);
	CTL_EXPECT(dump_curobjs(file) == 0);
	size_t got = 0, slen = sizeof(got);
	CTL_EXPECT(mallctl_p("prof.lg_sample", &got, &slen, NULL, 0) == 0 && got == 14);
	free_some(blocks, 2000);
	CTL_EXPECT(dump_curobjs(file) == 0);
	lg = 63;
	CTL_EXPECT(mallctl_p("prof.reset", NULL, NULL, &lg, sizeof(lg)) == EINVAL);
	CTL_EXPECT(mallctl_p("prof.reset", &got, &slen, NULL, 0) == EPERM);
	CTL_EXPECT(mallctl_p("prof.reset", NULL, NULL, NULL, 0) == 0);
	CTL_EXPECT(mallctl_p("prof.lg_sample", &got, &slen, NULL, 0) == 0 && got == 14);

	/* thread.prof.name: read or write, printable only. */
	const char *name = "main thread", *read = NULL;
	size_t plen = sizeof(name);
	CTL_EXPECT(mallctl_p("thread.prof.name", NULL, NULL, &name, sizeof(name)) == 0);
	CTL_EXPECT(mallctl_p("thread.prof.name", &read, &plen, NULL, 0) == 0 && read != NULL &&
	           strcmp(read, "main thread") == 0);
	CTL_EXPECT(mallctl_p("thread.prof.name", &read, &plen, &name, sizeof(name)) == EPERM);
	const char *bad = "tab\tok but\nnot newline";
	CTL_EXPECT(mallctl_p("thread.prof.name", NULL, NULL, &bad, sizeof(bad)) == EFAULT);

	/* The other nodes: types and directions. */
	uint64_t interval = 1;
	size_t ilen = sizeof(interval);
	CTL_EXPECT(mallctl_p("prof.interval", &interval, &ilen, NULL, 0) == 0 && interval == 0);
	CTL_EXPECT(mallctl_p("prof.interval", NULL, NULL, &interval, ilen) == EPERM);
	CTL_EXPECT(mallctl_p("prof.gdump", &old, &len, NULL, 0) == 0 && !old);
	b = true;
	CTL_EXPECT(mallctl_p("prof.gdump", NULL, NULL, &b, sizeof(b)) == 0);
	CTL_EXPECT(mallctl_p("prof.gdump", &old, &len, NULL, 0) == 0 && old);
	b = false;
	CTL_EXPECT(mallctl_p("prof.gdump", NULL, NULL, &b, sizeof(b)) == 0);
	CTL_EXPECT(mallctl_p("prof.thread_active_init", &old, &len, NULL, 0) == 0 && old);
	CTL_EXPECT(mallctl_p("prof.active", NULL, NULL, &b, sizeof(int)) == EINVAL);
	CTL_EXPECT(mallctl_p("prof.dump", &read, &plen, NULL, 0) == EPERM);
	const char *nowhere = "/nonexistent/liballoc/x.heap";
	CTL_EXPECT(mallctl_p("prof.dump", NULL, NULL, &nowhere, sizeof(nowhere)) == EFAULT);
	const char *prefix = NULL;
	CTL_EXPECT(mallctl_p("opt.prof_prefix", &prefix, &plen, NULL, 0) == 0 && prefix != NULL);
	return ctl_failures != 0;
}

int
main(int argc, char **argv) {
	mallctl_p = (mallctl_fn *)dlsym(RTLD_DEFAULT, "mallctl");
	bool prof = false;
	size_t len = sizeof(prof);
	if (mallctl_p == NULL || mallctl_p("config.prof", &prof, &len, NULL, 0) != 0 || !prof) {
		fprintf(stderr, "no heap profiling in this allocator\n");
		return 77;
	}
	if (argc >= 3 && strcmp(argv[1], "controls") == 0) {
		return run_controls(argv[2]);
	}
	if (argc >= 2 && strcmp(argv[1], "method") == 0) {
		bool libgcc = false, libunwind = false;
		len = sizeof(bool);
		mallctl_p("config.prof_libgcc", &libgcc, &len, NULL, 0);
		mallctl_p("config.prof_libunwind", &libunwind, &len, NULL, 0);
		puts(libgcc ? "libgcc" : libunwind ? "libunwind" : "frame-pointers");
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "sites") == 0) {
		return run_sites(argv[2], argc >= 4 ? (size_t)atol(argv[3]) : 6000);
	}
	if (argc >= 2 && strcmp(argv[1], "leak") == 0) {
		return run_leak(true);
	}
	if (argc >= 2 && strcmp(argv[1], "noleak") == 0) {
		return run_leak(false);
	}
	if (argc >= 3 && strcmp(argv[1], "threads") == 0) {
		return run_threads(argv[2]);
	}
	if (argc >= 2 && strcmp(argv[1], "fork") == 0) {
		return run_fork();
	}
	if (argc >= 4 && strcmp(argv[1], "dlopen") == 0) {
		return run_dlopen(argv[2], argv[3]);
	}
	fprintf(stderr, "usage: see the comment at the top of prof_sites.c\n");
	return 2;
}
