/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fork() from a multi-threaded process while other threads are inside the
 * allocator. Three threads churn malloc/free/realloc continuously, so at
 * the moment of fork some allocator lock is likely held; the allocator's
 * fork handlers must leave the child with a consistent, unlocked heap.
 *
 * Main forks 200 times. Each child checks and frees a block the parent made
 * before forking, allocates small, large and huge blocks, checks their
 * contents and that calloc zeroes, sometimes starts a thread that allocates
 * too, and _exit(0)s; every tenth child forks a grandchild of its own first.
 * Meanwhile a fourth thread forks 50 times as well (fork from a thread that
 * is not main, concurrently with main's forks). A child that hangs (deadlock
 * on an allocator lock inherited from the parent) is killed by its own
 * alarm after 10 s and reported. Forking stops early if STRESS_SECONDS
 * (default 15) have passed, so the test stays bounded on a loaded machine.
 * Prints a one-line summary.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_rng.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { NCHURN = 3, NFORKS = 200, NTHREAD_FORKS = 50, CHILD_ALARM = 10 };

static atomic_bool stop;
static struct timespec t0;
static double budget = 15.0; /* seconds; STRESS_SECONDS overrides */

static double
elapsed(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9;
}
static atomic_ulong churn_ops;

/* Child exit codes, so the parent can say what went wrong. */
enum {
	CHILD_OK = 0,
	CHILD_PARENT_BLOCK = 2,
	CHILD_NOMEM = 3,
	CHILD_PATTERN = 4,
	CHILD_CALLOC = 5,
	CHILD_THREAD = 6,
	CHILD_GRANDCHILD = 7,
};

static const char *const child_errors[] = {
    [CHILD_PARENT_BLOCK] = "block inherited from the parent was damaged",
    [CHILD_NOMEM] = "allocation failed in the child",
    [CHILD_PATTERN] = "block contents damaged in the child",
    [CHILD_CALLOC] = "calloc memory not zero in the child",
    [CHILD_THREAD] = "thread started in the child failed",
    [CHILD_GRANDCHILD] = "grandchild failed",
};

static void
fill(uint64_t *p, size_t words, uint64_t seed) {
	for (size_t i = 0; i < words; i++)
		p[i] = seed ^ (i * 0x9e3779b97f4a7c15ull);
}

static int
intact(const uint64_t *p, size_t words, uint64_t seed) {
	for (size_t i = 0; i < words; i++) {
		if (p[i] != (seed ^ (i * 0x9e3779b97f4a7c15ull)))
			return 0;
	}
	return 1;
}

/* Churn: mixed sizes, some kept for a while, checked before free. */
static void *
churn(void *arg) {
	uint64_t s = (uint64_t)(uintptr_t)arg;
	uint64_t *held[32] = {0};
	size_t words[32] = {0};
	uint64_t seeds[32] = {0};
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int i = (int)(test_rng_next(&s) % 32);
		if (held[i] != NULL) {
			if (!intact(held[i], words[i], seeds[i])) {
				fprintf(stderr, "fork: FAIL: churn block damaged in the parent\n");
				abort();
			}
			free(held[i]);
		}
		uint64_t r = test_rng_next(&s) % 1000;
		size_t n = r < 900   ? 8 + test_rng_next(&s) % 1024
		           : r < 998 ? 16 * KiB + test_rng_next(&s) % (200 * KiB)
		                     : 2 * MiB + test_rng_next(&s) % MiB;
		held[i] = r % 7 == 0 ? calloc(1, n) : malloc(n);
		if (held[i] == NULL) {
			fprintf(stderr, "fork: FAIL: malloc in churn thread\n");
			abort();
		}
		words[i] = n / 8;
		seeds[i] = test_rng_next(&s);
		fill(held[i], words[i], seeds[i]);
		/* Pause now and then so the forking threads get CPU time on small machines. */
		if (atomic_fetch_add_explicit(&churn_ops, 1, memory_order_relaxed) % 128 == 0) {
			struct timespec ts = {0, 500 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	for (int i = 0; i < 32; i++)
		free(held[i]);
	return NULL;
}

static void *
child_thread(void *arg) {
	uint64_t s = (uint64_t)(uintptr_t)arg;
	for (int k = 0; k < 200; k++) {
		size_t n = 8 + test_rng_next(&s) % 4096;
		uint64_t *p = malloc(n);
		if (p == NULL)
			return (void *)1;
		fill(p, n / 8, s);
		if (!intact(p, n / 8, s))
			return (void *)1;
		free(p);
	}
	return NULL;
}

/* What a child does. Uses only malloc & co., memory and write(2); returns an exit code. */
static int
child_work(uint64_t *inherited, size_t inherited_words, uint64_t inherited_seed, uint64_t seed) {
	alarm(CHILD_ALARM);
	if (!intact(inherited, inherited_words, inherited_seed))
		return CHILD_PARENT_BLOCK;
	free(inherited);

	static const size_t sizes[] = {8,        24,        100,     1000,    4000,       14 * KiB,
	                               40 * KiB, 300 * KiB, 1 * MiB, 2 * MiB, 3 * MiB + 5};
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	uint64_t *blocks[N][2];
	for (int r = 0; r < 2; r++) {
		for (int i = 0; i < N; i++) {
			/* Two of each small and large size, one of each huge. */
			blocks[i][r] = r == 1 && sizes[i] >= 1 * MiB ? NULL : malloc(sizes[i]);
			if (r == 1 && sizes[i] >= 1 * MiB)
				continue;
			if (blocks[i][r] == NULL)
				return CHILD_NOMEM;
			fill(blocks[i][r], sizes[i] / 8, seed + (uint64_t)(i * 2 + r));
		}
	}
	for (int r = 0; r < 2; r++) {
		for (int i = 0; i < N; i++) {
			if (blocks[i][r] == NULL)
				continue;
			if (!intact(blocks[i][r], sizes[i] / 8, seed + (uint64_t)(i * 2 + r)))
				return CHILD_PATTERN;
			uint64_t *q = realloc(blocks[i][r], sizes[(i + 3) % N]);
			if (q == NULL)
				return CHILD_NOMEM;
			size_t keep = sizes[i] < sizes[(i + 3) % N] ? sizes[i] : sizes[(i + 3) % N];
			if (!intact(q, keep / 8, seed + (uint64_t)(i * 2 + r)))
				return CHILD_PATTERN;
			free(q);
		}
	}
	for (int i = 0; i < N; i++) {
		unsigned char *c = calloc(1, sizes[i]);
		if (c == NULL)
			return CHILD_NOMEM;
		if (c[0] != 0 || memcmp(c, c + 1, sizes[i] - 1) != 0)
			return CHILD_CALLOC;
		memset(c, 0xff, sizes[i]);
		free(c);
	}
	if (seed % 4 == 0) {
		pthread_t t;
		void *ret = (void *)1;
		if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)seed) != 0)
			return CHILD_THREAD;
		pthread_join(t, &ret);
		if (ret != NULL)
			return CHILD_THREAD;
	}
	return CHILD_OK;
}

