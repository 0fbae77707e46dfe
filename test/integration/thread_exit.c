/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Allocation while threads and the process shut down.
 *
 * At thread exit the allocator flushes and tears down its per-thread state
 * in a TSD destructor, but the program's own destructors run in an order it
 * does not control and may allocate and free after that, even in later
 * destructor rounds. Cleanup handlers of cancelled threads and of
 * pthread_exit free memory too. Detached threads exit while new ones start.
 * Finally, exit() runs atexit handlers and library destructors while other
 * threads are still inside malloc and free: nothing may crash. Blocks carry
 * patterns that are checked wherever they are freed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_check.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* A block: its size and a seed, then size bytes of pattern. */
struct blk {
	size_t size;
	unsigned seed;
	unsigned char data[];
};

static atomic_int damaged;

static struct blk *
blk_new(size_t size, unsigned seed) {
	struct blk *b = malloc(sizeof(*b) + size);
	if (b == NULL) {
		atomic_fetch_add(&damaged, 1);
		return NULL;
	}
	b->size = size;
	b->seed = seed;
	for (size_t i = 0; i < size; i++)
		b->data[i] = (unsigned char)(seed + i * 3);
	return b;
}

static void
blk_free(struct blk *b) {
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->size; i++) {
		if (b->data[i] != (unsigned char)(b->seed + i * 3)) {
			atomic_fetch_add(&damaged, 1);
			break;
		}
	}
	free(b);
}

/* ---- TSD destructors that allocate, over several destructor rounds ---- */

enum { NKEYS = 4, ROUNDS = 3 };
static pthread_key_t keys[NKEYS];
static __thread int rounds_left[NKEYS];
static __thread struct blk *tls_block;
static atomic_int destructor_calls;

static void
key_destructor(void *value) {
	atomic_fetch_add(&destructor_calls, 1);
	struct blk *b = value;
	int k = (int)(b->seed % NKEYS);
	blk_free(b);
	/* Allocate and free in the destructor, after the allocator may have torn down. */
	for (int i = 0; i < 20; i++)
		blk_free(blk_new((size_t)i * 100, (unsigned)i));
	blk_free(blk_new(40 * KiB, 9));
	char *huge = malloc(3 * MiB); /* touched at both ends only, to stay fast */
	if (huge == NULL) {
		atomic_fetch_add(&damaged, 1);
	} else {
		huge[0] = huge[3 * MiB - 1] = 1;
		free(huge);
	}
	if (tls_block != NULL) {
		blk_free(tls_block);
		tls_block = NULL;
	}
	if (rounds_left[k]-- > 0) {
		/* Set again: runs once more in a later round. */
		struct blk *again = blk_new(64 + (size_t)k, (unsigned)(k + NKEYS * 10));
		if (again != NULL)
			pthread_setspecific(keys[k], again);
	}
}

static void *
keyed_thread(void *arg) {
	unsigned id = (unsigned)(uintptr_t)arg;
	tls_block = blk_new(100 + id % 50, id);
	for (int k = 0; k < NKEYS; k++) {
		rounds_left[k] = ROUNDS - 1;
		pthread_setspecific(keys[k], blk_new(32 + (size_t)k * 1000, (unsigned)(k + NKEYS)));
	}
	for (int i = 0; i < 100; i++)
		blk_free(blk_new((size_t)(i * 37 % 2000), id + (unsigned)i));
	return NULL;
}

static void
test_tsd_destructors_allocate(void **state) {
	(void)state;
	for (int k = 0; k < NKEYS; k++)
		CHECK(pthread_key_create(&keys[k], key_destructor) == 0, "pthread_key_create");
	for (int round = 0; round < 25; round++) {
		pthread_t t[8];
		for (int i = 0; i < 8; i++)
			CHECK(pthread_create(&t[i], NULL, keyed_thread,
			                     (void *)(uintptr_t)(round * 8 + i)) == 0,
			      "pthread_create");
		for (int i = 0; i < 8; i++)
			pthread_join(t[i], NULL);
	}
	CHECK(atomic_load(&damaged) == 0, "%d blocks damaged or not allocated",
	      atomic_load(&damaged));
	/* 200 threads x NKEYS keys x ROUNDS rounds. */
	CHECK(atomic_load(&destructor_calls) == 200 * NKEYS * ROUNDS, "%d destructor calls",
	      atomic_load(&destructor_calls));
	for (int k = 0; k < NKEYS; k++)
		pthread_key_delete(keys[k]);
}

/* ---- cleanup handlers: pthread_exit and cancellation ---- */

static void
cleanup_free(void *arg) {
	blk_free(arg);
	blk_free(blk_new(500, 5)); /* and allocate during unwinding */
}

/* Nested cleanup handlers, then pthread_exit from a called function. */
static void
exit_now(void) {
	pthread_exit(NULL);
}

static void *
exiting_thread(void *arg) {
	(void)arg;
	struct blk *a = blk_new(300, 1), *b = blk_new(3000, 2), *c = blk_new(30 * KiB, 3);
	pthread_cleanup_push(cleanup_free, a);
	pthread_cleanup_push(cleanup_free, b);
	pthread_cleanup_push(cleanup_free, c);
	exit_now();
	pthread_cleanup_pop(1);
	pthread_cleanup_pop(1);
	pthread_cleanup_pop(1);
	return NULL;
}

