/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Background purging: threads that let arenas' decay advance while the
 * program makes no allocator calls at all, so an idle program's RSS falls
 * on schedule too.
 *
 * There is one thread per BACKGROUND_ARENAS_PER_THREAD arenas; with T
 * threads, arena i is served by thread i mod T. It sleeps until the earliest moment
 * one of its arenas' decay can purge again (the next decay epoch of an
 * arena holding dirty pages), purges what is due, and sleeps again; with no
 * dirty pages anywhere it sleeps until woken.
 *
 * Threads are created lazily from an allocation slow path that holds no
 * allocator lock (never inside malloc with a lock held, never during
 * start-up itself), after opt.background_thread or a write of true to the
 * background_thread mallctl. Across fork(): the prefork handler makes the
 * threads park outside every allocator lock; the parent lets them go on;
 * in the child they do not exist, and are re-created on demand.
 */
#ifndef ALLOC_INTERNAL_BACKGROUND_THREAD_H
#define ALLOC_INTERNAL_BACKGROUND_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BACKGROUND_ARENAS_PER_THREAD 16
#define BACKGROUND_THREADS_MAX       64

/* opt.background_thread. */
extern bool opt_background_thread;
/* opt.max_background_threads: the most threads ever made, in
 * [1, BACKGROUND_THREADS_MAX] (the default). */
extern size_t opt_max_background_threads;

/* Whether background purging is on (the background_thread mallctl). */
bool background_thread_enabled(void);

/* Whether background threads are on and at least one runs (lock-free). */
bool background_thread_running(void);

/* Turns background purging on or off. On: threads start at the next
 * allocation slow path (or now, when called outside the allocator). Off:
 * stops and joins them. Returns true if a thread could not be created. */
bool background_thread_set(bool enable);

/* The max_background_threads mallctl: the cap on threads, in
 * [1, opt.max_background_threads]; changing it while purging is on stops
 * the threads and starts them again with the new count. The setter
 * returns true for a value out of that range. */
size_t background_thread_max_get(void);
bool background_thread_max_set(size_t max);

/* Start-up with opt.background_thread: marks purging enabled; the threads
 * start at the next allocation slow path. */
void background_thread_mark_enabled(void);

/* Called from allocation slow paths holding no lock: creates the threads
 * that should exist but do not. Cheap when there is nothing to do. */
void background_thread_check(void);

typedef struct {
	/* Threads running. */
	size_t num_threads;
	/* Wake-ups, all threads together. */
	uint64_t num_runs;
	/* Average time between wake-ups of a thread, in ns (0 if none). */
	uint64_t run_interval_ns;
} background_thread_stats_t;

void background_thread_stats_read(background_thread_stats_t *out);

void background_thread_prefork(void);
void background_thread_postfork_parent(void);
void background_thread_postfork_child(void);

#endif