/* Waits for pid; returns NULL if it exited 0, else a description. */
static const char *
reap(pid_t pid, char *buf, size_t len) {
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(buf, len, "waitpid: %s", strerror(errno));
			return buf;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return NULL;
	if (WIFEXITED(status)) {
		int code = WEXITSTATUS(status);
		snprintf(buf, len, "child exited with %d (%s)", code,
		         code < (int)(sizeof(child_errors) / sizeof(child_errors[0])) &&
		                 child_errors[code]
		             ? child_errors[code]
		             : "?");
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
		snprintf(buf, len, "child hung for %d s and was killed: deadlock after fork?",
		         CHILD_ALARM);
	} else {
		snprintf(buf, len, "child killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	}
	return buf;
}

/* One fork: the child works (maybe after forking a grandchild); the parent reaps it. */
static const char *
fork_once(uint64_t seed, int grandchild, char *buf, size_t len) {
	size_t words = 1 + seed % 5000;
	uint64_t *inherited = malloc(words * 8);
	if (inherited == NULL)
		return "malloc failed in the parent";
	fill(inherited, words, seed * 3);
	pid_t pid = fork();
	if (pid < 0) {
		free(inherited);
		snprintf(buf, len, "fork: %s", strerror(errno));
		return buf;
	}
	if (pid == 0) {
		if (grandchild) {
			uint64_t *g = malloc(64 * 8);
			if (g == NULL)
				_exit(CHILD_NOMEM);
			fill(g, 64, 77);
			pid_t gpid = fork();
			if (gpid == 0)
				_exit(child_work(g, 64, 77, seed + 1));
			free(g);
			char gbuf[128];
			if (gpid < 0 || reap(gpid, gbuf, sizeof(gbuf)) != NULL)
				_exit(CHILD_GRANDCHILD);
		}
		_exit(child_work(inherited, words, seed * 3, seed));
	}
	free(inherited);
	return reap(pid, buf, len);
}

static atomic_int thread_forks;

static void *
forking_thread(void *arg) {
	(void)arg;
	static char buf[256];
	for (int k = 0; k < NTHREAD_FORKS && elapsed() < budget; k++) {
		const char *err = fork_once(100000 + (uint64_t)k, k % 10 == 3, buf, sizeof(buf));
		if (err != NULL)
			return (void *)err;
		atomic_fetch_add(&thread_forks, 1);
	}
	return NULL;
}

static void
on_parent_alarm(int sig) {
	(void)sig;
	static const char msg[] = "fork: FAIL: parent hung for 60 s (deadlock in fork?)\n";
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

int
main(void) {
	signal(SIGALRM, on_parent_alarm);
	alarm(60);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const char *env = getenv("STRESS_SECONDS");
	if (env != NULL && atof(env) > 0)
		budget = atof(env);

	pthread_t churners[NCHURN], forker;
	for (int i = 0; i < NCHURN; i++)
		pthread_create(&churners[i], NULL, churn, (void *)(uintptr_t)(i + 1));
	pthread_create(&forker, NULL, forking_thread, NULL);

	char buf[256];
	const char *err = NULL;
	int forks = 0;
	for (int k = 0; k < NFORKS && err == NULL && elapsed() < budget; k++) {
		err = fork_once((uint64_t)k, k % 10 == 5, buf, sizeof(buf));
		forks++;
	}
	void *thread_err;
	pthread_join(forker, &thread_err);
	atomic_store(&stop, 1);
	for (int i = 0; i < NCHURN; i++)
		pthread_join(churners[i], NULL);
	alarm(0);

	double secs = elapsed();
	if (err != NULL || thread_err != NULL) {
		fprintf(stderr, "fork: FAIL: %s (after %d forks from main, %d from a thread)\n",
		        err ? err : (const char *)thread_err, forks, atomic_load(&thread_forks));
		return 1;
	}
	printf("fork: OK: %d forks from main, %d from a thread, %d churn threads doing %lu "
	       "ops, %.1f s%s\n",
	       forks, atomic_load(&thread_forks), NCHURN, (unsigned long)atomic_load(&churn_ops),
	       secs,
	       forks < NFORKS || atomic_load(&thread_forks) < NTHREAD_FORKS
	           ? " (stopped early: time budget reached on a busy machine)"
	           : "");
	return 0;
}
