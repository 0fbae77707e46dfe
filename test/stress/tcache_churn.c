/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Thread-cache churn: 8,000 short threads (8 alive at a time), each making
 * 600 allocation calls of mixed sizes (small, large up to and past the
 * thread-cache limit, now and then a huge one) with up to 48 blocks live,
 * freed at random points and all freed before the thread exits. Every
 * block carries a pattern checked before free. Some threads flush their
 * cache half-way (thread.tcache.flush), some turn it off and on again
 * (thread.tcache.enabled), some exit through pthread_exit. So caches are
 * set up, filled, garbage-collected, flushed and torn down 8,000 times.
 *
 * Checked: after all threads are joined and main's cache is flushed,
 * stats.allocated (epoch first) is within 64 KiB of the baseline taken
 * after a warm-up (an exited thread's cache must have gone back to the
 * arenas), stats.arenas.<all>.nthreads counts main only, and resident
 * memory (/proc/self/statm, after every 100 joins) stays within 128 MiB of
 * the start (the live data at any time is a few MiB). Works with and
 * without thread caches (the cache controls answer ENOENT then). Prints
 * one summary line; exit 77 when the allocator has no mallctl.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "test_fill.h"
#include "test_rng.h"
#include "test_stats.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { NTHREADS = 8000, ALIVE = 8, CALLS = 600, MAXLIVE = 48 };
static const size_t rss_bound = 128 * MiB;

typedef struct {
	size_t size;
	uint64_t tag;
} hdr_t;

static size_t
pick_size(uint64_t *s) {
	uint64_t r = test_rng_next(s) % 1000;
	return r < 700   ? sizeof(hdr_t) + 2 + test_rng_next(s) % 512
	       : r < 900 ? 512 + test_rng_next(s) % (15 * KiB)
	       : r < 980 ? 16 * KiB + test_rng_next(s) % (16 * KiB)
	       : r < 999 ? 32 * KiB + test_rng_next(s) % (96 * KiB)
	                 : 2 * MiB + test_rng_next(s) % (2 * MiB);
}

static void
mark(hdr_t *h, size_t size, uint64_t tag) {
	h->size = size;
	h->tag = tag;
	((unsigned char *)h)[sizeof(hdr_t)] = (unsigned char)(tag >> 8);
	((unsigned char *)h)[size - 1] = (unsigned char)tag;
}

static bool
marked(const hdr_t *h, uint64_t tag) {
	return h->tag == tag &&
	       ((const unsigned char *)h)[sizeof(hdr_t)] == (unsigned char)(tag >> 8) &&
	       ((const unsigned char *)h)[h->size - 1] == (unsigned char)tag;
}

static void
die(const char *what, const void *p) {
	fprintf(stderr, "tcache_churn: FAIL: %s (block %p)\n", what, p);
	abort();
}

static void
free_checked(hdr_t *h) {
	if (!marked(h, (uint64_t)(uintptr_t)h * 3)) {
		die("corrupted block", h);
	}
	free(h);
}

/* The cache controls: 0, or ENOENT in a build without thread caches. */
static void
ctl_ok(int err, const char *name) {
	if (err != 0 && err != ENOENT) {
		fprintf(stderr, "tcache_churn: FAIL: mallctl(\"%s\") = %d\n", name, err);
		abort();
	}
}

static void *
worker(void *arg) {
	uint64_t s = (uint64_t)(uintptr_t)arg;
	hdr_t *live[MAXLIVE];
	int n = 0;
	unsigned kind = (unsigned)(test_rng_next(&s) % 16);
	for (int c = 0; c < CALLS; c++) {
		if (n == MAXLIVE || (n > 0 && test_rng_next(&s) % 3 == 0)) {
			int i = (int)(test_rng_next(&s) % (uint64_t)n);
			free_checked(live[i]);
			live[i] = live[--n];
			continue;
		}
		size_t size = pick_size(&s);
		hdr_t *h = malloc(size);
		if (h == NULL) {
			die("malloc failed", NULL);
		}
		mark(h, size, (uint64_t)(uintptr_t)h * 3);
		live[n++] = h;
		if (c == CALLS / 2 && kind == 0) {
			ctl_ok(mallctl("thread.tcache.flush", NULL, NULL, NULL, 0),
			       "thread.tcache.flush");
		} else if (c == CALLS / 3 && kind == 1) {
			bool off = false;
			ctl_ok(mallctl("thread.tcache.enabled", NULL, NULL, &off, sizeof(off)),
			       "thread.tcache.enabled");
		} else if (c == 2 * CALLS / 3 && kind == 1) {
			bool on = true;
			int err = mallctl("thread.tcache.enabled", NULL, NULL, &on, sizeof(on));
			/* The fill options keep caches off (test_fill.h). */
			ctl_ok(err == EPERM && test_fill_active() ? 0 : err,
			       "thread.tcache.enabled");
		}
	}
	while (n > 0) {
		free_checked(live[--n]);
	}
	if (kind == 2) {
		pthread_exit(NULL);
	}
	return NULL;
}

