/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fork() while background purging threads run. The program compiles in
 * background_thread:true,decay_time:1 (malloc_conf), so a background thread
 * is purging, often inside an arena, while three other threads churn
 * small, large and huge blocks (the huge ones keep the purger busy) and
 * main forks 50 times. The fork handlers must park the purger outside every
 * allocator lock and let it go on in the parent; in the child it does not
 * exist and must be re-created by the next allocation slow path.
 *
 * Each child: reads stats.background_thread.num_threads before any
 * allocation (0: the parent's threads do not exist here), checks and frees a
 * block main allocated before the fork, allocates and frees a mix of sizes
 * with their contents checked, then expects num_threads >= 1 (re-created
 * lazily). Three of the children also check that background purging works
 * there: they touch and free 48 MiB and, making no allocator call, wait
 * for RSS (less the pages marked MADV_FREE, test_rss.h) to fall at least
 * 40 MiB below its peak, within 3 s. A child that hangs is killed by its
 * own alarm (10 s) and reported.
 *
 * The parent checks after every fork that its background thread still runs,
 * and at the end, with the churning threads stopped, that it still purges
 * (the same 48 MiB test) and that its wake-up count grew. Forking stops
 * early once STRESS_SECONDS (default 20) have passed. Prints a one-line
 * summary. liballoc-specific: exits 77 when the allocator has no mallctl.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "test_rng.h"
#include "test_stats.h"
#include "test_rss.h"

const char *malloc_conf = "background_thread:true,decay_time:1";

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { NCHURN = 3, NFORKS = 50, CHILD_ALARM = 10, RING = 64 };
/* Children that also check purging after the fork. */
#define PURGE_CHECK(i) ((i) == 10 || (i) == 25 || (i) == 40)

/* Blocks stored here escape, so the compiler cannot drop a malloc/free
 * pair whose block is never used. */
static void *volatile sink;

static atomic_bool stop;
static atomic_ulong churn_ops;
static double budget = 20.0;

static double
now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* Writes the last word and one word per page of a block (n >= 16). */
static void
stamp(unsigned char *p, size_t n, uint64_t tag) {
	for (size_t off = 0; off + 16 <= n; off += 4096) {
		memcpy(p + off, &tag, 8);
	}
	memcpy(p + n - 8, &tag, 8);
}

static bool
stamp_ok(const unsigned char *p, size_t n, uint64_t tag) {
	uint64_t v;
	for (size_t off = 0; off + 16 <= n; off += 4096) {
		memcpy(&v, p + off, 8);
		if (v != tag) {
			return false;
		}
	}
	memcpy(&v, p + n - 8, 8);
	return v == tag;
}

static size_t
mixed_size(uint64_t *s) {
	uint64_t r = test_rng_next(s) % 1000;
	return r < 900   ? 16 + test_rng_next(s) % 4000
	       : r < 995 ? 16 * KiB + test_rng_next(s) % (1 * MiB)
	                 : 2 * MiB + test_rng_next(s) % (2 * MiB);
}

static void *
churn(void *arg) {
	uint64_t s = (uint64_t)(uintptr_t)arg;
	unsigned char *ring[RING] = {0};
	size_t sizes[RING] = {0};
	unsigned long ops = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned k = (unsigned)(test_rng_next(&s) % RING);
		if (ring[k] != NULL) {
			if (!stamp_ok(ring[k], sizes[k], (uint64_t)(uintptr_t)ring[k] ^ sizes[k])) {
				fprintf(stderr, "fork_background: FAIL: churn block damaged\n");
				abort();
			}
			free(ring[k]);
		}
		sizes[k] = mixed_size(&s);
		ring[k] = malloc(sizes[k]);
		if (ring[k] == NULL) {
			fprintf(stderr, "fork_background: FAIL: malloc(%zu) failed\n", sizes[k]);
			abort();
		}
		stamp(ring[k], sizes[k], (uint64_t)(uintptr_t)ring[k] ^ sizes[k]);
		ops++;
	}
	for (unsigned k = 0; k < RING; k++) {
		free(ring[k]);
	}
	atomic_fetch_add(&churn_ops, ops);
	return NULL;
}

