/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Background purging threads (see background_thread.h).
 */
#include "alloc/internal/background_thread.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/config.h"
#include "alloc/internal/decay.h"
#include "alloc/internal/mutex.h"
#include "alloc/internal/timeline.h"

bool opt_background_thread = ALLOC_CONFIG_BACKGROUND_THREAD;
size_t opt_max_background_threads = BACKGROUND_THREADS_MAX;

/* Longest sleep: a thread whose arenas hold no dirty pages looks again
 * after this long (nothing wakes it when pages become dirty, which keeps
 * free() free of signalling): a twentieth of the decay time, so newly
 * dirtied pages start down their curve late by at most 5% of it, within
 * [BG_SLEEP_MIN_NS, 1 s]. */
#define BG_SLEEP_MAX_NS ((uint64_t)1000 * 1000 * 1000)

static uint64_t
bg_sleep_cap(void) {
	/* The shorter of the two stages' decay times that purge at all. */
	ssize_t t = arenas_decay_ms_get(DECAY_STAGE_DIRTY);
	ssize_t m = arenas_decay_ms_get(DECAY_STAGE_MUZZY);
	if (m > 0 && (t <= 0 || m < t)) {
		t = m;
	}
	if (t <= 0) {
		return t == 0 ? BG_SLEEP_MAX_NS / 100 : BG_SLEEP_MAX_NS;
	}
	uint64_t cap = (uint64_t)t * 1000 * 1000 / 20;
	return cap < BG_SLEEP_MAX_NS ? cap : BG_SLEEP_MAX_NS;
}
/* Shortest sleep, so a decay time of 0 cannot make a thread spin. */
#define BG_SLEEP_MIN_NS ((uint64_t)1000 * 1000)

typedef struct {
	pthread_t thread;
	pthread_cond_t cond;
	/* The thread exists (created and not yet joined). */
	bool running;
	/* Asked to exit. */
	bool stop;
	uint64_t nruns;
	uint64_t started_ns;
} bg_info_t;

/*
 * Protects everything below. Lock order: first of all allocator locks
 * (see mutex.h): thread creation holds it while pthread_create allocates.
 * The background threads never hold it while they take arena locks.
 */
static mutex_t bg_lock = MUTEX_INITIALIZER;
static bool bg_enabled;
/* Set from prefork to postfork: threads must not start a round. */
static bool bg_paused;
static bg_info_t bg_info[BACKGROUND_THREADS_MAX];
/* Written under bg_lock, with atomic stores because
 * background_thread_check reads it without the lock. */
static unsigned bg_nthreads;
/* The max_background_threads mallctl, at most opt.max_background_threads;
 * 0 until its first write, meaning the option's value. Atomic:
 * bg_threads_wanted reads it without the lock. */
static size_t bg_max;

static size_t
bg_max_get(void) {
	size_t max = __atomic_load_n(&bg_max, __ATOMIC_RELAXED);
	return max != 0 ? max : opt_max_background_threads;
}

static unsigned
bg_threads_wanted(void) {
	unsigned n = __atomic_load_n(&narenas_total, __ATOMIC_ACQUIRE);
	unsigned want = (n + BACKGROUND_ARENAS_PER_THREAD - 1) / BACKGROUND_ARENAS_PER_THREAD;
	if (want == 0) {
		want = 1;
	}
	size_t max = bg_max_get();
	return want < max ? want : (unsigned)max;
}

/* One round over thread id's arenas; returns how long to sleep. */
static uint64_t
bg_round(unsigned id) {
	uint64_t sleep_ns = bg_sleep_cap();
	unsigned n = __atomic_load_n(&narenas_total, __ATOMIC_ACQUIRE);
	unsigned stride = bg_threads_wanted();
	for (unsigned i = id; i < n; i += stride) {
		/* Private heaps are left alone: their region may go away
		 * at any time (alloc_heap_destroy). */
		arena_t *a = arena_sweepable(i);
		if (a == NULL) {
			continue;
		}
		uint64_t next = arena_decay_background(a);
		if (next < sleep_ns) {
			sleep_ns = next;
		}
	}
	return sleep_ns < BG_SLEEP_MIN_NS ? BG_SLEEP_MIN_NS : sleep_ns;
}