static pthread_mutex_t cancel_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cancel_cond = PTHREAD_COND_INITIALIZER;

static void
unlock_mutex(void *arg) {
	pthread_mutex_unlock(arg);
}

static void *
cancelled_thread(void *arg) {
	(void)arg;
	struct blk *a = blk_new(1000, 1), *b = blk_new(50 * KiB, 2);
	pthread_cleanup_push(cleanup_free, a);
	pthread_cleanup_push(cleanup_free, b);
	pthread_mutex_lock(&cancel_lock);
	pthread_cleanup_push(unlock_mutex, &cancel_lock);
	for (;;)
		pthread_cond_wait(&cancel_cond, &cancel_lock); /* a cancellation point */
	pthread_cleanup_pop(1);
	pthread_cleanup_pop(1);
	pthread_cleanup_pop(1);
	return NULL;
}

static void
test_cleanup_handlers(void **state) {
	(void)state;
	for (int round = 0; round < 50; round++) {
		pthread_t e, c;
		CHECK(pthread_create(&e, NULL, exiting_thread, NULL) == 0, "pthread_create");
		CHECK(pthread_create(&c, NULL, cancelled_thread, NULL) == 0, "pthread_create");
		struct timespec ts = {0, 200 * 1000};
		nanosleep(&ts, NULL);
		pthread_cancel(c);
		void *ret;
		pthread_join(c, &ret);
		CHECK(ret == PTHREAD_CANCELED, "thread not cancelled");
		pthread_join(e, NULL);
	}
	CHECK(atomic_load(&damaged) == 0, "%d blocks damaged", atomic_load(&damaged));
}

/* ---- detached threads exiting while others start ---- */

static atomic_int detached_done;

static void *
detached_thread(void *arg) {
	struct blk *from_main = arg;
	blk_free(from_main);
	for (int i = 0; i < 50; i++)
		blk_free(blk_new((size_t)i * 61, (unsigned)i));
	atomic_fetch_add(&detached_done, 1);
	return NULL;
}

static void
test_detached_threads(void **state) {
	(void)state;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int started = 0;
	for (int i = 0; i < 300; i++) {
		struct blk *b = blk_new((size_t)(i % 7) * 5000, (unsigned)i);
		int err = pthread_create(&(pthread_t){0}, &attr, detached_thread, b);
		if (err == EAGAIN) { /* too many at once: let some finish */
			blk_free(b);
			struct timespec ts = {0, 1000 * 1000};
			nanosleep(&ts, NULL);
			continue;
		}
		CHECK(err == 0, "pthread_create: %s", strerror(err));
		started++;
	}
	pthread_attr_destroy(&attr);
	for (int waited = 0; atomic_load(&detached_done) < started && waited < 10000; waited++) {
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	CHECK(atomic_load(&detached_done) == started, "%d of %d detached threads finished",
	      atomic_load(&detached_done), started);
	CHECK(atomic_load(&damaged) == 0, "%d blocks damaged", atomic_load(&damaged));
}

/* ---- exit() while other threads are still allocating ---- */

static void *
busy_thread(void *arg) {
	unsigned s = (unsigned)(uintptr_t)arg;
	struct blk *held[16] = {0};
	for (unsigned i = 0;; i++) {
		unsigned k = (s + i * 7) % 16;
		blk_free(held[k]);
		size_t n = (i % 101 == 0) ? 100 * KiB : (i % 997 == 0) ? 3 * MiB : (i * 13) % 700;
		held[k] = blk_new(n, s + i);
	}
	return NULL;
}

static void
atexit_allocates(void) {
	for (int i = 0; i < 100; i++)
		blk_free(blk_new((size_t)i * 50, (unsigned)i));
}

static void
test_exit_while_threads_allocate(void **state) {
	(void)state;
	for (int round = 0; round < 20; round++) {
		fflush(NULL);
		pid_t pid = fork();
		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
			for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
				signal(sigs[i], SIG_DFL);
			struct rlimit no_core = {0, 0};
			setrlimit(RLIMIT_CORE, &no_core);
			alarm(20);
			atexit(atexit_allocates);
			for (uintptr_t i = 0; i < 4; i++) {
				if (pthread_create(&(pthread_t){0}, NULL, busy_thread,
				                   (void *)(i + 1)) != 0)
					_exit(2);
			}
			struct timespec ts = {0, (long)(1 + round % 5) * 5 * 1000 * 1000};
			nanosleep(&ts, NULL);
			exit(atomic_load(&damaged) == 0 ? 0 : 3);
		}
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
		}
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "round %d: exit() with threads in malloc: %s %d", round,
		      WIFEXITED(status) ? "exit status" : "killed by signal",
		      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tsd_destructors_allocate),
	    cmocka_unit_test(test_cleanup_handlers),
	    cmocka_unit_test(test_detached_threads),
	    cmocka_unit_test(test_exit_while_threads_allocate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