static size_t
num_threads(void) {
	size_t v = (size_t)-1;
	size_t sz = sizeof(v);
	if (mallctl("stats.background_thread.num_threads", &v, &sz, NULL, 0) != 0) {
		return (size_t)-1;
	}
	return v;
}

static uint64_t
num_runs(void) {
	uint64_t v = 0;
	size_t sz = sizeof(v);
	mallctl("stats.background_thread.num_runs", &v, &sz, NULL, 0);
	return v;
}

/*
 * Allocates and touches 48 MiB of large and huge blocks, frees them and
 * waits, with no allocator call, for RSS to fall at least 40 MiB below the
 * peak. (Measured from the peak rather than from before the allocation:
 * the blocks may reuse dirty pages that were already resident.) Returns
 * the seconds it took, or -1 after 3 s; *fell is how far RSS fell.
 */
static double
purge_check(size_t *fell) {
	enum { N = 24 };
	void *blocks[N];
	for (int i = 0; i < N; i++) {
		size_t size = i % 2 ? 3 * MiB : 1 * MiB;
		blocks[i] = malloc(size);
		if (blocks[i] == NULL) {
			*fell = 0;
			return -1;
		}
		memset(blocks[i], 0x77, size);
	}
	size_t peak = test_rss_held();
	for (int i = 0; i < N; i++) {
		free(blocks[i]);
	}
	double t0 = now_s();
	for (;;) {
		size_t rss = test_rss_held();
		double t = now_s() - t0;
		*fell = peak > rss ? peak - rss : 0;
		if (*fell >= 40 * MiB) {
			return t;
		}
		if (t > 3.0) {
			return -1;
		}
		sleep_ms(5);
	}
}

enum {
	CHILD_OK = 0,
	CHILD_THREADS_INHERITED = 2,
	CHILD_PARENT_BLOCK = 3,
	CHILD_NOMEM = 4,
	CHILD_PATTERN = 5,
	CHILD_NOT_RECREATED = 6,
	CHILD_NO_PURGE = 7,
};

static const char *const child_errors[] = {
    [CHILD_THREADS_INHERITED] = "num_threads was not 0 right after fork",
    [CHILD_PARENT_BLOCK] = "block inherited from the parent was damaged",
    [CHILD_NOMEM] = "allocation failed in the child",
    [CHILD_PATTERN] = "block contents damaged in the child",
    [CHILD_NOT_RECREATED] = "no background thread after allocating in the child",
    [CHILD_NO_PURGE] = "background purging did not give memory back in the child",
};

static int
child(unsigned i, unsigned char *inherited, size_t isize) {
	alarm(CHILD_ALARM);
	if (num_threads() != 0) {
		return CHILD_THREADS_INHERITED;
	}
	if (!stamp_ok(inherited, isize, 0xfeedf00dull + i)) {
		return CHILD_PARENT_BLOCK;
	}
	free(inherited);
	uint64_t s = 0x1234 + i;
	unsigned char *blocks[64];
	size_t sizes[64];
	for (unsigned k = 0; k < 64; k++) {
		sizes[k] = mixed_size(&s);
		blocks[k] = malloc(sizes[k]);
		if (blocks[k] == NULL) {
			return CHILD_NOMEM;
		}
		stamp(blocks[k], sizes[k], k * 77 + i);
	}
	for (unsigned k = 0; k < 64; k++) {
		if (!stamp_ok(blocks[k], sizes[k], k * 77 + i)) {
			return CHILD_PATTERN;
		}
		free(blocks[k]);
	}
	if (num_threads() < 1) {
		return CHILD_NOT_RECREATED;
	}
	if (PURGE_CHECK(i)) {
		size_t fell;
		double t = purge_check(&fell);
		char line[160];
		int n = snprintf(line, sizeof(line),
		                 "fork_background: child %u: RSS fell %.1f MiB in %.2f s after "
		                 "freeing 48 MiB\n",
		                 i, (double)fell / MiB, t);
		if (write(1, line, (size_t)n) < 0) {
			/* Nothing to do. */
		}
		if (t < 0) {
			return CHILD_NO_PURGE;
		}
	}
	return CHILD_OK;
}

