/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Locks.
 *
 * A mutex_t is a pthread mutex that spins briefly before sleeping: the
 * critical sections it guards (a bin's run bookkeeping, an arena's page
 * runs) are short, so a waiter usually gets the lock within a few hundred
 * cycles. pthread mutexes never allocate, so they are safe during start-up.
 *
 * Lock order (a thread holding a lock may only take locks further down):
 *   1. bg_lock (background_thread.c)       background threads' state; held
 *                                          while pthread_create allocates
 *      tl_lock (timeline.c)                 the stats timeline's file; held
 *                                          across write(2), only tried by
 *                                          allocation paths
 *   2. init_lock (alloc.c)                 start-up
 *      ctl_lock (ctl_stats.c)               the mallctl statistics snapshot
 *   3. tcaches_lock (tcache.c)             the list of thread caches
 *   4. arenas_lock (arena.c)               arena creation, arena defaults
 *   5. bin locks of an arena (arena_bin.c) ascending bin index, never two arenas
 *   6. arena->lock (arena_run.c)           an arena's chunks, page runs,
 *                                          chunk cache and huge list
 *   7. rtree lock (rtree.c)                radix tree node creation
 *      prof_dump_lock, then prof_lock      heap profile dumps; the tables of
 *        (prof.c)                          sampled objects and backtraces
 *   8. base_lock (base.c)                  metadata memory
 * Fork handlers take every lock in this order and release them in reverse.
 */
#ifndef ALLOC_INTERNAL_MUTEX_H
#define ALLOC_INTERNAL_MUTEX_H

#include <pthread.h>
#include <stdbool.h>

#include "alloc/internal/util.h"

typedef struct {
	pthread_mutex_t lock;
} mutex_t;

#define MUTEX_INITIALIZER \
	{ PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP }

/* Initialises m; returns true on failure. */
bool mutex_init(mutex_t *m);

ALWAYS_INLINE void
mutex_lock(mutex_t *m) {
	if (unlikely(pthread_mutex_trylock(&m->lock) != 0)) {
		pthread_mutex_lock(&m->lock);
	}
}

/* Takes m if it is free; returns true when it did. */
ALWAYS_INLINE bool
mutex_trylock(mutex_t *m) {
	return pthread_mutex_trylock(&m->lock) == 0;
}

ALWAYS_INLINE void
mutex_unlock(mutex_t *m) {
	pthread_mutex_unlock(&m->lock);
}

/* Fork protocol: prefork locks, the parent unlocks, the child re-creates
 * the lock (it may have been held by a thread that does not exist there). */
void mutex_prefork(mutex_t *m);
void mutex_postfork_parent(mutex_t *m);
void mutex_postfork_child(mutex_t *m);

#endif
