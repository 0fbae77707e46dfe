/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Mutex creation and the fork protocol for every lock (see mutex.h for the
 * lock order).
 */
#include "alloc/internal/mutex.h"

bool
mutex_init(mutex_t *m) {
	pthread_mutexattr_t attr;
	if (pthread_mutexattr_init(&attr) != 0) {
		return true;
	}
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	bool failed = pthread_mutex_init(&m->lock, &attr) != 0;
	pthread_mutexattr_destroy(&attr);
	return failed;
}

void
mutex_prefork(mutex_t *m) {
	mutex_lock(m);
}

void
mutex_postfork_parent(mutex_t *m) {
	mutex_unlock(m);
}

void
mutex_postfork_child(mutex_t *m) {
	/* The child is single-threaded; re-creating is simpler and safer than
	 * unlocking a mutex whose owner was the forking thread. */
	mutex_init(m);
}