static void *
bg_main(void *arg) {
	unsigned id = (unsigned)(uintptr_t)arg;
	bg_info_t *info = &bg_info[id];
	mutex_lock(&bg_lock);
	while (!info->stop) {
		if (bg_paused) {
			pthread_cond_wait(&info->cond, &bg_lock.lock);
			continue;
		}
		mutex_unlock(&bg_lock);
		uint64_t sleep_ns = bg_round(id);
		if (id == 0) {
			/* The first thread writes the stats timeline, and
			 * wakes up for its next line. */
			uint64_t tl_ns = timeline_background();
			sleep_ns = tl_ns < sleep_ns ? tl_ns : sleep_ns;
			sleep_ns = sleep_ns < BG_SLEEP_MIN_NS ? BG_SLEEP_MIN_NS : sleep_ns;
		}
		mutex_lock(&bg_lock);
		info->nruns++;
		if (info->stop) {
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t wake = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + sleep_ns;
		ts.tv_sec = (time_t)(wake / 1000000000u);
		ts.tv_nsec = (long)(wake % 1000000000u);
		pthread_cond_timedwait(&info->cond, &bg_lock.lock, &ts);
	}
	mutex_unlock(&bg_lock);
	return NULL;
}

/* Starts thread id; bg_lock held. Returns true on failure. */
static bool
bg_start(unsigned id) {
	bg_info_t *info = &bg_info[id];
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&info->cond, &attr);
	pthread_condattr_destroy(&attr);
	info->stop = false;
	info->nruns = 0;
	info->started_ns = decay_now_ns();
	/* The thread must not take the program's signals. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&info->thread, NULL, bg_main, (void *)(uintptr_t)id);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		pthread_cond_destroy(&info->cond);
		return true;
	}
	info->running = true;
	__atomic_store_n(&bg_nthreads, bg_nthreads + 1, __ATOMIC_RELAXED);
	return false;
}

/* Creates missing threads; bg_lock held. */
static bool
bg_start_missing(void) {
	bool failed = false;
	unsigned want = bg_threads_wanted();
	for (unsigned id = 0; id < want; id++) {
		if (!bg_info[id].running && bg_start(id)) {
			failed = true;
		}
	}
	return failed;
}

bool
background_thread_enabled(void) {
	return __atomic_load_n(&bg_enabled, __ATOMIC_ACQUIRE);
}

bool
background_thread_running(void) {
	return __atomic_load_n(&bg_enabled, __ATOMIC_RELAXED) &&
	       __atomic_load_n(&bg_nthreads, __ATOMIC_RELAXED) != 0;
}

void
background_thread_mark_enabled(void) {
	__atomic_store_n(&bg_enabled, true, __ATOMIC_RELEASE);
}

void
background_thread_check(void) {
	if (likely(!__atomic_load_n(&bg_enabled, __ATOMIC_RELAXED))) {
		return;
	}
	if (likely(__atomic_load_n(&bg_nthreads, __ATOMIC_RELAXED) >= bg_threads_wanted())) {
		return;
	}
	/* pthread_create allocates, which comes back here: trylock makes the
	 * recursive call return at once. */
	if (!mutex_trylock(&bg_lock)) {
		return;
	}
	if (bg_enabled && !bg_paused) {
		bg_start_missing();
	}
	mutex_unlock(&bg_lock);
}

size_t
background_thread_max_get(void) {
	return bg_max_get();
}

bool
background_thread_max_set(size_t max) {
	if (max == 0 || max > opt_max_background_threads) {
		return true;
	}
	/* The threads share the arenas out by their number: restart them
	 * with the new one, as jemalloc does. */
	bool enabled = background_thread_enabled();
	if (enabled) {
		background_thread_set(false);
	}
	__atomic_store_n(&bg_max, max, __ATOMIC_RELAXED);
	if (enabled) {
		background_thread_set(true);
	}
	return false;
}

bool
background_thread_set(bool enable) {
	if (enable && !config_background_thread_support) {
		return true;
	}
	mutex_lock(&bg_lock);
	if (enable) {
		__atomic_store_n(&bg_enabled, true, __ATOMIC_RELEASE);
		bool failed = bg_start_missing();
		mutex_unlock(&bg_lock);
		return failed;
	}
	__atomic_store_n(&bg_enabled, false, __ATOMIC_RELEASE);
	/* Each thread is stopped and joined by one caller only: a second
	 * thread writing false at the same time must not join it again (that
	 * is undefined), so it waits below until the first is done. */
	pthread_t joins[BACKGROUND_THREADS_MAX];
	unsigned ids[BACKGROUND_THREADS_MAX];
	unsigned njoins = 0;
	for (unsigned id = 0; id < BACKGROUND_THREADS_MAX; id++) {
		bg_info_t *info = &bg_info[id];
		if (info->running && !info->stop) {
			info->stop = true;
			pthread_cond_signal(&info->cond);
			ids[njoins] = id;
			joins[njoins++] = info->thread;
		}
	}
	mutex_unlock(&bg_lock);
	for (unsigned i = 0; i < njoins; i++) {
		pthread_join(joins[i], NULL);
	}
	mutex_lock(&bg_lock);
	for (unsigned i = 0; i < njoins; i++) {
		bg_info_t *info = &bg_info[ids[i]];
		pthread_cond_destroy(&info->cond);
		info->running = false;
		__atomic_store_n(&bg_nthreads, bg_nthreads - 1, __ATOMIC_RELAXED);
	}
	/* Threads another caller is stopping: gone when this call returns. */
	for (;;) {
		bool others = false;
		for (unsigned id = 0; id < BACKGROUND_THREADS_MAX; id++) {
			others |= bg_info[id].running && bg_info[id].stop;
		}
		if (!others) {
			break;
		}
		mutex_unlock(&bg_lock);
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
		mutex_lock(&bg_lock);
	}
	mutex_unlock(&bg_lock);
	return false;
}

void
background_thread_stats_read(background_thread_stats_t *out) {
	mutex_lock(&bg_lock);
	out->num_threads = bg_nthreads;
	out->num_runs = 0;
	uint64_t now = decay_now_ns();
	uint64_t lived = 0;
	for (unsigned id = 0; id < BACKGROUND_THREADS_MAX; id++) {
		if (bg_info[id].running) {
			out->num_runs += bg_info[id].nruns;
			lived += now - bg_info[id].started_ns;
		}
	}
	out->run_interval_ns = out->num_runs != 0 ? lived / out->num_runs : 0;
	mutex_unlock(&bg_lock);
}

void
background_thread_prefork(void) {
	/* Holding bg_lock keeps every background thread out of its rounds:
	 * one between rounds waits for the lock; one inside a round holds at
	 * most an arena lock, which the arena prefork waits for. */
	mutex_prefork(&bg_lock);
	bg_paused = true;
}

void
background_thread_postfork_parent(void) {
	bg_paused = false;
	for (unsigned id = 0; id < BACKGROUND_THREADS_MAX; id++) {
		if (bg_info[id].running) {
			pthread_cond_signal(&bg_info[id].cond);
		}
	}
	mutex_postfork_parent(&bg_lock);
}

void
background_thread_postfork_child(void) {
	/* The threads do not exist in the child; forget them (their
	 * condition variables may be in any state, so do not destroy them) and
	 * let the next slow path start new ones if purging is enabled. */
	for (unsigned id = 0; id < BACKGROUND_THREADS_MAX; id++) {
		bg_info[id].running = false;
	}
	__atomic_store_n(&bg_nthreads, 0, __ATOMIC_RELAXED);
	bg_paused = false;
	mutex_postfork_child(&bg_lock);
}