static size_t
rss_bytes(void) {
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, resident = 0;
	if (f == NULL || fscanf(f, "%lu %lu", &size, &resident) != 2) {
		fprintf(stderr, "tcache_churn: FAIL: cannot read /proc/self/statm\n");
		exit(1);
	}
	fclose(f);
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t
allocated_now(void) {
	ctl_ok(mallctl("thread.tcache.flush", NULL, NULL, NULL, 0), "thread.tcache.flush");
	return test_stats_allocated("tcache_churn");
}

static void
run_threads(int first, int count, size_t rss_base, size_t *peak) {
	pthread_t threads[ALIVE];
	for (int k = 0; k < count + ALIVE; k++) {
		if (k >= ALIVE) {
			pthread_join(threads[k % ALIVE], NULL);
			if (rss_base != 0 && k % 100 == 0) {
				size_t rss = rss_bytes();
				if (rss > *peak) {
					*peak = rss;
				}
				if (rss > rss_base + rss_bound) {
					fprintf(stderr,
					        "tcache_churn: FAIL: RSS grew by %zu MiB after %d "
					        "threads (bound %zu MiB)\n",
					        (rss - rss_base) >> 20, k - ALIVE + 1,
					        rss_bound >> 20);
					exit(1);
				}
			}
		}
		if (k < count) {
			int err = pthread_create(&threads[k % ALIVE], NULL, worker,
			                         (void *)(uintptr_t)(first + k + 1));
			if (err != 0) {
				fprintf(stderr, "tcache_churn: FAIL: pthread_create: %s\n",
				        strerror(err));
				exit(1);
			}
		}
	}
}

/* pthread_exit loads the unwinder on first use (allocating): once here,
 * before the baseline. */
static void *
exit_early(void *arg) {
	pthread_exit(arg);
}

int
main(void) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("tcache_churn: the process allocator has no mallctl\n");
		return 77;
	}
	if (!test_stats_enabled()) {
		printf("tcache_churn: built without statistics (the check is stats.allocated back "
		       "to the baseline); skipped\n");
		return 77;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t unused = 0;
	pthread_t t;
	if (pthread_create(&t, NULL, exit_early, NULL) == 0) {
		pthread_join(t, NULL);
	}
	run_threads(0, 2 * ALIVE, 0, &unused);
	size_t base = allocated_now();
	size_t rss_base = rss_bytes(), peak = rss_base;
	run_threads(2 * ALIVE, NTHREADS, rss_base, &peak);
	size_t end = allocated_now();
	unsigned nthreads = test_stats_bound_threads("tcache_churn");
	size_t rss_end = rss_bytes();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	long long diff = (long long)end - (long long)base;
	/* What main frees may sit in its quarantine (quarantine:N). */
	size_t slack = test_fill_quarantine_bytes() + 64 * KiB;
	if (diff > (long long)slack || diff < -(long long)slack) {
		fprintf(stderr,
		        "tcache_churn: FAIL: stats.allocated %zu after the threads, %zu before "
		        "(%+lld bytes; bound %zu): exited threads' caches not returned\n",
		        end, base, diff, slack);
		return 1;
	}
	if (nthreads != 1) {
		fprintf(stderr,
		        "tcache_churn: FAIL: %u threads still bound to arenas (expected 1, "
		        "main)\n",
		        nthreads);
		return 1;
	}
	if (rss_end > peak) {
		peak = rss_end;
	}
	printf("tcache_churn: OK: %d threads x %d calls; stats.allocated %+lld bytes from "
	       "the baseline; RSS %zu MiB at start, peak +%zu MiB; %.1f s\n",
	       NTHREADS, CALLS, diff, rss_base >> 20, (peak - rss_base) >> 20, secs);
	return 0;
}