int
main(void) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("fork_background: the process allocator has no mallctl; skipped\n");
		return 77;
	}
	if (!test_stats_enabled()) {
		printf("fork_background: built without statistics (threads are counted with "
		       "stats.background_thread.*); skipped\n");
		return 77;
	}
	const char *env = getenv("STRESS_SECONDS");
	if (env != NULL && atof(env) > 0) {
		budget = atof(env);
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	double t0 = now_s();
	bool on = false;
	size_t sz = sizeof(on);
	if (mallctl("opt.background_thread", &on, &sz, NULL, 0) != 0 || !on) {
		printf("fork_background: FAIL: malloc_conf did not turn background_thread on\n");
		return 1;
	}
	/* The threads start at an allocation slow path after start-up. */
	for (int k = 0; k < 100 && num_threads() == 0; k++) {
		sink = malloc(64 * KiB);
		free(sink);
		sleep_ms(10);
	}
	if (num_threads() == 0) {
		printf("fork_background: FAIL: no background thread started\n");
		return 1;
	}
	uint64_t runs_before = num_runs();

	pthread_t th[NCHURN];
	for (uintptr_t k = 0; k < NCHURN; k++) {
		if (pthread_create(&th[k], NULL, churn, (void *)(k + 1)) != 0) {
			printf("fork_background: FAIL: pthread_create\n");
			return 1;
		}
	}
	unsigned forks = 0, failed = 0, purge_checked = 0;
	for (unsigned i = 0; i < NFORKS; i++) {
		if (i > 0 && !PURGE_CHECK(i) && now_s() - t0 > budget) {
			break;
		}
		size_t isize = 16 + (i * 4099) % (300 * KiB);
		unsigned char *inherited = malloc(isize);
		if (inherited == NULL) {
			printf("fork_background: FAIL: malloc in the parent\n");
			return 1;
		}
		stamp(inherited, isize, 0xfeedf00dull + i);
		size_t before = num_threads();
		pid_t pid = fork();
		if (pid < 0) {
			printf("fork_background: FAIL: fork: %s\n", strerror(errno));
			return 1;
		}
		if (pid == 0) {
			_exit(child(i, inherited, isize));
		}
		forks++;
		free(inherited);
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
		}
		size_t after = num_threads();
		if (before < 1 || after < 1) {
			printf("fork_background: FAIL: parent has %zu background thread(s) before "
			       "fork "
			       "%u, %zu after\n",
			       before, i, after);
			failed++;
		}
		if (WIFSIGNALED(status)) {
			printf("fork_background: FAIL: child %u killed by signal %d%s\n", i,
			       WTERMSIG(status),
			       WTERMSIG(status) == SIGALRM ? " (hung: deadlock after fork?)" : "");
			failed++;
		} else if (WEXITSTATUS(status) != 0) {
			int code = WEXITSTATUS(status);
			printf("fork_background: FAIL: child %u: %s\n", i,
			       code < (int)(sizeof(child_errors) / sizeof(child_errors[0])) &&
			               child_errors[code] != NULL
			           ? child_errors[code]
			           : "unknown exit status");
			failed++;
		} else if (PURGE_CHECK(i)) {
			purge_checked++;
		}
	}
	atomic_store(&stop, true);
	for (int k = 0; k < NCHURN; k++) {
		pthread_join(th[k], NULL);
	}

	/* The parent's purger survived the forks and still gives memory
	 * back. */
	size_t fell;
	double t = purge_check(&fell);
	uint64_t runs_after = num_runs();
	printf("fork_background: parent: RSS fell %.1f MiB in %.2f s after freeing 48 MiB; "
	       "background runs %llu -> %llu\n",
	       (double)fell / MiB, t, (unsigned long long)runs_before,
	       (unsigned long long)runs_after);
	if (t < 0) {
		printf("fork_background: FAIL: background purging did not give memory back in the "
		       "parent after the forks\n");
		failed++;
	}
	if (runs_after <= runs_before) {
		printf("fork_background: FAIL: the parent's background thread stopped running\n");
		failed++;
	}
	printf("fork_background: %s: %u forks (%u with a purge check), %lu churn operations, "
	       "%zu background thread(s), %.1f s\n",
	       failed ? "FAIL" : "ok", forks, purge_checked, (unsigned long)atomic_load(&churn_ops),
	       num_threads(), now_s() - t0);
	return failed ? 1 : 0;
}
